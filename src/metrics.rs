//! Metrics: every name in one place, label values from bounded sets only (services,
//! return codes). Rendered as Prometheus text on the admin listener.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::standard::{ReturnCode, ServiceName};

/// Latency buckets, milliseconds.
const BUCKETS_MS: [u64; 13] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
/// The gateway's own endpoints, labelled as services are: the platform endpoints, and the
/// documents served by GET.
pub const OWN_ENDPOINTS: [&str; 6] = [
    "statusEvent",
    "link",
    "venueCode",
    "correctionStatus",
    "trust-list",
    "code-page",
];
/// Services, the gateway's own endpoints, and one slot for requests that named none.
const SERVICES: usize = ServiceName::ALL.len() + OWN_ENDPOINTS.len() + 1;
const CODES: usize = ReturnCode::ALL.len();

/// The gateway's counters.
#[derive(Debug)]
pub struct Metrics {
    requests: Vec<AtomicU64>,
    latency: Vec<AtomicU64>,
    latency_sum_us: Vec<AtomicU64>,
    /// Cache hits.
    pub cache_hits: AtomicU64,
    /// Cache misses.
    pub cache_misses: AtomicU64,
    /// Entries purged by status events.
    pub cache_purged: AtomicU64,
    /// Requests shed under load.
    pub shed: AtomicU64,
    /// Connections refused at the TLS handshake.
    pub tls_failures: AtomicU64,
    /// Connections closed at accept: `server.max_connections` were open.
    pub connections_refused: AtomicU64,
    /// Status callbacks a region acknowledged.
    pub callbacks_delivered: AtomicU64,
    /// Callback attempts that failed (each is retried, up to the outbox's limit).
    pub callback_failures: AtomicU64,
    /// Callbacks given up after the outbox's last attempt.
    pub callbacks_abandoned: AtomicU64,
    /// Linked regions asked for a cross-region answer that gave no status in time (the
    /// answer was partial, or carried their last known status).
    pub regions_unanswered: AtomicU64,
    /// Saves of the replay store to its file (periodic and at shutdown).
    pub replay_saves: AtomicU64,
    /// Saves of the replay store that failed (the file before stays; the log says why).
    pub replay_save_failures: AtomicU64,
}

/// What the metrics report as it is at the scrape, read from the parts that hold it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Answers held in the cache.
    pub cache_entries: u64,
    /// Callbacks waiting for delivery (the outbox's due index); `None` when the store could
    /// not be read, and then the gauge is left out rather than reported as 0.
    pub callbacks_pending: Option<u64>,
    /// Delivered or abandoned callbacks kept for the audit period (`None` as above).
    pub callbacks_finished: Option<u64>,
    /// Whether the gateway is unready for its audit store: commits refused, a store that
    /// has not yet settled after a refusal, or a writer that stopped.
    pub audit_failing: bool,
    /// Calls made to regions, as the relay counts them (a counter kept by the router, which
    /// every region call passes); `None` for a relay that does not count, and then left out.
    pub upstream_calls: Option<u64>,
    /// Nonces the replay store remembers, and its cap (at which it answers 1007); `None`
    /// for a store that does not count them cheaply.
    pub replay_nonces: Option<(u64, u64)>,
}

impl Default for Metrics {
    fn default() -> Self {
        let v = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect();
        Self {
            requests: v(SERVICES * CODES),
            latency: v(SERVICES * (BUCKETS_MS.len() + 1)),
            latency_sum_us: v(SERVICES),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            cache_purged: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            tls_failures: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            callbacks_delivered: AtomicU64::new(0),
            callback_failures: AtomicU64::new(0),
            callbacks_abandoned: AtomicU64::new(0),
            regions_unanswered: AtomicU64::new(0),
            replay_saves: AtomicU64::new(0),
            replay_save_failures: AtomicU64::new(0),
        }
    }
}

/// The slot of requests that named no service or endpoint.
const NONE: usize = ServiceName::ALL.len() + OWN_ENDPOINTS.len();

fn service_index(s: Option<ServiceName>) -> usize {
    s.map_or(NONE, |s| s as usize)
}

fn service_label(i: usize) -> &'static str {
    ServiceName::ALL.get(i).map_or_else(
        || {
            OWN_ENDPOINTS
                .get(i - ServiceName::ALL.len())
                .copied()
                .unwrap_or("none")
        },
        |s| s.as_str(),
    )
}

impl Metrics {
    /// Records one finished request.
    pub fn record(
        &self,
        service: Option<ServiceName>,
        code: ReturnCode,
        elapsed: std::time::Duration,
    ) {
        self.record_at(service_index(service), code, elapsed);
    }

    /// Records one finished request to the gateway's own endpoint `name` (one of
    /// [`OWN_ENDPOINTS`]; another is counted with the requests that named none).
    pub fn record_own(&self, name: &str, code: ReturnCode, elapsed: std::time::Duration) {
        let s = OWN_ENDPOINTS
            .iter()
            .position(|e| *e == name)
            .map_or(NONE, |i| ServiceName::ALL.len() + i);
        self.record_at(s, code, elapsed);
    }

