//! SM3 (GB/T 32905) and HMAC-SM3 (RFC 2104 over SM3).
//!
//! HMAC-SM3 signs the high-volume envelope traffic (`signType` `HMAC-SM3`, DESIGN.md §3) and
//! keys the person pseudonyms of §8. Tags are compared in constant time.

use std::fmt;
use std::sync::Arc;

use hmac::{KeyInit, Mac};
use sm3::{Digest, Sm3};
use zeroize::{Zeroize, Zeroizing};

use super::CryptoError;

type HmacSm3 = hmac::Hmac<Sm3>;

/// Length of an SM3 digest and of an HMAC-SM3 tag, in bytes.
pub const SM3_LEN: usize = 32;

/// SM3 block length in bytes: HMAC keys longer than this are hashed first (RFC 2104 §2).
const SM3_BLOCK_LEN: usize = 64;

/// Shortest MAC key [`MacKey`] accepts: 128 bits, the strength of the SM4 keys beside it.
pub const MIN_MAC_KEY_LEN: usize = 16;

/// SM3 digest of `data`.
pub fn sm3(data: &[u8]) -> [u8; SM3_LEN] {
    Sm3::digest(data).into()
}

/// HMAC-SM3 of `data` under `key`. Any key length is valid, as in RFC 2104.
pub fn hmac_sm3(key: &[u8], data: &[u8]) -> [u8; SM3_LEN] {
    let mut mac = keyed(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Checks `tag` against HMAC-SM3 of `data` under `key`, in constant time.
///
/// A tag of the wrong length is rejected (in time that depends only on the lengths).
pub fn hmac_sm3_verify(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    let mut mac = keyed(key);
    mac.update(data);
    mac.verify_slice(tag).is_ok()
}

/// An HMAC-SM3 instance keyed with `key`.
///
/// RFC 2104 pads a key of up to one block with zeros and hashes a longer one first; doing that
/// here gives the block-sized key that `KeyInit::new` takes, so no fallible constructor is
/// needed. The result is bit-for-bit HMAC with the original key.
fn keyed(key: &[u8]) -> HmacSm3 {
    let mut block = Zeroizing::new([0u8; SM3_BLOCK_LEN]);
    if key.len() > SM3_BLOCK_LEN {
        let mut digest = sm3(key);
        block[..SM3_LEN].copy_from_slice(&digest);
        digest.zeroize();
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    HmacSm3::new(&(*block).into())
}

/// A client's registered HMAC-SM3 key. Zeroized on drop; `Debug` does not show it.
///
/// The key is padded and its two HMAC blocks (key ⊕ ipad, key ⊕ opad) are compressed once,
/// here, rather than for every message: a tag then costs the message's blocks and one outer
/// block. Clones share the key.
#[derive(Clone)]
pub struct MacKey(Arc<KeyedMac>);

/// The key bytes and the HMAC state keyed with them (itself zeroized on drop).
struct KeyedMac {
    bytes: Zeroizing<Vec<u8>>,
    keyed: HmacSm3,
}

impl MacKey {
    /// Wraps key bytes. Fails with [`CryptoError::MacKeyTooShort`] below
    /// [`MIN_MAC_KEY_LEN`] bytes.
    pub fn from_bytes(key: &[u8]) -> Result<Self, CryptoError> {
        if key.len() < MIN_MAC_KEY_LEN {
            return Err(CryptoError::MacKeyTooShort);
        }
        Ok(Self::new(Zeroizing::new(key.to_vec())))
    }

    /// A fresh random 32-byte key from the OS RNG.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new(vec![0u8; SM3_LEN]);
        super::fill_key(&mut key)?;
        Ok(Self::new(key))
    }

    fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        let keyed = keyed(&bytes);
        Self(Arc::new(KeyedMac { bytes, keyed }))
    }

    /// The key bytes. Key material: do not log.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0.bytes
    }

    /// HMAC-SM3 of `data` under this key.
    pub fn tag(&self, data: &[u8]) -> [u8; SM3_LEN] {
        let mut mac = self.0.keyed.clone();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Constant-time check of `tag` over `data`.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.0.keyed.clone();
        mac.update(data);
        mac.verify_slice(tag).is_ok()
    }
}

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey(..)")
    }
}
