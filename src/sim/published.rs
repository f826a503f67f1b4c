//! What a simulator publishes for its callers: its public keys and an unsigned trust list
//! naming its issuer.

use std::path::Path;

use super::{SimError, SimPublicKeys, issuer_kid};
use crate::trust::{Issuer, IssuerId, KeyStatus, TrustList, TrustedKey};

/// Writes the public keys a caller needs into `dir` (created if missing):
/// `sim-response.pub.pem` (answers), `sim-issuer.pub.pem` (codes), `sim-encryption.pub.pem`
/// (`encKey`), and `sim-trust-list.json`, an unsigned trust list naming the issuer, ready
/// for `hutong keys trust-list`.
pub fn write_public_keys(
    dir: &Path,
    keys: &SimPublicKeys,
    issuer: &IssuerId,
    now: i64,
) -> Result<(), SimError> {
    std::fs::create_dir_all(dir).map_err(|source| SimError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let list = TrustList {
        version: 1,
        issued_at: now,
        issuers: vec![Issuer {
            id: issuer.clone(),
            region: issuer.region(),
            name: format!("{issuer} 模拟发码机构"),
            keys: vec![TrustedKey {
                kid: issuer_kid(),
                public_key: keys.issuer.clone(),
                not_before: now - 86_400,
                not_after: now + 365 * 86_400,
                status: KeyStatus::Active,
            }],
        }],
    };
    let files = [
        (
            "sim-response.pub.pem",
            keys.response.to_pem().map_err(SimError::Crypto)?,
        ),
        (
            "sim-issuer.pub.pem",
            keys.issuer.to_pem().map_err(SimError::Crypto)?,
        ),
        (
            "sim-encryption.pub.pem",
            keys.encryption.to_pem().map_err(SimError::Crypto)?,
        ),
        (
            "sim-trust-list.json",
            crate::trust::unsigned_list_json(&list),
        ),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| SimError::Write {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}
