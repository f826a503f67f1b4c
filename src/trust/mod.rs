//! The trust registry: which code issuers the gateway trusts, with which SM2 keys.
//!
//! It sits under `code`: every PHIC1 verification asks the registry for the key named by
//! the token's `iss` and `kid` (DESIGN.md §3 "Keys", §2 mechanism 3). The registry is
//! loaded from a trust list signed by the trust anchor ([`list`]), and is swapped
//! atomically: a new list, or an emergency [`TrustRegistry::revoke`], takes effect for
//! every verification that starts after the call, with no restart (DESIGN.md §8).
//!
//! Key rotation: an issuer may hold several keys whose validity windows overlap; each
//! token names its `kid`, so tokens signed by either key verify during the overlap.

pub mod list;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::crypto::{KeyTables, VerifyingKey};

pub use list::{
    SignedTrustList, TrustAnchors, parse_unsigned_list, sign_trust_list, signed_list_digest,
    unsigned_list_json, verify_trust_list,
};

/// Longest key id accepted, in bytes.
pub const MAX_KID_LEN: usize = 32;

/// Errors of the trust registry and the trust list.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// An issuer id is not 8 ASCII digits (6-digit GB/T 2260 region + 2-digit sequence).
    #[error("invalid issuer id")]
    InvalidIssuerId,
    /// A key id is empty, longer than [`MAX_KID_LEN`], or has characters outside
    /// `[A-Za-z0-9._-]`.
    #[error("invalid key id")]
    InvalidKid,
    /// A region code is not 6 ASCII digits.
    #[error("invalid region code")]
    InvalidRegion,
    /// [`TrustRegistry::revoke`] named an issuer the current list does not hold.
    #[error("unknown issuer {0}")]
    UnknownIssuer(IssuerId),
    /// [`TrustRegistry::revoke`] named a key the issuer does not hold.
    #[error("unknown key {kid} of issuer {issuer}")]
    UnknownKey {
        /// The issuer named.
        issuer: IssuerId,
        /// The key id named.
        kid: Kid,
    },
    /// The signed trust list is larger than [`list::MAX_TRUST_LIST_BYTES`].
    #[error("trust list too large: {0} bytes")]
    TooLarge(usize),
    /// The signed wrapper, or the list inside it, is not well-formed JSON/Base64 of the
    /// expected shape (unknown fields are rejected).
    #[error("malformed trust list: {0}")]
    Malformed(String),
    /// The wrapper names an anchor key id that is not among the configured anchors.
    #[error("unknown trust anchor {0}")]
    UnknownAnchor(String),
    /// The anchor signature over the list bytes does not verify: the list was altered,
    /// or signed by someone else. Nothing from it is loaded.
    #[error("trust list signature invalid")]
    BadSignature,
    /// The list parsed and verified but its content is inconsistent (every problem found
    /// is listed).
    #[error("invalid trust list: {}", .0.join("; "))]
    InvalidList(Vec<String>),
    /// The list is older than the one loaded (a replayed old list could re-trust a key
    /// revoked since).
    #[error("stale trust list: version {offered} < loaded {loaded}")]
    StaleVersion {
        /// Version of the rejected list.
        offered: u64,
        /// Version currently loaded.
        loaded: u64,
    },
}

/// A code issuer id: 6-digit GB/T 2260 region code + 2-digit sequence, e.g. `33000001`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IssuerId(String);

