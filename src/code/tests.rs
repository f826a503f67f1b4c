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

#[test]
fn url_form_round_trips_and_verifies() {
    let fx = fixture();
    let mut c = claims(NOW);
    c.nc = Some(CodeId::random().unwrap());
    let token = issue(&fx.key, &c).unwrap();
    let url = CodeUrl::for_token("Code.Example.cn", &token).unwrap();
    let text = url.to_url();
    assert!(
        text.starts_with("https://code.example.cn/phic/c?v=1&cid="),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("&pc={token}")),
        "token must pass unescaped"
    );
    assert_eq!(CodeUrl::parse(&text).unwrap(), url);
    assert_eq!(fx.verifier.verify_content(&text).unwrap().claims.cid, c.cid);
    assert_eq!(
        fx.verifier.verify_content(&token).unwrap().claims.cid,
        c.cid
    );

    // Upper-case scheme and host, a fragment, an unknown parameter, escaped token dots.
    let variant = format!(
        "HTTPS://CODE.EXAMPLE.CN/phic/c?v=1&cid={}&iss=33000001&utm=x&pc={}#/result",
        c.cid,
        token.replace('.', "%2E")
    );
    assert_eq!(
        CodeUrl::parse(&variant).unwrap().pc.as_deref(),
        Some(token.as_str())
    );
    assert!(fx.verifier.verify_content(&variant).is_ok());
}

#[test]
fn url_hints_must_match_the_signed_token() {
    let fx = fixture();
    let token = issue(&fx.key, &claims(NOW)).unwrap();
    let mut url = CodeUrl::for_token("code.example.cn", &token).unwrap();
    url.cid = CodeId::random().unwrap();
    assert_eq!(
        fx.verifier.verify_content(&url.to_url()).unwrap_err(),
        CodeError::UrlMismatch
    );
    url = CodeUrl::for_token("code.example.cn", &token).unwrap();
    url.nc = Some(CodeId::random().unwrap());
    assert_eq!(code_of(fx.verifier.verify_content(&url.to_url())), "3001");
    url.nc = None;
    url.pc = None;
    assert_eq!(
        fx.verifier.verify_content(&url.to_url()).unwrap_err(),
        CodeError::NoToken
    );
}

#[test]
fn verifying_recognised_content_agrees_with_verifying_the_text() {
    let fx = fixture();
    let token = issue(&fx.key, &claims(NOW)).unwrap();
    let good = CodeUrl::for_token("code.example.cn", &token).unwrap();
    let mut other_cid = good.clone();
    other_cid.cid = CodeId::random().unwrap();
    let mut other_iss = good.clone();
    other_iss.iss = IssuerId::parse("32000001").unwrap();
    let mut other_nc = good.clone();
    other_nc.nc = Some(CodeId::random().unwrap());
    let mut no_token = good.clone();
    no_token.pc = None;
    let mut tampered = token.clone();
    tampered.pop();
    // A token that carries a national code id, under URLs that keep, omit or change it.
    let mut with_nc = claims(NOW);
    with_nc.nc = Some(CodeId::random().unwrap());
    let nc_token = issue(&fx.key, &with_nc).unwrap();
    let nc_url = CodeUrl::for_token("code.example.cn", &nc_token).unwrap();
    let mut nc_omitted = nc_url.clone();
    nc_omitted.nc = None;
    let mut nc_changed = nc_url.clone();
    nc_changed.nc = Some(CodeId::random().unwrap());
    let contents = [
        good.to_url(),
        token.clone(),
        other_cid.to_url(),
        other_iss.to_url(),
        other_nc.to_url(),
        no_token.to_url(),
        tampered.clone(),
        CodeUrl::for_token("code.example.cn", &token)
            .unwrap()
            .to_url()
            .replace(&token, &tampered),
        nc_url.to_url(),
        nc_omitted.to_url(),
        nc_changed.to_url(),
        nc_token.clone(),
        // Upper-case scheme and host, and the token's dots escaped.
        good.to_url()
            .replace("https://code.example.cn", "HTTPS://CODE.EXAMPLE.CN")
            .replace(&token, &token.replace('.', "%2E")),
        // A bare "token" whose payload does not parse.
        format!("{PREFIX}bm90IGpzb24.c2ln"),
    ];
    let mut outcomes = Vec::new();
    for content in &contents {
        let rec = Phic1Format.recognise(content).expect("PHIC1");
        let by_text = fx.verifier.verify_content(content).map(|v| v.claims.cid);
        let by_rec = fx.verifier.verify_recognised(&rec).map(|v| v.claims.cid);
        assert_eq!(by_text, by_rec, "{content}");
        outcomes.push(by_rec.map_or_else(|e| e.return_code().as_str().to_owned(), |_| "ok".into()));
    }
    // The cases do differ: six pass, the rest fail for their own reasons.
    assert_eq!(
        outcomes.iter().filter(|o| *o == "ok").count(),
        6,
        "{outcomes:?}"
    );
}

