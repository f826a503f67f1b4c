use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::testutil::{issuer, list as make_list, trusted_key};
use super::*;
use crate::crypto::SigningKey;

fn sample() -> (SigningKey, SigningKey, TrustList) {
    let anchor = SigningKey::generate().unwrap();
    let issuer_key = SigningKey::generate().unwrap();
    let l = make_list(
        7,
        vec![issuer(
            "33000001",
            vec![trusted_key("zj-2024a", &issuer_key, 0, 2_000_000_000)],
        )],
    );
    (anchor, issuer_key, l)
}

#[test]
fn ids_are_validated() {
    assert!(IssuerId::parse("33000001").is_ok());
    assert!(IssuerId::parse("3300001").is_err());
    assert!(IssuerId::parse("3300000a").is_err());
    assert!(IssuerId::parse("３3000001").is_err());
    assert_eq!(
        IssuerId::parse("11000002").unwrap().region().as_str(),
        "110000"
    );
    assert!(Kid::parse("zj-2024.a_1").is_ok());
    assert!(Kid::parse("").is_err());
    assert!(Kid::parse("a b").is_err());
    assert!(Kid::parse(&"k".repeat(33)).is_err());
    assert!(RegionCode::parse("33000").is_err());
}

#[test]
fn signed_list_round_trips() {
    let (anchor, _, l) = sample();
    let signed = sign_trust_list(&l, "anchor-1", &anchor).unwrap();
    let anchors = TrustAnchors::new().with("anchor-1", anchor.verifying_key());
    let back = verify_trust_list(signed.to_json().as_bytes(), &anchors).unwrap();
    assert_eq!(back, l);
    // The ETag the gateway serves the written list under.
    assert_eq!(signed.etag(), list::etag_of(signed.to_json().as_bytes()));
    assert!(signed.etag().starts_with("\"sm3-") && signed.etag().len() == 38);
}

#[test]
fn rejects_tampered_list() {
    let (anchor, _, l) = sample();
    let mut signed = sign_trust_list(&l, "anchor-1", &anchor).unwrap();
    let anchors = TrustAnchors::new().with("anchor-1", anchor.verifying_key());
    let json = String::from_utf8(B64.decode(&signed.list).unwrap()).unwrap();
    // Turn the key revoked → active, or add a day of validity: any change must fail.
    let tampered = json.replace("2000000000", "2000086400");
    assert_ne!(json, tampered);
    signed.list = B64.encode(tampered);
    let err = verify_trust_list(signed.to_json().as_bytes(), &anchors).unwrap_err();
    assert!(matches!(err, TrustError::BadSignature), "{err:?}");
}

#[test]
fn rejects_tampered_or_foreign_signature() {
    let (anchor, _, l) = sample();
    let anchors = TrustAnchors::new().with("anchor-1", anchor.verifying_key());
    let mut signed = sign_trust_list(&l, "anchor-1", &anchor).unwrap();
    let mut sig = B64.decode(&signed.signature).unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    signed.signature = B64.encode(sig);
    assert!(matches!(
        verify_trust_list(signed.to_json().as_bytes(), &anchors),
        Err(TrustError::BadSignature)
    ));

    let impostor = SigningKey::generate().unwrap();
    let forged = sign_trust_list(&l, "anchor-1", &impostor).unwrap();
    assert!(matches!(
        verify_trust_list(forged.to_json().as_bytes(), &anchors),
        Err(TrustError::BadSignature)
    ));
    let other_kid = sign_trust_list(&l, "anchor-9", &anchor).unwrap();
    assert!(matches!(
        verify_trust_list(other_kid.to_json().as_bytes(), &anchors),
        Err(TrustError::UnknownAnchor(_))
    ));
}

