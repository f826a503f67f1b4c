//! `hutong bench` measurements of one component in this process, each beside its baseline
//! in the same run: the replay store's sweep (`nonce-sweep`), the callback outbox's poll
//! and open (`outbox-due`), and bytes per cache entry and per nonce (`memory-parts`); and
//! the envelope's cryptography alone (`envelope-crypto`) and its JSON and Base64 alone
//! (`envelope-json`), floors of a request's cost.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};

use crate::crypto::SM4_BLOCK_LEN;
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

/// The sizes an envelope's cryptography works on: its canonical string (what the tag
/// covers) and its `bizContent` (IV and SM4-CBC ciphertext).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EnvelopeSizes {
    signed: usize,
    ciphertext: usize,
}

/// The first line of `path`, a sealed envelope: its text, its fields, and its `bizContent`
/// decoded (IV and SM4-CBC ciphertext).
fn sealed_envelope(
    path: &std::path::Path,
) -> anyhow::Result<(String, serde_json::Map<String, Value>, Vec<u8>)> {
    use base64::Engine as _;
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let line = text.lines().next().unwrap_or_default().to_owned();
    let env: serde_json::Map<String, Value> = serde_json::from_str(&line)
        .with_context(|| format!("{}: the first line is not a JSON object", path.display()))?;
    let biz = env
        .get("bizContent")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("{}: no bizContent text", path.display()))?;
    let ciphertext = base64::engine::general_purpose::STANDARD
        .decode(biz)
        .with_context(|| format!("{}: bizContent is not base64 (not sealed?)", path.display()))?;
    if ciphertext.len() < 2 * SM4_BLOCK_LEN || ciphertext.len() % SM4_BLOCK_LEN != 0 {
        bail!("{}: bizContent is not SM4-CBC ciphertext", path.display());
    }
    Ok((line, env, ciphertext))
}

/// The sizes of the first line of `path`, a sealed envelope.
fn envelope_sizes(path: &std::path::Path) -> anyhow::Result<EnvelopeSizes> {
    let (_, env, ciphertext) = sealed_envelope(path)?;
    Ok(EnvelopeSizes {
        signed: crate::envelope::canonical_string(&env).len(),
        ciphertext: ciphertext.len(),
    })
}

