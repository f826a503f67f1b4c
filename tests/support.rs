//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture path under `tests/fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}

/// Runs the built `hutong` binary with `args`.
pub fn hutong<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_hutong"))
        .args(args)
        .output()
        .expect("the hutong binary runs")
}

/// Runs `hutong` with `input` on standard input.
pub fn hutong_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hutong"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the hutong binary starts");
    // A child that exits early closes the pipe; that is its business, not a test failure.
    let _ = child.stdin.take().expect("stdin is piped").write_all(input);
    child
        .wait_with_output()
        .expect("the hutong binary finishes")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A python3 that has `module`, or a panic that says how to get it. The test command
/// (`.ci/run`) installs what the tests need; a missing tool fails loudly, never skips.
pub fn python_with(module: &str, pip_name: &str) -> PathBuf {
    let py = PathBuf::from("python3");
    let ok = Command::new(&py)
        .args(["-c", &format!("import {module}")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3 with `{module}` is needed: pip install {pip_name} (bash .ci/run does it)"
    );
    py
}

/// A fresh temporary directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "hutong-test-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The files a gateway configured by hand needs, written into `dir`: development certificates
/// (`certs/`, with client certificates for `clients`), its signing key pair
/// (`gw-sign.key.pem`, `gw-sign.pub.pem`), its encryption key (`gw-enc.key.pem`), a
/// pseudonym secret of `secret_byte` (`pseudonym.hex`) and a token key (`jwt.key.pem`).
pub fn gateway_files(dir: &Path, clients: &[&str], secret_byte: u8) {
    use hutong::crypto::{DecryptionKey, SigningKey, to_hex};
    let certs = hutong::tlsdev::DevCerts::generate(
        &["localhost".into(), "127.0.0.1".into()],
        &clients.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    certs.write_to(&dir.join("certs")).unwrap();
    let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    let gw_sign = SigningKey::generate().unwrap();
    w("gw-sign.key.pem", &gw_sign.to_pem().unwrap());
    w(
        "gw-sign.pub.pem",
        &gw_sign.verifying_key().to_pem().unwrap(),
    );
    w(
        "gw-enc.key.pem",
        &DecryptionKey::generate().unwrap().to_pem().unwrap(),
    );
    w("pseudonym.hex", &to_hex(&[secret_byte; 32]));
    w(
        "jwt.key.pem",
        &hutong::auth::TokenKeys::generate_pem().unwrap(),
    );
}

/// The record seqs of the holder's receipt (`hutong audit receipt --json`).
pub fn receipt_seqs(data: &Path, secret_file: &Path, id_no: &str) -> Vec<u64> {
    let out = hutong([
        "audit",
        "receipt",
        "--data-dir",
        data.to_str().unwrap(),
        "--secret-file",
        secret_file.to_str().unwrap(),
        "--id-type",
        "10",
        "--id-no",
        id_no,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect()
}

/// Starts a simulator (`cmd`, stdout piped) and reads its first line, `listening on
/// http://127.0.0.1:PORT`: the child, the rest of its stdout, the port.
pub fn spawn_listening(
    cmd: &mut Command,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
    u16,
) {
    use std::io::BufRead as _;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the hutong binary starts");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let port = line
        .trim()
        .strip_prefix("listening on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .parse()
        .unwrap();
    (child, stdout, port)
}

/// A child process killed (and reaped) when dropped, so a failed assertion leaves no server
/// running.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The body of a `GET` of `path` on 127.0.0.1:`port`, as text.
pub fn http_text(port: u16, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// One HTTP/1.1 exchange with a JSON body on 127.0.0.1:`port`: the status and the answer
/// parsed as JSON (`null` when it is not).
pub fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    http_with(port, method, path, "application/json", body)
}

/// [`http`] with another content type.
pub fn http_with(
    port: u16,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// One exchange over TLS with the server on 127.0.0.1:`port` (curl, the certificate not
/// checked), with a JSON body when there is one: the status and the body.
pub fn curl_tls(port: &str, method: &str, path: &str, json: Option<&str>) -> (u16, String) {
    let mut curl = Command::new("curl");
    curl.args([
        "-ks",
        "--max-time",
        "10",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
    ]);
    if let Some(body) = json {
        curl.args([
            "-H",
            "content-type: application/json",
            "--data-binary",
            body,
        ]);
    }
    let out = curl
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl runs (bash .ci/test installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("curl printed the status");
    (status.trim().parse().expect("a status"), body.to_owned())
}
