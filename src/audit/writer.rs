//! The request path's way into the audit log: one writer thread that owns the commits.
//!
//! Every audited request waits for its record to be durable before it is answered (the
//! gateway fails closed). A durable commit costs an `fsync`, so records are committed in
//! groups: while one group is on its way to the disk, the next requests queue up, and the
//! writer takes them all in its next transaction.
//!
//! The first version ran each append on tokio's blocking pool, where the callers contended
//! for the writer lock; under load most of the gateway's time went to waking blocking-pool
//! threads that found their record already committed by another. Here a request costs one
//! channel send and one wake-up: it sends its record on a bounded channel and awaits a
//! oneshot reply. The bound is the back-pressure: when the disk falls behind, requests wait
//! to enqueue rather than piling up in memory.
//!
//! Two policies ([`AuditSync`]): `commit` answers each request after the `fsync` of the
//! group that holds its record; `interval` answers after the group is in the audit journal
//! (one `write`, safe from a process crash) and commits to the store at most every
//! interval. See [`super::journal`] for what each guarantees.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::store::StoreError;

use super::journal::{self, Journal};
use super::{AuditLog, AuditRecord, ChainMark, NewRecord, RedbAuditLog};

/// Records that may wait for the writer at once.
const QUEUE_CAPACITY: usize = 8_192;

/// Most records committed in one transaction. A bound keeps one commit (and the wait of
/// the requests in it) short when a burst queued many.
const MAX_BATCH: usize = 1_024;

type Reply = oneshot::Sender<Result<AuditRecord, StoreError>>;

/// When an answered request's audit record reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditSync {
    /// Before the answer: each group of records is committed with an `fsync` first.
    Commit,
    /// Within the interval: the group is written to the journal before the answer and
    /// committed to the store within this time.
    Interval(Duration),
}

/// An async handle on an [`AuditLog`] whose appends go through one writer thread.
///
/// Cloning shares the writer. The thread ends when the last handle is dropped, after it
/// has committed everything already queued.
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<(NewRecord, Reply)>,
    log: Arc<dyn AuditLog>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter")
            .field("queued", &(QUEUE_CAPACITY - self.tx.capacity()))
            .finish()
    }
}

