//! SM2 signature keys (GB/T 32918.2, SM3withSM2) and the SM2 key codecs shared with `pke`.
//!
//! Signatures are DER `SEQUENCE { r INTEGER, s INTEGER }` over `SM3(Z_A ‖ M)` with the user ID
//! [`DEFAULT_DISTID`]: what OpenSSL 3 produces with `-digest sm3 -pkeyopt
//! distid:1234567812345678`, and what the envelope, PHIC1 tokens and the trust list carry.
//!
//! Keys: public keys as uncompressed SEC1 points `04‖x‖y` (130 hex digits) or PEM
//! SubjectPublicKeyInfo (`PUBLIC KEY`); private keys as a 32-byte scalar (64 hex digits) or
//! unencrypted PEM PKCS#8 (`PRIVATE KEY`), as `openssl genpkey -algorithm SM2` writes them.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use getrandom::rand_core::{TryCryptoRng, TryRng};
use sm2::dsa::signature::{RandomizedSigner, Signer, Verifier};
use sm2::dsa::{self, Signature};
use sm2::elliptic_curve::Generate;
use sm2::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use zeroize::{Zeroize, Zeroizing};

use super::sm2_sign::{SignParts, retry_data};
use super::sm2_table::{KeyTable, identity_hash};
use super::{CryptoError, decode_hex_into, to_hex};

/// The SM2 distinguishing identifier (user ID) every hutong signature uses: the GM/T 0009
/// default `1234567812345678`.
pub const DEFAULT_DISTID: &str = "1234567812345678";

/// Length of an uncompressed SEC1 point: `04‖x‖y`.
const SEC1_UNCOMPRESSED_LEN: usize = 65;

/// Length of an SM2 private scalar.
const SCALAR_LEN: usize = 32;

/// Longest DER signature: `30 46 | 02 21 00 r(32) | 02 21 00 s(32)`.
const MAX_DER_SIGNATURE_LEN: usize = 72;

// ---------------------------------------------------------------------------------------------
// Key codecs, shared by the signature and the encryption keys.

/// Parses an uncompressed SEC1 point. Compressed points are refused: the profile fixes the
/// uncompressed form, and accepting two spellings of one key invites mismatched key ids.
pub(crate) fn public_from_sec1(bytes: &[u8]) -> Result<sm2::PublicKey, CryptoError> {
    if bytes.len() != SEC1_UNCOMPRESSED_LEN || bytes[0] != 0x04 {
        return Err(CryptoError::InvalidPublicKey);
    }
    // Checks that the coordinates are field elements and the point is on the curve; the
    // identity has no uncompressed encoding, and is refused here anyway.
    sm2::PublicKey::from_sec1_bytes(bytes).map_err(|_| CryptoError::InvalidPublicKey)
}

/// Parses 130 hex digits of an uncompressed SEC1 point.
pub(crate) fn public_from_hex(hex: &str) -> Result<sm2::PublicKey, CryptoError> {
    let mut bytes = [0u8; SEC1_UNCOMPRESSED_LEN];
    decode_hex_into(hex, &mut bytes, "public key")?;
    public_from_sec1(&bytes)
}

/// Parses a PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`) holding an SM2 point.
pub(crate) fn public_from_pem(pem: &str) -> Result<sm2::PublicKey, CryptoError> {
    let key = sm2::PublicKey::from_public_key_pem(pem)
        .map_err(|_| CryptoError::InvalidPem { what: "public key" })?;
    // As public_from_sec1: the uncompressed point only. The SPKI ends in its BIT STRING,
    // `03 42 00 04 x y` for an uncompressed point (`03 22 00 02|03 x` compressed).
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body)
        .map_err(|_| CryptoError::InvalidPem { what: "public key" })?;
    let uncompressed =
        der.len() >= 68 && der[der.len() - 68..der.len() - 64] == [0x03, 0x42, 0x00, 0x04];
    if !uncompressed {
        return Err(CryptoError::InvalidPem {
            what: "public key (not an uncompressed point)",
        });
    }
    Ok(key)
}

/// `04‖x‖y`.
pub(crate) fn public_to_sec1(key: &sm2::PublicKey) -> [u8; SEC1_UNCOMPRESSED_LEN] {
    use sm2::elliptic_curve::sec1::ToSec1Point;
    let point = key.as_affine().to_sec1_point(false);
    let mut out = [0u8; SEC1_UNCOMPRESSED_LEN];
    // An uncompressed point of a 256-bit curve is always 65 bytes; the guard keeps a change in
    // the dependency from turning into a panic on the request path.
    let bytes = point.as_bytes();
    debug_assert_eq!(bytes.len(), SEC1_UNCOMPRESSED_LEN);
    if bytes.len() == SEC1_UNCOMPRESSED_LEN {
        out.copy_from_slice(bytes);
    }
    out
}

