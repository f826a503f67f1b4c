//! The request path's way into the audit log, under either sync policy ([`AuditSync`]).
//!
//! Every audited request waits for its record before it is answered (the gateway fails
//! closed).
//!
//! **`commit`**: answered after the `fsync` of the group that holds the record. A durable
//! commit costs an `fsync`, so records are committed in groups by one writer thread: while
//! one group is on its way to the disk, the next requests queue up, and the writer takes
//! them all in its next transaction. A request costs one channel send and one wake-up: it
//! sends its record on a bounded channel and awaits a oneshot reply. The bound is the
//! back-pressure: when the disk falls behind, requests wait to enqueue rather than piling
//! up in memory. (The first version ran each append on tokio's blocking pool, where the
//! callers contended for the writer lock; under load most of the gateway's time went to
//! waking blocking-pool threads that found their record already committed by another.)
//!
//! **`interval`**: answered once the record is in the audit journal (one `write` to the
//! page cache, safe from a process crash) and committed to the store within the interval;
//! see [`super::journal`] for what each policy guarantees. Here the request's own task
//! seals the record on the chain's head and writes its frame, under a lock held for that
//! one `write` (see `append_journaled` for what a slow disk does to that). An earlier
//! version sent each record to a writer thread as under `commit`; with nothing to wait for
//! but a page-cache write, the two thread wake-ups of that round trip cost more than the
//! write, and the writer thread used a sixth of the gateway's CPU on cached verifications. A ticker thread closes the open segment when its interval is
//! due and hands it to the committer thread, which commits it to the store (one `fsync`)
//! and deletes it. The back-pressure is the committer's queue: with four segments
//! waiting and 50,000 records in the open one, appends wait for a commit.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, oneshot};

use crate::store::StoreError;

use super::journal::{self, Journal};
use super::{AuditLog, AuditRecord, ChainMark, NewRecord, RedbAuditLog};

/// Records that may wait for the `commit` writer at once.
const QUEUE_CAPACITY: usize = 8_192;

/// Most records committed in one transaction. A bound keeps one commit (and the wait of
/// the requests in it) short when a burst queued many.
const MAX_BATCH: usize = 1_024;

/// How much the `interval` writer holds before appends wait for the committer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    /// Records in the open journal segment; past it the segment is closed at once, so that
    /// a burst cannot hold unbounded memory.
    pub pending: usize,
    /// Closed segments waiting for the committer.
    pub queued: usize,
}

impl Bounds {
    const DEFAULT: Self = Self {
        pending: 50_000,
        queued: 4,
    };
}

type Reply = oneshot::Sender<Result<AuditRecord, StoreError>>;

/// When an answered request's audit record reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditSync {
    /// Before the answer: each group of records is committed with an `fsync` first.
    Commit,
    /// Within the interval: the record is written to the journal before the answer and
    /// committed to the store within this time.
    Interval(Duration),
}

/// An async handle on an [`AuditLog`]: appends go through the `commit` writer thread, or
/// straight into the audit journal.
///
/// Cloning shares the writer. Its threads end when the last handle is dropped, after what
/// was already appended is on its way to the store.
#[derive(Clone)]
pub struct AuditWriter {
    way: Way,
    log: Arc<dyn AuditLog>,
    /// Whether the store takes commits, as the thread that commits sees it: the gateway is
    /// not ready while it does not ([`AuditWriter::healthy`]).
    health: Arc<Health>,
}

/// How long after its last refused commit the store must go on taking them before the
/// writer counts as healthy again: a nearly full disk that takes one commit in two does
/// not make `/ready` flap.
const SETTLE: Duration = Duration::from_secs(2);

/// The store's health as the committing thread records it.
#[derive(Debug, Default)]
struct Health {
    /// The last commit (or probe) failed.
    failing: AtomicBool,
    /// When the last one failed.
    last_failure: Mutex<Option<Instant>>,
}

impl Health {
    fn record(&self, ok: bool) {
        if !ok {
            *self
                .last_failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        }
        self.failing.store(!ok, Ordering::Relaxed);
    }

    fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Not failing, and not for [`SETTLE`].
    fn settled(&self) -> bool {
        !self.failing()
            && self
                .last_failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_none_or(|t| t.elapsed() >= SETTLE)
    }
}

#[derive(Clone)]
enum Way {
    /// The `commit` writer thread's queue.
    Thread(mpsc::Sender<(NewRecord, Reply)>),
    /// The shared journal (`interval`).
    Journal(Arc<JournalWriter>),
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.way {
            Way::Thread(tx) => f
                .debug_struct("AuditWriter")
                .field("queued", &(QUEUE_CAPACITY - tx.capacity()))
                .finish(),
            Way::Journal(j) => f
                .debug_struct("AuditWriter")
                .field("interval", &j.interval)
                .field("segments_queued", &j.queued.load(Ordering::Relaxed))
                .finish(),
        }
    }
}

impl AuditWriter {
    /// Starts the `commit` writer thread over `log`.
    ///
    /// # Errors
    /// When the operating system refuses a thread.
    pub fn start(log: Arc<dyn AuditLog>) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let writer_log = Arc::clone(&log);
        let health = Arc::new(Health::default());
        let writer_health = Arc::clone(&health);
        std::thread::Builder::new()
            .name("hutong-audit".to_owned())
            .spawn(move || run(&*writer_log, rx, &writer_health))
            .map_err(|e| StoreError::Db(format!("cannot start the audit writer: {e}")))?;
        Ok(Self {
            way: Way::Thread(tx),
            log,
            health,
        })
    }

    /// Starts a writer over the embedded log under `sync`. Under
    /// [`AuditSync::Interval`] the journal at `journal_path` is replayed into the store
    /// first (records a crashed run answered for), then receives every record.
    ///
    /// # Errors
    /// When the journal cannot be replayed or opened, the head cannot be read, or a
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
        match sync {
            AuditSync::Commit => Self::start(log),
            AuditSync::Interval(d) => {
                Self::start_journaled(log, d, journal_path, next_segment, Bounds::DEFAULT)
            }
        }
    }

    /// The `interval` writer over the journal's segment `next_segment` onward.
    pub(super) fn start_journaled(
        log: Arc<RedbAuditLog>,
        interval: Duration,
        journal_path: &Path,
        next_segment: u64,
        bounds: Bounds,
    ) -> Result<Self, StoreError> {
        let journal = Journal::open(&journal::segment_path(journal_path, next_segment))?;
        let head = log.head()?.unwrap_or(ChainMark::GENESIS);
        let room = Arc::new(Notify::new());
        let queued = Arc::new(AtomicUsize::new(0));
        let (commit_tx, commit_rx) = std::sync::mpsc::channel::<Segment>();
        let health = Arc::new(Health::default());
        let committer = Committer {
            log: Arc::clone(&log) as Arc<dyn SealedLog>,
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
        Ok(Self {
            way: Way::Journal(writer),
            log,
            health,
        })
    }

    /// Appends `rec` and waits until it is durable under the writer's policy.
    ///
    /// # Errors
    /// What [`AuditLog::append`] would return, or [`StoreError::Db`] when the writer thread
    /// is gone or the journal cannot be written.
    pub async fn append(&self, rec: NewRecord) -> Result<AuditRecord, StoreError> {
        match &self.way {
            Way::Thread(tx) => {
                let (reply, done) = oneshot::channel();
                tx.send((rec, reply)).await.map_err(|_| gone())?;
                done.await.map_err(|_| gone())?
            }
            Way::Journal(j) => append_journaled(j, rec).await,
        }
    }

    /// The log itself, for reads (verification, receipts) and retention.
    pub fn log(&self) -> &Arc<dyn AuditLog> {
        &self.log
    }

    /// False while the store refuses commits (a full disk, a failing device), and for
    /// [`SETTLE`] after the last refusal: answers about people wait for their records, so
    /// the gateway stops taking traffic (`/ready`) until commits succeed again. Under
    /// `interval` the answers go on from the journal meanwhile, until it is full.
    pub fn healthy(&self) -> bool {
        let thread_gone = match &self.way {
            // The writer thread ended (it never does while a handle lives, unless it
            // panicked): every append would fail.
            Way::Thread(tx) => tx.is_closed(),
            Way::Journal(_) => false,
        };
        self.health.settled() && !thread_gone
    }
}

