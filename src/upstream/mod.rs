//! How the gateway calls a region: the "relay" step of the request path (DESIGN.md §5),
//! after the request is decoded, validated and missed the cache.
//!
//! [`Upstream`] is the one interface the relay uses, whatever the region speaks. A national
//! region is a [`NationalUpstream`]: it seals the business content in the national envelope
//! as the gateway's own client identity, sends it over a pooled hyper client (HTTP/1.1 or
//! HTTP/2, rustls with a configured CA, or plain HTTP on loopback for development), and opens
//! and verifies the answer with the region's public key. Around each call:
//!
//! - a deadline for the whole call, and one per attempt (`tokio::time`);
//! - retries only for idempotent calls and retryable errors, within a retry budget
//!   ([`RetryBudget`]: a share of recent calls plus a minimum), so retries cannot multiply
//!   the load on a region that is already failing;
//! - a circuit breaker per region ([`CircuitBreaker`]): after N consecutive failures it
//!   rejects calls for a cool-down without touching the network, then lets one probe through.
//!
//! Errors say whose fault they are and whether a retry may help ([`UpstreamError`]); they
//! become return codes 9001/9002 (or the region's own business code) in `return_code`.
//! A region whose back-end speaks its own API is a [`DialectUpstream`]: the same transport,
//! with the dialect's translation, signing and codec in place of the envelope.
//!
//! Files: `transport` (what both share), `national`, `dialect`, `breaker`, `budget`, `error`.

mod breaker;
mod budget;
mod dialect;
mod error;
mod national;
mod transport;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use crate::standard::ServiceName;
use crate::translate::LossReport;

pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker, Permit};
pub use budget::{RetryBudget, RetryBudgetConfig};
pub use dialect::{
    DialectCredentials, DialectUpstream, DialectUpstreamConfig, WireRequest, sign_request,
};
pub use error::{UpstreamConfigError, UpstreamError};
pub use national::{
    ClientIdentity, DEFAULT_MAX_RESPONSE_BYTES, NATIONAL_VERSION, NationalUpstream,
    NationalUpstreamConfig, UpstreamPolicy,
};

/// A boxed, sendable future (the trait stays object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The longest wait any upstream setting may name, in milliseconds (10 minutes): each is
/// added to the clock, and a larger one is a mistake, not a policy.
pub const MAX_WAIT_MS: u64 = 600_000;

/// Time a region has to acknowledge one status callback ([`Upstream::notify`]). The
/// delivery task gives a callback a little longer (`server::recognition`), so that this
/// timeout, which the region's breaker counts, ends it first.
pub const CALLBACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

tokio::task_local! {
    /// When the caller of the region calls in this future stops waiting for them.
    static CALLER_DEADLINE: tokio::time::Instant;
}

/// How long before the caller's deadline a call ends its attempt: its own timeout, which
/// the region's breaker counts, comes first.
pub const CALLER_MARGIN: std::time::Duration = std::time::Duration::from_millis(25);

