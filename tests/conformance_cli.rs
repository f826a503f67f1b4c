//! `hutong conformance run` as a standards team runs it: profiles and fixtures in files,
//! reports and a certificate out, and the exit status.

use std::path::{Path, PathBuf};

use hutong::crypto::{SigningKey, to_hex};

use crate::conformance::{APP, APP2, MAC, MAC2, SM4, SimTarget, cleanup, sim_target};
use crate::support::root;

/// Writes `client.toml`, `client2.toml` and `fixtures.toml` for `t` into its directory.
fn write_inputs(t: &SimTarget) {
    let d = &t.dir;
    let profile = |app: &str, mac: &[u8]| {
        format!(
            "gateway = \"{}\"\napp_id = \"{app}\"\nsign_type = \"HMAC-SM3\"\nmac_key_hex = \"{}\"\n\
             sm4_key_hex = \"{}\"\ngateway_sign_key_file = \"{}\"\n",
            t.client_base,
            to_hex(mac),
            to_hex(&SM4),
            d.join("sim.pub.pem").display()
        )
    };
    std::fs::write(d.join("client.toml"), profile(APP, &MAC)).unwrap();
    std::fs::write(d.join("client2.toml"), profile(APP2, &MAC2)).unwrap();
    let mut fx = String::new();
    for (label, p) in &t.fixtures.person {
        fx.push_str(&format!(
            "[person.{label}]\nidType = \"{}\"\nidNo = \"{}\"\nname = \"{}\"\n",
            p.id_type, p.id_no, p.name
        ));
    }
    fx.push_str(&format!(
        "[code]\nexpired = \"{}\"\n",
        t.fixtures.code["expired"]
    ));
    std::fs::write(d.join("fixtures.toml"), fx).unwrap();
}

/// A cases directory under `dir` holding only the cases `ids` of the suite, copied as text.
fn cases_dir(dir: &Path, ids: &[&str]) -> PathBuf {
    let out = dir.join("cases");
    std::fs::create_dir_all(&out).unwrap();
    let mut text = String::new();
    for area in std::fs::read_dir(root().join("conformance/cases")).unwrap() {
        for f in std::fs::read_dir(area.unwrap().path()).unwrap() {
            let body = std::fs::read_to_string(f.unwrap().path()).unwrap();
            for block in body.split("[[case]]").skip(1) {
                if ids
                    .iter()
                    .any(|id| block.contains(&format!("id = \"{id}\"")))
                {
                    text.push_str("[[case]]");
                    text.push_str(block);
                    text.push('\n');
                }
            }
        }
    }
    std::fs::write(out.join("some.toml"), text).unwrap();
    out
}

/// `hutong conformance run` with the inputs in `d` and `extra` arguments.
fn run(d: &Path, extra: &[&str]) -> std::process::Output {
    let s = |p: &str| d.join(p).display().to_string();
    let mut args = vec![
        "conformance".to_owned(),
        "run".into(),
        "--client".into(),
        s("client.toml"),
        "--fixtures".into(),
        s("fixtures.toml"),
        "--coverage".into(),
        root()
            .join("conformance/coverage.toml")
            .display()
            .to_string(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    crate::support::hutong(args)
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_writes_reports_and_a_certificate_of_the_cases_it_ran() {
    let t = sim_target("conf-cli", |_| {}).await;
    let d = &t.dir;
    write_inputs(&t);
    let key = SigningKey::generate().unwrap();
    std::fs::write(d.join("team.key.pem"), key.to_pem().unwrap()).unwrap();
    std::fs::write(
        d.join("team.pub.pem"),
        key.verifying_key().to_pem().unwrap(),
    )
    .unwrap();
    let s = |p: &str| d.join(p).display().to_string();
    let cases = cases_dir(d, &["VC-001", "ENV-002"]);
    let out = run(
        d,
        &[
            "--cases",
            cases.to_str().unwrap(),
            "--out",
            &s("out"),
            "--sign-key",
            &s("team.key.pem"),
        ],
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("2 case(s): 2 passed"), "{said}");
    assert!(
        said.contains("service \\ code"),
        "the matrix is printed: {said}"
    );
    for f in [
        "report.json",
        "junit.xml",
        "report.html",
        "certificate.json",
    ] {
        assert!(d.join("out").join(f).exists(), "{f}");
    }
    // Without --target, the reports name the URL tested (the profile's), and the
    // certificate the cases it counts.
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("out").join(f)).unwrap()).unwrap()
    };
    assert_eq!(read("report.json")["target"], t.client_base.as_str());
    let cert = read("certificate.json");
    assert_eq!(cert["certificate"]["target"], t.client_base.as_str());
    assert_eq!(
        cert["certificate"]["caseIds"],
        serde_json::json!(["ENV-002", "VC-001"])
    );
    let verify = |report: &str| {
        crate::support::hutong([
            "conformance",
            "verify-cert",
            "--cert",
            &s("out/certificate.json"),
            "--key",
            &s("team.pub.pem"),
            "--report",
            report,
        ])
    };
    let ok = verify(&s("out/report.json"));
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("VALID certificate"));
    // Another report is not the one certified.
    std::fs::write(d.join("other.json"), "{}").unwrap();
    assert_eq!(verify(&s("other.json")).status.code(), Some(1));

    // --case picks cases out of a run: no certificate of it, and the matrix in its report
    // is of the cases that ran.
    let refused = run(
        d,
        &[
            "--case",
            "VC-001",
            "--out",
            &s("one"),
            "--sign-key",
            &s("team.key.pem"),
        ],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(!d.join("one/certificate.json").exists());
    let one = run(
        d,
        &[
            "--cases",
            root().join("conformance/cases").to_str().unwrap(),
            "--case",
            "VC-001",
            "--out",
            &s("one"),
        ],
    );
    assert!(one.status.success(), "{}", text(&one));
    let html = std::fs::read_to_string(d.join("one/report.html")).unwrap();
    assert!(html.contains("title=\"VC-001\""), "VC-001 covers its cell");
    assert!(
        !html.contains("VC-002"),
        "the matrix names a case that did not run"
    );
    cleanup(d);
}

#[test]
fn a_run_with_a_case_that_needs_a_second_client_and_none_does_not_start() {
    // The profile and fixtures are never read: the run stops before them.
    let d = Path::new("/nonexistent-conformance-inputs");
    let cases = root().join("conformance/cases");
    for extra in [&["--case", "QH-007"][..], &[]] {
        let mut args = vec!["--cases", cases.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = run(d, &args);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("give --client2"), "{}", text(&out));
        assert!(text(&out).contains("QH-007"), "{}", text(&out));
    }
}

#[test]
fn a_load_rate_of_zero_is_refused() {
    let out = run(
        Path::new("/nonexistent-conformance-inputs"),
        &["--load", "0"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--load"), "{}", text(&out));
    assert!(text(&out).contains("not in 1.."), "{}", text(&out));
}

#[test]
fn a_run_of_no_case_or_of_an_unknown_case_does_not_start() {
    // The profile and fixtures are never read: the run stops before them.
    let d = Path::new("/nonexistent-conformance-inputs");
    let empty = std::env::temp_dir().join(format!("hutong-no-cases-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let out = run(d, &["--cases", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no conformance case"), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&empty);
    // A typo among the ids: the run does not go on without it.
    let cases = root().join("conformance/cases");
    let out = run(
        d,
        &[
            "--cases",
            cases.to_str().unwrap(),
            "--case",
            "VC-001",
            "--case",
            "VC-0O2",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no case with id VC-0O2"),
        "{}",
        text(&out)
    );
}
