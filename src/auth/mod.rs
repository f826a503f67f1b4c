//! Authentication of a caller, in the order the request path runs it: the mTLS identity of
//! the connection, the access token (JWT, ES256), then (in [`crate::envelope`]) the envelope
//! signature and the replay window. Each failure has its return code: an unknown or badly
//! credentialed caller 1005, a caller without the right 1006, a bad signature 1003, a stale
//! or replayed request 1004.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::standard::{ReturnCode, ServiceName};
use crate::tlsdev::APP_URI_PREFIX;

/// Why a caller was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The envelope names an appId the registry does not have. (1005)
    #[error("appId is not registered")]
    UnknownApp,
    /// No `Authorization: Bearer` token where one is required. (1005)
    #[error("access token missing")]
    MissingToken,
    /// The token does not verify, is expired, or is for another audience or client. (1005)
    #[error("access token invalid: {0}")]
    BadToken(String),
    /// The token does not grant this service. (1006)
    #[error("access token does not grant {0}")]
    Scope(ServiceName),
    /// The client is registered to present a certificate, and did not, or presented one
    /// for another appId. (1006)
    #[error("client certificate missing or issued to another client")]
    Mtls,
    /// The client may not call this service. (1006)
    #[error("client may not call {0}")]
    Service(ServiceName),
    /// Only regions and the national platform may push status events. (1006)
    #[error("only a region or the national platform may push status events")]
    Role,
    /// The client may not read data of the region that answers. (1006)
    #[error("client may not read this region's data")]
    Region,
}

impl AuthError {
    /// The standard return code.
    pub fn return_code(&self) -> ReturnCode {
        match self {
            Self::UnknownApp | Self::MissingToken | Self::BadToken(_) => ReturnCode::UnknownApp,
            Self::Scope(_) | Self::Mtls | Self::Service(_) | Self::Role | Self::Region => {
                ReturnCode::NoPermission
            }
        }
    }
}

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// The client's appId.
    pub sub: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
    /// Services granted, space-separated.
    pub scope: String,
}

/// The gateway's access-token keys.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
    audience: String,
    /// What an access token must be (audience, issuer, claims, 30 s leeway).
    access: Validation,
    /// What a consent token must be (the consent audience, 5 s leeway).
    consent: Validation,
    /// Tokens already verified, by their exact text, until their `exp`. An ES256
    /// verification costs about 140 µs; a caller sends the same token for an hour. (The
    /// map's hash picks the slot and the whole text is compared, so a token one character
    /// off is a miss and is verified afresh.)
    verified: Remembered<TokenClaims>,
    /// Consent tokens already verified, the same way: a holder's client sends one for each
    /// query until it expires, and nothing revokes it sooner.
    consents: Remembered<ConsentClaims>,
}

/// Verified tokens by their exact text.
type Remembered<T> =
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<Box<str>, std::sync::Arc<T>>>>;

/// The claims of `token` from `memory` while they have not expired (`exp` reads their
/// expiry), else those of its verification against `decoding` and `validation`, which are
/// remembered.
fn remembered<T: serde::de::DeserializeOwned>(
    memory: &Remembered<T>,
    token: &str,
    exp: impl Fn(&T) -> u64,
    decoding: &DecodingKey,
    validation: &Validation,
) -> Result<std::sync::Arc<T>, AuthError> {
    let known = memory
        .lock()
        .ok()
        .and_then(|m| m.get(token).cloned())
        .filter(|c| exp(c) > now_secs());
    if let Some(c) = known {
        return Ok(c);
    }
    let claims = jsonwebtoken::decode::<T>(token, decoding, validation)
        .map(|d| std::sync::Arc::new(d.claims))
        .map_err(|e| AuthError::BadToken(e.to_string()))?;
    if let Ok(mut m) = memory.lock() {
        if m.len() >= MAX_VERIFIED_TOKENS {
            m.clear();
        }
        m.insert(token.into(), std::sync::Arc::clone(&claims));
    }
    Ok(claims)
}

/// Most verified tokens remembered; past it the memory is cleared and refilled.
const MAX_VERIFIED_TOKENS: usize = 100_000;

/// The longest an access token may live: 31 days, a development token's 30 with a day to
/// spare. A lifetime typed in milliseconds would otherwise give a token for years, and a
/// token cannot be revoked short of rotating the key that signs them.
pub const MAX_TOKEN_TTL_SECS: u64 = 31 * 24 * 3600;

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Errors loading token keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not an ECDSA P-256 PKCS#8 key.
    #[error("{0} is not an ECDSA P-256 PKCS#8 PEM key: {1}")]
    Parse(String, String),
}

