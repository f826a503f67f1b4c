//! The domain steps around the relay, once a call is authenticated and valid: requestId
//! idempotency for declarations and corrections, the response cache for `verifyCode` and
//! `queryHealthInfo`, the audit record of every access to personal data, and status events
//! that purge a person's cached answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::pipeline::now_ms;
use super::recognition::{self, TICKET_LEFT};
use super::{Answer, Call, Gateway, GatewayError};
use crate::audit::{NewRecord, Pseudonym};
use crate::cache::{CacheKey, Cached, freshness_deadline};
use crate::code::token;
use crate::idempotency::{PutOutcome, StoredResponse, fingerprint};
use crate::national::time::DateTime;
use crate::standard::{ReturnCode, ServiceName};
use crate::store::blocking;

/// JSON with object keys sorted at every level: the same request always gives the same
/// bytes, whatever order the caller wrote its keys in.
pub fn canonical_json(v: &Value) -> Vec<u8> {
    serde_json::to_vec(&Sorted(v)).unwrap_or_default()
}

/// A JSON value that serialises with the keys of every object in byte order. It writes
/// straight from the value: no sorted copy of the tree is built.
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(m) => {
                let mut entries: Vec<(&String, &Value)> = m.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, &Sorted(v))?;
                }
                map.end()
            }
            Value::Array(a) => s.collect_seq(a.iter().map(Sorted)),
            other => other.serialize(s),
        }
    }
}

/// The person a request is about, as a pseudonym, when it names one (`user`).
pub fn subject_of(gw: &Gateway, call: &Call, biz: &Value) -> Option<Pseudonym> {
    let user = biz.get("user")?;
    let (t, n) = (user.get("idType")?.as_str()?, user.get("idNo")?.as_str()?);
    Some(call.person.pseudonym(&gw.pseudonym_key, t, n))
}

/// The strings of the array at `key` of `biz` (a query's `scope`, an event's `codeIds`);
/// `None` when there is no array.
pub(super) fn strings_at(biz: &Value, key: &str) -> Option<Vec<String>> {
    biz.get(key).and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    })
}

/// Cache subject of a PHIC1 code: its code id (status events may name code ids).
pub(super) fn code_subject(cid: &str) -> String {
    format!("cid:{cid}")
}

/// Idempotency, the gateway's own answers (mutual recognition), cache and relay, in that
/// order. The answer comes with the person it turned out to be about, when the call named
/// no one but the gateway found them (a verification, a ticket).
pub async fn process(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
    subject: Option<Pseudonym>,
) -> Result<(Answer, Option<Pseudonym>), GatewayError> {
    // A repeat of a declaration or a correction is answered from its record before its
    // consent is looked at: a retry after the consent expired still gets the first answer.
    if gw.standard.service(call.service).idempotent {
        return idempotent(gw, call, biz).await.map(|v| (v.into(), None));
    }
    let unwrapped;
    let biz = if call.service != ServiceName::QueryHealthInfo
        && call.service != ServiceName::GenerateCode
    {
        unwrapped = with_region_consent(gw, call, biz)?;
        unwrapped.as_ref()
    } else {
        biz
    };
    // The gateway's own tickets and consents name the person; no region is involved yet.
    if call.service == ServiceName::QueryHealthInfo
        && (recognition::is_gateway_ticket(biz) || recognition::is_gateway_consent(biz))
    {
        return recognition::query(gw, call, biz)
            .await
            .map(|(v, p)| (v.into(), p));
    }
    if call.service == ServiceName::GenerateCode && recognition::is_gateway_consent(biz) {
        return recognition::generate_code(gw, call, biz)
            .await
            .map(|(v, p)| (v.into(), p));
    }
    gw.relay.authorize(call, biz)?;
    match call.service {
        ServiceName::VerifyCode => {
            let (answer, person) = cached(gw, call, biz, subject).await?;
            if let Some(p) = &person {
                recognition::record_visit(gw, call, biz, p, &answer).await?;
            }
            Ok((answer, person))
        }
        ServiceName::ApplyCodeAccess => recognition::apply_code_access(gw, call, biz)
            .await
            .map(|(v, p)| (v.into(), p)),
        ServiceName::QueryHealthInfo if gw.config.load().cache.query_health_info => {
            cached(gw, call, biz, subject).await
        }
        // A region's userToken the gateway relayed names the person whose code this is.
        ServiceName::GenerateCode => {
            let relayed = gw.relay.relay_reply(call, biz).await?;
            let token = biz.get("userToken").and_then(Value::as_str);
            let person = match (token, relayed.region.as_deref()) {
                (Some(t), Some(r)) => gw.user_tokens.person(&gw.pseudonym_key, (r, t), now_ms()),
                _ => None,
            };
            if let Some(p) = person {
                recognition::link_issued_code(gw, p, &relayed).await;
            }
            Ok((relayed.biz.into(), person))
        }
        _ => gw.relay.relay(call, biz).await.map(|v| (v.into(), None)),
    }
}

