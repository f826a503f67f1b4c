//! What every kind of upstream shares: the pooled HTTP client, the deadlines, the retry
//! budget and the circuit breaker. A [`super::NationalUpstream`] and a
//! [`super::DialectUpstream`] differ only in how they write a request and read the answer;
//! each hands that as one `attempt` to [`Transport::call`].

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;

use crate::standard::ServiceName;

use super::{
    BreakerConfig, BreakerState, CircuitBreaker, RetryBudget, RetryBudgetConfig,
    UpstreamConfigError, UpstreamError, UpstreamPolicy,
};

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The HTTP side of one region.
pub(super) struct Transport {
    region: String,
    base: String,
    client: HttpClient,
    max_response_bytes: usize,
    attempt_timeout: Duration,
    deadline: Duration,
    max_attempts: u32,
    backoff: Duration,
    breaker: Arc<CircuitBreaker>,
    budget: RetryBudget,
    attempts: AtomicU64,
}

impl Transport {
    /// Checks the base URL, the CA and the policy, and builds the pooled client. Fails
    /// with every problem found, after the caller's own `problems` (its identity or
    /// dialect).
    pub(super) fn new(
        region: String,
        base_url: &str,
        ca_pem: Option<&str>,
        policy: &UpstreamPolicy,
        max_response_bytes: usize,
        kept: Option<Arc<CircuitBreaker>>,
        mut problems: Vec<String>,
    ) -> Result<Self, UpstreamConfigError> {
        problems.extend(policy.problems());
        let base = base_url.trim_end_matches('/').to_owned();
        let https = match base.parse::<Uri>() {
            Ok(uri) => match (uri.scheme_str(), uri.host()) {
                (Some("https"), Some(_)) => {
                    if ca_pem.is_none() {
                        problems.push("an https base_url needs a CA certificate".to_owned());
                    }
                    true
                }
                (Some("http"), Some(host)) => {
                    if !is_loopback(host) {
                        problems.push(
                            "plain http is only for loopback addresses; use https".to_owned(),
                        );
                    }
                    false
                }
                _ => {
                    problems.push(format!("base_url `{base}` is not an http(s) URL"));
                    false
                }
            },
            Err(_) => {
                problems.push(format!("base_url `{base}` is not a URL"));
                false
            }
        };
        let mut roots = rustls::RootCertStore::empty();
        if let Some(pem) = ca_pem {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject as _;
            let mut n = 0;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                match cert
                    .map_err(|e| e.to_string())
                    .and_then(|c| roots.add(c).map_err(|e| e.to_string()))
                {
                    Ok(()) => n += 1,
                    Err(e) => problems.push(format!("CA certificate: {e}")),
                }
            }
            if n == 0 {
                problems.push("no CA certificate in ca_pem".to_owned());
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions();
        let tls = match tls {
            Ok(b) => Some(b.with_root_certificates(roots).with_no_client_auth()),
            Err(e) => {
                problems.push(format!("TLS: {e}"));
                None
            }
        };
        let (Some(tls), true) = (tls, problems.is_empty()) else {
            return Err(UpstreamConfigError { region, problems });
        };

        let p = policy;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_millis(p.connect_timeout_ms)));
        let builder = HttpsConnectorBuilder::new().with_tls_config(tls);
        let connector = if https {
            builder
                .https_only()
                .enable_http1()
                .enable_http2()
                .wrap_connector(http)
        } else {
            builder
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(http)
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_millis(p.pool_idle_timeout_ms))
            .pool_max_idle_per_host(p.pool_max_idle_per_host)
            .build(connector);
        let failure_threshold = NonZeroU32::new(p.breaker_failures).unwrap_or(NonZeroU32::MIN);
        Ok(Self {
            region,
            base,
            client,
            max_response_bytes,
            attempt_timeout: Duration::from_millis(p.attempt_timeout_ms),
            deadline: Duration::from_millis(p.deadline_ms),
            max_attempts: p.max_attempts,
            backoff: Duration::from_millis(p.retry_backoff_ms),
            breaker: kept.unwrap_or_else(|| {
                Arc::new(CircuitBreaker::new(BreakerConfig {
                    failure_threshold,
                    cool_down: Duration::from_millis(p.breaker_cool_down_ms),
                }))
            }),
            budget: RetryBudget::new(RetryBudgetConfig {
                ratio: p.retry_budget_ratio,
                min_retries: p.retry_budget_min,
                window: Duration::from_millis(p.retry_budget_window_ms),
            }),
            attempts: AtomicU64::new(0),
        })
    }

    /// The region's code.
    pub(super) fn region(&self) -> &str {
        &self.region
    }

    /// The breaker's state.
    pub(super) fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// The base URL and the breaker, for the transport that replaces this one on reload.
    pub(super) fn breaker(&self) -> (&str, Arc<CircuitBreaker>) {
        (&self.base, Arc::clone(&self.breaker))
    }

    /// HTTP attempts made so far (first tries and retries).
    pub(super) fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// The whole call: breaker, deadlines, retries around `attempt`.
    pub(super) async fn call<T, F, Fut>(
        &self,
        service: ServiceName,
        idempotent: bool,
        mut attempt: F,
    ) -> Result<T, UpstreamError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        let own = Instant::now() + self.deadline;
        // The caller's deadline, less the margin, when it comes before the call's own.
        let caller_cut = super::caller_deadline()
            .map(|c| c.checked_sub(super::CALLER_MARGIN).unwrap_or(c))
            .filter(|c| *c < own);
        let deadline = caller_cut.unwrap_or(own);
        self.budget.record_call();
        let mut n = 1;
        // The last attempt's error, once a call has been made.
        let mut last = None;
        loop {
            if Instant::now() >= deadline {
                // The caller is about to give up: no attempt is made (nor counted against
                // the region, which was not asked).
                return Err(last.unwrap_or(UpstreamError::Timeout));
            }
            let Some(permit) = self.breaker.try_acquire() else {
                // A retry the breaker refuses (the attempt before may have opened it): the
                // call was made, and its outcome is that attempt's error, not "no call".
                return Err(last.unwrap_or(UpstreamError::CircuitOpen));
            };
            let began = Instant::now();
            let until = deadline.min(began + self.attempt_timeout);
            self.attempts.fetch_add(1, Ordering::Relaxed);
            let result = tokio::time::timeout_at(until, attempt())
                .await
                .unwrap_or(Err(UpstreamError::Timeout));
            // An attempt the caller's deadline cut short soon after it began says little of
            // the region (super::MIN_COUNTED_WAIT): its timeout is not held against it.
            let cut_short = caller_cut == Some(until)
                && until.saturating_duration_since(began)
                    < super::MIN_COUNTED_WAIT.min(self.attempt_timeout);
            match &result {
                Err(UpstreamError::Timeout) if cut_short => drop(permit),
                _ => settle(permit, &result),
            }
            let error = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let may_retry = idempotent
                && error.retryable()
                && n < self.max_attempts
                && Instant::now() + self.backoff < deadline
                && self.budget.try_retry();
            if !may_retry {
                return Err(error);
            }
            tracing::debug!(
                region = %self.region,
                service = service.as_str(),
                attempt = n,
                error = %error,
                "retrying"
            );
            last = Some(error);
            tokio::time::sleep(self.backoff).await;
            n += 1;
        }
    }

    /// One attempt under the breaker, within `timeout`, without retries: a status
    /// callback, which the outbox retries on its own schedule. While the region's breaker
    /// is open no call is made ([`UpstreamError::CircuitOpen`]), and the attempt's outcome
    /// is reported to the breaker as a call's is, so that callbacks and calls see one
    /// region. The timeout is the callback's own, not a call's attempt timeout: a region
    /// has longer to acknowledge a callback than to answer a caller who waits.
    pub(super) async fn once<T, Fut>(
        &self,
        timeout: Duration,
        attempt: Fut,
    ) -> Result<T, UpstreamError>
    where
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        let Some(permit) = self.breaker.try_acquire() else {
            return Err(UpstreamError::CircuitOpen);
        };
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let result = tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or(Err(UpstreamError::Timeout));
        settle(permit, &result);
        result
    }

    /// One HTTP exchange: `method` to `{base}{path}` with `headers` and `body`; the status
    /// and the whole answer body (at most the configured size).
    pub(super) async fn exchange(
        &self,
        method: Method,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), UpstreamError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            // The headers are the gateway's own (a dialect's): a bad one is its fault, no
            // call is made, and the region's breaker does not count it.
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| UpstreamError::Build(format!("request header {k}: {e}")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|e| UpstreamError::Build(format!("request header {k}: {e}")))?;
            builder = builder.header(name, value);
        }
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(header::CONTENT_TYPE.as_str()))
        {
            builder = builder.header(header::CONTENT_TYPE, "application/json; charset=utf-8");
        }
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| UpstreamError::Build(format!("request: {e}")))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| exchange_error(&e))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), self.max_response_bytes)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    UpstreamError::Garbage("answer body too large".to_owned())
                } else {
                    UpstreamError::Connect(format!("reading the answer: {e}"))
                }
            })?
            .to_bytes();
        Ok((status, body))
    }
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Reports an attempt's outcome to the breaker.
fn settle<T>(permit: super::Permit<'_>, result: &Result<T, UpstreamError>) {
    match result {
        Err(e) if e.is_upstream_failure() => permit.failure(),
        // No call was made (the gateway could not seal or build it): the region's health is
        // unknown, so the permit goes back unreported. Reported as a success, it cleared the
        // failures counted so far and closed a half-open breaker without a word from the
        // region.
        Err(UpstreamError::Seal(_) | UpstreamError::Build(_)) => drop(permit),
        _ => permit.success(),
    }
}

/// A failed exchange: 9001 when the connection could not be made or broke before an
/// answer (retryable), 9002 when the region sent something that is not HTTP (a malformed
/// status line or headers: it answered, wrongly).
fn exchange_error(e: &hyper_util::client::legacy::Error) -> UpstreamError {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_parse() || h.is_parse_status() || h.is_parse_too_large() {
                return UpstreamError::Garbage(format!("malformed HTTP answer: {h}"));
            }
        }
        cur = err.source();
    }
    let what = if e.is_connect() {
        "connect"
    } else {
        "exchange"
    };
    UpstreamError::Connect(format!("{what}: {}", root_cause(e)))
}

/// The innermost cause of an error, which says what happened (refused, reset…).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
