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

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::Deserialize as _;
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
    join_sorted(
        params
            .iter()
            .filter_map(|(key, value)| match value {
                Value::String(s) => Some((key.as_str(), s.as_str())),
                _ => None,
            })
            .collect(),
    )
}

/// The canonical string of `key=value` pairs: without `sign` and empty values, sorted by
/// key in byte order, joined with `&`.
fn join_sorted(mut pairs: Vec<(&str, &str)>) -> String {
    pairs.retain(|(key, value)| *key != SIGN_PARAMETER && !value.is_empty());
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

/// An envelope's string parameters, by its field list: what [`parse_params`] returns. A
/// value is borrowed from the body unless it had an escape.
#[derive(Debug)]
pub(crate) struct Params<'a> {
    fields: &'static [Field],
    values: Vec<Option<Cow<'a, str>>>,
}

impl<'a> Params<'a> {
    /// The values of an envelope about to be sealed, by field (`None`: absent), held to the
    /// rules a parsed body is held to: a required parameter missing or empty (1001), then
    /// the first value, in field order, too long or outside its alphabet (1002).
    pub(crate) fn checked(
        fields: &'static [Field],
        values: Vec<Option<Cow<'a, str>>>,
        configured_max: usize,
    ) -> Result<Self, EnvelopeError> {
        require(fields, &values, |i| values[i].is_some())?;
        for (field, value) in fields.iter().zip(&values) {
            if let Some(value) = value {
                check_value(field, value, configured_max)?;
            }
        }
        Ok(Self { fields, values })
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// The value of `name`, if present.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values[self.index(name)?].as_deref()
    }

    /// Takes the value of `name` out, owned.
    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        let i = self.index(name)?;
        self.values[i].take().map(Cow::into_owned)
    }

    /// The canonical string of the parameters (as [`canonical_string`] of the same object).
    pub(crate) fn canonical(&self) -> String {
        join_sorted(
            self.fields
                .iter()
                .zip(&self.values)
                .filter_map(|(f, v)| Some((f.name, v.as_deref()?)))
                .collect(),
        )
    }
}

/// Parses a body that must be one JSON object of the parameters `fields`, in one pass, and
/// applies the field rules with their precedence: a repeated key (even an unknown
/// one) or a body that is not one JSON object first, then a required parameter missing or
/// empty (1001), then the first parameter in the body's order that is unknown, not a
/// string, too long or outside its alphabet (1002).
///
/// The request path's parser: it builds no map of `Value`s, and hashes no key.
pub(crate) fn parse_params<'a>(
    body: &'a [u8],
    fields: &'static [Field],
    configured_max: usize,
) -> Result<Params<'a>, EnvelopeError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = match (&mut de).deserialize_map(ParamsVisitor {
        fields,
        configured_max,
    }) {
        Ok(p) => p,
        Err(e) if e.to_string().starts_with(DUPLICATE) => {
            return Err(EnvelopeError::DuplicateParameter);
        }
        Err(_) => return Err(EnvelopeError::NotAnObject),
    };
    de.end().map_err(|_| EnvelopeError::NotAnObject)?;
    require(fields, &parsed.values, |i| parsed.present[i])?;
    match parsed.first_error {
        Some(e) => Err(e),
        None => Ok(Params {
            fields,
            values: parsed.values,
        }),
    }
}

/// A parameter's value for [`Params::checked`], borrowed.
pub(crate) fn text(value: &str) -> Option<Cow<'_, str>> {
    Some(Cow::Borrowed(value))
}

