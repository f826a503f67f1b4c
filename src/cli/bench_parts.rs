//! `hutong bench` measurements of one component in this process, each beside its baseline
//! in the same run: the replay store's sweep (`nonce-sweep`), the callback outbox's poll
//! and open (`outbox-due`), and bytes per cache entry and per nonce (`memory-parts`); and
//! the envelope's cryptography alone (`envelope-crypto`), its JSON and Base64 alone
//! (`envelope-json`) and the business content's parsing and validation (`business-json`),
//! floors of a request's cost.

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

pub(super) fn nonce_save(count: usize) -> anyhow::Result<ExitCode> {
    use crate::crypto::DigestKey;
    use crate::envelope::{MemoryNonceStore, NonceCheck, NonceStore, NonceStoreConfig};
    if count == 0 {
        bail!("--count must be at least 1");
    }
    const NOW: u64 = 1_800_000_000_000;
    let config = NonceStoreConfig {
        // Room for the checks beside the save, and as many alone.
        max_entries: count + 4_100_000,
        max_entries_per_app: count + 4_100_000,
        ..NonceStoreConfig::default()
    };
    let key = DigestKey::derived(b"hutong bench nonce-save", b"not a secret");
    let dir = std::env::temp_dir().join(format!("hutong-bench-nonces-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("nonces.bin");
    let result = (|| -> anyhow::Result<Value> {
        let store = MemoryNonceStore::with_key(config.clone(), key);
        for i in 0..count {
            store.check_and_insert("A3100010004", &format!("{:032x}", i * 7919), NOW);
        }
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        // Nonce checks, timed one by one (the nonce made before the clock starts), until
        // `running` says stop or `most` were made.
        let checks = |tag: &str, running: &std::sync::atomic::AtomicBool, most: usize| {
            let mut times = Vec::new();
            let mut i = 0;
            while running.load(std::sync::atomic::Ordering::Acquire) && i < most {
                let nonce = format!("{tag} {i}");
                let t = Instant::now();
                let seen = store.check_and_insert("A3100010004", &nonce, NOW);
                times.push(t.elapsed());
                assert_eq!(seen, NonceCheck::Fresh);
                i += 1;
            }
            times.sort_unstable();
            times
        };
        let summary = |times: &[Duration]| {
            if times.is_empty() {
                return json!({"checks": 0});
            }
            json!({
                "checks": times.len(),
                "p99_ms": ms(times[times.len() * 99 / 100]),
                "slowest_ms": ms(times[times.len() - 1]),
            })
        };
        // Checks for as long as the save runs (up to 2,000,000), then as many alone.
        let running = std::sync::atomic::AtomicBool::new(true);
        let (saved, save_time, during) = std::thread::scope(|s| {
            let checker = s.spawn(|| checks("during", &running, 2_000_000));
            let t = Instant::now();
            let saved = store.save(&path, NOW);
            let took = t.elapsed();
            running.store(false, std::sync::atomic::Ordering::Release);
            (saved, took, checker.join())
        });
        let saved = saved?;
        let during = during.map_err(|_| anyhow!("the checking thread failed"))?;
        let alone = checks(
            "alone",
            &std::sync::atomic::AtomicBool::new(true),
            during.len().max(20_000),
        );
        let bytes = std::fs::metadata(&path)?.len();
        let next = MemoryNonceStore::with_key(config.clone(), key);
        let t = Instant::now();
        let found = next.load(&path, NOW)?;
        let load_time = t.elapsed();
        if found.loaded != saved {
            bail!("saved {saved} nonces but loaded {}", found.loaded);
        }
        Ok(json!({
            "nonces": saved,
            "file_bytes": bytes,
            "save_ms": ms(save_time),
            "load_ms": ms(load_time),
            "checks_during_save": summary(&during),
            "checks_alone": summary(&alone),
        }))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    say!("{}", result?);
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

/// The other side of a relayed request, as the gateway does it with a region that speaks
/// the national envelope: its request to the region (sealed) and the region's answer
/// (opened), each a sealed envelope on the first line of its file.
#[derive(Debug, Clone, Copy)]
pub(super) struct RegionSide<'a> {
    pub request: &'a std::path::Path,
    pub answer: &'a std::path::Path,
}

/// An envelope's text split around its `bizContent` value, and that value decoded.
struct Template {
    text: String,
    before: String,
    after: String,
    ciphertext: Vec<u8>,
}

impl Template {
    fn read(path: &std::path::Path) -> anyhow::Result<Self> {
        let (text, env, ciphertext) = sealed_envelope(path)?;
        let biz = env
            .get("bizContent")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let at = text
            .find(&format!("\"{biz}\""))
            .ok_or_else(|| anyhow!("{}: bizContent is not written plainly", path.display()))?;
        let t = Self {
            before: text[..=at].to_owned(),
            after: text[at + biz.len() + 1..].to_owned(),
            text,
            ciphertext,
        };
        // Sealing the same ciphertext again writes the same envelope: the join is the
        // envelope's own text, not a shorter one.
        use base64::Engine as _;
        let again = base64::engine::general_purpose::STANDARD.encode(&t.ciphertext);
        if format!("{}{again}{}", t.before, t.after) != t.text {
            bail!(
                "{}: the envelope's text does not join again",
                path.display()
            );
        }
        Ok(t)
    }
}

/// `envelope-json`: per exchange, the least JSON and Base64 work of the envelopes around
/// their cryptography: the request parsed (its fields borrowed in a sorted map: no copies,
/// no hashing) and its `bizContent` decoded, and the answer's
/// `bizContent` encoded and joined with the answer's other fields as text (no escaping).
/// The gateway's own parser and writer do more (validation, the canonical string, the
/// envelope's fields written one by one); the business content's JSON is not included.
/// With `region`, the gateway's exchange with the region as well: its request written, the
/// region's answer parsed. A text that does not parse stops the timing.
pub(super) fn envelope_json(
    secs: f64,
    request: &std::path::Path,
    answer: &std::path::Path,
    region: Option<RegionSide<'_>>,
) -> anyhow::Result<ExitCode> {
    use base64::Engine as _;
    use std::hint::black_box;
    let b64 = base64::engine::general_purpose::STANDARD;
    let req = Template::read(request)?;
    let ans = Template::read(answer)?;
    let other = match region {
        Some(r) => Some((Template::read(r.request)?, Template::read(r.answer)?)),
        None => None,
    };
    // (Borrowed text needs values without escapes, as the envelope's are: a value with one
    // does not parse here, and stops the timing.)
    let open = |text: &str| -> bool {
        let Ok(fields) =
            serde_json::from_str::<std::collections::BTreeMap<&str, &str>>(black_box(text))
        else {
            return false;
        };
        let biz = fields.get("bizContent");
        black_box(biz.and_then(|b| b64.decode(b).ok())).is_some()
    };
    let seal = |t: &Template| -> bool {
        let biz = b64.encode(black_box(&t.ciphertext));
        let mut out = String::with_capacity(t.before.len() + biz.len() + t.after.len());
        out.push_str(&t.before);
        out.push_str(&biz);
        out.push_str(&t.after);
        black_box(out).len() > biz.len()
    };
    let mut bytes = req.text.len() + ans.text.len();
    if let Some((r, a)) = &other {
        bytes += r.text.len() + a.text.len();
    }
    let mut report = super::bench::rate_on_every_core(secs, "exchanges", bytes, || {
        open(&req.text)
            && seal(&ans)
            && other.as_ref().is_none_or(|(r, a)| seal(r) && open(&a.text))
    })?;
    report["request_bytes"] = json!(req.text.len());
    report["answer_bytes"] = json!(ans.text.len());
    if let Some((r, a)) = &other {
        report["region"] = json!({"request_bytes": r.text.len(), "answer_bytes": a.text.len()});
    }
    say!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// Random texts of an envelope's sizes, and its tag: what opening or sealing it works on.
struct Texts {
    sizes: EnvelopeSizes,
    signed: Vec<u8>,
    tag: [u8; 32],
    plain: Vec<u8>,
    cipher: Vec<u8>,
}

impl Texts {
    fn new(
        path: &std::path::Path,
        mac: &crate::crypto::MacKey,
        sm4: &crate::crypto::Sm4Key,
    ) -> anyhow::Result<Self> {
        let sizes = envelope_sizes(path)?;
        let random = |n: usize| -> anyhow::Result<Vec<u8>> {
            let mut v = vec![0u8; n];
            crate::crypto::fill_random(&mut v)?;
            Ok(v)
        };
        let signed = random(sizes.signed)?;
        // After the IV, PKCS#7 pads a text one byte short of whole blocks with one byte:
        // the output has exactly the envelope's length.
        let plain = random(sizes.ciphertext - SM4_BLOCK_LEN - 1)?;
        let cipher = sm4.encrypt_cbc(&plain)?;
        if cipher.len() != sizes.ciphertext {
            bail!("the test texts do not have the envelope's sizes");
        }
        Ok(Self {
            tag: mac.tag(&signed),
            sizes,
            signed,
            plain,
            cipher,
        })
    }

    fn bytes(&self, macs: bool) -> usize {
        self.sizes.ciphertext + if macs { self.sizes.signed } else { 0 }
    }
}

/// `envelope-crypto`: per exchange, the request's HMAC-SM3 tag checked and its ciphertext
/// decrypted, the answer's plaintext encrypted and its tag made (without `macs`, the
/// decryption and encryption alone), with fresh random keys and texts of the two envelopes'
/// sizes (padding included). With `region`, the gateway's exchange with the region as
/// well: its request sealed (encrypted and tagged), the region's answer opened (tag checked,
/// decrypted). A tag that does not check or a decryption that fails stops the timing
/// ([`super::bench::rate_on_every_core`]).
pub(super) fn envelope_crypto(
    secs: f64,
    request: &std::path::Path,
    answer: &std::path::Path,
    macs: bool,
    region: Option<RegionSide<'_>>,
) -> anyhow::Result<ExitCode> {
    use crate::crypto::{MacKey, Sm4Key};
    use std::hint::black_box;
    let mac = MacKey::generate()?;
    let sm4 = Sm4Key::generate()?;
    let req = Texts::new(request, &mac, &sm4)?;
    let ans = Texts::new(answer, &mac, &sm4)?;
    let other = match region {
        Some(r) => Some((
            Texts::new(r.request, &mac, &sm4)?,
            Texts::new(r.answer, &mac, &sm4)?,
        )),
        None => None,
    };
    // Every output goes through black_box, so no part of the work can be left out.
    let open = |t: &Texts| {
        (!macs || mac.verify(black_box(&t.signed), &t.tag))
            && black_box(sm4.decrypt_cbc(black_box(&t.cipher))).is_ok()
    };
    let seal = |t: &Texts| {
        let sealed = black_box(sm4.encrypt_cbc(black_box(&t.plain))).is_ok();
        if macs {
            black_box(mac.tag(black_box(&t.signed)));
        }
        sealed
    };
    let mut bytes = req.bytes(macs) + ans.bytes(macs);
    if let Some((r, a)) = &other {
        bytes += r.bytes(macs) + a.bytes(macs);
    }
    let mut report = super::bench::rate_on_every_core(secs, "exchanges", bytes, || {
        open(&req) && seal(&ans) && other.as_ref().is_none_or(|(r, a)| seal(r) && open(a))
    })?;
    let sizes =
        |t: &Texts| json!({"signed_bytes": t.sizes.signed, "ciphertext_bytes": t.sizes.ciphertext});
    report["request"] = sizes(&req);
    report["answer"] = sizes(&ans);
    if let Some((r, a)) = &other {
        report["region"] = json!({"request": sizes(r), "answer": sizes(a)});
    }
    report["macs"] = json!(macs);
    say!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// `hutong bench business-json`: the least the gateway must do with a call's business
/// content, one thread per core: the request's parsed and validated against the standard
/// (the gateway issue asks it of every request), and the answer's parsed and validated (how
/// the gateway tells a region's garbage, 9002, from an answer). No routing, masking or
/// writing. Prints the rate as JSON; a request or answer that does not validate stops it.
pub(super) fn business_json(
    standard: &crate::standard::Standard,
    secs: f64,
    service: ServiceName,
    request: &std::path::Path,
    answer: &std::path::Path,
    at: Option<i64>,
) -> anyhow::Result<ExitCode> {
    use crate::national::validate::{Context, validate_value};
    use crate::standard::Direction;
    use std::hint::black_box;
    let read =
        |p: &std::path::Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let (req, ans) = (read(request)?, read(answer)?);
    let cx = at.map_or_else(Context::now, |now_unix| Context { now_unix });
    let check = |text: &[u8], dir: Direction| -> Result<(), String> {
        let value: Value = serde_json::from_slice(black_box(text)).map_err(|e| e.to_string())?;
        let report = validate_value(standard, service, dir, &value, &cx);
        if report.is_valid() {
            Ok(())
        } else {
            Err(format!("{report:?}"))
        }
    };
    check(&req, Direction::Request)
        .map_err(|e| anyhow!("{} is not a valid request: {e}", request.display()))?;
    check(&ans, Direction::Response)
        .map_err(|e| anyhow!("{} is not a valid answer: {e}", answer.display()))?;
    let mut report =
        super::bench::rate_on_every_core(secs, "exchanges", req.len() + ans.len(), || {
            check(&req, Direction::Request).is_ok() && check(&ans, Direction::Response).is_ok()
        })?;
    report["request_bytes"] = json!(req.len());
    report["answer_bytes"] = json!(ans.len());
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
        let d = crate::testutil::fresh_dir(&format!("bench-{tag}"));
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
        let region = RegionSide {
            request: &path,
            answer: &path,
        };
        for (macs, region) in [(true, None), (false, None), (true, Some(region))] {
            assert_eq!(
                envelope_crypto(0.05, &path, &path, macs, region).unwrap(),
                ExitCode::SUCCESS
            );
        }
        assert!(envelope_crypto(0.0, &path, &path, true, None).is_err());
    }

    #[test]
    fn envelope_json_times_the_envelopes_and_refuses_what_is_not_one() {
        let dir = temp_dir("json");
        let (path, _) = sealed(dir.as_path(), &json!({"codeContent": "x"}));
        let region = RegionSide {
            request: &path,
            answer: &path,
        };
        for region in [None, Some(region)] {
            assert_eq!(
                envelope_json(0.05, &path, &path, region).unwrap(),
                ExitCode::SUCCESS
            );
        }
        let plain = dir.as_path().join("plain.json");
        std::fs::write(&plain, r#"{"bizContent": "{\"a\":1}"}"#).unwrap();
        let to_plain = RegionSide {
            request: &path,
            answer: &plain,
        };
        assert!(envelope_json(0.05, &path, &plain, None).is_err());
        assert!(envelope_json(0.05, &path, &path, Some(to_plain)).is_err());
        assert!(envelope_json(0.0, &path, &path, None).is_err());
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
