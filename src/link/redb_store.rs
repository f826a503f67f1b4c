//! The embedded [`LinkRegistry`]: redb tables of a [`Store`], entries SM4-encrypted.
//!
//! Commits are durable (`fsync`): a link is made once per verification of a new code, not
//! per request, and a restart must lose none (issue acceptance: "a restart of the gateway
//! loses no link").

use redb::{ReadableTable, ReadableTableMetadata};

use super::{
    Holder, LinkEntry, LinkRegistry, RegionLink, Source, apply_link, apply_status, drop_code,
};
use crate::audit::Pseudonym;
use crate::crypto::Sm4Key;
use crate::store::tables::{LINK_CODES, LINK_NATIONAL, LINKS};
use crate::store::{Store, StoreError};

/// Entries the retention purge removes per write transaction.
const PURGE_BATCH: usize = 10_000;

/// The redb link registry.
#[derive(Debug)]
pub struct RedbLinks {
    store: Store,
    key: Sm4Key,
}

impl RedbLinks {
    /// The links in `store`, encrypted under `key` (the gateway's data-at-rest key).
    pub fn new(store: Store, key: Sm4Key) -> Self {
        Self { store, key }
    }

    /// The index form of a local code id: a keyed SM3 digest, so the file names no code id
    /// in clear (a code id is a handle on a person at its region).
    fn code_key(&self, code_id: &str) -> String {
        let mut m = self.key.as_bytes().to_vec();
        m.push(0x1f);
        m.extend_from_slice(code_id.as_bytes());
        crate::crypto::to_hex(&crate::crypto::sm3(&m)[..16])
    }

    fn seal(&self, e: &LinkEntry) -> Result<Vec<u8>, StoreError> {
        let json = serde_json::to_vec(e).map_err(|e| StoreError::Corrupt {
            what: "link entry",
            reason: e.to_string(),
        })?;
        self.key.encrypt_cbc(&json).map_err(|_| StoreError::Crypto {
            op: "encrypt",
            what: "link entry",
        })
    }

    fn open(&self, v: &[u8]) -> Result<LinkEntry, StoreError> {
        let json = self.key.decrypt_cbc(v).map_err(|_| StoreError::Crypto {
            op: "decrypt",
            what: "link entry",
        })?;
        serde_json::from_slice(&json).map_err(|e| crate::store::undecodable("link entry", &e))
    }

    /// Reads, changes and writes one entry in one transaction. `f` returns whether it
    /// changed the entry, and index work to do.
    fn update<T>(
        &self,
        p: &Pseudonym,
        create: Option<u64>,
        f: impl FnOnce(&mut LinkEntry, &mut Index) -> Result<Option<T>, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.store.db().begin_write()?;
        let out = self.update_in(&txn, p, create, f)?;
        txn.commit()?;
        Ok(out)
    }

