//! The offline verifier of the `[trust]` section: the signed trust list, loaded at start
//! and on reload, never older than the newest this gateway has loaded.

use std::sync::Arc;

use crate::code::{SystemClock, Verifier, VerifierConfig};
use crate::config::Validated;
use crate::server::ServerError;
use crate::trust::{TrustAnchors, TrustRegistry, signed_list_digest, verify_trust_list};

/// The file in the data directory that keeps the newest trust-list version loaded.
pub const TRUST_VERSION_FILE: &str = "trust-list.version";

/// The offline verifier of the `[trust]` section, if configured.
///
/// # Errors
/// [`ServerError::Keys`] when the trust list or its anchor key does not load or verify.
pub fn local_verifier(
    cfg: &Validated,
    previous: Option<&Verifier>,
) -> Result<Option<Verifier>, ServerError> {
    let Some(t) = &cfg.trust else { return Ok(None) };
    let keys = |e: &dyn std::fmt::Display| ServerError::Keys(format!("trust: {e}"));
    // Bounded before it is read: a wrong path or a mirror gone wrong must not take the
    // gateway's memory (at start, or at a reload).
    let max = crate::trust::list::MAX_TRUST_LIST_BYTES as u64;
    let wire = crate::store::read_bounded(&t.list_file, max)
        .map_err(|e| keys(&format!("{}: {e}", t.list_file.display())))?;
    let pem = crate::store::read_bounded(&t.anchor_key_file, 64 * 1024)
        .map_err(|e| keys(&format!("{}: {e}", t.anchor_key_file.display())))?;
    let pem = String::from_utf8(pem)
        .map_err(|_| keys(&format!("{}: not UTF-8", t.anchor_key_file.display())))?;
    let anchor = crate::crypto::VerifyingKey::from_pem(&pem).map_err(|e| keys(&e))?;
    let list = verify_trust_list(
        &wire,
        &TrustAnchors::new().with(t.anchor_kid.clone(), anchor),
    )
    .map_err(|e| keys(&e))?;
    let loaded = previous.map(|v| v.registry().snapshot());
    // No rollback: a list older than the newest this gateway has loaded (in force, or
    // recorded in the data directory before a restart) is refused, unless the operator
    // says so. The list is signed so that the channel it comes by need not be trusted; an
    // old list from a stale mirror would otherwise trust revoked keys again. A list of the
    // same version must be the same list (its SM3 digest is recorded with the version):
    // two lists signed under one version could otherwise replace each other.
    let version_file = cfg.gateway.data_dir.join(TRUST_VERSION_FILE);
    let recorded = read_recorded(&version_file).map_err(|e| keys(&e))?;
    // Of the signed list, not its wrapper: one list re-signed by a rotated anchor is the
    // same list.
    let digest_of = |w: &[u8]| signed_list_digest(w).map(|d| crate::crypto::to_hex(&d));
    let digest = digest_of(&wire).unwrap_or_default();
    let in_force = loaded.as_deref().map(|l| {
        let bytes = previous.and_then(Verifier::published);
        (l.version(), bytes.and_then(|b| digest_of(b)))
    });
    let floor = in_force
        .iter()
        .chain(recorded.iter())
        .map(|(v, _)| *v)
        .max()
        .unwrap_or(0);
    if list.version < floor && !t.allow_rollback {
        return Err(keys(&format!(
            "the trust list is version {}, older than version {floor} this gateway has \
             loaded: refused (an older list may trust revoked keys again; \
             trust.allow_rollback = true loads it on purpose)",
            list.version
        )));
    }
    let other_list = in_force
        .iter()
        .chain(recorded.iter())
        .any(|(v, d)| *v == list.version && d.as_ref().is_some_and(|d| *d != digest));
    if other_list && !t.allow_rollback {
        return Err(keys(&format!(
            "the trust list is version {}, the version of the list this gateway has loaded, \
             but not that list: refused (a new list takes a new version; \
             trust.allow_rollback = true loads it on purpose)",
            list.version
        )));
    }
    let version = list.version;
    let registry = TrustRegistry::new_reusing(list, loaded.as_deref()).map_err(|e| keys(&e))?;
    let record = (version, Some(digest));
    if recorded.as_ref() != Some(&record) && (version >= floor || t.allow_rollback) {
        let write = std::fs::create_dir_all(&cfg.gateway.data_dir)
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                crate::cli::write_public(
                    &version_file,
                    format!("{version} {}\n", record.1.as_deref().unwrap_or_default()).as_bytes(),
                )
            });
        if let Err(e) = write {
            tracing::warn!(error = %e, path = %version_file.display(), "trust list version not recorded");
        }
    }
    Ok(Some(
        Verifier::new(
            Arc::new(registry),
            Arc::new(SystemClock),
            VerifierConfig {
                clock_skew_secs: t.clock_skew_secs,
                max_lifetime_secs: t.max_code_lifetime_secs,
            },
        )
        .with_published(wire.into()),
    ))
}

/// The version (and, when recorded, the SM3 digest) of the newest trust list this gateway
/// has loaded, from `path`: none when the file is missing. A file that is there but does not
/// read is an error, not version 0: taken as 0, it would let an older list in.
fn read_recorded(path: &std::path::Path) -> Result<Option<(u64, Option<String>)>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut words = text.split_whitespace();
    let version = words.next().and_then(|v| v.parse::<u64>().ok());
    let digest = words.next().map(str::to_owned);
    match (version, &digest, words.next()) {
        (Some(v), None, None) => Ok(Some((v, None))),
        (Some(v), Some(d), None) if d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some((v, digest)))
        }
        _ => Err(format!(
            "{}: not a trust list version (digits, then the list's SM3 digest); it records \
             the newest list loaded, against rollback: restore it, or remove it to accept \
             any list",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::read_recorded;

    #[test]
    fn a_recorded_version_that_does_not_read_is_an_error_not_version_0() {
        let dir = crate::testutil::fresh_dir("trust-version");
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("trust-list.version");
        assert_eq!(read_recorded(&f).unwrap(), None, "missing: none loaded yet");
        std::fs::write(&f, "7\n").unwrap();
        assert_eq!(read_recorded(&f).unwrap(), Some((7, None)));
        let d = "ab".repeat(32);
        std::fs::write(&f, format!("7 {d}\n")).unwrap();
        assert_eq!(read_recorded(&f).unwrap(), Some((7, Some(d))));
        for bad in ["", "seven\n", "7 xyz\n", "7 ab 9\n"] {
            std::fs::write(&f, bad).unwrap();
            let e = read_recorded(&f).unwrap_err();
            assert!(e.contains("not a trust list version"), "{bad:?}: {e}");
        }
    }
}
