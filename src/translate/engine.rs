//! The translation itself: one [`MessageMap`] read in one of two directions.
//!
//! National → dialect writes the constants, then each rule whose national field is
//! present (or has a dialect default), then reports every national leaf no rule consumed.
//! Dialect → national is the mirror image; constants, ignored fields, the result code and
//! the signing envelope count as consumed.
//!
//! Its `codes` module reads what is not a message: a scanned code's region and its
//! holder, and the status callbacks both ways.

use serde_json::{Map, Value};

use super::dialect::{CodePattern, Dialect, MessageMap, Rule};
use super::path;
use super::value::{Mapped, scalar_text};
use super::{Direction, LossKind, LossReport, TranslateError, Translation};
use crate::standard::ServiceName;

mod codes;

pub use codes::{CodeMatch, callback_to_dialect, callback_to_event, holder_id, recognise};

fn message(
    d: &Dialect,
    service: ServiceName,
    dir: Direction,
) -> Result<&MessageMap, TranslateError> {
    let s = d
        .service(service)
        .ok_or_else(|| TranslateError::UnsupportedService {
            dialect: d.id.clone(),
            service,
        })?;
    Ok(match dir {
        Direction::Request => &s.request,
        Direction::Response => &s.response,
    })
}

fn write(out: &mut Value, p: &str, v: Value) -> Result<(), TranslateError> {
    path::set(out, p, v).map_err(|path| TranslateError::Collision { path })
}

/// National → dialect. For a request `national` is the business content; for a response
/// it is `{"code", "msg"?, "bizContent"?}`. The result is a JSON value in the dialect's
/// shape (flat strings for a form codec: see [`super::codec`]).
///
/// # Errors
/// [`TranslateError`] naming the national path of a value the dialect cannot express.
pub fn to_dialect(
    d: &Dialect,
    service: ServiceName,
    dir: Direction,
    national: &Value,
) -> Result<Translation, TranslateError> {
    let m = message(d, service, dir)?;
    let mut losses = LossReport::default();
    let mut out = Value::Object(Map::new());
    let biz = match dir {
        Direction::Request => national,
        Direction::Response => {
            outcome_to_dialect(m, national, &mut out, &mut losses)?;
            national.get("bizContent").unwrap_or(&Value::Null)
        }
    };
    if !(biz.is_object() || biz.is_null()) {
        return Err(TranslateError::Shape {
            path: "bizContent".into(),
            expected: "a JSON object",
        });
    }
    for (p, v) in &m.constants {
        write(&mut out, p, v.clone())?;
    }
    // Rules that share a dialect field (a colour and the verdict derived from it) must
    // agree; when they do not, the earlier value is lost and reported.
    let mut written: Vec<(&str, &str, Value)> = Vec::new();
    for r in &m.rules {
        let v = match path::get(biz, &r.national).filter(|v| !v.is_null()) {
            Some(v) => rule_to_dialect(r, v, &mut losses)?,
            None => match &r.dialect_default {
                Some(def) => {
                    losses.push(
                        LossKind::Defaulted,
                        Some(&r.national),
                        Some(&r.dialect),
                        "absent; the dialect default was written",
                    );
                    def.clone()
                }
                None => continue,
            },
        };
        for (d, n, earlier) in &written {
            if *d == r.dialect && *earlier != v {
                losses.push(
                    LossKind::Truncated,
                    Some(n),
                    Some(d),
                    format!(
                        "`{}` writes the same dialect field and disagrees; it won",
                        r.national
                    ),
                );
            }
        }
        write(&mut out, &r.dialect, v.clone())?;
        written.push((&r.dialect, &r.national, v));
    }
    for leaf in path::leaves(biz)? {
        if !m.rules.iter().any(|r| path::covers(&r.national, &leaf)) {
            losses.push(
                LossKind::Unmapped,
                Some(&super::message_path(&leaf)),
                None,
                "the dialect has no field for it",
            );
        }
    }
    Ok(Translation { body: out, losses })
}