/// The call as it goes to the region: the gateway's consent, where the call carries one,
/// replaced by the region's own authCode inside it.
fn with_region_consent<'a>(
    gw: &Gateway,
    call: &Call,
    biz: &'a Value,
) -> Result<std::borrow::Cow<'a, Value>, GatewayError> {
    Ok(if recognition::is_gateway_consent(biz) {
        std::borrow::Cow::Owned(recognition::unwrap_consent(gw, call, biz)?)
    } else {
        std::borrow::Cow::Borrowed(biz)
    })
}

/// Calls of one `(appId, requestId)` in progress: a twin waits for the first to finish,
/// then finds its record, instead of relaying a second time. (A client that timed out and
/// retried while the region was still working, or two identical requests at once, would
/// otherwise file two declarations, or open two correction tickets.)
#[derive(Debug, Default)]
pub(crate) struct InFlight(Mutex<HashMap<(String, String), Slot>>);

/// One key's gate, and how many calls hold or wait for it: the entry goes with the last.
#[derive(Debug, Default)]
struct Slot {
    gate: Arc<tokio::sync::Mutex<()>>,
    users: usize,
}

/// One call's turn at its `(appId, requestId)`, from the moment it queues: dropped, while
/// waiting (its deadline) or after its turn, it leaves the count, and the last one out
/// removes the entry.
struct Turn<'a> {
    map: &'a InFlight,
    key: (String, String),
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl InFlight {
    /// Waits for the calls of `(app, rid)` before this one; holds the turn until dropped.
    async fn turn(&self, app: &str, rid: &str) -> Turn<'_> {
        let key = (app.to_owned(), rid.to_owned());
        let gate = {
            let mut map = crate::store::lock(&self.0);
            let slot = map.entry(key.clone()).or_default();
            slot.users += 1;
            Arc::clone(&slot.gate)
        };
        // Counted from here: a cancelled wait drops `turn`, which leaves the count.
        let mut turn = Turn {
            map: self,
            key,
            held: None,
        };
        turn.held = Some(gate.lock_owned().await);
        turn
    }

    /// Keys with a call in progress or waiting.
    pub(crate) fn len(&self) -> usize {
        crate::store::lock(&self.0).len()
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.held.take();
        let mut map = crate::store::lock(&self.map.0);
        if let Some(slot) = map.get_mut(&self.key) {
            slot.users -= 1;
            if slot.users == 0 {
                map.remove(&self.key);
            }
        }
    }
}

