//! Tests of retention in the audit log, run against both backends: a purge removes a prefix
//! that verifies and moves the checkpoint; a changed, inserted or deleted record among the
//! retained ones is still detected, and so is a deletion at the start that bypasses the
//! checkpoint; a purge refuses to erase tampering; receipts list retained records only.

use std::sync::Arc;

use redb::ReadableTable;

use super::tests::{
    Harness, Redb, alice, assert_intact, assert_problem, backends, bob, fill, fill_plain, problems,
    rec,
};
use super::*;
use crate::store::tables::AUDIT_BY_SUBJECT;
use crate::store::{Store, StoreError};

// ---------------------------------------------------------------------------------------
// Purging a prefix.

#[test]
fn purge_leaves_a_verifiable_chain() {
    for log in backends() {
        let recs = fill(&*log, 10);
        let purged = log.purge_before(recs[4].time_ms).expect("purge");
        assert_eq!(purged, 4, "{}", log.name());
        let r = assert_intact(&*log);
        assert_eq!(r.records, 6);
        assert_eq!(r.checkpoint, ChainMark::of(&recs[3]));
        // Appending after a purge continues the chain.
        let next = log.append(rec(11)).expect("append");
        assert_eq!(next.seq, 11);
        assert_intact(&*log);
        // Purging again moves the checkpoint on.
        assert_eq!(log.purge_before(recs[7].time_ms).expect("purge"), 3);
        assert_intact(&*log);
    }
}

#[test]
fn purge_of_everything_then_append_verifies() {
    for log in backends() {
        fill(&*log, 5);
        assert_eq!(log.purge_before(u64::MAX).expect("purge"), 5);
        let r = assert_intact(&*log);
        assert_eq!((r.records, r.checkpoint.seq), (0, 5));
        assert_eq!(log.append(rec(6)).expect("append").seq, 6);
        assert_intact(&*log);
        assert!(log.receipt(&alice()).expect("receipt").is_empty());
    }
}

#[test]
fn purge_stops_at_the_first_record_not_due() {
    for log in backends() {
        let mut early = rec(1);
        early.time_ms = 100;
        let mut late = rec(2);
        late.time_ms = 300;
        let mut stepped_back = rec(3);
        stepped_back.time_ms = 150;
        for r in [early, late, stepped_back] {
            log.append(r).expect("append");
        }
        assert_eq!(log.purge_before(200).expect("purge"), 1, "{}", log.name());
        assert_eq!(log.raw_keys(), vec![2, 3]);
        assert_intact(&*log);
    }
}

#[test]
fn deleting_a_record_after_a_purge_is_still_detected() {
    for log in backends() {
        let recs = fill(&*log, 6);
        log.purge_before(recs[2].time_ms).expect("purge");
        log.raw_remove(3);
        let p = problems(&*log);
        assert_problem(&p, "seq 3: missing (deleted)", log.name());
        assert_problem(&p, "seq 4: chain break", log.name());
    }
}

// ---------------------------------------------------------------------------------------
// Tampering among the retained records.

#[test]
fn a_changed_retained_record_is_detected_after_a_purge() {
    for log in backends() {
        let recs = fill(&*log, 8);
        assert_eq!(log.purge_before(recs[3].time_ms).expect("purge"), 3);
        let mut r = AuditRecord::decode_stored(&log.raw_get(6).expect("seq 6")).expect("decode");
        r.actor = "A9999999999".to_owned();
        log.raw_put(6, &r.encode_stored());
        let p = problems(&*log);
        assert_problem(&p, "seq 6: hash mismatch", log.name());
        assert_eq!(p.len(), 1, "{}: {p:#?}", log.name());
    }
}

#[test]
fn an_inserted_retained_record_is_detected_after_a_purge() {
    for log in backends() {
        let recs = fill(&*log, 8);
        log.purge_before(recs[3].time_ms).expect("purge");
        for k in (6..=8).rev() {
            let bytes = log.raw_get(k).expect("record");
            log.raw_put(k + 1, &bytes);
        }
        let forged = AuditRecord::seal(6, recs[4].hash, rec(60)).expect("seal");
        log.raw_put(6, &forged.encode_stored());
        let p = problems(&*log);
        assert_problem(&p, "seq 7: the record inside says seq 6", log.name());
        assert_problem(&p, "seq 7: chain break", log.name());
        assert_problem(&p, "seq 9: beyond the head marker", log.name());
    }
}

#[test]
fn a_deleted_retained_record_is_detected_after_a_purge() {
    for log in backends() {
        let recs = fill(&*log, 8);
        log.purge_before(recs[3].time_ms).expect("purge");
        log.raw_remove(6);
        let p = problems(&*log);
        assert_problem(&p, "seq 6: missing (deleted)", log.name());
        assert_problem(&p, "seq 7: chain break", log.name());
    }
}

