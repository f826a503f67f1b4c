//! Status-event callbacks to regions, kept until delivered (DESIGN.md §2, the risk alert).
//!
//! When a region pushes a status change, the gateway writes one [`Delivery`] per other
//! linked region into the outbox, in the same store as the links, before it answers the
//! pushing region. A delivery worker sends what is due, and records each attempt: success
//! marks it delivered; a failure schedules the next attempt with exponential backoff
//! (200 ms doubling, at most 60 s apart) until [`MAX_ATTEMPTS`], after which the delivery
//! is kept as abandoned, for an operator to see. A callback to a region that cannot be
//! called (its circuit breaker open) waits without spending attempts, for at most a day
//! from when it was first held ([`MAX_PENDING_MS`]), then is abandoned the same way. Because the outbox is on disk, a callback
//! pending when the gateway stops is sent after it starts again: none is lost.
//!
//! Finished deliveries stay for the audit period (180 days by default), so the outbox
//! grows with every status event. The delivery task asks for what is due every 250 ms and
//! whenever an event comes; it reads the pending deliveries' index ([`CALLBACKS_DUE`],
//! by next attempt), not the whole outbox, so that poll costs the same with a million
//! finished records as with none.
//!
//! The deliveries are the record; two indexes are derived from them and written in the same
//! transactions: [`CALLBACKS_DUE`] for the poll, and [`CALLBACKS_FINISHED`] (finished
//! deliveries by creation time) for the retention purge, which so opens only the records
//! it removes. Every record that can be read has one row in one of them. When the outbox
//! opens a store it checks, from a version stamp and table lengths and without reading a
//! record, that the store names this index version and that the rows and the records are
//! as many; otherwise (a store of a build without the indexes, one written by such a build
//! since, a row lost) both are rebuilt in one pass (about 3 µs a record: a second for
//! 300,000). A store that passes opens at once, whatever its size.
//!
//! A row the poll or the purge finds wrong (its record missing, or filed in the other
//! index, or under another time) is dropped and the record filed where it belongs, never
//! an error that would hold up the other deliveries. A record that cannot be read (a
//! damaged file, or the gateway started with another key) keeps its row, and a rebuild
//! that met one leaves the store unstamped, so that it runs again at the next open: a start
//! with the wrong key loses no callback.
//!
//! Ids are never reused: the next id is kept in [`CALLBACKS_META`], so a purge of the
//! newest records does not hand their ids to new deliveries.

mod purge;

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use crate::crypto::Sm4Key;
use crate::store::tables::{CALLBACKS, CALLBACKS_DUE, CALLBACKS_FINISHED, CALLBACKS_META};
use crate::store::{Store, StoreError};

/// Attempts before a delivery is abandoned (about 45 minutes of retries).
pub const MAX_ATTEMPTS: u32 = 50;

/// How long a delivery may wait for a region that cannot be called (its circuit breaker
/// stays open): one that would wait past a day from when it was first held is abandoned
/// instead, as
/// after [`MAX_ATTEMPTS`], for an operator to see. A region that is down never has its
/// attempts spent, so without this its callbacks would wait for ever.
pub const MAX_PENDING_MS: u64 = 86_400_000;

/// First retry delay, milliseconds; doubles per attempt.
const BACKOFF_BASE_MS: u64 = 200;

/// Longest delay between attempts, milliseconds.
const BACKOFF_MAX_MS: u64 = 60_000;

/// Version of the derived indexes this build keeps, under [`META_INDEX_VERSION`] in
/// [`CALLBACKS_META`]: 2 is [`CALLBACKS_DUE`] and [`CALLBACKS_FINISHED`] with the id
/// counter. (The layout before, the due index alone, had no stamp.)
const INDEX_VERSION: u64 = 2;

/// [`CALLBACKS_META`] key of the index version.
pub(crate) const META_INDEX_VERSION: &str = "index_version";

/// Finished-index rows the purge takes per write transaction, so that a large backlog
/// does not hold the store's one writer (which new status events wait for) for long.
const PURGE_BATCH: usize = 10_000;

