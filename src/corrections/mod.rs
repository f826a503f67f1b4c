//! Correction tickets (更正权, GB/T 38963 6.8; DESIGN.md §8): a holder asks for their health
//! information to be corrected, the gateway relays `correctHealthInfo` to the region that
//! owns the data, and the region answers with a ticket `{ticketId, status, expectedTime?}`.
//! The right is only real if the request is followed to an answer, so the gateway keeps
//! every ticket until the region closes it (DONE or REJECTED) and lets the filer query it.
//!
//! On the request path this sits behind the relay: the region's first answer opens a
//! ticket ([`CorrectionStore::open`]); its later answers (to a status query, or pushed)
//! move it on ([`CorrectionStore::advance`]); the filer reads it
//! ([`CorrectionStore::get_for`]). Retention ([`crate::retention`]) removes closed tickets
//! after their period ([`CorrectionStore::purge_closed_before`]).
//!
//! # States
//!
//! ```text
//! ACCEPTED ──▶ PROCESSING ──▶ DONE
//!     │             └───────▶ REJECTED
//!     ├──────────────────────▶ DONE
//!     └──────────────────────▶ REJECTED
//! ```
//!
//! A region that reports the status it reported before (an answer to a poll) changes
//! nothing: no history entry, no new time. Any other move is refused
//! ([`CorrectionError::InvalidTransition`]): going back, and anything out of DONE or
//! REJECTED, which are final. A region may open a ticket in any state (it can answer
//! DONE at once).
//!
//! # Privacy
//!
//! A ticket names the person by [`Pseudonym`] only, never by ID number, and holds no
//! personal field: the correction's content (items, reason, evidence) goes to the region
//! and is not kept here. Ticket ids, app ids and region codes are safe to log. A history
//! note is the region's short remark on a status (a reason code, "duplicate of …"): the
//! relay must not put personal fields in it.
//!
//! # Stored form
//!
//! JSON, one object per ticket (the [`serde`] form of [`CorrectionTicket`], stable):
//! `{"v":1, "ticket_id", "app_id", "region", "subject" (64 hex digits or null), "status",
//! "expected_time" (or null), "history":[{"status","time_ms","note"}], "created_ms",
//! "updated_ms"}`. In redb, [`crate::store::tables::CORRECTIONS`] maps the ticket id to that
//! JSON, and [`crate::store::tables::CORRECTIONS_CLOSED`] indexes closed tickets by
//! `(updated_ms, ticket_id)` for purging.
//!
//! Every method blocks; async callers use [`crate::store::blocking`] or `spawn_blocking`.
//! Time is the caller's `time_ms` (Unix milliseconds), so tests need no clock.

mod memory;
mod redb_store;

#[cfg(test)]
mod tests;

pub use memory::MemoryCorrectionStore;
pub use redb_store::RedbCorrectionStore;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::audit::Pseudonym;
use crate::national::time::DateTime;
use crate::standard::ReturnCode;
use crate::store::StoreError;
use crate::trust::RegionCode;

/// Longest ticket id, in characters (the response schema's `maxLength`).
pub const MAX_TICKET_ID_CHARS: usize = 64;

/// Longest `app_id`, in bytes.
pub const MAX_APP_ID_BYTES: usize = 64;

/// Longest history note, in bytes. Longer notes are refused, not truncated.
pub const MAX_NOTE_BYTES: usize = 1024;

/// Version of the stored form.
const STORED_VERSION: u8 = 1;

/// Where a correction stands, as the region reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CorrectionStatus {
    /// `ACCEPTED`: the region has taken the request.
    Accepted,
    /// `PROCESSING`: the region is working on it.
    Processing,
    /// `DONE`: corrected. Final.
    Done,
    /// `REJECTED`: the region refused the correction. Final.
    Rejected,
}

impl CorrectionStatus {
    /// Every status, in the order a ticket goes through them.
    pub const ALL: [CorrectionStatus; 4] =
        [Self::Accepted, Self::Processing, Self::Done, Self::Rejected];

    /// The wire name (`ACCEPTED`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "ACCEPTED",
            Self::Processing => "PROCESSING",
            Self::Done => "DONE",
            Self::Rejected => "REJECTED",
        }
    }

    /// Parses a wire name (exact, upper case); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether the region has closed the ticket (DONE or REJECTED): nothing follows.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Done | Self::Rejected)
    }

    /// Whether a ticket in this status may move to `to` (a different status; staying put
    /// is not a move).
    pub const fn may_become(self, to: CorrectionStatus) -> bool {
        matches!(
            (self, to),
            (
                Self::Accepted,
                Self::Processing | Self::Done | Self::Rejected
            ) | (Self::Processing, Self::Done | Self::Rejected)
        )
    }
}

