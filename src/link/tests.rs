use super::outbox::{self, CallbackEvent, DeliveryState, MAX_ATTEMPTS, Outbox, backoff_ms};
use super::*;
use crate::crypto::{MacKey, Sm4Key};
use crate::store::Store;
use crate::store::tables::{CALLBACKS, CALLBACKS_DUE, CALLBACKS_FINISHED, CALLBACKS_META};

mod deliveries;

fn temp_dir(tag: &str) -> std::path::PathBuf {
    crate::testutil::fresh_dir(&format!("link-{tag}"))
}

fn key() -> Sm4Key {
    Sm4Key::from_bytes(&[7u8; 16]).expect("key")
}

fn person(n: &str) -> Pseudonym {
    let secret = MacKey::from_bytes(&[1u8; 32]).expect("mac");
    crate::audit::pseudonym(&secret, "10", n)
}

fn zj(code: &str, colour: Option<&str>) -> RegionLink {
    RegionLink {
        region: "330000".into(),
        code_id: Some(code.into()),
        code_content: Some(format!(
            "https://healthcode.zj.example.cn/healthAct/index.html?qrCode={code}"
        )),
        colour: colour.map(str::to_owned),
        status_time: colour.map(|_| "2026-11-23 10:00:00".to_owned()),
        source: Source::Verification,
        seen_ms: 1,
        scanned_code_id: None,
    }
}

fn holder() -> Holder {
    Holder {
        name_masked: Some("张*".into()),
        claimed_name: None,
        id_no_masked: Some("33**************12".into()),
        id_type: Some("10".into()),
    }
}

/// The behaviour every backend shares.
fn registry_contract(r: &dyn LinkRegistry) {
    let p = person("330106199001011234");
    assert!(r.get(&p).expect("get").is_none());
    let e = r
        .link(&p, zj("A1", Some("00")), &holder(), 10)
        .expect("link");
    assert_eq!(e.regions.len(), 1);
    assert_eq!(e.name_masked.as_deref(), Some("张*"));
    assert_eq!(r.by_code("330000", "A1").expect("by code"), Some(p));
    assert_eq!(r.by_code("110000", "A1").expect("by code"), None);

    // A relink without status keeps the known colour; a new code replaces the old index.
    let e = r
        .link(&p, zj("A1", None), &Holder::default(), 20)
        .expect("relink");
    assert_eq!(e.regions["330000"].colour.as_deref(), Some("00"));
    assert_eq!(e.name_masked.as_deref(), Some("张*"), "masked name kept");
    r.link(&p, zj("A2", Some("01")), &Holder::default(), 30)
        .expect("new code");
    assert_eq!(r.by_code("330000", "A1").expect("old"), None);
    assert_eq!(r.by_code("330000", "A2").expect("new"), Some(p));

    let bj = RegionLink {
        region: "110000".into(),
        code_id: Some("B9".into()),
        code_content: None,
        colour: None,
        status_time: None,
        source: Source::Request,
        seen_ms: 40,
        scanned_code_id: None,
    };
    r.link(&p, bj, &Holder::default(), 40)
        .expect("second region");
    let e = r
        .set_status(
            &p,
            "330000",
            "10",
            Some("2026-11-23 11:00:00"),
            Source::StatusEvent,
            50,
        )
        .expect("status")
        .expect("linked");
    assert_eq!(e.regions["330000"].colour.as_deref(), Some("10"));
    assert_eq!(e.regions["330000"].source, Source::StatusEvent);
    assert_eq!(e.regions.len(), 2);
    // A verification of the same code answered before that event (its status 10:00), and
    // written after it, does not undo it.
    let e = r
        .link(&p, zj("A2", Some("00")), &Holder::default(), 55)
        .expect("late verification");
    assert_eq!(
        (
            e.regions["330000"].colour.as_deref(),
            e.regions["330000"].status_time.as_deref()
        ),
        (Some("10"), Some("2026-11-23 11:00:00"))
    );
    // Nor does a query's answer from before the event (10:30), written after it; nor one
    // that gives no time.
    for (time, source) in [
        (Some("2026-11-23 10:30:00"), Source::Query),
        (None, Source::Query),
    ] {
        let e = r
            .set_status(&p, "330000", "00", time, source, 56)
            .expect("status")
            .expect("linked");
        assert_eq!(
            (
                e.regions["330000"].colour.as_deref(),
                e.regions["330000"].status_time.as_deref()
            ),
            (Some("10"), Some("2026-11-23 11:00:00")),
            "{time:?}"
        );
    }
    // A newer one does.
    let e = r
        .set_status(
            &p,
            "330000",
            "00",
            Some("2026-11-23 12:00:00"),
            Source::Query,
            57,
        )
        .expect("status")
        .expect("linked");
    assert_eq!(e.regions["330000"].colour.as_deref(), Some("00"));
    assert!(
        r.set_status(&p, "440000", "10", None, Source::StatusEvent, 50)
            .expect("status")
            .is_none(),
        "no link in that region"
    );

    let n1 = r.national_code_id(&p, 60).expect("ncid");
    assert_eq!(n1.len(), 32);
    assert_eq!(r.national_code_id(&p, 61).expect("again"), n1, "stable");
    assert_eq!(r.by_national(&n1).expect("by national"), Some(p));
    assert!(
        r.national_code_id(&person("110101199003077777"), 1)
            .is_err()
    );

    let q = person("110101199003071234");
    r.link(&q, zj("Q1", Some("00")), &holder(), 1000)
        .expect("other");
    assert_eq!(r.len().expect("len"), 2);
    assert_eq!(
        r.purge_before(500).expect("purge"),
        1,
        "only the stale entry"
    );
    assert!(r.get(&p).expect("get").is_none());
    assert_eq!(r.by_code("330000", "A2").expect("index"), None);
    assert_eq!(r.by_national(&n1).expect("index"), None);
    assert!(r.get(&q).expect("get").is_some());

    // The region gives Q's code to S (an id it reused, or a link it corrected): the code
    // is S's alone, Q keeps the region without it.
    let s = person("440106199001011234");
    r.link(&s, zj("Q1", Some("10")), &holder(), 1100)
        .expect("reused");
    assert_eq!(r.by_code("330000", "Q1").expect("index"), Some(s));
    let qe = r.get(&q).expect("get").expect("q");
    assert_eq!(qe.regions["330000"].code_id, None);
    assert_eq!(
        qe.regions["330000"].colour, None,
        "the code's status went with it"
    );
    // Q's next code in the region, and Q's purge, leave S's index entry alone.
    r.link(&q, zj("Q2", Some("00")), &holder(), 1200)
        .expect("new code");
    assert_eq!(r.by_code("330000", "Q1").expect("index"), Some(s));
    assert_eq!(r.by_code("330000", "Q2").expect("index"), Some(q));
    r.link(&s, zj("Q1", Some("10")), &holder(), 5000)
        .expect("s again");
    assert_eq!(r.purge_before(1300).expect("purge"), 1, "Q only");
    assert_eq!(r.by_code("330000", "Q1").expect("index"), Some(s));
    assert_eq!(r.by_code("330000", "Q2").expect("index"), None);
}