#[test]
fn deleting_the_oldest_records_without_the_checkpoint_is_detected() {
    for log in backends() {
        let recs = fill(&*log, 8);
        log.purge_before(recs[2].time_ms).expect("purge");
        // The intruder removes the two oldest retained records but leaves the checkpoint
        // at seq 2: the chain no longer starts where the checkpoint says.
        log.raw_remove(3);
        log.raw_remove(4);
        let p = problems(&*log);
        assert_problem(&p, "seq 3..=4: missing (deleted)", log.name());
        assert_problem(
            &p,
            "seq 5: chain break: prev_hash does not match the hash of the purge checkpoint (seq 2)",
            log.name(),
        );
    }
}

#[test]
fn deleting_the_oldest_records_of_an_unpurged_log_is_detected() {
    for log in backends() {
        fill(&*log, 5);
        log.raw_remove(1);
        log.raw_remove(2);
        let p = problems(&*log);
        assert_problem(&p, "seq 1..=2: missing (deleted)", log.name());
        assert_problem(
            &p,
            "seq 3: chain break: prev_hash does not match the hash of the start of the chain",
            log.name(),
        );
    }
}

#[test]
fn deleting_every_retained_record_is_detected() {
    for log in backends() {
        let recs = fill(&*log, 5);
        log.purge_before(recs[1].time_ms).expect("purge");
        for k in 2..=5 {
            log.raw_remove(k);
        }
        assert_problem(
            &problems(&*log),
            "seq 2..=5: missing at the tail",
            log.name(),
        );
    }
}

#[test]
fn a_checkpoint_with_another_hash_is_detected() {
    for log in backends() {
        let recs = fill(&*log, 6);
        log.purge_before(recs[2].time_ms).expect("purge");
        log.raw_set_checkpoint(ChainMark {
            seq: 2,
            hash: recs[0].hash,
        });
        assert_problem(
            &problems(&*log),
            "seq 3: chain break: prev_hash does not match the hash of the purge checkpoint (seq 2)",
            log.name(),
        );
    }
}

#[test]
fn a_checkpoint_moved_back_is_detected() {
    for log in backends() {
        let recs = fill(&*log, 6);
        log.purge_before(recs[2].time_ms).expect("purge");
        log.raw_set_checkpoint(ChainMark::of(&recs[0]));
        let p = problems(&*log);
        assert_problem(&p, "seq 2: missing (deleted)", log.name());
        assert_problem(&p, "seq 3: chain break", log.name());
    }
}

#[test]
fn a_purged_record_put_back_is_detected() {
    for log in backends() {
        let recs = fill(&*log, 5);
        let second = log.raw_get(2).expect("seq 2");
        log.purge_before(recs[2].time_ms).expect("purge");
        log.raw_put(2, &second);
        assert_problem(
            &problems(&*log),
            "seq 2: present at or before the purge checkpoint (seq 2)",
            log.name(),
        );
    }
}

// ---------------------------------------------------------------------------------------
// A purge never erases the evidence of tampering.

fn assert_refused(result: Result<u64, StoreError>, needle: &str, backend: &str) {
    match result {
        Err(StoreError::Corrupt { reason, .. }) => {
            assert!(reason.contains(needle), "{backend}: {reason}");
        }
        other => panic!("{backend}: purge not refused: {other:?}"),
    }
}

#[test]
fn purge_stops_before_a_changed_record() {
    for log in backends() {
        let recs = fill(&*log, 8);
        let mut r = AuditRecord::decode_stored(&log.raw_get(3).expect("seq 3")).expect("decode");
        r.actor = "A9999999999".to_owned();
        log.raw_put(3, &r.encode_stored());
        assert_refused(
            log.purge_before(recs[5].time_ms),
            "seq 3: hash mismatch",
            log.name(),
        );
        // The intact records before it went; it and everything after it stayed.
        assert_eq!(
            log.raw_keys(),
            (3..=8).collect::<Vec<_>>(),
            "{}",
            log.name()
        );
        let report = log.verify().expect("verify");
        assert_eq!(report.checkpoint, ChainMark::of(&recs[1]), "{}", log.name());
        assert_problem(&report.problems, "seq 3: hash mismatch", log.name());
    }
}

#[test]
fn purge_keeps_the_chain_break_after_a_rehashed_record() {
    for log in backends() {
        let recs = fill(&*log, 8);
        // A record changed and re-hashed is consistent in itself; its successor's link
        // is what betrays it, and the purge stops there.
        let mut r = AuditRecord::decode_stored(&log.raw_get(3).expect("seq 3")).expect("decode");
        r.result = "1006".to_owned();
        r.hash = r.compute_hash();
        log.raw_put(3, &r.encode_stored());
        assert_refused(
            log.purge_before(recs[5].time_ms),
            "seq 4: chain break",
            log.name(),
        );
        assert_eq!(
            log.raw_keys(),
            (4..=8).collect::<Vec<_>>(),
            "{}",
            log.name()
        );
        assert_problem(&problems(&*log), "seq 4: chain break", log.name());
    }
}

#[test]
fn purge_refuses_to_move_the_checkpoint_over_a_deletion() {
    for log in backends() {
        let recs = fill(&*log, 6);
        log.purge_before(recs[1].time_ms).expect("purge");
        log.raw_remove(2);
        assert_refused(
            log.purge_before(recs[4].time_ms),
            "seq 2: missing (deleted)",
            log.name(),
        );
        assert_eq!(log.raw_keys(), vec![3, 4, 5, 6], "{}", log.name());
        assert_problem(&problems(&*log), "seq 2: missing (deleted)", log.name());
    }
}

