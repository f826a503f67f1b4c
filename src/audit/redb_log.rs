//! The embedded [`AuditLog`]: records in redb tables of a [`Store`], with a subject index
//! for receipts.
//!
//! Appends use group commit. A durable redb commit costs an `fsync`; committing each
//! record alone would cap the gateway at a few hundred audited requests a second. Instead
//! each caller queues its record and then takes the writer lock; whoever holds it drains
//! the queue, appends every queued record in one transaction, commits once, and hands each
//! caller its result. A caller whose record went out with someone else's batch finds its
//! result waiting when it gets the lock. There is one writer at a time, so sequence numbers
//! and the chain stay consistent.

use std::sync::{Mutex, mpsc};

use redb::ReadableTable;

use crate::store::tables::{AUDIT_BY_SUBJECT, AUDIT_META, AUDIT_RECORDS};
use crate::store::{Store, StoreError, lock};

use super::chain::{Verifier, check_purgeable};
use super::{
    AuditLog, AuditRecord, CHECKPOINT_KEY, ChainMark, HEAD_KEY, NewRecord, PROBE_KEY, Pseudonym,
    VerifyReport,
};

/// Most records removed in one purge transaction, so that a large purge does not hold the
/// writer (and stall appends) for long.
const PURGE_BATCH: usize = 10_000;

type Reply = mpsc::SyncSender<Result<AuditRecord, StoreError>>;

/// The redb [`AuditLog`].
#[derive(Debug)]
pub struct RedbAuditLog {
    store: Store,
    /// Records waiting for the next group commit.
    queue: Mutex<Vec<(NewRecord, Reply)>>,
    /// Held by the caller that is committing a batch.
    writer: Mutex<()>,
}

impl RedbAuditLog {
    /// The audit log in `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            queue: Mutex::new(Vec::new()),
            writer: Mutex::new(()),
        }
    }

    /// The head marker: the last appended record, if any.
    ///
    /// # Errors
    /// When the store cannot be read or the marker does not decode.
    pub fn head(&self) -> Result<Option<ChainMark>, StoreError> {
        let txn = self.store.db().begin_read()?;
        let meta = txn.open_table(AUDIT_META)?;
        read_mark(&meta, HEAD_KEY)
    }

    /// Appends a batch in one transaction. Records over their limits get their own error
    /// and take no sequence number; a store failure fails the whole batch.
    fn write_batch(
        &self,
        batch: Vec<NewRecord>,
    ) -> Result<Vec<Result<AuditRecord, StoreError>>, StoreError> {
        let txn = self.store.db().begin_write()?;
        let mut out = Vec::with_capacity(batch.len());
        {
            let mut meta = txn.open_table(AUDIT_META)?;
            let mut records = txn.open_table(AUDIT_RECORDS)?;
            let mut index = txn.open_table(AUDIT_BY_SUBJECT)?;
            let mut head = read_mark(&meta, HEAD_KEY)?.unwrap_or(ChainMark::GENESIS);
            for rec in batch {
                if let Err(e) = rec.check() {
                    out.push(Err(e));
                    continue;
                }
                let seq = head.seq.checked_add(1).ok_or(StoreError::TooLarge {
                    what: "audit sequence number",
                })?;
                let sealed = AuditRecord::seal(seq, head.hash, rec)?;
                insert(&mut records, &mut index, &sealed)?;
                head = ChainMark::of(&sealed);
                out.push(Ok(sealed));
            }
            meta.insert(HEAD_KEY, head.encode().as_slice())?;
        }
        txn.commit()?;
        Ok(out)
    }
}

impl RedbAuditLog {
    /// Commits records sealed elsewhere (by the journaled writer, which keeps the head in
    /// memory), durably, in one transaction. They must continue the stored chain:
    /// consecutive sequence numbers from the head, each `prev_hash` the hash before it.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when they do not continue the chain (nothing is written);
    /// any store failure.
    /// Checks the chain against `anchor`, a head the operator kept outside the file (as
    /// `hutong audit verify` printed it): the record at its seq must still be there with its
    /// hash. That catches what the markers alone cannot: the tail cut off and the head
    /// marker moved back onto the last record left. `Ok(None)` when it holds, else the
    /// problem, starting with its seq. An anchor before the purge checkpoint is a problem
    /// too: retention removed that record, or someone moved the checkpoint over it, and
    /// nothing is left to compare.
    pub fn check_anchor(&self, anchor: ChainMark) -> Result<Option<String>, StoreError> {
        let txn = self.store.db().begin_read()?;
        let meta = txn.open_table(AUDIT_META)?;
        let records = txn.open_table(AUDIT_RECORDS)?;
        let checkpoint = read_mark(&meta, CHECKPOINT_KEY)?.unwrap_or(ChainMark::GENESIS);
        let seq = anchor.seq;
        if seq < checkpoint.seq {
            return Ok(Some(format!(
                "seq {seq}: the anchor is before the purge checkpoint at seq {} and cannot \
                 be checked (if retention purged it, anchor a later head)",
                checkpoint.seq
            )));
        }
        let hash = if seq == checkpoint.seq {
            Some(checkpoint.hash)
        } else {
            match records.get(seq)? {
                Some(v) => AuditRecord::decode_stored(v.value()).ok().map(|r| r.hash),
                None => {
                    return Ok(Some(format!(
                        "seq {seq}: the anchored record is gone (the chain was cut below the anchor)"
                    )));
                }
            }
        };
        Ok(match hash {
            Some(h) if h == anchor.hash => None,
            Some(_) => Some(format!("seq {seq}: hash differs from the anchor")),
            None => Some(format!("seq {seq}: the anchored record is unreadable")),
        })
    }

