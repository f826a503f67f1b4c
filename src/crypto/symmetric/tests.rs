//! SM4: the known answers of GB/T 32907-2016 at the block level, agreement with the RustCrypto
//! `sm4` and `cbc` crates (the implementation this one replaced) on random keys, IVs and
//! lengths, and the padding and length errors of CBC decryption. The round trips and the
//! OpenSSL interop of [`Sm4Key`] are in `crypto/tests.rs` and `tests/openssl.rs`.

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit};
use proptest::prelude::*;

use super::block::{RoundKeys, load, store, xor};
use super::*;
use crate::crypto::{decode_hex, to_hex};

/// The key and plaintext of GB/T 32907-2016 Appendix A.
const EXAMPLE: &str = "0123456789abcdeffedcba9876543210";

fn example_key() -> [u8; 16] {
    let mut key = [0u8; 16];
    key.copy_from_slice(&decode_hex(EXAMPLE, "test").unwrap());
    key
}

/// Encrypts one block with [`RoundKeys`] `times` times over, as example 2 does.
fn encrypt_repeatedly(key: &[u8; 16], block: &[u8; 16], times: usize) -> String {
    let rk = RoundKeys::new(key);
    let mut x = load(block);
    for _ in 0..times {
        x = rk.encrypt(x);
    }
    let mut out = [0u8; 16];
    store(x, &mut out);
    to_hex(&out)
}

#[test]
fn block_matches_gbt_32907_example_1() {
    let key = example_key();
    assert_eq!(
        encrypt_repeatedly(&key, &key, 1),
        "681edf34d206965e86b3e94f536e4246"
    );
    let rk = RoundKeys::new(&key);
    assert_eq!(rk.decrypt(rk.encrypt(load(&key))), load(&key));
}

/// Example 2: the example block encrypted 1,000,000 times under the example key. About a
/// second in an unoptimised build: `cargo test --lib -- --ignored sm4`.
#[test]
#[ignore = "a million block encryptions; run with --ignored"]
fn block_matches_gbt_32907_example_2() {
    let key = example_key();
    assert_eq!(
        encrypt_repeatedly(&key, &key, 1_000_000),
        "595298c7c6fd271f0402f804c33d3f66"
    );
}

/// The short form of example 2 that always runs: 10,000 iterations, against RustCrypto.
#[test]
fn repeated_encryption_agrees_with_rustcrypto() {
    let key = example_key();
    let theirs = sm4::Sm4::new(&key.into());
    let mut block = key.into();
    for _ in 0..10_000 {
        theirs.encrypt_block(&mut block);
    }
    assert_eq!(encrypt_repeatedly(&key, &key, 10_000), to_hex(&block));
}

/// The interleaved decryption gives what one block at a time gives.
#[test]
fn decrypt_many_matches_decrypt() {
    let rk = RoundKeys::new(&example_key());
    let blocks: [[u32; 4]; 8] = std::array::from_fn(|b| {
        let b = b as u32;
        [b, b.wrapping_mul(0x9e37_79b9), !b, b << 20]
    });
    let many = rk.decrypt_many(blocks);
    for (one, block) in many.iter().zip(blocks) {
        assert_eq!(*one, rk.decrypt(block));
    }
}

/// A two-block `IV ‖ C` whose last block decrypts to `last`: `C` is zero and the IV is chosen.
fn with_last_block(key: &Sm4Key, last: [u8; 16]) -> Vec<u8> {
    let mut data = vec![0u8; 32];
    let iv = xor(key.round_keys.decrypt([0; 4]), load(&last));
    store(iv, &mut data);
    data
}

