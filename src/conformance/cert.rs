//! The conformance certificate: what a standards team hands to the national registry. It
//! names the target, the suite and standard versions, the verdict, and the SM3 digest of
//! the JSON report it summarises, and is signed with SM3withSM2 (ID `1234567812345678`) by
//! the team's key, so the registry can check both the signature and that the report is the
//! one certified.
//!
//! Form: `{"certificate": {…}, "signatureAlgorithm": "SM3withSM2", "signature": base64(DER)}`;
//! the signed bytes are the certificate object's JSON with keys sorted at every level.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Report;
use crate::crypto::{SigningKey, VerifyingKey, sm3, to_hex};

/// What is certified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Certificate {
    /// `hutong-conformance-certificate`.
    pub kind: String,
    /// The implementation tested.
    pub target: String,
    /// The suite's version.
    pub suite_version: String,
    /// The standard (and profile) the cases check.
    pub standard: String,
    /// Cases run, passed, and the known deviations.
    pub cases: usize,
    /// See `cases`.
    pub passed: usize,
    /// The id of every case run, in order: what `cases` counts.
    pub case_ids: Vec<String>,
    /// Case ids listed as deviations.
    pub deviations: Vec<String>,
    /// The verdict: every case good and, when the load profile ran, healthy under it.
    pub conforms: bool,
    /// The load profile's verdict, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_healthy: Option<bool>,
    /// SM3 (hex) of the `report.json` bytes.
    pub result_digest: String,
    /// When (Unix seconds).
    pub issued_at: i64,
}

/// A signed certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedCertificate {
    /// The certificate.
    pub certificate: Certificate,
    /// `SM3withSM2`.
    pub signature_algorithm: String,
    /// Base64 of the DER signature.
    pub signature: String,
}

/// Why a certificate does not hold.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Not a certificate.
    #[error("not a conformance certificate: {0}")]
    Malformed(String),
    /// The signature does not verify under the key.
    #[error("the signature does not verify under the given key")]
    Signature,
    /// The report is not the one certified.
    #[error("the report's SM3 digest {actual} is not the certified {certified}")]
    Digest {
        /// In the certificate.
        certified: String,
        /// Of the report given.
        actual: String,
    },
}

fn signed_bytes(c: &Certificate) -> Result<Vec<u8>, CertError> {
    let v = serde_json::to_value(c).map_err(|e| CertError::Malformed(e.to_string()))?;
    Ok(crate::server::services::canonical_json(&v))
}

/// Certifies `report`, whose JSON bytes are `report_json`, signed with `key`.
///
/// # Errors
/// [`CertError::Malformed`] if the certificate does not serialise (it always does).
pub fn certify(
    report: &Report,
    report_json: &[u8],
    key: &SigningKey,
    now: i64,
) -> Result<SignedCertificate, CertError> {
    let certificate = Certificate {
        kind: "hutong-conformance-certificate".into(),
        target: report.target.clone(),
        suite_version: report.suite_version.clone(),
        standard: report.standard.clone(),
        cases: report.cases.len(),
        passed: report.passed(),
        case_ids: report.cases.iter().map(|c| c.id.clone()).collect(),
        deviations: report
            .cases
            .iter()
            .filter(|c| c.deviation.is_some())
            .map(|c| c.id.clone())
            .collect(),
        conforms: report.conforms(),
        load_healthy: report.load.as_ref().map(|l| l.healthy),
        result_digest: to_hex(&sm3(report_json)),
        issued_at: now,
    };
    let signature = B64.encode(key.sign(&signed_bytes(&certificate)?));
    Ok(SignedCertificate {
        certificate,
        signature_algorithm: "SM3withSM2".into(),
        signature,
    })
}

/// Checks a certificate's signature under `key` and, given the report's bytes, that it is
/// the report certified. Returns the certificate.
///
/// # Errors
/// [`CertError`] naming what does not hold.
pub fn verify(
    cert_json: &[u8],
    key: &VerifyingKey,
    report_json: Option<&[u8]>,
) -> Result<Certificate, CertError> {
    let signed: SignedCertificate =
        serde_json::from_slice(cert_json).map_err(|e| CertError::Malformed(e.to_string()))?;
    if signed.signature_algorithm != "SM3withSM2"
        || signed.certificate.kind != "hutong-conformance-certificate"
    {
        return Err(CertError::Malformed("unknown kind or algorithm".into()));
    }
    let sig = B64
        .decode(&signed.signature)
        .map_err(|_| CertError::Signature)?;
    key.verify(&signed_bytes(&signed.certificate)?, &sig)
        .map_err(|_| CertError::Signature)?;
    if let Some(r) = report_json {
        let actual = to_hex(&sm3(r));
        if actual != signed.certificate.result_digest {
            return Err(CertError::Digest {
                certified: signed.certificate.result_digest.clone(),
                actual,
            });
        }
    }
    Ok(signed.certificate)
}

/// The certificate as pretty JSON.
pub fn to_json(c: &SignedCertificate) -> String {
    serde_json::to_string_pretty(c).unwrap_or_else(|_| Value::Null.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            target: "https://t.example.cn".into(),
            suite_version: "0.1.0".into(),
            standard: "GB/T 38963-2020".into(),
            started: 1,
            millis: 2,
            cases: Vec::new(),
            load: None,
        }
    }

    #[test]
    fn a_certificate_verifies_and_catches_a_changed_verdict_key_or_report() {
        let key = SigningKey::generate().unwrap();
        let r = report();
        let json = serde_json::to_vec(&r).unwrap();
        let c = certify(&r, &json, &key, 1_800_000_000).unwrap();
        let text = to_json(&c);
        let got = verify(text.as_bytes(), &key.verifying_key(), Some(&json)).unwrap();
        assert!(got.conforms);
        // Another key.
        let other = SigningKey::generate().unwrap();
        assert!(matches!(
            verify(text.as_bytes(), &other.verifying_key(), None),
            Err(CertError::Signature)
        ));
        // A changed verdict.
        let forged = text.replace("\"conforms\": true", "\"conforms\": false");
        assert_ne!(forged, text);
        assert!(matches!(
            verify(forged.as_bytes(), &key.verifying_key(), None),
            Err(CertError::Signature)
        ));
        // Another report.
        assert!(matches!(
            verify(text.as_bytes(), &key.verifying_key(), Some(b"{}")),
            Err(CertError::Digest { .. })
        ));
        assert!(verify(b"not json", &key.verifying_key(), None).is_err());
    }

    #[test]
    fn an_unhealthy_load_profile_makes_the_report_and_certificate_say_it_does_not_conform() {
        let key = SigningKey::generate().unwrap();
        let mut r = report();
        r.load = Some(crate::conformance::load::LoadReport {
            phases: Vec::new(),
            rate_limited: true,
            healthy: false,
        });
        assert!(!r.conforms());
        assert!(r.summary().contains("DOES NOT CONFORM"), "{}", r.summary());
        let json = serde_json::to_vec(&r).unwrap();
        assert!(String::from_utf8_lossy(&json).contains("\"healthy\":false"));
        let c = certify(&r, &json, &key, 1_800_000_000).unwrap();
        assert!(!c.certificate.conforms);
        assert_eq!(c.certificate.load_healthy, Some(false));
    }
}
