//! `hutong client <service> --body FILE --as PROFILE`: one signed call to a gateway.
//!
//! With `--seal-only N` it sends nothing and prints N freshly sealed request bodies, one
//! per line, for a load generator (`benches/bench.sh`): the envelope's replay protection
//! (a unique nonce, a timestamp within ±300 s) means a benchmark cannot repeat one body.
//! Two hidden options serve the same benchmark: `--sm2-bound-secs` times the SM2 work of
//! one SM2-signed call (one verify and one sign) on every core, and `--sim-user` prints a
//! person of `hutong sim --national`'s synthetic population.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::client::GatewayClient;
use crate::crypto::SigningKey;
use crate::standard::ServiceName;

/// Arguments of `hutong client`.
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// The service to call: one of the seven, or a platform endpoint of the gateway
    /// (statusEvent, link, venueCode, correctionStatus).
    pub service: String,
    /// The business content (JSON), or - for standard input.
    #[arg(long)]
    pub body: String,
    /// The caller's profile (TOML): gateway URL, appId, keys, CA, client certificate, token
    /// file. `hutong serve` writes one per development client under data/clients/.
    #[arg(long = "as", value_name = "PROFILE")]
    pub profile: PathBuf,
    /// Send nothing: print N freshly sealed request bodies (JSON), one per line, each with
    /// its own requestId, nonce and timestamp, for a load generator to send once each. They
    /// stay acceptable for the timestamp window (±300 s) and only until the gateway has seen
    /// their nonce.
    #[arg(long, value_name = "N")]
    pub seal_only: Option<usize>,
    /// Send nothing: the body file holds one JSON business content per line; print each
    /// sealed once, one per line (as --seal-only does for one content).
    #[arg(long, conflicts_with = "seal_only")]
    pub seal_lines: bool,
    /// Development (benchmarks): for SECS seconds, on one thread per core, time one SM2
    /// verify plus one SM2 sign of this sealed request (the cryptography the gateway does
    /// for an SM2-signed call), and print the rate as JSON. Sends nothing.
    #[arg(long, hide = true, value_name = "SECS", conflicts_with = "seal_only")]
    pub sm2_bound_secs: Option<f64>,
    /// Development (benchmarks): print person INDEX of `hutong sim --national --seed SEED
    /// --population POPULATION --region REGION` (default colour mix), started on the same
    /// day (Beijing time), as a `user` object, and exit. The service, body and profile are
    /// not read.
    #[arg(
        long,
        hide = true,
        value_name = "SEED:POPULATION:REGION:INDEX",
        conflicts_with_all = ["seal_only", "sm2_bound_secs"]
    )]
    pub sim_user: Option<String>,
}

