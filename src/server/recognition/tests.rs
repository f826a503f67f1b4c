use super::query::{Known, RegionStatus, merge, national_status, outlived, settle};
use super::tickets::TicketBody;
use super::*;

fn entry() -> LinkEntry {
    let p = Pseudonym([3u8; 32]);
    let mut e = LinkEntry::new(p, 1);
    e.name_masked = Some("张*".into());
    e.id_no_masked = Some("33**************12".into());
    e
}

fn status(region: &str, colour: Option<&str>) -> RegionStatus {
    RegionStatus {
        live: colour.is_some(),
        region: region.into(),
        colour: colour.map(str::to_owned),
        update_time: colour.map(|_| "2026-11-23 10:00:00".to_owned()),
        stale: false,
    }
}

fn link(region: &str, colour: Option<&str>) -> RegionLink {
    let mut l = RegionLink::without_code(region.into(), Source::StatusEvent, 1);
    l.code_content = Some("https://region.example/c/1".into());
    l.colour = colour.map(str::to_owned);
    l.status_time = colour.map(|_| "2026-11-22 09:00:00".to_owned());
    l
}

#[test]
fn a_region_that_does_not_answer_keeps_its_known_red() {
    // Jiangsu pushed red (held in the link); it is down when the person is next looked up.
    let red = settle(&link("320000", Some("10")), Known::Unanswered);
    assert_eq!(red.colour.as_deref(), Some("10"));
    assert!(red.stale);
    let green = settle(
        &link("330000", Some("00")),
        Known::Live("00".into(), Some("2026-11-23 10:00:00".into())),
    );
    assert!(!green.stale);
    let statuses = [red, green];
    let a = merge(&entry(), &statuses, true).unwrap();
    assert_eq!(a["code"]["codeColor"], "10", "{a}");
    assert_eq!(a["code"]["issuerRegion"], "320000");
    assert_eq!(a["partial"], true);
    assert_eq!(a["unavailableRegions"], json!(["320000"]));
    assert_eq!(a["regionStatus"][0]["available"], false);
    assert_eq!(a["regionStatus"][0]["codeColor"], "10");
    assert_eq!(a["regionStatus"][0]["updateTime"], "2026-11-22 09:00:00");
    // A national code carries it too.
    assert_eq!(
        national_status(&statuses).unwrap().colour.as_deref(),
        Some("10")
    );
    // A live answer replaces what the registry held.
    let live = settle(&link("320000", Some("10")), Known::Live("00".into(), None));
    assert_eq!(live.colour.as_deref(), Some("00"));
    // A region with no code keeps its stored status, and that is current.
    let stored = settle(&link("320000", Some("01")), Known::Stored);
    assert_eq!(
        (stored.colour.as_deref(), stored.stale),
        (Some("01"), false)
    );
}

#[test]
fn no_national_code_while_a_linked_regions_status_is_unknown() {
    let unknown = settle(&link("320000", None), Known::Unanswered);
    let statuses = [unknown, status("330000", Some("00"))];
    let e = national_status(&statuses).unwrap_err();
    assert_eq!(e.return_code(), ReturnCode::UpstreamTimeout);
    // Without naming the region: it may be outside the caller's regions.
    assert!(
        e.to_string()
            .contains("a linked region's status is not known"),
        "{e}"
    );
    assert!(!e.to_string().contains("320000"), "{e}");
    // The query still answers, partially, with the green it has.
    let a = merge(&entry(), &statuses, true).unwrap();
    assert_eq!(
        (a["code"]["codeColor"].as_str(), &a["partial"]),
        (Some("00"), &json!(true))
    );
}

#[test]
fn the_most_severe_colour_wins_and_names_its_region() {
    let s = [
        status("110000", Some("00")),
        status("320000", Some("10")),
        status("330000", Some("01")),
    ];
    let a = merge(&entry(), &s, true).unwrap();
    assert_eq!(a["code"]["codeColor"], "10");
    assert_eq!(a["code"]["issuerRegion"], "320000");
    assert!(
        a["code"]["colorReason"]
            .as_str()
            .unwrap()
            .contains("320000")
    );
    assert_eq!(a["partial"], false);
    assert_eq!(a["regionStatus"].as_array().unwrap().len(), 3);
    assert!(a.get("unavailableRegions").is_none());
}

