//! Fuzzes the PHIC1 code parsers and the offline verifier (`src/code/`).
//!
//! The first input byte picks a mode (`byte % 4`; the seeds use the ASCII digits `0`-`3`),
//! the rest is the body:
//! - `0` raw: the body (lossy UTF-8) is scanned content, fed as is to `token::parse`,
//!   `CodeUrl::parse`, `Phic1Format::recognise`, `recognise_any` and
//!   `Verifier::verify_content`;
//! - `1` payload: the body bytes are the payload, base64url-encoded and signed here, so any
//!   payload JSON reaches claim validation, the trust lookup and the time checks;
//! - `2` merge: the body is a JSON object merged over the payload of a valid token (its
//!   `kid` set to the signer's; a `null` value removes a field), then signed: small edits
//!   of a valid payload;
//! - `3` splice: the next byte picks a part of a valid token (or of its URL form) to
//!   replace with the rest of the body: the payload segment, the signature segment, the
//!   DER signature bytes, the URL query, text after the token, text before it.
//!
//! In modes `1` and `2` the signing key is `(first byte / 4) % 4`: the trusted active key,
//! a key revoked in the trust list, a key whose validity ended years ago, or a key the
//! trust list does not know (under the active key's `kid`).
//!
//! Every string built is also tried in the URL form (`pc=`), both with hints copied from
//! the token and with fixed hints that may not match it.
//!
//! The contract under test: no input panics, and
//! - `recognise_any([Phic1Format])` agrees with `Phic1Format::recognise`;
//! - a parsed token has `iat >= 0` and `exp > iat`, and its signed part is a prefix;
//! - a parsed URL prints to a URL that parses back to the same value (when that fits in
//!   `MAX_CONTENT_BYTES`);
//! - content that verifies is recognised, was signed by the active key, is in its time
//!   window, and (URL form) its hints match the token;
//! - `issue` on a parsed token's claims gives a token that parses back to them.
//!
//! Run: `cargo +nightly fuzz run phic1 corpus/phic1 seeds/phic1 -- -max_total_time=600`
//! from `fuzz/` (new inputs go to the first, git-ignored, directory).

#![no_main]

use std::sync::{Arc, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use hutong::code::token::{self, PREFIX};
use hutong::code::{
    Claims, CodeError, CodeFormat, CodeId, CodeUrl, Colour, FixedClock, IssuerKey,
    MAX_CONTENT_BYTES, Phic1Format, Verifier, VerifierConfig, issue, recognise_any,
};
use hutong::crypto::SigningKey;
use hutong::standard::ReturnCode;
use hutong::trust::{Issuer, IssuerId, KeyStatus, Kid, TrustList, TrustRegistry, TrustedKey};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// The fixed clock (2024-04-24T23:06:40Z); the seeds' tokens are valid at it.
const NOW: i64 = 1_714_000_000;
const DAY: i64 = 86_400;
const ISS: &str = "33000001";
const HOST: &str = "code.example.cn";
/// `cid` of the valid token, and the fixed URL hint.
const CID: &str = "0123456789abcdef0123456789abcdef";
/// Fixed signing keys: active, revoked, expired, unknown. The fuzzer needs no randomness,
/// and runs are reproducible (SM2 signing here is deterministic, RFC 6979).
const KEY_HEX: [&str; 4] = [
    "7c1e5a0b3d9f4e2a8b6c0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c",
    "2b8e4f1a6c3d5e7f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f",
    "5d3c2b1a0f9e8d7c6b5a49382716054f3e2d1c0b0a09f8e7d6c5b4a392817160",
    "1f2e3d4c5b6a79880a9b8c7d6e5f40312233445566778899aabbccddeeff0011",
];

struct World {
    verifier: Verifier,
    config: VerifierConfig,
    /// Signers: active, revoked, expired, unknown (same `kid` as active).
    keys: [IssuerKey; 4],
    /// A valid token signed by the active key.
    token: String,
    /// Its payload.
    payload: Map<String, Value>,
}

fn key(kid: &str, hex: &str) -> IssuerKey {
    IssuerKey::new(
        IssuerId::parse(ISS).unwrap(),
        Kid::parse(kid).unwrap(),
        SigningKey::from_hex(hex).unwrap(),
    )
}

fn entry(k: &IssuerKey, not_before: i64, not_after: i64, status: KeyStatus) -> TrustedKey {
    TrustedKey {
        kid: k.kid().clone(),
        public_key: k.verifying_key(),
        not_before,
        not_after,
        status,
    }
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let [active, revoked, expired, unknown] = [0, 1, 2, 3].map(|i| {
            key(
                ["fz-active", "fz-revoked", "fz-2019", "fz-active"][i],
                KEY_HEX[i],
            )
        });
        let id = IssuerId::parse(ISS).unwrap();
        let list = TrustList {
            version: 1,
            issued_at: NOW - DAY,
            issuers: vec![Issuer {
                region: id.region(),
                name: "模糊测试发码方".into(),
                id,
                keys: vec![
                    entry(&active, NOW - 30 * DAY, NOW + 30 * DAY, KeyStatus::Active),
                    entry(&revoked, NOW - 30 * DAY, NOW + 30 * DAY, KeyStatus::Revoked),
                    entry(
                        &expired,
                        NOW - 2000 * DAY,
                        NOW - 1000 * DAY,
                        KeyStatus::Active,
                    ),
                ],
            }],
        };
        let registry = Arc::new(TrustRegistry::new(list).unwrap());
        let config = VerifierConfig::default();
        let verifier = Verifier::new(registry, Arc::new(FixedClock::new(NOW)), config.clone());
        let claims = Claims {
            cid: CodeId::parse(CID).unwrap(),
            col: Colour::Green,
            iat: NOW - 60,
            exp: NOW + 240,
            nc: Some(CodeId::parse("fedcba9876543210fedcba9876543210").unwrap()),
        };
        let token = issue(&active, &claims).unwrap();
        let payload_b64 = token[PREFIX.len()..].split('.').next().unwrap();
        let payload = serde_json::from_slice(&B64URL.decode(payload_b64).unwrap()).unwrap();
        World {
            verifier,
            config,
            keys: [active, revoked, expired, unknown],
            token,
            payload,
        }
    })
}

