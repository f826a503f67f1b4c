//! `hutong keys …` and `hutong certs dev`: SM2 key pairs, signed trust lists, and the
//! development certificates for TLS and mTLS.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::crypto::{SigningKey, VerifyingKey};
use crate::trust::{parse_unsigned_list, sign_trust_list};

/// `hutong keys …`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCmd {
    /// Write a new SM2 key pair: PREFIX.key.pem (PKCS#8, mode 0600) and PREFIX.pub.pem
    /// (SubjectPublicKeyInfo), and print the public key as SEC1 hex (04‖x‖y).
    Gen {
        /// Path prefix of the two files, e.g. keys/issuer-330000.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Sign a trust list with the trust anchor's key. The input is the unsigned list as
    /// JSON (`{"version", "issued_at", "issuers": [{"id", "region", "name", "keys": [{"kid",
    /// "public_key", "not_before", "not_after", "status"}]}]}`); a `public_key` may be SEC1
    /// hex or `@path/to/key.pub.pem`.
    TrustList {
        /// The unsigned list (JSON), or - for standard input.
        list: String,
        /// The trust anchor's private key (PKCS#8 PEM).
        #[arg(long)]
        anchor: PathBuf,
        /// The anchor's key id, which verifiers look the anchor up by.
        #[arg(long, default_value = "anchor-1")]
        anchor_kid: String,
        /// Write the signed list here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `hutong certs …`.
#[derive(Debug, clap::Subcommand)]
pub enum CertsCmd {
    /// Write a development CA, a server certificate for the gateway and client certificates
    /// for mTLS, as PEM files (ECDSA P-256; TLS stacks do not speak SM2). For development
    /// and tests only: the CA key sits next to the certificates.
    Dev {
        /// Directory to write into (created if missing).
        #[arg(long, default_value = "dev-certs")]
        out: PathBuf,
        /// DNS names and IP addresses of the server certificate.
        #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1")]
        server_names: Vec<String>,
        /// Client identities (appIds), one certificate each; the appId is the certificate's
        /// common name and a URI SAN `phic:app:<appId>`.
        #[arg(long, value_delimiter = ',', default_value = "A3300010001")]
        clients: Vec<String>,
        /// Overwrite certificates and keys already there. A new CA breaks every client
        /// certificate the old one signed.
        #[arg(long)]
        force: bool,
    },
}

pub(super) fn run_keys(cmd: &KeysCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCmd::Gen { out, force } => {
            let key_path = with_suffix(out, ".key.pem");
            let pub_path = with_suffix(out, ".pub.pem");
            for p in [&key_path, &pub_path] {
                if p.exists() && !force {
                    bail!("{} exists; pass --force to overwrite", p.display());
                }
            }
            if let Some(dir) = key_path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let key = SigningKey::generate()?;
            write_secret(&key_path, key.to_pem()?.as_bytes())?;
            let public = key.verifying_key();
            write_public(&pub_path, public.to_pem()?.as_bytes())?;
            say!("wrote {} and {}", key_path.display(), pub_path.display());
            say!("public key (SEC1 hex): {}", public.to_hex());
            Ok(ExitCode::SUCCESS)
        }
        KeysCmd::TrustList {
            list,
            anchor,
            anchor_kid,
            out,
        } => {
            let raw = super::read_input(list, crate::trust::list::MAX_TRUST_LIST_BYTES)?;
            let mut doc: Value = serde_json::from_slice(&raw).context("the list is not JSON")?;
            let base = if list == "-" {
                PathBuf::from(".")
            } else {
                Path::new(list)
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default()
            };
            resolve_key_files(&mut doc, &base)?;
            let parsed = parse_unsigned_list(serde_json::to_vec(&doc)?.as_slice())?;
            let pem = std::fs::read_to_string(anchor)
                .with_context(|| format!("cannot read {}", anchor.display()))?;
            let key = SigningKey::from_pem(&pem)?;
            let signed = sign_trust_list(&parsed, anchor_kid, &key)?;
            let json = signed.to_json();
            match out {
                Some(p) => {
                    write_public(p, json.as_bytes())?;
                    say!(
                        "signed trust list v{} ({} issuer(s)) by {anchor_kid}: {} (ETag {})",
                        parsed.version,
                        parsed.issuers.len(),
                        p.display(),
                        signed.etag()
                    );
                }
                None => say!("{json}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Replaces `"public_key": "@file.pem"` with the key's SEC1 hex.
fn resolve_key_files(doc: &mut Value, base: &Path) -> anyhow::Result<()> {
    let issuers = doc.get_mut("issuers").and_then(Value::as_array_mut);
    for issuer in issuers.into_iter().flatten() {
        let keys = issuer.get_mut("keys").and_then(Value::as_array_mut);
        for key in keys.into_iter().flatten() {
            if let Some(Value::String(s)) = key.get_mut("public_key") {
                if let Some(file) = s.strip_prefix('@') {
                    let path = base.join(file);
                    let pem = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    *s = VerifyingKey::from_pem(&pem)
                        .with_context(|| format!("{}", path.display()))?
                        .to_hex();
                }
            }
        }
    }
    Ok(())
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes a secret file readable by its owner only (0600), whole or not at all: see
/// [`write_public`].
pub(crate) fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_replacing(path, bytes, 0o600)
}

/// Writes a file others may read (a public key, a certificate, a trust list) whole or not
/// at all: the bytes go to a new file beside it, are forced to disk, and the new file is
/// renamed over the old. A full disk or a crash leaves the old file, never half of each.
pub(crate) fn write_public(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_replacing(path, bytes, 0o644)
}

fn write_replacing(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    replace_with(path, mode, |f| f.write_all(bytes))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes a secret file (0600) whole or not at all, as [`write_secret`] does, with what
/// `write` puts in it: for contents written as they are made rather than held whole
/// (the replay store's save). Returns what `write` returns.
pub(crate) fn write_secret_with<T>(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<T>,
) -> std::io::Result<T> {
    replace_with(path, 0o600, write)
}

/// The temporary file a write of `path` goes to before its rename: beside it, hidden, and
/// named by this process.
pub(crate) fn temporary_for(path: &Path) -> std::io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} names no file", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    Ok(directory_of(path).join(tmp_name))
}

fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The bytes go to a new file beside `path` (mode `mode`), are forced to disk, and the new
/// file is renamed over the old; on any failure the new file is removed and the old stays.
fn replace_with<T>(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let tmp = temporary_for(path)?;
    // A stale temporary file of an earlier run goes first; then the file is created afresh
    // (O_EXCL): a name planted meanwhile, a symbolic link above all, is an error, never
    // followed, and never renamed into place.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(mode);
    }
    let written = (|| -> std::io::Result<T> {
        let mut f = opts.open(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            // The mode at open passes through the umask.
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        let out = write(&mut f)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(out)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return written;
    }
    // The rename itself reaches the disk with the directory.
    if let Ok(d) = std::fs::File::open(directory_of(path)) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = mode;
    written
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_secret_written_over_a_readable_file_is_its_owners_alone() {
        let path = std::env::temp_dir().join(format!("hutong-secret-{}.pem", std::process::id()));
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        super::write_secret(&path, b"new key").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        assert_eq!(std::fs::read(&path).unwrap(), b"new key");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_link_planted_at_the_temporary_name_is_not_followed() {
        let dir = crate::testutil::fresh_dir("planted");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("report.json");
        let victim = dir.join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        // Someone with the directory plants the temporary file's name as a link.
        std::os::unix::fs::symlink(&victim, super::temporary_for(&path).unwrap()).unwrap();
        super::write_public(&path, b"{}").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        assert!(
            !std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

pub(super) fn run_certs(cmd: &CertsCmd) -> anyhow::Result<ExitCode> {
    let CertsCmd::Dev {
        out,
        server_names,
        clients,
        force,
    } = cmd;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let set = crate::tlsdev::DevCerts::generate(server_names, clients)?;
    if !force {
        let there: Vec<String> = set
            .file_names()
            .iter()
            .map(|n| out.join(n))
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !there.is_empty() {
            bail!(
                "{} exist(s); pass --force to overwrite (a new CA breaks every client certificate the old one signed)",
                there.join(", ")
            );
        }
    }
    set.write_to(out)?;
    say!(
        "wrote a development CA, a server certificate for {} and {} client certificate(s) to {}",
        server_names.join(", "),
        clients.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
