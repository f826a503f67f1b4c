//! Status events and callbacks, venue codes and visits, correction tickets.

use super::*;
use crate::server::{Answer, services};

/// A region's `codeColor` and `updateTime`, each checked: they are kept in the links,
/// merged into answers, and written in each region's own date format into callbacks, so
/// a value outside the colour table or a time that does not parse is refused (1002).
pub(super) fn status_of(biz: &Value) -> Result<(Option<String>, Option<String>), GatewayError> {
    let colour = text(biz, &["codeColor"]).map(str::to_owned);
    if colour
        .as_deref()
        .is_some_and(|c| crate::code::Colour::parse(c).is_none())
    {
        return Err(refuse(
            ReturnCode::BadFormat,
            "codeColor is not a colour code",
        ));
    }
    let time = text(biz, &["updateTime"]).map(str::to_owned);
    match time.as_deref().map(crate::national::time::DateTime::parse) {
        Some(None) => {
            return Err(refuse(
                ReturnCode::BadFormat,
                "updateTime is not a time (yyyy-MM-dd HH:mm:ss)",
            ));
        }
        // Times order statuses (a newer one is never replaced by an older): one far ahead
        // of the clock would pin the region's status until then.
        Some(Some(t))
            if t.unix() > i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX) + FUTURE_SKEW_SECS =>
        {
            return Err(refuse(
                ReturnCode::BadFormat,
                "updateTime is ahead of the clock (by more than 5 minutes)",
            ));
        }
        _ => {}
    }
    Ok((colour, time))
}

/// How far ahead of the gateway's clock a region's `updateTime` may be, seconds (the
/// envelope's own timestamp window).
const FUTURE_SKEW_SECS: i64 = 300;

/// `POST /phic/v1/statusEvent` from a region: who changed (`user`, or the region's
/// `codeIds`), and optionally to what (`codeColor`, `updateTime`). Updates the links,
/// purges every cached answer about the person, and queues a callback to every other
/// linked region that takes them.
pub(in crate::server) async fn status_event(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
) -> Result<(Value, Option<Pseudonym>), GatewayError> {
    let source = home_region(gw, &call.client.region);
    let mut ids = services::strings_at(biz, "codeIds").unwrap_or_default();
    ids.truncate(64);
    // Each id becomes a cache subject, kept in the cache's purge log: bounded as a code
    // content is (`A..512`), in visible ASCII as every code id is.
    if ids
        .iter()
        .any(|id| id.is_empty() || id.len() > 512 || !id.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(refuse(
            ReturnCode::BadFormat,
            "codeIds: each is a code id of 1 to 512 visible ASCII characters",
        ));
    }
    bounded_user_id(biz)?;
    let subject = services::subject_of(gw, call, biz);
    if subject.is_none() && ids.is_empty() {
        return Err(refuse(
            ReturnCode::MissingParameter,
            "statusEvent names no person (user) and no codeIds",
        ));
    }
    let (colour, time) = status_of(biz)?;
    let dated = time.is_some();
    // An event without a time is dated when the gateway received it: kept undated, it
    // would keep the time of the region's previous event, and look old at once.
    let time = time.or_else(|| Some(standard_time(now_ms())));
    let event_id = match text(biz, &["eventId"]) {
        Some(id) if crate::envelope::valid_id(id) => id.to_owned(),
        Some(_) => {
            return Err(refuse(
                ReturnCode::BadFormat,
                "eventId is not an id (1 to 64 letters, digits, ., - or _)",
            ));
        }
        None => crate::envelope::random_id().map_err(|e| GatewayError::Internal(e.to_string()))?,
    };

    // The person: named, or found from the region's code ids.
    let (links, src, ids2) = (Arc::clone(&gw.links), source.clone(), ids.clone());
    let person = match subject {
        Some(p) => Some(p),
        None => blocking(move || {
            for id in &ids2 {
                if let Some(p) = links.by_code(&src, id)? {
                    return Ok(Some(p));
                }
            }
            Ok(None)
        })
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?,
    };
    // From the registry's write on, the work runs in its own task: the caller's deadline
    // drops the caller's future, and with it, work after the write (the cache's purge, the
    // callbacks) would be lost with the status already recorded.
    let event = Event {
        source,
        person,
        ids,
        colour,
        time,
        dated,
        event_id: event_id.clone(),
    };
    let (purged, notified) = tokio::spawn(apply_event(Arc::clone(gw), event))
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))??;
    Ok((
        json!({"purged": purged, "notified": notified, "eventId": event_id}),
        person,
    ))
}

