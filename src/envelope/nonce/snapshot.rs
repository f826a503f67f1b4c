//! The replay store across a restart: [`MemoryNonceStore::save`] writes the nonces that have
//! not expired to a file, and [`MemoryNonceStore::load`] reads them into the next process's
//! store, so that a request captured before a restart is still refused after it.
//!
//! The gateway saves on its way down, once the requests in flight have drained, and every
//! [`SAVE_EVERY`] while it runs, so that a crash forgets at most the nonces of that time
//! (README, the paragraph on the replay store). Before the last save the store is closed
//! ([`MemoryNonceStore::close`]): a request still running past the drain's grace is refused
//! rather than accepted unsaved. Saves take turns (the gateway's `SavedNonceStore`). The
//! entries' digests are keyed by a key derived from the gateway's secret
//! ([`DigestKey::derived`]), the same in every process; the file carries a check of that key,
//! and a file saved under another key loads nothing.
//!
//! # The file
//!
//! Little-endian throughout:
//!
//! ```text
//! "hutong-nonces-1\n"                      16 bytes
//! key check                                16: the key's digest of KEY_CHECK
//! saved at (Unix ms)                        8
//! entries, each                            28: digest (16), expiry in Unix ms (8), client (4)
//! clients, each                             2 + n: the appId's length and the appId
//! entry count                               8
//! client count                              4
//! clients' length in bytes                  4
//! the key's digest of every byte before    16
//! ```
//!
//! The entries come before the clients so that each shard is written as soon as it is
//! copied: a save holds one shard's entries in memory at a time, not the whole store. The
//! last field is a keyed digest ([`DigestKey::digester`]) rather than SM3: it detects a
//! changed byte as well, at a fraction of the cost on a store of millions of entries.
//!
//! A file that is cut short, altered or not this format loads nothing and says why
//! ([`NonceSnapshotError`]; a change within the key check itself reads as another key); the
//! gateway then starts with an empty store, as before this file existed, and says so in its
//! log. It is written as the gateway's other secret files are ([`crate::cli::write_secret`]:
//! owner-only, to a temporary file that is synced and then renamed over the old one), so a
//! crash while saving leaves the previous save whole.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Digest128, MAX_EXPIRY, MemoryNonceStore, app_of, expiry, lock, pack};
use crate::crypto::{DigestKey, Digester};

/// How often a running gateway saves its replay store.
pub const SAVE_EVERY: Duration = Duration::from_secs(30);

const MAGIC: &[u8; 16] = b"hutong-nonces-1\n";

/// What the key check is the digest of.
const KEY_CHECK: &[u8] = b"hutong replay store key check";

const ENTRY_LEN: usize = 16 + 8 + 4;

/// The trailer: the entry and client counts, the clients' length and the digest.
const TRAILER_LEN: usize = 8 + 4 + 4 + 16;

/// The header: the magic, the key check and the time of the save.
const HEADER_LEN: usize = 16 + 16 + 8;

/// Why a saved replay store was not loaded, or not saved.
#[derive(Debug, thiserror::Error)]
pub enum NonceSnapshotError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        source: io::Error,
    },
    /// The file is not a whole saved store: cut short, altered, or another format.
    #[error("{path}: not a saved replay store ({why})")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The file was saved under another key: the gateway's secret changed.
    #[error("{path}: saved under another key (the gateway's secret changed); nothing loaded")]
    OtherKey {
        /// The file.
        path: String,
    },
}

/// What [`MemoryNonceStore::load`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedNonces {
    /// When the file was saved (Unix ms).
    pub saved_at_ms: u64,
    /// Nonces now remembered again.
    pub loaded: usize,
    /// Nonces that had expired since.
    pub expired: usize,
    /// Nonces left out because the store was at a cap.
    pub refused: usize,
}

/// Writes through a buffer and into the digest at once.
struct Summed<W: Write> {
    out: W,
    sum: Digester,
}

impl<W: Write> Summed<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sum.update(bytes);
        self.out.write_all(bytes)
    }
}

impl MemoryNonceStore {
    /// Saves the nonces that have not expired at `now_ms` to `path`, replacing what was
    /// there; returns how many. Each shard is locked only while its entries are copied out.
    ///
    /// # Errors
    /// [`NonceSnapshotError::Io`] when the file cannot be written; the previous file stays.
    pub fn save(&self, path: &Path, now_ms: u64) -> Result<usize, NonceSnapshotError> {
        // Owner-only, whole or not at all: a temporary file synced and renamed over the last.
        crate::cli::write_secret_with(path, |file| self.write_to(file, now_ms)).map_err(|source| {
            NonceSnapshotError::Io {
                path: path.display().to_string(),
                source,
            }
        })
    }

