//! `[audit]`: when an answered request's audit record reaches the disk.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::AuditSync;

/// Default commit interval of the `interval` policy, in milliseconds.
pub const DEFAULT_SYNC_INTERVAL_MS: u64 = 10;

/// Longest commit interval accepted, in milliseconds: the most a machine crash may lose.
pub const MAX_SYNC_INTERVAL_MS: u64 = 1_000;

/// The sync policies, by name in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPolicy {
    /// Each answer waits for the `fsync` of the group that holds its record.
    #[default]
    Commit,
    /// Each answer waits for its record to be written to the audit journal; the store
    /// commits every `sync_interval_ms`. A gateway crash loses nothing; a machine crash
    /// may lose the records of the last interval.
    Interval,
}

/// Configuration of the audit writer (see [`crate::audit::journal`] for the trade).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct AuditConfig {
    /// `commit` (the default) or `interval`.
    #[serde(default)]
    pub sync: SyncPolicy,
    /// Under `interval`: the longest a record waits for its commit, in milliseconds
    /// ([`DEFAULT_SYNC_INTERVAL_MS`]; 1 to [`MAX_SYNC_INTERVAL_MS`]).
    #[serde(default = "default_interval")]
    pub sync_interval_ms: u64,
}

fn default_interval() -> u64 {
    DEFAULT_SYNC_INTERVAL_MS
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            sync: SyncPolicy::Commit,
            sync_interval_ms: DEFAULT_SYNC_INTERVAL_MS,
        }
    }
}

impl AuditConfig {
    /// What is wrong with it, if anything.
    pub fn problems(&self) -> Vec<String> {
        if (1..=MAX_SYNC_INTERVAL_MS).contains(&self.sync_interval_ms) {
            Vec::new()
        } else {
            vec![format!(
                "audit.sync_interval_ms: must be 1 to {MAX_SYNC_INTERVAL_MS} (got {})",
                self.sync_interval_ms
            )]
        }
    }

    /// The writer's policy.
    pub fn policy(&self) -> AuditSync {
        match self.sync {
            SyncPolicy::Commit => AuditSync::Commit,
            SyncPolicy::Interval => {
                AuditSync::Interval(Duration::from_millis(self.sync_interval_ms))
            }
        }
    }
}
