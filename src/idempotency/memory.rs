//! An [`IdempotencyStore`] in memory, for tests.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::{StoreError, lock};

use super::{IdempotencyStore, PutOutcome, StoredResponse, expires_at};

/// An in-memory [`IdempotencyStore`]. Lost when dropped.
#[derive(Debug, Default)]
pub struct MemoryIdempotencyStore {
    /// `(appId, requestId)` → (expires at, answer).
    records: Mutex<HashMap<(String, String), (u64, StoredResponse)>>,
}

impl MemoryIdempotencyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl IdempotencyStore for MemoryIdempotencyStore {
    fn get(
        &self,
        app_id: &str,
        request_id: &str,
        now_ms: u64,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let records = lock(&self.records);
        Ok(records
            .get(&(app_id.to_owned(), request_id.to_owned()))
            .filter(|(exp, _)| now_ms < *exp)
            .map(|(_, r)| r.clone()))
    }

    fn put(
        &self,
        app_id: &str,
        request_id: &str,
        resp: &StoredResponse,
        now_ms: u64,
    ) -> Result<PutOutcome, StoreError> {
        let mut records = lock(&self.records);
        let key = (app_id.to_owned(), request_id.to_owned());
        if let Some((exp, existing)) = records.get(&key) {
            if now_ms < *exp {
                return Ok(PutOutcome::AlreadyExists(existing.clone()));
            }
        }
        records.insert(key, (expires_at(now_ms), resp.clone()));
        Ok(PutOutcome::Stored)
    }

    fn purge_expired(&self, now_ms: u64) -> Result<u64, StoreError> {
        let mut records = lock(&self.records);
        let before = records.len();
        records.retain(|_, (exp, _)| now_ms < *exp);
        Ok((before - records.len()) as u64)
    }
}
