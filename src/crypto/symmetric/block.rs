//! The SM4 block cipher of GB/T 32907-2016, written for speed: the key schedule runs once per
//! key, and each round is four lookups into "T tables" that fuse the S-box with the linear
//! transform `L`.
//!
//! [`RoundKeys`] is all the state a key needs; the CBC mode and the padding on top of it are
//! in the parent module. Blocks travel as four big-endian words `X0..X3`, as the standard
//! writes them.
//!
//! # Timing
//!
//! The round function indexes its tables with bytes that depend on the key and the data, so
//! it is **not constant-time**: an attacker who can watch this process's cache lines (another
//! tenant on the same core or socket, through the shared cache, or a very patient remote
//! timer) learns something about which entries were read. The RustCrypto `sm4` crate this
//! replaces has the same property through its 256-byte S-box. The T tables are larger (4 KiB,
//! 64 cache lines, against the S-box's 4), which gives a cache observer finer information, as
//! with table-based AES. We accept that because:
//!
//! - the gateway runs on hosts of its own operator, not beside untrusted tenants; whoever runs
//!   it on shared cores (SMT siblings, oversubscribed VMs) should know that this and the crate
//!   before it are both exposed to cache-timing attacks;
//! - the tables fit in L1 and are warm under load, so remote timing differences are small and
//!   buried in TLS, JSON and network jitter;
//! - many `bizContent` keys are fresh per request (`encKey`), which limits observations per
//!   key. The registered client keys and the at-rest body key are long-lived, though, and for
//!   those the argument rests on the first two points alone.
//!
//! A bitsliced or hardware (GFNI / AES-NI affine trick) implementation would remove the leak;
//! if the threat model changes, that is the replacement, not a smaller table.

use zeroize::{Zeroize, Zeroizing};

/// The S-box of GB/T 32907-2016, row by row (the high nibble picks the row).
const SBOX: [u8; 256] = [
    0xd6, 0x90, 0xe9, 0xfe, 0xcc, 0xe1, 0x3d, 0xb7, 0x16, 0xb6, 0x14, 0xc2, 0x28, 0xfb, 0x2c, 0x05,
    0x2b, 0x67, 0x9a, 0x76, 0x2a, 0xbe, 0x04, 0xc3, 0xaa, 0x44, 0x13, 0x26, 0x49, 0x86, 0x06, 0x99,
    0x9c, 0x42, 0x50, 0xf4, 0x91, 0xef, 0x98, 0x7a, 0x33, 0x54, 0x0b, 0x43, 0xed, 0xcf, 0xac, 0x62,
    0xe4, 0xb3, 0x1c, 0xa9, 0xc9, 0x08, 0xe8, 0x95, 0x80, 0xdf, 0x94, 0xfa, 0x75, 0x8f, 0x3f, 0xa6,
    0x47, 0x07, 0xa7, 0xfc, 0xf3, 0x73, 0x17, 0xba, 0x83, 0x59, 0x3c, 0x19, 0xe6, 0x85, 0x4f, 0xa8,
    0x68, 0x6b, 0x81, 0xb2, 0x71, 0x64, 0xda, 0x8b, 0xf8, 0xeb, 0x0f, 0x4b, 0x70, 0x56, 0x9d, 0x35,
    0x1e, 0x24, 0x0e, 0x5e, 0x63, 0x58, 0xd1, 0xa2, 0x25, 0x22, 0x7c, 0x3b, 0x01, 0x21, 0x78, 0x87,
    0xd4, 0x00, 0x46, 0x57, 0x9f, 0xd3, 0x27, 0x52, 0x4c, 0x36, 0x02, 0xe7, 0xa0, 0xc4, 0xc8, 0x9e,
    0xea, 0xbf, 0x8a, 0xd2, 0x40, 0xc7, 0x38, 0xb5, 0xa3, 0xf7, 0xf2, 0xce, 0xf9, 0x61, 0x15, 0xa1,
    0xe0, 0xae, 0x5d, 0xa4, 0x9b, 0x34, 0x1a, 0x55, 0xad, 0x93, 0x32, 0x30, 0xf5, 0x8c, 0xb1, 0xe3,
    0x1d, 0xf6, 0xe2, 0x2e, 0x82, 0x66, 0xca, 0x60, 0xc0, 0x29, 0x23, 0xab, 0x0d, 0x53, 0x4e, 0x6f,
    0xd5, 0xdb, 0x37, 0x45, 0xde, 0xfd, 0x8e, 0x2f, 0x03, 0xff, 0x6a, 0x72, 0x6d, 0x6c, 0x5b, 0x51,
    0x8d, 0x1b, 0xaf, 0x92, 0xbb, 0xdd, 0xbc, 0x7f, 0x11, 0xd9, 0x5c, 0x41, 0x1f, 0x10, 0x5a, 0xd8,
    0x0a, 0xc1, 0x31, 0x88, 0xa5, 0xcd, 0x7b, 0xbd, 0x2d, 0x74, 0xd0, 0x12, 0xb8, 0xe5, 0xb4, 0xb0,
    0x89, 0x69, 0x97, 0x4a, 0x0c, 0x96, 0x77, 0x7e, 0x65, 0xb9, 0xf1, 0x09, 0xc5, 0x6e, 0xc6, 0x84,
    0x18, 0xf0, 0x7d, 0xec, 0x3a, 0xdc, 0x4d, 0x20, 0x79, 0xee, 0x5f, 0x3e, 0xd7, 0xcb, 0x39, 0x48,
];

