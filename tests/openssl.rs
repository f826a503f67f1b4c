//! Interop with the OpenSSL 3 CLI, an independent implementation of SM2, SM3 and SM4.
//!
//! Each test writes keys and data to a fresh temporary directory and runs `openssl` on them,
//! in both directions where that makes sense. The CLI is `$OPENSSL` if set, else `openssl`
//! on `PATH`. A missing CLI fails the test with a message that says how to install it: CI
//! installs it, and skipping would hide a broken interop.
//!
//! The incantations, for OpenSSL 3.0 (it signs with an empty ID unless given `distid`):
//! - verify: `openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in msg -sigfile sig
//!   -digest sm3 -pkeyopt distid:1234567812345678`
//! - sign: `openssl pkeyutl -sign -inkey key.pem -rawin -in msg -digest sm3
//!   -pkeyopt distid:1234567812345678 -out sig`
//! - SM2 encrypt / decrypt (GM/T 0009 DER): `openssl pkeyutl -encrypt -pubin -inkey pub.pem
//!   -in msg -out ct`, `openssl pkeyutl -decrypt -inkey key.pem -in ct -out msg`
//! - SM4: `openssl enc -d -sm4-cbc -K <32 hex> -iv <32 hex> -in ct -out msg` (PKCS#7 is
//!   `enc`'s default padding)
//! - SM3: `openssl dgst -sm3 -binary msg`
//! - HMAC-SM3: `openssl mac -digest SM3 -macopt hexkey:<hex> -in msg -binary HMAC`

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use hutong::crypto::{
    CryptoError, DEFAULT_DISTID, DecryptionKey, EncryptionKey, SigningKey, Sm4Key, VerifyingKey,
    hmac_sm3, sm3, to_hex,
};

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hutong-openssl-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, data).expect("write temp file");
        path
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).expect("read temp file")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `openssl` with `args`; panics with install advice if the CLI cannot be started.
fn openssl(args: &[&str]) -> Output {
    let program = std::env::var("OPENSSL").unwrap_or_else(|_| "openssl".to_string());
    Command::new(&program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the OpenSSL CLI `{program}` ({e}). The interop tests need OpenSSL 3 \
             with SM2/SM3/SM4: install it (`apt-get install -y openssl`) or point $OPENSSL at it."
            )
        })
}

