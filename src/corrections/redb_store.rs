//! The embedded [`CorrectionStore`]: tickets as JSON in redb tables of a [`Store`].
//!
//! Every update is one write transaction that reads the ticket, checks the move and writes
//! it back, so concurrent updates of one ticket are serialised by redb's single writer.
//! Commits are durable (an `fsync` each): tickets are few, and a region's answer to a
//! holder's correction must not be lost to a crash.

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
            let existing = tickets
                .get(ticket.ticket_id.as_str())?
                .map(|v| CorrectionTicket::decode(v.value()));
            if let Some(existing) = existing {
                // Returning drops the transaction, which aborts it: nothing is written.
                return Ok(OpenOutcome::AlreadyExists(existing?));
            }
            tickets.insert(ticket.ticket_id.as_str(), value.as_slice())?;
            if ticket.status.is_terminal() {
                let mut closed = txn.open_table(CORRECTIONS_CLOSED)?;
                closed.insert((ticket.updated_ms, ticket.ticket_id.as_str()), ())?;
            }
        }
        txn.commit()?;
        Ok(OpenOutcome::Opened)
    }

    fn get(&self, ticket_id: &str) -> Result<Option<CorrectionTicket>, CorrectionError> {
        let txn = self.store.db().begin_read()?;
        let tickets = txn.open_table(CORRECTIONS)?;
        let found = tickets.get(ticket_id)?;
        Ok(found
            .map(|v| CorrectionTicket::decode(v.value()))
            .transpose()?)
    }

    fn advance(
        &self,
        ticket_id: &str,
        to: CorrectionStatus,
        time_ms: u64,
        note: Option<&str>,
    ) -> Result<CorrectionTicket, CorrectionError> {
        let txn = self.store.db().begin_write()?;
        let ticket = {
            let mut tickets = txn.open_table(CORRECTIONS)?;
            let stored = tickets
                .get(ticket_id)?
                .map(|v| CorrectionTicket::decode(v.value()));
            let mut ticket = match stored {
                Some(t) => t?,
                None => {
                    return Err(CorrectionError::UnknownTicket {
                        ticket_id: ticket_id.to_owned(),
                    });
                }
            };
            if !ticket.apply(to, time_ms, note)? {
                // Same status: nothing to write (dropping the transaction aborts it).
                return Ok(ticket);
            }
            tickets.insert(ticket_id, ticket.encode()?.as_slice())?;
            if ticket.status.is_terminal() {
                let mut closed = txn.open_table(CORRECTIONS_CLOSED)?;
                closed.insert((ticket.updated_ms, ticket_id), ())?;
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
