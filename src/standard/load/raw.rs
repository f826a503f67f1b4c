//! The files' shapes as serde reads them, before [`super::load`] converts them to the typed
//! [`Standard`](crate::standard::Standard): one struct per table of each file, unknown fields
//! rejected.

use serde::Deserialize;

use crate::standard::Label;
use crate::standard::element::{ElementType, PersonalClass, Rule};
use crate::standard::return_code::Side;
use crate::standard::service::ServiceKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    pub(super) profile: RawProfile,
    pub(super) files: RawFiles,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    pub(super) name: String,
    pub(super) version: String,
    pub(super) standards: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFiles {
    pub(super) elements: String,
    pub(super) tables: String,
    pub(super) divisions: String,
    pub(super) divisions_historic: String,
    pub(super) countries: String,
    pub(super) return_codes: String,
    pub(super) services: String,
    pub(super) schemas: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawElements {
    pub(super) group: Vec<RawGroup>,
    pub(super) element: Vec<RawElement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGroup {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) name_en: String,
    pub(super) label: Label,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawElement {
    pub(super) id: String,
    pub(super) group: String,
    pub(super) name: String,
    pub(super) name_en: String,
    pub(super) key: String,
    #[serde(rename = "type")]
    pub(super) ty: ElementType,
    pub(super) format: String,
    pub(super) label: Label,
    pub(super) attributes_label: Label,
    pub(super) description: String,
    pub(super) source: String,
    pub(super) table: Option<String>,
    pub(super) multi: Option<String>,
    pub(super) min: Option<f64>,
    pub(super) max: Option<f64>,
    pub(super) rule: Option<Rule>,
    pub(super) personal: Option<PersonalClass>,
    #[serde(default)]
    pub(super) optional: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTables {
    pub(super) table: Vec<RawTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTable {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) name_en: String,
    pub(super) standard: String,
    pub(super) label: Label,
    pub(super) source: String,
    pub(super) code: Vec<RawCode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCode {
    pub(super) code: String,
    pub(super) name: String,
    pub(super) name_en: String,
    pub(super) label: Option<Label>,
    pub(super) hex: Option<String>,
    #[serde(default)]
    pub(super) note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReturnCodes {
    pub(super) code: Vec<RawReturnCode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReturnCode {
    pub(super) code: String,
    pub(super) name: String,
    pub(super) name_en: String,
    pub(super) http: u16,
    pub(super) side: Side,
    pub(super) retry: bool,
    pub(super) label: Label,
    pub(super) seen: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServices {
    pub(super) service: Vec<RawService>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub(super) name: String,
    pub(super) clause: String,
    pub(super) title: String,
    pub(super) title_en: String,
    pub(super) kind: ServiceKind,
    pub(super) label: Label,
    pub(super) idempotent: bool,
    pub(super) personal: bool,
    pub(super) request: String,
    pub(super) response: String,
}