/// PEM SubjectPublicKeyInfo, LF line endings.
pub(crate) fn public_to_pem(key: &sm2::PublicKey) -> Result<String, CryptoError> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|_| CryptoError::PemEncoding)
}

/// Parses 64 hex digits of a private scalar in `[1, n-1]`.
pub(crate) fn secret_from_hex(hex: &str) -> Result<sm2::SecretKey, CryptoError> {
    let mut bytes = Zeroizing::new([0u8; SCALAR_LEN]);
    decode_hex_into(hex, bytes.as_mut_slice(), "private key")?;
    sm2::SecretKey::from_slice(bytes.as_slice()).map_err(|_| CryptoError::InvalidPrivateKey)
}

/// Parses an unencrypted PEM PKCS#8 private key (`-----BEGIN PRIVATE KEY-----`).
pub(crate) fn secret_from_pem(pem: &str) -> Result<sm2::SecretKey, CryptoError> {
    sm2::SecretKey::from_pkcs8_pem(pem).map_err(|_| CryptoError::InvalidPem {
        what: "private key",
    })
}

/// PEM PKCS#8, LF line endings, in a buffer wiped on drop.
pub(crate) fn secret_to_pem(key: &sm2::SecretKey) -> Result<Zeroizing<String>, CryptoError> {
    key.to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| CryptoError::PemEncoding)
}

/// 64 lowercase hex digits, in a buffer wiped on drop.
pub(crate) fn scalar_to_hex(mut bytes: sm2::FieldBytes) -> Zeroizing<String> {
    let hex = Zeroizing::new(to_hex(&bytes));
    bytes.as_mut_slice().zeroize();
    hex
}

/// A fresh private key from the OS RNG.
pub(crate) fn secret_generate() -> Result<sm2::SecretKey, CryptoError> {
    sm2::SecretKey::try_generate_from_rng(&mut getrandom::SysRng).map_err(|_| CryptoError::Rng)
}

/// Overwrites a secret-holding value in place with a public placeholder.
///
/// The `sm2` crate's `dsa::SigningKey` and `pke::DecryptingKey` do not zeroize their scalar
/// on drop (unlike `ecdsa`'s), and keep it private. The keys here live in a `Box`, so they
/// never move; on drop this writes a placeholder (secret scalar 1, a public value) over the
/// same heap bytes, and `black_box` keeps that store from being removed as dead.
pub(crate) fn wipe<T: Clone>(slot: &mut T, placeholder: Option<&T>) {
    if let Some(placeholder) = placeholder {
        *slot = placeholder.clone();
        std::hint::black_box(&*slot);
    }
}

/// The scalar 1, big-endian: the placeholder secret [`wipe`] writes.
pub(crate) const PLACEHOLDER_SCALAR: [u8; SCALAR_LEN] = {
    let mut one = [0u8; SCALAR_LEN];
    one[SCALAR_LEN - 1] = 1;
    one
};

// ---------------------------------------------------------------------------------------------
// Signatures.

/// An SM2 private key that signs with SM3withSM2 and the ID [`DEFAULT_DISTID`].
///
/// Signing is deterministic (RFC 6979 nonces over SM3), so it needs no randomness at call time
/// and the same key and message give the same signature. The secret scalar is wiped on drop.
pub struct SigningKey {
    inner: Box<dsa::SigningKey>,
    /// `(1 + d)^-1` and `Z_A`, computed once (`crypto::sm2_sign`). As secret as `d`, so
    /// boxed like it: a moved key leaves no copy behind, and drop wipes it in place.
    parts: Box<SignParts>,
}

impl SigningKey {
    /// A fresh key from the OS RNG. Fails only if the RNG fails ([`CryptoError::Rng`]).
    pub fn generate() -> Result<Self, CryptoError> {
        Self::from_secret(&secret_generate()?)
    }

    /// Parses 64 hex digits (either case) of the private scalar.
    ///
    /// Errors: [`CryptoError::InvalidHex`] for a wrong length or a non-hex digit;
    /// [`CryptoError::InvalidPrivateKey`] for zero or a scalar not below the group order.
    pub fn from_hex(hex: &str) -> Result<Self, CryptoError> {
        Self::from_secret(&secret_from_hex(hex)?)
    }

    /// Parses an unencrypted PEM PKCS#8 SM2 private key ([`CryptoError::InvalidPem`]).
    pub fn from_pem(pem: &str) -> Result<Self, CryptoError> {
        Self::from_secret(&secret_from_pem(pem)?)
    }

