//! Request signatures of the dialects that have their own (not the national envelope),
//! each as a region uses it (profile §4.2 and §6):
//!
//! - `hmac-sha256-concat` (Zhejiang parse-jkm style): a `sign` field,
//!   `HmacSHA256(key = appKey, appKey+bizData+…+version+secret)` in hex;
//! - `md5-date-password` (legacy provincial WebServices): a password field or header,
//!   lowercase hex `MD5(secret + yyyyMMdd)`, the date in Beijing time, with the caller's id
//!   beside it when the dialect names an id field;
//! - `xtif-sha256` (Guangdong TIF-style government gateway): headers `x-tif-paasid`,
//!   `x-tif-timestamp` (Unix seconds), `x-tif-nonce` and `x-tif-signature`, the lowercase
//!   hex `SHA-256(timestamp + token + nonce + timestamp)`.
//!
//! Pure: the caller brings the time and the nonce ([`Stamp`]) and its credentials, then
//! signs the dialect message before it is encoded; [`sign`] writes the body's fields and
//! returns the headers to add. An ingress verifies before translating, with the headers it
//! received and its clock. Digests are compared in constant time.

use md5::{Digest, Md5};
use ring::{digest, hmac};
use serde_json::Value;

use super::Signing;
use super::path;
use crate::national::time::Date;

/// The default tolerance, in seconds, between a signed timestamp (or date) and the
/// verifier's clock.
pub const DEFAULT_WINDOW_S: u32 = 300;

/// The headers of the TIF-style scheme.
pub const TIF_PAASID: &str = "x-tif-paasid";
/// Unix seconds of the signing.
pub const TIF_TIMESTAMP: &str = "x-tif-timestamp";
/// The one-time value.
pub const TIF_NONCE: &str = "x-tif-nonce";
/// The hex SHA-256 signature.
pub const TIF_SIGNATURE: &str = "x-tif-signature";

/// A caller's credentials at a region.
#[derive(Clone)]
pub struct Credentials<'a> {
    /// The caller's id at the region: the `x-tif-paasid`, the md5 scheme's id field.
    pub id: &'a str,
    /// The HMAC key (the appKey in Zhejiang style).
    pub key: &'a [u8],
    /// The shared secret: appended to the HMAC concatenation, put before the date of the
    /// MD5 password, the TIF paas token.
    pub secret: &'a str,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(..)")
    }
}

/// When a message is signed, and its one-time value: the engine has neither a clock nor
/// a random source, so the caller brings both.
#[derive(Debug, Clone, Copy)]
pub struct Stamp<'a> {
    /// Unix seconds.
    pub unix_s: i64,
    /// A value never used twice by this caller (the TIF nonce); ignored by the other
    /// schemes.
    pub nonce: &'a str,
}

/// Why a message could not be signed or its signature verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// A field the scheme signs is absent (or not a scalar or object).
    #[error("{0}: missing, but the signing scheme covers it")]
    MissingField(String),
    /// A header the scheme needs is absent or repeated.
    #[error("header {0}: missing or repeated")]
    MissingHeader(String),
    /// The message is not a JSON object (or a path to write through is not one).
    #[error("{0}: not an object")]
    NotObject(String),
    /// The signature is absent, malformed or wrong (return code 1003).
    #[error("{0}: signature invalid")]
    BadSignature(String),
    /// The signed time (or date) is outside the window around the verifier's clock
    /// (return code 1004).
    #[error("{0}: outside the accepted time window")]
    Stale(String),
    /// The message names another caller than the credentials' (return code 1005).
    #[error("{0}: not the caller these credentials are for")]
    WrongCaller(String),
    /// The scheme is not one this module computes (`national-sm2` is the envelope's).
    #[error("the dialect's signing scheme is not computed here")]
    Unsupported,
}