fn outcome_to_dialect(
    m: &MessageMap,
    national: &Value,
    out: &mut Value,
    losses: &mut LossReport,
) -> Result<(), TranslateError> {
    let code = national
        .get("code")
        .and_then(scalar_text)
        .ok_or(TranslateError::Shape {
            path: "code".into(),
            expected: "a national response `{code, msg, bizContent}`",
        })?;
    let msg = national.get("msg").and_then(Value::as_str);
    let Some(res) = &m.result else {
        losses.push(
            LossKind::Unmapped,
            Some("code"),
            None,
            "the dialect has no result code",
        );
        if msg.is_some() {
            losses.push(
                LossKind::Unmapped,
                Some("msg"),
                None,
                "the dialect has no message",
            );
        }
        return Ok(());
    };
    let value = match res.map.to_dialect(&code) {
        Mapped::Exact(v) => v,
        Mapped::Fallback(v) => {
            losses.push(
                LossKind::Defaulted,
                Some("code"),
                Some(&res.dialect),
                format!(
                    "return code {code} has no match in map `{}`; its fallback was written",
                    res.map.name
                ),
            );
            v
        }
        Mapped::Unknown => {
            return Err(TranslateError::UnknownValue {
                path: "code".into(),
                map: res.map.name.clone(),
            });
        }
    };
    if let Mapped::Exact(back) = res.map.to_national(value) {
        if back != code {
            losses.push(
                LossKind::Truncated,
                Some("code"),
                Some(&res.dialect),
                format!("return code {code} is written as {value}, which reads back as {back}"),
            );
        }
    }
    let v = typed(
        res.dialect_type,
        Value::String(value.to_owned()),
        &res.dialect,
    )?;
    write(out, &res.dialect, v)?;
    match (&res.message, msg) {
        (Some(p), Some(text)) => write(out, p, Value::String(text.to_owned()))?,
        (None, Some(_)) => losses.push(
            LossKind::Unmapped,
            Some("msg"),
            None,
            "the dialect has no message",
        ),
        _ => {}
    }
    Ok(())
}

fn typed(ty: Option<super::value::JsonType>, v: Value, at: &str) -> Result<Value, TranslateError> {
    match ty {
        None => Ok(v),
        Some(t) => t.coerce(&v).ok_or_else(|| TranslateError::BadValue {
            path: at.to_owned(),
            expected: format!("{t:?}").to_lowercase(),
        }),
    }
}

fn rule_to_dialect(r: &Rule, v: &Value, losses: &mut LossReport) -> Result<Value, TranslateError> {
    let bad = |expected: &str| TranslateError::BadValue {
        path: r.national.clone(),
        expected: expected.to_owned(),
    };
    let mut out = if let Some(map) = &r.map {
        let text = scalar_text(v).ok_or_else(|| bad("a scalar"))?;
        let mapped = match map.to_dialect(&text) {
            Mapped::Exact(x) => x,
            Mapped::Fallback(x) => {
                losses.push(
                    LossKind::Defaulted,
                    Some(&r.national),
                    Some(&r.dialect),
                    format!("value not in map `{}`; its fallback was written", map.name),
                );
                x
            }
            Mapped::Unknown => {
                return Err(TranslateError::UnknownValue {
                    path: r.national.clone(),
                    map: map.name.clone(),
                });
            }
        };
        if let Mapped::Exact(back) = map.to_national(mapped) {
            if back != text {
                losses.push(
                    LossKind::Truncated,
                    Some(&r.national),
                    Some(&r.dialect),
                    format!("map `{}` merges this value with another", map.name),
                );
            }
        }
        Value::String(mapped.to_owned())
    } else if let Some(f) = r.date {
        let text = v.as_str().ok_or_else(|| bad("a date-time text"))?;
        f.to_dialect(text)
            .ok_or_else(|| bad("a date-time `yyyy-MM-dd HH:mm:ss` (or date `yyyy-MM-dd`)"))?
    } else if let Some(w) = r.region_digits {
        let text = v.as_str().ok_or_else(|| bad("a region code"))?;
        if text.len() != 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("a 6-digit region code"));
        }
        Value::String(if w == 12 {
            format!("{text}000000")
        } else {
            text.to_owned()
        })
    } else {
        v.clone()
    };
    if let Some(t) = r.dialect_type {
        out = typed(Some(t), out, &r.national)?;
    }
    if let (Some(max), Value::String(s)) = (r.max_len, &out) {
        if s.chars().count() > max {
            out = Value::String(s.chars().take(max).collect());
            losses.push(
                LossKind::Truncated,
                Some(&r.national),
                Some(&r.dialect),
                format!("longer than the dialect's {max} characters"),
            );
        }
    }
    Ok(out)
}

