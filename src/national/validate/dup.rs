//! Duplicate object keys. serde_json keeps the last of two equal keys; another parser may
//! keep the first, so a message with duplicates could mean two things to two systems on the
//! path. Validation refuses it (1002).

use std::collections::HashSet;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Returns the first duplicated key found, if any. `text` is already known to be JSON.
pub(super) fn check(text: &str) -> Result<(), String> {
    check_bytes(text.as_bytes())
}

/// [`check`] of JSON bytes (a decrypted `bizContent`, already parsed once).
pub(super) fn check_bytes(json: &[u8]) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(json);
    match de.deserialize_any(Scan) {
        Ok(()) => Ok(()),
        Err(e) => {
            let msg = e.to_string();
            match msg.strip_prefix(PREFIX) {
                Some(rest) => Err(rest.split(DELIM).next().unwrap_or_default().to_owned()),
                // Not ours: the text parsed before, so this cannot happen; treat as clean.
                None => Ok(()),
            }
        }
    }
}

const PREFIX: &str = "hutong-duplicate-key:";
const DELIM: char = '\u{0}';

/// Walks any JSON value, remembering the keys of each object.
struct Scan;

impl<'de> DeserializeSeed<'de> for Scan {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(Scan)
    }
}

impl<'de> Visitor<'de> for Scan {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Scan)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            if !seen.insert(k.clone()) {
                return Err(de::Error::custom(format!("{PREFIX}{k}{DELIM}")));
            }
            map.next_value_seed(Scan)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_a_duplicate_at_any_depth() {
        assert_eq!(
            super::check(r#"{"a":1,"b":{"c":[{"d":1,"d":2}]}}"#),
            Err("d".to_owned())
        );
        assert_eq!(super::check(r#"{"a":1,"a":1}"#), Err("a".to_owned()));
        assert_eq!(super::check(r#"{"a":{"a":1},"b":[1,2.50,1e3]}"#), Ok(()));
    }
}
