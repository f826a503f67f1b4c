//! Regional dialects: the golden fixture pairs of `tests/fixtures/dialects/<region>/`
//! walked by one data-driven test, round-trip properties of every shipped dialect,
//! onboarding a dialect from a directory without code, and bad dialect files.

use std::path::PathBuf;

use hutong::standard::{Direction, ServiceName, Standard};
use hutong::translate::{self, Codec, Dialect, codec};
use serde_json::{Value, json};

use crate::support::{fixture, hutong, root, stdout, temp_dir};

fn shipped() -> Vec<Dialect> {
    Dialect::load_dir(&root().join("config/regions"), &Standard::embedded())
        .unwrap_or_else(|e| panic!("{e}"))
}

use hutong::conformance::dialect::{GoldenCase as Case, GoldenCases as Cases, check, sides};

/// Every fixture directory with its dialect and cases, in name order.
fn fixture_sets() -> Vec<(Dialect, PathBuf, Cases)> {
    let dialects = shipped();
    let base = fixture("dialects");
    let mut regions: Vec<_> = std::fs::read_dir(&base)
        .expect("tests/fixtures/dialects")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    regions.sort();
    regions
        .into_iter()
        .map(|dir| {
            let id = dir
                .file_name()
                .and_then(|s| s.to_str())
                .expect("utf-8 name")
                .to_owned();
            let d = dialects
                .iter()
                .find(|d| d.id == id)
                .unwrap_or_else(|| panic!("fixtures for `{id}` but no config/regions/{id}.toml"))
                .clone();
            let text = std::fs::read_to_string(dir.join("cases.toml")).expect("cases.toml");
            let cases: Cases =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{id}/cases.toml: {e}"));
            (d, dir, cases)
        })
        .collect()
}

