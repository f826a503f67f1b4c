use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use proptest::prelude::*;

use super::token::PREFIX;
use super::*;
use crate::crypto::SigningKey;
use crate::standard::ReturnCode;
use crate::trust::testutil::{issuer, list};
use crate::trust::{IssuerId, KeyStatus, Kid, TrustRegistry, TrustedKey};

mod url;

const NOW: i64 = 1_714_000_000;
const DAY: i64 = 86_400;

fn issuer_key(iss: &str, kid: &str) -> IssuerKey {
    IssuerKey::new(
        IssuerId::parse(iss).unwrap(),
        Kid::parse(kid).unwrap(),
        SigningKey::generate().unwrap(),
    )
}

fn entry(key: &IssuerKey, not_before: i64, not_after: i64) -> TrustedKey {
    TrustedKey {
        kid: key.kid().clone(),
        public_key: key.verifying_key(),
        not_before,
        not_after,
        status: KeyStatus::Active,
    }
}

struct Fixture {
    registry: Arc<TrustRegistry>,
    clock: Arc<FixedClock>,
    verifier: Verifier,
    key: IssuerKey,
}

fn fixture() -> Fixture {
    let key = issuer_key("33000001", "zj-2024a");
    let l = list(
        1,
        vec![issuer(
            "33000001",
            vec![entry(&key, NOW - 30 * DAY, NOW + 30 * DAY)],
        )],
    );
    let registry = Arc::new(TrustRegistry::new(l).unwrap());
    let clock = Arc::new(FixedClock::new(NOW));
    let verifier = Verifier::new(registry.clone(), clock.clone(), VerifierConfig::default());
    Fixture {
        registry,
        clock,
        verifier,
        key,
    }
}

fn claims(iat: i64) -> Claims {
    Claims {
        cid: CodeId::random().unwrap(),
        col: Colour::Green,
        iat,
        exp: iat + 300,
        nc: None,
    }
}

/// Sign an arbitrary payload with `key`, bypassing `issue`'s checks.
fn sign_raw(key: &SigningKey, payload: &str) -> String {
    let signed = format!("{PREFIX}{}", B64URL.encode(payload));
    let sig = key.sign(signed.as_bytes());
    format!("{signed}.{}", B64URL.encode(sig))
}

fn code_of(r: Result<VerifiedCode, CodeError>) -> &'static str {
    match r {
        Ok(_) => "0",
        Err(e) => e.return_code().as_str(),
    }
}

#[test]
fn issued_token_verifies_with_its_claims() {
    let fx = fixture();
    let mut c = claims(NOW);
    c.nc = Some(CodeId::random().unwrap());
    c.col = Colour::Yellow;
    let token = issue(&fx.key, &c).unwrap();
    assert!(token.starts_with("PHIC1."));
    let v = fx.verifier.verify(&token).unwrap();
    assert_eq!(v.claims.iss.as_str(), "33000001");
    assert_eq!(v.claims.kid.as_str(), "zj-2024a");
    assert_eq!(v.claims.cid, c.cid);
    assert_eq!(v.claims.nc, c.nc);
    assert_eq!(v.claims.col, Colour::Yellow);
    assert_eq!((v.claims.iat, v.claims.exp), (c.iat, c.exp));
    assert_eq!(v.region.as_str(), "330000");
}

#[test]
fn every_colour_of_the_table_survives_a_token_and_nothing_else_parses() {
    let fx = fixture();
    for wire in ["00", "01", "10", "20", "90"] {
        let mut c = claims(NOW);
        c.col = Colour::parse(wire).unwrap_or_else(|| panic!("{wire} is in the colour table"));
        let v = fx.verifier.verify(&issue(&fx.key, &c).unwrap()).unwrap();
        assert_eq!(v.claims.col.as_str(), wire);
    }
    for wire in ["", "0", "02", "11", "30", "99", "绿"] {
        assert_eq!(Colour::parse(wire), None, "{wire}");
    }
    // The type follows the standard's colour table, code for code.
    let std = crate::standard::Standard::embedded();
    let table: Vec<&str> = std
        .table("colour")
        .unwrap()
        .codes
        .iter()
        .map(|c| c.code.as_str())
        .collect();
    assert_eq!(table, ["00", "01", "10", "20", "90"]);
}

#[test]
fn payload_carries_no_personal_fields() {
    let fx = fixture();
    let token = issue(&fx.key, &claims(NOW)).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&B64URL.decode(payload).unwrap()).unwrap();
    let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["cid", "col", "exp", "iat", "iss", "kid", "v"]);
}

