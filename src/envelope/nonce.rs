//! Replay protection: each `(appId, nonce)` is accepted once within a retention window.
//!
//! [`NonceStore`] is the seam between the envelope and the state backend (DESIGN.md §7): the
//! embedded default is [`MemoryNonceStore`]; a cluster uses Redis `SET NX EX` behind the same
//! trait. The envelope consults the store only after the signature has verified and the
//! timestamp is inside the window, so an attacker cannot fill it with forged or stale
//! requests, and the store only needs to remember a nonce for as long as a request carrying it
//! could still pass the timestamp check.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use serde::Deserialize;

use crate::crypto::{Digest128, DigestHashing, DigestKey};

mod snapshot;
pub use snapshot::{NonceSnapshotError, SAVE_EVERY as NONCE_SAVE_EVERY, SavedNonces};

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

impl NonceCheck {
    /// `Ok` for a fresh nonce; otherwise the error the request is refused with.
    ///
    /// # Errors
    /// [`EnvelopeError::Replayed`], [`EnvelopeError::NonceStoreFull`] or
    /// [`EnvelopeError::NonceStoreUnavailable`].
    pub fn fresh(self) -> Result<(), super::EnvelopeError> {
        match self {
            Self::Fresh => Ok(()),
            Self::Replayed => Err(super::EnvelopeError::Replayed),
            Self::Full => Err(super::EnvelopeError::NonceStoreFull),
            Self::Unavailable => Err(super::EnvelopeError::NonceStoreUnavailable),
        }
    }
}

/// Records nonces per client and says whether one was seen before.
///
/// Implementations are shared by all request tasks, so they are `Send + Sync`, and a call must
/// not block for long: the in-memory one holds one shard's mutex for a hash-map operation.
pub trait NonceStore: Send + Sync {
    /// Atomically checks that `nonce` has not been used by `app_id` within the retention
    /// window ending at `now_ms` (Unix milliseconds), and records it if so.
    fn check_and_insert(&self, app_id: &str, nonce: &str, now_ms: u64) -> NonceCheck;

    /// Whether `nonce` of `app_id` is held and has not expired, recording nothing: a
    /// look before the caller spends anything on the request (its rate limit). A store
    /// that cannot look cheaply says `false`; [`NonceStore::check_and_insert`] still
    /// refuses the replay.
    fn seen(&self, _app_id: &str, _nonce: &str, _now_ms: u64) -> bool {
        false
    }

    /// How many nonces the store holds and the most it holds before it answers 1007, for
    /// the metrics; `None` where counting is not cheap.
    fn fill(&self) -> Option<(u64, u64)> {
        None
    }
}

/// How long a nonce is remembered: twice the ±300 s skew, so that a request is refused as
/// replayed for as long as its timestamp could still be accepted, and one second more. The
/// window is inclusive: a request first seen with its timestamp 300 s ahead is still within
/// it 600 s later, to the millisecond, when a nonce kept exactly 600 s had just been
/// forgotten. A dialect's window counts whole seconds, which can add almost a second more
/// (its `window_s` is at most 300: `translate::load`).
pub const DEFAULT_NONCE_TTL_MS: u64 = 2 * super::DEFAULT_MAX_CLOCK_SKEW_MS + 1_000;

/// Default cap on remembered nonces: about 3,300 requests a second sustained over the window.
/// At the cap the shards' tables have 2^22 slots of 25 bytes in all (105 MB), and half of
/// one shard's again while that shard last grew. Larger fleets use the cluster backend.
pub const DEFAULT_MAX_NONCES: usize = 2_000_000;

/// Default cap on one client's remembered nonces, so one client cannot use up the whole
/// store: room for the default per-client limit (1,000 a second, bursts of 2,000) over the
/// whole window, 603,000, and a little more.
pub const DEFAULT_MAX_NONCES_PER_APP: usize = 640_000;

/// Largest `replay.max_entries`: 50 million nonces, about 2.5 GB of tables.
pub const MAX_NONCES_LIMIT: usize = 50_000_000;

