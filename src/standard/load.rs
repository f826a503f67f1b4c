//! The loader: raw serde structs for each file (unknown fields rejected; [`raw`]), then
//! conversion to the typed [`Standard`], collecting every problem on the way.

mod raw;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::element::{Element, ElementType, Format, Group};
use super::error::{LoadError, Problems};
use super::return_code::{ReturnCode, ReturnCodeInfo};
use super::schema::{self, Node};
use super::service::{Service, ServiceName};
use super::table::{Code, CodeTable, Countries, Divisions};
use super::{Profile, Source, Standard};
use raw::{RawElements, RawManifest, RawReturnCodes, RawServices, RawTables};

fn toml_file<T: DeserializeOwned>(src: &Source, file: &str, p: &mut Problems) -> Option<T> {
    let text = match src.read(file) {
        Ok(t) => t,
        Err(e) => {
            p.push(file, "", e);
            return None;
        }
    };
    match toml::from_str(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            let item = e
                .span()
                .map(|s| {
                    format!(
                        "line {}",
                        text[..s.start.min(text.len())].lines().count().max(1)
                    )
                })
                .unwrap_or_default();
            p.push(file, item, e.message().to_owned());
            None
        }
    }
}

fn json_file(src: &Source, file: &str, p: &mut Problems) -> Option<Value> {
    let text = match src.read(file) {
        Ok(t) => t,
        Err(e) => {
            p.push(file, "", e);
            return None;
        }
    };
    match serde_json::from_str(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            p.push(
                file,
                format!("line {} column {}", e.line(), e.column()),
                e.to_string(),
            );
            None
        }
    }
}

fn text_file(src: &Source, file: &str, p: &mut Problems) -> String {
    src.read(file).unwrap_or_else(|e| {
        p.push(file, "", e);
        String::new()
    })
}

pub(super) fn load(src: &Source) -> Result<Standard, LoadError> {
    let mut p = Problems::default();
    let Some(m) = toml_file::<RawManifest>(src, "manifest.toml", &mut p) else {
        return Err(LoadError { problems: p.list });
    };
    let f = &m.files;
    if m.profile.version.split('.').count() != 3 {
        p.push(
            "manifest.toml",
            "profile.version",
            "expected MAJOR.MINOR.PATCH",
        );
    }

    // Small tables first: elements and schemas refer to them.
    let tables = toml_file::<RawTables>(src, &f.tables, &mut p)
        .map(|t| convert_tables(t, &f.tables, &mut p))
        .unwrap_or_default();
    let table_by_id: HashMap<String, usize> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.clone(), i))
        .collect();

    let divisions = Divisions::parse(
        &text_file(src, &f.divisions, &mut p),
        &text_file(src, &f.divisions_historic, &mut p),
        (&f.divisions, &f.divisions_historic),
        &mut p,
    );
    let countries = Countries::parse(&text_file(src, &f.countries, &mut p), &f.countries, &mut p);
    if divisions.current_len() < 3000 {
        p.push(
            &f.divisions,
            "",
            format!(
                "only {} codes; the current table has over 3,000",
                divisions.current_len()
            ),
        );
    }
    if countries.len() < 240 {
        p.push(
            &f.countries,
            "",
            format!(
                "only {} countries; GB/T 2659 has about 249",
                countries.len()
            ),
        );
    }

    let (groups, elements) = toml_file::<RawElements>(src, &f.elements, &mut p)
        .map(|e| convert_elements(e, &f.elements, &table_by_id, &mut p))
        .unwrap_or_default();
    let element_by_key = elements
        .iter()
        .enumerate()
        .map(|(i, e)| (e.key.clone(), i))
        .collect();
    let element_by_id: HashMap<String, usize> = elements
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id.clone(), i))
        .collect();

    let return_codes = toml_file::<RawReturnCodes>(src, &f.return_codes, &mut p)
        .map(|r| convert_return_codes(r, &f.return_codes, &mut p))
        .unwrap_or_default();

    // Shared schema blocks, then the services that use them.
    let common_file = format!("{}/common.json", f.schemas);
    let mut defs_map = HashMap::new();
    let mut defs = Vec::new();
    if let Some(common) = json_file(src, &common_file, &mut p) {
        let empty = HashMap::new();
        match common.get("$defs").and_then(Value::as_object) {
            Some(d) => {
                for (name, v) in d {
                    let cx = schema::Context {
                        elements: &element_by_id,
                        tables: &table_by_id,
                        defs: &empty,
                    };
                    if let Some(n) =
                        schema::compile(v, &common_file, &format!("/$defs/{name}"), &cx, &mut p)
                    {
                        let n = Arc::new(n);
                        defs_map.insert(name.clone(), Arc::clone(&n));
                        defs.push((name.clone(), n));
                    }
                }
            }
            None => p.push(&common_file, "", "expected a `$defs` object"),
        }
    }
    let cx = schema::Context {
        elements: &element_by_id,
        tables: &table_by_id,
        defs: &defs_map,
    };
    let services = toml_file::<RawServices>(src, &f.services, &mut p)
        .map(|s| convert_services(s, src, &f.services, &f.schemas, &cx, &mut p))
        .unwrap_or_default();

    if !p.is_empty() {
        return Err(LoadError { problems: p.list });
    }
    Ok(Standard {
        profile: Profile {
            name: m.profile.name,
            version: m.profile.version,
            standards: m.profile.standards,
        },
        groups,
        elements,
        tables,
        divisions,
        countries,
        return_codes,
        services,
        element_by_key,
        element_by_id,
        table_by_id,
        defs,
    })
}

