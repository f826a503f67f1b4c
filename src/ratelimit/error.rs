//! The one way a rate-limit check fails: [`Limited`].

use std::fmt;
use std::time::Duration;

use http::HeaderValue;

use crate::standard::ReturnCode;

/// Which limit refused a request. A bounded set, so it can label a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitScope {
    /// The per-IP limit, checked before authentication.
    Ip,
    /// The per-client (`appId`) limit, across all of the client's services.
    Client,
    /// The per-client, per-service limit.
    ClientService,
}

impl LimitScope {
    /// A short snake_case name, for logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Client => "client",
            Self::ClientService => "client_service",
        }
    }
}

impl fmt::Display for LimitScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request was over a limit. It is the caller's side and a retry may help after
/// [`Limited::retry_after`]; the rescue layer answers it with return code 1007
/// ([`Limited::return_code`]) and a `Retry-After` header ([`Limited::retry_after_header`]).
///
/// This is the module's only error: a struct rather than an enum because every refusal has
/// the same shape, and [`LimitScope`] says which limit it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("over the {scope} rate limit; retry after {retry_after:?}")]
pub struct Limited {
    /// How long until the refusing limit would admit one request (governor's
    /// `NotUntil::wait_time_from`). At most one refill interval, `1 / per_second`.
    pub retry_after: Duration,
    /// Which limit refused.
    pub scope: LimitScope,
}

impl Limited {
    /// The standard return code: 1007.
    pub const fn return_code(&self) -> ReturnCode {
        ReturnCode::RateLimited
    }

    /// `Retry-After` in whole seconds: [`Limited::retry_after`] rounded up, and at least 1
    /// (HTTP has no finer unit, and `0` would invite an immediate retry).
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
        secs.max(1)
    }

    /// The `Retry-After` header value: [`Limited::retry_after_secs`] as decimal digits.
    pub fn retry_after_header(&self) -> HeaderValue {
        HeaderValue::from(self.retry_after_secs())
    }
}