/// [`CALLBACKS_META`] key of the next delivery id.
const META_NEXT_ID: &str = "next_id";

/// What a region is told: one of its code holders changed colour elsewhere (`kind`
/// `status`), or scanned a venue code elsewhere (`visit`: the trip data for their home
/// region).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackEvent {
    /// `status` or `visit`.
    #[serde(default = "status_kind")]
    pub kind: String,
    /// The event's id, the same for every region told of one change.
    pub event_id: String,
    /// The region whose status changed.
    pub source_region: String,
    /// The person's code id, as the region being told has seen it: its own code's, or
    /// the code its verifier last scanned (a status callback goes only to a region that
    /// knows one; a visit names the code scanned).
    pub code_id: Option<String>,
    /// The new colour (`00`, `01`, `10`, …).
    pub colour: String,
    /// When the source region changed it, or when the visit was (`yyyy-MM-dd HH:mm:ss`).
    pub status_time: Option<String>,
    /// A visit: the venue code scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue_code: Option<String>,
    /// A visit: the venue's division (6 digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_region: Option<String>,
}

fn status_kind() -> String {
    KIND_STATUS.to_owned()
}

/// [`CallbackEvent::kind`] of a status change.
pub const KIND_STATUS: &str = "status";

/// [`CallbackEvent::kind`] of a venue visit.
pub const KIND_VISIT: &str = "visit";

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeliveryState {
    /// Not yet acknowledged.
    Pending,
    /// The region acknowledged it.
    Delivered,
    /// [`MAX_ATTEMPTS`] failed, or the region could not be called for
    /// [`MAX_PENDING_MS`].
    Abandoned,
}

/// One callback to one region, and its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Its id in the outbox (increasing).
    pub id: u64,
    /// The region told.
    pub target_region: String,
    /// What it is told.
    pub event: CallbackEvent,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// Unix milliseconds of the next attempt (pending only).
    pub next_at_ms: u64,
    /// Unix milliseconds when it was written, and when it was delivered.
    pub created_ms: u64,
    /// See `created_ms`.
    pub delivered_ms: Option<u64>,
    /// Why the last attempt failed (a transport or region error, never personal data).
    pub last_error: Option<String>,
    /// Unix milliseconds since when it has waited without a call (its region's breaker
    /// open): from when it was first held, cleared by an attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_since_ms: Option<u64>,
}

/// The callback outbox over the gateway's store; entries SM4-encrypted at rest (an event
/// names a person's code id).
#[derive(Debug)]
pub struct Outbox {
    store: Store,
    key: Sm4Key,
    /// Unreadable records the last poll met among the due ones (warned when it changes).
    unreadable_due: std::sync::atomic::AtomicUsize,
}

/// Where a record belongs, when a row of the other index, or under another time, named it.
enum Refile {
    /// Nowhere: the record is missing.
    Nowhere,
    /// Due at this time.
    Due(u64),
    /// Finished; created at this time.
    Finished(u64),
}

