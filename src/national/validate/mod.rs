//! Validation of a national business message against the standard.
//!
//! The walker follows the service's compiled schema over a `serde_json::Value` and checks
//! type, format and length, value domains and required fields; then the cross-field rules of
//! [`rules`] (ID numbers, dates, declarations). Every violation names its field path
//! (`user.idNo`, `trips[1].departTime`) and maps to 1001 (missing) or 1002 (bad format).
//! All violations of a message are reported together, up to [`MAX_VIOLATIONS`].

mod dup;
mod leaf;
mod rules;

pub use rules::{FUTURE_SKEW_SECS, ID_TYPE_RESIDENT_CARD};

pub use dup::{NotUnique, parse_unique};

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::standard::{Direction, Node, ObjectNode, ReturnCode, ServiceName, Standard};

/// The largest message `validate_bytes` parses. Business content with five Base64 evidence
/// files of a correction fits; anything larger is refused before parsing.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;
/// At most this many violations are reported; a report that stops here says so.
pub const MAX_VIOLATIONS: usize = 100;

/// What validation needs besides the message: the validation clock.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// The Unix time dates are judged against (birth dates not in the future, …).
    pub now_unix: i64,
}

impl Context {
    /// A context on the system clock.
    pub fn now() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        Self { now_unix: now }
    }
}

/// One thing wrong with a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Field path, e.g. `user.idNo`; empty for the message as a whole.
    pub path: String,
    /// 1001 or 1002.
    #[serde(serialize_with = "ser_code")]
    pub code: ReturnCode,
    /// What is wrong, without the value (it may be personal data).
    pub message: String,
    /// How much of `path` the schema named: all of it, but for a field the message named
    /// itself (an unknown field), whose key is the sender's text ([`Report::paths_for_log`]).
    #[serde(skip)]
    pub known: usize,
}

fn ser_code<S: serde::Serializer>(c: &ReturnCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(c.as_str())
}

/// The result of validating one message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every violation, in document order.
    pub violations: Vec<Violation>,
    /// Whether violations were left out past [`MAX_VIOLATIONS`].
    pub truncated: bool,
}

impl Report {
    /// Whether the message is valid.
    pub fn is_valid(&self) -> bool {
        self.violations.is_empty()
    }

    /// The return code for the whole message: 0 when valid, 1001 when anything required is
    /// missing (a caller must fix that first), else 1002.
    pub fn return_code(&self) -> ReturnCode {
        if self.violations.is_empty() {
            ReturnCode::Success
        } else if self
            .violations
            .iter()
            .any(|v| v.code == ReturnCode::MissingParameter)
        {
            ReturnCode::MissingParameter
        } else {
            ReturnCode::BadFormat
        }
    }

    fn single(code: ReturnCode, message: String) -> Self {
        Self {
            violations: vec![Violation {
                path: String::new(),
                code,
                message,
                known: 0,
            }],
            truncated: false,
        }
    }

    /// The violations' paths for a log line about a message from elsewhere (a region's
    /// answer): a key the message chose itself (an unknown field) is not shown, only where it
    /// was, since a region that keyed its answer by ID number would put the numbers in the
    /// log; at most [`LOGGED_PATHS`] paths, then how many more.
    pub fn paths_for_log(&self) -> String {
        let mut out = String::new();
        for (i, v) in self.violations.iter().take(LOGGED_PATHS).enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let known = v.path.get(..v.known).unwrap_or_default();
            if v.known >= v.path.len() {
                out.push_str(known);
            } else if known.is_empty() {
                out.push_str("(a field of its own)");
            } else {
                let _ = write!(out, "{known}.(a field of its own)");
            }
        }
        let more = self.violations.len().saturating_sub(LOGGED_PATHS);
        if more > 0 || self.truncated {
            let _ = write!(
                out,
                " and {more}{} more",
                if self.truncated { "+" } else { "" }
            );
        }
        out
    }
}

/// The most violation paths [`Report::paths_for_log`] shows.
pub const LOGGED_PATHS: usize = 10;

