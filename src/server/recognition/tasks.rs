//! The gateway's background tasks: callback delivery and retention.

use super::*;
use crate::link::outbox::DeliveryState;
use crate::server::NotifyFailure;

/// The retention job (DESIGN.md §8): at start, and then every `[retention]
/// purge_interval_secs`, audit records, idempotency records and closed correction tickets
/// past their periods ([`crate::retention::purge`]), and link entries and finished callback
/// deliveries not touched for the audit period. The first pass runs at once: a gateway
/// restarted more often than the interval (rolling deploys, a nightly restart with a daily
/// interval) would otherwise never purge. The interval is read again after each pass, so a
/// reload that shortens it applies from the next wait.
pub fn spawn_retention(gw: Arc<Gateway>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let policy = gw.config.load().retention;
            let g = Arc::clone(&gw);
            let done = tokio::task::spawn_blocking(move || {
                let now = now_ms();
                let cutoff = policy.audit_cutoff_ms(now);
                let report = crate::retention::purge(&g.store, &policy, now);
                let links = g.links.purge_before(cutoff);
                let deliveries = g.outbox.purge_before(cutoff);
                (report, links, deliveries)
            })
            .await;
            match done {
                Ok((report, links, deliveries)) => {
                    match report {
                        Ok(r) => tracing::info!(report = %r, "retention purge"),
                        Err(e) => tracing::warn!(error = %e, "retention purge incomplete"),
                    }
                    match (links, deliveries) {
                        (Ok(links), Ok(deliveries)) => tracing::info!(
                            links,
                            deliveries,
                            "retention purge of links and callback records"
                        ),
                        (links, deliveries) => tracing::warn!(
                            links = %links.map_or_else(|e| e.to_string(), |n| n.to_string()),
                            deliveries = %deliveries.map_or_else(|e| e.to_string(), |n| n.to_string()),
                            "retention purge of links and callback records incomplete"
                        ),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "retention job failed"),
            }
            tokio::time::sleep(gw.config.load().retention.interval()).await;
        }
    })
}

/// The least a callback waits when the region's breaker kept it from being sent: the
/// breaker's default cool-down.
const NOT_SENT_WAIT_MS: u64 = 5_000;

/// The longest a region whose breaker keeps refusing holds its callbacks between looks.
const MAX_HOLD_MS: u64 = 300_000;

/// The regions whose breaker refused a callback, each with the time its callbacks wait
/// until and the wait that gave it: doubled (to [`MAX_HOLD_MS`]) each time the breaker
/// still refuses, forgotten once the region is called again.
#[derive(Debug, Default)]
pub(super) struct Holds(std::collections::HashMap<String, (u64, u64)>);

impl Holds {
    /// Until when `region`'s callbacks wait, if they do at `now_ms`.
    pub(super) fn until(&self, region: &str, now_ms: u64) -> Option<u64> {
        self.0
            .get(region)
            .map(|&(until, _)| until)
            .filter(|&until| until > now_ms)
    }

    /// `region`'s breaker refused a callback at `now_ms`.
    pub(super) fn refused(&mut self, region: &str, now_ms: u64) {
        let wait = self
            .0
            .get(region)
            .map_or(NOT_SENT_WAIT_MS, |&(_, w)| (w * 2).min(MAX_HOLD_MS));
        self.0.insert(region.to_owned(), (now_ms + wait, wait));
    }

    /// `region` was called (whatever it answered): its callbacks go out as they fall due.
    pub(super) fn called(&mut self, region: &str) {
        self.0.remove(region);
    }
}

/// The newest status each region was told of each person's code, by the region it came
/// from: a status callback older than one already delivered is not sent. Callbacks go out
/// in parallel and a failed one is retried later, so an older status (red, retried after a
/// 503) could reach a region after a newer one (green) and overwrite it there. Kept in
/// memory, for this run (a gateway restarted between the two deliveries is not covered),
/// and at most [`MAX_NEWEST`] keys (then it starts again).
#[derive(Debug, Default)]
pub(super) struct Newest(std::collections::HashMap<(String, String, String), String>);

