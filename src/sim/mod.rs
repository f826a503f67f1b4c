//! `hutong sim --national`: a reference region back-end that speaks the national envelope
//! over real HTTP, so the gateway can be driven end to end before any dialect exists
//! (DESIGN.md §6). It serves tests, the demo and the benchmarks.
//!
//! One request goes through it in this order:
//!
//! ```text
//! POST /phic/v1/{service} ─ server (body ≤ 1 MiB) ─ latency ─ envelope opened for a known
//! client (1001…1008) ─ fault roll (hang, garbage, 9999) ─ business content validated
//! (1001, 1002) ─ idempotency (declarations, corrections) ─ services::dispatch
//! ─ seal_response, signed with the simulator's key in the request's sign type
//! ```
//!
//! (A client with a rate limit is refused with 1007 right after its envelope is opened.)
//!
//! Files: `server` (generic HTTP server), `population` (synthetic people), `services` (the
//! seven services), `grants` (authCodes), `ticket` (BizExtData tickets), `faults`, `clients`
//! (the clients file), `quota` (per-client rate limits), `defects` (seeded deviations from
//! the standard, off by default, that a conformance suite must catch).
//! [`region`] is `hutong sim --region <dialect>`: the same population, tickets and faults
//! behind any regional dialect's own API instead of the national envelope.
//! The simulator's keys are generated at start ([`SimKeys`]); [`write_public_keys`] puts
//! the public halves where a gateway or a test can trust them.

pub mod clients;
pub mod defects;
pub mod faults;
mod grants;
mod handler;
mod names;
pub mod population;
mod published;
mod quota;
pub mod region;
pub mod server;
mod services;
pub use crate::ticket;

#[cfg(test)]
mod defects_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::code::{IssuerKey, SystemClock, Verifier, VerifierConfig};
use crate::crypto::{CryptoError, DecryptionKey, EncryptionKey, SigningKey, Sm4Key, VerifyingKey};
use crate::envelope::{ClientCredentials, EnvelopeLimits, MemoryNonceStore, NonceStoreConfig};
use crate::ratelimit::RateLimitConfig;
use crate::standard::Standard;
use crate::trust::{Issuer, IssuerId, KeyStatus, Kid, TrustList, TrustRegistry, TrustedKey};

pub use clients::{SimClients, load_clients, parse_clients};
pub use defects::{Defect, Defects, UnknownDefect, defect_list};
pub use faults::{Fault, Faults};
pub use population::{ColourMix, Person, Population};
pub use server::{ServerConfig, ServerError};
pub use services::{AUTH_CODE_TTL_SECS, REFRESH_INTERVAL_SECS};
pub use ticket::{TicketError, TicketKey};

use grants::Grants;
use handler::Idempotency;
use population::Rng;
pub use published::{conformance_fixtures, write_public_keys};
use quota::ClientQuotas;

/// Path prefix of the national services.
pub const SERVICE_PATH_PREFIX: &str = "/phic/v1/";

/// Default lifetime of an issued PHIC1 code, seconds (profile §2.4: at most 5 minutes).
pub const DEFAULT_CODE_TTL_SECS: u32 = 300;

/// Key id of the simulator's issuer key.
pub const ISSUER_KID: &str = "sim-1";

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration (flags or clients file) is invalid; every problem is listed.
    #[error("invalid simulator configuration:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    /// Generating or encoding a key failed (the OS RNG, or PEM encoding).
    #[error("key material: {0}")]
    Crypto(CryptoError),
    /// The listen address could not be bound or read.
    #[error("cannot listen: {0}")]
    Bind(std::io::Error),
    /// A key file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP server failed (TLS configuration, listener).
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A bug: a value that always serialises did not.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl SimError {
    /// The same error with each configuration problem prefixed by `file`.
    pub fn in_file(self, file: &str) -> Self {
        match self {
            Self::Config(p) => {
                Self::Config(p.into_iter().map(|m| format!("{file}: {m}")).collect())
            }
            other => other,
        }
    }
}

