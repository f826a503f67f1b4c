//! The `interval` writer ([`super::AuditSync::Interval`]): the journal under its lock, the
//! ticker that closes a segment when its interval is due, and the committer that commits
//! closed segments to the store and deletes them (the design is in [`super`]'s docs).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::store::StoreError;

use super::super::journal::{self, Journal};
use super::super::{AuditLog, AuditRecord, ChainMark, NewRecord, RedbAuditLog};
use super::{Bounds, Health, PROBE_EVERY};

/// Starts the `interval` writer over the journal's segment `next_segment` onward, with its
/// committer and ticker threads; returns the writer and the health both report to.
pub(super) fn start(
    log: &Arc<RedbAuditLog>,
    interval: Duration,
    journal_path: &Path,
    next_segment: u64,
    bounds: Bounds,
) -> Result<(Arc<JournalWriter>, Arc<Health>), StoreError> {
    let journal = Journal::open(&journal::segment_path(journal_path, next_segment))?;
    let head = log.head()?.unwrap_or(ChainMark::GENESIS);
    let room = Arc::new(Notify::new());
    let queued = Arc::new(AtomicUsize::new(0));
    let (commit_tx, commit_rx) = std::sync::mpsc::channel::<Segment>();
    let health = Arc::new(Health::default());
    let committer = Committer {
        log: Arc::clone(log) as Arc<dyn SealedLog>,
        room: Arc::clone(&room),
        queued: Arc::clone(&queued),
        interval,
        health: Arc::clone(&health),
    };
    std::thread::Builder::new()
        .name("hutong-audit-commit".to_owned())
        .spawn(move || committer.run(&commit_rx))
        .map_err(|e| StoreError::Db(format!("cannot start the audit committer: {e}")))?;
    let writer = Arc::new(JournalWriter {
        state: Mutex::new(Journaled {
            journal,
            base: journal_path.to_path_buf(),
            next_segment: next_segment + 1,
            head,
            pending: Vec::new(),
            due: None,
            committer: commit_tx,
            unsynced: Vec::new(),
        }),
        due_set: Condvar::new(),
        interval,
        bounds,
        room,
        queued,
        health: Arc::clone(&health),
    });
    let weak = Arc::downgrade(&writer);
    std::thread::Builder::new()
        .name("hutong-audit".to_owned())
        .spawn(move || run_ticker(&weak))
        .map_err(|e| StoreError::Db(format!("cannot start the audit ticker: {e}")))?;
    Ok((writer, health))
}

/// A closed journal segment and its records, on their way to the store.
pub(super) struct Segment {
    pub(super) records: Vec<AuditRecord>,
    pub(super) path: PathBuf,
}

/// The `interval` writer, shared by every handle.
pub(super) struct JournalWriter {
    state: Mutex<Journaled>,
    /// Wakes the ticker when the open segment's first record sets its due time.
    due_set: Condvar,
    pub(super) interval: Duration,
    bounds: Bounds,
    /// Signalled by the committer after each commit: appends waiting for room try again.
    room: Arc<Notify>,
    /// Closed segments handed to the committer and not yet committed.
    pub(super) queued: Arc<AtomicUsize>,
    /// The health of the [`AuditWriter`](super::AuditWriter): a journal that cannot be
    /// written, or a committer that is gone, counts as a refused commit.
    health: Arc<Health>,
}

/// The journal's state: the open segment, the chain's head, and the records answered for
/// but not yet handed to the committer.
struct Journaled {
    journal: Journal,
    /// The journal's base path, and the number of the segment after the open one.
    base: PathBuf,
    next_segment: u64,
    /// The chain's head, including every record written.
    head: ChainMark,
    /// Sealed records in the open segment.
    pending: Vec<AuditRecord>,
    /// When the open segment is to be closed (set by its first record).
    due: Option<Instant>,
    committer: std::sync::mpsc::Sender<Segment>,
    /// Segments closed while the committer was behind, to be forced to the disk by the
    /// ticker thread, outside the lock (an fsync under it would stall every append).
    unsynced: Vec<std::fs::File>,
}

impl JournalWriter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Journaled> {
        // The state stays consistent at every step a panic could interrupt: the head moves
        // only after its frame is written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `rec` unless the open segment is full and cannot be closed because the
    /// committer's queue is full (then `rec` comes back).
    fn attempt(&self, st: &mut Journaled, rec: NewRecord) -> Attempt {
        if st.pending.len() >= self.bounds.pending
            && matches!(self.close_segment(st), Rotation::QueueFull)
        {
            return Attempt::Full(rec);
        }
        // A segment that cannot be opened does not hold records back: they go on into the
        // open one, past the bound, as the error is logged (close_segment).
        Attempt::Written(self.write(st, rec))
    }

