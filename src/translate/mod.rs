//! Regional dialects (DESIGN.md §6): the mapping engine that carries national business
//! content to a region's own API and back.
//!
//! On the request path it stands between routing and the upstream call: the route picks a
//! region, this module rewrites the national message into that region's dialect, the
//! upstream sends it, and the answer comes back through here. Ingress runs the same maps
//! the other way round.
//!
//! - [`dialect`]: a loaded dialect; `load` parses `config/regions/*.toml` and checks it
//!   whole.
//! - [`engine`]: the translation in both directions, with a [`LossReport`].
//! - [`codec`]: the wire forms (JSON, form-urlencoded, XML) as JSON values for the engine;
//!   [`xml`] reads and writes XML within strict limits.
//! - [`value`]: value maps, date formats, JSON types.
//! - [`sign`]: the dialects' own request signatures (HMAC-SHA256 over concatenated fields,
//!   a date-keyed MD5 password, SHA-256 `x-tif-*` header signatures).
//!
//! The engine is pure and synchronous: no I/O, no clock, no configuration read at call
//! time. Nothing is dropped silently: every field that a translation could not carry,
//! filled with a default, or shortened is named in the loss report.

pub mod codec;
pub mod dialect;
pub mod engine;
mod load;
mod path;
pub mod sign;
pub mod value;
pub mod xml;

pub use dialect::{
    CodePattern, Codec, Dialect, GatewayFilled, LoadError, Problem, ServiceMap, SignTarget, Signing,
};
pub use engine::{
    CodeMatch, callback_to_dialect, callback_to_event, holder_id, recognise, to_dialect,
    to_national,
};

use serde::Serialize;
use serde_json::Value;

use crate::standard::ServiceName;

/// What happened to a field that did not cross intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// The source field has no place on the other side.
    Unmapped,
    /// The target field was absent from the source and got a default, or a value outside
    /// a map got the map's fallback.
    Defaulted,
    /// The value was shortened or lost precision (length, sub-second time, 12→6 digit
    /// region, a map that merges values).
    Truncated,
}

/// One entry of a loss report. Paths are dotted; the national path is relative to the
/// business content (`bizContent`), with `code`/`msg` for a response's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Loss {
    /// What happened.
    pub kind: LossKind,
    /// The national field concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub national: Option<String>,
    /// The dialect field concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialect: Option<String>,
    /// A short explanation, without the personal values themselves.
    pub detail: String,
}

/// Every loss of one translation. It goes to the audit record and the `X-Hutong-Loss`
/// response header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct LossReport(pub Vec<Loss>);

impl LossReport {
    /// No loss at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each loss in compact form: `unmapped:verifier.orgCode`, `defaulted:(d)source` (a
    /// dialect field is marked `(d)`), as the audit record keeps them.
    pub fn items(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|l| {
                let kind = match l.kind {
                    LossKind::Unmapped => "unmapped",
                    LossKind::Defaulted => "defaulted",
                    LossKind::Truncated => "truncated",
                };
                match (&l.national, &l.dialect) {
                    (Some(n), _) => format!("{kind}:{n}"),
                    (None, Some(d)) => format!("{kind}:(d){d}"),
                    (None, None) => kind.to_owned(),
                }
            })
            .collect()
    }

    /// The compact header form: the [`LossReport::items`] joined by commas, with every
    /// byte outside visible ASCII, and `%` and `,`, percent-encoded (a field name may be
    /// Chinese, and a header value must be ASCII).
    ///
    /// The value stays within [`MAX_LOSS_HEADER`] bytes: the items that would go past it
    /// are left out and a last item `more` says so (a proxy in front of a verifier may
    /// refuse an answer with a header over its buffer, 4 or 8 KiB by default).
    pub fn header_value(&self) -> String {
        let mut out = String::new();
        let mut item_text = String::new();
        for (i, item) in self.items().iter().enumerate() {
            item_text.clear();
            if i > 0 {
                item_text.push(',');
            }
            for b in item.bytes() {
                if b.is_ascii_graphic() && b != b'%' && b != b',' {
                    item_text.push(char::from(b));
                } else {
                    item_text.push_str(&format!("%{b:02X}"));
                }
            }
            // Room is kept for the last item, `,more`.
            if out.len() + item_text.len() + ",more".len() > MAX_LOSS_HEADER {
                if !out.is_empty() {
                    out.push(',');
                }
                out.push_str("more");
                break;
            }
            out.push_str(&item_text);
        }
        out
    }

    /// Adds a loss. A report holds at most [`MAX_LOSSES`] and a last entry that says more
    /// were left out; a field path is cut at [`MAX_LOSS_PATH`] bytes. A message with
    /// thousands of stray fields therefore still fits its audit record and its header.
    pub(crate) fn push(
        &mut self,
        kind: LossKind,
        national: Option<&str>,
        dialect: Option<&str>,
        detail: impl Into<String>,
    ) {
        match self.0.len() {
            n if n < MAX_LOSSES => self.0.push(Loss {
                kind,
                national: national.map(cut_path),
                dialect: dialect.map(cut_path),
                detail: detail.into(),
            }),
            n if n == MAX_LOSSES => self.0.push(Loss {
                kind,
                national: None,
                dialect: Some("…".to_owned()),
                detail: format!("more losses, not listed: a report keeps {MAX_LOSSES}"),
            }),
            _ => {}
        }
    }

    /// Adds another report's losses, under the same limits.
    pub(crate) fn extend(&mut self, other: LossReport) {
        for l in other.0 {
            self.push(
                l.kind,
                l.national.as_deref(),
                l.dialect.as_deref(),
                l.detail,
            );
        }
    }
}

