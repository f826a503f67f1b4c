use std::sync::atomic::AtomicUsize;

use tokio::sync::Notify;

use super::*;
use crate::audit::MemoryAuditLog;

fn rec(i: u64) -> NewRecord {
    NewRecord {
        time_ms: 1_700_000_000_000 + i,
        actor: format!("app-{}", i % 7),
        action: "verifyCode".to_owned(),
        subject: None,
        purpose: "test".to_owned(),
        result: "0".to_owned(),
        loss: Vec::new(),
        request_id: format!("r{i}"),
    }
}

/// Appends `n` records made by `rec`, each from a task of its own, all at once; their
/// sequence numbers, sorted.
pub(in crate::audit) async fn append_from_tasks(
    w: &AuditWriter,
    n: u64,
    rec: fn(u64) -> NewRecord,
) -> Vec<u64> {
    let tasks: Vec<_> = (1..=n)
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
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_consecutive_numbers_and_a_valid_chain() {
    let log: Arc<dyn AuditLog> = Arc::new(MemoryAuditLog::new());
    let w = AuditWriter::start(Arc::clone(&log)).expect("start");
    assert_eq!(
        append_from_tasks(&w, 500, rec).await,
        (1..=500).collect::<Vec<u64>>()
    );
    let report = w.log().verify().expect("verify");
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 500);
}

/// A store that refuses every commit while `down` is set; with `panics`, a commit panics
/// (a bug in the store), and the writer thread dies with it.
struct Flaky {
    log: MemoryAuditLog,
    down: AtomicBool,
    panics: bool,
}

impl Flaky {
    fn new(down: bool) -> Arc<Self> {
        Arc::new(Self {
            log: MemoryAuditLog::new(),
            down: AtomicBool::new(down),
            panics: false,
        })
    }
}

impl AuditLog for Flaky {
    fn append(&self, rec: NewRecord) -> Result<AuditRecord, StoreError> {
        self.log.append(rec)
    }
    fn append_batch(
        &self,
        recs: Vec<NewRecord>,
    ) -> Result<Vec<Result<AuditRecord, StoreError>>, StoreError> {
        assert!(!self.panics, "a bug in the store");
        self.probe()?;
        self.log.append_batch(recs)
    }
    fn verify(&self) -> Result<crate::audit::VerifyReport, StoreError> {
        self.log.verify()
    }
    fn receipt(&self, subject: &crate::audit::Pseudonym) -> Result<Vec<AuditRecord>, StoreError> {
        self.log.receipt(subject)
    }
    fn tail(&self, n: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.log.tail(n)
    }
    fn purge_before(&self, time_ms: u64) -> Result<u64, StoreError> {
        self.log.purge_before(time_ms)
    }
    fn probe(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(StoreError::Db("no space left on device".into()));
        }
        Ok(())
    }
}

#[tokio::test]
async fn the_writer_is_unhealthy_while_the_store_refuses_commits() {
    let flaky = Flaky::new(false);
    let w = AuditWriter::start(Arc::clone(&flaky) as Arc<dyn AuditLog>).expect("start");
    assert!(w.healthy());
    assert_eq!(w.append(rec(1)).await.expect("append").seq, 1);
    // A record over its limit is the record's fault, not the store's.
    let mut big = rec(2);
    big.purpose = "x".repeat(crate::audit::MAX_FIELD_BYTES + 1);
    assert!(w.append(big).await.is_err());
    assert!(w.healthy());
    flaky.down.store(true, Ordering::Relaxed);
    assert!(w.append(rec(3)).await.is_err());
    assert!(!w.healthy(), "a refused commit");
    flaky.down.store(false, Ordering::Relaxed);
    assert_eq!(w.append(rec(4)).await.expect("append").seq, 2);
    assert!(!w.healthy(), "one commit is not yet a recovery");
    wait_until_healthy(&w).await;
}

/// Waits for `w` to count as healthy: a probe, then [`SETTLE`].
async fn wait_until_healthy(w: &AuditWriter) {
    let deadline = Instant::now() + PROBE_EVERY * 2 + SETTLE * 2;
    while !w.healthy() {
        assert!(
            Instant::now() < deadline,
            "the recovered store went unnoticed"
        );
        tokio::time::sleep(PROBE_EVERY / 5).await;
    }
}