#[test]
fn a_silent_region_makes_the_answer_partial_and_none_is_9001() {
    let s = [status("320000", None), status("330000", Some("00"))];
    let a = merge(&entry(), &s, true).unwrap();
    assert_eq!(a["code"]["codeColor"], "00");
    assert_eq!(a["partial"], true);
    assert_eq!(a["unavailableRegions"], json!(["320000"]));
    assert_eq!(a["regionStatus"][0]["available"], false);
    let none = [status("320000", None)];
    let e = merge(&entry(), &none, true).unwrap_err();
    assert_eq!(e.return_code(), ReturnCode::UpstreamTimeout);
}

#[test]
fn only_the_gateways_own_tickets_and_consents_are_recognised() {
    assert!(is_gateway_ticket(&json!({"bizExtData": "00000000.abc"})));
    assert!(!is_gateway_ticket(&json!({"bizExtData": "33000001.abc"})));
    assert!(!is_gateway_ticket(&json!({"bizExtData": "000000001abc"})));
    assert!(is_gateway_consent(&json!({"authCode": "eyJa.eyJb.c"})));
    assert!(!is_gateway_consent(&json!({"authCode": "AUTH-1234"})));
}

#[test]
fn tickets_are_sealed_for_one_verifier_and_cannot_be_altered() {
    let key = ticket_key(&[9u8; 32]).unwrap();
    let body = TicketBody {
        v: 1,
        p: Some(Pseudonym([3u8; 32]).to_hex()),
        app: "B1".into(),
        rgn: "330000".into(),
        scope: vec!["code".into()],
        inner: Some("33000001.inner".into()),
        iat: 0,
        exp: 10,
    };
    let t = key.seal_json(&body).unwrap();
    assert!(t.starts_with("00000000."));
    let back: TicketBody = key.open_json(&t).unwrap();
    assert_eq!(back.app, "B1");
    assert_eq!(back.inner.as_deref(), Some("33000001.inner"));
    let mut bad = t.clone().into_bytes();
    let n = bad.len() - 3;
    bad[n] = if bad[n] == b'A' { b'B' } else { b'A' };
    assert!(
        key.open_json::<TicketBody>(&String::from_utf8(bad).unwrap())
            .is_err()
    );
    let other = ticket_key(&[8u8; 32]).unwrap();
    assert!(other.open_json::<TicketBody>(&t).is_err());
}

#[test]
fn a_failing_correction_store_is_not_shown_to_the_caller() {
    use crate::corrections::CorrectionError;
    let e = events::correction_error(CorrectionError::Store(crate::store::StoreError::Db(
        "I/O error on /var/lib/hutong/state.redb".into(),
    )));
    assert_eq!(e.return_code(), ReturnCode::SystemError);
    assert_eq!(e.public_message(), "internal error");
    let unknown = events::correction_error(CorrectionError::UnknownTicket {
        ticket_id: "T1".into(),
    });
    assert_ne!(unknown.return_code(), ReturnCode::SystemError);
    assert!(unknown.public_message().contains("T1"));
}

#[test]
fn a_status_event_naming_the_person_reaches_answers_kept_under_their_codes() {
    let p = Pseudonym([3u8; 32]);
    let mut e = entry();
    let mut zj = RegionLink::without_code("330000".into(), Source::Verification, 1);
    zj.code_id = Some("33000001ABC".into());
    e.regions.insert("330000".into(), zj);
    e.regions.insert(
        "110000".into(),
        RegionLink::without_code("110000".into(), Source::Verification, 1),
    );
    e.national_code_id = Some("00000000N1".into());
    let got = events::purge_subjects(Some(p), &["33000001ABC".into()], Some(&e));
    assert_eq!(
        got,
        [
            p.to_hex(),
            "cid:00000000N1".into(),
            "cid:33000001ABC".into()
        ]
    );
    // Codes alone, no person known.
    let got = events::purge_subjects(None, &["X1".into()], None);
    assert_eq!(got, ["cid:X1"]);
}