/// A status event, checked, and the person it is about.
struct Event {
    source: String,
    person: Option<Pseudonym>,
    ids: Vec<String>,
    colour: Option<String>,
    time: Option<String>,
    dated: bool,
    event_id: String,
}

/// Records `e` in the registry, purges the cache and queues the callbacks: how many
/// answers were purged, and how many regions are told.
async fn apply_event(gw: Arc<Gateway>, e: Event) -> Result<(usize, usize), GatewayError> {
    let gw = &gw;
    let Event {
        source,
        person,
        ids,
        colour,
        time,
        dated,
        event_id,
    } = e;
    // The region's status before this event, to tell a repeat (a retry, a periodic sync)
    // from a change.
    let (entry, before) = match person {
        Some(p) => {
            let (links, src, c, t, now) = (
                Arc::clone(&gw.links),
                source.clone(),
                colour.clone(),
                time.clone(),
                now_ms(),
            );
            blocking(move || {
                let before = links.get(&p)?.and_then(|e| {
                    e.regions
                        .get(&src)
                        .map(|l| (l.colour.clone(), l.status_time.clone()))
                });
                if let Some(c) = c {
                    let set =
                        links.set_status(&p, &src, &c, t.as_deref(), Source::StatusEvent, now)?;
                    if set.is_none() {
                        // The region has no link to the person yet (it keeps no code the
                        // gateway saw): the status is recorded all the same, on a link
                        // without a code, so that cross-region answers and national codes
                        // see it. Acknowledged and dropped, it would be lost.
                        let mut l = RegionLink::without_code(src, Source::StatusEvent, now);
                        l.colour = Some(c);
                        l.status_time = t;
                        return Ok((
                            links.link(&p, l, &Holder::default(), now).map(Some)?,
                            before,
                        ));
                    }
                }
                Ok((links.get(&p)?, before))
            })
            .await
            .map_err(|e| GatewayError::Internal(e.to_string()))?
        }
        None => (None, None),
    };
    // The same colour again, at the same time (or undated): the regions were told, and a
    // second alert under a fresh event id could not be told from a new one.
    let repeated = before
        .as_ref()
        .is_some_and(|(c0, t0)| c0.is_some() && *c0 == colour && (!dated || *t0 == time));

    let mut purged = 0;
    for subject in purge_subjects(person, &ids, entry.as_ref()) {
        purged += gw.cache.purge_subject(&subject).await;
    }
    gw.metrics
        .cache_purged
        .fetch_add(purged as u64, std::sync::atomic::Ordering::Relaxed);

    // The risk alert: every other linked region that takes callbacks. An event older than
    // the status the registry holds for its region (the region's events came out of order)
    // changed nothing, and tells no one.
    let mut notified = 0;
    let applied = |e: &LinkEntry| {
        e.regions
            .get(&source)
            .is_some_and(|l| l.status_time == time)
    };
    if let (Some(e), Some(c)) = (entry.as_ref().filter(|e| applied(e) && !repeated), &colour) {
        let targets = status_callbacks(e, &source, (&event_id, c, time.as_ref()), |r: &str| {
            gw.relay.takes_callbacks(r)
        });
        notified = targets.len();
        if !targets.is_empty() {
            let (outbox, now) = (Arc::clone(&gw.outbox), now_ms());
            blocking(move || outbox.enqueue(&targets, now))
                .await
                .map_err(|e| GatewayError::Internal(e.to_string()))?;
            gw.deliveries.notify_one();
        }
    }
    Ok((purged, notified))
}

