//! `hutong sim --national` as a process: the one line on standard output, the public keys,
//! HTTP on the printed port, a graceful stop on SIGTERM, and configuration errors.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use crate::support::{hutong, root, spawn_listening, temp_dir};

#[test]
fn sim_prints_its_port_serves_and_stops_on_sigterm() {
    let keys = temp_dir("sim-keys");
    let (mut child, mut stdout, port) = spawn_listening(
        Command::new(env!("CARGO_BIN_EXE_hutong"))
            .args(["sim", "--national", "--population", "50", "--clients"])
            .arg(root().join("config/sim-national.example.toml"))
            .arg("--keys-out")
            .arg(&keys)
            .stderr(Stdio::null()),
    );
    assert_ne!(port, 0);

    for file in [
        "sim-response.pub.pem",
        "sim-issuer.pub.pem",
        "sim-encryption.pub.pem",
        "sim-trust-list.json",
    ] {
        assert!(keys.join(file).is_file(), "{file} written");
    }

    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /phic/v1/verifyCode HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "a graceful stop exits 0: {status}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "one line on standard output, no more");
    let _ = std::fs::remove_dir_all(keys);
}

#[test]
fn sim_reports_every_configuration_problem_at_once() {
    let out = hutong([
        "sim",
        "--national",
        "--secret",
        "s3cret",
        "--region",
        "999999",
        "--issuer",
        "33x",
        "--error-rate",
        "2",
        "--colours",
        "1:2",
        "--clients",
        "/nonexistent/clients.toml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "--secret is for a dialect simulator",
        "cannot read /nonexistent/clients.toml",
        "issuer `33x`",
        "colour mix `1:2`",
        "error rate 2",
        "region `999999`",
    ] {
        assert!(err.contains(needle), "`{needle}` missing from:\n{err}");
    }
    assert!(!err.contains("no client may call"), "not repeated: {err}");
}

#[test]
fn sim_lists_its_defects_and_exits_2() {
    let out = hutong(["sim", "--national", "--defect", "list"]);
    assert_eq!(out.status.code(), Some(2));
    let listed = String::from_utf8_lossy(&out.stdout);
    for d in hutong::sim::Defect::ALL {
        let line = listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(d.as_str()))
            .unwrap_or_else(|| panic!("{d} missing from:\n{listed}"));
        assert!(line.contains(d.description()), "{line}");
    }
}

#[test]
fn sim_refuses_an_unknown_defect_with_the_list() {
    let clients = root().join("config/sim-national.example.toml");
    let out = hutong([
        "sim",
        "--national",
        "--clients",
        clients.to_str().unwrap(),
        "--defect",
        "leak-name",
        "--defect",
        "skip-signatures",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown defect `skip-signatures`"), "{err}");
    assert!(
        err.contains("skip-signature-check"),
        "the names are listed: {err}"
    );
    assert!(!err.contains("unknown defect `leak-name`"), "{err}");

    let out = hutong([
        "sim",
        "--region",
        "zhejiang",
        "--secret",
        "00112233445566778899aabbccddeeff",
        "--defect",
        "leak-name",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--defect is for the national simulator"),
        "{err}"
    );
}

/// Starts `hutong sim --national` on the example clients with `extra` flags; its port.
fn spawn_sim(extra: &[&str]) -> (std::process::Child, u16) {
    let (child, _, port) = spawn_listening(
        Command::new(env!("CARGO_BIN_EXE_hutong"))
            .args(["sim", "--national", "--population", "50", "--clients"])
            .arg(root().join("config/sim-national.example.toml"))
            .args(extra)
            .stderr(Stdio::null()),
    );
    (child, port)
}

/// The status line of the answer to `POST /phic/v1/verifyCode` with `body`.
fn post_status(port: u16, body: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /phic/v1/verifyCode HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn sim_with_a_defect_serves_it() {
    for (flags, status) in [
        (&[][..], "HTTP/1.1 400 Bad Request"),
        (&["--defect", "wrong-http-status"][..], "HTTP/1.1 200 OK"),
    ] {
        let (mut child, port) = spawn_sim(flags);
        // No parameters at all: 1001, which is HTTP 400 unless the status is broken.
        assert_eq!(post_status(port, "{}"), status, "{flags:?}");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// The conformance run against the reference simulator, from the command line alone: the
/// example clients file, `--keys-out` and `--fixtures-out`, two hand-written profiles. A
/// simulator that conforms exits 0; one with a seeded defect exits 1 and names the case
/// that caught it (no test saw the command's "does not conform" exit before).
#[test]
fn the_suite_runs_against_the_simulator_from_the_command_line() {
    let (code, text) = suite_against("sim-suite", &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("CONFORMS"), "{text}");
    let (code, text) = suite_against("sim-suite-replay", &["--defect", "accept-replay"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("DOES NOT CONFORM"), "{text}");
    assert!(text.contains("ENV-005"), "{text}");
}

/// The exit code and what `hutong conformance run` said against a simulator started with
/// `flags`.
fn suite_against(tag: &str, flags: &[&str]) -> (Option<i32>, String) {
    let dir = temp_dir(tag);
    let fixtures = dir.join("fixtures.toml");
    let (mut child, _, port) = spawn_listening(
        Command::new(env!("CARGO_BIN_EXE_hutong"))
            .args(["sim", "--national", "--population", "200"])
            .args(flags)
            .arg("--clients")
            .arg(root().join("config/sim-national.example.toml"))
            .arg("--keys-out")
            .arg(&dir)
            .arg("--fixtures-out")
            .arg(&fixtures)
            .args(["--fixtures-client", "C3300000001"])
            .stderr(Stdio::null()),
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&fixtures).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the fixtures name people: {mode:o}");
    }
    for (name, app, mac) in [("one", "C3300000001", "11"), ("two", "C3300000002", "33")] {
        std::fs::write(
            dir.join(format!("{name}.toml")),
            format!(
                "gateway = \"http://127.0.0.1:{port}\"\napp_id = \"{app}\"\nsign_type = \"HMAC-SM3\"\n\
                 mac_key_hex = \"{}\"\nsm4_key_hex = \"{}\"\ngateway_sign_key_file = \"sim-response.pub.pem\"\n",
                mac.repeat(32),
                "22".repeat(16)
            ),
        )
        .unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hutong"))
        .current_dir(root())
        .args(["conformance", "run", "--client"])
        .arg(dir.join("one.toml"))
        .arg("--client2")
        .arg(dir.join("two.toml"))
        .arg("--fixtures")
        .arg(&fixtures)
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
    (out.status.code(), text)
}
