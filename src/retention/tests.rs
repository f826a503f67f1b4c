//! Tests of retention: the policy as configured, one purge over a real store with each kind
//! of state, a purge that fails one step and does the others, and the periodic task on a
//! paused clock.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::audit::{NewRecord, Pseudonym};
use crate::corrections::{CorrectionStatus, CorrectionTicket, OpenOutcome};
use crate::crypto::Sm4Key;
use crate::idempotency::{IdempotencyStore, PutOutcome, RedbIdempotencyStore, StoredResponse};
use crate::store::tables::AUDIT_RECORDS;
use crate::trust::RegionCode;
use redb::ReadableTable as _;

/// "Now" in these tests: 2026-11-17 in Unix milliseconds.
const NOW: u64 = 1_795_000_000_000;

struct TempStore {
    dir: PathBuf,
    store: Store,
}

impl TempStore {
    fn new() -> Self {
        let dir = crate::testutil::fresh_dir("retention-unit");
        let store = Store::open(&dir).expect("open store");
        Self { dir, store }
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn days(n: u64) -> u64 {
    n * DAY_MS
}

fn alice() -> Pseudonym {
    Pseudonym([0xa1; 32])
}

/// An audit record at `time_ms`, about alice when `mine`.
fn record(time_ms: u64, mine: bool) -> NewRecord {
    NewRecord {
        time_ms,
        actor: "A3300010001".to_owned(),
        action: "queryHealthInfo".to_owned(),
        subject: mine.then(alice),
        purpose: "venue-entry".to_owned(),
        result: "0".to_owned(),
        loss: Vec::new(),
        request_id: format!("req-{time_ms}"),
    }
}

/// Fills `store` with state of every kind, some due at [`NOW`] under the default policy
/// and some not:
/// - audit: 4 records older than 180 days, then 3 younger (2 of each about alice);
/// - idempotency: 2 records written more than a day ago, 1 an hour ago;
/// - corrections: closed 400 days ago (due), closed 10 days ago, open for 500 days.
fn populate(store: &Store) {
    let log = RedbAuditLog::new(store.clone());
    for (i, age) in [300, 250, 200, 181, 179, 30, 1].into_iter().enumerate() {
        log.append(record(NOW - days(age), i % 2 == 0))
            .expect("append");
    }
    let idem = RedbIdempotencyStore::new(store.clone(), Sm4Key::from_bytes(&[9; 16]).expect("key"));
    let resp = StoredResponse {
        code: "0".to_owned(),
        body: b"{}".to_vec(),
        fingerprint: [1; 32],
    };
    for (req, at) in [
        ("r1", NOW - days(3)),
        ("r2", NOW - days(1) - 1),
        ("r3", NOW - 3_600_000),
    ] {
        assert_eq!(
            idem.put("A3300010001", req, &resp, at).expect("put"),
            PutOutcome::Stored
        );
    }
    let tickets = RedbCorrectionStore::new(store.clone());
    let region = RegionCode::parse("330000").expect("region");
    for (id, opened, closed) in [
        ("old-closed", NOW - days(500), Some(NOW - days(400))),
        ("new-closed", NOW - days(20), Some(NOW - days(10))),
        ("old-open", NOW - days(500), None),
    ] {
        let t = CorrectionTicket::new(
            id,
            "A3300010001",
            region.clone(),
            Some(alice()),
            CorrectionStatus::Accepted,
            opened,
        );
        assert_eq!(tickets.open(&t).expect("open"), OpenOutcome::Opened);
        if let Some(at) = closed {
            tickets
                .advance("330000", id, CorrectionStatus::Done, at, None)
                .expect("close");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The policy.

#[test]
fn the_policy_has_documented_defaults() {
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        retention: RetentionPolicy,
    }
    let empty: File = toml::from_str("").expect("parse");
    let table: File = toml::from_str("[retention]\n").expect("parse");
    for p in [empty.retention, table.retention, RetentionPolicy::default()] {
        assert_eq!(p.audit_days.get(), DEFAULT_AUDIT_DAYS);
        assert_eq!(
            p.corrections_closed_days.get(),
            DEFAULT_CORRECTIONS_CLOSED_DAYS
        );
        assert_eq!(
            p.interval(),
            Duration::from_secs(DEFAULT_PURGE_INTERVAL_SECS)
        );
    }
}

#[test]
fn the_policy_parses_and_refuses_zero_and_unknown_keys() {
    let p: RetentionPolicy =
        toml::from_str("audit_days = 30\ncorrections_closed_days = 90\npurge_interval_secs = 60\n")
            .expect("parse");
    assert_eq!(p.audit_days.get(), 30);
    assert_eq!(p.corrections_closed_days.get(), 90);
    assert_eq!(p.interval(), Duration::from_secs(60));
    for bad in [
        "audit_days = 0",
        "corrections_closed_days = 0",
        "purge_interval_secs = 0",
        "audit_days = -1",
        "audit_day = 30",
        "idempotency_hours = 24",
    ] {
        assert!(
            toml::from_str::<RetentionPolicy>(bad).is_err(),
            "{bad} accepted"
        );
    }
}

#[test]
fn cutoffs_count_whole_days_back_and_saturate() {
    let p = RetentionPolicy::default();
    assert_eq!(p.audit_cutoff_ms(NOW), NOW - days(180));
    assert_eq!(p.corrections_cutoff_ms(NOW), NOW - days(365));
    assert_eq!(p.audit_cutoff_ms(days(10)), 0);
    let longest = RetentionPolicy {
        audit_days: NonZeroU32::MAX,
        ..p
    };
    assert_eq!(longest.audit_cutoff_ms(NOW), 0);
}

#[test]
fn the_report_reads_as_a_sentence() {
    let r = PurgeReport {
        audit_records: 4,
        idempotency_records: 2,
        correction_tickets: 1,
        discarded_journal: false,
    };
    assert_eq!(
        r.to_string(),
        "purged 4 audit record(s), 2 expired idempotency record(s), 1 closed correction ticket(s)"
    );
}

// ---------------------------------------------------------------------------------------
// One purge.

#[test]
fn purge_removes_what_the_policy_no_longer_keeps() {
    let t = TempStore::new();
    populate(&t.store);
    let report = purge(&t.store, &RetentionPolicy::default(), NOW).expect("purge");
    assert_eq!(
        report,
        PurgeReport {
            audit_records: 4,
            idempotency_records: 2,
            correction_tickets: 1,
            discarded_journal: false,
        }
    );

    let log = RedbAuditLog::new(t.store.clone());
    let v = log.verify().expect("verify");
    assert!(v.ok, "{:#?}", v.problems);
    assert_eq!((v.records, v.checkpoint.seq), (3, 4));
    let mine: Vec<u64> = log
        .receipt(&alice())
        .expect("receipt")
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(mine, vec![5, 7]);

    let tickets = RedbCorrectionStore::new(t.store.clone());
    assert!(tickets.get("330000", "old-closed").expect("get").is_none());
    assert!(tickets.get("330000", "new-closed").expect("get").is_some());
    assert!(tickets.get("330000", "old-open").expect("get").is_some());

    // A second pass at the same time has nothing left to do.
    assert_eq!(
        purge(&t.store, &RetentionPolicy::default(), NOW).expect("purge"),
        PurgeReport::default()
    );
}

#[test]
fn a_failing_step_does_not_stop_the_others() {
    let t = TempStore::new();
    populate(&t.store);
    // Tamper with the oldest audit record: the audit purge refuses to erase it.
    let txn = t.store.db().begin_write().expect("write");
    {
        let mut records = txn.open_table(AUDIT_RECORDS).expect("table");
        let mut r = crate::audit::AuditRecord::decode_stored(
            records.get(1).expect("get").expect("seq 1").value(),
        )
        .expect("decode");
        r.actor = "A9999999999".to_owned();
        records
            .insert(1, r.encode_stored().as_slice())
            .expect("insert");
    }
    txn.commit().expect("commit");

    let err = purge(&t.store, &RetentionPolicy::default(), NOW).expect_err("incomplete");
    assert_eq!(
        err.done,
        PurgeReport {
            audit_records: 0,
            idempotency_records: 2,
            correction_tickets: 1,
            discarded_journal: false,
        }
    );
    assert!(
        matches!(
            err.failures.as_slice(),
            [PurgeFailure::Audit(StoreError::Corrupt { .. })]
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("seq 1: hash mismatch"), "{text}");
    assert!(text.contains("purged 0 audit record(s)"), "{text}");
    // The evidence is still there for `hutong audit verify`.
    let v = RedbAuditLog::new(t.store.clone()).verify().expect("verify");
    assert!(!v.ok);
    assert_eq!(v.records, 7);
}

// ---------------------------------------------------------------------------------------
// The periodic task.

#[tokio::test(start_paused = true)]
async fn the_periodic_task_purges_at_once_and_then_every_interval() {
    let t = TempStore::new();
    let store = t.store.clone();
    populate(&store);
    let now = Arc::new(AtomicU64::new(NOW));
    let clock = Arc::clone(&now);
    let start = tokio::time::Instant::now();
    let task = spawn_with_clock(
        store.clone(),
        RetentionPolicy::default(),
        Duration::from_secs(60),
        move || clock.load(Ordering::SeqCst),
    );
    let checkpoint = |store: &Store| {
        RedbAuditLog::new(store.clone())
            .verify()
            .expect("verify")
            .checkpoint
            .seq
    };
    // The first pass runs at once. The blocking pool runs on real threads, so give it
    // turns of the paused clock until it is done (each sleep returns at once).
    for _ in 0..1_000 {
        if checkpoint(&store) == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(checkpoint(&store), 4);
    // Thirty days later, the record 179 days old is due too, at the next tick.
    now.store(NOW + days(30), Ordering::SeqCst);
    tokio::time::sleep_until(start + Duration::from_secs(59)).await;
    assert_eq!(checkpoint(&store), 4, "no purge before the interval");
    for _ in 0..1_000 {
        if checkpoint(&store) == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(checkpoint(&store), 5);
    task.abort();
}

/// The journal's discarded tail holds whole records a start could not replay (with their
/// subjects' pseudonyms): it outlived every purge. It goes once its last write is older
/// than the audit period, and not before.
#[test]
fn the_journals_discarded_tail_goes_after_the_audit_period() {
    let t = TempStore::new();
    let tail =
        crate::audit::journal::discarded_path(&t.dir.join(crate::audit::journal::JOURNAL_FILE));
    std::fs::write(&tail, b"a torn frame").unwrap();
    let written = std::time::UNIX_EPOCH + Duration::from_millis(NOW);
    std::fs::File::options()
        .write(true)
        .open(&tail)
        .unwrap()
        .set_modified(written)
        .unwrap();
    let policy = RetentionPolicy::default();
    let within = NOW + u64::from(policy.audit_days.get()) * 86_400_000 - 1;
    assert!(
        !purge(&t.store, &policy, within)
            .expect("purge")
            .discarded_journal
    );
    assert!(tail.exists());
    let after = NOW + u64::from(policy.audit_days.get()) * 86_400_000 + 1;
    let report = purge(&t.store, &policy, after).expect("purge");
    assert!(report.discarded_journal, "{report}");
    assert!(!tail.exists());
    assert!(
        report
            .to_string()
            .ends_with("and the audit journal's discarded tail")
    );
}