/// The callbacks of a status change in `source` (`(event id, colour, time)`) about the
/// person of `e`: one to every other linked region that `takes` them and knows a code of
/// theirs, named by it: the region's own, or the one its verifier last scanned. A region
/// that knows the person by no code (a consent, a declaration) is not told: a callback would
/// name no one to it, and another region's code id is never told to a region that did not
/// see it.
pub(super) fn status_callbacks(
    e: &LinkEntry,
    source: &str,
    (event_id, colour, time): (&str, &str, Option<&String>),
    takes: impl Fn(&str) -> bool,
) -> Vec<(String, CallbackEvent)> {
    e.regions
        .values()
        .filter(|l| l.region != source && takes(&l.region))
        .filter_map(|l| {
            let code_id = l.code_id.clone().or_else(|| l.scanned_code_id.clone())?;
            Some((
                l.region.clone(),
                CallbackEvent {
                    kind: crate::link::outbox::KIND_STATUS.into(),
                    event_id: event_id.to_owned(),
                    source_region: source.to_owned(),
                    code_id: Some(code_id),
                    colour: colour.to_owned(),
                    status_time: time.cloned(),
                    venue_code: None,
                    visit_region: None,
                },
            ))
        })
        .collect()
}

/// `POST /phic/v1/venueCode` from a region: a venue code (场所码) for a place in it.
pub(in crate::server) async fn issue_venue(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
) -> Result<Value, GatewayError> {
    let name = text(biz, &["venueName"])
        .ok_or_else(|| refuse(ReturnCode::MissingParameter, "venueName is required"))?
        .to_owned();
    if name.chars().count() > 100 {
        return Err(refuse(
            ReturnCode::BadFormat,
            "venueName is longer than 100",
        ));
    }
    let address = bounded_text(biz, &["address"], 200)?.map(str::to_owned);
    let region = text(biz, &["region"]).map_or_else(|| call.client.region.clone(), str::to_owned);
    if region.len() != 6 || !region.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse(
            ReturnCode::BadFormat,
            "region is not a 6-digit division code",
        ));
    }
    if home_region(gw, &region) != home_region(gw, &call.client.region) {
        return Err(refuse(
            ReturnCode::NoPermission,
            "a region issues venue codes for its own places",
        ));
    }
    let (venues, app, now) = (gw.venues.clone(), call.client.app_id.clone(), now_ms());
    let v = blocking(move || venues.issue(&name, address.as_deref(), &region, &app, now))
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    Ok(json!({
        "venueCode": v.id,
        "codeContent": v.content(gw.code_host()),
        "venueName": v.name,
        "region": v.region,
    }))
}

/// A verification that carries a venue code in `bizExtData` (Annex A's pass-through data)
/// is a traveler's scan at that venue: the visit is recorded in the audit log (the holder
/// sees it in their receipt) and the trip goes to the traveler's home region, the region of
/// the code scanned, by the callback outbox.
pub(in crate::server) async fn record_visit(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
    person: &Pseudonym,
    answer: &Answer,
) -> Result<(), GatewayError> {
    let Some(id) = text(biz, &["bizExtData"]).and_then(crate::link::venue::venue_id) else {
        return Ok(());
    };
    let (venues, id) = (gw.venues.clone(), id.to_owned());
    let Some(venue) = blocking(move || venues.get(&id))
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?
    else {
        return Ok(());
    };
    let home = text(biz, &["codeContent"]).and_then(|c| gw.relay.code_region(c));
    let now = now_ms();
    let time = standard_time(now);
    if let Some((home, code_id)) = home.filter(|(h, _)| gw.relay.takes_callbacks(h)) {
        let event = CallbackEvent {
            kind: crate::link::outbox::KIND_VISIT.into(),
            event_id: crate::envelope::random_id()
                .map_err(|e| GatewayError::Internal(e.to_string()))?,
            source_region: home_region(gw, &venue.region),
            code_id,
            // A kept answer is parsed only here, for a venue's visit.
            colour: text(&*answer.to_value()?, &["codeColor"])
                .unwrap_or("20")
                .to_owned(),
            status_time: Some(time),
            venue_code: Some(venue.id.clone()),
            visit_region: Some(venue.region.clone()),
        };
        let outbox = Arc::clone(&gw.outbox);
        blocking(move || outbox.enqueue(&[(home, event)], now))
            .await
            .map_err(|e| GatewayError::Internal(e.to_string()))?;
        gw.deliveries.notify_one();
    }
    services::audit(
        gw,
        call,
        "venueScan",
        Some(*person),
        ReturnCode::Success,
        &format!("venue {}", venue.id),
    )
    .await
}