/// Runs `openssl` and requires success, showing its stderr otherwise.
fn openssl_ok(args: &[&str]) -> Vec<u8> {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn s(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

fn distid_opt() -> String {
    format!("distid:{DEFAULT_DISTID}")
}

/// A fresh SM2 key pair made by OpenSSL: `key.pem` (PKCS#8, whose path it returns) and
/// `pub.pem` in `dir`.
fn openssl_key_pair(dir: &TempDir) -> PathBuf {
    let key_pem = dir.path("key.pem");
    openssl_ok(&["genpkey", "-algorithm", "SM2", "-out", s(&key_pem)]);
    let pub_pem = dir.path("pub.pem");
    openssl_ok(&["pkey", "-in", s(&key_pem), "-pubout", "-out", s(&pub_pem)]);
    key_pem
}

/// OpenSSL's SM3withSM2 signature (our distinguishing ID) of the file `msg`, written to
/// `sig` in `dir`; its bytes.
fn openssl_sign(dir: &TempDir, key_pem: &Path, msg: &Path) -> Vec<u8> {
    let sig = dir.path("sig");
    openssl_ok(&[
        "pkeyutl",
        "-sign",
        "-inkey",
        s(key_pem),
        "-rawin",
        "-in",
        s(msg),
        "-digest",
        "sm3",
        "-pkeyopt",
        &distid_opt(),
        "-out",
        s(&sig),
    ]);
    dir.read("sig")
}

fn openssl_verify(dir: &TempDir, msg: &Path, sig: &Path) -> Output {
    openssl(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        s(&dir.path("pub.pem")),
        "-rawin",
        "-in",
        s(msg),
        "-sigfile",
        s(sig),
        "-digest",
        "sm3",
        "-pkeyopt",
        &distid_opt(),
    ])
}

/// A message with bytes that a text-mode tool would mangle.
const MESSAGE: &[u8] = b"appId=A3300010001&bizContent=QUJD\x00\xff&nonce=\xe4\xbd\xa0";

#[test]
fn hutong_signature_verifies_with_openssl() {
    let dir = TempDir::new();
    let key = SigningKey::generate().unwrap();
    dir.write("pub.pem", key.verifying_key().to_pem().unwrap());
    let msg = dir.write("msg", MESSAGE);
    let sig = dir.write("sig", key.sign(MESSAGE));

    let out = openssl_verify(&dir, &msg, &sig);
    assert!(
        out.status.success(),
        "openssl rejected a hutong signature: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The check can fail: another message, or the default (empty) ID, does not verify.
    let other = dir.write("other", b"another message");
    assert!(!openssl_verify(&dir, &other, &sig).status.success());
    let no_distid = openssl(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        s(&dir.path("pub.pem")),
        "-rawin",
        "-in",
        s(&msg),
        "-sigfile",
        s(&sig),
        "-digest",
        "sm3",
    ]);
    assert!(
        !no_distid.status.success(),
        "OpenSSL's empty ID must not match ours"
    );
}

#[test]
fn openssl_signature_verifies_with_hutong() {
    let dir = TempDir::new();
    let key_pem = openssl_key_pair(&dir);
    let msg = dir.write("msg", MESSAGE);
    let sig = openssl_sign(&dir, &key_pem, &msg);

    let vk = VerifyingKey::from_pem(&String::from_utf8(dir.read("pub.pem")).unwrap()).unwrap();
    vk.verify(MESSAGE, &sig)
        .expect("hutong rejected an OpenSSL signature");
    assert!(vk.verify(b"another message", &sig).is_err());

    // OpenSSL's PKCS#8 private key parses, and gives the same public key.
    let sk = SigningKey::from_pem(&String::from_utf8(dir.read("key.pem")).unwrap()).unwrap();
    assert_eq!(sk.verifying_key(), vk);
}

#[test]
fn openssl_signatures_verify_with_a_precomputed_key() {
    let dir = TempDir::new();
    let key_pem = openssl_key_pair(&dir);
    let plain = VerifyingKey::from_pem(&String::from_utf8(dir.read("pub.pem")).unwrap()).unwrap();
    let vk = plain.clone().precompute();
    assert!(vk.is_precomputed() && vk.table_bytes() > 0);

    // Several messages, so several signatures with unrelated r and s.
    let long: Vec<u8> = (0..3000u32).map(|i| (i * 13 + i / 7) as u8).collect();
    for (i, data) in [&b""[..], b"abc", MESSAGE, &long].into_iter().enumerate() {
        let msg = dir.write("msg", data);
        let sig = openssl_sign(&dir, &key_pem, &msg);
        vk.verify(data, &sig)
            .unwrap_or_else(|e| panic!("message {i}: the table path rejected OpenSSL: {e}"));

        // Tampered: the last byte of s (the DER stays well formed), and the message.
        let mut tampered = sig.clone();
        *tampered.last_mut().unwrap() ^= 0x01;
        assert_eq!(
            vk.verify(data, &tampered),
            Err(CryptoError::BadSignature),
            "message {i}"
        );
        assert_eq!(
            plain.verify(data, &tampered),
            Err(CryptoError::BadSignature)
        );
        let mut other = data.to_vec();
        other.push(b'!');
        assert_eq!(
            vk.verify(&other, &sig),
            Err(CryptoError::BadSignature),
            "message {i}"
        );
    }
}

#[test]
fn hutong_keys_are_readable_by_openssl() {
    let dir = TempDir::new();
    let key = SigningKey::generate().unwrap();
    let key_pem = dir.write("key.pem", key.to_pem().unwrap().as_bytes());
    let text = openssl_ok(&["pkey", "-in", s(&key_pem), "-noout", "-text"]);
    let text = String::from_utf8_lossy(&text).replace([':', ' ', '\n'], "");
    assert!(text.contains(&key.verifying_key().to_hex()), "{text}");
    assert!(text.contains("SM2"), "{text}");
}

#[test]
fn sm2_encryption_interoperates_with_openssl() {
    let dir = TempDir::new();
    let dk = DecryptionKey::generate().unwrap();
    let key_pem = dir.write("key.pem", dk.to_pem().unwrap().as_bytes());
    let pub_pem = dir.write("pub.pem", dk.encryption_key().to_pem().unwrap());
    let plain = b"0123456789abcdef";

    // hutong encrypts, OpenSSL decrypts.
    let ct = dir.write("ct", dk.encryption_key().encrypt(plain).unwrap());
    let out = dir.path("out");
    openssl_ok(&[
        "pkeyutl",
        "-decrypt",
        "-inkey",
        s(&key_pem),
        "-in",
        s(&ct),
        "-out",
        s(&out),
    ]);
    assert_eq!(dir.read("out"), plain);

    // OpenSSL encrypts, hutong decrypts.
    let msg = dir.write("msg", plain);
    let ct2 = dir.path("ct2");
    openssl_ok(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        s(&pub_pem),
        "-in",
        s(&msg),
        "-out",
        s(&ct2),
    ]);
    let ek = EncryptionKey::from_pem(&String::from_utf8(dir.read("pub.pem")).unwrap()).unwrap();
    assert_eq!(ek, dk.encryption_key());
    assert_eq!(dk.decrypt(&dir.read("ct2")).unwrap().as_slice(), plain);
}

