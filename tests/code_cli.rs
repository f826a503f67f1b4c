//! PHIC1 codes through the command line, as an issuing region and a verifier use it:
//! `hutong keys gen`, `keys trust-list`, `code issue | code verify -`, `code render`.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use crate::support::{hutong, hutong_stdin, stdout, temp_dir};

/// Two issuers in a signed trust list: Zhejiang with an active key `zj-1` and a revoked
/// key `zj-old`, and Jiangsu with `js-1`.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = temp_dir("code");
        for name in ["anchor", "zj", "zj-old", "js"] {
            let out = hutong(["keys", "gen", "--out", dir.join(name).to_str().unwrap()]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let list = r#"{"version": 3, "issued_at": 1795000000, "issuers": [
          {"id": "33000001", "region": "330000", "name": "浙江省健康码", "keys": [
            {"kid": "zj-1", "public_key": "@zj.pub.pem", "not_before": 1700000000, "not_after": 1900000000, "status": "active"},
            {"kid": "zj-old", "public_key": "@zj-old.pub.pem", "not_before": 1700000000, "not_after": 1900000000, "status": "revoked"}]},
          {"id": "32000001", "region": "320000", "name": "苏康码", "keys": [
            {"kid": "js-1", "public_key": "@js.pub.pem", "not_before": 1700000000, "not_after": 1900000000, "status": "active"}]}]}"#;
        std::fs::write(dir.join("list.json"), list).unwrap();
        let out = hutong([
            "keys",
            "trust-list",
            dir.join("list.json").to_str().unwrap(),
            "--anchor",
            dir.join("anchor.key.pem").to_str().unwrap(),
            "--out",
            dir.join("tl.json").to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    fn p(&self, f: &str) -> String {
        self.dir.join(f).display().to_string()
    }

    /// Issues a token at 2026-11-23 12:00:00 Beijing, valid 300 s.
    fn issue(&self, iss: &str, key: &str, kid: &str, col: &str) -> String {
        let out = hutong([
            "code",
            "issue",
            "--key",
            &self.p(&format!("{key}.key.pem")),
            "--iss",
            iss,
            "--kid",
            kid,
            "--col",
            col,
            "--iat",
            "2026-11-23 12:00:00",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out).trim().to_owned()
    }

    /// `hutong code verify - --at …` with `content` on stdin: (exit status, stdout).
    fn verify(&self, content: &str, at: &str) -> (i32, String) {
        let out = hutong_stdin(
            &[
                "code",
                "verify",
                "-",
                "--trust-list",
                &self.p("tl.json"),
                "--anchor",
                &self.p("anchor.pub.pem"),
                "--at",
                at,
            ],
            content.as_bytes(),
        );
        (out.status.code().unwrap_or(-1), stdout(&out))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const AT: &str = "2026-11-23 12:01:00";

#[test]
fn issue_piped_into_verify_passes() {
    let fx = Fixture::new();
    let issued = hutong([
        "code",
        "issue",
        "--key",
        &fx.p("zj.key.pem"),
        "--iss",
        "33000001",
        "--kid",
        "zj-1",
        "--col",
        "01",
    ]);
    let token = stdout(&issued);
    let out = hutong_stdin(
        &[
            "code",
            "verify",
            "-",
            "--trust-list",
            &fx.p("tl.json"),
            "--anchor",
            &fx.p("anchor.pub.pem"),
        ],
        token.as_bytes(),
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with("VALID")
            && text.contains("01 黄码")
            && text.contains("33000001 浙江省健康码"),
        "{text}"
    );
}

#[test]
fn every_single_byte_change_is_rejected() {
    let fx = Fixture::new();
    let token = fx.issue("33000001", "zj", "zj-1", "00");
    assert_eq!(fx.verify(&token, AT).0, 0);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    let (mut sig_or_parse, mut untrusted) = (0, 0);
    for i in 0..token.len() {
        let mut b = token.clone().into_bytes();
        let orig = b[i];
        b[i] = *alphabet
            .iter()
            .find(|&&c| c != orig && (c as usize + i) % 3 == 0)
            .unwrap_or(&b'A');
        let changed = String::from_utf8(b).unwrap();
        let (code, text) = fx.verify(&changed, AT);
        match code {
            31 | 34 => sig_or_parse += 1,
            // A change that makes the payload name another issuer or key id reads as a
            // code from an issuer the list does not trust: 3003, still rejected.
            33 if text.contains("not trusted") => untrusted += 1,
            _ => panic!("byte {i}: exit {code}: {text}"),
        }
    }
    assert_eq!(sig_or_parse + untrusted, token.len());
    assert!(
        sig_or_parse > token.len() * 9 / 10,
        "{sig_or_parse} of {}",
        token.len()
    );
}

#[test]
fn after_exp_is_3002() {
    let fx = Fixture::new();
    let token = fx.issue("33000001", "zj", "zj-1", "00");
    let (code, text) = fx.verify(&token, "2026-11-23 13:00:00");
    assert_eq!(code, 32, "{text}");
    assert!(text.contains("3002"), "{text}");
}

#[test]
fn an_unknown_issuer_is_3003() {
    let fx = Fixture::new();
    // Signed with a key the list has, under an issuer id it does not.
    let token = fx.issue("11000001", "zj", "zj-1", "00");
    let (code, text) = fx.verify(&token, AT);
    assert_eq!(code, 33, "{text}");
}

#[test]
fn a_revoked_key_is_3004() {
    let fx = Fixture::new();
    let token = fx.issue("33000001", "zj-old", "zj-old", "00");
    let (code, text) = fx.verify(&token, AT);
    assert_eq!(code, 34, "{text}");
    assert!(text.contains("revoked"), "{text}");
}

#[test]
fn the_url_form_verifies_and_a_tampered_trust_list_is_refused() {
    let fx = Fixture::new();
    let out = hutong([
        "code",
        "issue",
        "--key",
        &fx.p("js.key.pem"),
        "--iss",
        "32000001",
        "--kid",
        "js-1",
        "--iat",
        "2026-11-23 12:00:00",
        "--url-host",
        "jkm.example.cn",
    ]);
    let url = stdout(&out).trim().to_owned();
    assert!(
        url.starts_with("https://jkm.example.cn/phic/c?v=1&"),
        "{url}"
    );
    assert_eq!(fx.verify(&url, AT).0, 0);
    let tl = std::fs::read_to_string(fx.p("tl.json")).unwrap();
    let tampered = tl.replacen("\"list\":\"", "\"list\":\"e", 1);
    std::fs::write(fx.p("tl.json"), tampered).unwrap();
    let (code, _) = fx.verify(&url, AT);
    assert_eq!(
        code, 2,
        "a trust list that fails its signature is an error, not a verdict"
    );
}

#[test]
fn the_rendered_png_decodes_to_a_token_that_verifies() {
    let fx = Fixture::new();
    let token = fx.issue("33000001", "zj", "zj-1", "10");
    let png = fx.dir.join("code.png");
    let out = hutong([
        "code",
        "render",
        &token,
        "--name",
        "张三",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("张*") && !stdout(&out).contains("张三"));
    let scanned = scan(&png);
    assert_eq!(scanned, token);
    let (code, text) = fx.verify(&scanned, AT);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("10 红码"));
    // The name from standard input, kept out of the process list.
    let svg = fx.dir.join("code.svg");
    let out = hutong_stdin(
        &[
            "code",
            "render",
            &token,
            "--name",
            "-",
            "--format",
            "svg",
            "--out",
            svg.to_str().unwrap(),
        ],
        "张三\n".as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(svg).unwrap();
    assert!(text.contains("<svg") && text.contains("张*") && !text.contains("张三"));
}

/// Reads the QR code of a PNG as a scanner would.
fn scan(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let mut reader = png::Decoder::new(Cursor::new(bytes)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let step = info.color_type.samples();
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let i = (y * w + x) * step;
        let [r, g, b] = [buf[i], buf[i + 1], buf[i + 2]].map(u32::from);
        ((r * 299 + g * 587 + b * 114) / 1000) as u8
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().unwrap().1
}
