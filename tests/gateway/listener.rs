//! The listener's guards: published documents and early refusals under the limits, a
//! client silent after the TLS handshake, the caps on open connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use hutong::config::SignTypeName;
use hutong::standard::ServiceName;

use super::{CLIENT, Fixture, Opts, code};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_documents_and_early_refusals_are_under_the_per_ip_limit() {
    // Published documents (the trust list, code pages) were served before the per-IP limit
    // and the concurrency limit: a code page costs an SM2 verification, so anyone could
    // make the gateway verify without bound.
    let fx = Fixture::start(Opts {
        extra_toml: "[limits]\nper_ip = { per_second = 1, burst = 3 }".into(),
        ..Opts::default()
    })
    .await;
    let c = fx.client(SignTypeName::HmacSm3);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, _, _) = c.get("/phic/v1/trust-list").await.unwrap();
        statuses.push(status);
    }
    assert!(statuses.iter().all(|s| *s != 429), "{statuses:?}");
    let (status, retry, body) = c.get("/phic/c?v=1&pc=x").await.unwrap();
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body));
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
    // A refusal before anything of the request is read is still a signed envelope.
    let x = c.call(ServiceName::VerifyCode, &json!({})).await.unwrap();
    assert_eq!(code(&x), "1007");
    assert!(x.envelope.is_some(), "the refusal verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_after_the_handshake_is_closed() {
    // After the TLS handshake the protocol came from reading the first bytes, with no
    // deadline: a client that sent nothing held its connection (and a descriptor) for good.
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::AsyncReadExt as _;
    let fx = Fixture::start(Opts {
        server_toml: "header_read_timeout_ms = 300".into(),
        ..Opts::default()
    })
    .await;
    let d = &fx.dir;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(d.join("certs/ca.crt.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let chain: Vec<_> =
        CertificateDer::pem_file_iter(d.join(format!("certs/client-{CLIENT}.crt.pem")))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key =
        PrivateKeyDer::from_pem_file(d.join(format!("certs/client-{CLIENT}.key.pem"))).unwrap();
    // HTTP/1.1 (and no ALPN, which is HTTP/1.1) times the request head; HTTP/2 is given the
    // same time for its first request.
    for alpn in [Some(b"http/1.1".to_vec()), None, Some(b"h2".to_vec())] {
        let mut config =
            rustls::ClientConfig::builder_with_provider(hutong::server::tls::provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots.clone())
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .unwrap();
        config.alpn_protocols = alpn.clone().into_iter().collect();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(fx.addr()).await.unwrap();
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let started = Instant::now();
        // Read to the end: an HTTP/2 server speaks first (its SETTINGS).
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            let mut buf = [0u8; 256];
            while matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {}
        })
        .await;
        assert!(
            closed.is_ok(),
            "ALPN {alpn:?}: still open after {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_closed_at_accept() {
    use tokio::io::AsyncReadExt as _;
    // The cap on all connections, and the one on a single source's (IPv6 by /64), which
    // keeps one peer holding live connections from taking them all.
    for cap in ["max_connections = 2", "max_connections_per_ip = 2"] {
        let fx = Fixture::start(Opts {
            server_toml: cap.into(),
            ..Opts::default()
        })
        .await;
        let held = open_tcp(fx.addr(), 2).await;
        // Give the accept loop time to take both.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut third = tokio::net::TcpStream::connect(fx.addr()).await.unwrap();
        let mut buf = [0u8; 8];
        let read = tokio::time::timeout(Duration::from_secs(3), third.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0) | Err(_))), "{cap}: {read:?}");
        let refused = || {
            fx.gw
                .metrics
                .connections_refused
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        assert_eq!(refused(), 1, "{cap}");
        // A closed connection gives its place back.
        drop(held);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _again = open_tcp(fx.addr(), 2).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(refused(), 1, "{cap}: places given back");
    }
}

/// `n` TCP connections to `addr`, left open (no TLS handshake: the server waits for it).
async fn open_tcp(addr: std::net::SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_closes_silent_clients_and_caps_its_connections() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let fx = Fixture::start(Opts::default()).await;
    let admin = fx.admin();
    // A client that sends nothing is closed by the header deadline (5 s).
    let started = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(admin).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(15), silent.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "still open after {:?}: {read:?}",
        started.elapsed()
    );
    // Past the cap, a new connection is closed at once, and a scrape still works once
    // places are free.
    let held = open_tcp(admin, 64).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = tokio::net::TcpStream::connect(admin).await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(3), extra.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut probe = tokio::net::TcpStream::connect(admin).await.unwrap();
    probe
        .write_all(b"GET /live HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    probe.read_to_end(&mut answer).await.unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}
