//! Round-trip properties of every shipped dialect: national → dialect (→ wire → back) →
//! national keeps every field the dialect carries, and the loss reports name exactly the
//! rest. Generators cover verifyCode, queryHealthInfo and generateCode, both directions.

use std::collections::BTreeSet;

use hutong::standard::{Direction, ServiceName};
use hutong::translate::{self, Dialect, LossKind, codec};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::shipped;

/// National leaves (dotted paths) whose values differ between two documents.
fn differing(a: &Value, b: &Value) -> BTreeSet<String> {
    let mut paths: BTreeSet<String> = leaves(a);
    paths.extend(leaves(b));
    paths
        .into_iter()
        .filter(|p| get(a, p) != get(b, p))
        .collect()
}

pub(super) fn leaves(v: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, c) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(c, &p, out);
                }
            }
            _ if !prefix.is_empty() => {
                out.insert(prefix.to_owned());
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(v, "", &mut out);
    out
}

fn get<'a>(v: &'a Value, p: &str) -> Option<&'a Value> {
    p.split('.').try_fold(v, |v, k| v.get(k))
}

/// The national paths that differ between two messages, as the loss report names them: a
/// response's outcome as `code`/`msg`, its business content by its own paths (a
/// queryHealthInfo answer has a business group `code` too, so the two are not merged).
fn changed(dir: Direction, a: &Value, b: &Value) -> BTreeSet<String> {
    match dir {
        Direction::Request => differing(a, b),
        Direction::Response => {
            let biz = |v: &Value| v.get("bizContent").cloned().unwrap_or_else(|| json!({}));
            let mut out = differing(&biz(a), &biz(b));
            for k in ["code", "msg"] {
                if a.get(k) != b.get(k) {
                    out.insert(k.to_owned());
                }
            }
            out
        }
    }
}

/// national → dialect (→ wire → back) → national keeps every field the dialect carries,
/// and the loss reports name exactly the rest; a named field that came back equal was
/// only defaulted (a map fallback that happened to land on the same value).
fn round_trip(
    d: &Dialect,
    service: ServiceName,
    dir: Direction,
    national: &Value,
) -> Result<(), TestCaseError> {
    let wire = match dir {
        Direction::Request => d.codec,
        Direction::Response => d.response_codec,
    };
    let there = translate::to_dialect(d, service, dir, national)
        .map_err(|e| TestCaseError::fail(format!("{}: to_dialect: {e}", d.id)))?;
    let bytes = codec::encode(wire, &there.body).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let on_wire = codec::decode(wire, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back = translate::to_national(d, service, dir, &on_wire)
        .map_err(|e| TestCaseError::fail(format!("{}: to_national: {e}", d.id)))?;
    let diff = changed(dir, national, &back.body);
    let losses: Vec<_> = there.losses.0.iter().chain(&back.losses.0).collect();
    prop_assert!(
        losses.iter().all(|l| l.national.is_some()),
        "{}: a dialect-only loss on a round trip: {losses:?}",
        d.id
    );
    let named: BTreeSet<String> = losses.iter().filter_map(|l| l.national.clone()).collect();
    prop_assert!(
        diff.is_subset(&named),
        "{}: changed but not reported: {:?}",
        d.id,
        diff.difference(&named).collect::<Vec<_>>()
    );
    for p in named.difference(&diff) {
        prop_assert!(
            losses
                .iter()
                .filter(|l| l.national.as_deref() == Some(p.as_str()))
                .all(|l| l.kind == LossKind::Defaulted),
            "{}: `{p}` came back intact but was reported as lost: {losses:?}",
            d.id
        );
    }
    Ok(())
}

fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop::option::of(s).boxed()
}

fn datetime() -> impl Strategy<Value = String> {
    (1990i32..2060, 1u8..=12, 1u8..=28, 0u8..24, 0u8..60, 0u8..60)
        .prop_map(|(y, mo, d, h, mi, s)| format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"))
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ,.&=+%#/?:-]{0,20}",
        "[\\u{4e00}-\\u{4e80}]{1,80}"
    ]
}

fn verify_request() -> impl Strategy<Value = Value> {
    (
        text(),
        (
            opt(text()),
            opt(text()),
            opt(text()),
            opt(text()),
            opt(text()),
        ),
        (opt("[1-6][0-9]{5}"), opt(text())),
        opt(prop_oneof![Just("VENUE"), Just("TRANSPORT")]),
        opt((350u32..420).prop_map(|t| f64::from(t) / 10.0)),
    )
        .prop_map(
            |(content, (org, code, op, phone, dev), (region, addr), scene, temp)| {
                let mut v = json!({"codeContent": content, "verifier": {}});
                let put = |v: &mut Value, path: &[&str], x: Option<Value>| {
                    if let Some(x) = x {
                        let mut cur = v;
                        for k in &path[..path.len() - 1] {
                            cur = cur
                                .as_object_mut()
                                .unwrap()
                                .entry(*k)
                                .or_insert_with(|| json!({}));
                        }
                        cur.as_object_mut()
                            .unwrap()
                            .insert(path[path.len() - 1].to_owned(), x);
                    }
                };
                put(&mut v, &["verifier", "orgName"], org.map(Value::from));
                put(&mut v, &["verifier", "orgCode"], code.map(Value::from));
                put(&mut v, &["verifier", "operatorName"], op.map(Value::from));
                put(
                    &mut v,
                    &["verifier", "operatorPhone"],
                    phone.map(Value::from),
                );
                put(&mut v, &["verifier", "deviceId"], dev.map(Value::from));
                put(&mut v, &["location", "region"], region.map(Value::from));
                put(&mut v, &["location", "address"], addr.map(Value::from));
                put(&mut v, &["scene"], scene.map(Value::from));
                put(
                    &mut v,
                    &["temperature"],
                    temp.map(|t| serde_json::from_str(&t.to_string()).unwrap()),
                );
                v
            },
        )
}

