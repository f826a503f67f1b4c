//! Purging, concurrency, the redb backend across a reopen, the stored form and the return codes.

use super::*;

// ---------------------------------------------------------------------------------------
// Purging.

#[test]
fn purge_removes_closed_tickets_past_the_cutoff_only() {
    each(|name, s| {
        // Old and open: kept, however old. Old and closed: purged. Closed recently: kept.
        open(s, &ticket("open-old", T0));
        open(s, &ticket("closed-old", T0));
        s.advance(R, "closed-old", Done, T0 + DAY_MS, None)
            .expect("done");
        open(s, &ticket("rejected-old", T0));
        s.advance(R, "rejected-old", Processing, T0 + 1, None)
            .expect("on");
        s.advance(R, "rejected-old", Rejected, T0 + 2 * DAY_MS, None)
            .expect("rejected");
        open(s, &ticket("closed-new", T0));
        s.advance(R, "closed-new", Done, T0 + 10 * DAY_MS, None)
            .expect("done");
        let mut born_closed = ticket("born-closed", T0 + DAY_MS);
        born_closed.status = Rejected;
        born_closed.history[0].status = Rejected;
        open(s, &born_closed);

        let cutoff = T0 + 5 * DAY_MS;
        assert_eq!(s.purge_closed_before(cutoff).expect("purge"), 3, "{name}");
        for id in ["closed-old", "rejected-old", "born-closed"] {
            assert_eq!(s.get(R, id).expect("get"), None, "{name}: {id}");
        }
        for id in ["open-old", "closed-new"] {
            assert!(s.get(R, id).expect("get").is_some(), "{name}: {id}");
        }
        assert_eq!(s.purge_closed_before(cutoff).expect("purge"), 0, "{name}");
        // The cutoff is exclusive.
        assert_eq!(
            s.purge_closed_before(T0 + 10 * DAY_MS).expect("purge"),
            0,
            "{name}"
        );
        assert_eq!(
            s.purge_closed_before(T0 + 10 * DAY_MS + 1).expect("purge"),
            1,
            "{name}"
        );
        // A purged id may be opened again.
        open(s, &ticket("closed-old", T0 + 20 * DAY_MS));
    });
}

// ---------------------------------------------------------------------------------------
// Concurrency.

#[test]
fn concurrent_advances_keep_the_history_consistent() {
    const ROUNDS: usize = 25;
    for (name, store) in backends() {
        for round in 0..ROUNDS {
            let id = format!("T-{round}");
            open(&*store, &ticket(&id, T0));
            let barrier = Arc::new(Barrier::new(2));
            // One thread reports PROCESSING then DONE; the other REJECTED. Whichever order
            // redb or the lock gives them, the history is one path of the state machine.
            let a = {
                let (store, barrier, id) = (Arc::clone(&store), Arc::clone(&barrier), id.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let p = store.advance(R, &id, Processing, T0 + 1, None);
                    let d = store.advance(R, &id, Done, T0 + 2, None);
                    (p.is_ok(), d.is_ok())
                })
            };
            let b = {
                let (store, barrier, id) = (Arc::clone(&store), Arc::clone(&barrier), id.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.advance(R, &id, Rejected, T0 + 1, None).is_ok()
                })
            };
            let (processed, done) = a.join().expect("thread a");
            let rejected = b.join().expect("thread b");
            let t = store.get(R, &id).expect("get").expect("ticket");
            t.check().expect("a consistent history");
            assert!(done != rejected, "{name}: exactly one close wins");
            let mut want = vec![Accepted];
            if processed {
                want.push(Processing);
            }
            want.push(if done { Done } else { Rejected });
            assert_eq!(statuses(&t), want, "{name}");
        }
    }
}

#[test]
fn concurrent_reports_of_one_status_add_one_entry() {
    for (name, store) in backends() {
        open(&*store, &ticket("T-1", T0));
        let barrier = Arc::new(Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    store
                        .advance(R, "T-1", Processing, T0 + 1, None)
                        .expect("ok")
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().expect("thread").status, Processing);
        }
        let t = store.get(R, "T-1").expect("get").expect("ticket");
        assert_eq!(statuses(&t), vec![Accepted, Processing], "{name}");
    }
}

// ---------------------------------------------------------------------------------------
// The redb backend across a reopen.

