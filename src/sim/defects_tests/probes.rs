//! The probes, one per seeded defect: each sends what a conformance suite would, and
//! reduces the answer to what a conformance check would look at.

use super::*;

/// applyCodeAccess with a `sign` that does not verify.
pub(super) async fn forged_sign(h: &Harness) -> String {
    let o = Opts {
        forge_sign: true,
        ..Opts::default()
    };
    let raw = h
        .call(&h.venue, ServiceName::ApplyCodeAccess, &h.access(0), &o)
        .await;
    h.read(&raw)
}

/// A success, SM2-signed and HMAC-SM3-MACed, checked as a conforming client does.
pub(super) async fn answer_signatures(h: &Harness) -> String {
    let mut seen = Vec::new();
    for mac in [false, true] {
        let o = Opts {
            mac,
            ..Opts::default()
        };
        let raw = h
            .call(&h.venue, ServiceName::ApplyCodeAccess, &h.access(0), &o)
            .await;
        seen.push(h.read(&raw));
    }
    seen.join(", ")
}

/// An SM2-signed success, checked against the published response key.
pub(super) async fn sm2_answer(h: &Harness) -> String {
    let raw = h
        .call(
            &h.venue,
            ServiceName::ApplyCodeAccess,
            &h.access(0),
            &Opts::default(),
        )
        .await;
    h.read(&raw)
}

/// The same sealed request sent twice: the second answer.
pub(super) async fn replayed_nonce(h: &Harness) -> String {
    let sealed = h.seal(
        &h.venue,
        ServiceName::ApplyCodeAccess,
        &h.access(0),
        &Opts::default(),
    );
    let first = h.send(ServiceName::ApplyCodeAccess, &sealed).await;
    assert_eq!(h.read(&first), "0");
    let again = h.send(ServiceName::ApplyCodeAccess, &sealed).await;
    h.read(&again)
}

/// A request stamped 301 s ago, one second outside the window.
pub(super) async fn stale_timestamp(h: &Harness) -> String {
    let o = Opts {
        timestamp_ms: Some(now_ms() - 301_000),
        ..Opts::default()
    };
    let raw = h
        .call(&h.venue, ServiceName::ApplyCodeAccess, &h.access(0), &o)
        .await;
    h.read(&raw)
}

/// verifyCode's `field` against the person's `class` value: `masked` when it is masked by
/// the profile's rule, `full` when it is the value itself.
pub(super) async fn masked_field(h: &Harness, field: &str, class: PersonalClass) -> String {
    let i = h.first(Colour::Green);
    let biz = h.verified(i).await;
    let value = h.sim.with_population(|p| {
        let p = p.get(i).unwrap();
        match class {
            PersonalClass::Name => p.name.clone(),
            _ => p.id_no.clone(),
        }
    });
    let shown = biz[field].as_str().unwrap();
    if shown == value {
        "full".to_owned()
    } else if shown == mask(class, &value) {
        "masked".to_owned()
    } else {
        format!("other: {shown}")
    }
}

pub(super) async fn id_number_masking(h: &Harness) -> String {
    masked_field(h, "idNoMasked", PersonalClass::Id).await
}

pub(super) async fn name_masking(h: &Harness) -> String {
    masked_field(h, "nameMasked", PersonalClass::Name).await
}

/// verifyCode of a code of ours that expired 100 s ago (beyond the 60 s skew).
pub(super) async fn expired_code(h: &Harness) -> String {
    let now = now_secs();
    let token = h.token(&h.issuer, h.first(Colour::Green), now - 400, now - 100);
    let raw = h.verify(&token).await;
    h.read(&raw)
}

/// Five requests at once from the client limited to 1/s, burst 2: the first refusal.
pub(super) async fn over_the_rate_limit(h: &Harness) -> String {
    for _ in 0..5 {
        let raw = h
            .call(
                &h.limited,
                ServiceName::ApplyCodeAccess,
                &h.access(0),
                &Opts::default(),
            )
            .await;
        let code = h.read(&raw);
        if code != "0" {
            let retry = raw.retry_after.as_deref().unwrap_or("-");
            return format!("{code} {} retry-after {retry}", raw.status);
        }
    }
    "none refused".to_owned()
}

/// A yellow person's colour in verifyCode and in queryHealthInfo with the ticket.
pub(super) async fn yellow_person(h: &Harness) -> String {
    let verified = h.verified(h.first(Colour::Yellow)).await;
    let q = json!({"bizExtData": verified["bizExtData"]});
    let queried = h.ok(&h.venue, ServiceName::QueryHealthInfo, &q).await;
    format!(
        "verify {} query {}",
        verified["codeColor"].as_str().unwrap(),
        queried["code"]["codeColor"].as_str().unwrap()
    )
}

/// Whether verifyCode's answer has updateTime, and validates against the schema.
pub(super) async fn verify_answer_shape(h: &Harness) -> String {
    let biz = h.verified(h.first(Colour::Green)).await;
    let time = match biz.get("updateTime").and_then(Value::as_str) {
        Some(t) if t.len() >= 5 => format!("updateTime yyyy{}MM", &t[4..5]),
        Some(t) => format!("updateTime {t}"),
        None => "no updateTime".to_owned(),
    };
    let valid = if valid_answer(ServiceName::VerifyCode, &biz) {
        "valid"
    } else {
        "invalid"
    };
    format!("{time}, {valid}")
}

