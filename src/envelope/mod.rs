//! The national envelope (DESIGN.md §3, profile §4.3), both sides.
//!
//! Every national-standard call is a JSON object of public parameters around an encrypted,
//! signed business payload. On the request path this module is the "envelope signature,
//! replay window" part of authentication and the "decode" step after it:
//!
//! ```text
//! body ─ parse_request ─ (caller looks up appId) ─ ParsedRequest::open ─ OpenedRequest
//!        1001, 1002        1005                    1003 → 1004 → 1006/1008   biz JSON + Session
//!                                                                            │
//! answer ◀─ seal_response(Session, gateway key, code, msg, biz) ◀────────────┘
//! ```
//!
//! Clients (and the conformance suite) use the mirror pair: [`seal_request`] gives the body
//! and a [`Session`], and [`open_response`] checks the gateway's answer with it.
//!
//! - Signatures cover the canonical string ([`canonical_string`]) of the public parameters,
//!   `bizContent` as ciphertext (encrypt-then-sign), so the signature is checked before any
//!   decryption and CBC padding errors are never an oracle.
//! - `signType` `SM2`: SM3withSM2 with ID `1234567812345678`, DER, Base64. `HMAC-SM3`: the
//!   client's registered MAC key, Base64.
//! - `encType` `SM4`: `bizContent` is Base64(IV ‖ SM4-CBC-PKCS#7(JSON)) under the client's
//!   registered key, or under the 16 bytes in `encKey` (Base64 of an SM2 GM/T 0009 ciphertext
//!   to the gateway's encryption key). `NONE` (Base64 of the JSON) only for clients
//!   registered with `insecure_allow_plaintext`.
//! - Time is injected (`now_ms`), never read from the clock here.
//!
//! Files: `canonical` (canonical string, strict top-level parsing), `request`, `response`,
//! `nonce` (replay store), `error`.

mod canonical;
mod error;
mod nonce;
mod request;
mod response;

#[cfg(test)]
mod tests;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crypto::{DecryptionKey, MacKey, SigningKey, Sm4Key, VerifyingKey, fill_random, to_hex};

pub use canonical::{SIGN_PARAMETER, canonical_string};
pub use error::EnvelopeError;
pub use nonce::{
    DEFAULT_MAX_NONCES, DEFAULT_MAX_NONCES_PER_APP, DEFAULT_NONCE_TTL_MS, MAX_NONCES_LIMIT,
    MemoryNonceStore, NONCE_SAVE_EVERY, NONCE_SHARDS, NonceCheck, NonceSnapshotError, NonceStore,
    NonceStoreConfig, SavedNonces,
};
pub use request::{
    OpenedRequest, ParsedRequest, RequestEncryption, RequestEnvelope, RequestHeader, RequestSigner,
    SealedRequest, VerifiedRequest, open_request, parse_request, seal_request,
};
pub use response::{
    OpenedResponse, ResponseEnvelope, SealedResponse, open_response, seal_response,
    seal_response_with,
};

/// Longest `appId`, `service`, `requestId` and `nonce` (the profile says 32; twice that
/// leaves room for regional identifiers while keeping the nonce store's input bounded).
pub const MAX_ID_LEN: usize = 64;

/// Longest `version` (`1.0`).
pub const MAX_VERSION_LEN: usize = 16;

/// Longest `timestamp`: 13 digits of Unix milliseconds last until the year 2286.
pub const MAX_TIMESTAMP_LEN: usize = 13;

/// Longest `encType` / `signType` value.
pub const MAX_TYPE_LEN: usize = 8;

/// Longest `encKey`. The SM2 ciphertext of a 16-byte key is at most 125 bytes of DER, 168
/// Base64 characters.
pub const MAX_ENC_KEY_LEN: usize = 512;

/// Longest `sign`. A DER SM2 signature is at most 72 bytes (96 Base64 characters); an
/// HMAC-SM3 tag is 32 (44).
pub const MAX_SIGN_LEN: usize = 256;

/// Longest response `msg`, in bytes of UTF-8.
pub const MAX_MSG_LEN: usize = 512;

/// Longest response `code`.
pub const MAX_CODE_LEN: usize = 8;

/// Default largest `bizContent`, in Base64 characters (1 MiB; about 768 KiB of ciphertext).
pub const DEFAULT_MAX_BIZ_CONTENT_LEN: usize = 1 << 20;

