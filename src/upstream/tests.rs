//! Tests of the upstream: the breaker and budget on a paused clock, and `NationalUpstream`
//! against the real simulator on `127.0.0.1:0` (in process, real sockets).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;
use tokio::time::Instant;

use super::*;
use crate::crypto::SigningKey;
use crate::envelope::ClientCredentials;
use crate::sim::testutil::{TestClient, now_text, start_sim, upstream_to, user, verifier};
use crate::sim::{Faults, SimConfig, SimKeys};
use crate::standard::Side;
use crate::standard::{ReturnCode, ServiceName};

mod trouble;

fn breaker(failures: u32, cool_down_ms: u64) -> CircuitBreaker {
    CircuitBreaker::new(BreakerConfig {
        failure_threshold: NonZeroU32::new(failures).unwrap(),
        cool_down: Duration::from_millis(cool_down_ms),
    })
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_after_consecutive_failures_and_probes_after_the_cool_down() {
    let b = breaker(3, 1_000);
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().success();
    assert_eq!(
        b.state(),
        BreakerState::Closed,
        "a success resets the count"
    );
    for _ in 0..3 {
        b.try_acquire().unwrap().failure();
    }
    assert_eq!(b.state(), BreakerState::Open);
    assert!(b.try_acquire().is_none(), "open: fail fast");

    tokio::time::advance(Duration::from_millis(999)).await;
    assert!(b.try_acquire().is_none(), "still cooling down");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let probe = b.try_acquire().expect("one probe goes through");
    assert!(b.try_acquire().is_none(), "only one probe at a time");
    probe.failure();
    assert_eq!(b.state(), BreakerState::Open, "a failed probe reopens");

    tokio::time::advance(Duration::from_secs(1)).await;
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), BreakerState::Closed, "a good probe closes");
    assert!(b.try_acquire().is_some());
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_probe_lets_the_next_call_probe() {
    let b = breaker(1, 10);
    b.try_acquire().unwrap().failure();
    tokio::time::advance(Duration::from_millis(10)).await;
    drop(b.try_acquire().unwrap());
    assert!(
        b.try_acquire().is_some(),
        "the dropped probe freed the slot"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_budget_allows_a_share_of_calls_and_refills_each_window() {
    let budget = RetryBudget::new(RetryBudgetConfig {
        ratio: 0.1,
        min_retries: 1,
        window: Duration::from_secs(10),
    });
    for _ in 0..20 {
        budget.record_call();
    }
    let granted = (0..10).filter(|_| budget.try_retry()).count();
    assert_eq!(granted, 3, "1 minimum + 10 % of 20 calls");
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(budget.try_retry(), "the minimum is back in a new window");
    assert!(!budget.try_retry());
}

#[test]
fn errors_map_to_return_codes_and_retryability() {
    let business = |code| UpstreamError::Business {
        code,
        msg: String::new(),
    };
    let cases = [
        (UpstreamError::Timeout, ReturnCode::UpstreamTimeout, true),
        (
            UpstreamError::Connect("refused".into()),
            ReturnCode::UpstreamTimeout,
            true,
        ),
        (
            UpstreamError::CircuitOpen,
            ReturnCode::UpstreamTimeout,
            false,
        ),
        (UpstreamError::Status(503), ReturnCode::UpstreamFailed, true),
        (
            UpstreamError::Status(404),
            ReturnCode::UpstreamFailed,
            false,
        ),
        (
            UpstreamError::Garbage("x".into()),
            ReturnCode::UpstreamFailed,
            false,
        ),
        (
            business(ReturnCode::UserNotFound),
            ReturnCode::UserNotFound,
            false,
        ),
        (
            business(ReturnCode::TicketInvalid),
            ReturnCode::TicketInvalid,
            false,
        ),
        (
            business(ReturnCode::SignatureInvalid),
            ReturnCode::UpstreamFailed,
            false,
        ),
        (
            business(ReturnCode::SystemError),
            ReturnCode::UpstreamFailed,
            true,
        ),
    ];
    for (e, code, retry) in cases {
        assert_eq!((e.return_code(), e.retryable()), (code, retry), "{e}");
    }
    assert!(!business(ReturnCode::UserNotFound).is_upstream_failure());
    assert!(business(ReturnCode::SystemError).is_upstream_failure());
    // A request the gateway cannot put in the region's dialect is the gateway's fault: 9999,
    // not retried, and not held against the region's breaker (answered garbage is).
    let build = UpstreamError::Build("request cannot be signed: no deviceId".into());
    assert_eq!(
        (build.return_code(), build.retryable(), build.side()),
        (ReturnCode::SystemError, false, Side::Gateway)
    );
    assert!(!build.is_upstream_failure());
    assert!(UpstreamError::Garbage("x".into()).is_upstream_failure());
    // An answer that breaks the standard is the region's fault (9002), not retried, and one
    // record's: the breaker does not count it.
    let invalid = UpstreamError::Invalid("at user.idNo".into());
    assert_eq!(
        (invalid.return_code(), invalid.retryable(), invalid.side()),
        (ReturnCode::UpstreamFailed, false, Side::Upstream)
    );
    assert!(!invalid.is_upstream_failure());
}

#[tokio::test]
async fn happy_path_through_all_seven_services_with_sm2_and_per_request_keys() {
    // An SM2-only client that sends a fresh SM4 key per request (encKey).
    let sm2 = SigningKey::generate().unwrap();
    let mut config = SimConfig::new(
        [(
            "G1".to_owned(),
            ClientCredentials {
                verifying_key: Some(sm2.verifying_key()),
                ..ClientCredentials::default()
            },
        )]
        .into(),
    );
    config.population = 100;
    let keys = SimKeys::generate().unwrap();
    let sim = crate::sim::start(
        config,
        keys,
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let identity = ClientIdentity {
        app_id: "G1".to_owned(),
        sm2_key: Some(sm2),
        region_encryption_key: Some(sim.public_keys().encryption.clone()),
        ..ClientIdentity::default()
    };
    let up = NationalUpstream::new(NationalUpstreamConfig::new(
        "330000",
        sim.base_url(),
        identity,
        sim.public_keys().response.clone(),
    ))
    .unwrap();
    assert_eq!(up.region(), "330000");
    let user = user(&sim, 1);

    let granted = up
        .call(
            ServiceName::ApplyCodeAccess,
            &json!({"user": user, "authType": "FACE", "authProof": "ok"}),
            false,
        )
        .await
        .unwrap();
    let expires = granted["expiresIn"].as_u64().unwrap();
    assert!((1..=300).contains(&expires));
    let code = up
        .call(
            ServiceName::GenerateCode,
            &json!({"authCode": granted["authCode"], "userToken": granted["userToken"]}),
            false,
        )
        .await
        .unwrap();
    let verified = up
        .call(
            ServiceName::VerifyCode,
            &json!({"codeContent": code["codeContent"], "verifier": verifier()}),
            false,
        )
        .await
        .unwrap();
    assert_eq!(verified["codeColor"], code["codeColor"]);
    assert_eq!(verified["issuer"], "33000001");
    assert_eq!(verified["ticketExpiresIn"], 600);
    let result = verified["verifyResult"].as_str().unwrap();
    let expected = match code["codeColor"].as_str().unwrap() {
        "00" => "PASS",
        "10" => "DENY",
        _ => "WARN",
    };
    assert_eq!(result, expected);
    let info = up
        .call(
            ServiceName::QueryHealthInfo,
            &json!({"bizExtData": verified["bizExtData"], "scope": ["code", "nucleic"]}),
            false,
        )
        .await
        .unwrap();
    assert_eq!(info["code"]["codeColor"], code["codeColor"]);
    assert!(info["nucleic"]["nucleicResult"].is_string());
    assert!(info.get("vaccine").is_none(), "only the scope asked for");

    let declared = up
        .call(
            ServiceName::DeclareHealth,
            &json!({"user": user, "symptoms": "1", "highRiskStay": "2", "contactHistory": "2",
                "declareRegion": "330106", "declareTime": now_text()}),
            true,
        )
        .await
        .unwrap();
    assert!(declared["declareId"].is_string());
    let trip = up
        .call(
            ServiceName::DeclareTrip,
            &json!({"user": user, "declareTime": now_text(), "trips": [{"fromRegion": "330106",
                "toRegion": "310101", "transport": "2", "departTime": now_text()}]}),
            true,
        )
        .await
        .unwrap();
    assert_eq!(trip["riskAreaVisited"], "1");
    let corrected = up
        .call(
            ServiceName::CorrectHealthInfo,
            &json!({"user": user, "authCode": granted["authCode"], "reason": "有误",
                "items": [{"element": "vaccineDoses", "claimedValue": "3"}]}),
            true,
        )
        .await
        .unwrap();
    assert_eq!(corrected["status"], "ACCEPTED", "4001 is a success");
}

#[tokio::test]
async fn https_upstream_with_a_configured_ca() {
    let client = TestClient::new("A1");
    let certs = crate::tlsdev::DevCerts::generate(&["localhost".to_owned()], &[]).unwrap();
    let mut config = SimConfig::new([(client.app_id.clone(), client.credentials())].into());
    config.population = 20;
    config.server.tls = Some(Arc::new(
        crate::sim::server::tls_config_from_pem(
            certs.server.cert_pem.as_bytes(),
            certs.server.key_pem.as_bytes(),
        )
        .unwrap(),
    ));
    let sim = crate::sim::start(
        config,
        SimKeys::generate().unwrap(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    assert!(sim.base_url().starts_with("https://"));
    let mut up = NationalUpstreamConfig::new(
        "330000",
        format!("https://localhost:{}", sim.local_addr().port()),
        client.identity(),
        sim.public_keys().response.clone(),
    );
    up.ca_pem = Some(certs.ca.cert_pem.clone());
    let up = NationalUpstream::new(up).unwrap();
    let biz = json!({"user": user(&sim, 0), "authType": "SMS", "authProof": "1"});
    up.call(ServiceName::ApplyCodeAccess, &biz, false)
        .await
        .unwrap();
}