/// The simulator's secret keys. `Debug` hides them.
#[derive(Debug)]
pub struct SimKeys {
    /// Signs SM2 answers.
    pub response: SigningKey,
    /// Signs PHIC1 codes.
    pub issuer: SigningKey,
    /// Decrypts `encKey` (per-request SM4 keys).
    pub encryption: DecryptionKey,
    /// Seals BizExtData tickets.
    pub ticket: Sm4Key,
}

impl SimKeys {
    /// Fresh keys from the OS RNG.
    pub fn generate() -> Result<Self, SimError> {
        Ok(Self {
            response: SigningKey::generate().map_err(SimError::Crypto)?,
            issuer: SigningKey::generate().map_err(SimError::Crypto)?,
            encryption: DecryptionKey::generate().map_err(SimError::Crypto)?,
            ticket: Sm4Key::generate().map_err(SimError::Crypto)?,
        })
    }

    /// The public halves.
    pub fn public(&self) -> SimPublicKeys {
        SimPublicKeys {
            response: self.response.verifying_key(),
            issuer: self.issuer.verifying_key(),
            encryption: self.encryption.encryption_key(),
        }
    }
}

/// What a caller of the simulator needs to trust it.
#[derive(Debug, Clone)]
pub struct SimPublicKeys {
    /// Verifies the simulator's SM2-signed answers.
    pub response: VerifyingKey,
    /// Verifies the PHIC1 codes it issues (key id [`ISSUER_KID`]).
    pub issuer: VerifyingKey,
    /// Encrypts per-request SM4 keys (`encKey`) to the simulator.
    pub encryption: EncryptionKey,
}

/// Everything the simulator is told.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of the population and of the fault rolls.
    pub seed: u64,
    /// Number of people.
    pub population: usize,
    /// The region simulated: a current GB/T 2260 code (its counties are home to the people).
    pub region: String,
    /// The issuer id of its codes.
    pub issuer: IssuerId,
    /// Host of its code URLs (`https://{host}/phic/c?…`).
    pub code_host: String,
    /// Colour mix of the population.
    pub colour_mix: ColourMix,
    /// Divisions whose visit turns a declared trip yellow.
    pub high_risk_regions: Vec<String>,
    /// Lifetime of an issued code, seconds.
    pub code_ttl_secs: u32,
    /// Lifetime of an `authCode` it grants, seconds (its `expiresIn`; 1 to 300, the
    /// schema's bound).
    pub auth_code_ttl_secs: u32,
    /// Faults to inject.
    pub faults: Faults,
    /// The clients that may call it, by `appId`.
    pub clients: HashMap<String, ClientCredentials>,
    /// Rate limits of the clients that have one, by `appId`; a client without one is
    /// unlimited (the default: none). Over its limit a client is answered 1007, HTTP 429.
    pub rate_limits: HashMap<String, RateLimitConfig>,
    /// Seeded deviations from the standard ([`Defect`]); the default, none, is a conforming
    /// simulator.
    pub defects: Defects,
    /// Envelope limits.
    pub limits: EnvelopeLimits,
    /// The HTTP server's limits and TLS.
    pub server: ServerConfig,
}

impl SimConfig {
    /// Defaults for region 330000, issuer 33000001, 1000 people, seed 1, no faults.
    pub fn new(clients: HashMap<String, ClientCredentials>) -> Self {
        Self {
            seed: 1,
            population: 1000,
            region: "330000".to_owned(),
            // A literal 8-digit id.
            issuer: IssuerId::parse("33000001").unwrap_or_else(|_| unreachable!()),
            code_host: "code.sim-330000.example.cn".to_owned(),
            colour_mix: ColourMix::default(),
            high_risk_regions: Vec::new(),
            code_ttl_secs: DEFAULT_CODE_TTL_SECS,
            auth_code_ttl_secs: AUTH_CODE_TTL_SECS,
            faults: Faults::default(),
            clients,
            rate_limits: HashMap::new(),
            defects: Defects::NONE,
            limits: EnvelopeLimits::default(),
            server: ServerConfig::default(),
        }
    }