/// `PHIC1.` + base64url(payload) + `.` + base64url(signature by `key`).
fn sign_raw(key: &SigningKey, payload: &[u8]) -> String {
    let mut t = String::from(PREFIX);
    B64URL.encode_string(payload, &mut t);
    let sig = key.sign(t.as_bytes());
    t.push('.');
    B64URL.encode_string(sig, &mut t);
    t
}

/// The signing key of signer `i` (`IssuerKey` keeps its own private).
fn signing_key(i: usize) -> &'static SigningKey {
    static KEYS: OnceLock<[SigningKey; 4]> = OnceLock::new();
    &KEYS.get_or_init(|| KEY_HEX.map(|h| SigningKey::from_hex(h).unwrap()))[i]
}

/// A PHIC1 URL carrying `token` with fixed hints (which need not match the token).
fn fixed_url(token: &str) -> String {
    format!("https://{HOST}/phic/c?v=1&cid={CID}&iss={ISS}&pc={token}")
}

/// Every check on one piece of scanned content.
fn check(w: &World, s: &str) {
    // token::parse
    let parsed = token::parse(s);
    if let Ok(p) = &parsed {
        assert!(s.starts_with(PREFIX));
        assert!(s.starts_with(p.signed));
        assert!(p.claims.iat >= 0 && p.claims.exp > p.claims.iat);
        // issue() on the same claims parses back to them (when issue accepts them).
        let k = &w.keys[0];
        let claims = Claims {
            cid: p.claims.cid.clone(),
            col: p.claims.col,
            iat: p.claims.iat,
            exp: p.claims.exp,
            nc: p.claims.nc.clone(),
        };
        if let Ok(t) = issue(k, &claims) {
            let back = token::parse(&t).expect("issued token parses").claims;
            assert_eq!(back.cid, claims.cid);
            assert_eq!(back.col, claims.col);
            assert_eq!((back.iat, back.exp), (claims.iat, claims.exp));
            assert_eq!(back.nc, claims.nc);
            assert_eq!((&back.iss, &back.kid), (k.issuer(), k.kid()));
        }
    }

    // CodeUrl::parse, and the URL it prints.
    let url = CodeUrl::parse(s);
    if let Ok(u) = &url {
        let printed = u.to_url();
        if printed.len() <= MAX_CONTENT_BYTES {
            assert_eq!(CodeUrl::parse(&printed).as_ref(), Ok(u), "URL round trip");
        }
        if let Some(pc) = &u.pc {
            assert!(pc.starts_with(PREFIX));
            let _ = CodeUrl::for_token(&u.host, pc);
        }
    }

    // Recognition.
    let rec = Phic1Format.recognise(s);
    let any = recognise_any(&[&Phic1Format as &dyn CodeFormat], s);
    assert_eq!(any.as_ref().ok(), rec.as_ref());
    if s.len() <= MAX_CONTENT_BYTES && s.starts_with(PREFIX) {
        assert_eq!(rec.as_ref().and_then(|r| r.token.as_deref()), Some(s));
    }
    if let Ok(u) = &url {
        let r = rec.as_ref().expect("a parsed URL is recognised");
        assert_eq!(r.host.as_deref(), Some(u.host.as_str()));
        assert_eq!(r.token, u.pc);
    }

    // Verification.
    match w.verifier.verify_content(s) {
        Ok(v) => {
            let c = &v.claims;
            let skew = i64::from(w.config.clock_skew_secs);
            assert!(
                c.iat <= NOW + skew && NOW - skew < c.exp,
                "verified outside its window"
            );
            assert!(c.exp - c.iat <= i64::from(w.config.max_lifetime_secs));
            assert_eq!(
                c.kid,
                *w.keys[0].kid(),
                "verified under a key other than the active one"
            );
            assert!(rec.is_some_and(|r| r.token.is_some()));
            if s.starts_with(PREFIX) {
                assert_eq!(parsed.as_ref().map(|p| &p.claims).ok(), Some(c));
            } else {
                let u = url.as_ref().expect("verified non-token content is a URL");
                assert!(u.iss == c.iss && u.cid == c.cid);
                assert!(u.nc.is_none() || u.nc == c.nc);
            }
            // The signature is the active key's, not the unknown one's under the same kid.
            let token = match &url {
                Ok(u) if !s.starts_with(PREFIX) => u.pc.as_deref().unwrap(),
                _ => s,
            };
            let p = token::parse(token).unwrap();
            assert!(
                w.keys[0]
                    .verifying_key()
                    .verify(p.signed.as_bytes(), &p.signature)
                    .is_ok()
            );
        }
        Err(e) => {
            assert_ne!(e.return_code(), ReturnCode::SystemError, "{e:?}");
            if let CodeError::TooLong(n) = e {
                assert!(n > MAX_CONTENT_BYTES);
            }
        }
    }
}

