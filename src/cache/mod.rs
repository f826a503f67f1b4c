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
//!   injected [`MillisClock`]; a stale entry is a miss, and is removed. On the monotonic
//!   clock no entry outlives `max_ttl_ms` either, so a wall clock stepped back cannot
//!   stretch an answer's life past the cap that covers a lost status event.
//! - **Partitions.** Keys include what the caller may see ([`CacheKey`]), so an answer is
//!   never served to a caller with narrower rights than the one it was fetched for.
//! - **Purge by person.** A status event purges every entry about that person, and also
//!   condemns a fetch for them that is still in flight (see the `index` module), so no
//!   answer fetched before the event is kept after it. A request that *joined* such a fetch
//!   is not served its condemned answer either: it goes round once more, to a fetch that
//!   started after the event. The caller whose own fetch was in flight when the event came
//!   gets what it fetched, as any answer already on its way would be delivered; so does a
//!   joiner on its second round (at most one more fetch per request, even in a storm of
//!   status events that outruns the purge log, where every answer counts as condemned).
//! - **One upstream call per key.** Concurrent misses on one key wait for a single fetch
//!   (the `flights` map). A failed fetch is not cached: every waiter gets the same error,
//!   and the next request tries again (a flight that holds an error is replaced, not
//!   joined). If the caller whose fetch is running goes away, a
//!   waiter runs its own.
//!
//! # Memory
//!
//! The cache is sized for hundreds of thousands of answers in a few hundred bytes each (the
//! memory scenario of `benches/bench.sh` holds 200,000). So an entry is keyed by one
//! 16-byte digest of service, partition and request; the answer is kept as its compact JSON text,
//! not as a tree of maps; the person is shared with the subject index; and eviction is
//! CLOCK (second chance) over a ring of keys, with no per-entry timer: expired entries go
//! when a read finds them, when the clock hand passes them, or when
//! [`ResponseCache::run_pending_tasks`] sweeps (the gateway runs it periodically).
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
mod ring;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use crate::crypto::DigestHashing;

pub use config::{CacheConfig, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_TTL_MS};
pub use entry::{CacheKey, Cached, MillisClock, freshness_deadline};

use entry::Digest;
pub use index::Stored;
use index::SubjectIndex;
use ring::{Room, Shard};

/// Caches of at least this many entries are split into [`SHARDS`] locks.
const SHARD_ABOVE: usize = 4_096;
const SHARDS: usize = 16;

/// A fetch in flight: its outcome, once one caller's fetch has produced it.
type Flight<E> = OnceCell<Result<Arc<Stored>, Arc<E>>>;

/// The response cache, for answers whose fetch fails with `E`. Share it (`Arc`); every
/// method takes `&self`.
pub struct ResponseCache<E> {
    shards: Box<[RwLock<Shard>]>,
    room: Room,
    flights: Mutex<HashMap<Digest, Arc<Flight<E>>, DigestHashing>>,
    index: SubjectIndex,
    clock: MillisClock,
    max_ttl_ms: u64,
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
    /// Entries held, including expired ones no read or sweep has removed yet.
    pub entries: u64,
    /// Persons with at least one entry in the subject index.
    pub subjects: usize,
    /// Keys with a fetch in flight.
    pub in_flight: usize,
}

