//! The canonical string that envelope signatures cover, and the strict parsing of the
//! envelope's top-level object.
//!
//! The rule (DESIGN.md §3): every top-level parameter except `sign` whose value is a non-empty
//! string, sorted by key in byte order, joined as `key=value` with `&`, no escaping.
//! [`canonical_string`] implements exactly that over any JSON object, so the signer and the
//! verifier cannot disagree on what was signed.
//!
//! Without escaping, a value containing `&` could move text from one parameter into another
//! and keep the canonical string (and so the signature) unchanged. The field rules here refuse
//! `&` in every value; with fixed keys that contain no `=`, the canonical string then
//! determines the parameters.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::EnvelopeError;

/// The parameter the canonical string leaves out.
pub const SIGN_PARAMETER: &str = "sign";

/// The canonical string of a top-level JSON object.
///
/// Sorts explicitly rather than trusting the map's order: `serde_json`'s `preserve_order`
/// feature, which any crate in the build can switch on, makes `Map` keep insertion order.
pub fn canonical_string(params: &Map<String, Value>) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .filter(|(key, _)| key.as_str() != SIGN_PARAMETER)
        .filter_map(|(key, value)| match value {
            Value::String(s) if !s.is_empty() => Some((key.as_str(), s.as_str())),
            _ => None,
        })
        .collect();
    pairs.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let len = pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut out = String::with_capacity(len);
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Parses a body that must be one JSON object with no repeated top-level key.
pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, EnvelopeError> {
    match serde_json::from_slice::<UniqueKeys>(body) {
        Ok(UniqueKeys(map)) => Ok(map),
        Err(e) if e.to_string().starts_with(DUPLICATE) => Err(EnvelopeError::DuplicateParameter),
        Err(_) => Err(EnvelopeError::NotAnObject),
    }
}

const DUPLICATE: &str = "hutong: duplicate key";

/// A top-level object whose keys are unique. Nested values are ordinary `Value`s: the
/// envelope only has string parameters, and the field rules refuse anything else.
struct UniqueKeys(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = UniqueKeys;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueKeys, A::Error> {
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    if map.contains_key(&key) {
                        return Err(de::Error::custom(DUPLICATE));
                    }
                    let value: Value = access.next_value()?;
                    map.insert(key, value);
                }
                Ok(UniqueKeys(map))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// The characters a parameter may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alphabet {
    /// Identifiers: ASCII letters, digits, `.`, `_`, `-`.
    Id,
    /// ASCII digits.
    Digits,
    /// Anything printable but `&` (Base64 fields, whose alphabet is checked when decoded, so
    /// a bad character there is a decoding failure with its own return code).
    Printable,
}

impl Alphabet {
    pub(super) fn accepts(self, s: &str) -> bool {
        match self {
            Alphabet::Id => s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')),
            Alphabet::Digits => s.bytes().all(|b| b.is_ascii_digit()),
            // Nearly every value is ASCII (base64, hex, digits): check bytes, and walk
            // characters only for the rest. No early exit, so that the compiler checks many
            // bytes at a time: `bizContent` runs to kilobytes on every request and answer.
            Alphabet::Printable if s.is_ascii() => !s
                .bytes()
                .fold(false, |bad, b| bad | (b == b'&') | (b < 0x20) | (b == 0x7f)),
            Alphabet::Printable => s.chars().all(|c| c != '&' && !c.is_control()),
        }
    }
}

/// The longest value a parameter may hold, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaxLen {
    /// A limit of the profile.
    Fixed(usize),
    /// The caller's configured limit (`bizContent`).
    Configured,
}

/// One top-level parameter of an envelope.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub name: &'static str,
    pub required: bool,
    pub max_len: MaxLen,
    pub alphabet: Alphabet,
}

impl Field {
    pub(super) const fn required(name: &'static str, max_len: MaxLen, alphabet: Alphabet) -> Self {
        Self {
            name,
            required: true,
            max_len,
            alphabet,
        }
    }

    pub(super) const fn optional(name: &'static str, max_len: MaxLen, alphabet: Alphabet) -> Self {
        Self {
            name,
            required: false,
            max_len,
            alphabet,
        }
    }
}

/// Checks a parsed object against its field list: first that every required parameter is a
/// non-empty value (1001), then that nothing else is there, that every value is a string,
/// within its length limit and alphabet (1002). `configured_max` is the limit of
/// [`MaxLen::Configured`] fields.
pub(crate) fn check_fields(
    map: &Map<String, Value>,
    fields: &[Field],
    configured_max: usize,
) -> Result<(), EnvelopeError> {
    for field in fields.iter().filter(|f| f.required) {
        match map.get(field.name) {
            None => return Err(EnvelopeError::MissingParameter(field.name)),
            Some(Value::String(s)) if s.is_empty() => {
                return Err(EnvelopeError::MissingParameter(field.name));
            }
            Some(_) => {}
        }
    }
    for (key, value) in map {
        let Some(field) = fields.iter().find(|f| f.name == key.as_str()) else {
            return Err(EnvelopeError::UnknownParameter);
        };
        let Value::String(s) = value else {
            return Err(EnvelopeError::NotAString(field.name));
        };
        let max = match field.max_len {
            MaxLen::Fixed(max) => max,
            MaxLen::Configured => configured_max,
        };
        if s.len() > max {
            return Err(EnvelopeError::TooLong {
                field: field.name,
                max,
            });
        }
        if !field.alphabet.accepts(s) {
            return Err(EnvelopeError::BadFormat(field.name));
        }
    }
    Ok(())
}
