//! The admin listener: `/live` (the process runs), `/ready` (it takes traffic; false while
//! draining, and while the audit store refuses commits), `/metrics` (Prometheus text).
//! Plain HTTP, meant for loopback or a private network; it serves nothing personal.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::Gateway;

/// Admin connections open at once; one more is closed at accept. Scrapers and probes need
/// a few; idle connections past this would take the process's file descriptors from the
/// service listener.
pub(super) const MAX_ADMIN_CONNECTIONS: usize = 64;

pub(super) async fn serve(
    gw: Arc<Gateway>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_ADMIN_CONNECTIONS));
    loop {
        let tcp = tokio::select! {
            r = listener.accept() => match r {
                Ok((t, _)) => t,
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            continue; // dropped: closed at once
        };
        let gw = Arc::clone(&gw);
        tokio::spawn(async move {
            let _permit = permit;
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let gw = Arc::clone(&gw);
                async move { Ok::<_, std::convert::Infallible>(answer(&gw, req.uri().path()).await) }
            });
            // HTTP/1.1 only, so that the header deadline runs from the first byte (a
            // protocol-detecting server would wait for that byte without one): slow or
            // silent clients may not hold admin connections open.
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(5));
            let _ = http.serve_connection(TokioIo::new(tcp), svc).await;
        });
    }
}

/// `/ready`'s status and body: 503 while draining, or while the audit store refuses commits
/// (or has not yet taken them for its settling time): answers about people wait for their
/// audit records, so traffic should go elsewhere. 200 otherwise.
fn readiness(taking_traffic: bool, audit_healthy: impl FnOnce() -> bool) -> (u16, &'static str) {
    if !taking_traffic {
        (503, "draining\n")
    } else if !audit_healthy() {
        (
            503,
            "the audit store refuses commits, or has only just taken them again\n",
        )
    } else {
        (200, "ready\n")
    }
}

/// How long a scrape waits for the callback outbox's counts.
const OUTBOX_COUNT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

async fn answer(gw: &Arc<Gateway>, path: &str) -> Response<Full<Bytes>> {
    let (status, body, kind) = match path {
        "/live" => (200, "live\n".to_owned(), "text/plain"),
        "/ready" => {
            let (status, body) = readiness(gw.ready.load(Ordering::SeqCst), || gw.audit.healthy());
            (status, body.to_owned(), "text/plain")
        }
        "/metrics" => {
            // The outbox's counts are two table lengths (no record is read), on the blocking
            // pool like every store call: a stalling disk must not stall a runtime worker.
            // Within OUTBOX_COUNT_WAIT: past it the scrape goes without them (left out, as
            // when unreadable), so that scrapes of a stalled disk do not pile up and take
            // the admin listener's places, /live and /ready with them.
            let outbox = Arc::clone(&gw.outbox);
            let counts = tokio::time::timeout(
                OUTBOX_COUNT_WAIT,
                crate::store::blocking(move || outbox.counts()),
            )
            .await;
            let (callbacks_pending, callbacks_finished) = match counts {
                Ok(Ok((p, f))) => (Some(p), Some(f)),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "callback outbox counts unreadable");
                    (None, None)
                }
                Err(_) => {
                    tracing::warn!("callback outbox counts not read in time");
                    (None, None)
                }
            };
            let text = gw.metrics.render(&crate::metrics::Gauges {
                cache_entries: gw.cache.stats().entries,
                callbacks_pending,
                callbacks_finished,
                audit_failing: !gw.audit.healthy(),
                upstream_calls: gw.relay.region_calls(),
                replay_nonces: gw.nonces.fill(),
            });
            (200, text, "text/plain; version=0.0.4")
        }
        _ => (404, "not found\n".to_owned(), "text/plain"),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Ok(v) = hyper::header::HeaderValue::from_str(kind) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::readiness;

    #[test]
    fn ready_only_when_taking_traffic_with_a_healthy_audit_store() {
        assert_eq!(readiness(true, || true), (200, "ready\n"));
        assert_eq!(readiness(false, || true).0, 503);
        assert_eq!(readiness(false, || false), (503, "draining\n"));
        let (status, body) = readiness(true, || false);
        assert_eq!(status, 503);
        assert!(body.contains("audit store"), "{body}");
    }
}