impl fmt::Display for CorrectionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a ticket's history: the status the region reported, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// The status reached.
    pub status: CorrectionStatus,
    /// When the gateway learned of it, Unix milliseconds.
    pub time_ms: u64,
    /// The region's remark, if any (no personal fields: see the module documentation).
    pub note: Option<String>,
}

/// A correction ticket, as the gateway tracks it.
///
/// Its serde form is the stored form of the module documentation; deserializing checks
/// it ([`CorrectionTicket::check`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredTicket", into = "StoredTicket")]
pub struct CorrectionTicket {
    /// The region's `ticketId`.
    pub ticket_id: String,
    /// Who filed the correction: the caller's `appId`. Only it may read the ticket.
    pub app_id: String,
    /// The region that owns the data and answers for the ticket.
    pub region: RegionCode,
    /// Whose data, by pseudonym.
    pub subject: Option<Pseudonym>,
    /// The current status: the last entry of `history`.
    pub status: CorrectionStatus,
    /// The region's expected completion, `yyyy-MM-dd HH:mm:ss` (Beijing time), as it gave it.
    pub expected_time: Option<String>,
    /// Every status the ticket has had, oldest first; never empty.
    pub history: Vec<StatusChange>,
    /// When the ticket was opened, Unix milliseconds (the first entry's time).
    pub created_ms: u64,
    /// When the status last changed, Unix milliseconds (the last entry's time).
    pub updated_ms: u64,
}

impl CorrectionTicket {
    /// A ticket the region has just answered with, in `status`, at `time_ms`. Checked when
    /// opened ([`CorrectionStore::open`]).
    pub fn new(
        ticket_id: impl Into<String>,
        app_id: impl Into<String>,
        region: RegionCode,
        subject: Option<Pseudonym>,
        status: CorrectionStatus,
        time_ms: u64,
    ) -> Self {
        Self {
            ticket_id: ticket_id.into(),
            app_id: app_id.into(),
            region,
            subject,
            status,
            expected_time: None,
            history: vec![StatusChange {
                status,
                time_ms,
                note: None,
            }],
            created_ms: time_ms,
            updated_ms: time_ms,
        }
    }

    /// Checks the ticket's bounds and that its history is a path of the state machine
    /// that ends in `status` at `updated_ms` and starts at `created_ms`.
    ///
    /// # Errors
    /// [`CorrectionError::InvalidTicket`] naming the first problem.
    pub fn check(&self) -> Result<(), CorrectionError> {
        let bad = |reason: String| Err(CorrectionError::InvalidTicket { reason });
        let id_chars = self.ticket_id.chars().count();
        if id_chars == 0 || id_chars > MAX_TICKET_ID_CHARS {
            return bad(format!(
                "ticket id must be 1 to {MAX_TICKET_ID_CHARS} characters (got {id_chars})"
            ));
        }
        if self.ticket_id.chars().any(char::is_control) {
            return bad("ticket id holds a control character".to_owned());
        }
        if self.app_id.is_empty() || self.app_id.len() > MAX_APP_ID_BYTES {
            return bad(format!("app id must be 1 to {MAX_APP_ID_BYTES} bytes"));
        }
        if let Some(t) = &self.expected_time {
            if DateTime::parse(t).is_none() {
                return bad("expected time is not yyyy-MM-dd HH:mm:ss".to_owned());
            }
        }
        let (Some(first), Some(last)) = (self.history.first(), self.history.last()) else {
            return bad("empty history".to_owned());
        };
        if first.time_ms != self.created_ms {
            return bad("created_ms is not the time of the first history entry".to_owned());
        }
        if last.status != self.status || last.time_ms != self.updated_ms {
            return bad("status and updated_ms are not the last history entry".to_owned());
        }
        for pair in self.history.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if !a.status.may_become(b.status) {
                return bad(format!("history moves from {} to {}", a.status, b.status));
            }
            if b.time_ms < a.time_ms {
                return bad("history goes back in time".to_owned());
            }
        }
        for n in self.history.iter().filter_map(|h| h.note.as_deref()) {
            check_note(n)?;
        }
        Ok(())
    }

    /// Moves the ticket to `to` at `time_ms`. Returns false, changing nothing, when it is
    /// in `to` already. The entry's time is never before the last one's: a report that
    /// arrives with an earlier clock is recorded at the ticket's last time.
    fn apply(
        &mut self,
        to: CorrectionStatus,
        time_ms: u64,
        note: Option<&str>,
    ) -> Result<bool, CorrectionError> {
        if self.status == to {
            return Ok(false);
        }
        if !self.status.may_become(to) {
            return Err(CorrectionError::InvalidTransition {
                from: self.status,
                to,
            });
        }
        if let Some(n) = note {
            check_note(n)?;
        }
        let time_ms = time_ms.max(self.updated_ms);
        self.history.push(StatusChange {
            status: to,
            time_ms,
            note: note.map(str::to_owned),
        });
        self.status = to;
        self.updated_ms = time_ms;
        Ok(true)
    }

    /// The stored form (JSON).
    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(self).map_err(|e| StoreError::Corrupt {
            what: "correction ticket",
            reason: e.to_string(),
        })
    }

    /// Decodes and checks the stored form.
    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        serde_json::from_slice(bytes)
            .map_err(|e| crate::store::undecodable("correction ticket", &e))
    }
}