/// `check` a token, and its URL forms.
fn check_token(w: &World, token: &str) {
    check(w, token);
    check(w, &fixed_url(token));
    if let Ok(u) = CodeUrl::for_token(HOST, token) {
        check(w, &u.to_url());
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, body)) = input.split_first() else {
        return;
    };
    let w = world();
    let signer = usize::from(mode / 4) % 4;
    match mode % 4 {
        0 => check(w, &String::from_utf8_lossy(body)),
        1 => check_token(w, &sign_raw(signing_key(signer), body)),
        2 => {
            let Ok(edits) = serde_json::from_slice::<Map<String, Value>>(body) else {
                return;
            };
            let mut payload = w.payload.clone();
            // Signed by signer `i`, named as signer `i` (the unknown key uses the active kid).
            payload.insert("kid".into(), w.keys[signer].kid().as_str().into());
            for (k, v) in edits {
                if v.is_null() {
                    payload.remove(&k);
                } else {
                    payload.insert(k, v);
                }
            }
            let json = serde_json::to_vec(&payload).unwrap();
            check_token(w, &sign_raw(signing_key(signer), &json));
        }
        _ => {
            let Some((&part, rest)) = body.split_first() else {
                return;
            };
            let text = String::from_utf8_lossy(rest);
            let (payload_b64, sig_b64) = w.token[PREFIX.len()..].split_once('.').unwrap();
            let s = match part % 6 {
                0 => format!("{PREFIX}{text}.{sig_b64}"),
                1 => format!("{PREFIX}{payload_b64}.{text}"),
                2 => format!("{PREFIX}{payload_b64}.{}", B64URL.encode(rest)),
                3 => format!("https://{HOST}/phic/c?{text}&pc={}", w.token),
                4 => format!("{}{text}", w.token),
                _ => format!("{text}{}", w.token),
            };
            check(w, &s);
            if part % 6 < 3 {
                check(w, &fixed_url(&s));
            }
        }
    }
});
