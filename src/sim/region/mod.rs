//! `hutong sim --region <dialect>`: a reference back-end for any regional dialect
//! (DESIGN.md §6), over real HTTP (or HTTPS), driven by the dialect file alone, so that a
//! new `config/regions/*.toml` is simulated without code.
//!
//! It serves each `[services.X]` of the dialect at its `path` and `method`, with the same
//! synthetic population, tickets and faults as `hutong sim --national`. One request goes
//! through it in this order:
//!
//! ```text
//! METHOD path ─ route (404, 405) ─ latency ─ wire::open: decode in the dialect's codec
//! (1002), verify its signing scheme against each configured caller (1001, 1003) ─ fault
//! roll (hang, garbage, 9999) ─ translate::to_national (request) ─ answer: the national
//! business content from the population ─ {code, msg, bizContent} ─ translate::to_dialect
//! (response; the result map turns national return codes into the dialect's) ─ wire::write
//! ```
//!
//! Every refusal (unknown code 3001, bad signature 1003, bad body 1002, expired ticket 3005)
//! is a national error answer written through the dialect's result map, never a panic.
//! Codes it issues (`generateCode`, and [`RegionSimHandle::sample`]) follow the dialect's
//! first `[[codes]]` pattern: a URL carrying the code id in its parameter, or a prefixed
//! content. Answers carry full names and ID numbers wherever the dialect's response rules
//! mask them (`mask = "name"`): the real back-end sends them whole and the gateway masks.
//!
//! Files: `config` (what it is told, the dialect and callers loaders), `wire` (the only
//! calls into `translate::codec` and `translate::sign`), `handler` (the path above),
//! `answer` (the services over the population).

mod answer;
mod config;
mod control;
mod handler;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::Method;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::crypto::{CryptoError, Sm4Key};
use crate::standard::{ServiceName, Standard};
use crate::translate::{Dialect, LoadError};
use crate::trust::IssuerId;

use super::faults::Faults;
use super::grants::Grants;
use super::population::{Person, Population, Rng};
use super::server::{self, ServerError};
use super::ticket::TicketKey;
use super::{SimError, now_ms};

pub use answer::code_content;
pub use config::{
    Caller, DEFAULT_POPULATION, DEFAULT_REGIONS_DIR, RegionSimConfig, load_callers, load_dialect,
    parse_callers,
};

/// Errors of the region simulator.
#[derive(Debug, thiserror::Error)]
pub enum RegionSimError {
    /// The configuration (flags, callers file, or a dialect it cannot simulate) is invalid;
    /// every problem is listed.
    #[error("invalid region simulator configuration:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    /// The dialect file does not load; every problem is listed.
    #[error(transparent)]
    Dialect(LoadError),
    /// The OS random number generator failed (the ticket key).
    #[error("key material: {0}")]
    Crypto(CryptoError),
    /// The listen address could not be bound or read.
    #[error("cannot listen: {0}")]
    Bind(std::io::Error),
    /// The HTTP server failed (TLS configuration, listener).
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A bug: the server task panicked.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl From<SimError> for RegionSimError {
    fn from(e: SimError) -> Self {
        match e {
            SimError::Config(p) => Self::Config(p),
            SimError::Crypto(c) => Self::Crypto(c),
            SimError::Bind(b) => Self::Bind(b),
            SimError::Server(s) => Self::Server(s),
            SimError::Write { .. } | SimError::Internal(_) => Self::Internal("simulator setup"),
        }
    }
}

/// A person of the simulated region and the code content the region gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Index in the population.
    pub index: usize,
    /// The person (synthetic; still never log the personal fields).
    pub person: Person,
    /// Their code in the dialect's format; `None` when the dialect has no code pattern.
    pub code_content: Option<String>,
}

/// The simulator's state, shared by every request.
struct RegionState {
    dialect: Arc<Dialect>,
    routes: HashMap<(Method, String), ServiceName>,
    std: Arc<Standard>,
    issuer: IssuerId,
    ticket: TicketKey,
    high_risk: HashSet<String>,
    callers: Vec<Caller>,
    population: RwLock<Population>,
    grants: Mutex<Grants>,
    faults: ArcSwap<Faults>,
    rng: Mutex<Rng>,
    requests: AtomicU64,
    corrections: AtomicU64,
    /// Status-change callbacks received from the gateway, as national event fields.
    callbacks: Mutex<Vec<serde_json::Value>>,
    shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for RegionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionState")
            .field("dialect", &self.dialect.id)
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl RegionState {
    fn population(&self) -> RwLockReadGuard<'_, Population> {
        self.population
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn population_mut(&self) -> RwLockWriteGuard<'_, Population> {
        self.population
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn grants(&self) -> MutexGuard<'_, Grants> {
        self.grants.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record_correction(&self) {
        self.corrections.fetch_add(1, Ordering::Relaxed);
    }

    /// Sleeps for `d`, or until shutdown begins (then `false`).
    async fn pause(&self, d: Duration) -> bool {
        let mut rx = self.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            _ = rx.wait_for(|stop| *stop) => false,
        }
    }
}

/// A region simulator serving on a socket. Dropping it begins a graceful shutdown.
#[derive(Debug)]
pub struct RegionSimHandle {
    addr: SocketAddr,
    tls: bool,
    state: Arc<RegionState>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<Result<(), ServerError>>>,
}

