//! A loaded dialect (`config/regions/<id>.toml`, format in `config/regions/README.md`):
//! the checked types the engine trusts. Parsing and checking live in [`super::load`].

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::value::DateFormat;
use super::value::JsonType;
use super::value::ValueMap;
use crate::standard::{PersonalClass, ServiceName};

/// How a region's messages are encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// `application/json`; dialect paths may be nested.
    Json,
    /// `application/x-www-form-urlencoded`; dialect paths are flat names, values strings.
    Form,
    /// XML (`text/xml`, a WebService); the first step of every path is the root element,
    /// values are strings (see [`super::xml`]).
    Xml,
}

impl Codec {
    /// The HTTP `Content-Type` of a body in this codec.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Form => "application/x-www-form-urlencoded",
            Self::Xml => "text/xml; charset=utf-8",
        }
    }
}

/// How a region's requests are signed (computed by [`super::sign`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signing {
    /// Unsigned (a closed network, or a token field mapped like any other).
    None,
    /// HMAC-SHA256 over the values of `fields` concatenated in that order, then the secret
    /// (Zhejiang parse-jkm style); the hex digest goes in `sign_field`.
    HmacSha256Concat {
        /// The parameters whose values are concatenated, in order (dotted paths).
        fields: Vec<String>,
        /// Where the signature goes.
        sign_field: String,
    },
    /// A password `MD5(secret + yyyyMMdd)` (Beijing date), lowercase hex, in a field or a
    /// header (legacy provincial WebServices).
    Md5DatePassword {
        /// Where the password goes.
        target: SignTarget,
        /// Where the caller's id goes, if the region wants it beside the password.
        id_field: Option<String>,
        /// Seconds of clock difference tolerated around midnight.
        window_s: u32,
    },
    /// `x-tif-*` headers with a SHA-256 signature over timestamp, token, nonce and
    /// timestamp (Guangdong TIF-style gateway).
    XtifSha256 {
        /// Seconds a signed timestamp may differ from the verifier's clock.
        window_s: u32,
    },
    /// The national envelope of GB/T 38963 clause 5 (SM2 signatures, SM4 `bizContent`).
    NationalSm2,
}

/// Where a signature (or password) travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignTarget {
    /// A body field (a dotted path).
    Field(String),
    /// An HTTP header (its name).
    Header(String),
}

/// A field an `hmac-sha256-concat` signature covers that the gateway fills itself when the
/// translation leaves it absent (it is envelope, not business content): the loader
/// accepts a signed field that is one of these, a constant, or a mapped field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayFilled {
    /// `appKey`, `appId`, `app_key`, `app_id`: the gateway's id at the region.
    Id,
    /// `requestId`, `request_id`: the attempt's one-time value, or, for a call named by
    /// the caller's request (`upstream::request_key`), that key on every attempt.
    RequestId,
    /// `nonce`: the attempt's one-time value.
    Nonce,
    /// `timestamp`: the time, in epoch milliseconds.
    Timestamp,
}

impl GatewayFilled {
    /// Which one `field` is, if any.
    pub fn of(field: &str) -> Option<Self> {
        match field {
            "appKey" | "appId" | "app_key" | "app_id" => Some(Self::Id),
            "requestId" | "request_id" => Some(Self::RequestId),
            "nonce" => Some(Self::Nonce),
            "timestamp" => Some(Self::Timestamp),
            _ => None,
        }
    }
}

impl Signing {
    /// The dialect fields that belong to the signing envelope rather than to the business
    /// content: read without being reported as unmapped.
    pub fn envelope_fields(&self) -> Vec<&str> {
        match self {
            Self::HmacSha256Concat { fields, sign_field } => fields
                .iter()
                .map(String::as_str)
                .chain(std::iter::once(sign_field.as_str()))
                .collect(),
            Self::Md5DatePassword {
                target, id_field, ..
            } => {
                let mut out: Vec<&str> = id_field.iter().map(String::as_str).collect();
                if let SignTarget::Field(f) = target {
                    out.push(f);
                }
                out
            }
            Self::None | Self::XtifSha256 { .. } | Self::NationalSm2 => Vec::new(),
        }
    }
}

/// A pattern that recognises this region's code contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodePattern {
    /// A URL on `host` whose path starts with `path_prefix`; the local code id is the query
    /// parameter `param`, and the national code id, when present, is `national_param`.
    Url {
        /// Host, e.g. `healthcode.zj.example.cn`.
        host: String,
        /// Path prefix, e.g. `/healthAct/index.html`.
        path_prefix: String,
        /// Query parameter carrying the local code id.
        param: String,
        /// Query parameter carrying the national code id (`stateCouncilBarCode`).
        national_param: Option<String>,
    },
    /// A content that starts with `prefix` (`akm:qrcode:`); the rest is the code id.
    Prefix(String),
}

/// One mapped field of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Dotted path in the national business content.
    pub national: String,
    /// Dotted path in the dialect message.
    pub dialect: String,
    /// Value map (national value ⇄ dialect value).
    pub map: Option<ValueMap>,
    /// Date format on the dialect side; the national side is `yyyy-MM-dd HH:mm:ss`.
    pub date: Option<DateFormat>,
    /// Region-code width on the dialect side (6 or 12); the national side has 6.
    pub region_digits: Option<u8>,
    /// JSON type on the dialect side.
    pub dialect_type: Option<JsonType>,
    /// JSON type on the national side (form values arrive as strings).
    pub national_type: Option<JsonType>,
    /// Longest dialect value in characters; longer values are truncated and reported.
    pub max_len: Option<usize>,
    /// Written to the dialect when the national field is absent (reported as defaulted).
    pub dialect_default: Option<Value>,
    /// Written to the national side when the dialect field is absent (reported).
    pub national_default: Option<Value>,
    /// Mask the value on its way to the national side (a back-end that answers a verifier
    /// with full names); a value the mask changes is reported as truncated.
    pub mask: Option<PersonalClass>,
}