    /// Seals `rec` on the head and writes its frame to the open segment.
    fn write(&self, st: &mut Journaled, rec: NewRecord) -> Result<AuditRecord, StoreError> {
        rec.check()?;
        let seq = st.head.seq.checked_add(1).ok_or(StoreError::TooLarge {
            what: "audit sequence number",
        })?;
        let sealed = AuditRecord::seal(seq, st.head.hash, rec)?;
        // On a failed write the journal cut off the partial frame; the head stays. A frame
        // it could not cut off leaves the segment refusing writes: the next one starts now.
        if let Err(e) = st.journal.append(std::slice::from_ref(&sealed)) {
            if st.journal.is_torn() {
                let _ = self.close_segment(st);
            }
            return Err(e);
        }
        st.head = ChainMark::of(&sealed);
        st.pending.push(sealed.clone());
        if st.due.is_none() {
            st.due = Some(Instant::now() + self.interval);
            self.due_set.notify_one();
        }
        Ok(sealed)
    }

    /// Starts the next segment and hands the closed one to the committer. When that cannot
    /// happen now (the committer's queue is full, or the next segment cannot be opened) the
    /// records stay pending in the open segment.
    fn close_segment(&self, st: &mut Journaled) -> Rotation {
        let torn = st.journal.is_torn();
        if st.pending.is_empty() && !torn {
            st.due = None;
            return Rotation::Done;
        }
        // Only this function sends, under the lock, so the count cannot grow meanwhile.
        let behind = self.queued.load(Ordering::Acquire);
        if !st.pending.is_empty() && behind >= self.bounds.queued {
            return Rotation::QueueFull;
        }
        if behind > 0 {
            // The committer is behind (a slow or failing store): this segment may wait in
            // its queue for longer than an interval, so the ticker forces it to the disk.
            if let Some(f) = st.journal.handle() {
                st.unsynced.push(f);
            }
        }
        let next = match Journal::open(&journal::segment_path(&st.base, st.next_segment)) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "audit journal: cannot start a segment");
                return Rotation::Failed;
            }
        };
        st.next_segment += 1;
        let closed = std::mem::replace(&mut st.journal, next);
        if st.pending.is_empty() {
            // A torn segment without a whole record: nothing in it to commit or replay.
            if let Err(e) = std::fs::remove_file(closed.path()) {
                tracing::warn!(error = %e, "audit journal: a torn segment stays");
            }
            st.due = None;
            return Rotation::Done;
        }
        let segment = Segment {
            records: std::mem::take(&mut st.pending),
            path: closed.path().to_path_buf(),
        };
        drop(closed);
        st.due = None;
        self.queued.fetch_add(1, Ordering::AcqRel);
        // If the committer is gone, the segment stays on disk for the next start.
        if st.committer.send(segment).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.health.record(false);
        }
        Rotation::Done
    }
}

/// `fdatasync` of each file, a failure logged: the records stay written, safe from a
/// process crash, and the committer still has them.
fn sync_or_log(files: Vec<std::fs::File>) {
    for f in files {
        if let Err(e) = f.sync_data() {
            tracing::warn!(error = %e, "audit journal: cannot force a segment to the disk");
        }
    }
}

/// What closing the open segment came to.
enum Rotation {
    /// Closed and handed over (or nothing to close).
    Done,
    /// The committer's queue is full: a commit will make room.
    QueueFull,
    /// The next segment could not be opened (logged); the ticker tries again.
    Failed,
}

/// What an append under the lock came to.
enum Attempt {
    Written(Result<AuditRecord, StoreError>),
    /// No room until a commit: the record, back.
    Full(NewRecord),
}

/// Appends to the journal from async code: under the lock, or, when the open segment is
/// full and the committer's queue too, after a commit has made room.
///
/// The lock is taken on the runtime worker: it is held for one seal and one `write`, which
/// the page cache answers in microseconds. A `write` that waits for the disk (dirty-page
/// throttling, a file-system journal commit) holds up the workers that reach an audited
/// answer meanwhile. Waiting on the blocking pool when the lock is taken was tried and
/// left: under load it started some thirty threads, whose allocator caches raised scenario
/// (f)'s resident memory from 249 to 304 MiB. Yielding and trying again would start no
/// thread, but has not been measured.
pub(super) async fn append_journaled(
    j: &Arc<JournalWriter>,
    mut rec: NewRecord,
) -> Result<AuditRecord, StoreError> {
    loop {
        // Registered before the look at the queue, so that a commit in between wakes it.
        let room = j.room.notified();
        tokio::pin!(room);
        room.as_mut().enable();
        let attempt = j.attempt(&mut j.lock(), rec);
        match attempt {
            Attempt::Written(result) => {
                if let Err(e) = &result {
                    // A record over its limits is the record's fault; anything else is the
                    // journal's (a full disk).
                    if !matches!(e, StoreError::TooLarge { .. }) {
                        j.health.record(false);
                    }
                }
                return result;
            }
            // The open segment is full and the committer's queue too: wait for a commit.
            Attempt::Full(back) => {
                rec = back;
                room.await;
            }
        }
    }
}

