//! The dialect file's shapes as serde reads them (unknown keys refused), with the spans
//! that [`super::Checker`] turns into line numbers.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDialect {
    pub(super) region: Spanned<String>,
    pub(super) name: String,
    pub(super) codec: Spanned<String>,
    pub(super) response_codec: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) signing: Option<RawSigning>,
    #[serde(default)]
    pub(super) codes: Vec<RawCode>,
    #[serde(default)]
    pub(super) maps: BTreeMap<String, RawMap>,
    #[serde(default)]
    pub(super) services: BTreeMap<Spanned<String>, RawService>,
    pub(super) callback: Option<RawCallback>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCallback {
    pub(super) path: Spanned<String>,
    #[serde(default)]
    pub(super) constants: BTreeMap<String, Value>,
    pub(super) fields: Vec<RawCallbackField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCallbackField {
    pub(super) event: Spanned<String>,
    pub(super) dialect: Spanned<String>,
    pub(super) map: Option<Spanned<String>>,
    pub(super) date: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSigning {
    pub(super) scheme: Spanned<String>,
    /// hmac-sha256-concat: the fields concatenated, in order.
    #[serde(default)]
    pub(super) fields: Vec<String>,
    /// hmac-sha256-concat: where the signature goes; md5-date-password: the password field.
    pub(super) sign_field: Option<Spanned<String>>,
    /// md5-date-password: the header of the password, instead of a field.
    pub(super) header: Option<Spanned<String>>,
    /// md5-date-password: where the caller's id goes.
    pub(super) id_field: Option<Spanned<String>>,
    /// md5-date-password, xtif-sha256: tolerated clock difference, seconds.
    pub(super) window_s: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCode {
    pub(super) host: Option<String>,
    pub(super) path_prefix: Option<String>,
    pub(super) param: Option<String>,
    pub(super) national_param: Option<String>,
    pub(super) prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMap {
    /// `[national, dialect]` pairs; the first pair matching wins in each direction.
    pub(super) pairs: Vec<[String; 2]>,
    pub(super) fallback_national: Option<String>,
    pub(super) fallback_dialect: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub(super) path: Spanned<String>,
    #[serde(default = "default_method")]
    pub(super) method: String,
    /// The path the region's systems call at the gateway; default `path`.
    pub(super) ingress_path: Option<Spanned<String>>,
    /// `false` disables ingress for the service.
    #[serde(default = "default_ingress")]
    pub(super) ingress: bool,
    #[serde(default)]
    pub(super) request: RawMessage,
    #[serde(default)]
    pub(super) response: RawMessage,
}

pub(super) fn default_method() -> String {
    "POST".to_owned()
}

pub(super) fn default_ingress() -> bool {
    true
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMessage {
    #[serde(default)]
    pub(super) constants: BTreeMap<String, Value>,
    #[serde(default)]
    pub(super) fields: Vec<RawRule>,
    #[serde(default)]
    pub(super) ignore: Vec<String>,
    pub(super) result: Option<RawResult>,
    pub(super) holder_type: Option<RawHolderType>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHolderType {
    pub(super) dialect: Spanned<String>,
    pub(super) map: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) national: Spanned<String>,
    pub(super) dialect: Spanned<String>,
    pub(super) map: Option<Spanned<String>>,
    pub(super) date: Option<Spanned<String>>,
    pub(super) region_digits: Option<Spanned<u8>>,
    #[serde(rename = "type")]
    pub(super) dialect_type: Option<Spanned<String>>,
    pub(super) national_type: Option<Spanned<String>>,
    pub(super) max_len: Option<usize>,
    pub(super) dialect_default: Option<Value>,
    pub(super) national_default: Option<Value>,
    pub(super) mask: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResult {
    pub(super) dialect: Spanned<String>,
    pub(super) map: Spanned<String>,
    #[serde(rename = "type")]
    pub(super) dialect_type: Option<Spanned<String>>,
    pub(super) message: Option<String>,
}
