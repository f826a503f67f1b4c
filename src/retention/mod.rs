//! Retention (DESIGN.md §8): what the gateway keeps about people is kept for its period,
//! then purged. Three kinds of state in the [`Store`] have a period:
//!
//! - audit records: [`RetentionPolicy::audit_days`]. The oldest records go, from the start
//!   of the chain only, and the purge checkpoint moves with them, so `hutong audit verify`
//!   still passes on what is left and still detects tampering in it (see
//!   [`AuditLog::purge_before`], which also refuses to purge a prefix that does not
//!   verify, so that retention never erases the evidence of tampering).
//! - idempotency records: they expire 24 hours after they were written
//!   ([`crate::idempotency::IDEMPOTENCY_TTL_MS`]); an expired one is already ignored, and
//!   purging removes it (its encrypted body holds a person's answer).
//! - closed correction tickets: [`RetentionPolicy::corrections_closed_days`] after the
//!   region closed them. Open tickets stay until the region answers.
//!
//! [`purge`] does one pass, blocking; `hutong retention purge` runs it from the command
//! line. The gateway runs it at start and then every interval, with the link entries and
//! callback records beside it (`server::recognition::spawn_retention`); [`spawn_periodic`]
//! runs it alone on a store, for a process that embeds one.
//!
//! The policy is the `[retention]` table of the configuration file:
//!
//! ```toml
//! [retention]
//! audit_days = 180
//! corrections_closed_days = 365
//! purge_interval_secs = 3600
//! ```

use std::fmt;
use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::audit::{AuditLog, RedbAuditLog};
use crate::corrections::{CorrectionError, CorrectionStore, RedbCorrectionStore};
use crate::store::{Store, StoreError};

/// Default days an audit record is kept: 180.
pub const DEFAULT_AUDIT_DAYS: u32 = 180;

/// Default days a closed correction ticket is kept: 365.
pub const DEFAULT_CORRECTIONS_CLOSED_DAYS: u32 = 365;

/// Default time between two purges in the gateway, in seconds: one hour.
pub const DEFAULT_PURGE_INTERVAL_SECS: u64 = 3_600;

/// Shortest interval [`spawn_periodic`] runs at.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

const DAY_MS: u64 = 86_400_000;

/// How long each kind of state is kept: the `[retention]` table of the configuration.
///
/// Periods are whole days and never zero: a zero period would purge an audit record as
/// soon as it is written, which no operator means. Idempotency records have no setting:
/// they expire after 24 hours by the standard's rule, and an expired one is useless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RetentionPolicy {
    /// Days an audit record is kept after its time ([`DEFAULT_AUDIT_DAYS`]).
    #[serde(default = "default_audit_days")]
    pub audit_days: NonZeroU32,
    /// Days a correction ticket is kept after the region closed it (DONE or REJECTED)
    /// ([`DEFAULT_CORRECTIONS_CLOSED_DAYS`]).
    #[serde(default = "default_corrections_closed_days")]
    pub corrections_closed_days: NonZeroU32,
    /// Seconds between two purges in the gateway ([`DEFAULT_PURGE_INTERVAL_SECS`]).
    #[serde(default = "default_purge_interval_secs")]
    pub purge_interval_secs: NonZeroU64,
}

fn default_audit_days() -> NonZeroU32 {
    NonZeroU32::new(DEFAULT_AUDIT_DAYS).unwrap_or(NonZeroU32::MIN)
}

fn default_corrections_closed_days() -> NonZeroU32 {
    NonZeroU32::new(DEFAULT_CORRECTIONS_CLOSED_DAYS).unwrap_or(NonZeroU32::MIN)
}

fn default_purge_interval_secs() -> NonZeroU64 {
    NonZeroU64::new(DEFAULT_PURGE_INTERVAL_SECS).unwrap_or(NonZeroU64::MIN)
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            audit_days: default_audit_days(),
            corrections_closed_days: default_corrections_closed_days(),
            purge_interval_secs: default_purge_interval_secs(),
        }
    }
}

impl RetentionPolicy {
    /// Audit records with a time before this are due at `now_ms`.
    pub fn audit_cutoff_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(u64::from(self.audit_days.get()) * DAY_MS)
    }

    /// Closed correction tickets last changed before this are due at `now_ms`.
    pub fn corrections_cutoff_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(u64::from(self.corrections_closed_days.get()) * DAY_MS)
    }

    /// The time between two purges in the gateway.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.purge_interval_secs.get())
    }
}

/// What one purge removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PurgeReport {
    /// Audit records removed from the start of the chain.
    pub audit_records: u64,
    /// Expired idempotency records removed.
    pub idempotency_records: u64,
    /// Closed correction tickets removed.
    pub correction_tickets: u64,
    /// Whether the audit journal's discarded tail went (records a crash cut short or that
    /// did not continue the chain, kept aside at a start: it goes once its last write is
    /// older than the audit period, and not in the run that wrote it, whose clock may have
    /// dated it wrong).
    pub discarded_journal: bool,
}

impl fmt::Display for PurgeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "purged {} audit record(s), {} expired idempotency record(s), {} closed correction ticket(s)",
            self.audit_records, self.idempotency_records, self.correction_tickets
        )?;
        if self.discarded_journal {
            f.write_str(", and the audit journal's discarded tail")?;
        }
        Ok(())
    }
}