    /// [`Self::update`] inside the caller's transaction.
    fn update_in<T>(
        &self,
        txn: &redb::WriteTransaction,
        p: &Pseudonym,
        create: Option<u64>,
        f: impl FnOnce(&mut LinkEntry, &mut Index) -> Result<Option<T>, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut links = txn.open_table(LINKS)?;
        let current = match links.get(p.0)? {
            Some(v) => Some(self.open(v.value())?),
            None => None,
        };
        let Some(mut entry) = current.or_else(|| create.map(|now| LinkEntry::new(*p, now))) else {
            return Ok(None);
        };
        let mut ix = Index::default();
        let out = f(&mut entry, &mut ix)?;
        if out.is_some() {
            links.insert(p.0, self.seal(&entry)?.as_slice())?;
            let mut codes = txn.open_table(LINK_CODES)?;
            for (r, c) in &ix.remove_codes {
                remove_if_owned(&mut codes, (r.as_str(), self.code_key(c).as_str()), p)?;
            }
            for (r, c) in &ix.add_codes {
                let previous = codes
                    .insert((r.as_str(), self.code_key(c).as_str()), p.0)?
                    .map(|v| v.value());
                // The region gave this code to someone else before (a code id it reused, or
                // a link it corrected): it is theirs no longer. Left in their entry, their
                // queries would show it to the region and take this person's status.
                if let Some(other) = previous.filter(|o| *o != p.0) {
                    // Their entry unreadable (another key, altered): left as it is, rather
                    // than refusing this link and every later one of the code.
                    let theirs = match links.get(other)?.map(|v| self.open(v.value())) {
                        Some(Ok(e)) => Some(e),
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "link registry: an entry that held a reused code does not open");
                            None
                        }
                        None => None,
                    };
                    if let Some(mut e) = theirs {
                        if drop_code(&mut e, r, c) {
                            links.insert(other, self.seal(&e)?.as_slice())?;
                        }
                    }
                }
            }
            let mut national = txn.open_table(LINK_NATIONAL)?;
            for n in &ix.add_national {
                national.insert(n.as_str(), p.0)?;
            }
        }
        Ok(out)
    }

    /// [`LinkRegistry::link`] for many links in one transaction (one `fsync`): for loading
    /// a registry in bulk (`hutong bench fill-links`).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails; nothing of the batch is kept then.
    pub fn link_many(
        &self,
        links: impl IntoIterator<Item = (Pseudonym, RegionLink, Holder)>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let txn = self.store.db().begin_write()?;
        for (p, link, holder) in links {
            self.update_in(&txn, &p, Some(now_ms), |e, ix| {
                link_indexed(e, ix, link, &holder, now_ms);
                Ok(Some(()))
            })?;
        }
        txn.commit()?;
        Ok(())
    }
}

/// Removes `key` from the code index if it names `p`: a code the region has since given
/// to someone else stays theirs.
fn remove_if_owned(
    codes: &mut redb::Table<'_, (&'static str, &'static str), [u8; 32]>,
    key: (&str, &str),
    p: &Pseudonym,
) -> Result<(), StoreError> {
    if codes.get(key)?.is_some_and(|v| v.value() == p.0) {
        codes.remove(key)?;
    }
    Ok(())
}

/// [`apply_link`], with the code index changes it makes noted in `ix`.
fn link_indexed(e: &mut LinkEntry, ix: &mut Index, link: RegionLink, holder: &Holder, now_ms: u64) {
    let change = apply_link(e, link, holder, now_ms);
    ix.remove_codes.extend(change.remove);
    ix.add_codes.extend(change.add);
}

#[derive(Default)]
struct Index {
    remove_codes: Vec<(String, String)>,
    add_codes: Vec<(String, String)>,
    add_national: Vec<String>,
}

impl LinkRegistry for RedbLinks {
    fn link(
        &self,
        pseudonym: &Pseudonym,
        link: RegionLink,
        holder: &Holder,
        now_ms: u64,
    ) -> Result<LinkEntry, StoreError> {
        self.update(pseudonym, Some(now_ms), |e, ix| {
            link_indexed(e, ix, link, holder, now_ms);
            Ok(Some(e.clone()))
        })?
        .ok_or(StoreError::Db("link entry vanished".into()))
    }

    fn set_status(
        &self,
        pseudonym: &Pseudonym,
        region: &str,
        colour: &str,
        status_time: Option<&str>,
        source: Source,
        now_ms: u64,
    ) -> Result<Option<LinkEntry>, StoreError> {
        // An outdated status changes nothing: it is answered from a read, without a write
        // (and its fsync) of the same entry.
        if let Some(e) = self.get(pseudonym)? {
            if e.regions
                .get(region)
                .is_some_and(|l| super::outdated(l, status_time, source))
            {
                return Ok(Some(e));
            }
        }
        self.update(pseudonym, None, |e, _| {
            Ok(apply_status(e, region, colour, status_time, source, now_ms).then(|| e.clone()))
        })
    }

    /// A redb read transaction never waits for a writer or its `fsync` (it reads the last
    /// committed version). The pages it touches come from redb's cache, or else one `pread`
    /// each from the file, which the OS page cache usually answers; a cold registry on a
    /// slow disk makes those reads wait for the disk on the calling thread.
    fn local_reads(&self) -> bool {
        true
    }

