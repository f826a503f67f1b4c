//! The response direction: [`seal_response`] on the gateway, [`open_response`] on the client.
//!
//! An answer is signed in the sign type of its request: SM2 with the gateway's key, or
//! HMAC-SM3 with the client's MAC key. Its business content is encrypted under the SM4 key of
//! the request (registered or per-request), and echoes the request's `requestId`, which is
//! what binds an answer to its question.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::canonical::{Alphabet, Field, MaxLen, Params, parse_params, text};
use super::{
    Biz, EnvelopeError, EnvelopeLimits, MAX_CODE_LEN, MAX_ID_LEN, MAX_MSG_LEN, MAX_SIGN_LEN,
    MAX_TIMESTAMP_LEN, MAX_TYPE_LEN, Session, SignType, Signer, decode_biz, random_id,
    sign_canonical, verify_canonical,
};
use crate::crypto::{SigningKey, VerifyingKey};
use crate::standard::ReturnCode;

/// The public parameters of a response, as on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResponseEnvelope {
    /// Return code (profile §4.6), `0` for success.
    pub code: String,
    /// Human-readable message; may be empty.
    #[serde(default)]
    pub msg: String,
    /// The request's `requestId`; empty when the request had none that could be echoed.
    #[serde(default)]
    pub request_id: String,
    /// The gateway's clock, Unix milliseconds.
    pub timestamp: String,
    /// Fresh per response.
    pub nonce: String,
    /// Base64 of the (encrypted) business JSON; absent on errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_content: Option<String>,
    /// How the canonical string is authenticated.
    pub sign_type: SignType,
    /// Base64 signature or MAC over the canonical string.
    pub sign: String,
}

impl ResponseEnvelope {
    /// The parameters, by [`RESPONSE_FIELDS`], held to their rules (as a received body is).
    fn checked_params(&self) -> Result<Params<'_>, EnvelopeError> {
        Params::checked(
            &RESPONSE_FIELDS,
            vec![
                text(&self.code),
                text(&self.msg),
                text(&self.request_id),
                text(&self.timestamp),
                text(&self.nonce),
                self.biz_content.as_deref().and_then(text),
                text(self.sign_type.as_str()),
                text(&self.sign),
            ],
            usize::MAX,
        )
    }
}

/// The response parameters and their rules.
pub(super) const RESPONSE_FIELDS: [Field; 8] = [
    Field::required("code", MaxLen::Fixed(MAX_CODE_LEN), Alphabet::Digits),
    Field::optional("msg", MaxLen::Fixed(MAX_MSG_LEN), Alphabet::Printable),
    Field::optional("requestId", MaxLen::Fixed(MAX_ID_LEN), Alphabet::Id),
    Field::required(
        "timestamp",
        MaxLen::Fixed(MAX_TIMESTAMP_LEN),
        Alphabet::Digits,
    ),
    Field::required("nonce", MaxLen::Fixed(MAX_ID_LEN), Alphabet::Id),
    Field::optional("bizContent", MaxLen::Configured, Alphabet::Printable),
    Field::required("signType", MaxLen::Fixed(MAX_TYPE_LEN), Alphabet::Id),
    Field::required("sign", MaxLen::Fixed(MAX_SIGN_LEN), Alphabet::Printable),
];

/// A sealed response.
#[derive(Debug, Clone)]
pub struct SealedResponse {
    /// The public parameters, signed.
    pub envelope: ResponseEnvelope,
    /// The JSON body.
    pub body: String,
}

/// Builds, encrypts and signs the answer to the request of `session`.
///
/// `gateway_key` signs when the session's sign type is SM2; a MACed session uses the client's
/// MAC key it carries. `biz` (a JSON object) is encrypted as the request was.
///
/// Errors: [`EnvelopeError::BadFormat`] when `msg` has a control character or `&`, or `biz`
/// is not an object; [`EnvelopeError::TooLong`] for a `msg` over [`MAX_MSG_LEN`] bytes;
/// [`EnvelopeError::Seal`] if the OS RNG fails.
pub fn seal_response(
    session: &Session,
    gateway_key: &SigningKey,
    code: ReturnCode,
    msg: &str,
    biz: Option<&Value>,
    now_ms: u64,
) -> Result<SealedResponse, EnvelopeError> {
    seal_response_with(session, gateway_key, code, msg, biz.map(Biz::Value), now_ms)
}

/// [`seal_response`] with the business content as a value or as JSON text.
///
/// # Errors
/// As [`seal_response`]; [`EnvelopeError::BadFormat`] also for text without an object's
/// braces at its ends (the text is not parsed: pass only what `serde_json` wrote).
pub fn seal_response_with(
    session: &Session,
    gateway_key: &SigningKey,
    code: ReturnCode,
    msg: &str,
    biz: Option<Biz<'_>>,
    now_ms: u64,
) -> Result<SealedResponse, EnvelopeError> {
    let signer = match (session.sign_type, &session.mac_key) {
        (SignType::Sm2, _) => Signer::Sm2(gateway_key),
        (SignType::HmacSm3, Some(key)) => Signer::Mac(key),
        (SignType::HmacSm3, None) => return Err(EnvelopeError::KeyUnknown("HMAC-SM3 key")),
    };
    let biz_content = match biz {
        Some(biz) => Some(biz.encode(session.sm4_key.as_ref())?),
        None => None,
    };
    let mut envelope = ResponseEnvelope {
        code: code.as_str().to_string(),
        msg: msg.to_string(),
        request_id: session.request_id.clone(),
        timestamp: now_ms.to_string(),
        nonce: random_id()?,
        biz_content,
        sign_type: session.sign_type,
        // A placeholder that passes the field rules; the canonical string leaves `sign` out.
        sign: "-".to_string(),
    };
    let canonical = envelope.checked_params()?.canonical();
    envelope.sign = sign_canonical(&canonical, signer);
    let body = match plain_body(&envelope) {
        Some(body) => body,
        None => serde_json::to_string(&envelope)
            .map_err(|_| EnvelopeError::Internal("response does not serialise"))?,
    };
    Ok(SealedResponse { envelope, body })
}

