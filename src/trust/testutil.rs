//! Fixtures shared by the `trust` and `code` tests.

use super::{Issuer, IssuerId, KeyStatus, Kid, TrustList, TrustedKey};
use crate::crypto::SigningKey;

/// An active key entry for `key`, valid over `[not_before, not_after]`.
pub(crate) fn trusted_key(
    kid: &str,
    key: &SigningKey,
    not_before: i64,
    not_after: i64,
) -> TrustedKey {
    TrustedKey {
        kid: Kid::parse(kid).unwrap(),
        public_key: key.verifying_key(),
        not_before,
        not_after,
        status: KeyStatus::Active,
    }
}

/// An issuer named after its id.
pub(crate) fn issuer(id: &str, keys: Vec<TrustedKey>) -> Issuer {
    let id = IssuerId::parse(id).unwrap();
    Issuer {
        region: id.region(),
        name: format!("测试发码方 {id}"),
        id,
        keys,
    }
}

/// A list of `issuers` at `version`.
pub(crate) fn list(version: u64, issuers: Vec<Issuer>) -> TrustList {
    TrustList {
        version,
        issued_at: 1_700_000_000,
        issuers,
    }
}