fn convert_tables(raw: RawTables, file: &str, p: &mut Problems) -> Vec<CodeTable> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for t in raw.table {
        if !seen.insert(t.id.clone()) {
            p.push(file, &t.id, "duplicate table id");
        }
        if t.id.is_empty()
            || !t
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-' || b.is_ascii_digit())
        {
            p.push(file, &t.id, "table ids are lowercase and dash-separated");
        }
        let mut codes = HashSet::new();
        for c in &t.code {
            if c.code.is_empty() || !codes.insert(c.code.clone()) {
                p.push(
                    file,
                    format!("{}/{}", t.id, c.code),
                    "empty or duplicate code",
                );
            }
            if let Some(h) = &c.hex {
                let ok = h.len() == 7
                    && h.starts_with('#')
                    && h[1..].bytes().all(|b| b.is_ascii_hexdigit());
                if !ok {
                    p.push(file, format!("{}/{}", t.id, c.code), "hex must be #RRGGBB");
                }
            }
        }
        if t.code.is_empty() {
            p.push(file, &t.id, "a table needs codes");
        }
        out.push(CodeTable {
            id: t.id,
            name: t.name,
            name_en: t.name_en,
            standard: t.standard,
            label: t.label,
            source: t.source,
            codes: t
                .code
                .into_iter()
                .map(|c| Code {
                    code: c.code,
                    name: c.name,
                    name_en: c.name_en,
                    label: c.label,
                    hex: c.hex,
                    note: c.note,
                })
                .collect(),
        });
    }
    for required in [
        "sex",
        "id-type",
        "colour",
        "symptom",
        "transport",
        "nucleic-result",
    ] {
        if !seen.contains(required) {
            p.push(file, required, "required table is missing");
        }
    }
    out
}

