//! File modes of what the gateway trusts: a key another user can read is not secret, and a
//! CA another user can write lets them mint any client's certificate. The gateway says so
//! at start (as a warning: a key readable by a service group is a deployment's choice).

use std::path::Path;

use crate::config::Validated;

/// Each secret file readable by group or others, and each trust file writable by them,
/// named with its mode, in the order of the configuration.
pub(crate) fn loose_modes(config: &Validated) -> Vec<String> {
    let g = &config.gateway;
    let mut secrets: Vec<&Path> = vec![
        &g.signing_key_file,
        &g.encryption_key_file,
        &g.pseudonym_secret_file,
        &config.auth.jwt_key_file,
    ];
    if !config.server.insecure_plain_http {
        secrets.push(&config.server.tls_key_file);
    }
    let mut trusted: Vec<&Path> = Vec::new();
    trusted.extend(config.server.client_ca_file.as_deref());
    trusted.extend(config.trust.as_ref().map(|t| t.anchor_key_file.as_path()));
    let mut out = Vec::new();
    for (files, mask, what) in [
        (&secrets, 0o077, "a secret readable by group or others"),
        (&trusted, 0o022, "trusted, and writable by group or others"),
    ] {
        for f in files.iter() {
            if let Some(mode) = mode_of(f).filter(|m| m & mask != 0) {
                out.push(format!("{} (mode {mode:o}): {what}", f.display()));
            }
        }
    }
    out
}

#[cfg(unix)]
fn mode_of(f: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(f)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn mode_of(_: &Path) -> Option<u32> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_readable_secret_and_a_writable_ca_are_named() {
        let root = crate::testutil::fresh_dir("modes");
        let base = root.join("config");
        std::fs::create_dir_all(&base).unwrap();
        let raw: crate::config::Config =
            toml::from_str(include_str!("../../config/hutong.toml")).unwrap();
        super::super::bootstrap::bootstrap(&raw, &base).unwrap();
        let cfg = raw.validate(&base).unwrap();
        assert_eq!(
            super::loose_modes(&cfg),
            Vec::<String>::new(),
            "as generated"
        );
        let chmod = |f: &std::path::Path, m: u32| {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(m)).unwrap();
        };
        chmod(&cfg.gateway.pseudonym_secret_file, 0o644);
        chmod(cfg.server.client_ca_file.as_ref().unwrap(), 0o666);
        let loose = super::loose_modes(&cfg);
        assert_eq!(loose.len(), 2, "{loose:?}");
        assert!(
            loose[0].contains("pseudonym.hex (mode 644): a secret"),
            "{loose:?}"
        );
        assert!(
            loose[1].contains("ca.crt.pem (mode 666): trusted"),
            "{loose:?}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
