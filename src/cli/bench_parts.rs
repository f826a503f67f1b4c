//! `hutong bench` measurements of one component in this process, each beside its baseline
//! in the same run: the replay store's sweep (`nonce-sweep`), the callback outbox's poll
//! and open (`outbox-due`), and bytes per cache entry and per nonce (`memory-parts`).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};

use crate::standard::ServiceName;

/// Resident set size of this process, kB.
fn rss_kb() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS in /proc/self/status"))
}

pub(super) fn nonce_sweep(count: usize) -> anyhow::Result<ExitCode> {
    use crate::envelope::{MemoryNonceStore, NONCE_SHARDS, NonceStore, NonceStoreConfig};
    if count == 0 {
        bail!("--count must be at least 1");
    }
    const TTL_MS: u64 = 600_000;
    let config = NonceStoreConfig {
        ttl_ms: TTL_MS,
        max_entries: count + 1_000,
        max_entries_per_app: count + 1_000,
    };
    let mut rows = Vec::new();
    for shards in [1, NONCE_SHARDS] {
        let store = MemoryNonceStore::with_shards(config.clone(), shards);
        for i in 0..count {
            store.check_and_insert("A3100010004", &format!("{:032x}", i * 7919), 1_000_000);
        }
        // Every nonce has expired: the next requests sweep, each shard when first reached.
        let now = 1_000_000 + TTL_MS;
        let mut times = Vec::with_capacity(1_000);
        let started = Instant::now();
        for i in 0..1_000 {
            let t = Instant::now();
            store.check_and_insert("A3100010004", &format!("after {i}"), now);
            times.push(t.elapsed());
        }
        let all = started.elapsed();
        times.sort_unstable();
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        rows.push(json!({
            "shards": shards,
            "entries": count,
            "slowest_call_ms": ms(times[times.len() - 1]),
            "p99_call_ms": ms(times[times.len() * 99 / 100]),
            "calls_over_1ms": times.iter().filter(|d| **d > Duration::from_millis(1)).count(),
            "first_1000_calls_ms": ms(all),
            "left_after": store.len(),
        }));
    }
    say!("{}", Value::Array(rows));
    Ok(ExitCode::SUCCESS)
}

pub(super) fn outbox_due(finished: usize) -> anyhow::Result<ExitCode> {
    use crate::link::outbox::{CallbackEvent, DeliveryState, KIND_STATUS, Outbox};
    const PENDING: usize = 10;
    const POLLS: u32 = 20;
    let dir = std::env::temp_dir().join(format!("hutong-bench-outbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| -> anyhow::Result<Value> {
        let store = crate::store::Store::open(&dir)?;
        let key = crate::crypto::Sm4Key::generate()?;
        let outbox = Outbox::new(store.clone(), key.clone())?;
        let event = |n: usize| CallbackEvent {
            kind: KIND_STATUS.into(),
            event_id: format!("E{n}"),
            source_region: "330000".into(),
            code_id: Some(format!("{n:032x}")),
            colour: "10".into(),
            status_time: Some("2026-12-06 10:00:00".into()),
            venue_code: None,
            visit_region: None,
        };
        let started = Instant::now();
        let mut n = 0;
        while n < finished + PENDING {
            let batch: Vec<_> = (n..(n + 1_000).min(finished + PENDING))
                .map(|i| ("110000".to_owned(), event(i)))
                .collect();
            let ids = outbox.enqueue(&batch, 1_000)?;
            for id in ids {
                if n < finished {
                    outbox.record(id, Ok(()), 2_000)?;
                }
                n += 1;
            }
        }
        let fill_secs = started.elapsed().as_secs_f64();
        let time = |f: &dyn Fn() -> anyhow::Result<usize>| -> anyhow::Result<(f64, usize)> {
            let t = Instant::now();
            let mut found = 0;
            for _ in 0..POLLS {
                found = f()?;
            }
            Ok((t.elapsed().as_secs_f64() * 1e3 / f64::from(POLLS), found))
        };
        let (indexed_ms, indexed) = time(&|| Ok(outbox.due(3_000, 64)?.len()))?;
        let (scan_ms, scanned) = time(&|| {
            Ok(outbox
                .all()?
                .into_iter()
                .filter(|d| d.state == DeliveryState::Pending && d.next_at_ms <= 3_000)
                .take(64)
                .count())
        })?;
        if indexed != PENDING || scanned != PENDING {
            bail!("found {indexed} and {scanned} due deliveries, not {PENDING}");
        }
        // A start: opening an indexed store, beside the pass that rebuilds the indexes
        // (what every start did before the store kept their version).
        let t = Instant::now();
        drop(Outbox::new(store.clone(), key.clone())?);
        let open_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let unreadable = outbox.rebuild_index()?;
        let rebuild_ms = t.elapsed().as_secs_f64() * 1e3;
        if unreadable != 0 {
            bail!("{unreadable} records could not be read back");
        }
        Ok(json!({
            "finished": finished,
            "pending": PENDING,
            "fill_secs": (fill_secs * 10.0).round() / 10.0,
            "poll_ms_due_index": (indexed_ms * 1e3).round() / 1e3,
            "poll_ms_full_scan": (scan_ms * 1e3).round() / 1e3,
            "open_ms_indexed": (open_ms * 1e3).round() / 1e3,
            "open_ms_rebuilding": (rebuild_ms * 1e3).round() / 1e3,
        }))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    say!("{}", result?);
    Ok(ExitCode::SUCCESS)
}

pub(super) fn memory_parts(count: u64) -> anyhow::Result<ExitCode> {
    use crate::cache::{CacheConfig, CacheKey, Cached, MillisClock, ResponseCache};
    use crate::envelope::{MemoryNonceStore, NonceStore};
    let cfg = CacheConfig {
        max_entries: std::num::NonZeroU64::new(count).context("--count must be at least 1")?,
        ..CacheConfig::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let cache = ResponseCache::<std::convert::Infallible>::new(&cfg, MillisClock::system());
    // What a cold verification keeps: the local verdict, under the code's id.
    let body = json!({
        "verifyResult": "PASS",
        "codeColor": "00",
        "updateTime": "2026-11-23 10:00:00",
        "issuer": "10000099",
        "issuerRegion": "100000",
    });
    let far = crate::auth::now_unix() * 1000 + 3_600_000;
    let before = rss_kb()?;
    rt.block_on(async {
        for i in 0..count {
            let key = CacheKey::new(
                ServiceName::VerifyCode,
                "A3100010004",
                format!("request {i}").as_bytes(),
            );
            let subject = format!("cid:{i:032x}");
            let cached = Cached::new(&body, Some(subject.into()), Some(far));
            let _ = cache.get_or_fetch(key, async move { Ok(cached) }).await;
        }
    });
    let cached = rss_kb()?;
    let nonces = MemoryNonceStore::default();
    for i in 0..count {
        nonces.check_and_insert("A3100010004", &format!("{:032x}", i * 7919), 1_000_000);
    }
    let after = rss_kb()?;
    say!(
        "{}",
        json!({
            "count": count,
            "cache_entries": cache.stats().entries,
            "cache_bytes_per_entry": (cached.saturating_sub(before)) * 1024 / count,
            "nonce_bytes_each": (after.saturating_sub(cached)) * 1024 / count,
        })
    );
    Ok(ExitCode::SUCCESS)
}