#[test]
fn golden_fixture_pairs_of_every_dialect_translate_exactly() {
    let sets = fixture_sets();
    let (mut ran, mut failures) = (0, Vec::new());
    for (d, dir, cases) in &sets {
        for c in &cases.case {
            ran += 1;
            if let Err(e) = sides(d, dir, c).and_then(|(n, w)| check(d, c, &n, &w)) {
                failures.push(format!("{}: {}: {e}", d.id, c.name));
            }
        }
    }
    assert!(ran >= 40, "only {ran} cases in {} regions", sets.len());
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_dialect_has_golden_pairs_for_every_service_direction_and_way() {
    let sets = fixture_sets();
    let mut missing = Vec::new();
    for d in shipped() {
        let Some((_, _, cases)) = sets.iter().find(|(f, _, _)| f.id == d.id) else {
            missing.push(format!("{}: no tests/fixtures/dialects/{}/", d.id, d.id));
            continue;
        };
        for service in d.services.keys() {
            for dir in ["request", "response"] {
                for way in ["to_dialect", "to_national"] {
                    let covered = cases.case.iter().any(|c| {
                        c.service == service.to_string()
                            && c.direction == dir
                            && c.ways.iter().any(|w| w == way)
                    });
                    if !covered {
                        missing.push(format!("{}: {service} {dir} {way}", d.id));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "no golden pair for:\n{}",
        missing.join("\n")
    );
}

/// A copy of `v` with its first leaf changed.
fn mutated(v: &Value) -> Value {
    let mut out = v.clone();
    let first = leaves(v).into_iter().next().expect("a leaf");
    let mut cur = &mut out;
    for k in first.split('.') {
        cur = cur.get_mut(k).expect("the leaf's path");
    }
    *cur = json!("\u{2603} mutated");
    out
}

#[test]
fn a_wrong_expectation_fails_every_golden_pair() {
    // The walk can fail: each case, with one expected value or loss changed, is reported.
    let mut survivors = Vec::new();
    for (d, dir, cases) in fixture_sets() {
        for c in &cases.case {
            let (national, dialect) = sides(&d, &dir, c).expect("sides");
            // A pair with no way checks nothing: it is refused, not passed.
            let none = Case {
                ways: Vec::new(),
                ..c.clone()
            };
            if check(&d, &none, &national, &dialect).is_ok() {
                survivors.push(format!("{}: {}: no way at all", d.id, c.name));
            }
            for way in &c.ways {
                let one = Case {
                    ways: vec![way.clone()],
                    ..c.clone()
                };
                let (n, w) = if way == "to_dialect" {
                    (national.clone(), mutated(&dialect))
                } else {
                    (mutated(&national), dialect.clone())
                };
                if check(&d, &one, &n, &w).is_ok() {
                    survivors.push(format!("{}: {} ({way}): a changed value", d.id, c.name));
                }
                let mut lossy = one;
                lossy.losses_to_dialect.push("unmapped:nothing".into());
                lossy.losses_to_national.push("unmapped:nothing".into());
                if check(&d, &lossy, &national, &dialect).is_ok() {
                    survivors.push(format!("{}: {} ({way}): an extra loss", d.id, c.name));
                }
            }
        }
    }
    assert!(survivors.is_empty(), "{}", survivors.join("\n"));
}

mod round_trip;

use round_trip::leaves;

// Onboarding and bad files ------------------------------------------------------------

const SEVENTH: &str = r#"
region = "610000"
name = "陕西 Shaanxi (a seventh region, onboarded by a file)"
codec = "json"

[[codes]]
host = "qr.sn.example.cn"
path_prefix = "/c"
param = "id"

[maps.colour]
pairs = [["00", "1"], ["01", "2"], ["10", "0"]]

[services.verifyCode]
path = "/verify"

[services.verifyCode.request]
fields = [{ national = "codeContent", dialect = "content" }]

[services.verifyCode.response]
fields = [
  { national = "codeColor", dialect = "data.status", map = "colour", type = "number" },
  { national = "updateTime", dialect = "data.time", date = "YYYYMMDDhhmmss" },
  { national = "issuerRegion", dialect = "data.cityNo", region_digits = 12 },
]
"#;

#[test]
fn onboards_a_seventh_dialect_from_a_directory_without_code() {
    let dir = temp_dir("dialect-onboard");
    std::fs::write(dir.join("shaanxi.toml"), SEVENTH).unwrap();
    let ds = Dialect::load_dir(&dir, &Standard::embedded()).unwrap_or_else(|e| panic!("{e}"));
    let d = &ds[0];
    let t = translate::to_national(
        d,
        ServiceName::VerifyCode,
        Direction::Response,
        &json!({"data": {"status": 0, "time": "20261123083005", "cityNo": "610113001000"}}),
    )
    .unwrap();
    assert_eq!(
        t.body,
        json!({"code": "0", "bizContent": {"codeColor": "10", "updateTime": "2026-11-23 08:30:05", "issuerRegion": "610113"}})
    );
    assert_eq!(t.losses.header_value(), "truncated:issuerRegion");
    assert_eq!(
        translate::recognise(&ds, "https://qr.sn.example.cn/c?id=abc123").map(|m| m.code_id),
        Some("abc123".to_owned())
    );

    // And from the command line, with the same directory.
    let input = dir.join("req.json");
    std::fs::write(
        &input,
        r#"{"codeContent": "https://qr.sn.example.cn/c?id=abc123", "scene": "VENUE"}"#,
    )
    .unwrap();
    let out = hutong([
        "translate",
        "--regions",
        dir.to_str().unwrap(),
        "--from",
        "national",
        "--to",
        "shaanxi",
        "--service",
        "verifyCode",
        input.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains(r#""content": "https://qr.sn.example.cn/c?id=abc123""#),
        "{text}"
    );
    assert!(text.contains("unmapped  national=scene"), "{text}");
}

#[test]
fn reports_every_problem_of_every_bad_dialect_file_at_once() {
    let dir = temp_dir("dialect-bad");
    std::fs::write(
        dir.join("a.toml"),
        SEVENTH
            .replace("\"610000\"", "\"61\"")
            .replace("\"colour\", type", "\"color\", type"),
    )
    .unwrap();
    std::fs::write(
        dir.join("b.toml"),
        "region = \"620000\"\nname = \"b\"\ncodec = \"yaml\"\nsigning = { scheme = \"md5\" }\n",
    )
    .unwrap();
    let out = hutong([
        "translate",
        "--regions",
        dir.to_str().unwrap(),
        "--from",
        "national",
        "--to",
        "a",
        "--service",
        "verifyCode",
        "-",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "a.toml:2: region:",
        "a.toml:22: services.verifyCode.response.fields[0].map: no map `color`",
        "b.toml:3: codec:",
        "b.toml:4: signing.scheme:",
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
    assert!(err.contains("4 problem(s)"), "{err}");
}

#[test]
fn a_malformed_regional_payload_is_an_error_with_its_path_never_a_panic() {
    let ds = shipped();
    for d in &ds {
        for body in [
            json!([]),
            json!({"resCode": "x", "errCode": [1], "res": "s", "resultData": {"data": {"level": 7, "zjgxsj": true, "cityNo": "33"}}}),
        ] {
            // Either a translation or a typed error; both are fine, a panic is not.
            if let Err(e) =
                translate::to_national(d, ServiceName::VerifyCode, Direction::Response, &body)
            {
                assert_eq!(e.return_code(Direction::Response), "9002", "{e}");
            }
        }
    }
}

#[test]
fn translate_command_reads_and_writes_xml_with_its_loss_report() {
    let xml = fixture("dialects/hubei/verify.response.xml");
    let out = hutong([
        "translate",
        "--regions",
        root().join("config/regions").to_str().unwrap(),
        "--from",
        "hubei",
        "--to",
        "beijing",
        "--service",
        "verifyCode",
        "--direction",
        "response",
        xml.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains(r#""status": "未见异常""#), "{text}");
    assert!(
        text.contains("# loss report: 2 field(s)")
            && text.contains("unmapped  national=bizExtData")
            && text.contains("unmapped  national=ticketExpiresIn"),
        "{text}"
    );

    let json = fixture("dialects/anhui/verify.request.json");
    let out = hutong([
        "translate",
        "--regions",
        root().join("config/regions").to_str().unwrap(),
        "--from",
        "anhui",
        "--to",
        "hubei",
        "--service",
        "verifyCode",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let (doc, report) = text.split_once("# loss report").expect("a loss report");
    let read = codec::decode(Codec::Xml, doc.trim().as_bytes()).expect("XML output");
    assert_eq!(
        read["Envelope"]["Body"]["validateCode"]["areaCode"],
        json!("340104")
    );
    assert!(
        report.contains("truncated national=location.region dialect=cityNo"),
        "{report}"
    );
}