/// Default accepted clock skew: the profile's ±300 s.
pub const DEFAULT_MAX_CLOCK_SKEW_MS: u64 = 300_000;

/// Limits applied while parsing and opening envelopes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct EnvelopeLimits {
    /// Largest `bizContent` in Base64 characters ([`DEFAULT_MAX_BIZ_CONTENT_LEN`]). The body
    /// as a whole is bounded earlier, by the server's body limit.
    #[serde(default = "default_max_biz_content_len")]
    pub max_biz_content_len: usize,
    /// Largest accepted difference between `timestamp` and the server's clock, either way
    /// ([`DEFAULT_MAX_CLOCK_SKEW_MS`]).
    #[serde(default = "default_max_clock_skew_ms")]
    pub max_clock_skew_ms: u64,
}

fn default_max_biz_content_len() -> usize {
    DEFAULT_MAX_BIZ_CONTENT_LEN
}
fn default_max_clock_skew_ms() -> u64 {
    DEFAULT_MAX_CLOCK_SKEW_MS
}

impl Default for EnvelopeLimits {
    fn default() -> Self {
        Self {
            max_biz_content_len: DEFAULT_MAX_BIZ_CONTENT_LEN,
            max_clock_skew_ms: DEFAULT_MAX_CLOCK_SKEW_MS,
        }
    }
}

/// `signType`: how the canonical string is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignType {
    /// SM3withSM2, ID `1234567812345678`, DER, Base64.
    #[serde(rename = "SM2")]
    Sm2,
    /// HMAC-SM3 under the client's registered MAC key, Base64.
    #[serde(rename = "HMAC-SM3")]
    HmacSm3,
}

impl SignType {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            SignType::Sm2 => "SM2",
            SignType::HmacSm3 => "HMAC-SM3",
        }
    }

    /// Parses a wire value (exact, case-sensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "SM2" => Some(SignType::Sm2),
            "HMAC-SM3" => Some(SignType::HmacSm3),
            _ => None,
        }
    }
}

/// `encType`: how `bizContent` is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EncType {
    /// SM4-CBC-PKCS#7, IV first, Base64.
    #[serde(rename = "SM4")]
    Sm4,
    /// Base64 of the JSON. Test clients only.
    #[serde(rename = "NONE")]
    None,
}

impl EncType {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            EncType::Sm4 => "SM4",
            EncType::None => "NONE",
        }
    }

    /// Parses a wire value (exact, case-sensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "SM4" => Some(EncType::Sm4),
            "NONE" => Some(EncType::None),
            _ => None,
        }
    }
}

/// What the gateway holds about one registered client, as far as the envelope is concerned.
///
/// The sign types a client may use are the ones it has a key for. `Debug` hides the keys.
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    /// The client's SM2 public key, for `signType` `SM2`.
    pub verifying_key: Option<VerifyingKey>,
    /// The client's MAC key, for `signType` `HMAC-SM3` (requests and their answers).
    pub mac_key: Option<MacKey>,
    /// The client's pre-shared SM4 key, used when a request has no `encKey`.
    pub sm4_key: Option<Sm4Key>,
    /// Accept `encType` `NONE` (test clients only). Off by default.
    pub insecure_allow_plaintext: bool,
}

/// Server-side inputs to [`ParsedRequest::open`] that do not depend on the client.
#[derive(Clone, Copy)]
pub struct OpenContext<'a> {
    /// Parsing and freshness limits.
    pub limits: &'a EnvelopeLimits,
    /// The gateway's SM2 encryption key, which `encKey` is encrypted to. `None` refuses
    /// requests with `encKey` (1008).
    pub decryption_key: Option<&'a DecryptionKey>,
    /// The replay store.
    pub nonces: &'a dyn NonceStore,
    /// The server's clock, Unix milliseconds.
    pub now_ms: u64,
}

impl std::fmt::Debug for OpenContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenContext")
            .field("limits", self.limits)
            .field("decryption_key", &self.decryption_key.is_some())
            .field("now_ms", &self.now_ms)
            .finish_non_exhaustive()
    }
}

