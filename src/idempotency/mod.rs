//! Idempotency records: the answer given to each `(appId, requestId)`, kept for
//! [`IDEMPOTENCY_TTL_MS`], so that a retried request gets the first answer instead of a
//! second execution (GB/T 38963 `requestId`; DESIGN.md §7).
//!
//! On the request path it sits after authentication and validation: the gateway looks the
//! pair up ([`IdempotencyStore::get`]) before relaying, and stores the answer
//! ([`IdempotencyStore::put`]) before replying. Two identical requests that race both miss,
//! and the second `put` gets [`PutOutcome::AlreadyExists`] with the first answer, which it
//! returns instead of its own. A stored [`StoredResponse::fingerprint`] that differs from
//! the new request's means the caller reused a `requestId` for different content.
//!
//! Every method blocks; async callers use [`crate::store::blocking`]. Time is the caller's
//! `now_ms` (Unix milliseconds), so tests need no clock.
//!
//! # Stored form (redb)
//!
//! Key `(appId, requestId)` in [`crate::store::tables::IDEMPOTENCY`]; value
//! `version (u8, 1) ‖ expires_at_ms (u64 BE) ‖ fingerprint (32) ‖ code length (u16 BE) ‖
//! code ‖ SM4-CBC(body)` (`IV ‖ ciphertext`), and an entry `(expires_at_ms, appId,
//! requestId)` in [`crate::store::tables::IDEMPOTENCY_EXPIRY`] for purging. The body is
//! encrypted because a holder's answer carries personal fields (DESIGN.md §8: none at rest
//! in clear).

mod memory;
mod redb_store;

#[cfg(test)]
mod tests;

pub use memory::MemoryIdempotencyStore;
pub use redb_store::{RedbIdempotencyStore, purge_expired};

use crate::crypto::{SM3_LEN, sm3};
use crate::store::StoreError;

/// How long an idempotency record lives: 24 hours.
pub const IDEMPOTENCY_TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// A stored answer.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The return code given (`0`, `2001`, …).
    pub code: String,
    /// The business JSON of the answer, as sent (before envelope encryption and signing).
    pub body: Vec<u8>,
    /// [`fingerprint`] of the request's business content.
    pub fingerprint: [u8; SM3_LEN],
}

impl StoredResponse {
    /// Whether the request this answered had the business content `fingerprint` was taken
    /// of: false means the `requestId` was reused for a different request.
    pub fn same_request(&self, fingerprint: &[u8; SM3_LEN]) -> bool {
        self.fingerprint == *fingerprint
    }
}

impl std::fmt::Debug for StoredResponse {
    // The body can hold personal fields: show its size only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredResponse")
            .field("code", &self.code)
            .field("body_len", &self.body.len())
            .field("fingerprint", &crate::crypto::to_hex(&self.fingerprint))
            .finish()
    }
}

/// What [`IdempotencyStore::put`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// The answer was stored.
    Stored,
    /// A live record for the pair already existed and was kept; this is its answer.
    AlreadyExists(StoredResponse),
}

/// The fingerprint of a request: SM3 of its business content (the decrypted `bizContent`
/// bytes as received, so that a byte-identical retry matches).
pub fn fingerprint(business_content: &[u8]) -> [u8; SM3_LEN] {
    sm3(business_content)
}

/// Idempotency records by `(appId, requestId)`.
pub trait IdempotencyStore: Send + Sync {
    /// The live answer for the pair at `now_ms`, if any. An expired record is as good as
    /// absent.
    ///
    /// # Errors
    /// Any store failure, or a record that does not decode or decrypt.
    fn get(
        &self,
        app_id: &str,
        request_id: &str,
        now_ms: u64,
    ) -> Result<Option<StoredResponse>, StoreError>;

    /// Stores `resp` for the pair until `now_ms + IDEMPOTENCY_TTL_MS`, unless a live
    /// record exists, which is kept and returned. An expired record is replaced.
    ///
    /// # Errors
    /// Any store failure.
    fn put(
        &self,
        app_id: &str,
        request_id: &str,
        resp: &StoredResponse,
        now_ms: u64,
    ) -> Result<PutOutcome, StoreError>;

    /// Removes every record expired at `now_ms`; returns how many.
    ///
    /// # Errors
    /// Any store failure; what was removed before it stays removed.
    fn purge_expired(&self, now_ms: u64) -> Result<u64, StoreError>;
}

/// When a record stored at `now_ms` expires.
fn expires_at(now_ms: u64) -> u64 {
    now_ms.saturating_add(IDEMPOTENCY_TTL_MS)
}