/// Most losses one report lists (then one entry saying more were left out).
pub const MAX_LOSSES: usize = 64;
/// Longest field path a loss names, in bytes (cut on a character boundary).
pub const MAX_LOSS_PATH: usize = 128;
/// Longest `X-Hutong-Loss` header value, in bytes.
pub const MAX_LOSS_HEADER: usize = 4 * 1024;

/// A field path found in a message (not named by the dialect or the standard) as a loss
/// report may show it. The keys of a message are the sender's text: a region may key a map
/// by an ID number, a phone number or a name (`members.110101199003071234`), and a loss
/// goes to the caller in a header and into the audit record. Each segment that does not
/// look like a field's name (ASCII letters, digits, `_` and `-`, starting with a letter or
/// `_`, at most 64 bytes, no run of six digits; an XML attribute's `@` before it, or XML's
/// `#text`) is shown as `(key)`.
pub(crate) fn message_path(p: &str) -> String {
    fn field_like(seg: &str) -> bool {
        // XML's attributes (`@id`) and text (`#text`) are named so by the codec.
        if seg == "#text" {
            return true;
        }
        let b = seg.strip_prefix('@').unwrap_or(seg).as_bytes();
        let mut digits = 0;
        b.len() <= 64
            && b.first()
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
            && b.iter().all(|&c| {
                digits = if c.is_ascii_digit() { digits + 1 } else { 0 };
                digits < 6 && (c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
            })
    }
    let mut out = String::with_capacity(p.len());
    for (i, seg) in p.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(if field_like(seg) { seg } else { "(key)" });
    }
    out
}

fn cut_path(p: &str) -> String {
    if p.len() <= MAX_LOSS_PATH {
        return p.to_owned();
    }
    let mut end = MAX_LOSS_PATH;
    while !p.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &p[..end])
}

/// Which half of a service a message is.
pub use crate::standard::Direction;

/// A translated message and what it lost.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// The message on the target side. A national response is
    /// `{"code", "msg"?, "bizContent"?}`; a national request is the business content.
    pub body: Value,
    /// What did not cross intact.
    pub losses: LossReport,
}

/// Why a message could not be translated. Every variant names the field path at fault;
/// none carries the personal value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The dialect does not serve this service.
    #[error("dialect `{dialect}` does not support {service}")]
    UnsupportedService {
        /// The dialect's id.
        dialect: String,
        /// The service asked for.
        service: ServiceName,
    },
    /// The message is not a JSON object (or a response lacks its outcome).
    #[error("{path}: expected {expected}")]
    Shape {
        /// Where.
        path: String,
        /// What was expected there.
        expected: &'static str,
    },
    /// A value has the wrong form for its rule (a date that is not one, text as a number).
    #[error("{path}: not {expected}")]
    BadValue {
        /// The field, on the side being read.
        path: String,
        /// What the rule expects.
        expected: String,
    },
    /// A value has no entry in its value map, and the map has no fallback.
    #[error("{path}: value not in map `{map}`")]
    UnknownValue {
        /// The field, on the side being read.
        path: String,
        /// The map's name.
        map: String,
    },
    /// Writing a field would go through a value that is not an object.
    #[error("{path}: two rules of the dialect collide here")]
    Collision {
        /// The path that is already a scalar.
        path: String,
    },
    /// The bytes are not in the dialect's codec.
    #[error("body: {0}")]
    Codec(String),
}

impl TranslateError {
    /// The national return code a malformed regional payload earns: 9002 (upstream
    /// answered wrongly) for responses, 1002 (bad format) for requests.
    pub fn return_code(&self, dir: Direction) -> &'static str {
        match (self, dir) {
            (Self::UnsupportedService { .. }, _) => "1006",
            (_, Direction::Request) => "1002",
            (_, Direction::Response) => "9002",
        }
    }
}

#[cfg(test)]
mod tests;