/// After a correction the region accepted: its ticket is tracked from here on
/// (ACCEPTED → PROCESSING → DONE or REJECTED), by the region's updates to
/// `POST /phic/v1/correctionStatus`.
pub(in crate::server) async fn track_correction(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
    relayed: &Relayed,
) -> Result<(), GatewayError> {
    use crate::corrections::OpenOutcome;
    let Some(id) = text(&relayed.biz, &["ticketId"]) else {
        return Err(GatewayError::Domain {
            code: ReturnCode::UpstreamFailed,
            msg: "the region accepted the correction without a ticketId".into(),
        });
    };
    let region = relayed
        .region
        .clone()
        .unwrap_or_else(|| home_region(gw, &call.client.region));
    let subject = services::subject_of(gw, call, biz);
    let ticket = correction_ticket(
        id,
        &call.client.app_id,
        &region,
        subject,
        &relayed.biz,
        now_ms(),
    )?;
    let store = Arc::clone(&gw.corrections);
    let opened = blocking(move || {
        store
            .open(&ticket)
            .map_err(|e| crate::store::StoreError::Db(e.to_string()))
    })
    .await
    .map_err(|e| GatewayError::Internal(e.to_string()))?;
    if let OpenOutcome::AlreadyExists(t) = opened {
        // The region gave one id to two filers' tickets: its error, and this one is not
        // tracked. (Another region's ticket of the same id is another ticket.)
        if t.app_id != call.client.app_id {
            tracing::warn!(region = %t.region.as_str(), "correction ticket id reused by the region");
        }
    }
    Ok(())
}

/// The ticket a region's acceptance `answer` of a correction opens: its `ticketId` (`id`)
/// and status, filed by `app_id` in `region` about `subject`. The region's `expectedTime`
/// is a hint: one that is not the standard's time is left out (the ticket is tracked
/// without it). A ticket the registry cannot hold (its id too long, or with a control
/// character) is the region's error: 9002.
pub(super) fn correction_ticket(
    id: &str,
    app_id: &str,
    region: &str,
    subject: Option<Pseudonym>,
    answer: &Value,
    now_ms: u64,
) -> Result<crate::corrections::CorrectionTicket, GatewayError> {
    use crate::corrections::{CorrectionStatus, CorrectionTicket};
    let status = text(answer, &["status"])
        .and_then(CorrectionStatus::parse)
        .unwrap_or(CorrectionStatus::Accepted);
    let region = crate::trust::RegionCode::parse(region)
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let mut ticket = CorrectionTicket::new(id, app_id.to_owned(), region, subject, status, now_ms);
    ticket.expected_time = text(answer, &["expectedTime"])
        .filter(|t| crate::national::time::DateTime::parse(t).is_some())
        .map(str::to_owned);
    ticket.check().map_err(|e| GatewayError::Domain {
        code: ReturnCode::UpstreamFailed,
        msg: format!("the region's correction ticket cannot be tracked: {e}"),
    })?;
    Ok(ticket)
}