/// The first required parameter that is not `present` or is an empty string (1001).
fn require(
    fields: &[Field],
    values: &[Option<Cow<'_, str>>],
    present: impl Fn(usize) -> bool,
) -> Result<(), EnvelopeError> {
    match fields
        .iter()
        .enumerate()
        .find(|&(i, f)| f.required && (!present(i) || values[i].as_deref() == Some("")))
    {
        Some((_, field)) => Err(EnvelopeError::MissingParameter(field.name)),
        None => Ok(()),
    }
}

const DUPLICATE: &str = "hutong: duplicate key";

/// What the visitor found: the string values by field, which fields were there at all (a
/// value that is not a string is there, and wrong), and the first fault in body order.
struct Parsed<'a> {
    values: Vec<Option<Cow<'a, str>>>,
    present: Vec<bool>,
    first_error: Option<EnvelopeError>,
}

struct ParamsVisitor {
    fields: &'static [Field],
    configured_max: usize,
}

impl<'de> Visitor<'de> for ParamsVisitor {
    type Value = Parsed<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Parsed<'de>, A::Error> {
        let n = self.fields.len();
        let mut parsed = Parsed {
            values: (0..n).map(|_| None).collect(),
            present: vec![false; n],
            first_error: None,
        };
        // Hashed: a body of many distinct unknown keys must not cost their square.
        let mut unknown: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(Text(key)) = access.next_key::<Text<'de>>()? {
            let Some(i) = self.fields.iter().position(|f| f.name == key) else {
                if !unknown.insert(key) {
                    return Err(de::Error::custom(DUPLICATE));
                }
                // Read as a `Value`, so that it is checked as strictly as every other part
                // of the body (UTF-8, escapes, nesting depth): what does not parse is still
                // `NotAnObject`.
                access.next_value::<Value>()?;
                parsed
                    .first_error
                    .get_or_insert(EnvelopeError::UnknownParameter);
                continue;
            };
            if parsed.present[i] {
                return Err(de::Error::custom(DUPLICATE));
            }
            parsed.present[i] = true;
            let field = &self.fields[i];
            match access.next_value::<Param<'de>>()? {
                Param::Text(value) => {
                    if parsed.first_error.is_none() {
                        parsed.first_error = check_value(field, &value, self.configured_max).err();
                    }
                    parsed.values[i] = Some(value);
                }
                Param::Other => {
                    parsed
                        .first_error
                        .get_or_insert(EnvelopeError::NotAString(field.name));
                }
            }
        }
        Ok(parsed)
    }
}

/// A key: borrowed from the body unless it had an escape.
struct Text<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Param::deserialize(deserializer)? {
            Param::Text(t) => Ok(Text(t)),
            Param::Other => Err(de::Error::custom("a key is a string")),
        }
    }
}

/// A parameter's value: text (borrowed from the body unless it had an escape), or any other
/// JSON value, read and dropped. Arrays and objects are read by `Value`'s own visitor, with
/// its checks and its nesting limit, so a body refused before is refused alike.
enum Param<'a> {
    Text(Cow<'a, str>),
    Other,
}

impl<'de> serde::Deserialize<'de> for Param<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ParamVisitor;

        impl<'de> Visitor<'de> for ParamVisitor {
            type Value = Param<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Param<'de>, E> {
                Ok(Param::Text(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Param<'de>, E> {
                Ok(Param::Text(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Param<'de>, E> {
                Ok(Param::Text(Cow::Owned(v)))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Param<'de>, E> {
                Ok(Param::Other)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Param<'de>, E> {
                Ok(Param::Other)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Param<'de>, E> {
                Ok(Param::Other)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Param<'de>, E> {
                Ok(Param::Other)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Param<'de>, E> {
                Ok(Param::Other)
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Param<'de>, A::Error> {
                Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(Param::Other)
            }

            // Objects, and numbers (which `arbitrary_precision` hands over as a map, and
            // `Value`'s visitor checks).
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Param<'de>, A::Error> {
                Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Param::Other)
            }
        }

        deserializer.deserialize_any(ParamVisitor)
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

/// One string value against its field's length limit and alphabet (1002).
fn check_value(field: &Field, s: &str, configured_max: usize) -> Result<(), EnvelopeError> {
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
    Ok(())
}
