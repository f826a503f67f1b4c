//! The verification's own point arithmetic: projective accumulation that the final check
//! reads without an inversion.
//!
//! The `sm2` crate's projective point keeps its coordinates private, so the only way to
//! its `x` is `to_affine`, one field inversion. Measured under `perf` during the cold
//! verification benchmark, that inversion (the crate's constant-time `divstep`) was 31% of
//! a verification's time, as much as half of the 74 point additions. Check B7 needs no
//! affine `x`: with `(X : Y : Z)` the homogeneous projective result, `x1 = X/Z`, and
//! `r = e + x1 mod n` holds exactly when `X = c·Z` for `c = r - e mod n`, or for `c + n`
//! when that is still below `p` (an `x1` in `[n, p)` reduces to `x1 - n`). Two
//! multiplications instead of an inversion.
//!
//! So the accumulator is this module's [`Point`], over the crate's field element (reached
//! through its `PrimeCurveParams` implementation), and the additions are the complete
//! mixed addition for `a = -3` of Renes, Costello and Batina, "Complete addition formulas
//! for prime order elliptic curves" (EUROCRYPT 2016, eprint 2015/1060), Algorithm 5:
//! eleven multiplications, correct for every accumulator including the identity and the
//! doubling and inverse cases, so no signature can steer it into an exceptional case.
//! Verification handles public values only. The signer (`crypto::sm2_sign`) uses the same
//! types for its secret `[k]G`, so what it calls is constant time: [`Point::add_mixed`] is
//! branch-free over the crate's constant-time field arithmetic (its `negate` flag is the
//! verifier's; the signer negates in constant time itself and passes `false`),
//! [`Point::affine_x`] is a fixed sequence of squarings and multiplications, and
//! [`Point::conditional_select`] selects without a branch. [`Point::x_reduces_to`] and
//! [`Point::is_identity`] branch, and serve verification only.

use primeorder::PrimeCurveParams;
use sm2::elliptic_curve::PrimeField;
use sm2::elliptic_curve::hazmat::FieldArithmetic;
use sm2::elliptic_curve::point::AffineCoordinates;
use sm2::elliptic_curve::subtle::{Choice, ConditionallySelectable};
use sm2::{AffinePoint, FieldBytes, Scalar, Sm2};

/// An element of the SM2 base field `GF(p)`.
pub(in crate::crypto) type Fe = <Sm2 as FieldArithmetic>::FieldElement;

/// `p - n`, big-endian: `c + n < p` exactly when `c < p - n`.
const P_MINUS_N: [u8; 32] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x8d, 0xfc, 0x20, 0x93, 0xde, 0x39, 0xfa, 0xd5,
    0xac, 0x44, 0x0b, 0xf6, 0xc6, 0x2a, 0xbe, 0xdc,
];

/// The group order `n` (GB/T 32918.5), big-endian.
const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x72, 0x03, 0xdf, 0x6b, 0x21, 0xc6, 0x05, 0x2b, 0x53, 0xbb, 0xf4, 0x09, 0x39, 0xd5, 0x41, 0x23,
];

/// A table point: affine, never the identity.
#[derive(Clone, Copy, Debug)]
pub(in crate::crypto) struct Affine {
    pub(in crate::crypto) x: Fe,
    pub(in crate::crypto) y: Fe,
}

impl ConditionallySelectable for Affine {
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        Self {
            x: Fe::conditional_select(&a.x, &b.x, choice),
            y: Fe::conditional_select(&a.y, &b.y, choice),
        }
    }
}

impl Affine {
    /// The coordinates of a point of the crate; `None` for the identity.
    pub(super) fn from_crate(p: &AffinePoint) -> Option<Self> {
        if bool::from(p.is_identity()) {
            return None;
        }
        let x = Option::from(Fe::from_repr(p.x()))?;
        let y = Option::from(Fe::from_repr(p.y()))?;
        Some(Self { x, y })
    }

    /// The same point as the crate's type (tests compare with the crate).
    #[cfg(test)]
    pub(super) fn to_crate(self) -> AffinePoint {
        Option::from(AffinePoint::from_coordinates(
            &self.x.to_repr(),
            &self.y.to_repr(),
        ))
        .expect("a curve point")
    }
}

/// A point in homogeneous projective coordinates: `(X : Y : Z)` is the affine `(X/Z, Y/Z)`,
/// and `Z = 0` the identity.
#[derive(Clone, Copy, Debug)]
pub(in crate::crypto) struct Point {
    x: Fe,
    y: Fe,
    z: Fe,
}

impl Point {
    /// The identity, `(0 : 1 : 0)`.
    pub(in crate::crypto) const IDENTITY: Self = Self {
        x: Fe::ZERO,
        y: Fe::ONE,
        z: Fe::ZERO,
    };

    pub(in crate::crypto) fn is_identity(&self) -> bool {
        bool::from(self.z.is_zero())
    }