#[test]
fn a_callback_names_the_person_only_by_a_code_the_region_told_has_seen() {
    let mut e = entry();
    for (region, code) in [("330000", "ZJ-CODE"), ("320000", "JS-CODE")] {
        let mut l = RegionLink::without_code(region.into(), Source::Verification, 1);
        l.code_id = Some(code.into());
        e.regions.insert(region.into(), l);
    }
    // Beijing's verifier scanned Zhejiang's code; Shanghai only took a declaration.
    let mut bj = RegionLink::without_code("110000".into(), Source::Verification, 1);
    bj.scanned_code_id = Some("ZJ-CODE".into());
    e.regions.insert("110000".into(), bj);
    e.regions.insert(
        "310000".into(),
        RegionLink::without_code("310000".into(), Source::Declaration, 1),
    );
    let time = "2026-12-08 09:00:00".to_owned();
    // Jiangsu turns the person red.
    let got = events::status_callbacks(&e, "320000", ("E1", "10", Some(&time)), |_| true);
    let told: Vec<(&str, Option<&str>)> = got
        .iter()
        .map(|(r, c)| (r.as_str(), c.code_id.as_deref()))
        .collect();
    assert_eq!(
        told,
        [("110000", Some("ZJ-CODE")), ("330000", Some("ZJ-CODE"))],
        "Jiangsu's code id reaches no other region; Shanghai, which knows no code, is not told"
    );
    assert!(got.iter().all(|(_, c)| c.source_region == "320000"
        && c.colour == "10"
        && c.event_id == "E1"
        && c.status_time.as_ref() == Some(&time)));
    // A region that takes no callbacks is not told.
    let got = events::status_callbacks(&e, "320000", ("E1", "10", None), |r| r != "110000");
    assert!(got.iter().all(|(r, _)| r != "110000"), "{got:?}");
}

#[test]
fn a_regions_unreadable_expected_time_is_left_out_and_the_ticket_kept() {
    let answer = json!({"ticketId": "CT-1", "status": "ACCEPTED", "expectedTime": "next week"});
    let t = events::correction_ticket("CT-1", "A1", "330000", None, &answer, 5).unwrap();
    assert_eq!(t.ticket_id, "CT-1");
    assert_eq!(t.expected_time, None);
    let answer = json!({"ticketId": "CT-1", "expectedTime": "2026-12-15 09:00:00"});
    let t = events::correction_ticket("CT-1", "A1", "330000", None, &answer, 5).unwrap();
    assert_eq!(t.expected_time.as_deref(), Some("2026-12-15 09:00:00"));
    // A ticket id the registry cannot hold: the region's error, 9002.
    let e = events::correction_ticket("CT-\n1", "A1", "330000", None, &answer, 5).unwrap_err();
    assert_eq!(e.return_code(), ReturnCode::UpstreamFailed);
}

#[test]
fn a_held_status_older_than_its_regions_validity_is_no_longer_current() {
    use crate::national::time::DateTime;
    let day_ms = 86_400_000u64;
    let now = 1_800_000_000_000u64;
    let validity = Duration::from_secs(8 * 86_400);
    let at = |ms: u64| DateTime::from_unix((ms / 1000) as i64).to_string();
    let mut l = link("320000", Some("00"));
    l.status_time = Some(at(now - 10 * day_ms));
    assert!(outlived(&l, validity, now), "ten days old");
    l.status_time = Some(at(now - day_ms));
    assert!(!outlived(&l, validity, now), "a day old");
    // Without the region's time: by when the gateway learned it.
    l.status_time = None;
    l.seen_ms = now - 9 * day_ms;
    assert!(outlived(&l, validity, now));
    // And an answer dates it so, not now.
    let s = settle(&l, Known::Stored);
    assert_eq!(s.update_time, Some(at(now - 9 * day_ms)));
}

