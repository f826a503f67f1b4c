//! Verification of the hash chain, shared by every [`super::AuditLog`] backend: a backend
//! feeds its records in sequence order to a [`Verifier`], then hands over its head marker.
//!
//! What each kind of tampering looks like to the verifier:
//! - a changed record: its hash no longer matches its content (`hash mismatch`);
//! - a record inserted in the middle: a key that differs from the sequence number inside
//!   the record, and a chain link that does not match;
//! - a record deleted in the middle: a gap in the sequence numbers, and a chain break at
//!   the next record;
//! - a truncated tail: fewer records than the head marker counts;
//! - records deleted at the start: the chain must start right after the purge checkpoint
//!   (or at seq 1), so they are a gap and a chain break, as in the middle. Only a purge
//!   moves the checkpoint, and it removes only a prefix that verifies
//!   ([`check_purgeable`]);
//! - a record appended behind the log's back: a record beyond the head marker.
//!
//! The head marker lives in its own table and is rewritten in the same transaction as each
//! append. Someone who can rewrite the whole file can rewrite the marker too; anchoring the
//! head hash outside the file (it is printed by `hutong audit verify`, and checked again by
//! its `--anchor SEQ:HASH`: `RedbAuditLog::check_anchor`) closes that gap. The
//! same holds for the purge checkpoint: moved forward by hand over records the intruder
//! deleted, it verifies; its hash is printed too, for the same anchoring.

use serde::Serialize;

use crate::crypto::{SM3_LEN, to_hex};
use crate::store::StoreError;

use super::AuditRecord;

/// A position in the chain: a sequence number and the hash of the record there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainMark {
    /// Sequence number (0 before the first record).
    pub seq: u64,
    /// Hash of the record at `seq` (zeros for seq 0).
    pub hash: [u8; SM3_LEN],
}

impl ChainMark {
    /// Where an empty log starts: seq 0, hash zero. The first record is seq 1 and has
    /// `prev_hash` zero.
    pub const GENESIS: ChainMark = ChainMark {
        seq: 0,
        hash: [0; SM3_LEN],
    };

    /// The mark of `rec`.
    pub fn of(rec: &AuditRecord) -> Self {
        Self {
            seq: rec.seq,
            hash: rec.hash,
        }
    }

    /// `seq (u64 big-endian) ‖ hash`.
    pub fn encode(&self) -> [u8; 8 + SM3_LEN] {
        let mut out = [0u8; 8 + SM3_LEN];
        out[..8].copy_from_slice(&self.seq.to_be_bytes());
        out[8..].copy_from_slice(&self.hash);
        out
    }

    /// Decodes [`ChainMark::encode`].
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the length is not 40.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.len() != 8 + SM3_LEN {
            return Err(StoreError::Corrupt {
                what: "chain marker",
                reason: format!("{} bytes, not 40", bytes.len()),
            });
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[..8]);
        let mut hash = [0u8; SM3_LEN];
        hash.copy_from_slice(&bytes[8..]);
        Ok(Self {
            seq: u64::from_be_bytes(seq),
            hash,
        })
    }
}

impl Serialize for ChainMark {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("ChainMark", 2)?;
        st.serialize_field("seq", &self.seq)?;
        st.serialize_field("hash", &to_hex(&self.hash))?;
        st.end()
    }
}

/// The outcome of [`super::AuditLog::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Records examined.
    pub records: u64,
    /// True when no problem was found.
    pub ok: bool,
    /// Every problem found, each starting with the sequence number(s) it is about
    /// (`seq 7:` or `seq 5..=9:`), in sequence order.
    pub problems: Vec<String>,
    /// Where verification started: the purge checkpoint, or [`ChainMark::GENESIS`].
    pub checkpoint: ChainMark,
    /// The head marker: the last record the log appended, if any.
    pub head: Option<ChainMark>,
}

/// Walks records in key order and collects problems.
#[derive(Debug)]
pub(crate) struct Verifier {
    checkpoint: ChainMark,
    /// The next sequence number expected.
    expected: u64,
    /// The last mark seen: the previous record's (key, stored hash). `None` after a record
    /// that did not decode, whose hash is unknown.
    prev: Option<ChainMark>,
    /// The last key seen.
    last_key: u64,
    records: u64,
    /// Problems with the sequence number they are about, sorted by it at the end.
    problems: Vec<(u64, String)>,
}

impl Verifier {
    pub(crate) fn new(checkpoint: ChainMark) -> Self {
        Self {
            checkpoint,
            expected: checkpoint.seq.saturating_add(1),
            prev: Some(checkpoint),
            last_key: checkpoint.seq,
            records: 0,
            problems: Vec::new(),
        }
    }

    /// Records a problem about `seq` found outside the chain walk (an index
    /// inconsistency, say). The message should start with `seq {seq}:`.
    pub(crate) fn problem(&mut self, seq: u64, p: String) {
        self.problems.push((seq, p));
    }