    fn write_to(&self, file: &File, now_ms: u64) -> io::Result<usize> {
        let mut w = Summed {
            out: BufWriter::with_capacity(1 << 16, file),
            sum: self.key.digester(),
        };
        w.put(MAGIC)?;
        w.put(&self.key.digest(&[KEY_CHECK]))?;
        w.put(&now_ms.to_le_bytes())?;
        // Shard by shard: each is locked while its entries are copied, and written after.
        let mut count: u64 = 0;
        let mut copied: Vec<(Digest128, u64)> = Vec::new();
        // Room for a shard and a quarter, touched here, so that the copy under a shard's lock
        // neither grows the buffer nor faults its pages in.
        let room = self.total.load(Ordering::Acquire) / self.shards.len() * 5 / 4;
        copied.resize(room, ([0; 16], 0));
        for shard in &*self.shards {
            copied.clear();
            copied.extend(
                lock(shard)
                    .seen
                    .iter()
                    .filter(|&(_, &packed)| expiry(packed) > now_ms)
                    .map(|(d, &packed)| (*d, packed)),
            );
            for (digest, packed) in &copied {
                w.put(digest)?;
                w.put(&expiry(*packed).to_le_bytes())?;
                w.put(&app_of(*packed).to_le_bytes())?;
                count += 1;
            }
        }
        // The clients after the entries, so that every client an entry names is listed.
        let names: Vec<Box<str>> = {
            let apps = self.apps.read().unwrap_or_else(PoisonError::into_inner);
            let mut names = vec![Box::<str>::from(""); apps.held.len()];
            for (name, &i) in &apps.index {
                if let Some(slot) = names.get_mut(i as usize) {
                    slot.clone_from(name);
                }
            }
            names
        };
        let too_many = || io::Error::other("more clients than a saved store holds");
        let mut names_len: u32 = 0;
        for name in &names {
            let len = u16::try_from(name.len()).map_err(|_| too_many())?;
            w.put(&len.to_le_bytes())?;
            w.put(name.as_bytes())?;
            names_len = names_len
                .checked_add(2 + u32::from(len))
                .ok_or_else(too_many)?;
        }
        w.put(&count.to_le_bytes())?;
        w.put(
            &u32::try_from(names.len())
                .map_err(|_| too_many())?
                .to_le_bytes(),
        )?;
        w.put(&names_len.to_le_bytes())?;
        let Summed { mut out, sum } = w;
        out.write_all(&sum.finish())?;
        out.flush()?;
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }

    /// Loads the nonces saved in `path` that have not expired at `now_ms`, beside those the
    /// store holds, within its caps. A missing file is an empty save.
    ///
    /// # Errors
    /// [`NonceSnapshotError`] when the file cannot be read, is not a whole saved store, or was
    /// saved under another key. Nothing is loaded then.
    pub fn load(&self, path: &Path, now_ms: u64) -> Result<SavedNonces, NonceSnapshotError> {
        let bytes = match crate::store::read_bounded(path, self.max_file_len()) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(SavedNonces {
                    saved_at_ms: 0,
                    loaded: 0,
                    expired: 0,
                    refused: 0,
                });
            }
            Err(source) => {
                return Err(NonceSnapshotError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let bad = |why| NonceSnapshotError::Malformed {
            path: path.display().to_string(),
            why,
        };
        let parsed = parse(&bytes, &self.key).map_err(|e| match e {
            Unreadable::OtherKey => NonceSnapshotError::OtherKey {
                path: path.display().to_string(),
            },
            Unreadable::Malformed(why) => bad(why),
        })?;
        let mut found = SavedNonces {
            saved_at_ms: parsed.saved_at_ms,
            loaded: 0,
            expired: 0,
            refused: 0,
        };
        let mut apps = Vec::with_capacity(parsed.names.len());
        for name in &parsed.names {
            apps.push(self.app(name));
        }
        for (digest, expires, app) in parsed.entries() {
            if expires <= now_ms {
                found.expired += 1;
                continue;
            }
            // A client index past the list was refused by `parse`.
            let Some(Some((index, held))) = apps.get(app as usize) else {
                found.refused += 1;
                continue;
            };
            // A nonce is kept a TTL after it was first seen, so no later than a TTL from the
            // save, or from now if that is later: an expiry past that was written by a
            // clock gone wrong. Not a TTL from now alone: a start with the clock behind
            // would cut every saved nonce short, and once the clock was set right a captured
            // request within its window would pass again. The save's clock is believed up
            // to MAX_SAVED_AHEAD_MS ahead of this one: further, it was the wrong one, and
            // its nonces would hold their places (refusing new requests at a cap) for as
            // long as it had been ahead.
            let from = now_ms.max(
                parsed
                    .saved_at_ms
                    .min(now_ms.saturating_add(MAX_SAVED_AHEAD_MS)),
            );
            let expires = expires.min(from.saturating_add(self.config.ttl_ms));
            let mut shard = lock(self.shard(&digest));
            if let Some(packed) = shard.seen.get_mut(&digest)
                && expiry(*packed) > now_ms
            {
                // Already remembered (a save loaded twice): the later expiry stands, in the
                // place the entry holds.
                if expires > expiry(*packed) {
                    *packed = pack(expires, app_of(*packed));
                }
                found.loaded += 1;
                continue;
            }
            if expires > MAX_EXPIRY || !self.reserve(held) {
                found.refused += 1;
                continue;
            }
            let old = shard.seen.insert(digest, pack(expires, *index));
            shard.earliest = shard.earliest.min(expires);
            drop(shard);
            if let Some(old) = old {
                // An expired entry under the same digest: its place is freed (as in `check`).
                self.total.fetch_sub(1, Ordering::AcqRel);
                self.release(super::Freed::from([(app_of(old), 1)]));
            }
            found.loaded += 1;
        }
        Ok(found)
    }
}

/// The most bytes a saved list of clients may take: the store's 2^20 clients at 14 bytes of
/// appId each, far more than any registry holds.
const MAX_CLIENTS_LEN: u64 = 16 << 20;

impl MemoryNonceStore {
    /// The longest file read: twice the entries of this store's cap or the default cap,
    /// whichever is larger, and clients. A file saved under a larger cap than this store's
    /// is read, and loads what fits; one far past any cap is not a saved store.
    fn max_file_len(&self) -> u64 {
        let cap = self.config.max_entries.max(super::DEFAULT_MAX_NONCES);
        let entries = u64::try_from(cap).unwrap_or(u64::MAX).saturating_mul(2);
        entries
            .saturating_mul(ENTRY_LEN as u64)
            .saturating_add((HEADER_LEN + TRAILER_LEN) as u64)
            .saturating_add(MAX_CLIENTS_LEN)
    }
}

/// How far ahead of the loading clock a save's clock is believed (its nonces are held a
/// TTL past the save): a start up to this far behind keeps every saved nonce.
const MAX_SAVED_AHEAD_MS: u64 = 3_600_000;

/// A saved store, read and checked.
struct Parsed<'a> {
    saved_at_ms: u64,
    names: Vec<&'a str>,
    entries: &'a [u8],
}

