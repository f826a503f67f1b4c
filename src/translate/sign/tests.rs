use serde_json::json;

use super::*;
use crate::translate::SignTarget;

/// 2026-11-23 08:30:05 Beijing time.
const T: i64 = 1_795_393_805;
/// 2026-11-23 00:00:00 Beijing time.
const MIDNIGHT: i64 = 1_795_363_200;

fn at(unix_s: i64) -> Stamp<'static> {
    Stamp {
        unix_s,
        nonce: "n0nce-01",
    }
}

fn zhejiang() -> Signing {
    Signing::HmacSha256Concat {
        fields: [
            "appKey",
            "bizData",
            "deviceId",
            "format",
            "requestId",
            "timestamp",
            "version",
        ]
        .map(str::to_owned)
        .to_vec(),
        sign_field: "sign".into(),
    }
}

#[test]
fn signs_like_zhejiang_parse_jkm_and_verifies() {
    let creds = Credentials {
        id: "zj-demo-app",
        key: b"zj-demo-app",
        secret: "s3cret",
    };
    let mut msg = json!({"appKey": "zj-demo-app", "bizData": {"qrCode": "V2a1b2"}, "deviceId": "G-01",
        "format": "json", "requestId": "r-0001", "timestamp": "1795393805000", "version": "1.0"});
    assert_eq!(sign(&zhejiang(), &mut msg, &creds, &at(T)), Ok(Vec::new()));
    // Python: hmac.new(b"zj-demo-app", concatenation, hashlib.sha256).hexdigest()
    assert_eq!(
        msg["sign"],
        json!("326e007fcaa359742401aa886dc8c812c67baa21ce780cf2d65dac3febb18d08")
    );
    verify(&zhejiang(), &msg, &[], &creds, T).unwrap();
    // The same bytes spelt otherwise (`+0` parses as the byte 0x00) would be a fresh
    // one-time value for a captured request: only hex digits are read.
    let mut respelt = msg.clone();
    respelt["sign"] = json!("326e+07fcaa359742401aa886dc8c812c67baa21ce780cf2d65dac3febb18d08");
    assert_eq!(
        verify(&zhejiang(), &respelt, &[], &creds, T),
        Err(SignError::BadSignature("sign".into()))
    );
    msg["deviceId"] = json!("G-02");
    assert_eq!(
        verify(&zhejiang(), &msg, &[], &creds, T),
        Err(SignError::BadSignature("sign".into()))
    );
    msg.as_object_mut().unwrap().remove("timestamp");
    assert_eq!(
        sign(&zhejiang(), &mut msg, &creds, &at(T)),
        Err(SignError::MissingField("timestamp".into()))
    );
}

fn hubei() -> Signing {
    Signing::Md5DatePassword {
        target: SignTarget::Field("Envelope.Header.auth.pwd".into()),
        id_field: Some("Envelope.Header.auth.appId".into()),
        window_s: DEFAULT_WINDOW_S,
    }
}

const HB: Credentials<'static> = Credentials {
    id: "HB-GW-01",
    key: b"",
    secret: "s3cret",
};

#[test]
fn md5_date_password_is_keyed_by_the_beijing_date() {
    // Python: hashlib.md5(b"s3cret20261123").hexdigest()
    assert_eq!(
        md5_date_password("s3cret", T),
        "9aeb10b648796af5efc02f9fcea8e68e"
    );
    // One second before Beijing midnight is still the 22nd (16:00 UTC the day before).
    assert_eq!(
        md5_date_password("s3cret", MIDNIGHT - 1),
        "1215ca97cc5f4051acdb099df60845ac"
    );
    let mut msg = json!({"Envelope": {"Body": {"validateCode": {"qrCode": "x"}}}});
    assert_eq!(sign(&hubei(), &mut msg, &HB, &at(T)), Ok(Vec::new()));
    assert_eq!(
        msg["Envelope"]["Header"]["auth"],
        json!({"appId": "HB-GW-01", "pwd": "9aeb10b648796af5efc02f9fcea8e68e"})
    );
    verify(&hubei(), &msg, &[], &HB, T + 3600).unwrap();
    // Signed just before midnight, checked just after: within the window.
    let mut late = msg.clone();
    sign(&hubei(), &mut late, &HB, &at(MIDNIGHT - 10)).unwrap();
    verify(&hubei(), &late, &[], &HB, MIDNIGHT + 10).unwrap();
    // Yesterday's password in the afternoon is wrong.
    assert_eq!(
        verify(&hubei(), &late, &[], &HB, T + 6 * 3600),
        Err(SignError::BadSignature("Envelope.Header.auth.pwd".into()))
    );
    let other = Credentials {
        id: "HB-GW-02",
        ..HB
    };
    assert_eq!(
        verify(&hubei(), &msg, &[], &other, T),
        Err(SignError::WrongCaller("Envelope.Header.auth.appId".into()))
    );
    assert_eq!(SignError::WrongCaller(String::new()).return_code(), "1005");
}