/// The keys of one request/response exchange: what the gateway needs to answer a request it
/// opened, and what a client needs to open the answer to a request it sealed.
#[derive(Debug, Clone)]
pub struct Session {
    request_id: String,
    sign_type: SignType,
    /// The MAC key, when the exchange is MACed.
    mac_key: Option<MacKey>,
    /// The SM4 key of `bizContent`; `None` for `encType` `NONE`.
    sm4_key: Option<Sm4Key>,
}

impl Session {
    /// The session of an answer to a request that could not be opened (bad format, bad
    /// signature, replay…): SM2-signed by the gateway, no business content. `request_id` is
    /// echoed only if it is a well-formed identifier.
    pub fn for_rejected_request(request_id: Option<&str>) -> Self {
        let request_id = request_id
            .filter(|id| id.len() <= MAX_ID_LEN && is_id(id))
            .unwrap_or_default()
            .to_string();
        Self {
            request_id,
            sign_type: SignType::Sm2,
            mac_key: None,
            sm4_key: None,
        }
    }

    /// The `requestId` the answer echoes.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The sign type of the exchange.
    pub fn sign_type(&self) -> SignType {
        self.sign_type
    }

    /// Whether business content is SM4-encrypted in this exchange.
    pub fn is_encrypted(&self) -> bool {
        self.sm4_key.is_some()
    }
}

fn is_id(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `s` is an id by the envelope's rule for `requestId` and `nonce`: 1 to
/// `MAX_ID_LEN` letters, digits, `.`, `_` or `-`.
pub fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_LEN && is_id(s)
}

/// 32 lowercase hex digits from the OS RNG: a fresh `nonce` or `requestId`.
pub fn random_id() -> Result<String, EnvelopeError> {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes)?;
    Ok(to_hex(&bytes))
}

// ---------------------------------------------------------------------------------------------
// Shared steps of both directions.