#[test]
fn decrypt_checks_every_padding_byte() {
    let key = Sm4Key::from_bytes(&[5; 16]).unwrap();
    let mut good = [0xaa; 16];
    good[13..].fill(3);
    assert_eq!(
        key.decrypt_cbc(&with_last_block(&key, good)).unwrap(),
        [0xaa; 13]
    );
    assert_eq!(
        key.decrypt_cbc(&with_last_block(&key, [16; 16])).unwrap(),
        b""
    );

    let mut bad = Vec::new();
    for last in [0, 17, 0xff] {
        let mut block = [last; 16];
        block[15] = last;
        bad.push(block);
    }
    // One byte inside the padding differs, at each position from the far end to the near end.
    for wrong_at in 0..15 {
        let mut block = [16; 16];
        block[wrong_at] = 15;
        bad.push(block);
    }
    let mut short = [0xaa; 16];
    short[14..].copy_from_slice(&[3, 3]);
    bad.push(short);
    for block in bad {
        assert_eq!(
            key.decrypt_cbc(&with_last_block(&key, block)),
            Err(CryptoError::Sm4DecryptFailed),
            "{block:?}"
        );
    }
}

#[test]
fn decrypt_rejects_lengths_that_are_not_iv_plus_blocks() {
    let key = Sm4Key::from_bytes(&[5; 16]).unwrap();
    let valid = key.encrypt_cbc(&[7; 40]).unwrap();
    assert_eq!(valid.len(), 64);
    for len in (0..valid.len()).filter(|l| *l < 32 || l % 16 != 0) {
        assert_eq!(
            key.decrypt_cbc(&valid[..len]),
            Err(CryptoError::Sm4DecryptFailed),
            "length {len}"
        );
    }
    let mut longer = valid.clone();
    longer.push(0);
    assert_eq!(key.decrypt_cbc(&longer), Err(CryptoError::Sm4DecryptFailed));
}

#[test]
fn clones_and_constructors_agree() {
    let a = Sm4Key::from_hex(EXAMPLE).unwrap();
    let b = Sm4Key::from_bytes(&example_key()).unwrap();
    let iv = [9; 16];
    assert_eq!(a.as_bytes(), &example_key());
    assert_eq!(
        a.clone().encrypt_cbc_with_iv(&iv, b"x"),
        b.encrypt_cbc_with_iv(&iv, b"x")
    );
}

/// RustCrypto's SM4-CBC-PKCS#7, as `Sm4Key` used it before.
fn theirs_encrypt(key: &[u8; 16], iv: &[u8; 16], plain: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<sm4::Sm4>::new(&(*key).into(), &(*iv).into())
        .encrypt_padded_vec::<Pkcs7>(plain)
}

fn theirs_decrypt(key: &[u8; 16], data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 32 || data.len() % 16 != 0 {
        return None;
    }
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&data[..16]);
    cbc::Decryptor::<sm4::Sm4>::new(&(*key).into(), &iv.into())
        .decrypt_padded_vec::<Pkcs7>(&data[16..])
        .ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cbc_agrees_with_rustcrypto(
        key in any::<[u8; 16]>(),
        iv in any::<[u8; 16]>(),
        plain in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let ours = Sm4Key::from_bytes(&key).unwrap();
        let ct = ours.encrypt_cbc_with_iv(&iv, &plain);
        prop_assert_eq!(&ct[..16], &iv[..]);
        prop_assert_eq!(&ct[16..], &theirs_encrypt(&key, &iv, &plain)[..]);
        prop_assert_eq!(theirs_decrypt(&key, &ct), Some(plain.clone()));
        prop_assert_eq!(ours.decrypt_cbc(&ct).unwrap(), plain);
    }

    /// Whatever the bytes, both accept the same inputs and give the same plaintext.
    #[test]
    fn decrypt_of_arbitrary_bytes_agrees_with_rustcrypto(
        key in any::<[u8; 16]>(),
        blocks in 0usize..14,
        extra in 0usize..3,
        seed in any::<u64>(),
    ) {
        // Mostly whole blocks, sometimes not, filled from a cheap generator.
        let len = blocks * 16 + extra * 5;
        let mut state = seed | 1;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let ours = Sm4Key::from_bytes(&key).unwrap();
        prop_assert_eq!(ours.decrypt_cbc(&data).ok(), theirs_decrypt(&key, &data));
    }
}
