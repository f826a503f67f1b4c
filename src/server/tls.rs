//! The TLS side of the listener: rustls with the ring provider, TLS 1.2 and 1.3, ALPN for
//! HTTP/2 and HTTP/1.1, and optional client certificates (mTLS) from a configured CA.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::ServerError;
use crate::config::ServerSettings;

/// The crypto provider of every TLS endpoint of hutong.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM certificate chain.
///
/// # Errors
/// [`ServerError::Tls`] naming the file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| ServerError::Tls(format!("{}: {e}", path.display())))?
        .collect();
    let certs = certs.map_err(|e| ServerError::Tls(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!(
            "{}: no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// Builds the server's TLS configuration.
///
/// # Errors
/// [`ServerError::Tls`] for unreadable or mismatched certificate files.
pub fn server_config(s: &ServerSettings) -> Result<Arc<ServerConfig>, ServerError> {
    let mut config = config_for(
        &s.tls_cert_file,
        &s.tls_key_file,
        s.client_ca_file.as_deref(),
    )?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The gateway's TLS (the ring provider, TLS 1.3 and 1.2, optional client certificates from
/// `client_ca`) with the chain and key of these files, without ALPN.
///
/// # Errors
/// [`ServerError::Tls`] for unreadable or mismatched certificate files.
pub fn config_for(
    cert_file: &Path,
    key_file: &Path,
    client_ca: Option<&Path>,
) -> Result<ServerConfig, ServerError> {
    let chain = read_certs(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| ServerError::Tls(format!("{}: {e}", key_file.display())))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs(ca)? {
                roots
                    .add(c)
                    .map_err(|e| ServerError::Tls(format!("{}: {e}", ca.display())))?;
            }
            // Certificates are optional at the TLS layer; clients registered with
            // `require_mtls` are refused (1006) when theirs is missing or names another.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| ServerError::Tls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| ServerError::Tls(format!("certificate and key: {e}")))
}
