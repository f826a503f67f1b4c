//! Envelope tests: helpers and round trips here; each check's return code in `checks`, the
//! response direction in `responses`, and the never-panic properties in `properties`.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;
use crate::crypto::{DecryptionKey, EncryptionKey, MacKey, SigningKey, Sm4Key};
use crate::standard::ReturnCode;

mod checks;
mod parsing;
mod properties;
mod responses;

const NOW: u64 = 1_588_147_200_000;
const APP: &str = "A3300010001";

/// One client with every kind of key, the gateway's keys, and a nonce store.
struct World {
    client_sk: SigningKey,
    client_mac: MacKey,
    client_sm4: Sm4Key,
    gateway_sk: SigningKey,
    gateway_dk: DecryptionKey,
    clients: HashMap<String, ClientCredentials>,
    nonces: MemoryNonceStore,
    limits: EnvelopeLimits,
}

impl World {
    fn new() -> Self {
        let client_sk = SigningKey::generate().unwrap();
        let client_mac = MacKey::from_bytes(b"client MAC key, 32 bytes long...").unwrap();
        let client_sm4 = Sm4Key::from_hex("00112233445566778899aabbccddeeff").unwrap();
        let creds = ClientCredentials {
            verifying_key: Some(client_sk.verifying_key()),
            mac_key: Some(client_mac.clone()),
            sm4_key: Some(client_sm4.clone()),
            insecure_allow_plaintext: false,
        };
        let mut clients = HashMap::new();
        clients.insert(APP.to_string(), creds);
        Self {
            client_sk,
            client_mac,
            client_sm4,
            gateway_sk: SigningKey::generate().unwrap(),
            gateway_dk: DecryptionKey::generate().unwrap(),
            clients,
            nonces: MemoryNonceStore::default(),
            limits: EnvelopeLimits::default(),
        }
    }

    fn gateway_ek(&self) -> EncryptionKey {
        self.gateway_dk.encryption_key()
    }

    fn ctx(&self, now_ms: u64) -> OpenContext<'_> {
        OpenContext {
            limits: &self.limits,
            decryption_key: Some(&self.gateway_dk),
            nonces: &self.nonces,
            now_ms,
        }
    }

    fn open_at(&self, body: &[u8], now_ms: u64) -> Result<OpenedRequest, EnvelopeError> {
        open_request(body, &self.ctx(now_ms), |id| self.clients.get(id))
    }

    fn open(&self, body: &[u8]) -> Result<OpenedRequest, EnvelopeError> {
        self.open_at(body, NOW)
    }

    fn code(&self, body: &[u8]) -> &'static str {
        match self.open(body) {
            Ok(_) => "0",
            Err(e) => e.return_code().as_str(),
        }
    }

    fn seal(
        &self,
        nonce: &str,
        signer: RequestSigner<'_>,
        enc: RequestEncryption<'_>,
    ) -> SealedRequest {
        seal_request(&header(nonce, NOW), &biz(), signer, enc).unwrap()
    }

    fn sm2(&self) -> RequestSigner<'_> {
        RequestSigner::Sm2(&self.client_sk)
    }

    /// Signs an arbitrary parameter object as the client would, with SM2.
    fn sign_map(&self, mut map: Map<String, Value>) -> Vec<u8> {
        map.remove("sign");
        let sig = self.client_sk.sign(canonical_string(&map).as_bytes());
        map.insert("sign".into(), Value::String(BASE64.encode(sig)));
        serde_json::to_vec(&map).unwrap()
    }
}

fn header(nonce: &str, timestamp_ms: u64) -> RequestHeader<'_> {
    RequestHeader {
        app_id: APP,
        service: "verifyCode",
        version: "1.0",
        request_id: "9f2c00000000000000000000000000aa",
        nonce,
        timestamp_ms,
    }
}

fn biz() -> Value {
    json!({"codeContent": "https://jkm.example.cn/phic/c?v=1&cid=5c1e", "scene": "TRANSPORT",
           "verifier": {"orgName": "某地铁站", "deviceId": "G-01"}, "temperature": 36.5})
}

