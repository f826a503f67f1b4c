//! The in-memory [`LinkRegistry`]: tests, and gateways that keep no state across restarts.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{
    Holder, LinkEntry, LinkRegistry, RegionLink, Source, apply_link, apply_status, drop_code,
};
use crate::audit::Pseudonym;
use crate::store::{StoreError, lock};

/// Links in a map; lost on restart.
#[derive(Debug, Default)]
pub struct MemoryLinks {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Pseudonym, LinkEntry>,
    codes: HashMap<(String, String), Pseudonym>,
    national: HashMap<String, Pseudonym>,
}

impl MemoryLinks {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }
}

impl LinkRegistry for MemoryLinks {
    fn local_reads(&self) -> bool {
        true
    }

    fn link(
        &self,
        pseudonym: &Pseudonym,
        link: RegionLink,
        holder: &Holder,
        now_ms: u64,
    ) -> Result<LinkEntry, StoreError> {
        let mut g = lock(&self.inner);
        let entry = g
            .entries
            .entry(*pseudonym)
            .or_insert_with(|| LinkEntry::new(*pseudonym, now_ms));
        let change = apply_link(entry, link, holder, now_ms);
        let out = entry.clone();
        if let Some(old) = change.remove {
            if g.codes.get(&old) == Some(pseudonym) {
                g.codes.remove(&old);
            }
        }
        if let Some(new) = change.add {
            // As the redb store: a code the region gave someone else before is theirs no
            // longer.
            if let Some(other) = g.codes.insert(new.clone(), *pseudonym) {
                if other != *pseudonym {
                    if let Some(e) = g.entries.get_mut(&other) {
                        drop_code(e, &new.0, &new.1);
                    }
                }
            }
        }
        Ok(out)
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
        let mut g = lock(&self.inner);
        Ok(g.entries.get_mut(pseudonym).and_then(|e| {
            apply_status(e, region, colour, status_time, source, now_ms).then(|| e.clone())
        }))
    }

    fn get(&self, pseudonym: &Pseudonym) -> Result<Option<LinkEntry>, StoreError> {
        Ok(lock(&self.inner).entries.get(pseudonym).cloned())
    }

    fn by_code(&self, region: &str, code_id: &str) -> Result<Option<Pseudonym>, StoreError> {
        Ok(lock(&self.inner)
            .codes
            .get(&(region.to_owned(), code_id.to_owned()))
            .copied())
    }

    fn by_national(&self, ncid: &str) -> Result<Option<Pseudonym>, StoreError> {
        Ok(lock(&self.inner).national.get(ncid).copied())
    }

    fn national_code_id(&self, pseudonym: &Pseudonym, now_ms: u64) -> Result<String, StoreError> {
        let mut g = lock(&self.inner);
        let e = g.entries.get_mut(pseudonym).ok_or(StoreError::Corrupt {
            what: "link entry",
            reason: "no entry for the person".into(),
        })?;
        if let Some(id) = &e.national_code_id {
            return Ok(id.clone());
        }
        let id = super::fresh_national_id()?;
        e.national_code_id = Some(id.clone());
        e.updated_ms = now_ms;
        g.national.insert(id.clone(), *pseudonym);
        Ok(id)
    }

    fn purge_before(&self, before_ms: u64) -> Result<usize, StoreError> {
        let mut g = lock(&self.inner);
        let old: Vec<LinkEntry> = g
            .entries
            .values()
            .filter(|e| e.updated_ms < before_ms)
            .cloned()
            .collect();
        for e in &old {
            g.entries.remove(&e.pseudonym);
            for (r, l) in &e.regions {
                if let Some(c) = &l.code_id {
                    let key = (r.clone(), c.clone());
                    if g.codes.get(&key) == Some(&e.pseudonym) {
                        g.codes.remove(&key);
                    }
                }
            }
            if let Some(n) = &e.national_code_id {
                g.national.remove(n);
            }
        }
        Ok(old.len())
    }

    fn len(&self) -> Result<usize, StoreError> {
        Ok(lock(&self.inner).entries.len())
    }
}