impl<E: Send + Sync + 'static> ResponseCache<E> {
    /// An empty cache bounded by `config`, judging freshness on `clock`.
    pub fn new(config: &CacheConfig, clock: MillisClock) -> Self {
        let max = usize::try_from(config.max_entries.get()).unwrap_or(usize::MAX);
        let shards = if max >= SHARD_ABOVE { SHARDS } else { 1 };
        // Keys spread over the shards by their digest, so no shard gets much more than its
        // share; its ring may take twice that before it reuses slots (room for tombstones).
        let ring_cap = (max / shards).saturating_mul(2).saturating_add(64);
        Self {
            shards: (0..shards)
                .map(|_| RwLock::new(Shard::new(ring_cap)))
                .collect(),
            room: Room {
                len: AtomicUsize::new(0),
                max,
            },
            flights: Mutex::default(),
            index: SubjectIndex::default(),
            clock,
            max_ttl_ms: config.max_ttl_ms.get(),
            counters: Counters::default(),
        }
    }

    /// The answer for `key`: the stored one if it is still fresh and not purged, else the
    /// result of `fetch`, which is then stored until its `expires_at_ms`.
    ///
    /// Concurrent calls for one key share a single `fetch`: only one caller's future is
    /// polled, and the others wait for its result; theirs are dropped unpolled, unless
    /// they must fetch after all (the fetching caller went away, or a purge condemned the
    /// answer they waited for). An answer already past its deadline when it arrives is
    /// returned to those callers and not kept.
    ///
    /// # Errors
    ///
    /// The fetch's error, shared by every caller that waited on it. Errors are not cached.
    pub async fn get_or_fetch<F>(&self, key: CacheKey, fetch: F) -> Result<Arc<Stored>, Arc<E>>
    where
        F: Future<Output = Result<Cached, E>>,
    {
        let digest = key.digest();
        if let Some(stored) = self.stored(&digest) {
            return Ok(stored);
        }
        // Boxed: with the fetch inside, this future is kilobytes, and unboxed it would make
        // every caller's future (up to the request's) that much larger, to be moved around
        // on hits too.
        Box::pin(self.miss(digest, fetch)).await
    }

    /// The stored answer for `digest` if it may be served (counted as a hit); a stale or
    /// purged one is removed.
    fn stored(&self, digest: &Digest) -> Option<Arc<Stored>> {
        let stored = read(self.shard(digest)).get(digest)?;
        if servable(&stored, &self.now()) {
            stored.touch();
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            return Some(stored);
        }
        self.counters.stale.fetch_add(1, Ordering::Relaxed);
        self.remove_if_current(&stored);
        None
    }

    /// The stored answer for `digest` if it may be served, counting nothing and removing
    /// nothing (the caller counts what it serves).
    fn servable_now(&self, digest: &Digest) -> Option<Arc<Stored>> {
        let stored = read(self.shard(digest)).get(digest)?;
        servable(&stored, &self.now()).then(|| {
            stored.touch();
            stored
        })
    }

    /// A miss: the flight for `digest`, joined or flown with `fetch`.
    async fn miss<F>(&self, digest: Digest, fetch: F) -> Result<Arc<Stored>, Arc<E>>
    where
        F: Future<Output = Result<Cached, E>>,
    {
        let mut fetch = Some(fetch);
        let (outcome, ran) = self.fly(digest, &mut fetch).await;
        // A joiner is not served an answer that a purge condemned (the person's status
        // changed while it was on its way, or since): it goes round once more, to the
        // answer stored meanwhile or to a flight that `join` starts afresh, which began after
        // that purge. Only once, so a further purge during that second fetch, or a fetch
        // that outlived the purge log (which counts as purged), is served as it comes, as
        // to the caller whose own fetch was in flight.
        // A joiner served by another's fetch is a hit; one whose shared fetch failed was
        // served nothing (the fetch's failure is counted once, by the caller that ran it).
        if ran || !outcome.as_ref().is_ok_and(|s| s.is_purged()) {
            if !ran && outcome.is_ok() {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
            }
            return outcome;
        }
        if let Some(stored) = self.stored(&digest) {
            return Ok(stored);
        }
        let (outcome, ran) = self.fly(digest, &mut fetch).await;
        if !ran && outcome.is_ok() {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    /// One pass through the flight for `digest`: joins the fetch in flight, or runs
    /// `fetch` (taking it) if there is none. Returns the outcome and whether this caller's
    /// fetch ran.
    async fn fly<F>(
        &self,
        digest: Digest,
        fetch: &mut Option<F>,
    ) -> (Result<Arc<Stored>, Arc<E>>, bool)
    where
        F: Future<Output = Result<Cached, E>>,
    {
        let retire = Retire {
            flights: &self.flights,
            digest,
            flight: Some(self.join(digest)),
        };
        let ran = AtomicBool::new(false);
        let outcome = retire
            .flight()
            .get_or_init(|| async {
                // The answer may have been stored since this caller missed: a flight that
                // ended between its read and `join` has left the map, and its answer is in
                // the store. Served from there, as a joiner of that flight would have been,
                // rather than fetched once more.
                if let Some(stored) = self.servable_now(&digest) {
                    return Ok(stored);
                }
                // A caller whose fetch ran returns its outcome: it never comes back for another.
                let Some(fetch) = fetch.take() else {
                    unreachable!("a caller runs at most one fetch")
                };
                ran.store(true, Ordering::Relaxed);
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                // Noted before the fetch starts: a purge of the subject from here on
                // condemns it.
                let fetch_epoch = self.index.epoch();
                match fetch.await {
                    Ok(cached) => {
                        let now = self.now();
                        // The wall-clock deadline, and no more than max_ttl on the monotonic
                        // clock: a wall clock stepped back does not stretch an entry's life.
                        let left_ms = cached
                            .expires_at_ms
                            .saturating_sub(now.ms)
                            .min(self.max_ttl_ms);
                        let mono_deadline = now.mono + Duration::from_millis(left_ms);
                        let stored = Arc::new(Stored::new(digest, cached, mono_deadline));
                        // An answer already stale is not kept, so not indexed. Registering
                        // may condemn it (a purge since the fetch began): then it is not
                        // kept either.
                        if servable(&stored, &now) {
                            self.index.register(&stored, fetch_epoch);
                            if servable(&stored, &now) {
                                self.insert(Arc::clone(&stored));
                            }
                        }
                        Ok(stored)
                    }
                    Err(e) => {
                        self.counters.fetch_errors.fetch_add(1, Ordering::Relaxed);
                        Err(Arc::new(e))
                    }
                }
            })
            .await
            .clone();
        drop(retire);
        (outcome, ran.load(Ordering::Relaxed))
    }

    /// Purges every answer about `subject` (a person's pseudonym, hex): the status-event
    /// path. Entries are condemned at once, so no read after this returns serves them, and
    /// so is any fetch for the person still in flight. Returns how many stored entries it
    /// removed.
    pub async fn purge_subject(&self, subject: &str) -> usize {
        let removed = self
            .index
            .purge(subject)
            .iter()
            .filter(|stored| self.remove_if_current(stored))
            .count();
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
            entries: self.room.len.load(Ordering::Relaxed) as u64,
            subjects,
            in_flight: lock(&self.flights).len(),
        }
    }

    /// Removes every entry past its deadline or purged, and returns how many. Reads and
    /// the clock hand remove such entries as they meet them; this sweep frees the memory
    /// of the ones nothing meets (the gateway runs it periodically).
    pub async fn run_pending_tasks(&self) -> usize {
        let now = self.now();
        let mut removed = 0;
        for shard in &*self.shards {
            let gone = write(shard).remove_where(|s| !servable(s, &now));
            removed += gone.len();
            self.room.release(gone.len());
            self.forget(&gone);
        }
        removed
    }

    fn shard(&self, digest: &Digest) -> &RwLock<Shard> {
        &self.shards[usize::from(digest[0]) % self.shards.len()]
    }

    /// Stores a fetched answer, evicting to make room.
    fn insert(&self, stored: Arc<Stored>) {
        let now = self.now();
        let gone = write(self.shard(&stored.key)).insert(stored, &self.room, |s| servable(s, &now));
        self.forget(&gone);
    }

    /// Removes `stored` if it is still the entry under its key (a newer answer stored
    /// meanwhile is left alone). Returns whether it removed it.
    fn remove_if_current(&self, stored: &Arc<Stored>) -> bool {
        let removed = write(self.shard(&stored.key)).remove_if_current(stored);
        if removed {
            self.room.release(1);
            self.index.forget(std::slice::from_ref(stored));
        }
        removed
    }

    /// Drops entries that left the store from the subject index (outside the shard lock:
    /// the two locks are never held together).
    fn forget(&self, gone: &[Arc<Stored>]) {
        if !gone.is_empty() {
            self.index.forget(gone);
        }
    }

    /// The flight for `digest`: the one in progress, or a new one. A flight that already
    /// failed, or whose answer a purge condemned (its fetching caller has not retired it
    /// yet), is replaced, not joined.
    fn join(&self, digest: Digest) -> Arc<Flight<E>> {
        let mut flights = lock(&self.flights);
        let flight = flights.entry(digest).or_default();
        if flight.get().is_some_and(|outcome| {
            outcome.as_ref().is_ok_and(|s| s.is_purged()) || outcome.is_err()
        }) {
            *flight = Arc::default();
        }
        Arc::clone(flight)
    }

    fn now(&self) -> Now {
        Now {
            ms: self.clock.now_ms(),
            mono: Instant::now(),
        }
    }
}

