//! SM4 (GB/T 32907) in CBC mode with PKCS#7 padding, IV first.
//!
//! The wire form, used for the envelope's `bizContent` and for personal fields at rest, is
//! `IV(16) ‖ SM4-CBC-PKCS#7(key, IV, plaintext)` with a fresh random IV per message. CBC gives
//! no integrity: the envelope authenticates the ciphertext (encrypt-then-sign) before it
//! reaches [`Sm4Key::decrypt_cbc`], so padding errors are never an oracle there.
//!
//! The block cipher is our own (`block`): on the cached `verifyCode` path SM4 was a tenth of
//! the gateway's CPU through the RustCrypto `sm4` and `cbc` crates, which also redid the key
//! schedule on every call. Here an [`Sm4Key`] derives its round keys once, and the rounds use
//! table lookups (`block` says why their timing is acceptable). The RustCrypto crates remain as
//! dev-dependencies: the tests check agreement with them, and `benches/crypto.rs` measures
//! against them.

use std::fmt;

use zeroize::Zeroizing;

use self::block::{RoundKeys, load, store, xor};
use super::CryptoError;

mod block;

#[cfg(test)]
mod tests;

/// SM4 key length in bytes.
pub const SM4_KEY_LEN: usize = 16;

/// SM4 block length in bytes, which is also the IV length.
pub const SM4_BLOCK_LEN: usize = 16;

/// A 128-bit SM4 key and its round keys. Both are wiped on drop; `Debug` does not show them.
#[derive(Clone)]
pub struct Sm4Key {
    /// The key as given, for [`Sm4Key::as_bytes`].
    key: Zeroizing<[u8; SM4_KEY_LEN]>,
    /// The key schedule, computed once.
    round_keys: RoundKeys,
}

