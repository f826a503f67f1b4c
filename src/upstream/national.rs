//! [`NationalUpstream`]: a region that speaks the national envelope.

use std::sync::Arc;

use http::Method;
use serde::Deserialize;
use serde_json::Value;

use crate::crypto::{EncryptionKey, MacKey, SigningKey, Sm4Key, VerifyingKey};
use crate::envelope::{
    EnvelopeLimits, RequestEncryption, RequestHeader, RequestSigner, open_response, random_id,
    seal_request,
};
use crate::national::validate::{Context, validate_value};
use crate::standard::{Direction, ReturnCode, ServiceKind, ServiceName, Standard};

use super::transport::Transport;
use super::{
    BoxFuture, BreakerState, CircuitBreaker, Upstream, UpstreamConfigError, UpstreamError,
};

/// Interface version sent in `version`.
pub const NATIONAL_VERSION: &str = "1.0";

/// Largest answer body read from a region, bytes.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 2 << 20;

/// Timing, retry and breaker settings of one upstream. Every field has a default; units are
/// in the names.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamPolicy {
    /// Time to establish a connection (TCP and TLS), milliseconds.
    pub connect_timeout_ms: u64,
    /// Time for one attempt, from sending to the whole answer, milliseconds.
    pub attempt_timeout_ms: u64,
    /// Time for the whole call, retries included, milliseconds.
    pub deadline_ms: u64,
    /// Attempts at most for an idempotent call (1: never retry).
    pub max_attempts: u32,
    /// Pause before a retry, milliseconds.
    pub retry_backoff_ms: u64,
    /// Retries allowed per call in the budget window (0.1: at most 10 % extra calls).
    pub retry_budget_ratio: f64,
    /// Retries allowed per budget window whatever the traffic.
    pub retry_budget_min: u32,
    /// Length of the retry budget window, milliseconds.
    pub retry_budget_window_ms: u64,
    /// Consecutive failures that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before a probe, milliseconds.
    pub breaker_cool_down_ms: u64,
    /// How long an idle pooled connection is kept, milliseconds.
    pub pool_idle_timeout_ms: u64,
    /// Idle pooled connections kept per host.
    pub pool_max_idle_per_host: usize,
}

impl Default for UpstreamPolicy {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 1_000,
            attempt_timeout_ms: 2_000,
            deadline_ms: 3_000,
            max_attempts: 2,
            retry_backoff_ms: 50,
            retry_budget_ratio: 0.1,
            retry_budget_min: 10,
            retry_budget_window_ms: 10_000,
            breaker_failures: 5,
            breaker_cool_down_ms: 5_000,
            pool_idle_timeout_ms: 90_000,
            pool_max_idle_per_host: 32,
        }
    }
}

impl UpstreamPolicy {
    /// Every problem with the settings.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, v) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("attempt_timeout_ms", self.attempt_timeout_ms),
            ("deadline_ms", self.deadline_ms),
            ("retry_budget_window_ms", self.retry_budget_window_ms),
        ] {
            if v == 0 {
                out.push(format!("{name} must be positive"));
            }
        }
        // Each is added to the clock: a value past any sensible wait would overflow it.
        for (name, v) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("attempt_timeout_ms", self.attempt_timeout_ms),
            ("deadline_ms", self.deadline_ms),
            ("retry_backoff_ms", self.retry_backoff_ms),
            ("retry_budget_window_ms", self.retry_budget_window_ms),
            ("breaker_cool_down_ms", self.breaker_cool_down_ms),
            ("pool_idle_timeout_ms", self.pool_idle_timeout_ms),
        ] {
            if v > super::MAX_WAIT_MS {
                out.push(format!(
                    "{name} must be at most {} (10 minutes)",
                    super::MAX_WAIT_MS
                ));
            }
        }
        if self.max_attempts == 0 {
            out.push("max_attempts must be at least 1".to_owned());
        }
        if self.breaker_failures == 0 {
            out.push("breaker_failures must be at least 1".to_owned());
        }
        if !(0.0..=1.0).contains(&self.retry_budget_ratio) {
            out.push("retry_budget_ratio must be between 0 and 1".to_owned());
        }
        out
    }
}

