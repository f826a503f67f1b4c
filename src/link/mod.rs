//! The link registry (DESIGN.md §2, §7): which regions hold a code for a person, and the
//! person's national code.
//!
//! A traveler's codes in different regions are tied together by their pseudonym
//! ([`crate::audit::Pseudonym`], HMAC-SM3 of ID type and number under the gateway's
//! secret); a raw ID number is never stored. Each entry lists, per region, the local code
//! id, the code content a verifier scanned (what the gateway shows that region again to
//! learn the current status, so that back-end data sharing needs no ID number), and the
//! last-known status with its time and source.
//!
//! Links are made when a region answers a verification with the holder's identity, when a
//! person declares, and on an explicit link request from an authorised region.
//!
//! Entries are personal data: the redb backend keeps them SM4-encrypted at rest under the
//! gateway's data-at-rest key. Two indexes find an entry from a region's code id (status
//! events name codes) and from a national code id (the code page).
//!
//! The same trait will have a PostgreSQL backend for the cluster deployment.

mod memory;
pub mod outbox;
mod redb_store;
#[cfg(test)]
mod tests;
pub mod venue;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use memory::MemoryLinks;
pub use redb_store::RedbLinks;

use crate::audit::Pseudonym;
use crate::store::StoreError;

/// How a link or a status was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// A region answered a `verifyCode` with the holder's identity.
    Verification,
    /// The person declared (`declareHealth`, `declareTrip`).
    Declaration,
    /// An authorised region asked for the link.
    Request,
    /// A region pushed a status event.
    StatusEvent,
    /// The gateway asked the region during a cross-region query.
    Query,
    /// The region issued the person's code through the gateway (`generateCode` with the
    /// gateway's consent).
    Issuance,
}

impl Source {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verification => "verification",
            Self::Declaration => "declaration",
            Self::Request => "request",
            Self::StatusEvent => "statusEvent",
            Self::Query => "query",
            Self::Issuance => "issuance",
        }
    }
}

/// A person's code in one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionLink {
    /// The region's 6-digit division code.
    pub region: String,
    /// The region's local code id, when known.
    pub code_id: Option<String>,
    /// The code content as scanned: shown to the region again to learn the status.
    pub code_content: Option<String>,
    /// Last-known colour (`00`, `01`, `10`, `20`, `90`), if any.
    pub colour: Option<String>,
    /// When the region last changed that colour (`yyyy-MM-dd HH:mm:ss`, Beijing time).
    pub status_time: Option<String>,
    /// How the status was learned.
    pub source: Source,
    /// Unix milliseconds when the gateway learned it.
    pub seen_ms: u64,
    /// A region that watches the person without a code of its own (its verifier scanned
    /// another region's code): the id of the code it last scanned, the one name of the
    /// person it may be told in a callback. Never another region's code it did not see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned_code_id: Option<String>,
}

impl RegionLink {
    /// A link to `region` that names no code of it yet (a consent, a declaration, a
    /// verifier's own region watching the person): no status either.
    pub fn without_code(region: String, source: Source, now_ms: u64) -> Self {
        Self {
            region,
            code_id: None,
            code_content: None,
            colour: None,
            status_time: None,
            source,
            seen_ms: now_ms,
            scanned_code_id: None,
        }
    }
}

/// Everything the registry holds about one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkEntry {
    /// The person.
    #[serde(with = "pseudonym_hex")]
    pub pseudonym: Pseudonym,
    /// Their codes, by region code.
    pub regions: BTreeMap<String, RegionLink>,
    /// Their national code id (32 lowercase hex), once one was issued.
    pub national_code_id: Option<String>,
    /// The masked name (`张*`), for pages and answers to non-holders.
    pub name_masked: Option<String>,
    /// The masked ID number (`33**************12`).
    pub id_no_masked: Option<String>,
    /// The ID type code (`10`, …).
    pub id_type: Option<String>,
    /// Unix milliseconds of the first link and of the last change.
    pub created_ms: u64,
    /// See `created_ms`.
    pub updated_ms: u64,
}

impl LinkEntry {
    /// An entry with no links yet.
    pub fn new(pseudonym: Pseudonym, now_ms: u64) -> Self {
        Self {
            pseudonym,
            regions: BTreeMap::new(),
            national_code_id: None,
            name_masked: None,
            id_no_masked: None,
            id_type: None,
            created_ms: now_ms,
            updated_ms: now_ms,
        }
    }
}