impl Outbox {
    /// The outbox in `store`, under `key`. When the store's indexes are not this build's
    /// (see the module docs) they are rebuilt first, and a record that cannot be read (a
    /// damaged file, another key) is left out of delivery and counted in a warning; it
    /// does not stop the gateway. Blocks.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub fn new(store: Store, key: Sm4Key) -> Result<Self, StoreError> {
        let outbox = Self {
            store,
            key,
            unreadable_due: std::sync::atomic::AtomicUsize::new(0),
        };
        if !outbox.indexes_current()? {
            let unreadable = outbox.rebuild_index()?;
            tracing::info!("callback outbox indexes rebuilt");
            if unreadable > 0 {
                tracing::warn!(
                    unreadable,
                    "callback records that cannot be read are not delivered; they are kept, \
                     and indexed again at the next start"
                );
            }
        }
        Ok(outbox)
    }

    /// Whether the store's indexes can be used as they are (see the module docs): this
    /// version's stamp, and as many rows as records; a missing table is out of step. Reads
    /// table lengths (kept in redb's table headers) and one key, no record. (An id counter
    /// behind the records needs no rebuild: [`next_id`] takes the larger.)
    fn indexes_current(&self) -> Result<bool, StoreError> {
        use redb::TableError::TableDoesNotExist;
        let txn = self.store.db().begin_read()?;
        let stamped = match txn.open_table(CALLBACKS_META) {
            Ok(meta) => meta.get(META_INDEX_VERSION)?.map(|v| v.value()) == Some(INDEX_VERSION),
            Err(TableDoesNotExist(_)) => false,
            Err(e) => return Err(e.into()),
        };
        let mut rows = 0;
        for index in [CALLBACKS_DUE, CALLBACKS_FINISHED] {
            match txn.open_table(index) {
                Ok(t) => rows += t.len()?,
                Err(TableDoesNotExist(_)) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(stamped && rows == txn.open_table(CALLBACKS)?.len()?)
    }

    /// Rebuilds [`CALLBACKS_DUE`] and [`CALLBACKS_FINISHED`] from the deliveries in one
    /// transaction, with the next id past every id the store holds. The store is stamped
    /// with this index version only when every record could be read; otherwise the next
    /// open rebuilds again (perhaps with the right key). Returns how many records could
    /// not be read. Blocks.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub fn rebuild_index(&self) -> Result<usize, StoreError> {
        let txn = self.store.db().begin_write()?;
        let unreadable = {
            txn.delete_table(CALLBACKS_DUE)?;
            txn.delete_table(CALLBACKS_FINISHED)?;
            let mut due = txn.open_table(CALLBACKS_DUE)?;
            let mut finished = txn.open_table(CALLBACKS_FINISHED)?;
            let mut meta = txn.open_table(CALLBACKS_META)?;
            let all = txn.open_table(CALLBACKS)?;
            let mut unreadable = 0;
            for item in all.iter()? {
                let (k, v) = item?;
                // Filed under the table's key, whatever id the record says.
                let id = k.value();
                match self.open(v.value()) {
                    Ok(d) if d.state == DeliveryState::Pending => {
                        due.insert((d.next_at_ms, id), ())?;
                    }
                    Ok(d) => {
                        finished.insert((d.created_ms, id), ())?;
                    }
                    Err(_) => unreadable += 1,
                }
            }
            let next = next_id(&meta, &all)?;
            meta.insert(META_NEXT_ID, next)?;
            if unreadable == 0 {
                meta.insert(META_INDEX_VERSION, INDEX_VERSION)?;
            } else {
                meta.remove(META_INDEX_VERSION)?;
            }
            unreadable
        };
        txn.commit()?;
        Ok(unreadable)
    }

    /// Where a record belongs, from its stored text (`None`: there is no record), with
    /// the delivery read; `None` when the text cannot be read.
    fn belongs(&self, record: Option<&[u8]>) -> Option<(Refile, Option<Delivery>)> {
        let Some(v) = record else {
            return Some((Refile::Nowhere, None));
        };
        let d = self.open(v).ok()?;
        Some(if d.state == DeliveryState::Pending {
            (Refile::Due(d.next_at_ms), Some(d))
        } else {
            (Refile::Finished(d.created_ms), Some(d))
        })
    }

    fn seal(&self, d: &Delivery) -> Result<Vec<u8>, StoreError> {
        let json = serde_json::to_vec(d).map_err(|e| StoreError::Corrupt {
            what: "callback delivery",
            reason: e.to_string(),
        })?;
        self.key.encrypt_cbc(&json).map_err(|_| StoreError::Crypto {
            op: "encrypt",
            what: "callback delivery",
        })
    }

    fn open(&self, v: &[u8]) -> Result<Delivery, StoreError> {
        let json = self.key.decrypt_cbc(v).map_err(|_| StoreError::Crypto {
            op: "decrypt",
            what: "callback delivery",
        })?;
        serde_json::from_slice(&json)
            .map_err(|e| crate::store::undecodable("callback delivery", &e))
    }

    /// Writes one pending delivery per target, durably, in one transaction. Returns their
    /// ids. Blocks.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails: then none was written.
    pub fn enqueue(
        &self,
        targets: &[(String, CallbackEvent)],
        now_ms: u64,
    ) -> Result<Vec<u64>, StoreError> {
        let txn = self.store.db().begin_write()?;
        let ids = {
            let mut t = txn.open_table(CALLBACKS)?;
            let mut due = txn.open_table(CALLBACKS_DUE)?;
            let mut meta = txn.open_table(CALLBACKS_META)?;
            let first = next_id(&meta, &t)?;
            let mut ids = Vec::with_capacity(targets.len());
            for (next, (region, event)) in (first..).zip(targets) {
                let d = Delivery {
                    id: next,
                    target_region: region.clone(),
                    event: event.clone(),
                    state: DeliveryState::Pending,
                    attempts: 0,
                    next_at_ms: now_ms,
                    created_ms: now_ms,
                    delivered_ms: None,
                    last_error: None,
                    held_since_ms: None,
                };
                t.insert(next, self.seal(&d)?.as_slice())?;
                due.insert((now_ms, next), ())?;
                ids.push(next);
            }
            meta.insert(META_NEXT_ID, first + ids.len() as u64)?;
            ids
        };
        txn.commit()?;
        Ok(ids)
    }

    /// Pending deliveries due at `now_ms`, the longest due first (then by id), at most
    /// `limit`: read from the due index, so finished deliveries cost nothing. An index row
    /// that does not match its delivery is skipped and repaired (see the module docs).
    /// Blocks.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        use std::sync::atomic::Ordering;
        let mut out = Vec::new();
        // Rows that do not match their records.
        let mut wrong: Vec<(u64, u64)> = Vec::new();
        let mut unreadable = 0;
        {
            let txn = self.store.db().begin_read()?;
            let index = txn.open_table(CALLBACKS_DUE)?;
            let t = txn.open_table(CALLBACKS)?;
            for item in index.range(..=(now_ms, u64::MAX))? {
                if out.len() == limit {
                    break;
                }
                let (key, _) = item?;
                let (at, id) = key.value();
                let record = t.get(id)?;
                match self.belongs(record.as_ref().map(|v| v.value())) {
                    None => unreadable += 1,
                    Some((Refile::Due(next), Some(d))) if next == at => out.push(d),
                    Some(_) => wrong.push((at, id)),
                }
            }
        }
        if self.unreadable_due.swap(unreadable, Ordering::Relaxed) != unreadable && unreadable > 0 {
            tracing::warn!(
                unreadable,
                "due callback records that cannot be read are kept and not delivered"
            );
        }
        if !wrong.is_empty() {
            tracing::warn!(rows = wrong.len(), "callback due index repaired");
            let txn = self.store.db().begin_write()?;
            {
                let t = txn.open_table(CALLBACKS)?;
                let mut due = txn.open_table(CALLBACKS_DUE)?;
                let mut finished = txn.open_table(CALLBACKS_FINISHED)?;
                for (at, id) in wrong {
                    // Read again under the writer: a delivery recorded since the poll's
                    // read is filed by what it is now.
                    let belongs = {
                        let record = t.get(id)?;
                        self.belongs(record.as_ref().map(|v| v.value()))
                    };
                    let refile = match belongs {
                        None => continue,
                        Some((Refile::Due(next), _)) if next == at => continue,
                        Some((refile, _)) => refile,
                    };
                    due.remove((at, id))?;
                    match refile {
                        Refile::Nowhere => {}
                        Refile::Due(next) => {
                            due.insert((next, id), ())?;
                        }
                        Refile::Finished(created) => {
                            finished.insert((created, id), ())?;
                        }
                    }
                }
            }
            txn.commit()?;
        }
        Ok(out)
    }

    /// How many deliveries are pending and how many finished ones are kept, from the
    /// indexes' lengths (kept in redb's table headers: no record is read). Blocks briefly.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub fn counts(&self) -> Result<(u64, u64), StoreError> {
        let txn = self.store.db().begin_read()?;
        let pending = txn.open_table(CALLBACKS_DUE)?.len()?;
        let finished = txn.open_table(CALLBACKS_FINISHED)?.len()?;
        Ok((pending, finished))
    }

    /// Every delivery record, oldest first. Blocks.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub fn all(&self) -> Result<Vec<Delivery>, StoreError> {
        let txn = self.store.db().begin_read()?;
        let t = txn.open_table(CALLBACKS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (_, v) = item?;
            out.push(self.open(v.value())?);
        }
        Ok(out)
    }

    /// Records an attempt at delivery `id`: `Ok` delivered it, `Err(why)` failed. Blocks.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or there is no such delivery.
    pub fn record(
        &self,
        id: u64,
        outcome: Result<(), String>,
        now_ms: u64,
    ) -> Result<Delivery, StoreError> {
        self.attempt(id, outcome, false, now_ms)
    }

    /// Records a failed attempt at delivery `id` that no retry can mend (the event cannot
    /// be put in the region's dialect): the delivery is abandoned at once, with `why`, for
    /// an operator to see, instead of failing the same way [`MAX_ATTEMPTS`] times. Blocks.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or there is no such delivery.
    pub fn give_up(&self, id: u64, why: String, now_ms: u64) -> Result<Delivery, StoreError> {
        self.attempt(id, Err(why), true, now_ms)
    }

    /// Moves pending delivery `id` to `until_ms` without counting an attempt: nothing was
    /// sent (the region's circuit breaker is open), so the delivery keeps every attempt it
    /// has left for when the region is called again. Blocks.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails, or the delivery is missing or no longer pending.
    pub fn postpone(&self, id: u64, until_ms: u64, now_ms: u64) -> Result<Delivery, StoreError> {
        let txn = self.store.db().begin_write()?;
        let d = {
            let mut tables = MoveTables {
                records: txn.open_table(CALLBACKS)?,
                due: txn.open_table(CALLBACKS_DUE)?,
                finished: txn.open_table(CALLBACKS_FINISHED)?,
            };
            let d = self.pending(&tables.records, id)?;
            self.move_due(&mut tables, d, until_ms, now_ms)?
        };
        txn.commit()?;
        Ok(d)
    }

    /// Files pending delivery `d` as due at `until_ms`, in the write transaction of
    /// `tables`; or, when that is [`MAX_PENDING_MS`] or more after it was first held (not
    /// after its event: a backlog a day old after an outage of the gateway is not abandoned
    /// at the first brief trip of the breaker), abandons it.
    fn move_due(
        &self,
        tables: &mut MoveTables<'_>,
        mut d: Delivery,
        until_ms: u64,
        now_ms: u64,
    ) -> Result<Delivery, StoreError> {
        tables.due.remove((d.next_at_ms, d.id))?;
        let since = *d.held_since_ms.get_or_insert(now_ms);
        if until_ms >= since.saturating_add(MAX_PENDING_MS) {
            d.state = DeliveryState::Abandoned;
            d.last_error = Some("the region could not be called for a day".into());
            tables.finished.insert((d.created_ms, d.id), ())?;
        } else {
            d.next_at_ms = until_ms;
            tables.due.insert((d.next_at_ms, d.id), ())?;
        }
        tables.records.insert(d.id, self.seal(&d)?.as_slice())?;
        Ok(d)
    }

    /// [`Outbox::postpone`] of every delivery of `ids` still pending, in one transaction:
    /// the callbacks due to a region whose breaker is open, put past its hold at once
    /// rather than one write (and one flush) each. Ids no longer pending are passed over.
    /// Returns how many moved, and how many of those were abandoned instead
    /// ([`MAX_PENDING_MS`]).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub fn postpone_many(
        &self,
        ids: &[u64],
        until_ms: u64,
        now_ms: u64,
    ) -> Result<(usize, usize), StoreError> {
        if ids.is_empty() {
            return Ok((0, 0));
        }
        let txn = self.store.db().begin_write()?;
        let (mut moved, mut abandoned) = (0, 0);
        {
            let mut tables = MoveTables {
                records: txn.open_table(CALLBACKS)?,
                due: txn.open_table(CALLBACKS_DUE)?,
                finished: txn.open_table(CALLBACKS_FINISHED)?,
            };
            for &id in ids {
                let Ok(d) = self.pending(&tables.records, id) else {
                    continue;
                };
                let d = self.move_due(&mut tables, d, until_ms, now_ms)?;
                moved += 1;
                if d.state == DeliveryState::Abandoned {
                    abandoned += 1;
                }
            }
        }
        txn.commit()?;
        Ok((moved, abandoned))
    }

    /// Delivery `id`, which must be pending: only a pending delivery is attempted or moved;
    /// its record is final otherwise.
    fn pending(
        &self,
        t: &impl ReadableTable<u64, &'static [u8]>,
        id: u64,
    ) -> Result<Delivery, StoreError> {
        let corrupt = |reason| StoreError::Corrupt {
            what: "callback delivery",
            reason,
        };
        let d = match t.get(id)? {
            Some(v) => self.open(v.value())?,
            None => return Err(corrupt(format!("no delivery {id}"))),
        };
        if d.state != DeliveryState::Pending {
            return Err(corrupt(format!("delivery {id} is no longer pending")));
        }
        Ok(d)
    }

    fn attempt(
        &self,
        id: u64,
        outcome: Result<(), String>,
        give_up: bool,
        now_ms: u64,
    ) -> Result<Delivery, StoreError> {
        let txn = self.store.db().begin_write()?;
        let d = {
            let mut t = txn.open_table(CALLBACKS)?;
            let mut due = txn.open_table(CALLBACKS_DUE)?;
            let mut finished = txn.open_table(CALLBACKS_FINISHED)?;
            let mut d = self.pending(&t, id)?;
            due.remove((d.next_at_ms, id))?;
            d.attempts += 1;
            d.held_since_ms = None;
            match outcome {
                Ok(()) => {
                    d.state = DeliveryState::Delivered;
                    d.delivered_ms = Some(now_ms);
                    d.last_error = None;
                }
                Err(why) => {
                    d.last_error = Some(why);
                    if give_up || d.attempts >= MAX_ATTEMPTS {
                        d.state = DeliveryState::Abandoned;
                    } else {
                        d.next_at_ms = now_ms + backoff_ms(d.attempts);
                    }
                }
            }
            t.insert(id, self.seal(&d)?.as_slice())?;
            if d.state == DeliveryState::Pending {
                due.insert((d.next_at_ms, id), ())?;
            } else {
                finished.insert((d.created_ms, id), ())?;
            }
            d
        };
        txn.commit()?;
        Ok(d)
    }
}

/// The tables a delivery moves between, open in one write transaction.
struct MoveTables<'t> {
    records: redb::Table<'t, u64, &'static [u8]>,
    due: redb::Table<'t, (u64, u64), ()>,
    finished: redb::Table<'t, (u64, u64), ()>,
}

/// The id the next delivery takes: past the last id written (the counter) and past every
/// record (a store from a build without the counter).
fn next_id(
    meta: &impl ReadableTable<&'static str, u64>,
    records: &impl ReadableTable<u64, &'static [u8]>,
) -> Result<u64, StoreError> {
    let counted = meta.get(META_NEXT_ID)?.map_or(1, |v| v.value());
    let past_last = records.last()?.map_or(1, |(k, _)| k.value() + 1);
    Ok(counted.max(past_last))
}

/// Delay after `attempts` failures.
pub fn backoff_ms(attempts: u32) -> u64 {
    BACKOFF_BASE_MS
        .saturating_mul(1u64 << attempts.saturating_sub(1).min(20))
        .min(BACKOFF_MAX_MS)
}
