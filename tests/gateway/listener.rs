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

/// A TLS connection to the gateway with the test client's certificate, offering `alpn`.
async fn tls_to(
    fx: &Fixture,
    alpn: Option<Vec<u8>>,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    tls_from(fx, alpn, None).await
}

/// [`tls_to`] from the loopback address `from` (127.0.0.1 when None).
async fn tls_from(
    fx: &Fixture,
    alpn: Option<Vec<u8>>,
    from: Option<std::net::IpAddr>,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    tls_with(fx, alpn, from, None).await
}

/// [`tls_from`] with the socket's receive buffer set to `recv_buffer` bytes: a client that
/// reads nothing then stops the gateway's writes soon.
async fn tls_with(
    fx: &Fixture,
    alpn: Option<Vec<u8>>,
    from: Option<std::net::IpAddr>,
    recv_buffer: Option<u32>,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
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
    let mut config = rustls::ClientConfig::builder_with_provider(hutong::server::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    config.alpn_protocols = alpn.into_iter().collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(ip) = from {
        socket.bind(std::net::SocketAddr::new(ip, 0)).unwrap();
    }
    if let Some(n) = recv_buffer {
        socket.set_recv_buffer_size(n).unwrap();
    }
    let tcp = socket.connect(fx.addr()).await.unwrap();
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dialect_ingress_says_when_to_come_back() {
    // A 1007 at the dialect ingress carried no Retry-After, unlike the national endpoints.
    let fx = Fixture::start(Opts {
        extra_toml: "[limits]\nper_ip = { per_second = 1, burst = 1 }".into(),
        ..Opts::default()
    })
    .await;
    let c = fx.client(SignTypeName::HmacSm3);
    let (first, _, _) = c.get("/dialect/nowhere/verify").await.unwrap();
    assert_ne!(first, 429);
    let (_, retry, body) = c.get("/dialect/nowhere/verify").await.unwrap();
    assert!(
        String::from_utf8_lossy(&body).contains("1007"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_after_the_handshake_is_closed() {
    // After the TLS handshake the protocol came from reading the first bytes, with no
    // deadline: a client that sent nothing held its connection (and a descriptor) for good.
    use tokio::io::AsyncReadExt as _;
    let fx = Fixture::start(Opts {
        server_toml: "header_read_timeout_ms = 300".into(),
        ..Opts::default()
    })
    .await;
    // HTTP/1.1 (and no ALPN, which is HTTP/1.1) times the request head; HTTP/2 is given the
    // same time for its first request.
    for alpn in [Some(b"http/1.1".to_vec()), None, Some(b"h2".to_vec())] {
        let mut tls = tls_to(&fx, alpn.clone()).await;
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
async fn a_body_that_trickles_in_is_refused_and_gives_its_place_back() {
    // A body that never finished held a place of max_concurrency until the request's
    // deadline (10 s), and was then answered 9001 as if a region had been slow.
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let fx = Fixture::start(Opts {
        server_toml: "body_read_timeout_ms = 400\nmax_concurrency = 1".into(),
        ..Opts::default()
    })
    .await;
    let c = fx.client(SignTypeName::HmacSm3);
    let mut tls = tls_to(&fx, Some(b"http/1.1".to_vec())).await;
    let started = Instant::now();
    tls.write_all(
        b"POST /phic/v1/verifyCode HTTP/1.1\r\nHost: localhost\r\n\
          Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"appId\"",
    )
    .await
    .unwrap();
    tls.flush().await.unwrap();
    // While the body is awaited, its request holds the only place: another is shed.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let x = c.call(ServiceName::VerifyCode, &json!({})).await.unwrap();
    assert_eq!(code(&x), "9999", "shed while the place is held");
    // The trickling request is answered 1002 at the body's deadline, not the request's.
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains("\"code\"") {
            match tls.read(&mut buf).await {
                Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    })
    .await
    .expect("an answer");
    let took = started.elapsed();
    assert!(answer.contains("\"code\":\"1002\""), "{answer}");
    assert!(answer.contains("did not arrive within 400 ms"), "{answer}");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // And the place is free again.
    let x = c.call(ServiceName::VerifyCode, &json!({})).await.unwrap();
    assert_eq!(code(&x), "1001", "the place came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_ip_limit_refuses_before_a_place_is_taken() {
    // One address over its limit is refused 1007 without taking a place of
    // max_concurrency; it used to take one first, and be shed (9999) when none was left.
    use tokio::io::AsyncWriteExt as _;
    let fx = Fixture::start(Opts {
        server_toml: "max_concurrency = 1".into(),
        extra_toml: "[limits]\nper_ip = { per_second = 1, burst = 2 }".into(),
        ..Opts::default()
    })
    .await;
    let c = fx.client(SignTypeName::HmacSm3);
    // The first request (the per-IP limit's first token) holds the only place.
    let mut tls = tls_to(&fx, Some(b"http/1.1".to_vec())).await;
    tls.write_all(
        b"POST /phic/v1/verifyCode HTTP/1.1\r\nHost: localhost\r\n\
          Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    )
    .await
    .unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The second has the last token: past the limit, it finds no place.
    let x = c.call(ServiceName::VerifyCode, &json!({})).await.unwrap();
    assert_eq!(code(&x), "9999");
    // The third is over the limit, and told so.
    let x = c.call(ServiceName::VerifyCode, &json!({})).await.unwrap();
    assert_eq!(code(&x), "1007");
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

/// Sends the head of a verifyCode request whose body (1,000 bytes) does not follow, on
/// `tls`: a request in flight for as long as the test likes.
async fn start_trickling(tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) {
    use tokio::io::AsyncWriteExt as _;
    tls.write_all(
        b"POST /phic/v1/verifyCode HTTP/1.1\r\nHost: localhost\r\n\
          Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    )
    .await
    .unwrap();
    tls.flush().await.unwrap();
}

/// Reads what `tls` says until it closes or 5 s pass.
async fn read_answer(tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = tls.read(&mut buf).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&got).contains("\"code\"") {
                break;
            }
        }
    })
    .await;
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_cannot_hold_every_place() {
    // Heads of requests whose bodies never came held places of max_concurrency, as many as
    // one source liked (256 streams on each HTTP/2 connection): one source shed everyone.
    let fx = Fixture::start(Opts {
        server_toml: "max_concurrency = 2\nmax_requests_per_ip = 1\nbody_read_timeout_ms = 3000"
            .into(),
        ..Opts::default()
    })
    .await;
    let other: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let mut first = tls_from(&fx, Some(b"http/1.1".to_vec()), Some(other)).await;
    start_trickling(&mut first).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // That source's second request is refused at once, as over a limit.
    let mut second = tls_from(&fx, Some(b"http/1.1".to_vec()), Some(other)).await;
    start_trickling(&mut second).await;
    let refused = read_answer(&mut second).await;
    assert!(refused.contains("\"code\":\"1007\""), "{refused}");
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: 1"),
        "{refused}"
    );
    // Another source still finds a place.
    let c = fx.client(SignTypeName::HmacSm3);
    let x = c.call(ServiceName::VerifyCode, &json!({})).await.unwrap();
    // Served (an empty verifyCode lacks its parameters), not shed nor refused.
    assert_eq!(code(&x), "1001", "one source held every place");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed() {
    // HTTP/2 answers the gateway's pings by itself, and after its first request nothing
    // closed an idle connection: each held a place of max_connections for good.
    let fx = Fixture::start(Opts {
        server_toml: "idle_timeout_ms = 300".into(),
        ..Opts::default()
    })
    .await;
    let tls = tls_to(&fx, Some(b"h2".to_vec())).await;
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get("/phic/v1/trust-list")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    // Answered (404 here: this fixture publishes no trust list); the connection is idle.
    drop(send.send_request(req).await.unwrap());
    let started = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(5), conn).await;
    assert!(
        closed.is_ok(),
        "still open {:?} after its last request",
        started.elapsed()
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "closed early"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http1_connection_whose_client_reads_nothing_is_closed() {
    use tokio::io::AsyncWriteExt as _;
    // Over TLS, HTTP/1.1 had no deadline but hyper's for a request head: a client that sent
    // pipelined requests and never read their answers stopped the gateway's writes, and the
    // connection held its place of max_connections until the head it had begun to read
    // timed out (header_read_timeout_ms, long here). Now idle_timeout_ms closes it.
    let fx = Fixture::start(Opts {
        server_toml: "max_connections = 2\nidle_timeout_ms = 300\nheader_read_timeout_ms = 20000"
            .into(),
        ..Opts::default()
    })
    .await;
    let one = b"POST /phic/v1/nowhere HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n";
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut tls = tls_with(&fx, Some(b"http/1.1".to_vec()), None, Some(4096)).await;
        let burst = one.repeat(4000);
        // The gateway stops reading once its answers cannot be written: this write may
        // never finish, and need not.
        let _ = tokio::time::timeout(Duration::from_secs(3), tls.write_all(&burst)).await;
        stalled.push(tls);
    }
    let started = Instant::now();
    let served = loop {
        let c = fx.client(SignTypeName::HmacSm3);
        if let Ok(Ok(x)) = tokio::time::timeout(
            Duration::from_secs(2),
            c.call(ServiceName::VerifyCode, &json!({})),
        )
        .await
        {
            break Some(x);
        }
        if started.elapsed() > Duration::from_secs(8) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let x = served.expect("no place came free: the stalled connections were kept");
    assert_eq!(code(&x), "1001");
    drop(stalled);
}

/// What one request over its own TLS connection (closed after it) was answered.
async fn exchange_raw(fx: &Fixture, request: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tls = tls_to(fx, Some(b"http/1.1".to_vec())).await;
    tls.write_all(request.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut got)).await;
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_document_counts_against_its_sources_requests_in_flight() {
    // The trust list and the code page skipped the cap on one source's requests in flight
    // that every service call passes: one address could hold every place with them.
    let fx = Fixture::start(Opts {
        server_toml: "max_requests_per_ip = 1\nbody_read_timeout_ms = 3000".into(),
        ..Opts::default()
    })
    .await;
    let mut held = tls_to(&fx, Some(b"http/1.1".to_vec())).await;
    start_trickling(&mut held).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = exchange_raw(
        &fx,
        "GET /phic/v1/trust-list HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(got.starts_with("HTTP/1.1 429"), "{got}");
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_is_get_without_a_body_and_a_405_says_what_is_allowed() {
    // HEAD of a published document was refused 405, and no 405 had an Allow header.
    let fx = Fixture::start(Opts::default()).await;
    let get = exchange_raw(
        &fx,
        "GET /phic/v1/trust-list HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    let head = exchange_raw(
        &fx,
        "HEAD /phic/v1/trust-list HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    let status = |a: &str| a.split_whitespace().nth(1).unwrap_or_default().to_owned();
    assert_eq!(status(&head), status(&get), "{head}");
    assert_ne!(status(&head), "405", "{head}");
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");
    let post = exchange_raw(
        &fx,
        "POST /phic/v1/trust-list HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    assert!(
        post.to_ascii_lowercase().contains("allow: get, head"),
        "{post}"
    );
    let service = exchange_raw(
        &fx,
        "GET /phic/v1/verifyCode HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(service.starts_with("HTTP/1.1 405"), "{service}");
    assert!(
        service.to_ascii_lowercase().contains("allow: post"),
        "{service}"
    );
    // The documents are counted under their own label (they were in no request metric).
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut admin = tokio::net::TcpStream::connect(fx.admin()).await.unwrap();
    admin
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut metrics = String::new();
    tokio::time::timeout(Duration::from_secs(5), admin.read_to_string(&mut metrics))
        .await
        .unwrap()
        .unwrap();
    assert!(
        metrics.contains("hutong_requests_total{service=\"trust-list\",code=\"1002\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_answers_the_request_in_flight_and_says_so_on_ready() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // The admin listener stopped with the public one, so a probe during the drain found
    // no listener rather than "503 draining".
    let mut fx = Fixture::start(Opts {
        server_toml: "body_read_timeout_ms = 8000".into(),
        ..Opts::default()
    })
    .await;
    let admin = fx.admin();
    let mut tls = tls_to(&fx, Some(b"http/1.1".to_vec())).await;
    start_trickling(&mut tls).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let running = fx.running.take().unwrap();
    let stopping = tokio::spawn(running.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut probe = tokio::net::TcpStream::connect(admin).await.unwrap();
    probe
        .write_all(b"GET /ready HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut said = String::new();
    tokio::time::timeout(Duration::from_secs(5), probe.read_to_string(&mut said))
        .await
        .unwrap()
        .unwrap();
    assert!(said.starts_with("HTTP/1.1 503"), "{said}");
    assert!(said.contains("draining"), "{said}");
    assert!(!stopping.is_finished(), "stopped with a request in flight");
    // The request in flight gets its answer (its body is no envelope: 1001 or 1002).
    tls.write_all(&[b' '; 999]).await.unwrap();
    tls.flush().await.unwrap();
    let answer = read_answer(&mut tls).await;
    assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
    assert!(answer.contains("\"code\":\"100"), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("the drain ends once the request is answered")
        .unwrap();
    // And then the admin listener is gone too.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(tokio::net::TcpStream::connect(admin).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_declared_too_large_is_refused_before_it_is_sent() {
    use tokio::io::AsyncWriteExt as _;
    // The limit counted bytes as they came: a client that asked to send 3 MB was told to go
    // on (100 Continue), and the gateway read 2 MB before it answered 413.
    let fx = Fixture::start(Opts {
        server_toml: "max_body_bytes = 1000".into(),
        ..Opts::default()
    })
    .await;
    let mut tls = tls_to(&fx, Some(b"http/1.1".to_vec())).await;
    tls.write_all(
        b"POST /phic/v1/verifyCode HTTP/1.1\r\nHost: localhost\r\n\
          Content-Type: application/json\r\nContent-Length: 3000000\r\n\
          Expect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    tls.flush().await.unwrap();
    let answer = read_answer(&mut tls).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"code\":\"1002\""), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_does_not_wait_for_a_connection_that_never_sent_a_request() {
    // A stop closed every connection gracefully, and hyper's graceful close of an HTTP/2
    // connection waits for the client's preface: one silent client held the drain for the
    // whole grace period.
    let mut fx = Fixture::start(Opts {
        server_toml: "header_read_timeout_ms = 8000\nshutdown_grace_ms = 8000".into(),
        ..Opts::default()
    })
    .await;
    let _silent = tls_to(&fx, Some(b"h2".to_vec())).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    fx.running.take().unwrap().shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the drain waited {:?}",
        started.elapsed()
    );
}
