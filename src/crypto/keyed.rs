//! Keyed 128-bit digests for in-process tables: the response cache's keys and the nonce
//! store's entries.
//!
//! Such a table needs a digest that callers cannot steer (no two requests they choose may
//! collide, nor crowd one bucket) and that is short and cheap, since it is taken on every
//! request. It need not be known to anyone. So it is two SipHash-2-4 values under two
//! independent 128-bit keys: a keyed pseudo-random function, where SM3 would be a public one
//! at several times the cost. The keys are drawn from the operating system once per process
//! ([`digest128`]), or, for a table that outlives the process, derived from a secret that
//! does ([`DigestKey::derived`]: the gateway's replay store, kept across a restart). At 128 bits the odds of an accidental collision among a million
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

/// The keyed digest of the concatenation of `parts`, under this process's keys. The caller
/// makes the concatenation unambiguous (a length prefix, or a separator no part holds).
pub fn digest128(parts: &[&[u8]]) -> Digest128 {
    DigestKey(*KEYS).digest(parts)
}

/// The two SipHash keys of a [`Digest128`]. A secret: its `Debug` shows nothing of it.
#[derive(Clone, Copy)]
pub struct DigestKey([(u64, u64); 2]);

impl std::fmt::Debug for DigestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestKey(..)")
    }
}

impl DigestKey {
    /// This process's keys, drawn from the operating system when first used: the keys of
    /// [`digest128`].
    pub fn process() -> Self {
        Self(*KEYS)
    }

    /// Keys derived from `secret` for the use named by `label` (SM3 of `label ‖ secret`), so
    /// that the digests of a table saved by one process match the next one's. Whoever holds
    /// the secret can then choose colliding inputs, as no one can against a process's own
    /// keys: the secret must be kept as one (the gateway's is its pseudonym secret).
    pub fn derived(label: &[u8], secret: &[u8]) -> Self {
        let mut material = zeroize::Zeroizing::new(label.to_vec());
        material.extend_from_slice(secret);
        let bytes = zeroize::Zeroizing::new(super::sm3(&material));
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        Self([(word(0), word(1)), (word(2), word(3))])
    }

    /// The keyed digest of the concatenation of `parts` (see [`digest128`]).
    pub fn digest(&self, parts: &[&[u8]]) -> Digest128 {
        let mut d = self.digester();
        for part in parts {
            d.update(part);
        }
        d.finish()
    }

    /// The same digest, of bytes that come in pieces (a file as it is written).
    #[allow(deprecated)] // std's SipHasher is SipHash-2-4 with explicit keys, as wanted here.
    pub fn digester(&self) -> Digester {
        let [(a0, a1), (b0, b1)] = self.0;
        Digester(
            std::hash::SipHasher::new_with_keys(a0, a1),
            std::hash::SipHasher::new_with_keys(b0, b1),
        )
    }
}

/// A keyed digest being taken ([`DigestKey::digester`]).
#[allow(deprecated, missing_debug_implementations)]
pub struct Digester(std::hash::SipHasher, std::hash::SipHasher);

impl Digester {
    /// Adds `bytes`: a digest of pieces is the digest of their concatenation.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
        self.1.write(bytes);
    }

    /// The digest of everything added.
    pub fn finish(&self) -> Digest128 {
        let mut digest = [0; 16];
        digest[..8].copy_from_slice(&self.0.finish().to_le_bytes());
        digest[8..].copy_from_slice(&self.1.finish().to_le_bytes());
        digest
    }
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

    #[test]
    fn derived_keys_depend_on_the_secret_and_the_label_only() {
        let parts: &[&[u8]] = &[b"app", b"nonce"];
        let k = DigestKey::derived(b"label", b"secret").digest(parts);
        assert_eq!(k, DigestKey::derived(b"label", b"secret").digest(parts));
        assert_ne!(k, DigestKey::derived(b"label", b"secret2").digest(parts));
        assert_ne!(k, DigestKey::derived(b"label2", b"secret").digest(parts));
        assert_ne!(k, digest128(parts), "not the process's keys");
        assert_eq!(DigestKey::process().digest(parts), digest128(parts));
    }
}
