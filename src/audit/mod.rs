//! The audit log (DESIGN.md §8): one record for every access to personal data — who, what,
//! whose pseudonym, purpose, result and loss report — hash-chained with SM3, so that
//! `hutong audit verify` detects a changed, inserted or deleted record, and a holder can get
//! a receipt of the queries about them.
//!
//! It is the last step of the request path (after translate back and sign). Records hold
//! pseudonyms and ids only, never personal fields.
//!
//! Layout: `pseudonym` (HMAC-SM3 person keys), `record` (the record and its canonical
//! encoding), `chain` (verification, shared by the backends), `redb_log` (the embedded
//! backend over [`crate::store::Store`]), `memory` (for tests).

mod chain;
mod config;
pub mod journal;
mod memory;
mod pseudonym;
mod record;
mod redb_log;
mod writer;

#[cfg(test)]
mod journal_tests;
#[cfg(test)]
mod purge_tests;
#[cfg(test)]
mod tests;

pub use chain::{ChainMark, VerifyReport};
pub use config::{AuditConfig, DEFAULT_SYNC_INTERVAL_MS, MAX_SYNC_INTERVAL_MS, SyncPolicy};
pub use memory::MemoryAuditLog;
pub use pseudonym::{Pseudonym, pseudonym};
pub use record::{AuditRecord, MAX_FIELD_BYTES, MAX_LOSS_ENTRIES, NewRecord, RECORD_VERSION};
pub use redb_log::RedbAuditLog;
pub use writer::{AuditSync, AuditWriter};

use crate::store::StoreError;

/// Key of the head marker in [`crate::store::tables::AUDIT_META`]: the last appended
/// record's [`ChainMark`].
pub const HEAD_KEY: &str = "head";

/// Key of the purge checkpoint in [`crate::store::tables::AUDIT_META`]: the [`ChainMark`]
/// of the last purged record, where verification starts.
pub const CHECKPOINT_KEY: &str = "checkpoint";

/// Key of the writer's probe in [`crate::store::tables::AUDIT_META`]: the Unix ms of the
/// last [`AuditLog::probe`] (no part of the chain).
pub const PROBE_KEY: &str = "probe";

/// An append-only, hash-chained audit log.
///
/// Every method blocks (a durable commit waits for the disk); async callers go through
/// `tokio::task::spawn_blocking` or [`crate::store::blocking`].
pub trait AuditLog: Send + Sync {
    /// Appends `rec` with the next sequence number, chained to the current head. Appends
    /// are serialised: concurrent callers get distinct, consecutive sequence numbers and a
    /// valid chain. The record is durable when this returns.
    ///
    /// # Errors
    /// [`StoreError::TooLarge`] for a field over its limit; any store failure. On error
    /// nothing was appended.
    fn append(&self, rec: NewRecord) -> Result<AuditRecord, StoreError>;

    /// Appends `recs` in order, durable together when this returns (one commit where the
    /// backend can). Each record gets its own result: one over its limits fails alone and
    /// takes no sequence number.
    ///
    /// The default appends one record at a time; backends with transactions commit the
    /// batch once.
    ///
    /// # Errors
    /// A store failure, which fails the whole batch (for a transactional backend, nothing
    /// of it was appended).
    fn append_batch(
        &self,
        recs: Vec<NewRecord>,
    ) -> Result<Vec<Result<AuditRecord, StoreError>>, StoreError> {
        Ok(recs.into_iter().map(|r| self.append(r)).collect())
    }

    /// Walks the whole chain from the purge checkpoint and reports every problem.
    /// Tampering is a finding in the report, not an error.
    ///
    /// # Errors
    /// Only when the store cannot be read.
    fn verify(&self) -> Result<VerifyReport, StoreError>;

    /// Every record about `subject`, in sequence order: the holder's receipt.
    ///
    /// # Errors
    /// When the store cannot be read, or a record about `subject` does not decode.
    fn receipt(&self, subject: &Pseudonym) -> Result<Vec<AuditRecord>, StoreError>;

    /// The last `n` records (or fewer), oldest first: what an operator looks at first.
    ///
    /// # Errors
    /// When the store cannot be read, or one of them does not decode.
    fn tail(&self, n: usize) -> Result<Vec<AuditRecord>, StoreError>;

    /// Retention: removes the oldest records while their `time_ms` is before `time_ms`, and
    /// moves the purge checkpoint to the last one removed, so the rest still verifies.
    /// Stops at the first record at or after `time_ms` (the chain stays contiguous even if
    /// the clock stepped back). Returns how many records were removed.
    ///
    /// Only a prefix of the chain is ever removed, and only a prefix that verifies: each
    /// record must continue the chain intact from the checkpoint before it is removed. The
    /// checkpoint is then the only thing that shortens the chain: records deleted at the
    /// start by other means show up in [`AuditLog::verify`] as missing, and a purge cannot
    /// launder that (or a changed record) by moving the checkpoint over it.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the next record due does not decode or does not
    /// continue the chain intact (it and everything after it are kept); any store failure.
    /// Either way, what was purged before it stays purged, with a matching checkpoint.
    fn purge_before(&self, time_ms: u64) -> Result<u64, StoreError>;

    /// Whether the store takes a commit now: a small durable write beside the chain (it
    /// changes no record), which the audit writer makes while appends fail and none is
    /// waiting, so that it learns when the store recovers. The default says yes.
    ///
    /// # Errors
    /// The store's failure.
    fn probe(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
