//! Each server-side check and its return code: 1001, 1002, 1003, 1004, 1005, 1007, 1008.

use super::*;

// ---------------------------------------------------------------------------------------------
// 1003: any single changed parameter breaks the signature.

#[test]
fn tampering_with_any_parameter_fails_the_signature() {
    let mut w = World::new();
    // The changed appId is registered too (same keys), so the signature is what fails.
    let creds = w.clients[APP].clone();
    w.clients.insert(format!("{APP}x"), creds);
    let ek = w.gateway_ek();
    for (i, enc) in [
        RequestEncryption::RegisteredKey(&w.client_sm4),
        RequestEncryption::PerRequestKey(&ek),
    ]
    .into_iter()
    .enumerate()
    {
        for (j, signer) in [
            RequestSigner::Sm2(&w.client_sk),
            RequestSigner::HmacSm3(&w.client_mac),
        ]
        .into_iter()
        .enumerate()
        {
            let sealed = w.seal(&format!("base{i}{j}"), signer, enc);
            let original = object(&sealed.body);
            for key in original.keys() {
                let mut map = original.clone();
                let Some(Value::String(v)) = map.get_mut(key) else {
                    unreachable!()
                };
                *v = match key.as_str() {
                    "timestamp" => (NOW + 1).to_string(),
                    "encType" => "NONE".into(),
                    "signType" => {
                        if v == "SM2" {
                            "HMAC-SM3".into()
                        } else {
                            "SM2".into()
                        }
                    }
                    "encKey" | "bizContent" | "sign" => {
                        // Another valid Base64 string of the same length.
                        let first = if v.starts_with('A') { "B" } else { "A" };
                        format!("{first}{}", &v[1..])
                    }
                    _ => format!("{v}x"),
                };
                if key == "encType" && map.contains_key("encKey") {
                    continue; // NONE with encKey is a format error, checked in its own test.
                }
                let body = serde_json::to_vec(&map).unwrap();
                assert_eq!(
                    w.open(&body).unwrap_err(),
                    EnvelopeError::SignatureInvalid,
                    "{key}"
                );
            }
            // Dropping encKey, or adding one, changes the signed string too.
            let mut map = original.clone();
            if map.remove("encKey").is_none() {
                let wrapped = BASE64.encode(ek.encrypt(&[7; 16]).unwrap());
                map.insert("encKey".into(), Value::String(wrapped));
            }
            assert_eq!(
                w.open(&serde_json::to_vec(&map).unwrap()).unwrap_err(),
                EnvelopeError::SignatureInvalid
            );
            // The untouched request still opens: the failures above came from the changes.
            w.open(sealed.body.as_bytes()).unwrap();
        }
    }
}

