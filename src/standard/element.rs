//! Data elements of GB/T 38962: what each one is, and the typed form of its representation
//! (`A..50`, `N6`, `N4,1`, `D8`, `DT15`, …) that validation checks against.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::Label;

/// The data type attribute of an element (WS 363.1 style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ElementType {
    /// String.
    S,
    /// Number.
    N,
    /// Date.
    D,
    /// Date-time.
    DT,
    /// Boolean.
    L,
}

/// The representation format of an element, parsed from its notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `A..n` (min 1) or `An` (exactly n): any characters, counted as Unicode scalar values.
    Text {
        /// Fewest characters.
        min: u32,
        /// Most characters.
        max: u32,
    },
    /// `AN..n` / `ANn`: ASCII letters and digits.
    AlphaNum {
        /// Fewest characters.
        min: u32,
        /// Most characters.
        max: u32,
    },
    /// `N..n` / `Nn`: decimal digits (a string for type S, an integer for type N).
    Digits {
        /// Fewest digits.
        min: u32,
        /// Most digits.
        max: u32,
    },
    /// `Nn,d`: a number of at most `digits` digits, `frac` of them after the point.
    Decimal {
        /// Most digits in all.
        digits: u32,
        /// Most digits after the point.
        frac: u32,
    },
    /// `D8`: a date, `yyyy-MM-dd` on the wire.
    Date,
    /// `DT15`: a date-time, `yyyy-MM-dd HH:mm:ss` (Beijing time) on the wire.
    DateTime,
    /// `L`: a boolean.
    Boolean,
}

/// Why a format notation did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown format notation `{0}` (expected A..n, An, AN..n, ANn, N..n, Nn, Nn,d, D8, DT15 or L)"
)]
pub struct BadFormat(pub String);

impl FromStr for Format {
    type Err = BadFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadFormat(s.to_owned());
        let num = |t: &str| -> Result<u32, BadFormat> {
            match t.parse::<u32>() {
                Ok(n) if n > 0 && n <= 1_000_000 && !t.starts_with('+') => Ok(n),
                _ => Err(bad()),
            }
        };
        // `(min, max)` from the part after the letters: `..n` or `n`.
        let bounds = |rest: &str| -> Result<(u32, u32), BadFormat> {
            match rest.strip_prefix("..") {
                Some(n) => Ok((1, num(n)?)),
                None => {
                    let n = num(rest)?;
                    Ok((n, n))
                }
            }
        };
        match s {
            "D8" => return Ok(Self::Date),
            "DT15" => return Ok(Self::DateTime),
            "L" => return Ok(Self::Boolean),
            _ => {}
        }
        if let Some(rest) = s.strip_prefix("AN") {
            let (min, max) = bounds(rest)?;
            return Ok(Self::AlphaNum { min, max });
        }
        if let Some(rest) = s.strip_prefix('A') {
            let (min, max) = bounds(rest)?;
            return Ok(Self::Text { min, max });
        }
        if let Some(rest) = s.strip_prefix('N') {
            if let Some((d, f)) = rest.split_once(',') {
                let digits = num(d)?;
                let frac = f.parse::<u32>().map_err(|_| bad())?;
                if frac >= digits {
                    return Err(bad());
                }
                return Ok(Self::Decimal { digits, frac });
            }
            let (min, max) = bounds(rest)?;
            return Ok(Self::Digits { min, max });
        }
        Err(bad())
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = |f: &mut fmt::Formatter<'_>, p: &str, min: u32, max: u32| {
            if min == max {
                write!(f, "{p}{max}")
            } else {
                write!(f, "{p}..{max}")
            }
        };
        match *self {
            Self::Text { min, max } => b(f, "A", min, max),
            Self::AlphaNum { min, max } => b(f, "AN", min, max),
            Self::Digits { min, max } => b(f, "N", min, max),
            Self::Decimal { digits, frac } => write!(f, "N{digits},{frac}"),
            Self::Date => f.write_str("D8"),
            Self::DateTime => f.write_str("DT15"),
            Self::Boolean => f.write_str("L"),
        }
    }
}

