//! The dialect's wire: the only place the region simulator calls `translate::codec` and
//! `translate::sign`. [`open`] turns a request (method, query, headers, body) into the
//! dialect message and names the caller whose credentials verify it; [`write`] turns the
//! dialect answer into headers and a body. When the codecs or signing schemes change, this
//! file changes and the rest of the simulator does not.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, header};
use serde_json::Value;

use crate::standard::ReturnCode;
use crate::translate::sign::{self, Credentials, SignError};
use crate::translate::{Codec, Dialect, Signing, TranslateError, codec};

use super::Caller;

/// Why a message could not cross the wire.
#[derive(Debug, thiserror::Error)]
pub(super) enum WireError {
    /// The request body (or query) is not in the dialect's codec.
    #[error("{0}")]
    Body(TranslateError),
    /// The signature is absent or wrong for every configured caller, or a signed field
    /// is missing.
    #[error("{0}")]
    Signature(SignError),
    /// The answer does not fit the dialect's response codec.
    #[error("answer: {0}")]
    Answer(TranslateError),
}

impl WireError {
    /// The national return code of the refusal.
    pub(super) fn return_code(&self) -> ReturnCode {
        match self {
            Self::Body(_) | Self::Signature(SignError::NotObject(_)) => ReturnCode::BadFormat,
            Self::Signature(SignError::MissingField(_) | SignError::MissingHeader(_)) => {
                ReturnCode::MissingParameter
            }
            Self::Signature(e) => {
                ReturnCode::parse(e.return_code()).unwrap_or(ReturnCode::SignatureInvalid)
            }
            Self::Answer(_) => ReturnCode::SystemError,
        }
    }
}

/// A request as the dialect wrote it.
#[derive(Debug)]
pub(super) struct Inbound {
    /// The decoded message (a form as a flat object of strings).
    pub(super) msg: Value,
    /// The index of the caller whose credentials verified it; `None` when the dialect signs
    /// nothing.
    pub(super) caller: Option<usize>,
}

/// Whether the dialect's signing scheme needs caller credentials; an error for a scheme
/// this simulator does not serve.
pub(super) fn needs_credentials(signing: &Signing) -> Result<bool, String> {
    match signing {
        Signing::None => Ok(false),
        Signing::HmacSha256Concat { .. }
        | Signing::Md5DatePassword { .. }
        | Signing::XtifSha256 { .. } => Ok(true),
        Signing::NationalSm2 => {
            Err("speaks the national envelope: run `hutong sim --national`".to_owned())
        }
    }
}

fn credentials(c: &Caller) -> Credentials<'_> {
    Credentials {
        id: &c.app_key,
        key: c.app_key.as_bytes(),
        secret: &c.secret,
    }
}

/// Decodes a request in the dialect's codec (a GET's query as a form) and verifies its
/// signature against each caller in turn. `now_ms` is for schemes with a time window.
///
/// # Errors
/// [`WireError::Body`] for a body not in the codec; [`WireError::Signature`] when no caller's
/// credentials verify it.
pub(super) fn open(
    d: &Dialect,
    callers: &[Caller],
    req: &Request<Bytes>,
    now_ms: u64,
) -> Result<Inbound, WireError> {
    let now_s = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let msg = if req.method() == Method::GET {
        let query = req.uri().query().unwrap_or_default();
        codec::decode(Codec::Form, query.as_bytes())
    } else {
        codec::decode(d.codec, req.body())
    }
    .map_err(WireError::Body)?;
    if !needs_credentials(&d.signing).unwrap_or(true) {
        return Ok(Inbound { msg, caller: None });
    }
    let mut refusal = SignError::Unsupported;
    for (i, c) in callers.iter().enumerate() {
        match sign::verify(&d.signing, &msg, &headers, &credentials(c), now_s) {
            Ok(()) => {
                return Ok(Inbound {
                    msg,
                    caller: Some(i),
                });
            }
            // Another caller's credentials may verify it.
            Err(e @ (SignError::BadSignature(_) | SignError::WrongCaller(_))) => refusal = e,
            // Missing fields and shapes are the same for every caller.
            Err(e) => return Err(WireError::Signature(e)),
        }
    }
    Err(WireError::Signature(refusal))
}

fn content_type(c: Codec) -> HeaderValue {
    HeaderValue::from_static(c.content_type())
}

/// Encodes an answer in the dialect's response codec, with its headers.
///
/// # Errors
/// [`WireError::Answer`] when the answer does not fit the codec (a nested value in a form).
pub(super) fn write(d: &Dialect, msg: &Value) -> Result<(HeaderMap, Bytes), WireError> {
    let body = codec::encode(d.response_codec, msg).map_err(WireError::Answer)?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, content_type(d.response_codec));
    Ok((headers, Bytes::from(body)))
}

/// The caller's side, for tests: signs `msg` as `caller` (when given) and encodes it in the
/// dialect's request codec.
#[cfg(test)]
pub(super) fn seal(
    d: &Dialect,
    caller: Option<&Caller>,
    mut msg: Value,
) -> Result<(HeaderMap, Bytes), WireError> {
    let mut headers = HeaderMap::new();
    if let Some(c) = caller {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let stamp = sign::Stamp {
            unix_s: now,
            nonce: "sim-test-nonce",
        };
        for (k, v) in sign::sign(&d.signing, &mut msg, &credentials(c), &stamp)
            .map_err(WireError::Signature)?
        {
            if let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&v),
            ) {
                headers.insert(k, v);
            }
        }
    }
    let body = codec::encode(d.codec, &msg).map_err(WireError::Body)?;
    headers.insert(header::CONTENT_TYPE, content_type(d.codec));
    Ok((headers, Bytes::from(body)))
}

/// The caller's side, for tests: decodes an answer in the dialect's response codec.
#[cfg(test)]
pub(super) fn read(d: &Dialect, headers: &HeaderMap, body: &[u8]) -> Result<Value, WireError> {
    let _ = headers;
    codec::decode(d.response_codec, body).map_err(WireError::Answer)
}