fn check_note(note: &str) -> Result<(), CorrectionError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(CorrectionError::InvalidTicket {
            reason: format!("a note is over {MAX_NOTE_BYTES} bytes"),
        });
    }
    Ok(())
}

/// The serde mirror of [`CorrectionTicket`]: the stored form, with its version.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredTicket {
    v: u8,
    ticket_id: String,
    app_id: String,
    region: String,
    subject: Option<String>,
    status: CorrectionStatus,
    expected_time: Option<String>,
    history: Vec<StatusChange>,
    created_ms: u64,
    updated_ms: u64,
}

impl From<CorrectionTicket> for StoredTicket {
    fn from(t: CorrectionTicket) -> Self {
        Self {
            v: STORED_VERSION,
            ticket_id: t.ticket_id,
            app_id: t.app_id,
            region: t.region.as_str().to_owned(),
            subject: t.subject.map(|p| p.to_hex()),
            status: t.status,
            expected_time: t.expected_time,
            history: t.history,
            created_ms: t.created_ms,
            updated_ms: t.updated_ms,
        }
    }
}

impl TryFrom<StoredTicket> for CorrectionTicket {
    type Error = CorrectionError;

    fn try_from(s: StoredTicket) -> Result<Self, Self::Error> {
        let bad = |reason: String| CorrectionError::InvalidTicket { reason };
        if s.v != STORED_VERSION {
            return Err(bad(format!("unknown version {}", s.v)));
        }
        let region = RegionCode::parse(&s.region)
            .map_err(|_| bad("region is not a 6-digit code".to_owned()))?;
        let subject = match s.subject {
            None => None,
            Some(h) => Some(
                Pseudonym::parse_hex(&h)
                    .ok_or_else(|| bad("subject is not 64 hex digits".to_owned()))?,
            ),
        };
        let t = Self {
            ticket_id: s.ticket_id,
            app_id: s.app_id,
            region,
            subject,
            status: s.status,
            expected_time: s.expected_time,
            history: s.history,
            created_ms: s.created_ms,
            updated_ms: s.updated_ms,
        };
        t.check()?;
        Ok(t)
    }
}

/// What [`CorrectionStore::open`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    /// The ticket was stored.
    Opened,
    /// A ticket with this id was already tracked and was kept; this is it. When it is the
    /// same request answered twice, the caller answers with it (`4002` is the standard's
    /// code for a duplicate correction). Region ticket ids are unique per region only: a
    /// stored ticket with another `region` or `app_id` is a clash the caller must not
    /// answer with, since it is someone else's.
    AlreadyExists(CorrectionTicket),
}

/// Correction tickets by region and ticket id: a region's ticket ids are unique within
/// that region only, so two regions' ticket `1001` are two tickets.
pub trait CorrectionStore: Send + Sync {
    /// Starts tracking `ticket`, unless its region's ticket with its id is tracked already,
    /// which is kept and returned.
    ///
    /// # Errors
    /// [`CorrectionError::InvalidTicket`] when `ticket` fails [`CorrectionTicket::check`];
    /// any store failure.
    fn open(&self, ticket: &CorrectionTicket) -> Result<OpenOutcome, CorrectionError>;

    /// `region`'s ticket `ticket_id`, if tracked, whoever filed it: for the region that
    /// owns it and for operators. Answer a client through [`CorrectionStore::get_for`].
    ///
    /// # Errors
    /// Any store failure, or a stored ticket that does not decode.
    fn get(
        &self,
        region: &str,
        ticket_id: &str,
    ) -> Result<Option<CorrectionTicket>, CorrectionError>;

    /// Every region's ticket with id `ticket_id`, oldest update first.
    ///
    /// # Errors
    /// Any store failure, or a stored ticket that does not decode.
    fn find(&self, ticket_id: &str) -> Result<Vec<CorrectionTicket>, CorrectionError>;

