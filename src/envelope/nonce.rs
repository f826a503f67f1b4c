//! Replay protection: each `(appId, nonce)` is accepted once within a retention window.
//!
//! [`NonceStore`] is the seam between the envelope and the state backend (DESIGN.md §7): the
//! embedded default is [`MemoryNonceStore`]; a cluster uses Redis `SET NX EX` behind the same
//! trait. The envelope consults the store only after the signature has verified and the
//! timestamp is inside the window, so an attacker cannot fill it with forged or stale
//! requests, and the store only needs to remember a nonce for as long as a request carrying it
//! could still pass the timestamp check.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde::Deserialize;

use crate::crypto::{Digest128, DigestHashing, digest128};

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

/// Default cap on remembered nonces: about 3,300 requests a second sustained over the window.
/// At the cap the table has 2^22 slots of 25 bytes (105 MB), and half that again while it
/// last grew. Larger fleets use the cluster backend.
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
/// Entries are keyed by the keyed 128-bit digest of `len(appId) ‖ appId ‖ nonce`
/// ([`digest128`]), so an entry costs the same whatever the nonce's length, and callers
/// cannot choose nonces that collide. At a cap, new nonces are refused
/// ([`NonceCheck::Full`]) rather than old ones forgotten, because forgetting an unexpired
/// nonce would reopen it to replay.
///
/// # Memory
///
/// A gateway remembers every request of the last ten minutes: 600,000 at 1,000 requests a
/// second. So an entry is one slot of one table, 24 bytes: the digest, and the expiry and
/// client packed in a word. There is no queue in expiry order. An entry is replaced when its
/// nonce comes again after it expired, and expired entries are swept in one pass once the
/// earliest expiry has passed: at once in a small store, at most every 1/64 of the
/// retention window in a large one. The pass holds the store's lock: a few milliseconds
/// over 600,000 entries, tens over the default cap's 2,000,000. Whether a nonce is fresh
/// never depends on the sweep: an expired entry is not a replay. A store at its cap refuses
/// ([`NonceCheck::Full`]) until a due sweep frees places. The table does not shrink after
/// a sweep; it is reused.
#[derive(Debug)]
pub struct MemoryNonceStore {
    config: NonceStoreConfig,
    state: Mutex<State>,
}

/// Stores with fewer entries than this sweep whenever an entry has expired.
const SWEEP_ALWAYS_BELOW: usize = 4_096;

/// Bits of a packed entry that hold the client's index; the rest hold the expiry (Unix ms,
/// up to the year 2527).
const APP_BITS: u32 = 20;
const MAX_EXPIRY: u64 = (1 << (64 - APP_BITS)) - 1;

#[derive(Debug, Default)]
struct State {
    /// Digest → expiry and client, packed ([`pack`]).
    seen: HashMap<Digest128, u64, DigestHashing>,
    /// How many entries each client holds, by the client's index. A client's index never
    /// changes; only authenticated clients reach the store, so the list is as long as the
    /// registry.
    held: Vec<usize>,
    app_index: HashMap<Box<str>, u32>,
    /// No entry expires before this (Unix ms); `u64::MAX` when there are none.
    earliest: u64,
    last_sweep: u64,
}

/// `expires` is at most [`MAX_EXPIRY`]: `check_and_insert` refuses any later one.
fn pack(expires: u64, app: u32) -> u64 {
    (expires << APP_BITS) | u64::from(app)
}

fn expiry(packed: u64) -> u64 {
    packed >> APP_BITS
}

fn app_of(packed: u64) -> usize {
    (packed & ((1 << APP_BITS) - 1)) as usize
}

impl MemoryNonceStore {
    /// A store with the given configuration.
    pub fn new(config: NonceStoreConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State {
                earliest: u64::MAX,
                ..State::default()
            }),
        }
    }

    /// The number of nonces currently remembered (including expired ones not yet swept).
    pub fn len(&self) -> usize {
        self.lock().seen.len()
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

fn digest(app_id: &str, nonce: &str) -> Digest128 {
    digest128(&[
        &(app_id.len() as u64).to_be_bytes(),
        app_id.as_bytes(),
        nonce.as_bytes(),
    ])
}

impl State {
    /// Sweeps expired entries if any have expired and the store is small or the last sweep
    /// is at least `every_ms` old.
    fn maybe_sweep(&mut self, now_ms: u64, every_ms: u64) {
        let due = self.seen.len() < SWEEP_ALWAYS_BELOW
            || now_ms >= self.last_sweep.saturating_add(every_ms)
            // A clock that stepped back: the interval restarts from here.
            || now_ms < self.last_sweep;
        if now_ms >= self.earliest && due {
            self.sweep(now_ms);
        }
    }

    fn sweep(&mut self, now_ms: u64) {
        let Self {
            seen,
            held,
            earliest,
            ..
        } = self;
        *earliest = u64::MAX;
        seen.retain(|_, packed| {
            let expires = expiry(*packed);
            if expires > now_ms {
                *earliest = (*earliest).min(expires);
                return true;
            }
            if let Some(count) = held.get_mut(app_of(*packed)) {
                *count = count.saturating_sub(1);
            }
            false
        });
        self.last_sweep = now_ms;
    }

    /// The index of `app_id`, added if new; `None` if the index space is used up.
    fn app(&mut self, app_id: &str) -> Option<u32> {
        if let Some(&i) = self.app_index.get(app_id) {
            return Some(i);
        }
        let i = u32::try_from(self.held.len())
            .ok()
            .filter(|&i| i < 1 << APP_BITS)?;
        self.held.push(0);
        self.app_index.insert(app_id.into(), i);
        Some(i)
    }

    fn over(&self, app: u32, config: &NonceStoreConfig) -> bool {
        let held = self.held.get(app as usize).copied().unwrap_or(0);
        self.seen.len() >= config.max_entries || held >= config.max_entries_per_app
    }
}

impl NonceStore for MemoryNonceStore {
    fn check_and_insert(&self, app_id: &str, nonce: &str, now_ms: u64) -> NonceCheck {
        // A clock past what an entry can hold (the year 2527) could not keep a nonce from
        // being replayed: fail closed.
        if now_ms.saturating_add(self.config.ttl_ms) > MAX_EXPIRY {
            return NonceCheck::Unavailable;
        }
        let digest = digest(app_id, nonce);
        let every_ms = (self.config.ttl_ms / 64).max(1);
        let mut state = self.lock();
        state.maybe_sweep(now_ms, every_ms);

        if state
            .seen
            .get(&digest)
            .is_some_and(|&packed| expiry(packed) > now_ms)
        {
            return NonceCheck::Replayed;
        }
        let Some(app) = state.app(app_id) else {
            return NonceCheck::Full;
        };
        // Expired entries may hold places; the sweep above freed them if it was due. A store
        // at its cap does not sweep more often than that: a client over its budget would
        // otherwise make each of its requests a pass over the whole table.
        if state.over(app, &self.config) {
            return NonceCheck::Full;
        }

        let expires = now_ms.saturating_add(self.config.ttl_ms);
        // An expired entry for the same nonce is replaced: its place is freed first.
        if let Some(old) = state.seen.insert(digest, pack(expires, app)) {
            if let Some(count) = state.held.get_mut(app_of(old)) {
                *count = count.saturating_sub(1);
            }
        }
        if let Some(count) = state.held.get_mut(app as usize) {
            *count += 1;
        }
        state.earliest = state.earliest.min(expires);
        NonceCheck::Fresh
    }
}
