//! PHIC1 national code tokens: issue, recognise and verify (DESIGN.md §2 mechanism 3, §3).
//!
//! On the `verifyCode` path this comes right after the envelope is decoded: the raw
//! scanned content goes to [`format`](mod@format) to find out what it is (a PHIC1 token, a PHIC1 URL,
//! or later a regional code), and a PHIC1 token goes to [`Verifier`], which checks it
//! offline against the [`crate::trust`] registry.
//!
//! Token: `PHIC1.` + base64url-nopad(payload JSON) + `.` + base64url-nopad(DER signature),
//! the signature being SM3withSM2 over the ASCII bytes of `PHIC1.` + base64url(payload).
//! The payload holds `v`, `iss`, `kid`, `cid`, `col`, `iat`, `exp` and optionally `nc`:
//! no name, no ID number; any other field makes the token invalid.
//!
//! Verification order, and why: parse (3001) → issuer and key in the trust list (3003) →
//! key status and signature (3004) → time (3002). The token's own times are looked at
//! only after its signature verifies, so a forger learns nothing about the validity
//! window from the answers, and a forged token is never reported as merely "expired".

pub mod format;
pub mod token;
pub mod url;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::standard::ReturnCode;

pub use format::{CodeFormat, Phic1Format, Recognised, ids_match_token, recognise_any};
pub use token::{
    Claims, DEFAULT_MAX_LIFETIME_SECS, DEFAULT_SKEW_SECS, IssuerKey, TokenClaims, VerifiedCode,
    Verifier, VerifierConfig, issue,
};
pub use url::{CodeUrl, valid_host};

/// Largest code content accepted, in bytes. Longer content is 3001 before any decoding.
pub const MAX_CONTENT_BYTES: usize = 4096;

/// Largest decoded payload JSON accepted, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 1024;

/// Errors of code issuing and verification. [`CodeError::return_code`] maps each to the
/// standard return code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// The content is longer than [`MAX_CONTENT_BYTES`]. (3001)
    #[error("code content too long: {0} bytes")]
    TooLong(usize),
    /// The content is not a well-formed PHIC1 token or URL: wrong prefix, segments,
    /// Base64, JSON, a missing, unknown or out-of-range field. (3001)
    #[error("malformed code: {0}")]
    Malformed(&'static str),
    /// The URL's unsigned `iss`/`cid`/`nc` do not match the signed token it carries. (3001)
    #[error("URL parameters do not match the token")]
    UrlMismatch,
    /// The content is a code the gateway cannot check offline (a URL without `pc`, or
    /// a format with no token). (3001 when it reaches a client; the gateway routes it
    /// to the issuer's back-end instead.)
    #[error("code content carries no verifiable token")]
    NoToken,
    /// The trust list has no issuer with the token's `iss`. (3003)
    #[error("issuer not trusted")]
    UnknownIssuer,
    /// The issuer has no key with the token's `kid`. (3003)
    #[error("issuer key not trusted")]
    UnknownKey,
    /// The key's validity window does not cover now, or the token's `iat`. (3003)
    #[error("issuer key not valid at this time")]
    KeyNotValid,
    /// The key is revoked, in the trust list or locally. (3004)
    #[error("issuer key revoked")]
    KeyRevoked,
    /// The signature is not valid DER or does not verify under the key. (3004)
    #[error("code signature invalid")]
    BadSignature,
    /// `exp` has passed (beyond the configured skew). (3002)
    #[error("code expired")]
    Expired,
    /// `iat` is in the future (beyond the configured skew). (3002)
    #[error("code not yet valid")]
    NotYetValid,
    /// [`issue`] was given claims that would make an invalid token (`exp <= iat`, or a
    /// lifetime over the maximum). A gateway bug, not a client's. (9999)
    #[error("invalid claims: {0}")]
    InvalidClaims(&'static str),
}

impl CodeError {
    /// The standard return code for this error.
    pub fn return_code(&self) -> ReturnCode {
        match self {
            CodeError::TooLong(_)
            | CodeError::Malformed(_)
            | CodeError::UrlMismatch
            | CodeError::NoToken => ReturnCode::CodeInvalid,
            CodeError::UnknownIssuer | CodeError::UnknownKey | CodeError::KeyNotValid => {
                ReturnCode::CodeIssuerUntrusted
            }
            CodeError::KeyRevoked | CodeError::BadSignature => ReturnCode::CodeSignatureInvalid,
            CodeError::Expired | CodeError::NotYetValid => ReturnCode::CodeExpired,
            CodeError::InvalidClaims(_) => ReturnCode::SystemError,
        }
    }
}

/// Code colour (`col`, GB/T 38962 codeColor; profile §3, PHIC.04.002).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Colour {
    /// `00` 绿码.
    Green,
    /// `01` 黄码.
    Yellow,
    /// `10` 红码.
    Red,
    /// `20` not assessed / not assigned (无法判定/未赋码).
    Unknown,
    /// `90` grey or another non-standard colour (灰码/其他; proposed in the profile,
    /// PHIC.04.002, for the grey, orange and purple codes seen in the field).
    Grey,
}

impl Colour {
    /// Parse the two-digit wire value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "00" => Some(Colour::Green),
            "01" => Some(Colour::Yellow),
            "10" => Some(Colour::Red),
            "20" => Some(Colour::Unknown),
            "90" => Some(Colour::Grey),
            _ => None,
        }
    }

    /// The two-digit wire value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Colour::Green => "00",
            Colour::Yellow => "01",
            Colour::Red => "10",
            Colour::Unknown => "20",
            Colour::Grey => "90",
        }
    }
}

/// A 32-character lowercase hex id (`cid`, `nc`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CodeId(String);

impl CodeId {
    /// Parse exactly 32 lowercase hex digits.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| CodeId(s.to_owned()))
    }

    /// A fresh random id (128 bits from the operating system's generator).
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        Ok(CodeId(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The validation clock: where "now" comes from when checking `iat`/`exp`.
pub trait Clock: Send + Sync {
    /// Current time, Unix seconds.
    fn now_unix(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that says what it is told: for tests and for re-checking a code "as of" a
/// past instant.
#[derive(Debug, Default)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    /// A clock standing at `now` (Unix seconds).
    pub fn new(now: i64) -> Self {
        FixedClock(AtomicI64::new(now))
    }

    /// Move the clock to `now`.
    pub fn set(&self, now: i64) {
        self.0.store(now, Ordering::SeqCst);
    }

    /// Move the clock by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_unix(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
