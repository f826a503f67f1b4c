//! The PHIC1 token itself: payload, [`issue`], parsing, and the offline [`Verifier`].

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::{Deserialize, Serialize};

use super::{Clock, CodeError, CodeId, Colour, MAX_CONTENT_BYTES, MAX_PAYLOAD_BYTES};
use crate::crypto::{SigningKey, VerifyingKey};
use crate::trust::{IssuerId, KeyStatus, Kid, LookupError, RegionCode, TrustRegistry};

/// Token prefix, including the dot.
pub const PREFIX: &str = "PHIC1.";

/// Default tolerated clock difference between issuer and verifier, seconds.
pub const DEFAULT_SKEW_SECS: u32 = 60;

/// Default longest token lifetime (`exp - iat`) accepted, seconds. Issuers should use
/// far less (profile §2.4: TTL ≤ 5 min); the bound limits what a stolen key can mint.
pub const DEFAULT_MAX_LIFETIME_SECS: u32 = 86_400;

/// Longest signature segment accepted (Base64 of a ≤ 72-byte DER signature), characters.
const MAX_SIGNATURE_SEGMENT: usize = 128;

/// The payload as it is on the wire. Field order here is the order of issued tokens.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    v: u32,
    iss: String,
    kid: String,
    cid: String,
    col: String,
    iat: i64,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nc: Option<String>,
}

/// An issuer's signing key with the ids that tokens signed by it carry.
#[derive(Debug)]
pub struct IssuerKey {
    issuer: IssuerId,
    kid: Kid,
    key: SigningKey,
}

impl IssuerKey {
    /// Key `kid` of `issuer`.
    pub fn new(issuer: IssuerId, kid: Kid, key: SigningKey) -> Self {
        IssuerKey { issuer, kid, key }
    }

    /// The issuer id (`iss`).
    pub fn issuer(&self) -> &IssuerId {
        &self.issuer
    }

    /// The key id (`kid`).
    pub fn kid(&self) -> &Kid {
        &self.kid
    }

    /// The public key to publish in the trust list.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }
}

/// What an issuing region asks a code to say. `iss` and `kid` come from the [`IssuerKey`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Code id.
    pub cid: CodeId,
    /// Colour.
    pub col: Colour,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds (exclusive).
    pub exp: i64,
    /// National (一体化平台) code id, if linked.
    pub nc: Option<CodeId>,
}

/// Everything a token says, after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// Issuer id.
    pub iss: IssuerId,
    /// Key id.
    pub kid: Kid,
    /// Code id.
    pub cid: CodeId,
    /// Colour.
    pub col: Colour,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds (exclusive).
    pub exp: i64,
    /// National code id.
    pub nc: Option<CodeId>,
}

/// Sign `claims` with `key` and return the token.
///
/// Errors: [`CodeError::InvalidClaims`] when `iat` is negative, `exp <= iat`, or the
/// lifetime exceeds [`DEFAULT_MAX_LIFETIME_SECS`].
pub fn issue(key: &IssuerKey, claims: &Claims) -> Result<String, CodeError> {
    if claims.iat < 0 {
        return Err(CodeError::InvalidClaims("iat is negative"));
    }
    if claims.exp <= claims.iat {
        return Err(CodeError::InvalidClaims("exp is not after iat"));
    }
    if claims.exp - claims.iat > i64::from(DEFAULT_MAX_LIFETIME_SECS) {
        return Err(CodeError::InvalidClaims("lifetime too long"));
    }
    let payload = Payload {
        v: 1,
        iss: key.issuer.as_str().to_owned(),
        kid: key.kid.as_str().to_owned(),
        cid: claims.cid.as_str().to_owned(),
        col: claims.col.as_str().to_owned(),
        iat: claims.iat,
        exp: claims.exp,
        nc: claims.nc.as_ref().map(|n| n.as_str().to_owned()),
    };
    // Invariant: a struct of strings and integers always serialises.
    let json = serde_json::to_vec(&payload).expect("payload serialises");
    let mut token = String::with_capacity(PREFIX.len() + json.len() * 2 + 100);
    token.push_str(PREFIX);
    B64URL.encode_string(&json, &mut token);
    let signature = key.key.sign(token.as_bytes());
    token.push('.');
    B64URL.encode_string(signature, &mut token);
    Ok(token)
}

/// A token split and decoded, not yet verified.
#[derive(Debug, Clone)]
pub struct ParsedToken<'a> {
    /// The signed part: `PHIC1.` + base64url(payload).
    pub signed: &'a str,
    /// The payload's claims (unverified).
    pub claims: TokenClaims,
    /// The DER signature bytes (not yet checked to be DER).
    pub signature: Vec<u8>,
}