#[test]
fn malformed_urls_are_refused() {
    let cid = "0123456789abcdef0123456789abcdef";
    for bad in [
        format!("http://h.cn/phic/c?v=1&cid={cid}&iss=33000001"),
        format!("https://h.cn/phic/x?v=1&cid={cid}&iss=33000001"),
        format!("https://h.cn/phic/c?v=2&cid={cid}&iss=33000001"),
        format!("https://h.cn/phic/c?v=1&cid={cid}&cid={cid}&iss=33000001"),
        format!("https://h.cn/phic/c?v=1&cid={cid}"),
        format!("https://h.cn/phic/c?v=1&cid={cid}&iss=33000001&pc=abc"),
        format!("https://h.cn/phic/c?v=1&cid={cid}&iss=33000001&pc=%FF"),
        format!("https://h_x.cn/phic/c?v=1&cid={cid}&iss=33000001"),
        format!("https://user@h.cn/phic/c?v=1&cid={cid}&iss=33000001"),
        format!("https://h.cn:99999/phic/c?v=1&cid={cid}&iss=33000001"),
        "https://".to_owned(),
        "https://h.cn/phic/c".to_owned(),
    ] {
        assert!(CodeUrl::parse(&bad).is_err(), "{bad}");
    }
    let ok = CodeUrl::parse(&format!(
        "https://h.cn:8443/phic/c?v=1&cid={cid}&iss=33000001"
    ))
    .unwrap();
    assert_eq!((ok.host.as_str(), ok.pc), ("h.cn:8443", None));
}

#[test]
fn phic1_format_recognises_both_forms() {
    let fx = fixture();
    let token = issue(&fx.key, &claims(NOW)).unwrap();
    let f = Phic1Format;
    assert_eq!(f.name(), "phic1");
    let r = f.recognise(&token).unwrap();
    assert_eq!(r.issuer_hint.as_deref(), Some("33000001"));
    assert_eq!(r.token.as_deref(), Some(token.as_str()));
    let url = CodeUrl::for_token("code.example.cn", &token)
        .unwrap()
        .to_url();
    let r = f.recognise(&url).unwrap();
    assert_eq!(r.host.as_deref(), Some("code.example.cn"));
    assert_eq!(r.token.as_deref(), Some(token.as_str()));
    assert!(f.recognise("https://hbjkm.example.cn/code?id=1").is_none());
    // Still PHIC1 when broken; verification says why.
    assert_eq!(f.recognise("PHIC1.garbage").unwrap().issuer_hint, None);

    let formats: [&dyn CodeFormat; 1] = [&f];
    assert_eq!(recognise_any(&formats, &url).unwrap().format, "phic1");
    assert_eq!(
        recognise_any(&formats, "hello").unwrap_err().return_code(),
        ReturnCode::CodeInvalid
    );
    let long = "P".repeat(MAX_CONTENT_BYTES + 1);
    assert_eq!(
        recognise_any(&formats, &long).unwrap_err(),
        CodeError::TooLong(long.len())
    );
}

#[test]
fn return_codes_follow_the_profile() {
    use CodeError::*;
    let cases = [
        (Malformed("x"), "3001"),
        (TooLong(1), "3001"),
        (Expired, "3002"),
        (NotYetValid, "3002"),
        (UnknownIssuer, "3003"),
        (KeyNotValid, "3003"),
        (KeyRevoked, "3004"),
        (BadSignature, "3004"),
    ];
    for (e, code) in cases {
        assert_eq!(e.return_code().as_str(), code, "{e:?}");
    }
}

fn mutation() -> impl Strategy<Value = (prop::sample::Index, char)> {
    (
        any::<prop::sample::Index>(),
        prop_oneof![
            prop::char::range(' ', '~'),
            Just('\u{0}'),
            Just('é'),
            Just('码'),
        ],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_single_character_change_is_rejected((idx, ch) in mutation()) {
        let fx = fixture();
        let token = issue(&fx.key, &claims(NOW)).unwrap();
        let i = idx.index(token.len());
        prop_assume!(token.as_bytes()[i] as char != ch);
        let mut forged = token.clone();
        forged.replace_range(i..=i, ch.encode_utf8(&mut [0; 4]));
        let code = code_of(fx.verifier.verify(&forged));
        // 3003 is right only when the change landed on `iss` or `kid`, naming an issuer
        // or key the list does not have: the trust check comes before the signature.
        let renamed = token::parse(&forged)
            .is_ok_and(|p| p.claims.iss.as_str() != "33000001" || p.claims.kid.as_str() != "zj-2024a");
        prop_assert!(
            code == "3001" || code == "3004" || (code == "3003" && renamed),
            "{} at {} gave {}", ch, i, code
        );
    }

    #[test]
    fn truncation_is_rejected(cut in 0usize..400) {
        let fx = fixture();
        let token = issue(&fx.key, &claims(NOW)).unwrap();
        let cut = cut % token.len();
        let code = code_of(fx.verifier.verify(&token[..cut]));
        prop_assert!(code == "3001" || code == "3004", "cut {} gave {}", cut, code);
    }

    #[test]
    fn arbitrary_content_never_panics(s in "\\PC{0,300}") {
        let fx = fixture();
        let _ = fx.verifier.verify_content(&s);
        let _ = Phic1Format.recognise(&s);
        let _ = fx.verifier.verify_content(&format!("PHIC1.{s}"));
        let _ = CodeUrl::parse(&format!("https://h.cn/phic/c?{s}"));
    }
}