impl Parsed<'_> {
    fn entries(&self) -> impl Iterator<Item = (Digest128, u64, u32)> + '_ {
        self.entries.chunks_exact(ENTRY_LEN).map(|e| {
            let mut digest = [0u8; 16];
            digest.copy_from_slice(&e[..16]);
            (digest, le_u64(&e[16..24]), le_u32(&e[24..28]))
        })
    }
}

fn le_u64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

fn le_u32(b: &[u8]) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[..4]);
    u32::from_le_bytes(w)
}

/// Why a file is not a saved store of this key.
enum Unreadable {
    /// Not a whole saved store, and why.
    Malformed(&'static str),
    /// Saved under another key (the digest of the whole could not match either).
    OtherKey,
}

impl From<&'static str> for Unreadable {
    fn from(why: &'static str) -> Self {
        Self::Malformed(why)
    }
}

fn parse<'a>(bytes: &'a [u8], key: &DigestKey) -> Result<Parsed<'a>, Unreadable> {
    if bytes.len() < HEADER_LEN + TRAILER_LEN || !bytes.starts_with(MAGIC) {
        return Err("no header".into());
    }
    let (body, sum) = bytes.split_at(bytes.len() - 16);
    if body[16..32] != key.digest(&[KEY_CHECK]) {
        return Err(Unreadable::OtherKey);
    }
    if key.digest(&[body]).as_slice() != sum {
        return Err("checksum does not match".into());
    }
    let saved_at_ms = le_u64(&body[32..40]);
    let trailer = &body[body.len() - (TRAILER_LEN - 16)..];
    let count = le_u64(&trailer[..8]);
    let clients = le_u32(&trailer[8..12]);
    let names_len = le_u32(&trailer[12..16]) as usize;
    let inner = &body[HEADER_LEN..body.len() - (TRAILER_LEN - 16)];
    let entries_len = usize::try_from(count)
        .ok()
        .and_then(|n| n.checked_mul(ENTRY_LEN))
        .filter(|&n| n.checked_add(names_len) == Some(inner.len()))
        .ok_or("entry count does not match")?;
    let (entries, mut list) = inner.split_at(entries_len);
    let mut names = Vec::new();
    while !list.is_empty() {
        let len = usize::from(u16::from_le_bytes([
            list[0],
            *list.get(1).ok_or("a client")?,
        ]));
        let name = list.get(2..2 + len).ok_or("a client")?;
        names.push(std::str::from_utf8(name).map_err(|_| "a client")?);
        list = &list[2 + len..];
    }
    if u32::try_from(names.len()).ok() != Some(clients) {
        return Err("client count does not match".into());
    }
    if entries
        .chunks_exact(ENTRY_LEN)
        .any(|e| u64::from(le_u32(&e[24..28])) >= u64::from(clients))
    {
        return Err("an entry names no client".into());
    }
    Ok(Parsed {
        saved_at_ms,
        names,
        entries,
    })
}

#[cfg(test)]
mod tests;
