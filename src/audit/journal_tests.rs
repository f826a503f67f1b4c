//! The `interval` policy: answers before the commit, the commit within the interval, and
//! the replay of a journal that a crashed run left.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::journal::{JOURNAL_FILE, Journal, recover};
use super::{AuditLog, AuditRecord, AuditSync, AuditWriter, ChainMark, NewRecord, RedbAuditLog};
use crate::store::Store;

fn dir() -> PathBuf {
    let d = crate::testutil::fresh_dir("journal-unit");
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

fn rec(i: u64) -> NewRecord {
    NewRecord {
        time_ms: 1_700_000_000_000 + i,
        actor: "A3300010001".to_owned(),
        action: "verifyCode".to_owned(),
        subject: None,
        purpose: "verification".to_owned(),
        result: "0".to_owned(),
        loss: Vec::new(),
        request_id: format!("req-{i}"),
    }
}

/// Seals `n` records after `head`, the way the writer does.
fn sealed(head: ChainMark, n: u64) -> Vec<AuditRecord> {
    let mut h = head;
    (1..=n)
        .map(|i| {
            let r = AuditRecord::seal(h.seq + 1, h.hash, rec(i)).expect("seal");
            h = ChainMark::of(&r);
            r
        })
        .collect()
}

/// The `interval` writer of the gateway (replay first, default bounds) over a journal in
/// `dir`.
fn interval_writer(log: &Arc<RedbAuditLog>, dir: &std::path::Path, ms: u64) -> AuditWriter {
    AuditWriter::start_embedded(
        Arc::clone(log),
        AuditSync::Interval(Duration::from_millis(ms)),
        &dir.join(JOURNAL_FILE),
    )
    .expect("writer")
}

#[tokio::test]
async fn interval_answers_from_the_journal_and_commits_within_the_interval() {
    let d = dir();
    let log = Arc::new(RedbAuditLog::new(Store::open(&d).expect("store")));
    let w = interval_writer(&log, &d, 300);
    for i in 1..=10 {
        assert_eq!(w.append(rec(i)).await.expect("append").seq, i);
    }
    // Answered, in the journal's open segment, not yet in the store.
    assert_eq!(log.head().expect("head"), None);
    let journal_len = std::fs::metadata(super::journal::segment_path(&d.join(JOURNAL_FILE), 1))
        .expect("journal")
        .len();
    assert!(
        journal_len > 10 * 64,
        "journal holds the frames: {journal_len} bytes"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(log.head().expect("head").map(|m| m.seq), Some(10));
    // The committed segment is gone; the writer writes the next one.
    let base = d.join(JOURNAL_FILE);
    assert!(!super::journal::segment_path(&base, 1).exists());
    assert!(super::journal::segment_path(&base, 2).exists());
    let report = log.verify().expect("verify");
    assert!(report.ok && report.records == 10, "{report:?}");
    // Appends go on from the committed head.
    assert_eq!(w.append(rec(11)).await.expect("append").seq, 11);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_crashed_runs_journal_is_replayed_and_a_torn_tail_discarded() {
    let d = dir();
    let path = d.join(JOURNAL_FILE);
    let log = RedbAuditLog::new(Store::open(&d).expect("store"));
    // Three records committed, then five more that reached only the journal; the journal
    // also still holds the three (its emptying was lost), and ends in half a frame.
    let first = sealed(ChainMark::GENESIS, 3);
    log.commit_sealed(&first).expect("commit");
    let head = ChainMark::of(first.last().expect("three"));
    let more = sealed(head, 5);
    let mut j = Journal::open(&path).expect("journal");
    j.append(&first).expect("write");
    j.append(&more).expect("write");
    drop(j);
    let mut bytes = std::fs::read(&path).expect("read");
    let whole = bytes.len();
    bytes.extend_from_slice(&200u32.to_be_bytes());
    bytes.extend_from_slice(&[7u8; 50]);
    std::fs::write(&path, &bytes).expect("write torn tail");

    let r = recover(&log, &path).expect("recover");
    assert_eq!((r.replayed, r.already_stored), (5, 3));
    assert_eq!(r.discarded_bytes as usize, bytes.len() - whole);
    // The torn tail is kept aside, not lost.
    let aside = std::fs::read(super::journal::discarded_path(&path)).expect("kept aside");
    assert_eq!(aside, bytes[whole..]);
    // Retention leaves it to a later run, whatever its clock dated it.
    assert!(super::journal::set_aside_by_this_process(
        &super::journal::discarded_path(&path)
    ));
    assert_eq!(log.head().expect("head").map(|m| m.seq), Some(8));
    let report = log.verify().expect("verify");
    assert!(report.ok && report.records == 8, "{report:?}");
    assert!(!path.exists(), "a replayed journal is removed");
    // A second replay finds nothing.
    assert_eq!(recover(&log, &path).expect("again").replayed, 0);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn segments_are_replayed_in_order_across_files() {
    let d = dir();
    let base = d.join(JOURNAL_FILE);
    let log = RedbAuditLog::new(Store::open(&d).expect("store"));
    let all = sealed(ChainMark::GENESIS, 9);
    // Three segments as a crashed writer leaves them: the committer had not reached any.
    for (n, part) in all.chunks(3).enumerate() {
        let mut j =
            Journal::open(&super::journal::segment_path(&base, n as u64 + 1)).expect("segment");
        j.append(part).expect("write");
    }
    let r = recover(&log, &base).expect("recover");
    assert_eq!((r.replayed, r.discarded_bytes), (9, 0));
    assert!(log.verify().expect("verify").ok);
    for n in 1..=3 {
        assert!(!super::journal::segment_path(&base, n).exists());
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_journal_that_does_not_continue_the_chain_is_not_replayed() {
    let d = dir();
    let path = d.join(JOURNAL_FILE);
    let log = RedbAuditLog::new(Store::open(&d).expect("store"));
    log.commit_sealed(&sealed(ChainMark::GENESIS, 2))
        .expect("commit");
    // Records sealed on another chain (a journal from a different store).
    let foreign = sealed(
        ChainMark {
            seq: 2,
            hash: [9; 32],
        },
        3,
    );
    let mut j = Journal::open(&path).expect("journal");
    j.append(&foreign).expect("write");
    drop(j);
    let r = recover(&log, &path).expect("recover");
    assert_eq!(r.replayed, 0);
    assert!(r.discarded_bytes > 0);
    assert!(log.verify().expect("verify").ok);
    assert_eq!(log.head().expect("head").map(|m| m.seq), Some(2));
    let _ = std::fs::remove_dir_all(&d);
}

/// An `interval` writer with a journal in `dir`, at most `pending` records to a segment and
/// `queued` segments waiting for the committer, and an interval long enough that only
/// these bounds close segments.
fn bounded(
    log: &Arc<RedbAuditLog>,
    dir: &std::path::Path,
    pending: usize,
    queued: usize,
) -> AuditWriter {
    AuditWriter::start_journaled(
        Arc::clone(log),
        Duration::from_secs(60),
        &dir.join(JOURNAL_FILE),
        1,
        super::writer::Bounds { pending, queued },
    )
    .expect("writer")
}

/// Polls until the store's head reaches `seq` (the committer works on its own thread).
async fn committed_through(log: &RedbAuditLog, seq: u64) -> bool {
    for _ in 0..200 {
        if log.head().expect("head").map(|m| m.seq) == Some(seq) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_from_many_tasks_take_consecutive_places_in_one_chain() {
    let d = dir();
    let log = Arc::new(RedbAuditLog::new(Store::open(&d).expect("store")));
    let w = interval_writer(&log, &d, 5);
    assert_eq!(
        super::writer::tests::append_from_tasks(&w, 400, rec).await,
        (1..=400).collect::<Vec<u64>>()
    );
    // Committed within a few intervals, as one valid chain, and the journal emptied.
    assert!(committed_through(&log, 400).await);
    let report = log.verify().expect("verify");
    assert!(report.ok && report.records == 400, "{report:?}");
    drop(w);
    // The committer deletes a segment just after its commit: wait for that too.
    let journal_bytes = || -> u64 {
        std::fs::read_dir(&d)
            .expect("dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(JOURNAL_FILE))
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
            .sum()
    };
    for _ in 0..200 {
        if journal_bytes() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(journal_bytes(), 0, "committed segments are deleted");
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn a_full_journal_makes_appends_wait_for_the_committer_and_loses_nothing() {
    let d = dir();
    let store = Store::open(&d).expect("store");
    let log = Arc::new(RedbAuditLog::new(store.clone()));
    // Three records to a segment, one segment in the committer's queue.
    let w = bounded(&log, &d, 3, 1);
    // The disk is "slow": a write transaction held here stalls the committer's commit.
    let stall = store.db().begin_write().expect("write transaction");
    for i in 1..=6 {
        // Record 4 closes the first segment (queued: 1) and opens the second.
        assert_eq!(w.append(rec(i)).await.expect("append").seq, i);
    }
    let waiting = tokio::spawn({
        let w = w.clone();
        async move { w.append(rec(7)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the seventh record waits: its segment is full and the queue too"
    );
    assert_eq!(log.head().expect("head"), None);
    stall.abort().expect("abort");
    // The first segment commits, which makes room: the second goes to the committer and
    // the seventh record is written.
    assert_eq!(waiting.await.expect("task").expect("append").seq, 7);
    assert!(committed_through(&log, 6).await);
    // The last handle gone, the open segment's record is committed too.
    drop(w);
    assert!(committed_through(&log, 7).await);
    let report = log.verify().expect("verify");
    assert!(report.ok && report.records == 7, "{report:?}");
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn a_segment_that_cannot_be_opened_does_not_hold_appends_back() {
    let d = dir();
    let log = Arc::new(RedbAuditLog::new(Store::open(&d).expect("store")));
    let jdir = d.join("journal");
    std::fs::create_dir_all(&jdir).expect("mkdir");
    let w = bounded(&log, &jdir, 2, 4);
    for i in 1..=2 {
        assert_eq!(w.append(rec(i)).await.expect("append").seq, i);
    }
    // The directory goes: the full segment cannot be followed by a new one. The record goes
    // on into the open segment (its file is still open) instead of waiting for a commit
    // that nothing would start.
    std::fs::remove_dir_all(&jdir).expect("rmdir");
    let third = tokio::time::timeout(Duration::from_secs(2), w.append(rec(3)))
        .await
        .expect("the append does not wait");
    assert_eq!(third.expect("append").seq, 3);
    // With the directory back, the next append closes the segment and all three commit.
    std::fs::create_dir_all(&jdir).expect("mkdir");
    assert_eq!(w.append(rec(4)).await.expect("append").seq, 4);
    assert!(committed_through(&log, 3).await);
    let _ = std::fs::remove_dir_all(&d);
}