/// Takes a flight out of the map when a caller is done with it or goes away (dropped with
/// the caller's future): once the flight has an outcome, since later callers read the
/// store, or when no one else waits on it, since a flight whose fetching caller was
/// cancelled would otherwise stay in the map for good.
struct Retire<'a, E> {
    flights: &'a Mutex<HashMap<Digest, Arc<Flight<E>>, DigestHashing>>,
    digest: Digest,
    flight: Option<Arc<Flight<E>>>,
}

impl<E> Retire<'_, E> {
    fn flight(&self) -> &Flight<E> {
        match &self.flight {
            Some(flight) => flight,
            None => unreachable!("only drop takes the flight"),
        }
    }
}

impl<E> Drop for Retire<'_, E> {
    fn drop(&mut self) {
        let Some(flight) = self.flight.take() else {
            return;
        };
        let mut flights = lock(self.flights);
        let ours = flights
            .get(&self.digest)
            .is_some_and(|f| Arc::ptr_eq(f, &flight));
        // Every clone of a flight is made under this lock, and ours is dropped before it is
        // released, so a count of two (the map's and ours) means nobody else holds it.
        if ours && (flight.initialized() || Arc::strong_count(&flight) == 2) {
            flights.remove(&self.digest);
        }
        drop(flight);
        drop(flights);
    }
}

impl<E> fmt::Debug for ResponseCache<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseCache")
            .field("shards", &self.shards.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// The time on both clocks: the injected wall clock the freshness rules are written in,
/// and the monotonic one that caps an entry's life at `max_ttl_ms` whatever the wall clock
/// does.
struct Now {
    ms: u64,
    mono: Instant,
}

/// Whether a stored entry may be served at `now`.
fn servable(stored: &Stored, now: &Now) -> bool {
    !stored.is_purged() && stored.cached.expires_at_ms > now.ms && stored.mono_deadline > now.mono
}

// Every critical section leaves its state consistent before anything that could panic, so
// a poisoned lock still guards valid data.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read(l: &RwLock<Shard>) -> std::sync::RwLockReadGuard<'_, Shard> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(l: &RwLock<Shard>) -> std::sync::RwLockWriteGuard<'_, Shard> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}