#[test]
fn md5_date_password_can_travel_in_a_header() {
    let s = Signing::Md5DatePassword {
        target: SignTarget::Header("x-password".into()),
        id_field: None,
        window_s: 0,
    };
    let mut msg = json!({"a": 1});
    let headers = sign(&s, &mut msg, &HB, &at(T)).unwrap();
    assert_eq!(
        headers,
        vec![(
            "x-password".to_owned(),
            "9aeb10b648796af5efc02f9fcea8e68e".to_owned()
        )]
    );
    assert_eq!(msg, json!({"a": 1}));
    let upper = vec![(
        "X-Password".to_owned(),
        "9AEB10B648796AF5EFC02F9FCEA8E68E".to_owned(),
    )];
    verify(&s, &msg, &upper, &HB, T).unwrap();
    assert_eq!(
        verify(&s, &msg, &[], &HB, T),
        Err(SignError::BadSignature("x-password".into()))
    );
}

#[test]
fn xtif_headers_sign_and_verify_within_the_window() {
    let s = Signing::XtifSha256 { window_s: 180 };
    let creds = Credentials {
        id: "gd-paas-01",
        key: b"",
        secret: "tif-token",
    };
    let mut msg = json!({"data": {"qrcode": "x"}});
    let before = msg.clone();
    let headers = sign(&s, &mut msg, &creds, &at(T)).unwrap();
    assert_eq!(msg, before, "the body is not touched");
    // Python: hashlib.sha256(b"1795393805" + b"tif-token" + b"n0nce-01" + b"1795393805").hexdigest()
    let want = [
        ("x-tif-paasid", "gd-paas-01"),
        ("x-tif-timestamp", "1795393805"),
        ("x-tif-nonce", "n0nce-01"),
        (
            "x-tif-signature",
            "6b5787064dbe6eeff19b67e66edac74ee3ba75aaad01669fab3e60b23ff569de",
        ),
    ];
    assert_eq!(
        headers,
        want.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec()
    );
    verify(&s, &msg, &headers, &creds, T + 180).unwrap();
    assert_eq!(
        verify(&s, &msg, &headers, &creds, T + 181),
        Err(SignError::Stale("x-tif-timestamp".into()))
    );
    assert_eq!(SignError::Stale(String::new()).return_code(), "1004");
    let mut tampered = headers.clone();
    tampered[2].1 = "n0nce-02".into();
    assert_eq!(
        verify(&s, &msg, &tampered, &creds, T),
        Err(SignError::BadSignature("x-tif-signature".into()))
    );
    let other = Credentials {
        id: "gd-paas-02",
        ..creds.clone()
    };
    assert_eq!(
        verify(&s, &msg, &headers, &other, T),
        Err(SignError::WrongCaller("x-tif-paasid".into()))
    );
    let mut twice = headers.clone();
    twice.push(("X-Tif-Nonce".into(), "again".into()));
    assert_eq!(
        verify(&s, &msg, &twice, &creds, T),
        Err(SignError::MissingHeader("x-tif-nonce".into()))
    );
}

