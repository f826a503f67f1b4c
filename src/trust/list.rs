//! The signed trust-list document (`GET /phic/v1/trust-list`, DESIGN.md §3 "Keys").
//!
//! The list is a JSON object
//! `{"version":n,"issued_at":t,"issuers":[{"id","region","name","keys":[{"kid",
//! "public_key","not_before","not_after","status"}]}]}` with public keys as SEC1
//! uncompressed hex (`04‖x‖y`) and status `active` or `revoked`.
//!
//! The wire form wraps it so that the signed bytes are unambiguous:
//! `{"list":"<Base64 of the list JSON bytes>","anchor_kid":"…","signature":"<Base64 DER>"}`.
//! The signature is SM3withSM2 (ID `1234567812345678`) by the trust anchor over exactly
//! the bytes that `list` decodes to, and those same bytes are what is parsed: no
//! re-serialisation stands between what was signed and what is trusted. A JSON object
//! can never be mistaken for the other messages SM2 signs here (a PHIC1 token starts
//! with `PHIC1.`, an envelope canonical string with `appId=`), but anchor keys should
//! sign nothing else all the same.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use super::{Issuer, IssuerId, KeyStatus, Kid, RegionCode, TrustError, TrustList, TrustedKey};
use crate::crypto::{SigningKey, VerifyingKey, sm3};

/// Largest signed trust list accepted, in bytes (wire form).
pub const MAX_TRUST_LIST_BYTES: usize = 4 * 1024 * 1024;

/// Longest issuer display name, in characters.
pub const MAX_ISSUER_NAME_CHARS: usize = 128;

/// The wire form of a signed trust list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTrustList {
    /// Standard Base64 of the list's JSON bytes.
    pub list: String,
    /// Id of the anchor key that signed.
    pub anchor_kid: String,
    /// Standard Base64 of the DER SM2 signature over the decoded `list` bytes.
    pub signature: String,
}

impl SignedTrustList {
    /// The wire JSON.
    pub fn to_json(&self) -> String {
        // Invariant: three string fields always serialise.
        serde_json::to_string(self).expect("string fields serialise")
    }

    /// The ETag the gateway publishes this list under, written as [`SignedTrustList::to_json`]
    /// writes it ([`etag_of`]): what an operator compares after a reload.
    pub fn etag(&self) -> String {
        etag_of(self.to_json().as_bytes())
    }
}

/// The strong HTTP ETag of a published trust list's bytes: `"sm3-"` and the first 16 bytes
/// of their SM3, hex (DESIGN.md §3). The gateway serves the file under it.
pub fn etag_of(bytes: &[u8]) -> String {
    format!("\"sm3-{}\"", crate::crypto::to_hex(&sm3(bytes)[..16]))
}

/// The trust anchors a verifier accepts, by anchor key id.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    keys: HashMap<String, VerifyingKey>,
}

impl TrustAnchors {
    /// No anchors: every list is rejected.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) anchor `kid`.
    pub fn insert(&mut self, kid: impl Into<String>, key: VerifyingKey) {
        self.keys.insert(kid.into(), key);
    }

