//! `hutong sim --national …` and `hutong sim --region <dialect> …`: run a reference region
//! back-end until SIGTERM or ctrl-c.
//!
//! `--defect NAME` (national only, repeatable) switches on a seeded deviation from the
//! standard (`crate::sim::defects`), for proving that a conformance suite fails on it;
//! `--defect list` prints the names and exits 2.
//!
//! Standard output's first line is `listening on http://127.0.0.1:PORT` (or `https://`),
//! once the socket is bound, so a parent process can read the port. The national simulator
//! prints nothing more; a dialect simulator adds a few `sample` lines, tab-separated: index,
//! colour, name, ID number and code content of synthetic people, one per colour present.
//! Logs go to standard error and carry no personal fields.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};

use crate::code::Colour;
use crate::sim::region::{self, Caller, RegionSimConfig};
use crate::sim::{self, ColourMix, Defect, Defects, Faults, SimConfig, SimKeys};
use crate::standard::Standard;
use crate::trust::IssuerId;

/// Default GB/T 2260 region of the national simulator.
const DEFAULT_NATIONAL_REGION: &str = "330000";

/// Default issuer id of the national simulator.
const DEFAULT_ISSUER: &str = "33000001";

/// Default `--app-key` of the dialect simulator's one caller.
const DEFAULT_APP_KEY: &str = "hutong-gateway";

/// `hutong sim`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Speak the national envelope (`POST /phic/v1/{service}`); needs --clients.
    #[arg(long)]
    pub national: bool,
    /// With --national: the GB/T 2260 code of the region simulated, whose counties are home
    /// to the people [default: 330000]. Without: the dialect to simulate, a file stem under
    /// --regions-dir (zhejiang, jiangsu, …), served at its own paths.
    #[arg(long, value_name = "CODE|DIALECT")]
    pub region: Option<String>,
    /// Where the dialect files are (--region DIALECT).
    #[arg(long, default_value = region::DEFAULT_REGIONS_DIR, value_name = "DIR")]
    pub regions_dir: PathBuf,
    /// Address to listen on; port 0 picks a free one (printed on start).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Seed of the population and of the fault rolls.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of people.
    #[arg(long, default_value_t = 1000)]
    pub population: usize,
    /// Issuer id of the codes it issues (8 digits: region + sequence) [default: 33000001].
    /// National only.
    #[arg(long)]
    pub issuer: Option<String>,
    /// Host of its code URLs [default: code.sim-REGION.example.cn]. National only.
    #[arg(long)]
    pub code_host: Option<String>,
    /// Colour mix as GREEN:YELLOW:RED weights.
    #[arg(long, default_value = "90:7:3")]
    pub colours: String,
    /// Divisions (GB/T 2260) whose visit turns a declared trip yellow, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub high_risk_regions: Vec<String>,
    /// Lifetime of an issued code, seconds [default: 300]. National only: a dialect's codes
    /// are static links.
    #[arg(long)]
    pub code_ttl_secs: Option<u32>,
    /// Lifetime of an authCode it grants, seconds, 1 to 300 [default: 300]. National only.
    #[arg(long)]
    pub auth_code_ttl_secs: Option<u32>,
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
    /// config/sim-national.example.toml. National only, and required there.
    #[arg(long, value_name = "FILE")]
    pub clients: Option<PathBuf>,
    /// The caller's key in a signing dialect (Zhejiang style: the `appKey`, also the HMAC
    /// key), with --secret.
    #[arg(long, value_name = "KEY", requires = "secret")]
    pub app_key: Option<String>,
    /// The shared secret of a signing dialect, e.g. 32 hex digits (`openssl rand -hex 16`).
    #[arg(long, value_name = "SECRET", conflicts_with = "config")]
    pub secret: Option<String>,
    /// The dialect simulator's callers file (TOML, `[[caller]]` with `app_key` and
    /// `secret`); see config/sim-region.example.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// TLS certificate chain (PEM); serves https with --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Write the simulator's public keys here (sim-response.pub.pem, sim-issuer.pub.pem,
    /// sim-encryption.pub.pem, sim-trust-list.json) before serving. National only.
    #[arg(long, value_name = "DIR")]
    pub keys_out: Option<PathBuf>,
    /// Write a conformance fixtures file here (mode 0600) once serving: a green and a yellow
    /// person of the population, a code of its issuer and a ticket for --fixtures-client,
    /// both expired; what `hutong conformance run --fixtures` needs against this simulator.
    /// National only.
    #[arg(long, value_name = "FILE", requires = "fixtures_client")]
    pub fixtures_out: Option<PathBuf>,
    /// The suite's appId (a client of --clients), whom the expired ticket is sealed for.
    #[arg(long, value_name = "APPID", requires = "fixtures_out")]
    pub fixtures_client: Option<String>,
    /// Largest request body, bytes.
    #[arg(long, default_value_t = sim::server::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Switch on a seeded defect: a known deviation from the standard that a conformance
    /// suite must catch. Repeatable. `--defect list` prints the names and exits. National
    /// only; never for anything but testing a test suite.
    #[arg(long = "defect", value_name = "NAME")]
    pub defects: Vec<String>,
}