#[test]
fn national_envelope_is_not_signed_here() {
    let mut msg = json!({});
    assert_eq!(
        sign(&Signing::NationalSm2, &mut msg, &HB, &at(T)),
        Err(SignError::Unsupported)
    );
    assert_eq!(
        verify(&Signing::NationalSm2, &msg, &[], &HB, T),
        Err(SignError::Unsupported)
    );
    assert_eq!(sign(&Signing::None, &mut msg, &HB, &at(T)), Ok(Vec::new()));
}

#[test]
fn a_verified_message_gives_its_one_time_value_within_the_window() {
    let msg = |ts: Value| {
        json!({"appKey": "zj", "bizData": {"qrCode": "x"}, "deviceId": "D", "format": "json",
               "requestId": "req-7", "timestamp": ts, "version": "1.0"})
    };
    // Zhejiang: it signs a requestId, so the message is one-time, once the signed time
    // (epoch ms) is in the window; without a signature the requestId is the value.
    let got = one_time_value(&zhejiang(), &msg(json!((T * 1000).to_string())), &[], T);
    assert_eq!(got.unwrap().as_deref(), Some("req-7"));
    let got = one_time_value(&zhejiang(), &msg(json!(T + 299)), &[], T);
    assert_eq!(
        got.unwrap().as_deref(),
        Some("req-7"),
        "epoch seconds, at the edge"
    );
    // Signed, the value is the signature: characters moved between two signed fields
    // (the concatenation has no separator) make a fresh nonce under the same signature.
    let beijing_like = Signing::HmacSha256Concat {
        fields: ["appId", "timestamp", "nonce", "data"]
            .map(str::to_owned)
            .to_vec(),
        sign_field: "sign".into(),
    };
    let creds = Credentials {
        id: "bj",
        key: b"bj-key",
        secret: "bj-secret",
    };
    let mut first = json!({"appId": "bj", "timestamp": format!("{}123", T), "nonce": "N",
        "data": {"q": 1}});
    sign(&beijing_like, &mut first, &creds, &at(T)).unwrap();
    let mut moved = first.clone();
    moved["timestamp"] = json!(T.to_string());
    moved["nonce"] = json!("123N");
    verify(&beijing_like, &moved, &[], &creds, T).expect("the same signature verifies");
    let a = one_time_value(&beijing_like, &first, &[], T)
        .unwrap()
        .unwrap();
    let b = one_time_value(&beijing_like, &moved, &[], T)
        .unwrap()
        .unwrap();
    assert!(a.starts_with("sig:"), "{a}");
    assert_eq!(a, b, "the moved message is a replay of the first");
    for stale in [json!(((T - 301) * 1000).to_string()), json!("yesterday")] {
        let e = one_time_value(&zhejiang(), &msg(stale.clone()), &[], T).unwrap_err();
        assert_eq!(e.return_code(), "1004", "{stale}: {e}");
    }
    // A signature over neither a time nor a one-time value: nothing to record.
    let beijing = Signing::HmacSha256Concat {
        fields: vec!["data".into()],
        sign_field: "sign".into(),
    };
    assert_eq!(
        one_time_value(&beijing, &json!({"data": {}}), &[], T).unwrap(),
        None
    );
    // x-tif: the nonce header ([`verify`] checked its time).
    let headers = [(TIF_NONCE.to_owned(), "abc123".to_owned())];
    let xtif = Signing::XtifSha256 { window_s: 300 };
    assert_eq!(
        one_time_value(&xtif, &json!({}), &headers, T)
            .unwrap()
            .as_deref(),
        Some("abc123")
    );
    assert!(
        one_time_value(&xtif, &json!({}), &[], T).is_err(),
        "no nonce header"
    );
    assert_eq!(one_time_value(&hubei(), &json!({}), &[], T).unwrap(), None);
}

/// Hex HMAC-SHA256 of `text` under `key`, as a sender computes it.
fn tag_of(key: &[u8], text: &str) -> String {
    hex(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), text.as_bytes()).as_ref())
}

