//! The client profile's checks and the answer's size limit.

use std::path::PathBuf;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{ClientError, GatewayClient, Profile, SignTypeName};
use crate::crypto::SigningKey;

/// A profile against `gateway` with an HMAC key, an SM4 key and a real gateway key file.
fn profile(gateway: &str) -> (Profile, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "hutong-client-{}-{}",
        std::process::id(),
        crate::crypto::to_hex(&rand16())
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = SigningKey::generate()
        .unwrap()
        .verifying_key()
        .to_pem()
        .unwrap();
    std::fs::write(dir.join("gw.pub.pem"), pem).unwrap();
    let p = Profile {
        gateway: gateway.to_owned(),
        app_id: "A3300010001".into(),
        sign_type: SignTypeName::HmacSm3,
        sm2_key_file: None,
        mac_key_hex: Some("11".repeat(32)),
        sm4_key_hex: Some("22".repeat(16)),
        gateway_sign_key_file: dir.join("gw.pub.pem"),
        gateway_encryption_key_file: None,
        ca_file: None,
        client_cert_file: None,
        client_key_file: None,
        token_file: None,
        timeout_ms: 5_000,
    };
    (p, dir)
}

fn rand16() -> [u8; 16] {
    let mut b = [0u8; 16];
    crate::crypto::fill_random(&mut b).unwrap();
    b
}

fn profile_error(p: &Profile) -> String {
    match GatewayClient::new(p) {
        Err(ClientError::Profile(m)) => m,
        Err(e) => panic!("not a profile error: {e}"),
        Ok(_) => panic!("the profile was accepted"),
    }
}

#[test]
fn an_https_gateway_needs_the_ca_that_signed_it() {
    let (mut p, dir) = profile("https://gw.example:8443");
    assert!(profile_error(&p).contains("ca_file"));
    // A CA file with no certificate in it names the file.
    std::fs::write(dir.join("empty.pem"), "").unwrap();
    p.ca_file = Some(dir.join("empty.pem"));
    let m = profile_error(&p);
    assert!(
        m.contains("empty.pem") && m.contains("no certificate"),
        "{m}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_client_certificate_needs_its_key_and_the_other_way_round() {
    let (mut p, dir) = profile("http://127.0.0.1:9");
    p.client_cert_file = Some(dir.join("client.crt.pem"));
    assert!(profile_error(&p).contains("go together"));
    p.client_cert_file = None;
    p.client_key_file = Some(dir.join("client.key.pem"));
    assert!(profile_error(&p).contains("go together"));
    p.client_key_file = None;
    assert!(GatewayClient::new(&p).is_ok());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn another_base_follows_the_profile_rule_on_plain_http() {
    let (p, dir) = profile("http://127.0.0.1:9");
    let mut c = GatewayClient::new(&p).unwrap();
    assert!(matches!(
        c.set_base("http://10.0.0.5:8080"),
        Err(ClientError::Profile(m)) if m.contains("in clear")
    ));
    assert!(c.set_base("http://[::1]:8080/").is_ok());
    assert!(c.set_base("https://10.0.0.5:8443").is_ok());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_answer_past_the_limit_is_a_transport_error_not_memory() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        let total = super::MAX_ANSWER_BYTES + 1;
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {total}\r\n\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        while sent < total {
            let n = chunk.len().min(total - sent);
            if s.write_all(&chunk[..n]).await.is_err() {
                return sent; // the client stopped reading
            }
            sent += n;
        }
        sent
    });
    let (p, dir) = profile(&format!("http://{addr}"));
    let c = GatewayClient::new(&p).unwrap();
    let got = c.get("/phic/v1/trust-list").await;
    assert!(
        matches!(&got, Err(ClientError::Transport(m)) if m.contains("reading the answer")),
        "{:?}",
        got.map(|(s, _, b)| (s, b.len()))
    );
    drop(c);
    let _ = server.await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_client_with_a_smaller_answer_limit_refuses_past_it() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let body = vec![b'x'; 2048];
            let head = "HTTP/1.1 200 OK\r\ncontent-length: 2048\r\nconnection: close\r\n\r\n";
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&body).await;
        }
    });
    let (p, dir) = profile(&format!("http://{addr}"));
    let c = GatewayClient::new(&p).unwrap();
    // The default reads it; a client limited to 1 KiB does not.
    assert_eq!(c.get("/x").await.unwrap().2.len(), 2048);
    let small = c.with_answer_limit(1024);
    assert!(matches!(
        small.get("/x").await,
        Err(ClientError::Transport(m)) if m.contains("reading the answer")
    ));
    let _ = server.await;
    let _ = std::fs::remove_dir_all(dir);
}