/// Dialect → national: the mirror of [`to_dialect`]. A request gives the business
/// content; a response gives `{"code", "msg"?, "bizContent"}`.
///
/// # Errors
/// [`TranslateError`] naming the dialect path of a value the rules cannot read.
pub fn to_national(
    d: &Dialect,
    service: ServiceName,
    dir: Direction,
    dialect: &Value,
) -> Result<Translation, TranslateError> {
    let m = message(d, service, dir)?;
    if !dialect.is_object() {
        return Err(TranslateError::Shape {
            path: "(message)".into(),
            expected: "a JSON object or form",
        });
    }
    let mut losses = LossReport::default();
    // A response's outcome first. The fields of a refusal are read where they can be: a
    // region that refuses may fill them with placeholders (an empty colour), and the caller
    // is owed the refusal (3001), not a translation failure (9002) counted against the
    // region.
    let outcome = match dir {
        Direction::Request => None,
        Direction::Response => Some(outcome_to_national(m, dialect, &mut losses)?),
    };
    let refusal = outcome
        .as_ref()
        .is_some_and(|(code, _)| !matches!(code.as_str(), "0" | "4001"));
    let mut biz = Value::Object(Map::new());
    for r in &m.rules {
        let found = path::get_first(dialect, &r.dialect).filter(|(v, _)| !v.is_null());
        if found.is_some_and(|(_, more)| more) {
            losses.push(
                LossKind::Truncated,
                Some(&r.national),
                Some(&r.dialect),
                "an element on its path is repeated: the first was read",
            );
        }
        match found.map(|(v, _)| v) {
            Some(v) => match rule_to_national(r, v, &mut losses) {
                Ok(v) => write(&mut biz, &r.national, v)?,
                Err(_) if refusal => losses.push(
                    LossKind::Truncated,
                    Some(&r.national),
                    Some(&r.dialect),
                    "a refusal's value that does not read was left out",
                ),
                Err(e) => return Err(e),
            },
            None => {
                if let Some(def) = &r.national_default {
                    write(&mut biz, &r.national, def.clone())?;
                    losses.push(
                        LossKind::Defaulted,
                        Some(&r.national),
                        None,
                        format!(
                            "the dialect has no `{}`; the national default was written",
                            r.dialect
                        ),
                    );
                }
            }
        }
    }
    // A signed field may hold the business object (`bizData`): it is consumed itself, but
    // what lies under it is business content that rules must consume.
    let envelope = d.signing.envelope_fields();
    let mut consumed: Vec<&str> = m.rules.iter().map(|r| r.dialect.as_str()).collect();
    consumed.extend(m.constants.iter().map(|(p, _)| p.as_str()));
    consumed.extend(m.ignore.iter().map(String::as_str));
    consumed.extend(m.holder_type.as_ref().map(|h| h.dialect.as_str()));
    if let Some(res) = &m.result {
        consumed.push(&res.dialect);
        consumed.extend(res.message.as_deref());
    }
    for leaf in path::leaves(dialect)? {
        if envelope.contains(&leaf.as_str())
            || consumed.iter().any(|c| path::covers(c, &leaf))
            || empty_container(dialect, &leaf, &consumed, &envelope)
            // An array that rules read into (its first element): what they left is
            // reported with them.
            || (path::get(dialect, &leaf).is_some_and(Value::is_array)
                && m.rules.iter().any(|r| path::covers(&leaf, &r.dialect)))
        {
            continue;
        }
        losses.push(
            LossKind::Unmapped,
            None,
            Some(&super::message_path(&leaf)),
            "the national model has no field for it",
        );
    }
    let body = match outcome {
        None => biz,
        Some((code, msg)) => {
            let mut out = Map::new();
            out.insert("code".into(), Value::String(code));
            if let Some(msg) = msg {
                out.insert("msg".into(), Value::String(msg));
            }
            if biz.as_object().is_some_and(|b| !b.is_empty()) {
                out.insert("bizContent".into(), biz);
            }
            Value::Object(out)
        }
    };
    Ok(Translation { body, losses })
}