    fn get(&self, pseudonym: &Pseudonym) -> Result<Option<LinkEntry>, StoreError> {
        let txn = self.store.db().begin_read()?;
        let links = txn.open_table(LINKS)?;
        match links.get(pseudonym.0)? {
            Some(v) => Ok(Some(self.open(v.value())?)),
            None => Ok(None),
        }
    }

    fn by_code(&self, region: &str, code_id: &str) -> Result<Option<Pseudonym>, StoreError> {
        let txn = self.store.db().begin_read()?;
        let codes = txn.open_table(LINK_CODES)?;
        Ok(codes
            .get((region, self.code_key(code_id).as_str()))?
            .map(|v| Pseudonym(v.value())))
    }

    fn by_national(&self, ncid: &str) -> Result<Option<Pseudonym>, StoreError> {
        let txn = self.store.db().begin_read()?;
        let national = txn.open_table(LINK_NATIONAL)?;
        Ok(national.get(ncid)?.map(|v| Pseudonym(v.value())))
    }

    fn national_code_id(&self, pseudonym: &Pseudonym, now_ms: u64) -> Result<String, StoreError> {
        self.update(pseudonym, None, |e, ix| {
            if let Some(id) = &e.national_code_id {
                return Ok(Some(id.clone()));
            }
            let id = super::fresh_national_id()?;
            e.national_code_id = Some(id.clone());
            e.updated_ms = now_ms;
            ix.add_national.push(id.clone());
            Ok(Some(id))
        })?
        .ok_or(StoreError::Corrupt {
            what: "link entry",
            reason: "no entry for the person".into(),
        })
    }

    /// Found in a read transaction, so that the scan (every entry opened: seconds for a
    /// million) holds no writer: audit commits and new links go on meanwhile. Removed in
    /// batches of [`PURGE_BATCH`], each entry checked again under the write transaction
    /// (a link or status since may have touched it).
    fn purge_before(&self, before_ms: u64) -> Result<usize, StoreError> {
        // An entry that does not open (written under another key, or altered) cannot say
        // its age: it is left, rather than stopping the purge of every other person's
        // links for good, and the purge reports it as an error once the rest are gone.
        let (old, unreadable) = {
            let txn = self.store.db().begin_read()?;
            let links = txn.open_table(LINKS)?;
            let (mut old, mut unreadable) = (Vec::new(), 0usize);
            for item in links.iter()? {
                let (k, v) = item?;
                match self.open(v.value()) {
                    Ok(e) if e.updated_ms < before_ms => old.push(k.value()),
                    Ok(_) => {}
                    Err(_) => unreadable += 1,
                }
            }
            (old, unreadable)
        };

        let mut n = 0;
        for batch in old.chunks(PURGE_BATCH) {
            let txn = self.store.db().begin_write()?;
            {
                let mut links = txn.open_table(LINKS)?;
                let mut codes = txn.open_table(LINK_CODES)?;
                let mut national = txn.open_table(LINK_NATIONAL)?;
                for k in batch {
                    let Some(Ok(e)) = links.get(k)?.map(|v| self.open(v.value())) else {
                        continue;
                    };
                    if e.updated_ms >= before_ms {
                        continue;
                    }
                    links.remove(k)?;
                    for (r, l) in &e.regions {
                        if let Some(c) = &l.code_id {
                            let code = self.code_key(c);
                            remove_if_owned(&mut codes, (r.as_str(), code.as_str()), &e.pseudonym)?;
                        }
                    }
                    if let Some(id) = &e.national_code_id {
                        national.remove(id.as_str())?;
                    }
                    n += 1;
                }
            }
            txn.commit()?;
        }
        if unreadable > 0 {
            return Err(StoreError::Corrupt {
                what: "link entry",
                reason: format!(
                    "entries that do not open (another key, or altered) were left: \
                     {unreadable}; others purged: {n}"
                ),
            });
        }
        Ok(n)
    }

    fn len(&self) -> Result<usize, StoreError> {
        let txn = self.store.db().begin_read()?;
        let links = txn.open_table(LINKS)?;
        Ok(usize::try_from(links.len()?).unwrap_or(usize::MAX))
    }
}