    fn from_secret(secret: &sm2::SecretKey) -> Result<Self, CryptoError> {
        let inner = dsa::SigningKey::new(DEFAULT_DISTID, secret)
            .map_err(|_| CryptoError::InvalidPrivateKey)?;
        let identity_hash = identity_hash(&sm2::PublicKey::from(inner.verifying_key()));
        // `d = n - 1` has no `(1 + d)^-1`: GB/T 32918.1 takes `d` in `[1, n - 2]`.
        let parts = SignParts::new(inner.as_nonzero_scalar(), identity_hash)
            .ok_or(CryptoError::InvalidPrivateKey)?;
        Ok(Self {
            inner: Box::new(inner),
            parts: Box::new(parts),
        })
    }

    /// The private scalar as 64 lowercase hex digits. Key material: do not log.
    pub fn to_hex(&self) -> Zeroizing<String> {
        scalar_to_hex(self.inner.to_bytes())
    }

    /// The private key as PEM PKCS#8 (`PRIVATE KEY`), readable by OpenSSL.
    pub fn to_pem(&self) -> Result<Zeroizing<String>, CryptoError> {
        let secret = sm2::SecretKey::from(self.inner.as_nonzero_scalar());
        secret_to_pem(&secret)
    }

    /// The matching public key (without a precomputed table).
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            inner: self.inner.verifying_key().clone(),
            table: None,
        }
    }

    /// Signs `msg`: SM3withSM2 with ID [`DEFAULT_DISTID`], DER-encoded (at most 72 bytes).
    ///
    /// Never fails. The signature is the `sm2` crate's, bit for bit (`crypto::sm2_sign`),
    /// without its inversion per signature. A candidate nonce is refused about once in
    /// 2^256; each retry feeds RFC 6979 different additional input (RFC 6979 §3.6), which
    /// gives an independent candidate, so the loop ends after one pass.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        if let Some(sig) = self.sign_with_data(msg, &[]) {
            return sig;
        }
        let mut attempt = 0u64;
        loop {
            attempt = attempt.wrapping_add(1);
            if let Some(sig) = self.sign_with_data(msg, &retry_data(attempt)) {
                return sig;
            }
        }
    }

    /// One attempt of [`SigningKey::sign`], with RFC 6979 additional data `data`; `None`
    /// when its candidate nonce is refused.
    pub(super) fn sign_with_data(&self, msg: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        let sig = self.parts.sign(self.inner.as_nonzero_scalar(), msg, data)?;
        Some(sig.to_der().to_vec())
    }

    /// The `sm2` crate's own signature of `msg`, with RFC 6979 additional data `data` (empty
    /// for none): what [`SigningKey::sign`] must equal (tests and the crypto benchmark).
    #[doc(hidden)]
    pub fn sign_with_crate(&self, msg: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        let sig = if data.is_empty() {
            Signer::<Signature>::try_sign(&*self.inner, msg).ok()?
        } else {
            let mut fill = FillWith(data);
            RandomizedSigner::<Signature>::try_sign_with_rng(&*self.inner, &mut fill, msg).ok()?
        };
        Some(sig.to_der().to_vec())
    }
}

impl Clone for SigningKey {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            parts: self.parts.clone(),
        }
    }
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        static PLACEHOLDER: OnceLock<Option<dsa::SigningKey>> = OnceLock::new();
        let placeholder = PLACEHOLDER
            .get_or_init(|| dsa::SigningKey::from_slice(DEFAULT_DISTID, &PLACEHOLDER_SCALAR).ok());
        wipe(&mut *self.inner, placeholder.as_ref());
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.verifying_key().to_hex())
            .finish_non_exhaustive()
    }
}

/// An "RNG" that writes the given bytes: how the `sm2` crate takes RFC 6979's additional
/// data `k'`, for [`SigningKey::sign_with_crate`].
struct FillWith<'a>(&'a [u8]);

impl TryRng for FillWith<'_> {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(0)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(0)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(0);
        let n = dst.len().min(self.0.len());
        dst[..n].copy_from_slice(&self.0[..n]);
        Ok(())
    }
}

impl TryCryptoRng for FillWith<'_> {}

/// An SM2 public key that verifies SM3withSM2 signatures with the ID [`DEFAULT_DISTID`].
///
/// A key that verifies many signatures should be [precomputed](Self::precompute) once when
/// it is loaded: verification is then several times faster. Cloning is cheap either way (the
/// table is shared), and equality and `Debug` look at the public point only.
#[derive(Clone)]
pub struct VerifyingKey {
    inner: dsa::VerifyingKey,
    /// The fixed-base table of the public point, when precomputed.
    table: Option<Arc<KeyTable>>,
}