#[test]
fn a_consent_names_its_person_sealed_and_differently_each_time() {
    use super::consent::{open_subject, seal_subject};
    let key = crate::crypto::Sm4Key::from_bytes(&[5u8; 16]).unwrap();
    let p = Pseudonym([3u8; 32]);
    let (a, b) = (
        seal_subject(&key, &p).unwrap(),
        seal_subject(&key, &p).unwrap(),
    );
    assert_ne!(a, b, "two consents for one person cannot be matched");
    assert!(!a.contains(&p.to_hex()) && !a.contains("0303030303"));
    assert_eq!(open_subject(&key, &a), Some(p));
    assert_eq!(open_subject(&key, &b), Some(p));
    // Another gateway's key, the pseudonym in clear (an older build's), garbage: no one.
    let other = crate::crypto::Sm4Key::from_bytes(&[6u8; 16]).unwrap();
    assert_eq!(open_subject(&other, &a), None);
    assert_eq!(open_subject(&key, &p.to_hex()), None);
    assert_eq!(open_subject(&key, "!"), None);
}

#[test]
fn only_what_a_region_said_now_is_written_back() {
    let l = link("320000", Some("00"));
    assert!(settle(&l, Known::Live("10".into(), None)).live);
    assert!(!settle(&l, Known::Stored).live);
    assert!(!settle(&l, Known::Unanswered).live);
}

#[test]
fn a_status_time_ahead_of_the_clock_is_refused() {
    use crate::national::time::DateTime;
    let now = (now_ms() / 1000) as i64;
    let at = |t: i64| json!({"codeColor": "10", "updateTime": DateTime::from_unix(t).to_string()});
    assert!(
        events::status_of(&at(now + 60)).is_ok(),
        "a minute: clocks differ"
    );
    let e = events::status_of(&at(now + 3_600)).unwrap_err();
    assert_eq!(e.return_code(), ReturnCode::BadFormat);
    assert!(e.to_string().contains("ahead of the clock"), "{e}");
    let e = events::status_of(&json!({"updateTime": "2062-01-01 00:00:00"})).unwrap_err();
    assert_eq!(e.return_code(), ReturnCode::BadFormat);
}

#[test]
fn a_stale_green_passes_no_one() {
    // The registry's green for a region that is down now: shown, but it clears no one.
    let stale_green = settle(&link("320000", Some("00")), Known::Unanswered);
    assert!(stale_green.stale);
    // Alone: no status counts, 9001 (as when no region answers).
    let e = merge(&entry(), std::slice::from_ref(&stale_green), true).unwrap_err();
    assert_eq!(e.return_code(), ReturnCode::UpstreamTimeout);
    // Beside a live green: the answer is green and partial; no national code, since the
    // region that is down could be red by now.
    let statuses = [stale_green.clone(), status("330000", Some("00"))];
    let a = merge(&entry(), &statuses, true).unwrap();
    assert_eq!(a["code"]["issuerRegion"], "330000", "{a}");
    assert_eq!(a["partial"], true);
    assert_eq!(
        national_status(&statuses).unwrap_err().return_code(),
        ReturnCode::UpstreamTimeout
    );
    // Beside a live red: the code is red whatever the stale region says.
    let statuses = [stale_green, status("330000", Some("10"))];
    assert_eq!(
        national_status(&statuses).unwrap().colour.as_deref(),
        Some("10")
    );
}

