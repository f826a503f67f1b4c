//! Tests of the correction stores, run against both backends through one set of test
//! functions over `&dyn CorrectionStore`; and of the ticket's stored form.

use std::path::PathBuf;
use std::sync::{Arc, Barrier};

use super::*;
use crate::store::Store;

const T0: u64 = 1_795_000_000_000;
const DAY_MS: u64 = 86_400_000;

struct Redb {
    dir: PathBuf,
    inner: RedbCorrectionStore,
}

impl Redb {
    fn new() -> Self {
        let dir = crate::testutil::fresh_dir("corrections-unit");
        let inner = RedbCorrectionStore::new(Store::open(&dir).expect("open store"));
        Self { dir, inner }
    }
}

impl Drop for Redb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl CorrectionStore for Redb {
    fn open(&self, t: &CorrectionTicket) -> Result<OpenOutcome, CorrectionError> {
        self.inner.open(t)
    }
    fn get(&self, region: &str, id: &str) -> Result<Option<CorrectionTicket>, CorrectionError> {
        self.inner.get(region, id)
    }
    fn find(&self, id: &str) -> Result<Vec<CorrectionTicket>, CorrectionError> {
        self.inner.find(id)
    }
    fn advance(
        &self,
        region: &str,
        id: &str,
        to: CorrectionStatus,
        time_ms: u64,
        note: Option<&str>,
    ) -> Result<CorrectionTicket, CorrectionError> {
        self.inner.advance(region, id, to, time_ms, note)
    }
    fn purge_closed_before(&self, time_ms: u64) -> Result<u64, CorrectionError> {
        self.inner.purge_closed_before(time_ms)
    }
}

fn backends() -> Vec<(&'static str, Arc<dyn CorrectionStore>)> {
    vec![
        ("memory", Arc::new(MemoryCorrectionStore::new())),
        ("redb", Arc::new(Redb::new())),
    ]
}

/// Runs `f` against every backend.
fn each(f: impl Fn(&str, &dyn CorrectionStore)) {
    for (name, store) in backends() {
        f(name, &*store);
    }
}

/// The region of the tests' tickets.
const R: &str = "330000";

fn region() -> RegionCode {
    RegionCode::parse(R).expect("region")
}

fn ticket(id: &str, time_ms: u64) -> CorrectionTicket {
    let mut t = CorrectionTicket::new(
        id,
        "A3300010001",
        region(),
        Some(Pseudonym([0x11; 32])),
        Accepted,
        time_ms,
    );
    t.expected_time = Some("2026-11-18 09:00:00".to_owned());
    t
}

fn open(store: &dyn CorrectionStore, t: &CorrectionTicket) {
    assert_eq!(store.open(t).expect("open"), OpenOutcome::Opened);
}

fn statuses(t: &CorrectionTicket) -> Vec<CorrectionStatus> {
    t.history.iter().map(|h| h.status).collect()
}

use CorrectionStatus::{Accepted, Done, Processing, Rejected};

mod stores;

// ---------------------------------------------------------------------------------------
// The status and its state machine.

#[test]
fn status_wire_names_round_trip() {
    for s in CorrectionStatus::ALL {
        assert_eq!(CorrectionStatus::parse(s.as_str()), Some(s));
        assert_eq!(s.to_string(), s.as_str());
        let json = serde_json::to_string(&s).expect("json");
        assert_eq!(json, format!("\"{}\"", s.as_str()));
    }
    assert_eq!(CorrectionStatus::parse("accepted"), None);
    assert_eq!(CorrectionStatus::parse("CLOSED"), None);
    let terminal: Vec<_> = CorrectionStatus::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .collect();
    assert_eq!(terminal, vec![Done, Rejected]);
}