fn verify_response() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just("0"),
            Just("1006"),
            Just("2002"),
            Just("3001"),
            Just("3002"),
            Just("9002"),
            Just("9999"),
            Just("1001")
        ],
        opt(text()),
        (0usize..3, 0usize..3),
        (
            opt(text()),
            opt(text()),
            opt(datetime()),
            opt("[1-6][0-9]{5}"),
            opt("[0-9a-f]{32}"),
            opt(text()),
        ),
    )
        .prop_map(
            |(code, msg, (c, v), (name, id, time, region, ncid, issuer))| {
                let colours = ["00", "01", "10"];
                let verdicts = ["PASS", "WARN", "DENY"];
                let mut biz = json!({"verifyResult": verdicts[v], "codeColor": colours[c]});
                let b = biz.as_object_mut().unwrap();
                for (k, x) in [
                    ("nameMasked", name),
                    ("idNoMasked", id),
                    ("updateTime", time),
                    ("issuerRegion", region),
                    ("nationalCodeId", ncid),
                    ("issuer", issuer),
                ] {
                    if let Some(x) = x {
                        b.insert(k.to_owned(), Value::from(x));
                    }
                }
                let mut out = json!({"code": code, "bizContent": biz});
                if let Some(m) = msg {
                    out["msg"] = Value::from(m);
                }
                out
            },
        )
}

/// An object of the fields present, or `None` when none is.
fn object(fields: Vec<(&str, Option<Value>)>) -> Option<Value> {
    let m: serde_json::Map<String, Value> = fields
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect();
    (!m.is_empty()).then_some(Value::Object(m))
}

fn date() -> impl Strategy<Value = String> {
    (1990i32..2060, 1u8..=12, 1u8..=28).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
}

fn return_code() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("0"),
        Just("1003"),
        Just("1006"),
        Just("2001"),
        Just("3001"),
        Just("3005"),
        Just("9002"),
        Just("9999")
    ]
}

/// A national response around a business content.
fn response(code: &str, msg: Option<String>, biz: Option<Value>) -> Value {
    let mut out = json!({ "code": code });
    if let Some(m) = msg {
        out["msg"] = Value::from(m);
    }
    if let Some(b) = biz {
        out["bizContent"] = b;
    }
    out
}

fn query_request() -> impl Strategy<Value = Value> {
    (
        opt("[A-Za-z0-9.]{1,40}"),
        (
            opt(prop_oneof![Just("10"), Just("20")]),
            opt("[0-9]{17}[0-9X]"),
            opt(text()),
            opt("1[3-9][0-9]{9}"),
        ),
        opt("[a-z0-9-]{1,20}"),
        opt(prop::sample::subsequence(
            vec!["code", "nucleic", "vaccine"],
            1..=3,
        )),
    )
        .prop_map(|(ticket, (id_type, id_no, name, phone), auth, scope)| {
            object(vec![
                ("bizExtData", ticket.map(Value::from)),
                (
                    "user",
                    object(vec![
                        ("idType", id_type.map(Value::from)),
                        ("idNo", id_no.map(Value::from)),
                        ("name", name.map(Value::from)),
                        ("phone", phone.map(Value::from)),
                    ]),
                ),
                ("authCode", auth.map(Value::from)),
                ("scope", scope.map(|s| json!(s))),
            ])
            .unwrap_or_else(|| json!({"bizExtData": "t"}))
        })
}