impl SignError {
    /// The national return code (Annex B) of a request that fails verification.
    pub fn return_code(&self) -> &'static str {
        match self {
            Self::MissingField(_) | Self::MissingHeader(_) | Self::BadSignature(_) => "1003",
            Self::Stale(_) => "1004",
            Self::WrongCaller(_) => "1005",
            Self::NotObject(_) => "1002",
            Self::Unsupported => "9999",
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equality of two byte strings in time independent of where they differ: both go
/// through one HMAC and `ring` compares the tags in constant time.
fn same(a: &[u8], b: &[u8]) -> bool {
    let k = hmac::Key::new(hmac::HMAC_SHA256, b"hutong: compare");
    hmac::verify(&k, a, hmac::sign(&k, b).as_ref()).is_ok()
}

/// Writes a signing field at `at`. A container it creates goes first in its parent: a
/// message is signed after its business content is written, and the credentials a SOAP
/// `Header` carries must come before the `Body` (SOAP 1.1). Containers that were there
/// already stay where they are.
fn put(msg: &mut Value, at: &str, v: String) -> Result<(), SignError> {
    if !msg.is_object() {
        return Err(SignError::NotObject("(message)".into()));
    }
    let segs: Vec<&str> = at.split('.').collect();
    // The first container on the path that does not exist yet, by its depth.
    let created = (1..segs.len()).find(|&i| path::get(msg, &segs[..i].join(".")).is_none());
    path::set(msg, at, Value::String(v)).map_err(SignError::NotObject)?;
    if let Some(depth) = created {
        let mut parent = &mut *msg;
        for seg in &segs[..depth - 1] {
            match parent.get_mut(*seg) {
                Some(p) => parent = p,
                None => return Ok(()),
            }
        }
        if let Some(m) = parent.as_object_mut() {
            let name = segs[depth - 1];
            if let Some(child) = m.shift_remove(name) {
                m.shift_insert(0, name.to_owned(), child);
            }
        }
    }
    Ok(())
}

fn concatenation(fields: &[String], msg: &Value, secret: &str) -> Result<String, SignError> {
    concatenation_as_sent(fields, msg, &SentText::default(), secret)
}

/// [`concatenation`], with each top-level object field as `sent` has its text, where it
/// has it.
fn concatenation_as_sent(
    fields: &[String],
    msg: &Value,
    sent: &SentText,
    secret: &str,
) -> Result<String, SignError> {
    if !msg.is_object() {
        return Err(SignError::NotObject("(message)".into()));
    }
    let mut out = String::new();
    for f in fields {
        match path::get(msg, f) {
            Some(Value::String(s)) => out.push_str(s),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => out.push_str(&v.to_string()),
            // A nested business object (`bizData`) is signed as its compact JSON text: the
            // gateway's own, or the sender's as it was sent.
            // `sent` holds top-level fields only: a dotted path is not looked up in it (a
            // top-level key spelt `body.data` is another field).
            Some(v @ Value::Object(_)) => match sent.0.get(f.as_str()).filter(|_| !f.contains('.'))
            {
                Some(raw) => out.push_str(raw.get()),
                None => out.push_str(&v.to_string()),
            },
            _ => return Err(SignError::MissingField(f.clone())),
        }
    }
    out.push_str(secret);
    Ok(out)
}

/// The text of each top-level field of a JSON message as it was sent. A sender signs an
/// object field (Beijing's `data`) over its own serialization, which may escape `/` (PHP)
/// or write `\uXXXX` and spaces (Python's defaults) where the gateway's compact JSON would
/// not: [`verify_as_sent`] checks the signature over this text, and then over the
/// gateway's.
#[derive(Debug, Default)]
pub struct SentText(std::collections::HashMap<String, Box<serde_json::value::RawValue>>);

impl SentText {
    /// The top-level fields of the JSON object `body` (none when it is not one).
    pub fn of_json(body: &[u8]) -> Self {
        serde_json::from_slice(body).map(Self).unwrap_or_default()
    }
}

/// The md5 scheme's password for the Beijing date of `unix_s`.
pub fn md5_date_password(secret: &str, unix_s: i64) -> String {
    let d = Date::beijing_today(unix_s);
    let mut h = Md5::new();
    h.update(secret.as_bytes());
    h.update(format!("{:04}{:02}{:02}", d.year, d.month, d.day).as_bytes());
    hex(&h.finalize())
}

/// The TIF signature: hex SHA-256 of `timestamp + token + nonce + timestamp`.
pub fn tif_signature(timestamp: &str, token: &str, nonce: &str) -> String {
    let text = format!("{timestamp}{token}{nonce}{timestamp}");
    hex(digest::digest(&digest::SHA256, text.as_bytes()).as_ref())
}

/// Signs a dialect message: writes the scheme's body fields and returns the headers to
/// add to the request, in order. With [`Signing::None`] it does nothing.
///
/// # Errors
/// [`SignError::MissingField`] naming an absent signed field; [`SignError::NotObject`]
/// when a field cannot be written; [`SignError::Unsupported`] for the national envelope.
pub fn sign(
    signing: &Signing,
    msg: &mut Value,
    creds: &Credentials<'_>,
    at: &Stamp<'_>,
) -> Result<Vec<(String, String)>, SignError> {
    match signing {
        Signing::None => Ok(Vec::new()),
        Signing::NationalSm2 => Err(SignError::Unsupported),
        Signing::HmacSha256Concat { fields, sign_field } => {
            let text = concatenation(fields, msg, creds.secret)?;
            let tag = hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, creds.key),
                text.as_bytes(),
            );
            put(msg, sign_field, hex(tag.as_ref()))?;
            Ok(Vec::new())
        }
        Signing::Md5DatePassword {
            target,
            id_field,
            window_s: _,
        } => {
            let password = md5_date_password(creds.secret, at.unix_s);
            let mut headers = Vec::new();
            if let Some(f) = id_field {
                put(msg, f, creds.id.to_owned())?;
            }
            match target {
                super::SignTarget::Field(f) => put(msg, f, password)?,
                super::SignTarget::Header(h) => headers.push((h.clone(), password)),
            }
            Ok(headers)
        }
        Signing::XtifSha256 { window_s: _ } => {
            let ts = at.unix_s.to_string();
            let signature = tif_signature(&ts, creds.secret, at.nonce);
            Ok(vec![
                (TIF_PAASID.to_owned(), creds.id.to_owned()),
                (TIF_TIMESTAMP.to_owned(), ts),
                (TIF_NONCE.to_owned(), at.nonce.to_owned()),
                (TIF_SIGNATURE.to_owned(), signature),
            ])
        }
    }
}