// A typo in the table above would most likely break this; the known-answer tests catch the rest.
const _: () = assert!(is_permutation(&SBOX), "the SM4 S-box must be a permutation");

/// The system parameters `FK` of the key schedule.
const FK: [u32; 4] = [0xa3b1_bac6, 0x56aa_3350, 0x677d_9197, 0xb270_22dc];

/// The fixed parameters `CK` of the key schedule: byte `j` of `CK[i]` is
/// `(4i + j) × 7 mod 256`.
const CK: [u32; 32] = ck();

/// Rounds of the cipher, and so the number of round keys.
const ROUNDS: usize = 32;

/// The round transform `T` for an input whose only non-zero byte is `x` at byte position `byte`
/// (0 = most significant): `TABLES[byte][x] = L(τ(x << (24 − 8·byte)))`. Because `τ` works
/// bytewise and `L` is linear, `T(a‖b‖c‖d)` is the XOR of the four lookups.
static TABLES: [[u32; 256]; 4] = [t_table(24), t_table(16), t_table(8), t_table(0)];

/// The 32 round keys `rk0..rk31` of one SM4 key, derived once. Wiped on drop.
#[derive(Clone)]
pub(super) struct RoundKeys(Zeroizing<[u32; ROUNDS]>);

impl RoundKeys {
    /// The key schedule: `K = MK ⊕ FK`, then
    /// `rk_i = K_{i+4} = K_i ⊕ T'(K_{i+1} ⊕ K_{i+2} ⊕ K_{i+3} ⊕ CK_i)`.
    pub(super) fn new(key: &[u8; 16]) -> Self {
        let mut k = load(key);
        for (w, fk) in k.iter_mut().zip(FK) {
            *w ^= fk;
        }
        let mut rk = Zeroizing::new([0u32; ROUNDS]);
        for (i, (out, ck)) in rk.iter_mut().zip(CK).enumerate() {
            let next = k[i % 4] ^ t_prime(k[(i + 1) % 4] ^ k[(i + 2) % 4] ^ k[(i + 3) % 4] ^ ck);
            k[i % 4] = next;
            *out = next;
        }
        k.zeroize();
        Self(rk)
    }

    /// Encrypts one block, given and returned as words.
    #[inline]
    pub(super) fn encrypt(&self, block: [u32; 4]) -> [u32; 4] {
        let [out] = self.rounds::<1, false>([block]);
        out
    }

    /// Decrypts one block (CBC decryption uses [`RoundKeys::decrypt_many`], even for one).
    #[cfg(test)]
    pub(super) fn decrypt(&self, block: [u32; 4]) -> [u32; 4] {
        let [out] = self.rounds::<1, true>([block]);
        out
    }

    /// Decrypts `N` independent blocks at once. The rounds of one block form a chain of
    /// dependent lookups; interleaving several blocks keeps the load units busy while each
    /// chain waits. Only CBC decryption has independent blocks (encryption chains them).
    #[inline]
    pub(super) fn decrypt_many<const N: usize>(&self, blocks: [[u32; 4]; N]) -> [[u32; 4]; N] {
        self.rounds::<N, true>(blocks)
    }