    /// Every problem with the configuration.
    pub fn problems(&self, std: &Standard) -> Vec<String> {
        let mut out = self.faults.problems();
        if !std.divisions.is_current(&self.region) {
            out.push(format!(
                "region `{}` is not a current GB/T 2260 division",
                self.region
            ));
        }
        if !std.divisions.is_current(self.issuer.region().as_str()) {
            out.push(format!(
                "issuer `{}` does not start with a current GB/T 2260 division",
                self.issuer
            ));
        }
        for r in &self.high_risk_regions {
            if !std.divisions.is_current(r) {
                out.push(format!(
                    "high-risk region `{r}` is not a current GB/T 2260 division"
                ));
            }
        }
        if self.code_ttl_secs == 0 || self.code_ttl_secs > 86_400 {
            out.push("code lifetime must be 1 to 86400 seconds".to_owned());
        }
        if !(1..=AUTH_CODE_TTL_SECS).contains(&self.auth_code_ttl_secs) {
            out.push(format!(
                "authCode lifetime must be 1 to {} seconds",
                AUTH_CODE_TTL_SECS
            ));
        }
        if self.clients.is_empty() {
            out.push("no client may call the simulator".to_owned());
        }
        let mut limited: Vec<&String> = self
            .rate_limits
            .keys()
            .filter(|app| !self.clients.contains_key(*app))
            .collect();
        limited.sort();
        for app in limited {
            out.push(format!("rate limit for `{app}`, which is not a client"));
        }
        let probe = format!(
            "https://{}/phic/c?v=1&cid={}&iss={}",
            self.code_host,
            "0".repeat(32),
            self.issuer
        );
        if crate::code::CodeUrl::parse(&probe).is_err() {
            out.push(format!(
                "code host `{}` is not a lowercase host name with an optional port",
                self.code_host
            ));
        }
        if self.population > population::MAX_POPULATION {
            out.push(format!(
                "population {} is over the limit of {}",
                self.population,
                population::MAX_POPULATION
            ));
        }
        out
    }
}

fn issuer_kid() -> Kid {
    // A literal that satisfies the kid rules.
    Kid::parse(ISSUER_KID).unwrap_or_else(|_| unreachable!())
}

/// The simulator's state, shared by every request.
pub(crate) struct SimState {
    std: Arc<Standard>,
    issuer: IssuerId,
    code_host: String,
    code_ttl_secs: u32,
    auth_code_ttl_secs: u32,
    high_risk: HashSet<String>,
    response_key: SigningKey,
    decryption_key: DecryptionKey,
    issuer_key: IssuerKey,
    ticket: TicketKey,
    verifier: Verifier,
    clients: HashMap<String, ClientCredentials>,
    quotas: ClientQuotas,
    defects: Defects,
    nonces: MemoryNonceStore,
    limits: EnvelopeLimits,
    population: RwLock<Population>,
    grants: Mutex<Grants>,
    idempotency: Mutex<Idempotency>,
    faults: ArcSwap<Faults>,
    rng: Mutex<Rng>,
    requests: AtomicU64,
    corrections: AtomicU64,
    shutdown: watch::Receiver<bool>,
}

