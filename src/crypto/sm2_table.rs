//! Precomputed tables for SM2 verification with keys that verify many signatures.
//!
//! Verifying an SM2 signature `(r, s)` computes `[s]G + [t]P` with `t = r + s mod n`. The
//! `sm2` crate does it with a general two-base linear combination (4-bit windows, constant
//! time): about 256 doublings and 130 projective additions per signature. For the generator
//! `G`, and for a public key `P` that stays loaded (client keys from the configuration,
//! trust-list issuers, region response keys), both bases are fixed, so this module
//! precomputes a comb per base and then needs no doublings at all.
//!
//! The comb of a base `B`: for each window `i` in `0..WINDOWS`, the affine points
//! `d·2^(W·i)·B` for `d` in `1..=2^(W-1)`, with `W` = [`WINDOW_BITS`]. A scalar is recoded into
//! signed digits `k = Σ dᵢ·2^(W·i)` with `|dᵢ| ≤ 2^(W-1)` ([`recode`]), and `[k]B` is the sum
//! of one table point (negated for a negative digit) per non-zero digit: about `256/W` mixed
//! additions per base. A verification adds both combs' terms into one accumulator.
//!
//! Cost, with `W = 7` (37 windows of 64 points, 64-byte affine points): 151 552 bytes per key,
//! plus one such table for `G` shared by every key and built on first use. Building a key's
//! table takes about 2 400 point additions and one batched inversion, about 2 ms in a release
//! build; it is paid once, when the key is loaded (configuration load and reload, a
//! trust-list load), never on a request. A key verifies about six times as fast with it;
//! `benches/crypto.rs` prints the verification rate beside the crate's, the build time and
//! the table size.
//!
//! Variable time: the code branches on and indexes by the digits of `s` and `t` and
//! compares in variable time. Everything it handles is public (the public key, the
//! signature, the message and its hash), so nothing secret can leak. Signing uses none of
//! this variable-time code: `crypto::sm2_sign` has its own fixed-base table of the
//! generator (built with [`window_multiples`], from public values) and reads and adds it in
//! constant time with [`point`]'s constant-time parts.
//!
//! The accumulator and its additions are [`point`]'s, not the crate's: the last check then
//! needs two field multiplications where the crate's point needs an inversion (see there).
//!
//! The checks are those of GB/T 32918.2 §7.1 as the `sm2` crate makes them: `r, s` in
//! `[1, n-1]` (enforced when the DER signature is parsed), `e = SM3(Z_A ‖ M)`,
//! `t = r + s mod n ≠ 0`, `(x1, y1) = [s]G + [t]P` not the identity, and `r = e + x1 mod n`.

use std::fmt;
use std::sync::LazyLock;

use sm2::dsa::Signature;
use sm2::elliptic_curve::ops::Reduce;
use sm2::elliptic_curve::sec1::ToSec1Point;
use sm2::elliptic_curve::{CurveGroup, Group, PrimeField};
use sm2::{AffinePoint, FieldBytes, ProjectivePoint, Scalar};
use sm3::{Digest, Sm3};

use self::point::{Affine, Point};
use super::sm2::{DEFAULT_DISTID, public_to_sec1};

pub(super) mod point;

/// Bits per signed digit. Measured with `benches/crypto.rs` (medians of three runs): 7 was
/// the fastest of 6, 7 and 8. 6 does 12 more additions per verification for 97 KiB per key;
/// 8 does 8 fewer but was no faster, with 297 KiB per key and twice the build time (more of
/// two such tables misses the cache). 7 gives 148 KiB per key (the figures were measured
/// with the crate's 72-byte points, 166.5 KiB per key at 7).
pub(super) const WINDOW_BITS: usize = 7;

/// Bits of the group order `n` (its top bit is set).
const ORDER_BITS: usize = 256;

/// Windows per scalar. One more bit than the order leaves room for the carry out of the
/// top window of the signed recoding, so every digit stays within `±2^(W-1)`.
pub(super) const WINDOWS: usize = (ORDER_BITS + 1).div_ceil(WINDOW_BITS);

/// Table points per window: the multiples `1..=2^(W-1)` of the window's base.
const ENTRIES: usize = 1 << (WINDOW_BITS - 1);

/// Largest digit magnitude, `2^(W-1)`.
const HALF: i16 = 1 << (WINDOW_BITS - 1);

/// Coefficient `a` of the SM2 curve `y² = x³ + ax + b` (GB/T 32918.5 §3), `p - 3`, big-endian.
const CURVE_A: [u8; 32] = [
    0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc,
];

