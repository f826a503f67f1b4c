//! The conformance suite against real targets on loopback: the clean national simulator
//! and the gateway in front of it must conform; a simulator with a seeded defect must not
//! (the suite's mutation score).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hutong::client::{GatewayClient, Profile};
use hutong::config::SignTypeName;
use hutong::conformance::{self, Fixtures, Report};
use hutong::crypto::{SigningKey, Sm4Key, to_hex};
use hutong::envelope::ClientCredentials;
use hutong::sim::{self, RunningSim, SimConfig, SimKeys};

use crate::support::{root, temp_dir};

pub const APP: &str = "C3300000001";
pub const MAC: [u8; 32] = [0x11; 32];
pub const SM4: [u8; 16] = [0x22; 16];
pub const APP2: &str = "C3300000002";
pub const MAC2: [u8; 32] = [0x33; 32];

/// A national simulator with the suite's client registered, and what the suite needs.
pub struct SimTarget {
    /// A second registered client.
    pub client2: GatewayClient,
    /// The simulator's base URL.
    pub client_base: String,
    /// Kept alive for the run (dropping it stops the simulator).
    pub _sim: RunningSim,
    pub dir: PathBuf,
    pub fixtures: Fixtures,
    pub client: GatewayClient,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Starts a national simulator with `defects` (none: the clean one).
pub async fn sim_target(tag: &str, configure: impl FnOnce(&mut SimConfig)) -> SimTarget {
    let dir = temp_dir(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let client_key = SigningKey::generate().unwrap();
    std::fs::write(dir.join("client.key.pem"), client_key.to_pem().unwrap()).unwrap();
    let mut clients = HashMap::new();
    clients.insert(
        APP.to_owned(),
        ClientCredentials {
            verifying_key: Some(client_key.verifying_key()),
            mac_key: Some(hutong::crypto::MacKey::from_bytes(&MAC).unwrap()),
            sm4_key: Some(Sm4Key::from_bytes(&SM4).unwrap()),
            insecure_allow_plaintext: false,
        },
    );
    clients.insert(
        APP2.to_owned(),
        ClientCredentials {
            verifying_key: None,
            mac_key: Some(hutong::crypto::MacKey::from_bytes(&MAC2).unwrap()),
            sm4_key: Some(Sm4Key::from_bytes(&SM4).unwrap()),
            insecure_allow_plaintext: false,
        },
    );
    let keys = SimKeys::generate().unwrap();
    let public = keys.public();
    std::fs::write(dir.join("sim.pub.pem"), public.response.to_pem().unwrap()).unwrap();
    let issuer_key = keys.issuer.clone();
    let ticket_key = keys.ticket.clone();
    let mut cfg = SimConfig::new(clients);
    // The suite's client has a quota, so that the rate-limit case has one to meet.
    cfg.rate_limits.insert(
        APP.to_owned(),
        hutong::ratelimit::RateLimitConfig {
            per_second: std::num::NonZeroU32::new(100).unwrap(),
            burst: std::num::NonZeroU32::new(50).unwrap(),
        },
    );
    configure(&mut cfg);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = sim::start(cfg, keys, listener).await.unwrap();

    // A green and a yellow holder, an expired code of its issuer and an expired ticket it
    // sealed for the suite's client, as `hutong sim --fixtures-out` writes them.
    let fixtures = sim::conformance_fixtures(&sim, &issuer_key, ticket_key, APP, now()).unwrap();
    let profile = Profile {
        gateway: sim.base_url(),
        app_id: APP.into(),
        sign_type: SignTypeName::HmacSm3,
        sm2_key_file: Some(dir.join("client.key.pem")),
        mac_key_hex: Some(to_hex(&MAC)),
        sm4_key_hex: Some(to_hex(&SM4)),
        gateway_sign_key_file: dir.join("sim.pub.pem"),
        gateway_encryption_key_file: None,
        ca_file: None,
        client_cert_file: None,
        client_key_file: None,
        token_file: None,
        timeout_ms: 10_000,
    };
    let client = GatewayClient::new(&profile).unwrap();
    let client2 = GatewayClient::new(&Profile {
        app_id: APP2.into(),
        mac_key_hex: Some(to_hex(&MAC2)),
        ..profile
    })
    .unwrap();
    SimTarget {
        client2,
        client_base: sim.base_url(),
        _sim: sim,
        dir,
        fixtures,
        client,
    }
}

/// The whole suite against `client`.
pub async fn run_suite(
    client: &GatewayClient,
    client2: &GatewayClient,
    fixtures: &Fixtures,
    skip: &[&str],
) -> Report {
    let mut cases = conformance::load_dir(&root().join("conformance/cases")).unwrap();
    cases.retain(|c| !skip.contains(&c.id.as_str()));
    let ctx = conformance::setup(client, fixtures).await.unwrap();
    conformance::run_all(client, Some(client2), "loopback", &cases, &ctx, &[]).await
}

pub fn cleanup(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clean_simulator_conforms() {
    let t = sim_target("conf-clean", |_| {}).await;
    let report = run_suite(&t.client, &t.client2, &t.fixtures, &[]).await;
    assert!(report.conforms(), "{}", report.summary());
    assert!(report.cases.len() >= 25, "{} cases", report.cases.len());
    // The JUnit report names every case and no personal value.
    let xml = report.junit();
    for c in &report.cases {
        assert!(xml.contains(&c.id));
    }
    for p in t.fixtures.person.values() {
        assert!(!xml.contains(&p.id_no));
        let json = serde_json::to_string(&report).unwrap();
        assert!(!json.contains(&p.id_no), "a report carries an ID number");
    }
    // The HTML report, with the coverage matrix, renders in headless Chromium: the verdict
    // band is drawn in its green.
    let cases = conformance::load_dir(&root().join("conformance/cases")).unwrap();
    let rules = conformance::coverage::load(&root().join("conformance/coverage.toml")).unwrap();
    let matrix = conformance::coverage::Matrix::build(&cases, &rules);
    let html = t.dir.join("report.html");
    std::fs::write(&html, report.html(&matrix)).unwrap();
    let png = crate::code_page::screenshot_url(
        &t.dir,
        "report",
        &format!("file://{}", html.display()),
        &[],
    );
    // The band is the first thing drawn in either verdict colour (the matrix's cells,
    // below it, share the green): its colour is the colour of the topmost such row.
    let band = |png: &Path| {
        let img = crate::code_page::decode(png);
        (0..img.height).find_map(|y| {
            (0..img.width).find_map(|x| match img.pixel(x, y) {
                [0xC8, 0xE6, 0xC9] => Some("green"),
                [0xFF, 0xCD, 0xD2] => Some("red"),
                _ => None,
            })
        })
    };
    assert_eq!(
        band(&png),
        Some("green"),
        "the verdict band of a conforming run"
    );
    // One case failed: the band is red.
    let mut failing = report.clone();
    failing.cases[0].passed = false;
    assert!(!failing.conforms());
    std::fs::write(&html, failing.html(&matrix)).unwrap();
    let png = crate::code_page::screenshot_url(
        &t.dir,
        "report-failing",
        &format!("file://{}", html.display()),
        &[],
    );
    assert_eq!(band(&png), Some("red"), "the verdict band of a failing run");
    cleanup(&t.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_fails_when_its_expectation_is_wrong_and_a_stale_deviation_fails_the_run() {
    let t = sim_target("conf-wrong", |_| {}).await;
    let mut cases = conformance::load_dir(&root().join("conformance/cases")).unwrap();
    cases.retain(|c| c.id == "VC-001" || c.id == "VC-002");
    // VC-001 expects PASS and 00; ask for DENY instead: the result stage must fail.
    cases[0].expect.result = Some(serde_json::json!({"verifyResult": "DENY"}));
    let ctx = conformance::setup(&t.client, &t.fixtures).await.unwrap();
    // VC-002 is listed as a known deviation, but passes: the list is stale.
    let dev = [conformance::Deviation {
        case: "VC-002".into(),
        reason: "test".into(),
    }];
    let report = conformance::run_all(&t.client, None, "loopback", &cases, &ctx, &dev).await;
    assert!(!report.conforms());
    let bad: Vec<&str> = report.bad().iter().map(|c| c.id.as_str()).collect();
    assert_eq!(bad, ["VC-001", "VC-002"], "{}", report.summary());
    let vc1 = &report.cases[0];
    let failed: Vec<&str> = vc1
        .stages
        .iter()
        .filter(|s| !s.pass)
        .map(|s| s.stage)
        .collect();
    assert_eq!(failed, ["result"]);
    assert!(report.summary().contains("unexpected pass"));
    // Every report says why the stale deviation fails, not only the terminal.
    let junit = report.junit();
    assert!(junit.contains("<failure"));
    assert!(
        junit.contains("<failure message=\"unexpected pass"),
        "{junit}"
    );
    let rules = conformance::coverage::load(&root().join("conformance/coverage.toml")).unwrap();
    let matrix = conformance::coverage::Matrix::build(&cases, &rules);
    assert!(report.html(&matrix).contains("unexpected pass"));
    // A deviation that fails as listed is skipped in JUnit, with its reason.
    let dev = [conformance::Deviation {
        case: "VC-001".into(),
        reason: "expects DENY".into(),
    }];
    let report = conformance::run_all(&t.client, None, "loopback", &cases[..1], &ctx, &dev).await;
    assert!(report.conforms(), "{}", report.summary());
    assert!(
        report
            .junit()
            .contains("<skipped message=\"known deviation: expects DENY\"/>"),
        "{}",
        report.junit()
    );
    cleanup(&t.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_in_front_of_the_simulator_conforms() {
    let fx = crate::gateway::Fixture::start(crate::gateway::Opts {
        extra_client_toml: format!(
            "[client.rate_limit]\nper_client = {{ per_second = 100, burst = 50 }}\n\n\
             [[client]]\napp_id = \"{APP2}\"\nregion = \"330106\"\nrole = \"verifier\"\n\
             services = [\"verifyCode\", \"queryHealthInfo\"]\nregions = [\"*\"]\n\
             sign_types = [\"HMAC-SM3\"]\nmac_key_hex = \"{}\"\nsm4_key_hex = \"{}\"\n",
            to_hex(&MAC2),
            to_hex(&SM4)
        ),
        ..crate::gateway::Opts::default()
    })
    .await;
    // The simulator's people and expired code; the ticket is replaced below by one the
    // gateway sealed, the only kind the gateway opens.
    let any_key = Sm4Key::from_bytes(&[0u8; 16]).unwrap();
    let sim = fx.sim.as_ref().unwrap();
    let mut fixtures = sim::conformance_fixtures(sim, &fx.issuer_key, any_key, APP, now()).unwrap();
    // A ticket the gateway sealed for the suite's client, expired ten minutes ago.
    let app = fx.profile(SignTypeName::HmacSm3, true).app_id;
    let t = now();
    let expired = fx
        .gw
        .tickets
        .seal_json(&serde_json::json!({"v": 1, "app": app, "rgn": "330000",
            "scope": ["code"], "iat": t - 1200, "exp": t - 600}))
        .unwrap();
    fixtures.ticket.insert("expired".into(), expired);
    let client = fx.client(SignTypeName::HmacSm3);
    let mut p2 = fx.profile(SignTypeName::HmacSm3, false);
    p2.app_id = APP2.into();
    p2.mac_key_hex = Some(to_hex(&MAC2));
    p2.sm4_key_hex = Some(to_hex(&SM4));
    let mut client2 = GatewayClient::new(&p2).unwrap();
    client2.set_token(Some(
        fx.gw
            .tokens
            .issue(APP2, &hutong::standard::ServiceName::ALL, 600)
            .unwrap(),
    ));
    let report = run_suite(&client, &client2, &fixtures, &[]).await;
    assert!(report.conforms(), "{}", report.summary());

    // The load profile: 20 req/s, then 200 req/s, against a 100/s limit. The burst meets
    // 1007, and nothing else goes wrong.
    let ctx = conformance::setup(&client, &fixtures).await.unwrap();
    let biz = conformance::run::fill(
        &serde_json::json!({"codeContent": "{{code.green}}",
            "verifier": {"orgName": "load", "deviceId": "L-1"}}),
        &ctx,
    )
    .unwrap();
    let load = conformance::load::run(&client, &biz, 20, 2).await;
    println!("{}", load.text());
    assert!(load.rate_limited, "{}", load.text());
    assert_eq!(
        load.phases[0].errors + load.phases[1].errors,
        0,
        "{}",
        load.text()
    );
}

#[test]
fn every_cell_of_the_coverage_matrix_has_a_case_or_a_reason() {
    let cases = conformance::load_dir(&root().join("conformance/cases")).unwrap();
    let rules = conformance::coverage::load(&root().join("conformance/coverage.toml")).unwrap();
    let m = conformance::coverage::Matrix::build(&cases, &rules);
    assert!(m.gaps().is_empty(), "gaps: {:?}\n{}", m.gaps(), m.text());
    // The cells reached only by cases that accept several codes (○) are the two the profile
    // leaves open: an accepted correction may be answered 0 or 4001 (README, Conformance).
    let alternatives: Vec<(&str, &str)> = m
        .rows
        .iter()
        .flat_map(|(s, row)| {
            row.iter()
                .filter(|(_, c)| matches!(c, conformance::coverage::Cell::Alternative { .. }))
                .map(move |(code, _)| (s.as_str(), code.as_str()))
        })
        .collect();
    assert_eq!(
        alternatives,
        [("correctHealthInfo", "0"), ("correctHealthInfo", "4001")],
        "{}",
        m.text()
    );
    // And the check can fail: without the rules, cells are gaps.
    assert!(
        !conformance::coverage::Matrix::build(&cases, &conformance::coverage::Rules::default())
            .gaps()
            .is_empty()
    );
}

#[test]
fn a_dialect_file_and_its_golden_pairs_are_checked_offline() {
    let file = root().join("config/regions/beijing.toml");
    let pairs = root().join("tests/fixtures/dialects/beijing");
    let ok = crate::support::hutong([
        "conformance",
        "dialect",
        file.to_str().unwrap(),
        "--fixtures",
        pairs.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&ok.stdout).to_string();
    assert!(ok.status.success(), "{text}");
    assert!(text.contains("0 failed"), "{text}");
    // A changed expectation fails, naming the pair.
    let dir = temp_dir("conf-dialect");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(&pairs).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    let national = dir.join("verify.response.national.json");
    let text = std::fs::read_to_string(&national).unwrap();
    std::fs::write(&national, text.replace("\"00\"", "\"10\"")).unwrap();
    let bad = crate::support::hutong([
        "conformance",
        "dialect",
        file.to_str().unwrap(),
        "--fixtures",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad.stdout)
    );
    assert!(String::from_utf8_lossy(&bad.stdout).contains("FAIL"));
    cleanup(&dir);
}

#[test]
fn the_offline_code_vectors_hold_and_a_wrong_verdict_is_caught() {
    let ok = crate::support::hutong([
        "conformance",
        "vectors",
        "--dir",
        root().join("conformance/vectors").to_str().unwrap(),
        "--regions",
        root().join("config/regions").to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&ok.stdout).to_string();
    assert!(ok.status.success(), "{text}");
    assert!(text.contains("14 vector(s), 0 failed"), "{text}");
    // The same vectors with V-002 (expired) expected valid: the verifier disagrees.
    let src = root().join("conformance/vectors");
    let dir = vectors_beside("conf-vectors");
    let v = std::fs::read_to_string(src.join("vectors.toml")).unwrap();
    let changed = v.replacen(
        "clock = 1795003660\nexpect = { code = \"3002\" }",
        "clock = 1795003660\nexpect = { code = \"0\" }",
        1,
    );
    assert_ne!(changed, v);
    std::fs::write(dir.join("vectors.toml"), changed).unwrap();
    let bad = crate::support::hutong([
        "conformance",
        "vectors",
        "--dir",
        dir.to_str().unwrap(),
        "--regions",
        root().join("config/regions").to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&bad.stdout).to_string();
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL V-002"), "{text}");
    cleanup(&dir);
}

/// Defects the suite cannot see from outside: none (an expired ticket comes from the
/// fixtures, as an expired code does).
const UNSEEN: [sim::Defect; 0] = [];

/// Where each seeded defect must be caught: the case written for it (among any others that
/// fail), or, for `setup:`, the set-up, by an answer of the target's that breaks the
/// standard (the command's exit 1), with this in its message. A defect caught somewhere
/// else, by chance, does not count: the case meant to catch it must.
const CAUGHT_BY: [(&str, &[&str]); 22] = [
    ("skip-signature-check", &["ENV-002"]),
    (
        "wrong-canonical-order",
        &["setup:signature does not verify"],
    ),
    ("accept-replay", &["ENV-005"]),
    ("accept-stale-timestamp", &["ENV-003", "ENV-004"]),
    ("leak-id-number", &["VC-001"]),
    ("leak-name", &["VC-001"]),
    ("expired-code-wrong-code", &["VC-005"]),
    ("ignore-rate-limit", &["RL-001"]),
    ("wrong-colour-map", &["QH-002", "VC-002"]),
    ("wrong-response-key", &["ENV-002"]),
    ("drop-required-field", &["VC-001"]),
    ("unknown-app-wrong-code", &["ENV-006"]),
    ("ticket-any-client", &["QH-007"]),
    ("ticket-no-expiry", &["QH-008"]),
    ("accept-plaintext", &["ENV-007"]),
    ("wrong-request-id", &["setup:does not answer this request"]),
    ("untrusted-issuer-accepted", &["VC-004"]),
    ("bad-time-format", &["VC-001"]),
    ("duplicate-correction-accepted", &["CH-002"]),
    ("missing-signature-on-error", &["ENV-002"]),
    ("wrong-http-status", &["ENV-002"]),
    // Every case of a missing or malformed parameter: each is shown to fail.
    (
        "skip-business-validation",
        &[
            "AC-003", "AC-004", "AC-005", "AC-006", "AC-007", "CH-003", "CH-004", "CH-006",
            "CH-007", "DH-002", "DH-003", "DH-004", "DH-005", "DH-006", "DT-002", "DT-003",
            "DT-004", "DT-005", "DT-006", "GC-002", "GC-003", "GC-005", "GC-006", "QH-009",
            "QH-010", "QH-011", "QH-012", "QH-013", "VC-006", "VC-007", "VC-009", "VC-010",
        ],
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_fails_on_every_seeded_defect() {
    let mut caught = Vec::new();
    let mut missed = Vec::new();
    for d in sim::Defect::ALL {
        if UNSEEN.contains(&d) {
            continue;
        }
        let t = sim_target(&format!("conf-{}", d.as_str()), |c| c.defects.insert(d)).await;
        let mut cases = conformance::load_dir(&root().join("conformance/cases")).unwrap();
        cases.sort_by(|a, b| a.id.cmp(&b.id));
        // A target whose set-up answers do not hold (they do not verify) fails before any
        // case: the command exits 2 for it.
        let expected: &[&str] = CAUGHT_BY
            .iter()
            .find(|(name, _)| *name == d.as_str())
            .map(|(_, by)| *by)
            .unwrap_or_else(|| panic!("{}: no expected case in CAUGHT_BY", d.as_str()));
        match conformance::setup(&t.client, &t.fixtures).await {
            Err(e) => {
                println!("{:<32} caught at set-up: {e}", d.as_str());
                let at_setup = expected.iter().all(|x| {
                    x.strip_prefix("setup:")
                        .is_some_and(|m| e.nonconforming && e.to_string().contains(m))
                });
                if at_setup {
                    caught.push(d.as_str());
                } else {
                    missed.push(d.as_str());
                }
            }
            Ok(ctx) => {
                let report = conformance::run_all(
                    &t.client,
                    Some(&t.client2),
                    "loopback",
                    &cases,
                    &ctx,
                    &[],
                )
                .await;
                let bad: Vec<&str> = report.bad().iter().map(|c| c.id.as_str()).collect();
                println!("{:<32} caught by {}", d.as_str(), bad.join(" "));
                let uncaught: Vec<&&str> = expected.iter().filter(|x| !bad.contains(*x)).collect();
                if !report.conforms() && uncaught.is_empty() {
                    caught.push(d.as_str());
                } else {
                    println!("{:<32} not caught by {uncaught:?}", d.as_str());
                    missed.push(d.as_str());
                }
            }
        }
        cleanup(&t.dir);
    }
    println!(
        "mutation score: {}/{} defects caught ({} not observable in one run: {:?})",
        caught.len(),
        caught.len() + missed.len(),
        UNSEEN.len(),
        UNSEEN.map(sim::Defect::as_str)
    );
    assert!(
        missed.is_empty(),
        "defects the suite let through, or caught elsewhere than by their case: {missed:?}"
    );
    assert_eq!(caught.len(), CAUGHT_BY.len(), "{caught:?}");
}

#[test]
fn the_example_fixtures_file_reads() {
    let f = Fixtures::load(&root().join("conformance/fixtures.example.toml")).unwrap();
    assert_eq!(f.person.len(), 2);
    assert!(f.code.contains_key("expired") && f.ticket.contains_key("expired"));
}

/// A directory with the offline vectors' trust list and anchor key, for a changed
/// `vectors.toml` to be written beside them.
fn vectors_beside(tag: &str) -> PathBuf {
    let src = root().join("conformance/vectors");
    let dir = temp_dir(tag);
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::copy(src.join("trust-list.json"), dir.join("trust-list.json")).unwrap();
    std::fs::copy(
        src.join("keys/anchor.pub.pem"),
        dir.join("keys/anchor.pub.pem"),
    )
    .unwrap();
    dir
}

/// Every offline vector can fail: with its expectation changed (another code, another
/// colour, another dialect or code id), the check reports that vector, and only it.
#[test]
fn every_vector_fails_with_its_expectation_changed() {
    let src = root().join("conformance/vectors");
    let dialects = hutong::translate::Dialect::load_dir(
        &root().join("config/regions"),
        &hutong::standard::Standard::embedded(),
    )
    .unwrap();
    let text = std::fs::read_to_string(src.join("vectors.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let dir = vectors_beside("conf-vectors-each");
    let mut survivors = Vec::new();
    let mut checked = 0;
    for kind in ["vector", "regional"] {
        let n = doc
            .get(kind)
            .and_then(toml::Value::as_array)
            .map_or(0, Vec::len);
        for i in 0..n {
            let mut changed = doc.clone();
            let v = &mut changed[kind].as_array_mut().unwrap()[i];
            let id = v["id"].as_str().unwrap().to_owned();
            let expect = v["expect"].as_table_mut().unwrap();
            if kind == "vector" {
                let code = expect["code"].as_str().unwrap();
                let other = if code == "0" { "3004" } else { "0" };
                expect.insert("code".into(), other.into());
            } else {
                let id_of = expect["code_id"].as_str().unwrap().to_owned();
                expect.insert("code_id".into(), format!("{id_of}x").into());
            }
            std::fs::write(dir.join("vectors.toml"), toml::to_string(&changed).unwrap()).unwrap();
            let outcomes = conformance::vectors::check(&dir, &dialects).unwrap();
            let failed: Vec<&str> = outcomes
                .iter()
                .filter(|(_, r)| r.is_err())
                .map(|(id, _)| id.as_str())
                .collect();
            if failed != [id.as_str()] {
                survivors.push(format!("{id}: failed {failed:?}"));
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 14, "every vector and regional content");
    assert!(survivors.is_empty(), "{}", survivors.join("\n"));
    cleanup(&dir);
}
