//! Cross-field rules: checks that need more than one field of an object.
//!
//! - the ID number (GB 11643) when `idType` is `10`, and its agreement with `birthDate` and
//!   `sex` when those are given;
//! - a high-risk stay (`highRiskStay` = 1) names its regions, and only then;
//! - a trip does not arrive before it departs;
//! - a declaration time is not in the future (beyond the clock skew).

use serde_json::{Map, Value};

use crate::national::idno;
use crate::national::time::{Date, DateTime};
use crate::standard::{Node, ObjectNode, ReturnCode, Rule};

use super::{Walker, join};

/// The ID type whose numbers follow GB 11643.
pub const ID_TYPE_RESIDENT_CARD: &str = "10";
/// How far in the future a declared time may lie, for clock skew between systems.
pub const FUTURE_SKEW_SECS: i64 = 300;

fn time<'a>(x: Option<(&'a str, &Value)>) -> Option<(&'a str, DateTime)> {
    x.and_then(|(n, v)| v.as_str().and_then(DateTime::parse).map(|t| (n, t)))
}

/// Runs the cross-field rules of one object.
pub(super) fn object(w: &mut Walker<'_>, o: &ObjectNode, map: &Map<String, Value>, path: &str) {
    let find = |key: &str| -> Option<(&str, &Value)> {
        o.properties.iter().find_map(|p| match p.node.resolve() {
            Node::Element(i) if w.std.elements[*i].key == key => {
                map.get(&p.name).map(|v| (p.name.as_str(), v))
            }
            _ => None,
        })
    };
    let id_prop = o.properties.iter().find_map(|p| match p.node.resolve() {
        Node::Element(i) if w.std.elements[*i].rule == Some(Rule::IdNumber) => map
            .get(&p.name)
            .and_then(Value::as_str)
            .map(|v| (p.name.as_str(), v)),
        _ => None,
    });
    let id_type = find("idType").and_then(|(_, v)| v.as_str());
    let birth_date = find("birthDate");
    let sex = find("sex");
    let risk = find("highRiskStay");
    let risk_regions = o
        .properties
        .iter()
        .find(|p| p.name == "highRiskRegions")
        .map(|p| (p.name.as_str(), map.get(&p.name)));
    let depart = find("departTime");
    let arrive = find("arriveTime");
    let declared = find("declareTime");

    let mut found = Vec::new();
    if let (Some((name, id)), Some(ID_TYPE_RESIDENT_CARD)) = (id_prop, id_type) {
        let today = Date::beijing_today(w.cx.now_unix);
        match idno::check(id, &w.std.divisions, today) {
            // Fixed texts: the message travels outside the encrypted content, so it names
            // the defect, never digits of the number.
            Err(e) => found.push((
                join(path, name),
                format!("证件号码 (idNo): {}", idno_defect(&e)),
            )),
            Ok(info) => {
                if let Some((n, v)) = birth_date {
                    if v.as_str()
                        .and_then(Date::parse)
                        .is_some_and(|d| d != info.birth)
                    {
                        found.push((
                            join(path, n),
                            "出生日期 (birthDate): differs from the ID number".to_owned(),
                        ));
                    }
                }
                if let Some((n, v)) = sex {
                    if matches!(v.as_str(), Some("1" | "2")) && v.as_str() != Some(info.sex.code())
                    {
                        found.push((
                            join(path, n),
                            "性别 (sex): differs from the ID number".to_owned(),
                        ));
                    }
                }
            }
        }
    }
    if let (Some((_, flag)), Some((rname, regions))) = (risk, risk_regions) {
        let listed = regions
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        match flag.as_str() {
            Some("1") if !listed => {
                w.push(
                    &join(path, rname),
                    ReturnCode::MissingParameter,
                    "required when highRiskStay is 1".to_owned(),
                );
            }
            Some("2") if listed => {
                found.push((
                    join(path, rname),
                    "must be empty when highRiskStay is 2".to_owned(),
                ));
            }
            _ => {}
        }
    }
    if let (Some((_, d)), Some((an, a))) = (time(depart), time(arrive)) {
        if a < d {
            found.push((
                join(path, an),
                "行程 (arriveTime): arrives before it departs".to_owned(),
            ));
        }
    }
    if let Some((n, t)) = time(declared) {
        if t.unix() > w.cx.now_unix + FUTURE_SKEW_SECS {
            found.push((
                join(path, n),
                "申报时间 (declareTime): is in the future".to_owned(),
            ));
        }
    }
    for (p, m) in found {
        w.push(&p, ReturnCode::BadFormat, m);
    }
}

/// What is wrong with an ID number, without any of its digits.
fn idno_defect(e: &idno::IdNumberError) -> &'static str {
    use idno::IdNumberError as E;
    match e {
        E::Length(_) => "must be 18 characters",
        E::Characters => "must be 17 digits followed by a digit or X",
        E::LowercaseX => "the check character must be an upper-case X",
        E::BirthDate => "characters 7-14 are not a real date",
        E::BirthOutOfRange(_) => "the birth date is before 1900 or in the future",
        E::Region(_) => "the address code is in no revision of GB/T 2260",
        E::CheckDigit { .. } => "the check character does not match",
    }
}
