//! The one error type of `crypto`.
//!
//! Every variant says which input was wrong, never what the input was: key bytes, plaintexts
//! and MACs stay out of error messages, and so out of logs.

/// A failure of a cryptographic operation or of parsing key material.
///
/// Malformed input of any kind (wrong length, bad encoding, a point off the curve, bad
/// padding, a forged signature) gives one of these, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A hex string had an odd length, a character outside `[0-9a-fA-F]`, or the wrong number
    /// of digits for the key it should hold (130 for a public key, 64 for a private key).
    #[error("invalid hex encoding of {what}")]
    InvalidHex {
        /// Which value was being decoded ("public key", "private key").
        what: &'static str,
    },

    /// A public key was not an uncompressed SEC1 point `04‖x‖y` of 65 bytes, a coordinate was
    /// not below the field prime, the point was not on the SM2 curve, or it was the identity.
    #[error("invalid SM2 public key")]
    InvalidPublicKey,

    /// A private key was not 32 bytes, or its scalar was zero or not below the group order.
    #[error("invalid SM2 private key")]
    InvalidPrivateKey,

    /// A PEM document was malformed, had the wrong label (`PUBLIC KEY` and `PRIVATE KEY` are
    /// accepted), or its DER was not an SM2 SubjectPublicKeyInfo / unencrypted PKCS#8 key.
    #[error("invalid PEM {what}")]
    InvalidPem {
        /// Which document was expected ("public key", "private key").
        what: &'static str,
    },

    /// Writing a key as PEM failed (an encoder error; not expected with valid keys).
    #[error("PEM encoding failed")]
    PemEncoding,

    /// A signature was not a DER `SEQUENCE { r INTEGER, s INTEGER }` with `r` and `s` in
    /// `[1, n-1]`, or had trailing bytes.
    #[error("malformed SM2 signature")]
    MalformedSignature,

    /// A well-formed signature did not verify under the key, distinguishing ID and message.
    #[error("SM2 signature does not verify")]
    BadSignature,

    /// SM2 encryption was asked to encrypt an empty message (GM/T 0003.4 needs klen > 0).
    #[error("SM2 encryption of an empty message")]
    EmptyPlaintext,

    /// An SM2 ciphertext was not GM/T 0009 DER `SEQUENCE { x, y, hash OCTET STRING(32),
    /// ciphertext OCTET STRING }`, its point was not on the curve, or its hash `C3` did not
    /// match (wrong key or tampered ciphertext). These cases are deliberately not told apart.
    #[error("SM2 decryption failed")]
    Sm2DecryptFailed,

    /// An SM4 key was not exactly 16 bytes.
    #[error("SM4 key must be 16 bytes")]
    InvalidSm4Key,

    /// SM4-CBC input was shorter than IV plus one block, was not a whole number of blocks, or
    /// its PKCS#7 padding was wrong (which is also what a wrong key usually gives).
    #[error("SM4-CBC decryption failed")]
    Sm4DecryptFailed,

    /// A MAC key was shorter than [`MIN_MAC_KEY_LEN`](super::MIN_MAC_KEY_LEN) bytes.
    #[error("MAC key too short")]
    MacKeyTooShort,

    /// The operating system's random number generator failed.
    #[error("system random number generator failed")]
    Rng,
}