/// The one value of a header (names compare case-insensitively).
fn header<'h>(headers: &'h [(String, String)], name: &str) -> Result<&'h str, SignError> {
    let mut found = headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name));
    match (found.next(), found.next()) {
        (Some((_, v)), None) => Ok(v.as_str()),
        _ => Err(SignError::MissingHeader(name.to_owned())),
    }
}

/// Verifies a dialect message's signature, in constant time, at the verifier's clock
/// `now_unix_s`. `headers` are the request's HTTP headers (for the header schemes).
///
/// # Errors
/// [`SignError::BadSignature`] naming the signature field or header;
/// [`SignError::MissingField`], [`SignError::MissingHeader`]; [`SignError::Stale`] for a
/// timestamp or date outside the window; [`SignError::WrongCaller`] for another caller's
/// id.
pub fn verify(
    signing: &Signing,
    msg: &Value,
    headers: &[(String, String)],
    creds: &Credentials<'_>,
    now_unix_s: i64,
) -> Result<(), SignError> {
    verify_as_sent(
        signing,
        msg,
        &SentText::default(),
        headers,
        creds,
        now_unix_s,
    )
}

/// [`verify`], with a signature over an object field checked over its text as `sent`
/// first, then over the gateway's compact JSON of it.
///
/// # Errors
/// As [`verify`].
pub fn verify_as_sent(
    signing: &Signing,
    msg: &Value,
    sent: &SentText,
    headers: &[(String, String)],
    creds: &Credentials<'_>,
    now_unix_s: i64,
) -> Result<(), SignError> {
    match signing {
        Signing::None => Ok(()),
        Signing::NationalSm2 => Err(SignError::Unsupported),
        Signing::HmacSha256Concat { fields, sign_field } => {
            let bad = || SignError::BadSignature(sign_field.clone());
            let given = path::get(msg, sign_field)
                .and_then(Value::as_str)
                .ok_or_else(bad)?;
            let tag = unhex(given).ok_or_else(bad)?;
            let key = hmac::Key::new(hmac::HMAC_SHA256, creds.key);
            let as_sent = concatenation_as_sent(fields, msg, sent, creds.secret)?;
            if hmac::verify(&key, as_sent.as_bytes(), &tag).is_ok() {
                return Ok(());
            }
            let ours = concatenation(fields, msg, creds.secret)?;
            if ours == as_sent {
                return Err(bad());
            }
            hmac::verify(&key, ours.as_bytes(), &tag).map_err(|_| bad())
        }
        Signing::Md5DatePassword {
            target,
            id_field,
            window_s,
        } => {
            if let Some(f) = id_field {
                let id = path::get(msg, f)
                    .and_then(Value::as_str)
                    .ok_or_else(|| SignError::MissingField(f.clone()))?;
                if !same(id.as_bytes(), creds.id.as_bytes()) {
                    return Err(SignError::WrongCaller(f.clone()));
                }
            }
            let (given, name) = match target {
                super::SignTarget::Field(f) => (
                    path::get(msg, f)
                        .and_then(Value::as_str)
                        .ok_or_else(|| SignError::BadSignature(f.clone()))?,
                    f,
                ),
                super::SignTarget::Header(h) => (
                    header(headers, h).map_err(|_| SignError::BadSignature(h.clone()))?,
                    h,
                ),
            };
            // Around midnight the caller's clock may still be on the other date.
            let w = i64::from(*window_s);
            let ok = [now_unix_s - w, now_unix_s, now_unix_s + w]
                .iter()
                .map(|&t| md5_date_password(creds.secret, t))
                .fold(false, |ok, want| {
                    same(want.as_bytes(), given.to_ascii_lowercase().as_bytes()) | ok
                });
            if ok {
                Ok(())
            } else {
                Err(SignError::BadSignature(name.clone()))
            }
        }
        Signing::XtifSha256 { window_s } => {
            let id = header(headers, TIF_PAASID)?;
            if !same(id.as_bytes(), creds.id.as_bytes()) {
                return Err(SignError::WrongCaller(TIF_PAASID.to_owned()));
            }
            let ts = header(headers, TIF_TIMESTAMP)?;
            let nonce = header(headers, TIF_NONCE)?;
            let given = header(headers, TIF_SIGNATURE)?;
            let t: i64 = ts
                .parse()
                .map_err(|_| SignError::BadSignature(TIF_TIMESTAMP.to_owned()))?;
            if t.abs_diff(now_unix_s) > u64::from(*window_s) {
                return Err(SignError::Stale(TIF_TIMESTAMP.to_owned()));
            }
            let want = tif_signature(ts, creds.secret, nonce);
            if same(want.as_bytes(), given.to_ascii_lowercase().as_bytes()) {
                Ok(())
            } else {
                Err(SignError::BadSignature(TIF_SIGNATURE.to_owned()))
            }
        }
    }
}

