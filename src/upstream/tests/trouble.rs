//! A region in trouble: down, hanging, answering garbage or with another key, refusing; the breaker and the retry budget against a real simulator; keyed calls.

use super::*;

fn fast_policy() -> UpstreamPolicy {
    UpstreamPolicy {
        connect_timeout_ms: 500,
        attempt_timeout_ms: 400,
        deadline_ms: 400,
        retry_backoff_ms: 1,
        ..UpstreamPolicy::default()
    }
}

/// A national region at `127.0.0.1:port` (whatever listens there, or nothing).
fn national_at(port: u16, policy: UpstreamPolicy) -> NationalUpstream {
    let client = TestClient::new("A1");
    let mut config = NationalUpstreamConfig::new(
        "330000",
        format!("http://127.0.0.1:{port}"),
        client.identity(),
        SigningKey::generate().unwrap().verifying_key(),
    );
    config.policy = policy;
    NationalUpstream::new(config).unwrap()
}

#[tokio::test]
async fn upstream_down_is_9001_within_the_deadline() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let up = national_at(port, fast_policy());
    let started = Instant::now();
    let e = up
        .call(
            ServiceName::VerifyCode,
            &json!({"codeContent": "x", "verifier": verifier()}),
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, UpstreamError::Connect(_)), "{e}");
    assert_eq!(e.return_code(), ReturnCode::UpstreamTimeout);
    assert!(started.elapsed() < Duration::from_millis(400));
}

#[tokio::test]
async fn an_answer_that_is_not_http_is_9002_not_retried() {
    // A region that answers every connection with bytes that are not HTTP: it answered,
    // wrongly (9002, counted against it), rather than failing to connect (9001, retried).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut sock, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").await;
                let _ = sock.shutdown().await;
            });
        }
    });
    let up = national_at(
        port,
        UpstreamPolicy {
            max_attempts: 3,
            ..fast_policy()
        },
    );
    let declare = json!({"user": {"idType": "10", "idNo": "110105194912310021", "name": "张三"},
        "symptoms": "1", "highRiskStay": "2", "contactHistory": "2", "declareRegion": "330106",
        "declareTime": now_text()});
    let e = up
        .call(ServiceName::DeclareHealth, &declare, true)
        .await
        .unwrap_err();
    assert!(matches!(e, UpstreamError::Garbage(_)), "{e}");
    assert_eq!(e.return_code(), ReturnCode::UpstreamFailed);
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "not retried"
    );
}

