//! One shard of the store: a map from key digest to entry, and a CLOCK ring for eviction.
//!
//! Every entry has a slot in the ring, which records its key. When the cache is full (or the
//! shard's ring is), the hand sweeps the ring: a slot whose entry was read since the hand last passed (its
//! `visited` bit) is spared once, with the bit cleared; the first slot that is free, holds
//! an entry that may no longer be served, or holds one nobody read, is taken. A slot is free
//! when the map no longer points its key at it (the entry was purged, found stale, or moved).
//! This is second-chance LRU: frequently read answers stay, and a scan of one-off
//! verifications cannot flush them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::entry::Digest;
use super::index::Stored;
use crate::crypto::DigestHashing;

pub(super) struct Shard {
    map: HashMap<Digest, Slot, DigestHashing>,
    /// The key last placed in each slot. Grows to `ring_cap`, then is reused.
    ring: Vec<Digest>,
    ring_cap: usize,
    hand: usize,
}

struct Slot {
    stored: Arc<Stored>,
    /// Its position in `ring`.
    at: usize,
}

/// The entry count of the whole cache, shared by its shards, and its bound. Shards fill
/// unevenly, so each may grow past an even share; the bound is on the total.
#[derive(Debug)]
pub(super) struct Room {
    pub(super) len: AtomicUsize,
    pub(super) max: usize,
}

impl Room {
    /// Takes one place, if one is left.
    fn reserve(&self) -> bool {
        self.len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    pub(super) fn release(&self, n: usize) {
        self.len.fetch_sub(n, Ordering::AcqRel);
    }
}

impl Shard {
    /// A shard whose ring grows to `ring_cap` slots.
    pub(super) fn new(ring_cap: usize) -> Self {
        Self {
            map: HashMap::default(),
            ring: Vec::new(),
            ring_cap: ring_cap.max(1),
            hand: 0,
        }
    }

    pub(super) fn get(&self, key: &Digest) -> Option<Arc<Stored>> {
        self.map.get(key).map(|s| Arc::clone(&s.stored))
    }

    /// Stores `stored` under its key, replacing any entry there, and returns the entries
    /// that left (the replaced one, or one evicted to make room). `keep` says whether an
    /// entry may still be served; the hand takes one that may not without a second chance.
    /// When the cache is full and this shard holds nothing to evict, nothing is stored.
    pub(super) fn insert(
        &mut self,
        stored: Arc<Stored>,
        room: &Room,
        keep: impl Fn(&Stored) -> bool,
    ) -> Vec<Arc<Stored>> {
        let key = stored.key;
        if let Some(slot) = self.map.get_mut(&key) {
            return vec![std::mem::replace(&mut slot.stored, stored)];
        }
        let mut gone = Vec::new();
        let at = if room.reserve() {
            if self.ring.len() < self.ring_cap {
                self.ring.push(key);
                self.ring.len() - 1
            } else {
                let at = self.victim(&keep, false, &mut gone);
                room.release(gone.len());
                at
            }
        } else if self.map.is_empty() {
            return gone;
        } else {
            // Full: one out for the one in, and the count stays.
            self.victim(&keep, true, &mut gone)
        };
        self.ring[at] = key;
        self.map.insert(key, Slot { stored, at });
        gone
    }

    /// The slot the hand takes, evicting its entry into `gone`; with `evict`, only a slot
    /// whose entry it evicts will do. It ends: each turn clears every `visited` bit it
    /// passes, and only reads in progress (which set the bit outside this shard's write
    /// lock, as they hold the read lock only to look up) can set one again; with `evict` the
    /// map is not empty, so some slot holds an entry.
    fn victim(
        &mut self,
        keep: &impl Fn(&Stored) -> bool,
        evict: bool,
        gone: &mut Vec<Arc<Stored>>,
    ) -> usize {
        loop {
            let at = self.hand;
            self.hand = (self.hand + 1) % self.ring.len();
            let key = self.ring[at];
            match self.map.get(&key) {
                Some(slot) if slot.at == at => {
                    if keep(&slot.stored) && slot.stored.take_visit() {
                        continue;
                    }
                    if let Some(slot) = self.map.remove(&key) {
                        gone.push(slot.stored);
                    }
                    return at;
                }
                // Free: its entry left, or the key was stored again elsewhere.
                _ if !evict => return at,
                _ => {}
            }
        }
    }

    /// Removes `stored` if it is still the entry under its key.
    pub(super) fn remove_if_current(&mut self, stored: &Arc<Stored>) -> bool {
        let current = self
            .map
            .get(&stored.key)
            .is_some_and(|s| Arc::ptr_eq(&s.stored, stored));
        if current {
            self.map.remove(&stored.key);
        }
        current
    }

    /// Removes every entry `drop` selects, and returns them.
    pub(super) fn remove_where(&mut self, drop: impl Fn(&Stored) -> bool) -> Vec<Arc<Stored>> {
        let mut gone = Vec::new();
        self.map.retain(|_, slot| {
            let keep = !drop(&slot.stored);
            if !keep {
                gone.push(Arc::clone(&slot.stored));
            }
            keep
        });
        gone
    }
}
