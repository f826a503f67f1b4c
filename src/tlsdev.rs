//! Development certificates: a CA, a server certificate for the gateway, and client
//! certificates for mTLS, generated with rcgen (ECDSA P-256 over ring).
//!
//! TLS libraries do not speak SM2, so the channel uses P-256; national cryptography lives
//! in the envelope and the codes. These certificates are for development and tests: the CA
//! key is written next to them. `hutong certs dev` writes them; the gateway generates them
//! on first start when its configured certificate files are missing (development config).

use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// The URI SAN prefix that carries a client's `appId` in its certificate.
pub const APP_URI_PREFIX: &str = "phic:app:";
/// Validity of development certificates, days.
pub const DEV_VALIDITY_DAYS: i64 = 825;

/// Errors while generating or writing development certificates.
#[derive(Debug, thiserror::Error)]
pub enum DevCertError {
    /// rcgen refused the parameters (a malformed name).
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// One certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct Pair {
    /// File stem (`ca`, `server`, `client-<appId>`).
    pub name: String,
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PKCS#8 PEM.
    pub key_pem: String,
}

/// A development CA and the certificates it signed.
#[derive(Debug, Clone)]
pub struct DevCerts {
    /// The CA.
    pub ca: Pair,
    /// The gateway's server certificate.
    pub server: Pair,
    /// One per client appId.
    pub clients: Vec<Pair>,
}

impl DevCerts {
    /// Generates a CA, a server certificate for `server_names` (DNS names or IP
    /// addresses) and a client certificate per appId.
    ///
    /// # Errors
    /// [`DevCertError::Generate`] for a name rcgen refuses.
    pub fn generate(server_names: &[String], app_ids: &[String]) -> Result<Self, DevCertError> {
        let now = time_now();
        let until = now + time::Duration::days(DEV_VALIDITY_DAYS);

        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "hutong development CA");
        ca_params
            .distinguished_name
            .push(DnType::OrganizationName, "hutong (development only)");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.not_before = now;
        ca_params.not_after = until;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca = Pair {
            name: "ca".into(),
            cert_pem: ca_cert.pem(),
            key_pem: ca_key.serialize_pem(),
        };
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate()?;
        let mut sp = CertificateParams::new(Vec::<String>::new())?;
        sp.distinguished_name.push(
            DnType::CommonName,
            server_names.first().map_or("localhost", String::as_str),
        );
        for n in server_names {
            sp.subject_alt_names.push(match n.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(n.clone().try_into()?),
            });
        }
        sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        sp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        sp.not_before = now;
        sp.not_after = until;
        let server = Pair {
            name: "server".into(),
            cert_pem: sp.signed_by(&server_key, &issuer)?.pem(),
            key_pem: server_key.serialize_pem(),
        };

        let mut clients = Vec::with_capacity(app_ids.len());
        for app in app_ids {
            let key = KeyPair::generate()?;
            let mut cp = CertificateParams::new(Vec::<String>::new())?;
            cp.distinguished_name.push(DnType::CommonName, app.as_str());
            cp.subject_alt_names
                .push(SanType::URI(format!("{APP_URI_PREFIX}{app}").try_into()?));
            cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            cp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            cp.not_before = now;
            cp.not_after = until;
            clients.push(Pair {
                name: format!("client-{app}"),
                cert_pem: cp.signed_by(&key, &issuer)?.pem(),
                key_pem: key.serialize_pem(),
            });
        }
        Ok(Self {
            ca,
            server,
            clients,
        })
    }

    /// The files [`DevCerts::write_to`] writes, by name.
    pub fn file_names(&self) -> Vec<String> {
        std::iter::once(&self.ca)
            .chain(std::iter::once(&self.server))
            .chain(&self.clients)
            .flat_map(|p| [format!("{}.crt.pem", p.name), format!("{}.key.pem", p.name)])
            .collect()
    }

    /// Writes `<name>.crt.pem` and `<name>.key.pem` for every pair (keys mode 0600).
    ///
    /// # Errors
    /// [`DevCertError::Write`] naming the file.
    pub fn write_to(&self, dir: &Path) -> Result<(), DevCertError> {
        for p in std::iter::once(&self.ca)
            .chain(std::iter::once(&self.server))
            .chain(&self.clients)
        {
            let cert = dir.join(format!("{}.crt.pem", p.name));
            crate::cli::write_public(&cert, p.cert_pem.as_bytes()).map_err(|e| {
                DevCertError::Write {
                    path: cert.display().to_string(),
                    source: std::io::Error::other(e.to_string()),
                }
            })?;
            let key = dir.join(format!("{}.key.pem", p.name));
            crate::cli::write_secret(&key, p.key_pem.as_bytes()).map_err(|e| {
                DevCertError::Write {
                    path: key.display().to_string(),
                    source: std::io::Error::other(e.to_string()),
                }
            })?;
        }
        Ok(())
    }
}

/// Now, a minute in the past so a certificate is valid on a machine whose clock lags.
fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() - time::Duration::minutes(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_chain_with_the_app_id_in_the_client_certificate() {
        let set = DevCerts::generate(
            &["localhost".into(), "127.0.0.1".into()],
            &["A3300010001".into()],
        )
        .unwrap();
        assert!(set.ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(set.server.key_pem.contains("PRIVATE KEY"));
        assert_eq!(set.clients.len(), 1);
        assert_eq!(set.clients[0].name, "client-A3300010001");
    }

    #[test]
    fn refuses_a_malformed_name() {
        assert!(DevCerts::generate(&["例子.example.cn".into()], &[]).is_err());
    }
}
