//! A [`CorrectionStore`] in memory, for tests and for tools that need a throwaway store.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::lock;

use super::{CorrectionError, CorrectionStatus, CorrectionStore, CorrectionTicket, OpenOutcome};

/// An in-memory [`CorrectionStore`]. Lost when dropped.
#[derive(Debug, Default)]
pub struct MemoryCorrectionStore {
    /// Tickets by (region, id). One lock for all: every update is a short
    /// read-modify-write.
    tickets: Mutex<HashMap<(String, String), CorrectionTicket>>,
}

impl MemoryCorrectionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn key(region: &str, ticket_id: &str) -> (String, String) {
    (region.to_owned(), ticket_id.to_owned())
}

impl CorrectionStore for MemoryCorrectionStore {
    fn open(&self, ticket: &CorrectionTicket) -> Result<OpenOutcome, CorrectionError> {
        ticket.check()?;
        let mut tickets = lock(&self.tickets);
        let k = key(ticket.region.as_str(), &ticket.ticket_id);
        if let Some(existing) = tickets.get(&k) {
            return Ok(OpenOutcome::AlreadyExists(existing.clone()));
        }
        tickets.insert(k, ticket.clone());
        Ok(OpenOutcome::Opened)
    }

    fn get(
        &self,
        region: &str,
        ticket_id: &str,
    ) -> Result<Option<CorrectionTicket>, CorrectionError> {
        Ok(lock(&self.tickets).get(&key(region, ticket_id)).cloned())
    }

    fn find(&self, ticket_id: &str) -> Result<Vec<CorrectionTicket>, CorrectionError> {
        let mut found: Vec<CorrectionTicket> = lock(&self.tickets)
            .values()
            .filter(|t| t.ticket_id == ticket_id)
            .cloned()
            .collect();
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
        let mut tickets = lock(&self.tickets);
        let ticket = tickets.get_mut(&key(region, ticket_id)).ok_or_else(|| {
            CorrectionError::UnknownTicket {
                ticket_id: ticket_id.to_owned(),
            }
        })?;
        // `apply` changes the ticket only when it succeeds.
        ticket.apply(to, time_ms, note)?;
        Ok(ticket.clone())
    }

    fn purge_closed_before(&self, time_ms: u64) -> Result<u64, CorrectionError> {
        let mut tickets = lock(&self.tickets);
        let before = tickets.len();
        tickets.retain(|_, t| !(t.status.is_terminal() && t.updated_ms < time_ms));
        Ok((before - tickets.len()) as u64)
    }
}
