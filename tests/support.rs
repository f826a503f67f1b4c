//! Helpers shared by the integration tests.

use std::path::PathBuf;
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
