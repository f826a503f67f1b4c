//! The subject index: which cached entries are about which person, so that a status event
//! can purge them all, and a short log of recent purges so that a fetch already in flight
//! when a purge arrives is not kept.
//!
//! # Why purges cannot be lost
//!
//! A fetch that started before a purge may finish after it, holding the person's old status.
//! Each fetch notes the purge epoch when it starts. When it finishes, [`SubjectIndex::register`]
//! takes the index lock and either records the entry under its subject or, if that subject
//! was purged since the fetch started, marks the entry purged before the store takes it.
//! [`SubjectIndex::purge`] takes the same lock to bump the epoch, log the subject and mark
//! every registered entry. So whichever comes first, the entry ends up marked, and the cache
//! treats a marked entry as a miss on every read. Removing it from the store afterwards only
//! frees memory.
//!
//! # Bounds
//!
//! The index holds one weak reference per stored entry: the cache calls
//! [`SubjectIndex::forget`] for every entry it drops, whatever the cause. A registered entry
//! that never reaches the store (its answer was already stale) leaves a dead
//! weak reference; those are swept at a doubling high-water mark, like the rate limiter's
//! keys. The purge log keeps the last [`PURGE_LOG_LEN`] purges; a fetch that outlives more
//! purges than that is treated as purged, whoever it was about.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Instant;

use super::entry::{Cached, Digest};

/// Recent purges remembered for fetches in flight.
pub(super) const PURGE_LOG_LEN: usize = 1_024;

/// Never sweep dead references from an index smaller than this.
const MIN_SWEEP_REFS: usize = 4_096;

/// An entry of the store, as callers get it: the answer (it dereferences to [`Cached`]),
/// its key (to remove it by subject), whether a purge has condemned it, and whether it was
/// read since the clock hand last passed. One allocation per entry.
pub struct Stored {
    pub(super) key: Digest,
    pub(super) cached: Cached,
    /// When it may no longer be served on the monotonic clock (its life capped at
    /// `max_ttl_ms`).
    pub(super) mono_deadline: Instant,
    purged: AtomicBool,
    visited: AtomicBool,
}

impl std::ops::Deref for Stored {
    type Target = Cached;

    fn deref(&self) -> &Cached {
        &self.cached
    }
}

impl Stored {
    pub(super) fn new(key: Digest, cached: Cached, mono_deadline: Instant) -> Self {
        Self {
            key,
            cached,
            mono_deadline,
            purged: AtomicBool::new(false),
            visited: AtomicBool::new(false),
        }
    }

    /// Whether a purge of its subject has condemned this entry.
    pub(super) fn is_purged(&self) -> bool {
        self.purged.load(Ordering::Acquire)
    }

    fn mark_purged(&self) {
        self.purged.store(true, Ordering::Release);
    }

    /// Notes a read, for the clock hand.
    pub(super) fn touch(&self) {
        // A load first: a hot entry read on every core is not written on every read.
        if !self.visited.load(Ordering::Relaxed) {
            self.visited.store(true, Ordering::Relaxed);
        }
    }

    /// Whether it was read since the last call, clearing the mark.
    pub(super) fn take_visit(&self) -> bool {
        self.visited.swap(false, Ordering::Relaxed)
    }
}

impl fmt::Debug for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stored")
            .field("key", &crate::crypto::to_hex(&self.key))
            .field("cached", &self.cached)
            .field("purged", &self.is_purged())
            .finish()
    }
}

/// Subject → entries, and the purge log. One mutex: every operation is short, and none
/// takes a shard's lock while holding it.
#[derive(Debug, Default)]
pub(super) struct SubjectIndex {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The subject text is shared with the entries' [`Cached::subject`].
    by_subject: HashMap<Arc<str>, Vec<Weak<Stored>>>,
    /// Weak references held, across all subjects.
    refs: usize,
    /// Sweep dead references when `refs` exceeds this.
    sweep_above: usize,
    /// Purges so far.
    epoch: u64,
    /// The last purges, oldest first: (epoch after the purge, subject).
    log: VecDeque<(u64, String)>,
}

