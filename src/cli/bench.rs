//! `hutong bench …` (hidden): the in-process parts of `benches/bench.sh`. The script starts
//! the gateway, the simulators and the baselines and drives them with `wrk`; these commands
//! make what it sends and time what only this build can time:
//!
//! - `sm2-verify`: raw SM2 verifications per second of this build, on one thread per core,
//!   with an issuer key as the gateway holds one (with its precomputed table): the baseline
//!   of the cold verify scenario;
//! - `codes`: verifyCode bodies, one per line, each with a fresh PHIC1 code (unique tokens);
//! - `dialect-request`: one request in a region's dialect, signed as the gateway signs it,
//!   for a baseline that calls the region's simulator directly;
//! - `memory-parts`, `nonce-sweep`, `nonce-save`, `outbox-due`: one component timed or weighed in this
//!   process beside its baseline ([`super::bench_parts`]);
//! - `envelope-crypto`: the SM3 and SM4 work of one HMAC-SM3 exchange per second, at a
//!   real request's and answer's sizes: the floor under scenario (b)'s cost per request
//!   (with `--region-request` and `--region-answer`, a relay's exchange with the region too);
//! - `envelope-json`: the least JSON and Base64 of the same envelopes, the floor's other
//!   part;
//! - `business-json`: a call's business content parsed and validated both ways, the least
//!   the gateway does with it;
//! - `chart`: the run's summary as an SVG picture, each scenario against its target
//!   ([`super::bench_chart`]);
//! - `audit-append`: the CPU an audit record costs, appended and committed by the
//!   gateway's own writer ([`super::bench_audit`]);
//! - `relay-floor`: a relay over TLS with the gateway's libraries and nothing of the
//!   standard, the floor of its stack beside nginx ([`super::bench_floor`]);
//! - `fill-links`: synthetic links, loaded in bulk into a gateway's data directory (the
//!   memory scenario's registry of a million links).

use std::io::Write as _;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};

use crate::audit::Pseudonym;
use crate::code::{self, Claims, CodeId, CodeUrl, Colour, IssuerKey};
use crate::crypto::SigningKey;
use crate::link::{Holder, RedbLinks, RegionLink, Source};
use crate::standard::{ServiceName, Standard};
use crate::trust::{IssuerId, Kid};
use crate::upstream::{DialectCredentials, sign_request};