impl IssuerId {
    /// Parse 8 ASCII digits.
    pub fn parse(s: &str) -> Result<Self, TrustError> {
        if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(IssuerId(s.to_owned()))
        } else {
            Err(TrustError::InvalidIssuerId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The GB/T 2260 region part (first 6 digits).
    pub fn region(&self) -> RegionCode {
        RegionCode(self.0[..6].to_owned())
    }
}

impl fmt::Display for IssuerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key id: 1 to [`MAX_KID_LEN`] characters of `[A-Za-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kid(String);

impl Kid {
    /// Parse and check the character set and length.
    pub fn parse(s: &str) -> Result<Self, TrustError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_KID_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Kid(s.to_owned()))
        } else {
            Err(TrustError::InvalidKid)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 6-digit GB/T 2260 administrative division code, e.g. `330000`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode(String);

impl RegionCode {
    /// Parse 6 ASCII digits.
    pub fn parse(s: &str) -> Result<Self, TrustError> {
        if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(RegionCode(s.to_owned()))
        } else {
            Err(TrustError::InvalidRegion)
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether the trust list vouches for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// The key may be used within its validity window.
    Active,
    /// The key is withdrawn: every token it signed is rejected (3004).
    Revoked,
}

/// One SM2 public key of an issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// Key id, named by tokens in `kid`.
    pub kid: Kid,
    /// The SM2 public key.
    pub public_key: VerifyingKey,
    /// Start of validity, Unix seconds (inclusive).
    pub not_before: i64,
    /// End of validity, Unix seconds (inclusive).
    pub not_after: i64,
    /// Active or revoked.
    pub status: KeyStatus,
}

impl TrustedKey {
    /// Whether `t` (Unix seconds) lies in `[not_before - skew, not_after + skew]`.
    pub fn valid_at(&self, t: i64, skew_secs: i64) -> bool {
        t >= self.not_before.saturating_sub(skew_secs)
            && t <= self.not_after.saturating_add(skew_secs)
    }
}

/// A code issuer: a provincial or municipal code service, or the national platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// Issuer id (`iss` in tokens).
    pub id: IssuerId,
    /// GB/T 2260 region of the issuer; equals the first 6 digits of `id`.
    pub region: RegionCode,
    /// Display name, e.g. `浙江省健康码服务`.
    pub name: String,
    /// Keys, current and past; several may be valid at once during a rotation.
    pub keys: Vec<TrustedKey>,
}

/// A validated trust list: what one signed list document says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustList {
    /// Monotonic version; a registry never goes back to a lower one.
    pub version: u64,
    /// When the anchor issued the list, Unix seconds.
    pub issued_at: i64,
    /// The issuers, in document order.
    pub issuers: Vec<Issuer>,
}

impl TrustList {
    /// Check the list's internal consistency, reporting every problem at once: region
    /// equal to the issuer id's prefix, no duplicate issuer or key ids, and
    /// `not_before <= not_after` for each key.
    pub fn validate(&self) -> Result<(), TrustError> {
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        for issuer in &self.issuers {
            if !seen.insert(&issuer.id) {
                problems.push(format!("duplicate issuer {}", issuer.id));
            }
            if issuer.region != issuer.id.region() {
                problems.push(format!(
                    "issuer {}: region {} does not match id",
                    issuer.id, issuer.region
                ));
            }
            let mut kids = HashSet::new();
            for key in &issuer.keys {
                if !kids.insert(&key.kid) {
                    problems.push(format!("issuer {}: duplicate kid {}", issuer.id, key.kid));
                }
                if key.not_before > key.not_after {
                    problems.push(format!(
                        "issuer {} kid {}: not_before after not_after",
                        issuer.id, key.kid
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(TrustError::InvalidList(problems))
        }
    }
}

/// Why a lookup found no usable key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupError {
    /// No issuer with that id.
    UnknownIssuer,
    /// The issuer has no key with that kid.
    UnknownKey,
}

/// An immutable view of the registry at one instant. Verification takes one snapshot and
/// uses it throughout, so a concurrent swap cannot mix two lists in one answer.
#[derive(Debug)]
pub struct TrustSnapshot {
    list: TrustList,
    index: HashMap<IssuerId, usize>,
    local_revocations: HashSet<(IssuerId, Kid)>,
}

impl TrustSnapshot {
    fn new(list: TrustList, local_revocations: HashSet<(IssuerId, Kid)>) -> Self {
        let index = list
            .issuers
            .iter()
            .enumerate()
            .map(|(i, issuer)| (issuer.id.clone(), i))
            .collect();
        TrustSnapshot {
            list,
            index,
            local_revocations,
        }
    }

    /// The list this snapshot was built from (without local revocations applied).
    pub fn list(&self) -> &TrustList {
        &self.list
    }

    /// Version of the loaded list.
    pub fn version(&self) -> u64 {
        self.list.version
    }

    /// The issuer with id `iss`.
    pub fn issuer(&self, iss: &IssuerId) -> Option<&Issuer> {
        self.index.get(iss).map(|&i| &self.list.issuers[i])
    }

    /// The key `kid` of issuer `iss`, with its effective status: `Revoked` if the list
    /// says so or if it was revoked locally with [`TrustRegistry::revoke`].
    pub fn lookup(&self, iss: &IssuerId, kid: &Kid) -> Result<(&Issuer, TrustedKey), LookupError> {
        let issuer = self.issuer(iss).ok_or(LookupError::UnknownIssuer)?;
        let key = issuer
            .keys
            .iter()
            .find(|k| &k.kid == kid)
            .ok_or(LookupError::UnknownKey)?;
        let mut key = key.clone();
        if self.local_revocations.contains(&(iss.clone(), kid.clone())) {
            key.status = KeyStatus::Revoked;
        }
        Ok((issuer, key))
    }
}

/// `list` with the verification table of every key that is not revoked: an issuer key
/// verifies every code of its issuer, so the build belongs to the load. Revoked keys never
/// reach a signature check (3004 comes first), so they get none.
///
/// A key that `loaded` (the list in force) already holds with its table keeps that table:
/// a reload of a list of hundreds of issuers rebuilt every one, about 2 ms of CPU a key,
/// though most keys do not change from one list to the next. The tables are shared, not
/// copied, so the old and new snapshots hold one table per key between them.
fn precompute_keys(mut list: TrustList, loaded: Option<&TrustList>) -> TrustList {
    let tables = KeyTables::of(
        loaded
            .into_iter()
            .flat_map(|l| l.issuers.iter().flat_map(|i| i.keys.iter()))
            .map(|k| &k.public_key),
    );
    for key in list.issuers.iter_mut().flat_map(|i| i.keys.iter_mut()) {
        if key.status == KeyStatus::Active {
            key.public_key = tables.precompute(key.public_key.clone());
        }
    }
    list
}

/// The live trust registry, shared by every verifier. Reads are lock-free
/// ([`arc_swap::ArcSwap`]); writes build a new snapshot and publish it in one store.
#[derive(Debug)]
pub struct TrustRegistry {
    current: ArcSwap<TrustSnapshot>,
}

impl TrustRegistry {
    /// A registry holding `list`. Builds the verification table of each key that is not
    /// revoked (see [`VerifyingKey::precompute`]).
    pub fn new(list: TrustList) -> Result<Self, TrustError> {
        list.validate()?;
        Ok(TrustRegistry {
            current: ArcSwap::from_pointee(TrustSnapshot::new(
                precompute_keys(list, None),
                HashSet::new(),
            )),
        })
    }

    /// The registry that takes over from `loaded` (the snapshot in force, such as that of
    /// the registry this one replaces on a configuration reload), holding `list`: the
    /// tables of keys `loaded` already holds are shared instead of built again, and its
    /// local revocations carry over, as they do in [`replace`](Self::replace). Unlike
    /// `replace`, any version is accepted: a configuration may roll the list back. With no
    /// `loaded`, the same as [`new`](Self::new).
    pub fn new_reusing(
        list: TrustList,
        loaded: Option<&TrustSnapshot>,
    ) -> Result<Self, TrustError> {
        list.validate()?;
        Ok(TrustRegistry {
            current: ArcSwap::from_pointee(TrustSnapshot::new(
                precompute_keys(list, loaded.map(TrustSnapshot::list)),
                loaded
                    .map(|l| l.local_revocations.clone())
                    .unwrap_or_default(),
            )),
        })
    }

    /// A registry that trusts no issuer (every code is 3003 until a list is loaded).
    pub fn empty() -> Self {
        let list = TrustList {
            version: 0,
            issued_at: 0,
            issuers: Vec::new(),
        };
        TrustRegistry {
            current: ArcSwap::from_pointee(TrustSnapshot::new(list, HashSet::new())),
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<TrustSnapshot> {
        self.current.load_full()
    }

    /// Replace the list. Rejects a list older than the loaded one
    /// ([`TrustError::StaleVersion`]); an equal version is accepted (a reload). Local
    /// revocations carry over: a key revoked in an emergency stays revoked even if the
    /// new list (signed before the emergency) still says active. Key tables are built as in
    /// [`new`](Self::new), before the swap.
    pub fn replace(&self, list: TrustList) -> Result<(), TrustError> {
        list.validate()?;
        // A stale list is refused before its tables are built (and again under `rcu`).
        let loaded = self.current.load().list.version;
        if list.version < loaded {
            return Err(TrustError::StaleVersion {
                offered: list.version,
                loaded,
            });
        }
        // `rcu` may retry under contention, so the list is cloned per attempt; the tables
        // are built once, here, and the clones share them.
        let list = precompute_keys(list, Some(&self.current.load_full().list));
        let mut outcome = Ok(());
        self.current.rcu(|cur| {
            if list.version < cur.list.version {
                outcome = Err(TrustError::StaleVersion {
                    offered: list.version,
                    loaded: cur.list.version,
                });
                return Arc::clone(cur);
            }
            outcome = Ok(());
            Arc::new(TrustSnapshot::new(
                list.clone(),
                cur.local_revocations.clone(),
            ))
        });
        outcome
    }

    /// Verify a signed trust list against `anchors` and load it. On any error the old
    /// list stays in force.
    pub fn load_signed(&self, wire: &[u8], anchors: &TrustAnchors) -> Result<(), TrustError> {
        let list = verify_trust_list(wire, anchors)?;
        self.replace(list)
    }

    /// Revoke key `kid` of issuer `iss` at once: every verification that starts after
    /// this call rejects tokens signed by it (3004). The revocation is local and sticky:
    /// it survives later [`replace`](Self::replace) calls for the life of the registry,
    /// and carries over into a registry built to take over from it
    /// ([`new_reusing`](Self::new_reusing), a configuration reload).
    pub fn revoke(&self, iss: &IssuerId, kid: &Kid) -> Result<(), TrustError> {
        let mut outcome = Ok(());
        self.current.rcu(|cur| match cur.lookup(iss, kid) {
            Err(LookupError::UnknownIssuer) => {
                outcome = Err(TrustError::UnknownIssuer(iss.clone()));
                Arc::clone(cur)
            }
            Err(LookupError::UnknownKey) => {
                outcome = Err(TrustError::UnknownKey {
                    issuer: iss.clone(),
                    kid: kid.clone(),
                });
                Arc::clone(cur)
            }
            Ok(_) => {
                outcome = Ok(());
                let mut revoked = cur.local_revocations.clone();
                revoked.insert((iss.clone(), kid.clone()));
                Arc::new(TrustSnapshot::new(cur.list.clone(), revoked))
            }
        });
        outcome
    }
}
