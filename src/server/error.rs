//! The one place an error becomes an answer: [`GatewayError`] knows its return code, its
//! HTTP status (from the standard's table), whose fault it is and whether a retry may help.
//! Internals never reach a client: an internal error answers 9999 with a generic message,
//! and the detail goes to the log.

use crate::auth::AuthError;
use crate::envelope::EnvelopeError;
use crate::national::validate::Report;
use crate::standard::{ReturnCode, Side, Standard};

/// Everything that can stop a request.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The envelope: missing or bad parameters, signature, replay, decryption.
    #[error("{0}")]
    Envelope(#[from] EnvelopeError),
    /// Who is calling: unknown client, token, mTLS identity, permission.
    #[error("{0}")]
    Auth(#[from] AuthError),
    /// The business content does not conform to the standard (1001/1002).
    #[error("business content is invalid: {}", first_violation(.0))]
    Invalid(Report),
    /// Over a rate limit (1007).
    #[error("rate limit exceeded")]
    RateLimited {
        /// Seconds until a request may succeed.
        retry_after_secs: u64,
    },
    /// A return code decided by the domain (routing, codes, tickets, a region's answer).
    #[error("{msg}")]
    Domain {
        /// The code.
        code: ReturnCode,
        /// A message safe to show the caller (no personal data).
        msg: String,
    },
    /// The request body is over the configured limit (1002, HTTP 413).
    #[error("request body over {0} bytes")]
    BodyTooLarge(usize),
    /// No such endpoint (1002, HTTP 404).
    #[error("no such endpoint")]
    NotFound,
    /// Not POST (1002, HTTP 405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Too many requests in flight: shed (9999, HTTP 503).
    #[error("the gateway is overloaded, retry later")]
    Shed,
    /// The request's deadline passed inside the gateway (9001, HTTP 504).
    #[error("deadline exceeded")]
    Deadline,
    /// The gateway's own fault (9999). The detail is logged, never shown.
    #[error("internal error")]
    Internal(String),
}

fn first_violation(r: &Report) -> String {
    r.violations
        .first()
        .map(|v| {
            format!(
                "{} {}: {}",
                v.code,
                if v.path.is_empty() {
                    "(message)"
                } else {
                    &v.path
                },
                v.message
            )
        })
        .unwrap_or_default()
}

impl GatewayError {
    /// The standard return code.
    pub fn return_code(&self) -> ReturnCode {
        match self {
            Self::Envelope(e) => e.return_code(),
            Self::Auth(e) => e.return_code(),
            Self::Invalid(r) => r.return_code(),
            Self::RateLimited { .. } => ReturnCode::RateLimited,
            Self::Domain { code, .. } => *code,
            Self::BodyTooLarge(_) | Self::NotFound | Self::MethodNotAllowed => {
                ReturnCode::BadFormat
            }
            Self::Shed | Self::Internal(_) => ReturnCode::SystemError,
            Self::Deadline => ReturnCode::UpstreamTimeout,
        }
    }

    /// The HTTP status: the standard's, except where HTTP has a more exact one.
    pub fn http_status(&self, std: &Standard) -> u16 {
        match self {
            Self::BodyTooLarge(_) => 413,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Shed => 503,
            _ => std.return_code(self.return_code()).http,
        }
    }

    /// Whose fault it is.
    pub fn side(&self, std: &Standard) -> Side {
        match self {
            Self::Internal(_) | Self::Shed => Side::Gateway,
            _ => std.return_code(self.return_code()).side,
        }
    }

    /// Seconds a client should wait before retrying, when a retry may help.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs } => Some((*retry_after_secs).max(1)),
            // A full replay store is a 1007 too: its places free as nonces expire.
            Self::Shed | Self::Envelope(EnvelopeError::NonceStoreFull) => Some(1),
            _ => None,
        }
    }

    /// The caller-facing form of an error shared by several waiters (the cache's single
    /// flight): same code, same public message.
    pub fn from_shared(e: &GatewayError) -> Self {
        match e {
            Self::RateLimited { retry_after_secs } => Self::RateLimited {
                retry_after_secs: *retry_after_secs,
            },
            Self::Deadline => Self::Deadline,
            other => Self::Domain {
                code: other.return_code(),
                msg: other.public_message(),
            },
        }
    }

    /// The message the caller sees: at most [`MAX_MSG_LEN`](crate::envelope::MAX_MSG_LEN)
    /// bytes, cut on a character boundary, so that the answer can always be sealed (a
    /// message echoing a long key of Chinese characters once overflowed it, and the caller
    /// got an unsigned 9999 instead of its 1002).
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => "internal error".to_owned(),
            other => {
                let mut m = other.to_string();
                // `&` and control characters are not allowed in `msg` (canonical string).
                m.retain(|c| c != '&' && !c.is_control());
                let mut cut = m.len().min(crate::envelope::MAX_MSG_LEN);
                while !m.is_char_boundary(cut) {
                    cut -= 1;
                }
                m.truncate(cut);
                m
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_1007_says_when_to_retry() {
        let limited = GatewayError::RateLimited {
            retry_after_secs: 0,
        };
        let full = GatewayError::Envelope(EnvelopeError::NonceStoreFull);
        assert_eq!(full.return_code(), ReturnCode::RateLimited);
        assert_eq!(full.retry_after(), Some(1), "a full replay store");
        assert_eq!(limited.retry_after(), Some(1), "at least a second");
        assert_eq!(GatewayError::Shed.retry_after(), Some(1));
        assert_eq!(GatewayError::Deadline.retry_after(), None);
    }

    #[test]
    fn a_public_message_always_fits_the_envelope() {
        let key = crate::crypto::SigningKey::generate().unwrap();
        for unit in ["键", "k", "é", "𝄞"] {
            let e = GatewayError::Domain {
                code: ReturnCode::BadFormat,
                msg: format!("{}: unknown field", unit.repeat(600)),
            };
            let m = e.public_message();
            assert!(m.len() <= crate::envelope::MAX_MSG_LEN, "{} bytes", m.len());
            assert!(m.starts_with(unit), "{m}");
            // Cut on a boundary, and no shorter than it must be.
            assert!(
                m.len() + unit.len() > crate::envelope::MAX_MSG_LEN,
                "{} bytes",
                m.len()
            );
            // And it seals: the caller gets its signed 1002.
            let session = crate::envelope::Session::for_rejected_request(None);
            crate::envelope::seal_response(&session, &key, e.return_code(), &m, None, 1).unwrap();
        }
        let short = GatewayError::Domain {
            code: ReturnCode::BadFormat,
            msg: "a&b\nc".into(),
        };
        assert_eq!(short.public_message(), "abc");
    }
}