/// Keys [`Newest`] holds at most.
const MAX_NEWEST: usize = 100_000;

impl Newest {
    fn key(d: &crate::link::outbox::Delivery) -> Option<((String, String, String), &str)> {
        let e = &d.event;
        if e.kind != crate::link::outbox::KIND_STATUS {
            return None;
        }
        let key = (
            d.target_region.clone(),
            e.code_id.clone()?,
            e.source_region.clone(),
        );
        Some((key, e.status_time.as_deref()?))
    }

    /// Whether `d` is a status older than one its region was already told (times are the
    /// standard's `yyyy-MM-dd HH:mm:ss`, which sort as text).
    pub(super) fn superseded(&self, d: &crate::link::outbox::Delivery) -> bool {
        Self::key(d).is_some_and(|(k, t)| self.0.get(&k).is_some_and(|told| t < told.as_str()))
    }

    /// `d` was delivered.
    pub(super) fn delivered(&mut self, d: &crate::link::outbox::Delivery) {
        if let Some((k, t)) = Self::key(d) {
            if self.0.len() >= MAX_NEWEST && !self.0.contains_key(&k) {
                self.0.clear();
            }
            let newer = self.0.get(&k).is_none_or(|told| t > told.as_str());
            if newer {
                self.0.insert(k, t.to_owned());
            }
        }
    }
}

/// Of `due`, the ones to send now, each status the newest of its (region, code, source) in
/// the batch and not older than one delivered (`newest`); and the older ones, which are
/// given up.
pub(super) fn newest_first(
    due: Vec<crate::link::outbox::Delivery>,
    newest: &Newest,
) -> (Vec<crate::link::outbox::Delivery>, Vec<u64>) {
    let mut latest: std::collections::HashMap<(String, String, String), String> =
        std::collections::HashMap::new();
    for d in &due {
        if let Some((k, t)) = Newest::key(d) {
            let e = latest.entry(k).or_default();
            if t > e.as_str() {
                *e = t.to_owned();
            }
        }
    }
    let mut send = Vec::new();
    let mut older = Vec::new();
    for d in due {
        let older_in_batch =
            Newest::key(&d).is_some_and(|(k, t)| latest.get(&k).is_some_and(|l| t < l.as_str()));
        if older_in_batch || newest.superseded(&d) {
            older.push(d.id);
        } else {
            send.push(d);
        }
    }
    (send, older)
}

/// Counts `n` callbacks abandoned without an attempt: their region could not be called
/// for [`crate::link::outbox::MAX_PENDING_MS`].
fn count_abandoned(gw: &Gateway, n: usize) {
    if n > 0 {
        gw.metrics
            .callbacks_abandoned
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(
            callbacks = n,
            "status callbacks abandoned: their region could not be called for a day"
        );
    }
}