impl TokenKeys {
    /// Loads the ES256 signing key (PKCS#8 PEM) and derives its verifying key.
    ///
    /// # Errors
    /// [`KeyError`] naming the file.
    pub fn load(path: &Path, issuer: &str, audience: &str) -> Result<Self, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_pem(&pem, issuer, audience)
            .map_err(|e| KeyError::Parse(path.display().to_string(), e))
    }

    /// From a PKCS#8 PEM string.
    ///
    /// # Errors
    /// A message when the key is not ECDSA P-256.
    pub fn from_pem(pem: &str, issuer: &str, audience: &str) -> Result<Self, String> {
        let pair = rcgen::KeyPair::from_pem(pem).map_err(|e| e.to_string())?;
        if pair.algorithm() != &rcgen::PKCS_ECDSA_P256_SHA256 {
            return Err("not an ECDSA P-256 key".into());
        }
        // The RustCrypto backend signs with a PKCS#8 DER key and verifies a SEC1 point.
        let encoding = EncodingKey::from_ec_der(&pair.serialize_der());
        let decoding = DecodingKey::from_ec_der(pair.public_key_raw());
        let validation = |aud: &str, leeway: u64| {
            let mut v = Validation::new(Algorithm::ES256);
            v.set_audience(&[aud]);
            v.set_issuer(&[issuer]);
            v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            v.leeway = leeway;
            v
        };
        Ok(Self {
            encoding,
            decoding,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            access: validation(audience, 30),
            consent: validation(&consent_audience(audience), 5),
            verified: std::sync::Arc::default(),
            consents: std::sync::Arc::default(),
        })
    }

    /// A new ES256 key as PKCS#8 PEM.
    ///
    /// # Errors
    /// When the system random source fails.
    pub fn generate_pem() -> Result<String, String> {
        rcgen::KeyPair::generate()
            .map(|k| k.serialize_pem())
            .map_err(|e| e.to_string())
    }

    /// Issues a token for `app_id` granting `services`, valid `ttl_secs`.
    ///
    /// # Errors
    /// A message when signing fails.
    pub fn issue(
        &self,
        app_id: &str,
        services: &[ServiceName],
        ttl_secs: u64,
    ) -> Result<String, String> {
        if ttl_secs == 0 || ttl_secs > MAX_TOKEN_TTL_SECS {
            return Err(format!(
                "a token lives 1 to {MAX_TOKEN_TTL_SECS} seconds (31 days), not {ttl_secs}: \
                 a token cannot be revoked short of rotating the signing key"
            ));
        }
        let now = now_secs();
        let claims = TokenClaims {
            sub: app_id.to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + ttl_secs,
            scope: services
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.encoding)
            .map_err(|e| e.to_string())
    }

    /// Checks that `Authorization` holds a valid token of `app_id`, whatever it grants.
    ///
    /// # Errors
    /// [`AuthError::MissingToken`] or [`AuthError::BadToken`].
    pub fn check_any(
        &self,
        authorization: Option<&str>,
        app_id: &str,
    ) -> Result<std::sync::Arc<TokenClaims>, AuthError> {
        self.verify(authorization, app_id)
    }

    /// Checks `Authorization` for `app_id` calling `service`.
    ///
    /// # Errors
    /// [`AuthError::MissingToken`], [`AuthError::BadToken`] or [`AuthError::Scope`].
    pub fn check(
        &self,
        authorization: Option<&str>,
        app_id: &str,
        service: ServiceName,
    ) -> Result<std::sync::Arc<TokenClaims>, AuthError> {
        let claims = self.verify(authorization, app_id)?;
        if !claims.scope.split(' ').any(|s| s == service.as_str()) {
            return Err(AuthError::Scope(service));
        }
        Ok(claims)
    }

    /// The claims of a valid token, whoever it was issued to: for callers that name
    /// themselves only by their token (a region's own systems calling a dialect endpoint).
    ///
    /// # Errors
    /// [`AuthError::MissingToken`] or [`AuthError::BadToken`].
    pub fn identify(
        &self,
        authorization: Option<&str>,
    ) -> Result<std::sync::Arc<TokenClaims>, AuthError> {
        self.verify_claims(authorization)
    }

    /// The claims of a valid token of `app_id`, from memory when it was verified before.
    fn verify(
        &self,
        authorization: Option<&str>,
        app_id: &str,
    ) -> Result<std::sync::Arc<TokenClaims>, AuthError> {
        let claims = self.verify_claims(authorization)?;
        if claims.sub != app_id {
            return Err(AuthError::BadToken("issued to another client".into()));
        }
        Ok(claims)
    }

    /// The claims of a valid token, from memory when it was verified before.
    fn verify_claims(
        &self,
        authorization: Option<&str>,
    ) -> Result<std::sync::Arc<TokenClaims>, AuthError> {
        let token = authorization
            .and_then(bearer_token)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MissingToken)?;
        remembered(
            &self.verified,
            token,
            |c: &TokenClaims| c.exp,
            &self.decoding,
            &self.access,
        )
    }
}