#[test]
fn the_state_machine_allows_exactly_the_documented_moves() {
    let allowed = [
        (Accepted, Processing),
        (Accepted, Done),
        (Accepted, Rejected),
        (Processing, Done),
        (Processing, Rejected),
    ];
    for from in CorrectionStatus::ALL {
        for to in CorrectionStatus::ALL {
            assert_eq!(
                from.may_become(to),
                allowed.contains(&(from, to)),
                "{from} -> {to}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Opening and reading.

#[test]
fn an_opened_ticket_can_be_read_back() {
    each(|name, s| {
        let t = ticket("T-1", T0);
        open(s, &t);
        assert_eq!(s.get(R, "T-1").expect("get"), Some(t.clone()), "{name}");
        assert_eq!(s.get(R, "T-2").expect("get"), None, "{name}");
    });
}

#[test]
fn opening_an_existing_ticket_keeps_and_returns_the_first() {
    each(|name, s| {
        let first = ticket("T-1", T0);
        open(s, &first);
        let mut second = ticket("T-1", T0 + 5);
        second.app_id = "A3200010001".to_owned();
        assert_eq!(
            s.open(&second).expect("open"),
            OpenOutcome::AlreadyExists(first.clone()),
            "{name}"
        );
        assert_eq!(s.get(R, "T-1").expect("get"), Some(first), "{name}");
    });
}

#[test]
fn open_refuses_a_ticket_out_of_bounds() {
    each(|name, s| {
        let mut bad = Vec::new();
        bad.push(ticket("", T0));
        bad.push(ticket(&"x".repeat(MAX_TICKET_ID_CHARS + 1), T0));
        bad.push(ticket("T-\n1", T0));
        let mut t = ticket("T-1", T0);
        t.app_id = String::new();
        bad.push(t);
        let mut t = ticket("T-1", T0);
        t.expected_time = Some("2026-11-18".to_owned());
        bad.push(t);
        let mut t = ticket("T-1", T0);
        t.history.clear();
        bad.push(t);
        let mut t = ticket("T-1", T0);
        t.status = Done;
        bad.push(t);
        let mut t = ticket("T-1", T0);
        t.updated_ms = T0 + 1;
        bad.push(t);
        for t in bad {
            let err = s.open(&t).expect_err("refused");
            assert!(
                matches!(err, CorrectionError::InvalidTicket { .. }),
                "{name}: {err}"
            );
        }
        assert_eq!(s.get(R, "T-1").expect("get"), None, "{name}");
        // A ticket id of 64 characters, some of them not ASCII, is fine.
        open(s, &ticket(&"单".repeat(MAX_TICKET_ID_CHARS), T0));
    });
}

#[test]
fn a_region_may_open_a_ticket_already_closed() {
    each(|name, s| {
        let mut t = ticket("T-1", T0);
        t.status = Done;
        t.history[0].status = Done;
        open(s, &t);
        let err = s
            .advance(R, "T-1", Processing, T0 + 1, None)
            .expect_err("final");
        assert_eq!(
            err,
            CorrectionError::InvalidTransition {
                from: Done,
                to: Processing
            },
            "{name}"
        );
    });
}

// ---------------------------------------------------------------------------------------
// Advancing.

#[test]
fn advance_records_each_step_with_its_time_and_note() {
    each(|name, s| {
        open(s, &ticket("T-1", T0));
        let t = s
            .advance(R, "T-1", Processing, T0 + 10, Some("assigned"))
            .expect("processing");
        assert_eq!(t.status, Processing, "{name}");
        let t = s.advance(R, "T-1", Done, T0 + 20, None).expect("done");
        assert_eq!(statuses(&t), vec![Accepted, Processing, Done], "{name}");
        assert_eq!(
            t.history[1],
            StatusChange {
                status: Processing,
                time_ms: T0 + 10,
                note: Some("assigned".to_owned()),
            },
            "{name}"
        );
        assert_eq!((t.created_ms, t.updated_ms), (T0, T0 + 20), "{name}");
        assert_eq!(s.get(R, "T-1").expect("get"), Some(t), "{name}");
    });
}

#[test]
fn an_accepted_ticket_may_close_directly() {
    each(|name, s| {
        open(s, &ticket("T-1", T0));
        open(s, &ticket("T-2", T0));
        let done = s.advance(R, "T-1", Done, T0 + 1, None).expect("done");
        assert_eq!(statuses(&done), vec![Accepted, Done], "{name}");
        let rejected = s
            .advance(R, "T-2", Rejected, T0 + 1, Some("no record to correct"))
            .expect("rejected");
        assert_eq!(statuses(&rejected), vec![Accepted, Rejected], "{name}");
    });
}

#[test]
fn reporting_the_same_status_again_changes_nothing() {
    each(|name, s| {
        open(s, &ticket("T-1", T0));
        let first = s
            .advance(R, "T-1", Processing, T0 + 10, None)
            .expect("first");
        let again = s
            .advance(R, "T-1", Processing, T0 + 99, Some("still on it"))
            .expect("again");
        assert_eq!(again, first, "{name}");
        let done = s.advance(R, "T-1", Done, T0 + 100, None).expect("done");
        assert_eq!(
            s.advance(R, "T-1", Done, T0 + 200, None)
                .expect("done again"),
            done,
            "{name}"
        );
        assert_eq!(s.get(R, "T-1").expect("get"), Some(done), "{name}");
    });
}

#[test]
fn advance_refuses_to_go_back_or_out_of_a_final_status() {
    each(|name, s| {
        open(s, &ticket("T-1", T0));
        let processing = s.advance(R, "T-1", Processing, T0 + 1, None).expect("on");
        assert_eq!(
            s.advance(R, "T-1", Accepted, T0 + 2, None),
            Err(CorrectionError::InvalidTransition {
                from: Processing,
                to: Accepted
            }),
            "{name}"
        );
        assert_eq!(s.get(R, "T-1").expect("get"), Some(processing), "{name}");
        let rejected = s
            .advance(R, "T-1", Rejected, T0 + 3, None)
            .expect("rejected");
        for to in [Accepted, Processing, Done] {
            assert_eq!(
                s.advance(R, "T-1", to, T0 + 4, None),
                Err(CorrectionError::InvalidTransition { from: Rejected, to }),
                "{name}"
            );
        }
        assert_eq!(s.get(R, "T-1").expect("get"), Some(rejected), "{name}");
    });
}

#[test]
fn advance_on_an_unknown_ticket_fails() {
    each(|name, s| {
        let err = s.advance(R, "nope", Done, T0, None).expect_err("unknown");
        assert_eq!(
            err,
            CorrectionError::UnknownTicket {
                ticket_id: "nope".to_owned()
            },
            "{name}"
        );
    });
}

#[test]
fn a_report_with_an_earlier_clock_does_not_go_back_in_time() {
    each(|name, s| {
        open(s, &ticket("T-1", T0));
        s.advance(R, "T-1", Processing, T0 + 50, None).expect("on");
        let t = s.advance(R, "T-1", Done, T0 + 10, None).expect("done");
        assert_eq!(t.updated_ms, T0 + 50, "{name}");
        assert_eq!(t.history[2].time_ms, T0 + 50, "{name}");
        t.check().expect("consistent");
    });
}

#[test]
fn an_over_long_note_is_refused_and_changes_nothing() {
    each(|name, s| {
        let t = ticket("T-1", T0);
        open(s, &t);
        let note = "x".repeat(MAX_NOTE_BYTES + 1);
        let err = s
            .advance(R, "T-1", Done, T0 + 1, Some(&note))
            .expect_err("too long");
        assert!(
            matches!(err, CorrectionError::InvalidTicket { .. }),
            "{name}: {err}"
        );
        assert_eq!(s.get(R, "T-1").expect("get"), Some(t), "{name}");
    });
}

#[test]
fn only_the_filing_app_reads_a_ticket() {
    each(|name, s| {
        let t = ticket("T-1", T0);
        open(s, &t);
        assert_eq!(s.get_for("T-1", "A3300010001"), Ok(t), "{name}");
        let other = s.get_for("T-1", "A3200010001").expect_err("hidden");
        let missing = s.get_for("T-9", "A3300010001").expect_err("missing");
        // The other app's ticket and a missing one look alike, down to the code.
        assert!(
            matches!(other, CorrectionError::UnknownTicket { .. }),
            "{name}"
        );
        assert_eq!(other.return_code(), missing.return_code());
    });
}