pub(super) fn run(a: &ClientArgs) -> anyhow::Result<ExitCode> {
    if let Some(spec) = &a.sim_user {
        return sim_user(spec);
    }
    // A national service, or (None) one of the gateway's platform endpoints, which are
    // called only, never sealed for later.
    let service = match a.service.parse::<ServiceName>() {
        Ok(s) => Some(s),
        Err(_) if crate::server::PLATFORM_ENDPOINTS.contains(&a.service.as_str()) => {
            if a.seal_only.is_some() || a.seal_lines || a.sm2_bound_secs.is_some() {
                bail!("{} is called, not sealed for later", a.service);
            }
            None
        }
        Err(_) => bail!(
            "`{}` is neither a national service nor a platform endpoint ({})",
            a.service,
            crate::server::PLATFORM_ENDPOINTS.join(", ")
        ),
    };
    let client = GatewayClient::from_profile_file(&a.profile)?;
    if let (true, Some(service)) = (a.seal_lines, service) {
        let raw = super::read_input(&a.body, SEAL_LINES_MAX_BYTES)?;
        let bodies = String::from_utf8(raw)
            .context("the body file is not UTF-8")?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).with_context(|| format!("line {} is not JSON", i + 1))
            })
            .collect::<anyhow::Result<Vec<Value>>>()?;
        seal_each(&client, service, &bodies)?;
        return Ok(ExitCode::SUCCESS);
    }
    let raw = super::read_input(&a.body, crate::national::validate::MAX_MESSAGE_BYTES)?;
    let biz: Value = serde_json::from_slice(&raw).context("the body is not JSON")?;
    if let (Some(n), Some(service)) = (a.seal_only, service) {
        seal_only(&client, service, &biz, n)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let (Some(secs), Some(service)) = (a.sm2_bound_secs, service) {
        let sealed = client.seal(service, &biz)?;
        sm2_bound(sealed.body.as_bytes(), secs)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // A service's name is its path, so services and platform endpoints go the same way.
    let x = rt.block_on(client.call_raw_service(&a.service, &biz))?;
    print_exchange(&x)
}

/// Prints an opened answer; exit 0 for code 0 (or 4001), 1 for another code, 3 when the
/// answer did not verify.
fn print_exchange(x: &crate::client::Exchange) -> anyhow::Result<ExitCode> {
    let Some(env) = &x.envelope else {
        say!(
            "HTTP {}: the answer did not verify: {}",
            x.status,
            x.open_error.as_deref().unwrap_or("?")
        );
        return Ok(ExitCode::from(3));
    };
    let out = json!({
        "http": x.status,
        "code": env.code,
        "msg": env.msg,
        "requestId": env.request_id,
        "signType": env.sign_type.as_str(),
        "bizContent": x.biz,
    });
    say!("{}", serde_json::to_string_pretty(&out)?);
    let ok = env.code == "0" || env.code == "4001";
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The most a `--seal-lines` file may weigh.
const SEAL_LINES_MAX_BYTES: usize = 1 << 30;

/// Writes `n` sealed bodies to standard output, one per line, sealed on every core.
fn seal_only(
    client: &GatewayClient,
    service: ServiceName,
    biz: &Value,
    n: usize,
) -> anyhow::Result<()> {
    super::bench::lines_on_every_core(n, |_| Ok(client.seal(service, biz)?.body))
}

/// Writes each of `bodies` sealed once to standard output, one per line.
fn seal_each(client: &GatewayClient, service: ServiceName, bodies: &[Value]) -> anyhow::Result<()> {
    super::bench::lines_on_every_core(bodies.len(), |i| Ok(client.seal(service, &bodies[i])?.body))
}

/// One SM2 verify plus one SM2 sign of `msg`, on one thread per core for `secs` seconds.
fn sm2_bound(msg: &[u8], secs: f64) -> anyhow::Result<()> {
    let key = SigningKey::generate()?;
    // Precomputed, as the gateway's configured client keys are: the bound measures the
    // verification the gateway does.
    let public = key.verifying_key().precompute();
    let sig = key.sign(msg);
    public.verify(msg, &sig)?;
    let report = super::bench::rate_on_every_core(secs, "verify_plus_sign", msg.len(), || {
        let ok = public.verify(msg, &sig).is_ok();
        std::hint::black_box(key.sign(std::hint::black_box(msg)));
        ok
    })?;
    say!("{report}");
    Ok(())
}

/// Person INDEX of the simulator's population, as a `user` object.
fn sim_user(spec: &str) -> anyhow::Result<ExitCode> {
    use crate::sim::population::{ColourMix, ID_TYPE, Population};
    let parts: Vec<&str> = spec.split(':').collect();
    let [seed, size, region, index] = parts.as_slice() else {
        bail!("--sim-user wants SEED:POPULATION:REGION:INDEX");
    };
    let (seed, size, index): (u64, usize, usize) = (
        seed.parse().context("SEED")?,
        size.parse().context("POPULATION")?,
        index.parse().context("INDEX")?,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default();
    let std = crate::standard::Standard::embedded();
    let pop = Population::generate(
        seed,
        size,
        region,
        ColourMix::default(),
        &std.divisions,
        now,
    )?;
    let p = pop
        .get(index)
        .with_context(|| format!("the population has {} people", pop.len()))?;
    say!(
        "{}",
        json!({"idType": ID_TYPE, "idNo": p.id_no, "name": p.name})
    );
    Ok(ExitCode::SUCCESS)
}
