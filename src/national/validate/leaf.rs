//! Checks of one value against a data element or a plain parameter.

use serde_json::Value;

use crate::national::time::{Date, DateTime};
use crate::standard::{Element, Format, PlainLeaf, ReturnCode, Rule, WireType};

use super::{Walker, kind};

impl Walker<'_> {
    /// Checks a value bound to a data element: JSON type, format, table, range and the
    /// single-field rules. Rules that need siblings (`id-number`) run at the object.
    pub(super) fn element(&mut self, el: &Element, v: &Value, path: &str) {
        let bad = |w: &mut Self, msg: String| {
            w.push(
                path,
                ReturnCode::BadFormat,
                format!("{} ({}): {msg}", el.name, el.key),
            );
        };
        match (el.wire_type(), v) {
            (WireType::Boolean, Value::Bool(_)) => {}
            (WireType::Integer, Value::Number(n)) => {
                let Some(u) = n.as_u64() else {
                    return bad(self, "expected a non-negative integer".into());
                };
                if let Format::Digits { max, .. } = el.format {
                    if u.to_string().len() > max as usize {
                        return bad(self, format!("at most {max} digit(s) ({})", el.format));
                    }
                }
                self.range(el, u as f64, path);
            }
            (WireType::Number, Value::Number(n)) => {
                let Format::Decimal { digits, frac } = el.format else {
                    return;
                };
                // With `arbitrary_precision`, this is the number as the sender wrote it.
                let text = n.to_string();
                let Some(f) = n.as_f64().filter(|_| !text.contains(['e', 'E'])) else {
                    return bad(self, "expected a plain decimal number".into());
                };
                let unsigned = text.trim_start_matches('-');
                let (int, dec) = unsigned.split_once('.').unwrap_or((unsigned, ""));
                if dec.len() > frac as usize || int.len() + dec.len() > digits as usize {
                    return bad(
                        self,
                        format!(
                            "at most {digits} digits, {frac} after the point ({})",
                            el.format
                        ),
                    );
                }
                self.range(el, f, path);
            }
            (WireType::String, Value::String(s)) => match el.multi {
                Some(sep) => {
                    for part in s.split(sep) {
                        if let Err(m) = self.string_part(el, part) {
                            return bad(self, m);
                        }
                    }
                }
                None => {
                    if let Err(m) = self.string_part(el, s) {
                        bad(self, m);
                    }
                }
            },
            (t, other) => bad(
                self,
                format!("expected {}, got {}", article(t), kind(other)),
            ),
        }
    }

    fn range(&mut self, el: &Element, x: f64, path: &str) {
        if let Some((lo, hi)) = el.range {
            if x < lo || x > hi {
                self.push(
                    path,
                    ReturnCode::BadFormat,
                    format!("{} ({}): must be within {lo}..={hi}", el.name, el.key),
                );
            }
        }
    }

    /// One string value (or one part of a multi-valued one). The message never quotes the
    /// value: it may be personal data.
    fn string_part(&self, el: &Element, s: &str) -> Result<(), String> {
        if s.is_empty() {
            return Err("empty value".into());
        }
        let n = s.chars().count() as u32;
        match el.format {
            Format::Text { min, max } => {
                if n < min || n > max {
                    return Err(length_msg(min, max, n, "character"));
                }
                if s.chars().any(char::is_control) {
                    return Err("control characters are not allowed".into());
                }
            }
            Format::AlphaNum { min, max } => {
                if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err("only ASCII letters and digits are allowed".into());
                }
                if n < min || n > max {
                    return Err(length_msg(min, max, n, "character"));
                }
            }
            Format::Digits { min, max } => {
                if !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("only digits are allowed".into());
                }
                if n < min || n > max {
                    return Err(length_msg(min, max, n, "digit"));
                }
            }
            Format::Date => {
                if Date::parse(s).is_none() {
                    return Err("expected a real date as yyyy-MM-dd".into());
                }
            }
            Format::DateTime => {
                if DateTime::parse(s).is_none() {
                    return Err("expected a real date-time as yyyy-MM-dd HH:mm:ss".into());
                }
            }
            Format::Decimal { .. } | Format::Boolean => {}
        }
        if let Some(t) = el.table {
            let table = &self.std.tables[t];
            if table.get(s).is_none() {
                return Err(format!("not a code of table {} ({})", table.id, table.name));
            }
        }
        match el.rule {
            Some(Rule::Region) if !self.std.divisions.is_current(s) => {
                Err("not a division code of the current GB/T 2260 table".into())
            }
            Some(Rule::Country) => match self.std.countries.get(s) {
                Some(c) if c.alpha3 == s || c.numeric == s => Ok(()),
                _ => Err("not a GB/T 2659 alpha-3 or numeric-3 code".into()),
            },
            Some(Rule::Hex32)
                if !(s.len() == 32
                    && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))) =>
            {
                Err("expected 32 lowercase hexadecimal digits".into())
            }
            Some(Rule::Phone) if !is_phone(s) => {
                Err("expected a telephone number: digits, an optional leading +, and dashes".into())
            }
            Some(Rule::DatePast) => match Date::parse(s) {
                Some(d) if d > Date::beijing_today(self.cx.now_unix) => {
                    Err("date is in the future".into())
                }
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Checks a plain (non-element) parameter.
    pub(super) fn plain(&mut self, p: &PlainLeaf, v: &Value, path: &str) {
        let ok_type = match (p.ty, v) {
            (WireType::String, Value::String(_)) | (WireType::Boolean, Value::Bool(_)) => true,
            (WireType::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (WireType::Number, Value::Number(_)) => true,
            _ => false,
        };
        if !ok_type {
            return self.push(
                path,
                ReturnCode::BadFormat,
                format!("expected {}, got {}", article(p.ty), kind(v)),
            );
        }
        if let Some(e) = &p.enumeration {
            if !e.contains(v) {
                let allowed: Vec<String> = e.iter().map(ToString::to_string).collect();
                return self.push(
                    path,
                    ReturnCode::BadFormat,
                    format!("must be one of {}", allowed.join(", ")),
                );
            }
        }
        if let Value::String(s) = v {
            let n = s.chars().count() as u64;
            if p.min_length.is_some_and(|m| n < m) || p.max_length.is_some_and(|m| n > m) {
                let (lo, hi) = (p.min_length.unwrap_or(0), p.max_length.unwrap_or(u64::MAX));
                return self.push(
                    path,
                    ReturnCode::BadFormat,
                    format!("length {n} is outside {lo}..={hi}"),
                );
            }
            if let Some(t) = p.table {
                let table = &self.std.tables[t];
                if table.get(s).is_none() {
                    return self.push(
                        path,
                        ReturnCode::BadFormat,
                        format!("not a code of table {}", table.id),
                    );
                }
            }
        }
        if let Some(x) = v.as_f64() {
            if p.minimum.is_some_and(|m| x < m) || p.maximum.is_some_and(|m| x > m) {
                let lo = p.minimum.map_or("-inf".into(), |m| m.to_string());
                let hi = p.maximum.map_or("inf".into(), |m| m.to_string());
                self.push(
                    path,
                    ReturnCode::BadFormat,
                    format!("must be within {lo}..={hi}"),
                );
            }
        }
    }
}

fn length_msg(min: u32, max: u32, n: u32, unit: &str) -> String {
    if min == max {
        format!("must be exactly {max} {unit}(s), got {n}")
    } else {
        format!("must be {min} to {max} {unit}(s), got {n}")
    }
}

fn article(t: WireType) -> &'static str {
    match t {
        WireType::String => "a string",
        WireType::Integer => "an integer",
        WireType::Number => "a number",
        WireType::Boolean => "a boolean",
    }
}

/// Digits with an optional leading `+` and inner dashes, 5 to 20 characters; a mainland
/// mobile number (11 digits) must start with 1.
pub(super) fn is_phone(s: &str) -> bool {
    let body = s.strip_prefix('+').unwrap_or(s);
    let digits = body.bytes().filter(u8::is_ascii_digit).count();
    let shape = (5..=20).contains(&s.len())
        && body.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && !body.starts_with('-')
        && !body.ends_with('-')
        && digits >= 5;
    // An 11-digit number without a country code is a mainland mobile: it starts with 1.
    // (`+6591234567` is 11 characters too, and a valid international number.)
    let mobile_ok = s.starts_with('+')
        || !(s.len() == 11 && body.bytes().all(|b| b.is_ascii_digit()))
        || s.starts_with('1');
    shape && mobile_ok
}
