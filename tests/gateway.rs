//! The gateway over real TLS sockets, with a national simulator on loopback behind it:
//! the seven services end to end, authentication and replay, upstream trouble. The
//! gateway and its region are [`fixture`]'s.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use hutong::client::GatewayClient;
use hutong::config::SignTypeName;
use hutong::sim;
use hutong::standard::ServiceName;

mod fixture;
mod listener;
mod state;

pub use fixture::*;

fn user(p: &(String, String, String)) -> Value {
    json!({"idType": p.0, "idNo": p.1, "name": p.2})
}

fn code(x: &hutong::client::Exchange) -> String {
    x.code().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seven_services_answer_end_to_end_over_tls() {
    let fx = Fixture::start(Opts::default()).await;
    // Configured on port 0, the gateway names the port it was given in the national code
    // URLs it issues and serves (`localhost:0` is no URL host).
    assert_eq!(fx.gw.code_host(), format!("localhost:{}", fx.addr().port()));
    let c = fx.client(SignTypeName::Sm2);
    let p = fx.person(3);

    let apply = c
        .call(
            ServiceName::ApplyCodeAccess,
            &json!({"user": user(&p), "authType": "FACE", "authProof": "face-ok"}),
        )
        .await
        .unwrap();
    assert_eq!(
        code(&apply),
        "0",
        "{:?} {:?}",
        apply.open_error,
        String::from_utf8_lossy(&apply.raw)
    );
    let biz = apply.biz.unwrap();
    let (auth_code, user_token) = (
        biz["authCode"].as_str().unwrap().to_owned(),
        biz["userToken"].as_str().unwrap().to_owned(),
    );

    let generated = c
        .call(ServiceName::GenerateCode, &json!({"userToken": user_token}))
        .await
        .unwrap();
    assert_eq!(
        code(&generated),
        "0",
        "{}",
        String::from_utf8_lossy(&generated.raw)
    );
    let content = generated.biz.unwrap()["codeContent"]
        .as_str()
        .unwrap()
        .to_owned();

    let verify = c
        .call(ServiceName::VerifyCode, &json!({"codeContent": content, "verifier": {"orgName": "某地铁站", "deviceId": "G-01"}}))
        .await
        .unwrap();
    assert_eq!(
        code(&verify),
        "0",
        "{}",
        String::from_utf8_lossy(&verify.raw)
    );
    let vb = verify.biz.clone().unwrap();
    let ticket = vb["bizExtData"].as_str().unwrap().to_owned();
    assert!(vb["nameMasked"].as_str().unwrap().contains('*'));

    let q = c
        .call(
            ServiceName::QueryHealthInfo,
            &json!({"bizExtData": ticket, "scope": ["code", "nucleic"]}),
        )
        .await
        .unwrap();
    assert_eq!(code(&q), "0", "{}", String::from_utf8_lossy(&q.raw));
    let q2 = c
        .call(
            ServiceName::QueryHealthInfo,
            &json!({"user": user(&p), "authCode": auth_code}),
        )
        .await
        .unwrap();
    assert_eq!(code(&q2), "0");

    let d = c
        .call(
            ServiceName::DeclareHealth,
            &json!({"user": user(&p), "temperature": 36.6, "symptoms": "1", "highRiskStay": "2", "contactHistory": "2",
                    "declareRegion": "330106", "declareTime": hutong::national::time::DateTime::from_unix(now_secs()).to_string()}),
        )
        .await
        .unwrap();
    assert_eq!(code(&d), "0", "{}", String::from_utf8_lossy(&d.raw));
    let t = c
        .call(
            ServiceName::DeclareTrip,
            &json!({"user": user(&p), "trips": [{"fromRegion": "110105", "toRegion": "330106", "transport": "2", "departTime": "2026-11-20 08:00:00"}],
                    "declareTime": hutong::national::time::DateTime::from_unix(now_secs()).to_string()}),
        )
        .await
        .unwrap();
    assert_eq!(code(&t), "0", "{}", String::from_utf8_lossy(&t.raw));
    let k = c
        .call(
            ServiceName::CorrectHealthInfo,
            &json!({"user": user(&p), "authCode": auth_code, "items": [{"element": "nucleicResult", "claimedValue": "1"}], "reason": "登记错误"}),
        )
        .await
        .unwrap();
    assert!(
        matches!(code(&k).as_str(), "0" | "4001"),
        "{}",
        String::from_utf8_lossy(&k.raw)
    );
    // The correction is tracked: the owning region moves it on, the filer reads it, and
    // no one else learns the ticket exists.
    let ticket_id = k.biz.as_ref().unwrap()["ticketId"]
        .as_str()
        .unwrap()
        .to_owned();
    let region = region_client(&fx);
    let r = correction(&c, json!({"ticketId": ticket_id})).await;
    assert_eq!(code(&r), "0", "{}", String::from_utf8_lossy(&r.raw));
    assert_eq!(r.biz.as_ref().unwrap()["status"], "ACCEPTED");
    for step in ["PROCESSING", "DONE"] {
        let body =
            json!({"ticketId": ticket_id, "status": step, "note": format!("{} 的资料已核实", p.2)});
        let r = correction(&region, body).await;
        assert_eq!(code(&r), "0", "{}", String::from_utf8_lossy(&r.raw));
    }
    // The region's free text is not kept: it could name the person.
    let kept = fx
        .gw
        .corrections
        .get("330000", &ticket_id)
        .unwrap()
        .unwrap();
    assert!(
        kept.history.iter().all(|h| h.note.is_none()),
        "{:?}",
        kept.history
    );
    let r = correction(&c, json!({"ticketId": ticket_id})).await;
    let b = r.biz.clone().unwrap();
    assert_eq!(b["status"], "DONE");
    assert_eq!(b["history"].as_array().unwrap().len(), 3, "{b}");
    // DONE is final: the region cannot reopen it. The move is the calling region's bad
    // value (1002), not a failure of some region behind the gateway (9002).
    let r = correction(
        &region,
        json!({"ticketId": ticket_id, "status": "PROCESSING"}),
    )
    .await;
    assert_eq!(code(&r), "1002", "{}", String::from_utf8_lossy(&r.raw));
    // The filer cannot move it, and an unknown id is the same 1002 as another's ticket.
    let r = correction(&c, json!({"ticketId": ticket_id, "status": "REJECTED"})).await;
    assert_eq!(code(&r), "1002");
    let r = correction(&c, json!({"ticketId": "no-such-ticket"})).await;
    assert_eq!(code(&r), "1002");

    // Nothing a verifier sees carries the person's name or ID number in clear.
    // (The decrypted business content, not the encrypted envelope.)
    for x in [&verify, &q] {
        let body = serde_json::to_string(x.biz.as_ref().unwrap()).unwrap();
        assert!(!body.contains(&p.1) && !body.contains(&p.2), "{body}");
        assert!(
            body.contains("nameMasked") || body.contains("person"),
            "{body}"
        );
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_authentication_failure_has_its_code() {
    let fx = Fixture::start(Opts::default()).await;
    let biz = json!({"codeContent": "PHIC1.x.y", "verifier": {"orgName": "站", "deviceId": "G"}});

    // No token: 1005.
    let mut c = fx.client(SignTypeName::HmacSm3);
    c.set_token(None);
    let x = c.call(ServiceName::VerifyCode, &biz).await.unwrap();
    assert_eq!((x.status, code(&x).as_str()), (401, "1005"));
    let no_token = x.envelope.unwrap().msg;

    // A token without the service: 1006.
    c.set_token(Some(fx.token(&[ServiceName::DeclareHealth])));
    assert_eq!(
        code(&c.call(ServiceName::VerifyCode, &biz).await.unwrap()),
        "1006"
    );

    // No client certificate, for a client registered to present one: 1006.
    let mut no_cert = GatewayClient::new(&fx.profile(SignTypeName::HmacSm3, false)).unwrap();
    no_cert.set_token(Some(fx.token(&ServiceName::ALL)));
    let x = no_cert.call(ServiceName::VerifyCode, &biz).await.unwrap();
    assert_eq!(code(&x), "1006");
    assert!(x.envelope.unwrap().msg.contains("certificate"));

    // A token issued to this client, with another registered client's envelope: 1005.
    let mut p = fx.profile(SignTypeName::HmacSm3, true);
    p.app_id = REGION_APP.into();
    p.mac_key_hex = Some(REGION_MAC.into());
    let mut borrowed = GatewayClient::new(&p).unwrap();
    borrowed.set_token(Some(fx.token(&ServiceName::ALL)));
    assert_eq!(
        code(&borrowed.call(ServiceName::VerifyCode, &biz).await.unwrap()),
        "1005"
    );

    // Neither certificate nor token: 1005. The token comes first, so that a stranger is not
    // told which clients must present a certificate.
    let mut neither = GatewayClient::new(&fx.profile(SignTypeName::HmacSm3, false)).unwrap();
    neither.set_token(None);
    assert_eq!(
        code(&neither.call(ServiceName::VerifyCode, &biz).await.unwrap()),
        "1005"
    );

    // An appId nobody registered: 1005, told as a registered client without a token is, so
    // that a stranger cannot learn which appIds are registered.
    let mut p = fx.profile(SignTypeName::HmacSm3, true);
    p.app_id = "ZZ0000000009".into();
    let stranger = GatewayClient::new(&p).unwrap();
    let x = stranger.call(ServiceName::VerifyCode, &biz).await.unwrap();
    assert_eq!(code(&x), "1005");
    assert_eq!(x.envelope.unwrap().msg, no_token);

    // A signature that does not verify: 1003.
    let c = fx.client(SignTypeName::Sm2);
    let sealed = c.seal(ServiceName::VerifyCode, &biz).unwrap();
    let mut v: Value = serde_json::from_str(&sealed.body).unwrap();
    v["nonce"] = Value::from("0123456789abcdef0123456789abcdef");
    let (status, _, raw) = c
        .post(
            ServiceName::VerifyCode,
            serde_json::to_vec(&v).unwrap().into(),
        )
        .await
        .unwrap();
    assert_eq!(status, 401);
    assert!(String::from_utf8_lossy(&raw).contains("\"code\":\"1003\""));

    // A replay: the same sealed request twice; the second is 1004.
    let sealed = c.seal(ServiceName::VerifyCode, &biz).unwrap();
    let first = c.send(ServiceName::VerifyCode, &sealed).await.unwrap();
    assert_ne!(code(&first), "1004");
    let again = c.send(ServiceName::VerifyCode, &sealed).await.unwrap();
    assert_eq!(code(&again), "1004");

    // Bad business content: 1002 with the field, signed by the gateway.
    let bad = c.call(ServiceName::VerifyCode, &json!({"codeContent": "x", "verifier": {"orgName": "站", "deviceId": "G"}, "extra": 1})).await.unwrap();
    assert_eq!(code(&bad), "1002");
    assert!(bad.envelope.unwrap().msg.contains("extra"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tokens_what_a_client_may_call_is_told_only_to_that_client() {
    // Without access tokens the signature is the proof of who calls: a request for a
    // service its appId may not call is 1003 until it is signed by that client, then 1006.
    let fx = Fixture::start(Opts {
        auth_toml: "require_token = false".into(),
        require_mtls: false,
        ..Opts::default()
    })
    .await;
    let biz = json!({"codeContent": "PHIC1.x.y", "verifier": {"orgName": "站", "deviceId": "G"}});
    // The region's appId, which may call none of the seven services.
    let mut p = fx.profile(SignTypeName::HmacSm3, true);
    p.app_id = REGION_APP.into();
    let forged = GatewayClient::new(&p).unwrap();
    assert_eq!(
        code(&forged.call(ServiceName::VerifyCode, &biz).await.unwrap()),
        "1003",
        "signed with another client's key"
    );
    p.mac_key_hex = Some(REGION_MAC.into());
    let region = GatewayClient::new(&p).unwrap();
    let x = region.call(ServiceName::VerifyCode, &biz).await.unwrap();
    assert_eq!(code(&x), "1006", "the region's own signature");
    assert!(x.envelope.unwrap().msg.contains("may not call"));

    // A client that must present a certificate is refused without one before any of the
    // envelope's cryptography (which would spend its nonce): 1006 even with a forged
    // signature.
    let fx = Fixture::start(Opts {
        auth_toml: "require_token = false".into(),
        ..Opts::default()
    })
    .await;
    let mut p = fx.profile(SignTypeName::HmacSm3, false);
    p.mac_key_hex = Some(REGION_MAC.into());
    let forged = GatewayClient::new(&p).unwrap();
    let x = forged.call(ServiceName::VerifyCode, &biz).await.unwrap();
    assert_eq!(code(&x), "1006");
    assert!(x.envelope.unwrap().msg.contains("certificate"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_that_hangs_past_the_requests_deadline_opens_its_breaker() {
    // The region's timeout (8 s) is past the request's deadline (the fixture's 5 s). Each
    // call used to be dropped with its request, unrecorded, so a region that hung never
    // opened its breaker and every caller waited the whole deadline. The calls now end
    // just before the deadline, as timeouts the breaker counts (five open it).
    let fx = Fixture::start(Opts {
        region_timeout_ms: 8_000,
        ..Opts::default()
    })
    .await;
    let c = fx.client(SignTypeName::HmacSm3);
    let mut codes = Vec::new();
    for i in 0..6 {
        let p = fx.person(i);
        let applied = c
            .call(
                ServiceName::ApplyCodeAccess,
                &json!({"user": user(&p), "authType": "FACE", "authProof": "face-ok"}),
            )
            .await
            .unwrap();
        let token = applied.biz.unwrap()["userToken"]
            .as_str()
            .unwrap()
            .to_owned();
        let generated = c
            .call(ServiceName::GenerateCode, &json!({"userToken": token}))
            .await
            .unwrap();
        let content = generated.biz.unwrap()["codeContent"]
            .as_str()
            .unwrap()
            .to_owned();
        codes.push(content);
    }
    let verify = |content: &str| json!({"codeContent": content, "verifier": {"orgName": "某地铁站", "deviceId": "G-01"}});
    fx.sim
        .as_ref()
        .unwrap()
        .set_faults(sim::Faults {
            timeout_rate: 1.0,
            ..sim::Faults::default()
        })
        .unwrap();
    // Five verifications at once, of five codes (each a fetch of its own through the cache).
    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for content in &codes[..5] {
        let (c, biz) = (c.clone(), verify(content));
        calls.spawn(async move { c.call(ServiceName::VerifyCode, &biz).await.unwrap() });
    }
    while let Some(x) = calls.join_next().await {
        assert_eq!(code(&x.unwrap()), "9001");
    }
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
    // The breaker counted them: the sixth is refused at once.
    let started = Instant::now();
    let x = c
        .call(ServiceName::VerifyCode, &verify(&codes[5]))
        .await
        .unwrap();
    assert_eq!(code(&x), "9001");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}: the breaker did not open",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_that_is_down_hangs_or_answers_garbage_gives_9001_or_9002_in_time() {
    let mut fx = Fixture::start(Opts {
        region_timeout_ms: 800,
        ..Opts::default()
    })
    .await;
    let c = fx.client(SignTypeName::HmacSm3);
    let p = fx.person(1);
    let biz = json!({"user": user(&p), "authType": "FACE", "authProof": "ok"});

    let sim = fx.sim.as_ref().unwrap();
    sim.set_faults(sim::Faults {
        garbage_rate: 1.0,
        ..sim::Faults::default()
    })
    .unwrap();
    let x = c.call(ServiceName::ApplyCodeAccess, &biz).await.unwrap();
    assert_eq!(code(&x), "9002", "{}", String::from_utf8_lossy(&x.raw));

    sim.set_faults(sim::Faults {
        timeout_rate: 1.0,
        ..sim::Faults::default()
    })
    .unwrap();
    let t0 = Instant::now();
    let x = c.call(ServiceName::ApplyCodeAccess, &biz).await.unwrap();
    assert_eq!(code(&x), "9001");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());

    // Down: nothing listens any more. Then the breaker opens and fails fast.
    fx.sim.take().unwrap().shutdown().await.unwrap();
    for _ in 0..6 {
        let t0 = Instant::now();
        let x = c.call(ServiceName::ApplyCodeAccess, &biz).await.unwrap();
        assert_eq!(code(&x), "9001");
        assert!(t0.elapsed() < Duration::from_secs(3));
    }
    let t0 = Instant::now();
    let calls = fx.gw.relay.region_calls().unwrap();
    let x = c.call(ServiceName::ApplyCodeAccess, &biz).await.unwrap();
    assert_eq!(code(&x), "9001");
    assert!(
        x.envelope.unwrap().msg.to_lowercase().contains("circuit"),
        "the breaker is open"
    );
    assert!(t0.elapsed() < Duration::from_millis(300));
    // Of the eight failed calls before, those made were counted (the garbage, the timeout,
    // at least one to the region that was down); those the open breaker stopped were not,
    // nor is the last.
    assert!((3..8).contains(&calls), "{calls}");
    assert_eq!(fx.gw.relay.region_calls(), Some(calls));

    // A reload (SIGHUP) keeps the region's breaker while its URL stays: the region that is
    // down is not called afresh because the configuration was read again.
    let cfg = hutong::config::Config::load(&fx.dir.join("hutong.toml")).unwrap();
    fx.router.reconfigure(&cfg).unwrap();
    let x = c.call(ServiceName::ApplyCodeAccess, &biz).await.unwrap();
    assert_eq!(code(&x), "9001");
    assert!(
        x.envelope.unwrap().msg.to_lowercase().contains("circuit"),
        "the breaker closed on reload"
    );
    assert_eq!(fx.gw.relay.region_calls(), Some(calls));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_listener_serves_metrics_live_and_ready() {
    let fx = Fixture::start(Opts::default()).await;
    let c = fx.client(SignTypeName::HmacSm3);
    let _ = c
        .call(
            ServiceName::VerifyCode,
            &json!({"codeContent": "nope", "verifier": {"orgName": "站", "deviceId": "G"}}),
        )
        .await
        .unwrap();
    let get = |path: &str| {
        let addr = fx.admin();
        let path = path.to_owned();
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        }
    };
    assert!(get("/live").await.starts_with("HTTP/1.1 200"));
    assert!(get("/ready").await.starts_with("HTTP/1.1 200"));
    let m = get("/metrics").await;
    assert!(
        m.contains("hutong_requests_total{service=\"verifyCode\",code=\"3001\"} 1"),
        "{m}"
    );
    // The one request's nonce, of the store's default cap.
    assert!(m.contains("\nhutong_replay_nonces 1\n"), "{m}");
    assert!(m.contains("\nhutong_replay_nonces_max 2000000\n"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limit_is_1007_with_retry_after() {
    let fx = Fixture::start(Opts {
        extra_client_toml: "rate_limit = { per_client = { per_second = 1, burst = 2 } }".into(),
        ..Opts::default()
    })
    .await;
    let c = fx.client(SignTypeName::HmacSm3);
    let biz = json!({"codeContent": "nope", "verifier": {"orgName": "站", "deviceId": "G"}});
    let mut codes = Vec::new();
    let mut retry = None;
    for _ in 0..4 {
        let x = c.call(ServiceName::VerifyCode, &biz).await.unwrap();
        if code(&x) == "1007" {
            assert_eq!(x.status, 429);
            retry = x.retry_after.clone();
            // Refused before the envelope is opened, yet answered in the request's sign
            // type (the client's MAC), not with the gateway's SM2 signature.
            let env = x.envelope.as_ref().expect("the refusal verifies");
            assert_eq!(env.sign_type, hutong::envelope::SignType::HmacSm3);
        }
        codes.push(code(&x));
    }
    assert_eq!(&codes[..2], &["3001", "3001"], "{codes:?}");
    assert!(codes[2..].iter().all(|c| c == "1007"), "{codes:?}");
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_store_takes_its_caps_from_the_configuration() {
    // The caps were fixed in the code; [replay] now sets them, and a client at its cap is
    // refused 1007 (with Retry-After) rather than having an unexpired nonce forgotten.
    let fx = Fixture::start(Opts {
        extra_toml: "[replay]\nmax_entries = 10\nmax_entries_per_app = 2".into(),
        ..Opts::default()
    })
    .await;
    let c = fx.client(SignTypeName::HmacSm3);
    let biz = json!({"codeContent": "nope", "verifier": {"orgName": "站", "deviceId": "G"}});
    let mut codes = Vec::new();
    for _ in 0..3 {
        let x = c.call(ServiceName::VerifyCode, &biz).await.unwrap();
        if code(&x) == "1007" {
            assert!(x.retry_after.is_some());
        }
        codes.push(code(&x));
    }
    assert_eq!(codes, ["3001", "3001", "1007"]);
    assert_eq!(fx.gw.nonces.fill(), Some((2, 10)), "(held, the cap of all)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialect_request_over_the_limit_records_no_nonce() {
    // The dialect ingress checked a signed request's nonce (and recorded it) before the
    // client's limit: a flood over the limit filled the client's place in the replay store,
    // and once it was full its requests within the limit were refused 1007 for ten minutes.
    const ZJV: &str = "Z3300010001";
    let key_hex = hutong::crypto::to_hex(&[9u8; 32]);
    let fx = Fixture::start(Opts {
        extra_toml: format!(
            "\n[[client]]\napp_id = \"{ZJV}\"\nregion = \"330106\"\nrole = \"verifier\"\n\
             services = [\"verifyCode\"]\nregions = [\"*\"]\nsign_types = []\n\
             dialect = \"zhejiang\"\n\
             dialect_credentials = {{ id = \"{ZJV}\", key_hex = \"{key_hex}\", secret = \"zv-secret\" }}\n\
             rate_limit = {{ per_client = {{ per_second = 1, burst = 1 }} }}\n"
        ),
        dialects: true,
        ..Opts::default()
    })
    .await;
    let zhejiang = hutong::translate::Dialect::load_dir(
        &crate::support::root().join("config/regions"),
        &hutong::standard::Standard::embedded(),
    )
    .unwrap()
    .into_iter()
    .find(|d| d.id == "zhejiang")
    .unwrap();
    let mut profile = fx.profile(SignTypeName::HmacSm3, true);
    profile.app_id = ZJV.into();
    let mut client = GatewayClient::new(&profile).unwrap();
    client.set_token(Some(
        fx.gw
            .tokens
            .issue(ZJV, &[ServiceName::VerifyCode], 600)
            .unwrap(),
    ));
    let held = || fx.gw.nonces.fill().unwrap().0;
    let before = held();
    let mut statuses = Vec::new();
    for i in 0..5 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let mut msg = json!({
            "appKey": ZJV,
            "bizData": {"qrCode": "https://healthcode.zj.example.cn/healthAct/index.html?qrCode=x", "unitName": "杭州站"},
            "deviceId": "ZJ-1",
            "format": "json",
            "requestId": format!("req-{i}"),
            "timestamp": now.as_millis().to_string(),
            "version": "1.0",
        });
        let key = [9u8; 32];
        let creds = hutong::translate::sign::Credentials {
            id: ZJV,
            key: &key,
            secret: "zv-secret",
        };
        let stamp = hutong::translate::sign::Stamp {
            unix_s: i64::try_from(now.as_secs()).unwrap(),
            nonce: "",
        };
        hutong::translate::sign::sign(&zhejiang.signing, &mut msg, &creds, &stamp).unwrap();
        let (status, _, raw) = client
            .post_dialect(
                "zhejiang/openapi/jkm/parse",
                "application/json",
                bytes::Bytes::from(msg.to_string()),
            )
            .await
            .unwrap();
        statuses.push((status, String::from_utf8_lossy(&raw).into_owned()));
    }
    // Answered in Zhejiang's words: a refusal by the limit says so.
    let limited = statuses
        .iter()
        .filter(|(_, body)| body.contains("rate limit"))
        .count();
    assert!(limited >= 3, "{statuses:?}");
    assert_eq!(
        held() - before,
        (5 - limited) as u64,
        "only the admitted requests' nonces are held: {statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tokens_a_request_over_the_limit_leaves_its_nonce_unspent() {
    // Without tokens the limit came after the envelope was opened, so a request refused
    // 1007 had its nonce recorded: the client's retry of that very request, once the limit
    // allowed it, was refused again as a replay (1004).
    let fx = Fixture::start(Opts {
        auth_toml: "require_token = false".into(),
        extra_client_toml: "rate_limit = { per_client = { per_second = 1, burst = 1 } }".into(),
        ..Opts::default()
    })
    .await;
    let c = fx.client(SignTypeName::HmacSm3);
    let biz = json!({"codeContent": "nope", "verifier": {"orgName": "站", "deviceId": "G"}});
    assert_eq!(
        code(&c.call(ServiceName::VerifyCode, &biz).await.unwrap()),
        "3001"
    );
    let sealed = c.seal(ServiceName::VerifyCode, &biz).unwrap();
    let refused = c.send(ServiceName::VerifyCode, &sealed).await.unwrap();
    assert_eq!(code(&refused), "1007");
    assert!(refused.envelope.is_some(), "the refusal verifies");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let retried = c.send(ServiceName::VerifyCode, &sealed).await.unwrap();
    assert_eq!(code(&retried), "3001", "the retry was taken for a replay");
    // Once taken, it is spent; and sent again, it spends none of the client's quota (a
    // captured request cannot hold the client at its limit).
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    for _ in 0..3 {
        let again = c.send(ServiceName::VerifyCode, &sealed).await.unwrap();
        assert_eq!(code(&again), "1004");
    }
    let fresh = c.call(ServiceName::VerifyCode, &biz).await.unwrap();
    assert_eq!(code(&fresh), "3001", "the replays spent the client's quota");
}

/// The code the region issues `p` through the gateway: applyCodeAccess, then generateCode.
async fn code_of(c: &GatewayClient, p: &(String, String, String)) -> String {
    let apply = c
        .call(
            ServiceName::ApplyCodeAccess,
            &json!({"user": user(p), "authType": "FACE", "authProof": "ok"}),
        )
        .await
        .unwrap();
    let token = apply.biz.unwrap()["userToken"].as_str().unwrap().to_owned();
    let generated = c
        .call(ServiceName::GenerateCode, &json!({"userToken": token}))
        .await
        .unwrap();
    generated.biz.unwrap()["codeContent"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The region's own client, which pushes status events.
async fn correction(c: &GatewayClient, body: Value) -> hutong::client::Exchange {
    c.call_raw_service("correctionStatus", &body).await.unwrap()
}

fn region_client(fx: &Fixture) -> GatewayClient {
    let mut p = fx.profile(SignTypeName::HmacSm3, false);
    p.app_id = REGION_APP.into();
    p.mac_key_hex = Some(REGION_MAC.into());
    let mut c = GatewayClient::new(&p).unwrap();
    c.set_token(Some(fx.gw.tokens.issue(REGION_APP, &[], 600).unwrap()));
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_that_leaks_the_name_and_id_number_is_masked_by_the_gateway() {
    let mut defects = sim::Defects::NONE;
    defects.insert(sim::Defect::LeakName);
    defects.insert(sim::Defect::LeakIdNumber);
    let fx = Fixture::start(Opts {
        sim_defects: defects,
        ..Opts::default()
    })
    .await;
    let c = fx.client(SignTypeName::HmacSm3);
    let p = fx.person(6);
    let content = code_of(&c, &p).await;
    let v = c
        .call(
            ServiceName::VerifyCode,
            &json!({"codeContent": content, "verifier": {"orgName": "某地铁站", "deviceId": "G-01"}}),
        )
        .await
        .unwrap();
    assert_eq!(code(&v), "0", "{}", String::from_utf8_lossy(&v.raw));
    let biz = v.biz.unwrap();
    let name_shown = biz["nameMasked"].as_str().unwrap();
    let id_shown = biz["idNoMasked"].as_str().unwrap();
    assert_eq!(
        name_shown,
        hutong::mask::mask(hutong::standard::PersonalClass::Name, &p.2)
    );
    assert_eq!(
        id_shown,
        hutong::mask::mask(hutong::standard::PersonalClass::Id, &p.1)
    );
    assert!(
        !biz.to_string().contains(&p.1),
        "the full ID number reached a verifier"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_event_naming_only_the_person_purges_their_code_issued_here() {
    // A national region's verifyCode answer names no one, so its cached verification was
    // kept under the code id alone, and an event naming only the person (no codeIds)
    // purged nothing: the old colour was served until the entry's deadline. A code issued
    // through the gateway, under its consent, is now linked to the person.
    let fx = Fixture::start(Opts::default()).await;
    let c = fx.client(SignTypeName::HmacSm3);
    let p = fx.person(7);
    let sim = fx.sim.as_ref().unwrap();
    let content = code_of(&c, &p).await;
    let biz =
        json!({"codeContent": content, "verifier": {"orgName": "某地铁站", "deviceId": "G-01"}});
    assert_eq!(
        code(&c.call(ServiceName::VerifyCode, &biz).await.unwrap()),
        "0"
    );
    let calls = sim.requests();
    assert_eq!(
        code(&c.call(ServiceName::VerifyCode, &biz).await.unwrap()),
        "0"
    );
    assert_eq!(sim.requests(), calls, "kept");
    let ev = region_client(&fx)
        .call_raw_service(
            "statusEvent",
            &json!({"user": user(&p), "codeColor": "10", "updateTime": "2026-11-23 08:30:05"}),
        )
        .await
        .unwrap();
    assert_eq!(code(&ev), "0", "{}", String::from_utf8_lossy(&ev.raw));
    assert_eq!(ev.biz.unwrap()["purged"], 1);
    assert_eq!(
        code(&c.call(ServiceName::VerifyCode, &biz).await.unwrap()),
        "0"
    );
    assert_eq!(sim.requests(), calls + 1, "the region is asked again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_hit_avoids_the_region_and_a_status_event_purges_it() {
    let fx = Fixture::start(Opts::default()).await;
    let c = fx.client(SignTypeName::HmacSm3);
    let p = fx.person(5);
    let sim = fx.sim.as_ref().unwrap();
    // /metrics' count of region calls follows the region's own count: the uncached relays
    // (applyCodeAccess, generateCode), the cache's fill, and nothing for a hit.
    let counted = || {
        fx.gw
            .relay
            .region_calls()
            .expect("the router counts region calls")
    };
    let (sim0, gw0) = (sim.requests(), counted());
    let content = code_of(&c, &p).await;
    assert_eq!(sim.requests() - sim0, 2);
    assert_eq!(counted() - gw0, 2, "both relays counted");
    let cid = hutong::code::CodeUrl::parse(&content)
        .unwrap()
        .cid
        .as_str()
        .to_owned();
    let biz =
        json!({"codeContent": content, "verifier": {"orgName": "某地铁站", "deviceId": "G-01"}});

    let first = c.call(ServiceName::VerifyCode, &biz).await.unwrap();
    assert_eq!(code(&first), "0");
    let calls = sim.requests();
    assert_eq!(counted() - gw0, 3, "the cache's fill counted");
    let second = c.call(ServiceName::VerifyCode, &biz).await.unwrap();
    assert_eq!(code(&second), "0");
    assert_eq!(sim.requests(), calls, "a hit does not reach the region");
    assert_eq!(counted() - gw0, 3, "nor is it counted as a region call");
    // The same answer (its ticket, bound to this verifier, counts down).
    let no_ticket = |x: &hutong::client::Exchange| {
        let mut b = x.biz.clone().unwrap();
        let o = b.as_object_mut().unwrap();
        o.remove("bizExtData");
        o.remove("ticketExpiresIn");
        b
    };
    assert_eq!(no_ticket(&second), no_ticket(&first));
    // The hit sends the kept ticket, with its time left written in now.
    let (a, b) = (first.biz.clone().unwrap(), second.biz.clone().unwrap());
    assert_eq!(b["bizExtData"], a["bizExtData"]);
    let left = b["ticketExpiresIn"].as_i64().expect("seconds left");
    assert!(
        (1..=a["ticketExpiresIn"].as_i64().unwrap()).contains(&left),
        "{left}"
    );
    assert!(
        fx.gw
            .metrics
            .cache_hits
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );

    // The region pushes a status change for the code: the entry goes.
    let r = region_client(&fx);
    let ev = r
        .call_raw_service("statusEvent", &json!({"codeIds": [cid], "codeColor": "10"}))
        .await
        .unwrap();
    assert_eq!(code(&ev), "0", "{}", String::from_utf8_lossy(&ev.raw));
    assert_eq!(ev.biz.unwrap()["purged"], 1);
    let third = c.call(ServiceName::VerifyCode, &biz).await.unwrap();
    assert_eq!(code(&third), "0");
    assert_eq!(
        sim.requests(),
        calls + 1,
        "after the purge the region is asked again"
    );
    assert_eq!(counted() - gw0, 4);

    // An event id that is not an id is refused: it travels in every callback.
    let ev = r
        .call_raw_service(
            "statusEvent",
            &json!({"codeIds": [cid], "codeColor": "10", "eventId": "x".repeat(65)}),
        )
        .await
        .unwrap();
    assert_eq!(code(&ev), "1002", "{}", String::from_utf8_lossy(&ev.raw));

    // A time that is not one is refused before anything changes (every callback would
    // fail on it).
    let ev = r
        .call_raw_service(
            "statusEvent",
            &json!({"codeIds": [cid], "codeColor": "10", "updateTime": "20261123083005"}),
        )
        .await
        .unwrap();
    assert_eq!(code(&ev), "1002", "{}", String::from_utf8_lossy(&ev.raw));

    // A status for a person the gateway has not linked to the region yet is recorded all
    // the same (on a link without a code), not acknowledged and dropped.
    let q = fx.person(11);
    let ev = r
        .call_raw_service(
            "statusEvent",
            &json!({"user": user(&q), "codeColor": "10", "updateTime": "2026-11-23 08:30:05"}),
        )
        .await
        .unwrap();
    assert_eq!(code(&ev), "0", "{}", String::from_utf8_lossy(&ev.raw));
    let key = hutong::crypto::MacKey::from_bytes(&[7u8; 32]).unwrap();
    let entry = fx
        .gw
        .links
        .get(&hutong::audit::pseudonym(&key, &q.0, &q.1))
        .unwrap()
        .expect("the person is in the registry");
    let zj = &entry.regions["330000"];
    assert_eq!(
        (zj.colour.as_deref(), zj.status_time.as_deref()),
        (Some("10"), Some("2026-11-23 08:30:05"))
    );

    // The proposed grey (90, 灰码/其他) is a colour the element's table knows; a value
    // outside the table is not.
    let g = fx.person(12);
    for (colour, want) in [("90", "0"), ("30", "1002")] {
        let ev = r
            .call_raw_service(
                "statusEvent",
                &json!({"user": user(&g), "codeColor": colour, "updateTime": "2026-11-23 08:31:00"}),
            )
            .await
            .unwrap();
        assert_eq!(
            code(&ev),
            want,
            "{colour}: {}",
            String::from_utf8_lossy(&ev.raw)
        );
    }
    let entry = fx
        .gw
        .links
        .get(&hutong::audit::pseudonym(&key, &g.0, &g.1))
        .unwrap()
        .expect("the person is in the registry");
    assert_eq!(entry.regions["330000"].colour.as_deref(), Some("90"));

    // A verifier may not push status events.
    let refused = c
        .call_raw_service("statusEvent", &json!({"codeIds": [cid]}))
        .await
        .unwrap();
    assert_eq!(code(&refused), "1006");
}