/// Where the outcome of a call sits in a dialect response, and how it maps to the
/// national return codes.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRule {
    /// Dotted path of the result code (`resCode`, `errCode`).
    pub dialect: String,
    /// National return code ⇄ dialect result code.
    pub map: ValueMap,
    /// JSON type of the result code in the dialect.
    pub dialect_type: Option<JsonType>,
    /// Dotted path of the message text, if the dialect has one.
    pub message: Option<String>,
}

/// The holder's ID type in a dialect answer whose national answer has no element for it
/// (Zhejiang's verification names `idcardType`; the national `verifyCode` answer carries
/// only the masked number). The gateway reads it for its link registry and nothing else.
#[derive(Debug, Clone, PartialEq)]
pub struct HolderTypeRule {
    /// Dotted path of the ID type.
    pub dialect: String,
    /// National ID type (`10`, `20`, …) ⇄ dialect value.
    pub map: Option<ValueMap>,
}

/// The mapping of one direction of one service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageMap {
    /// Fixed dialect fields written on the way out and accepted on the way in.
    pub constants: Vec<(String, Value)>,
    /// The mapped fields.
    pub rules: Vec<Rule>,
    /// Dialect fields known to carry nothing the national side has (read, not reported).
    pub ignore: Vec<String>,
    /// The result code (responses only).
    pub result: Option<ResultRule>,
    /// The holder's ID type, where no rule maps it to a national element (responses only).
    pub holder_type: Option<HolderTypeRule>,
}

/// One national service as this region serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceMap {
    /// The region back-end's path for the call (egress).
    pub path: String,
    /// The path the region's own systems call at the gateway for this service (ingress),
    /// mounted under `/dialect/<id>`; `path` unless the file says otherwise, `None` when
    /// the file disables ingress (`ingress = false`). Starts with `/`, unique within the
    /// dialect.
    pub ingress_path: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request mapping, national → dialect.
    pub request: MessageMap,
    /// Response mapping, dialect → national.
    pub response: MessageMap,
}

/// A loaded, checked dialect.
#[derive(Debug, Clone, PartialEq)]
pub struct Dialect {
    /// The file stem: `zhejiang` for `zhejiang.toml`; what `--from`/`--to` name.
    pub id: String,
    /// Province-level division code (6 digits).
    pub region: String,
    /// Display name.
    pub name: String,
    /// Wire encoding of requests.
    pub codec: Codec,
    /// Wire encoding of responses (Jiangsu: form requests, JSON answers).
    pub response_codec: Codec,
    /// Signing scheme.
    pub signing: Signing,
    /// Patterns of this region's code contents.
    pub codes: Vec<CodePattern>,
    /// The national services this region supports.
    pub services: BTreeMap<ServiceName, ServiceMap>,
    /// Where and how the region takes status-change callbacks (the risk alert), if it does.
    pub callback: Option<CallbackMap>,
}

/// The fields of a status-change callback, on the gateway's side: what
/// [`crate::link::outbox::CallbackEvent`] carries.
pub const CALLBACK_FIELDS: [&str; 8] = [
    "kind",
    "eventId",
    "sourceRegion",
    "codeId",
    "colour",
    "statusTime",
    "venueCode",
    "visitRegion",
];

/// A region's status-change callback: the path on its back-end, and where each event field
/// goes in its own format (with its colour map and date format).
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackMap {
    /// The back-end's path for callbacks.
    pub path: String,
    /// Fixed fields of every callback.
    pub constants: Vec<(String, Value)>,
    /// One per event field sent.
    pub fields: Vec<CallbackField>,
}

/// Where one event field goes.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackField {
    /// One of [`CALLBACK_FIELDS`].
    pub event: String,
    /// Dotted path in the dialect's message.
    pub dialect: String,
    /// Value map (colours).
    pub map: Option<ValueMap>,
    /// Date format (`statusTime`).
    pub date: Option<DateFormat>,
}

impl Dialect {
    /// The mapping of a service, if this region supports it.
    pub fn service(&self, name: ServiceName) -> Option<&ServiceMap> {
        self.services.get(&name)
    }

    /// The service the region's own systems reach at `path` (relative to the gateway's
    /// `/dialect/<id>` mount), if ingress is enabled there.
    pub fn service_at_ingress(&self, path: &str) -> Option<ServiceName> {
        self.services
            .iter()
            .find(|(_, s)| s.ingress_path.as_deref() == Some(path))
            .map(|(name, _)| *name)
    }
}

/// One problem found in a dialect file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, as given to the loader.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field at fault (`services.verifyCode.response.fields[2].map`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}: {}", self.file, self.field, self.message),
            None => write!(f, "{}: {}: {}", self.file, self.field, self.message),
        }
    }
}

/// Every problem of the dialect files loaded together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in dialect files:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct LoadError(pub Vec<Problem>);
