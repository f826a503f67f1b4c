//! The callback outbox's tests: delivery and backoff, its derived indexes (rebuild, repair), ids and the purge.

use super::*;

fn event(n: u32) -> CallbackEvent {
    CallbackEvent {
        kind: outbox::KIND_STATUS.into(),
        event_id: format!("E{n}"),
        source_region: "330000".into(),
        code_id: Some("B9".into()),
        colour: "10".into(),
        status_time: None,
        venue_code: None,
        visit_region: None,
    }
}

#[test]
fn outbox_retries_with_backoff_and_survives_a_reopen() {
    let dir = temp_dir("outbox");
    let ids = {
        let o = Outbox::new(Store::open(&dir).expect("open"), key()).expect("outbox");
        let ids = o
            .enqueue(
                &[("110000".into(), event(1)), ("320000".into(), event(1))],
                100,
            )
            .expect("enqueue");
        assert_eq!(ids.len(), 2);
        assert_eq!(o.due(100, 10).expect("due").len(), 2);
        let d = o
            .record(ids[0], Err("connection refused".into()), 100)
            .expect("fail");
        assert_eq!(d.state, DeliveryState::Pending);
        assert_eq!(d.next_at_ms, 100 + backoff_ms(1));
        assert_eq!(
            o.due(100, 10).expect("due").len(),
            1,
            "the failed one waits"
        );
        ids
    };
    // A restart: what was pending still is.
    let o = Outbox::new(Store::open(&dir).expect("reopen"), key()).expect("outbox");
    let due = o.due(100 + backoff_ms(1), 10).expect("due");
    assert_eq!(due.len(), 2);
    let d = o.record(ids[0], Ok(()), 1_000).expect("ok");
    assert_eq!(d.state, DeliveryState::Delivered);
    assert_eq!(d.attempts, 2);
    assert_eq!(d.delivered_ms, Some(1_000));
    for _ in 0..MAX_ATTEMPTS {
        o.record(ids[1], Err("timeout".into()), 2_000)
            .expect("fail");
    }
    let all = o.all().expect("all");
    assert_eq!(all[1].state, DeliveryState::Abandoned);
    assert!(o.due(u64::MAX, 10).expect("due").is_empty());
    assert_eq!(o.purge_before(u64::MAX).expect("purge"), 2);
    assert!(o.all().expect("all").is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_postponed_delivery_waits_without_spending_an_attempt() {
    // A callback the region's breaker kept from being sent: it moves, its attempts stay.
    let dir = temp_dir("outbox");
    let o = Outbox::new(Store::open(&dir).expect("open"), key()).expect("outbox");
    let ids = o
        .enqueue(&[("110000".into(), event(1))], 100)
        .expect("enqueue");
    o.record(ids[0], Err("timeout".into()), 100).expect("fail");
    for until in [10_000, 20_000, 30_000] {
        let d = o.postpone(ids[0], until, until - 1).expect("postpone");
        assert_eq!(
            (d.state, d.attempts, d.next_at_ms),
            (DeliveryState::Pending, 1, until)
        );
        assert!(o.due(until - 1, 10).expect("due").is_empty());
        assert_eq!(
            o.due(until, 10).expect("due").len(),
            1,
            "one entry in the due index"
        );
    }
    // Only a pending delivery moves.
    o.record(ids[0], Ok(()), 30_000).expect("ok");
    assert!(o.postpone(ids[0], 40_000, 39_000).is_err());
    assert!(o.postpone(ids[0] + 100, 40_000, 39_000).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_callback_to_a_region_that_cannot_be_called_for_a_day_is_abandoned() {
    use crate::link::outbox::MAX_PENDING_MS as DAY;
    let dir = temp_dir("outbox-day");
    let o = Outbox::new(Store::open(&dir).expect("open"), key()).expect("outbox");
    let ids: Vec<u64> = (0..3)
        .flat_map(|n| {
            o.enqueue(&[("110000".into(), event(n))], 100 + n as u64)
                .expect("enqueue")
        })
        .collect();
    // First held at 1,000: both move.
    assert_eq!(
        o.postpone_many(&ids[..2], 6_000, 1_000).expect("postpone"),
        (2, 0)
    );
    // The second is called once in between; then both are held past the first's day.
    o.record(ids[1], Err("timeout".into()), 2_000)
        .expect("attempt");
    assert_eq!(
        o.postpone_many(&ids[..2], 1_000 + DAY, 1_000 + DAY - 10)
            .expect("postpone"),
        (2, 1)
    );
    let all = o.all().expect("all");
    assert_eq!(all[0].state, DeliveryState::Abandoned);
    assert_eq!(all[0].attempts, 0);
    assert!(all[0].last_error.as_deref().unwrap().contains("a day"));
    assert_eq!(all[1].state, DeliveryState::Pending);
    let due = o.due(u64::MAX, 10).expect("due");
    assert_eq!(
        due.iter().map(|d| d.id).collect::<Vec<_>>(),
        [ids[2], ids[1]],
        "the abandoned one is no longer due (the second is due at its new time)"
    );
    // One at a time too; and the purge finds it among the finished.
    o.postpone(ids[2], 5_000, 102).expect("postpone");
    let d = o.postpone(ids[2], 102 + DAY, 50_000).expect("postpone");
    assert_eq!(d.state, DeliveryState::Abandoned);
    assert_eq!(o.purge_before(u64::MAX).expect("purge"), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_day_a_held_callback_may_wait_runs_from_when_it_was_first_held() {
    use crate::link::outbox::MAX_PENDING_MS as DAY;
    let dir = temp_dir("outbox-held");
    let o = Outbox::new(Store::open(&dir).expect("open"), key()).expect("outbox");
    // A backlog two days old (the gateway was down), held now for the first time: it
    // waits, its day starting now.
    let ids = o
        .enqueue(&[("110000".into(), event(1))], 100)
        .expect("enqueue");
    let now = 2 * DAY;
    let d = o.postpone(ids[0], now + 5_000, now).expect("postpone");
    assert_eq!(
        (d.state, d.held_since_ms),
        (DeliveryState::Pending, Some(now))
    );
    // Held again and again: still the first hold's day.
    let d = o
        .postpone(ids[0], now + DAY - 1, now + 10)
        .expect("postpone");
    assert_eq!(
        (d.state, d.held_since_ms),
        (DeliveryState::Pending, Some(now))
    );
    // An attempt in between (the region was called) starts it afresh.
    o.record(ids[0], Err("timeout".into()), now + 20)
        .expect("attempt");
    assert_eq!(o.all().expect("all")[0].held_since_ms, None);
    let x = now + 30;
    let d = o.postpone(ids[0], x + DAY - 1, x).expect("postpone");
    assert_eq!(
        (d.state, d.held_since_ms),
        (DeliveryState::Pending, Some(x))
    );
    let d = o.postpone(ids[0], x + DAY, x + 40).expect("postpone");
    assert_eq!(d.state, DeliveryState::Abandoned);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_region_held_by_its_breaker_has_its_callbacks_moved_in_one_go() {
    // The callbacks to a region whose breaker is open are put past its hold together, and
    // those behind them in the due index come out at once.
    let dir = temp_dir("outbox-many");
    let o = Outbox::new(Store::open(&dir).expect("open"), key()).expect("outbox");
    let held: Vec<u64> = (0..5)
        .flat_map(|n| {
            o.enqueue(&[("110000".into(), event(n))], 100)
                .expect("enqueue")
        })
        .collect();
    let other = o
        .enqueue(&[("320000".into(), event(9))], 101)
        .expect("enqueue");
    o.record(held[4], Ok(()), 102).expect("delivered");
    assert_eq!(o.due(200, 3).expect("due").len(), 3, "the held ones first");
    // The delivered one is passed over; the four pending ones move, attempts unspent.
    assert_eq!(
        o.postpone_many(&held, 60_000, 200).expect("postpone"),
        (4, 0)
    );
    let due = o.due(200, 3).expect("due");
    assert_eq!(
        due.iter().map(|d| d.id).collect::<Vec<_>>(),
        other,
        "the other region's callback is next"
    );
    let later = o.due(60_000, 10).expect("due");
    assert_eq!(later.len(), 5);
    assert!(later.iter().all(|d| d.attempts == 0));
    assert_eq!(o.postpone_many(&[], 1, 0).expect("nothing"), (0, 0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn due_reads_the_pending_deliveries_in_the_order_they_fell_due() {
    let dir = temp_dir("outbox-due");
    let o = Outbox::new(Store::open(&dir).expect("open"), key()).expect("outbox");
    // Ten events, to two regions each: twenty deliveries, written at 100, 101, … 109.
    let mut ids = Vec::new();
    for n in 0..10 {
        let targets = [("110000".into(), event(n)), ("320000".into(), event(n))];
        ids.extend(o.enqueue(&targets, 100 + u64::from(n)).expect("enqueue"));
    }
    // Most are delivered; one fails (due again 200 ms later); three stay pending.
    for &id in &ids[..16] {
        o.record(id, Ok(()), 200).expect("delivered");
    }
    o.record(ids[16], Err("refused".into()), 200)
        .expect("failed");
    let due_ids = |now| -> Vec<u64> { o.due(now, 10).expect("due").iter().map(|d| d.id).collect() };
    assert_eq!(
        due_ids(99),
        Vec::<u64>::new(),
        "nothing is due before it was written"
    );
    assert_eq!(due_ids(108), vec![ids[17]]);
    assert_eq!(due_ids(200), vec![ids[17], ids[18], ids[19]]);
    // The failed one comes back when its backoff has passed, after those due before it.
    assert_eq!(
        due_ids(200 + backoff_ms(1)),
        vec![ids[17], ids[18], ids[19], ids[16]]
    );
    assert_eq!(
        o.due(u64::MAX, 2).expect("due").len(),
        2,
        "at most the limit"
    );
    // A finished delivery is not attempted again.
    assert!(o.record(ids[0], Ok(()), 300).is_err());
    assert_eq!(o.all().expect("all").len(), 20);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One of the outbox's derived indexes.
type Index = redb::TableDefinition<'static, (u64, u64), ()>;

/// Runs `f` in one write transaction on `store`, then commits it: damage done by hand.
fn write(store: &Store, f: impl FnOnce(&redb::WriteTransaction)) {
    let txn = store.db().begin_write().expect("txn");
    f(&txn);
    txn.commit().expect("commit");
}

/// Files `row` in `index` (`present`), or takes it out.
fn set_row(store: &Store, index: Index, row: (u64, u64), present: bool) {
    write(store, |txn| {
        let mut t = txn.open_table(index).expect("index");
        // The damage must take: a row already filed, or not there, would test nothing.
        if present {
            assert!(
                t.insert(row, ()).expect("insert").is_none(),
                "{row:?} was there"
            );
        } else {
            assert!(
                t.remove(row).expect("remove").is_some(),
                "{row:?} was not there"
            );
        }
    });
}

/// Replaces the outbox's due index in `store` by `rows`: a wrong index, as damage would
/// leave. With `old_build`, the store also loses the finished index and the counters, as
/// a store written by the build before them has neither.
fn set_due_index(store: &Store, rows: &[(u64, u64)], old_build: bool) {
    write(store, |txn| {
        txn.delete_table(CALLBACKS_DUE).expect("drop index");
        if old_build {
            txn.delete_table(CALLBACKS_FINISHED).expect("drop index");
            txn.delete_table(CALLBACKS_META).expect("drop counters");
        }
        let mut due = txn.open_table(CALLBACKS_DUE).expect("index");
        for &row in rows {
            due.insert(row, ()).expect("row");
        }
    });
}

/// The index version stamped in `store`.
fn index_version(store: &Store) -> Option<u64> {
    let txn = store.db().begin_read().expect("txn");
    let meta = txn.open_table(CALLBACKS_META).expect("meta");
    meta.get(outbox::META_INDEX_VERSION)
        .expect("get")
        .map(|v| v.value())
}

/// The rows of `index` in `store`.
fn rows(store: &Store, index: Index) -> Vec<(u64, u64)> {
    use redb::ReadableTable;
    let txn = store.db().begin_read().expect("txn");
    let t = txn.open_table(index).expect("index");
    t.iter()
        .expect("rows")
        .map(|r| r.expect("row").0.value())
        .collect()
}

/// The finished index's rows in `store`.
fn finished_rows(store: &Store) -> Vec<(u64, u64)> {
    rows(store, CALLBACKS_FINISHED)
}

/// The due index's rows in `store`.
fn due_rows(store: &Store) -> Vec<(u64, u64)> {
    rows(store, CALLBACKS_DUE)
}

/// Two deliveries written at 100: the first delivered at 150, the second pending.
fn one_delivered_one_pending(dir: &std::path::Path) -> Vec<u64> {
    let o = Outbox::new(Store::open(dir).expect("open"), key()).expect("outbox");
    let ids = o
        .enqueue(
            &[("110000".into(), event(1)), ("320000".into(), event(1))],
            100,
        )
        .expect("enqueue");
    o.record(ids[0], Ok(()), 150).expect("delivered");
    ids
}

#[test]
fn a_store_of_the_build_before_the_counters_is_reindexed_when_the_outbox_opens() {
    let dir = temp_dir("outbox-stale");
    let ids = one_delivered_one_pending(&dir);
    // A due row for the delivered one and none for the pending one; no finished index and
    // no counters, as the build before them left a store.
    let store = Store::open(&dir).expect("reopen");
    set_due_index(&store, &[(100, ids[0])], true);
    let o = Outbox::new(store.clone(), key()).expect("outbox");
    assert_eq!(due_rows(&store), vec![(100, ids[1])], "rebuilt at the open");
    assert_eq!(finished_rows(&store), vec![(100, ids[0])]);
    let due = o.due(100, 10).expect("due");
    assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), vec![ids[1]]);
    assert_eq!(o.purge_before(u64::MAX).expect("purge"), 1);
    // The counter starts past the last record.
    let next = o
        .enqueue(&[("110000".into(), event(2))], 300)
        .expect("enqueue");
    assert_eq!(next, vec![ids[1] + 1]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_row_lost_while_the_stamp_stayed_is_found_at_the_next_open() {
    let dir = temp_dir("outbox-lost-row");
    let ids = one_delivered_one_pending(&dir);
    // The build before the finished index finished a delivery after a newer build had
    // stamped the store: the record is finished, and no index has a row for it.
    let store = Store::open(&dir).expect("reopen");
    set_row(&store, CALLBACKS_FINISHED, (100, ids[0]), false);
    let o = Outbox::new(store.clone(), key()).expect("outbox");
    assert_eq!(
        finished_rows(&store),
        vec![(100, ids[0])],
        "rebuilt at the open"
    );
    assert_eq!(o.purge_before(u64::MAX).expect("purge"), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_start_with_another_key_loses_no_callback() {
    let dir = temp_dir("outbox-other-key");
    let ids = one_delivered_one_pending(&dir);
    let other = || Sm4Key::from_bytes(&[8; 16]).expect("key");
    // Started with the wrong key: nothing can be read, so nothing is due, and the pending
    // delivery's row stays.
    {
        let store = Store::open(&dir).expect("reopen");
        let o = Outbox::new(store.clone(), other()).expect("outbox");
        assert!(o.due(u64::MAX, 10).expect("due").is_empty());
        assert!(o.due(u64::MAX, 10).expect("due").is_empty());
        assert_eq!(o.purge_before(u64::MAX).expect("purge"), 0);
        assert_eq!(due_rows(&store), vec![(100, ids[1])]);
        assert_eq!(finished_rows(&store), vec![(100, ids[0])]);
        // A rebuild with that key reads nothing, and leaves the store unstamped.
        assert_eq!(o.rebuild_index().expect("rebuild"), 2);
        assert_eq!(index_version(&store), None);
    }
    // Started again with the right key: the callback is due, the delivered one purgeable.
    let store = Store::open(&dir).expect("reopen");
    let o = Outbox::new(store.clone(), key()).expect("outbox");
    let due = o.due(u64::MAX, 10).expect("due");
    assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), vec![ids[1]]);
    assert_eq!(o.purge_before(u64::MAX).expect("purge"), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_store_with_the_index_version_opens_without_a_rebuild() {
    let dir = temp_dir("outbox-kept");
    let ids = one_delivered_one_pending(&dir);
    // The pending delivery filed under a wrong time, the rows still as many as the
    // records: an open leaves the index (no pass over the records), and the poll repairs it.
    let store = Store::open(&dir).expect("reopen");
    set_due_index(&store, &[(70, ids[1])], false);
    let o = Outbox::new(store.clone(), key()).expect("outbox");
    assert_eq!(due_rows(&store), vec![(70, ids[1])]);
    assert!(o.due(80, 10).expect("due").is_empty(), "due at 100, not 70");
    assert_eq!(
        due_rows(&store),
        vec![(100, ids[1])],
        "repaired by the poll"
    );
    // One row too many (for no record) tells the next open to rebuild.
    set_due_index(&store, &[(60, 999), (100, ids[1])], false);
    drop(o);
    let o = Outbox::new(store.clone(), key()).expect("outbox");
    assert_eq!(due_rows(&store), vec![(100, ids[1])], "rebuilt at the open");
    // And a rebuild on demand.
    set_due_index(&store, &[(60, 999)], false);
    assert_eq!(o.rebuild_index().expect("rebuild"), 0);
    assert_eq!(due_rows(&store), vec![(100, ids[1])]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ids_are_not_reused_after_the_newest_records_are_purged() {
    let dir = temp_dir("outbox-ids");
    {
        let o = Outbox::new(Store::open(&dir).expect("open"), key()).expect("outbox");
        let ids = o
            .enqueue(
                &[("110000".into(), event(1)), ("320000".into(), event(1))],
                100,
            )
            .expect("enqueue");
        for id in &ids {
            o.record(*id, Ok(()), 150).expect("delivered");
        }
        assert_eq!(o.purge_before(u64::MAX).expect("purge"), 2);
        let next = o
            .enqueue(&[("110000".into(), event(2))], 200)
            .expect("enqueue");
        assert_eq!(
            next,
            vec![ids[1] + 1],
            "the purged ids are not handed out again"
        );
        o.record(next[0], Ok(()), 250).expect("delivered");
        assert_eq!(o.purge_before(u64::MAX).expect("purge"), 1);
    }
    // Nor after a reopen, with the outbox empty.
    let o = Outbox::new(Store::open(&dir).expect("reopen"), key()).expect("outbox");
    assert!(o.all().expect("all").is_empty());
    let next = o
        .enqueue(&[("110000".into(), event(3))], 300)
        .expect("enqueue");
    assert_eq!(next, vec![4]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_purge_takes_old_finished_records_alone_and_is_not_stopped_by_an_unreadable_one() {
    let dir = temp_dir("outbox-purge");
    let store = Store::open(&dir).expect("open");
    let o = Outbox::new(store.clone(), key()).expect("outbox");
    // Written at 100: one delivered, one abandoned, one pending; at 500: one delivered.
    let old = o
        .enqueue(
            &[
                ("110000".into(), event(1)),
                ("320000".into(), event(1)),
                ("440000".into(), event(1)),
            ],
            100,
        )
        .expect("enqueue");
    o.record(old[0], Ok(()), 150).expect("delivered");
    for _ in 0..MAX_ATTEMPTS {
        o.record(old[1], Err("timeout".into()), 150)
            .expect("failed");
    }
    let new = o
        .enqueue(&[("110000".into(), event(2))], 500)
        .expect("enqueue");
    o.record(new[0], Ok(()), 550).expect("delivered");
    // A record no one can read (another key, damage), filed as finished long ago: a full
    // read would fail on it, and the purge cannot tell it is finished.
    // And the pending one filed as finished instead of due: it is not purged on that word,
    // and is due again.
    write(&store, |txn| {
        txn.open_table(CALLBACKS)
            .expect("table")
            .insert(1_000, b"not a sealed record".as_slice())
            .expect("insert");
    });
    set_row(&store, CALLBACKS_FINISHED, (10, 1_000), true);
    set_row(&store, CALLBACKS_FINISHED, (50, old[2]), true);
    set_row(&store, CALLBACKS_DUE, (100, old[2]), false);
    assert!(o.all().is_err(), "the unreadable record is there");
    assert_eq!(
        o.purge_before(500).expect("purge"),
        2,
        "the old finished two"
    );
    assert_eq!(o.purge_before(500).expect("purge"), 0, "and only once");
    let txn = store.db().begin_read().expect("txn");
    let t = txn.open_table(CALLBACKS).expect("table");
    for id in [old[2], new[0], 1_000] {
        assert!(t.get(id).expect("get").is_some(), "{id} is kept");
    }
    for id in [old[0], old[1]] {
        assert!(t.get(id).expect("get").is_none(), "{id} is purged");
    }
    drop((t, txn));
    assert_eq!(due_rows(&store), vec![(100, old[2])], "filed as due again");
    assert!(
        finished_rows(&store).contains(&(10, 1_000)),
        "the unreadable one keeps its row"
    );
    assert_eq!(
        o.purge_before(501).expect("purge"),
        1,
        "the newer one in turn"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_wrong_due_row_is_skipped_and_repaired_without_holding_up_the_others() {
    let dir = temp_dir("outbox-repair");
    let ids = one_delivered_one_pending(&dir);
    let store = Store::open(&dir).expect("reopen");
    let o = Outbox::new(store.clone(), key()).expect("outbox");
    // Gone wrong while open: a due row for the delivered one (and no finished row), one
    // for a delivery that does not exist, and the pending one filed under an earlier time
    // than its own.
    set_due_index(&store, &[(50, ids[0]), (60, 999), (70, ids[1])], false);
    set_row(&store, CALLBACKS_FINISHED, (100, ids[0]), false);
    // The pending one is due at 100, not 70: not yet at 80, and the poll is no error.
    assert!(o.due(80, 10).expect("due").is_empty());
    assert_eq!(
        o.due(100, 10)
            .expect("due")
            .iter()
            .map(|d| d.id)
            .collect::<Vec<_>>(),
        vec![ids[1]]
    );
    // Repaired: the due index holds the pending delivery alone, at its own time, and the
    // delivered one is filed as finished.
    assert_eq!(due_rows(&store), vec![(100, ids[1])]);
    assert_eq!(finished_rows(&store), vec![(100, ids[0])]);
    o.record(ids[1], Ok(()), 200).expect("delivered");
    assert!(o.due(u64::MAX, 10).expect("due").is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn backoff_doubles_and_is_capped() {
    assert_eq!(backoff_ms(1), 200);
    assert_eq!(backoff_ms(2), 400);
    assert_eq!(backoff_ms(40), 60_000);
}

#[test]
fn the_purge_goes_batch_by_batch_past_the_rows_it_keeps() {
    let dir = temp_dir("outbox-batches");
    let store = Store::open(&dir).expect("open");
    let o = Outbox::new(store.clone(), key()).expect("outbox");
    let targets: Vec<_> = (0..5).map(|n| ("110000".to_owned(), event(n))).collect();
    for id in o.enqueue(&targets, 100).expect("enqueue") {
        o.record(id, Ok(()), 150).expect("delivered");
    }
    drop(o);
    // With another key no record can be read: two rows a batch, every row kept, and the
    // purge ends.
    let other =
        Outbox::new(store.clone(), Sm4Key::from_bytes(&[8; 16]).expect("key")).expect("outbox");
    assert_eq!(other.purge_in_batches(u64::MAX, 2).expect("purge"), 0);
    assert_eq!(finished_rows(&store).len(), 5);
    // With the right key, all five, over three batches.
    let o = Outbox::new(store.clone(), key()).expect("outbox");
    assert_eq!(o.purge_in_batches(u64::MAX, 2).expect("purge"), 5);
    assert!(finished_rows(&store).is_empty());
    assert!(o.all().expect("all").is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_id_counter_behind_the_records_never_hands_out_an_id_in_use() {
    let dir = temp_dir("outbox-counter");
    let ids = one_delivered_one_pending(&dir);
    // Stamped, the rows as many as the records, but the counter behind the last record
    // (a delivery written by the build before the counter).
    let store = Store::open(&dir).expect("reopen");
    assert_eq!(index_version(&store), Some(2));
    write(&store, |txn| {
        txn.open_table(CALLBACKS_META)
            .expect("meta")
            .insert("next_id", 1)
            .expect("insert");
    });
    let o = Outbox::new(store, key()).expect("outbox");
    let next = o
        .enqueue(&[("110000".into(), event(2))], 300)
        .expect("enqueue");
    assert_eq!(next, vec![ids[1] + 1]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_delivery_no_retry_can_mend_is_abandoned_at_once() {
    let dir = temp_dir("give-up");
    let store = Store::open(&dir).expect("open");
    let o = Outbox::new(store.clone(), key()).expect("outbox");
    let ids = o
        .enqueue(
            &[("330000".into(), event(1)), ("320000".into(), event(1))],
            100,
        )
        .expect("enqueue");
    let why = "callback does not translate: colour `20` has no value in map `colour`";
    let d = o.give_up(ids[0], why.into(), 200).expect("give up");
    assert_eq!(d.state, DeliveryState::Abandoned);
    assert_eq!((d.attempts, d.last_error.as_deref()), (1, Some(why)));
    // Only the other one is still due; the abandoned one is kept for the operator, and
    // goes with the finished ones at retention.
    let due: Vec<u64> = o
        .due(u64::MAX, 10)
        .expect("due")
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(due, [ids[1]]);
    assert_eq!(finished_rows(&store).len(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
