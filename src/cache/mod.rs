//! The response cache (DESIGN.md §5): answers from the regions' back-ends, kept only as long
//! as the health status they carry is fresh.
//!
//! # Where it sits
//!
//! ```text
//! … decode → validate → cache.get_or_fetch(key, relay(…)) → translate back → sign …
//! ```
//!
//! The fetch passed in is the relay to the upstream region. The status-event path calls
//! [`ResponseCache::purge_subject`].
//!
//! # The rules particular to health codes
//!
//! - **Freshness.** Every entry carries its own deadline, `expires_at_ms`, which the caller
//!   computes with [`freshness_deadline`]: the region's `updateTime` plus its validity, never
//!   past the code's `exp`, never longer than `max_ttl_ms`. Every read compares it with the
//!   injected [`MillisClock`]; a stale entry is a miss. moka's per-entry expiry
//!   ([`moka::Expiry`]) is set from the same deadline, so stale entries also leave memory.
//! - **Partitions.** Keys include what the caller may see ([`CacheKey`]), so an answer is
//!   never served to a caller with narrower rights than the one it was fetched for.
//! - **Purge by person.** A status event purges every entry about that person, and also
//!   condemns a fetch for them that is still in flight (see the `index` module), so no
//!   answer fetched before the event is kept after it. A request that *joins* such a fetch
//!   while it is in flight gets its answer: that answer overlapped the event.
//! - **One upstream call per key.** Concurrent misses on one key wait for a single fetch
//!   (moka's `or_try_insert_with`). A failed fetch is not cached: every waiter gets the
//!   same error, and the next request tries again.
//!
//! # Errors
//!
//! The cache has no error type of its own: the only failure is the fetch's, handed back as
//! `Arc<E>` because every caller that waited on that fetch shares it.
//!
//! This is the in-process tier; the shared Redis tier of DESIGN.md §7 is not here yet.

mod config;
mod entry;
mod index;
#[cfg(test)]
mod tests;

use std::fmt;
use std::future::{Future, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};

pub use config::{CacheConfig, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_TTL_MS};
pub use entry::{CacheKey, Cached, MillisClock, freshness_deadline};

use index::{Stored, SubjectIndex};

/// The response cache. Share it (`Arc`); every method takes `&self`.
pub struct ResponseCache {
    entries: Cache<CacheKey, Arc<Stored>>,
    index: Arc<SubjectIndex>,
    clock: MillisClock,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    fetch_errors: AtomicU64,
    stale: AtomicU64,
    purges: AtomicU64,
}

/// Counters for metrics. Monotonic since start, except `entries` and `subjects`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Requests answered without an upstream call of their own: from a stored entry, or by
    /// joining a fetch already in flight for the same key.
    pub hits: u64,
    /// Upstream calls made (fetches run), successful or not.
    pub misses: u64,
    /// Fetches that failed (not cached).
    pub fetch_errors: u64,
    /// Stored entries found past their deadline or purged, and fetched again.
    pub stale: u64,
    /// Entries removed by [`ResponseCache::purge_subject`].
    pub purges: u64,
    /// Entries held (moka's estimate; exact after [`ResponseCache::run_pending_tasks`]).
    pub entries: u64,
    /// Persons with at least one entry in the subject index.
    pub subjects: usize,
}

impl ResponseCache {
    /// An empty cache bounded by `config`, judging freshness on `clock`.
    pub fn new(config: &CacheConfig, clock: MillisClock) -> Self {
        let index = Arc::new(SubjectIndex::default());
        let listener_index = Arc::clone(&index);
        let entries = Cache::builder()
            .max_capacity(config.max_entries.get())
            .expire_after(FreshnessExpiry {
                clock: clock.clone(),
                max_ttl: Duration::from_millis(config.max_ttl_ms.get()),
            })
            // Every removal, whatever the cause (expiry, size, replacement, purge), keeps
            // the subject index in step with moka.
            .eviction_listener(move |_key, stored: Arc<Stored>, _cause| {
                listener_index.forget(&stored);
            })
            .build();
        Self {
            entries,
            index,
            clock,
            counters: Counters::default(),
        }
    }

    /// The answer for `key`: the stored one if it is still fresh and not purged, else the
    /// result of `fetch`, which is then stored until its `expires_at_ms`.
    ///
    /// Concurrent calls for one key share a single `fetch`: only one caller's future is
    /// polled, and the others wait for its result (theirs are dropped unpolled). An answer
    /// already past its deadline when it arrives is returned to those callers and not kept.
    ///
    /// # Errors
    ///
    /// The fetch's error, shared by every caller that waited on it. Errors are not cached.
    pub async fn get_or_fetch<F, E>(&self, key: CacheKey, fetch: F) -> Result<Arc<Cached>, Arc<E>>
    where
        F: Future<Output = Result<Cached, E>>,
        E: Send + Sync + 'static,
    {
        if let Some(stored) = self.entries.get(&key).await {
            if servable(&stored, self.clock.now_ms()) {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Arc::clone(&stored.cached));
            }
            self.counters.stale.fetch_add(1, Ordering::Relaxed);
            Box::pin(self.remove_if_current(&stored)).await;
        }