    /// `self += q`, or `self -= q` when `negate`: RCB Algorithm 5 step by step (the `tᵢ` are
    /// the paper's registers).
    pub(in crate::crypto) fn add_mixed(&mut self, q: &Affine, negate: bool) {
        let b = <Sm2 as PrimeCurveParams>::EQUATION_B;
        let (x1, y1, z1) = (self.x, self.y, self.z);
        let x2 = q.x;
        let y2 = if negate { -q.y } else { q.y };

        let mut t0 = x1 * x2; // 1
        let mut t1 = y1 * y2; // 2
        let mut t3 = (x2 + y2) * (x1 + y1) - (t0 + t1); // 3–7
        let t4 = y2 * z1 + y1; // 8, 9
        let mut y3 = x2 * z1 + x1; // 10, 11
        let mut x3 = y3 - b * z1; // 12, 13
        x3 = x3.double() + x3; // 14, 15
        let mut z3 = t1 - x3; // 16
        x3 += t1; // 17
        let t2 = z1.double() + z1; // 19, 20
        y3 = b * y3 - t2 - t0; // 18, 21, 22
        y3 = y3.double() + y3; // 23, 24
        t0 = t0.double() + t0 - t2; // 25–27
        t1 = t4 * y3; // 28
        let t2 = t0 * y3; // 29
        y3 = x3 * z3 + t2; // 30, 31
        x3 = t3 * x3 - t1; // 32, 33
        t3 *= t0; // 35
        z3 = t4 * z3 + t3; // 34, 36
        *self = Self {
            x: x3,
            y: y3,
            z: z3,
        };
    }

    /// The affine `x`, `X·Z^(p-2)` (Fermat), in constant time: the exponent is fixed, so
    /// the squarings and multiplications are the same for every point. (The crate's
    /// `to_affine` inverts with its constant-time `divstep` loop, which costs more:
    /// `crypto::sm2_sign` has the figures.) The identity (`Z = 0`) gives 0; the signer's
    /// `[k]G` is never the identity.
    pub(in crate::crypto) fn affine_x(&self) -> Fe {
        self.x * invert(&self.z)
    }

    /// Whether this point's affine `x`, reduced mod `n`, is `c` (a scalar, so below `n`):
    /// `X = c·Z`, or `X = (c + n)·Z` when `c + n < p`. False for the identity.
    pub(super) fn x_reduces_to(&self, c: &Scalar) -> bool {
        if self.is_identity() {
            return false;
        }
        let c_bytes = c.to_repr();
        // c < n < p: always a field element.
        let Some(c_fe) = Option::<Fe>::from(Fe::from_repr(c_bytes)) else {
            return false;
        };
        if self.x == c_fe * self.z {
            return true;
        }
        if c_bytes.as_slice() >= P_MINUS_N.as_slice() {
            return false;
        }
        let Some(n) = Option::<Fe>::from(Fe::from_repr(FieldBytes::from(ORDER))) else {
            return false;
        };
        self.x == (c_fe + n) * self.z
    }

    /// Projective coordinates `(x·z, y·z, z)` of an affine point (tests only: any `z ≠ 0`
    /// names the same point).
    #[cfg(test)]
    pub(super) fn scaled(p: &Affine, z: Fe) -> Self {
        Self {
            x: p.x * z,
            y: p.y * z,
            z,
        }
    }

    /// The same point as the crate's type, with one inversion (tests only).
    #[cfg(test)]
    pub(in crate::crypto) fn to_crate(self) -> AffinePoint {
        match Option::<Fe>::from(self.z.invert()) {
            None => AffinePoint::IDENTITY,
            Some(zi) => Affine {
                x: self.x * zi,
                y: self.y * zi,
            }
            .to_crate(),
        }
    }
}

impl ConditionallySelectable for Point {
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        Self {
            x: Fe::conditional_select(&a.x, &b.x, choice),
            y: Fe::conditional_select(&a.y, &b.y, choice),
            z: Fe::conditional_select(&a.z, &b.z, choice),
        }
    }
}

/// `z^(p-2)`, which is `z^-1` for `z ≠ 0` and 0 for 0, by a fixed addition chain.
///
/// With `aₖ = z^(2^k - 1)` and SM2's `p - 2` = `FFFFFFFE FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFF
/// 00000000 FFFFFFFF FFFFFFFD`, the exponent's bits from the top are 31 ones, a zero, 128
/// ones, 32 zeros, 62 ones, a zero and a one: 354 squarings and 14 multiplications.
pub(in crate::crypto) fn invert(z: &Fe) -> Fe {
    let sqn = |mut v: Fe, n: usize| {
        for _ in 0..n {
            v = v.square();
        }
        v
    };
    let a1 = *z;
    let a2 = a1.square() * a1;
    let a3 = a2.square() * a1;
    let a4 = sqn(a2, 2) * a2;
    let a6 = sqn(a3, 3) * a3;
    let a12 = sqn(a6, 6) * a6;
    let a15 = sqn(a12, 3) * a3;
    let a30 = sqn(a15, 15) * a15;
    let a31 = a30.square() * a1;
    let a62 = sqn(a31, 31) * a31;
    let a124 = sqn(a62, 62) * a62;
    let a128 = sqn(a124, 4) * a4;
    let mut r = sqn(a31, 1);
    r = sqn(r, 128) * a128;
    r = sqn(r, 32);
    r = sqn(r, 62) * a62;
    r = sqn(r, 2) * a1;
    r
}