/// What a consent token (`authCode`) says: the holder (as a pseudonym), the client it was
/// given to, what it allows, and the region's own authorisation it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentClaims {
    /// The holder's pseudonym, SM4-sealed by the gateway (a fresh IV each time, Base64url):
    /// never their ID number, and not the same for two consents.
    pub sub: String,
    /// Issuer.
    pub iss: String,
    /// `{audience}-consent`: a consent token is never an access token, nor the reverse.
    pub aud: String,
    /// The client the holder consented to (`azp`, as in OpenID Connect).
    pub azp: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// What it allows, space-separated query scopes (`code regions`).
    pub scope: String,
    /// The region that authenticated the holder.
    pub rgn: String,
    /// The region's own authCode, passed on when the query goes to that region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rac: Option<String>,
}

impl TokenKeys {
    /// Issues a consent token (`authCode`) for `claims` (its `iss` and `aud` are set here).
    ///
    /// # Errors
    /// A message when signing fails.
    pub fn issue_consent(&self, claims: &ConsentClaims) -> Result<String, String> {
        let mut c = claims.clone();
        c.iss.clone_from(&self.issuer);
        c.aud = consent_audience(&self.audience);
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &c, &self.encoding)
            .map_err(|e| e.to_string())
    }

    /// The claims of a valid consent token held by `app_id`.
    ///
    /// # Errors
    /// [`AuthError::BadToken`] for a token that is not a live consent token of this
    /// gateway, or that was given to another client.
    pub fn check_consent(
        &self,
        token: &str,
        app_id: &str,
    ) -> Result<std::sync::Arc<ConsentClaims>, AuthError> {
        let c = remembered(
            &self.consents,
            token,
            |c: &ConsentClaims| c.exp,
            &self.decoding,
            &self.consent,
        )?;
        if c.azp != app_id {
            return Err(AuthError::BadToken(
                "consent given to another client".into(),
            ));
        }
        Ok(c)
    }
}

/// The token of an `Authorization` header in the `Bearer` scheme, whose name is
/// case-insensitive (RFC 9110 §11.1).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

/// The audience of consent tokens for access-token `audience`.
fn consent_audience(audience: &str) -> String {
    format!("{audience}-consent")
}