/// Whether a leaf is an empty value where consumed fields would sit: an XML element that
/// held only namespace declarations (`<validateInfo xmlns="…"/>`), or an empty object on
/// the way to a constant. It carries nothing to report.
fn empty_container(dialect: &Value, leaf: &str, consumed: &[&str], envelope: &[&str]) -> bool {
    let empty = match path::get(dialect, leaf) {
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Null) => true,
        _ => false,
    };
    empty
        && consumed
            .iter()
            .chain(envelope)
            .any(|c| c.len() > leaf.len() && path::covers(leaf, c))
}

fn outcome_to_national(
    m: &MessageMap,
    dialect: &Value,
    losses: &mut LossReport,
) -> Result<(String, Option<String>), TranslateError> {
    let Some(res) = &m.result else {
        // A dialect without result codes answers success or not at all (HTTP status).
        return Ok(("0".into(), None));
    };
    let raw = path::get(dialect, &res.dialect)
        .and_then(scalar_text)
        .ok_or_else(|| TranslateError::BadValue {
            path: res.dialect.clone(),
            expected: "a result code".into(),
        })?;
    let code = match res.map.to_national(&raw) {
        Mapped::Exact(c) => c,
        Mapped::Fallback(c) => {
            losses.push(
                LossKind::Defaulted,
                Some("code"),
                Some(&res.dialect),
                format!(
                    "result code {raw} has no match in map `{}`; its fallback was used",
                    res.map.name
                ),
            );
            c
        }
        Mapped::Unknown => {
            return Err(TranslateError::UnknownValue {
                path: res.dialect.clone(),
                map: res.map.name.clone(),
            });
        }
    };
    let msg = res
        .message
        .as_deref()
        .and_then(|p| path::get(dialect, p))
        .and_then(scalar_text);
    Ok((code.to_owned(), msg))
}

fn rule_to_national(r: &Rule, v: &Value, losses: &mut LossReport) -> Result<Value, TranslateError> {
    let bad = |expected: &str| TranslateError::BadValue {
        path: r.dialect.clone(),
        expected: expected.to_owned(),
    };
    let out = if let Some(map) = &r.map {
        let text = scalar_text(v).ok_or_else(|| bad("a scalar"))?;
        match map.to_national(&text) {
            Mapped::Exact(x) => Value::String(x.to_owned()),
            Mapped::Fallback(x) => {
                losses.push(
                    LossKind::Defaulted,
                    Some(&r.national),
                    Some(&r.dialect),
                    format!("value not in map `{}`; its fallback was used", map.name),
                );
                Value::String(x.to_owned())
            }
            Mapped::Unknown => {
                return Err(TranslateError::UnknownValue {
                    path: r.dialect.clone(),
                    map: map.name.clone(),
                });
            }
        }
    } else if let Some(f) = r.date {
        let (text, lost) = f
            .to_national(v)
            .ok_or_else(|| bad(&format!("a date in the dialect's format ({f:?})")))?;
        if lost {
            losses.push(
                LossKind::Truncated,
                Some(&r.national),
                Some(&r.dialect),
                "milliseconds dropped: national times have whole seconds",
            );
        }
        Value::String(text)
    } else if let Some(w) = r.region_digits {
        let text = scalar_text(v).ok_or_else(|| bad("a region code"))?;
        let want = usize::from(w);
        if text.len() != want || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(&format!("a {want}-digit region code")));
        }
        if text[6..].bytes().any(|b| b != b'0') {
            losses.push(
                LossKind::Truncated,
                Some(&r.national),
                Some(&r.dialect),
                "below county level: national region codes have 6 digits",
            );
        }
        Value::String(text[..6].to_owned())
    } else {
        v.clone()
    };
    let out = match r.national_type {
        Some(t) => typed(Some(t), out, &r.dialect)?,
        None => out,
    };
    match (r.mask, &out) {
        (Some(class), Value::String(s)) => {
            let masked = crate::mask::mask(class, s);
            if masked != *s {
                losses.push(
                    LossKind::Truncated,
                    Some(&r.national),
                    Some(&r.dialect),
                    "masked: the full value is for its holder only",
                );
            }
            Ok(Value::String(masked))
        }
        _ => Ok(out),
    }
}
