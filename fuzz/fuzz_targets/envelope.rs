//! Fuzzes the envelope parser and opener.
//!
//! The first input byte picks a mode; the rest is the body:
//! - even: the body as received from the network, through `open_request` (strict JSON, field
//!   rules, signature) and the client's `open_response`;
//! - odd: the body is parsed as a JSON object and signed here as the client would sign it
//!   (HMAC-SM3 when its `signType` says so, SM2 otherwise), so that arbitrary parameter values
//!   reach the checks after the signature: freshness, the nonce store, `encKey` and
//!   `bizContent` decryption.
//!
//! The contract under test: any input gives `Ok` or `Err`, never a panic, and an opened
//! request's content is a JSON object. Every body is also parsed by
//! `national::validate::parse_unique`, which must agree with `serde_json`.
//!
//! Run: `cargo +nightly fuzz run envelope fuzz/corpus/envelope fuzz/seeds/envelope -- -max_total_time=120`
//! (new inputs go to the first, git-ignored, directory; `fuzz/seeds/envelope` holds hand-made envelopes).

#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hutong::crypto::{DecryptionKey, MacKey, SigningKey, Sm4Key};
use hutong::envelope::{
    ClientCredentials, EnvelopeLimits, MemoryNonceStore, OpenContext, Session, canonical_string,
    open_request, open_response,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// The fixed clock: a seed's timestamp `1588147200000` is inside the window.
const NOW: u64 = 1_588_147_200_000;

struct World {
    client_sk: SigningKey,
    client_mac: MacKey,
    client: ClientCredentials,
    gateway_dk: DecryptionKey,
    gateway_sk: SigningKey,
    limits: EnvelopeLimits,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        // Fixed keys: the fuzzer needs no randomness, and runs are reproducible.
        let client_sk =
            SigningKey::from_hex("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8")
                .unwrap();
        let client_mac = MacKey::from_bytes(b"fuzzing MAC key, 32 bytes long..").unwrap();
        World {
            client: ClientCredentials {
                verifying_key: Some(client_sk.verifying_key()),
                mac_key: Some(client_mac.clone()),
                sm4_key: Some(Sm4Key::from_bytes(&[0x11; 16]).unwrap()),
                insecure_allow_plaintext: true,
            },
            client_sk,
            client_mac,
            gateway_dk: DecryptionKey::from_hex(
                "1649ab77a00637bd5e2efe283fbf353534aa7f7cb89463f208ddbc2920bb0da0",
            )
            .unwrap(),
            gateway_sk: SigningKey::from_hex(
                "128b2fa8bd433c6c068c8d803dff79792a519a55171b1b650c23661d15897263",
            )
            .unwrap(),
            limits: EnvelopeLimits::default(),
        }
    })
}

/// Signs a parameter object as the client would.
fn signed(w: &World, mut map: Map<String, Value>) -> Vec<u8> {
    map.remove("sign");
    let canonical = canonical_string(&map);
    let sig = if map.get("signType").and_then(Value::as_str) == Some("HMAC-SM3") {
        w.client_mac.tag(canonical.as_bytes()).to_vec()
    } else {
        w.client_sk.sign(canonical.as_bytes())
    };
    map.insert("sign".into(), Value::String(BASE64.encode(sig)));
    serde_json::to_vec(&map).unwrap_or_default()
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, body)) = input.split_first() else {
        return;
    };
    let w = world();
    // A fresh store per run: a nonce must not turn a later run's path into a replay.
    let nonces = MemoryNonceStore::default();
    let ctx = OpenContext {
        limits: &w.limits,
        decryption_key: Some(&w.gateway_dk),
        nonces: &nonces,
        now_ms: NOW,
    };

    // The one-pass parse of bizContent gives serde_json's value, or refuses a repeated key.
    same_as_serde_json(body);

    let body = if mode % 2 == 1 {
        match serde_json::from_slice::<Map<String, Value>>(body) {
            Ok(map) => signed(w, map),
            Err(_) => return,
        }
    } else {
        body.to_vec()
    };

    if let Ok(opened) = open_request(&body, &ctx, |_| Some(&w.client)) {
        assert!(opened.biz.is_object());
    }
    let session = Session::for_rejected_request(None);
    let gateway = w.gateway_sk.verifying_key();
    if let Ok(resp) = open_response(&body, &session, Some(&gateway), &w.limits) {
        assert!(resp.biz.is_none_or(|b| b.is_object()));
    }
});

/// `parse_unique` agrees with `serde_json::from_slice::<Value>`: the same value when both
/// parse, an error whenever serde_json has one, and otherwise only a repeated key.
fn same_as_serde_json(text: &[u8]) {
    use hutong::national::validate::{NotUnique, parse_unique};
    match (parse_unique(text), serde_json::from_slice::<Value>(text)) {
        (Ok(mine), Ok(theirs)) => assert_eq!(mine, theirs),
        (Err(NotUnique::Duplicate(_)), Ok(_)) | (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => panic!("parse_unique took what serde_json refused: {e}"),
        (Err(NotUnique::Json(e)), Ok(_)) => panic!("parse_unique refused what serde_json took: {e}"),
    }
}