#[test]
fn redb_tickets_and_the_closed_index_survive_a_reopen() {
    let dir = crate::testutil::fresh_dir("corrections-unit");
    let t = {
        let s = RedbCorrectionStore::new(Store::open(&dir).expect("open"));
        open(&s, &ticket("T-1", T0));
        open(&s, &ticket("T-2", T0));
        s.advance(R, "T-1", Processing, T0 + 1, Some("assigned"))
            .expect("on");
        s.advance(R, "T-1", Done, T0 + 2, None).expect("done")
    };
    let s = RedbCorrectionStore::new(Store::open(&dir).expect("reopen"));
    assert_eq!(s.get(R, "T-1").expect("get"), Some(t));
    assert_eq!(
        s.advance(R, "T-1", Processing, T0 + 3, None),
        Err(CorrectionError::InvalidTransition {
            from: Done,
            to: Processing
        })
    );
    assert_eq!(s.purge_closed_before(T0 + 3).expect("purge"), 1);
    assert_eq!(s.get(R, "T-1").expect("get"), None);
    assert!(s.get(R, "T-2").expect("get").is_some());
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn redb_reports_a_corrupt_stored_ticket() {
    let h = Redb::new();
    open(&h, &ticket("T-1", T0));
    let txn = h.inner.store.db().begin_write().expect("write");
    txn.open_table(crate::store::tables::CORRECTIONS)
        .expect("table")
        .insert("T-1\u{1f}330000", br#"{"v":1}"#.as_slice())
        .expect("insert");
    txn.commit().expect("commit");
    let err = h.get(R, "T-1").expect_err("corrupt");
    assert!(
        matches!(err, CorrectionError::Store(StoreError::Corrupt { .. })),
        "{err}"
    );
    assert_eq!(err.return_code(), ReturnCode::SystemError);
}

// ---------------------------------------------------------------------------------------
// The stored form and the return codes.

#[test]
fn the_stored_form_is_stable() {
    let mut t = ticket("T-1", T0);
    t.apply(Rejected, T0 + 5, Some("no such result"))
        .expect("reject");
    let json = serde_json::to_string(&t).expect("json");
    let want = concat!(
        r#"{"v":1,"ticket_id":"T-1","app_id":"A3300010001","region":"330000","#,
        r#""subject":"1111111111111111111111111111111111111111111111111111111111111111","#,
        r#""status":"REJECTED","expected_time":"2026-11-18 09:00:00","history":["#,
        r#"{"status":"ACCEPTED","time_ms":1795000000000,"note":null},"#,
        r#"{"status":"REJECTED","time_ms":1795000000005,"note":"no such result"}],"#,
        r#""created_ms":1795000000000,"updated_ms":1795000000005}"#
    );
    assert_eq!(json, want);
    let back: CorrectionTicket = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, t);
    assert_eq!(
        CorrectionTicket::decode(&t.encode().expect("encode")),
        Ok(t)
    );
}

#[test]
fn the_stored_form_is_checked_when_read() {
    let good = serde_json::to_value(ticket("T-1", T0)).expect("json");
    let cases: [(&str, serde_json::Value); 5] = [
        ("v", serde_json::json!(2)),
        ("region", serde_json::json!("33000")),
        ("subject", serde_json::json!("zz")),
        ("status", serde_json::json!("DONE")),
        ("extra", serde_json::json!(1)),
    ];
    for (field, value) in cases {
        let mut v = good.clone();
        v[field] = value;
        let bytes = serde_json::to_vec(&v).expect("bytes");
        assert!(
            CorrectionTicket::decode(&bytes).is_err(),
            "{field} accepted"
        );
    }
}

#[test]
fn errors_map_to_the_documented_return_codes() {
    let unknown = CorrectionError::UnknownTicket {
        ticket_id: "T".to_owned(),
    };
    assert_eq!(unknown.return_code(), ReturnCode::BadFormat);
    let moved = CorrectionError::InvalidTransition {
        from: Done,
        to: Processing,
    };
    assert_eq!(moved.return_code(), ReturnCode::UpstreamFailed);
    assert_eq!(
        moved.to_string(),
        "a correction ticket in DONE cannot become PROCESSING"
    );
    let invalid = CorrectionError::InvalidTicket {
        reason: "x".to_owned(),
    };
    assert_eq!(invalid.return_code(), ReturnCode::UpstreamFailed);
    let store = CorrectionError::from(StoreError::Db("disk".to_owned()));
    assert_eq!(store.return_code(), ReturnCode::SystemError);
}

#[test]
fn two_regions_tickets_of_one_id_are_two_tickets() {
    each(|name, s| {
        let zj = ticket("1001", T0);
        let mut js = CorrectionTicket::new(
            "1001",
            "A3200010001",
            RegionCode::parse("320000").expect("region"),
            None,
            Accepted,
            T0 + 5,
        );
        js.expected_time = None;
        open(s, &zj);
        open(s, &js);
        assert_eq!(s.get(R, "1001").expect("get"), Some(zj.clone()), "{name}");
        assert_eq!(
            s.get("320000", "1001").expect("get"),
            Some(js.clone()),
            "{name}"
        );
        assert_eq!(
            s.find("1001").expect("find"),
            [zj.clone(), js.clone()],
            "{name}"
        );
        // Each region moves its own; each filer reads its own.
        let done = s
            .advance("320000", "1001", Done, T0 + 10, None)
            .expect("done");
        assert_eq!(s.get(R, "1001").expect("get"), Some(zj.clone()), "{name}");
        assert_eq!(s.get_for("1001", "A3200010001"), Ok(done), "{name}");
        assert_eq!(s.get_for("1001", "A3300010001"), Ok(zj.clone()), "{name}");
        assert!(
            s.advance("110000", "1001", Done, T0 + 11, None).is_err(),
            "{name}"
        );
    });
}

#[test]
fn tickets_stored_under_the_bare_id_by_the_build_before_are_found() {
    let h = Redb::new();
    let t = ticket("T-7", T0);
    let txn = h.inner.store.db().begin_write().expect("write");
    txn.open_table(crate::store::tables::CORRECTIONS)
        .expect("table")
        .insert("T-7", t.encode().expect("encode").as_slice())
        .expect("insert");
    txn.commit().expect("commit");
    assert_eq!(h.get(R, "T-7").expect("get"), Some(t.clone()));
    assert_eq!(
        h.get("320000", "T-7").expect("get"),
        None,
        "another region's"
    );
    assert_eq!(h.find("T-7").expect("find"), std::slice::from_ref(&t));
    assert_eq!(h.open(&t).expect("open"), OpenOutcome::AlreadyExists(t));
    let done = h.advance(R, "T-7", Done, T0 + 1, None).expect("done");
    assert_eq!(h.get(R, "T-7").expect("get"), Some(done));
    assert_eq!(h.purge_closed_before(T0 + 2).expect("purge"), 1);
    assert_eq!(h.find("T-7").expect("find"), []);
}
