//! `hutong sim --national …`: run the reference region back-end until SIGTERM or ctrl-c.
//!
//! Standard output gets exactly one line, `listening on http://127.0.0.1:PORT` (or
//! `https://`), once the socket is bound, so a parent process can read the port; logs go
//! to standard error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};

use crate::sim::{self, ColourMix, Faults, SimConfig, SimKeys};
use crate::trust::IssuerId;

/// `hutong sim`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Speak the national envelope (`POST /phic/v1/{service}`). Required: dialect
    /// simulators come with the dialects.
    #[arg(long)]
    pub national: bool,
    /// Address to listen on; port 0 picks a free one (printed on start).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Seed of the population and of the fault rolls.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of people.
    #[arg(long, default_value_t = 1000)]
    pub population: usize,
    /// GB/T 2260 code of the region simulated; its counties are home to the people.
    #[arg(long, default_value = "330000")]
    pub region: String,
    /// Issuer id of the codes it issues (8 digits: region + sequence).
    #[arg(long, default_value = "33000001")]
    pub issuer: String,
    /// Host of its code URLs [default: code.sim-REGION.example.cn].
    #[arg(long)]
    pub code_host: Option<String>,
    /// Colour mix as GREEN:YELLOW:RED weights.
    #[arg(long, default_value = "90:7:3")]
    pub colours: String,
    /// Divisions (GB/T 2260) whose visit turns a declared trip yellow, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub high_risk_regions: Vec<String>,
    /// Lifetime of an issued code, seconds.
    #[arg(long, default_value_t = sim::DEFAULT_CODE_TTL_SECS)]
    pub code_ttl_secs: u32,
    /// Latency added to every request, milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Uniform extra latency up to this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Share of requests answered 9999 (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Share of requests never answered (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub timeout_rate: f64,
    /// Share of requests answered with a non-JSON body (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub garbage_rate: f64,
    /// The clients file (TOML): who may call, with which keys. See
    /// config/sim-national.example.toml.
    #[arg(long, value_name = "FILE")]
    pub clients: PathBuf,
    /// TLS certificate chain (PEM); serves https with --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Write the simulator's public keys here (sim-response.pub.pem, sim-issuer.pub.pem,
    /// sim-encryption.pub.pem, sim-trust-list.json) before serving.
    #[arg(long, value_name = "DIR")]
    pub keys_out: Option<PathBuf>,
    /// Largest request body, bytes.
    #[arg(long, default_value_t = sim::server::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
}

/// Checks the flags and the clients file, reporting every problem at once.
fn config(args: &Args) -> anyhow::Result<SimConfig> {
    let mut problems = Vec::new();
    if !args.national {
        problems.push("only --national is supported so far".to_owned());
    }
    let clients = match sim::load_clients(&args.clients) {
        Ok(c) => c,
        Err(sim::SimError::Config(p)) => {
            problems.extend(p);
            Default::default()
        }
        Err(e) => return Err(e.into()),
    };
    let mut config = SimConfig::new(clients);
    config.seed = args.seed;
    config.population = args.population;
    config.region.clone_from(&args.region);
    match IssuerId::parse(&args.issuer) {
        Ok(i) => config.issuer = i,
        Err(_) => problems.push(format!("issuer `{}` is not 8 digits", args.issuer)),
    }
    config.code_host = args
        .code_host
        .clone()
        .unwrap_or_else(|| format!("code.sim-{}.example.cn", args.region));
    match ColourMix::parse(&args.colours) {
        Ok(m) => config.colour_mix = m,
        Err(e) => problems.push(e),
    }
    config.high_risk_regions.clone_from(&args.high_risk_regions);
    config.code_ttl_secs = args.code_ttl_secs;
    config.faults = Faults {
        latency_ms: args.latency_ms,
        jitter_ms: args.jitter_ms,
        error_rate: args.error_rate,
        timeout_rate: args.timeout_rate,
        garbage_rate: args.garbage_rate,
    };
    config.server.max_body_bytes = args.max_body_bytes;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        match sim::server::tls_config_from_files(cert, key) {
            Ok(tls) => config.server.tls = Some(Arc::new(tls)),
            Err(e) => problems.push(e.to_string()),
        }
    }
    // An unreadable clients file already said so; "no client" would repeat it.
    let clients_failed = config.clients.is_empty() && !problems.is_empty();
    problems.extend(
        config
            .problems(&crate::standard::Standard::embedded())
            .into_iter()
            .filter(|p| !(clients_failed && p.starts_with("no client"))),
    );
    if !problems.is_empty() {
        bail!("{}", sim::SimError::Config(problems));
    }
    Ok(config)
}

pub(super) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let config = config(args)?;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, config))
}

async fn serve(args: &Args, config: SimConfig) -> anyhow::Result<ExitCode> {
    let keys = SimKeys::generate()?;
    if let Some(dir) = &args.keys_out {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        sim::write_public_keys(dir, &keys.public(), &config.issuer, now)?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let (population, region) = (config.population, config.region.clone());
    let running = sim::start(config, keys, listener).await?;
    say!("listening on {}", running.base_url());
    tracing::info!(
        addr = %running.local_addr(),
        region = %region,
        issuer = %running.issuer(),
        population,
        "simulator ready"
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on ctrl-c, or on SIGTERM where there is one.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