/// A request from an appId the simulator does not know: code and HTTP status.
pub(super) async fn unknown_app(h: &Harness) -> String {
    let stranger = TestClient::new("X9");
    let raw = h
        .call(
            &stranger,
            ServiceName::ApplyCodeAccess,
            &h.access(0),
            &Opts::default(),
        )
        .await;
    format!("{} {}", h.read(&raw), raw.status)
}

/// queryHealthInfo by the holder's app with the venue's ticket.
pub(super) async fn someone_elses_ticket(h: &Harness) -> String {
    let verified = h.verified(h.first(Colour::Green)).await;
    let q = json!({"bizExtData": verified["bizExtData"]});
    let raw = h
        .call(&h.app, ServiceName::QueryHealthInfo, &q, &Opts::default())
        .await;
    h.read(&raw)
}

/// queryHealthInfo by the venue with its own ticket, expired 10 minutes ago.
pub(super) async fn expired_ticket(h: &Harness) -> String {
    let cid = h
        .sim
        .with_population(|p| p.get(h.first(Colour::Green)).unwrap().code_id.clone());
    let ticket = h
        .tickets
        .seal(cid.as_str(), &h.venue.app_id, now_secs() - 1200, 600)
        .unwrap();
    let q = json!({"bizExtData": ticket});
    let raw = h
        .call(&h.venue, ServiceName::QueryHealthInfo, &q, &Opts::default())
        .await;
    h.read(&raw)
}

/// encType NONE from the venue, which is not a registered test client.
pub(super) async fn plaintext_from_a_production_client(h: &Harness) -> String {
    let o = Opts {
        plaintext: true,
        ..Opts::default()
    };
    let raw = h
        .call(&h.venue, ServiceName::ApplyCodeAccess, &h.access(0), &o)
        .await;
    format!("{} {}", h.read(&raw), raw.status)
}

/// verifyCode of a code for a real person, signed by an issuer outside the trust list.
pub(super) async fn untrusted_issuer(h: &Harness) -> String {
    let foreign = IssuerKey::new(
        IssuerId::parse("11000001").unwrap(),
        Kid::parse("k1").unwrap(),
        SigningKey::generate().unwrap(),
    );
    let now = now_secs();
    let token = h.token(&foreign, h.first(Colour::Green), now, now + 300);
    let raw = h.verify(&token).await;
    h.read(&raw)
}

/// Two corrections under one requestId with different content: both answers.
pub(super) async fn reused_correction_request_id(h: &Harness) -> String {
    let i = 3;
    let granted = h
        .ok(&h.app, ServiceName::ApplyCodeAccess, &h.access(i))
        .await;
    let rid = random_id().unwrap();
    let mut seen = Vec::new();
    for claimed in ["3", "2"] {
        let correct = json!({"user": user(&h.sim, i), "authCode": granted["authCode"],
            "reason": "信息有误", "items": [{"element": "vaccineDoses", "claimedValue": claimed}]});
        let o = Opts {
            request_id: Some(rid.clone()),
            ..Opts::default()
        };
        let raw = h
            .call(&h.app, ServiceName::CorrectHealthInfo, &correct, &o)
            .await;
        seen.push(format!("{} {}", h.read(&raw), raw.status));
    }
    seen.join(", ")
}

/// An error answer (unknown appId) and a success, as a conforming client reads them.
pub(super) async fn error_and_success_signatures(h: &Harness) -> String {
    let stranger = TestClient::new("X9");
    let error = h
        .call(
            &stranger,
            ServiceName::ApplyCodeAccess,
            &h.access(0),
            &Opts::default(),
        )
        .await;
    format!("error {}, success {}", h.read(&error), sm2_answer(h).await)
}

/// HTTP statuses of an envelope error (1005) and a business error (2001).
pub(super) async fn error_statuses(h: &Harness) -> String {
    let stranger = TestClient::new("X9");
    let unknown = h
        .call(
            &stranger,
            ServiceName::ApplyCodeAccess,
            &h.access(0),
            &Opts::default(),
        )
        .await;
    let nobody = json!({"user": {"idType": "10", "idNo": "11010519491231002X", "name": "张三"},
        "authType": "FACE", "authProof": "x"});
    let missing = h
        .call(
            &h.venue,
            ServiceName::ApplyCodeAccess,
            &nobody,
            &Opts::default(),
        )
        .await;
    format!(
        "{} {}, {} {}",
        h.read(&unknown),
        unknown.status,
        h.read(&missing),
        missing.status
    )
}

/// A verifyCode with no parameters at all: its code.
pub(super) async fn no_parameters(h: &Harness) -> String {
    let raw = h
        .call(
            &h.venue,
            ServiceName::VerifyCode,
            &json!({}),
            &Opts::default(),
        )
        .await;
    h.read(&raw)
}