/// [`verify_as_sent`] of the JSON message `body`, with the text it was sent as.
fn verify_body(signing: &Signing, body: &str, creds: &Credentials<'_>) -> Result<(), SignError> {
    let msg: Value = serde_json::from_str(body).unwrap();
    verify_as_sent(
        signing,
        &msg,
        &SentText::of_json(body.as_bytes()),
        &[],
        creds,
        T,
    )
}

/// A sender signs an object field over its own JSON of it: PHP escapes `/`, Python writes
/// `\uXXXX` and spaces. The signature was checked over the gateway's compact JSON only, so
/// such a caller's every request failed with 1003.
#[test]
fn an_object_field_is_checked_over_the_text_sent() {
    let beijing = Signing::HmacSha256Concat {
        fields: ["appId", "timestamp", "nonce", "data"]
            .map(str::to_owned)
            .to_vec(),
        sign_field: "sign".into(),
    };
    let creds = Credentials {
        id: "bj",
        key: b"bj-key",
        secret: "bj-secret",
    };
    let data = r#"{"qrCode": "https:\/\/jkb.bj.example.cn\/q?c=1", "name": "\u738b"}"#;
    let tag = tag_of(creds.key, &format!("bj{T}n-1{data}bj-secret"));
    let body =
        format!(r#"{{"appId":"bj","timestamp":"{T}","nonce":"n-1","data":{data},"sign":"{tag}"}}"#);
    let msg: Value = serde_json::from_str(&body).unwrap();
    verify_body(&beijing, &body, &creds).expect("signed over the text sent");
    assert_eq!(
        verify(&beijing, &msg, &[], &creds, T),
        Err(SignError::BadSignature("sign".into())),
        "the gateway's own JSON of `data` is another text"
    );
    // Signed over the gateway's compact JSON and sent otherwise (spaces): still good.
    let mut ours = msg.clone();
    sign(&beijing, &mut ours, &creds, &at(T)).unwrap();
    let spaced = body.replace(&tag, ours["sign"].as_str().unwrap());
    verify_body(&beijing, &spaced, &creds).expect("signed over the compact text");
    // And a text that is neither is refused.
    assert_eq!(
        verify_body(&beijing, &body.replace("c=1", "c=2"), &creds),
        Err(SignError::BadSignature("sign".into()))
    );
}

/// The text as sent is looked up for top-level fields only: a dialect that signs a nested
/// `body.data` would otherwise take the signature over a top-level key spelt `body.data`
/// (a captured request's text), and act on whatever object sits at `body.data`.
#[test]
fn a_dotted_signed_field_is_not_read_from_a_key_spelt_like_it() {
    let nested = Signing::HmacSha256Concat {
        fields: vec!["body.data".into()],
        sign_field: "sign".into(),
    };
    let creds = Credentials {
        id: "x",
        key: b"k",
        secret: "s",
    };
    let captured = r#"{"q":1}"#;
    let tag = tag_of(creds.key, &format!("{captured}s"));
    let body = format!(r#"{{"body":{{"data":{{"q":2}}}},"body.data":{captured},"sign":"{tag}"}}"#);
    assert_eq!(
        verify_body(&nested, &body, &creds),
        Err(SignError::BadSignature("sign".into()))
    );
}

/// A signing field's new container goes first; one the business content made stays where
/// it is (each `put` moving its own containers forward let the last one decide).
#[test]
fn only_a_container_the_signature_creates_is_moved_first() {
    let md5 = Signing::Md5DatePassword {
        target: SignTarget::Field("Envelope.Body.op.pwd".into()),
        id_field: Some("Envelope.Header.appId".into()),
        window_s: DEFAULT_WINDOW_S,
    };
    let creds = Credentials {
        id: "hutong",
        key: b"",
        secret: "s",
    };
    let mut msg = json!({"Envelope": {"@xmlns": "urn:x", "Body": {"op": {"a": "1"}}}});
    sign(&md5, &mut msg, &creds, &at(T)).unwrap();
    let keys: Vec<&str> = msg["Envelope"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["Header", "@xmlns", "Body"], "{msg}");
    let op: Vec<&str> = msg["Envelope"]["Body"]["op"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(op, ["a", "pwd"], "{msg}");
}