fn object(body: &str) -> Map<String, Value> {
    serde_json::from_str(body).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Round trips.

#[test]
fn requests_and_responses_round_trip_in_every_mode() {
    let w = World::new();
    let ek = w.gateway_ek();
    let signers = [
        RequestSigner::Sm2(&w.client_sk),
        RequestSigner::HmacSm3(&w.client_mac),
    ];
    let encs = [
        RequestEncryption::RegisteredKey(&w.client_sm4),
        RequestEncryption::PerRequestKey(&ek),
    ];
    let mut n = 0;
    for signer in signers {
        for enc in encs {
            n += 1;
            let sealed = w.seal(&format!("nonce{n}"), signer, enc);
            let opened = w.open(sealed.body.as_bytes()).unwrap();
            assert_eq!(opened.biz, biz());
            assert_eq!(opened.envelope, sealed.envelope);
            assert_eq!(opened.timestamp_ms, NOW);
            assert_eq!(
                opened.envelope.enc_key.is_some(),
                matches!(enc, RequestEncryption::PerRequestKey(_))
            );

            let answer = json!({"verifyResult": "PASS", "codeColor": "00", "nameMasked": "张*"});
            let resp = seal_response(
                &opened.session,
                &w.gateway_sk,
                ReturnCode::Success,
                "success",
                Some(&answer),
                NOW + 5,
            )
            .unwrap();
            assert_eq!(resp.envelope.sign_type, sealed.envelope.sign_type);
            let gw = w.gateway_sk.verifying_key();
            let got =
                open_response(resp.body.as_bytes(), &sealed.session, Some(&gw), &w.limits).unwrap();
            assert_eq!(got.biz, Some(answer));
            assert_eq!(got.envelope.code, "0");
            assert_eq!(got.envelope.request_id, sealed.envelope.request_id);
        }
    }
}

#[test]
fn plaintext_round_trips_only_for_test_clients() {
    let mut w = World::new();
    let sealed = w.seal("n1", w.sm2(), RequestEncryption::InsecurePlaintext);
    assert_eq!(sealed.envelope.enc_type, EncType::None);
    assert_eq!(
        w.open(sealed.body.as_bytes()).unwrap_err(),
        EnvelopeError::PlaintextNotAllowed
    );
    assert_eq!(
        EnvelopeError::PlaintextNotAllowed.return_code(),
        ReturnCode::NoPermission
    );

    w.clients.get_mut(APP).unwrap().insecure_allow_plaintext = true;
    let sealed = w.seal("n2", w.sm2(), RequestEncryption::InsecurePlaintext);
    let opened = w.open(sealed.body.as_bytes()).unwrap();
    assert_eq!(opened.biz, biz());
    assert!(!opened.session.is_encrypted());
    let resp = seal_response(
        &opened.session,
        &w.gateway_sk,
        ReturnCode::Success,
        "ok",
        Some(&json!({"a": 1})),
        NOW,
    )
    .unwrap();
    let got = open_response(
        resp.body.as_bytes(),
        &sealed.session,
        Some(&w.gateway_sk.verifying_key()),
        &w.limits,
    )
    .unwrap();
    assert_eq!(got.biz, Some(json!({"a": 1})));
}

#[test]
fn canonical_string_follows_the_profile_rule() {
    let map = object(
        r#"{"b":"2","a":"1","sign":"x","c":"","d":5,"B":"3","e":null,"f":{"g":"h"},"a_":"x&y"}"#,
    );
    assert_eq!(canonical_string(&map), "B=3&a=1&a_=x&y&b=2");
    assert_eq!(canonical_string(&Map::new()), "");
}

#[test]
fn sealed_request_canonical_string_is_what_is_signed() {
    let w = World::new();
    let sealed = w.seal(
        "n1",
        w.sm2(),
        RequestEncryption::RegisteredKey(&w.client_sm4),
    );
    let parsed = parse_request(sealed.body.as_bytes(), &w.limits).unwrap();
    let e = &sealed.envelope;
    let want = format!(
        "appId={APP}&bizContent={}&encType=SM4&nonce=n1&requestId={}&service=verifyCode&signType=SM2&timestamp={NOW}&version=1.0",
        e.biz_content, e.request_id
    );
    assert_eq!(parsed.canonical(), want);
    let sig = BASE64.decode(&e.sign).unwrap();
    w.client_sk
        .verifying_key()
        .verify(want.as_bytes(), &sig)
        .unwrap();
}

fn leak(s: &str) -> &'static str {
    REQUEST_KEYS.iter().find(|k| **k == s).copied().unwrap()
}

