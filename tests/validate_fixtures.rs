//! The data-driven walk of `tests/fixtures/validate/cases.toml`: every fixture through
//! `hutong validate --json`, with its expected return code and exact violations.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

use crate::support::{fixture, hutong, hutong_stdin, stdout};

/// The validation clock of every case unless it says otherwise.
const DEFAULT_AT: &str = "2026-11-23 12:00:00";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cases {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// What the case shows.
    name: String,
    service: String,
    /// Path under `tests/fixtures/validate/`.
    file: String,
    #[serde(default)]
    response: bool,
    at: Option<String>,
    /// Expected return code of the whole message.
    expect: String,
    /// Exact violations, each `CODE path` (`(message)` for the message as a whole).
    #[serde(default)]
    violations: Vec<String>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixture("validate/cases.toml")).expect("cases.toml");
    toml::from_str::<Cases>(&text)
        .expect("cases.toml parses")
        .case
}

/// Runs one case; `Err` describes how the outcome differs from the expectation.
fn check(case: &Case) -> Result<(), String> {
    let path = fixture(&format!("validate/{}", case.file));
    let mut args = vec![
        "validate".to_owned(),
        case.service.clone(),
        path.display().to_string(),
        "--json".to_owned(),
        "--at".to_owned(),
        case.at.clone().unwrap_or_else(|| DEFAULT_AT.to_owned()),
    ];
    if case.response {
        args.push("--response".to_owned());
    }
    let out = hutong(&args);
    let report: Value = serde_json::from_str(&stdout(&out)).map_err(|e| {
        format!(
            "no JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let code = report["code"].as_str().unwrap_or_default();
    let got: BTreeSet<String> = report["violations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| {
                    let p = v["path"].as_str().unwrap_or_default();
                    format!(
                        "{} {}",
                        v["code"].as_str().unwrap_or_default(),
                        if p.is_empty() { "(message)" } else { p }
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let want: BTreeSet<String> = case.violations.iter().cloned().collect();
    let status_ok = (case.expect == "0") == out.status.success();
    if code != case.expect || got != want || !status_ok {
        return Err(format!(
            "expected {} {:?}, got {code} {:?} (exit {:?})",
            case.expect,
            want,
            got,
            out.status.code()
        ));
    }
    Ok(())
}

#[test]
fn every_fixture_gets_its_expected_code_and_paths() {
    let cases = cases();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            check(c)
                .err()
                .map(|e| format!("{} ({}): {e}", c.name, c.file))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn there_are_at_least_forty_bad_inputs_and_some_valid_ones() {
    let cases = cases();
    let bad = cases.iter().filter(|c| c.expect != "0").count();
    let good = cases.iter().filter(|c| c.expect == "0").count();
    assert!(bad >= 40, "only {bad} bad-input fixtures");
    assert!(good >= 7, "only {good} valid fixtures");
    for c in cases.iter().filter(|c| c.expect != "0") {
        assert!(
            !c.violations.is_empty(),
            "{}: a bad input must name its violations",
            c.name
        );
    }
}

#[test]
fn every_fixture_file_has_a_case_and_every_case_a_file() {
    let cases = cases();
    let named: BTreeSet<String> = cases.iter().map(|c| c.file.clone()).collect();
    let mut on_disk = BTreeSet::new();
    let base = fixture("validate");
    let mut stack = vec![base.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "cases.toml") {
                on_disk.insert(
                    p.strip_prefix(&base)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    assert_eq!(named, on_disk);
}

#[test]
fn a_wrong_expectation_is_caught() {
    // The walk can fail: the same fixture with a wrong code or path is reported.
    let mut c = cases()
        .into_iter()
        .find(|c| c.expect != "0")
        .expect("a bad case");
    c.expect = "0".into();
    assert!(check(&c).is_err());
    let mut c = cases()
        .into_iter()
        .find(|c| c.violations.len() == 1)
        .expect("a single-violation case");
    c.violations = vec!["1002 not.the.path".into()];
    assert!(check(&c).is_err());
}

#[test]
fn an_oversized_message_is_refused_before_parsing() {
    let big = vec![b' '; hutong::national::validate::MAX_MESSAGE_BYTES + 10];
    let out = hutong_stdin(&["validate", "verifyCode", "-", "--json"], &big);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["code"], "1002");
    assert!(
        report["violations"][0]["message"]
            .as_str()
            .unwrap()
            .contains("over the limit")
    );
}

#[test]
fn a_deep_nesting_bomb_is_refused_without_a_crash() {
    let mut bomb = "[".repeat(200_000).into_bytes();
    bomb.extend(std::iter::repeat_n(b']', 200_000));
    let out = hutong_stdin(&["validate", "verifyCode", "-", "--json"], &bomb);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["code"], "1002");
}