    /// Builder form of [`insert`](Self::insert).
    pub fn with(mut self, kid: impl Into<String>, key: VerifyingKey) -> Self {
        self.insert(kid, key);
        self
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListDoc {
    version: u64,
    issued_at: i64,
    issuers: Vec<IssuerDoc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerDoc {
    id: String,
    region: String,
    name: String,
    keys: Vec<KeyDoc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyDoc {
    kid: String,
    public_key: String,
    not_before: i64,
    not_after: i64,
    status: StatusDoc,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StatusDoc {
    Active,
    Revoked,
}

fn to_doc(list: &TrustList) -> ListDoc {
    ListDoc {
        version: list.version,
        issued_at: list.issued_at,
        issuers: list
            .issuers
            .iter()
            .map(|i| IssuerDoc {
                id: i.id.as_str().to_owned(),
                region: i.region.as_str().to_owned(),
                name: i.name.clone(),
                keys: i
                    .keys
                    .iter()
                    .map(|k| KeyDoc {
                        kid: k.kid.as_str().to_owned(),
                        public_key: k.public_key.to_hex(),
                        not_before: k.not_before,
                        not_after: k.not_after,
                        status: match k.status {
                            KeyStatus::Active => StatusDoc::Active,
                            KeyStatus::Revoked => StatusDoc::Revoked,
                        },
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Convert the document into validated types, collecting every problem.
fn from_doc(doc: ListDoc) -> Result<TrustList, TrustError> {
    let mut problems = Vec::new();
    let mut issuers = Vec::with_capacity(doc.issuers.len());
    for (i, d) in doc.issuers.into_iter().enumerate() {
        let id = IssuerId::parse(&d.id);
        let region = RegionCode::parse(&d.region);
        if id.is_err() {
            problems.push(format!("issuers[{i}]: id is not 8 digits"));
        }
        if region.is_err() {
            problems.push(format!("issuers[{i}]: region is not 6 digits"));
        }
        if d.name.chars().count() > MAX_ISSUER_NAME_CHARS {
            problems.push(format!(
                "issuers[{i}]: name longer than {MAX_ISSUER_NAME_CHARS}"
            ));
        }
        let mut keys = Vec::with_capacity(d.keys.len());
        for (j, k) in d.keys.into_iter().enumerate() {
            let kid = Kid::parse(&k.kid);
            let public_key = VerifyingKey::from_hex(&k.public_key);
            if kid.is_err() {
                problems.push(format!("issuers[{i}].keys[{j}]: invalid kid"));
            }
            if public_key.is_err() {
                problems.push(format!("issuers[{i}].keys[{j}]: invalid SM2 public key"));
            }
            if let (Ok(kid), Ok(public_key)) = (kid, public_key) {
                keys.push(TrustedKey {
                    kid,
                    public_key,
                    not_before: k.not_before,
                    not_after: k.not_after,
                    status: match k.status {
                        StatusDoc::Active => KeyStatus::Active,
                        StatusDoc::Revoked => KeyStatus::Revoked,
                    },
                });
            }
        }
        if let (Ok(id), Ok(region)) = (id, region) {
            issuers.push(Issuer {
                id,
                region,
                name: d.name,
                keys,
            });
        }
    }
    if !problems.is_empty() {
        return Err(TrustError::InvalidList(problems));
    }
    let list = TrustList {
        version: doc.version,
        issued_at: doc.issued_at,
        issuers,
    };
    list.validate()?;
    Ok(list)
}

/// Parses an unsigned trust list: the JSON that [`sign_trust_list`] signs (public keys as
/// SEC1 uncompressed hex). This is the input of `hutong keys trust-list`.
///
/// # Errors
/// [`TrustError::TooLarge`], [`TrustError::Malformed`], or what [`TrustList::validate`] finds.
pub fn parse_unsigned_list(bytes: &[u8]) -> Result<TrustList, TrustError> {
    if bytes.len() > MAX_TRUST_LIST_BYTES {
        return Err(TrustError::TooLarge(bytes.len()));
    }
    let doc: ListDoc =
        serde_json::from_slice(bytes).map_err(|e| TrustError::Malformed(format!("list: {e}")))?;
    from_doc(doc)
}

/// The unsigned JSON form of a list, pretty-printed for people.
pub fn unsigned_list_json(list: &TrustList) -> String {
    // Invariant: the document is strings and integers only.
    #[allow(clippy::expect_used)]
    serde_json::to_string_pretty(&to_doc(list)).expect("a trust list serialises")
}

/// Serialise `list` and sign it with the anchor key `anchor` (id `anchor_kid`).
pub fn sign_trust_list(
    list: &TrustList,
    anchor_kid: &str,
    anchor: &SigningKey,
) -> Result<SignedTrustList, TrustError> {
    list.validate()?;
    let bytes =
        serde_json::to_vec(&to_doc(list)).map_err(|e| TrustError::Malformed(e.to_string()))?;
    let signature = anchor.sign(&bytes);
    Ok(SignedTrustList {
        list: B64.encode(&bytes),
        anchor_kid: anchor_kid.to_owned(),
        signature: B64.encode(signature),
    })
}

/// SM3 of the signed list inside `wire` (its decoded `list`, not the wrapper): the same for
/// one list however it is signed (a rotated anchor re-signing it). `None` when `wire` is not
/// a wrapper; call it on a list [`verify_trust_list`] took.
pub fn signed_list_digest(wire: &[u8]) -> Option<[u8; 32]> {
    let signed: SignedTrustList = serde_json::from_slice(wire).ok()?;
    let bytes = B64.decode(&signed.list).ok()?;
    Some(sm3(&bytes))
}

/// Parse the wire form, check the anchor signature over the exact list bytes, then parse
/// and validate the list. Nothing from the list is looked at before the signature
/// verifies.
pub fn verify_trust_list(wire: &[u8], anchors: &TrustAnchors) -> Result<TrustList, TrustError> {
    if wire.len() > MAX_TRUST_LIST_BYTES {
        return Err(TrustError::TooLarge(wire.len()));
    }
    let signed: SignedTrustList =
        serde_json::from_slice(wire).map_err(|e| TrustError::Malformed(format!("wrapper: {e}")))?;
    let anchor = anchors
        .keys
        .get(&signed.anchor_kid)
        .ok_or_else(|| TrustError::UnknownAnchor(signed.anchor_kid.clone()))?;
    let bytes = B64
        .decode(&signed.list)
        .map_err(|_| TrustError::Malformed("list is not Base64".into()))?;
    let signature = B64
        .decode(&signed.signature)
        .map_err(|_| TrustError::BadSignature)?;
    anchor
        .verify(&bytes, &signature)
        .map_err(|_| TrustError::BadSignature)?;
    let doc: ListDoc =
        serde_json::from_slice(&bytes).map_err(|e| TrustError::Malformed(format!("list: {e}")))?;
    from_doc(doc)
}