impl AuditWriter {
    /// Starts the writer thread over `log`.
    ///
    /// # Errors
    /// When the operating system refuses a thread.
    pub fn start(log: Arc<dyn AuditLog>) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let writer_log = Arc::clone(&log);
        std::thread::Builder::new()
            .name("hutong-audit".to_owned())
            .spawn(move || run(&*writer_log, rx))
            .map_err(|e| StoreError::Db(format!("cannot start the audit writer: {e}")))?;
        Ok(Self { tx, log })
    }

    /// Starts a writer over the embedded log under `sync`. Under
    /// [`AuditSync::Interval`] the journal at `journal_path` is replayed into the store
    /// first (records a crashed run answered for), then receives every group of records.
    ///
    /// # Errors
    /// When the journal cannot be replayed or opened, the head cannot be read, or the
    /// thread cannot start.
    pub fn start_embedded(
        log: Arc<RedbAuditLog>,
        sync: AuditSync,
        journal_path: &Path,
    ) -> Result<Self, StoreError> {
        // Replay whatever an earlier run left, under either policy: switching from
        // `interval` to `commit` must not strand records.
        let (recovered, next_segment) = journal::recover_segments(&log, journal_path)?;
        if recovered.replayed > 0 || recovered.discarded_bytes > 0 {
            tracing::warn!(
                replayed = recovered.replayed,
                discarded_bytes = recovered.discarded_bytes,
                "audit journal replayed into the store"
            );
        }
        let interval = match sync {
            AuditSync::Commit => return Self::start(log),
            AuditSync::Interval(d) => d,
        };
        let journal = Journal::open(&journal::segment_path(journal_path, next_segment))?;
        let head = log.head()?.unwrap_or(ChainMark::GENESIS);
        // The committer: closed segments, committed in order, then deleted. A bounded
        // queue: when the disk falls behind by a few commits, the writer waits.
        let (commit_tx, commit_rx) = std::sync::mpsc::sync_channel::<Segment>(4);
        let committer_log = Arc::clone(&log);
        std::thread::Builder::new()
            .name("hutong-audit-commit".to_owned())
            .spawn(move || run_committer(&committer_log, &commit_rx, interval))
            .map_err(|e| StoreError::Db(format!("cannot start the audit committer: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| StoreError::Db(format!("cannot start the audit writer: {e}")))?;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let base = journal_path.to_path_buf();
        std::thread::Builder::new()
            .name("hutong-audit".to_owned())
            .spawn(move || {
                rt.block_on(run_journaled(
                    Journaled {
                        journal,
                        base,
                        next_segment: next_segment + 1,
                        head,
                        pending: Vec::new(),
                        committer: commit_tx,
                    },
                    interval,
                    rx,
                ));
            })
            .map_err(|e| StoreError::Db(format!("cannot start the audit writer: {e}")))?;
        Ok(Self { tx, log })
    }

    /// Appends `rec` and waits until it is durable under the writer's policy.
    ///
    /// # Errors
    /// What [`AuditLog::append`] would return, or [`StoreError::Db`] when the writer thread
    /// is gone.
    pub async fn append(&self, rec: NewRecord) -> Result<AuditRecord, StoreError> {
        let (reply, done) = oneshot::channel();
        self.tx.send((rec, reply)).await.map_err(|_| gone())?;
        done.await.map_err(|_| gone())?
    }

    /// The log itself, for reads (verification, receipts) and retention.
    pub fn log(&self) -> &Arc<dyn AuditLog> {
        &self.log
    }
}

fn gone() -> StoreError {
    StoreError::Db("the audit writer has stopped".to_owned())
}

/// The writer thread: waits for a record, takes whatever else is queued (up to
/// [`MAX_BATCH`]), commits the group, and answers each caller.
fn run(log: &dyn AuditLog, mut rx: mpsc::Receiver<(NewRecord, Reply)>) {
    let mut records = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    while let Some((rec, reply)) = rx.blocking_recv() {
        records.push(rec);
        replies.push(reply);
        while records.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((rec, reply)) => {
                    records.push(rec);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        match log.append_batch(std::mem::take(&mut records)) {
            Ok(results) => {
                for (reply, result) in replies.drain(..).zip(results) {
                    // A caller that gave up (its request was cancelled) harms no one.
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// A closed journal segment and its records, on their way to the store.
struct Segment {
    records: Vec<AuditRecord>,
    path: PathBuf,
}

/// The journaled writer's state: records answered for but not yet handed to the committer.
struct Journaled {
    journal: Journal,
    /// The journal's base path, and the number of the segment after the open one.
    base: PathBuf,
    next_segment: u64,
    /// The chain's head, including every record written.
    head: ChainMark,
    /// Sealed records in the open segment.
    pending: Vec<AuditRecord>,
    committer: std::sync::mpsc::SyncSender<Segment>,
}

/// Most records that may wait for the interval's commit; past it the writer closes the
/// segment at once, so that a burst cannot hold unbounded memory.
const MAX_PENDING: usize = 50_000;

async fn run_journaled(
    mut st: Journaled,
    interval: Duration,
    mut rx: mpsc::Receiver<(NewRecord, Reply)>,
) {
    let mut due: Option<Instant> = None;
    loop {
        let first = match due {
            None => rx.recv().await,
            Some(at) => tokio::select! {
                m = rx.recv() => m,
                () = tokio::time::sleep_until(at) => {
                    due = close_segment(&mut st, interval);
                    continue;
                }
            },
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        write_group(&mut st, batch);
        if st.pending.len() >= MAX_PENDING {
            due = close_segment(&mut st, interval);
        } else if due.is_none() && !st.pending.is_empty() {
            due = Some(Instant::now() + interval);
        }
    }
    // Every handle is gone: hand over what is left. What the committer cannot commit
    // stays in its segment for the next start.
    let _ = close_segment(&mut st, interval);
}

/// Seals a group on the in-memory head, writes it to the journal, and answers its callers.
fn write_group(st: &mut Journaled, batch: Vec<(NewRecord, Reply)>) {
    let start = st.head;
    let mut head = start;
    let mut sealed = Vec::with_capacity(batch.len());
    let mut results = Vec::with_capacity(batch.len());
    for (rec, reply) in batch {
        let r = rec.check().and_then(|()| {
            let seq = head.seq.checked_add(1).ok_or(StoreError::TooLarge {
                what: "audit sequence number",
            })?;
            AuditRecord::seal(seq, head.hash, rec)
        });
        match r {
            Ok(s) => {
                head = ChainMark::of(&s);
                sealed.push(s);
                results.push((reply, None));
            }
            Err(e) => results.push((reply, Some(e))),
        }
    }
    match st.journal.append(&sealed) {
        Ok(()) => {
            st.head = head;
            let mut it = sealed.iter();
            for (reply, err) in results {
                let _ = match err {
                    Some(e) => reply.send(Err(e)),
                    // Invariant: one sealed record per reply without an error, in order.
                    None => reply.send(it.next().cloned().ok_or_else(gone)),
                };
            }
            st.pending.extend(sealed);
        }
        Err(e) => {
            // Nothing of the group is answered for; the head stays where it was (the
            // journal cut off whatever part of the group it wrote).
            st.head = start;
            for (reply, _) in results {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// Starts the next segment and hands the closed one to the committer. Returns when to try
/// again if the next segment cannot be opened (the records stay pending in the open one).
fn close_segment(st: &mut Journaled, interval: Duration) -> Option<Instant> {
    if st.pending.is_empty() {
        return None;
    }
    let next = match Journal::open(&journal::segment_path(&st.base, st.next_segment)) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(error = %e, "audit journal: cannot start a segment");
            return Some(Instant::now() + interval);
        }
    };
    st.next_segment += 1;
    let closed = std::mem::replace(&mut st.journal, next);
    let segment = Segment {
        records: std::mem::take(&mut st.pending),
        path: closed.path().to_path_buf(),
    };
    drop(closed);
    // Blocks while the committer is a few commits behind: that is the back-pressure. If
    // the committer is gone, the segment stays on disk for the next start.
    let _ = st.committer.send(segment);
    None
}

/// The committer thread: each closed segment's records committed to the store (one
/// `fsync`), in order, then the segment deleted. A failed commit is retried after an
/// interval; the segment keeps the records meanwhile.
fn run_committer(log: &RedbAuditLog, rx: &std::sync::mpsc::Receiver<Segment>, interval: Duration) {
    while let Ok(seg) = rx.recv() {
        loop {
            match log.commit_sealed(&seg.records) {
                Ok(()) => {
                    if let Err(e) = std::fs::remove_file(&seg.path) {
                        tracing::error!(error = %e, "audit journal: a committed segment stays");
                    }
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, records = seg.records.len(), "audit commit failed; kept in the journal, retrying");
                    std::thread::sleep(interval.max(Duration::from_millis(100)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::MemoryAuditLog;

    fn rec(i: usize) -> NewRecord {
        NewRecord {
            time_ms: 1_700_000_000_000 + i as u64,
            actor: format!("app-{}", i % 7),
            action: "verifyCode".to_owned(),
            subject: None,
            purpose: "test".to_owned(),
            result: "0".to_owned(),
            loss: Vec::new(),
            request_id: format!("r{i}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_get_consecutive_numbers_and_a_valid_chain() {
        let log: Arc<dyn AuditLog> = Arc::new(MemoryAuditLog::new());
        let w = AuditWriter::start(Arc::clone(&log)).expect("start");
        let tasks: Vec<_> = (0..500)
            .map(|i| {
                let w = w.clone();
                tokio::spawn(async move { w.append(rec(i)).await })
            })
            .collect();
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.expect("task").expect("append").seq);
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=500).collect::<Vec<u64>>());
        let report = w.log().verify().expect("verify");
        assert!(report.ok, "{report:?}");
        assert_eq!(report.records, 500);
    }

    #[tokio::test]
    async fn a_record_over_its_limit_fails_alone() {
        let log: Arc<dyn AuditLog> = Arc::new(MemoryAuditLog::new());
        let w = AuditWriter::start(log).expect("start");
        let mut big = rec(1);
        big.purpose = "x".repeat(crate::audit::MAX_FIELD_BYTES + 1);
        assert!(matches!(
            w.append(big).await,
            Err(StoreError::TooLarge { .. })
        ));
        assert_eq!(w.append(rec(2)).await.expect("append").seq, 1);
    }
}