/// The delivery task: sends due callbacks, records every attempt, and sleeps until woken
/// by a new event or [`DELIVERY_TICK`]. Pending deliveries from before a restart are due
/// at once. The callbacks due to a region whose breaker is open are put past its hold in
/// one transaction each pass, without a call, and the next pass follows at once: a region
/// that is down for days does not keep the others' callbacks behind its own.
pub fn spawn_deliveries(gw: Arc<Gateway>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut holds = Holds::default();
        let mut newest = Newest::default();
        loop {
            let outbox = Arc::clone(&gw.outbox);
            let now = now_ms();
            let due = match blocking(move || outbox.due(now, 64)).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "callback outbox unreadable");
                    Vec::new()
                }
            };
            let mut waiting: std::collections::HashMap<u64, Vec<u64>> =
                std::collections::HashMap::new();
            let mut to_send = Vec::new();
            let (due, older) = newest_first(due, &newest);
            for id in older {
                let outbox = Arc::clone(&gw.outbox);
                let why = "a newer status of the same code was sent".to_owned();
                if let Err(e) = blocking(move || outbox.give_up(id, why, now)).await {
                    tracing::warn!(error = %e, "an older status callback not given up");
                }
            }
            for d in due {
                match holds.until(&d.target_region, now) {
                    Some(until) => waiting.entry(until).or_default().push(d.id),
                    None => to_send.push(d),
                }
            }
            let mut moved = 0;
            for (until, ids) in waiting {
                let outbox = Arc::clone(&gw.outbox);
                match blocking(move || outbox.postpone_many(&ids, until, now)).await {
                    Ok((n, abandoned)) => {
                        moved += n;
                        count_abandoned(&gw, abandoned);
                    }
                    Err(e) => tracing::warn!(error = %e, "held callbacks not postponed"),
                }
            }
            let mut sends = tokio::task::JoinSet::new();
            let sending = !to_send.is_empty();
            for d in to_send {
                let gw = Arc::clone(&gw);
                sends.spawn(async move {
                    let event = serde_json::to_value(&d.event).unwrap_or(Value::Null);
                    let outcome = match tokio::time::timeout(
                        DELIVERY_TIMEOUT,
                        gw.relay.notify_region(&d.target_region, &event),
                    )
                    .await
                    {
                        Ok(r) => r,
                        Err(_) => Err(NotifyFailure::retry("no acknowledgement in time".into())),
                    };
                    let ok = outcome.is_ok();
                    let not_sent = matches!(&outcome, Err(f) if f.not_sent);
                    let region = d.target_region.clone();
                    let sent = d.clone();
                    let (outbox, now) = (Arc::clone(&gw.outbox), now_ms());
                    let recorded = blocking(move || match outcome {
                        Err(f) if f.permanent => outbox.give_up(d.id, f.why, now),
                        // The region's breaker is open: no attempt was made, none is counted.
                        Err(f) if f.not_sent => outbox.postpone(
                            d.id,
                            now + crate::link::outbox::backoff_ms(d.attempts + 1)
                                .max(NOT_SENT_WAIT_MS),
                            now,
                        ),
                        other => outbox.record(d.id, other.map_err(|f| f.why), now),
                    });
                    match recorded.await {
                        Ok(rec) if not_sent && rec.state == DeliveryState::Abandoned => {
                            count_abandoned(&gw, 1);
                        }
                        Ok(rec) if not_sent => tracing::debug!(
                            delivery = rec.id,
                            region = %rec.target_region,
                            "status callback waits: the region's breaker is open"
                        ),
                        Ok(rec) => {
                            use std::sync::atomic::Ordering::Relaxed;
                            let m = &gw.metrics;
                            match rec.state {
                                DeliveryState::Delivered => {
                                    m.callbacks_delivered.fetch_add(1, Relaxed)
                                }
                                DeliveryState::Pending => m.callback_failures.fetch_add(1, Relaxed),
                                DeliveryState::Abandoned => {
                                    m.callback_failures.fetch_add(1, Relaxed);
                                    m.callbacks_abandoned.fetch_add(1, Relaxed)
                                }
                            };
                            tracing::info!(
                                delivery = rec.id,
                                region = %rec.target_region,
                                attempts = rec.attempts,
                                delivered = ok,
                                "status callback"
                            );
                        }
                        Err(e) => tracing::warn!(error = %e, "callback attempt not recorded"),
                    }
                    (region, not_sent, ok.then_some(sent))
                });
            }
            while let Some(joined) = sends.join_next().await {
                if let Ok((region, not_sent, delivered)) = joined {
                    if let Some(d) = delivered {
                        newest.delivered(&d);
                    }
                    if not_sent {
                        holds.refused(&region, now_ms());
                    } else {
                        holds.called(&region);
                    }
                }
            }
            // Only held callbacks were due, and they moved: the next ones at once.
            if !sending && moved > 0 {
                continue;
            }
            tokio::select! {
                () = gw.deliveries.notified() => {}
                () = tokio::time::sleep(DELIVERY_TICK) => {}
            }
        }
    })
}