/// Who the gateway is to a region: its `appId` and keys, as the region registered them.
/// `Debug` hides the keys.
#[derive(Debug, Clone, Default)]
pub struct ClientIdentity {
    /// The gateway's `appId` at the region.
    pub app_id: String,
    /// SM2 signing key: used for declarations and corrections (non-repudiation), and for
    /// everything when there is no MAC key.
    pub sm2_key: Option<SigningKey>,
    /// HMAC-SM3 key: used for queries and code services when present.
    pub mac_key: Option<MacKey>,
    /// Pre-shared SM4 key for `bizContent`.
    pub sm4_key: Option<Sm4Key>,
    /// The region's SM2 encryption key: a fresh SM4 key per request (`encKey`) when there
    /// is no pre-shared one.
    pub region_encryption_key: Option<EncryptionKey>,
    /// Send `encType` NONE when neither key is given (test regions only).
    pub insecure_plaintext: bool,
}

/// Everything a [`NationalUpstream`] is built from.
#[derive(Debug, Clone)]
pub struct NationalUpstreamConfig {
    /// The region's GB/T 2260 code.
    pub region: String,
    /// Base URL of the region's national endpoints; calls go to
    /// `{base_url}/phic/v1/{service}`. `https://`, or `http://` to a loopback address.
    pub base_url: String,
    /// The gateway's identity at the region.
    pub identity: ClientIdentity,
    /// Verifies the region's SM2-signed answers.
    pub region_key: VerifyingKey,
    /// PEM certificates of the CAs that may sign the region's TLS certificate (required
    /// for `https://`).
    pub ca_pem: Option<String>,
    /// Timing, retries and breaker.
    pub policy: UpstreamPolicy,
    /// Limits applied to the answer envelope.
    pub limits: EnvelopeLimits,
    /// Largest answer body, bytes.
    pub max_response_bytes: usize,
    /// The breaker of the upstream this one replaces (a reload, same region and URL): its
    /// state carries over, so that a region that is down is not called afresh.
    pub breaker: Option<Arc<CircuitBreaker>>,
}

impl NationalUpstreamConfig {
    /// A configuration with the default policy and limits.
    pub fn new(
        region: impl Into<String>,
        base_url: impl Into<String>,
        identity: ClientIdentity,
        region_key: VerifyingKey,
    ) -> Self {
        Self {
            region: region.into(),
            base_url: base_url.into(),
            identity,
            region_key,
            ca_pem: None,
            policy: UpstreamPolicy::default(),
            limits: EnvelopeLimits::default(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            breaker: None,
        }
    }
}

/// A region that speaks the national envelope (see the module docs of `upstream`).
pub struct NationalUpstream {
    transport: Transport,
    identity: ClientIdentity,
    region_key: VerifyingKey,
    limits: EnvelopeLimits,
    std: Arc<Standard>,
}

impl std::fmt::Debug for NationalUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NationalUpstream")
            .field("region", &self.transport.region())
            .field("app_id", &self.identity.app_id)
            .finish_non_exhaustive()
    }
}

impl NationalUpstream {
    /// Checks the configuration and builds the pooled client. Needs a Tokio runtime only
    /// when called (the pool starts its idle timer lazily).
    pub fn new(config: NationalUpstreamConfig) -> Result<Self, UpstreamConfigError> {
        let mut problems = Vec::new();
        let id = &config.identity;
        if id.app_id.is_empty() {
            problems.push("app_id is empty".to_owned());
        }
        if id.sm2_key.is_none() && id.mac_key.is_none() {
            problems.push("the identity needs an SM2 key or a MAC key".to_owned());
        }
        if id.sm4_key.is_none() && id.region_encryption_key.is_none() && !id.insecure_plaintext {
            problems
                .push("the identity needs an SM4 key or the region's encryption key".to_owned());
        }
        let transport = Transport::new(
            config.region.clone(),
            &config.base_url,
            config.ca_pem.as_deref(),
            &config.policy,
            config.max_response_bytes,
            config.breaker.clone(),
            problems,
        )?;
        Ok(Self {
            transport,
            identity: config.identity,
            region_key: config.region_key,
            limits: config.limits,
            std: Standard::embedded(),
        })
    }

    /// The breaker's state.
    pub fn breaker_state(&self) -> BreakerState {
        self.transport.breaker_state()
    }

    /// HTTP attempts made so far (first tries and retries).
    pub fn attempts(&self) -> u64 {
        self.transport.attempts()
    }

