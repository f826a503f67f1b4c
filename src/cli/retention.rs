//! `hutong retention purge`: one retention pass over a gateway's data directory, as the
//! gateway runs it periodically. Like `hutong audit`, it opens the database file directly,
//! so the gateway must not be running on that directory.
//!
//! The policy is the `[retention]` table of the configuration file, read here with a small
//! struct of its own: the command needs only that table and `gateway.data_dir`, and reads
//! them without validating the rest of the file (keys, certificates), so it runs on a
//! host that holds only the data.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use serde::Deserialize;

use crate::retention::{RetentionPolicy, purge};

/// `hutong retention …`.
#[derive(Debug, clap::Subcommand)]
pub enum RetentionCmd {
    /// Purge what the retention policy no longer keeps: audit records older than
    /// retention.audit_days (from the start of the chain, which still verifies afterwards),
    /// expired idempotency records, and correction tickets closed more than
    /// retention.corrections_closed_days ago. Exits 0 when done, 1 when a step failed
    /// (the others still ran; an audit chain that does not verify is never purged).
    ///
    /// Example: hutong retention purge --config config/hutong.toml
    Purge {
        /// The gateway's configuration file: gateway.data_dir and the [retention] table
        /// are read from it.
        #[arg(long, default_value = super::serve::DEFAULT_CONFIG)]
        config: PathBuf,
        /// Purge as if it were this time, in Unix milliseconds (default: now).
        #[arg(long, value_name = "MS")]
        now_ms: Option<u64>,
    },
}

/// The part of the configuration file this command reads; other keys are ignored.
#[derive(Debug, Deserialize)]
struct ConfigFile {
    gateway: GatewaySection,
    #[serde(default)]
    retention: RetentionPolicy,
}

#[derive(Debug, Deserialize)]
struct GatewaySection {
    data_dir: PathBuf,
}

pub(super) fn run(cmd: &RetentionCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        RetentionCmd::Purge { config, now_ms } => run_purge(config, *now_ms),
    }
}

fn run_purge(config: &Path, now_ms: Option<u64>) -> anyhow::Result<ExitCode> {
    let (data_dir, policy) = read_config(config)?;
    let now_ms = match now_ms {
        Some(n) => n,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("the system clock is before 1970")?
            .as_millis()
            .try_into()
            .context("the system clock is out of range")?,
    };
    // Replays the audit journal first, so that records a stopped gateway answered for are
    // in the chain before its start is purged.
    let (store, _) = super::audit::open_log(&data_dir)?;
    match purge(&store, &policy, now_ms) {
        Ok(report) => {
            say!("{}: {report}", store.path().display());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            say!("{}: {}", store.path().display(), e.done);
            for f in &e.failures {
                say!("FAILED: {f}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// `gateway.data_dir` (resolved against the file's directory, as the gateway does) and
/// the policy.
fn read_config(path: &Path) -> anyhow::Result<(PathBuf, RetentionPolicy)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: ConfigFile = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))?;
    let dir = file.gateway.data_dir;
    let dir = if dir.is_absolute() {
        dir
    } else {
        path.parent().unwrap_or(Path::new("")).join(dir)
    };
    Ok((dir, file.retention))
}
