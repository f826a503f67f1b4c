//! The dialect side of the configuration: the dialect files under `gateway.dialects_dir`,
//! and the credentials a region (egress) or a client (ingress) uses with its dialect.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::standard::Standard;
use crate::translate::Dialect;
use crate::upstream::DialectCredentials;

/// Directory of the dialect files when `gateway.dialects_dir` is not set, relative to the
/// configuration file. A missing default directory means no dialects; a missing configured
/// one is an error.
pub const DEFAULT_DIALECTS_DIR: &str = "regions";

/// Credentials with a dialect: `{ id = "…", key_hex = "…", secret = "@file" }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialectCredentialsConfig {
    /// The id at the other side (appKey, paas id).
    #[serde(default)]
    pub id: String,
    /// HMAC key, hex (schemes with a key).
    #[serde(default)]
    pub key_hex: Option<String>,
    /// Shared secret or token: the text itself, or `@file` (relative to the config file),
    /// whose content without the final newline is the secret.
    #[serde(default)]
    pub secret: Option<String>,
}

/// The loaded dialects, by id.
pub type Dialects = BTreeMap<String, Arc<Dialect>>;

/// Loads every dialect file of `dir` (`None`: [`DEFAULT_DIALECTS_DIR`] under `base`).
pub(super) fn load(
    dir: Option<&Path>,
    base: &Path,
    std: &Standard,
    problems: &mut Vec<String>,
) -> (PathBuf, Dialects) {
    let (path, required) = match dir {
        Some(d) => (base.join(d), true),
        None => (base.join(DEFAULT_DIALECTS_DIR), false),
    };
    if !required && !path.is_dir() {
        return (path, Dialects::new());
    }
    match Dialect::load_dir(&path, std) {
        Ok(list) => {
            let map = list
                .into_iter()
                .map(|d| (d.id.clone(), Arc::new(d)))
                .collect();
            (path, map)
        }
        Err(e) => {
            for pr in e.0 {
                problems.push(format!("dialects: {pr}"));
            }
            (path, Dialects::new())
        }
    }
}

/// Looks a dialect up for `at` (a region or client), reporting an unknown id.
fn find(
    dialects: &Dialects,
    id: &str,
    at: &str,
    problems: &mut Vec<String>,
) -> Option<Arc<Dialect>> {
    let d = dialects.get(id).cloned();
    if d.is_none() {
        let known: Vec<&str> = dialects.keys().map(String::as_str).collect();
        problems.push(format!(
            "{at}: dialect `{id}` is not among the loaded dialect files ({})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
    }
    d
}

/// The dialect `id` (if given) of a region or client `at`, with its credentials there;
/// problems go to `problems`.
pub(super) fn resolve_dialect(
    id: Option<&str>,
    raw: Option<&DialectCredentialsConfig>,
    dialects: &Dialects,
    at: &str,
    resolve: &dyn Fn(&Path) -> PathBuf,
    problems: &mut Vec<String>,
) -> Option<(Arc<Dialect>, DialectCredentials)> {
    let d = find(dialects, id?, at, problems)?;
    let creds = credentials(raw, &d, at, resolve, problems);
    Some((d, creds))
}

/// Parses credentials; a scheme that signs needs a secret or a key.
fn credentials(
    raw: Option<&DialectCredentialsConfig>,
    dialect: &Dialect,
    at: &str,
    resolve: &dyn Fn(&Path) -> PathBuf,
    problems: &mut Vec<String>,
) -> DialectCredentials {
    let raw = raw.cloned().unwrap_or_default();
    let key = match raw.key_hex.as_deref().map(super::hex_bytes) {
        None => Vec::new(),
        Some(Ok(k)) => k,
        Some(Err(e)) => {
            problems.push(format!("{at}: dialect_credentials.key_hex: {e}"));
            Vec::new()
        }
    };
    let secret = match raw.secret.as_deref() {
        None => String::new(),
        Some(s) => match s.strip_prefix('@') {
            Some(file) => {
                let path = resolve(Path::new(file));
                match std::fs::read_to_string(&path) {
                    Ok(t) => t.trim_end_matches(['\n', '\r']).to_owned(),
                    Err(e) => {
                        problems.push(format!(
                            "{at}: dialect_credentials.secret: {}: {e}",
                            path.display()
                        ));
                        String::new()
                    }
                }
            }
            None => s.to_owned(),
        },
    };
    let signs = !matches!(dialect.signing, crate::translate::Signing::None);
    if signs && secret.is_empty() && key.is_empty() {
        problems.push(format!(
            "{at}: dialect `{}` signs its requests: dialect_credentials needs a secret or key_hex",
            dialect.id
        ));
    }
    DialectCredentials {
        id: raw.id,
        key: Zeroizing::new(key),
        secret: Zeroizing::new(secret),
    }
}