impl Drop for JournalWriter {
    /// The last handle is gone: what is pending goes to the committer, whatever its queue
    /// holds (nothing will be appended after). What it cannot commit stays in its segment
    /// for the next start.
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if !st.pending.is_empty() {
            let segment = Segment {
                records: std::mem::take(&mut st.pending),
                path: st.journal.path().to_path_buf(),
            };
            let _ = st.committer.send(segment);
        }
    }
}

/// The longest the ticker waits before it looks again whether the writer is still there.
const IDLE_LOOK: Duration = Duration::from_millis(500);

/// The ticker thread: closes the open segment when its interval is due, and otherwise
/// sleeps until it is (an idle gateway's ticker wakes twice a second). Ends with the
/// writer.
fn run_ticker(writer: &Weak<JournalWriter>) {
    while let Some(w) = writer.upgrade() {
        let mut st = w.lock();
        if !st.unsynced.is_empty() {
            // Segments closed while the committer was behind (by an append, or by this
            // thread's last turn), synced outside the lock.
            let files = std::mem::take(&mut st.unsynced);
            drop(st);
            sync_or_log(files);
            continue;
        }
        let now = Instant::now();
        let wait = match st.due {
            Some(due) if due <= now => {
                let rotation = w.close_segment(&mut st);
                if !matches!(rotation, Rotation::Done) {
                    st.due = Some(now + w.interval);
                }
                if matches!(rotation, Rotation::QueueFull) {
                    // The open segment keeps its records past the interval: to the disk
                    // with them, once an interval, from this thread (the next turn).
                    if let Some(f) = st.journal.handle() {
                        st.unsynced.push(f);
                    }
                }
                continue;
            }
            Some(due) => (due - now).min(IDLE_LOOK),
            None => IDLE_LOOK,
        };
        // Holds the writer (not its lock) while it waits: a writer dropped meanwhile is
        // flushed when this wait ends, on this thread.
        drop(
            w.due_set
                .wait_timeout(st, wait)
                .unwrap_or_else(PoisonError::into_inner),
        );
    }
}

/// Where the committer puts sealed records: the embedded log ([`RedbAuditLog`]), or in
/// tests a store that refuses.
pub(super) trait SealedLog: Send + Sync {
    /// [`RedbAuditLog::commit_sealed`].
    fn commit_sealed(&self, sealed: &[AuditRecord]) -> Result<(), StoreError>;
    /// [`AuditLog::probe`].
    fn probe(&self) -> Result<(), StoreError>;
}

impl SealedLog for RedbAuditLog {
    fn commit_sealed(&self, sealed: &[AuditRecord]) -> Result<(), StoreError> {
        RedbAuditLog::commit_sealed(self, sealed)
    }
    fn probe(&self) -> Result<(), StoreError> {
        AuditLog::probe(self)
    }
}

/// The committer thread's share of the writer.
pub(super) struct Committer {
    pub(super) log: Arc<dyn SealedLog>,
    pub(super) room: Arc<Notify>,
    pub(super) queued: Arc<AtomicUsize>,
    pub(super) interval: Duration,
    /// [`AuditWriter`](super::AuditWriter)'s health.
    pub(super) health: Arc<Health>,
}

impl Committer {
    /// Each closed segment's records committed to the store (one `fsync`), in order, then
    /// the segment deleted. A failed commit is retried after an interval; the segment
    /// keeps the records meanwhile. Until the store has settled after a failure
    /// ([`SETTLE`](super::SETTLE)), an idle committer probes it every
    /// [`PROBE_EVERY`](super::PROBE_EVERY), as the `commit` writer does.
    pub(super) fn run(&self, rx: &std::sync::mpsc::Receiver<Segment>) {
        use std::sync::mpsc::RecvTimeoutError;
        loop {
            let seg = match rx.recv_timeout(PROBE_EVERY) {
                Ok(seg) => seg,
                Err(RecvTimeoutError::Timeout) => {
                    if !self.health.settled() {
                        self.health.record(self.log.probe().is_ok());
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            loop {
                let outcome = self.log.commit_sealed(&seg.records);
                self.health.record(outcome.is_ok());
                match outcome {
                    Ok(()) => {
                        if let Err(e) = std::fs::remove_file(&seg.path) {
                            tracing::error!(error = %e, "audit journal: a committed segment stays");
                        }
                        break;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, records = seg.records.len(), "audit commit failed; kept in the journal, retrying");
                        std::thread::sleep(self.interval.max(Duration::from_millis(100)));
                    }
                }
            }
            let _ = self
                .queued
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
            self.room.notify_waiters();
        }
    }
}
