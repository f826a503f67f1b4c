//! Offline conformance of a dialect file (`hutong conformance dialect FILE`): the file
//! loads with no problem, and each of its golden pairs (`cases.toml` beside the fixtures:
//! a national message and the same message in the dialect's wire form, with the loss
//! report each way) translates exactly, both ways it names. Onboarding a region is a file
//! and its fixtures; this is the check a standards team runs on them.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::standard::{Direction, ServiceName};
use crate::translate::{self, Codec, Dialect, LossReport, codec};

/// The golden pairs of one dialect.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldenCases {
    /// The pairs.
    pub case: Vec<GoldenCase>,
}

/// One golden pair.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldenCase {
    /// What it shows.
    pub name: String,
    /// The national service.
    pub service: String,
    /// `request` or `response`.
    pub direction: String,
    /// National side (a file beside `cases.toml`): business content, or `{code, msg,
    /// bizContent}` for a response.
    pub national: String,
    /// Dialect side, in the dialect's wire form (a file).
    pub dialect: String,
    /// `to_dialect`, `to_national`, or both.
    pub ways: Vec<String>,
    /// The loss report expected on the way to the dialect (header form).
    #[serde(default)]
    pub losses_to_dialect: Vec<String>,
    /// And on the way to the national model.
    #[serde(default)]
    pub losses_to_national: Vec<String>,
}

impl GoldenCases {
    /// Reads `dir/cases.toml`.
    ///
    /// # Errors
    /// A message naming the file.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let p = dir.join("cases.toml");
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {}", p.display(), e.message()))
    }
}

/// A loss report as the items of its header form.
pub fn header_items(l: &LossReport) -> Vec<String> {
    let h = l.header_value();
    if h.is_empty() {
        Vec::new()
    } else {
        h.split(',').map(str::to_owned).collect()
    }
}

/// The service and direction a case names.
///
/// # Errors
/// A message for an unknown service or direction.
pub fn kind(c: &GoldenCase) -> Result<(ServiceName, Direction), String> {
    let service: ServiceName = c.service.parse().map_err(|e| format!("{e}"))?;
    let direction = match c.direction.as_str() {
        "request" => Direction::Request,
        "response" => Direction::Response,
        other => return Err(format!("direction `{other}`")),
    };
    Ok((service, direction))
}

/// The codec of a direction.
pub fn wire_of(d: &Dialect, dir: Direction) -> Codec {
    match dir {
        Direction::Request => d.codec,
        Direction::Response => d.response_codec,
    }
}

/// The two sides of a case, read from `dir`: national JSON, and the dialect's wire form
/// decoded.
///
/// # Errors
/// A message naming the unreadable or undecodable file.
pub fn sides(d: &Dialect, dir: &Path, c: &GoldenCase) -> Result<(Value, Value), String> {
    let (_, direction) = kind(c)?;
    let read = |f: &str| std::fs::read(dir.join(f)).map_err(|e| format!("{f}: {e}"));
    let national: Value =
        serde_json::from_slice(&read(&c.national)?).map_err(|e| format!("{}: {e}", c.national))?;
    let dialect = codec::decode(wire_of(d, direction), &read(&c.dialect)?)
        .map_err(|e| format!("{}: {e}", c.dialect))?;
    Ok((national, dialect))
}

/// Checks one pair both ways it names.
///
/// # Errors
/// What differs.
pub fn check(d: &Dialect, c: &GoldenCase, national: &Value, dialect: &Value) -> Result<(), String> {
    let (service, direction) = kind(c)?;
    let wire = wire_of(d, direction);
    // A pair that names no way would check nothing and pass.
    if c.ways.is_empty() {
        return Err("names no way (to_dialect, to_national or both)".to_owned());
    }
    for way in &c.ways {
        match way.as_str() {
            "to_dialect" => {
                let t = translate::to_dialect(d, service, direction, national)
                    .map_err(|e| e.to_string())?;
                // Through the wire form, so a form or XML dialect compares as strings.
                let bytes = codec::encode(wire, &t.body).map_err(|e| e.to_string())?;
                let got = codec::decode(wire, &bytes).map_err(|e| e.to_string())?;
                if got != *dialect {
                    return Err(format!("to_dialect gave {got}, want {dialect}"));
                }
                if header_items(&t.losses) != c.losses_to_dialect {
                    return Err(format!(
                        "to_dialect losses {:?}, want {:?}",
                        t.losses, c.losses_to_dialect
                    ));
                }
            }
            "to_national" => {
                let t = translate::to_national(d, service, direction, dialect)
                    .map_err(|e| e.to_string())?;
                if t.body != *national {
                    return Err(format!("to_national gave {}, want {national}", t.body));
                }
                if header_items(&t.losses) != c.losses_to_national {
                    return Err(format!(
                        "to_national losses {:?}, want {:?}",
                        t.losses, c.losses_to_national
                    ));
                }
            }
            other => return Err(format!("way `{other}`")),
        }
    }
    Ok(())
}

/// Every pair of `dir` against `d`: `(name, Ok or what differs)`.
pub fn check_all(
    d: &Dialect,
    dir: &Path,
    cases: &GoldenCases,
) -> Vec<(String, Result<(), String>)> {
    cases
        .case
        .iter()
        .map(|c| {
            let r = sides(d, dir, c).and_then(|(n, x)| check(d, c, &n, &x));
            (c.name.clone(), r)
        })
        .collect()
}
