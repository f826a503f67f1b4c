//! Keyed 128-bit digests for in-process tables: the response cache's keys and the nonce
//! store's entries.
//!
//! Such a table needs a digest that callers cannot steer (no two requests they choose may
//! collide, nor crowd one bucket) and that is short and cheap, since it is taken on every
//! request. It need not be stable across processes or known to anyone. So it is two
//! SipHash-2-4 values under two independent 128-bit keys drawn from the operating system
//! once per process: a keyed pseudo-random function, where SM3 would be a public one at
//! several times the cost. At 128 bits the odds of an accidental collision among a million
//! entries are about 2^-89. (The standard library's `RandomState` would not do: its keys
//! on one thread differ by one from each other and from every `HashMap`'s there, and it
//! runs the reduced SipHash-1-3.)
//!
//! Because the digest is already keyed, the tables hash it by taking its first eight bytes
//! ([`DigestHashing`]).

use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::LazyLock;

/// A keyed digest.
pub type Digest128 = [u8; 16];

/// This process's two keys, drawn when the first digest is taken.
static KEYS: LazyLock<[(u64, u64); 2]> = LazyLock::new(draw_keys);

/// Four words from the operating system's random source; should it fail, from the standard
/// library's per-process random keys (also drawn from the OS), one fresh state per word.
fn draw_keys() -> [(u64, u64); 2] {
    let mut bytes = [0u8; 32];
    if super::fill_key(&mut bytes).is_err() {
        for (i, word) in bytes.chunks_exact_mut(8).enumerate() {
            word.copy_from_slice(&RandomState::new().hash_one(i).to_le_bytes());
        }
    }
    let mut words = bytes
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()));
    let mut next = || words.next().unwrap_or_default();
    [(next(), next()), (next(), next())]
}

/// The keyed digest of the concatenation of `parts`. The caller makes the concatenation
/// unambiguous (a length prefix, or a separator no part holds).
#[allow(deprecated)] // std's SipHasher is SipHash-2-4 with explicit keys, as wanted here.
pub fn digest128(parts: &[&[u8]]) -> Digest128 {
    let [(a0, a1), (b0, b1)] = *KEYS;
    let mut a = std::hash::SipHasher::new_with_keys(a0, a1);
    let mut b = std::hash::SipHasher::new_with_keys(b0, b1);
    for part in parts {
        a.write(part);
        b.write(part);
    }
    let mut digest = [0; 16];
    digest[..8].copy_from_slice(&a.finish().to_le_bytes());
    digest[8..].copy_from_slice(&b.finish().to_le_bytes());
    digest
}

/// The hasher of tables keyed by a [`Digest128`]: its first eight bytes. Hashing a keyed
/// digest again would only cost time.
#[derive(Debug, Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        // A digest hashes as its length (`write_usize`, ignored) and then its bytes.
        let mut first = [0; 8];
        let n = bytes.len().min(8);
        first[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(first);
    }

    fn write_usize(&mut self, _len: usize) {}

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`DigestHasher`]s.
pub type DigestHashing = BuildHasherDefault<DigestHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_stable_within_the_process_and_differ_between_inputs() {
        let a = digest128(&[b"app", b"\0", b"nonce"]);
        assert_eq!(a, digest128(&[b"app\0", b"nonce"]));
        assert_ne!(a, digest128(&[b"app", b"\0", b"nonce2"]));
        assert_ne!(a[..8], a[8..], "the two halves are under different keys");
    }

    #[test]
    fn the_table_hash_is_the_digests_first_bytes() {
        let d = digest128(&[b"x"]);
        let h = DigestHashing::default().hash_one(d);
        assert_eq!(h, u64::from_le_bytes(d[..8].try_into().unwrap()));
    }
}
