//! `hutong retention purge`: one retention pass over a gateway's data directory, as the
//! gateway runs it periodically. Like `hutong audit`, it opens the database file directly,
//! so the gateway must not be running on that directory.
//!
//! The policy is the `[retention]` table of the configuration file, read here with a small
//! struct of its own: the command needs only that table, `gateway.data_dir` and
//! `gateway.pseudonym_secret_file`, and reads them without validating the rest of the file
//! (keys, certificates), so it runs on a host that holds only the data and that secret.
//! Link entries and callback records are encrypted under a key derived from the secret;
//! without it (the file names none) they are left, and the command says so.

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
    /// retention.corrections_closed_days ago, the audit journal's discarded tail last written
    /// more than retention.audit_days ago; with gateway.pseudonym_secret_file, also link
    /// entries and finished callback records not touched for retention.audit_days, as the
    /// gateway's own job does. Exits 0 when done, 1 when a step failed (the others still
    /// ran; an audit chain that does not verify is never purged).
    ///
    /// Example: hutong retention purge --config config/hutong.toml
    Purge {
        /// The gateway's configuration file: gateway.data_dir and the [retention] table
        /// are read from it.
        #[arg(long, default_value = super::serve::DEFAULT_CONFIG)]
        config: PathBuf,
        /// Purge as if it were this time, in Unix milliseconds (default: now). More than a
        /// day ahead of the system clock is refused without --allow-future: deleted
        /// records cannot be brought back.
        #[arg(long, value_name = "MS")]
        now_ms: Option<u64>,
        /// Accept a --now-ms more than a day ahead of the system clock.
        #[arg(long)]
        allow_future: bool,
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
    pseudonym_secret_file: Option<PathBuf>,
}

/// What the command reads from the configuration file, paths resolved against its
/// directory (as the gateway resolves them).
struct Settings {
    data_dir: PathBuf,
    secret_file: Option<PathBuf>,
    policy: RetentionPolicy,
}

pub(super) fn run(cmd: &RetentionCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        RetentionCmd::Purge {
            config,
            now_ms,
            allow_future,
        } => run_purge(config, *now_ms, *allow_future),
    }
}

