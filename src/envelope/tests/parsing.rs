//! The one-pass parser (`canonical::parse_params`), held to two references:
//!
//! - a model of the field rules written from their documentation: generated bodies, mostly
//!   near-valid envelopes with a few mutations (a parameter missing, empty, repeated, of
//!   another JSON type, too long, with a forbidden character, escaped, unknown, and the
//!   order shuffled), must give the model's error, or the model's envelope and canonical
//!   string;
//! - the parser it replaced (a map of `Value`s, the rules over it, then `from_value`), kept
//!   here: on raw bytes, requests and responses, including what only a JSON reader could
//!   get wrong (invalid UTF-8, lone surrogates, escaped keys, deep nesting, the
//!   `arbitrary_precision` number placeholder), both give the same result.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::super::canonical::{Field, MaxLen};
use super::super::request::REQUEST_FIELDS;
use super::super::response::{RESPONSE_FIELDS, ResponseEnvelope, parse_response};
use super::*;

/// The configured `bizContent` limit of these tests.
const MAX_BIZ: usize = 40;

/// What the rules say of a body made of `pairs`, in order: the first failing rule's error,
/// or the canonical string and the parameters by name.
fn model(pairs: &[(String, Value)]) -> Result<(String, HashMap<String, String>), EnvelopeError> {
    // A repeated key, whatever it is.
    for (i, (k, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(other, _)| other == k) {
            return Err(EnvelopeError::DuplicateParameter);
        }
    }
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    // A required parameter absent or empty (a value of another type is there).
    for f in REQUEST_FIELDS.iter().filter(|f| f.required) {
        match get(f.name) {
            None => return Err(EnvelopeError::MissingParameter(f.name)),
            Some(Value::String(s)) if s.is_empty() => {
                return Err(EnvelopeError::MissingParameter(f.name));
            }
            Some(_) => {}
        }
    }
    // The first parameter, in the body's order, that breaks a rule.
    for (k, v) in pairs {
        let Some(f) = REQUEST_FIELDS.iter().find(|f| f.name == k) else {
            return Err(EnvelopeError::UnknownParameter);
        };
        let Value::String(s) = v else {
            return Err(EnvelopeError::NotAString(f.name));
        };
        let max = match f.max_len {
            MaxLen::Fixed(m) => m,
            MaxLen::Configured => MAX_BIZ,
        };
        if s.len() > max {
            return Err(EnvelopeError::TooLong { field: f.name, max });
        }
        if !f.alphabet.accepts(s) {
            return Err(EnvelopeError::BadFormat(f.name));
        }
    }
    let text = |name: &str| get(name).and_then(Value::as_str).unwrap_or_default();
    if EncType::parse(text("encType")).is_none() {
        return Err(EnvelopeError::BadFormat("encType"));
    }
    if SignType::parse(text("signType")).is_none() {
        return Err(EnvelopeError::BadFormat("signType"));
    }
    if text("encType") == "NONE" && !text("encKey").is_empty() {
        return Err(EnvelopeError::BadFormat("encKey"));
    }
    let mut sorted: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
        .filter(|(k, v)| *k != "sign" && !v.is_empty())
        .collect();
    sorted.sort();
    let canonical = sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let params = pairs
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    Ok((canonical, params))
}

/// The body of `pairs`, in order, repeated keys and all.
fn body(pairs: &[(String, Value)]) -> String {
    let members: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), v))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// A valid request's parameters.
fn valid() -> Vec<(String, Value)> {
    [
        ("appId", "A3300010001"),
        ("service", "verifyCode"),
        ("version", "1.0"),
        ("requestId", "r-1"),
        ("timestamp", "1588147200000"),
        ("nonce", "n_1"),
        ("encType", "SM4"),
        ("bizContent", "QUJD+/=="),
        ("signType", "HMAC-SM3"),
        ("sign", "c2lnbg=="),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), json!(v)))
    .collect()
}

fn field(i: usize) -> &'static Field {
    &REQUEST_FIELDS[i % REQUEST_FIELDS.len()]
}