    /// Moves `region`'s ticket `ticket_id` to `to` at `time_ms`, with the region's `note`, and returns
    /// it. Reporting the current status again changes nothing (no history entry) and
    /// returns the ticket as it is. Concurrent calls on one ticket are serialised: its
    /// history is always a path of the state machine.
    ///
    /// # Errors
    /// [`CorrectionError::UnknownTicket`]; [`CorrectionError::InvalidTransition`] for a
    /// move the state machine refuses (back, or out of DONE or REJECTED), which leaves the
    /// ticket as it was; [`CorrectionError::InvalidTicket`] for a note over
    /// [`MAX_NOTE_BYTES`]; any store failure.
    fn advance(
        &self,
        region: &str,
        ticket_id: &str,
        to: CorrectionStatus,
        time_ms: u64,
        note: Option<&str>,
    ) -> Result<CorrectionTicket, CorrectionError>;

    /// Removes every closed ticket (DONE or REJECTED) whose status last changed before
    /// `time_ms`; returns how many. Open tickets are never purged, however old: the
    /// region still owes an answer.
    ///
    /// # Errors
    /// Any store failure; what was removed before it stays removed.
    fn purge_closed_before(&self, time_ms: u64) -> Result<u64, CorrectionError>;

    /// The ticket `ticket_id` as `app_id` may see it: only the app that filed it may read
    /// it. A ticket filed by another app is answered exactly like a missing one, so that
    /// ticket ids cannot be probed. Should the app hold tickets of that id in two regions,
    /// the one updated last is given.
    ///
    /// # Errors
    /// [`CorrectionError::UnknownTicket`] when it is missing or not `app_id`'s; what
    /// [`CorrectionStore::find`] returns.
    fn get_for(&self, ticket_id: &str, app_id: &str) -> Result<CorrectionTicket, CorrectionError> {
        self.find(ticket_id)?
            .into_iter()
            .filter(|t| t.app_id == app_id)
            .max_by_key(|t| t.updated_ms)
            .ok_or_else(|| CorrectionError::UnknownTicket {
                ticket_id: ticket_id.to_owned(),
            })
    }
}

/// What can go wrong with a correction ticket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CorrectionError {
    /// No ticket with this id is tracked (never opened, purged after its retention
    /// period, or filed by another app when asked through [`CorrectionStore::get_for`]).
    #[error("unknown correction ticket {ticket_id:?}")]
    UnknownTicket {
        /// The id asked for (a region's ticket id: not personal, safe to log).
        ticket_id: String,
    },

    /// The region reported a status the ticket cannot move to from where it is: back, or
    /// out of a final status. The ticket is unchanged.
    #[error("a correction ticket in {from} cannot become {to}")]
    InvalidTransition {
        /// The ticket's status.
        from: CorrectionStatus,
        /// The status reported.
        to: CorrectionStatus,
    },

    /// A ticket, or a note, is out of bounds: an empty or over-long ticket id, a bad
    /// expected time, a history that is not a path of the state machine. The message
    /// names the field, never its value.
    #[error("invalid correction ticket: {reason}")]
    InvalidTicket {
        /// What is wrong.
        reason: String,
    },

    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CorrectionError {
    /// The return code a client sees.
    ///
    /// - [`CorrectionError::UnknownTicket`] → `1002` (bad parameter value). The standard
    ///   has no code for an unknown ticket. `2001` and `2004` would say something about a
    ///   person (no code, no health information): untrue, and for a ticket id guessed by
    ///   another app, a hint about someone else. What is wrong is a parameter, the
    ///   `ticketId`, whose value the gateway does not recognise, which is what `1002`
    ///   covers ("wrong type, format, length or value"). A purged ticket gets the same.
    /// - [`CorrectionError::InvalidTransition`] and [`CorrectionError::InvalidTicket`] →
    ///   `9002` (upstream failed): tickets, statuses and notes come from the region's
    ///   answers (the gateway's own fields, `app_id` and `region`, are valid before they
    ///   get here), so an answer the state machine or the bounds refuse is the region's
    ///   failure, not the caller's. (`POST /phic/v1/correctionStatus`, where the calling
    ///   region itself reports the move, answers a refused one with `1002`.)
    /// - [`CorrectionError::Store`] → `9999`, as every store failure.
    pub const fn return_code(&self) -> ReturnCode {
        match self {
            Self::UnknownTicket { .. } => ReturnCode::BadFormat,
            Self::InvalidTransition { .. } | Self::InvalidTicket { .. } => {
                ReturnCode::UpstreamFailed
            }
            Self::Store(e) => e.return_code(),
        }
    }
}
