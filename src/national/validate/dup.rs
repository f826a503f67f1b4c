//! Duplicate object keys. serde_json keeps the last of two equal keys; another parser may
//! keep the first, so a message with duplicates could mean two things to two systems on the
//! path. Validation refuses it (1002).

use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Value};

/// Why [`parse_unique`] refused a text.
#[derive(Debug)]
pub enum NotUnique {
    /// The text is not JSON (serde_json's error, with its line and column).
    Json(serde_json::Error),
    /// The key that appears twice in one object.
    Duplicate(String),
}

/// Parse JSON bytes into a value in one pass, refusing a key that appears twice in one
/// object: the request path's parse of a decrypted `bizContent`, where a second pass over
/// the text cost about 4,300 instructions a request (1.4% of a cached verification).
/// The value is what `serde_json::from_slice::<Value>` gives for the same text.
///
/// # Errors
/// [`NotUnique`]: not JSON, or a repeated key.
pub fn parse_unique(json: &[u8]) -> Result<Value, NotUnique> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let value = de.deserialize_any(Build).map_err(|e| {
        let msg = e.to_string();
        match msg.strip_prefix(PREFIX) {
            Some(rest) => {
                NotUnique::Duplicate(rest.split(DELIM).next().unwrap_or_default().to_owned())
            }
            None => NotUnique::Json(e),
        }
    })?;
    de.end().map_err(NotUnique::Json)?;
    Ok(value)
}

/// serde_json's marker key for a number kept as text (`arbitrary_precision`): its
/// deserializer hands such a number to a visitor as a one-entry map under this key.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Builds a [`Value`], refusing a repeated key.
struct Build;

impl<'de> DeserializeSeed<'de> for Build {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(Build)
    }
}

impl<'de> Visitor<'de> for Build {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element_seed(Build)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let k = match key {
                Key::Number if out.is_empty() => {
                    let text: String = map.next_value()?;
                    let n = text
                        .parse::<serde_json::Number>()
                        .map_err(de::Error::custom)?;
                    return Ok(Value::Number(n));
                }
                Key::Number => NUMBER_TOKEN.to_owned(),
                Key::Name(k) => k,
            };
            let v = map.next_value_seed(Build)?;
            match out.entry(k) {
                Entry::Vacant(e) => {
                    e.insert(v);
                }
                Entry::Occupied(e) => {
                    return Err(de::Error::custom(format!("{PREFIX}{}{DELIM}", e.key())));
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// An object key: serde_json's number marker, told apart without an allocation, or a name.
enum Key {
    Number,
    Name(String),
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(KeySeed)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, s: &str) -> Result<Key, E> {
        Ok(if s == NUMBER_TOKEN {
            Key::Number
        } else {
            Key::Name(s.to_owned())
        })
    }
    fn visit_string<E>(self, s: String) -> Result<Key, E> {
        Ok(if s == NUMBER_TOKEN {
            Key::Number
        } else {
            Key::Name(s)
        })
    }
}

const PREFIX: &str = "hutong-duplicate-key:";
const DELIM: char = '\u{0}';

#[cfg(test)]
mod tests {
    use super::{NotUnique, parse_unique};
    use serde_json::Value;

    fn dup(text: &str) -> Option<String> {
        match parse_unique(text.as_bytes()) {
            Err(NotUnique::Duplicate(k)) => Some(k),
            Ok(_) => None,
            Err(e) => panic!("{text}: {e:?}"),
        }
    }

    #[test]
    fn finds_a_duplicate_at_any_depth() {
        assert_eq!(
            dup(r#"{"a":1,"b":{"c":[{"d":1,"d":2}]}}"#),
            Some("d".to_owned())
        );
        assert_eq!(dup(r#"{"a":1,"a":1}"#), Some("a".to_owned()));
        assert_eq!(dup(r#"{"\u0061":1,"a":2}"#), Some("a".to_owned()));
        assert_eq!(dup(r#"{"a":{"a":1},"b":[1,2.50,1e3]}"#), None);
    }

    #[test]
    fn gives_what_serde_json_gives() {
        for text in [
            r#"{"a":1,"b":-2.50,"c":1e400,"d":12345678901234567890123,"e":[true,false,null]}"#,
            r#"{"s":"\u5f20\u4e09 \"q\" \n","o":{},"l":[],"n":{"x":{"y":[0,{"z":0.0}]}}}"#,
            r#"  [1, "x", {"k": "v"}] "#,
            r#""plain""#,
            "-0",
            r#"{"$serde_json::private::Number":"1"}"#,
        ] {
            let want: Result<Value, _> = serde_json::from_str(text);
            let got = parse_unique(text.as_bytes());
            match (want, got) {
                (Ok(w), Ok(g)) => {
                    assert_eq!(g, w, "{text}");
                    assert_eq!(g.to_string(), w.to_string(), "{text}");
                }
                (Err(_), Err(NotUnique::Json(_))) => {}
                (w, g) => panic!("{text}: serde_json {w:?}, parse_unique {g:?}"),
            }
        }
    }

    #[test]
    fn refuses_what_is_not_json() {
        for text in [
            "",
            "{",
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            "[1 2]",
            "nul",
            r#"{"a":01}"#,
        ] {
            assert!(
                matches!(parse_unique(text.as_bytes()), Err(NotUnique::Json(_))),
                "{text}"
            );
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(matches!(
            parse_unique(deep.as_bytes()),
            Err(NotUnique::Json(_))
        ));
    }
}