#[test]
fn a_region_ticket_too_long_to_carry_is_left_out_not_the_verifiers_ticket() {
    let key = ticket_key(&[9u8; 32]).unwrap();
    let body = |inner: &str| TicketBody {
        v: 1,
        p: Some(Pseudonym([3u8; 32]).to_hex()),
        app: "B1".into(),
        rgn: "330000".into(),
        scope: vec!["code".into()],
        inner: Some(inner.to_owned()),
        iat: 0,
        exp: 10,
    };
    // A region ticket of normal length rides inside.
    let t = tickets::seal_within_limit(&key, body("33000001.short")).unwrap();
    let back: TicketBody = key.open_json(&t).unwrap();
    assert_eq!(back.inner.as_deref(), Some("33000001.short"));
    // One the schema allows (1,024 characters) but too long to wrap: left out, and the
    // gateway's ticket stays one the next query accepts.
    let long = format!("33000001.{}", "x".repeat(1000));
    assert!(key.seal_json(&body(&long)).unwrap().len() > crate::ticket::MAX_TICKET_LEN);
    let t = tickets::seal_within_limit(&key, body(&long)).unwrap();
    assert!(t.len() <= crate::ticket::MAX_TICKET_LEN, "{}", t.len());
    let back: TicketBody = key.open_json(&t).unwrap();
    assert_eq!((back.inner, back.app.as_str()), (None, "B1"));
}

#[test]
fn a_held_region_waits_longer_each_time_its_breaker_refuses_and_not_once_called() {
    use super::tasks::Holds;
    let mut h = Holds::default();
    assert_eq!(h.until("110000", 0), None);
    h.refused("110000", 1_000);
    assert_eq!(h.until("110000", 1_000), Some(6_000));
    assert_eq!(h.until("110000", 6_000), None, "due again at its end");
    assert_eq!(h.until("320000", 1_000), None, "another region is not held");
    // Refused again: twice the wait, up to five minutes.
    h.refused("110000", 6_000);
    assert_eq!(h.until("110000", 6_000), Some(16_000));
    for _ in 0..10 {
        h.refused("110000", 0);
    }
    assert_eq!(h.until("110000", 0), Some(300_000));
    // Called (whatever it answered): no longer held, and the wait starts over.
    h.called("110000");
    assert_eq!(h.until("110000", 0), None);
    h.refused("110000", 0);
    assert_eq!(h.until("110000", 0), Some(5_000));
}

fn delivery(id: u64, target: &str, colour: &str, time: &str) -> crate::link::outbox::Delivery {
    crate::link::outbox::Delivery {
        id,
        target_region: target.into(),
        event: CallbackEvent {
            kind: crate::link::outbox::KIND_STATUS.into(),
            event_id: format!("e{id}"),
            source_region: "330000".into(),
            code_id: Some("ZJ01".into()),
            colour: colour.into(),
            status_time: Some(time.into()),
            venue_code: None,
            visit_region: None,
        },
        state: crate::link::outbox::DeliveryState::Pending,
        attempts: 0,
        next_at_ms: 0,
        created_ms: 0,
        delivered_ms: None,
        last_error: None,
        held_since_ms: None,
    }
}

/// Red at 10:00 failed and is retried after green at 10:05 was delivered: sent, it would
/// overwrite green at the region. Older statuses are given up, in a batch and after a
/// delivery; other regions and other codes are not touched.
#[test]
fn an_older_status_callback_is_not_sent_after_a_newer_one() {
    use super::tasks::{Newest, newest_first};
    let red = delivery(1, "110000", "10", "2026-11-23 10:00:00");
    let green = delivery(2, "110000", "00", "2026-11-23 10:05:00");
    let other_region = delivery(3, "320000", "10", "2026-11-23 10:00:00");
    let mut newest = Newest::default();
    // Both due at once: only the newer goes.
    let (send, older) = newest_first(
        vec![red.clone(), green.clone(), other_region.clone()],
        &newest,
    );
    assert_eq!(send.iter().map(|d| d.id).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(older, [1]);
    // Green delivered first; red's retry comes due later: given up.
    newest.delivered(&green);
    let (send, older) = newest_first(vec![red.clone(), other_region], &newest);
    assert_eq!(send.iter().map(|d| d.id).collect::<Vec<_>>(), [3]);
    assert_eq!(older, [1]);
    // A newer one still goes.
    let later = delivery(4, "110000", "10", "2026-11-23 10:09:00");
    let (send, older) = newest_first(vec![later], &newest);
    assert_eq!((send.len(), older.len()), (1, 0));
}