/// Split and decode a token, checking its shape and every field. Never panics; works on
/// any input, bounded by [`MAX_CONTENT_BYTES`].
pub fn parse(token: &str) -> Result<ParsedToken<'_>, CodeError> {
    if token.len() > MAX_CONTENT_BYTES {
        return Err(CodeError::TooLong(token.len()));
    }
    let rest = token
        .strip_prefix(PREFIX)
        .ok_or(CodeError::Malformed("missing PHIC1 prefix"))?;
    let (payload_b64, sig_b64) = rest
        .split_once('.')
        .ok_or(CodeError::Malformed("missing signature segment"))?;
    if payload_b64.is_empty() || sig_b64.is_empty() || sig_b64.contains('.') {
        return Err(CodeError::Malformed("wrong number of segments"));
    }
    if payload_b64.len() > MAX_PAYLOAD_BYTES.div_ceil(3) * 4 {
        return Err(CodeError::Malformed("payload too long"));
    }
    if sig_b64.len() > MAX_SIGNATURE_SEGMENT {
        return Err(CodeError::Malformed("signature too long"));
    }
    // The engine rejects padding and non-zero trailing bits, so each byte string has
    // exactly one accepted encoding.
    let json = B64URL
        .decode(payload_b64)
        .map_err(|_| CodeError::Malformed("payload is not base64url"))?;
    let signature = B64URL
        .decode(sig_b64)
        .map_err(|_| CodeError::Malformed("signature is not base64url"))?;
    let claims = parse_payload(&json)?;
    let signed = &token[..PREFIX.len() + payload_b64.len()];
    Ok(ParsedToken {
        signed,
        claims,
        signature,
    })
}

fn parse_payload(json: &[u8]) -> Result<TokenClaims, CodeError> {
    if json.len() > MAX_PAYLOAD_BYTES {
        return Err(CodeError::Malformed("payload too long"));
    }
    // Every field is a scalar and unknown fields are refused, so nothing nests; serde
    // refuses duplicate fields too.
    let p: Payload = serde_json::from_slice(json)
        .map_err(|_| CodeError::Malformed("payload is not a PHIC1 object"))?;
    if p.v != 1 {
        return Err(CodeError::Malformed("unsupported version"));
    }
    let claims = TokenClaims {
        iss: IssuerId::parse(&p.iss).map_err(|_| CodeError::Malformed("iss"))?,
        kid: Kid::parse(&p.kid).map_err(|_| CodeError::Malformed("kid"))?,
        cid: CodeId::parse(&p.cid).ok_or(CodeError::Malformed("cid"))?,
        col: Colour::parse(&p.col).ok_or(CodeError::Malformed("col"))?,
        iat: p.iat,
        exp: p.exp,
        nc: match p.nc {
            None => None,
            Some(nc) => Some(CodeId::parse(&nc).ok_or(CodeError::Malformed("nc"))?),
        },
    };
    if claims.iat < 0 || claims.exp <= claims.iat {
        return Err(CodeError::Malformed("iat/exp"));
    }
    Ok(claims)
}

/// Verifier settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifierConfig {
    /// Tolerated clock difference applied to `iat`, `exp` and key validity, seconds.
    pub clock_skew_secs: u32,
    /// Longest `exp - iat` accepted, seconds; longer tokens are 3001.
    pub max_lifetime_secs: u32,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            clock_skew_secs: DEFAULT_SKEW_SECS,
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
        }
    }
}

/// A token that verified, with what the trust list says about its issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCode {
    /// The token's claims.
    pub claims: TokenClaims,
    /// Issuer display name from the trust list.
    pub issuer_name: String,
    /// Issuer region from the trust list.
    pub region: RegionCode,
}

/// Offline PHIC1 verifier over the live trust registry and an injected clock.
#[derive(Clone)]
pub struct Verifier {
    registry: Arc<TrustRegistry>,
    clock: Arc<dyn Clock>,
    config: VerifierConfig,
    /// The signed trust list the registry was loaded from, as it came (what the gateway
    /// publishes: the list in force, not whatever its file holds now).
    published: Option<bytes::Bytes>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier reading keys from `registry` and "now" from `clock`.
    pub fn new(
        registry: Arc<TrustRegistry>,
        clock: Arc<dyn Clock>,
        config: VerifierConfig,
    ) -> Self {
        Verifier {
            registry,
            clock,
            config,
            published: None,
        }
    }