#[tokio::test]
async fn the_writer_finds_a_recovered_store_without_traffic() {
    let flaky = Flaky::new(true);
    let w = AuditWriter::start(Arc::clone(&flaky) as Arc<dyn AuditLog>).expect("start");
    assert!(w.append(rec(1)).await.is_err());
    assert!(!w.healthy());
    // Still down: the probes fail, and the writer stays unhealthy.
    tokio::time::sleep(PROBE_EVERY * 3).await;
    assert!(!w.healthy());
    // The store recovers and no record comes (/ready keeps the traffic away): a probe
    // finds it.
    flaky.down.store(false, Ordering::Relaxed);
    wait_until_healthy(&w).await;
    assert_eq!(w.append(rec(2)).await.expect("append").seq, 1);
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

#[tokio::test]
async fn a_refusal_while_settling_starts_the_settling_again() {
    let flaky = Flaky::new(true);
    let w = AuditWriter::start(Arc::clone(&flaky) as Arc<dyn AuditLog>).expect("start");
    assert!(w.append(rec(1)).await.is_err());
    // Back for a moment (a probe succeeds), then refusing again (the next probe fails),
    // then back for good: ready only SETTLE after the last refusal.
    flaky.down.store(false, Ordering::Relaxed);
    tokio::time::sleep(PROBE_EVERY * 2).await;
    flaky.down.store(true, Ordering::Relaxed);
    tokio::time::sleep(PROBE_EVERY * 2).await;
    flaky.down.store(false, Ordering::Relaxed);
    let back = Instant::now();
    // Polled, not slept through: ready no sooner than SETTLE after the last refusal (a
    // probe may have seen it up to PROBE_EVERY before `back`). Settling from the first
    // return would be ready about SETTLE − 4 × PROBE_EVERY after `back`.
    wait_until_healthy(&w).await;
    let ready = back.elapsed();
    assert!(
        ready >= SETTLE - PROBE_EVERY,
        "ready {ready:?} after the store came back: the refusal while settling did not count"
    );
}

#[tokio::test]
async fn the_writer_is_unhealthy_once_its_thread_has_died() {
    let panicking = Flaky {
        log: MemoryAuditLog::new(),
        down: AtomicBool::new(false),
        panics: true,
    };
    let w = AuditWriter::start(Arc::new(panicking)).expect("start");
    assert!(w.healthy());
    assert!(
        w.append(rec(1)).await.is_err(),
        "the reply is lost with the thread"
    );
    // The thread's receiver is dropped as it unwinds, just after the reply's sender.
    let deadline = Instant::now() + Duration::from_secs(5);
    while w.healthy() {
        assert!(Instant::now() < deadline, "the dead thread went unnoticed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A sealed-record store that refuses while `down` is set (interval mode's committer).
struct FlakySealed {
    down: AtomicBool,
}

impl SealedLog for FlakySealed {
    fn commit_sealed(&self, _: &[AuditRecord]) -> Result<(), StoreError> {
        self.probe()
    }
    fn probe(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(StoreError::Db("no space left on device".into()));
        }
        Ok(())
    }
}

#[test]
fn the_committer_keeps_a_refused_segment_and_settles_after_the_store_recovers() {
    let sealed = Arc::new(FlakySealed {
        down: AtomicBool::new(true),
    });
    let health = Arc::new(Health::default());
    let committer = Committer {
        log: Arc::clone(&sealed) as Arc<dyn SealedLog>,
        room: Arc::new(Notify::new()),
        queued: Arc::new(AtomicUsize::new(1)),
        interval: Duration::from_millis(10),
        health: Arc::clone(&health),
    };
    let (tx, rx) = std::sync::mpsc::channel::<Segment>();
    let thread = std::thread::spawn(move || committer.run(&rx));
    let path = std::env::temp_dir().join(format!("hutong-committer-{}", std::process::id()));
    std::fs::write(&path, b"segment").expect("segment");
    tx.send(Segment {
        records: Vec::new(),
        path: path.clone(),
    })
    .expect("send");
    // Refused: the segment stays on disk, retried, and the writer is unhealthy.
    std::thread::sleep(Duration::from_millis(200));
    assert!(health.failing() && !health.settled());
    assert!(path.exists(), "a refused segment is kept");
    // The store takes commits again: the segment goes, and after SETTLE (the idle
    // committer probing meanwhile) the writer is healthy.
    sealed.down.store(false, Ordering::Relaxed);
    let deadline = Instant::now() + PROBE_EVERY * 2 + SETTLE * 2;
    while !health.settled() {
        assert!(Instant::now() < deadline, "the committer did not settle");
        std::thread::sleep(PROBE_EVERY / 5);
    }
    assert!(!path.exists(), "the committed segment is deleted");
    // The committer ends when the writer's side of the channel goes.
    drop(tx);
    thread.join().expect("the committer ends with its channel");
}
