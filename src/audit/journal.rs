//! The audit journal: an append-only file that holds sealed records between their answer
//! and their durable commit to the store, for the `interval` sync policy.
//!
//! Under `sync = "commit"` every answer waits for an `fsync` (group commit), so throughput
//! is bounded by the number of requests in flight divided by the disk's flush latency. Under
//! `sync = "interval"` the writer appends each group of sealed records to this file with one
//! `write` before their answers go out, and commits to redb (one `fsync`) at most every
//! `sync_interval_ms`. A record in the journal is in the operating system's page cache: a
//! crash of the gateway process loses nothing, because the next start replays the journal
//! into the store ([`recover`]). Only a crash of the machine itself can lose the records of
//! the last interval, which is the trade the operator chooses with this policy.
//!
//! # Format
//!
//! A sequence of frames, each `len (u32 big-endian) ‖ the record's stored form` (see
//! [`super::record`]). A frame that is cut short, does not decode, fails its hash, or does
//! not continue the chain ends the replay: what follows it cannot be trusted.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use crate::store::StoreError;

use super::{AuditRecord, ChainMark, RedbAuditLog};

/// Name of the journal file in the data directory.
pub const JOURNAL_FILE: &str = "audit.journal";

/// Largest frame replay accepts: a record at its limits stays far below.
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// The open journal file.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    /// Bytes of whole frames in the file.
    len: u64,
    /// A failed write could not be cut back: nothing more may follow the torn frame until
    /// the journal is emptied.
    torn: bool,
}

impl Journal {
    /// Opens (creating) the journal at `path` for appending. Call [`recover`] first: a
    /// journal opened over unreplayed frames would be truncated at the next commit.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_error(path, &e))?;
        let len = file.metadata().map_err(|e| io_error(path, &e))?.len();
        Ok(Self {
            file,
            path: path.to_path_buf(),
            buf: Vec::with_capacity(64 * 1024),
            len,
            torn: false,
        })
    }

    /// Appends `recs` with one `write`. The records are safe from a process crash when this
    /// returns, not from a power cut.
    ///
    /// # Errors
    /// When the write fails (a full disk): the caller must not answer for these records.
    /// A partly written group is cut off again, so that later frames do not follow a torn
    /// one (replay would stop there); if even that fails, every append fails until
    /// [`Journal::reset`].
    pub fn append(&mut self, recs: &[AuditRecord]) -> Result<(), StoreError> {
        if self.torn {
            return Err(StoreError::Db(format!(
                "audit journal {}: a failed write could not be undone; waiting for the next commit",
                self.path.display()
            )));
        }
        self.buf.clear();
        for r in recs {
            let stored = r.encode_stored();
            let len = u32::try_from(stored.len()).map_err(|_| StoreError::TooLarge {
                what: "audit journal frame",
            })?;
            self.buf.extend_from_slice(&len.to_be_bytes());
            self.buf.extend_from_slice(&stored);
        }
        match self.file.write_all(&self.buf) {
            Ok(()) => {
                self.len += self.buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                if self.file.set_len(self.len).is_err() {
                    self.torn = true;
                }
                Err(io_error(&self.path, &e))
            }
        }
    }

    /// Empties the journal once its records are committed to the store. Not synced: if
    /// the emptying is lost, the replay finds records the store already holds and skips
    /// them.
    ///
    /// # Errors
    /// When the file cannot be truncated.
    pub fn reset(&mut self) -> Result<(), StoreError> {
        self.file.set_len(0).map_err(|e| io_error(&self.path, &e))?;
        self.len = 0;
        self.torn = false;
        Ok(())
    }
}

/// What [`recover`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recovery {
    /// Records replayed into the store.
    pub replayed: u64,
    /// Records found that the store already held.
    pub already_stored: u64,
    /// Bytes at the end that did not form a valid frame continuing the chain (a write cut
    /// short by a machine crash), discarded.
    pub discarded_bytes: u64,
}

/// Replays the journal at `path` (if any) into `log`, durably, then empties it. Run before
/// the store takes new records: at gateway start, and before `hutong audit` reads the
/// store.
///
/// # Errors
/// When the journal cannot be read or the store cannot commit. The journal is left as it
/// was, so a later attempt replays it again.
pub fn recover(log: &RedbAuditLog, path: &Path) -> Result<Recovery, StoreError> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes).map_err(|e| io_error(path, &e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Recovery::default()),
        Err(e) => return Err(io_error(path, &e)),
    }
    let mut out = Recovery::default();
    let mut head = log.head()?.unwrap_or(ChainMark::GENESIS);
    let mut replay = Vec::new();
    let mut rest = bytes.as_slice();
    // Bytes of the frames accepted so far; whatever `next_frame` or the chain check stops
    // at is the torn or foreign tail.
    let mut consumed = 0;
    while let Some(rec) = next_frame(&mut rest) {
        if rec.seq <= head.seq {
            out.already_stored += 1;
        } else if rec.seq == head.seq + 1 && rec.prev_hash == head.hash {
            head = ChainMark::of(&rec);
            replay.push(rec);
        } else {
            break;
        }
        consumed = bytes.len() - rest.len();
    }
    out.discarded_bytes = (bytes.len() - consumed) as u64;
    log.commit_sealed(&replay)?;
    out.replayed = replay.len() as u64;
    if !bytes.is_empty() {
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(0))
            .map_err(|e| io_error(path, &e))?;
    }
    Ok(out)
}

/// Reads one valid frame off the front of `rest`.
fn next_frame(rest: &mut &[u8]) -> Option<AuditRecord> {
    let (len, tail) = rest.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    if len > MAX_FRAME || tail.len() < len {
        return None;
    }
    let rec = AuditRecord::decode_stored(&tail[..len]).ok()?;
    if !rec.hash_is_valid() {
        return None;
    }
    *rest = &tail[len..];
    Some(rec)
}

fn io_error(path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::Db(format!("audit journal {}: {e}", path.display()))
}