impl RegionSimHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (or `https://…`).
    pub fn base_url(&self) -> String {
        server::base_url(self.addr, self.tls)
    }

    /// The URL of a service the dialect serves.
    pub fn service_url(&self, service: ServiceName) -> Option<String> {
        let s = self.state.dialect.service(service)?;
        Some(format!("{}{}", self.base_url(), s.path))
    }

    /// The dialect it plays.
    pub fn dialect(&self) -> &Dialect {
        &self.state.dialect
    }

    /// Requests routed to a service so far (whatever their outcome).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Corrections accepted so far.
    pub fn corrections(&self) -> u64 {
        self.state.corrections.load(Ordering::Relaxed)
    }

    /// The status-change callbacks received so far, as national event fields.
    pub fn callbacks(&self) -> Vec<serde_json::Value> {
        crate::store::lock(&self.state.callbacks).clone()
    }

    /// Replaces the fault settings; requests that start afterwards use them.
    ///
    /// # Errors
    /// [`RegionSimError::Config`] for rates out of range; the old settings stay.
    pub fn set_faults(&self, faults: Faults) -> Result<(), RegionSimError> {
        let problems = faults.problems();
        if !problems.is_empty() {
            return Err(RegionSimError::Config(problems));
        }
        self.state.faults.store(Arc::new(faults));
        Ok(())
    }

    /// Runs `f` on the population (for tests and demos that need to know who exists).
    pub fn with_population<R>(&self, f: impl FnOnce(&Population) -> R) -> R {
        f(&self.state.population())
    }

    /// Person `index` and their code content, if there is such a person.
    pub fn sample(&self, index: usize) -> Option<Sample> {
        let person = self.state.population().get(index)?.clone();
        Some(Sample {
            index,
            code_content: code_content(&self.state.dialect, &person),
            person,
        })
    }

    /// Stops accepting, lets requests in flight finish (hung ones are released), and
    /// waits for the server to end.
    ///
    /// # Errors
    /// [`RegionSimError::Server`] when the server failed.
    pub async fn shutdown(mut self) -> Result<(), RegionSimError> {
        let _ = self.stop.send(true);
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        match task.await {
            Ok(r) => r.map_err(RegionSimError::Server),
            Err(_) => Err(RegionSimError::Internal("server task panicked")),
        }
    }
}

impl Drop for RegionSimHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Checks `config` against `dialect`, makes the population, binds `config.listen` and
/// starts serving.
///
/// # Errors
/// [`RegionSimError::Config`] with every problem of the configuration or the dialect;
/// [`RegionSimError::Bind`] when the address cannot be bound.
pub async fn start(
    dialect: Dialect,
    config: RegionSimConfig,
) -> Result<RegionSimHandle, RegionSimError> {
    let std = Standard::embedded();
    let problems = config.problems(&dialect, &std);
    if !problems.is_empty() {
        return Err(RegionSimError::Config(problems));
    }
    let now = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
    let population = Population::generate(
        config.seed,
        config.population,
        &dialect.region,
        config.colour_mix,
        &std.divisions,
        now,
    )?;
    // The region's own issuer id: its division and sequence 01 (tickets name it).
    let issuer = IssuerId::parse(&format!("{}01", dialect.region)).map_err(|_| {
        RegionSimError::Config(vec![format!(
            "dialect `{}`: region `{}` does not make an issuer id",
            dialect.id, dialect.region
        )])
    })?;
    let ticket = TicketKey::new(
        issuer.clone(),
        Sm4Key::generate().map_err(RegionSimError::Crypto)?,
    )
    .map_err(|_| RegionSimError::Config(vec!["ticket key".into()]))?;
    let routes = dialect
        .services
        .iter()
        .filter_map(|(name, s)| {
            let method = Method::from_bytes(s.method.to_ascii_uppercase().as_bytes()).ok()?;
            Some(((method, s.path.clone()), *name))
        })
        .collect();
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(RegionSimError::Bind)?;
    let addr = listener.local_addr().map_err(RegionSimError::Bind)?;
    let (stop, shutdown) = watch::channel(false);
    let tls = config.server.tls.is_some();
    let state = Arc::new(RegionState {
        dialect: Arc::new(dialect),
        routes,
        std,
        issuer,
        ticket,
        high_risk: config.high_risk_regions.iter().cloned().collect(),
        callers: config.callers,
        population: RwLock::new(population),
        grants: Mutex::new(Grants::default()),
        faults: ArcSwap::from_pointee(config.faults),
        rng: Mutex::new(Rng::new(config.seed ^ 0x5EED_FA17)),
        requests: AtomicU64::new(0),
        corrections: AtomicU64::new(0),
        callbacks: Mutex::new(Vec::new()),
        shutdown: shutdown.clone(),
    });
    let handler_state = Arc::clone(&state);
    let handler: server::Handler = Arc::new(move |req| {
        let state = Arc::clone(&handler_state);
        Box::pin(async move { handler::handle(&state, req).await })
    });
    let mut stopped = shutdown;
    let task = tokio::spawn(server::serve(
        listener,
        config.server,
        handler,
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        },
    ));
    Ok(RegionSimHandle {
        addr,
        tls,
        state,
        stop,
        task: Some(task),
    })
}
