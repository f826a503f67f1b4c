//! `hutong bench audit-append`: the least CPU the audit trail costs a request, for the relay
//! ceilings of benches/bench.sh.
//!
//! Every relayed request that touches a person waits for its audit record (the gateway
//! issue asks it of every access to personal data), so a relay's cost per request holds
//! one record's cost: sealed on the SM3 chain, written to the journal, and committed to the
//! embedded store with the person's index by the committer thread. This command appends
//! records shaped like a relayed `queryHealthInfo`'s through the gateway's own writer
//! (`interval` policy, the cheapest the gateway has) over a fresh store, from as many tasks
//! as a benchmark's connections (each yields after an append, so they take turns as
//! requests do), as fast as they go; waits until the committer has stored every one; and
//! divides the CPU time of every thread of the process by the records. No thread of the
//! process ends between the two readings of that time (the runtime's workers, the journal's
//! ticker and the committer live until after the second).
//!
//! Flat out, a commit holds more records than at a relay's rate, and a commit's fixed
//! costs (its fsyncs, the pages it rewrites) are shared by more of them: the figure is a
//! floor under what a record costs the gateway under `interval`, never above it. Under
//! `commit` a record costs more (it waits for its group's fsync).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::json;

use crate::audit::journal::JOURNAL_FILE;
use crate::audit::{AuditSync, AuditWriter, NewRecord, Pseudonym, RedbAuditLog};
use crate::store::Store;

/// As many appending tasks as benches/bench.sh's connections.
const TASKS: usize = 32;

/// Persons the records are about: the benchmark's simulated population.
const PERSONS: u64 = 1000;

/// How long the committer may take to store the last records after the timing.
const DRAIN: Duration = Duration::from_secs(60);

/// Times appends for `secs` seconds under an `interval_ms` journal, and prints the rate as
/// JSON (`records`, `seconds`, `cpu_seconds`, `per_cpu_second`).
pub(super) fn audit_append(
    secs: f64,
    interval_ms: u64,
    parent: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    if !(secs.is_finite() && secs > 0.0 && secs <= 600.0) {
        bail!("the timing must last more than 0 and at most 600 seconds");
    }
    if !(1..=crate::audit::MAX_SYNC_INTERVAL_MS).contains(&interval_ms) {
        bail!(
            "--interval-ms must be 1 to {}",
            crate::audit::MAX_SYNC_INTERVAL_MS
        );
    }
    // On the gateway's file system when the caller says where (the fsyncs cost what the
    // disk under it makes them cost).
    let dir = parent
        .map_or_else(std::env::temp_dir, std::path::Path::to_path_buf)
        .join(format!(
            "hutong-bench-audit-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = timed(&dir, secs, Duration::from_millis(interval_ms));
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    say!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn timed(
    dir: &std::path::Path,
    secs: f64,
    interval: Duration,
) -> anyhow::Result<serde_json::Value> {
    let log = Arc::new(RedbAuditLog::new(Store::open(dir)?));
    let writer = Arc::new(AuditWriter::start_embedded(
        Arc::clone(&log),
        AuditSync::Interval(interval),
        &dir.join(JOURNAL_FILE),
    )?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cpu0 = process_cpu_ns()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let next = Arc::new(AtomicU64::new(0));
    let appended = runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (writer, next) = (Arc::clone(&writer), Arc::clone(&next));
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        writer.append(record(i)).await?;
                        n += 1;
                        // An append of the journal is done in one poll: without a turn
                        // given up here, each worker would run one task to the deadline.
                        tokio::task::yield_now().await;
                    }
                    Ok::<_, crate::store::StoreError>(n)
                })
            })
            .collect();
        let mut total = 0u64;
        for t in tasks {
            total += t
                .await
                .map_err(|e| anyhow!("an appending task failed: {e}"))??;
        }
        Ok::<_, anyhow::Error>(total)
    })?;
    if appended == 0 {
        bail!("no record was appended");
    }
    // Every record stored, by the committer, before the CPU is read.
    let drained = Instant::now() + DRAIN;
    let committed = loop {
        let seq = log.head()?.map_or(0, |h| h.seq);
        if seq >= appended {
            break seq;
        }
        if Instant::now() > drained {
            bail!("the committer did not store the records within {DRAIN:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let cpu = process_cpu_ns()?.saturating_sub(cpu0);
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu as f64 / 1e9;
    Ok(json!({
        "records": appended,
        "committed": committed,
        "tasks": TASKS,
        "interval_ms": interval.as_millis() as u64,
        "seconds": seconds,
        "per_second": appended as f64 / seconds,
        "cpu_seconds": cpu_seconds,
        "per_cpu_second": if cpu_seconds > 0.0 { appended as f64 / cpu_seconds } else { 0.0 },
    }))
}

/// The record of a relayed `queryHealthInfo` about one of [`PERSONS`].
fn record(i: u64) -> NewRecord {
    NewRecord {
        time_ms: now_ms(),
        actor: "A3100010002".to_owned(),
        action: "queryHealthInfo".to_owned(),
        subject: Some(Pseudonym(crate::crypto::sm3(&(i % PERSONS).to_be_bytes()))),
        purpose: "queryHealthInfo".to_owned(),
        result: "0".to_owned(),
        loss: Vec::new(),
        request_id: format!("{:032x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// CPU time of every thread of this process so far, ns (Linux's scheduler statistics).
fn process_cpu_ns() -> anyhow::Result<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").context("reading /proc/self/task")? {
        let path = task?.path().join("schedstat");
        match super::bench::schedstat_ns(&path) {
            Some(ns) => total += ns,
            // A thread that ended since the listing has nothing more to add.
            None if !path.exists() => {}
            None => bail!("{} is not scheduler statistics", path.display()),
        }
    }
    Ok(total)
}
