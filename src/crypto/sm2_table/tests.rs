//! The table path against the `sm2` crate: digit recoding, table entries, `Z_A`, the
//! GB/T 32918 known answer, and properties that the two paths accept and reject the same
//! signatures.

use std::sync::LazyLock;

use proptest::prelude::*;
use sm2::dsa::signature::hazmat::PrehashVerifier;

use super::*;
use crate::crypto::tests::{GBT_PRIVATE, GBT_PUBLIC, ORDER_N, unhex};
use crate::crypto::{CryptoError, SigningKey, VerifyingKey, to_hex};

fn scalar_from_hex(hex: &str) -> Scalar {
    let bytes = unhex(hex);
    Scalar::reduce(&FieldBytes::from(
        <[u8; 32]>::try_from(bytes.as_slice()).unwrap(),
    ))
}

fn scalar_from_bytes(bytes: [u8; 32]) -> Scalar {
    Scalar::reduce(&FieldBytes::from(bytes))
}

/// `n - 1`, the largest scalar.
fn n_minus_1() -> Scalar {
    -Scalar::ONE
}

/// `2^(W·window)` as a scalar.
fn window_weight(window: usize) -> Scalar {
    (0..WINDOW_BITS * window).fold(Scalar::ONE, |k, _| k.double())
}

/// `Σ dᵢ·2^(W·i)` mod n.
fn reconstruct(digits: &[i16; WINDOWS]) -> Scalar {
    let radix = Scalar::from(1u64 << WINDOW_BITS);
    digits.iter().rev().fold(Scalar::ZERO, |acc, &d| {
        let magnitude = Scalar::from(u64::from(d.unsigned_abs()));
        acc * radix + if d < 0 { -magnitude } else { magnitude }
    })
}

fn assert_recodes(k: &Scalar) {
    let digits = recode(k);
    assert!(
        digits.iter().all(|d| (-(HALF - 1)..=HALF).contains(d)),
        "{digits:?}"
    );
    assert_eq!(reconstruct(&digits), *k, "{digits:?}");
}

/// The generator's comb.
fn generator() -> &'static Comb {
    GENERATOR_COMB.as_ref().unwrap()
}

/// The GB/T 32918.5 Appendix A key, precomputed once for all the tests that use it.
static GBT_KEY: LazyLock<VerifyingKey> =
    LazyLock::new(|| VerifyingKey::from_hex(GBT_PUBLIC).unwrap().precompute());

/// A DER signature with the given scalars (both non-zero).
fn der(r: &Scalar, s: &Scalar) -> Vec<u8> {
    Signature::from_scalars(r.to_repr(), s.to_repr())
        .unwrap()
        .to_der()
        .to_bytes()
        .to_vec()
}

/// The key without its table: the crate's path.
fn plain(key: &VerifyingKey) -> VerifyingKey {
    VerifyingKey::from_sec1_bytes(&key.to_sec1_bytes()).unwrap()
}

#[test]
fn recode_reconstructs_edge_scalars() {
    let half_pattern = [0x40u8; 32]; // windows at the sign boundary
    let all_ones = [0xffu8; 32]; // reduced below n
    for k in [
        Scalar::ZERO,
        Scalar::ONE,
        Scalar::from(u64::from(HALF as u16)),
        Scalar::from(u64::from(HALF as u16) + 1),
        n_minus_1(),
        n_minus_1() - Scalar::ONE,
        window_weight(WINDOWS - 2),
        scalar_from_bytes(half_pattern),
        scalar_from_bytes(all_ones),
        scalar_from_hex(GBT_PRIVATE),
    ] {
        assert_recodes(&k);
    }
    // n itself reduces to 0, whose digits are all 0.
    assert_eq!(scalar_from_hex(ORDER_N), Scalar::ZERO);
    assert_eq!(recode(&Scalar::ZERO), [0; WINDOWS]);
    let mut one = [0; WINDOWS];
    one[0] = 1;
    assert_eq!(recode(&Scalar::ONE), one);
}

#[test]
fn comb_entries_are_the_multiples_of_their_window() {
    let public = sm2::PublicKey::from_sec1_bytes(&unhex(GBT_PUBLIC)).unwrap();
    let p = public.to_projective();
    let comb = Comb::new(p).unwrap();
    let half = ENTRIES;
    for (window, d) in [
        (0, 1),
        (0, 2),
        (0, half),
        (1, 1),
        (5, 37 % half + 1),
        (WINDOWS - 1, 1),
        (WINDOWS - 1, half),
    ] {
        let k = window_weight(window) * Scalar::from(d as u64);
        assert_eq!(
            comb.entry(window, d).to_crate(),
            (p * k).to_affine(),
            "P: {window}, {d}"
        );
        assert_eq!(
            generator().entry(window, d).to_crate(),
            (ProjectivePoint::GENERATOR * k).to_affine(),
            "G: {window}, {d}"
        );
    }
    assert_eq!(comb.heap_bytes(), WINDOWS * ENTRIES * size_of::<Affine>());
    assert_eq!(GBT_KEY.table_bytes(), comb.heap_bytes());
}

