//! The response direction: binding to the request, keys, and answers to rejected requests.

use super::*;

// ---------------------------------------------------------------------------------------------
// Responses.

#[test]
fn responses_are_bound_to_their_request_and_key() {
    let w = World::new();
    let gw = w.gateway_sk.verifying_key();
    let sealed = w.seal(
        "n1",
        w.sm2(),
        RequestEncryption::RegisteredKey(&w.client_sm4),
    );
    let opened = w.open(sealed.body.as_bytes()).unwrap();
    let resp = seal_response(
        &opened.session,
        &w.gateway_sk,
        ReturnCode::Success,
        "success",
        Some(&json!({"x": 1})),
        NOW,
    )
    .unwrap();

    // Another request's session: the requestId does not match.
    let other = seal_request(
        &RequestHeader {
            request_id: "other",
            ..header("n2", NOW)
        },
        &biz(),
        w.sm2(),
        RequestEncryption::RegisteredKey(&w.client_sm4),
    )
    .unwrap();
    assert_eq!(
        open_response(resp.body.as_bytes(), &other.session, Some(&gw), &w.limits).unwrap_err(),
        EnvelopeError::RequestIdMismatch
    );
    // Signed by someone else.
    assert_eq!(
        open_response(
            resp.body.as_bytes(),
            &sealed.session,
            Some(&w.client_sk.verifying_key()),
            &w.limits
        )
        .unwrap_err(),
        EnvelopeError::SignatureInvalid
    );
    // Any changed parameter.
    let original = object(&resp.body);
    for key in original.keys().filter(|k| *k != "sign") {
        let mut map = original.clone();
        let Some(Value::String(v)) = map.get_mut(key) else {
            unreachable!()
        };
        *v = match key.as_str() {
            "code" => "1002".into(),
            "signType" => "HMAC-SM3".into(),
            "bizContent" => format!("{}{}", if v.starts_with('A') { "B" } else { "A" }, &v[1..]),
            "timestamp" => (NOW + 1).to_string(),
            _ => format!("{v}x"),
        };
        let err = open_response(
            &serde_json::to_vec(&map).unwrap(),
            &sealed.session,
            Some(&gw),
            &w.limits,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                EnvelopeError::SignatureInvalid | EnvelopeError::KeyUnknown(_)
            ),
            "{key}: {err:?}"
        );
    }
    open_response(resp.body.as_bytes(), &sealed.session, Some(&gw), &w.limits).unwrap();
}

#[test]
fn answers_to_rejected_requests_verify_without_a_request_id() {
    let w = World::new();
    let gw = w.gateway_sk.verifying_key();
    let sealed = w.seal(
        "n1",
        RequestSigner::HmacSm3(&w.client_mac),
        RequestEncryption::RegisteredKey(&w.client_sm4),
    );
    let err = EnvelopeError::SignatureInvalid;
    let resp = seal_response(
        &Session::for_rejected_request(Some("bad id!")),
        &w.gateway_sk,
        err.return_code(),
        "签名验证失败",
        None,
        NOW,
    )
    .unwrap();
    assert_eq!(resp.envelope.request_id, "");
    assert_eq!(resp.envelope.sign_type, SignType::Sm2);
    let got = open_response(resp.body.as_bytes(), &sealed.session, Some(&gw), &w.limits).unwrap();
    assert_eq!(got.envelope.code, "1003");
    assert_eq!(got.biz, None);
    // ...but a success without the request's id is refused.
    let ok = seal_response(
        &Session::for_rejected_request(None),
        &w.gateway_sk,
        ReturnCode::Success,
        "",
        None,
        NOW,
    )
    .unwrap();
    assert_eq!(
        open_response(ok.body.as_bytes(), &sealed.session, Some(&gw), &w.limits).unwrap_err(),
        EnvelopeError::RequestIdMismatch
    );
}

#[test]
fn response_body_is_serde_json_of_its_envelope() {
    let w = World::new();
    let mac = RequestSigner::HmacSm3(&w.client_mac);
    let sealed = w.seal("n1", mac, RequestEncryption::RegisteredKey(&w.client_sm4));
    let opened = w.open(sealed.body.as_bytes()).unwrap();
    let rejected = Session::for_rejected_request(None);
    let biz = json!({"x": "\"quoted\"\n", "y": "地铁"});
    for session in [&opened.session, &rejected] {
        for msg in [
            "success",
            "",
            "a \"quote\" and a \\ backslash",
            "地铁站 ~<>'",
        ] {
            for biz in [None, Some(&biz)] {
                let resp =
                    seal_response(session, &w.gateway_sk, ReturnCode::BadFormat, msg, biz, NOW)
                        .unwrap();
                assert_eq!(resp.body, serde_json::to_string(&resp.envelope).unwrap());
            }
        }
    }
}

#[test]
fn a_business_content_with_a_key_twice_is_refused() {
    // The gateway (serde_json) would act on the last value; the signed plaintext also holds
    // the first, which another reader may take.
    let w = World::new();
    let gw = w.gateway_sk.verifying_key();
    let sealed = w.seal(
        "n1",
        w.sm2(),
        RequestEncryption::RegisteredKey(&w.client_sm4),
    );
    let opened = w.open(sealed.body.as_bytes()).unwrap();
    let seal = |text: &str| {
        seal_response_with(
            &opened.session,
            &w.gateway_sk,
            ReturnCode::Success,
            "success",
            Some(Biz::Json(text)),
            NOW,
        )
        .unwrap()
    };
    let twice = seal(r#"{"user":{"idNo":"A","idNo":"B"}}"#);
    let e =
        open_response(twice.body.as_bytes(), &opened.session, Some(&gw), &w.limits).unwrap_err();
    assert_eq!(e.return_code(), ReturnCode::DecryptFailed, "{e}");
    let once = seal(r#"{"user":{"idNo":"A"},"other":{"idNo":"B"}}"#);
    assert!(open_response(once.body.as_bytes(), &opened.session, Some(&gw), &w.limits).is_ok());
}
