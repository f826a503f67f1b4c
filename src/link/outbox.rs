//! Status-event callbacks to regions, kept until delivered (DESIGN.md §2, the risk alert).
//!
//! When a region pushes a status change, the gateway writes one [`Delivery`] per other
//! linked region into the outbox, in the same store as the links, before it answers the
//! pushing region. A delivery worker sends what is due, and records each attempt: success
//! marks it delivered; a failure schedules the next attempt with exponential backoff
//! (200 ms doubling, at most 60 s apart) until [`MAX_ATTEMPTS`], after which the delivery
//! is kept as abandoned, for an operator to see. Because the outbox is on disk, a callback
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
//! deliveries by creation time) for the retention purge, which so reads only the records
//! it removes. A store whose [`CALLBACKS_META`] does not name the current index version
//! (one written by a build without them) has both rebuilt in one pass when the outbox
//! opens it (about 3 µs a record: a second for 300,000); any other store opens at once,
//! whatever its size. A row the poll finds wrong (its delivery finished, missing,
//! unreadable, or due at another time) is skipped and repaired, never an error that would
//! hold up the other deliveries; [`Outbox::rebuild_index`] rebuilds both on demand.
//!
//! Ids are never reused: the next id is kept in [`CALLBACKS_META`], so a purge of the
//! newest records does not hand their ids to new deliveries.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use crate::crypto::Sm4Key;
use crate::store::tables::{CALLBACKS, CALLBACKS_DUE, CALLBACKS_FINISHED, CALLBACKS_META};
use crate::store::{Store, StoreError};

/// Attempts before a delivery is abandoned (about 45 minutes of retries).
pub const MAX_ATTEMPTS: u32 = 50;

/// First retry delay, milliseconds; doubles per attempt.
const BACKOFF_BASE_MS: u64 = 200;

/// Longest delay between attempts, milliseconds.
const BACKOFF_MAX_MS: u64 = 60_000;

/// Version of the derived indexes ([`CALLBACKS_DUE`], [`CALLBACKS_FINISHED`]) this build
/// keeps, under [`META_INDEX_VERSION`] in [`CALLBACKS_META`].
const INDEX_VERSION: u64 = 2;

/// [`CALLBACKS_META`] key of the index version.
pub const META_INDEX_VERSION: &str = "index_version";

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
    /// The person's local code id in the region being told.
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
    /// [`MAX_ATTEMPTS`] failed.
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
}