#[test]
fn rejects_expired_token() {
    let fx = fixture();
    let c = claims(NOW - 1000); // exp = NOW - 700
    let token = issue(&fx.key, &c).unwrap();
    assert_eq!(fx.verifier.verify(&token).unwrap_err(), CodeError::Expired);
    assert_eq!(code_of(fx.verifier.verify(&token)), "3002");
    // Valid inside its window, and up to the skew past exp; not at exp + skew.
    assert!(fx.verifier.verify_at(&token, c.exp - 1).is_ok());
    assert!(fx.verifier.verify_at(&token, c.exp + 59).is_ok());
    assert_eq!(
        fx.verifier.verify_at(&token, c.exp + 60).unwrap_err(),
        CodeError::Expired
    );
    // The injected clock is what `verify` reads.
    fx.clock.set(c.exp - 10);
    assert!(fx.verifier.verify(&token).is_ok());
    fx.clock.advance(100);
    assert_eq!(code_of(fx.verifier.verify(&token)), "3002");
}

#[test]
fn rejects_token_from_the_future() {
    let fx = fixture();
    let token = issue(&fx.key, &claims(NOW + 120)).unwrap();
    assert_eq!(
        fx.verifier.verify(&token).unwrap_err(),
        CodeError::NotYetValid
    );
    assert_eq!(code_of(fx.verifier.verify(&token)), "3002");
    assert!(fx.verifier.verify_at(&token, NOW + 61).is_ok());
}

#[test]
fn rejects_unknown_issuer_and_key() {
    let fx = fixture();
    let stranger = issuer_key("11000001", "bj-1");
    let t = issue(&stranger, &claims(NOW)).unwrap();
    assert_eq!(
        fx.verifier.verify(&t).unwrap_err(),
        CodeError::UnknownIssuer
    );
    assert_eq!(code_of(fx.verifier.verify(&t)), "3003");
    let other_kid = issuer_key("33000001", "zj-2099");
    let t = issue(&other_kid, &claims(NOW)).unwrap();
    assert_eq!(fx.verifier.verify(&t).unwrap_err(), CodeError::UnknownKey);
    assert_eq!(code_of(fx.verifier.verify(&t)), "3003");
}

#[test]
fn revoked_key_is_rejected_at_once() {
    let fx = fixture();
    let token = issue(&fx.key, &claims(NOW)).unwrap();
    assert!(fx.verifier.verify(&token).is_ok());
    fx.registry.revoke(fx.key.issuer(), fx.key.kid()).unwrap();
    assert_eq!(
        fx.verifier.verify(&token).unwrap_err(),
        CodeError::KeyRevoked
    );
    assert_eq!(code_of(fx.verifier.verify(&token)), "3004");
}

#[test]
fn revocation_reaches_verifiers_on_other_threads() {
    let fx = fixture();
    let token = issue(&fx.key, &claims(NOW)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let verifier = &fx.verifier;
        let token = &token;
        let worker = s.spawn(move || {
            // Runs only after `revoke` has returned on the main thread.
            rx.recv().unwrap();
            verifier.verify(token)
        });
        assert!(fx.verifier.verify(token).is_ok());
        fx.registry.revoke(fx.key.issuer(), fx.key.kid()).unwrap();
        tx.send(()).unwrap();
        assert_eq!(worker.join().unwrap().unwrap_err(), CodeError::KeyRevoked);
    });
}

#[test]
fn key_revoked_in_the_list_is_rejected() {
    let fx = fixture();
    let mut e = entry(&fx.key, NOW - DAY, NOW + DAY);
    e.status = KeyStatus::Revoked;
    fx.registry
        .replace(list(2, vec![issuer("33000001", vec![e])]))
        .unwrap();
    let token = issue(&fx.key, &claims(NOW)).unwrap();
    assert_eq!(code_of(fx.verifier.verify(&token)), "3004");
}

#[test]
fn both_keys_verify_during_rotation_overlap() {
    let fx = fixture();
    let old = issuer_key("33000001", "zj-old");
    let new = issuer_key("33000001", "zj-new");
    // old valid until NOW + 1 day, new from NOW - 1 day: two days of overlap.
    let l = list(
        2,
        vec![issuer(
            "33000001",
            vec![
                entry(&old, NOW - 30 * DAY, NOW + DAY),
                entry(&new, NOW - DAY, NOW + 30 * DAY),
            ],
        )],
    );
    fx.registry.replace(l).unwrap();
    let t_old = issue(&old, &claims(NOW)).unwrap();
    let t_new = issue(&new, &claims(NOW)).unwrap();
    assert_eq!(
        fx.verifier.verify(&t_old).unwrap().claims.kid.as_str(),
        "zj-old"
    );
    assert_eq!(
        fx.verifier.verify(&t_new).unwrap().claims.kid.as_str(),
        "zj-new"
    );
    // A token cannot borrow the other key's kid.
    let mut swapped = t_new.clone();
    swapped.replace_range(
        swapped.rfind('.').unwrap()..,
        &t_old[t_old.rfind('.').unwrap()..],
    );
    assert_eq!(code_of(fx.verifier.verify(&swapped)), "3004");
    // After the old key's window, its fresh tokens are untrusted; the new key's are fine.
    let later = NOW + 2 * DAY;
    fx.clock.set(later);
    assert_eq!(
        fx.verifier
            .verify(&issue(&old, &claims(later)).unwrap())
            .unwrap_err(),
        CodeError::KeyNotValid
    );
    assert!(
        fx.verifier
            .verify(&issue(&new, &claims(later)).unwrap())
            .is_ok()
    );
}

