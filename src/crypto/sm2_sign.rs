//! SM2 signing (GB/T 32918.2 §6.1) with the key's constant part computed once, and `[k]G`
//! read without the crate's inversion.
//!
//! [`SignParts::sign`] is the `sm2` crate's signature step for step, bit for bit (the tests
//! compare the two over random keys and messages, with and without RFC 6979 additional
//! data), but two costs of the crate's signer are gone. Under `perf`, during the SM2
//! envelope benchmark (`benches/bench.sh`, scenario a2), the crate's two constant-time
//! `divstep` inversions per signature were 16% of the gateway's time:
//!
//! - Step A6 multiplies by `(1 + d)^-1 mod n`, which depends on the private key alone. The
//!   crate inverts it for each signature; [`SignParts`] keeps it from the key's load.
//! - Step A5 needs the affine `x1` of `[k]G`, and the crate's projective point yields it
//!   only through `to_affine`, its field inversion. Here `[k]G` is added up on a table of
//!   the generator ([`GeneratorTable`]) in the verifier's projective coordinates
//!   (`crypto::sm2_table::point`), whose `x` is read with a fixed Fermat addition chain.
//!
//! The steps: A1, A2: `e = SM3(Z_A ‖ M)` as a scalar; A3: `k` from RFC 6979's HMAC-DRBG
//! over SM3 with the crate's inputs (`d`, `e`, the additional data); A4: `[k]G`; A5:
//! `r = e + x1 mod n`, refused when `r = 0` or `r + k = n`; A6:
//! `s = (1 + d)^-1 · (k - r·d) mod n`, refused when `s = 0`.
//!
//! Constant time: `d` and `k` are secret, so no branch and no memory address here depends
//! on them. `k` is recoded into signed radix-16 digits with arithmetic only; each window's
//! point is picked by scanning all eight of the window's entries with constant-time
//! selects, negated by a select, and added by the complete (branch-free) mixed addition;
//! a zero digit's addition is made and discarded by a select. The inversion is a fixed
//! chain of field squarings and multiplications, which the crate does in constant time.
//! The refusals in A5 and A6 reveal only that a candidate `k` was discarded, as the
//! crate's do. `k`, its digits and bytes, `d`'s bytes and the products of A6 are wiped
//! after use (RFC 6979's generator keeps its HMAC state in the `rfc6979` crate, which does
//! not wipe it, as in the crate's signer).

use std::sync::LazyLock;

use sm2::dsa::Signature;
use sm2::elliptic_curve::group::Group;
use sm2::elliptic_curve::ops::Reduce;
use sm2::elliptic_curve::point::AffineCoordinates;
use sm2::elliptic_curve::subtle::{ConditionallySelectable, ConstantTimeEq};
use sm2::elliptic_curve::{Curve, PrimeField};
use sm2::{FieldBytes, NonZeroScalar, ProjectivePoint, Scalar, Sm2, U256};
use sm3::{Digest, Sm3};
use zeroize::Zeroize;

use super::sm2_table::point::{Affine, Fe, Point};
use super::sm2_table::window_multiples;

/// What a key's signatures share: `(1 + d)^-1 mod n` (secret, wiped on drop) and `Z_A`.
#[derive(Clone)]
pub(super) struct SignParts {
    d_plus_1_inv: Scalar,
    identity_hash: [u8; 32],
}

impl SignParts {
    /// The parts of the key `d` whose public key has the identity hash `identity_hash`.
    /// `None` when `1 + d = n`, a key the standard excludes (`d` lies in `[1, n-2]`).
    pub(super) fn new(secret: &NonZeroScalar, identity_hash: [u8; 32]) -> Option<Self> {
        let mut d_plus_1 = **secret + Scalar::ONE;
        let d_plus_1_inv = Option::<Scalar>::from(d_plus_1.invert());
        d_plus_1.zeroize();
        let d_plus_1_inv = d_plus_1_inv?;
        // Built now, at the key's load, so that the first signature does not pay for it.
        LazyLock::force(&GENERATOR_TABLE);
        Some(Self {
            d_plus_1_inv,
            identity_hash,
        })
    }