impl SimState {
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

/// A simulator serving on a socket. Dropping it begins a graceful shutdown.
#[derive(Debug)]
pub struct RunningSim {
    addr: SocketAddr,
    tls: bool,
    issuer: IssuerId,
    keys: SimPublicKeys,
    state: Arc<SimState>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<Result<(), ServerError>>>,
}

impl std::fmt::Debug for SimState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimState")
            .field("issuer", &self.issuer)
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl RunningSim {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (or `https://…`).
    pub fn base_url(&self) -> String {
        server::base_url(self.addr, self.tls)
    }

    /// The issuer id of its codes.
    pub fn issuer(&self) -> &IssuerId {
        &self.issuer
    }

    /// Its public keys.
    pub fn public_keys(&self) -> &SimPublicKeys {
        &self.keys
    }

    /// Requests routed to a service so far (whatever their outcome).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    /// Corrections accepted so far.
    pub fn corrections(&self) -> u64 {
        self.state.corrections.load(Ordering::Relaxed)
    }

    /// Replaces the fault settings; requests that start afterwards use them.
    pub fn set_faults(&self, faults: Faults) -> Result<(), SimError> {
        let problems = faults.problems();
        if !problems.is_empty() {
            return Err(SimError::Config(problems));
        }
        self.state.faults.store(Arc::new(faults));
        Ok(())
    }

    /// Runs `f` on the population (for tests and demos that need to know who exists).
    pub fn with_population<R>(&self, f: impl FnOnce(&Population) -> R) -> R {
        f(&self.state.population())
    }

    /// Stops accepting, lets requests in flight finish (hung ones are released), and
    /// waits for the server to end.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        let _ = self.stop.send(true);
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        match task.await {
            Ok(r) => r.map_err(SimError::Server),
            Err(_) => Err(SimError::Internal("server task panicked")),
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Builds the simulator and starts serving on `listener` (already bound).
pub async fn start(
    config: SimConfig,
    keys: SimKeys,
    listener: TcpListener,
) -> Result<RunningSim, SimError> {
    let std = Standard::embedded();
    let problems = config.problems(&std);
    if !problems.is_empty() {
        return Err(SimError::Config(problems));
    }
    let addr = listener.local_addr().map_err(SimError::Bind)?;
    let now = now_ms() / 1000;
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let population = Population::generate(
        config.seed,
        config.population,
        &config.region,
        config.colour_mix,
        &std.divisions,
        now,
    )?;
    let public = keys.public();
    let registry = TrustRegistry::new(TrustList {
        version: 1,
        issued_at: now,
        issuers: vec![Issuer {
            id: config.issuer.clone(),
            region: config.issuer.region(),
            name: format!("{} 模拟发码机构", config.issuer),
            keys: vec![TrustedKey {
                kid: issuer_kid(),
                public_key: public.issuer.clone(),
                not_before: 0,
                not_after: i64::MAX / 2,
                status: KeyStatus::Active,
            }],
        }],
    })
    .map_err(|_| SimError::Internal("own trust list is invalid"))?;
    let verifier = Verifier::new(
        Arc::new(registry),
        Arc::new(SystemClock),
        VerifierConfig::default(),
    );
    let (stop, shutdown) = watch::channel(false);
    let tls = config.server.tls.is_some();
    // DEFECT wrong-response-key: answers are signed with a fresh key nobody was given, while
    // `public` (and `--keys-out`) still publish the real one.
    let response_key = if config.defects.contains(Defect::WrongResponseKey) {
        SigningKey::generate().map_err(SimError::Crypto)?
    } else {
        keys.response
    };
    if !config.defects.is_empty() {
        tracing::warn!(
            defects = %config.defects,
            "seeded defects are on: this simulator deliberately breaks the standard"
        );
    }
    let state = Arc::new(SimState {
        std,
        issuer: config.issuer.clone(),
        code_host: config.code_host.clone(),
        code_ttl_secs: config.code_ttl_secs,
        auth_code_ttl_secs: config.auth_code_ttl_secs,
        high_risk: config.high_risk_regions.iter().cloned().collect(),
        response_key,
        decryption_key: keys.encryption,
        issuer_key: IssuerKey::new(config.issuer.clone(), issuer_kid(), keys.issuer),
        ticket: TicketKey::new(config.issuer.clone(), keys.ticket)
            .map_err(|_| SimError::Internal("ticket key"))?,
        verifier,
        clients: config.clients,
        quotas: ClientQuotas::new(&config.rate_limits),
        defects: config.defects,
        nonces: MemoryNonceStore::new(NonceStoreConfig::default()),
        limits: config.limits,
        population: RwLock::new(population),
        grants: Mutex::new(Grants::default()),
        idempotency: Mutex::new(Idempotency::default()),
        faults: ArcSwap::from_pointee(config.faults),
        rng: Mutex::new(Rng::new(config.seed ^ 0x5EED_FA17)),
        requests: AtomicU64::new(0),
        corrections: AtomicU64::new(0),
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
    Ok(RunningSim {
        addr,
        tls,
        issuer: config.issuer,
        keys: public,
        state,
        stop,
        task: Some(task),
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
