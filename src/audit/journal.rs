//! The audit journal: an append-only file that holds sealed records between their answer
//! and their durable commit to the store, for the `interval` sync policy.
//!
//! Under `sync = "commit"` every answer waits for an `fsync` (group commit), so throughput
//! is bounded by the number of requests in flight divided by the disk's flush latency. Under
//! `sync = "interval"` each request's task appends its sealed record to this file with one
//! `write` before its answer goes out, and the records are committed to redb (one `fsync`)
//! within `sync_interval_ms`. A record in the journal is in the operating system's page
//! cache: a crash of the gateway process loses nothing, because the next start replays the
//! journal into the store ([`recover`]). Only a crash of the machine itself can lose the
//! records of the last interval, which is the trade the operator chooses with this policy.
//!
//! # Segments
//!
//! The journal is a series of segment files, `audit.journal.<n>`. Records go to the newest;
//! when the interval is due the writer starts the next segment and hands the closed one, with
//! its records, to a committer thread, which commits them to the store and then deletes the
//! segment. So the `fsync` of a commit never holds up the answers being written meanwhile.
//! Replay reads the segments in order; the chain check runs across them.
//!
//! # Format
//!
//! A segment is a sequence of frames, each `len (u32 big-endian) ‖ the record's stored form` (see
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
    /// A failed write could not be cut back: nothing more may follow the torn frame in this
    /// segment (the next segment starts clean).
    torn: bool,
}

impl Journal {
    /// Opens (creating) a journal segment at `path` for appending. Call [`recover`] first.
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
    /// one (replay would stop there); if even that fails, every append to this segment
    /// fails.
    pub fn append(&mut self, recs: &[AuditRecord]) -> Result<(), StoreError> {
        if self.torn {
            return Err(StoreError::Db(format!(
                "audit journal {}: a failed write could not be undone; waiting for the next segment",
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

    /// A second handle on the segment's file, for an `fdatasync` outside the writer's
    /// lock. The committer fsyncs a segment's records into the store within an interval;
    /// this is for when it is behind, so that a machine crash still loses no more than
    /// about an interval of answered records. `None` when the handle cannot be had
    /// (logged).
    pub fn handle(&self) -> Option<File> {
        self.file
            .try_clone()
            .map_err(|e| tracing::warn!(error = %e, path = %self.path.display(), "audit journal: no handle to sync"))
            .ok()
    }

    /// Whether a failed write left a frame it could not cut off (no more writes here).
    pub fn is_torn(&self) -> bool {
        self.torn
    }

    /// The file this journal segment writes.
    pub fn path(&self) -> &Path {
        &self.path
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
    /// short by a machine crash), taken out of the journal and appended to
    /// [`discarded_path`], where an operator can still look at them.
    pub discarded_bytes: u64,
}

/// Where [`recover`] keeps the bytes it takes out of the journal: `<journal>.discarded`,
/// appended to (never read back, and not a segment: its name has no number).
pub fn discarded_path(base: &Path) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(".discarded");
    PathBuf::from(name)
}

/// Discarded tails this process wrote ([`recover`]): retention leaves them for a later run
/// to judge by their time. A start is when a clock is most often wrong, and a tail dated
/// by a clock far behind would otherwise go at the next purge, unseen.
static SET_ASIDE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Whether this process set records aside in the discarded tail at `path`.
pub(crate) fn set_aside_by_this_process(path: &Path) -> bool {
    crate::store::lock(&SET_ASIDE).iter().any(|p| p == path)
}

/// The path of segment `n` of the journal at `base`.
pub fn segment_path(base: &Path, n: u64) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(format!(".{n:06}"));
    PathBuf::from(name)
}

/// The journal's files, oldest first: `base` itself (a single-file journal), then the
/// segments by number. Also gives the number the next segment should take.
fn segments(base: &Path) -> Result<(Vec<PathBuf>, u64), StoreError> {
    let mut out = Vec::new();
    if base.is_file() {
        out.push((0, base.to_path_buf()));
    }
    let dir = base
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let prefix = format!(
        "{}.",
        base.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(JOURNAL_FILE)
    );
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 1)),
        Err(e) => return Err(io_error(dir, &e)),
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((n + 1, entry.path()));
    }
    out.sort();
    let next = out.last().map_or(1, |(n, _)| *n);
    Ok((out.into_iter().map(|(_, p)| p).collect(), next))
}

/// Replays the journal at `base` (its segments, if any) into `log`, durably, then removes
/// them. Run before the store takes new records: at gateway start, and before `hutong
/// audit` reads the store. Returns what it did, and the number for the next segment.
///
/// # Errors
/// When the journal cannot be read or the store cannot commit. The journal is left as it
/// was, so a later attempt replays it again.
pub fn recover(log: &RedbAuditLog, base: &Path) -> Result<Recovery, StoreError> {
    recover_segments(log, base).map(|(r, _)| r)
}

pub(super) fn recover_segments(
    log: &RedbAuditLog,
    base: &Path,
) -> Result<(Recovery, u64), StoreError> {
    let (files, next) = segments(base)?;
    let mut out = Recovery::default();
    let mut head = log.head()?.unwrap_or(ChainMark::GENESIS);
    let mut replay = Vec::new();
    let mut tails: Vec<Vec<u8>> = Vec::new();
    for path in &files {
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| io_error(path, &e))?;
        let mut rest = bytes.as_slice();
        // Bytes of the frames accepted so far; whatever `next_frame` or the chain check
        // stops at is a torn or foreign tail.
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
        if consumed < bytes.len() {
            out.discarded_bytes += (bytes.len() - consumed) as u64;
            tails.push(bytes.split_off(consumed));
        }
    }
    log.commit_sealed(&replay)?;
    if !tails.is_empty() {
        // Kept aside before the segments go: nothing leaves the disk unseen.
        let aside = discarded_path(base);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&aside)
            .map_err(|e| io_error(&aside, &e))?;
        for t in &tails {
            f.write_all(t).map_err(|e| io_error(&aside, &e))?;
        }
        f.sync_data().map_err(|e| io_error(&aside, &e))?;
        crate::store::lock(&SET_ASIDE).push(aside);
    }
    out.replayed = replay.len() as u64;
    for path in &files {
        std::fs::remove_file(path).map_err(|e| io_error(path, &e))?;
    }
    Ok((out, next))
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