/// The shortest wait of an attempt cut short by its caller's deadline that counts against
/// the region: a shorter one says more about the caller's time (a body that trickled in, a
/// gateway that stalled) than about the region.
pub const MIN_COUNTED_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs `f` knowing that its caller stops waiting at `deadline` (the request's deadline, a
/// cross-region query's; the earliest when nested). A region call inside ends its attempts
/// [`CALLER_MARGIN`] before it, with a timeout the region's circuit breaker counts (if the
/// attempt waited at least [`MIN_COUNTED_WAIT`]). Without this a region that hangs was
/// never counted: each call was dropped, unrecorded, when the caller gave up first (a
/// region's `timeout_ms` above the request's deadline, or a cross-region query's 3 s).
pub async fn within_caller_deadline<F: Future>(deadline: tokio::time::Instant, f: F) -> F::Output {
    let deadline = caller_deadline().map_or(deadline, |d| d.min(deadline));
    CALLER_DEADLINE.scope(deadline, f).await
}

/// Runs `f` until `deadline`, when it is dropped ([`tokio::time::timeout_at`]), with that
/// deadline as its caller's ([`within_caller_deadline`]): a region call inside ends first.
///
/// # Errors
/// [`tokio::time::error::Elapsed`] when `f` has not finished by `deadline`.
pub async fn until_deadline<F: Future>(
    deadline: tokio::time::Instant,
    f: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::time::timeout_at(deadline, within_caller_deadline(deadline, f)).await
}

/// The deadline [`within_caller_deadline`] set for the current future, if any: for a task
/// spawned on the caller's behalf, which does not inherit it.
pub fn caller_deadline() -> Option<tokio::time::Instant> {
    CALLER_DEADLINE.try_with(|d| *d).ok()
}

/// `f` with the current future's caller deadline, if it has one, for a task spawned on the
/// caller's behalf (a task does not inherit its spawner's task-locals): taken now, when the
/// future is made, not when the task first runs.
pub fn carry_caller_deadline<F: Future>(f: F) -> impl Future<Output = F::Output> {
    let deadline = caller_deadline();
    async move {
        match deadline {
            Some(d) => within_caller_deadline(d, f).await,
            None => f.await,
        }
    }
}

/// A region the gateway can call.
pub trait Upstream: Send + Sync {
    /// The region's GB/T 2260 code (for routing, metrics and logs).
    fn region(&self) -> &str;

    /// Calls `service` with the national business content `biz` (a JSON object that already
    /// passed validation) and gives the region's business answer.
    ///
    /// `idempotent` says the call may be sent again (declarations and corrections, whose
    /// `requestId` makes a repeat harmless); only then are retryable errors retried. A
    /// success is return code `0`, or `4001` for a correction; any other code from the
    /// region is [`UpstreamError::Business`].
    fn call<'a>(
        &'a self,
        service: ServiceName,
        biz: &'a Value,
        idempotent: bool,
    ) -> BoxFuture<'a, Result<Value, UpstreamError>>;

    /// [`Upstream::call`], with what the translations lost on the way (empty for a region
    /// that speaks the national model).
    fn call_reported<'a>(
        &'a self,
        service: ServiceName,
        biz: &'a Value,
        idempotent: bool,
    ) -> BoxFuture<'a, Result<Reply, UpstreamError>> {
        Box::pin(async move {
            self.call(service, biz, idempotent).await.map(|biz| Reply {
                biz,
                losses: LossReport::default(),
                holder: None,
            })
        })
    }

    /// An idempotent call (a declaration, a correction) named by the caller's
    /// `(appId, requestId)` and its content: `key` is [`request_key`] of them. The request id the region
    /// sees is that key, the same for every attempt and for every retry by the caller, so
    /// that the region can recognise a repeat even when the gateway never saw its first
    /// answer (its deadline passed after the region acted). `None` is
    /// [`Upstream::call_reported`] of a call that is not idempotent.
    fn call_keyed<'a>(
        &'a self,
        service: ServiceName,
        biz: &'a Value,
        key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Reply, UpstreamError>> {
        self.call_reported(service, biz, key.is_some())
    }

    /// The base URL this upstream calls and its circuit breaker, for the upstream that
    /// replaces it on a reload (`None`: it has none to carry over).
    fn breaker(&self) -> Option<(&str, Arc<CircuitBreaker>)> {
        None
    }

    /// Whether the region takes status-change callbacks ([`Upstream::notify`]).
    fn takes_callbacks(&self) -> bool {
        false
    }

    /// Tells the region that one of its code holders changed colour elsewhere (the event
    /// of [`crate::link::outbox::CallbackEvent`], as JSON). `Ok` once the region
    /// acknowledged it (HTTP 2xx).
    fn notify<'a>(&'a self, _event: &'a Value) -> BoxFuture<'a, Result<(), UpstreamError>> {
        Box::pin(async {
            Err(UpstreamError::Business {
                code: crate::standard::ReturnCode::NoPermission,
                msg: "the region takes no callbacks".into(),
            })
        })
    }
}

/// The request id a region sees for the caller's `(app_id, request_id)` with the business
/// content whose [`crate::idempotency::fingerprint`] is `content`: 32 hex digits of SM3
/// over the three, with a label. A retry by the caller of the same request names the same
/// request at the region; the same requestId with other content (a caller that fixed what
/// the region refused; the gateway keeps only successful answers) is another request
/// there, not a replay of the refusal. It tells the region nothing of the caller's ids.
pub fn request_key(app_id: &str, request_id: &str, content: &[u8]) -> String {
    let mut material = b"hutong upstream request v2\0".to_vec();
    material.extend_from_slice(app_id.as_bytes());
    material.push(0);
    material.extend_from_slice(request_id.as_bytes());
    material.push(0);
    material.extend_from_slice(content);
    crate::crypto::to_hex(&crate::crypto::sm3(&material)[..16])
}

/// A region's business answer and the loss report of its translations.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The national business content.
    pub biz: Value,
    /// Fields that did not cross intact, both ways.
    pub losses: LossReport,
    /// The holder's full ID, when the region's answer carried it before masking (see
    /// [`HolderId`]); the gateway turns it into a pseudonym for the link registry.
    pub holder: Option<HolderId>,
}

/// A person's ID type and full number, as a region told the gateway. It lives only long
/// enough to become a pseudonym: it is never stored, and its `Debug` hides the number.
#[derive(Clone, PartialEq, Eq)]
pub struct HolderId {
    /// ID type code (`10`, …).
    pub id_type: String,
    /// The number, wiped from memory when dropped.
    pub id_no: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for HolderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HolderId")
            .field("id_type", &self.id_type)
            .field("id_no", &"(hidden)")
            .finish()
    }
}
