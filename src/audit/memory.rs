//! An [`AuditLog`] in memory, for tests and for tools that need a throwaway log. It keeps
//! the stored form of each record, so it verifies exactly as the redb backend does.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::store::{StoreError, lock};

use super::chain::{Verifier, check_purgeable};
use super::{AuditLog, AuditRecord, ChainMark, NewRecord, Pseudonym, VerifyReport};

/// An in-memory [`AuditLog`]. Lost when dropped.
#[derive(Debug, Default)]
pub struct MemoryAuditLog {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    /// Stored forms by key.
    pub(super) records: BTreeMap<u64, Vec<u8>>,
    pub(super) head: Option<ChainMark>,
    pub(super) checkpoint: Option<ChainMark>,
}

impl MemoryAuditLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives a test the raw state, to tamper with.
    #[cfg(test)]
    pub(super) fn danger_tamper(&self, f: impl FnOnce(&mut State)) {
        f(&mut lock(&self.state));
    }
}

impl AuditLog for MemoryAuditLog {
    fn append(&self, rec: NewRecord) -> Result<AuditRecord, StoreError> {
        let mut st = lock(&self.state);
        let head = st.head.unwrap_or(ChainMark::GENESIS);
        let seq = head.seq.checked_add(1).ok_or(StoreError::TooLarge {
            what: "audit sequence number",
        })?;
        let sealed = AuditRecord::seal(seq, head.hash, rec)?;
        st.records.insert(seq, sealed.encode_stored());
        st.head = Some(ChainMark::of(&sealed));
        Ok(sealed)
    }

    fn verify(&self) -> Result<VerifyReport, StoreError> {
        let st = lock(&self.state);
        let mut v = Verifier::new(st.checkpoint.unwrap_or(ChainMark::GENESIS));
        for (&k, bytes) in &st.records {
            v.push(k, bytes);
        }
        Ok(v.finish(st.head))
    }

    fn receipt(&self, subject: &Pseudonym) -> Result<Vec<AuditRecord>, StoreError> {
        let st = lock(&self.state);
        // Records that do not decode are skipped here (their subject is unknown);
        // `verify` reports them.
        Ok(st
            .records
            .values()
            .filter_map(|b| AuditRecord::decode_stored(b).ok())
            .filter(|r| r.subject.as_ref() == Some(subject))
            .collect())
    }

    fn tail(&self, n: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let st = lock(&self.state);
        let mut out = st
            .records
            .values()
            .rev()
            .take(n)
            .map(|b| AuditRecord::decode_stored(b))
            .collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    fn purge_before(&self, time_ms: u64) -> Result<u64, StoreError> {
        let mut st = lock(&self.state);
        let mut checkpoint = st.checkpoint.unwrap_or(ChainMark::GENESIS);
        let mut purged = 0;
        let mut stopped = None;
        while let Some(entry) = st.records.first_entry() {
            let key = *entry.key();
            let rec = match AuditRecord::decode_stored(entry.get()) {
                Ok(r) => r,
                Err(e) => {
                    stopped = Some(e);
                    break;
                }
            };
            if rec.time_ms >= time_ms {
                break;
            }
            match check_purgeable(checkpoint, key, &rec) {
                Ok(mark) => checkpoint = mark,
                Err(e) => {
                    stopped = Some(e);
                    break;
                }
            }
            entry.remove();
            purged += 1;
        }
        if purged > 0 {
            st.checkpoint = Some(checkpoint);
        }
        match stopped {
            Some(e) => Err(e),
            None => Ok(purged),
        }
    }
}
