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
//! write, and the writer thread used a sixth of the gateway's CPU on cached verifications.
//! A ticker thread closes the open segment when its interval is due and hands it to the
//! committer thread, which commits it to the store (one `fsync`) and deletes it. The
//! back-pressure is the committer's queue: with four segments waiting and 50,000 records
//! in the open one, appends wait for a commit. The journal's writer, the ticker and the
//! committer are in [`interval`].

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::store::StoreError;

use super::journal;
use super::{AuditLog, AuditRecord, NewRecord, RedbAuditLog};

mod interval;

#[cfg(test)]
use interval::{Committer, SealedLog, Segment};
use interval::{JournalWriter, append_journaled};

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
                kept_in = %journal::discarded_path(journal_path).display(),
                "audit journal replayed into the store; a torn tail is kept aside"
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
        let (writer, health) = interval::start(&log, interval, journal_path, next_segment, bounds)?;
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

#[cfg(test)]
#[path = "writer_tests.rs"]
pub(super) mod tests;