/// After [`verify`], what makes the verified message one-time: the one-time value to
/// record against replay (`x-tif-nonce`; for a concatenated signature that covers a
/// `requestId`, `request_id` or `nonce`, the signature itself, `sig:` and its hex), once
/// the signed time is checked to be within
/// [`DEFAULT_WINDOW_S`] of `now_unix_s` (`x-tif-timestamp` in [`verify`]; a signed
/// `timestamp` here, in epoch milliseconds or seconds). `None` for schemes that sign
/// neither (`none`, `md5-date-password`, whose password changes daily): such a dialect's
/// requests can be replayed within their window (`config/regions/README.md` says so).
///
/// # Errors
/// [`SignError::Stale`] for a signed timestamp outside the window, or one that is not a
/// number.
pub fn one_time_value(
    signing: &Signing,
    msg: &Value,
    headers: &[(String, String)],
    now_unix_s: i64,
) -> Result<Option<String>, SignError> {
    match signing {
        Signing::XtifSha256 { .. } => Ok(Some(header(headers, TIF_NONCE)?.to_owned())),
        Signing::HmacSha256Concat { fields, sign_field } => {
            let signed = |name: &str| {
                fields
                    .iter()
                    .any(|f| f == name)
                    .then(|| path::get(msg, name))
                    .flatten()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
            };
            if let Some(t) = signed("timestamp") {
                let t: i64 = t
                    .parse()
                    .map_err(|_| SignError::Stale("timestamp".to_owned()))?;
                // Epoch milliseconds from 2001 on are 12 digits or more.
                let secs = if t.unsigned_abs() >= 100_000_000_000 {
                    t / 1000
                } else {
                    t
                };
                if secs.abs_diff(now_unix_s) > u64::from(DEFAULT_WINDOW_S) {
                    return Err(SignError::Stale("timestamp".to_owned()));
                }
            }
            // The signature itself, not the one-time field it covers: the fields are
            // joined with no separator, so characters can move between neighbours under
            // the same signature (`timestamp` "…805123" and `nonce` "N" become "…805" and
            // "123N", a fresh nonce and a time read as seconds). Every such variant carries
            // the same signature, and is refused as the replay it is.
            let one_time = ["requestId", "request_id", "nonce"]
                .into_iter()
                .find_map(signed);
            Ok(one_time.map(
                |n| match path::get(msg, sign_field).and_then(Value::as_str) {
                    Some(tag) => format!("sig:{}", tag.to_ascii_lowercase()),
                    None => n,
                },
            ))
        }
        Signing::None | Signing::Md5DatePassword { .. } | Signing::NationalSm2 => Ok(None),
    }
}

/// The bytes of a hex string: digits and `a`–`f` in either case, nothing else. (A parse
/// of each pair as a number would take `+f` for `0f`, and every such spelling of one
/// signature would be a fresh one-time value: [`one_time_value`] records the signature's
/// text.)
fn unhex(s: &str) -> Option<Vec<u8>> {
    fn nibble(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    if s.len() % 2 != 0 {
        return None;
    }
    s.as_bytes()
        .chunks_exact(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests;