/// Unix seconds now.
pub fn now_unix() -> u64 {
    now_secs()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The appIds a client certificate names: every URI SAN
/// `phic:app:<appId>`. Empty for a certificate that cannot be parsed.
pub fn certificate_app_ids(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    // Only the URI SAN names a client: a common name can be anything a CA was asked for.
    let mut out: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(u) = name {
                if let Some(app) = u.strip_prefix(APP_URI_PREFIX) {
                    out.push(app.to_owned());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::from_pem(&TokenKeys::generate_pem().unwrap(), "hutong", "hutong").unwrap()
    }

    #[test]
    fn a_token_grants_its_services_to_its_client_only() {
        let k = keys();
        let t = k.issue("A1", &[ServiceName::VerifyCode], 60).unwrap();
        let h = format!("Bearer {t}");
        assert!(k.check(Some(&h), "A1", ServiceName::VerifyCode).is_ok());
        assert_eq!(
            k.check(Some(&h), "A1", ServiceName::DeclareHealth),
            Err(AuthError::Scope(ServiceName::DeclareHealth))
        );
        assert!(matches!(
            k.check(Some(&h), "B2", ServiceName::VerifyCode),
            Err(AuthError::BadToken(_))
        ));
        assert_eq!(
            k.check(None, "A1", ServiceName::VerifyCode),
            Err(AuthError::MissingToken)
        );
        // The scheme's name is case-insensitive; another scheme is no token.
        let lower = format!("bearer {t}");
        assert!(k.check(Some(&lower), "A1", ServiceName::VerifyCode).is_ok());
        assert_eq!(
            k.check(Some(&format!("Basic {t}")), "A1", ServiceName::VerifyCode),
            Err(AuthError::MissingToken)
        );
    }

    #[test]
    fn a_token_lives_at_most_31_days() {
        let k = keys();
        assert!(
            k.issue("A1", &[ServiceName::VerifyCode], MAX_TOKEN_TTL_SECS)
                .is_ok()
        );
        for ttl in [0, MAX_TOKEN_TTL_SECS + 1, u64::MAX] {
            let e = k.issue("A1", &[ServiceName::VerifyCode], ttl).unwrap_err();
            assert!(e.contains("31 days"), "{e}");
        }
    }

    #[test]
    fn a_remembered_token_still_binds_its_client_scope_and_expiry() {
        let k = keys();
        let t = k.issue("A1", &[ServiceName::VerifyCode], 60).unwrap();
        let h = format!("Bearer {t}");
        assert!(k.check(Some(&h), "A1", ServiceName::VerifyCode).is_ok());
        // Second time from memory: the same refusals as the first.
        assert!(k.check(Some(&h), "A1", ServiceName::VerifyCode).is_ok());
        assert!(matches!(
            k.check(Some(&h), "B2", ServiceName::VerifyCode),
            Err(AuthError::BadToken(_))
        ));
        assert_eq!(
            k.check(Some(&h), "A1", ServiceName::DeclareHealth),
            Err(AuthError::Scope(ServiceName::DeclareHealth))
        );
        // A token one character off is verified afresh, and fails.
        let mut bad = h.clone();
        bad.pop();
        assert!(matches!(
            k.check(Some(&bad), "A1", ServiceName::VerifyCode),
            Err(AuthError::BadToken(_))
        ));
        // A remembered entry past its exp is not served: the token is verified again.
        let key: &str = t.as_str();
        {
            let mut m = k.verified.lock().unwrap();
            let stale = m.get_mut(key).unwrap();
            std::sync::Arc::make_mut(stale).exp = 1;
        }
        assert!(
            k.check(Some(&h), "A1", ServiceName::VerifyCode).is_ok(),
            "re-verified from the token itself, still valid"
        );
        assert!(
            k.verified.lock().unwrap().get(key).unwrap().exp > 1,
            "the stale entry was replaced by a fresh verification"
        );
    }

    #[test]
    fn a_remembered_consent_still_binds_its_client_and_expiry() {
        let k = keys();
        let now = now_secs();
        let claims = ConsentClaims {
            sub: "ab".repeat(32),
            iss: String::new(),
            aud: String::new(),
            azp: "A1".into(),
            iat: now,
            exp: now + 60,
            scope: "code regions".into(),
            rgn: "330000".into(),
            rac: None,
        };
        let t = k.issue_consent(&claims).unwrap();
        assert_eq!(k.check_consent(&t, "A1").unwrap().azp, "A1");
        // From memory the second time, with the same refusals as the first.
        assert_eq!(k.check_consent(&t, "A1").unwrap().sub, claims.sub);
        assert!(matches!(
            k.check_consent(&t, "B2"),
            Err(AuthError::BadToken(_))
        ));
        // An access token is no consent, remembered or not.
        let access = k.issue("A1", &[ServiceName::QueryHealthInfo], 60).unwrap();
        assert!(
            k.check(
                Some(&format!("Bearer {access}")),
                "A1",
                ServiceName::QueryHealthInfo
            )
            .is_ok()
        );
        assert!(k.check_consent(&access, "A1").is_err());
        // An expired consent in memory is verified afresh from its text, and fails.
        let gone = k
            .issue_consent(&ConsentClaims {
                iat: now - 120,
                exp: now - 60,
                ..claims.clone()
            })
            .unwrap();
        k.consents.lock().unwrap().insert(
            gone.as_str().into(),
            std::sync::Arc::new(ConsentClaims {
                exp: now - 60,
                ..claims
            }),
        );
        assert!(k.check_consent(&gone, "A1").is_err());
    }

    #[test]
    fn rejects_another_gateways_token_and_garbage() {
        let (k, other) = (keys(), keys());
        let t = other.issue("A1", &[ServiceName::VerifyCode], 60).unwrap();
        assert!(matches!(
            k.check(Some(&format!("Bearer {t}")), "A1", ServiceName::VerifyCode),
            Err(AuthError::BadToken(_))
        ));
        assert!(matches!(
            k.check(Some("Bearer x.y.z"), "A1", ServiceName::VerifyCode),
            Err(AuthError::BadToken(_))
        ));
        assert_eq!(
            AuthError::BadToken(String::new()).return_code(),
            ReturnCode::UnknownApp
        );
        assert_eq!(AuthError::Mtls.return_code(), ReturnCode::NoPermission);
    }

    #[test]
    fn reads_the_app_id_from_a_client_certificate() {
        let set = crate::tlsdev::DevCerts::generate(&["localhost".into()], &["A3300010001".into()])
            .unwrap();
        use rustls_pki_types::pem::PemObject as _;
        let der =
            rustls_pki_types::CertificateDer::from_pem_slice(set.clients[0].cert_pem.as_bytes())
                .unwrap();
        assert_eq!(certificate_app_ids(&der), vec!["A3300010001".to_owned()]);
        assert!(certificate_app_ids(b"not a certificate").is_empty());
    }
}