/// The value of `--defect` that prints the defects instead of naming one.
const LIST_DEFECTS: &str = "list";

/// The defects the flags ask for; unknown names go to `problems`.
fn defects(args: &Args, problems: &mut Vec<String>) -> Defects {
    let mut set = Defects::NONE;
    for name in &args.defects {
        match name.parse::<Defect>() {
            Ok(d) => set.insert(d),
            Err(e) => problems.push(e.to_string().trim_end().to_owned()),
        }
    }
    set
}

/// The faults the flags ask for.
fn faults(args: &Args) -> Faults {
    Faults {
        latency_ms: args.latency_ms,
        jitter_ms: args.jitter_ms,
        error_rate: args.error_rate,
        timeout_rate: args.timeout_rate,
        garbage_rate: args.garbage_rate,
    }
}

/// The server settings the flags ask for; TLS problems go to `problems`.
fn server(args: &Args, problems: &mut Vec<String>) -> sim::ServerConfig {
    let mut server = sim::ServerConfig {
        max_body_bytes: args.max_body_bytes,
        ..sim::ServerConfig::default()
    };
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        match sim::server::tls_config_from_files(cert, key) {
            Ok(tls) => server.tls = Some(Arc::new(tls)),
            Err(e) => problems.push(e.to_string()),
        }
    }
    server
}

/// Checks the flags and the clients file, reporting every problem at once.
fn config(args: &Args) -> anyhow::Result<SimConfig> {
    let mut problems = Vec::new();
    for (given, flag) in [
        (args.app_key.is_some(), "--app-key"),
        (args.secret.is_some(), "--secret"),
        (args.config.is_some(), "--config"),
    ] {
        if given {
            problems.push(format!(
                "{flag} is for a dialect simulator (--region DIALECT)"
            ));
        }
    }
    let clients = match &args.clients {
        None => {
            problems.push("--national needs --clients FILE".to_owned());
            sim::SimClients::default()
        }
        Some(path) => match sim::load_clients(path) {
            Ok(c) => c,
            Err(sim::SimError::Config(p)) => {
                problems.extend(p);
                sim::SimClients::default()
            }
            Err(e) => return Err(e.into()),
        },
    };
    let mut config = SimConfig::new(clients.credentials);
    config.rate_limits = clients.rate_limits;
    let region = args.region.as_deref().unwrap_or(DEFAULT_NATIONAL_REGION);
    config.seed = args.seed;
    config.population = args.population;
    config.region = region.to_owned();
    let issuer = args.issuer.as_deref().unwrap_or(DEFAULT_ISSUER);
    match IssuerId::parse(issuer) {
        Ok(i) => config.issuer = i,
        Err(_) => problems.push(format!("issuer `{issuer}` is not 8 digits")),
    }
    config.code_host = args
        .code_host
        .clone()
        .unwrap_or_else(|| format!("code.sim-{region}.example.cn"));
    match ColourMix::parse(&args.colours) {
        Ok(m) => config.colour_mix = m,
        Err(e) => problems.push(e),
    }
    config.high_risk_regions.clone_from(&args.high_risk_regions);
    config.code_ttl_secs = args.code_ttl_secs.unwrap_or(sim::DEFAULT_CODE_TTL_SECS);
    config.auth_code_ttl_secs = args.auth_code_ttl_secs.unwrap_or(sim::AUTH_CODE_TTL_SECS);
    config.faults = faults(args);
    config.defects = defects(args, &mut problems);
    config.server = server(args, &mut problems);
    // An unreadable clients file already said so; "no client" would repeat it.
    let clients_failed = config.clients.is_empty() && !problems.is_empty();
    problems.extend(
        config
            .problems(&Standard::embedded())
            .into_iter()
            .filter(|p| !(clients_failed && p.starts_with("no client"))),
    );
    if !problems.is_empty() {
        bail!("{}", sim::SimError::Config(problems));
    }
    Ok(config)
}