#[test]
fn comb_multiplies_edge_scalars() {
    for k in [Scalar::ZERO, Scalar::ONE, n_minus_1()] {
        assert_eq!(
            generator().mul(&k).to_crate(),
            (ProjectivePoint::GENERATOR * k).to_affine()
        );
    }
    assert!(generator().mul(&Scalar::ZERO).is_identity());
}

/// The crate's own `verify_prehash` accepts `SM3(Z_A ‖ M)` with our `Z_A`, so the two agree.
#[test]
fn identity_hash_matches_the_crate() {
    let sk = SigningKey::from_hex(GBT_PRIVATE).unwrap();
    let msg = b"message digest";
    let sig = Signature::from_der(&sk.sign(msg)).unwrap();
    let public = sm2::PublicKey::from_sec1_bytes(&unhex(GBT_PUBLIC)).unwrap();
    let e = Sm3::new_with_prefix(identity_hash(&public))
        .chain_update(msg)
        .finalize();
    let crate_key = sm2::dsa::VerifyingKey::new(DEFAULT_DISTID, public).unwrap();
    crate_key.verify_prehash(&e, &sig).unwrap();
}

/// GB/T 32918.5-2017 Appendix A through the table: the signature verifies, and changing r,
/// s, the message or the key makes it fail.
#[test]
fn gbt_32918_signature_verifies_with_the_table() {
    let r = "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3";
    let s = "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa";
    let (r, s) = (scalar_from_hex(r), scalar_from_hex(s));
    let key = &*GBT_KEY;
    assert!(key.is_precomputed());
    key.verify(b"message digest", &der(&r, &s)).unwrap();

    let bad = CryptoError::BadSignature;
    assert_eq!(key.verify(b"message digesT", &der(&r, &s)), Err(bad));
    assert_eq!(
        key.verify(b"message digest", &der(&(r + Scalar::ONE), &s)),
        Err(bad)
    );
    assert_eq!(
        key.verify(b"message digest", &der(&r, &(s + Scalar::ONE))),
        Err(bad)
    );
    assert_eq!(key.verify(b"message digest", &der(&s, &r)), Err(bad));
    let other = SigningKey::generate().unwrap().verifying_key().precompute();
    assert_eq!(other.verify(b"message digest", &der(&r, &s)), Err(bad));
    // The table does not change equality or Debug.
    assert_eq!(*key, plain(key));
    assert_eq!(format!("{key:?}"), format!("{:?}", plain(key)));
}

/// Signatures whose `[s]G + [t]P` is the identity (made with the private key) are rejected
/// by both paths, as is `r + s = n`.
#[test]
fn identity_point_and_zero_t_are_rejected_by_both_paths() {
    let d = scalar_from_hex(GBT_PRIVATE);
    let d_inv = Option::<Scalar>::from(d.invert()).unwrap();
    for s in [Scalar::ONE, Scalar::from(7u64), n_minus_1()] {
        let t = -(s * d_inv); // s + t·d = 0
        let r = t - s;
        let sig = der(&r, &s);
        assert_eq!(GBT_KEY.verify(b"m", &sig), Err(CryptoError::BadSignature));
        assert_eq!(
            plain(&GBT_KEY).verify(b"m", &sig),
            Err(CryptoError::BadSignature)
        );
        let zero_t = der(&(-s), &s);
        assert_eq!(
            GBT_KEY.verify(b"m", &zero_t),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            plain(&GBT_KEY).verify(b"m", &zero_t),
            Err(CryptoError::BadSignature)
        );
    }
}

/// `[k]G` as a table point, through the crate.
fn affine_multiple(k: u64) -> Affine {
    Affine::from_crate(&(ProjectivePoint::GENERATOR * Scalar::from(k)).to_affine())
        .expect("not the identity")
}

/// The mixed addition against the crate's, in the cases a complete formula must get
/// right: from the identity, a general sum, a doubling, a difference, and `P - P`.
#[test]
fn mixed_addition_matches_the_crate_in_every_case() {
    let g = |k: u64| ProjectivePoint::GENERATOR * Scalar::from(k);
    let q = affine_multiple(5);
    let mut from_identity = Point::IDENTITY;
    from_identity.add_mixed(&q, false);
    assert_eq!(from_identity.to_crate(), g(5).to_affine());
    let mut negated = Point::IDENTITY;
    negated.add_mixed(&q, true);
    assert_eq!(negated.to_crate(), (-g(5)).to_affine());
    // An accumulator with Z ≠ 1: [3]G + [5]G, then + [8]G (a doubling), then - [16]G.
    let mut acc = Point::IDENTITY;
    acc.add_mixed(&affine_multiple(3), false);
    acc.add_mixed(&q, false);
    assert_eq!(acc.to_crate(), g(8).to_affine());
    acc.add_mixed(&affine_multiple(8), false);
    assert_eq!(acc.to_crate(), g(16).to_affine());
    acc.add_mixed(&affine_multiple(16), true);
    assert!(acc.is_identity(), "P - P is the identity");
    // And on from the identity again.
    acc.add_mixed(&affine_multiple(7), true);
    assert_eq!(acc.to_crate(), (-g(7)).to_affine());
}