    /// Signs `msg` with the secret scalar `secret` (the one these parts were made from) and
    /// RFC 6979 additional data `data` (empty for a first attempt). `None` when the candidate
    /// `k` gives `r = 0`, `r + k = n` or `s = 0` (each with probability about 2^-256): the
    /// caller retries with other additional data.
    pub(super) fn sign(
        &self,
        secret: &NonZeroScalar,
        msg: &[u8],
        data: &[u8],
    ) -> Option<Signature> {
        // A1, A2.
        let digest = Sm3::new_with_prefix(self.identity_hash)
            .chain_update(msg)
            .finalize();
        let e = <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(&digest));
        // A3.
        let mut secret_bytes = secret.to_repr();
        let mut kgen =
            rfc6979::KGenerator::<Sm3, U256>::new(&secret_bytes, &e.to_bytes(), data, &Sm2::ORDER);
        let mut k_bytes = FieldBytes::default();
        kgen.fill_next_k(&mut k_bytes);
        secret_bytes.zeroize();
        let k = Option::<Scalar>::from(Scalar::from_repr(k_bytes));
        k_bytes.zeroize();
        let mut k = k?;
        // A4, A5.
        let mut x1 = x_of_k_g(&k);
        let r = e + <Scalar as Reduce<FieldBytes>>::reduce(&x1);
        x1.zeroize();
        let refused = bool::from(r.is_zero() | (r + k).is_zero());
        // A6. With `r` and `s` public, `r·d` and `k - r·d` would each give `d` away.
        let mut r_d = r * **secret;
        let mut k_minus_r_d = k - r_d;
        let s = self.d_plus_1_inv * k_minus_r_d;
        for v in [&mut k, &mut r_d, &mut k_minus_r_d] {
            v.zeroize();
        }
        if refused || bool::from(s.is_zero()) {
            return None;
        }
        Signature::from_scalars(r, s).ok()
    }
}

impl Drop for SignParts {
    fn drop(&mut self) {
        self.d_plus_1_inv.zeroize();
    }
}

/// The additional data of the `attempt`-th retry (1, 2, …): the counter, big-endian, at the
/// end of 32 zero bytes. RFC 6979 §3.6 makes each a different, independent candidate `k`,
/// still derived from the key and the message.
pub(super) fn retry_data(attempt: u64) -> [u8; 32] {
    let mut data = [0u8; 32];
    data[24..].copy_from_slice(&attempt.to_be_bytes());
    data
}

/// Signed radix-16 digits of a scalar: 64 nibbles and the carry out of the top one.
const WINDOWS: usize = 65;

/// Table points per window: `1..=8` times the window's base `16^i·G`.
const ENTRIES: usize = 8;

/// `d·16^i·G` for `i` in `0..WINDOWS`, `d` in `1..=ENTRIES` (33 280 bytes), built from
/// public values when the first signing key is loaded.
struct GeneratorTable(Box<[Affine]>);

static GENERATOR_TABLE: LazyLock<Option<GeneratorTable>> = LazyLock::new(|| {
    window_multiples(ProjectivePoint::GENERATOR, WINDOWS, ENTRIES).map(GeneratorTable)
});

/// The affine `x` of `[k]G`, in constant time. The crate's own path if the table could not
/// be built (it always can: see `window_multiples`).
fn x_of_k_g(k: &Scalar) -> FieldBytes {
    match GENERATOR_TABLE.as_ref() {
        Some(table) => table.mul(k).affine_x().to_repr(),
        None => ProjectivePoint::mul_by_generator(k).to_affine().x(),
    }
}