#[test]
fn forged_token_is_a_signature_error_even_when_expired() {
    let fx = fixture();
    let forger = IssuerKey::new(
        fx.key.issuer().clone(),
        fx.key.kid().clone(),
        SigningKey::generate().unwrap(),
    );
    let fresh = issue(&forger, &claims(NOW)).unwrap();
    assert_eq!(
        fx.verifier.verify(&fresh).unwrap_err(),
        CodeError::BadSignature
    );
    let stale = issue(&forger, &claims(NOW - 10 * 3600)).unwrap();
    assert_eq!(
        fx.verifier.verify(&stale).unwrap_err(),
        CodeError::BadSignature
    );
    let future = issue(&forger, &claims(NOW + 10 * 3600)).unwrap();
    assert_eq!(
        fx.verifier.verify(&future).unwrap_err(),
        CodeError::BadSignature
    );
}

#[test]
fn rejects_unknown_or_personal_payload_fields_even_when_signed() {
    let fx = fixture();
    let sk = SigningKey::generate().unwrap();
    let base = r#""v":1,"iss":"33000001","kid":"zj-2024a","cid":"0123456789abcdef0123456789abcdef","col":"00","iat":1714000000,"exp":1714000300"#;
    for payload in [
        format!(r#"{{{base},"name":"张三"}}"#),
        format!(r#"{{{base},"idNo":"110101199003071234"}}"#),
        format!(r#"{{{base},"x":{{"y":[[[[]]]]}}}}"#),
        format!(r#"{{{base},"iat":1}}"#),
        format!(r#"{{{}}}"#, base.replace(r#""v":1"#, r#""v":2"#)),
        format!(r#"{{{}}}"#, base.replace(r#""col":"00""#, r#""col":"02""#)),
        format!(
            r#"{{{}}}"#,
            base.replace("0123456789abcdef0123", "0123456789ABCDEF0123")
        ),
        format!(
            r#"{{{}}}"#,
            base.replace(r#""iss":"33000001""#, r#""iss":"3300001""#)
        ),
        format!(r#"{{{}}}"#, base.replace("1714000300", "1714000000")),
        format!(r#"{{{}}}"#, base.replace("1714000300", "1714000300.0")),
        format!("{}{}", "[".repeat(500), "]".repeat(500)),
        "null".to_owned(),
    ] {
        let token = sign_raw(&sk, &payload);
        assert_eq!(code_of(fx.verifier.verify(&token)), "3001", "{payload}");
    }
    // The same base object, well-formed, gets past parsing (and fails on the signature).
    assert_eq!(
        code_of(fx.verifier.verify(&sign_raw(&sk, &format!("{{{base}}}")))),
        "3004"
    );
}

#[test]
fn rejects_malformed_shapes() {
    let fx = fixture();
    let good = issue(&fx.key, &claims(NOW)).unwrap();
    let (head, sig) = good.rsplit_once('.').unwrap();
    for bad in [
        String::new(),
        "PHIC1".to_owned(),
        "PHIC1.".to_owned(),
        "PHIC1..".to_owned(),
        head.to_owned(),
        format!("{head}."),
        format!("{good}.x"),
        format!("phic1{}", &good[5..]),
        format!("PHIC2{}", &good[5..]),
        format!("{head}.{sig}="),
        format!("{head}.{}", "A".repeat(200)),
        format!(" {good}"),
    ] {
        assert_eq!(code_of(fx.verifier.verify(&bad)), "3001", "{bad}");
    }
    let long = format!("{good}{}", "A".repeat(MAX_CONTENT_BYTES));
    assert_eq!(
        fx.verifier.verify(&long).unwrap_err(),
        CodeError::TooLong(long.len())
    );
    // A signature that is valid base64url but not DER is a signature failure.
    assert_eq!(code_of(fx.verifier.verify(&format!("{head}.AAAA"))), "3004");
}

#[test]
fn lifetime_over_the_maximum_is_invalid() {
    let fx = fixture();
    let mut c = claims(NOW);
    c.exp = NOW + i64::from(DEFAULT_MAX_LIFETIME_SECS) + 1;
    assert!(matches!(
        issue(&fx.key, &c),
        Err(CodeError::InvalidClaims(_))
    ));
    assert_eq!(
        CodeError::InvalidClaims("x").return_code(),
        ReturnCode::SystemError
    );
    c.exp = NOW + 3600;
    let token = issue(&fx.key, &c).unwrap();
    let strict = Verifier::new(
        fx.registry.clone(),
        fx.clock.clone(),
        VerifierConfig {
            max_lifetime_secs: 600,
            ..VerifierConfig::default()
        },
    );
    assert_eq!(code_of(strict.verify(&token)), "3001");
    assert!(fx.verifier.verify(&token).is_ok());
    c.exp = c.iat;
    assert!(matches!(
        issue(&fx.key, &c),
        Err(CodeError::InvalidClaims(_))
    ));
}