/// What a link or update says about the person, besides the region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holder {
    /// Masked name, as a region named the holder.
    pub name_masked: Option<String>,
    /// Masked name a caller gave (a `user` block of a declaration or a consent): kept only
    /// while no one has named the person, so that no caller renames someone every verifier
    /// then sees.
    pub claimed_name: Option<String>,
    /// Masked ID number.
    pub id_no_masked: Option<String>,
    /// ID type code.
    pub id_type: Option<String>,
}

/// The link registry.
///
/// Every method blocks (a redb commit waits for the disk): call it through
/// [`crate::store::blocking`] from async code, except a read from a backend whose
/// [`LinkRegistry::local_reads`] says it may run inline.
pub trait LinkRegistry: Send + Sync + std::fmt::Debug {
    /// Records that `pseudonym` holds `link.region`'s code, replacing what was known of
    /// that region (a newer code id replaces the old one in the index), and fills in the
    /// masked identity when `holder` knows more. Returns the entry after the change.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn link(
        &self,
        pseudonym: &Pseudonym,
        link: RegionLink,
        holder: &Holder,
        now_ms: u64,
    ) -> Result<LinkEntry, StoreError>;

    /// Updates the last-known status of the person's code in `region`; `None` when the
    /// person has no link there.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn set_status(
        &self,
        pseudonym: &Pseudonym,
        region: &str,
        colour: &str,
        status_time: Option<&str>,
        source: Source,
        now_ms: u64,
    ) -> Result<Option<LinkEntry>, StoreError>;

    /// The person's entry.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or the entry does not decrypt.
    fn get(&self, pseudonym: &Pseudonym) -> Result<Option<LinkEntry>, StoreError>;

    /// The person who holds `code_id` in `region`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn by_code(&self, region: &str, code_id: &str) -> Result<Option<Pseudonym>, StoreError>;

    /// The person whose national code id is `ncid`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn by_national(&self, ncid: &str) -> Result<Option<Pseudonym>, StoreError>;

    /// The person's national code id, made (random, 32 hex digits) on first use.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails, or the person has no entry.
    fn national_code_id(&self, pseudonym: &Pseudonym, now_ms: u64) -> Result<String, StoreError>;

    /// Removes the entries not changed since `before_ms` (retention), with their index
    /// entries. Returns how many went.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn purge_before(&self, before_ms: u64) -> Result<usize, StoreError>;

    /// How many persons are linked.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn len(&self) -> Result<usize, StoreError>;

    /// Whether no one is linked.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    fn is_empty(&self) -> Result<bool, StoreError> {
        self.len().map(|n| n == 0)
    }

    /// Whether a read ([`LinkRegistry::get`], [`LinkRegistry::by_code`],
    /// [`LinkRegistry::by_national`]) is answered from this process's memory or the local
    /// page cache, within microseconds and without waiting for a writer, so that async code
    /// may call it inline instead of handing it to the blocking pool (two thread switches,
    /// which cost more than such a read). A backend across the network keeps the default.
    fn local_reads(&self) -> bool {
        false
    }
}

/// How a link changes the `(region, code id)` index: the entry that goes, and the one that
/// comes.
#[derive(Debug, Default)]
struct IndexChange {
    remove: Option<(String, String)>,
    add: Option<(String, String)>,
}