    pub fn commit_sealed(&self, sealed: &[AuditRecord]) -> Result<(), StoreError> {
        if sealed.is_empty() {
            return Ok(());
        }
        let _writer = lock(&self.writer);
        let txn = self.store.db().begin_write()?;
        {
            let mut meta = txn.open_table(AUDIT_META)?;
            let mut records = txn.open_table(AUDIT_RECORDS)?;
            let mut index = txn.open_table(AUDIT_BY_SUBJECT)?;
            let mut head = read_mark(&meta, HEAD_KEY)?.unwrap_or(ChainMark::GENESIS);
            for rec in sealed {
                if rec.seq != head.seq.wrapping_add(1) || rec.prev_hash != head.hash {
                    return Err(StoreError::Corrupt {
                        what: "audit record",
                        reason: format!(
                            "record {} does not continue the chain at {}",
                            rec.seq, head.seq
                        ),
                    });
                }
                records.insert(rec.seq, rec.encode_stored().as_slice())?;
                head = ChainMark::of(rec);
            }
            // The person index in key order: each insert then walks down next to the last
            // one, through pages this transaction already holds.
            let mut keys: Vec<([u8; 32], u64)> = sealed
                .iter()
                .filter_map(|r| Some((r.subject.as_ref()?.0, r.seq)))
                .collect();
            keys.sort_unstable();
            for k in keys {
                index.insert(k, ())?;
            }
            meta.insert(HEAD_KEY, head.encode().as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }
}

impl AuditLog for RedbAuditLog {
    fn append(&self, rec: NewRecord) -> Result<AuditRecord, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        lock(&self.queue).push((rec, tx));
        let _writer = lock(&self.writer);
        // Invariant: a leader replies to every record of its batch before it releases the
        // writer lock. So either our result is waiting, or our record is still queued and
        // goes out in the batch we take now.
        if let Ok(done) = rx.try_recv() {
            return done;
        }
        let (records, replies): (Vec<_>, Vec<_>) =
            std::mem::take(&mut *lock(&self.queue)).into_iter().unzip();
        match self.write_batch(records) {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    // A sender's buffer holds one message and gets only this one; a
                    // failed send means the caller is gone, which harms no one.
                    let _ = reply.try_send(result);
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.try_send(Err(e.clone()));
                }
            }
        }
        rx.try_recv()
            .unwrap_or_else(|_| Err(StoreError::Db("audit append lost its reply".to_owned())))
    }

    fn probe(&self) -> Result<(), StoreError> {
        let _writer = lock(&self.writer);
        let txn = self.store.db().begin_write()?;
        {
            let mut meta = txn.open_table(AUDIT_META)?;
            // The head an append would chain to must read, as it must for an append.
            read_mark(&meta, HEAD_KEY)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            meta.insert(PROBE_KEY, now.to_be_bytes().as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    fn append_batch(
        &self,
        recs: Vec<NewRecord>,
    ) -> Result<Vec<Result<AuditRecord, StoreError>>, StoreError> {
        // Holding the writer lock keeps the chain single-writer alongside `append`'s own
        // group commit; records queued by `append` callers go out in their leader's batch.
        let _writer = lock(&self.writer);
        self.write_batch(recs)
    }

    fn verify(&self) -> Result<VerifyReport, StoreError> {
        // One read transaction: a consistent snapshot, taken without blocking appends.
        let txn = self.store.db().begin_read()?;
        let meta = txn.open_table(AUDIT_META)?;
        let records = txn.open_table(AUDIT_RECORDS)?;
        let index = txn.open_table(AUDIT_BY_SUBJECT)?;
        // A marker that does not decode was altered: a finding of the report, like any
        // other tampering, not an error that would stop the check (and its exit status).
        let mut unreadable = Vec::new();
        let mut mark = |key: &str, what: &str| match read_mark(&meta, key) {
            Err(StoreError::Corrupt { reason, .. }) => {
                unreadable.push(format!("seq 0: the {what} marker is unreadable ({reason})"));
                Ok(None)
            }
            other => other,
        };
        let checkpoint = mark(CHECKPOINT_KEY, "checkpoint")?.unwrap_or(ChainMark::GENESIS);
        let head = mark(HEAD_KEY, "head")?;
        let mut v = Verifier::new(checkpoint);
        for p in unreadable {
            v.problem(0, p);
        }
        for entry in records.iter()? {
            let (k, val) = entry?;
            let key = k.value();
            let Some(rec) = v.push(key, val.value()) else {
                continue;
            };
            // A record missing from the index would be hidden from its holder's receipt.
            if let Some(s) = rec.subject {
                if index.get((s.0, key))?.is_none() {
                    v.problem(
                        key,
                        format!("seq {key}: missing from the subject index (hidden from receipts)"),
                    );
                }
            }
        }
        // And the other way: every index entry points at a record about that subject.
        for entry in index.iter()? {
            let (subject, seq) = entry?.0.value();
            let matches = match records.get(seq)? {
                Some(val) => AuditRecord::decode_stored(val.value())
                    .is_ok_and(|r| r.subject.is_some_and(|s| s.0 == subject)),
                None => false,
            };
            if !matches {
                v.problem(
                    seq,
                    format!("seq {seq}: a subject index entry has no matching record"),
                );
            }
        }
        Ok(v.finish(head))
    }

    fn receipt(&self, subject: &Pseudonym) -> Result<Vec<AuditRecord>, StoreError> {
        let txn = self.store.db().begin_read()?;
        let records = txn.open_table(AUDIT_RECORDS)?;
        let index = txn.open_table(AUDIT_BY_SUBJECT)?;
        let mut out = Vec::new();
        for entry in index.range((subject.0, 0)..=(subject.0, u64::MAX))? {
            let seq = entry?.0.value().1;
            // An index entry without its record is a purge in progress or tampering; the
            // receipt lists what exists, and `verify` reports the rest.
            let Some(val) = records.get(seq)? else {
                continue;
            };
            let rec = AuditRecord::decode_stored(val.value())?;
            if rec.subject.as_ref() == Some(subject) {
                out.push(rec);
            }
        }
        Ok(out)
    }

    fn tail(&self, n: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let txn = self.store.db().begin_read()?;
        let records = txn.open_table(AUDIT_RECORDS)?;
        let mut out = Vec::new();
        for entry in records.iter()?.rev().take(n) {
            let (_, val) = entry?;
            out.push(AuditRecord::decode_stored(val.value())?);
        }
        out.reverse();
        Ok(out)
    }

    fn purge_before(&self, time_ms: u64) -> Result<u64, StoreError> {
        let mut purged = 0u64;
        loop {
            let _writer = lock(&self.writer);
            let txn = self.store.db().begin_write()?;
            let mut n = 0;
            // A record that fails its check ends the purge; the batch before it is still
            // committed, so the checkpoint moves as far as the chain is intact.
            let mut stopped = None;
            {
                let mut meta = txn.open_table(AUDIT_META)?;
                let mut records = txn.open_table(AUDIT_RECORDS)?;
                let mut index = txn.open_table(AUDIT_BY_SUBJECT)?;
                let start = read_mark(&meta, CHECKPOINT_KEY)?.unwrap_or(ChainMark::GENESIS);
                let mut checkpoint = start;
                while n < PURGE_BATCH {
                    let Some((k, val)) = records.first()? else {
                        break;
                    };
                    let key = k.value();
                    let decoded = AuditRecord::decode_stored(val.value());
                    drop((k, val));
                    let rec = match decoded {
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
                    records.remove(key)?;
                    if let Some(s) = rec.subject {
                        index.remove((s.0, key))?;
                    }
                    n += 1;
                }
                if checkpoint != start {
                    meta.insert(CHECKPOINT_KEY, checkpoint.encode().as_slice())?;
                }
            }
            txn.commit()?;
            purged += n as u64;
            if let Some(e) = stopped {
                return Err(e);
            }
            if n < PURGE_BATCH {
                return Ok(purged);
            }
        }
    }
}

fn insert(
    records: &mut redb::Table<'_, u64, &'static [u8]>,
    index: &mut redb::Table<'_, ([u8; 32], u64), ()>,
    sealed: &AuditRecord,
) -> Result<(), StoreError> {
    records.insert(sealed.seq, sealed.encode_stored().as_slice())?;
    if let Some(s) = &sealed.subject {
        index.insert((s.0, sealed.seq), ())?;
    }
    Ok(())
}

fn read_mark(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<ChainMark>, StoreError> {
    match meta.get(key)? {
        None => Ok(None),
        Some(v) => ChainMark::decode(v.value()).map(Some),
    }
}