/// Parses and validates raw bytes: size, UTF-8 and JSON syntax first, then the schema.
/// Returns the parsed value when it is valid.
///
/// # Errors
/// The report of every violation.
pub fn validate_bytes(
    std: &Standard,
    service: ServiceName,
    dir: Direction,
    bytes: &[u8],
    cx: &Context,
) -> Result<Value, Report> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(Report::single(
            ReturnCode::BadFormat,
            format!(
                "message is {} bytes, over the limit of {MAX_MESSAGE_BYTES}",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Report::single(
            ReturnCode::BadFormat,
            format!(
                "message is not UTF-8 (first bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    if text.trim().is_empty() {
        return Err(Report::single(
            ReturnCode::MissingParameter,
            "message is empty".to_owned(),
        ));
    }
    // serde_json refuses nesting deeper than 128 with an error, so a nesting bomb costs
    // one bounded parse and no stack overflow.
    let value = parse_unique(text.as_bytes()).map_err(|e| match e {
        NotUnique::Json(e) => Report::single(
            ReturnCode::BadFormat,
            format!(
                "not valid JSON at line {} column {}: {}",
                e.line(),
                e.column(),
                json_reason(&e)
            ),
        ),
        NotUnique::Duplicate(key) => Report::single(
            ReturnCode::BadFormat,
            format!("duplicate key `{key}`: a key may appear once per object"),
        ),
    })?;
    let report = validate_value(std, service, dir, &value, cx);
    if report.is_valid() {
        Ok(value)
    } else {
        Err(report)
    }
}

/// serde_json's message without its own position suffix (we print line and column).
fn json_reason(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.find(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// Validates a parsed message against one direction of a service.
pub fn validate_value(
    std: &Standard,
    service: ServiceName,
    dir: Direction,
    value: &Value,
    cx: &Context,
) -> Report {
    let mut w = Walker {
        std,
        cx,
        report: Report::default(),
    };
    // Room for a deep field's path at once: grown a field at a time, it was reallocated five
    // times a relayed request.
    let mut path = String::with_capacity(128);
    w.node(std.service(service).schema(dir), value, &mut path);
    w.report
}

pub(crate) struct Walker<'a> {
    pub(crate) std: &'a Standard,
    pub(crate) cx: &'a Context,
    pub(crate) report: Report,
}

impl Walker<'_> {
    pub(crate) fn push(&mut self, path: &str, code: ReturnCode, message: String) {
        self.push_at(path, path.len(), code, message);
    }

    /// [`Walker::push`] of a path of which the schema named the first `known` bytes.
    fn push_at(&mut self, path: &str, known: usize, code: ReturnCode, message: String) {
        if self.report.violations.iter().any(|v| v.path == path) && !path.is_empty() {
            // One violation per field: the first says what to fix.
            return;
        }
        if self.report.violations.len() >= MAX_VIOLATIONS {
            self.report.truncated = true;
            // The return code says what to fix first: a missing field (1001) must not be
            // lost behind a hundred others. It takes the last place.
            let missing = |v: &Violation| v.code == ReturnCode::MissingParameter;
            if code == ReturnCode::MissingParameter && !self.report.violations.iter().any(missing) {
                self.report.violations.pop();
                self.report.violations.push(Violation {
                    path: path.to_owned(),
                    code,
                    message,
                    known,
                });
            }
            return;
        }
        self.report.violations.push(Violation {
            path: path.to_owned(),
            code,
            message,
            known,
        });
    }

    fn node(&mut self, node: &Node, v: &Value, path: &mut String) {
        match node.resolve() {
            Node::Object(o) => self.object(o, v, path),
            Node::Array(a) => {
                let Some(items) = v.as_array() else {
                    self.push(
                        path,
                        ReturnCode::BadFormat,
                        format!("expected an array, got {}", kind(v)),
                    );
                    return;
                };
                if let Some(min) = a.min_items {
                    if (items.len() as u64) < min {
                        // A required empty list was reported as missing at the object.
                        self.push(
                            path,
                            ReturnCode::BadFormat,
                            format!("needs at least {min} item(s), got {}", items.len()),
                        );
                    }
                }
                if let Some(max) = a.max_items {
                    if items.len() as u64 > max {
                        self.push(
                            path,
                            ReturnCode::BadFormat,
                            format!("at most {max} item(s), got {}", items.len()),
                        );
                        return;
                    }
                }
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    let _ = write!(path, "[{i}]");
                    self.node(&a.items, item, path);
                    path.truncate(len);
                }
            }
            Node::Element(i) => {
                let el = &self.std.elements[*i];
                self.element(el, v, path);
            }
            Node::Plain(p) => self.plain(p, v, path),
            // `resolve` has followed every reference already.
            Node::Ref(..) => {}
        }
    }

    fn object(&mut self, o: &ObjectNode, v: &Value, path: &mut String) {
        let Some(map) = v.as_object() else {
            self.push(
                path,
                ReturnCode::BadFormat,
                format!("expected an object, got {}", kind(v)),
            );
            return;
        };
        for key in map.keys() {
            if !o.properties.iter().any(|p| &p.name == key) {
                let at = join(path, key);
                self.push_at(
                    &at,
                    path.len(),
                    ReturnCode::BadFormat,
                    "unknown field".to_owned(),
                );
            }
        }
        for prop in &o.properties {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&prop.name);
            match map.get(&prop.name) {
                None => {
                    if prop.required {
                        self.push(
                            path,
                            ReturnCode::MissingParameter,
                            "required field is missing".to_owned(),
                        );
                    }
                }
                Some(Value::String(s))
                    if s.trim().is_empty() && prop.required && !allows_empty(&prop.node) =>
                {
                    self.push(
                        path,
                        ReturnCode::MissingParameter,
                        "required field is empty".to_owned(),
                    );
                }
                Some(Value::Array(a))
                    if a.is_empty() && prop.required && needs_items(&prop.node) =>
                {
                    self.push(
                        path,
                        ReturnCode::MissingParameter,
                        "required list is empty".to_owned(),
                    );
                }
                Some(Value::Null) => {
                    let code = if prop.required {
                        ReturnCode::MissingParameter
                    } else {
                        ReturnCode::BadFormat
                    };
                    self.push(
                        path,
                        code,
                        "null is not a value; omit the field instead".to_owned(),
                    );
                }
                Some(val) => self.node(&prop.node, val, path),
            }
            path.truncate(len);
        }
        if !o.any_of.is_empty() {
            let present = |n: &String| {
                map.get(n).is_some_and(|v| {
                    !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty())
                })
            };
            if !o.any_of.iter().any(|b| b.iter().all(present)) {
                let options: Vec<String> = o.any_of.iter().map(|b| b.join(" + ")).collect();
                self.push(
                    path,
                    ReturnCode::MissingParameter,
                    format!("needs one of: {}", options.join(" | ")),
                );
            }
        }
        rules::object(self, o, map, path);
    }
}

/// Whether a schema explicitly allows the empty string (`minLength: 0`).
fn allows_empty(n: &Node) -> bool {
    matches!(n.resolve(), Node::Plain(p) if p.min_length == Some(0))
}

/// Whether an array schema needs at least one item.
fn needs_items(n: &Node) -> bool {
    matches!(n.resolve(), Node::Array(a) if a.min_items.is_some_and(|m| m > 0))
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