    /// Checks the record stored under `key`; keys must come in increasing order. Returns
    /// the decoded record, if it decodes, for backend-specific checks.
    pub(crate) fn push(&mut self, key: u64, stored: &[u8]) -> Option<AuditRecord> {
        self.records += 1;
        if key <= self.checkpoint.seq {
            self.problem(
                key,
                format!(
                    "seq {key}: present at or before the purge checkpoint (seq {})",
                    self.checkpoint.seq
                ),
            );
        } else if key > self.expected {
            let missing = span(self.expected, key - 1);
            self.problem(self.expected, format!("{missing}: missing (deleted)"));
        }
        let rec = match AuditRecord::decode_stored(stored) {
            Ok(r) => r,
            Err(e) => {
                self.problem(key, format!("seq {key}: unreadable: {e}"));
                self.prev = None;
                self.last_key = key;
                self.expected = key.saturating_add(1);
                return None;
            }
        };
        if rec.seq != key {
            self.problem(
                key,
                format!(
                    "seq {key}: the record inside says seq {} (inserted or moved)",
                    rec.seq
                ),
            );
        }
        if !rec.hash_is_valid() {
            self.problem(
                key,
                format!("seq {key}: hash mismatch (the record was changed)"),
            );
        }
        if let Some(prev) = self.prev {
            if rec.prev_hash != prev.hash {
                let after = if prev == self.checkpoint {
                    if self.checkpoint.seq == 0 {
                        "the start of the chain".to_owned()
                    } else {
                        format!("the purge checkpoint (seq {})", prev.seq)
                    }
                } else {
                    format!("seq {}", prev.seq)
                };
                self.problem(
                    key,
                    format!("seq {key}: chain break: prev_hash does not match the hash of {after}"),
                );
            }
        }
        // Link the next record to the hash stored here, so that one altered record is one
        // problem, not two.
        self.prev = Some(ChainMark {
            seq: key,
            hash: rec.hash,
        });
        self.last_key = key;
        self.expected = key.saturating_add(1);
        Some(rec)
    }

    /// Compares the end of the walk with the head marker, and reports.
    pub(crate) fn finish(mut self, head: Option<ChainMark>) -> VerifyReport {
        match head {
            None if self.records > 0 => self.problem(
                self.last_key,
                format!(
                    "seq {}: no head marker, but {} record(s) up to here",
                    self.last_key, self.records
                ),
            ),
            None => {
                if self.checkpoint != ChainMark::GENESIS {
                    let c = self.checkpoint.seq;
                    self.problem(
                        c,
                        format!("seq {c}: no head marker, but a purge checkpoint here"),
                    );
                }
            }
            Some(h) if h.seq < self.checkpoint.seq => self.problem(
                h.seq,
                format!(
                    "seq {}: head marker is before the purge checkpoint (seq {})",
                    h.seq, self.checkpoint.seq
                ),
            ),
            Some(h) => {
                if self.last_key < h.seq {
                    let missing = span(self.last_key + 1, h.seq);
                    self.problem(
                        self.last_key + 1,
                        format!(
                            "{missing}: missing at the tail (truncated; the head marker says seq {})",
                            h.seq
                        ),
                    );
                } else if self.last_key > h.seq {
                    let extra = span(h.seq + 1, self.last_key);
                    self.problem(
                        h.seq + 1,
                        format!(
                            "{extra}: beyond the head marker (seq {}): appended outside the log",
                            h.seq
                        ),
                    );
                } else if let Some(prev) = self.prev.filter(|p| p.seq == h.seq) {
                    if prev.hash != h.hash {
                        self.problem(
                            h.seq,
                            format!(
                                "seq {}: hash differs from the head marker (the last record was replaced)",
                                h.seq
                            ),
                        );
                    }
                }
            }
        }
        // Stable: problems about one seq keep the order they were found in.
        self.problems.sort_by_key(|(seq, _)| *seq);
        VerifyReport {
            records: self.records,
            ok: self.problems.is_empty(),
            problems: self.problems.into_iter().map(|(_, p)| p).collect(),
            checkpoint: self.checkpoint,
            head,
        }
    }
}

/// Checks that `rec`, stored under `key`, continues the chain intact from `prev` (the purge
/// checkpoint, or the record purged just before it), and returns its mark.
///
/// Purging runs this on every record before removing it. Without it, a purge would launder
/// tampering at the start of the chain: a record changed, inserted or deleted among the
/// oldest ones would vanish under a checkpoint that makes the rest verify again. So a purge
/// stops at the first record that fails, and leaves it for `hutong audit verify` to show.
///
/// # Errors
/// [`StoreError::Corrupt`] naming the sequence number and what is wrong.
pub(crate) fn check_purgeable(
    prev: ChainMark,
    key: u64,
    rec: &AuditRecord,
) -> Result<ChainMark, StoreError> {
    let expected = prev.seq.saturating_add(1);
    let problem = if key != expected {
        Some(format!("seq {expected}: missing (deleted)"))
    } else if rec.seq != key {
        Some(format!("seq {key}: the record inside says seq {}", rec.seq))
    } else if !rec.hash_is_valid() {
        Some(format!("seq {key}: hash mismatch"))
    } else if rec.prev_hash != prev.hash {
        Some(format!("seq {key}: chain break"))
    } else {
        None
    };
    match problem {
        None => Ok(ChainMark::of(rec)),
        Some(p) => Err(StoreError::Corrupt {
            what: "audit chain",
            reason: format!(
                "{p}; purge stopped before it, so as not to erase the evidence (run `hutong audit verify`)"
            ),
        }),
    }
}

/// `seq 5`, or `seq 5..=9` for a range.
fn span(from: u64, to: u64) -> String {
    if from == to {
        format!("seq {from}")
    } else {
        format!("seq {from}..={to}")
    }
}