fn query_response() -> impl Strategy<Value = Value> {
    (
        (return_code(), opt(text())),
        (
            opt(text()),
            opt(text()),
            opt(prop_oneof![Just("10"), Just("20")]),
        ),
        (
            opt(prop_oneof![Just("00"), Just("01"), Just("10")]),
            opt(datetime()),
            opt(text()),
            opt("[1-6][0-9]{5}"),
        ),
        (
            opt(prop_oneof![Just("1"), Just("2"), Just("9")]),
            opt(datetime()),
            opt(text()),
        ),
        (opt(0u8..=4), opt(date())),
        (
            opt((350u32..420).prop_map(|t| f64::from(t) / 10.0)),
            opt(datetime()),
        ),
    )
        .prop_map(
            |(
                (code, msg),
                (name, id, id_type),
                (colour, time, reason, region),
                (nr, nt, no),
                (doses, last),
                (temp, declared),
            )| {
                let s = |x: Option<String>| x.map(Value::from);
                let biz = object(vec![
                    (
                        "person",
                        object(vec![
                            ("nameMasked", s(name)),
                            ("idNoMasked", s(id)),
                            ("idType", id_type.map(Value::from)),
                        ]),
                    ),
                    (
                        "code",
                        object(vec![
                            ("codeColor", colour.map(Value::from)),
                            ("updateTime", s(time)),
                            ("colorReason", s(reason)),
                            ("issuerRegion", s(region)),
                        ]),
                    ),
                    (
                        "nucleic",
                        object(vec![
                            ("nucleicResult", nr.map(Value::from)),
                            ("nucleicTime", s(nt)),
                            ("nucleicOrg", s(no)),
                        ]),
                    ),
                    (
                        "vaccine",
                        object(vec![
                            ("vaccineDoses", doses.map(Value::from)),
                            ("vaccineLastDate", s(last)),
                        ]),
                    ),
                    (
                        "health",
                        object(vec![
                            (
                                "temperature",
                                temp.map(|t| serde_json::from_str(&t.to_string()).unwrap()),
                            ),
                            ("declareTime", s(declared)),
                        ]),
                    ),
                ]);
                response(code, msg, biz)
            },
        )
}

fn generate_request() -> impl Strategy<Value = Value> {
    (
        opt("[a-z0-9-]{1,30}"),
        opt("[a-z0-9-]{1,30}"),
        opt(prop_oneof![Just("QR"), Just("GM")]),
        opt(prop_oneof![Just("CONTENT"), Just("IMAGE"), Just("MATRIX")]),
        opt(64u32..=2048),
        opt(any::<bool>()),
    )
        .prop_map(|(token, auth, symbology, output, size, national)| {
            object(vec![
                ("userToken", token.map(Value::from)),
                ("authCode", auth.map(Value::from)),
                ("symbology", symbology.map(Value::from)),
                ("output", output.map(Value::from)),
                ("size", size.map(Value::from)),
                ("withNational", national.map(Value::from)),
            ])
            .unwrap_or_else(|| json!({"userToken": "u"}))
        })
}

fn generate_response() -> impl Strategy<Value = Value> {
    (
        (return_code(), opt(text())),
        (opt("[A-Za-z0-9+/]{4,40}"), opt(1u32..200), opt(text())),
        (
            opt(prop_oneof![Just("00"), Just("01"), Just("10"), Just("20")]),
            opt("#[0-9a-f]{6}"),
            opt(text()),
            opt(text()),
        ),
        (opt(datetime()), opt(datetime()), opt(1u32..86_400)),
    )
        .prop_map(
            |(
                (code, msg),
                (matrix, width, content),
                (colour, hex, name, id),
                (time, expire, refresh),
            )| {
                let s = |x: Option<String>| x.map(Value::from);
                let biz = object(vec![
                    ("codeContent", s(content)),
                    ("matrix", s(matrix)),
                    ("width", width.map(Value::from)),
                    ("codeColor", colour.map(Value::from)),
                    ("colorHex", s(hex)),
                    ("nameMasked", s(name)),
                    ("idNoMasked", s(id)),
                    ("updateTime", s(time)),
                    ("expireTime", s(expire)),
                    ("refreshInterval", refresh.map(Value::from)),
                ]);
                response(code, msg, biz)
            },
        )
}

/// Round trips `n` through every shipped dialect that serves `service`.
fn through_every_dialect(
    service: ServiceName,
    dir: Direction,
    n: &Value,
) -> Result<usize, TestCaseError> {
    let mut served = 0;
    for d in shipped() {
        if d.service(service).is_some() {
            round_trip(&d, service, dir, n)?;
            served += 1;
        }
    }
    Ok(served)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn verify_requests_round_trip_through_every_dialect(n in verify_request()) {
        prop_assert!(through_every_dialect(ServiceName::VerifyCode, Direction::Request, &n)? >= 6);
    }

    #[test]
    fn verify_responses_round_trip_through_every_dialect(n in verify_response()) {
        prop_assert!(through_every_dialect(ServiceName::VerifyCode, Direction::Response, &n)? >= 6);
    }

    #[test]
    fn query_requests_round_trip_through_every_dialect(n in query_request()) {
        prop_assert!(through_every_dialect(ServiceName::QueryHealthInfo, Direction::Request, &n)? >= 5);
    }

    #[test]
    fn query_responses_round_trip_through_every_dialect(n in query_response()) {
        prop_assert!(through_every_dialect(ServiceName::QueryHealthInfo, Direction::Response, &n)? >= 5);
    }

    #[test]
    fn generate_requests_round_trip_through_every_dialect(n in generate_request()) {
        prop_assert!(through_every_dialect(ServiceName::GenerateCode, Direction::Request, &n)? >= 1);
    }

    #[test]
    fn generate_responses_round_trip_through_every_dialect(n in generate_response()) {
        prop_assert!(through_every_dialect(ServiceName::GenerateCode, Direction::Response, &n)? >= 1);
    }
}
