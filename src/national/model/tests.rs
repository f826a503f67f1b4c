//! Drift test: the typed model and `standard/` describe the same fields, both ways.

use std::collections::BTreeSet;

use serde_json::Value;

use super::*;
use crate::standard::{Direction, Node, ServiceName, Standard};

/// Paths of every field a compiled standard schema describes; required ones end in `!`.
fn standard_paths(node: &Node, prefix: &str, out: &mut BTreeSet<String>) {
    match node.resolve() {
        Node::Object(o) => {
            for p in &o.properties {
                let path = if prefix.is_empty() {
                    p.name.clone()
                } else {
                    format!("{prefix}.{}", p.name)
                };
                out.insert(format!("{path}{}", if p.required { "!" } else { "" }));
                standard_paths(&p.node, &path, out);
            }
        }
        Node::Array(a) => standard_paths(&a.items, &format!("{prefix}[]"), out),
        _ => {}
    }
}

/// The same paths from the JSON Schema that schemars derives from a Rust type.
fn model_paths(schema: &Value, root: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    let schema = resolve(schema, root);
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, sub) in props {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            out.insert(format!(
                "{path}{}",
                if required.contains(&name.as_str()) {
                    "!"
                } else {
                    ""
                }
            ));
            model_paths(sub, root, &path, out);
        }
    } else if let Some(items) = schema.get("items") {
        model_paths(items, root, &format!("{prefix}[]"), out);
    }
}

/// Follows `$ref`, and picks the non-null branch of an `Option`'s `anyOf`.
fn resolve<'a>(s: &'a Value, root: &'a Value) -> &'a Value {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return resolve(&root["$defs"][name], root);
    }
    if let Some(branches) = s.get("anyOf").and_then(Value::as_array) {
        if let Some(b) = branches
            .iter()
            .find(|b| b.get("type") != Some(&Value::from("null")))
        {
            return resolve(b, root);
        }
    }
    s
}

fn model_of<T: schemars::JsonSchema>() -> BTreeSet<String> {
    let root = serde_json::to_value(schemars::schema_for!(T)).unwrap();
    let mut out = BTreeSet::new();
    model_paths(&root, &root, "", &mut out);
    out
}

fn standard_of(name: ServiceName, d: Direction) -> BTreeSet<String> {
    let s = Standard::embedded();
    let mut out = BTreeSet::new();
    standard_paths(s.service(name).schema(d), "", &mut out);
    out
}

#[test]
fn every_service_field_is_in_the_model_and_back() {
    use Direction::{Request as Q, Response as A};
    use ServiceName::*;
    let pairs = [
        (DeclareHealth, Q, model_of::<DeclareHealthRequest>()),
        (DeclareHealth, A, model_of::<DeclareHealthResponse>()),
        (DeclareTrip, Q, model_of::<DeclareTripRequest>()),
        (DeclareTrip, A, model_of::<DeclareTripResponse>()),
        (QueryHealthInfo, Q, model_of::<QueryHealthInfoRequest>()),
        (QueryHealthInfo, A, model_of::<QueryHealthInfoResponse>()),
        (ApplyCodeAccess, Q, model_of::<ApplyCodeAccessRequest>()),
        (ApplyCodeAccess, A, model_of::<ApplyCodeAccessResponse>()),
        (GenerateCode, Q, model_of::<GenerateCodeRequest>()),
        (GenerateCode, A, model_of::<GenerateCodeResponse>()),
        (VerifyCode, Q, model_of::<VerifyCodeRequest>()),
        (VerifyCode, A, model_of::<VerifyCodeResponse>()),
        (CorrectHealthInfo, Q, model_of::<CorrectHealthInfoRequest>()),
        (
            CorrectHealthInfo,
            A,
            model_of::<CorrectHealthInfoResponse>(),
        ),
    ];
    assert_eq!(pairs.len(), ServiceName::ALL.len() * 2);
    let mut drift = Vec::new();
    for (name, d, model) in pairs {
        let standard = standard_of(name, d);
        for only in standard.difference(&model) {
            drift.push(format!(
                "{name} {d:?}: `{only}` is in standard/ but not in the model"
            ));
        }
        for only in model.difference(&standard) {
            drift.push(format!(
                "{name} {d:?}: `{only}` is in the model but not in standard/"
            ));
        }
    }
    assert!(drift.is_empty(), "{}", drift.join("\n"));
}

#[test]
fn every_element_is_a_field_of_its_group_record_and_back() {
    let s = Standard::embedded();
    let groups = [
        ("01", model_of::<BasicInfo>()),
        ("02", model_of::<HealthInfo>()),
        ("03", model_of::<TripInfo>()),
        ("04", model_of::<CodeInfo>()),
    ];
    assert_eq!(groups.len(), s.groups.len());
    for (g, fields) in groups {
        let fields: BTreeSet<String> = fields.into_iter().filter(|f| !f.contains('.')).collect();
        let keys: BTreeSet<String> = s
            .elements
            .iter()
            .filter(|e| e.group == g)
            .map(|e| e.key.clone())
            .collect();
        assert_eq!(keys, fields, "group {g}");
    }
}

#[test]
fn the_drift_check_sees_a_missing_field() {
    // The check itself can fail: a model without `nucleicOrg` differs from the standard.
    let mut model = model_of::<QueryHealthInfoResponse>();
    model.remove("nucleic.nucleicOrg");
    assert_ne!(
        model,
        standard_of(ServiceName::QueryHealthInfo, Direction::Response)
    );
}

#[test]
fn a_valid_message_deserialises_into_the_model() {
    let v = serde_json::json!({
        "codeContent": "PHIC1.x.y",
        "verifier": {"orgName": "某地铁站", "deviceId": "G-01"},
        "location": {"region": "330106"},
        "temperature": 36.5
    });
    let r: VerifyCodeRequest = serde_json::from_value(v).unwrap();
    assert_eq!(r.verifier.device_id, "G-01");
    let bad = serde_json::json!({"codeContent": "x", "verifier": {"orgName": "a", "deviceId": "b"}, "extra": 1});
    assert!(serde_json::from_value::<VerifyCodeRequest>(bad).is_err());
}