    fn record_at(&self, s: usize, code: ReturnCode, elapsed: std::time::Duration) {
        let c = ReturnCode::ALL
            .iter()
            .position(|x| *x == code)
            .unwrap_or(CODES - 1);
        self.requests[s * CODES + c].fetch_add(1, Ordering::Relaxed);
        // In microseconds: whole milliseconds would count 1.9 ms as within `le="0.001"`.
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let b = BUCKETS_MS
            .iter()
            .position(|&le| us <= le * 1000)
            .unwrap_or(BUCKETS_MS.len());
        self.latency[s * (BUCKETS_MS.len() + 1) + b].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us[s].fetch_add(us, Ordering::Relaxed);
    }

    /// Requests answered with `code` for `service` so far.
    pub fn requests(&self, service: Option<ServiceName>, code: ReturnCode) -> u64 {
        let c = ReturnCode::ALL.iter().position(|x| *x == code).unwrap_or(0);
        self.requests[service_index(service) * CODES + c].load(Ordering::Relaxed)
    }

    /// Prometheus text exposition, with `gauges` read at the scrape.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP hutong_requests_total Requests answered, by service and return code.\n# TYPE hutong_requests_total counter"
        );
        for s in 0..SERVICES {
            for (c, code) in ReturnCode::ALL.iter().enumerate() {
                let n = self.requests[s * CODES + c].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        o,
                        "hutong_requests_total{{service=\"{}\",code=\"{}\"}} {n}",
                        service_label(s),
                        code.as_str()
                    );
                }
            }
        }
        let _ = writeln!(
            o,
            "# HELP hutong_request_duration_seconds Time from request to answer.\n# TYPE hutong_request_duration_seconds histogram"
        );
        for s in 0..SERVICES {
            let row = &self.latency[s * (BUCKETS_MS.len() + 1)..(s + 1) * (BUCKETS_MS.len() + 1)];
            let total: u64 = row.iter().map(|a| a.load(Ordering::Relaxed)).sum();
            if total == 0 {
                continue;
            }
            let mut acc = 0;
            for (i, le) in BUCKETS_MS.iter().enumerate() {
                acc += row[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    o,
                    "hutong_request_duration_seconds_bucket{{service=\"{}\",le=\"{}\"}} {acc}",
                    service_label(s),
                    *le as f64 / 1000.0
                );
            }
            let _ = writeln!(
                o,
                "hutong_request_duration_seconds_bucket{{service=\"{}\",le=\"+Inf\"}} {total}",
                service_label(s)
            );
            let sum = self.latency_sum_us[s].load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                o,
                "hutong_request_duration_seconds_sum{{service=\"{}\"}} {sum}",
                service_label(s)
            );
            let _ = writeln!(
                o,
                "hutong_request_duration_seconds_count{{service=\"{}\"}} {total}",
                service_label(s)
            );
        }
        let load = |v: &AtomicU64| Some(v.load(Ordering::Relaxed));
        let counters = [
            (
                "hutong_cache_hits_total",
                "Answers served from the cache.",
                load(&self.cache_hits),
            ),
            (
                "hutong_cache_misses_total",
                "Cache lookups that called a region.",
                load(&self.cache_misses),
            ),
            (
                "hutong_cache_purged_total",
                "Cache entries purged by status events.",
                load(&self.cache_purged),
            ),
            (
                "hutong_shed_total",
                "Requests shed under load.",
                load(&self.shed),
            ),
            (
                "hutong_tls_handshake_failures_total",
                "Connections that failed the TLS handshake.",
                load(&self.tls_failures),
            ),
            (
                "hutong_connections_refused_total",
                "Connections closed at accept because server.max_connections were open.",
                load(&self.connections_refused),
            ),
            (
                "hutong_callbacks_delivered_total",
                "Callbacks (status and visit) a region acknowledged.",
                load(&self.callbacks_delivered),
            ),
            (
                "hutong_callback_failures_total",
                "Callback attempts that failed (retried with backoff until abandoned).",
                load(&self.callback_failures),
            ),
            (
                "hutong_callbacks_abandoned_total",
                "Callbacks given up after the last attempt.",
                load(&self.callbacks_abandoned),
            ),
            (
                "hutong_regions_unanswered_total",
                "Linked regions that gave no status to a cross-region query in time.",
                load(&self.regions_unanswered),
            ),
            (
                "hutong_replay_store_saves_total",
                "Successful saves of the replay store to nonces.bin in the data directory (every 30 s and at shutdown), so that a restart still refuses the nonces it saw.",
                load(&self.replay_saves),
            ),
            (
                "hutong_replay_store_save_failures_total",
                "Saves of the replay store that failed (the log says why): a restart now would forget the nonces since the last good save.",
                load(&self.replay_save_failures),
            ),
            (
                "hutong_upstream_calls_total",
                "Calls made to regions for an answer (a caller's relay, a cache fill, a cross-region query), once each whatever its retries; not those the circuit breaker stopped, nor status callbacks.",
                gauges.upstream_calls,
            ),
        ];
        let levels = [
            (
                "hutong_cache_entries",
                "Answers held in the cache, expired ones not yet swept included.",
                Some(gauges.cache_entries),
            ),
            (
                "hutong_callbacks_pending",
                "Callbacks waiting for delivery, retries included.",
                gauges.callbacks_pending,
            ),
            (
                "hutong_callbacks_finished",
                "Delivered or abandoned callbacks kept for the audit period.",
                gauges.callbacks_finished,
            ),
            (
                "hutong_replay_nonces",
                "Nonces the replay store remembers (each for 601 s).",
                gauges.replay_nonces.map(|(n, _)| n),
            ),
            (
                "hutong_replay_nonces_max",
                "The replay store's cap: at it, a request with a new nonce is refused with 1007.",
                gauges.replay_nonces.map(|(_, max)| max),
            ),
            (
                "hutong_audit_store_failing",
                "1 while the gateway is unready for its audit store (commits refused, not yet settled, or the writer stopped), else 0.",
                Some(u64::from(gauges.audit_failing)),
            ),
        ];
        // A figure the part holding it could not give is left out, not reported as 0.
        for (kind, list) in [("counter", &counters[..]), ("gauge", &levels[..])] {
            for &(name, help, v) in list {
                if let Some(v) = v {
                    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
                }
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateways_own_endpoints_have_their_own_labels() {
        let m = Metrics::default();
        let t = std::time::Duration::from_millis(1);
        m.record_own("code-page", ReturnCode::Success, t);
        m.record_own("statusEvent", ReturnCode::BadFormat, t);
        m.record_own("elsewhere", ReturnCode::BadFormat, t);
        m.record(None, ReturnCode::BadFormat, t);
        let r = m.render(&Gauges::default());
        assert!(
            r.contains("hutong_requests_total{service=\"code-page\",code=\"0\"} 1"),
            "{r}"
        );
        assert!(
            r.contains("hutong_requests_total{service=\"statusEvent\",code=\"1002\"} 1"),
            "{r}"
        );
        assert!(
            r.contains("hutong_requests_total{service=\"none\",code=\"1002\"} 2"),
            "{r}"
        );
    }

    #[test]
    fn a_latency_falls_in_the_first_bucket_that_holds_it() {
        let m = Metrics::default();
        m.record(
            Some(ServiceName::VerifyCode),
            ReturnCode::Success,
            std::time::Duration::from_micros(1_900),
        );
        let t = m.render(&Gauges::default());
        let bucket = |le: &str| format!("service=\"verifyCode\",le=\"{le}\"}} ");
        assert!(t.contains(&format!("{}0\n", bucket("0.001"))), "{t}");
        assert!(t.contains(&format!("{}1\n", bucket("0.002"))), "{t}");
    }

    #[test]
    fn renders_counters_with_bounded_labels() {
        let m = Metrics::default();
        m.record(
            Some(ServiceName::VerifyCode),
            ReturnCode::Success,
            std::time::Duration::from_millis(3),
        );
        m.record(
            None,
            ReturnCode::BadFormat,
            std::time::Duration::from_millis(0),
        );
        m.callbacks_abandoned.fetch_add(1, Ordering::Relaxed);
        m.regions_unanswered.fetch_add(2, Ordering::Relaxed);
        let t = m.render(&Gauges {
            callbacks_pending: Some(7),
            upstream_calls: Some(3),
            ..Gauges::default()
        });
        assert!(
            t.contains(
                "# TYPE hutong_upstream_calls_total counter\nhutong_upstream_calls_total 3\n"
            ),
            "{t}"
        );
        assert!(
            !m.render(&Gauges::default())
                .contains("hutong_upstream_calls_total")
        );
        assert!(
            t.contains("hutong_requests_total{service=\"verifyCode\",code=\"0\"} 1"),
            "{t}"
        );
        assert!(t.contains("hutong_requests_total{service=\"none\",code=\"1002\"} 1"));
        assert!(t.contains("\nhutong_callbacks_abandoned_total 1\n"), "{t}");
        assert!(t.contains("\nhutong_regions_unanswered_total 2\n"), "{t}");
        assert!(t.contains("# TYPE hutong_callbacks_pending gauge\nhutong_callbacks_pending 7\n"));
        assert!(
            !t.contains("hutong_replay_nonces"),
            "a store that does not count is left out"
        );
        let t = m.render(&Gauges {
            replay_nonces: Some((5, 9)),
            ..Gauges::default()
        });
        assert!(t.contains("\nhutong_replay_nonces 5\n"), "{t}");
        assert!(t.contains("\nhutong_replay_nonces_max 9\n"), "{t}");
        assert!(
            !t.contains("hutong_callbacks_finished"),
            "a gauge the store could not give is left out, not 0"
        );
        assert!(t.contains(
            "hutong_request_duration_seconds_bucket{service=\"verifyCode\",le=\"0.005\"} 1"
        ));
        assert_eq!(
            m.requests(Some(ServiceName::VerifyCode), ReturnCode::Success),
            1
        );
    }
}