#[derive(Debug, Clone)]
enum Mutation {
    Remove(usize),
    Repeat(usize),
    Set(usize, Value),
    Unknown(usize),
    Swap(usize, usize),
}

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[A-Za-z0-9._-]{1,12}".prop_map(Value::String),
        "[0-9]{1,14}".prop_map(Value::String),
        proptest::sample::select(vec![
            "SM4", "NONE", "SM2", "HMAC-SM3", "sm4", "", "a&b", "\u{41}\n"
        ])
        .prop_map(|s| json!(s)),
        (1usize..80).prop_map(|n| json!("x".repeat(n))),
        Just(Value::Null),
        Just(json!(5)),
        Just(json!(12.5)),
        Just(json!([1, [2, {"a": null}]])),
        Just(json!({"a": {"b": [true]}})),
        // An escape: the parser cannot borrow this value from the body.
        "[a-z]{0,4}".prop_map(|s| json!(format!("\u{e9}{s}\\"))),
    ]
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Repeat),
        (any::<usize>(), arb_value()).prop_map(|(i, v)| Mutation::Set(i, v)),
        any::<usize>().prop_map(Mutation::Unknown),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
    ]
}

fn apply(pairs: &mut Vec<(String, Value)>, m: &Mutation) {
    let n = pairs.len().max(1);
    match m {
        Mutation::Remove(i) if !pairs.is_empty() => {
            pairs.remove(i % n);
        }
        Mutation::Repeat(i) if !pairs.is_empty() => {
            let p = pairs[i % n].clone();
            pairs.push(p);
        }
        Mutation::Set(i, v) => {
            let name = field(*i).name;
            match pairs.iter_mut().find(|(k, _)| k == name) {
                Some(p) => p.1 = v.clone(),
                None => pairs.push((name.to_owned(), v.clone())),
            }
        }
        Mutation::Unknown(i) => pairs.insert(i % (pairs.len() + 1), ("extra".into(), json!("1"))),
        Mutation::Swap(a, b) if !pairs.is_empty() => pairs.swap(a % n, b % n),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_one_pass_parser_follows_the_rules(mutations in proptest::collection::vec(arb_mutation(), 0..4)) {
        let mut pairs = valid();
        for m in &mutations {
            apply(&mut pairs, m);
        }
        let text = body(&pairs);
        let limits = EnvelopeLimits { max_biz_content_len: MAX_BIZ, ..EnvelopeLimits::default() };
        let parsed = parse_request(text.as_bytes(), &limits);
        match (parsed, model(&pairs)) {
            (Err(e), Err(expected)) => prop_assert_eq!(e, expected, "{}", text),
            (Ok(p), Ok((canonical, params))) => {
                prop_assert_eq!(p.canonical(), canonical.as_str());
                let e = p.envelope();
                let param = |name: &str| params.get(name).cloned().unwrap_or_default();
                prop_assert_eq!(&e.app_id, &param("appId"));
                prop_assert_eq!(&e.service, &param("service"));
                prop_assert_eq!(&e.version, &param("version"));
                prop_assert_eq!(&e.timestamp, &param("timestamp"));
                prop_assert_eq!(&e.nonce, &param("nonce"));
                prop_assert_eq!(&e.request_id, &param("requestId"));
                prop_assert_eq!(&e.biz_content, &param("bizContent"));
                prop_assert_eq!(&e.sign, &param("sign"));
                prop_assert_eq!(e.enc_key.clone().unwrap_or_default(), param("encKey"));
                prop_assert_eq!(e.enc_type.as_str(), param("encType"));
                prop_assert_eq!(e.sign_type.as_str(), param("signType"));
            }
            (got, expected) => prop_assert!(false, "{text}: got {got:?}, the rules say {expected:?}"),
        }
    }
}

/// A body that is not one object, or has trailing text, is 1002 `NotAnObject`.
#[test]
fn what_is_not_one_object_is_refused() {
    let good = body(&valid());
    let limits = EnvelopeLimits::default();
    for text in [
        String::new(),
        "[]".into(),
        "5".into(),
        "\"x\"".into(),
        "{".into(),
        format!("{good} {{}}"),
        good.replacen('{', "{1:", 1),
    ] {
        assert_eq!(
            parse_request(text.as_bytes(), &limits).unwrap_err(),
            EnvelopeError::NotAnObject,
            "{text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The parser before: the reference.

/// A top-level object with no repeated key (the replaced parser's visitor).
struct UniqueKeys(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = UniqueKeys;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueKeys, A::Error> {
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    if map.contains_key(&key) {
                        return Err(de::Error::custom("duplicate"));
                    }
                    let value: Value = access.next_value()?;
                    map.insert(key, value);
                }
                Ok(UniqueKeys(map))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// The replaced parser's field rules over its map: every required parameter a non-empty
/// value (1001), then, in the map's order, nothing unknown, every value a string within its
/// length limit and alphabet (1002).
fn check_fields(
    map: &Map<String, Value>,
    fields: &[Field],
    configured_max: usize,
) -> Result<(), EnvelopeError> {
    for field in fields.iter().filter(|f| f.required) {
        match map.get(field.name) {
            None => return Err(EnvelopeError::MissingParameter(field.name)),
            Some(Value::String(s)) if s.is_empty() => {
                return Err(EnvelopeError::MissingParameter(field.name));
            }
            Some(_) => {}
        }
    }
    for (key, value) in map {
        let Some(field) = fields.iter().find(|f| f.name == key.as_str()) else {
            return Err(EnvelopeError::UnknownParameter);
        };
        let Value::String(s) = value else {
            return Err(EnvelopeError::NotAString(field.name));
        };
        let max = match field.max_len {
            MaxLen::Fixed(max) => max,
            MaxLen::Configured => configured_max,
        };
        if s.len() > max {
            return Err(EnvelopeError::TooLong {
                field: field.name,
                max,
            });
        }
        if !field.alphabet.accepts(s) {
            return Err(EnvelopeError::BadFormat(field.name));
        }
    }
    Ok(())
}

fn reference_object(
    body: &[u8],
    fields: &[Field],
    max: usize,
) -> Result<Map<String, Value>, EnvelopeError> {
    let map = match serde_json::from_slice::<UniqueKeys>(body) {
        Ok(UniqueKeys(map)) => map,
        Err(e) if e.to_string().starts_with("duplicate") => {
            return Err(EnvelopeError::DuplicateParameter);
        }
        Err(_) => return Err(EnvelopeError::NotAnObject),
    };
    check_fields(&map, fields, max)?;
    Ok(map)
}

fn reference_request(body: &[u8], max: usize) -> Result<(RequestEnvelope, String), EnvelopeError> {
    let mut map = reference_object(body, &REQUEST_FIELDS, max)?;
    for name in ["encType", "signType"] {
        let ok = map.get(name).and_then(Value::as_str).is_some_and(|v| {
            if name == "encType" {
                EncType::parse(v).is_some()
            } else {
                SignType::parse(v).is_some()
            }
        });
        if !ok {
            return Err(EnvelopeError::BadFormat(name));
        }
    }
    if map.get("encKey").and_then(Value::as_str) == Some("") {
        map.remove("encKey");
    }
    let canonical = canonical_string(&map);
    let envelope: RequestEnvelope = serde_json::from_value(Value::Object(map))
        .map_err(|_| EnvelopeError::BadFormat("envelope"))?;
    if envelope.enc_type == EncType::None && envelope.enc_key.is_some() {
        return Err(EnvelopeError::BadFormat("encKey"));
    }
    Ok((envelope, canonical))
}

fn reference_response(
    body: &[u8],
    max: usize,
) -> Result<(ResponseEnvelope, String), EnvelopeError> {
    let map = reference_object(body, &RESPONSE_FIELDS, max)?;
    if map
        .get("signType")
        .and_then(Value::as_str)
        .and_then(SignType::parse)
        .is_none()
    {
        return Err(EnvelopeError::BadFormat("signType"));
    }
    let canonical = canonical_string(&map);
    let envelope: ResponseEnvelope = serde_json::from_value(Value::Object(map))
        .map_err(|_| EnvelopeError::BadFormat("envelope"))?;
    Ok((envelope, canonical))
}

/// Both parsers over `body`, as a request and as a response: the same errors, or the same
/// envelopes and canonical strings. (The request's timestamp check comes after both.)
fn same_as_before(body: &[u8]) -> Result<(), TestCaseError> {
    let limits = EnvelopeLimits {
        max_biz_content_len: MAX_BIZ,
        ..EnvelopeLimits::default()
    };
    let now =
        parse_request(body, &limits).map(|p| (p.envelope().clone(), p.canonical().to_owned()));
    let before = reference_request(body, MAX_BIZ);
    match (&now, &before) {
        (Err(EnvelopeError::BadFormat("timestamp")), Ok(_)) => {}
        _ => prop_assert_eq!(now, before, "request {}", String::from_utf8_lossy(body)),
    }
    let now = parse_response(body, &limits);
    let before = reference_response(body, MAX_BIZ);
    prop_assert_eq!(now, before, "response {}", String::from_utf8_lossy(body));
    Ok(())
}

/// A valid response's parameters.
fn valid_response() -> Vec<(String, Value)> {
    [
        ("code", "0"),
        ("msg", "ok"),
        ("requestId", "r-1"),
        ("timestamp", "1588147200000"),
        ("nonce", "n_1"),
        ("bizContent", "QUJD"),
        ("signType", "SM2"),
        ("sign", "c2lnbg=="),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), json!(v)))
    .collect()
}

/// Raw-text edits that only a JSON reader can get wrong, at a place in the body.
fn arb_raw_edit() -> impl Strategy<Value = (usize, &'static str)> {
    (
        any::<usize>(),
        proptest::sample::select(vec![
            "<ff>",
            "\\uD800",
            "\\u0041",
            "\"",
            ",",
            ":",
            "{",
            "}",
            "\"extra\":{\"$serde_json::private::Number\":\"zz\"},",
            "\"app\\u0049d\":\"A1\",",
            "\"x\":1e999,",
            "\"x\":-0,",
        ]),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn the_parser_answers_as_the_one_it_replaced(
        response in any::<bool>(),
        mutations in proptest::collection::vec(arb_mutation(), 0..3),
        edits in proptest::collection::vec(arb_raw_edit(), 0..2),
    ) {
        let mut pairs = if response { valid_response() } else { valid() };
        for m in &mutations {
            apply(&mut pairs, m);
        }
        let mut text = body(&pairs).into_bytes();
        for (at, edit) in &edits {
            let at = at % (text.len() + 1);
            let bytes: Vec<u8> = if *edit == "<ff>" { vec![0xff] } else { edit.as_bytes().to_vec() };
            text.splice(at..at, bytes);
        }
        same_as_before(&text)?;
    }
}

#[test]
fn deep_nesting_invalid_text_and_escaped_keys_answer_as_before() {
    let good = body(&valid());
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for n in [100, 126, 127, 128, 200, 5000] {
        for key in ["extra", "nonce"] {
            cases.push(
                good.replacen('{', &format!("{{\"{key}\":{},", deep(n)), 1)
                    .into_bytes(),
            );
        }
    }
    for inner in [
        "\"\\uD800\"",
        "\"\\uDC00x\"",
        "{\"$serde_json::private::Number\":\"zz\"}",
    ] {
        cases.push(
            good.replacen('{', &format!("{{\"extra\":{inner},"), 1)
                .into_bytes(),
        );
        cases.push(
            good.replacen('{', &format!("{{\"extra\":[{inner}],"), 1)
                .into_bytes(),
        );
    }
    let mut bad_utf8 = good.replacen('{', "{\"extra\":\"", 1).into_bytes();
    let at = bad_utf8.iter().position(|b| *b == b'"').unwrap_or(0) + 10;
    bad_utf8.splice(at..at, [b'\xc3', b'"', b',']);
    cases.push(bad_utf8);
    cases.push(
        good.replacen("\"appId\"", "\"app\\u0049d\"", 1)
            .into_bytes(),
    );
    cases.push(
        good.replacen("\"nonce\"", "\"extra\":0,\"extra\":1,\"nonce\"", 1)
            .into_bytes(),
    );
    for case in &cases {
        same_as_before(case).unwrap();
    }
}

/// Many distinct unknown keys cost each one lookup in a hashed set (a scan of the keys seen
/// before each would be their square: minutes for a body at the size limit).
#[test]
fn many_unknown_keys_are_refused() {
    let members: Vec<String> = (0..50_000).map(|i| format!("\"k{i}\":0")).collect();
    let text = format!("{{{}}}", members.join(","));
    assert_eq!(
        parse_request(text.as_bytes(), &EnvelopeLimits::default()).unwrap_err(),
        EnvelopeError::MissingParameter("appId")
    );
    same_as_before(text.as_bytes()).unwrap();
}