impl NonceStoreConfig {
    /// Every problem with the settings, named as under `[replay]`.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        // Shorter, a request could be sent again while its timestamp is still accepted.
        if self.ttl_ms < DEFAULT_NONCE_TTL_MS || self.ttl_ms > 24 * 3_600_000 {
            out.push(format!(
                "replay.ttl_ms must be {DEFAULT_NONCE_TTL_MS} (the timestamp window both \
                 ways, and a second) to 86400000"
            ));
        }
        if self.max_entries == 0 || self.max_entries > MAX_NONCES_LIMIT {
            out.push(format!(
                "replay.max_entries must be 1 to {MAX_NONCES_LIMIT}"
            ));
        }
        if self.max_entries_per_app == 0 || self.max_entries_per_app > self.max_entries {
            out.push("replay.max_entries_per_app must be 1 to replay.max_entries".to_owned());
        }
        out
    }

    /// The most nonces one client may need held at once when it sends at `per_second`
    /// with bursts of `burst`: what its limit admits over the window.
    pub fn needed_for(&self, per_second: u32, burst: u32) -> u64 {
        u64::from(per_second)
            .saturating_mul(self.ttl_ms)
            .div_ceil(1_000)
            .saturating_add(u64::from(burst))
    }
}

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
/// nonce comes again after it expired, and expired entries are swept in one pass over their
/// shard once the shard's earliest expiry has passed: at once in a small shard, at most
/// every 1/64 of the retention window in a large one. Whether a nonce is fresh never
/// depends on the sweep: an expired entry is not a replay. A store at its cap refuses
/// ([`NonceCheck::Full`]) until a due sweep frees places; at the cap, every shard whose sweep
/// is due is swept before a nonce is refused. The tables do not shrink after a sweep; they
/// are reused.
///
/// # Shards
///
/// The table is split into [`NONCE_SHARDS`] shards by the digest, each under its own lock. A pass
/// over one table of the default cap's 2,000,000 entries held the only lock for tens of
/// milliseconds, and every request that arrived meanwhile waited on a runtime worker; a
/// shard's pass covers a sixteenth of the entries and holds up only the requests whose
/// nonce falls in that shard. Every request takes one of these locks, so spreading them
/// also spreads the contention. The caps are counted across shards with atomics: a place
/// is reserved before the entry is inserted and given back if the insert does not take one.
pub struct MemoryNonceStore {
    config: NonceStoreConfig,
    /// Keys the entries' digests: this process's keys, or keys derived from a secret when
    /// the store is saved and loaded across restarts ([`snapshot`]).
    key: DigestKey,
    shards: Box<[Mutex<Shard>]>,
    /// Entries across the shards, expired ones not yet swept included, and places reserved
    /// by requests about to insert.
    total: AtomicUsize,
    apps: RwLock<Apps>,
    /// Set by [`MemoryNonceStore::close`]: every nonce is refused from then on.
    closed: AtomicBool,
}

impl std::fmt::Debug for MemoryNonceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryNonceStore")
            .field("config", &self.config)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

/// Shards of a [`MemoryNonceStore`] (at most 256: the shard is picked by one byte).
pub const NONCE_SHARDS: usize = 16;

/// Shards with fewer entries than this sweep whenever an entry has expired.
const SWEEP_ALWAYS_BELOW: usize = 256;

/// Bits of a packed entry that hold the client's index; the rest hold the expiry (Unix ms,
/// up to the year 2527).
const APP_BITS: u32 = 20;
const MAX_EXPIRY: u64 = (1 << (64 - APP_BITS)) - 1;

#[derive(Debug, Default)]
struct Shard {
    /// Digest → expiry and client, packed ([`pack`]).
    seen: HashMap<Digest128, u64, DigestHashing>,
    /// No entry expires before this (Unix ms); `u64::MAX` when there are none.
    earliest: u64,
    last_sweep: u64,
}

/// The clients that have used the store. A client's index never changes; only
/// authenticated clients reach the store, so the list is as long as the registry.
#[derive(Debug, Default)]
struct Apps {
    index: HashMap<Box<str>, u32>,
    /// How many entries each client holds, by the client's index.
    held: Vec<Arc<AtomicUsize>>,
}

/// Entries a sweep removed, by client index.
type Freed = HashMap<u32, usize>;

/// `expires` is at most [`MAX_EXPIRY`]: `check_and_insert` refuses any later one.
fn pack(expires: u64, app: u32) -> u64 {
    (expires << APP_BITS) | u64::from(app)
}

fn expiry(packed: u64) -> u64 {
    packed >> APP_BITS
}

fn app_of(packed: u64) -> u32 {
    // The mask keeps APP_BITS (20) bits, which fit.
    (packed & ((1 << APP_BITS) - 1)) as u32
}