/// The check of B7 without an inversion, including an `x1` in `[n, p)`, which reduces to
/// `x1 - n`: found by trying `x = n + i` until one is on the curve.
#[test]
fn x_check_reduces_x_mod_n_and_takes_any_z() {
    use sm2::elliptic_curve::point::{AffineCoordinates, DecompressPoint};
    let n_bytes = unhex(ORDER_N);
    let n_fe = Option::<point::Fe>::from(point::Fe::from_repr(FieldBytes::from(
        <[u8; 32]>::try_from(n_bytes.as_slice()).unwrap(),
    )))
    .unwrap();
    let z = point::Fe::from(0x1234_5678_9abc_u64);
    let mut found = None;
    for i in 0u64..64 {
        let x = n_fe + point::Fe::from(i);
        if let Some(p) =
            Option::<AffinePoint>::from(AffinePoint::decompress(&x.to_repr(), 0.into()))
        {
            found = Some((i, p));
            break;
        }
    }
    let (i, high) = found.expect("a point with x = n + i for some small i");
    let high = Point::scaled(&Affine::from_crate(&high).unwrap(), z);
    assert!(
        high.x_reduces_to(&Scalar::from(i)),
        "x = n + {i} reduces to {i}"
    );
    assert!(!high.x_reduces_to(&Scalar::from(i + 1)));
    assert!(!high.x_reduces_to(&(Scalar::from(i) - Scalar::ONE)));
    // An ordinary point: its own x (below n) and nothing else.
    let g = Affine::from_crate(&AffinePoint::GENERATOR).unwrap();
    let x = scalar_from_bytes(AffinePoint::GENERATOR.x().into());
    let g = Point::scaled(&g, z);
    assert!(g.x_reduces_to(&x));
    assert!(!g.x_reduces_to(&(x + Scalar::ONE)));
    assert!(!Point::IDENTITY.x_reduces_to(&Scalar::ZERO));
}

/// A scalar in `[1, n-1]`: the edges, or reduced random bytes (0 taken as 1).
fn signature_scalar() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        1 => Just(Scalar::ONE),
        1 => Just(n_minus_1()),
        4 => any::<[u8; 32]>().prop_map(|b| {
            let k = scalar_from_bytes(b);
            if bool::from(k.is_zero()) { Scalar::ONE } else { k }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn recode_reconstructs_random_scalars(bytes in any::<[u8; 32]>()) {
        assert_recodes(&scalar_from_bytes(bytes));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn comb_mul_matches_scalar_multiplication(bytes in any::<[u8; 32]>()) {
        let k = scalar_from_bytes(bytes);
        prop_assert_eq!(
            generator().mul(&k).to_crate(),
            (ProjectivePoint::GENERATOR * k).to_affine()
        );
    }

    /// Random and edge `r`, `s` (also `r + s = n`) under the GB/T key: same answer both ways.
    #[test]
    fn paths_agree_on_arbitrary_scalars(
        r in signature_scalar(),
        s in signature_scalar(),
        zero_t in any::<bool>(),
        msg in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let r = if zero_t { -s } else { r };
        let sig = der(&r, &s);
        let table = GBT_KEY.verify(&msg, &sig);
        prop_assert_eq!(table, plain(&GBT_KEY).verify(&msg, &sig));
        prop_assert_eq!(table, Err(CryptoError::BadSignature));
    }
}

proptest! {
    // Each case builds a table, which is slow in an unoptimised build.
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Random keys and messages; valid signatures, and the same with one bit flipped (which
    /// may also break the DER): the table path gives exactly the crate's result.
    #[test]
    fn paths_agree_on_random_keys_and_tampering(
        seed in any::<[u8; 32]>(),
        msg in proptest::collection::vec(any::<u8>(), 0..200),
        flips in proptest::collection::vec((any::<usize>(), 0u8..8), 0..3),
    ) {
        let sk = SigningKey::from_hex(&to_hex(&seed))
            .unwrap_or_else(|_| SigningKey::from_hex(GBT_PRIVATE).unwrap());
        let crate_key = sk.verifying_key();
        let table_key = crate_key.clone().precompute();
        let sig = sk.sign(&msg);
        prop_assert_eq!(table_key.verify(&msg, &sig), Ok(()));
        for (pos, bit) in flips {
            let mut flipped = sig.clone();
            flipped[pos % sig.len()] ^= 1 << bit;
            let want = crate_key.verify(&msg, &flipped);
            prop_assert_eq!(table_key.verify(&msg, &flipped), want);
            prop_assert!(want.is_err());
        }
        // Another key's table rejects it, as the crate does.
        prop_assert_eq!(GBT_KEY.verify(&msg, &sig), plain(&GBT_KEY).verify(&msg, &sig));
    }
}
