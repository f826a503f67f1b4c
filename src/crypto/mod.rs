//! National cryptography (DESIGN.md §4): SM2 signatures and public-key encryption, SM3,
//! HMAC-SM3 and SM4-CBC. SM2 and SM3 are the RustCrypto crates; SM4 is our own, for speed.
//!
//! Everything that signs, verifies, encrypts or decrypts on the request path goes through
//! this module: the envelope (`crate::envelope`), PHIC1 tokens, the trust list and the audit
//! chain. It is synchronous, allocation-light and has no I/O beyond the OS random number
//! generator.
//!
//! Contracts that hold for every function here:
//! - Malformed input (wrong lengths, bad encodings, points off the curve, the identity point,
//!   oversized DER integers, truncated DER, bad padding, empty input) gives a
//!   [`CryptoError`], never a panic.
//! - Secret keys ([`SigningKey`], [`DecryptionKey`], [`Sm4Key`], [`MacKey`]) are wiped when
//!   dropped, and their `Debug` output does not show them.
//! - SM2 uses the distinguishing ID [`DEFAULT_DISTID`] (`1234567812345678`), as GM/T 0009
//!   and OpenSSL's `-pkeyopt distid:1234567812345678` do.
//!
//! Layout: `sm2` (signature keys and the key codecs), `sm2_sign` (signing with the key's
//! constant part computed once), `sm2_table` (precomputed tables that speed up
//! verification with long-lived keys), `pke` (SM2 encryption, GM/T 0009 DER
//! ciphertexts), `hash` (SM3, HMAC-SM3), `symmetric` (SM4-CBC and the block cipher under it),
//! `random` (the OS random number generator, drawn from in blocks), `error`.

mod error;
mod hash;
mod keyed;
mod pke;
mod random;
mod sm2;
mod sm2_sign;
mod sm2_table;
mod symmetric;

#[cfg(test)]
mod tests;

pub use error::CryptoError;
pub use hash::{MIN_MAC_KEY_LEN, MacKey, SM3_LEN, hmac_sm3, hmac_sm3_verify, sm3};
pub use keyed::{Digest128, DigestHasher, DigestHashing, DigestKey, Digester, digest128};
pub use pke::{DecryptionKey, EncryptionKey};
pub use sm2::{DEFAULT_DISTID, KeyTables, SigningKey, VerifyingKey};
pub use symmetric::{SM4_BLOCK_LEN, SM4_KEY_LEN, Sm4Key};

pub use random::{fill_key, fill_random};

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Decodes hex of any even length into bytes, in time that depends only on the length
/// (for secret keys). `what` names the value in the error.
///
/// # Errors
/// [`CryptoError::InvalidHex`] for an odd length or a character that is not hex.
pub fn decode_hex(
    hex: &str,
    what: &'static str,
) -> Result<zeroize::Zeroizing<Vec<u8>>, CryptoError> {
    if hex.len() % 2 != 0 {
        return Err(CryptoError::InvalidHex { what });
    }
    let mut out = zeroize::Zeroizing::new(vec![0u8; hex.len() / 2]);
    decode_hex_into(hex, &mut out, what)?;
    Ok(out)
}

/// Decodes hex (either case) into `out`, which must be exactly half as long as `hex`.
///
/// `what` names the value in the error. Runs in time that depends only on the length, so it
/// can decode secret keys.
pub(crate) fn decode_hex_into(
    hex: &str,
    out: &mut [u8],
    what: &'static str,
) -> Result<(), CryptoError> {
    let hex = hex.as_bytes();
    if hex.len() != out.len() * 2 {
        return Err(CryptoError::InvalidHex { what });
    }
    let mut bad = 0u8;
    for (pair, byte) in hex.chunks_exact(2).zip(out.iter_mut()) {
        let (hi, hi_bad) = nibble(pair[0]);
        let (lo, lo_bad) = nibble(pair[1]);
        bad |= hi_bad | lo_bad;
        *byte = (hi << 4) | lo;
    }
    if bad != 0 {
        return Err(CryptoError::InvalidHex { what });
    }
    Ok(())
}

/// Value of one hex digit, and 1 if it was not one. Branch-free on the digit.
fn nibble(c: u8) -> (u8, u8) {
    // Each range test yields 0xff when `c` is inside it and 0 otherwise.
    // (a - b) as u16 has its high byte set exactly when a < b.
    let in_range = |lo: u8, hi: u8| -> u8 {
        let at_least_lo = 1 ^ ((u16::from(c).wrapping_sub(u16::from(lo)) >> 8) & 1);
        let at_most_hi = 1 ^ ((u16::from(hi).wrapping_sub(u16::from(c)) >> 8) & 1);
        ((at_least_lo & at_most_hi) as u8).wrapping_neg()
    };
    let digit = in_range(b'0', b'9');
    let upper = in_range(b'A', b'F');
    let lower = in_range(b'a', b'f');
    let value = (digit & c.wrapping_sub(b'0'))
        | (upper & c.wrapping_sub(b'A' - 10))
        | (lower & c.wrapping_sub(b'a' - 10));
    let bad = ((digit | upper | lower) ^ 0xff) & 1;
    (value, bad)
}
