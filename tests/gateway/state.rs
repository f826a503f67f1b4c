//! The gateway's state over real sockets: requestId idempotency (a repeat, a twin), the
//! audit chain of every access, retention at start.

use std::time::{Duration, Instant};

use serde_json::json;

use hutong::config::SignTypeName;
use hutong::sim;
use hutong::standard::ServiceName;

use super::{CLIENT, Fixture, Opts, code, days_ago_ms, now_secs, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_request_id_gets_the_first_answer_and_other_content_is_refused() {
    let fx = Fixture::start(Opts::default()).await;
    let c = fx.client(SignTypeName::Sm2);
    let p = fx.person(7);
    let now = hutong::national::time::DateTime::from_unix(now_secs()).to_string();
    let biz = json!({"user": user(&p), "temperature": 36.5, "symptoms": "1", "highRiskStay": "2", "contactHistory": "2", "declareRegion": "330106", "declareTime": now});
    let sealed = c.seal(ServiceName::DeclareHealth, &biz).unwrap();
    let first = c.send(ServiceName::DeclareHealth, &sealed).await.unwrap();
    assert_eq!(code(&first), "0", "{}", String::from_utf8_lossy(&first.raw));
    let calls = fx.sim.as_ref().unwrap().requests();
    // The same requestId again, freshly signed (a retry after a lost answer).
    let again = c
        .reseal_with_request_id(
            ServiceName::DeclareHealth,
            &biz,
            &sealed.envelope.request_id,
        )
        .unwrap();
    let second = c.send(ServiceName::DeclareHealth, &again).await.unwrap();
    assert_eq!(code(&second), "0");
    assert_eq!(second.biz, first.biz);
    assert_eq!(
        fx.sim.as_ref().unwrap().requests(),
        calls,
        "answered from the idempotency record"
    );
    let mut other = biz.clone();
    other["temperature"] = json!(38.5);
    let clash = c
        .reseal_with_request_id(
            ServiceName::DeclareHealth,
            &other,
            &sealed.envelope.request_id,
        )
        .unwrap();
    assert_eq!(
        code(&c.send(ServiceName::DeclareHealth, &clash).await.unwrap()),
        "1002"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_correction_gets_its_first_answer_after_its_consent_expired() {
    // The region grants four-second authCodes (time enough for the first correction on a
    // loaded machine: the region checks its own): the gateway's consent lives as long, and
    // its check allows 5 s of clock skew.
    let fx = Fixture::start(Opts {
        sim_auth_code_ttl_secs: 4,
        ..Opts::default()
    })
    .await;
    let c = fx.client(SignTypeName::HmacSm3);
    let p = fx.person(4);
    let x = c
        .call(
            ServiceName::ApplyCodeAccess,
            &json!({"user": user(&p), "authType": "SMS", "authProof": "123456"}),
        )
        .await
        .unwrap();
    assert_eq!(code(&x), "0", "{}", String::from_utf8_lossy(&x.raw));
    // The consent was issued by now: its `iat` (whole seconds) is no later.
    let granted = Instant::now();
    let consent = x.biz.as_ref().unwrap()["authCode"]
        .as_str()
        .unwrap()
        .to_owned();
    let biz = json!({"user": user(&p), "authCode": consent, "items": [{"element": "nucleicResult", "claimedValue": "1"}], "reason": "登记错误"});
    let sealed = c.seal(ServiceName::CorrectHealthInfo, &biz).unwrap();
    let first = c
        .send(ServiceName::CorrectHealthInfo, &sealed)
        .await
        .unwrap();
    assert_eq!(code(&first), "0", "{}", String::from_utf8_lossy(&first.raw));
    let calls = fx.sim.as_ref().unwrap().requests();

    // Past the consent's 4 s, the 5 s of skew, and the second its `iat` was rounded down.
    tokio::time::sleep(Duration::from_millis(10_500).saturating_sub(granted.elapsed())).await;
    // The answer was lost; the client retries the same call after the consent expired.
    let again = c
        .reseal_with_request_id(
            ServiceName::CorrectHealthInfo,
            &biz,
            &sealed.envelope.request_id,
        )
        .unwrap();
    let second = c
        .send(ServiceName::CorrectHealthInfo, &again)
        .await
        .unwrap();
    assert_eq!(
        code(&second),
        "0",
        "{}",
        String::from_utf8_lossy(&second.raw)
    );
    assert_eq!(second.biz, first.biz, "the same ticket");
    assert_eq!(fx.sim.as_ref().unwrap().requests(), calls);
    // A new correction with that consent is refused: it has expired.
    let x = c.call(ServiceName::CorrectHealthInfo, &biz).await.unwrap();
    assert_eq!(code(&x), "2003", "{}", String::from_utf8_lossy(&x.raw));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_access_is_audited_in_a_chain_that_verifies() {
    let fx = Fixture::start(Opts::default()).await;
    let c = fx.client(SignTypeName::HmacSm3);
    let p = fx.person(2);
    let x = c
        .call(
            ServiceName::ApplyCodeAccess,
            &json!({"user": user(&p), "authType": "SMS", "authProof": "123456"}),
        )
        .await
        .unwrap();
    assert_eq!(code(&x), "0");
    let x = c
        .call(
            ServiceName::VerifyCode,
            &json!({"codeContent": "nope", "verifier": {"orgName": "站", "deviceId": "G"}}),
        )
        .await
        .unwrap();
    // A code no issuer owns: refused, and audited as refused.
    assert_eq!(code(&x), "3001");
    let report = fx.gw.audit.log().verify().unwrap();
    assert!(report.ok, "{:?}", report.problems);
    assert_eq!(report.records, 2);
    let who = hutong::audit::pseudonym(&fx.gw.pseudonym_key, &p.0, &p.1);
    let receipt = fx.gw.audit.log().receipt(&who).unwrap();
    assert_eq!(receipt.len(), 1);
    assert_eq!(receipt[0].action, "applyCodeAccess");
    assert_eq!(receipt[0].actor, CLIENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_retention_purge_runs_when_the_gateway_starts() {
    // The default interval between purges is an hour: a gateway restarted more often must
    // still purge, so the first pass runs at start.
    let fx = Fixture::start(Opts {
        old_audit_records: 3,
        ..Opts::default()
    })
    .await;
    let cutoff = days_ago_ms(180);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = fx.gw.audit.log();
        let old = log
            .tail(100)
            .unwrap()
            .iter()
            .filter(|r| r.time_ms < cutoff)
            .count();
        if old == 0 {
            let report = log.verify().unwrap();
            assert!(report.ok, "{report:?}");
            // Purged, not missing: the chain's checkpoint moved past the three old records
            // (it stays at 0 if they never reached the gateway's store).
            assert!(report.checkpoint.seq >= 3, "{report:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{old} records past retention still there 10 s after the start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twins_of_one_request_id_reach_the_region_once() {
    // A client times out and retries while the region is still working, or sends the same
    // request twice at once: the region must file one declaration, not two.
    let fx = Fixture::start(Opts::default()).await;
    let sim = fx.sim.as_ref().unwrap();
    sim.set_faults(sim::Faults {
        latency_ms: 400,
        ..sim::Faults::default()
    })
    .unwrap();
    let c = fx.client(SignTypeName::HmacSm3);
    let p = fx.person(8);
    let now = hutong::national::time::DateTime::from_unix(now_secs()).to_string();
    let biz = json!({"user": user(&p), "temperature": 36.6, "symptoms": "1", "highRiskStay": "2", "contactHistory": "2", "declareRegion": "330106", "declareTime": now});
    let first = c.seal(ServiceName::DeclareHealth, &biz).unwrap();
    let twin = c
        .reseal_with_request_id(ServiceName::DeclareHealth, &biz, &first.envelope.request_id)
        .unwrap();
    let calls = sim.requests();
    let (a, b) = tokio::join!(
        c.send(ServiceName::DeclareHealth, &first),
        c.send(ServiceName::DeclareHealth, &twin)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((code(&a), code(&b)), ("0".into(), "0".into()));
    assert_eq!(a.biz, b.biz, "both get the first answer");
    assert_eq!(
        sim.requests(),
        calls + 1,
        "one declaration reached the region"
    );
    assert_eq!(fx.gw.in_flight_len(), 0, "nothing left in flight");
}
