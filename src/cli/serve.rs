//! `hutong serve` and `hutong token issue`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use crate::auth::TokenKeys;
use crate::config::{Config, Validated};
use crate::server::{self, Gateway};

/// Default configuration file.
pub const DEFAULT_CONFIG: &str = "config/hutong.toml";

/// Arguments of `hutong serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The configuration file.
    #[arg(long, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
}

/// `hutong token …`.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCmd {
    /// Issue an access token (JWT, ES256) for a registered client, granting the services
    /// its registration allows. Print it, or write it to --out.
    Issue {
        /// The client's appId.
        #[arg(long)]
        client: String,
        /// The gateway's configuration file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Lifetime in seconds (default: auth.token_ttl_secs).
        #[arg(long)]
        ttl: Option<u64>,
        /// Write the token to this file (mode 0600) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Reads a configuration, generating development files first when it asks for them.
///
/// # Errors
/// Unreadable or invalid configuration; files that cannot be generated.
pub fn load_with_bootstrap(path: &Path) -> anyhow::Result<(Validated, Vec<String>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let raw: Config = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}", crate::config::toml_error(path, &text, &e)))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let wrote = server::bootstrap::bootstrap(&raw, &base)?;
    let validated = raw.validate(&base)?;
    Ok((validated, wrote))
}

pub(super) fn run_serve(a: &ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let (cfg, wrote) = load_with_bootstrap(&a.config)?;
    for w in &wrote {
        tracing::info!(file = %w, "generated for development");
    }
    for shortfall in cfg.replay_shortfalls() {
        tracing::warn!(problem = %shortfall, "replay store too small for a client's rate limit");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let relay = crate::route::Router::from_config(&cfg)?;
        let relay = Arc::new(relay);
        let gw = Arc::new(Gateway::new(cfg, relay.clone())?);
        let running = server::start(Arc::clone(&gw)).await?;
        let handlers = Signals::install()?;
        let scheme = if gw.config.load().server.insecure_plain_http {
            "http"
        } else {
            "https"
        };
        say!(
            "hutong {} listening on {scheme}://{} (admin http://{})",
            env!("CARGO_PKG_VERSION"),
            running.addr,
            running.admin_addr
        );
        tracing::info!(addr = %running.addr, admin = %running.admin_addr, "listening");
        let stop = running.stopper();
        let config_path = a.config.clone();
        tokio::spawn(signals(gw, relay, stop, config_path, handlers));
        running.wait().await;
        tracing::info!("stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM and SIGHUP handlers, installed before the listener is announced.
struct Signals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?,
            hup: signal(SignalKind::hangup()).context("cannot install the SIGHUP handler")?,
        })
    }
}

/// SIGTERM and ctrl-c stop the gateway (draining); SIGHUP reloads the configuration and
/// keeps the old one when the new one is invalid.
///
/// The handlers are installed by the caller before it announces the listener ([`Signals`]):
/// a signal sent by a supervisor that read the announcement is never the default action
/// (termination without draining).
async fn signals(
    gw: Arc<Gateway>,
    relay: Arc<crate::route::Router>,
    stop: tokio::sync::watch::Sender<bool>,
    path: PathBuf,
    handlers: Signals,
) {
    let Signals { mut term, mut hup } = handlers;
    // What the gateway started with: settings read only at start keep these values, and
    // whether it issues national codes does not change until a restart.
    let started = gw.config.load_full();
    let issuing = gw.issuer.is_some();
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = hup.recv() => {
                // Off the runtime's workers: loading builds every SM2 key's verification
                // table (about 2 ms a key) and reads files.
                let (p, r, old) = (path.clone(), Arc::clone(&relay), gw.config.load_full());
                let started = Arc::clone(&started);
                let loaded = tokio::task::spawn_blocking(move || {
                    // Keys that did not change keep their tables.
                    let new = Config::load_reusing(&p, Some(&old)).map_err(|e| e.to_string())?;
                    if let Some(why) = new.reload_refusal(issuing) {
                        return Err(why);
                    }
                    r.reconfigure(&new).map_err(|e| e.to_string())?;
                    let later = started.restart_only_changes(&new);
                    Ok::<_, String>((new, later))
                })
                .await
                .unwrap_or_else(|e| Err(format!("reload task failed: {e}")));
                match loaded {
                    Ok((new, later)) => {
                        gw.limiter.reconfigure(&new.limits, new.clients.values().map(|c| (c.app_id.clone(), c.rate_limit)));
                        for shortfall in new.replay_shortfalls() {
                            tracing::warn!(problem = %shortfall, "replay store too small for a client's rate limit");
                        }
                        gw.config.store(Arc::new(new));
                        if !later.is_empty() {
                            tracing::warn!(settings = %later.join(", "), "changed settings that take effect at the next start");
                        }
                        tracing::info!(config = %path.display(), "configuration reloaded");
                    }
                    Err(e) => tracing::error!(error = %e, "reload refused; the running configuration stays"),
                }
            },
        }
    }
    // Stop first, then say so: nothing a log line does can keep the gateway from stopping.
    let _ = stop.send(true);
    tracing::info!("shutting down: draining requests in flight");
}

/// JSON logs on stderr; `HUTONG_LOG` sets the filter (default `info`).
///
/// A log line that cannot be written (the collector reading stderr has gone) is dropped.
/// The subscriber's default is to report that with `eprintln!`, which panics on the same
/// closed stderr: every task that logged then panicked, and the signal task with it, so a
/// gateway whose log pipe had closed ignored SIGTERM (`tests/serve_cli.rs`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HUTONG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .log_internal_errors(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_current_span(false)
        .try_init();
}

pub(super) fn run_token(cmd: &TokenCmd) -> anyhow::Result<ExitCode> {
    let TokenCmd::Issue {
        client,
        config,
        ttl,
        out,
    } = cmd;
    // No development files from here: a token is issued from what is there (run as
    // another user, generating would leave files and directories the gateway cannot open).
    let cfg = Config::load(config)?;
    let c = cfg
        .clients
        .get(client)
        .with_context(|| format!("client {client} is not registered in {}", config.display()))?;
    let keys = TokenKeys::load(&cfg.auth.jwt_key_file, &cfg.auth.issuer, &cfg.auth.audience)?;
    let token = keys
        .issue(
            &c.app_id,
            &c.services,
            ttl.unwrap_or(cfg.auth.token_ttl_secs),
        )
        .map_err(|e| anyhow::anyhow!(e))?;
    match out {
        Some(p) => {
            super::write_secret(p, token.as_bytes())?;
            say!("wrote a token for {client} to {}", p.display());
        }
        None => say!("{token}"),
    }
    Ok(ExitCode::SUCCESS)
}