/// The callback outbox over the gateway's store; entries SM4-encrypted at rest (an event
/// names a person's code id).
#[derive(Debug)]
pub struct Outbox {
    store: Store,
    key: Sm4Key,
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
        let outbox = Self { store, key };
        let version = {
            let txn = outbox.store.db().begin_read()?;
            match txn.open_table(CALLBACKS_META) {
                Ok(meta) => meta.get(META_INDEX_VERSION)?.map(|v| v.value()),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(e.into()),
            }
        };
        if version != Some(INDEX_VERSION) {
            let unreadable = outbox.rebuild_index()?;
            tracing::info!("callback outbox indexes rebuilt");
            if unreadable > 0 {
                tracing::warn!(
                    unreadable,
                    "callback records that cannot be read are not delivered"
                );
            }
        }
        Ok(outbox)
    }

    /// Rebuilds [`CALLBACKS_DUE`] and [`CALLBACKS_FINISHED`] from the deliveries, and
    /// marks the store as indexed, in one transaction; the next id stays past every id the
    /// store holds. Returns how many records could not be read. Blocks.
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
                let (_, v) = item?;
                match self.open(v.value()) {
                    Ok(d) if d.state == DeliveryState::Pending => {
                        due.insert((d.next_at_ms, d.id), ())?;
                    }
                    Ok(d) => {
                        finished.insert((d.created_ms, d.id), ())?;
                    }
                    Err(_) => unreadable += 1,
                }
            }
            let next = next_id(&meta, &all)?;
            meta.insert(META_NEXT_ID, next)?;
            meta.insert(META_INDEX_VERSION, INDEX_VERSION)?;
            unreadable
        };
        txn.commit()?;
        Ok(unreadable)
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
        serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt {
            what: "callback delivery",
            reason: e.to_string(),
        })
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
        let mut out = Vec::new();
        // Rows to drop, with the time a still-pending delivery is really due.
        let mut wrong: Vec<((u64, u64), Option<u64>)> = Vec::new();
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
                let d = match t.get(id)? {
                    Some(v) => self.open(v.value()).ok(),
                    None => None,
                };
                match d {
                    Some(d) if d.state == DeliveryState::Pending && d.next_at_ms == at => {
                        out.push(d);
                    }
                    Some(d) if d.state == DeliveryState::Pending => {
                        wrong.push(((at, id), Some(d.next_at_ms)));
                    }
                    _ => wrong.push(((at, id), None)),
                }
            }
        }
        if !wrong.is_empty() {
            tracing::warn!(rows = wrong.len(), "callback due index repaired");
            let txn = self.store.db().begin_write()?;
            {
                let mut due = txn.open_table(CALLBACKS_DUE)?;
                for ((at, id), pending_at) in wrong {
                    due.remove((at, id))?;
                    if let Some(next) = pending_at {
                        due.insert((next, id), ())?;
                    }
                }
            }
            txn.commit()?;
        }
        Ok(out)
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
        let txn = self.store.db().begin_write()?;
        let d = {
            let mut t = txn.open_table(CALLBACKS)?;
            let mut due = txn.open_table(CALLBACKS_DUE)?;
            let mut finished = txn.open_table(CALLBACKS_FINISHED)?;
            let mut d = match t.get(id)? {
                Some(v) => self.open(v.value())?,
                None => {
                    return Err(StoreError::Corrupt {
                        what: "callback delivery",
                        reason: format!("no delivery {id}"),
                    });
                }
            };
            if d.state != DeliveryState::Pending {
                // Only a pending delivery is attempted; its record is final otherwise.
                return Err(StoreError::Corrupt {
                    what: "callback delivery",
                    reason: format!("delivery {id} is no longer pending"),
                });
            }
            due.remove((d.next_at_ms, id))?;
            d.attempts += 1;
            match outcome {
                Ok(()) => {
                    d.state = DeliveryState::Delivered;
                    d.delivered_ms = Some(now_ms);
                    d.last_error = None;
                }
                Err(why) => {
                    d.last_error = Some(why);
                    if d.attempts >= MAX_ATTEMPTS {
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

    /// Removes finished deliveries (delivered or abandoned) created before `before_ms`
    /// (retention), in one transaction, and returns how many. Reads the finished index, so
    /// it opens only the records it removes: each is checked to be finished before it
    /// goes, and a row that does not match its record (missing, pending, unreadable) is
    /// dropped from the index and its record, if any, kept. Blocks.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails: then nothing was removed.
    pub fn purge_before(&self, before_ms: u64) -> Result<usize, StoreError> {
        let txn = self.store.db().begin_write()?;
        let removed = {
            let mut t = txn.open_table(CALLBACKS)?;
            let mut finished = txn.open_table(CALLBACKS_FINISHED)?;
            let rows: Vec<(u64, u64)> = finished
                .range(..(before_ms, 0))?
                .map(|item| item.map(|(k, _)| k.value()))
                .collect::<Result<_, _>>()?;
            let mut removed = 0;
            for (created, id) in rows {
                finished.remove((created, id))?;
                let done = match t.get(id)? {
                    Some(v) => self.open(v.value()).is_ok_and(|d| {
                        d.state != DeliveryState::Pending && d.created_ms < before_ms
                    }),
                    None => false,
                };
                if done {
                    t.remove(id)?;
                    removed += 1;
                } else {
                    tracing::warn!(
                        id,
                        "callback finished index row dropped: its record is not a finished one"
                    );
                }
            }
            removed
        };
        txn.commit()?;
        Ok(removed)
    }
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