#[test]
fn rejects_malformed_wrappers() {
    let anchors = TrustAnchors::new();
    assert!(matches!(
        verify_trust_list(b"[]", &anchors),
        Err(TrustError::Malformed(_))
    ));
    let extra = br#"{"list":"","anchor_kid":"a","signature":"","x":1}"#;
    assert!(matches!(
        verify_trust_list(extra, &anchors),
        Err(TrustError::Malformed(_))
    ));
    let huge = vec![b' '; list::MAX_TRUST_LIST_BYTES + 1];
    assert!(matches!(
        verify_trust_list(&huge, &anchors),
        Err(TrustError::TooLarge(_))
    ));
}

#[test]
fn invalid_list_reports_every_problem() {
    let k = SigningKey::generate().unwrap();
    let mut bad = issuer(
        "33000001",
        vec![trusted_key("a", &k, 10, 5), trusted_key("a", &k, 0, 1)],
    );
    bad.region = RegionCode::parse("110000").unwrap();
    let l = make_list(1, vec![bad, issuer("33000001", vec![])]);
    let Err(TrustError::InvalidList(problems)) = l.validate() else {
        panic!("expected InvalidList");
    };
    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(TrustRegistry::new(l).is_err());
}

#[test]
fn revoke_takes_effect_for_later_lookups() {
    let (_, _, l) = sample();
    let reg = TrustRegistry::new(l).unwrap();
    let iss = IssuerId::parse("33000001").unwrap();
    let kid = Kid::parse("zj-2024a").unwrap();
    let before = reg.snapshot();
    assert_eq!(
        before.lookup(&iss, &kid).unwrap().1.status,
        KeyStatus::Active
    );
    reg.revoke(&iss, &kid).unwrap();
    assert_eq!(
        reg.snapshot().lookup(&iss, &kid).unwrap().1.status,
        KeyStatus::Revoked
    );
    // A snapshot taken before is a consistent view of the past, by design.
    assert_eq!(
        before.lookup(&iss, &kid).unwrap().1.status,
        KeyStatus::Active
    );

    let nobody = IssuerId::parse("99000001").unwrap();
    assert!(matches!(
        reg.revoke(&nobody, &kid),
        Err(TrustError::UnknownIssuer(_))
    ));
    let nokey = Kid::parse("nope").unwrap();
    assert!(matches!(
        reg.revoke(&iss, &nokey),
        Err(TrustError::UnknownKey { .. })
    ));
}

#[test]
fn local_revocation_survives_reload_and_old_lists_are_refused() {
    let (anchor, _, l) = sample();
    let anchors = TrustAnchors::new().with("anchor-1", anchor.verifying_key());
    let reg = TrustRegistry::new(l.clone()).unwrap();
    let iss = IssuerId::parse("33000001").unwrap();
    let kid = Kid::parse("zj-2024a").unwrap();
    reg.revoke(&iss, &kid).unwrap();

    let same = sign_trust_list(&l, "anchor-1", &anchor).unwrap();
    reg.load_signed(same.to_json().as_bytes(), &anchors)
        .unwrap();
    assert_eq!(
        reg.snapshot().lookup(&iss, &kid).unwrap().1.status,
        KeyStatus::Revoked
    );

    let mut old = l.clone();
    old.version = 6;
    let old = sign_trust_list(&old, "anchor-1", &anchor).unwrap();
    assert!(matches!(
        reg.load_signed(old.to_json().as_bytes(), &anchors),
        Err(TrustError::StaleVersion {
            offered: 6,
            loaded: 7
        })
    ));
}