impl VerifyingKey {
    /// Parses an uncompressed SEC1 point `04‖x‖y` (65 bytes).
    ///
    /// [`CryptoError::InvalidPublicKey`] for any other length or prefix, coordinates not below
    /// the field prime, or a point not on the curve.
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        Self::from_public(public_from_sec1(bytes)?)
    }

    /// Parses 130 hex digits (either case) of `04‖x‖y`.
    pub fn from_hex(hex: &str) -> Result<Self, CryptoError> {
        Self::from_public(public_from_hex(hex)?)
    }

    /// Parses a PEM SubjectPublicKeyInfo (`PUBLIC KEY`) holding an SM2 key.
    pub fn from_pem(pem: &str) -> Result<Self, CryptoError> {
        Self::from_public(public_from_pem(pem)?)
    }

    fn from_public(public: sm2::PublicKey) -> Result<Self, CryptoError> {
        dsa::VerifyingKey::new(DEFAULT_DISTID, public)
            .map(|inner| Self { inner, table: None })
            .map_err(|_| CryptoError::InvalidPublicKey)
    }

    /// The same key with a precomputed table, for keys that verify many signatures: client
    /// keys from the configuration, trust-list issuer keys, region response keys.
    ///
    /// Building it costs about as much as eight verifications without it (about 2 ms in a
    /// release build), and the table holds 151 552 bytes; verification is then about six
    /// times as fast (`crypto::sm2_table` has the design, `benches/crypto.rs` the figures).
    /// It is meant to be paid when the key is loaded. Verification results are identical
    /// with and without it. A key that already has its table is returned as it is.
    #[must_use]
    pub fn precompute(self) -> Self {
        if self.table.is_some() {
            return self;
        }
        let table = KeyTable::new(&sm2::PublicKey::from(&self.inner));
        Self {
            inner: self.inner,
            table: table.map(Arc::new),
        }
    }

    /// Whether both keys use one and the same table (not two equal ones): tests of table
    /// reuse across trust-list loads.
    #[cfg(test)]
    pub(crate) fn shares_table_with(&self, other: &Self) -> bool {
        matches!((&self.table, &other.table), (Some(a), Some(b)) if Arc::ptr_eq(a, b))
    }

    /// Whether [`precompute`](Self::precompute) has built this key's table.
    pub fn is_precomputed(&self) -> bool {
        self.table.is_some()
    }

    /// Heap bytes held by this key's precomputed table (shared among its clones), or 0.
    pub fn table_bytes(&self) -> usize {
        self.table.as_ref().map_or(0, |t| t.heap_bytes())
    }

    /// `04‖x‖y`, 65 bytes.
    pub fn to_sec1_bytes(&self) -> [u8; SEC1_UNCOMPRESSED_LEN] {
        public_to_sec1(&sm2::PublicKey::from(&self.inner))
    }

    /// `04‖x‖y` as 130 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        to_hex(&self.to_sec1_bytes())
    }

    /// PEM SubjectPublicKeyInfo (`PUBLIC KEY`), readable by OpenSSL.
    pub fn to_pem(&self) -> Result<String, CryptoError> {
        public_to_pem(&sm2::PublicKey::from(&self.inner))
    }

    /// Verifies a DER signature over `msg`.
    ///
    /// Errors: [`CryptoError::MalformedSignature`] when `der_sig` is not a DER sequence of two
    /// integers in `[1, n-1]` with nothing after it; [`CryptoError::BadSignature`] when it is
    /// well formed but does not verify.
    pub fn verify(&self, msg: &[u8], der_sig: &[u8]) -> Result<(), CryptoError> {
        if der_sig.len() > MAX_DER_SIGNATURE_LEN {
            return Err(CryptoError::MalformedSignature);
        }
        let sig = Signature::from_der(der_sig).map_err(|_| CryptoError::MalformedSignature)?;
        let valid = match &self.table {
            Some(table) => table.verify(msg, &sig),
            None => self.inner.verify(msg, &sig).is_ok(),
        };
        if valid {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }
}

/// The verification tables of keys already loaded, by public point, for a reload to share
/// instead of building again ([`precompute`](Self::precompute)): about 2 ms of CPU a key.
/// Both the trust list and the configuration (clients', regions' keys) reload this way.
#[derive(Debug, Default)]
pub struct KeyTables(HashMap<[u8; SEC1_UNCOMPRESSED_LEN], VerifyingKey>);

impl KeyTables {
    /// The tables of those of `keys` that have one.
    pub fn of<'a>(keys: impl IntoIterator<Item = &'a VerifyingKey>) -> Self {
        Self(
            keys.into_iter()
                .filter(|k| k.is_precomputed())
                .map(|k| (k.to_sec1_bytes(), k.clone()))
                .collect(),
        )
    }

    /// `key` with its table: the one held for the same point, or a new one.
    pub fn precompute(&self, key: VerifyingKey) -> VerifyingKey {
        match self.0.get(&key.to_sec1_bytes()) {
            Some(held) => held.clone(),
            None => key.precompute(),
        }
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.to_sec1_bytes() == other.to_sec1_bytes()
    }
}

impl Eq for VerifyingKey {}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("VerifyingKey").field(&self.to_hex()).finish()
    }
}