    /// The whole call: breaker, deadlines, retries.
    async fn call_inner(
        &self,
        service: ServiceName,
        biz: &Value,
        idempotent: bool,
        key: Option<&str>,
    ) -> Result<Value, UpstreamError> {
        // One requestId for every attempt: it is what makes a repeat harmless. For a keyed
        // call it is the key, so that a retry by the caller is a repeat too.
        let request_id = match key {
            Some(k) => k.to_owned(),
            None => random_id().map_err(UpstreamError::Seal)?,
        };
        self.transport
            .call(service, idempotent, || {
                self.attempt(service, biz, &request_id)
            })
            .await
    }

    /// One HTTP exchange.
    async fn attempt(
        &self,
        service: ServiceName,
        biz: &Value,
        request_id: &str,
    ) -> Result<Value, UpstreamError> {
        let id = &self.identity;
        let nonce = random_id().map_err(UpstreamError::Seal)?;
        let header = RequestHeader {
            app_id: &id.app_id,
            service: service.as_str(),
            version: NATIONAL_VERSION,
            request_id,
            nonce: &nonce,
            timestamp_ms: now_ms(),
        };
        let declaration = matches!(
            self.std.service(service).kind,
            ServiceKind::Declaration | ServiceKind::Correction
        );
        let signer = match (&id.sm2_key, &id.mac_key) {
            (Some(k), Some(_)) if declaration => RequestSigner::Sm2(k),
            (_, Some(m)) => RequestSigner::HmacSm3(m),
            (Some(k), None) => RequestSigner::Sm2(k),
            // `new` refuses an identity with neither key.
            (None, None) => {
                return Err(UpstreamError::Seal(
                    crate::envelope::EnvelopeError::KeyUnknown("signing key"),
                ));
            }
        };
        let encryption = match (&id.sm4_key, &id.region_encryption_key) {
            (Some(k), _) => RequestEncryption::RegisteredKey(k),
            (None, Some(k)) => RequestEncryption::PerRequestKey(k),
            (None, None) => RequestEncryption::InsecurePlaintext,
        };
        let sealed = seal_request(&header, biz, signer, encryption).map_err(UpstreamError::Seal)?;
        let path = format!("/phic/v1/{}", service.as_str());
        let (status, body) = self
            .transport
            .exchange(Method::POST, &path, &[], sealed.body.into_bytes())
            .await?;
        let opened =
            match open_response(&body, &sealed.session, Some(&self.region_key), &self.limits) {
                Ok(o) => o,
                Err(_) if !status.is_success() => {
                    return Err(UpstreamError::Status(status.as_u16()));
                }
                Err(e) => return Err(UpstreamError::Garbage(format!("answer envelope: {e}"))),
            };
        let code = ReturnCode::parse(&opened.envelope.code).ok_or_else(|| {
            UpstreamError::Garbage("answer has an unknown return code".to_owned())
        })?;
        if !matches!(code, ReturnCode::Success | ReturnCode::CorrectionAccepted) {
            return Err(UpstreamError::Business {
                code,
                msg: opened.envelope.msg,
            });
        }
        let biz = opened
            .biz
            .ok_or_else(|| UpstreamError::Garbage("success without business content".to_owned()))?;
        let now = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
        let report = validate_value(
            &self.std,
            service,
            Direction::Response,
            &biz,
            &Context { now_unix: now },
        );
        if !report.is_valid() {
            return Err(UpstreamError::Invalid(format!(
                "at {}",
                report.paths_for_log()
            )));
        }
        Ok(biz)
    }
}

impl Upstream for NationalUpstream {
    fn region(&self) -> &str {
        self.transport.region()
    }

    fn breaker(&self) -> Option<(&str, Arc<CircuitBreaker>)> {
        Some(self.transport.breaker())
    }

    fn call<'a>(
        &'a self,
        service: ServiceName,
        biz: &'a Value,
        idempotent: bool,
    ) -> BoxFuture<'a, Result<Value, UpstreamError>> {
        Box::pin(self.call_inner(service, biz, idempotent, None))
    }

    fn call_keyed<'a>(
        &'a self,
        service: ServiceName,
        biz: &'a Value,
        key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<super::Reply, UpstreamError>> {
        Box::pin(async move {
            self.call_inner(service, biz, key.is_some(), key)
                .await
                .map(|biz| super::Reply {
                    biz,
                    losses: crate::translate::LossReport::default(),
                    holder: None,
                })
        })
    }
}

/// Unix milliseconds now (0 before 1970).
pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