fn run_purge(config: &Path, now_ms: Option<u64>, allow_future: bool) -> anyhow::Result<ExitCode> {
    let Settings {
        data_dir,
        secret_file,
        policy,
    } = read_config(config)?;
    let clock: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_millis()
        .try_into()
        .context("the system clock is out of range")?;
    const DAY_MS: u64 = 86_400_000;
    let now_ms = match now_ms {
        Some(n) if n > clock.saturating_add(DAY_MS) && !allow_future => anyhow::bail!(
            "--now-ms is {} day(s) ahead of the system clock (seconds or microseconds instead of milliseconds?): \
             a purge then would delete records still inside retention; give --allow-future to do it anyway",
            (n - clock) / DAY_MS
        ),
        Some(n) => n,
        None => clock,
    };
    // Replays the audit journal first, so that records a stopped gateway answered for are
    // in the chain before its start is purged.
    let (store, _) = super::audit::open_log(&data_dir)?;
    let mut ok = match purge(&store, &policy, now_ms) {
        Ok(report) => {
            say!("{}: {report}", store.path().display());
            true
        }
        Err(e) => {
            say!("{}: {}", store.path().display(), e.done);
            for f in &e.failures {
                say!("FAILED: {f}");
            }
            false
        }
    };
    let Some(secret_file) = secret_file else {
        say!(
            "link entries and callback records: not purged (gateway.pseudonym_secret_file is \
             not set, and they are encrypted under its key)"
        );
        return Ok(exit(ok));
    };
    match purge_links(&store, &secret_file, policy.audit_cutoff_ms(now_ms)) {
        Ok((links, deliveries)) => say!(
            "purged {links} link entr{} and {deliveries} callback record(s) not touched since \
             the audit cutoff",
            if links == 1 { "y" } else { "ies" }
        ),
        Err(e) => {
            say!("FAILED: link entries and callback records: {e:#}");
            ok = false;
        }
    }
    Ok(exit(ok))
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The gateway's purge of link entries and finished callback deliveries older than
/// `cutoff_ms`, under the data-at-rest key derived from the secret.
fn purge_links(
    store: &crate::store::Store,
    secret_file: &Path,
    cutoff_ms: u64,
) -> anyhow::Result<(usize, usize)> {
    use crate::link::LinkRegistry as _;
    let secret = crate::server::read_pseudonym_secret(secret_file)?;
    let key = crate::server::data_at_rest_key(&secret)?;
    let links = crate::link::RedbLinks::new(store.clone(), key.clone())
        .purge_before(cutoff_ms)
        .context("link entries")?;
    let deliveries = crate::link::outbox::Outbox::new(store.clone(), key)
        .and_then(|o| o.purge_before(cutoff_ms))
        .context("callback records")?;
    Ok((links, deliveries))
}

/// The settings the command reads from the file at `path`.
fn read_config(path: &Path) -> anyhow::Result<Settings> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: ConfigFile = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))?;
    let resolve = |p: PathBuf| {
        if p.is_absolute() {
            p
        } else {
            path.parent().unwrap_or(Path::new("")).join(p)
        }
    };
    Ok(Settings {
        data_dir: resolve(file.gateway.data_dir),
        secret_file: file.gateway.pseudonym_secret_file.map(resolve),
        policy: file.retention,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Pseudonym;
    use crate::link::{Holder, LinkRegistry as _, RedbLinks, RegionLink, Source};

    const DAY_MS: u64 = 86_400_000;
    const NOW: u64 = 1_795_000_000_000;

    /// A data directory with two people linked, one 400 days ago and one yesterday, and a
    /// configuration naming `secret` (or no secret file).
    fn fixture(tag: &str, with_secret: bool) -> (PathBuf, RedbLinks) {
        let dir =
            std::env::temp_dir().join(format!("hutong-retention-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let secret = [0x42u8; 32];
        std::fs::write(dir.join("secret.hex"), crate::crypto::to_hex(&secret)).unwrap();
        let secret_line = if with_secret {
            "pseudonym_secret_file = \"secret.hex\"\n"
        } else {
            ""
        };
        std::fs::write(
            dir.join("hutong.toml"),
            format!("[gateway]\ndata_dir = \"data\"\n{secret_line}"),
        )
        .unwrap();
        let store = crate::store::Store::open(&dir.join("data")).unwrap();
        let key = crate::server::data_at_rest_key(&secret).unwrap();
        let links = RedbLinks::new(store, key);
        for (n, age) in [(1u8, 400), (2, 1)] {
            let link = RegionLink::without_code("330000".into(), Source::Request, NOW);
            links
                .link(
                    &Pseudonym([n; 32]),
                    link,
                    &Holder::default(),
                    NOW - age * DAY_MS,
                )
                .unwrap();
        }
        (dir, links)
    }

    #[test]
    fn the_command_purges_old_link_entries_as_the_gateway_does() {
        let (dir, links) = fixture("links", true);
        drop(links);
        let code = run_purge(&dir.join("hutong.toml"), Some(NOW), true).unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        let store = crate::store::Store::open(&dir.join("data")).unwrap();
        let links = RedbLinks::new(
            store,
            crate::server::data_at_rest_key(&[0x42u8; 32]).unwrap(),
        );
        assert!(
            links.get(&Pseudonym([1; 32])).unwrap().is_none(),
            "400 days old"
        );
        assert!(
            links.get(&Pseudonym([2; 32])).unwrap().is_some(),
            "a day old"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn without_the_secret_link_entries_stay_and_a_wrong_secret_fails() {
        let (dir, links) = fixture("nosecret", false);
        drop(links);
        let config = dir.join("hutong.toml");
        assert_eq!(
            run_purge(&config, Some(NOW), true).unwrap(),
            ExitCode::SUCCESS
        );
        {
            let store = crate::store::Store::open(&dir.join("data")).unwrap();
            let key = crate::server::data_at_rest_key(&[0x42u8; 32]).unwrap();
            assert_eq!(RedbLinks::new(store, key).len().unwrap(), 2);
        }
        // Another secret cannot open the entries: the step fails (exit 1), nothing is lost.
        std::fs::write(dir.join("secret.hex"), crate::crypto::to_hex(&[0x43u8; 32])).unwrap();
        std::fs::write(
            &config,
            "[gateway]\ndata_dir = \"data\"\npseudonym_secret_file = \"secret.hex\"\n",
        )
        .unwrap();
        assert_eq!(
            run_purge(&config, Some(NOW), true).unwrap(),
            ExitCode::from(1)
        );
        let store = crate::store::Store::open(&dir.join("data")).unwrap();
        let key = crate::server::data_at_rest_key(&[0x42u8; 32]).unwrap();
        assert_eq!(RedbLinks::new(store, key).len().unwrap(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