// No code that can panic runs between two mutations of a shard or of the client list, so a
// lock poisoned by a panic elsewhere still guards consistent data: keep serving.
fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryNonceStore {
    /// A store with the given configuration.
    pub fn new(config: NonceStoreConfig) -> Self {
        Self::with_shards(config, NONCE_SHARDS)
    }

    /// A store of `shards` shards (from 1 to 256; others are clamped). One shard is the
    /// unsharded design this replaced, which `hutong bench nonce-sweep` measures beside
    /// the default.
    pub fn with_shards(config: NonceStoreConfig, shards: usize) -> Self {
        Self::keyed(config, shards, DigestKey::process())
    }

    /// A store whose digests are keyed by `key`: one derived from a secret that outlives the
    /// process, so that nonces saved by one process ([`MemoryNonceStore::save`]) are known to
    /// the next ([`MemoryNonceStore::load`]).
    pub fn with_key(config: NonceStoreConfig, key: DigestKey) -> Self {
        Self::keyed(config, NONCE_SHARDS, key)
    }

    fn keyed(config: NonceStoreConfig, shards: usize, key: DigestKey) -> Self {
        Self {
            config,
            key,
            shards: (0..shards.clamp(1, 256))
                .map(|_| {
                    Mutex::new(Shard {
                        earliest: u64::MAX,
                        ..Shard::default()
                    })
                })
                .collect(),
            total: AtomicUsize::new(0),
            apps: RwLock::default(),
            closed: AtomicBool::new(false),
        }
    }

    /// Refuses every nonce from now on ([`NonceCheck::Unavailable`]): before the last save
    /// of a process that stops, so that no request is accepted that the save would miss.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// The number of nonces currently remembered (including expired ones not yet swept).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).seen.len()).sum()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, digest: &Digest128) -> &Mutex<Shard> {
        // The last byte: the table's hasher takes the first eight, so the shard says
        // nothing about a key's place in its table.
        &self.shards[usize::from(digest[15]) % self.shards.len()]
    }

    /// The index of `app_id` and its count of held entries, added if new; `None` if the
    /// index space is used up.
    fn app(&self, app_id: &str) -> Option<(u32, Arc<AtomicUsize>)> {
        {
            let apps = self.apps.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(&i) = apps.index.get(app_id) {
                return Some((i, Arc::clone(apps.held.get(i as usize)?)));
            }
        }
        let mut apps = self.apps.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(&i) = apps.index.get(app_id) {
            return Some((i, Arc::clone(apps.held.get(i as usize)?)));
        }
        let i = u32::try_from(apps.held.len())
            .ok()
            .filter(|&i| i < 1 << APP_BITS)?;
        let held = Arc::new(AtomicUsize::new(0));
        apps.held.push(Arc::clone(&held));
        apps.index.insert(app_id.into(), i);
        Some((i, held))
    }

    /// Gives back the places a sweep freed. Called with no shard locked: the client list's
    /// lock is never taken while a shard's is held, nor the other way round.
    fn release(&self, freed: Freed) {
        if freed.is_empty() {
            return;
        }
        let apps = self.apps.read().unwrap_or_else(PoisonError::into_inner);
        for (app, n) in freed {
            if let Some(held) = apps.held.get(app as usize) {
                held.fetch_sub(n, Ordering::AcqRel);
            }
        }
    }

    /// Takes a place for one more entry of the client counted by `held`, if both caps allow.
    /// A count only goes up while it is below its cap, so a refused request never holds a
    /// place, even for a moment; the client's place is given back if the store is full.
    fn reserve(&self, held: &AtomicUsize) -> bool {
        if !take_place(held, self.config.max_entries_per_app) {
            return false;
        }
        if !take_place(&self.total, self.config.max_entries) {
            held.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Sweeps every shard whose sweep is due: before a nonce is refused at the cap.
    fn sweep_due(&self, now_ms: u64, every_ms: u64) {
        for shard in &*self.shards {
            let freed = lock(shard).maybe_sweep(now_ms, every_ms, &self.total);
            self.release(freed);
        }
    }

    fn check(&self, app_id: &str, nonce: &str, now_ms: u64, at_cap_sweep: bool) -> NonceCheck {
        let digest = digest(&self.key, app_id, nonce);
        let every_ms = (self.config.ttl_ms / 64).max(1);
        let Some((app, held)) = self.app(app_id) else {
            return NonceCheck::Full;
        };
        let mut shard = lock(self.shard(&digest));
        let freed = shard.maybe_sweep(now_ms, every_ms, &self.total);
        if !freed.is_empty() {
            // The clients' counts are given back before this request takes a place (with
            // the shard unlocked: see `release`). A sweep is rare, so is the second lock.
            drop(shard);
            self.release(freed);
            shard = lock(self.shard(&digest));
        }
        // Under the shard's lock: the last save copies this shard after `close` (taking the
        // lock), so a nonce inserted here before it is saved, and one after it is refused.
        if self.closed.load(Ordering::SeqCst) {
            return NonceCheck::Unavailable;
        }
        let mut replaced = None;
        let verdict = if shard.holds(&digest, now_ms) {
            NonceCheck::Replayed
        } else if !self.reserve(&held) {
            // Expired entries may hold places; this shard's sweep freed them if it was due,
            // and the others' are swept below. A store at its cap does not sweep more often
            // than that: a client over its budget would otherwise make each of its requests
            // a pass over the whole table.
            NonceCheck::Full
        } else {
            let expires = now_ms.saturating_add(self.config.ttl_ms);
            // An expired entry under the same digest (so, but for a 128-bit collision, the
            // same client and nonce) is replaced: its place is freed.
            if let Some(old) = shard.seen.insert(digest, pack(expires, app)) {
                self.total.fetch_sub(1, Ordering::AcqRel);
                replaced = Some(app_of(old));
            }
            shard.earliest = shard.earliest.min(expires);
            NonceCheck::Fresh
        };
        drop(shard);
        if let Some(old_app) = replaced {
            self.release(Freed::from([(old_app, 1)]));
        }
        if verdict == NonceCheck::Full && at_cap_sweep {
            self.sweep_due(now_ms, every_ms);
            return self.check(app_id, nonce, now_ms, false);
        }
        verdict
    }
}

impl Default for MemoryNonceStore {
    fn default() -> Self {
        Self::new(NonceStoreConfig::default())
    }
}

/// Adds one to `count` if it is below `max`.
fn take_place(count: &AtomicUsize, max: usize) -> bool {
    count
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

fn digest(key: &DigestKey, app_id: &str, nonce: &str) -> Digest128 {
    key.digest(&[
        &(app_id.len() as u64).to_be_bytes(),
        app_id.as_bytes(),
        nonce.as_bytes(),
    ])
}

impl Shard {
    /// Whether `digest` is held and has not expired at `now_ms`.
    fn holds(&self, digest: &Digest128, now_ms: u64) -> bool {
        self.seen
            .get(digest)
            .is_some_and(|&packed| expiry(packed) > now_ms)
    }

    /// Sweeps expired entries if any have expired and the shard is small or its last sweep
    /// is at least `every_ms` old. Takes the freed places off `total`, and returns them by
    /// client for [`MemoryNonceStore::release`].
    fn maybe_sweep(&mut self, now_ms: u64, every_ms: u64, total: &AtomicUsize) -> Freed {
        let due = self.seen.len() < SWEEP_ALWAYS_BELOW
            || now_ms >= self.last_sweep.saturating_add(every_ms)
            // A clock that stepped back: the interval restarts from here.
            || now_ms < self.last_sweep;
        if now_ms < self.earliest || !due {
            return Freed::new();
        }
        let mut freed = Freed::new();
        let mut earliest = u64::MAX;
        let before = self.seen.len();
        self.seen.retain(|_, packed| {
            let expires = expiry(*packed);
            if expires > now_ms {
                earliest = earliest.min(expires);
                return true;
            }
            *freed.entry(app_of(*packed)).or_default() += 1;
            false
        });
        total.fetch_sub(before - self.seen.len(), Ordering::AcqRel);
        self.earliest = earliest;
        self.last_sweep = now_ms;
        freed
    }
}

impl NonceStore for MemoryNonceStore {
    fn fill(&self) -> Option<(u64, u64)> {
        Some((
            self.total.load(Ordering::Acquire) as u64,
            self.config.max_entries as u64,
        ))
    }

    fn seen(&self, app_id: &str, nonce: &str, now_ms: u64) -> bool {
        let digest = digest(&self.key, app_id, nonce);
        lock(self.shard(&digest)).holds(&digest, now_ms)
    }

    fn check_and_insert(&self, app_id: &str, nonce: &str, now_ms: u64) -> NonceCheck {
        // A clock past what an entry can hold (the year 2527) could not keep a nonce from
        // being replayed: fail closed.
        if now_ms.saturating_add(self.config.ttl_ms) > MAX_EXPIRY {
            return NonceCheck::Unavailable;
        }
        self.check(app_id, nonce, now_ms, true)
    }
}