/// `POST /phic/v1/correctionStatus`, `{ticketId, status?, note?}`: the region that owns the
/// ticket moves it on (with `status`); the client that filed it reads it (without). Anyone
/// else, and an unknown id, get the same 1002, so ids cannot be probed. A region's `note`
/// is accepted and not kept: no answer shows it, and free text about one person's
/// correction may well name them.
pub(in crate::server) async fn correction_status(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
) -> Result<(Value, Option<Pseudonym>), GatewayError> {
    use crate::corrections::CorrectionStatus;
    let id = text(biz, &["ticketId"])
        .ok_or_else(|| refuse(ReturnCode::MissingParameter, "ticketId is required"))?
        .to_owned();
    let to = match text(biz, &["status"]) {
        Some(s) => Some(CorrectionStatus::parse(s).ok_or_else(|| {
            refuse(
                ReturnCode::BadFormat,
                "status is not ACCEPTED, PROCESSING, DONE or REJECTED",
            )
        })?),
        None => None,
    };
    let store = Arc::clone(&gw.corrections);
    let (app, own_region) = (
        call.client.app_id.clone(),
        home_region(gw, &call.client.region),
    );
    let is_region = call.client.role == crate::config::Role::Region;
    let now = now_ms();
    let ticket = tokio::task::spawn_blocking(move || {
        // A ticket is its region's: ids are unique within a region only.
        match to {
            Some(to) if is_region => store.advance(&own_region, &id, to, now, None),
            Some(_) => Err(crate::corrections::CorrectionError::UnknownTicket { ticket_id: id }),
            None => {
                if is_region {
                    if let Some(t) = store.get(&own_region, &id)? {
                        return Ok(t);
                    }
                }
                store.get_for(&id, &app)
            }
        }
    })
    .await
    .map_err(|e| GatewayError::Internal(e.to_string()))?
    .map_err(|e| match e {
        // Here the status comes from the calling region, not from an answer behind the
        // gateway: a move the state machine refuses is its bad value.
        e @ crate::corrections::CorrectionError::InvalidTransition { .. } => {
            refuse(ReturnCode::BadFormat, &e.to_string())
        }
        e => correction_error(e),
    })?;
    let history: Vec<Value> = ticket
        .history
        .iter()
        .map(|h| {
            json!({
                "status": h.status.as_str(),
                "time": standard_time(h.time_ms),
            })
        })
        .collect();
    let mut answer = json!({
        "ticketId": ticket.ticket_id,
        "status": ticket.status.as_str(),
        "history": history,
    });
    if let Some(t) = &ticket.expected_time {
        answer["expectedTime"] = Value::String(t.clone());
    }
    Ok((answer, ticket.subject))
}

/// A correction store's refusal as the caller sees it: an unknown ticket, a move the state
/// machine does not allow, a ticket out of bounds, each with its return code; a failing store
/// is the gateway's own fault (9999, its detail logged, never shown).
pub(super) fn correction_error(e: crate::corrections::CorrectionError) -> GatewayError {
    match e {
        crate::corrections::CorrectionError::Store(e) => GatewayError::Internal(e.to_string()),
        e => GatewayError::Domain {
            code: e.return_code(),
            msg: e.to_string(),
        },
    }
}

/// The cache subjects a status event purges: the person, each code it names, and each of
/// the person's codes the links hold. An answer about a PHIC1 code is kept under the
/// code's id (the request names the code, not the person), so an event that names only
/// the person must reach it through the person's codes.
pub(super) fn purge_subjects(
    person: Option<Pseudonym>,
    ids: &[String],
    entry: Option<&LinkEntry>,
) -> Vec<String> {
    let mut codes: Vec<&str> = ids.iter().map(String::as_str).collect();
    if let Some(e) = entry {
        codes.extend(e.regions.values().filter_map(|l| l.code_id.as_deref()));
        codes.extend(e.national_code_id.as_deref());
    }
    codes.sort_unstable();
    codes.dedup();
    person
        .map(|p| p.to_hex())
        .into_iter()
        .chain(codes.into_iter().map(services::code_subject))
        .collect()
}