#[test]
fn a_watchers_scanned_code_survives_a_later_link_that_names_none() {
    let r = MemoryLinks::default();
    let p = person("110101199001011234");
    let mut w = RegionLink::without_code("110000".into(), Source::Verification, 1);
    w.scanned_code_id = Some("ZJ-CODE".into());
    r.link(&p, w, &holder(), 1).unwrap();
    // Beijing's consent later: a link to the same region that names no code.
    let consent = RegionLink::without_code("110000".into(), Source::Request, 2);
    let e = r.link(&p, consent, &Holder::default(), 2).unwrap();
    assert_eq!(
        e.regions["110000"].scanned_code_id.as_deref(),
        Some("ZJ-CODE")
    );
    // A later scan of another code replaces it.
    let mut w = RegionLink::without_code("110000".into(), Source::Verification, 3);
    w.scanned_code_id = Some("JS-CODE".into());
    let e = r.link(&p, w, &Holder::default(), 3).unwrap();
    assert_eq!(
        e.regions["110000"].scanned_code_id.as_deref(),
        Some("JS-CODE")
    );
}

#[test]
fn a_callers_name_for_a_person_does_not_replace_the_one_a_region_gave() {
    let r = MemoryLinks::default();
    let p = person("110101199001011234");
    let claimed = |n: &str| Holder {
        claimed_name: Some(n.into()),
        ..Holder::default()
    };
    // No one has named them yet: the caller's (masked) name is kept.
    let e = r.link(&p, zj("A1", None), &claimed("王*"), 1).unwrap();
    assert_eq!(e.name_masked.as_deref(), Some("王*"));
    // A region names them: its name stands.
    let e = r.link(&p, zj("A1", None), &holder(), 2).unwrap();
    assert_eq!(e.name_masked.as_deref(), Some("张*"));
    // A later declaration with another name changes nothing.
    let e = r.link(&p, zj("A1", None), &claimed("李*"), 3).unwrap();
    assert_eq!(e.name_masked.as_deref(), Some("张*"));
}

