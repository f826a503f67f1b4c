//! Receipts, the redb index and reopen, and concurrent appends.

use super::*;

// ---------------------------------------------------------------------------------------
// Receipts.

#[test]
fn tail_gives_the_last_records_oldest_first() {
    for log in backends() {
        let all = fill(&*log, 7);
        let seqs = |v: Vec<AuditRecord>| v.into_iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(
            seqs(log.tail(3).expect("tail")),
            vec![5, 6, 7],
            "{}",
            log.name()
        );
        assert_eq!(seqs(log.tail(100).expect("tail")).len(), all.len());
        assert!(log.tail(0).expect("tail").is_empty());
    }
}

#[test]
fn receipt_lists_exactly_the_holders_records() {
    for log in backends() {
        fill(&*log, 12);
        let mine: Vec<u64> = log
            .receipt(&alice())
            .expect("receipt")
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(mine, vec![1, 3, 5, 7, 9, 11], "{}", log.name());
        let bobs: Vec<u64> = log
            .receipt(&bob())
            .expect("receipt")
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(bobs, vec![4, 8, 12], "{}", log.name());
        let nobody = pseudonym(&secret(), "10", "110105194912310045");
        assert!(log.receipt(&nobody).expect("receipt").is_empty());
    }
}

#[test]
fn redb_detects_a_record_hidden_from_the_index() {
    let h = Redb::new();
    fill(&h, 4);
    let txn = h.store.db().begin_write().expect("write");
    txn.open_table(AUDIT_BY_SUBJECT)
        .expect("table")
        .remove((alice().0, 3))
        .expect("remove");
    txn.commit().expect("commit");
    assert_eq!(
        h.receipt(&alice())
            .expect("receipt")
            .iter()
            .map(|r| r.seq)
            .collect::<Vec<_>>(),
        vec![1]
    );
    let p = problems(&h);
    assert_problem(&p, "seq 3: missing from the subject index", "redb");
}

#[test]
fn redb_records_survive_a_reopen() {
    let dir = std::env::temp_dir().join(format!("hutong-audit-reopen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let log = RedbAuditLog::new(Store::open(&dir).expect("open"));
        fill_plain(&log, 3);
    }
    let log = RedbAuditLog::new(Store::open(&dir).expect("reopen"));
    let report = log.verify().expect("verify");
    assert!(report.ok, "{:#?}", report.problems);
    assert_eq!(report.head.map(|h| h.seq), Some(3));
    assert_eq!(log.head().expect("head"), report.head);
    // Same inputs, same chain: the hashes depend on neither the backend nor the run.
    let memory = MemoryAuditLog::new();
    let recs = fill_plain(&memory, 3);
    assert_eq!(report.head.map(|h| h.hash), Some(recs[2].hash));
    assert_eq!(log.append(rec(4)).expect("append").seq, 4);
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------
// Concurrency.

#[test]
fn concurrent_appends_keep_the_chain_valid() {
    const THREADS: u64 = 8;
    const EACH: u64 = 40;
    let logs: Vec<Arc<dyn AuditLog>> = vec![Arc::new(MemoryAuditLog::new()), Arc::new(Redb::new())];
    for log in logs {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    (0..EACH)
                        .map(|i| log.append(rec(t * 100 + i)).expect("append").seq)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seqs: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=THREADS * EACH).collect::<Vec<_>>());
        let report = log.verify().expect("verify");
        assert!(report.ok, "{:#?}", report.problems);
        assert_eq!(report.records, THREADS * EACH);
    }
}