fn convert_elements(
    raw: RawElements,
    file: &str,
    tables: &HashMap<String, usize>,
    p: &mut Problems,
) -> (Vec<Group>, Vec<Element>) {
    let groups: Vec<Group> = raw
        .group
        .into_iter()
        .map(|g| Group {
            id: g.id,
            name: g.name,
            name_en: g.name_en,
            label: g.label,
        })
        .collect();
    let mut ids = HashSet::new();
    let mut keys = HashSet::new();
    let mut out = Vec::new();
    for e in raw.element {
        let at = e.id.clone();
        // ASCII first: the slices below are by byte.
        let well_formed_id = e.id.len() == 11
            && e.id.is_ascii()
            && e.id.starts_with("PHIC.")
            && e.id[5..7] == e.group
            && e.id.as_bytes()[7] == b'.'
            && e.id[5..7]
                .bytes()
                .chain(e.id[8..].bytes())
                .all(|b| b.is_ascii_digit());
        if !well_formed_id {
            p.push(file, &at, "id must be PHIC.gg.nnn with gg its group");
        }
        if !groups.iter().any(|g| g.id == e.group) {
            p.push(file, &at, format!("unknown group {}", e.group));
        }
        if !ids.insert(e.id.clone()) {
            p.push(file, &at, "duplicate id");
        }
        if !keys.insert(e.key.clone()) {
            p.push(file, &at, format!("duplicate key {}", e.key));
        }
        let camel = e.key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && e.key.chars().all(|c| c.is_ascii_alphanumeric());
        if !camel {
            p.push(file, &at, "key must be camelCase ASCII");
        }
        let format = match e.format.parse::<Format>() {
            Ok(f) => f,
            Err(err) => {
                p.push(file, &at, err.to_string());
                continue;
            }
        };
        if !Element::type_format_agree(e.ty, format) {
            p.push(
                file,
                &at,
                format!("type {:?} does not fit format {format}", e.ty),
            );
        }
        let table = match &e.table {
            None => None,
            Some(t) => match tables.get(t) {
                Some(&i) => Some(i),
                None => {
                    p.push(file, &at, format!("unknown table {t}"));
                    None
                }
            },
        };
        let multi = match e.multi.as_deref() {
            None => None,
            Some(s) => {
                let mut cs = s.chars();
                match (cs.next(), cs.next()) {
                    (Some(c), None) => Some(c),
                    _ => {
                        p.push(file, &at, "multi must be one character");
                        None
                    }
                }
            }
        };
        let range = match (e.min, e.max) {
            (None, None) => None,
            (Some(lo), Some(hi)) if lo <= hi && e.ty == ElementType::N => Some((lo, hi)),
            _ => {
                p.push(file, &at, "min and max go together, min <= max, on type N");
                None
            }
        };
        out.push(Element {
            id: e.id,
            group: e.group,
            name: e.name,
            name_en: e.name_en,
            key: e.key,
            ty: e.ty,
            format,
            label: e.label,
            attributes_label: e.attributes_label,
            description: e.description,
            source: e.source,
            table,
            multi,
            range,
            rule: e.rule,
            personal: e.personal,
            optional: e.optional,
        });
    }
    (groups, out)
}

fn convert_return_codes(raw: RawReturnCodes, file: &str, p: &mut Problems) -> Vec<ReturnCodeInfo> {
    let mut by_code: HashMap<ReturnCode, ReturnCodeInfo> = HashMap::new();
    for r in raw.code {
        let Some(code) = ReturnCode::parse(&r.code) else {
            p.push(
                file,
                &r.code,
                "not a return code this build knows (src/standard/return_code.rs)",
            );
            continue;
        };
        if !(100..=599).contains(&r.http) {
            p.push(file, &r.code, "http must be a status 100..=599");
        }
        let info = ReturnCodeInfo {
            code,
            name: r.name,
            name_en: r.name_en,
            http: r.http,
            side: r.side,
            retry: r.retry,
            label: r.label,
            seen: r.seen,
        };
        if by_code.insert(code, info).is_some() {
            p.push(file, code.as_str(), "duplicate code");
        }
    }
    let mut out = Vec::with_capacity(ReturnCode::ALL.len());
    for c in ReturnCode::ALL {
        match by_code.remove(&c) {
            Some(i) => out.push(i),
            None => p.push(file, c.as_str(), "return code is missing"),
        }
    }
    out
}

fn convert_services(
    raw: RawServices,
    src: &Source,
    file: &str,
    schema_dir: &str,
    cx: &schema::Context<'_>,
    p: &mut Problems,
) -> Vec<Service> {
    let mut found: Vec<Option<Service>> = vec![None; ServiceName::ALL.len()];
    for s in raw.service {
        let name = match s.name.parse::<ServiceName>() {
            Ok(n) => n,
            Err(e) => {
                p.push(file, &s.name, e.to_string());
                continue;
            }
        };
        let mut compile = |rel: &str| -> Option<Node> {
            if !rel.starts_with(&format!("{schema_dir}/")) {
                p.push(
                    file,
                    name.as_str(),
                    format!("{rel} is not under {schema_dir}/"),
                );
            }
            let v = json_file(src, rel, p)?;
            schema::compile(&v, rel, "", cx, p)
        };
        let (Some(request), Some(response)) = (compile(&s.request), compile(&s.response)) else {
            continue;
        };
        let slot = &mut found[name.index()];
        if slot.is_some() {
            p.push(file, name.as_str(), "duplicate service");
        }
        *slot = Some(Service {
            name,
            clause: s.clause,
            title: s.title,
            title_en: s.title_en,
            kind: s.kind,
            label: s.label,
            idempotent: s.idempotent,
            personal: s.personal,
            request_file: s.request,
            response_file: s.response,
            request,
            response,
        });
    }
    let mut out = Vec::new();
    for (n, s) in ServiceName::ALL.into_iter().zip(found) {
        match s {
            Some(s) => out.push(s),
            None => p.push(file, n.as_str(), "service is missing or did not load"),
        }
    }
    out
}
