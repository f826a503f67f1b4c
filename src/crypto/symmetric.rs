//! SM4 (GB/T 32907) in CBC mode with PKCS#7 padding, IV first.
//!
//! The wire form, used for the envelope's `bizContent` and for personal fields at rest, is
//! `IV(16) ‖ SM4-CBC-PKCS#7(key, IV, plaintext)` with a fresh random IV per message. CBC gives
//! no integrity: the envelope authenticates the ciphertext (encrypt-then-sign) before it
//! reaches [`Sm4Key::decrypt_cbc`], so padding errors are never an oracle there.

use std::fmt;

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use zeroize::Zeroizing;

use super::CryptoError;

/// SM4 key length in bytes.
pub const SM4_KEY_LEN: usize = 16;

/// SM4 block length in bytes, which is also the IV length.
pub const SM4_BLOCK_LEN: usize = 16;

type Sm4CbcEnc = cbc::Encryptor<sm4::Sm4>;
type Sm4CbcDec = cbc::Decryptor<sm4::Sm4>;

/// A 128-bit SM4 key. Wiped on drop; `Debug` does not show it.
#[derive(Clone)]
pub struct Sm4Key(Zeroizing<[u8; SM4_KEY_LEN]>);

impl Sm4Key {
    /// Wraps exactly 16 key bytes ([`CryptoError::InvalidSm4Key`] for any other length).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; SM4_KEY_LEN]);
        if bytes.len() != SM4_KEY_LEN {
            return Err(CryptoError::InvalidSm4Key);
        }
        key.copy_from_slice(bytes);
        Ok(Self(key))
    }

    /// Parses 32 hex digits ([`CryptoError::InvalidHex`]).
    pub fn from_hex(hex: &str) -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; SM4_KEY_LEN]);
        super::decode_hex_into(hex, key.as_mut_slice(), "SM4 key")?;
        Ok(Self(key))
    }

    /// A fresh random key from the OS RNG ([`CryptoError::Rng`] if it fails).
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; SM4_KEY_LEN]);
        super::fill_random(key.as_mut_slice())?;
        Ok(Self(key))
    }

    /// The key bytes. Key material: do not log.
    pub fn as_bytes(&self) -> &[u8; SM4_KEY_LEN] {
        &self.0
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
        let body =
            Sm4CbcEnc::new(&(*self.0).into(), &(*iv).into()).encrypt_padded_vec::<Pkcs7>(plain);
        let mut out = Vec::with_capacity(SM4_BLOCK_LEN + body.len());
        out.extend_from_slice(iv);
        out.extend_from_slice(&body);
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
        let (iv, body) = data.split_at(SM4_BLOCK_LEN);
        let mut iv_block = [0u8; SM4_BLOCK_LEN];
        iv_block.copy_from_slice(iv);
        Sm4CbcDec::new(&(*self.0).into(), &iv_block.into())
            .decrypt_padded_vec::<Pkcs7>(body)
            .map_err(|_| CryptoError::Sm4DecryptFailed)
    }
}

impl fmt::Debug for Sm4Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sm4Key(..)")
    }
}