    /// This verifier, with the signed list its registry was loaded from.
    #[must_use]
    pub fn with_published(mut self, wire: bytes::Bytes) -> Self {
        self.published = Some(wire);
        self
    }

    /// The signed trust list its registry was loaded from, if it was given one.
    pub fn published(&self) -> Option<&bytes::Bytes> {
        self.published.as_ref()
    }

    /// The trust registry this verifier reads.
    pub fn registry(&self) -> &Arc<TrustRegistry> {
        &self.registry
    }

    /// Verify `token` at the clock's current time.
    pub fn verify(&self, token: &str) -> Result<VerifiedCode, CodeError> {
        self.verify_at(token, self.clock.now_unix())
    }

    /// Verify `token` as of `now` (Unix seconds). Checks, in order: shape and fields
    /// (3001), issuer and key known (3003), key not revoked (3004), signature (3004), key
    /// valid at `iat` (3003), `iat`/`exp` against `now` with the skew (3002), key still
    /// valid now (3003). See the module docs for why time comes after the signature: an
    /// expired token answers 3002 even when its key has since been retired.
    pub fn verify_at(&self, token: &str, now: i64) -> Result<VerifiedCode, CodeError> {
        let parsed = parse(token)?;
        let claims = parsed.claims;
        if claims.exp - claims.iat > i64::from(self.config.max_lifetime_secs) {
            return Err(CodeError::Malformed("lifetime too long"));
        }
        let skew = i64::from(self.config.clock_skew_secs);

        // One snapshot for the whole check: a concurrent swap cannot mix two lists.
        let snapshot = self.registry.snapshot();
        let (issuer, key) = snapshot
            .lookup(&claims.iss, &claims.kid)
            .map_err(|e| match e {
                LookupError::UnknownIssuer => CodeError::UnknownIssuer,
                LookupError::UnknownKey => CodeError::UnknownKey,
            })?;
        if key.status == KeyStatus::Revoked {
            return Err(CodeError::KeyRevoked);
        }
        key.public_key
            .verify(parsed.signed.as_bytes(), &parsed.signature)
            .map_err(|_| CodeError::BadSignature)?;

        // The claims are authentic from here on.
        if !key.valid_at(claims.iat, skew) {
            return Err(CodeError::KeyNotValid);
        }
        if claims.iat > now.saturating_add(skew) {
            return Err(CodeError::NotYetValid);
        }
        if now.saturating_sub(skew) >= claims.exp {
            return Err(CodeError::Expired);
        }
        if !key.valid_at(now, skew) {
            return Err(CodeError::KeyNotValid);
        }
        Ok(VerifiedCode {
            claims,
            issuer_name: issuer.name.clone(),
            region: issuer.region.clone(),
        })
    }

    /// [`verify_content`](Self::verify_content) of content already recognised as PHIC1
    /// ([`super::Phic1Format`]), without parsing it again: the same checks and errors, with
    /// the URL's hints compared as the recognised text of the same ids.
    pub fn verify_recognised(&self, rec: &super::Recognised) -> Result<VerifiedCode, CodeError> {
        let token = rec.token.as_deref().ok_or(CodeError::NoToken)?;
        let verified = self.verify(token)?;
        // For a bare token the hints were read from the token itself, so they agree.
        let c = &verified.claims;
        let nc = c.nc.as_ref().map(|n| n.to_string());
        if rec.issuer_hint.as_deref() != Some(c.iss.as_str())
            || rec.code_id.as_deref() != Some(c.cid.as_str())
            || (rec.national_code_id.is_some() && rec.national_code_id != nc)
        {
            return Err(CodeError::UrlMismatch);
        }
        Ok(verified)
    }

    /// Verify scanned content in either PHIC1 form: a bare token, or a PHIC1 URL whose
    /// `pc` carries one. For a URL, the unsigned `iss`, `cid` and `nc` must match the
    /// token ([`CodeError::UrlMismatch`]); a URL without `pc` is [`CodeError::NoToken`].
    pub fn verify_content(&self, content: &str) -> Result<VerifiedCode, CodeError> {
        if content.len() > MAX_CONTENT_BYTES {
            return Err(CodeError::TooLong(content.len()));
        }
        if content.starts_with(PREFIX) {
            return self.verify(content);
        }
        let url = super::CodeUrl::parse(content)?;
        let token = url.pc.as_deref().ok_or(CodeError::NoToken)?;
        let verified = self.verify(token)?;
        let c = &verified.claims;
        if url.iss != c.iss || url.cid != c.cid || (url.nc.is_some() && url.nc != c.nc) {
            return Err(CodeError::UrlMismatch);
        }
        Ok(verified)
    }
}