/// One step of a purge that failed. The other steps still ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PurgeFailure {
    /// Purging audit records failed: the store failed, or the oldest records do not verify
    /// ([`StoreError::Corrupt`]: tampering, which the purge will not erase; run
    /// `hutong audit verify`). Records up to the failing one were purged.
    #[error("audit records: {0}")]
    Audit(StoreError),
    /// Purging expired idempotency records failed (the store failed).
    #[error("idempotency records: {0}")]
    Idempotency(StoreError),
    /// Purging closed correction tickets failed (the store failed, or a stored ticket does
    /// not decode).
    #[error("correction tickets: {0}")]
    Corrections(CorrectionError),
    /// The audit journal's discarded tail could not be read or removed.
    #[error("the audit journal's discarded tail: {0}")]
    DiscardedJournal(String),
}

/// A purge that did not complete: what it removed anyway, and every step that failed.
/// Messages name tables, steps and sequence numbers, never personal data: safe to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionError {
    /// What the purge removed before and besides the failures.
    pub done: PurgeReport,
    /// The steps that failed, in the order they ran.
    pub failures: Vec<PurgeFailure>,
}

impl fmt::Display for RetentionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "retention purge incomplete (")?;
        for (i, e) in self.failures.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        write!(f, "); {}", self.done)
    }
}

impl std::error::Error for RetentionError {}

/// Purges everything in `store` that `policy` no longer keeps at `now_ms` (Unix
/// milliseconds): audit records, then expired idempotency records, then closed correction
/// tickets. A step that fails does not stop the others, so that, say, an audit chain held
/// for investigation does not keep expired personal answers on disk.
///
/// Blocks: each step commits (durably, for the audit log and the tickets) every
/// 10 000 removals. Async callers use `spawn_blocking`, as [`spawn_periodic`] does. Safe
/// to run while the gateway appends: redb serialises the writers, and a purge only ever
/// touches the start of the audit chain.
///
/// # Errors
/// [`RetentionError`] with what was done and every step that failed.
pub fn purge(
    store: &Store,
    policy: &RetentionPolicy,
    now_ms: u64,
) -> Result<PurgeReport, RetentionError> {
    let mut done = PurgeReport::default();
    let mut failures = Vec::new();

    let audit = RedbAuditLog::new(store.clone());
    match audit.purge_before(policy.audit_cutoff_ms(now_ms)) {
        Ok(n) => done.audit_records = n,
        Err(e) => failures.push(PurgeFailure::Audit(e)),
    }
    match crate::idempotency::purge_expired(store, now_ms) {
        Ok(n) => done.idempotency_records = n,
        Err(e) => failures.push(PurgeFailure::Idempotency(e)),
    }
    let corrections = RedbCorrectionStore::new(store.clone());
    match corrections.purge_closed_before(policy.corrections_cutoff_ms(now_ms)) {
        Ok(n) => done.correction_tickets = n,
        Err(e) => failures.push(PurgeFailure::Corrections(e)),
    }

    if let Some(dir) = store.path().parent() {
        let tail =
            crate::audit::journal::discarded_path(&dir.join(crate::audit::journal::JOURNAL_FILE));
        match purge_if_older(&tail, policy.audit_cutoff_ms(now_ms)) {
            Ok(gone) => done.discarded_journal = gone,
            Err(e) => failures.push(PurgeFailure::DiscardedJournal(e.to_string())),
        }
    }

    if failures.is_empty() {
        Ok(done)
    } else {
        Err(RetentionError { done, failures })
    }
}

/// Removes the file at `path` if it was last written before `cutoff_ms` (Unix
/// milliseconds); whether it did. A missing file is nothing to do.
fn purge_if_older(path: &std::path::Path, cutoff_ms: u64) -> std::io::Result<bool> {
    if crate::audit::journal::set_aside_by_this_process(path) {
        return Ok(false);
    }
    let modified = match std::fs::metadata(path) {
        Ok(m) => m.modified()?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let ms = modified
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    if ms >= cutoff_ms {
        return Ok(false);
    }
    std::fs::remove_file(path)?;
    Ok(true)
}

/// Runs [`purge`] at once and then every `every`, on tokio's blocking pool, and logs each
/// report (counts only). `every` below one second is taken as one second. A failed purge
/// is logged as a warning and tried again at the next tick; a slow one delays the next
/// tick rather than overlapping it.
///
/// Runs until the handle is aborted or the runtime shuts down.
///
/// # Panics
/// When called outside a tokio runtime.
pub fn spawn_periodic(
    store: Store,
    policy: RetentionPolicy,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    spawn_with_clock(store, policy, every, system_now_ms)
}

/// [`spawn_periodic`] with the clock that dates each purge injected.
fn spawn_with_clock(
    store: Store,
    policy: RetentionPolicy,
    every: Duration,
    now_ms: impl Fn() -> u64 + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every.max(MIN_INTERVAL));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let store = store.clone();
            let now = now_ms();
            let result = tokio::task::spawn_blocking(move || purge(&store, &policy, now)).await;
            match result {
                Ok(Ok(r)) => tracing::info!(
                    audit_records = r.audit_records,
                    idempotency_records = r.idempotency_records,
                    correction_tickets = r.correction_tickets,
                    "retention purge"
                ),
                Ok(Err(e)) => tracing::warn!(
                    audit_records = e.done.audit_records,
                    idempotency_records = e.done.idempotency_records,
                    correction_tickets = e.done.correction_tickets,
                    error = %e,
                    "retention purge incomplete"
                ),
                Err(e) => tracing::error!(error = %e, "retention purge task failed"),
            }
        }
    })
}

/// The system clock in Unix milliseconds (0 before 1970, which purges nothing).
fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests;
