//! Return codes of GB/T 38963 Annex B (profile §4.6).
//!
//! The numbering is a profile choice ([P]); `standard/return-codes.toml` holds each code's
//! meaning, HTTP status and the side at fault. The loader checks that the file and this enum
//! agree in both directions, so the gateway can name codes in Rust and still read their
//! metadata from data.

use std::fmt;

/// A return code of GB/T 38963 Annex B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReturnCode {
    /// `0`: success.
    Success,
    /// `1001`: a required parameter is missing.
    MissingParameter,
    /// `1002`: a parameter has the wrong type, format, length or value.
    BadFormat,
    /// `1003`: the envelope signature does not verify.
    SignatureInvalid,
    /// `1004`: the timestamp is outside the window, or the nonce was seen before.
    ExpiredOrReplayed,
    /// `1005`: the `appId` is not registered, or its credentials are invalid.
    UnknownApp,
    /// `1006`: the caller may not use this service or read this data.
    NoPermission,
    /// `1007`: the caller is over its rate limit.
    RateLimited,
    /// `1008`: `bizContent` or `encKey` could not be decrypted.
    DecryptFailed,
    /// `2001`: the person does not exist, or has no code.
    UserNotFound,
    /// `2002`: the person is not real-name verified, or must update their information.
    NotRealName,
    /// `2003`: the person has not authorised this access.
    NotAuthorised,
    /// `2004`: no health information exists for the person.
    NoHealthInfo,
    /// `3001`: the code content cannot be parsed or recognised.
    CodeInvalid,
    /// `3002`: the code has expired.
    CodeExpired,
    /// `3003`: the code's issuer or key is not trusted here.
    CodeIssuerUntrusted,
    /// `3004`: the code's signature does not verify, or its key is revoked.
    CodeSignatureInvalid,
    /// `3005`: the BizExtData ticket is invalid or expired.
    TicketInvalid,
    /// `4001`: the correction request was accepted.
    CorrectionAccepted,
    /// `4002`: the correction request is a duplicate.
    CorrectionDuplicate,
    /// `9001`: the upstream (issuing region or national platform) timed out.
    UpstreamTimeout,
    /// `9002`: the upstream answered with a failure or with garbage.
    UpstreamFailed,
    /// `9999`: an internal error of the gateway.
    SystemError,
}

impl ReturnCode {
    /// Every return code, in numeric order.
    pub const ALL: [ReturnCode; 23] = [
        Self::Success,
        Self::MissingParameter,
        Self::BadFormat,
        Self::SignatureInvalid,
        Self::ExpiredOrReplayed,
        Self::UnknownApp,
        Self::NoPermission,
        Self::RateLimited,
        Self::DecryptFailed,
        Self::UserNotFound,
        Self::NotRealName,
        Self::NotAuthorised,
        Self::NoHealthInfo,
        Self::CodeInvalid,
        Self::CodeExpired,
        Self::CodeIssuerUntrusted,
        Self::CodeSignatureInvalid,
        Self::TicketInvalid,
        Self::CorrectionAccepted,
        Self::CorrectionDuplicate,
        Self::UpstreamTimeout,
        Self::UpstreamFailed,
        Self::SystemError,
    ];

    /// The code as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "0",
            Self::MissingParameter => "1001",
            Self::BadFormat => "1002",
            Self::SignatureInvalid => "1003",
            Self::ExpiredOrReplayed => "1004",
            Self::UnknownApp => "1005",
            Self::NoPermission => "1006",
            Self::RateLimited => "1007",
            Self::DecryptFailed => "1008",
            Self::UserNotFound => "2001",
            Self::NotRealName => "2002",
            Self::NotAuthorised => "2003",
            Self::NoHealthInfo => "2004",
            Self::CodeInvalid => "3001",
            Self::CodeExpired => "3002",
            Self::CodeIssuerUntrusted => "3003",
            Self::CodeSignatureInvalid => "3004",
            Self::TicketInvalid => "3005",
            Self::CorrectionAccepted => "4001",
            Self::CorrectionDuplicate => "4002",
            Self::UpstreamTimeout => "9001",
            Self::UpstreamFailed => "9002",
            Self::SystemError => "9999",
        }
    }

    /// Parses a wire code; `None` for a code the standard does not define.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// The process exit status a command uses for this code: 0 for success (and 4001),
    /// otherwise a small number per class, so scripts can tell client errors from others.
    pub const fn exit_status(self) -> u8 {
        match self {
            Self::Success | Self::CorrectionAccepted => 0,
            Self::UpstreamTimeout | Self::UpstreamFailed => 3,
            Self::SystemError => 4,
            _ => 1,
        }
    }
}

impl fmt::Display for ReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose fault an outcome is (pingora's `ErrorSource`, in the standard's terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Not a fault: success, or an accepted request.
    None,
    /// The caller sent something wrong.
    Client,
    /// The region or platform behind the gateway failed.
    Upstream,
    /// The gateway itself failed.
    Gateway,
}

/// What `standard/return-codes.toml` says of one code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnCodeInfo {
    /// The code.
    pub code: ReturnCode,
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// HTTP status the gateway answers with.
    pub http: u16,
    /// Whose fault it is.
    pub side: Side,
    /// Whether the same request may succeed later.
    pub retry: bool,
    /// Evidence label.
    pub label: super::Label,
    /// Codes seen in the field for the same outcome.
    pub seen: String,
}