#[test]
fn a_later_link_without_a_status_keeps_when_the_held_one_was_learned() {
    let r = MemoryLinks::default();
    let p = person("110101199001011234");
    let mut l = RegionLink::without_code("320000".into(), Source::StatusEvent, 1_000);
    l.colour = Some("00".into());
    r.link(&p, l, &holder(), 1_000).unwrap();
    // A declaration in the same region, days later, says no status.
    let d = RegionLink::without_code("320000".into(), Source::Declaration, 900_000_000);
    let e = r.link(&p, d, &Holder::default(), 900_000_000).unwrap();
    let held = &e.regions["320000"];
    assert_eq!(held.colour.as_deref(), Some("00"));
    assert_eq!(held.seen_ms, 1_000, "the status is as old as it was");
    assert_eq!(held.source, Source::StatusEvent);
}

/// A region pushed red at 10:00; a verification answered after it with green and no time
/// replaced it (an undated answer cannot be ordered against a dated status).
#[test]
fn an_undated_verification_does_not_replace_a_dated_status() {
    let r = MemoryLinks::new();
    let p = person("330106199001011234");
    let mut red = zj("A1", Some("10"));
    red.source = Source::StatusEvent;
    r.link(&p, red, &holder(), 10).expect("link");
    let mut green = zj("A1", Some("00"));
    green.status_time = None;
    let e = r.link(&p, green, &holder(), 20).expect("link");
    assert_eq!(e.regions["330000"].colour.as_deref(), Some("10"));
    // The region's own word, undated, still counts.
    let mut own = zj("A1", Some("00"));
    own.status_time = None;
    own.source = Source::Request;
    let e = r.link(&p, own, &holder(), 30).expect("link");
    assert_eq!(e.regions["330000"].colour.as_deref(), Some("00"));
}

#[test]
fn memory_registry_keeps_the_contract() {
    registry_contract(&MemoryLinks::new());
}

#[test]
fn an_entry_that_does_not_open_does_not_stop_the_purge_of_the_others() {
    // One entry written under another key made every purge fail, so every person's links
    // stayed past their retention period.
    let dir = temp_dir("purge-other-key");
    let store = Store::open(&dir).expect("open");
    let other = RedbLinks::new(store.clone(), Sm4Key::from_bytes(&[8u8; 16]).expect("key"));
    other
        .link(
            &person("110101199003070001"),
            zj("K2", Some("00")),
            &holder(),
            10,
        )
        .expect("link under the other key");
    let r = RedbLinks::new(store, key());
    let p = person("110101199003070002");
    r.link(&p, zj("K1", Some("00")), &holder(), 10)
        .expect("link");
    // Reported, once the readable one is gone.
    let e = r
        .purge_before(500)
        .expect_err("an entry did not open")
        .to_string();
    assert!(
        e.contains("were left: 1") && e.contains("others purged: 1"),
        "{e}"
    );
    assert!(
        r.get(&p).expect("get").is_none(),
        "the readable old entry went"
    );
    assert_eq!(r.len().expect("len"), 1, "the other key's entry is left");
}

#[test]
fn redb_registry_keeps_the_contract_and_survives_a_reopen() {
    let dir = temp_dir("redb");
    {
        let r = RedbLinks::new(Store::open(&dir).expect("open"), key());
        registry_contract(&r);
        let p = person("330106199001015678");
        r.link(&p, zj("KLINK-CODE-0001", Some("00")), &holder(), 5_000)
            .expect("link");
    }
    let r = RedbLinks::new(Store::open(&dir).expect("reopen"), key());
    let p = person("330106199001015678");
    let e = r.get(&p).expect("get").expect("kept across reopen");
    assert_eq!(
        e.regions["330000"].code_id.as_deref(),
        Some("KLINK-CODE-0001")
    );
    // Entries are encrypted at rest: the raw file holds no masked name or code id.
    drop(r);
    let raw = std::fs::read(dir.join(Store::FILE_NAME)).expect("read");
    assert!(
        !raw.windows(15).any(|w| w == b"KLINK-CODE-0001"),
        "code id in clear"
    );
    // Another key cannot read them.
    let r = RedbLinks::new(
        Store::open(&dir).expect("reopen"),
        Sm4Key::from_bytes(&[9u8; 16]).expect("key"),
    );
    assert!(r.get(&p).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn severity_orders_red_over_yellow_over_unknown_over_green() {
    let mut v = ["00", "10", "90", "01", "20"];
    v.sort_by_key(|c| std::cmp::Reverse(severity(c)));
    assert_eq!(v[0], "10");
    assert_eq!(v[1], "01");
    assert_eq!(v[4], "00");
}
