//! Replay protection: each `(appId, nonce)` is accepted once within a retention window.
//!
//! [`NonceStore`] is the seam between the envelope and the state backend (DESIGN.md §7): the
//! embedded default is [`MemoryNonceStore`]; a cluster uses Redis `SET NX EX` behind the same
//! trait. The envelope consults the store only after the signature has verified and the
//! timestamp is inside the window, so an attacker cannot fill it with forged or stale
//! requests, and the store only needs to remember a nonce for as long as a request carrying it
//! could still pass the timestamp check.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;

use crate::crypto::sm3;

/// What a [`NonceStore`] says about a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Not seen within the window; it is now recorded.
    Fresh,
    /// Already used by this client within the window.
    Replayed,
    /// Not recorded because the store is at its size cap. The request must be refused:
    /// accepting it unrecorded would let it be replayed.
    Full,
    /// The backend could not be reached; the request must be refused (fail closed).
    Unavailable,
}

/// Records nonces per client and says whether one was seen before.
///
/// Implementations are shared by all request tasks, so they are `Send + Sync`, and a call must
/// not block for long: the in-memory one holds a mutex for a hash-map operation.
pub trait NonceStore: Send + Sync {
    /// Atomically checks that `nonce` has not been used by `app_id` within the retention
    /// window ending at `now_ms` (Unix milliseconds), and records it if so.
    fn check_and_insert(&self, app_id: &str, nonce: &str, now_ms: u64) -> NonceCheck;
}

/// How long a nonce is remembered: 600 s, the profile's rule (twice the ±300 s skew, so a
/// request is refused as replayed for as long as its timestamp could still be accepted).
pub const DEFAULT_NONCE_TTL_MS: u64 = 600_000;

/// Default cap on remembered nonces: about 3,300 requests a second sustained over the window,
/// at about 70 bytes each (140 MB at the cap). Larger fleets use the cluster backend.
pub const DEFAULT_MAX_NONCES: usize = 2_000_000;

/// Default cap on one client's remembered nonces, so one client cannot use up the whole store.
pub const DEFAULT_MAX_NONCES_PER_APP: usize = 500_000;

/// Configuration of [`MemoryNonceStore`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct NonceStoreConfig {
    /// Retention window in milliseconds ([`DEFAULT_NONCE_TTL_MS`]).
    #[serde(default = "default_ttl")]
    pub ttl_ms: u64,
    /// Cap on remembered nonces across all clients ([`DEFAULT_MAX_NONCES`]).
    #[serde(default = "default_max")]
    pub max_entries: usize,
    /// Cap on remembered nonces of one client ([`DEFAULT_MAX_NONCES_PER_APP`]).
    #[serde(default = "default_max_per_app")]
    pub max_entries_per_app: usize,
}

fn default_ttl() -> u64 {
    DEFAULT_NONCE_TTL_MS
}
fn default_max() -> usize {
    DEFAULT_MAX_NONCES
}
fn default_max_per_app() -> usize {
    DEFAULT_MAX_NONCES_PER_APP
}

impl Default for NonceStoreConfig {
    fn default() -> Self {
        Self {
            ttl_ms: DEFAULT_NONCE_TTL_MS,
            max_entries: DEFAULT_MAX_NONCES,
            max_entries_per_app: DEFAULT_MAX_NONCES_PER_APP,
        }
    }
}

/// An in-process [`NonceStore`] with expiry and size caps.
///
/// Entries are keyed by 128 bits of `SM3(len(appId) ‖ appId ‖ nonce)`, so an entry costs the
/// same whatever the nonce's length. Expired entries are purged, oldest first, on every call.
/// At a cap, new nonces are refused ([`NonceCheck::Full`]) rather than old ones forgotten,
/// because forgetting an unexpired nonce would reopen it to replay.
#[derive(Debug)]
pub struct MemoryNonceStore {
    config: NonceStoreConfig,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Digest → expiry (Unix ms).
    seen: HashMap<[u8; 16], u64>,
    /// Insertions in arrival order, for purging. One per counted entry.
    queue: VecDeque<Entry>,
    /// Queue entries per client.
    per_app: HashMap<Arc<str>, usize>,
}

#[derive(Debug)]
struct Entry {
    expires: u64,
    digest: [u8; 16],
    app: Arc<str>,
}

impl MemoryNonceStore {
    /// A store with the given configuration.
    pub fn new(config: NonceStoreConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::default()),
        }
    }

    /// The number of nonces currently remembered (including expired ones not yet purged).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // No code that can panic runs between two mutations of the state, so a lock poisoned
        // by a panic elsewhere still guards consistent data: keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryNonceStore {
    fn default() -> Self {
        Self::new(NonceStoreConfig::default())
    }
}

fn digest(app_id: &str, nonce: &str) -> [u8; 16] {
    let mut input = Vec::with_capacity(8 + app_id.len() + nonce.len());
    input.extend_from_slice(&(app_id.len() as u64).to_be_bytes());
    input.extend_from_slice(app_id.as_bytes());
    input.extend_from_slice(nonce.as_bytes());
    let full = sm3(&input);
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

impl State {
    fn purge(&mut self, now_ms: u64) {
        while let Some(front) = self.queue.front() {
            if front.expires > now_ms {
                break;
            }
            let Some(entry) = self.queue.pop_front() else {
                break;
            };
            // A nonce re-recorded after it expired has a newer expiry: leave that one.
            if self.seen.get(&entry.digest) == Some(&entry.expires) {
                self.seen.remove(&entry.digest);
            }
            if let Some(count) = self.per_app.get_mut(&entry.app) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.per_app.remove(&entry.app);
                }
            }
        }
    }
}

impl NonceStore for MemoryNonceStore {
    fn check_and_insert(&self, app_id: &str, nonce: &str, now_ms: u64) -> NonceCheck {
        let digest = digest(app_id, nonce);
        let mut state = self.lock();
        state.purge(now_ms);

        if state
            .seen
            .get(&digest)
            .is_some_and(|&expires| expires > now_ms)
        {
            return NonceCheck::Replayed;
        }
        let app_count = state.per_app.get(app_id).copied().unwrap_or(0);
        if state.queue.len() >= self.config.max_entries
            || app_count >= self.config.max_entries_per_app
        {
            return NonceCheck::Full;
        }

        let expires = now_ms.saturating_add(self.config.ttl_ms);
        let app = match state.per_app.get_key_value(app_id) {
            Some((app, _)) => Arc::clone(app),
            None => Arc::from(app_id),
        };
        state.seen.insert(digest, expires);
        state.queue.push_back(Entry {
            expires,
            digest,
            app: Arc::clone(&app),
        });
        *state.per_app.entry(app).or_insert(0) += 1;
        NonceCheck::Fresh
    }
}
