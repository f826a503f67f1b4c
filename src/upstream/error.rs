//! The errors of calling a region, and their mapping to return codes.
//!
//! Messages name what went wrong with the exchange, never the business content.

use crate::envelope::EnvelopeError;
use crate::standard::{ReturnCode, Side};

/// Why a call to a region gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// No answer within the deadline (of the attempt or of the whole call). The region may
    /// have acted on the request. → 9001, retryable.
    #[error("upstream timed out")]
    Timeout,

    /// The connection could not be made (refused, unreachable, TLS handshake failed), or
    /// broke before an answer arrived. → 9001, retryable.
    #[error("upstream connection failed: {0}")]
    Connect(String),

    /// The region's circuit breaker is open: no call was made. → 9001, not retried (the
    /// point is to stop calling).
    #[error("upstream circuit open")]
    CircuitOpen,

    /// The region answered with an HTTP error status and a body that is not an envelope
    /// (a proxy's error page, a 404 for a wrong base URL). → 9002; retryable for 502, 503
    /// and 504.
    #[error("upstream answered HTTP {0}")]
    Status(u16),

    /// The region answered with something that is not a valid answer: not an envelope, a
    /// signature that does not verify with its key, an answer to another request, an
    /// unknown return code, or business content that breaks the standard. → 9002.
    #[error("upstream answered garbage: {0}")]
    Garbage(String),

    /// The region answered well-formed and, for a national region, signed (a dialect's
    /// answer translated), but this answer's business content breaks the standard: one
    /// record's fault, not the region's health, so the breaker takes it as an answer (the
    /// region is up), not a failure (five bad records of one person opened the breaker for
    /// the whole region). → 9002, not retried.
    #[error("upstream answer breaks the standard: {0}")]
    Invalid(String),

    /// The region answered, signed, with a return code other than success. The code is
    /// passed through when it concerns the caller's request or the person (1001, 1002,
    /// 2xxx, 3xxx, 4002); codes about the gateway's own link to the region (1003 to 1008)
    /// and the region's internal failures (9xxx) become 9002.
    #[error("upstream answered {code}")]
    Business {
        /// The region's return code.
        code: ReturnCode,
        /// The region's message.
        msg: String,
    },

    /// The gateway could not build the request (the OS random number generator failed, or
    /// the business content is not a JSON object). → 9999.
    #[error("cannot seal the request: {0}")]
    Seal(EnvelopeError),

    /// The gateway could not put the request in the region's dialect: a field the
    /// signature covers is missing, or the codec cannot encode a value. No call was made;
    /// the fault is the gateway's (its dialect file), so the region's breaker does not
    /// count it. → 9999, not retried.
    #[error("cannot build the region's request: {0}")]
    Build(String),
}

impl UpstreamError {
    /// The return code the caller gets.
    pub fn return_code(&self) -> ReturnCode {
        match self {
            Self::Timeout | Self::Connect(_) | Self::CircuitOpen => ReturnCode::UpstreamTimeout,
            Self::Status(_) | Self::Garbage(_) | Self::Invalid(_) => ReturnCode::UpstreamFailed,
            Self::Business { code, .. } => match code {
                ReturnCode::SignatureInvalid
                | ReturnCode::ExpiredOrReplayed
                | ReturnCode::UnknownApp
                | ReturnCode::NoPermission
                | ReturnCode::RateLimited
                | ReturnCode::DecryptFailed
                | ReturnCode::UpstreamTimeout
                | ReturnCode::UpstreamFailed
                | ReturnCode::SystemError
                | ReturnCode::Success
                | ReturnCode::CorrectionAccepted => ReturnCode::UpstreamFailed,
                other => *other,
            },
            Self::Seal(_) | Self::Build(_) => ReturnCode::SystemError,
        }
    }

    /// Whether sending the same request again may succeed. Only idempotent calls are
    /// retried, whatever this says.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Timeout | Self::Connect(_) => true,
            Self::Status(s) => matches!(s, 502..=504),
            Self::Business { code, .. } => matches!(
                code,
                ReturnCode::SystemError | ReturnCode::UpstreamTimeout | ReturnCode::UpstreamFailed
            ),
            Self::CircuitOpen
            | Self::Garbage(_)
            | Self::Invalid(_)
            | Self::Seal(_)
            | Self::Build(_) => false,
        }
    }

    /// Whose fault it is.
    pub fn side(&self) -> Side {
        match self {
            Self::Seal(_) | Self::Build(_) => Side::Gateway,
            Self::Business { .. } if self.return_code() != ReturnCode::UpstreamFailed => {
                Side::Client
            }
            _ => Side::Upstream,
        }
    }

    /// Whether the error counts against the region's health (the circuit breaker): the
    /// region did not answer, or answered with a failure of its own. A business refusal
    /// (unknown person, bad ticket) is a healthy answer.
    pub fn is_upstream_failure(&self) -> bool {
        match self {
            Self::Timeout | Self::Connect(_) | Self::Status(_) | Self::Garbage(_) => true,
            Self::Business { code, .. } => matches!(
                code,
                ReturnCode::SystemError | ReturnCode::UpstreamTimeout | ReturnCode::UpstreamFailed
            ),
            Self::CircuitOpen | Self::Invalid(_) | Self::Seal(_) | Self::Build(_) => false,
        }
    }
}

/// An upstream's configuration is invalid; every problem is listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid upstream configuration for region {region}:\n  {}", .problems.join("\n  "))]
pub struct UpstreamConfigError {
    /// The region configured.
    pub region: String,
    /// Every problem found.
    pub problems: Vec<String>,
}