/// `envelope-json`: per exchange, the envelopes' own encoding around their cryptography,
/// with the build's JSON and Base64 libraries: the request parsed as a JSON object and its
/// `bizContent` decoded, an answer of `answer`'s size with its `bizContent` encoded and
/// written out as JSON. With `relay`, also the other side, as a relay does it with a
/// region that speaks the national envelope: a request of that size written, an answer of
/// that size parsed. The business content's own JSON is not included. A text that does not
/// parse stops the timing.
pub(super) fn envelope_json(
    secs: f64,
    request: &std::path::Path,
    answer: &std::path::Path,
    relay: bool,
) -> anyhow::Result<ExitCode> {
    use base64::Engine as _;
    use std::hint::black_box;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (req_text, req_env, req_cipher) = sealed_envelope(request)?;
    let (ans_text, ans_env, ans_cipher) = sealed_envelope(answer)?;
    // A received envelope: its fields, and its ciphertext out of Base64.
    let open = |text: &str| -> bool {
        let Ok(env) = serde_json::from_str::<serde_json::Map<String, Value>>(black_box(text))
        else {
            return false;
        };
        let biz = env.get("bizContent").and_then(Value::as_str);
        black_box(biz.and_then(|b| b64.decode(b).ok())).is_some() && black_box(env).len() > 1
    };
    // An envelope sent: its fields (as the received one of its direction has them), the
    // ciphertext into Base64, the whole written out.
    let seal = |fields: &serde_json::Map<String, Value>, cipher: &[u8]| -> bool {
        let mut env = fields.clone();
        env.insert(
            "bizContent".into(),
            Value::String(b64.encode(black_box(cipher))),
        );
        serde_json::to_string(black_box(&env)).is_ok_and(|t| black_box(t).len() > 2)
    };
    let sides = if relay { 2 } else { 1 };
    let bytes = sides * (req_text.len() + ans_text.len());
    let mut report = super::bench::rate_on_every_core(secs, "exchanges", bytes, || {
        open(&req_text)
            && seal(&ans_env, &ans_cipher)
            && (!relay || (seal(&req_env, &req_cipher) && open(&ans_text)))
    })?;
    report["request_bytes"] = json!(req_text.len());
    report["answer_bytes"] = json!(ans_text.len());
    report["relay"] = json!(relay);
    say!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// `envelope-crypto`: per exchange, the request's HMAC-SM3 tag checked and its ciphertext
/// decrypted, the answer's plaintext encrypted and its tag made (without `macs`, the
/// decryption and encryption alone), with fresh random keys and texts of the two envelopes'
/// sizes (padding included). With `relay`, also the other side of the same exchange, as a
/// relay does it with the region: a request of that size sealed (encrypted and tagged) and
/// an answer of that size opened (tag checked, decrypted). A tag that does not check or a
/// decryption that fails stops the timing ([`super::bench::rate_on_every_core`]).
pub(super) fn envelope_crypto(
    secs: f64,
    request: &std::path::Path,
    answer: &std::path::Path,
    macs: bool,
    relay: bool,
) -> anyhow::Result<ExitCode> {
    use crate::crypto::{MacKey, Sm4Key, fill_random};
    let req = envelope_sizes(request)?;
    let ans = envelope_sizes(answer)?;
    let mac = MacKey::generate()?;
    let sm4 = Sm4Key::generate()?;
    let random = |n: usize| -> anyhow::Result<Vec<u8>> {
        let mut v = vec![0u8; n];
        fill_random(&mut v)?;
        Ok(v)
    };
    let req_signed = random(req.signed)?;
    let req_tag = mac.tag(&req_signed);
    // After the IV, PKCS#7 pads a text one byte short of whole blocks with one byte: the
    // output has exactly the envelope's length.
    let plain_len = |ciphertext: usize| ciphertext - SM4_BLOCK_LEN - 1;
    let req_plain = random(plain_len(req.ciphertext))?;
    let req_cipher = sm4.encrypt_cbc(&req_plain)?;
    let ans_signed = random(ans.signed)?;
    let ans_tag = mac.tag(&ans_signed);
    let ans_plain = random(plain_len(ans.ciphertext))?;
    let ans_cipher = sm4.encrypt_cbc(&ans_plain)?;
    if req_cipher.len() != req.ciphertext || ans_cipher.len() != ans.ciphertext {
        bail!("the test texts do not have the envelopes' sizes");
    }
    let sides = if relay { 2 } else { 1 };
    let bytes =
        sides * (req.ciphertext + ans.ciphertext + if macs { req.signed + ans.signed } else { 0 });
    // One side: a request of `signed`/`cipher`'s sizes opened and an answer sealed; every
    // output goes through black_box, so no part of the work can be left out.
    let side = |signed: &[u8], tag: &[u8], cipher: &[u8], plain: &[u8], seal_signed: &[u8]| {
        use std::hint::black_box;
        let opened = (!macs || mac.verify(black_box(signed), tag))
            && black_box(sm4.decrypt_cbc(black_box(cipher))).is_ok();
        let sealed = black_box(sm4.encrypt_cbc(black_box(plain))).is_ok();
        if macs {
            black_box(mac.tag(black_box(seal_signed)));
        }
        opened && sealed
    };
    let mut report = super::bench::rate_on_every_core(secs, "exchanges", bytes, || {
        side(&req_signed, &req_tag, &req_cipher, &ans_plain, &ans_signed)
            && (!relay || side(&ans_signed, &ans_tag, &ans_cipher, &req_plain, &req_signed))
    })?;
    report["request"] = json!({"signed_bytes": req.signed, "ciphertext_bytes": req.ciphertext});
    report["answer"] = json!({"signed_bytes": ans.signed, "ciphertext_bytes": ans.ciphertext});
    report["macs"] = json!(macs);
    report["relay"] = json!(relay);
    say!("{report}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{MacKey, Sm4Key};
    use crate::envelope::{
        RequestEncryption, RequestHeader, RequestSigner, canonical_string, random_id, seal_request,
    };

    /// A fresh directory of this test's own.
    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("hutong-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn sealed(dir: &std::path::Path, biz: &Value) -> (std::path::PathBuf, String) {
        let nonce = random_id().unwrap();
        let header = RequestHeader {
            app_id: "A3300010001",
            service: "verifyCode",
            version: "1.0",
            request_id: "r-1",
            nonce: &nonce,
            timestamp_ms: 1_700_000_000_000,
        };
        let s = seal_request(
            &header,
            biz,
            RequestSigner::HmacSm3(&MacKey::generate().unwrap()),
            RequestEncryption::RegisteredKey(&Sm4Key::generate().unwrap()),
        )
        .unwrap();
        let path = dir.join("request.json");
        std::fs::write(&path, format!("{}\nsecond line\n", s.body)).unwrap();
        (path, s.body)
    }

    #[test]
    fn envelope_sizes_are_the_signed_text_and_the_ciphertext_of_the_first_line() {
        let dir = temp_dir("sizes");
        // 44 bytes of JSON: SM4-CBC pads them to 48, after a 16-byte IV.
        let (path, body) = sealed(
            dir.as_path(),
            &json!({"codeContent": "0123456789abcdefghijklmnop"}),
        );
        let env: serde_json::Map<String, Value> = serde_json::from_str(&body).unwrap();
        let sizes = envelope_sizes(&path).unwrap();
        assert_eq!(sizes.ciphertext, 64);
        assert_eq!(sizes.signed, canonical_string(&env).len());
        assert!(sizes.signed > 100, "{sizes:?}");
    }

    #[test]
    fn envelope_sizes_refuse_what_is_not_a_sealed_envelope() {
        let dir = temp_dir("refuse");
        let plain = dir.as_path().join("plain.json");
        std::fs::write(&plain, r#"{"bizContent": "{\"a\":1}"}"#).unwrap();
        let e = envelope_sizes(&plain).unwrap_err();
        assert!(format!("{e:#}").contains("not base64"), "{e:#}");
        let short = dir.as_path().join("short.json");
        std::fs::write(&short, r#"{"bizContent": "AAAA"}"#).unwrap();
        let e = envelope_sizes(&short).unwrap_err();
        assert!(format!("{e:#}").contains("not SM4-CBC"), "{e:#}");
        let none = dir.as_path().join("none.json");
        std::fs::write(&none, "[1]").unwrap();
        assert!(envelope_sizes(&none).is_err());
    }

    #[test]
    fn envelope_crypto_times_the_exchange() {
        let dir = temp_dir("crypto");
        let (path, _) = sealed(dir.as_path(), &json!({"codeContent": "x"}));
        for (macs, relay) in [(true, false), (false, false), (true, true)] {
            assert_eq!(
                envelope_crypto(0.05, &path, &path, macs, relay).unwrap(),
                ExitCode::SUCCESS
            );
        }
        assert!(envelope_crypto(0.0, &path, &path, true, false).is_err());
    }

    #[test]
    fn envelope_json_times_the_envelopes_and_refuses_what_is_not_one() {
        let dir = temp_dir("json");
        let (path, _) = sealed(dir.as_path(), &json!({"codeContent": "x"}));
        for relay in [false, true] {
            assert_eq!(
                envelope_json(0.05, &path, &path, relay).unwrap(),
                ExitCode::SUCCESS
            );
        }
        let plain = dir.as_path().join("plain.json");
        std::fs::write(&plain, r#"{"bizContent": "{\"a\":1}"}"#).unwrap();
        assert!(envelope_json(0.05, &path, &plain, true).is_err());
        assert!(envelope_json(0.0, &path, &path, false).is_err());
    }

    #[test]
    fn a_timing_reports_the_cpu_its_threads_took() {
        let r = super::super::bench::rate_on_every_core(0.05, "runs", 0, || {
            std::hint::black_box((0..1000u64).sum::<u64>()) > 0
        })
        .unwrap();
        if std::path::Path::new("/proc/thread-self/schedstat").exists() {
            let cpu = r["cpu_seconds"].as_f64().expect("cpu_seconds");
            assert!(cpu > 0.0 && cpu < 1.0, "{r}");
            assert!(r["per_cpu_second"].as_f64().unwrap() > 0.0, "{r}");
        } else {
            // Without the scheduler's statistics, no CPU figure rather than a wrong one.
            assert!(
                r.get("cpu_seconds").is_none() && r.get("per_cpu_second").is_none(),
                "{r}"
            );
        }
        // A run that fails stops the timing: nothing is reported for work not done.
        assert!(super::super::bench::rate_on_every_core(0.05, "runs", 0, || false).is_err());
    }
}