/// Coefficient `b` of the SM2 curve (GB/T 32918.5 §3), big-endian.
const CURVE_B: [u8; 32] = [
    0x28, 0xe9, 0xfa, 0x9e, 0x9d, 0x9f, 0x5e, 0x34, 0x4d, 0x5a, 0x9e, 0x4b, 0xcf, 0x65, 0x09, 0xa7,
    0xf3, 0x97, 0x89, 0xf5, 0x15, 0xab, 0x8f, 0x92, 0xdd, 0xbc, 0xbd, 0x41, 0x4d, 0x94, 0x0e, 0x93,
];

/// The comb of the generator, shared by every precomputed key. [`KeyTable::new`] forces it,
/// so the first request after a key load does not pay for it.
static GENERATOR_COMB: LazyLock<Option<Comb>> =
    LazyLock::new(|| Comb::new(ProjectivePoint::GENERATOR));

/// Signed radix-`2^W` digits of `k`, least significant first: `k = Σ dᵢ·2^(W·i)` with every
/// `dᵢ` in `[-(2^(W-1) - 1), 2^(W-1)]`. Variable time.
pub(super) fn recode(k: &Scalar) -> [i16; WINDOWS] {
    // `to_repr` is the big-endian encoding; little-endian 64-bit limbs make windows easy.
    let repr = k.to_repr();
    let mut limbs = [0u64; ORDER_BITS / 64];
    for (limb, chunk) in limbs.iter_mut().zip(repr.rchunks_exact(8)) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        *limb = u64::from_be_bytes(bytes);
    }
    let mask = (1u64 << WINDOW_BITS) - 1;
    let window = |pos: usize| -> i16 {
        let (index, offset) = (pos / 64, pos % 64);
        let mut bits = limbs.get(index).map_or(0, |l| l >> offset);
        if offset + WINDOW_BITS > 64 {
            if let Some(next) = limbs.get(index + 1) {
                bits |= next << (64 - offset);
            }
        }
        // At most 2^W - 1, which fits.
        (bits & mask) as i16
    };

    let mut digits = [0i16; WINDOWS];
    let mut carry = 0;
    for (i, digit) in digits.iter_mut().enumerate() {
        let value = window(i * WINDOW_BITS) + carry;
        if value > HALF {
            *digit = value - (1 << WINDOW_BITS);
            carry = 1;
        } else {
            *digit = value;
            carry = 0;
        }
    }
    // The top window holds at most bits 252..=255 of a 256-bit scalar, so it never carries.
    debug_assert_eq!(carry, 0);
    digits
}

/// For each window `i` in `0..windows`, the affine points `d·(2·entries)^i·B` for `d` in
/// `1..=entries` (`entries` a power of two), window by window: projective additions and one
/// batched normalisation. `None` if one were the identity, which cannot happen for a base
/// `B` of prime order `n` when no `d·(2·entries)^i` is a multiple of `n` (a prime above
/// 2^255, while these have only small prime factors).
pub(super) fn window_multiples(
    base: ProjectivePoint,
    windows: usize,
    entries: usize,
) -> Option<Box<[Affine]>> {
    let mut projective = Vec::with_capacity(windows * entries);
    let mut window_base = base;
    for _ in 0..windows {
        let mut multiple = window_base;
        projective.push(multiple);
        for _ in 1..entries {
            multiple += &window_base;
            projective.push(multiple);
        }
        // `entries·B_i` doubled is the next window's base.
        window_base = multiple.double();
    }
    let mut affine = vec![AffinePoint::IDENTITY; projective.len()];
    ProjectivePoint::batch_normalize(&projective, &mut affine);
    // If one were the identity, there would be no table rather than one whose indices had
    // shifted.
    let points: Option<Vec<Affine>> = affine.iter().map(Affine::from_crate).collect();
    Some(points?.into_boxed_slice())
}

/// The comb of one fixed base `B`: `points[i·ENTRIES + d - 1] = d·2^(W·i)·B`.
pub(super) struct Comb {
    points: Box<[Affine]>,
}

impl Comb {
    /// Builds the comb of `base` with projective additions and one batched normalisation.
    /// None of its points is the identity when `base` is not: each is `c·B` with
    /// `0 < c < 2^(W·WINDOWS)` and `c` not a multiple of the prime `n`.
    pub(super) fn new(base: ProjectivePoint) -> Option<Self> {
        Some(Self {
            points: window_multiples(base, WINDOWS, ENTRIES)?,
        })
    }

