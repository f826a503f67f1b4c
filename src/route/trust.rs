//! The offline verifier of the `[trust]` section: the signed trust list, loaded at start
//! and on reload, never older than the newest this gateway has loaded.

use std::sync::Arc;

use crate::code::{SystemClock, Verifier, VerifierConfig};
use crate::config::Validated;
use crate::server::ServerError;
use crate::trust::{TrustAnchors, TrustRegistry, verify_trust_list};

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
    let wire = std::fs::read(&t.list_file)
        .map_err(|e| keys(&format!("{}: {e}", t.list_file.display())))?;
    let pem = std::fs::read_to_string(&t.anchor_key_file)
        .map_err(|e| keys(&format!("{}: {e}", t.anchor_key_file.display())))?;
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
    // old list from a stale mirror would otherwise trust revoked keys again.
    let version_file = cfg.gateway.data_dir.join(TRUST_VERSION_FILE);
    let recorded = std::fs::read_to_string(&version_file)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok());
    let floor = loaded
        .as_deref()
        .map(|l| l.version())
        .max(recorded)
        .unwrap_or(0);
    if list.version < floor && !t.allow_rollback {
        return Err(keys(&format!(
            "the trust list is version {}, older than version {floor} this gateway has \
             loaded: refused (an older list may trust revoked keys again; \
             trust.allow_rollback = true loads it on purpose)",
            list.version
        )));
    }
    let version = list.version;
    let registry = TrustRegistry::new_reusing(list, loaded.as_deref()).map_err(|e| keys(&e))?;
    if recorded != Some(version) && (version > floor || t.allow_rollback) {
        let write = std::fs::create_dir_all(&cfg.gateway.data_dir)
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                crate::cli::write_public(&version_file, format!("{version}\n").as_bytes())
            });
        if let Err(e) = write {
            tracing::warn!(error = %e, path = %version_file.display(), "trust list version not recorded");
        }
    }
    Ok(Some(
        Verifier::new(
            Arc::new(registry),
            Arc::new(SystemClock),
            VerifierConfig::default(),
        )
        .with_published(wire.into()),
    ))
}
