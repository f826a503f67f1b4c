//! `hutong bench`, the in-process half of benches/bench.sh: what it makes must be what the
//! benchmark claims (fresh codes, requests a region accepts, counts it really filled).

use std::collections::HashSet;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::{Proc, http, http_with, hutong, root, spawn_listening, stdout, temp_dir};

#[test]
fn codes_are_fresh_phic1_codes_one_per_line() {
    let dir = temp_dir("bench-codes");
    let key = dir.join("issuer");
    let o = hutong(["keys", "gen", "--out", key.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let o = hutong([
        "bench",
        "codes",
        "--key",
        dir.join("issuer.key.pem").to_str().unwrap(),
        "--iss",
        "10000099",
        "--kid",
        "k1",
        "--count",
        "5",
    ]);
    assert!(o.status.success(), "{o:?}");
    let codes: Vec<String> = stdout(&o)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["codeContent"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(codes.len(), 5);
    assert!(
        codes
            .iter()
            .all(|c| c.contains("iss=10000099") && c.contains("pc=PHIC1."))
    );
    assert_eq!(codes.iter().collect::<HashSet<_>>().len(), 5, "{codes:?}");
}

#[test]
fn a_dialect_request_is_signed_as_the_region_expects() {
    let (child, _out, port) = spawn_listening(
        Command::new(env!("CARGO_BIN_EXE_hutong"))
            .args(["sim", "--region", "zhejiang", "--regions-dir"])
            .arg(root().join("config/regions"))
            .args(["--listen", "127.0.0.1:0", "--population", "20"])
            .args(["--app-key", "bench-gw", "--secret", "zj-secret"])
            .stderr(Stdio::null()),
    );
    let _sim = Proc(child);
    let dir = temp_dir("bench-dialect");
    let (_, sample) = http(port, "GET", "/sim/sample/1", "");
    let body = dir.join("verify.json");
    let national = json!({
        "codeContent": sample["codeContent"],
        "verifier": {"orgName": "某地铁站", "deviceId": "G-01"},
    });
    std::fs::write(&body, national.to_string()).unwrap();
    let request = |secret: &str| -> Value {
        let o = hutong([
            "bench",
            "dialect-request",
            "--regions",
            root().join("config/regions").to_str().unwrap(),
            "--dialect",
            "zhejiang",
            "--service",
            "verifyCode",
            "--id",
            "bench-gw",
            // The dialect simulator keys its caller's HMAC with the appKey's bytes.
            "--key-hex",
            "62656e63682d6777",
            "--secret",
            secret,
            "--body",
            body.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{o:?}");
        serde_json::from_str(&stdout(&o)).unwrap()
    };
    let send = |r: &Value| {
        http_with(
            port,
            "POST",
            r["path"].as_str().unwrap(),
            r["headers"]["content-type"].as_str().unwrap(),
            r["body"].as_str().unwrap(),
        )
        .1
    };
    let good = send(&request("zj-secret"));
    assert_eq!(good["errCode"], 0, "{good}");
    assert_eq!(good["resultData"]["data"]["name"], sample["name"], "{good}");
    // Signed with another secret, the region refuses it.
    let bad = send(&request("not-the-secret"));
    assert_ne!(bad["errCode"], 0, "{bad}");
}

#[test]
fn memory_parts_counts_what_it_filled() {
    let o = hutong(["bench", "memory-parts", "--count", "2000"]);
    assert!(o.status.success(), "{o:?}");
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["count"], 2000);
    assert_eq!(v["cache_entries"], 2000, "{v}");
    let o = hutong(["bench", "memory-parts", "--count", "0"]);
    assert!(!o.status.success());
}

#[test]
fn nonce_save_loads_what_it_saved_and_times_checks_beside_the_save() {
    let o = hutong(["bench", "nonce-save", "--count", "30000"]);
    assert!(o.status.success(), "{o:?}");
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    // The filled nonces, and those the checks beside the save added before it reached
    // their shard.
    let saved = v["nonces"].as_u64().unwrap();
    let beside = v["checks_during_save"]["checks"].as_u64().unwrap();
    assert!((30_000..=30_000 + beside).contains(&saved), "{v}");
    // 16 + 16 + 8 of header, 28 a nonce, one client, 16 + 16 of trailer.
    assert_eq!(v["file_bytes"], 40 + saved * 28 + 2 + 11 + 32, "{v}");
    assert!(v["save_ms"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["checks_alone"]["checks"].as_u64().unwrap() > 0, "{v}");
    let o = hutong(["bench", "nonce-save", "--count", "0"]);
    assert!(!o.status.success());
}

/// `hutong bench relay-floor` started over TLS in front of `upstream_port` with a fresh
/// certificate (openssl): the process and the port it listens on.
fn relay_floor(dir: &std::path::Path, upstream_port: u16) -> (Proc, u16) {
    use std::io::BufRead as _;
    let (cert, key) = (dir.join("floor.crt"), dir.join("floor.key"));
    let o = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs (bash .ci/test installs it)");
    assert!(o.status.success(), "{o:?}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hutong"))
        .args(["bench", "relay-floor", "--cert"])
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .args(["--upstream", &format!("http://127.0.0.1:{upstream_port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .split("https://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .parse()
        .unwrap();
    (Proc(child), port)
}

/// A POST of `body` over TLS to the floor.
fn curl(port: u16, body: &str) -> (u16, String) {
    crate::support::curl_tls(&port.to_string(), "POST", "/phic/v1/verifyCode", Some(body))
}

#[test]
fn the_relay_floor_relays_bodies_both_ways_and_says_502_when_the_upstream_is_down() {
    let dir = temp_dir("bench-floor");
    let (child, _out, sim_port) = spawn_listening(
        Command::new(env!("CARGO_BIN_EXE_hutong"))
            .args(["sim", "--national", "--population", "5", "--clients"])
            .arg(root().join("config/sim-national.example.toml"))
            .arg("--keys-out")
            .arg(dir.join("sim-keys"))
            .stderr(Stdio::null()),
    );
    let sim = Proc(child);
    let (_floor, port) = relay_floor(&dir, sim_port);
    // Each body reaches the simulator and its answer comes back: two bodies, two refusals,
    // each as the simulator gives it when sent straight (they differ only in their stamp).
    let seen = |v: &Value| (v["code"].clone(), v["msg"].clone());
    for (body, code) in [(r#"{"appId":"nobody"}"#, "1001"), ("not json", "1002")] {
        let (status, relayed) = curl(port, body);
        let (direct_status, direct) = http(sim_port, "POST", "/phic/v1/verifyCode", body);
        let relayed: Value = serde_json::from_str(&relayed).unwrap();
        assert_eq!((status, seen(&relayed)), (direct_status, seen(&direct)));
        assert_eq!(relayed["code"], code, "{relayed}");
    }
    drop(sim);
    let (status, body) = curl(port, "{}");
    assert_eq!((status, body.as_str()), (502, ""));
}

#[test]
fn the_relay_floor_listens_on_loopback_only_and_refuses_an_upstream_path() {
    let o = hutong([
        "bench",
        "relay-floor",
        "--listen",
        "0.0.0.0:0",
        "--cert",
        "c",
        "--key",
        "k",
        "--upstream",
        "http://127.0.0.1:1",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("loopback only"),
        "{o:?}"
    );
    // A path in the upstream would be dropped from every request: refused, not ignored.
    let o = hutong([
        "bench",
        "relay-floor",
        "--cert",
        "c",
        "--key",
        "k",
        "--upstream",
        "http://127.0.0.1:1/phic",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("without a path"),
        "{o:?}"
    );
}

#[test]
fn audit_append_commits_what_it_counts_and_refuses_a_bad_interval() {
    let o = hutong(["bench", "audit-append", "--secs", "0.3"]);
    assert!(o.status.success(), "{o:?}");
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let records = v["records"].as_u64().unwrap();
    assert!(records > 0, "{v}");
    // The CPU of a committed record, not of an append alone: every record is in the store
    // when the time is read.
    assert_eq!(v["committed"].as_u64(), Some(records), "{v}");
    assert!(v["per_cpu_second"].as_f64().unwrap() > 0.0, "{v}");
    let o = hutong([
        "bench",
        "audit-append",
        "--secs",
        "0.1",
        "--interval-ms",
        "0",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--interval-ms must be"),
        "{o:?}"
    );
}

#[test]
fn business_json_times_valid_content_and_refuses_what_does_not_validate() {
    let f = |name: &str| {
        crate::support::fixture(&format!("validate/queryHealthInfo/{name}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let run = |request: &str, answer: &str| {
        hutong([
            "bench",
            "business-json",
            "--service",
            "queryHealthInfo",
            "--secs",
            "0.2",
            // The fixtures' clock (tests/validate_fixtures.rs).
            "--at",
            "2026-11-23 12:00:00",
            "--request",
            request,
            "--answer",
            answer,
        ])
    };
    let o = run(&f("valid-request.json"), &f("valid-response.json"));
    assert!(o.status.success(), "{o:?}");
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert!(v["exchanges"].as_u64().unwrap() > 0, "{v}");
    // A timing of content the gateway would refuse is no floor.
    let o = run(&f("bad-anyof-none.json"), &f("valid-response.json"));
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is not a valid request"),
        "{o:?}"
    );
    let o = run(
        &f("valid-request.json"),
        &f("bad-response-missing-person.json"),
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is not a valid answer"),
        "{o:?}"
    );
}