const REQUEST_KEYS: [&str; 11] = [
    "appId",
    "service",
    "version",
    "requestId",
    "timestamp",
    "nonce",
    "encType",
    "encKey",
    "bizContent",
    "signType",
    "sign",
];

/// An envelope whose `encKey` and `bizContent` were made by OpenSSL 3.0: `pkeyutl -encrypt`
/// of sixteen 0x22 bytes to the gateway key below, and `enc -sm4-cbc` under that key with IV
/// 000102…0f. Signed here; hutong opens it.
#[test]
fn envelope_encrypted_by_openssl_opens() {
    let mut w = World::new();
    w.gateway_dk =
        DecryptionKey::from_hex("1649ab77a00637bd5e2efe283fbf353534aa7f7cb89463f208ddbc2920bb0da0")
            .unwrap();
    let map = object(&format!(
        r#"{{"appId":"{APP}","service":"verifyCode","version":"1.0","requestId":"9f2c",
            "timestamp":"{NOW}","nonce":"b7e1","encType":"SM4","signType":"SM2",
            "encKey":"MHgCIHFkD6h4SA4UcyHaH9nIhe1pb+umd0jv404vFnjZ4htmAiB9OVPFsc6e6lxBpCbG80oZ3Sz9xXj9DJDyXd2gz9AG6gQgqprXxwzTCtCeODc3N4xWX+K1rkCJOgSCXxB9ZTEIHJ4EEL5QNB2EhHyQUlO6wx9Pe2s=",
            "bizContent":"AAECAwQFBgcICQoLDA0OD2nIQApy2r8mseklUamDSGQKoru8S1jNJyJZltrTlcIx"}}"#
    ));
    let opened = w.open(&w.sign_map(map)).unwrap();
    assert_eq!(opened.biz, json!({"scene": "TRANSPORT"}));
    assert!(opened.session.is_encrypted());
}

#[test]
fn a_refusal_before_opening_answers_in_the_requests_sign_type_when_it_can() {
    let w = World::new();
    let client = &w.clients[APP];
    let enc = RequestEncryption::RegisteredKey(&w.client_sm4);
    // HMAC-SM3 request, client with a MAC key: an HMAC-SM3 answer, no business key.
    let hmac = w.seal("r1", RequestSigner::HmacSm3(&w.client_mac), enc);
    let parsed = parse_request(hmac.body.as_bytes(), &w.limits).unwrap();
    let s = parsed.refusal_session(client);
    assert_eq!(s.sign_type(), SignType::HmacSm3);
    assert!(!s.is_encrypted());
    assert_eq!(s.request_id(), hmac.envelope.request_id);
    // A client without a MAC key gets the gateway's SM2 signature.
    let no_mac = ClientCredentials {
        mac_key: None,
        ..client.clone()
    };
    assert_eq!(parsed.refusal_session(&no_mac).sign_type(), SignType::Sm2);
    // An SM2 request: SM2.
    let sm2 = w.seal("r2", w.sm2(), enc);
    let parsed = parse_request(sm2.body.as_bytes(), &w.limits).unwrap();
    assert_eq!(parsed.refusal_session(client).sign_type(), SignType::Sm2);
}
