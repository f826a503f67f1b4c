//! SM2 public-key encryption (GB/T 32918.4) with GM/T 0009 ASN.1 DER ciphertexts.
//!
//! The envelope's `encKey` is one of these: a per-request SM4 key encrypted to the gateway's
//! encryption key. The ciphertext is
//!
//! ```text
//! SM2Cipher ::= SEQUENCE {
//!     XCoordinate INTEGER,      -- x of C1 = [k]G
//!     YCoordinate INTEGER,      -- y of C1
//!     HASH        OCTET STRING, -- C3 = SM3(x2 ‖ M ‖ y2), 32 bytes
//!     CipherText  OCTET STRING  -- C2 = M xor KDF(x2 ‖ y2, klen)
//! }
//! ```
//!
//! which is what OpenSSL 3 `pkeyutl -encrypt` writes for an SM2 key. The `sm2` crate encodes
//! and decodes it with the strict `der` crate: integers of more than 32 significant bytes,
//! non-minimal or negative integers, a hash that is not 32 bytes, indefinite or oversized
//! lengths and trailing bytes are all refused, as is a point off the curve.
//!
//! Known limit of the `sm2` crate (0.14): it compares `C3` with `==`, not in constant time.
//! That leaks how much of `SM3(x2 ‖ M' ‖ y2)` an attacker's guess matched, which tells
//! nothing about the key; every failure maps to the same [`CryptoError::Sm2DecryptFailed`].

use std::fmt;
use std::sync::OnceLock;

use sm2::pke::{DecryptingKey, EncryptingKey};
use zeroize::Zeroizing;

use super::CryptoError;
use super::sm2::{
    PLACEHOLDER_SCALAR, public_from_hex, public_from_pem, public_from_sec1, public_to_pem,
    public_to_sec1, scalar_to_hex, secret_from_hex, secret_from_pem, secret_generate,
    secret_to_pem, wipe,
};

/// An SM2 public key that encrypts to its holder (the gateway's encryption key).
#[derive(Clone)]
pub struct EncryptionKey {
    public: sm2::PublicKey,
    inner: EncryptingKey,
}

impl EncryptionKey {
    /// Parses an uncompressed SEC1 point `04‖x‖y` ([`CryptoError::InvalidPublicKey`]).
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self::from_public(public_from_sec1(bytes)?))
    }

    /// Parses 130 hex digits of `04‖x‖y`.
    pub fn from_hex(hex: &str) -> Result<Self, CryptoError> {
        Ok(Self::from_public(public_from_hex(hex)?))
    }

    /// Parses a PEM SubjectPublicKeyInfo (`PUBLIC KEY`).
    pub fn from_pem(pem: &str) -> Result<Self, CryptoError> {
        Ok(Self::from_public(public_from_pem(pem)?))
    }

    fn from_public(public: sm2::PublicKey) -> Self {
        Self {
            public,
            inner: EncryptingKey::new(public),
        }
    }

    /// `04‖x‖y`, 65 bytes.
    pub fn to_sec1_bytes(&self) -> [u8; 65] {
        public_to_sec1(&self.public)
    }

    /// `04‖x‖y` as 130 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        super::to_hex(&self.to_sec1_bytes())
    }

    /// PEM SubjectPublicKeyInfo (`PUBLIC KEY`).
    pub fn to_pem(&self) -> Result<String, CryptoError> {
        public_to_pem(&self.public)
    }

    /// Encrypts `msg` to this key: GM/T 0009 DER, C1C3C2 order, with a fresh random `k`.
    ///
    /// Errors: [`CryptoError::EmptyPlaintext`] for an empty `msg` (the standard needs at
    /// least one byte); [`CryptoError::Rng`] if the OS RNG fails.
    pub fn encrypt(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if msg.is_empty() {
            return Err(CryptoError::EmptyPlaintext);
        }
        self.inner
            .encrypt_der(&mut getrandom::SysRng, msg)
            .map_err(|_| CryptoError::Rng)
    }
}

impl PartialEq for EncryptionKey {
    fn eq(&self, other: &Self) -> bool {
        self.to_sec1_bytes() == other.to_sec1_bytes()
    }
}

impl Eq for EncryptionKey {}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EncryptionKey")
            .field(&self.to_hex())
            .finish()
    }
}

/// An SM2 private key that decrypts GM/T 0009 DER ciphertexts. Wiped on drop.
pub struct DecryptionKey {
    inner: Box<DecryptingKey>,
    public: sm2::PublicKey,
}

impl DecryptionKey {
    /// A fresh key from the OS RNG ([`CryptoError::Rng`] if it fails).
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self::from_secret(secret_generate()?))
    }

    /// Parses 64 hex digits of the private scalar (see [`super::SigningKey::from_hex`]).
    pub fn from_hex(hex: &str) -> Result<Self, CryptoError> {
        Ok(Self::from_secret(secret_from_hex(hex)?))
    }

    /// Parses an unencrypted PEM PKCS#8 SM2 private key ([`CryptoError::InvalidPem`]).
    pub fn from_pem(pem: &str) -> Result<Self, CryptoError> {
        Ok(Self::from_secret(secret_from_pem(pem)?))
    }

    fn from_secret(secret: sm2::SecretKey) -> Self {
        let public = secret.public_key();
        Self {
            inner: Box::new(DecryptingKey::new(secret)),
            public,
        }
    }

    /// The private scalar as 64 lowercase hex digits. Key material: do not log.
    pub fn to_hex(&self) -> Zeroizing<String> {
        scalar_to_hex(self.inner.to_bytes())
    }

    /// The private key as PEM PKCS#8 (`PRIVATE KEY`).
    pub fn to_pem(&self) -> Result<Zeroizing<String>, CryptoError> {
        secret_to_pem(&sm2::SecretKey::from(self.inner.as_nonzero_scalar()))
    }

    /// The matching public key.
    pub fn encryption_key(&self) -> EncryptionKey {
        EncryptionKey::from_public(self.public)
    }

    /// Decrypts a GM/T 0009 DER ciphertext.
    ///
    /// [`CryptoError::Sm2DecryptFailed`] for anything but a well-formed ciphertext to this key
    /// whose hash checks: bad DER, a point off the curve, a wrong key, a changed byte.
    pub fn decrypt(&self, der: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.inner
            .decrypt_der(der)
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Sm2DecryptFailed)
    }
}

impl Clone for DecryptionKey {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            public: self.public,
        }
    }
}

impl Drop for DecryptionKey {
    fn drop(&mut self) {
        static PLACEHOLDER: OnceLock<Option<DecryptingKey>> = OnceLock::new();
        let placeholder =
            PLACEHOLDER.get_or_init(|| DecryptingKey::from_slice(&PLACEHOLDER_SCALAR).ok());
        wipe(&mut *self.inner, placeholder.as_ref());
    }
}

impl fmt::Debug for DecryptionKey {
    // The `sm2` crate's own `Debug` for `DecryptingKey` prints the private scalar.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptionKey")
            .field("public", &self.encryption_key().to_hex())
            .finish_non_exhaustive()
    }
}
