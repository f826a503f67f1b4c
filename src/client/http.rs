//! The client's HTTP side: a pooled HTTPS (or loopback HTTP) client trusting the
//! profile's CA, with its client certificate, and the limits on what it reads.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::ClientError;

pub(super) type Http = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The largest answer read: a national message's limit in Base64, with the envelope around
/// it. A target that sends more (the conformance suite runs against others' servers) is a
/// transport error, not memory.
pub(super) const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// An error and its causes, `: `-joined (hyper's top error says only "client error").
pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// An HTTPS (or loopback HTTP) client trusting `ca`, presenting `client_cert` if given.
pub(super) fn http_client(
    ca: Option<&Path>,
    client_cert: Option<(&Path, &Path)>,
) -> Result<Http, ClientError> {
    let perr = |e: &dyn std::fmt::Display| ClientError::Profile(e.to_string());
    let at = |p: &Path| {
        let p = p.display().to_string();
        move |e: &dyn std::fmt::Display| ClientError::Profile(format!("{p}: {e}"))
    };
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        let err = at(ca);
        for c in CertificateDer::pem_file_iter(ca).map_err(|e| err(&e))? {
            roots.add(c.map_err(|e| err(&e))?).map_err(|e| err(&e))?;
        }
        if roots.is_empty() {
            return Err(err(&"no certificate in the file"));
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(crate::server::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| perr(&e))?
        .with_root_certificates(Arc::new(roots));
    let tls = match client_cert {
        Some((cert, key)) => {
            let cert_err = at(cert);
            let chain: Result<Vec<_>, _> = CertificateDer::pem_file_iter(cert)
                .map_err(|e| cert_err(&e))?
                .collect();
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| at(key)(&e))?;
            builder
                .with_client_auth_cert(chain.map_err(|e| cert_err(&e))?, key)
                .map_err(|e| perr(&e))?
        }
        None => builder.with_no_client_auth(),
    };
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}