/// The key that signs (or MACs) one message.
#[derive(Clone, Copy)]
enum Signer<'a> {
    Sm2(&'a SigningKey),
    Mac(&'a MacKey),
}

fn sign_canonical(canonical: &str, signer: Signer<'_>) -> String {
    match signer {
        Signer::Sm2(key) => BASE64.encode(key.sign(canonical.as_bytes())),
        Signer::Mac(key) => BASE64.encode(key.tag(canonical.as_bytes())),
    }
}

/// Checks `sign` over the canonical string with the key for `sign_type`.
///
/// A missing key is [`EnvelopeError::KeyUnknown`] (1005); anything wrong with the signature
/// itself, including bad Base64, is [`EnvelopeError::SignatureInvalid`] (1003).
fn verify_canonical(
    canonical: &str,
    sign: &str,
    sign_type: SignType,
    verifying_key: Option<&VerifyingKey>,
    mac_key: Option<&MacKey>,
) -> Result<(), EnvelopeError> {
    let sig = BASE64
        .decode(sign)
        .map_err(|_| EnvelopeError::SignatureInvalid);
    match sign_type {
        SignType::Sm2 => {
            let key = verifying_key.ok_or(EnvelopeError::KeyUnknown("SM2 public key"))?;
            key.verify(canonical.as_bytes(), &sig?)
                .map_err(|_| EnvelopeError::SignatureInvalid)
        }
        SignType::HmacSm3 => {
            let key = mac_key.ok_or(EnvelopeError::KeyUnknown("HMAC-SM3 key"))?;
            if key.verify(canonical.as_bytes(), &sig?) {
                Ok(())
            } else {
                Err(EnvelopeError::SignatureInvalid)
            }
        }
    }
}

/// `bizContent` for a business JSON object: encrypted under `key`, or plain Base64.
fn encode_biz(biz: &Value, key: Option<&Sm4Key>) -> Result<String, EnvelopeError> {
    if !biz.is_object() {
        return Err(EnvelopeError::BadFormat("bizContent"));
    }
    let json = serde_json::to_vec(biz).map_err(|_| EnvelopeError::BadFormat("bizContent"))?;
    encode_json(&json, key)
}

/// [`encode_biz`] of an object already written as JSON text.
fn encode_json(json: &[u8], key: Option<&Sm4Key>) -> Result<String, EnvelopeError> {
    Ok(match key {
        Some(key) => BASE64.encode(key.encrypt_cbc(json)?),
        None => BASE64.encode(json),
    })
}

/// A response's business content: a value, or an object already written as compact JSON
/// (an answer the gateway kept as text, which it need not parse to send again).
#[derive(Debug, Clone, Copy)]
pub enum Biz<'a> {
    /// A JSON object.
    Value(&'a Value),
    /// The text of a JSON object, as `serde_json` wrote it (sealed as it is: only its
    /// braces are checked).
    Json(&'a str),
}

impl Biz<'_> {
    fn encode(self, key: Option<&Sm4Key>) -> Result<String, EnvelopeError> {
        match self {
            Self::Value(v) => encode_biz(v, key),
            // Text from `serde_json` of an object: braces at both ends. The text is sealed
            // as it is, not parsed: callers pass only what `serde_json` wrote.
            Self::Json(t) if t.starts_with('{') && t.ends_with('}') => {
                encode_json(t.as_bytes(), key)
            }
            Self::Json(_) => Err(EnvelopeError::BadFormat("bizContent")),
        }
    }
}

/// The business JSON object in `bizContent`.
///
/// Encrypted: bad Base64, bad ciphertext, and plaintext that is not a JSON object with
/// unique keys are all decryption failures (1008), the last three with one message
/// ([`UNDECRYPTABLE`]). Plain: they are format errors (1002).
/// A `bizContent` with a key twice in one object is refused: the gateway would act
/// on the last value while the signed plaintext also holds the first, which another reader
/// may take. One pass parses and checks (`national::validate::parse_unique`); text that
/// is not JSON is `not_json`.
fn unique_keys(plain: &[u8], not_json: EnvelopeError) -> Result<Value, EnvelopeError> {
    use crate::national::validate::NotUnique;
    crate::national::validate::parse_unique(plain).map_err(|e| match e {
        NotUnique::Json(_) => not_json,
        NotUnique::Duplicate(_) => {
            EnvelopeError::BadFormat("bizContent: a key appears twice in one object")
        }
    })
}

/// Every way an encrypted `bizContent` can fail once decoded, in one answer: the padding,
/// the JSON, an object, unique keys. Told apart, they would be a padding oracle: an
/// `encKey` is not bound to its sender, so a client holding another's `encKey` and
/// ciphertext could send them under its own signature and learn the plaintext block by
/// block from which failure it got.
const UNDECRYPTABLE: EnvelopeError =
    EnvelopeError::DecryptFailed("bizContent does not decrypt to a JSON object with unique keys");

fn decode_biz(biz_content: &str, key: Option<&Sm4Key>) -> Result<Value, EnvelopeError> {
    let value = match key {
        Some(key) => {
            let data = BASE64
                .decode(biz_content)
                .map_err(|_| EnvelopeError::DecryptFailed("bizContent is not Base64"))?;
            let plain = key.decrypt_cbc(&data).map_err(|_| UNDECRYPTABLE)?;
            let value =
                crate::national::validate::parse_unique(&plain).map_err(|_| UNDECRYPTABLE)?;
            return if value.is_object() {
                Ok(value)
            } else {
                Err(UNDECRYPTABLE)
            };
        }
        None => {
            let plain = BASE64
                .decode(biz_content)
                .map_err(|_| EnvelopeError::BadFormat("bizContent"))?;
            unique_keys(&plain, EnvelopeError::BadFormat("bizContent"))?
        }
    };
    if value.is_object() {
        Ok(value)
    } else {
        Err(EnvelopeError::BadFormat("bizContent"))
    }
}

/// The 16-byte SM4 key in `encKey`, decrypted with the gateway's key.
fn unwrap_enc_key(
    enc_key: &str,
    decryption_key: Option<&DecryptionKey>,
) -> Result<Sm4Key, EnvelopeError> {
    let key = decryption_key.ok_or(EnvelopeError::DecryptFailed("encKey is not accepted"))?;
    let der = BASE64
        .decode(enc_key)
        .map_err(|_| EnvelopeError::DecryptFailed("encKey is not Base64"))?;
    let plain = key
        .decrypt(&der)
        .map_err(|_| EnvelopeError::DecryptFailed("encKey"))?;
    Sm4Key::from_bytes(&plain).map_err(|_| EnvelopeError::DecryptFailed("encKey is not 16 bytes"))
}

/// The timestamp parameter as Unix milliseconds (its digits were checked already).
fn parse_timestamp(s: &str) -> Result<u64, EnvelopeError> {
    s.parse::<u64>()
        .map_err(|_| EnvelopeError::BadFormat("timestamp"))
}