/// Applies a link to an entry: the shared rule of every backend. Returns how the code
/// index changes.
fn apply_link(
    entry: &mut LinkEntry,
    link: RegionLink,
    holder: &Holder,
    now_ms: u64,
) -> IndexChange {
    let mut link = link;
    if let Some(prev) = entry.regions.get(&link.region) {
        // A link that names no code (a consent, a verifier's region) keeps the code known.
        if link.code_id.is_none() && link.code_content.is_none() {
            link.code_id.clone_from(&prev.code_id);
            link.code_content.clone_from(&prev.code_content);
        }
        if link.code_content.is_none() && link.code_id == prev.code_id {
            link.code_content.clone_from(&prev.code_content);
        }
        if link.scanned_code_id.is_none() {
            link.scanned_code_id.clone_from(&prev.scanned_code_id);
        }
        // A link without a status keeps the status known before; so does one of the same
        // code whose status is older than the known one (a verification answered before a
        // status event, and written after it). Times are the standard's
        // `yyyy-MM-dd HH:mm:ss`, which sort as text.
        // A link without a time is older than a dated status when it is the gateway's
        // reading of an answer (a verification, a query), as `outdated` holds for a
        // status: not when the region itself says it (a status event, its own link).
        let undated_reading = matches!(link.source, Source::Verification | Source::Query);
        let older = link.code_id == prev.code_id
            && match (&link.status_time, &prev.status_time) {
                (Some(new), Some(known)) => new < known,
                (None, Some(_)) => undated_reading,
                _ => false,
            };
        if link.colour.is_none() || older {
            link.colour.clone_from(&prev.colour);
            link.status_time.clone_from(&prev.status_time);
            // With when and how it was learned: a later link that says no status must
            // not make an old undated one look new.
            link.seen_ms = prev.seen_ms;
            link.source = prev.source;
        }
    }
    let old = entry
        .regions
        .get(&link.region)
        .and_then(|l| l.code_id.clone());
    let change = IndexChange {
        remove: old
            .filter(|o| link.code_id.as_ref() != Some(o))
            .map(|o| (link.region.clone(), o)),
        add: link.code_id.clone().map(|c| (link.region.clone(), c)),
    };
    entry.regions.insert(link.region.clone(), link);
    fill(&mut entry.name_masked, &holder.name_masked);
    if entry.name_masked.is_none() {
        fill(&mut entry.name_masked, &holder.claimed_name);
    }
    fill(&mut entry.id_no_masked, &holder.id_no_masked);
    fill(&mut entry.id_type, &holder.id_type);
    entry.updated_ms = now_ms;
    change
}

fn fill(slot: &mut Option<String>, v: &Option<String>) {
    if v.is_some() {
        slot.clone_from(v);
    }
}

/// Takes code `code_id` of `region` out of `entry` (the region has given it to someone
/// else): the region's link stays, without the code and the status that came with it.
/// Returns whether anything changed.
fn drop_code(entry: &mut LinkEntry, region: &str, code_id: &str) -> bool {
    let Some(l) = entry
        .regions
        .get_mut(region)
        .filter(|l| l.code_id.as_deref() == Some(code_id))
    else {
        return false;
    };
    l.code_id = None;
    l.code_content = None;
    l.colour = None;
    l.status_time = None;
    true
}

/// Whether a status of `l`'s region at `status_time`, learned by `source`, is older than
/// the one `l` holds, and so leaves it: what the region said earlier, written later (a
/// query's answer that left the region before a status event came in, its write after the
/// event's). Times are the standard's `yyyy-MM-dd HH:mm:ss`, which sort as text. A query's
/// answer without a time does not replace a status that has one: which came first cannot
/// be told, and the registry keeps the one it can date.
pub fn outdated(l: &RegionLink, status_time: Option<&str>, source: Source) -> bool {
    match (status_time, l.status_time.as_deref()) {
        (Some(new), Some(known)) => new < known,
        (None, Some(_)) => source == Source::Query,
        _ => false,
    }
}

fn apply_status(
    entry: &mut LinkEntry,
    region: &str,
    colour: &str,
    status_time: Option<&str>,
    source: Source,
    now_ms: u64,
) -> bool {
    let Some(l) = entry.regions.get_mut(region) else {
        return false;
    };
    if outdated(l, status_time, source) {
        return true;
    }
    l.colour = Some(colour.to_owned());
    if let Some(t) = status_time {
        l.status_time = Some(t.to_owned());
    }
    l.source = source;
    l.seen_ms = now_ms;
    entry.updated_ms = now_ms;
    true
}

/// A fresh national code id: 32 lowercase hex digits of the OS random source.
fn fresh_national_id() -> Result<String, StoreError> {
    let mut b = [0u8; 16];
    crate::crypto::fill_random(&mut b)
        .map_err(|e| StoreError::Db(format!("random source: {e}")))?;
    Ok(crate::crypto::to_hex(&b))
}

/// Colour severity for merging (DESIGN.md §2): red 10 > yellow 01 > grey 20 > green 00;
/// anything else (90, unknown) ranks with grey, below yellow: an unknown status is not a
/// reason to stop someone, but it outranks a green.
pub fn severity(colour: &str) -> u8 {
    match colour {
        "10" => 4,
        "01" => 3,
        "00" => 1,
        _ => 2,
    }
}

mod pseudonym_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::audit::Pseudonym;

    pub(super) fn serialize<S: Serializer>(p: &Pseudonym, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&p.to_hex())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Pseudonym, D::Error> {
        let s = String::deserialize(d)?;
        Pseudonym::parse_hex(&s).ok_or_else(|| serde::de::Error::custom("not a pseudonym"))
    }
}
