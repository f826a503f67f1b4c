//! What the engine reads besides messages: which region issued a scanned code content and
//! who holds it, and the status callbacks between the national model and a dialect.

use super::*;

/// A code content recognised as one region's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeMatch {
    /// The dialect's id.
    pub dialect: String,
    /// The local code id (`qrCode`, the rest after `akm:qrcode:`).
    pub code_id: String,
    /// The national code id carried alongside (`stateCouncilBarCode`), when present.
    pub national_code_id: Option<String>,
}

/// Which dialect issued a scanned code content, by the dialects' code patterns.
pub fn recognise<'a>(
    dialects: impl IntoIterator<Item = &'a Dialect>,
    content: &str,
) -> Option<CodeMatch> {
    dialects.into_iter().find_map(|d| {
        d.codes
            .iter()
            .find_map(|p| match_pattern(p, content))
            .map(|(code_id, national_code_id)| CodeMatch {
                dialect: d.id.clone(),
                code_id,
                national_code_id,
            })
    })
}

fn match_pattern(p: &CodePattern, content: &str) -> Option<(String, Option<String>)> {
    match p {
        CodePattern::Prefix(prefix) => content
            .strip_prefix(prefix.as_str())
            // In a URL (`…&id=akm:qrcode:<hex>&…`) the prefix may sit inside a parameter.
            .or_else(|| content.split_once(prefix.as_str()).map(|(_, rest)| rest))
            .map(|rest| {
                let id: String = rest
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                (id, None)
            })
            .filter(|(id, _)| !id.is_empty()),
        CodePattern::Url {
            host,
            path_prefix,
            param,
            national_param,
        } => {
            let rest = content
                .strip_prefix("https://")
                .or_else(|| content.strip_prefix("http://"))?;
            let (authority, path_and_query) = rest.split_at(rest.find('/')?);
            if !authority.eq_ignore_ascii_case(host)
                || !path_and_query.starts_with(path_prefix.as_str())
            {
                return None;
            }
            let no_fragment = path_and_query.split('#').next().unwrap_or_default();
            let query = no_fragment
                .split_once('?')
                .map(|(_, q)| q)
                .unwrap_or_default();
            let get = |name: &str| {
                query.split('&').find_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    (k == name && !v.is_empty()).then(|| v.to_owned())
                })
            };
            let national = national_param.as_deref().and_then(get);
            let local = get(param).or_else(|| national.clone())?;
            Some((local, national))
        }
    }
}

/// The holder's full ID (type code, number) in a dialect answer, read before masking, for
/// the gateway's link registry: the field a rule masks as an ID number, when the region
/// sent it unmasked, and the ID type beside it (`10`, a resident ID card, when the answer
/// names none). `None` when the answer carries no full ID number.
///
/// The number leaves this function only to be turned into a pseudonym at once; it is never
/// stored or logged.
pub fn holder_id(
    d: &Dialect,
    service: ServiceName,
    dir: Direction,
    dialect: &Value,
) -> Option<(String, String)> {
    let m = message(d, service, dir).ok()?;
    let id_no = m.rules.iter().find_map(|r| {
        if r.mask != Some(crate::standard::PersonalClass::Id) {
            return None;
        }
        let s = scalar_text(path::get(dialect, &r.dialect)?)?;
        (!s.contains('*') && !s.trim().is_empty()).then(|| s.trim().to_owned())
    })?;
    // The type as the answer gives it: a rule to a national `idType`, or the message's
    // `holder_type` where the national answer has no element for it. A type the map does
    // not know gives no holder: a guess would file a passport number as an ID card number,
    // one person under two pseudonyms. An answer that names no type at all is taken as an
    // ID card (10), the type a region's holders have unless it says otherwise.
    let rules = m
        .rules
        .iter()
        .filter(|r| r.national.ends_with("idType"))
        .map(|r| (r.dialect.as_str(), r.map.as_ref()));
    let given = m
        .holder_type
        .iter()
        .map(|h| (h.dialect.as_str(), h.map.as_ref()))
        .chain(rules)
        .find_map(|(at, map)| Some((map, scalar_text(path::get(dialect, at)?)?)));
    let id_type = match given {
        None => "10".to_owned(),
        Some((Some(map), raw)) => match map.to_national(&raw) {
            Mapped::Exact(c) => c.to_owned(),
            _ => return None,
        },
        Some((None, raw)) => raw,
    };
    Some((id_type, id_no))
}

/// A status-change callback (the event's fields, as in
/// [`crate::link::outbox::CallbackEvent`]) in the region's own shape: its colour map, its
/// date format, its constants. `None` when the dialect takes no callbacks.
///
/// # Errors
/// [`TranslateError`] when a value has no place in the dialect (a colour outside its map
/// with no fallback, a time that does not parse).
pub fn callback_to_dialect(d: &Dialect, event: &Value) -> Result<Option<Value>, TranslateError> {
    let Some(cb) = &d.callback else {
        return Ok(None);
    };
    let mut out = Value::Object(Map::new());
    for (p, v) in &cb.constants {
        write(&mut out, p, v.clone())?;
    }
    for f in &cb.fields {
        let Some(v) = event.get(&f.event).filter(|v| !v.is_null()) else {
            continue;
        };
        let bad = |expected: &str| TranslateError::BadValue {
            path: f.event.clone(),
            expected: expected.to_owned(),
        };
        let text = scalar_text(v).ok_or_else(|| bad("a text"))?;
        let v = if let Some(map) = &f.map {
            match map.to_dialect(&text) {
                Mapped::Exact(x) | Mapped::Fallback(x) => Value::String(x.to_owned()),
                Mapped::Unknown => {
                    return Err(TranslateError::UnknownValue {
                        path: f.event.clone(),
                        map: map.name.clone(),
                    });
                }
            }
        } else if let Some(df) = f.date {
            df.to_dialect(&text)
                .ok_or_else(|| bad("a date-time `yyyy-MM-dd HH:mm:ss`"))?
        } else {
            Value::String(text)
        };
        write(&mut out, &f.dialect, v)?;
    }
    Ok(Some(out))
}

/// The mirror of [`callback_to_dialect`], for a region's side (the simulators): the event
/// fields found in a callback in the dialect's shape.
///
/// # Errors
/// [`TranslateError`] when a mapped value is unknown.
pub fn callback_to_event(d: &Dialect, msg: &Value) -> Result<Option<Value>, TranslateError> {
    let Some(cb) = &d.callback else {
        return Ok(None);
    };
    let mut out = Map::new();
    for f in &cb.fields {
        let Some(v) = path::get(msg, &f.dialect).filter(|v| !v.is_null()) else {
            continue;
        };
        let v = if let Some(map) = &f.map {
            let text = scalar_text(v).unwrap_or_default();
            match map.to_national(&text) {
                Mapped::Exact(x) | Mapped::Fallback(x) => Value::String(x.to_owned()),
                Mapped::Unknown => {
                    return Err(TranslateError::UnknownValue {
                        path: f.dialect.clone(),
                        map: map.name.clone(),
                    });
                }
            }
        } else if let Some(df) = f.date {
            df.to_national(v)
                .map(|(t, _)| Value::String(t))
                .ok_or_else(|| TranslateError::BadValue {
                    path: f.dialect.clone(),
                    expected: "a date".into(),
                })?
        } else {
            Value::String(scalar_text(v).unwrap_or_default())
        };
        out.insert(f.event.clone(), v);
    }
    Ok(Some(Value::Object(out)))
}