/// The transport of a region no attempt reaches (its attempts are the tests' own).
fn no_region(policy: &UpstreamPolicy) -> transport::Transport {
    transport::Transport::new(
        "330000".to_owned(),
        "http://127.0.0.1:9",
        None,
        policy,
        1 << 20,
        None,
        Vec::new(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_call_never_made_leaves_the_breaker_as_it_was() {
    // Two failures open this breaker. A call the gateway could not seal, between them, says
    // nothing about the region: it neither clears the first failure nor counts as one.
    let policy = UpstreamPolicy {
        breaker_failures: 2,
        breaker_cool_down_ms: 60_000,
        ..fast_policy()
    };
    let t = no_region(&policy);
    let fail = || async { Err::<(), _>(UpstreamError::Timeout) };
    let unsealed = || async {
        Err::<(), _>(UpstreamError::Seal(
            crate::envelope::EnvelopeError::NotAnObject,
        ))
    };
    let unbuilt = || async { Err::<(), _>(UpstreamError::Build("header".into())) };
    t.call(ServiceName::VerifyCode, false, fail)
        .await
        .unwrap_err();
    t.call(ServiceName::VerifyCode, false, unsealed)
        .await
        .unwrap_err();
    t.call(ServiceName::VerifyCode, false, unbuilt)
        .await
        .unwrap_err();
    assert_eq!(t.breaker_state(), BreakerState::Closed);
    t.call(ServiceName::VerifyCode, false, fail)
        .await
        .unwrap_err();
    assert_eq!(t.breaker_state(), BreakerState::Open);
}

#[tokio::test]
async fn a_region_that_hangs_past_its_callers_deadline_is_counted() {
    // The region's own timeout (5 s) is past the caller's deadline: the call ends just
    // before the caller gives up, as a timeout the breaker counts. It used to be dropped
    // with the caller's future, unrecorded, so a hanging region never opened it.
    let policy = UpstreamPolicy {
        attempt_timeout_ms: 5_000,
        deadline_ms: 5_000,
        breaker_failures: 1,
        breaker_cool_down_ms: 60_000,
        ..fast_policy()
    };
    let hang = || std::future::pending::<Result<(), UpstreamError>>();
    async fn ask(
        t: &transport::Transport,
        ms: u64,
    ) -> Result<Result<(), UpstreamError>, tokio::time::error::Elapsed> {
        let hang = || std::future::pending::<Result<(), UpstreamError>>();
        let until = Instant::now() + Duration::from_millis(ms);
        let call = within_caller_deadline(until, t.call(ServiceName::VerifyCode, false, hang));
        tokio::time::timeout_at(until, call).await
    }
    let t = no_region(&policy);
    let started = Instant::now();
    assert_eq!(ask(&t, 800).await, Ok(Err(UpstreamError::Timeout)));
    assert!(started.elapsed() < Duration::from_millis(800));
    assert_eq!(t.breaker_state(), BreakerState::Open);
    // Cut short by a caller with little time left (under MIN_COUNTED_WAIT), the attempt is
    // not held against the region: the caller's time ran out, not necessarily the region's.
    let t = no_region(&policy);
    assert_eq!(ask(&t, 200).await, Ok(Err(UpstreamError::Timeout)));
    assert_eq!(t.breaker_state(), BreakerState::Closed);
    // Nested deadlines: the earliest holds.
    let t = no_region(&policy);
    let started = Instant::now();
    let later = started + Duration::from_secs(30);
    let sooner = started + Duration::from_millis(100);
    let got = within_caller_deadline(
        sooner,
        within_caller_deadline(later, t.call(ServiceName::VerifyCode, false, hang)),
    )
    .await;
    assert_eq!(got, Err(UpstreamError::Timeout));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_task_spawned_for_the_caller_carries_its_deadline() {
    // A spawned task does not inherit task-locals: the fan-out's tasks to several regions
    // ran under no deadline of the request's until they were given it.
    let d = Instant::now() + Duration::from_secs(5);
    let (carried, bare) = within_caller_deadline(d, async {
        let carried = tokio::spawn(carry_caller_deadline(async { caller_deadline() }));
        let bare = tokio::spawn(async { caller_deadline() });
        (carried.await.unwrap(), bare.await.unwrap())
    })
    .await;
    assert_eq!(carried, Some(d));
    assert_eq!(bare, None);
    // Outside any caller's deadline, nothing is carried.
    let none = tokio::spawn(carry_caller_deadline(async { caller_deadline() }));
    assert_eq!(none.await.unwrap(), None);
}

#[tokio::test]
async fn hanging_upstream_is_9001_at_the_deadline() {
    let client = TestClient::new("A1");
    let hang = Faults {
        timeout_rate: 1.0,
        ..Faults::default()
    };
    let sim = start_sim(&[&client], hang).await;
    let up = upstream_to(&sim, &client, fast_policy());
    let started = Instant::now();
    let biz = json!({"user": user(&sim, 0), "authType": "FACE", "authProof": "ok"});
    let e = up
        .call(ServiceName::ApplyCodeAccess, &biz, false)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(e, UpstreamError::Timeout);
    assert_eq!(e.return_code(), ReturnCode::UpstreamTimeout);
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn garbage_is_9002_and_not_retried() {
    let client = TestClient::new("A1");
    let garbage = Faults {
        garbage_rate: 1.0,
        ..Faults::default()
    };
    let sim = start_sim(&[&client], garbage).await;
    let up = upstream_to(&sim, &client, UpstreamPolicy::default());
    let biz = json!({"user": user(&sim, 0), "symptoms": "1", "highRiskStay": "2",
        "contactHistory": "2", "declareRegion": "330106", "declareTime": now_text()});
    let e = up
        .call(ServiceName::DeclareHealth, &biz, true)
        .await
        .unwrap_err();
    assert!(matches!(e, UpstreamError::Garbage(_)), "{e}");
    assert_eq!(e.return_code(), ReturnCode::UpstreamFailed);
    assert_eq!(up.attempts(), 1);
}

#[tokio::test]
async fn answers_signed_by_another_key_are_garbage() {
    let client = TestClient::new("A1");
    let sim = start_sim(&[&client], Faults::default()).await;
    let mut config = NationalUpstreamConfig::new(
        "330000",
        sim.base_url(),
        client.identity(),
        SigningKey::generate().unwrap().verifying_key(),
    );
    // SM2 everywhere, so the answer is signed with the region's key, not MACed.
    config.identity.mac_key = None;
    let up = NationalUpstream::new(config).unwrap();
    let biz = json!({"user": user(&sim, 0), "authType": "FACE", "authProof": "ok"});
    let e = up
        .call(ServiceName::ApplyCodeAccess, &biz, false)
        .await
        .unwrap_err();
    assert!(matches!(e, UpstreamError::Garbage(_)), "{e}");
}

#[tokio::test]
async fn business_refusals_pass_through_and_keep_the_breaker_closed() {
    let client = TestClient::new("A1");
    let sim = start_sim(&[&client], Faults::default()).await;
    let policy = UpstreamPolicy {
        breaker_failures: 2,
        ..UpstreamPolicy::default()
    };
    let up = upstream_to(&sim, &client, policy);
    let nobody = json!({"user": {"idType": "10", "idNo": "11010519491231002X", "name": "张三"},
        "authType": "FACE", "authProof": "ok"});
    for _ in 0..3 {
        let e = up
            .call(ServiceName::ApplyCodeAccess, &nobody, false)
            .await
            .unwrap_err();
        assert_eq!(e.return_code(), ReturnCode::UserNotFound);
    }
    assert_eq!(up.breaker_state(), BreakerState::Closed);
}

fn failing() -> Faults {
    Faults {
        error_rate: 1.0,
        ..Faults::default()
    }
}

#[tokio::test]
async fn breaker_opens_after_n_failures_and_then_fails_fast() {
    let client = TestClient::new("A1");
    let sim = start_sim(&[&client], failing()).await;
    let policy = UpstreamPolicy {
        breaker_failures: 3,
        breaker_cool_down_ms: 60_000,
        ..UpstreamPolicy::default()
    };
    let up = upstream_to(&sim, &client, policy);
    let biz = json!({"user": user(&sim, 0), "authType": "FACE", "authProof": "ok"});
    for _ in 0..3 {
        let e = up
            .call(ServiceName::ApplyCodeAccess, &biz, false)
            .await
            .unwrap_err();
        assert_eq!(
            e.return_code(),
            ReturnCode::UpstreamFailed,
            "the region's 9999"
        );
    }
    assert_eq!(up.breaker_state(), BreakerState::Open);
    let served = sim.requests();
    let e = up
        .call(ServiceName::ApplyCodeAccess, &biz, false)
        .await
        .unwrap_err();
    assert_eq!(e, UpstreamError::CircuitOpen);
    assert_eq!(e.return_code(), ReturnCode::UpstreamTimeout);
    assert_eq!(sim.requests(), served, "no call reached the region");
}

#[tokio::test]
async fn breaker_half_opens_after_the_cool_down_and_a_good_probe_closes_it() {
    let client = TestClient::new("A1");
    let sim = start_sim(&[&client], failing()).await;
    // No cool-down, so the test need not wait on the clock; the paused-clock unit test
    // above covers the waiting.
    let policy = UpstreamPolicy {
        breaker_failures: 2,
        breaker_cool_down_ms: 0,
        ..UpstreamPolicy::default()
    };
    let up = upstream_to(&sim, &client, policy);
    let biz = json!({"user": user(&sim, 0), "authType": "FACE", "authProof": "ok"});
    for _ in 0..2 {
        up.call(ServiceName::ApplyCodeAccess, &biz, false)
            .await
            .unwrap_err();
    }
    assert_eq!(up.breaker_state(), BreakerState::HalfOpen);
    sim.set_faults(Faults::default()).unwrap();
    let served = sim.requests();
    up.call(ServiceName::ApplyCodeAccess, &biz, false)
        .await
        .unwrap();
    assert_eq!(sim.requests(), served + 1, "the probe reached the region");
    assert_eq!(up.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn retries_only_idempotent_calls_within_the_budget() {
    let client = TestClient::new("A1");
    let sim = start_sim(&[&client], failing()).await;
    let policy = UpstreamPolicy {
        max_attempts: 3,
        retry_backoff_ms: 1,
        retry_budget_ratio: 0.0,
        retry_budget_min: 3,
        breaker_failures: 100,
        ..UpstreamPolicy::default()
    };
    let up = upstream_to(&sim, &client, policy);
    let user = user(&sim, 0);
    let access = json!({"user": user, "authType": "FACE", "authProof": "ok"});
    up.call(ServiceName::ApplyCodeAccess, &access, false)
        .await
        .unwrap_err();
    assert_eq!(sim.requests(), 1, "not idempotent: one attempt");

    let declare = json!({"user": user, "symptoms": "1", "highRiskStay": "2",
        "contactHistory": "2", "declareRegion": "330106", "declareTime": now_text()});
    up.call(ServiceName::DeclareHealth, &declare, true)
        .await
        .unwrap_err();
    assert_eq!(sim.requests(), 4, "idempotent: three attempts");
    up.call(ServiceName::DeclareHealth, &declare, true)
        .await
        .unwrap_err();
    assert_eq!(sim.requests(), 6, "the budget had one retry left");
    up.call(ServiceName::DeclareHealth, &declare, true)
        .await
        .unwrap_err();
    assert_eq!(sim.requests(), 7, "the budget is spent");
}

#[tokio::test]
async fn a_retry_the_breaker_refuses_gives_the_attempts_own_error() {
    let client = TestClient::new("A1");
    let sim = start_sim(&[&client], failing()).await;
    // The first attempt's failure opens the breaker, which then refuses the retry.
    let policy = UpstreamPolicy {
        max_attempts: 3,
        retry_backoff_ms: 1,
        retry_budget_min: 3,
        breaker_failures: 1,
        breaker_cool_down_ms: 60_000,
        ..UpstreamPolicy::default()
    };
    let up = upstream_to(&sim, &client, policy);
    let declare = json!({"user": user(&sim, 0), "symptoms": "1", "highRiskStay": "2",
        "contactHistory": "2", "declareRegion": "330106", "declareTime": now_text()});
    let e = up
        .call(ServiceName::DeclareHealth, &declare, true)
        .await
        .unwrap_err();
    assert_eq!(sim.requests(), 1, "one attempt reached the region");
    assert_eq!(up.breaker_state(), BreakerState::Open);
    assert_ne!(e, UpstreamError::CircuitOpen, "the call was made");
    assert_eq!(
        e.return_code(),
        ReturnCode::UpstreamFailed,
        "the region's 9999"
    );
}

#[tokio::test]
async fn separate_calls_carry_separate_request_ids() {
    let client = TestClient::new("A1");
    let sim = start_sim(&[&client], Faults::default()).await;
    let up = upstream_to(&sim, &client, UpstreamPolicy::default());
    let declare = json!({"user": user(&sim, 2), "symptoms": "1", "highRiskStay": "2",
        "contactHistory": "2", "declareRegion": "330106", "declareTime": now_text()});
    let a = up
        .call(ServiceName::DeclareHealth, &declare, true)
        .await
        .unwrap();
    let b = up
        .call(ServiceName::DeclareHealth, &declare, true)
        .await
        .unwrap();
    assert_ne!(a["declareId"], b["declareId"], "two calls, two requestIds");
}

#[test]
fn config_problems_are_all_reported() {
    let client = TestClient::new("");
    let mut identity = client.identity();
    identity.sm2_key = None;
    identity.mac_key = None;
    identity.sm4_key = None;
    let mut config = NationalUpstreamConfig::new(
        "330000",
        "http://zj.example.cn",
        identity,
        SigningKey::generate().unwrap().verifying_key(),
    );
    config.policy.deadline_ms = 0;
    config.policy.max_attempts = 0;
    let e = NationalUpstream::new(config.clone()).unwrap_err();
    assert_eq!(e.problems.len(), 6, "{e}");
    config.base_url = "https://zj.example.cn".to_owned();
    let e = NationalUpstream::new(config).unwrap_err();
    assert!(
        e.problems.iter().any(|p| p.contains("CA certificate")),
        "{e}"
    );
}

#[tokio::test]
async fn a_keyed_call_is_one_request_at_the_region_however_often_it_is_sent() {
    let client = TestClient::new("A1");
    let sim = start_sim(&[&client], Faults::default()).await;
    let up = upstream_to(&sim, &client, UpstreamPolicy::default());
    let user = user(&sim, 4);
    let access = json!({"user": user, "authType": "SMS", "authProof": "123456"});
    let auth = up
        .call(ServiceName::ApplyCodeAccess, &access, false)
        .await
        .unwrap()["authCode"]
        .clone();
    let correct = json!({"user": user, "authCode": auth, "reason": "信息有误",
        "items": [{"element": "vaccineDoses", "claimedValue": "3"}]});
    // The caller's retry of its requestId R1 (the gateway lost the first answer): the same
    // key, so the region files one ticket and answers both with it.
    let fp = crate::idempotency::fingerprint(b"{}");
    let key = request_key("A3300010001", "R1", &fp);
    assert_eq!(key, request_key("A3300010001", "R1", &fp));
    assert_eq!(key.len(), 32);
    let first = up
        .call_keyed(ServiceName::CorrectHealthInfo, &correct, Some(&key))
        .await
        .unwrap();
    let again = up
        .call_keyed(ServiceName::CorrectHealthInfo, &correct, Some(&key))
        .await
        .unwrap();
    assert_eq!(first.biz["ticketId"], again.biz["ticketId"]);
    assert_eq!(sim.corrections(), 1);
    // Another requestId, another app's R1, or R1 with other content (the caller fixed what
    // the region refused) is another request.
    let other_fp = crate::idempotency::fingerprint(b"{\"a\":1}");
    for other in [
        request_key("A3300010001", "R2", &fp),
        request_key("A3300010002", "R1", &fp),
        request_key("A3300010001", "R1", &other_fp),
    ] {
        up.call_keyed(ServiceName::CorrectHealthInfo, &correct, Some(&other))
            .await
            .unwrap();
    }
    assert_eq!(sim.corrections(), 4);
}

/// A region whose every answer is `status` with `body`, and how many requests it had.
async fn answering(
    status: &'static str,
    body: &'static str,
) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&asked);
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut sock, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = sock.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (port, asked)
}

#[tokio::test]
async fn a_success_under_an_http_error_status_is_that_status() {
    // The answer's HTTP status was read only when the body did not translate: an error
    // page that reads as a success in the dialect (Jiangsu's resCode 0, or any answer of a
    // dialect without a result code) was taken for one.
    let jiangsu = crate::testutil::shipped_dialect("jiangsu");
    let (port, _) = answering(
        "503 Service Unavailable",
        r#"{"resCode":0,"res":{"level":"1","updateTime":"20261123083005"}}"#,
    )
    .await;
    let mut config = DialectUpstreamConfig::new(
        "320000",
        format!("http://127.0.0.1:{port}"),
        Arc::new(jiangsu),
        DialectCredentials {
            id: "hutong".into(),
            key: zeroize::Zeroizing::new(Vec::new()),
            secret: zeroize::Zeroizing::new("s3cret".into()),
        },
    );
    config.policy = fast_policy();
    let up = DialectUpstream::new(config).unwrap();
    let verify = json!({"codeContent": "https://skm.js.example.cn/healthAct/index.html?qrCode=A1B2",
        "verifier": verifier()});
    let e = up
        .call(ServiceName::VerifyCode, &verify, true)
        .await
        .unwrap_err();
    assert!(matches!(e, UpstreamError::Status(503)), "{e}");
}