        // Noted before the fetch starts: a purge of the subject from here on condemns it.
        let fetch_epoch = self.index.epoch();
        let (index, counters, stored_key) = (&self.index, &self.counters, key.clone());
        let init = async move {
            counters.misses.fetch_add(1, Ordering::Relaxed);
            match fetch.await {
                Ok(cached) => {
                    let stored = Arc::new(Stored::new(stored_key, cached));
                    index.register(&stored, fetch_epoch);
                    Ok(stored)
                }
                Err(e) => {
                    counters.fetch_errors.fetch_add(1, Ordering::Relaxed);
                    Err(e)
                }
            }
        };
        // Boxed, as the removal above: moka's insertion future is kilobytes, and unboxed it
        // would make every caller's future (up to the request's) that much larger, to be
        // moved around on hits too.
        let entry = Box::pin(self.entries.entry(key).or_try_insert_with(init)).await?;
        if !entry.is_fresh() {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Arc::clone(&entry.value().cached))
    }

    /// Purges every answer about `subject` (a person's pseudonym, hex): the status-event
    /// path. Entries are condemned at once, so no read after this returns serves them, and
    /// so is any fetch for the person still in flight. Returns how many stored entries it
    /// removed.
    pub async fn purge_subject(&self, subject: &str) -> usize {
        let mut removed = 0;
        for stored in self.index.purge(subject) {
            if self.remove_if_current(&stored).await {
                removed += 1;
            }
        }
        self.counters
            .purges
            .fetch_add(removed as u64, Ordering::Relaxed);
        removed
    }

    /// The counters, for metrics.
    pub fn stats(&self) -> CacheStats {
        let (subjects, _) = self.index.len();
        let c = &self.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            fetch_errors: c.fetch_errors.load(Ordering::Relaxed),
            stale: c.stale.load(Ordering::Relaxed),
            purges: c.purges.load(Ordering::Relaxed),
            entries: self.entries.entry_count(),
            subjects,
        }
    }

    /// Runs moka's pending housekeeping now (evictions, and with them the eviction
    /// listener). moka does this by itself as the cache is used; tests and metrics call it
    /// for exact numbers.
    pub async fn run_pending_tasks(&self) {
        self.entries.run_pending_tasks().await;
    }

    /// Removes `stored` from moka if it is still the entry under its key (a newer answer
    /// stored meanwhile is left alone). Returns whether it removed it.
    async fn remove_if_current(&self, stored: &Arc<Stored>) -> bool {
        let outcome = self
            .entries
            .entry_by_ref(&stored.key)
            .and_compute_with(|current| {
                let same = current.is_some_and(|e| Arc::ptr_eq(e.value(), stored));
                ready(if same { Op::Remove } else { Op::Nop })
            })
            .await;
        matches!(outcome, CompResult::Removed(_))
    }
}

impl fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseCache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Whether a stored entry may be served at `now_ms`.
fn servable(stored: &Stored, now_ms: u64) -> bool {
    !stored.is_purged() && stored.cached.expires_at_ms > now_ms
}

/// moka's per-entry expiry: the time left until `expires_at_ms` on the injected clock,
/// capped by `max_ttl_ms`, and nothing for a condemned entry. It only frees memory: reads
/// decide freshness themselves ([`servable`]), because moka measures the time left on its
/// own monotonic clock.
struct FreshnessExpiry {
    clock: MillisClock,
    max_ttl: Duration,
}

impl FreshnessExpiry {
    fn time_left(&self, stored: &Stored) -> Duration {
        if stored.is_purged() {
            return Duration::ZERO;
        }
        let left_ms = stored
            .cached
            .expires_at_ms
            .saturating_sub(self.clock.now_ms());
        Duration::from_millis(left_ms).min(self.max_ttl)
    }
}

impl moka::Expiry<CacheKey, Arc<Stored>> for FreshnessExpiry {
    fn expire_after_create(
        &self,
        _: &CacheKey,
        stored: &Arc<Stored>,
        _: Instant,
    ) -> Option<Duration> {
        Some(self.time_left(stored))
    }

    fn expire_after_update(
        &self,
        _: &CacheKey,
        stored: &Arc<Stored>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.time_left(stored))
    }
}