/// `hutong bench …`.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCmd {
    /// Time SM2 verifications of one PHIC1 token's signature for SECS seconds, one thread
    /// per core, and print the rate as JSON.
    Sm2Verify {
        /// How long to time, seconds.
        #[arg(long, default_value_t = 3.0)]
        secs: f64,
    },
    /// Print COUNT verifyCode bodies, one per line, each with a freshly issued PHIC1 code
    /// in its URL form.
    Codes {
        /// The issuer's private key (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// Issuer id (8 digits).
        #[arg(long)]
        iss: String,
        /// The key's id in the trust list.
        #[arg(long)]
        kid: String,
        /// How many bodies.
        #[arg(long)]
        count: usize,
        /// Lifetime of each code, seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
    /// Print one request in a dialect's wire form, signed with a fresh stamp as the gateway
    /// signs it, as JSON: `{method, path, headers, body}` (body as text).
    DialectRequest {
        /// The dialect directory.
        #[arg(long, default_value = "config/regions", value_name = "DIR")]
        regions: PathBuf,
        /// The dialect id (file stem).
        #[arg(long)]
        dialect: String,
        /// The national service.
        #[arg(long)]
        service: ServiceName,
        /// The caller's id at the region (appKey).
        #[arg(long)]
        id: String,
        /// The caller's HMAC key, hex, where the scheme has one.
        #[arg(long, default_value = "")]
        key_hex: String,
        /// The caller's shared secret.
        #[arg(long, default_value = "")]
        secret: String,
        /// The national business content (JSON), or - for standard input.
        #[arg(long)]
        body: String,
    },
    /// Measure the memory of the gateway's in-memory state per item: COUNT cache entries
    /// shaped like a cold verification's answer, and COUNT nonces; print bytes per item.
    MemoryParts {
        /// How many of each.
        #[arg(long, default_value_t = 100_000)]
        count: u64,
    },
    /// Time the envelopes' own JSON and Base64 of one exchange, at the sizes of a real
    /// request and answer, one thread per core: the request parsed and its `bizContent`
    /// decoded, the answer's encoded and the answer written (with the build's libraries; the
    /// business content's JSON left out). Like `envelope-crypto`, a floor under the cost of
    /// a request. Prints the rate as JSON.
    EnvelopeJson {
        #[command(flatten)]
        envelopes: EnvelopeArgs,
    },
    /// Time the least the gateway does with one call's business content, one thread per
    /// core: the request (JSON) parsed and validated against the standard, and the answer
    /// parsed and validated. Prints the rate as JSON.
    BusinessJson {
        /// The national service.
        #[arg(long)]
        service: ServiceName,
        /// The request's business content (JSON).
        #[arg(long)]
        request: PathBuf,
        /// The answer's business content (JSON).
        #[arg(long)]
        answer: PathBuf,
        /// How long to time, seconds.
        #[arg(long, default_value_t = 3.0)]
        secs: f64,
        /// The validation clock (as `hutong validate --at`): Unix seconds, `yyyy-MM-dd
        /// HH:mm:ss` or `yyyy-MM-dd`, Beijing time. Default: now.
        #[arg(long, value_parser = super::parse_at, value_name = "TIME")]
        at: Option<i64>,
    },
    /// Time the cryptography an HMAC-SM3 envelope exchange cannot do without, at the sizes
    /// of a real request and answer, one thread per core: the request's tag checked and its
    /// `bizContent` decrypted, the answer's `bizContent` encrypted and its tag made (SM3 and
    /// SM4-CBC, nothing else: no JSON, no TLS, no HTTP). Prints the rate as JSON.
    EnvelopeCrypto {
        #[command(flatten)]
        envelopes: EnvelopeArgs,
        /// Time SM4 alone: for the `SM2` sign type, whose signatures are timed apart.
        #[arg(long)]
        sm4_only: bool,
    },
    /// Time the nonce store's sweep: fill a store with COUNT nonces, let them expire, and
    /// time each of the next requests, with one shard (the earlier design) and with the
    /// default shards; print the slowest call and the whole sweep of each as JSON.
    NonceSweep {
        /// How many nonces to fill the store with.
        #[arg(long, default_value_t = 2_000_000)]
        count: usize,
    },
    /// Time the replay store's save and load across a restart: fill a store with COUNT
    /// nonces, save it to a file, load it into a new store; and time requests' nonce checks
    /// while a save runs beside the same checks without one (the save holds each shard's
    /// lock while it copies it). Print the times as JSON.
    NonceSave {
        /// How many nonces to fill the store with.
        #[arg(long, default_value_t = 2_000_000)]
        count: usize,
    },
    /// Time the callback delivery task's poll: an outbox with FINISHED delivered callbacks
    /// and a few pending, asked for what is due through the due index, beside a full scan
    /// of the outbox (what the poll did before the index), and the outbox's open on that
    /// store beside a rebuild of its indexes (what every start did before the store kept
    /// their version), in one run; print the times as JSON.
    OutboxDue {
        /// Delivered callbacks in the outbox (they are kept for the audit period). Each is
        /// written in its own transaction, as the delivery task writes them: 100,000 take
        /// about half a minute.
        #[arg(long, default_value_t = 20_000)]
        finished: usize,
    },
    /// Draw a run's summary (a tab-separated file that benches/bench.sh writes) as an SVG
    /// chart: each scenario's figure as a fraction of its target.
    Chart {
        /// The summary file.
        #[arg(long)]
        summary: PathBuf,
        /// The chart's title.
        #[arg(long, default_value = "hutong benchmark")]
        title: String,
        /// Where to write the SVG; its directory is made if missing.
        #[arg(long)]
        out: PathBuf,
    },
    /// Time audit records shaped like a relayed queryHealthInfo's, appended through the
    /// gateway's `interval` writer over a fresh store as fast as they go, until every one is
    /// committed; print as JSON the records committed per CPU second of the whole process
    /// (`per_cpu_second`): a floor under what the audit trail costs a request.
    AuditAppend {
        /// How long to append, seconds.
        #[arg(long, default_value_t = 3.0)]
        secs: f64,
        /// The journal's commit interval, ms (config/hutong.toml's `sync_interval_ms`).
        #[arg(long, default_value_t = crate::audit::DEFAULT_SYNC_INTERVAL_MS)]
        interval_ms: u64,
        /// Where the store's temporary directory goes (removed at the end): the gateway's
        /// data directory's file system. Default: the system's temporary directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Relay over TLS to one upstream with the gateway's libraries and nothing of the
    /// standard (no envelope, checks, cache or audit): the floor of the gateway's stack,
    /// beside nginx's proxy_pass in scenario (c0). Serves until killed; loopback only.
    RelayFloor {
        /// Where to listen (port 0: any free port, printed on start).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// The server certificate chain (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// Its private key (PEM).
        #[arg(long)]
        key: PathBuf,
        /// The upstream, http://HOST:PORT (no path); each request goes to its own path
        /// there.
        #[arg(long)]
        upstream: String,
    },
    /// Load COUNT synthetic links (three regions each) into the link registry of the
    /// gateway configured by CONFIG, in batches. The gateway must not be running.
    FillLinks {
        /// The gateway's configuration.
        #[arg(long)]
        config: PathBuf,
        /// How many persons to link.
        #[arg(long)]
        count: usize,
    },
}

pub(super) fn run(standard: &Standard, c: &BenchCmd) -> anyhow::Result<ExitCode> {
    match c {
        BenchCmd::Sm2Verify { secs } => sm2_verify(*secs),
        BenchCmd::Codes {
            key,
            iss,
            kid,
            count,
            ttl,
        } => codes(key, iss, kid, *count, *ttl),
        BenchCmd::DialectRequest {
            regions,
            dialect,
            service,
            id,
            key_hex,
            secret,
            body,
        } => {
            let d = &crate::sim::region::load_dialect(regions, dialect, standard)
                .map_err(|e| anyhow!("{e}"))?;
            let map = d
                .service(*service)
                .ok_or_else(|| anyhow!("{dialect} does not offer {}", service.as_str()))?;
            let raw = super::read_input(body, crate::national::validate::MAX_MESSAGE_BYTES)?;
            let national: Value = serde_json::from_slice(&raw).context("the body is not JSON")?;
            let msg = crate::translate::to_dialect(
                d,
                *service,
                crate::standard::Direction::Request,
                &national,
            )?;
            let credentials = DialectCredentials {
                id: id.clone(),
                key: zeroize::Zeroizing::new(crate::crypto::decode_hex(key_hex, "key")?.to_vec()),
                secret: zeroize::Zeroizing::new(secret.clone()),
            };
            let (headers, wire) = sign_request(d, &credentials, &msg.body)?;
            say!(
                "{}",
                json!({
                    "method": map.method,
                    "path": map.path,
                    "headers": headers.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<serde_json::Map<_, _>>(),
                    "body": String::from_utf8(wire).context("the wire form is not text")?,
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        BenchCmd::NonceSweep { count } => super::bench_parts::nonce_sweep(*count),
        BenchCmd::NonceSave { count } => super::bench_parts::nonce_save(*count),
        BenchCmd::OutboxDue { finished } => super::bench_parts::outbox_due(*finished),
        BenchCmd::Chart {
            summary,
            title,
            out,
        } => chart(summary, title, out),
        BenchCmd::FillLinks { config, count } => fill_links(config, *count),
        BenchCmd::BusinessJson {
            service,
            request,
            answer,
            secs,
            at,
        } => super::bench_parts::business_json(standard, *secs, *service, request, answer, *at),
        BenchCmd::AuditAppend {
            secs,
            interval_ms,
            dir,
        } => super::bench_audit::audit_append(*secs, *interval_ms, dir.as_deref()),
        BenchCmd::RelayFloor {
            listen,
            cert,
            key,
            upstream,
        } => super::bench_floor::relay_floor(*listen, cert, key, upstream),
        BenchCmd::MemoryParts { count } => super::bench_parts::memory_parts(*count),
        BenchCmd::EnvelopeCrypto {
            envelopes: e,
            sm4_only,
        } => super::bench_parts::envelope_crypto(
            e.secs,
            &e.request,
            &e.answer,
            !sm4_only,
            e.region(),
        ),
        BenchCmd::EnvelopeJson { envelopes: e } => {
            super::bench_parts::envelope_json(e.secs, &e.request, &e.answer, e.region())
        }
    }
}

/// The envelopes `envelope-crypto` and `envelope-json` work at the sizes of.
#[derive(Debug, Clone, clap::Args)]
pub struct EnvelopeArgs {
    /// How long to time, seconds.
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// A sealed request envelope (JSON; the first line of the file).
    #[arg(long)]
    request: PathBuf,
    /// A sealed answer envelope (JSON).
    #[arg(long)]
    answer: PathBuf,
    /// Also the gateway's exchange with a region that speaks the national envelope: a
    /// sealed request of the gateway to the region (JSON; the first line of the file)…
    #[arg(long, requires = "region_answer")]
    region_request: Option<PathBuf>,
    /// …and the region's sealed answer to it.
    #[arg(long, requires = "region_request")]
    region_answer: Option<PathBuf>,
}

impl EnvelopeArgs {
    fn region(&self) -> Option<super::bench_parts::RegionSide<'_>> {
        Some(super::bench_parts::RegionSide {
            request: self.region_request.as_deref()?,
            answer: self.region_answer.as_deref()?,
        })
    }
}

fn chart(summary: &Path, title: &str, out: &Path) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(summary)
        .with_context(|| format!("reading {}", summary.display()))?;
    let bars =
        super::bench_chart::parse(&text).with_context(|| format!("in {}", summary.display()))?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(out, super::bench_chart::render(title, &bars))
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Writes `n` lines to standard output, line `i` made by `line(i)`, on every core: for the
/// request files of a load generator. Each thread writes its lines in locked batches, so
/// lines of two threads never mix; their order across threads is not kept. A line that
/// spans lines is an error.
pub(super) fn lines_on_every_core(
    n: usize,
    line: impl Fn(usize) -> anyhow::Result<String> + Sync,
) -> anyhow::Result<()> {
    const FLUSH_BYTES: usize = 1 << 20;
    let threads = cores().clamp(1, n.max(1));
    let line = &line;
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let share = n / threads + usize::from(t < n % threads);
                s.spawn(move || -> anyhow::Result<()> {
                    let mut buf = String::with_capacity(FLUSH_BYTES + 4096);
                    for i in 0..share {
                        let text = line(i * threads + t)?;
                        if text.contains('\n') {
                            bail!("a line to write spans lines");
                        }
                        buf.push_str(&text);
                        buf.push('\n');
                        if buf.len() >= FLUSH_BYTES || i + 1 == share {
                            std::io::stdout()
                                .lock()
                                .write_all(buf.as_bytes())
                                .context("cannot write to standard output")?;
                            buf.clear();
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow!("a writing thread panicked"))??;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    std::io::stdout().lock().flush()?;
    Ok(())
}

/// Runs `op` on one thread per core until `secs` have passed, and reports the rate as JSON:
/// `threads`, `seconds`, `message_bytes`, the count of successful runs under `count_key`,
/// `per_second` and `per_second_per_thread`; and, where Linux's scheduler statistics are
/// there, the CPU time the threads took (`cpu_seconds`) and the runs per second of it
/// (`per_cpu_second`): the cost of one run whether or not the threads had their cores to
/// themselves. A failed run stops its thread and counts nothing for it: a baseline that
/// skips work is no baseline.
pub(super) fn rate_on_every_core(
    secs: f64,
    count_key: &str,
    message_bytes: usize,
    op: impl Fn() -> bool + Sync,
) -> anyhow::Result<Value> {
    if !(secs.is_finite() && secs > 0.0 && secs <= 600.0) {
        bail!("the timing must last more than 0 and at most 600 seconds");
    }
    let threads = cores();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let op = &op;
    let counts: Vec<Option<(u64, Option<u64>)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(move || {
                    let cpu0 = thread_cpu_ns();
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        if !op() {
                            return None;
                        }
                        n += 1;
                    }
                    let cpu = cpu0.zip(thread_cpu_ns()).map(|(a, b)| b.saturating_sub(a));
                    Some((n, cpu))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().ok().flatten())
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let Some(counts): Option<Vec<(u64, Option<u64>)>> = counts.into_iter().collect() else {
        bail!("the timed operation failed or did no work");
    };
    let n: u64 = counts.iter().map(|(n, _)| n).sum();
    if n == 0 {
        bail!("the timed operation failed or did no work");
    }
    let cpu_ns: Option<u64> = counts.iter().map(|(_, c)| *c).sum();
    let rate = n as f64 / elapsed;
    let mut report = json!({
        "threads": threads,
        "seconds": (elapsed * 1000.0).round() / 1000.0,
        "message_bytes": message_bytes,
    });
    report[count_key] = json!(n);
    report["per_second"] = json!(rate.round());
    report["per_second_per_thread"] = json!((rate / threads as f64).round());
    if let Some(ns) = cpu_ns.filter(|&ns| ns > 0) {
        let cpu = ns as f64 / 1e9;
        report["cpu_seconds"] = json!((cpu * 1000.0).round() / 1000.0);
        report["per_cpu_second"] = json!((n as f64 / cpu).round());
    }
    Ok(report)
}

/// CPU time this thread has run, nanoseconds (`/proc/thread-self/schedstat`, Linux), or
/// `None` where the file is missing.
fn thread_cpu_ns() -> Option<u64> {
    schedstat_ns(Path::new("/proc/thread-self/schedstat"))
}

/// The time on CPU a Linux `schedstat` file gives (its first field), nanoseconds, or `None`
/// where it is missing or unreadable.
pub(super) fn schedstat_ns(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn sm2_verify(secs: f64) -> anyhow::Result<ExitCode> {
    // A real token's signature: the same message length, and an issuer key held the way
    // the gateway holds a trust list's keys.
    let key = SigningKey::generate()?;
    let issuer = IssuerKey::new(IssuerId::parse("10000099")?, Kid::parse("k1")?, key.clone());
    let token = code::issue(&issuer, &claims(3600)?)?;
    let parsed = code::token::parse(&token)?;
    let (signed, sig) = (parsed.signed, parsed.signature);
    let public = key.verifying_key().precompute();
    public.verify(signed.as_bytes(), &sig)?;
    let report = rate_on_every_core(secs, "verifications", signed.len(), || {
        public
            .verify(std::hint::black_box(signed.as_bytes()), &sig)
            .is_ok()
    })?;
    say!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn claims(ttl: i64) -> anyhow::Result<Claims> {
    let iat = super::code::now();
    Ok(Claims {
        cid: CodeId::random()?,
        col: Colour::Green,
        iat,
        exp: iat + ttl,
        nc: None,
    })
}

/// Host of the code URLs `codes` prints.
const CODE_HOST: &str = "code.bench.hutong.example.cn";

fn codes(key: &Path, iss: &str, kid: &str, count: usize, ttl: i64) -> anyhow::Result<ExitCode> {
    let issuer = super::code::load_issuer(key, iss, kid)?;
    lines_on_every_core(count, |_| {
        let token = code::issue(&issuer, &claims(ttl)?)?;
        let body = json!({
            "codeContent": CodeUrl::for_token(CODE_HOST, &token)?.to_url(),
            "verifier": {"orgName": "某地铁站", "deviceId": "G-01"},
        });
        Ok(body.to_string())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `[#####-----] 120000/1000000 links`, redrawn in place when standard error is a terminal.
fn progress(done: usize, total: usize) {
    use std::io::IsTerminal as _;
    const WIDTH: usize = 30;
    if !std::io::stderr().is_terminal() {
        return;
    }
    let filled = WIDTH * done / total.max(1);
    let bar: String = "#".repeat(filled) + &"-".repeat(WIDTH - filled);
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r[{bar}] {done}/{total} links");
    if done == total {
        let _ = writeln!(err);
    }
}

/// Regions of the synthetic links: three each, as a traveler linked across three regions.
const FILL_REGIONS: [&str; 3] = ["110000", "330000", "340000"];

fn fill_links(config: &Path, count: usize) -> anyhow::Result<ExitCode> {
    const BATCH: usize = 10_000;
    let cfg = crate::config::Config::load(config).map_err(|e| anyhow!("{e}"))?;
    let secret = crate::server::read_pseudonym_secret(&cfg.gateway.pseudonym_secret_file)?;
    let key = crate::server::data_at_rest_key(&secret)?;
    let store = crate::store::Store::open(&cfg.gateway.data_dir)?;
    let links = RedbLinks::new(store, key);
    let started = Instant::now();
    let now = crate::auth::now_unix() * 1000;
    let mut done = 0usize;
    while done < count {
        let n = BATCH.min(count - done);
        let mut batch = Vec::with_capacity(n * FILL_REGIONS.len());
        for _ in 0..n {
            let mut p = [0u8; 32];
            getrandom::fill(&mut p).map_err(|e| anyhow!("RNG: {e}"))?;
            let holder = Holder {
                name_masked: Some("张*".into()),
                claimed_name: None,
                id_no_masked: Some("11**************1X".into()),
                id_type: Some("10".into()),
            };
            for region in FILL_REGIONS {
                let cid = CodeId::random()?;
                batch.push((
                    Pseudonym(p),
                    RegionLink {
                        region: region.into(),
                        code_content: Some(format!(
                            "https://code.{region}.example.cn/c?id={}",
                            cid.as_str()
                        )),
                        code_id: Some(cid.as_str().to_owned()),
                        colour: Some("00".into()),
                        status_time: Some("2026-11-23 09:00:00".into()),
                        source: Source::Verification,
                        seen_ms: now,
                        scanned_code_id: None,
                    },
                    holder.clone(),
                ));
            }
        }
        links.link_many(batch, now)?;
        done += n;
        progress(done, count);
    }
    say!(
        "{}",
        json!({
            "links": done,
            "regions_each": FILL_REGIONS.len(),
            "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        })
    );
    Ok(ExitCode::SUCCESS)
}
