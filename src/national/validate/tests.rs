use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::standard::{Direction, ServiceName, Standard};

const AT: i64 = 1_795_406_400; // 2026-11-23 12:00:00 Beijing

fn cx() -> Context {
    Context { now_unix: AT }
}

#[test]
fn reports_every_violation_with_its_path() {
    let s = Standard::embedded();
    let msg = json!({"codeContent": "x", "verifier": {"orgName": "", "deviceId": 7}, "location": {"region": "999999"}});
    let r = validate_value(&s, ServiceName::VerifyCode, Direction::Request, &msg, &cx());
    let got: Vec<(&str, &str)> = r
        .violations
        .iter()
        .map(|v| (v.path.as_str(), v.code.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("verifier.orgName", "1001"),
            ("verifier.deviceId", "1002"),
            ("location.region", "1002")
        ]
    );
    assert_eq!(r.return_code(), ReturnCode::MissingParameter);
}

#[test]
fn never_quotes_a_personal_value_in_a_message() {
    let s = Standard::embedded();
    let id = "110105194912310021";
    let msg = json!({"user": {"idType": "10", "idNo": id, "name": "张三丰"}, "authCode": "a"});
    let r = validate_value(
        &s,
        ServiceName::QueryHealthInfo,
        Direction::Request,
        &msg,
        &cx(),
    );
    assert!(!r.is_valid());
    for v in &r.violations {
        assert!(
            !v.message.contains(id) && !v.message.contains("张三丰"),
            "{}",
            v.message
        );
    }
}

#[test]
fn stops_at_the_violation_limit_and_says_so() {
    let s = Standard::embedded();
    let trips: Vec<_> = (0..20).map(|_| json!({"fromRegion": "x", "toRegion": "y", "transport": "z", "departTime": "w", "arriveTime": "v", "a": 1})).collect();
    let msg = json!({"user": {"idType": "10", "idNo": "1", "name": "n"}, "trips": trips, "declareTime": "t"});
    let r = validate_value(
        &s,
        ServiceName::DeclareTrip,
        Direction::Request,
        &msg,
        &cx(),
    );
    assert_eq!(r.violations.len(), MAX_VIOLATIONS);
    assert!(r.truncated);
}

#[test]
fn a_missing_field_past_the_limit_still_makes_the_code_1001() {
    // A hundred unknown fields come first in the walk; the missing codeContent after them.
    let s = Standard::embedded();
    let mut msg = serde_json::Map::new();
    for i in 0..150 {
        msg.insert(format!("extra{i:03}"), json!(1));
    }
    msg.insert("verifier".into(), json!({"orgName": "站", "deviceId": "G"}));
    let r = validate_value(
        &s,
        ServiceName::VerifyCode,
        Direction::Request,
        &Value::Object(msg),
        &cx(),
    );
    assert!(r.truncated);
    assert_eq!(r.violations.len(), MAX_VIOLATIONS);
    assert_eq!(
        r.return_code(),
        ReturnCode::MissingParameter,
        "{:?}",
        r.violations.last()
    );
}

#[test]
fn an_international_number_of_eleven_characters_is_a_phone_number() {
    for (phone, ok) in [
        ("+6591234567", true),
        ("13812345678", true),
        ("23812345678", false),
        ("65123456", true),
    ] {
        assert_eq!(leaf::is_phone(phone), ok, "{phone}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let s = Standard::embedded();
        for svc in ServiceName::ALL {
            let _ = validate_bytes(&s, svc, Direction::Request, &bytes, &cx());
        }
    }

    #[test]
    fn arbitrary_json_never_panics_and_always_names_a_code(v in arb_json()) {
        let s = Standard::embedded();
        for svc in ServiceName::ALL {
            for d in [Direction::Request, Direction::Response] {
                let r = validate_value(&s, svc, d, &v, &cx());
                for x in &r.violations {
                    prop_assert!(matches!(x.code, ReturnCode::MissingParameter | ReturnCode::BadFormat));
                }
            }
        }
    }
}

/// JSON values whose keys are drawn from the schemas' own names, so the walker goes deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "user",
        "idType",
        "idNo",
        "name",
        "trips",
        "fromRegion",
        "departTime",
        "arriveTime",
        "highRiskStay",
        "highRiskRegions",
        "temperature",
        "verifier",
        "codeContent",
        "scope",
        "items",
        "bizExtData",
        "x",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[0-9A-Za-z^ :-]{0,20}".prop_map(Value::from),
        Just(json!("10")),
        Just(json!("11010519491231002X")),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec((keys.clone(), inner), 0..8).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

#[test]
fn a_log_line_names_no_key_the_message_chose() {
    let s = Standard::embedded();
    let id = "110105194912310021";
    // Unknown keys at the top and inside a known object, one of them an ID number, and a
    // key with a dot in it: the log shows where each was, not what it was.
    let msg = json!({
        "codeContent": "x",
        id: "1",
        "verifier": {"orgName": "某地铁站", "deviceId": "G-01", "张三.110105": 1},
    });
    let r = validate_value(&s, ServiceName::VerifyCode, Direction::Request, &msg, &cx());
    // The caller's own report keeps the keys (it goes back to the caller who sent them).
    assert!(r.violations.iter().any(|v| v.path == id));
    let logged = r.paths_for_log();
    assert!(!logged.contains(id) && !logged.contains("110105") && !logged.contains("张三"));
    assert_eq!(
        logged,
        "(a field of its own), verifier.(a field of its own)"
    );
    // A path the schema named is shown whole.
    let msg = json!({"codeContent": "x", "verifier": {"orgName": "", "deviceId": 7}});
    let r = validate_value(&s, ServiceName::VerifyCode, Direction::Request, &msg, &cx());
    assert_eq!(r.paths_for_log(), "verifier.orgName, verifier.deviceId");
}

#[test]
fn a_log_line_shows_ten_paths_and_how_many_more() {
    let s = Standard::embedded();
    let mut msg = serde_json::Map::new();
    msg.insert("codeContent".into(), json!("x"));
    for i in 0..25 {
        msg.insert(format!("k{i}"), json!(i));
    }
    let r = validate_value(
        &s,
        ServiceName::VerifyCode,
        Direction::Request,
        &Value::Object(msg),
        &cx(),
    );
    let logged = r.paths_for_log();
    assert_eq!(logged.matches("(a field of its own)").count(), LOGGED_PATHS);
    // 25 unknown fields and the missing verifier: 26 violations, ten shown.
    assert_eq!(r.violations.len(), 26);
    assert!(logged.ends_with(" and 16 more"), "{logged}");
}