/// Checks the flags, the callers and the dialect for `--region DIALECT`, reporting every
/// problem at once.
fn region_config(
    standard: &Standard,
    args: &Args,
    id: &str,
) -> anyhow::Result<(crate::translate::Dialect, RegionSimConfig)> {
    let mut problems = Vec::new();
    for (given, flag) in [
        (args.clients.is_some(), "--clients"),
        (args.issuer.is_some(), "--issuer"),
        (args.code_host.is_some(), "--code-host"),
        (args.code_ttl_secs.is_some(), "--code-ttl-secs"),
        (args.auth_code_ttl_secs.is_some(), "--auth-code-ttl-secs"),
        (args.keys_out.is_some(), "--keys-out"),
        (args.fixtures_out.is_some(), "--fixtures-out"),
        (!args.defects.is_empty(), "--defect"),
    ] {
        if given {
            problems.push(format!("{flag} is for the national simulator (--national)"));
        }
    }
    let dialect = match region::load_dialect(&args.regions_dir, id, standard) {
        Ok(d) => Some(d),
        Err(region::RegionSimError::Config(p)) => {
            problems.extend(p);
            None
        }
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    let mut config = RegionSimConfig {
        listen: args.listen,
        seed: args.seed,
        population: args.population,
        high_risk_regions: args.high_risk_regions.clone(),
        faults: faults(args),
        ..RegionSimConfig::default()
    };
    match ColourMix::parse(&args.colours) {
        Ok(m) => config.colour_mix = m,
        Err(e) => problems.push(e),
    }
    match (&args.secret, &args.config) {
        (Some(secret), _) => config.callers.push(Caller {
            app_key: args
                .app_key
                .clone()
                .unwrap_or_else(|| DEFAULT_APP_KEY.to_owned()),
            secret: secret.clone(),
        }),
        (None, Some(path)) => match region::load_callers(path) {
            Ok(c) => config.callers = c,
            Err(region::RegionSimError::Config(p)) => problems.extend(p),
            Err(e) => problems.push(e.to_string()),
        },
        (None, None) => {}
    }
    config.server = server(args, &mut problems);
    let Some(dialect) = dialect else {
        bail!("{}", region::RegionSimError::Config(problems));
    };
    problems.extend(config.problems(&dialect, standard));
    if !problems.is_empty() {
        bail!("{}", region::RegionSimError::Config(problems));
    }
    Ok((dialect, config))
}

pub(super) fn run(standard: &Standard, args: &Args) -> anyhow::Result<ExitCode> {
    enum Mode {
        National(Box<SimConfig>),
        Region(Box<(crate::translate::Dialect, RegionSimConfig)>),
    }
    if args.defects.iter().any(|d| d == LIST_DEFECTS) {
        say!("seeded defects of `hutong sim --national --defect NAME`:");
        say!("{}", sim::defect_list().trim_end());
        return Ok(ExitCode::from(2));
    }
    let mode = match (args.national, args.region.as_deref()) {
        (true, _) => Mode::National(Box::new(config(args)?)),
        (false, Some(id)) => Mode::Region(Box::new(region_config(standard, args, id)?)),
        (false, None) => bail!(
            "{}",
            sim::SimError::Config(vec![
                "say which region to simulate: --national (with --clients FILE), or --region DIALECT"
                    .to_owned()
            ])
        ),
    };
    // Colours only on a terminal: a log file gets plain text. A line that cannot be written
    // is dropped (see `serve::init_logging`).
    let _ = tracing_subscriber::fmt()
        .log_internal_errors(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match mode {
        Mode::National(config) => runtime.block_on(serve(args, *config)),
        Mode::Region(both) => {
            let (dialect, config) = *both;
            runtime.block_on(serve_region(dialect, config))
        }
    }
}

/// Runs the dialect simulator; prints the address, then one sample person per colour.
async fn serve_region(
    dialect: crate::translate::Dialect,
    config: RegionSimConfig,
) -> anyhow::Result<ExitCode> {
    let population = config.population;
    let running = region::start(dialect, config).await?;
    let stop = StopSignal::install()?;
    say!("listening on {}", running.base_url());
    let firsts: Vec<usize> = running.with_population(|pop| {
        [Colour::Green, Colour::Yellow, Colour::Red]
            .iter()
            .filter_map(|c| pop.iter().position(|p| p.colour == *c))
            .collect()
    });
    for sample in firsts.into_iter().filter_map(|i| running.sample(i)) {
        let p = &sample.person;
        say!(
            "sample\t{}\t{}\t{}\t{}\t{}",
            sample.index,
            p.colour.as_str(),
            p.name,
            p.id_no,
            sample.code_content.as_deref().unwrap_or("-")
        );
    }
    let d = running.dialect();
    tracing::info!(
        addr = %running.local_addr(),
        dialect = %d.id,
        region = %d.region,
        services = d.services.len(),
        population,
        "region simulator ready"
    );
    stop.wait().await;
    tracing::info!("shutting down");
    running.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: &Args, config: SimConfig) -> anyhow::Result<ExitCode> {
    let keys = SimKeys::generate()?;
    if let Some(app) = &args.fixtures_client {
        if !config.clients.contains_key(app) {
            bail!("--fixtures-client {app} is not a client of --clients");
        }
    }
    let (issuer_key, ticket_key) = (keys.issuer.clone(), keys.ticket.clone());
    if let Some(dir) = &args.keys_out {
        sim::write_public_keys(dir, &keys.public(), &config.issuer, super::code::now())?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let (population, region) = (config.population, config.region.clone());
    let running = sim::start(config, keys, listener).await?;
    if let (Some(path), Some(app)) = (&args.fixtures_out, &args.fixtures_client) {
        let fixtures =
            sim::conformance_fixtures(&running, &issuer_key, ticket_key, app, super::code::now())?;
        let text = format!(
            "# Written by hutong sim --national --fixtures-out: synthetic people of its population.\n{}",
            toml::to_string(&fixtures)?
        );
        super::write_secret(path, text.as_bytes())?;
    }
    let stop = StopSignal::install()?;
    say!("listening on {}", running.base_url());
    tracing::info!(
        addr = %running.local_addr(),
        region = %region,
        issuer = %running.issuer(),
        population,
        "simulator ready"
    );
    stop.wait().await;
    tracing::info!("shutting down");
    running.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM (and ctrl-c), installed before the listener is announced: a supervisor that
/// read the announcement and signals at once gets a graceful stop, never the default
/// action.
struct StopSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn install() -> anyhow::Result<Self> {
        Ok(Self {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("cannot install the SIGTERM handler")?,
        })
    }

    /// Completes on SIGTERM or ctrl-c.
    async fn wait(self) {
        #[cfg(unix)]
        {
            let mut term = self.term;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