    /// The 32 rounds on `N` blocks, then the reverse transform `R`. Decryption is
    /// the same with the round keys in reverse order.
    #[inline(always)]
    fn rounds<const N: usize, const DECRYPT: bool>(&self, blocks: [[u32; 4]; N]) -> [[u32; 4]; N] {
        let rk = &*self.0;
        let mut x = blocks;
        // Four rounds per step, so the words never move: round i updates word i mod 4.
        for step in 0..ROUNDS / 4 {
            for j in 0..4 {
                let i = step * 4 + j;
                let k = rk[if DECRYPT { ROUNDS - 1 - i } else { i }];
                for block in &mut x {
                    let input = block[(j + 1) % 4] ^ block[(j + 2) % 4] ^ block[(j + 3) % 4] ^ k;
                    block[j] ^= t(input);
                }
            }
        }
        let mut out = [[0u32; 4]; N];
        for (o, block) in out.iter_mut().zip(x) {
            *o = [block[3], block[2], block[1], block[0]];
        }
        out
    }
}

/// The round transform `T = L ∘ τ`, by table.
#[inline(always)]
fn t(x: u32) -> u32 {
    let [a, b, c, d] = x.to_be_bytes();
    TABLES[0][usize::from(a)]
        ^ TABLES[1][usize::from(b)]
        ^ TABLES[2][usize::from(c)]
        ^ TABLES[3][usize::from(d)]
}

/// The key-schedule transform `T' = L' ∘ τ`. Runs 32 times per key, so it uses the S-box
/// directly rather than tables of its own.
fn t_prime(x: u32) -> u32 {
    let b = u32::from_be_bytes(x.to_be_bytes().map(|v| SBOX[usize::from(v)]));
    b ^ b.rotate_left(13) ^ b.rotate_left(23)
}

/// The linear transform `L` of the round function.
const fn l(b: u32) -> u32 {
    b ^ b.rotate_left(2) ^ b.rotate_left(10) ^ b.rotate_left(18) ^ b.rotate_left(24)
}

/// One T table: `L(S(x) << shift)` for every byte `x`.
const fn t_table(shift: u32) -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut x = 0;
    while x < 256 {
        table[x] = l((SBOX[x] as u32) << shift);
        x += 1;
    }
    table
}

/// `CK` from its definition.
const fn ck() -> [u32; 32] {
    let mut out = [0u32; 32];
    let mut i = 0;
    while i < 32 {
        let mut word = 0u32;
        let mut j = 0;
        while j < 4 {
            word = (word << 8) | (((4 * i + j) * 7) % 256) as u32;
            j += 1;
        }
        out[i] = word;
        i += 1;
    }
    out
}

/// Whether every byte value occurs exactly once in `table`.
const fn is_permutation(table: &[u8; 256]) -> bool {
    let mut seen = [false; 256];
    let mut i = 0;
    while i < 256 {
        let v = table[i] as usize;
        if seen[v] {
            return false;
        }
        seen[v] = true;
        i += 1;
    }
    true
}

/// The first 16 bytes of `block` as four big-endian words.
///
/// # Panics
/// If `block` is shorter than 16 bytes. Callers pass whole blocks (`chunks_exact(16)`, keys,
/// IVs), never a length taken from input.
#[inline(always)]
pub(super) fn load(block: &[u8]) -> [u32; 4] {
    let b = &block[..16];
    [
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
    ]
}

/// Writes four words big-endian into the first 16 bytes of `out`.
///
/// # Panics
/// If `out` is shorter than 16 bytes (as for [`load`]).
#[inline(always)]
pub(super) fn store(words: [u32; 4], out: &mut [u8]) {
    for (bytes, w) in out[..16].chunks_exact_mut(4).zip(words) {
        bytes.copy_from_slice(&w.to_be_bytes());
    }
}

/// XOR of two blocks in word form.
#[inline(always)]
pub(super) fn xor(a: [u32; 4], b: [u32; 4]) -> [u32; 4] {
    [a[0] ^ b[0], a[1] ^ b[1], a[2] ^ b[2], a[3] ^ b[3]]
}
