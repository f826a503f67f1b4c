//! Value conversions between the national and a dialect side: value maps, date formats,
//! JSON types. Pure functions of their inputs; the clock never enters.

use serde_json::Value;

use crate::national::time::{Date, DateTime};

/// The Unix seconds of 1000-01-01 00:00:00 and of 9999-12-31 23:59:59, Beijing time: the
/// years the national text form holds. A value outside is refused before it is converted
/// (the conversion itself clamps to years 1 to 9999).
const MIN_UNIX_SECS: i64 = -30_610_252_800;
const MAX_UNIX_SECS: i64 = 253_402_271_999;

/// A dialect's date format. The national side is `yyyy-MM-dd HH:mm:ss` (DT15, Beijing
/// time), or `yyyy-MM-dd` (D8) for the date-only formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateFormat {
    /// Unix milliseconds, a JSON number.
    EpochMs,
    /// Unix seconds, a JSON number.
    EpochS,
    /// `yyyy-MM-dd HH:mm:ss`.
    Dashed,
    /// `yyyyMMddHHmmss`.
    Compact,
    /// `yyyy-MM-dd`.
    Date,
    /// `yyyyMMdd`.
    DateCompact,
}

impl DateFormat {
    /// The names a dialect file may use.
    pub const NAMES: &'static str = "epoch-ms, epoch-s, yyyy-MM-dd HH:mm:ss, yyyyMMddHHmmss (YYYYMMDDhhmmss), yyyy-MM-dd, yyyyMMdd";

    /// Parses a format name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "epoch-ms" => Self::EpochMs,
            "epoch-s" => Self::EpochS,
            "yyyy-MM-dd HH:mm:ss" => Self::Dashed,
            "yyyyMMddHHmmss" | "YYYYMMDDhhmmss" => Self::Compact,
            "yyyy-MM-dd" => Self::Date,
            "yyyyMMdd" => Self::DateCompact,
            _ => return None,
        })
    }

    /// National text → dialect value. `None` when the national text is not a date (time)
    /// of the expected form.
    pub fn to_dialect(self, national: &str) -> Option<Value> {
        if matches!(self, Self::Date | Self::DateCompact) {
            let d = Date::parse(national)?;
            return Some(Value::String(match self {
                Self::Date => d.to_string(),
                _ => format!("{:04}{:02}{:02}", d.year, d.month, d.day),
            }));
        }
        let dt = DateTime::parse(national)?;
        Some(match self {
            Self::EpochMs => Value::from(dt.unix() * 1000),
            Self::EpochS => Value::from(dt.unix()),
            Self::Dashed => Value::String(dt.to_string()),
            _ => Value::String(dt.to_string().replace(['-', ' ', ':'], "")),
        })
    }

    /// Dialect value → national text, and whether precision was lost (milliseconds).
    pub fn to_national(self, dialect: &Value) -> Option<(String, bool)> {
        let text = match dialect {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        match self {
            Self::EpochMs | Self::EpochS => {
                let n: i64 = text.parse().ok()?;
                let (secs, lost) = if self == Self::EpochMs {
                    (n.div_euclid(1000), n.rem_euclid(1000) != 0)
                } else {
                    (n, false)
                };
                // Outside years 1000–9999 the national text form cannot hold it. A value
                // far outside (i64::MAX from a region) is refused before any arithmetic,
                // which would overflow, or wrap into a plausible year.
                if !(MIN_UNIX_SECS..=MAX_UNIX_SECS).contains(&secs) {
                    return None;
                }
                Some((DateTime::from_unix(secs).to_string(), lost))
            }
            Self::Dashed => DateTime::parse(&text).map(|d| (d.to_string(), false)),
            Self::Date => Date::parse(&text).map(|d| (d.to_string(), false)),
            Self::Compact => {
                let b = text.as_bytes();
                if b.len() != 14 || !b.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                let dashed = format!(
                    "{}-{}-{} {}:{}:{}",
                    &text[0..4],
                    &text[4..6],
                    &text[6..8],
                    &text[8..10],
                    &text[10..12],
                    &text[12..14]
                );
                DateTime::parse(&dashed).map(|d| (d.to_string(), false))
            }
            Self::DateCompact => {
                Date::parse_compact(text.as_bytes()).map(|d| (d.to_string(), false))
            }
        }
    }
}

/// A JSON type on one side of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    /// A string.
    String,
    /// A number.
    Number,
    /// `true`/`false`.
    Bool,
}

impl JsonType {
    /// Parses a type name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "string" => Self::String,
            "number" => Self::Number,
            "bool" => Self::Bool,
            _ => return None,
        })
    }

    /// Coerces a scalar to this type; `None` when it cannot be (`"abc"` as a number).
    pub fn coerce(self, v: &Value) -> Option<Value> {
        let text = scalar_text(v)?;
        match self {
            Self::String => Some(Value::String(text)),
            Self::Number => serde_json::from_str::<serde_json::Number>(&text)
                .ok()
                .map(Value::Number),
            Self::Bool => match text.as_str() {
                "true" | "1" => Some(Value::Bool(true)),
                "false" | "0" => Some(Value::Bool(false)),
                _ => None,
            },
        }
    }
}