async fn idempotent(gw: &Arc<Gateway>, call: &Call, biz: &Value) -> Result<Value, GatewayError> {
    let _turn = gw
        .in_flight
        .turn(&call.client.app_id, &call.request_id)
        .await;
    let fp = fingerprint(&canonical_json(biz));
    let store = Arc::clone(&gw.idempotency);
    let (app, rid, now) = (
        call.client.app_id.clone(),
        call.request_id.clone(),
        now_ms(),
    );
    let reused = |code: ReturnCode| GatewayError::Domain {
        code,
        msg: "requestId was used before with other content".into(),
    };
    let dup_code = if call.service == ServiceName::CorrectHealthInfo {
        ReturnCode::CorrectionDuplicate
    } else {
        ReturnCode::BadFormat
    };
    let (a, r) = (app.clone(), rid.clone());
    let prev = if call.callers_request_id {
        blocking(move || store.get(&a, &r, now))
            .await
            .map_err(internal)?
    } else {
        None
    };
    if let Some(prev) = prev {
        return if prev.same_request(&fp) {
            decode(&prev.body)
        } else {
            Err(reused(dup_code))
        };
    }
    // The record's fingerprint is of the call as the caller sent it (`fp` above); the
    // region is sent its own consent.
    let biz = &*with_region_consent(gw, call, biz)?;
    let relayed = gw.relay.relay_reply(call, biz).await?;
    if matches!(
        call.service,
        ServiceName::DeclareHealth | ServiceName::DeclareTrip
    ) {
        recognition::link_declaration(gw, call, biz, relayed.region.as_deref()).await;
    }
    if call.service == ServiceName::CorrectHealthInfo {
        recognition::track_correction(gw, call, biz, &relayed).await?;
    }
    let answer = relayed.biz;
    if !call.callers_request_id {
        return Ok(answer);
    }
    let stored = StoredResponse {
        code: "0".into(),
        body: serde_json::to_vec(&answer).map_err(|e| internal(e.to_string()))?,
        fingerprint: fp,
    };
    let store = Arc::clone(&gw.idempotency);
    match blocking(move || store.put(&app, &rid, &stored, now))
        .await
        .map_err(internal)?
    {
        PutOutcome::Stored => Ok(answer),
        // A concurrent twin won: everyone gets the first answer.
        PutOutcome::AlreadyExists(first) if first.same_request(&fp) => decode(&first.body),
        PutOutcome::AlreadyExists(_) => Err(reused(dup_code)),
    }
}