impl SubjectIndex {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent before anything that could
        // panic, so a poisoned lock still guards valid data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The purge epoch: a fetch notes it before it starts.
    pub(super) fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Records a just-fetched entry under its subject, or marks it purged if that subject
    /// was purged after `fetch_epoch`.
    pub(super) fn register(&self, stored: &Arc<Stored>, fetch_epoch: u64) {
        let Some(subject) = &stored.cached.subject else {
            return;
        };
        let mut state = self.lock();
        if state.purged_since(subject, fetch_epoch) {
            stored.mark_purged();
            return;
        }
        state
            .by_subject
            .entry(Arc::clone(subject))
            .or_default()
            .push(Arc::downgrade(stored));
        state.refs += 1;
        if state.refs > state.sweep_above.max(MIN_SWEEP_REFS) {
            state.sweep_dead();
        }
    }

    /// Drops entries that left the store from the index: one pass over each person's list,
    /// however many of their entries left at once.
    pub(super) fn forget(&self, gone: &[Arc<Stored>]) {
        let mut by_subject: HashMap<&str, HashSet<*const Stored>> = HashMap::new();
        for stored in gone {
            if let Some(subject) = stored.cached.subject.as_deref() {
                by_subject
                    .entry(subject)
                    .or_default()
                    .insert(Arc::as_ptr(stored));
            }
        }
        if by_subject.is_empty() {
            return;
        }
        let mut state = self.lock();
        for (subject, leaving) in by_subject {
            let Some(refs) = state.by_subject.get_mut(subject) else {
                continue;
            };
            let before = refs.len();
            refs.retain(|w| !leaving.contains(&w.as_ptr()) && w.strong_count() > 0);
            let removed = before - refs.len();
            if refs.is_empty() {
                state.by_subject.remove(subject);
            }
            state.refs -= removed;
        }
    }

    /// Purges `subject`: logs it, marks every entry about it, and returns the ones still
    /// alive so the caller can remove them from the store.
    pub(super) fn purge(&self, subject: &str) -> Vec<Arc<Stored>> {
        let mut state = self.lock();
        state.epoch += 1;
        let epoch = state.epoch;
        state.log.push_back((epoch, subject.to_owned()));
        if state.log.len() > PURGE_LOG_LEN {
            state.log.pop_front();
        }
        let refs = state.by_subject.remove(subject).unwrap_or_default();
        state.refs -= refs.len();
        let live: Vec<Arc<Stored>> = refs.iter().filter_map(Weak::upgrade).collect();
        for stored in &live {
            stored.mark_purged();
        }
        live
    }

    /// (subjects, entries) indexed.
    pub(super) fn len(&self) -> (usize, usize) {
        let state = self.lock();
        (state.by_subject.len(), state.refs)
    }
}

impl State {
    /// Whether `subject` was purged after `epoch`. When the log no longer reaches back that
    /// far, the answer is yes: unknown counts as purged.
    fn purged_since(&self, subject: &str, epoch: u64) -> bool {
        if self.epoch == epoch {
            return false;
        }
        let logged = self.log.len() as u64;
        if self.epoch.saturating_sub(epoch) > logged {
            return true;
        }
        self.log
            .iter()
            .rev()
            .take_while(|(e, _)| *e > epoch)
            .any(|(_, s)| s == subject)
    }

    fn sweep_dead(&mut self) {
        self.by_subject.retain(|_, refs| {
            refs.retain(|w| w.strong_count() > 0);
            !refs.is_empty()
        });
        self.refs = self.by_subject.values().map(Vec::len).sum();
        self.sweep_above = self.refs.saturating_mul(2).max(MIN_SWEEP_REFS);
    }
}