/// The text of a scalar (strings as they are, numbers and booleans as JSON writes them).
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A table of `(national, dialect)` value pairs. In each direction the first matching pair
/// wins, so a map may merge several values into one (Jiangsu's 116 and 118 both read as
/// 1006); writing such a value back is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueMap {
    /// The map's name in the file.
    pub name: String,
    pairs: Vec<(String, String)>,
    fallback_national: Option<String>,
    fallback_dialect: Option<String>,
}

impl ValueMap {
    /// A map from its pairs and fallbacks.
    pub fn new(
        name: &str,
        pairs: Vec<(String, String)>,
        fallback_national: Option<String>,
        fallback_dialect: Option<String>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            pairs,
            fallback_national,
            fallback_dialect,
        }
    }

    /// The dialect value of a national value.
    pub fn to_dialect(&self, national: &str) -> Mapped<'_> {
        match self.pairs.iter().find(|(n, _)| n == national) {
            Some((_, d)) => Mapped::Exact(d),
            None => self
                .fallback_dialect
                .as_deref()
                .map_or(Mapped::Unknown, Mapped::Fallback),
        }
    }

    /// The national value of a dialect value.
    pub fn to_national(&self, dialect: &str) -> Mapped<'_> {
        match self.pairs.iter().find(|(_, d)| d == dialect) {
            Some((n, _)) => Mapped::Exact(n),
            None => self
                .fallback_national
                .as_deref()
                .map_or(Mapped::Unknown, Mapped::Fallback),
        }
    }
}

/// The outcome of a value-map lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapped<'a> {
    /// A pair matched.
    Exact(&'a str),
    /// No pair matched; the map's fallback stands in (reported as defaulted).
    Fallback(&'a str),
    /// No pair matched and there is no fallback.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn epoch_values_far_out_of_range_are_refused_not_wrapped() {
        for (f, n) in [
            (DateFormat::EpochS, i64::MAX),
            (DateFormat::EpochS, i64::MIN),
            (DateFormat::EpochS, 253_402_387_201),
            (DateFormat::EpochMs, i64::MAX),
            (DateFormat::EpochMs, i64::MIN),
        ] {
            assert_eq!(f.to_national(&json!(n)), None, "{f:?} {n}");
        }
        // The last second of 9999 (Beijing) still converts; the next year does not.
        let last = DateTime::parse("9999-12-31 23:59:59").unwrap().unix();
        assert_eq!(
            DateFormat::EpochS.to_national(&json!(last)),
            Some(("9999-12-31 23:59:59".to_owned(), false))
        );
        assert_eq!(DateFormat::EpochS.to_national(&json!(last + 1)), None);
        let first = DateTime::parse("1000-01-01 00:00:00").unwrap().unix();
        assert_eq!(
            DateFormat::EpochS.to_national(&json!(first)),
            Some(("1000-01-01 00:00:00".to_owned(), false))
        );
        assert_eq!(DateFormat::EpochS.to_national(&json!(first - 1)), None);
    }

    #[test]
    fn converts_every_date_format_both_ways() {
        let n = "2026-11-23 08:30:05";
        for (f, want) in [
            (DateFormat::EpochMs, json!(1_795_393_805_000_i64)),
            (DateFormat::EpochS, json!(1_795_393_805_i64)),
            (DateFormat::Dashed, json!(n)),
            (DateFormat::Compact, json!("20261123083005")),
        ] {
            let d = f.to_dialect(n).unwrap();
            assert_eq!(d, want, "{f:?}");
            assert_eq!(f.to_national(&d), Some((n.to_owned(), false)), "{f:?}");
        }
        assert_eq!(
            DateFormat::EpochMs.to_national(&json!(1_795_393_805_123_i64)),
            Some((n.to_owned(), true))
        );
        assert_eq!(
            DateFormat::Compact.to_national(&json!("20261323083005")),
            None
        );
        assert_eq!(
            DateFormat::DateCompact.to_dialect("2026-11-23"),
            Some(json!("20261123"))
        );
    }

    #[test]
    fn maps_first_pair_wins_and_falls_back() {
        let m = ValueMap::new(
            "res",
            vec![("1006".into(), "116".into()), ("1006".into(), "118".into())],
            Some("9002".into()),
            None,
        );
        assert_eq!(m.to_national("118"), Mapped::Exact("1006"));
        assert_eq!(m.to_dialect("1006"), Mapped::Exact("116"));
        assert_eq!(m.to_national("7"), Mapped::Fallback("9002"));
        assert_eq!(m.to_dialect("0"), Mapped::Unknown);
    }
}