/// The envelope as JSON, byte for byte what `serde_json::to_string` writes, when no value
/// needs an escape (`None` otherwise). Only `msg` can: the field rules have held `code` and
/// `timestamp` to digits and `requestId`, `nonce` and `signType` to identifier characters,
/// and `bizContent` and `sign` are Base64 or hex made by this module. So only `msg` is
/// scanned; serde_json would look at each byte of the kilobytes of `bizContent`.
fn plain_body(e: &ResponseEnvelope) -> Option<String> {
    if !is_plain_json(&e.msg) {
        return None;
    }
    let biz = e.biz_content.as_deref();
    let fields = [
        ("{\"code\":\"", Some(e.code.as_str())),
        ("\",\"msg\":\"", Some(e.msg.as_str())),
        ("\",\"requestId\":\"", Some(e.request_id.as_str())),
        ("\",\"timestamp\":\"", Some(e.timestamp.as_str())),
        ("\",\"nonce\":\"", Some(e.nonce.as_str())),
        ("\",\"bizContent\":\"", biz),
        ("\",\"signType\":\"", Some(e.sign_type.as_str())),
        ("\",\"sign\":\"", Some(e.sign.as_str())),
    ];
    let len: usize = fields
        .iter()
        .map(|(k, v)| k.len() + v.map_or(0, str::len))
        .sum();
    let mut out = String::with_capacity(len + 2);
    for (key, value) in fields {
        if let Some(value) = value {
            out.push_str(key);
            out.push_str(value);
        }
    }
    out.push_str("\"}");
    Some(out)
}

/// Whether JSON writes `s` as it is: no quote, backslash or control character. No early
/// exit, so that the compiler checks many bytes at a time.
fn is_plain_json(s: &str) -> bool {
    !s.bytes().fold(false, |esc, b| {
        esc | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// A response that verified and decrypted.
#[derive(Debug, Clone)]
pub struct OpenedResponse {
    /// The public parameters as received.
    pub envelope: ResponseEnvelope,
    /// The business content, when the response has any: a JSON object.
    pub biz: Option<Value>,
}

/// Checks and decrypts the gateway's answer to the request of `session`.
///
/// An SM2-signed answer needs `gateway_key`; a MACed one, the session's MAC key (a MACed
/// answer to an SM2 request is refused with [`EnvelopeError::KeyUnknown`]). An answer with
/// another `requestId` is [`EnvelopeError::RequestIdMismatch`]; one with none is accepted only
/// as an error answer without content (the gateway could not read the request's id).
/// Other errors are as for requests: 1001, 1002, 1003, 1008.
pub fn open_response(
    body: &[u8],
    session: &Session,
    gateway_key: Option<&VerifyingKey>,
    limits: &EnvelopeLimits,
) -> Result<OpenedResponse, EnvelopeError> {
    let (envelope, canonical) = parse_response(body, limits)?;

    verify_canonical(
        &canonical,
        &envelope.sign,
        envelope.sign_type,
        gateway_key,
        session.mac_key.as_ref(),
    )?;

    let biz_content = envelope.biz_content.as_deref().filter(|s| !s.is_empty());
    if envelope.request_id != session.request_id {
        let unechoed_error = envelope.request_id.is_empty()
            && envelope.code != ReturnCode::Success.as_str()
            && biz_content.is_none();
        if !unechoed_error {
            return Err(EnvelopeError::RequestIdMismatch);
        }
    }
    let biz = match biz_content {
        Some(content) => Some(decode_biz(content, session.sm4_key.as_ref())?),
        None => None,
    };
    Ok(OpenedResponse { envelope, biz })
}

/// A response's parameters checked against the field rules, and their canonical string.
pub(super) fn parse_response(
    body: &[u8],
    limits: &EnvelopeLimits,
) -> Result<(ResponseEnvelope, String), EnvelopeError> {
    let mut params = parse_params(body, &RESPONSE_FIELDS, limits.max_biz_content_len)?;
    let sign_type = params
        .get("signType")
        .and_then(SignType::parse)
        .ok_or(EnvelopeError::BadFormat("signType"))?;
    let canonical = params.canonical();
    let biz_content = params.take("bizContent");
    // Required parameters are there (`parse_params` checked); absent optional ones are
    // empty, as on the wire.
    let mut take = |name| params.take(name).unwrap_or_default();
    let envelope = ResponseEnvelope {
        code: take("code"),
        msg: take("msg"),
        request_id: take("requestId"),
        timestamp: take("timestamp"),
        nonce: take("nonce"),
        biz_content,
        sign_type,
        sign: take("sign"),
    };
    Ok((envelope, canonical))
}