#[test]
fn sm4_cbc_interoperates_with_openssl() {
    let dir = TempDir::new();
    let key = Sm4Key::generate().unwrap();
    let key_hex = to_hex(key.as_bytes());
    for plain in [
        &b""[..],
        b"{}",
        b"exactly 16 bytes",
        "{\"name\":\"张三\",\"n\":1234567890123}".as_bytes(),
    ] {
        // hutong encrypts (IV first), OpenSSL decrypts.
        let ct = key.encrypt_cbc(plain).unwrap();
        let (iv, body) = ct.split_at(16);
        let body_path = dir.write("ct", body);
        let out = openssl_ok(&[
            "enc",
            "-d",
            "-sm4-cbc",
            "-K",
            &key_hex,
            "-iv",
            &to_hex(iv),
            "-in",
            s(&body_path),
        ]);
        assert_eq!(out, plain);

        // OpenSSL encrypts, hutong decrypts.
        let iv = [0x5a; 16];
        let msg = dir.write("msg", plain);
        let body = openssl_ok(&[
            "enc",
            "-e",
            "-sm4-cbc",
            "-K",
            &key_hex,
            "-iv",
            &to_hex(&iv),
            "-in",
            s(&msg),
        ]);
        let mut data = iv.to_vec();
        data.extend_from_slice(&body);
        assert_eq!(key.decrypt_cbc(&data).unwrap(), plain);
    }
}

#[test]
fn sm3_and_hmac_sm3_match_openssl() {
    let dir = TempDir::new();
    let long: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    for data in [&b""[..], b"abc", MESSAGE, &long] {
        let msg = dir.write("msg", data);
        let digest = openssl_ok(&["dgst", "-sm3", "-binary", s(&msg)]);
        assert_eq!(digest, sm3(data));

        let key = b"a registered MAC key of 32 bytes";
        let mac = openssl_ok(&[
            "mac",
            "-digest",
            "SM3",
            "-macopt",
            &format!("hexkey:{}", to_hex(key)),
            "-in",
            s(&msg),
            "-binary",
            "HMAC",
        ]);
        assert_eq!(mac, hmac_sm3(key, data));
    }
}
