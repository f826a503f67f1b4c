//! Properties: nothing panics, whatever arrives.

use super::*;

// ---------------------------------------------------------------------------------------------
// Properties: nothing panics, whatever arrives.

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,40}".prop_map(Value::String),
        "[A-Za-z0-9+/=]{0,80}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_envelope_object() -> impl Strategy<Value = Map<String, Value>> {
    let key = prop_oneof![
        proptest::sample::select(REQUEST_KEYS.to_vec()).prop_map(String::from),
        ".{0,10}"
    ];
    proptest::collection::btree_map(key, arb_json(), 0..14).prop_map(|m| m.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let w = World::new();
        prop_assert!(w.open(&body).is_err());
    }

    #[test]
    fn arbitrary_objects_never_panic(map in arb_envelope_object()) {
        let w = World::new();
        prop_assert!(w.open(&serde_json::to_vec(&map).unwrap()).is_err());
        // Validly signed, so the checks after the signature see the junk too.
        let _ = w.open(&w.sign_map(map));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn mutated_sealed_requests_never_panic(pos in any::<usize>(), byte in any::<u8>(), cut in any::<bool>()) {
        let w = World::new();
        let ek = w.gateway_ek();
        let sealed = w.seal("n", RequestSigner::HmacSm3(&w.client_mac), RequestEncryption::PerRequestKey(&ek));
        let mut body = sealed.body.into_bytes();
        let i = pos % body.len();
        if cut { body.truncate(i) } else { body[i] = byte }
        if let Ok(opened) = w.open(&body) {
            prop_assert_eq!(opened.biz, biz());
        }
        let session = Session::for_rejected_request(None);
        let _ = open_response(&body, &session, Some(&w.gateway_sk.verifying_key()), &w.limits);
    }
}