/// The JSON type a value takes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireType {
    /// A JSON string.
    String,
    /// A JSON integer.
    Integer,
    /// A JSON number.
    Number,
    /// A JSON boolean.
    Boolean,
}

impl WireType {
    /// The JSON Schema name of the type.
    pub const fn json_schema_name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
        }
    }
}

/// A value-domain rule implemented in code (`src/national/validate/rules.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// GB 11643 citizen ID number, when the sibling `idType` is `10`.
    IdNumber,
    /// A 6-digit GB/T 2260 code of the current table.
    Region,
    /// A GB/T 2659 alpha-3 or numeric-3 code.
    Country,
    /// 32 lowercase hexadecimal digits.
    Hex32,
    /// A telephone number.
    Phone,
    /// A date not after the validation clock.
    DatePast,
}

/// How a personal field is masked for anyone but its holder (DESIGN.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersonalClass {
    /// `张*`: the first character kept.
    Name,
    /// `11**************01`: the first 2 and last 2 kept.
    Id,
    /// `186****5247`: the first 3 and last 4 kept.
    Phone,
}

/// A group of data elements (01 basic, 02 health, 03 trip, 04 code).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Two digits.
    pub id: String,
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// Evidence label.
    pub label: Label,
}

/// One data element, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    /// `PHIC.gg.nnn`.
    pub id: String,
    /// The group id.
    pub group: String,
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// camelCase JSON key.
    pub key: String,
    /// Data type.
    pub ty: ElementType,
    /// Representation format.
    pub format: Format,
    /// Label of the element's existence and name.
    pub label: Label,
    /// Label of its attributes.
    pub attributes_label: Label,
    /// Value domain in words.
    pub description: String,
    /// Evidence ids.
    pub source: String,
    /// Index of its code table in [`super::Standard::tables`], if coded.
    pub table: Option<usize>,
    /// Separator of a multi-valued element.
    pub multi: Option<char>,
    /// Numeric range.
    pub range: Option<(f64, f64)>,
    /// A rule implemented in code.
    pub rule: Option<Rule>,
    /// Masking class, for personal fields.
    pub personal: Option<PersonalClass>,
    /// Whether the profile marks it optional.
    pub optional: bool,
}

impl Element {
    /// The JSON type of the element on the wire.
    pub fn wire_type(&self) -> WireType {
        match (self.ty, self.format) {
            (ElementType::L, _) | (_, Format::Boolean) => WireType::Boolean,
            (ElementType::N, Format::Decimal { .. }) => WireType::Number,
            (ElementType::N, _) => WireType::Integer,
            _ => WireType::String,
        }
    }

    /// Whether the type and the format agree (`D` with `D8`, `N` with digits, …).
    pub(crate) fn type_format_agree(ty: ElementType, format: Format) -> bool {
        matches!(
            (ty, format),
            (ElementType::D, Format::Date)
                | (ElementType::DT, Format::DateTime)
                | (ElementType::L, Format::Boolean)
                | (
                    ElementType::N,
                    Format::Digits { .. } | Format::Decimal { .. }
                )
                | (
                    ElementType::S,
                    Format::Text { .. } | Format::AlphaNum { .. } | Format::Digits { .. }
                )
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_notation_and_prints_it_back() {
        for s in [
            "A..50", "A3", "AN..32", "AN32", "N6", "N..2", "N4,1", "D8", "DT15", "L",
        ] {
            let f: Format = s.parse().unwrap();
            assert_eq!(f.to_string(), s);
        }
        assert_eq!(
            "N4,1".parse::<Format>().unwrap(),
            Format::Decimal { digits: 4, frac: 1 }
        );
    }

    #[test]
    fn rejects_malformed_notation() {
        for s in [
            "", "A", "A..", "A..0", "X5", "N4,4", "N4,x", "AN..-1", "D9", "A+5", "N,1",
        ] {
            assert!(s.parse::<Format>().is_err(), "{s} should not parse");
        }
    }
}