impl GeneratorTable {
    /// `[k]G` as a projective point, in constant time.
    fn mul(&self, k: &Scalar) -> Point {
        let mut digits = recode(k);
        let mut acc = Point::IDENTITY;
        for (window, entries) in self.0.chunks_exact(ENTRIES).enumerate() {
            let digit = digits[window];
            // Two's-complement magnitude and sign, without a branch.
            let sign = digit >> 7;
            let magnitude = ((digit ^ sign) - sign) as u8;
            let mut pick = entries[0];
            for (j, entry) in (2u8..).zip(&entries[1..]) {
                pick = Affine::conditional_select(&pick, entry, magnitude.ct_eq(&j));
            }
            pick.y = Fe::conditional_select(&pick.y, &-pick.y, (sign as u8 & 1).into());
            let mut sum = acc;
            sum.add_mixed(&pick, false);
            acc = Point::conditional_select(&acc, &sum, !magnitude.ct_eq(&0));
        }
        digits.zeroize();
        acc
    }
}

/// Signed radix-16 digits of `k`, least significant first: `k = Σ dᵢ·16^i` with `dᵢ` in
/// `[-8, 7]` and the last in `{0, 1}`. Arithmetic only: no branch depends on `k`.
fn recode(k: &Scalar) -> [i8; WINDOWS] {
    let mut repr = k.to_repr();
    let mut digits = [0i8; WINDOWS];
    for (i, byte) in repr.iter().rev().enumerate() {
        digits[2 * i] = (byte & 0x0f) as i8;
        digits[2 * i + 1] = (byte >> 4) as i8;
    }
    repr.zeroize();
    let mut carry = 0i8;
    for digit in &mut digits[..WINDOWS - 1] {
        let value = *digit + carry; // 0..=16
        carry = (value + 8) >> 4; // 1 when value ≥ 8
        *digit = value - (carry << 4);
    }
    digits[WINDOWS - 1] = carry;
    digits
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn scalar(bytes: [u8; 32]) -> Scalar {
        <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(bytes))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// The table's `[k]G` is the crate's, for random scalars.
        #[test]
        fn k_g_is_the_crates(bytes in any::<[u8; 32]>()) {
            let k = scalar(bytes);
            let table = GENERATOR_TABLE.as_ref().unwrap();
            let ours = table.mul(&k).to_crate();
            prop_assert_eq!(ours, ProjectivePoint::mul_by_generator(&k).to_affine());
        }

        /// The recoding sums back to the scalar, with every digit in range of the table.
        #[test]
        fn digits_sum_to_the_scalar(bytes in any::<[u8; 32]>()) {
            let k = scalar(bytes);
            let digits = recode(&k);
            prop_assert!(digits[..WINDOWS - 1].iter().all(|d| (-8..=7).contains(d)));
            prop_assert!((0..=1).contains(&digits[WINDOWS - 1]));
            let sixteen = Scalar::from(16u64);
            let mut sum = Scalar::ZERO;
            for &d in digits.iter().rev() {
                let magnitude = Scalar::from(u64::from(d.unsigned_abs()));
                sum = sum * sixteen + if d < 0 { -magnitude } else { magnitude };
            }
            prop_assert_eq!(sum, k);
        }

        /// The Fermat chain inverts.
        #[test]
        fn the_chain_inverts(bytes in any::<[u8; 32]>()) {
            let z = Option::<Fe>::from(Fe::from_repr(FieldBytes::from(bytes)));
            prop_assume!(z.is_some());
            let z = z.unwrap();
            let inverse = super::super::sm2_table::point::invert(&z);
            if bool::from(z.is_zero()) {
                prop_assert!(bool::from(inverse.is_zero()));
            } else {
                prop_assert_eq!(inverse * z, Fe::ONE);
            }
        }
    }

    #[test]
    fn edge_scalars_multiply_as_the_crates() {
        let table = GENERATOR_TABLE.as_ref().unwrap();
        // 1, 8 (a top entry), -1 = n - 1 (the largest, every digit carried), 2^255.
        let mut top = [0u8; 32];
        top[0] = 0x80;
        for k in [Scalar::ONE, Scalar::from(8u64), -Scalar::ONE, scalar(top)] {
            assert_eq!(
                table.mul(&k).to_crate(),
                ProjectivePoint::mul_by_generator(&k).to_affine()
            );
        }
        assert!(table.mul(&Scalar::ZERO).is_identity());
        assert!(bool::from(
            super::super::sm2_table::point::invert(&Fe::ZERO).is_zero()
        ));
    }
}