#[test]
fn signature_from_another_key_or_garbage_is_1003() {
    let w = World::new();
    let other = SigningKey::generate().unwrap();
    let sealed = w.seal(
        "n1",
        RequestSigner::Sm2(&other),
        RequestEncryption::RegisteredKey(&w.client_sm4),
    );
    assert_eq!(w.code(sealed.body.as_bytes()), "1003");
    let mut map = object(
        &w.seal(
            "n2",
            w.sm2(),
            RequestEncryption::RegisteredKey(&w.client_sm4),
        )
        .body,
    );
    for bad in ["not base64!", "AAAA", "MEQCIA=="] {
        map.insert("sign".into(), json!(bad));
        assert_eq!(w.code(&serde_json::to_vec(&map).unwrap()), "1003", "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// 1004: freshness.

#[test]
fn stale_or_future_timestamps_are_1004() {
    let w = World::new();
    let enc = RequestEncryption::RegisteredKey(&w.client_sm4);
    let skew = DEFAULT_MAX_CLOCK_SKEW_MS;
    for (i, (ts, ok)) in [
        (NOW - skew, true),
        (NOW + skew, true),
        (NOW - skew - 1, false),
        (NOW + skew + 1, false),
        (0, false),
    ]
    .into_iter()
    .enumerate()
    {
        let nonce = format!("t{i}");
        let sealed = seal_request(&header(&nonce, ts), &biz(), w.sm2(), enc).unwrap();
        let result = w.open(sealed.body.as_bytes());
        if ok {
            result.unwrap();
        } else {
            assert_eq!(result.unwrap_err(), EnvelopeError::Stale, "{ts}");
        }
    }
}

#[test]
fn replayed_nonces_are_1004_until_they_expire() {
    let w = World::new();
    let enc = RequestEncryption::RegisteredKey(&w.client_sm4);
    let sealed = w.seal("once", w.sm2(), enc);
    w.open(sealed.body.as_bytes()).unwrap();
    let again = w.open(sealed.body.as_bytes()).unwrap_err();
    assert_eq!(again, EnvelopeError::Replayed);
    assert_eq!(again.return_code(), ReturnCode::ExpiredOrReplayed);
    // The same nonce, freshly signed a little later, is still a replay...
    let later = seal_request(&header("once", NOW + 200_000), &biz(), w.sm2(), enc).unwrap();
    assert_eq!(
        w.open_at(later.body.as_bytes(), NOW + 200_000).unwrap_err(),
        EnvelopeError::Replayed
    );
    // ...until the retention window has passed.
    let t = NOW + DEFAULT_NONCE_TTL_MS;
    let much_later = seal_request(&header("once", t), &biz(), w.sm2(), enc).unwrap();
    w.open_at(much_later.body.as_bytes(), t).unwrap();
}

#[test]
fn a_request_is_a_replay_for_as_long_as_its_timestamp_is_accepted() {
    // Seen first with its timestamp at the far edge of the skew, a request is still within
    // the window twice the skew later, to the millisecond: its nonce must still be known.
    let w = World::new();
    let enc = RequestEncryption::RegisteredKey(&w.client_sm4);
    let skew = DEFAULT_MAX_CLOCK_SKEW_MS;
    let sealed = seal_request(&header("edge", NOW + skew), &biz(), w.sm2(), enc).unwrap();
    w.open_at(sealed.body.as_bytes(), NOW).unwrap();
    assert_eq!(
        w.open_at(sealed.body.as_bytes(), NOW + 2 * skew)
            .unwrap_err(),
        EnvelopeError::Replayed
    );
    // A millisecond on, its timestamp is stale.
    assert_eq!(
        w.open_at(sealed.body.as_bytes(), NOW + 2 * skew + 1)
            .unwrap_err(),
        EnvelopeError::Stale
    );
}

#[test]
fn nonce_store_is_per_app_expires_and_is_capped() {
    let store = MemoryNonceStore::new(NonceStoreConfig {
        ttl_ms: 1000,
        max_entries: 3,
        max_entries_per_app: 2,
    });
    assert_eq!(store.check_and_insert("a", "n", 0), NonceCheck::Fresh);
    assert_eq!(store.check_and_insert("a", "n", 999), NonceCheck::Replayed);
    assert_eq!(store.check_and_insert("b", "n", 0), NonceCheck::Fresh);
    // Length-prefixed: ("a", "bn") is not ("ab", "n").
    assert_eq!(store.check_and_insert("a", "bn", 0), NonceCheck::Fresh);
    assert_eq!(
        store.check_and_insert("a", "x", 0),
        NonceCheck::Full,
        "per-app cap"
    );
    assert_eq!(
        store.check_and_insert("c", "x", 0),
        NonceCheck::Full,
        "global cap"
    );
    assert_eq!(store.len(), 3);
    // At expiry every place is free again (each shard sweeps when a request reaches it, and
    // all that are due sweep before a nonce is refused at the cap), and the same nonce is
    // fresh again.
    assert_eq!(store.check_and_insert("a", "n", 1000), NonceCheck::Fresh);
    assert_eq!(store.check_and_insert("b", "m", 1000), NonceCheck::Fresh);
    assert_eq!(store.check_and_insert("c", "x", 1000), NonceCheck::Fresh);
    assert_eq!(store.len(), 3);
    assert_eq!(store.check_and_insert("d", "y", 1000), NonceCheck::Full);
    // A clock that steps back does not resurrect or lose entries.
    assert_eq!(store.check_and_insert("a", "n", 500), NonceCheck::Replayed);
}

#[test]
fn a_large_nonce_store_sweeps_expired_nonces_and_frees_their_places() {
    const N: usize = 5_000;
    let store = MemoryNonceStore::new(NonceStoreConfig {
        ttl_ms: 64_000,
        max_entries: N,
        max_entries_per_app: N,
    });
    for i in 0..N {
        assert_eq!(
            store.check_and_insert("a", &i.to_string(), 0),
            NonceCheck::Fresh
        );
    }
    assert_eq!(store.check_and_insert("a", "one more", 1), NonceCheck::Full);
    assert_eq!(
        store.check_and_insert("a", "7", 63_999),
        NonceCheck::Replayed
    );
    // All expired: the next call sweeps them, and their places are free again.
    assert_eq!(
        store.check_and_insert("a", "one more", 64_000),
        NonceCheck::Fresh
    );
    assert_eq!(store.check_and_insert("a", "7", 64_000), NonceCheck::Fresh);
    for i in 2..N {
        assert_eq!(
            store.check_and_insert("a", &format!("again {i}"), 64_000),
            NonceCheck::Fresh,
            "place {i}"
        );
    }
    assert_eq!(store.len(), N);
    assert_eq!(
        store.check_and_insert("a", "over", 64_000),
        NonceCheck::Full
    );
}

#[test]
fn the_caps_hold_across_shards_under_concurrent_inserts() {
    const THREADS: usize = 8;
    const EACH: usize = 300;
    let store = MemoryNonceStore::new(NonceStoreConfig {
        ttl_ms: 60_000,
        max_entries: 1_000,
        max_entries_per_app: 700,
    });
    let verdicts: Vec<NonceCheck> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = &store;
                s.spawn(move || {
                    // Half the threads are one client, half the other.
                    let app = if t % 2 == 0 { "a" } else { "b" };
                    (0..EACH)
                        .map(|i| store.check_and_insert(app, &format!("{t}-{i}"), 0))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let fresh = verdicts.iter().filter(|&&v| v == NonceCheck::Fresh).count();
    let full = verdicts.iter().filter(|&&v| v == NonceCheck::Full).count();
    // 2,400 tries for 1,000 places, neither client above 700 of them.
    assert_eq!((fresh, full), (1_000, THREADS * EACH - 1_000));
    assert_eq!(store.len(), 1_000);
    // Every nonce recorded is refused again; the per-client cap held.
    let mut a = 0;
    for t in 0..THREADS {
        let app = if t % 2 == 0 { "a" } else { "b" };
        for i in 0..EACH {
            if store.check_and_insert(app, &format!("{t}-{i}"), 1) == NonceCheck::Replayed {
                a += usize::from(app == "a");
            }
        }
    }
    assert!((300..=700).contains(&a), "client a holds {a}");
    // Past the window every count is back to zero: the same 2,400 tries, client a's
    // first, fill exactly 1,000 places again: a its 700, b the 300 left.
    let later = 60_001;
    let mut fresh = [0usize; 2];
    for t in (0..THREADS).step_by(2).chain((1..THREADS).step_by(2)) {
        for i in 0..EACH {
            if store.check_and_insert(["a", "b"][t % 2], &format!("{t}-{i}"), later)
                == NonceCheck::Fresh
            {
                fresh[t % 2] += 1;
            }
        }
    }
    assert_eq!((fresh[0], fresh[1]), (700, 300));
    assert_eq!(store.len(), 1_000);
}

#[test]
fn a_clock_past_what_the_nonce_store_can_hold_fails_closed() {
    let store = MemoryNonceStore::default();
    let far = u64::MAX / 2;
    assert_eq!(
        store.check_and_insert("a", "n", far),
        NonceCheck::Unavailable
    );
    assert!(store.is_empty());
}

#[test]
fn full_nonce_store_is_1007_and_retryable() {
    let mut w = World::new();
    w.nonces = MemoryNonceStore::new(NonceStoreConfig {
        max_entries: 1,
        ..NonceStoreConfig::default()
    });
    let enc = RequestEncryption::RegisteredKey(&w.client_sm4);
    w.open(w.seal("n1", w.sm2(), enc).body.as_bytes()).unwrap();
    let err = w
        .open(w.seal("n2", w.sm2(), enc).body.as_bytes())
        .unwrap_err();
    assert_eq!(err, EnvelopeError::NonceStoreFull);
    assert_eq!(err.return_code(), ReturnCode::RateLimited);
    assert!(err.retryable());
}

// ---------------------------------------------------------------------------------------------
// 1008: decryption.

#[test]
fn bad_base64_or_garbage_ciphertext_is_1008() {
    let w = World::new();
    let ek = w.gateway_ek();
    let base = object(
        &w.seal(
            "base",
            w.sm2(),
            RequestEncryption::RegisteredKey(&w.client_sm4),
        )
        .body,
    );
    let other_gateway = DecryptionKey::generate().unwrap().encryption_key();
    let cases: Vec<(&str, String)> = vec![
        ("bizContent", "not*base64".into()),
        ("bizContent", "QUJD".into()),            // 3 bytes
        ("bizContent", BASE64.encode([0u8; 32])), // bad padding
        (
            "bizContent",
            BASE64.encode(w.client_sm4.encrypt_cbc(b"not json").unwrap()),
        ),
        (
            "bizContent",
            BASE64.encode(
                Sm4Key::from_bytes(&[1; 16])
                    .unwrap()
                    .encrypt_cbc(b"{}")
                    .unwrap(),
            ),
        ),
        ("encKey", "not*base64".into()),
        ("encKey", BASE64.encode(b"garbage")),
        ("encKey", BASE64.encode(ek.encrypt(&[1; 15]).unwrap())), // 15-byte key
        (
            "encKey",
            BASE64.encode(other_gateway.encrypt(&[1; 16]).unwrap()),
        ), // to another key
    ];
    for (i, (field, value)) in cases.into_iter().enumerate() {
        let mut map = base.clone();
        map.insert("nonce".into(), json!(format!("d{i}")));
        map.insert(field.into(), Value::String(value.clone()));
        let err = w.open(&w.sign_map(map)).unwrap_err();
        assert!(
            matches!(err, EnvelopeError::DecryptFailed(_)),
            "{field}={value}: {err:?}"
        );
        assert_eq!(err.return_code(), ReturnCode::DecryptFailed);
    }
}

#[test]
fn every_failure_of_decrypted_content_is_one_answer() {
    // Bad padding, not JSON, not an object, a key twice: one error, one message. Told
    // apart, they are a padding oracle to a client replaying another's encKey.
    let w = World::new();
    let base = |name: &str| {
        object(
            &w.seal(
                name,
                w.sm2(),
                RequestEncryption::RegisteredKey(&w.client_sm4),
            )
            .body,
        )
    };
    let good = w.client_sm4.encrypt_cbc(br#"{"a":1}"#).unwrap();
    let mut bad_padding = good.clone();
    let n = bad_padding.len();
    bad_padding[n - 17] ^= 0x01; // the last byte of the block before: the padding changes
    let ciphertexts = [
        bad_padding,
        w.client_sm4.encrypt_cbc(b"not json").unwrap(),
        w.client_sm4.encrypt_cbc(b"[1,2]").unwrap(),
        w.client_sm4.encrypt_cbc(br#"{"a":1,"a":2}"#).unwrap(),
    ];
    let mut errors = Vec::new();
    for (i, c) in ciphertexts.into_iter().enumerate() {
        let mut map = base(&format!("n{i}"));
        map.insert("bizContent".into(), json!(BASE64.encode(c)));
        let e = w.open(&w.sign_map(map)).unwrap_err();
        errors.push((e.return_code(), e.to_string()));
    }
    assert_eq!(errors[0].0, ReturnCode::DecryptFailed);
    assert!(errors.iter().all(|e| *e == errors[0]), "{errors:?}");
    // And the content that does decrypt opens.
    let mut map = base("good");
    map.insert("bizContent".into(), json!(BASE64.encode(good)));
    assert!(w.open(&w.sign_map(map)).is_ok());
}

// ---------------------------------------------------------------------------------------------
// 1001, 1002, 1005: format and registration.

#[test]
fn missing_or_empty_required_parameters_are_1001() {
    let w = World::new();
    let base = object(
        &w.seal(
            "base",
            w.sm2(),
            RequestEncryption::RegisteredKey(&w.client_sm4),
        )
        .body,
    );
    for key in base.keys() {
        for empty in [false, true] {
            let mut map = base.clone();
            if empty {
                map.insert(key.clone(), json!(""));
            } else {
                map.remove(key);
            }
            let body = serde_json::to_vec(&map).unwrap();
            assert_eq!(
                w.open(&body).unwrap_err(),
                EnvelopeError::MissingParameter(leak(key)),
                "{key}"
            );
        }
    }
    // encKey is required exactly when the client has no registered SM4 key.
    let mut w = World::new();
    w.clients.get_mut(APP).unwrap().sm4_key = None;
    let sealed = w.seal(
        "n",
        w.sm2(),
        RequestEncryption::RegisteredKey(&w.client_sm4),
    );
    assert_eq!(
        w.open(sealed.body.as_bytes()).unwrap_err(),
        EnvelopeError::MissingParameter("encKey")
    );
}

#[test]
fn malformed_envelopes_are_1002() {
    let w = World::new();
    let good = w
        .seal(
            "base",
            w.sm2(),
            RequestEncryption::RegisteredKey(&w.client_sm4),
        )
        .body;
    let base = object(&good);
    let with = |key: &str, value: Value| {
        let mut map = base.clone();
        map.insert(key.into(), value);
        serde_json::to_vec(&map).unwrap()
    };
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"[]".to_vec(),
        b"\"x\"".to_vec(),
        b"{".to_vec(),
        format!("{good} {{}}").into_bytes(), // trailing data
        good.replacen('{', r#"{"nonce":"dup","#, 1).into_bytes(), // duplicate key
        with("extra", json!("1")),           // unknown parameter
        with("nonce", json!(12345)),         // not a string
        with("appId", json!(null)),
        with("nonce", json!("n".repeat(MAX_ID_LEN + 1))),
        with("requestId", json!("r".repeat(MAX_ID_LEN + 1))),
        with("sign", json!("A".repeat(MAX_SIGN_LEN + 1))),
        with("encKey", json!("A".repeat(MAX_ENC_KEY_LEN + 1))),
        with(
            "bizContent",
            json!("A".repeat(DEFAULT_MAX_BIZ_CONTENT_LEN + 4)),
        ),
        with("timestamp", json!("1588147200000.5")),
        with("timestamp", json!("15881472000001")), // 14 digits
        with("nonce", json!("a&b")),
        with("bizContent", json!("QUJD&appId=x")),
        with("appId", json!("A330 001")),
        with("encType", json!("sm4")),
        with("signType", json!("RSA")),
    ];
    for (i, body) in cases.iter().enumerate() {
        let err = w.open(body).unwrap_err();
        assert_eq!(
            err.return_code(),
            ReturnCode::BadFormat,
            "case {i}: {err:?}"
        );
    }
    // encType NONE with an encKey.
    let mut map = base.clone();
    map.insert("encType".into(), json!("NONE"));
    map.insert("encKey".into(), json!("QUJD"));
    assert_eq!(
        w.open(&serde_json::to_vec(&map).unwrap()).unwrap_err(),
        EnvelopeError::BadFormat("encKey")
    );
    // The configured limit applies to bizContent.
    let tight = EnvelopeLimits {
        max_biz_content_len: 8,
        ..EnvelopeLimits::default()
    };
    assert!(matches!(
        parse_request(good.as_bytes(), &tight).unwrap_err(),
        EnvelopeError::TooLong {
            field: "bizContent",
            max: 8
        }
    ));
}

#[test]
fn unknown_clients_and_unregistered_sign_types_are_1005() {
    let mut w = World::new();
    let mut map = object(
        &w.seal(
            "n1",
            w.sm2(),
            RequestEncryption::RegisteredKey(&w.client_sm4),
        )
        .body,
    );
    map.insert("appId".into(), json!("A9999"));
    assert_eq!(
        w.open(&w.sign_map(map)).unwrap_err(),
        EnvelopeError::UnknownApp
    );
    w.clients.get_mut(APP).unwrap().mac_key = None;
    let sealed = w.seal(
        "n2",
        RequestSigner::HmacSm3(&w.client_mac),
        RequestEncryption::RegisteredKey(&w.client_sm4),
    );
    let err = w.open(sealed.body.as_bytes()).unwrap_err();
    assert_eq!(err.return_code(), ReturnCode::UnknownApp);
}

#[test]
fn seal_refuses_values_the_gateway_would_refuse() {
    let w = World::new();
    let enc = RequestEncryption::RegisteredKey(&w.client_sm4);
    let mut h = header("n&x", NOW);
    assert!(seal_request(&h, &biz(), w.sm2(), enc).is_err());
    h.nonce = "ok";
    assert!(seal_request(&h, &json!([1]), w.sm2(), enc).is_err());
    let session = Session::for_rejected_request(None);
    assert!(
        seal_response(
            &session,
            &w.gateway_sk,
            ReturnCode::BadFormat,
            "a&b",
            None,
            NOW
        )
        .is_err()
    );
    assert!(
        seal_response(
            &session,
            &w.gateway_sk,
            ReturnCode::BadFormat,
            "line\nbreak",
            None,
            NOW
        )
        .is_err()
    );
}

#[test]
fn printable_values_refuse_ampersands_and_control_characters_anywhere() {
    use crate::envelope::canonical::Alphabet;
    let long = "A".repeat(1000);
    assert!(Alphabet::Printable.accepts(&long));
    assert!(Alphabet::Printable.accepts("地铁 ~!\"'<>"));
    for bad in ['&', '\0', '\n', '\u{1f}', '\u{7f}'] {
        for at in [0, 500, 999] {
            let mut s = long.clone();
            s.replace_range(at..at + 1, &bad.to_string());
            assert!(!Alphabet::Printable.accepts(&s), "{bad:?} at {at}");
            // The same outside ASCII.
            s.push('地');
            assert!(
                !Alphabet::Printable.accepts(&s),
                "{bad:?} at {at}, not ASCII"
            );
        }
    }
    assert!(!Alphabet::Printable.accepts("地\u{85}"));
}
