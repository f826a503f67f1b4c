//! The building blocks behind [`super::RateLimiter`]: a keyed governor limiter that keeps
//! its own memory bounded, and a direct one, each remembering the quota it was built from.

use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};

use super::config::RateLimitConfig;

/// How often (in checks) a keyed limiter looks at its size. Looking is cheap (a read lock
/// per DashMap shard), but not free, so not on every request.
pub(super) const SWEEP_CHECK_EVERY: u64 = 256;

/// A keyed limiter never sweeps below this many keys: small maps cost little, and sweeping
/// them often would cost more than it saves.
pub(super) const MIN_SWEEP_KEYS: usize = 4_096;

type KeyedGovernor<K, C> =
    governor::RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;
type DirectGovernor<C> =
    governor::RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// A keyed limiter (one bucket per key) with amortised housekeeping.
///
/// # Memory
///
/// governor keeps a state cell for every key it has seen. Left alone, a stream of distinct
/// source addresses would grow the map without bound. Every [`SWEEP_CHECK_EVERY`] checks this
/// looks at the map's size; when it exceeds a high-water mark, it calls governor's
/// `retain_recent` (dropping every key whose bucket has refilled completely, i.e. whose state
/// is indistinguishable from a key never seen) and `shrink_to_fit`, then sets the mark to
/// twice the surviving size (at least [`MIN_SWEEP_KEYS`]). Sweeps therefore cost O(1)
/// amortised per new key, and the map holds at most about twice the keys that are live (seen
/// within their own refill time, `burst / per_second` s), plus the keys added within the
/// last [`SWEEP_CHECK_EVERY`] checks. The number of live keys is itself bounded by the
/// request rate the stack in front admits (load shed and concurrency limit).
pub(super) struct Keyed<K: Hash + Eq + Clone, C: Clock> {
    config: RateLimitConfig,
    limiter: KeyedGovernor<K, C>,
    clock: C,
    checks: AtomicU64,
    sweep_above: AtomicUsize,
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> Keyed<K, C> {
    pub(super) fn new(config: RateLimitConfig, clock: &C) -> Self {
        Self {
            config,
            limiter: governor::RateLimiter::dashmap_with_clock(config.quota(), clock.clone()),
            clock: clock.clone(),
            checks: AtomicU64::new(0),
            sweep_above: AtomicUsize::new(MIN_SWEEP_KEYS),
        }
    }

    pub(super) fn config(&self) -> RateLimitConfig {
        self.config
    }

    /// Takes one cell from `key`'s bucket, or says how long until one is available.
    pub(super) fn check(&self, key: &K) -> Result<(), Duration> {
        let outcome = self
            .limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()));
        self.maybe_sweep();
        outcome
    }

    fn maybe_sweep(&self) {
        let n = self.checks.fetch_add(1, Ordering::Relaxed);
        if n % SWEEP_CHECK_EVERY != 0
            || self.limiter.len() <= self.sweep_above.load(Ordering::Relaxed)
        {
            return;
        }
        self.sweep();
    }

    /// Drops every key whose bucket is full again, and resets the high-water mark.
    pub(super) fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        let mark = self.limiter.len().saturating_mul(2).max(MIN_SWEEP_KEYS);
        self.sweep_above.store(mark, Ordering::Relaxed);
    }

    /// Keys currently held.
    pub(super) fn len(&self) -> usize {
        self.limiter.len()
    }
}

impl<K: Hash + Eq + Clone, C: Clock> fmt::Debug for Keyed<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyed")
            .field("config", &self.config)
            .field("keys", &self.limiter.len())
            .finish_non_exhaustive()
    }
}

/// A single bucket (for one client's own quota).
pub(super) struct Direct<C: Clock> {
    config: RateLimitConfig,
    limiter: DirectGovernor<C>,
    clock: C,
}

impl<C: Clock + Clone> Direct<C> {
    pub(super) fn new(config: RateLimitConfig, clock: &C) -> Self {
        Self {
            config,
            limiter: governor::RateLimiter::direct_with_clock(config.quota(), clock.clone()),
            clock: clock.clone(),
        }
    }

    pub(super) fn config(&self) -> RateLimitConfig {
        self.config
    }

    /// Takes one cell, or says how long until one is available.
    pub(super) fn check(&self) -> Result<(), Duration> {
        self.limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

impl<C: Clock> fmt::Debug for Direct<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Direct")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