#[test]
fn purge_refuses_a_log_whose_first_records_were_deleted() {
    for log in backends() {
        let recs = fill(&*log, 5);
        log.raw_remove(1);
        assert_refused(
            log.purge_before(recs[3].time_ms),
            "seq 1: missing (deleted)",
            log.name(),
        );
        assert_eq!(log.raw_keys(), vec![2, 3, 4, 5], "{}", log.name());
        assert_eq!(
            log.verify().expect("verify").checkpoint,
            ChainMark::GENESIS,
            "{}",
            log.name()
        );
    }
}

#[test]
fn purge_refuses_an_unreadable_record() {
    for log in backends() {
        let recs = fill(&*log, 4);
        log.raw_put(2, b"garbage");
        let err = log.purge_before(recs[3].time_ms).expect_err("refused");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert_eq!(log.raw_keys(), vec![2, 3, 4], "{}", log.name());
        assert_problem(&problems(&*log), "seq 2: unreadable", log.name());
    }
}

// ---------------------------------------------------------------------------------------
// Receipts, persistence and concurrency.

#[test]
fn receipt_lists_only_retained_records_after_a_purge() {
    for log in backends() {
        let recs = fill(&*log, 12);
        assert_eq!(log.purge_before(recs[5].time_ms).expect("purge"), 5);
        let seqs = |p: Pseudonym| {
            log.receipt(&p)
                .expect("receipt")
                .iter()
                .map(|r| r.seq)
                .collect::<Vec<_>>()
        };
        assert_eq!(seqs(alice()), vec![7, 9, 11], "{}", log.name());
        assert_eq!(seqs(bob()), vec![8, 12], "{}", log.name());
    }
}

#[test]
fn redb_purge_removes_the_subject_index_entries() {
    let h = Redb::new();
    let recs = fill(&h, 8);
    h.purge_before(recs[3].time_ms).expect("purge");
    let txn = h.store.db().begin_read().expect("read");
    let index = txn.open_table(AUDIT_BY_SUBJECT).expect("table");
    let mut seqs: Vec<u64> = index
        .iter()
        .expect("iter")
        .map(|e| e.expect("entry").0.value().1)
        .collect();
    seqs.sort_unstable();
    // 4 and 8 about bob, 5 and 7 about alice, 6 about nobody.
    assert_eq!(seqs, vec![4, 5, 7, 8]);
}

#[test]
fn redb_purge_survives_a_reopen() {
    let dir =
        std::env::temp_dir().join(format!("hutong-audit-purge-reopen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let recs = {
        let log = RedbAuditLog::new(Store::open(&dir).expect("open"));
        let recs = fill_plain(&log, 6);
        assert_eq!(log.purge_before(recs[3].time_ms).expect("purge"), 3);
        recs
    };
    let log = RedbAuditLog::new(Store::open(&dir).expect("reopen"));
    let report = log.verify().expect("verify");
    assert!(report.ok, "{:#?}", report.problems);
    assert_eq!(report.checkpoint, ChainMark::of(&recs[2]));
    assert_eq!(report.records, 3);
    let mine: Vec<u64> = log
        .receipt(&alice())
        .expect("receipt")
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(mine, vec![5]);
    assert_eq!(log.append(rec(7)).expect("append").seq, 7);
    assert!(log.verify().expect("verify").ok);
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn redb_purges_more_than_one_batch() {
    // More records than one purge transaction takes (10 000), in one append commit.
    const N: u64 = 10_050;
    let h = Redb::new();
    let results = h
        .log
        .append_batch((1..=N).map(rec).collect())
        .expect("append batch");
    assert!(results.iter().all(Result::is_ok));
    let cutoff = rec(N - 10).time_ms;
    assert_eq!(h.purge_before(cutoff).expect("purge"), N - 11);
    let report = assert_intact(&h);
    assert_eq!(report.checkpoint.seq, N - 11);
    assert_eq!(report.records, 11);
}

#[test]
fn purging_alongside_appends_keeps_the_chain_valid() {
    const THREADS: u64 = 4;
    const EACH: u64 = 30;
    let logs: Vec<Arc<dyn Harness>> = vec![Arc::new(MemoryAuditLog::new()), Arc::new(Redb::new())];
    for log in logs {
        let appenders: Vec<_> = (0..THREADS)
            .map(|t| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        log.append(rec(t * 100 + i)).expect("append");
                    }
                })
            })
            .collect();
        let purger = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut purged = 0;
                for round in 0..20u64 {
                    purged += log.purge_before(rec(round * 20).time_ms).expect("purge");
                }
                purged
            })
        };
        for a in appenders {
            a.join().expect("appender");
        }
        let purged = purger.join().expect("purger");
        let report = assert_intact(&*log);
        assert_eq!(report.records + purged, THREADS * EACH, "{}", log.name());
        assert_eq!(report.checkpoint.seq, purged, "{}", log.name());
    }
}