    /// `d·2^(W·window)·B` for `1 ≤ d ≤ 2^(W-1)`.
    fn entry(&self, window: usize, d: usize) -> &Affine {
        &self.points[window * ENTRIES + d - 1]
    }

    /// Adds `digit·2^(W·window)·B` to `acc`.
    fn add_digit(&self, acc: &mut Point, window: usize, digit: i16) {
        let magnitude = usize::from(digit.unsigned_abs());
        if magnitude == 0 {
            return;
        }
        // In bounds: `recode` keeps |digit| ≤ 2^(W-1) = ENTRIES and window < WINDOWS.
        acc.add_mixed(self.entry(window, magnitude), digit < 0);
    }

    /// `[k]B`, in variable time (verification adds two combs' terms at once instead).
    #[cfg(test)]
    fn mul(&self, k: &Scalar) -> Point {
        let mut acc = Point::IDENTITY;
        for (window, &digit) in recode(k).iter().enumerate() {
            self.add_digit(&mut acc, window, digit);
        }
        acc
    }

    /// Heap bytes held by the table.
    fn heap_bytes(&self) -> usize {
        size_of_val(&*self.points)
    }
}

/// What a precomputed verifying key adds to the crate's key: the comb of the public point
/// and the identity hash `Z_A`.
pub(super) struct KeyTable {
    generator: &'static Comb,
    comb: Comb,
    identity_hash: [u8; 32],
}

impl KeyTable {
    /// Builds the table of `public` (and the generator's, on first use). `None` only if a
    /// table point came out as the identity, which a valid key on the prime-order curve
    /// never gives: the key then verifies with the crate's path.
    pub(super) fn new(public: &sm2::PublicKey) -> Option<Self> {
        Some(Self {
            generator: GENERATOR_COMB.as_ref()?,
            comb: Comb::new(public.to_projective())?,
            identity_hash: identity_hash(public),
        })
    }

    /// Whether `sig` is a valid signature of `msg` under this key (GB/T 32918.2 §7.1, steps
    /// B3 to B7; B1 and B2 hold for every parsed [`Signature`]).
    pub(super) fn verify(&self, msg: &[u8], sig: &Signature) -> bool {
        // B3, B4: e = SM3(Z_A ‖ M), reduced mod n.
        let digest = Sm3::new_with_prefix(self.identity_hash)
            .chain_update(msg)
            .finalize();
        let e = Scalar::reduce(&FieldBytes::from(<[u8; 32]>::from(digest)));
        // B5: t = r + s mod n, not zero.
        let r = *sig.r();
        let s = *sig.s();
        let t = r + s;
        if bool::from(t.is_zero()) {
            return false;
        }
        // B6: (x1, y1) = [s]G + [t]P, not the identity.
        let (s_digits, t_digits) = (recode(&s), recode(&t));
        let mut acc = Point::IDENTITY;
        for window in 0..WINDOWS {
            self.generator.add_digit(&mut acc, window, s_digits[window]);
            self.comb.add_digit(&mut acc, window, t_digits[window]);
        }
        if acc.is_identity() {
            return false;
        }
        // B7: r = e + x1 mod n, that is x1 ≡ r - e (mod n), checked without an inversion.
        acc.x_reduces_to(&(r - e))
    }

    /// Heap bytes held for this key (its comb; the generator's is shared).
    pub(super) fn heap_bytes(&self) -> usize {
        self.comb.heap_bytes()
    }
}

impl fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyTable")
            .field("window_bits", &WINDOW_BITS)
            .field("bytes", &self.heap_bytes())
            .finish_non_exhaustive()
    }
}

/// `Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A)` (GB/T 32918.2 §5.5) with
/// `ID_A` = [`DEFAULT_DISTID`]: what the crate's key computes too, but keeps private.
pub(super) fn identity_hash(public: &sm2::PublicKey) -> [u8; 32] {
    // ID length in bits, two bytes big-endian; the ID is 16 bytes, so this is 128.
    const ENTL: u16 = (DEFAULT_DISTID.len() * 8) as u16;
    let generator = AffinePoint::GENERATOR.to_sec1_point(false);
    let public = public_to_sec1(public);
    Sm3::new()
        .chain_update(ENTL.to_be_bytes())
        .chain_update(DEFAULT_DISTID)
        .chain_update(CURVE_A)
        .chain_update(CURVE_B)
        // Both encodings are `04‖x‖y`: skip the tag.
        .chain_update(&generator.as_bytes()[1..])
        .chain_update(&public[1..])
        .finalize()
        .into()
}

#[cfg(test)]
mod tests;
