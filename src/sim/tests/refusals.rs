//! What the simulator refuses: untrusted requests (signed answers), queries without a live ticket or authcode, codes it did not issue; its configuration's problems.

use super::*;

#[tokio::test]
async fn refuses_what_it_cannot_trust_with_signed_answers() {
    let client = TestClient::new("A1");
    let stranger = TestClient::new("A9");
    let sim = start_sim(&[&client], Faults::default()).await;
    let biz = json!({"user": user(&sim, 0), "authType": "FACE", "authProof": "x"});
    let rid = random_id().unwrap();
    let (status, code, _) = raw_call(
        &sim,
        &stranger,
        ServiceName::ApplyCodeAccess,
        &rid,
        &biz,
        false,
    )
    .await;
    assert_eq!((status, code.as_str()), (401, "1005"));
    let (_, code, _) = raw_call(
        &sim,
        &client,
        ServiceName::ApplyCodeAccess,
        &rid,
        &biz,
        true,
    )
    .await;
    assert_eq!(code, "1003", "a changed nonce breaks the signature");
    let bad = json!({"user": {"idType": "10", "idNo": "123", "name": "张三"}, "authType": "FACE", "authProof": "x"});
    let (status, code, _) = raw_call(
        &sim,
        &client,
        ServiceName::ApplyCodeAccess,
        &rid,
        &bad,
        false,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "1002"));
    let nobody = json!({"user": {"idType": "10", "idNo": "11010519491231002X", "name": "张三"},
        "authType": "FACE", "authProof": "x"});
    let (status, code, _) = raw_call(
        &sim,
        &client,
        ServiceName::ApplyCodeAccess,
        &rid,
        &nobody,
        false,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "2001"));
}

#[tokio::test]
async fn query_needs_a_live_ticket_of_the_caller_or_the_holders_authcode() {
    let venue = TestClient::new("V1");
    let app = TestClient::new("P1");
    let sim = start_sim(&[&venue, &app], Faults::default()).await;
    let venue_up = upstream_to(&sim, &venue, UpstreamPolicy::default());
    let app_up = upstream_to(&sim, &app, UpstreamPolicy::default());
    let user = user(&sim, 5);
    let access = json!({"user": user, "authType": "FACE", "authProof": "ok"});
    let granted = app_up
        .call(ServiceName::ApplyCodeAccess, &access, false)
        .await
        .unwrap();
    let token = granted["userToken"].clone();
    let auth = granted["authCode"].clone();
    let code = app_up
        .call(
            ServiceName::GenerateCode,
            &json!({"userToken": token}),
            false,
        )
        .await
        .unwrap();
    let verify = json!({"codeContent": code["codeContent"], "verifier": verifier()});
    let ticket = venue_up
        .call(ServiceName::VerifyCode, &verify, false)
        .await
        .unwrap()["bizExtData"]
        .clone();

    // The ticket is the venue's, not the app's.
    let q = json!({"bizExtData": ticket});
    let ok = venue_up
        .call(ServiceName::QueryHealthInfo, &q, false)
        .await
        .unwrap();
    assert!(
        ok["code"].get("colorReason").is_none(),
        "a venue does not learn why"
    );
    let e = app_up
        .call(ServiceName::QueryHealthInfo, &q, false)
        .await
        .unwrap_err();
    assert_eq!(e.return_code(), ReturnCode::TicketInvalid);
    let bogus = json!({"bizExtData": "33000001.AAAA"});
    let e = venue_up
        .call(ServiceName::QueryHealthInfo, &bogus, false)
        .await
        .unwrap_err();
    assert_eq!(e.return_code(), ReturnCode::TicketInvalid);

    // The holder's app reads with the authCode, and sees the reason.
    let q = json!({"user": user, "authCode": auth, "scope": ["code", "vaccine"]});
    let mine = app_up
        .call(ServiceName::QueryHealthInfo, &q, false)
        .await
        .unwrap();
    assert!(mine["code"]["colorReason"].is_string());
    assert!(mine["vaccine"]["vaccineDoses"].is_u64());
    assert!(mine["person"]["nameMasked"].as_str().unwrap().contains('*'));
    let e = venue_up
        .call(ServiceName::QueryHealthInfo, &q, false)
        .await
        .unwrap_err();
    assert_eq!(
        e.return_code(),
        ReturnCode::NotAuthorised,
        "an authCode is bound to its app"
    );
}

#[tokio::test]
async fn verify_refuses_codes_it_did_not_issue() {
    let client = TestClient::new("V1");
    let sim = start_sim(&[&client], Faults::default()).await;
    let up = upstream_to(&sim, &client, UpstreamPolicy::default());
    let foreign = IssuerKey::new(
        IssuerId::parse("11000001").unwrap(),
        Kid::parse("k1").unwrap(),
        SigningKey::generate().unwrap(),
    );
    let now = (now_ms() / 1000) as i64;
    let token = issue(
        &foreign,
        &Claims {
            cid: CodeId::parse(&"a".repeat(32)).unwrap(),
            col: Colour::Green,
            iat: now,
            exp: now + 300,
            nc: None,
        },
    )
    .unwrap();
    let e = up
        .call(
            ServiceName::VerifyCode,
            &json!({"codeContent": token, "verifier": verifier()}),
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(e.return_code(), ReturnCode::CodeIssuerUntrusted);
    let e = up
        .call(
            ServiceName::VerifyCode,
            &json!({"codeContent": "hello", "verifier": verifier()}),
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        UpstreamError::Business {
            code: ReturnCode::CodeInvalid,
            ..
        }
    ));
}

#[test]
fn config_problems_are_all_reported() {
    let mut c = SimConfig::new(Default::default());
    c.region = "999999".to_owned();
    c.code_host = "Bad Host".to_owned();
    c.faults.error_rate = 2.0;
    c.auth_code_ttl_secs = 301;
    let problems = c.problems(&Standard::embedded());
    assert_eq!(problems.len(), 6, "{problems:?}");
    assert!(
        problems.iter().any(|p| p.contains("authCode lifetime")),
        "{problems:?}"
    );
}
