//! The one error type of `envelope`, and its mapping to return codes.
//!
//! Messages name the parameter at fault, never its value: request content stays out of logs.

use crate::crypto::CryptoError;
use crate::standard::ReturnCode;

/// Why an envelope could not be sealed or opened.
///
/// The server-side checks run in a fixed order (parse, signature, freshness, decryption), so
/// the first failing check decides the variant. [`EnvelopeError::return_code`] gives the
/// profile's return code (§4.6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// A required parameter is absent or an empty string; or `encKey` is absent while the
    /// client has no registered SM4 key. → 1001
    #[error("missing parameter `{0}`")]
    MissingParameter(&'static str),

    /// The body is not one JSON object (syntax error, other JSON type, trailing data). → 1002
    #[error("body is not a JSON object")]
    NotAnObject,

    /// A top-level parameter appears twice. Parsers disagree on which copy wins, so the
    /// envelope refuses both. → 1002
    #[error("duplicate parameter")]
    DuplicateParameter,

    /// A top-level parameter that the envelope does not define. → 1002
    #[error("unknown parameter")]
    UnknownParameter,

    /// A parameter's value is not a JSON string. → 1002
    #[error("parameter `{0}` is not a string")]
    NotAString(&'static str),

    /// A parameter is longer than its limit (bytes). → 1002
    #[error("parameter `{field}` is longer than {max} bytes")]
    TooLong {
        /// The parameter.
        field: &'static str,
        /// Its limit in bytes.
        max: usize,
    },

    /// A parameter has characters outside its alphabet (every value is free of `&`, which
    /// keeps the canonical string unambiguous), an unknown `encType`/`signType`, a timestamp
    /// that is not a number, `encKey` with `encType` `NONE`, or business content that is not
    /// a JSON object. → 1002
    #[error("parameter `{0}` has a bad format")]
    BadFormat(&'static str),

    /// The signature is not Base64, not a well-formed signature, or does not verify. → 1003
    #[error("signature does not verify")]
    SignatureInvalid,

    /// `timestamp` is further than the allowed skew from the server's clock. → 1004
    #[error("timestamp outside the accepted window")]
    Stale,

    /// This `nonce` was already used by this `appId` within the retention window. → 1004
    #[error("nonce already used")]
    Replayed,

    /// A response's `requestId` is not the one of the request it answers. → 1004
    #[error("response does not answer this request")]
    RequestIdMismatch,

    /// No registered client has this `appId`. → 1005
    #[error("unknown appId")]
    UnknownApp,

    /// The client (or the gateway, for a response) has no key for the requested sign type,
    /// e.g. `HMAC-SM3` from a client registered only with an SM2 key. → 1005
    #[error("no {0} registered for this client")]
    KeyUnknown(&'static str),

    /// `encType` `NONE` from a client that is not registered as a test client. → 1006
    #[error("plaintext envelopes are not allowed for this client")]
    PlaintextNotAllowed,

    /// The nonce store refused a new nonce because it is at its size cap (globally or for this
    /// client). Retrying later may succeed. → 1007
    #[error("nonce store full")]
    NonceStoreFull,

    /// The nonce store could not be reached (a remote backend). Retrying may succeed. → 9999
    #[error("nonce store unavailable")]
    NonceStoreUnavailable,

    /// `encKey` or `bizContent` could not be decoded or decrypted: bad Base64, a bad SM2
    /// ciphertext or one to another key, an SM4 key that is not 16 bytes, bad SM4 padding,
    /// or decrypted bytes that are not JSON. The string says which step. → 1008
    #[error("decryption failed: {0}")]
    DecryptFailed(&'static str),

    /// Sealing failed: the OS RNG failed, or the given values could not form an envelope
    /// (see the inner error). → 9999
    #[error("sealing failed: {0}")]
    Seal(#[from] CryptoError),

    /// An envelope struct did not serialise to a JSON object (a bug, not an input). → 9999
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl EnvelopeError {
    /// The return code of GB/T 38963 Annex B (profile §4.6) for this error.
    pub fn return_code(&self) -> ReturnCode {
        match self {
            Self::MissingParameter(_) => ReturnCode::MissingParameter,
            Self::NotAnObject
            | Self::DuplicateParameter
            | Self::UnknownParameter
            | Self::NotAString(_)
            | Self::TooLong { .. }
            | Self::BadFormat(_) => ReturnCode::BadFormat,
            Self::SignatureInvalid => ReturnCode::SignatureInvalid,
            Self::Stale | Self::Replayed | Self::RequestIdMismatch => ReturnCode::ExpiredOrReplayed,
            Self::UnknownApp | Self::KeyUnknown(_) => ReturnCode::UnknownApp,
            Self::PlaintextNotAllowed => ReturnCode::NoPermission,
            Self::NonceStoreFull => ReturnCode::RateLimited,
            Self::DecryptFailed(_) => ReturnCode::DecryptFailed,
            Self::NonceStoreUnavailable | Self::Seal(_) | Self::Internal(_) => {
                ReturnCode::SystemError
            }
        }
    }

    /// Whether sending the same request again (with a fresh nonce and timestamp) may succeed.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::NonceStoreFull | Self::NonceStoreUnavailable | Self::Seal(CryptoError::Rng)
        )
    }

    /// Whether the fault lies with the gateway rather than the caller's message.
    pub fn is_gateway_fault(&self) -> bool {
        matches!(
            self,
            Self::NonceStoreUnavailable | Self::Seal(_) | Self::Internal(_)
        )
    }
}