fn gone() -> StoreError {
    StoreError::Db("the audit writer has stopped".to_owned())
}

/// How often the `commit` writer thread probes a store that refused its last commit, when
/// no record is waiting.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// Sleeps up to [`PROBE_EVERY`], in short steps, and wakes early when `rx` has a record or
/// has closed: a record that comes while the store is being probed waits a few ms at most.
fn nap<T>(rx: &mpsc::Receiver<T>) {
    const STEP: Duration = Duration::from_millis(10);
    let until = Instant::now() + PROBE_EVERY;
    while Instant::now() < until && rx.is_empty() && !rx.is_closed() {
        std::thread::sleep(STEP);
    }
}

/// The `commit` writer thread: waits for a record, takes whatever else is queued (up to
/// [`MAX_BATCH`]), commits the group, and answers each caller. From a refused commit until
/// the store has [`SETTLE`]d, it probes the store ([`AuditLog::probe`]) every
/// [`PROBE_EVERY`] while no record comes, so that the gateway is ready again once the store
/// has kept taking commits, without waiting for traffic that `/ready` keeps away.
fn run(log: &dyn AuditLog, mut rx: mpsc::Receiver<(NewRecord, Reply)>, health: &Health) {
    let mut records = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    loop {
        let (rec, reply) = if !health.settled() {
            match rx.try_recv() {
                Ok(next) => next,
                Err(mpsc::error::TryRecvError::Empty) => {
                    nap(&rx);
                    if rx.is_empty() && !rx.is_closed() {
                        health.record(log.probe().is_ok());
                    }
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
        } else {
            match rx.blocking_recv() {
                Some(next) => next,
                None => break,
            }
        };
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
        let outcome = log.append_batch(std::mem::take(&mut records));
        health.record(outcome.is_ok());
        match outcome {
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

/// The `interval` writer, shared by every handle.
struct JournalWriter {
    state: Mutex<Journaled>,
    /// Wakes the ticker when the open segment's first record sets its due time.
    due_set: Condvar,
    interval: Duration,
    bounds: Bounds,
    /// Signalled by the committer after each commit: appends waiting for room try again.
    room: Arc<Notify>,
    /// Closed segments handed to the committer and not yet committed.
    queued: Arc<AtomicUsize>,
    /// [`AuditWriter`]'s health: a journal that cannot be written, or a committer that is
    /// gone, counts as a refused commit.
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
        if !st.pending.is_empty() && self.queued.load(Ordering::Acquire) >= self.bounds.queued {
            return Rotation::QueueFull;
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
async fn append_journaled(
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
        let now = Instant::now();
        let wait = match st.due {
            Some(due) if due <= now => {
                if !matches!(w.close_segment(&mut st), Rotation::Done) {
                    st.due = Some(now + w.interval);
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
trait SealedLog: Send + Sync {
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
struct Committer {
    log: Arc<dyn SealedLog>,
    room: Arc<Notify>,
    queued: Arc<AtomicUsize>,
    interval: Duration,
    /// [`AuditWriter`]'s health.
    health: Arc<Health>,
}

impl Committer {
    /// Each closed segment's records committed to the store (one `fsync`), in order, then
    /// the segment deleted. A failed commit is retried after an interval; the segment
    /// keeps the records meanwhile. Until the store has [`SETTLE`]d after a failure, an
    /// idle committer probes it every [`PROBE_EVERY`], as the `commit` writer does.
    fn run(&self, rx: &std::sync::mpsc::Receiver<Segment>) {
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

#[cfg(test)]
#[path = "writer_tests.rs"]
pub(super) mod tests;