async fn cached(
    gw: &Arc<Gateway>,
    call: &Call,
    biz: &Value,
    subject: Option<Pseudonym>,
) -> Result<(Answer, Option<Pseudonym>), GatewayError> {
    let scopes = strings_at(biz, "scope").unwrap_or_default();
    let partition = CacheKey::partition_for(&call.client.app_id, &scopes);
    let key = CacheKey::new(call.service, partition, &canonical_json(biz));
    // What the code says of itself is needed to cache an answer, not to find one: only a
    // miss reads it, except where the subject decides whether an answer is kept at all.
    let bounds = OnceLock::new();
    let bounds = || bounds.get_or_init(|| entry_bounds(call, biz, subject));
    // An answer no status event could find (a ticket query names neither person nor code)
    // is not cached: every cached answer must be purgeable. A verification of a regional
    // code is the exception: the region names the holder, and the answer is kept under
    // them (or, if it named no one, not kept).
    if call.service != ServiceName::VerifyCode && bounds().subject.is_none() {
        return gw.relay.relay(call, biz).await.map(|v| (v.into(), None));
    }
    let fetched = AtomicBool::new(false);
    // The answer as fetched, for the caller whose fetch ran: the cache keeps only its text.
    let fresh = OnceLock::new();
    let fetch = async {
        fetched.store(true, Ordering::Relaxed);
        let EntryBounds {
            subject: cache_subject,
            code_exp_ms,
        } = bounds();
        let max_ttl = gw.config.load().cache.max_ttl_ms.get();
        let validity = gw.relay.freshness(call, biz).as_millis() as u64;
        let relayed = gw.relay.relay_reply(call, biz).await?;
        let person = if call.service == ServiceName::VerifyCode {
            recognition::link_verification(gw, call, biz, &relayed).await
        } else {
            None
        };
        // What the caller's own request lost (its dialect, its registration's defaults) is
        // not the answer's: a hit reports its own, and the region's exchange's.
        let fetch_losses = relayed.losses;
        let (mut answer, region) = (relayed.biz, relayed.region);
        // The ticket is sealed now, once: the entry serves only this verifier (the cache
        // key's partition is its appId), and it is not kept past the ticket.
        let ticket_exp_s = match &region {
            Some(r) => recognition::mint_ticket(gw, call, &mut answer, person.as_ref(), r)?,
            None => None,
        };
        let updated = answer
            .get("updateTime")
            .or_else(|| answer.get("code").and_then(|c| c.get("updateTime")))
            .and_then(Value::as_str)
            .and_then(DateTime::parse)
            .and_then(|t| u64::try_from(t.unix()).ok())
            .map(|s| s.saturating_mul(1000));
        let now = now_ms();
        // No updateTime: the answer is fresh as of now, for the region's validity.
        let subject = cache_subject.clone().or_else(|| person.map(|p| p.to_hex()));
        // Nothing a status event could find is kept.
        let ticket_ms = ticket_exp_s
            .and_then(|s| u64::try_from(s).ok())
            .map(|s| s.saturating_mul(1000));
        let bound_ms = match (*code_exp_ms, ticket_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let deadline = freshness_deadline(updated.unwrap_or(now), validity, bound_ms, now, max_ttl)
            .filter(|_| subject.is_some());
        // The time left on the ticket is written on each hit, at the end of the kept text.
        let without_left = ticket_exp_s.is_some().then(|| {
            let mut kept = answer.clone();
            if let Some(o) = kept.as_object_mut() {
                o.shift_remove(TICKET_LEFT);
            }
            kept
        });
        let kept = without_left.as_ref().unwrap_or(&answer);
        let mut cached = Cached::new(kept, subject.map(Arc::from), deadline);
        if !fetch_losses.is_empty() {
            cached.losses = Arc::new(fetch_losses);
        }
        cached.person = person;
        cached.ticket_exp_s = ticket_exp_s;
        let _ = fresh.set(answer);
        Ok::<_, GatewayError>(cached)
    };
    // The fetch runs in the first caller's future, under its deadline: its region call ends
    // before that caller gives up, as a timeout the breaker counts, and a caller that
    // joined it shares that outcome (run past it, the call was dropped with the first
    // caller, unrecorded, and the next caller's fetch met the same end).
    let result = gw.cache.get_or_fetch(key, fetch).await;
    // Served from the cache (stored, or another caller's fetch) only with an answer: a
    // caller whose shared fetch failed missed too.
    if result.is_ok() && !fetched.load(Ordering::Relaxed) {
        gw.metrics.cache_hits.fetch_add(1, Ordering::Relaxed);
    } else {
        gw.metrics.cache_misses.fetch_add(1, Ordering::Relaxed);
    }
    match result {
        Ok(c) => match fresh.into_inner() {
            // This caller's own fetch: the answer as fetched, its losses already reported.
            Some(answer) => Ok((Answer::Value(answer), c.person)),
            // Another's answer, kept or shared: its losses, and the ticket's time left now,
            // written into the kept text without parsing it.
            None => {
                call.losses.add((*c.losses).clone());
                let text = c.body_json();
                // What the cache wrote from an object; anything else fails here, before the
                // audit record says the call succeeded.
                if !(text.starts_with('{') && text.ends_with('}')) {
                    return Err(internal("a kept answer is not a JSON object"));
                }
                let answer = match c.ticket_exp_s {
                    Some(exp) => {
                        let left = exp - i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
                        with_ticket_left(text, left.max(1))
                    }
                    None => text.to_owned(),
                };
                Ok((Answer::Json(answer), c.person))
            }
        },
        Err(shared) => Err(GatewayError::from_shared(&shared)),
    }
}

/// What caching an answer needs from the request itself.
struct EntryBounds {
    /// Under whom a status event finds the answer: the person the call names, else the code
    /// id of a PHIC1 code.
    subject: Option<String>,
    /// The PHIC1 code's own expiry, Unix milliseconds: no answer is cached past it.
    code_exp_ms: Option<u64>,
}

fn entry_bounds(call: &Call, biz: &Value, subject: Option<Pseudonym>) -> EntryBounds {
    let content = biz
        .get("codeContent")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let recognised = call.code.phic1(content);
    let code_exp_ms = recognised
        .as_ref()
        .and_then(|r| r.token.as_deref())
        .and_then(|t| token::parse(t).ok())
        .and_then(|p| u64::try_from(p.claims.exp).ok())
        .map(|s| s.saturating_mul(1000));
    let subject = subject.map(|p| p.to_hex()).or_else(|| {
        recognised
            .as_ref()
            .and_then(|r| r.code_id.as_ref())
            .map(|c| code_subject(c.as_str()))
    });
    EntryBounds {
        subject,
        code_exp_ms,
    }
}

/// Writes the audit record of one call. The gateway fails closed: an access it cannot
/// record is not answered (9999).
pub async fn audit(
    gw: &Arc<Gateway>,
    call: &Call,
    action: &str,
    subject: Option<Pseudonym>,
    result: ReturnCode,
    purpose: &str,
) -> Result<(), GatewayError> {
    let rec = NewRecord {
        time_ms: now_ms(),
        actor: call.client.app_id.clone(),
        action: action.to_owned(),
        subject,
        purpose: purpose.to_owned(),
        result: result.as_str().to_owned(),
        loss: call.losses.report().items(),
        request_id: call.request_id.clone(),
    };
    gw.audit.append(rec).await.map(|_| ()).map_err(internal)
}

fn decode(body: &[u8]) -> Result<Value, GatewayError> {
    serde_json::from_slice(body).map_err(|e| internal(e.to_string()))
}

/// A kept answer's text (a JSON object without [`TICKET_LEFT`]) with `"ticketExpiresIn":
/// left` as its last member.
fn with_ticket_left(kept: &str, left: i64) -> String {
    let body = kept.strip_suffix('}').unwrap_or(kept);
    let comma = if body.trim_end() == "{" { "" } else { "," };
    format!("{body}{comma}\"{TICKET_LEFT}\":{left}}}")
}

fn internal(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_twin_waits_its_turn_and_no_entry_outlives_the_calls() {
        let f = InFlight::default();
        let first = f.turn("A1", "R1").await;
        // A twin waits; cancelled meanwhile (its deadline), it leaves the count.
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(20), f.turn("A1", "R1")).await;
        assert!(waited.is_err(), "the twin waited for the first");
        // Another key does not wait.
        drop(f.turn("A1", "R2").await);
        assert_eq!(f.len(), 1);
        drop(first);
        assert_eq!(f.len(), 0, "the last one out removes the entry");
        // A twin queued behind the first gets its turn when the first is done.
        let first = f.turn("A1", "R1").await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let twin = async {
            let t = f.turn("A1", "R1").await;
            let _ = tx.send(());
            drop(t);
        };
        let release = async {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            drop(first);
        };
        tokio::join!(twin, release);
        assert!(rx.await.is_ok());
        assert_eq!(f.len(), 0);
        // The first finishes while a twin waits, and the twin is cancelled before it runs
        // again: the entry still goes.
        let first = f.turn("A1", "R1").await;
        let mut twin = Box::pin(f.turn("A1", "R1"));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(twin.as_mut().poll(&mut cx).is_pending());
        drop(first);
        drop(twin);
        assert_eq!(f.len(), 0);
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_keeps_values() {
        let v: Value = serde_json::from_str(
            r#"{"b":1,"a":{"d":[{"z":1.50,"y":"é\"\n"},[]],"c":null,"C":true},"":{}}"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"":{},"a":{"C":true,"c":null,"d":[{"y":"é\"\n","z":1.50},[]]},"b":1}"#
        );
    }

    #[test]
    fn ticket_left_is_written_as_the_last_member_of_kept_text() {
        for (kept, want) in [
            (
                r#"{"codeColor":"10","bizExtData":"t"}"#,
                r#"{"codeColor":"10","bizExtData":"t","ticketExpiresIn":42}"#,
            ),
            ("{}", r#"{"ticketExpiresIn":42}"#),
        ] {
            let out = with_ticket_left(kept, 42);
            assert_eq!(out, want);
            let v: Value = serde_json::from_str(&out).expect("JSON");
            assert_eq!(v["ticketExpiresIn"], 42);
        }
    }
}