#[test]
fn a_reload_keeps_the_tables_of_unchanged_keys_and_builds_new_ones() {
    let (_, zj_key, l) = sample();
    let reg = TrustRegistry::new(l.clone()).unwrap();
    let key_of = |iss: &str, kid: &str| {
        reg.snapshot()
            .lookup(&IssuerId::parse(iss).unwrap(), &Kid::parse(kid).unwrap())
            .unwrap()
            .1
            .public_key
    };
    let before = key_of("33000001", "zj-2024a");
    assert!(before.is_precomputed());
    // The next list: the same Zhejiang key, and a new issuer with a new key.
    let js_key = SigningKey::generate().unwrap();
    let mut next = l.clone();
    next.version = 8;
    next.issuers.push(issuer(
        "32000001",
        vec![trusted_key("js-2026a", &js_key, 0, 2_000_000_000)],
    ));
    reg.replace(next).unwrap();
    let kept = key_of("33000001", "zj-2024a");
    assert!(
        kept.shares_table_with(&before),
        "an unchanged key's table is rebuilt"
    );
    let new = key_of("32000001", "js-2026a");
    assert!(new.is_precomputed() && !new.shares_table_with(&before));
    // A kid that now names another key gets that key's own table, and verifies with it.
    let rotated = SigningKey::generate().unwrap();
    let mut third = l;
    third.version = 9;
    third.issuers[0].keys[0] = trusted_key("zj-2024a", &rotated, 0, 2_000_000_000);
    reg.replace(third).unwrap();
    let after = key_of("33000001", "zj-2024a");
    assert!(after.is_precomputed() && !after.shares_table_with(&before));
    let sig = rotated.sign(b"msg");
    assert!(after.verify(b"msg", &sig).is_ok());
    assert!(after.verify(b"msg", &zj_key.sign(b"msg")).is_err());
}

#[test]
fn a_registry_built_beside_a_loaded_list_shares_its_tables_whatever_the_version() {
    let (_, _, l) = sample();
    let first = TrustRegistry::new(l.clone()).unwrap();
    let (iss, kid) = (
        IssuerId::parse("33000001").unwrap(),
        Kid::parse("zj-2024a").unwrap(),
    );
    let key_in = |r: &TrustRegistry| r.snapshot().lookup(&iss, &kid).unwrap().1.public_key;
    // A configuration reload that rolls the list back to an older version still loads,
    // and shares the table of the key it has in common with the list in force.
    let mut older = l.clone();
    older.version = 3;
    let second = TrustRegistry::new_reusing(older, Some(&first.snapshot())).unwrap();
    assert_eq!(second.snapshot().version(), 3);
    assert!(key_in(&second).shares_table_with(&key_in(&first)));
    let alone = TrustRegistry::new_reusing(l, None).unwrap();
    assert!(key_in(&alone).is_precomputed());
    assert!(!key_in(&alone).shares_table_with(&key_in(&first)));
}

#[test]
fn failed_load_keeps_the_old_list() {
    let (anchor, _, l) = sample();
    let anchors = TrustAnchors::new().with("anchor-1", anchor.verifying_key());
    let reg = TrustRegistry::new(l.clone()).unwrap();
    let mut newer = l;
    newer.version = 8;
    newer.issuers.clear();
    let forged = sign_trust_list(&newer, "anchor-1", &SigningKey::generate().unwrap()).unwrap();
    assert!(
        reg.load_signed(forged.to_json().as_bytes(), &anchors)
            .is_err()
    );
    assert_eq!(reg.snapshot().version(), 7);
    assert_eq!(reg.snapshot().list().issuers.len(), 1);
}

#[test]
fn a_registry_built_beside_a_loaded_one_keeps_its_local_revocations() {
    let (_, _, l) = sample();
    let first = TrustRegistry::new(l.clone()).unwrap();
    let (iss, kid) = (
        IssuerId::parse("33000001").unwrap(),
        Kid::parse("zj-2024a").unwrap(),
    );
    let status = |r: &TrustRegistry| r.snapshot().lookup(&iss, &kid).unwrap().1.status;
    assert_eq!(status(&first), KeyStatus::Active);
    first.revoke(&iss, &kid).unwrap();
    // A configuration reload with the same list (which still says active): still revoked.
    let reloaded = TrustRegistry::new_reusing(l.clone(), Some(&first.snapshot())).unwrap();
    assert_eq!(status(&reloaded), KeyStatus::Revoked);
    // A registry built from nothing knows of no emergency.
    let fresh = TrustRegistry::new_reusing(l, None).unwrap();
    assert_eq!(status(&fresh), KeyStatus::Active);
}