impl Sm4Key {
    /// Wraps exactly 16 key bytes ([`CryptoError::InvalidSm4Key`] for any other length).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; SM4_KEY_LEN]);
        if bytes.len() != SM4_KEY_LEN {
            return Err(CryptoError::InvalidSm4Key);
        }
        key.copy_from_slice(bytes);
        Ok(Self::new(key))
    }

    /// Parses 32 hex digits ([`CryptoError::InvalidHex`]).
    pub fn from_hex(hex: &str) -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; SM4_KEY_LEN]);
        super::decode_hex_into(hex, key.as_mut_slice(), "SM4 key")?;
        Ok(Self::new(key))
    }

    /// A fresh random key from the OS RNG ([`CryptoError::Rng`] if it fails).
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; SM4_KEY_LEN]);
        super::fill_key(key.as_mut_slice())?;
        Ok(Self::new(key))
    }

    /// Runs the key schedule.
    fn new(key: Zeroizing<[u8; SM4_KEY_LEN]>) -> Self {
        let round_keys = RoundKeys::new(&key);
        Self { key, round_keys }
    }

    /// The key bytes. Key material: do not log.
    pub fn as_bytes(&self) -> &[u8; SM4_KEY_LEN] {
        &self.key
    }

    /// `IV ‖ SM4-CBC-PKCS#7(plain)` with a fresh random IV. The output is 16 bytes of IV plus
    /// `plain` rounded up to the next whole block (an empty `plain` gives one block).
    ///
    /// Fails only if the OS RNG fails ([`CryptoError::Rng`]).
    pub fn encrypt_cbc(&self, plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut iv = [0u8; SM4_BLOCK_LEN];
        super::fill_random(&mut iv)?;
        Ok(self.encrypt_cbc_with_iv(&iv, plain))
    }

    /// [`Sm4Key::encrypt_cbc`] with a given IV, for known-answer tests. An IV must never be
    /// predictable or reused under one key, which is why this is not public.
    pub(crate) fn encrypt_cbc_with_iv(&self, iv: &[u8; SM4_BLOCK_LEN], plain: &[u8]) -> Vec<u8> {
        // PKCS#7: 1 to 16 bytes, each holding the count; a whole block when `plain` is aligned.
        let pad = SM4_BLOCK_LEN - plain.len() % SM4_BLOCK_LEN;
        let mut out = Vec::with_capacity(SM4_BLOCK_LEN + plain.len() + pad);
        out.extend_from_slice(iv);
        out.extend_from_slice(plain);
        // `pad` is 1..=16, so the cast is exact.
        out.resize(out.len() + pad, pad as u8);

        // Encrypt in place: C_i = E(P_i ⊕ C_{i-1}), with C_0 the IV.
        let mut chain = load(iv);
        for block in out[SM4_BLOCK_LEN..].chunks_exact_mut(SM4_BLOCK_LEN) {
            chain = self.round_keys.encrypt(xor(load(block), chain));
            store(chain, block);
        }
        out
    }

    /// Decrypts `IV ‖ ciphertext` and removes the PKCS#7 padding.
    ///
    /// [`CryptoError::Sm4DecryptFailed`] when `data` is shorter than two blocks, is not a
    /// whole number of blocks, or has bad padding (what a wrong key usually gives).
    pub fn decrypt_cbc(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if data.len() < 2 * SM4_BLOCK_LEN || data.len() % SM4_BLOCK_LEN != 0 {
            return Err(CryptoError::Sm4DecryptFailed);
        }
        let body = &data[SM4_BLOCK_LEN..];
        // P_i = D(C_i) ⊕ C_{i-1}. `data` is the sequence of C_{i-1} (IV first) for the blocks
        // of `body`, so each block reads its predecessor straight from the input: one output
        // buffer, no copy of the ciphertext, and the blocks are independent of each other.
        let mut out = vec![0u8; body.len()];
        // Runs of 8 blocks side by side, then at most one run each of 4, 2 and 1 for the rest.
        let mut done = self.decrypt_runs::<8>(&mut out, body, data);
        done += self.decrypt_runs::<4>(&mut out[done..], &body[done..], &data[done..]);
        done += self.decrypt_runs::<2>(&mut out[done..], &body[done..], &data[done..]);
        done += self.decrypt_runs::<1>(&mut out[done..], &body[done..], &data[done..]);
        debug_assert_eq!(done, body.len());

        let Some(kept) = unpadded_len(&out) else {
            // What a wrong key or a forged block gave is not kept either.
            zeroize::Zeroize::zeroize(&mut out);
            return Err(CryptoError::Sm4DecryptFailed);
        };
        out.truncate(kept);
        Ok(out)
    }

    /// CBC-decrypts as many whole runs of `N` blocks of `cur` as fit into `dst`, with `prev`
    /// the ciphertext blocks before them (`prev` is `cur` one block earlier, starting at the
    /// IV). Returns the bytes done: `N` blocks at a time, so a remainder is left for a smaller
    /// `N`.
    fn decrypt_runs<const N: usize>(&self, dst: &mut [u8], cur: &[u8], prev: &[u8]) -> usize {
        let run = N * SM4_BLOCK_LEN;
        let mut done = 0;
        for ((dst, cur), prev) in dst
            .chunks_exact_mut(run)
            .zip(cur.chunks_exact(run))
            .zip(prev.chunks_exact(run))
        {
            let mut blocks = [[0u32; 4]; N];
            for (words, c) in blocks.iter_mut().zip(cur.chunks_exact(SM4_BLOCK_LEN)) {
                *words = load(c);
            }
            let plain = self.round_keys.decrypt_many(blocks);
            for ((p, d), c) in plain
                .into_iter()
                .zip(dst.chunks_exact_mut(SM4_BLOCK_LEN))
                .zip(prev.chunks_exact(SM4_BLOCK_LEN))
            {
                store(xor(p, load(c)), d);
            }
            done += run;
        }
        done
    }
}

impl fmt::Debug for Sm4Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sm4Key(..)")
    }
}

/// The length of `padded` without its PKCS#7 padding, or `None` if the padding is wrong: the
/// last byte `n` must be 1 to 16 and the last `n` bytes must all be `n`. `padded` is at least
/// one whole block.
fn unpadded_len(padded: &[u8]) -> Option<usize> {
    let last_block = padded.get(padded.len().checked_sub(SM4_BLOCK_LEN)?..)?;
    let n = *last_block.last()?;
    // Every byte of the last block is checked whatever `n` is, so how far the check got does
    // not show in the time taken (the caller authenticates first anyway: see the module doc).
    let mut bad = u8::from(n == 0) | u8::from(usize::from(n) > SM4_BLOCK_LEN);
    for (from_end, &b) in last_block.iter().rev().enumerate() {
        let in_padding = from_end < usize::from(n);
        bad |= u8::from(in_padding) & u8::from(b != n);
    }
    (bad == 0).then(|| padded.len() - usize::from(n))
}
