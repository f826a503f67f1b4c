//! The wire forms of a dialect as JSON values for the engine: JSON as it is,
//! `application/x-www-form-urlencoded` as a flat object of strings, and XML as described
//! in [`super::xml`] (elements as objects, text as strings, repeated siblings as arrays).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Map, Value};

use super::value::scalar_text;
use super::{Codec, TranslateError};

/// What form-urlencoding leaves as it is (the unreserved characters of RFC 3986).
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Decodes a body in `codec` into the value the engine reads.
///
/// # Errors
/// [`TranslateError::Codec`] for a body that is not JSON, repeats a key in one JSON
/// object, is not UTF-8 form data, repeats a form field, or is not XML within the limits
/// of [`super::xml`].
pub fn decode(codec: Codec, body: &[u8]) -> Result<Value, TranslateError> {
    match codec {
        Codec::Xml => super::xml::decode(body),
        // A key twice in one object is refused, as a repeated form field is: the gateway
        // would act on the last (`errCode` 0 after `errCode` 1, say) where another reader
        // of the same answer takes the first.
        Codec::Json => crate::national::validate::parse_unique(body).map_err(|e| match e {
            crate::national::validate::NotUnique::Json(e) => {
                TranslateError::Codec(format!("not JSON: {e}"))
            }
            // The key is the sender's text: not repeated in a message that may be logged.
            crate::national::validate::NotUnique::Duplicate(_) => {
                TranslateError::Codec("a key appears twice in one object".to_owned())
            }
        }),
        Codec::Form => {
            let text = std::str::from_utf8(body)
                .map_err(|_| TranslateError::Codec("form data is not UTF-8".into()))?;
            let mut out = Map::new();
            for pair in text
                .trim_end_matches(['\r', '\n'])
                .split('&')
                .filter(|p| !p.is_empty())
            {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let dec = |s: &str| {
                    percent_decode_str(&s.replace('+', " "))
                        .decode_utf8()
                        .map(|c| c.into_owned())
                        .map_err(|_| TranslateError::Codec("form field is not UTF-8".into()))
                };
                let key = dec(k)?;
                if out.insert(key, Value::String(dec(v)?)).is_some() {
                    // Not named: the key is the sender's text (a region's answer, a
                    // caller's request), and the message reaches the log.
                    return Err(TranslateError::Codec("a form field is repeated".into()));
                }
            }
            Ok(Value::Object(out))
        }
    }
}

/// Encodes the engine's output in `codec`.
///
/// # Errors
/// [`TranslateError::Shape`] when a form value is not a scalar, or the value has no XML
/// form (see [`super::xml::encode`]).
pub fn encode(codec: Codec, v: &Value) -> Result<Vec<u8>, TranslateError> {
    match codec {
        Codec::Xml => super::xml::encode(v),
        Codec::Json => Ok(serde_json::to_vec(v).unwrap_or_default()),
        Codec::Form => {
            let map = v.as_object().ok_or(TranslateError::Shape {
                path: "(message)".into(),
                expected: "an object",
            })?;
            let mut parts = Vec::with_capacity(map.len());
            for (k, val) in map {
                let text = scalar_text(val).ok_or_else(|| TranslateError::Shape {
                    path: k.clone(),
                    expected: "a scalar form value",
                })?;
                parts.push(format!(
                    "{}={}",
                    utf8_percent_encode(k, FORM),
                    utf8_percent_encode(&text, FORM)
                ));
            }
            Ok(parts.join("&").into_bytes())
        }
    }
}
