//! `hutong serve` as an operator runs it: the default configuration on a fresh directory
//! (everything generated on first start), a working request with a development code,
//! SIGHUP reload that takes a new trust list (for the verifier and the code page alike) and
//! keeps the old configuration when the new one is invalid, and SIGTERM that drains and
//! exits.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use hutong::client::GatewayClient;
use hutong::standard::ServiceName;

use crate::support::{root, temp_dir};

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET` of `url`'s path and query on the gateway at `port`, over TLS (curl, the
/// development certificate not checked): the status and the body.
fn get_page(port: &str, url: &str) -> (u16, String) {
    let path = &url[url.find("/phic/").expect("a code URL")..];
    crate::support::curl_tls(port, "GET", path, None)
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// `hutong serve --config path`, once it has announced its listener: the process, the
/// announcement ("hutong 0.1.0 listening on https://127.0.0.1:PORT (admin
/// http://127.0.0.1:PORT)") and its log.
fn start(path: &std::path::Path) -> (Serve, String, std::process::ChildStderr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hutong"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    if line.is_empty() {
        let _ = child.wait();
        panic!(
            "hutong serve did not start: {}",
            std::io::read_to_string(&mut stderr).unwrap_or_default()
        );
    }
    (Serve(child), line, stderr)
}

/// The port after `after` in a listener's announcement.
fn port_after(line: &str, after: &str) -> String {
    line.split(after)
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_config_starts_fresh_serves_reloads_and_drains() {
    let dir = temp_dir("serve");
    std::fs::create_dir_all(dir.join("config")).unwrap();
    let shipped = std::fs::read_to_string(root().join("config/hutong.toml")).unwrap();
    // The shipped file, on free ports.
    let cfg = shipped
        .replace("127.0.0.1:8443", "127.0.0.1:0")
        .replace("127.0.0.1:9464", "127.0.0.1:0");
    let path = dir.join("config/hutong.toml");
    std::fs::write(&path, &cfg).unwrap();

    let (serve, line, stderr) = start(&path);
    let port = |after: &str| port_after(&line, after);
    let (port, admin) = (port("https://127.0.0.1:"), port("http://127.0.0.1:"));
    assert!(line.contains("listening on https://"), "{line}");

    // First start wrote keys, certificates, a trust list and a client profile.
    let data = dir.join("data");
    for f in [
        "certs/server.crt.pem",
        "keys/gateway-sign.key.pem",
        "trust/trust-list.json",
        "clients/A3300010001.toml",
        "hutong.redb",
    ] {
        assert!(data.join(f).exists(), "{f} was not generated");
    }

    // A working request: a development code, verified by the gateway against its trust list.
    let issued = Command::new(env!("CARGO_BIN_EXE_hutong"))
        .args([
            "code",
            "issue",
            "--key",
            data.join("keys/dev-issuer.key.pem").to_str().unwrap(),
            "--iss",
            "33000099",
            "--kid",
            "dev-1",
            "--col",
            "10",
        ])
        .output()
        .unwrap();
    let token = String::from_utf8(issued.stdout).unwrap().trim().to_owned();
    let profile = data.join("clients/A3300010001.toml");
    let text = std::fs::read_to_string(&profile)
        .unwrap()
        .replace(":0\"", &format!(":{port}\""));
    std::fs::write(&profile, text).unwrap();
    let client = GatewayClient::from_profile_file(&profile).unwrap();
    let x = client
        .call(
            ServiceName::VerifyCode,
            &json!({"codeContent": token, "verifier": {"orgName": "某地铁站", "deviceId": "G-01"}}),
        )
        .await
        .unwrap();
    assert_eq!(x.code(), "0", "{}", String::from_utf8_lossy(&x.raw));
    assert_eq!(x.biz.as_ref().unwrap()["verifyResult"], "DENY");

    // Everything the gateway logs, line by line, without blocking the test.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let wait_for = |needle: &str, log: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(l) => {
                    let hit = l.contains(needle);
                    log.push(l);
                    if hit {
                        return true;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => return false,
            }
        }
        false
    };

    // The traveler's page for a development code, then a new trust list that revokes the
    // development key, signed by the anchor; SIGHUP reloads it. The code page and the
    // verifier both refuse the key from then on.
    let hutong_out = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hutong"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let keys = data.join("keys");
    let issuer_key = keys.join("dev-issuer.key.pem");
    let host = format!("localhost:{port}");
    let url = hutong_out(&[
        "code",
        "issue",
        "--key",
        issuer_key.to_str().unwrap(),
        "--iss",
        "33000099",
        "--kid",
        "dev-1",
        "--url-host",
        &host,
    ]);
    let (status, page) = get_page(&port, &url);
    assert_eq!(status, 200, "{url}: {page}");
    assert!(page.contains("<html"), "{page}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let list = format!(
        r#"{{"version": 2, "issued_at": {now}, "issuers": [
          {{"id": "33000099", "region": "330000", "name": "hutong development issuer", "keys": [
            {{"kid": "dev-1", "public_key": "@dev-issuer.pub.pem", "not_before": {}, "not_after": {}, "status": "revoked"}}]}}]}}"#,
        now - 60,
        now + 86_400
    );
    std::fs::write(keys.join("list-v2.json"), list).unwrap();
    // Signs the list in `name` with the trust anchor, as the gateway's trust list.
    let publish = |name: &str| {
        hutong_out(&[
            "keys",
            "trust-list",
            keys.join(name).to_str().unwrap(),
            "--anchor",
            keys.join("trust-anchor.key.pem").to_str().unwrap(),
            "--out",
            data.join("trust/trust-list.json").to_str().unwrap(),
        ])
    };
    publish("list-v2.json");
    // The same reload changes a setting read only at start: applied for the rest, and said.
    let smaller = cfg.replace("max_concurrency = 4096", "max_concurrency = 64");
    assert_ne!(smaller, cfg);
    std::fs::write(&path, &smaller).unwrap();
    signal(&serve.0, "-HUP");
    assert!(
        wait_for("configuration reloaded", &mut log),
        "the reload is logged"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("take effect at the next start")
                && l.contains("server.max_concurrency")),
        "the reload names what waits for a restart: {log:?}"
    );
    let (status, page) = get_page(&port, &url);
    assert_eq!(status, 400, "{page}");
    assert!(
        page.starts_with("3004 "),
        "the page refuses the revoked key: {page}"
    );
    let x = client
        .call(
            ServiceName::VerifyCode,
            &json!({"codeContent": url, "verifier": {"orgName": "某地铁站", "deviceId": "G-01"}}),
        )
        .await
        .unwrap();
    assert_eq!(x.code(), "3004", "{}", String::from_utf8_lossy(&x.raw));

    // An older list, validly signed, that still trusts the key (a stale mirror): refused,
    // so the key stays revoked.
    let old_list = format!(
        r#"{{"version": 1, "issued_at": {now}, "issuers": [
          {{"id": "33000099", "region": "330000", "name": "hutong development issuer", "keys": [
            {{"kid": "dev-1", "public_key": "@dev-issuer.pub.pem", "not_before": {}, "not_after": {}, "status": "active"}}]}}]}}"#,
        now - 60,
        now + 86_400
    );
    std::fs::write(keys.join("list-v1.json"), &old_list).unwrap();
    publish("list-v1.json");
    signal(&serve.0, "-HUP");
    assert!(
        wait_for("reload refused", &mut log),
        "the rolled-back list is refused"
    );
    assert!(
        log.last().unwrap().contains("older than version 2"),
        "{log:?}"
    );
    let (status, page) = get_page(&port, &url);
    assert!(
        status == 400 && page.starts_with("3004 "),
        "{status} {page}"
    );
    // Another list signed under version 2, one that trusts the key again: refused too.
    std::fs::write(
        keys.join("list-v2-other.json"),
        old_list.replace("\"version\": 1", "\"version\": 2"),
    )
    .unwrap();
    publish("list-v2-other.json");
    signal(&serve.0, "-HUP");
    assert!(
        wait_for("reload refused", &mut log),
        "the other list of version 2 is refused"
    );
    assert!(log.last().unwrap().contains("not that list"), "{log:?}");
    let (status, page) = get_page(&port, &url);
    assert!(
        status == 400 && page.starts_with("3004 "),
        "{status} {page}"
    );

    // Removing [trust] from a gateway that issues codes is refused: the page stays.
    let untrusted = &smaller[..smaller.find("\n[trust]").unwrap()];
    std::fs::write(&path, untrusted).unwrap();
    signal(&serve.0, "-HUP");
    assert!(
        wait_for("reload refused", &mut log),
        "the refused reload is logged"
    );
    assert!(log.last().unwrap().contains("[trust]"), "{log:?}");
    assert_eq!(get_page(&port, &url).0, 400, "the page is still served");

    // A broken configuration is refused on SIGHUP; the gateway keeps serving.
    std::fs::write(&path, format!("{cfg}\nbogus = 1\n")).unwrap();
    signal(&serve.0, "-HUP");
    assert!(
        wait_for("reload refused", &mut log),
        "the refused reload is logged"
    );
    let again = client
        .call(
            ServiceName::VerifyCode,
            &json!({"codeContent": "nope", "verifier": {"orgName": "站", "deviceId": "G"}}),
        )
        .await
        .unwrap();
    assert_eq!(again.code(), "3001");

    // A request accepted before the restart below, to be sent again after it.
    let sealed = client
        .seal(
            ServiceName::VerifyCode,
            &json!({"codeContent": "nope", "verifier": {"orgName": "站", "deviceId": "G"}}),
        )
        .unwrap();
    let first = client.send(ServiceName::VerifyCode, &sealed).await.unwrap();
    assert_eq!(first.code(), "3001");

    // SIGTERM drains and exits cleanly.
    let mut serve = serve;
    signal(&serve.0, "-TERM");
    assert!(
        wait_for("\"stopped\"", &mut log),
        "the gateway says it stopped"
    );
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = serve.0.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
        log.push(l);
    }
    // The log names no key, no token, no MAC key and no code content.
    let all = log.join("\n");
    let access_token = std::fs::read_to_string(data.join("clients/A3300010001.token")).unwrap();
    for secret in [
        "PRIVATE KEY",
        access_token.trim(),
        "000102030405060708090a0b0c0d0e0f",
        token.as_str(),
    ] {
        assert!(!all.contains(secret), "the log carries a secret");
    }
    assert!(all.contains("\"request\""), "requests are logged: {all}");
    let _ = admin;

    // The replay store outlives the restart: the drain saved it, the next start loads it,
    // and the request accepted before is refused as a replay (1004).
    let saved = data.join("nonces.bin");
    assert!(saved.exists(), "the drain saves the replay store");
    // The configuration and trust list it last ran with (the refused ones would not start).
    std::fs::write(&path, &cfg).unwrap();
    publish("list-v2.json");
    let mut client = client;
    let replay_after_restart = |client: &mut GatewayClient| {
        let (serve, line, stderr) = start(&path);
        let port = port_after(&line, "https://127.0.0.1:");
        client
            .set_base(&format!("https://127.0.0.1:{port}"))
            .unwrap();
        (serve, stderr)
    };
    let (second, stderr) = replay_after_restart(&mut client);
    let again = client.send(ServiceName::VerifyCode, &sealed).await.unwrap();
    assert_eq!(
        again.code(),
        "1004",
        "{}",
        String::from_utf8_lossy(&again.raw)
    );
    drop(second);
    let log = std::io::read_to_string(stderr).unwrap();
    assert!(
        log.contains("replay store loaded") && log.contains("\"loaded\":"),
        "the start says what it loaded: {log}"
    );
    // What the file does: without it, the same request is accepted again.
    std::fs::remove_file(&saved).unwrap();
    let (third, _stderr) = replay_after_restart(&mut client);
    let forgotten = client.send(ServiceName::VerifyCode, &sealed).await.unwrap();
    assert_eq!(forgotten.code(), "3001");
    drop(third);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_gateway_whose_log_pipe_has_closed_still_stops_on_sigterm() {
    // The log collector has gone (its end of stderr closed): every log line fails to be
    // written. The subscriber reported that with eprintln!, which panicked on the same
    // stderr, so the signal task died on its "shutting down" line and the gateway ran on.
    let dir = temp_dir("serve-closed-log");
    std::fs::create_dir_all(dir.join("config")).unwrap();
    let shipped = std::fs::read_to_string(root().join("config/hutong.toml")).unwrap();
    let path = dir.join("config/hutong.toml");
    std::fs::write(
        &path,
        shipped
            .replace("127.0.0.1:8443", "127.0.0.1:0")
            .replace("127.0.0.1:9464", "127.0.0.1:0"),
    )
    .unwrap();
    let (mut serve, line, stderr) = start(&path);
    assert!(line.contains("listening on"), "{line}");
    drop(stderr);
    signal(&serve.0, "-TERM");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = serve.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "still running 15 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(dir);
}
