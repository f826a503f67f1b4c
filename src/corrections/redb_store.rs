//! The embedded [`CorrectionStore`]: tickets as JSON in redb tables of a [`Store`].
//!
//! Every update is one write transaction that reads the ticket, checks the move and writes
//! it back, so concurrent updates of one ticket are serialised by redb's single writer.
//! Commits are durable (an `fsync` each): tickets are few, and a region's answer to a
//! holder's correction must not be lost to a crash.
//!
//! A ticket is stored under `ticket id ␟ region` (U+001F, which no ticket id holds: ids
//! are printable): a region's ids are unique in that region only, and the id comes first
//! so that every region's ticket of one id is one key range ([`CorrectionStore::find`]).
//! Stores written before the region was part of the key hold tickets under the bare id;
//! those are read, advanced and purged where they are.

use redb::ReadableTable;

use crate::store::tables::{CORRECTIONS, CORRECTIONS_CLOSED};
use crate::store::{Store, StoreError};

use super::{CorrectionError, CorrectionStatus, CorrectionStore, CorrectionTicket, OpenOutcome};

/// Most tickets removed in one purge transaction.
const PURGE_BATCH: usize = 10_000;

/// redb's errors become [`CorrectionError::Store`], through [`StoreError`]'s conversions.
macro_rules! from_redb {
    ($($t:ty),+) => {$(
        impl From<$t> for CorrectionError {
            fn from(e: $t) -> Self {
                CorrectionError::Store(StoreError::from(e))
            }
        }
    )+};
}

from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Separates the ticket id from the region in a stored key.
const SEP: char = '\u{1f}';

/// The stored key of `region`'s ticket `ticket_id`.
fn key(region: &str, ticket_id: &str) -> String {
    format!("{ticket_id}{SEP}{region}")
}

/// Where `region`'s ticket `ticket_id` is stored, and the ticket: under its key, or under
/// the bare id (a store of the build before), when that ticket is the region's.
fn locate(
    tickets: &impl ReadableTable<&'static str, &'static [u8]>,
    region: &str,
    ticket_id: &str,
) -> Result<Option<(String, CorrectionTicket)>, CorrectionError> {
    let k = key(region, ticket_id);
    if let Some(v) = tickets.get(k.as_str())? {
        return Ok(Some((k, CorrectionTicket::decode(v.value())?)));
    }
    if let Some(v) = tickets.get(ticket_id)? {
        let t = CorrectionTicket::decode(v.value())?;
        if t.region.as_str() == region {
            return Ok(Some((ticket_id.to_owned(), t)));
        }
    }
    Ok(None)
}

/// The redb [`CorrectionStore`].
#[derive(Debug, Clone)]
pub struct RedbCorrectionStore {
    pub(super) store: Store,
}

impl RedbCorrectionStore {
    /// The correction tickets in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl CorrectionStore for RedbCorrectionStore {
    fn open(&self, ticket: &CorrectionTicket) -> Result<OpenOutcome, CorrectionError> {
        ticket.check()?;
        let value = ticket.encode()?;
        let txn = self.store.db().begin_write()?;
        {
            let mut tickets = txn.open_table(CORRECTIONS)?;
            let region = ticket.region.as_str();
            if let Some((_, existing)) = locate(&tickets, region, &ticket.ticket_id)? {
                // Returning drops the transaction, which aborts it: nothing is written.
                return Ok(OpenOutcome::AlreadyExists(existing));
            }
            let k = key(region, &ticket.ticket_id);
            tickets.insert(k.as_str(), value.as_slice())?;
            if ticket.status.is_terminal() {
                let mut closed = txn.open_table(CORRECTIONS_CLOSED)?;
                closed.insert((ticket.updated_ms, k.as_str()), ())?;
            }
        }
        txn.commit()?;
        Ok(OpenOutcome::Opened)
    }

    fn get(
        &self,
        region: &str,
        ticket_id: &str,
    ) -> Result<Option<CorrectionTicket>, CorrectionError> {
        let txn = self.store.db().begin_read()?;
        let tickets = txn.open_table(CORRECTIONS)?;
        Ok(locate(&tickets, region, ticket_id)?.map(|(_, t)| t))
    }

    fn find(&self, ticket_id: &str) -> Result<Vec<CorrectionTicket>, CorrectionError> {
        let txn = self.store.db().begin_read()?;
        let tickets = txn.open_table(CORRECTIONS)?;
        let mut found = Vec::new();
        // `id␟…` up to (not including) `id␠`: the id followed by the separator, the only
        // character below the printable ones an id may continue with.
        let (from, to) = (format!("{ticket_id}{SEP}"), format!("{ticket_id} "));
        for entry in tickets.range(from.as_str()..to.as_str())? {
            found.push(CorrectionTicket::decode(entry?.1.value())?);
        }
        if let Some(v) = tickets.get(ticket_id)? {
            found.push(CorrectionTicket::decode(v.value())?);
        }
        found.sort_by_key(|t| t.updated_ms);
        Ok(found)
    }

    fn advance(
        &self,
        region: &str,
        ticket_id: &str,
        to: CorrectionStatus,
        time_ms: u64,
        note: Option<&str>,
    ) -> Result<CorrectionTicket, CorrectionError> {
        let txn = self.store.db().begin_write()?;
        let ticket = {
            let mut tickets = txn.open_table(CORRECTIONS)?;
            let Some((k, mut ticket)) = locate(&tickets, region, ticket_id)? else {
                return Err(CorrectionError::UnknownTicket {
                    ticket_id: ticket_id.to_owned(),
                });
            };
            if !ticket.apply(to, time_ms, note)? {
                // Same status: nothing to write (dropping the transaction aborts it).
                return Ok(ticket);
            }
            tickets.insert(k.as_str(), ticket.encode()?.as_slice())?;
            if ticket.status.is_terminal() {
                let mut closed = txn.open_table(CORRECTIONS_CLOSED)?;
                closed.insert((ticket.updated_ms, k.as_str()), ())?;
            }
            ticket
        };
        txn.commit()?;
        Ok(ticket)
    }

    fn purge_closed_before(&self, time_ms: u64) -> Result<u64, CorrectionError> {
        let mut purged = 0u64;
        loop {
            let txn = self.store.db().begin_write()?;
            let mut due: Vec<(u64, String)> = Vec::new();
            {
                let mut tickets = txn.open_table(CORRECTIONS)?;
                let mut closed = txn.open_table(CORRECTIONS_CLOSED)?;
                for entry in closed.range(..(time_ms, ""))? {
                    if due.len() >= PURGE_BATCH {
                        break;
                    }
                    let (k, _) = entry?;
                    let (updated, id) = k.value();
                    due.push((updated, id.to_owned()));
                }
                for (updated, id) in &due {
                    closed.remove((*updated, id.as_str()))?;
                    // Remove the ticket only if the entry describes it: closed, last
                    // changed then. A closed ticket never changes again, so it always does
                    // unless the file was edited.
                    let current = tickets
                        .get(id.as_str())?
                        .map(|v| CorrectionTicket::decode(v.value()))
                        .transpose()?;
                    if current.is_some_and(|t| t.status.is_terminal() && t.updated_ms == *updated) {
                        tickets.remove(id.as_str())?;
                        purged += 1;
                    }
                }
            }
            txn.commit()?;
            if due.len() < PURGE_BATCH {
                return Ok(purged);
            }
        }
    }
}
