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
