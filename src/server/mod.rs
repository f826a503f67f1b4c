//! `hutong serve`: the gateway's listeners and the request path.
//!
//! ```text
//! TLS accept (rustls, ALPN h2/http1.1, optional client cert) → HTTP (hyper, header size
//! and read-time limits) → [pipeline] shed at the concurrency limit → deadline → body limit
//! → route to /phic/v1/{service} → envelope parse (1001/1002) → client lookup (1005)
//! → mTLS identity and access token (1005/1006) → envelope open: signature (1003), replay
//! window (1004), decryption (1008) → per-client rate limit (1007) → validate against
//! standard/ (1001/1002) → idempotency, cache, relay → audit → seal the answer → metrics.
//! ```
//!
//! `pipeline.rs` composes the stages in one function, in that order; `error.rs` turns any
//! failure into a return code in one place; `admin.rs` serves `/metrics`, `/live`, `/ready`.

mod admin;
pub mod bootstrap;
mod error;
mod http;
mod ingress;
mod modes;
mod page;
pub(crate) mod pipeline;
mod published;
pub mod recognition;
mod refusals;
pub mod services;
mod sources;
pub mod tls;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arc_swap::ArcSwap;
use serde_json::Value;
use zeroize::Zeroizing;

pub use error::GatewayError;
pub use http::{Peer, Running, start};

pub use ingress::INGRESS_PREFIX;
pub use pipeline::{
    CORRECTION_STATUS, LINK, LOSS_HEADER, PATH_PREFIX, PLATFORM_ENDPOINTS, STATUS_EVENT,
    TRUST_LIST_PATH, VENUE_CODE,
};

use crate::audit::{AuditWriter, Pseudonym, RedbAuditLog};
use crate::auth::TokenKeys;
use crate::cache::{MillisClock, ResponseCache};
use crate::config::{Client, Validated};
use crate::crypto::{DecryptionKey, SigningKey};
use crate::crypto::{MacKey, Sm4Key, sm3};
use crate::envelope::{EnvelopeLimits, MemoryNonceStore, NonceStore, NonceStoreConfig};
use crate::idempotency::{IdempotencyStore, RedbIdempotencyStore};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::standard::{ServiceName, Standard};
use crate::store::Store;

/// A boxed future, for the object-safe traits of the request path.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Errors that stop the gateway from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Certificates or keys of the listener.
    #[error("TLS: {0}")]
    Tls(String),
    /// Binding a listener.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Files the gateway needs.
    #[error("{0}")]
    Keys(String),
    /// Generating development files.
    #[error("first-start generation: {0}")]
    Bootstrap(String),
}

/// What a call answers: a value, or an answer the cache kept as compact JSON text, which
/// goes out as it is, without a parse and a write (a cache hit).
#[derive(Debug, Clone)]
pub enum Answer {
    /// The answer as a value.
    Value(Value),
    /// The text of a JSON object, as `serde_json` wrote it.
    Json(String),
}

impl Answer {
    /// The answer as a value (parsing kept text).
    ///
    /// # Errors
    /// [`GatewayError::Internal`] for kept text that is not JSON, which the cache never keeps.
    pub fn into_value(self) -> Result<Value, GatewayError> {
        match self {
            Self::Value(v) => Ok(v),
            Self::Json(t) => parse_kept(&t),
        }
    }

    /// The answer as a value, borrowed where it is one.
    ///
    /// # Errors
    /// As [`Answer::into_value`].
    pub fn to_value(&self) -> Result<std::borrow::Cow<'_, Value>, GatewayError> {
        match self {
            Self::Value(v) => Ok(std::borrow::Cow::Borrowed(v)),
            Self::Json(t) => parse_kept(t).map(std::borrow::Cow::Owned),
        }
    }

    /// The answer as a response's business content.
    pub fn biz(&self) -> crate::envelope::Biz<'_> {
        match self {
            Self::Value(v) => crate::envelope::Biz::Value(v),
            Self::Json(t) => crate::envelope::Biz::Json(t),
        }
    }
}

fn parse_kept(text: &str) -> Result<Value, GatewayError> {
    serde_json::from_str(text).map_err(|e| GatewayError::Internal(e.to_string()))
}

impl From<Value> for Answer {
    fn from(v: Value) -> Self {
        Self::Value(v)
    }
}

/// One authenticated, validated call on its way to a region.
#[derive(Debug, Clone)]
pub struct Call {
    /// The service.
    pub service: ServiceName,
    /// The caller.
    pub client: Client,
    /// The request's id, for idempotency and the audit.
    pub request_id: String,
    /// Whether `request_id` is the caller's own (the national envelope's `requestId`), so
    /// that a retry names it again. A dialect caller's is drawn by the gateway: no
    /// idempotency record is looked up or kept for it (one no retry could ever find).
    pub callers_request_id: bool,
    /// What translations lost on the way (a dialect region's answer, a dialect caller's
    /// request): it goes to the audit record and the `X-Hutong-Loss` header.
    pub losses: LossSink,
    /// The call's code content as a PHIC1 code, recognised once for all the stages that ask.
    pub code: CodeMemo,
    /// The pseudonym of the person the call names, made once for all the stages that ask.
    pub person: PersonMemo,
}

/// A call's `codeContent` recognised as PHIC1 once. Routing asks for it to authorise the
/// call, to find its freshness and to relay it, the local verification and the cache ask
/// again, and each parse of a URL form costs thousands of instructions. The content is kept
/// with the answer, so a stage that asks about other content gets its own parse.
#[derive(Clone, Default)]
pub struct CodeMemo(std::sync::OnceLock<(Box<str>, Option<crate::code::Recognised>)>);

/// The scanned content and its token are personal data: a `Call` in a log shows neither.
impl std::fmt::Debug for CodeMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeMemo(..)")
    }
}

impl CodeMemo {
    /// `content` recognised as PHIC1 ([`crate::code::Phic1Format`]).
    pub fn phic1(&self, content: &str) -> Option<std::borrow::Cow<'_, crate::code::Recognised>> {
        use crate::code::CodeFormat as _;
        let (kept, rec) = self
            .0
            .get_or_init(|| (content.into(), crate::code::Phic1Format.recognise(content)));
        if **kept == *content {
            rec.as_ref().map(std::borrow::Cow::Borrowed)
        } else {
            crate::code::Phic1Format
                .recognise(content)
                .map(std::borrow::Cow::Owned)
        }
    }
}

/// The pseudonym of the person a call names (`user`), made once. The audit record's subject
/// and a consent's check that it is for that person each asked for it, and each is an
/// HMAC-SM3 (about 6,900 instructions, 1.5% of a relayed `queryHealthInfo`). The type and
/// number it was made from are kept with it, so a stage that asks about another person gets
/// that person's own.
#[derive(Clone, Default)]
pub struct PersonMemo(std::sync::OnceLock<(Box<str>, Box<str>, Pseudonym)>);

/// The type and number are personal data: a `Call` in a log shows neither.
impl std::fmt::Debug for PersonMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonMemo(..)")
    }
}

impl PersonMemo {
    /// [`pseudonym`](crate::audit::pseudonym)`(key, id_type, id_no)`, made once a call.
    pub fn pseudonym(&self, key: &MacKey, id_type: &str, id_no: &str) -> Pseudonym {
        let (t, n, p) = self.0.get_or_init(|| {
            (
                id_type.into(),
                id_no.into(),
                crate::audit::pseudonym(key, id_type, id_no),
            )
        });
        if **t == *id_type && **n == *id_no {
            *p
        } else {
            crate::audit::pseudonym(key, id_type, id_no)
        }
    }
}

/// A call's loss report, filled in by whichever stage translates.
#[derive(Debug, Clone, Default)]
pub struct LossSink(Arc<std::sync::Mutex<crate::translate::LossReport>>);

impl LossSink {
    /// Adds `report` to the call's losses.
    pub fn add(&self, report: crate::translate::LossReport) {
        if report.is_empty() {
            return;
        }
        crate::store::lock(&self.0).extend(report);
    }

    /// Everything recorded so far.
    pub fn report(&self) -> crate::translate::LossReport {
        crate::store::lock(&self.0).clone()
    }
}

/// Why a status-change callback was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyFailure {
    /// What went wrong (a transport or region error, never personal data).
    pub why: String,
    /// No retry can mend it: the event cannot be put in the region's dialect (a colour its
    /// map lacks, a time its format cannot hold). The delivery is abandoned at once.
    pub permanent: bool,
    /// The region cannot take it now: its circuit breaker is open (nothing was sent), it
    /// is no longer configured, or it refused the gateway's credentials (401, 403). The
    /// delivery waits without spending one of its attempts, at most a day from the first
    /// such wait.
    pub not_sent: bool,
}

impl NotifyFailure {
    /// A failure a later attempt may not meet (the region down, slow, or refusing).
    pub fn retry(why: String) -> Self {
        Self {
            why,
            permanent: false,
            not_sent: false,
        }
    }
}

/// What answers a validated call: routing and the regions behind it.
pub trait Relay: Send + Sync {
    /// Answers `call` with the business content `biz`.
    fn relay<'a>(
        &'a self,
        call: &'a Call,
        biz: &'a Value,
    ) -> BoxFuture<'a, Result<Value, GatewayError>>;

    /// Whether the caller may read the answering region's data; checked before the cache,
    /// so a narrowed grant also stops cached answers.
    ///
    /// # Errors
    /// The refusal the caller gets.
    fn authorize(&self, _call: &Call, _biz: &Value) -> Result<(), GatewayError> {
        Ok(())
    }

    /// How long the answering region's status stays fresh (bounds the cache).
    fn freshness(&self, _call: &Call, _biz: &Value) -> std::time::Duration {
        std::time::Duration::from_secs(crate::config::raw::DEFAULT_REGION_VALIDITY_SECS)
    }

    /// [`Relay::relay`], saying which region answered and whom the answer was about.
    fn relay_reply<'a>(
        &'a self,
        call: &'a Call,
        biz: &'a Value,
    ) -> BoxFuture<'a, Result<Relayed, GatewayError>> {
        Box::pin(async move {
            Ok(Relayed {
                biz: self.relay(call, biz).await?,
                region: None,
                holder: None,
                losses: crate::translate::LossReport::default(),
            })
        })
    }

    /// Calls `service` at `region` for the gateway itself (a cross-region query).
    fn call_region<'a>(
        &'a self,
        region: &'a str,
        _service: ServiceName,
        _biz: &'a Value,
    ) -> BoxFuture<'a, Result<crate::upstream::Reply, GatewayError>> {
        Box::pin(async move { Err(GatewayError::Internal(format!("no region {region}"))) })
    }

    /// Whether `region` takes status-change callbacks.
    fn takes_callbacks(&self, _region: &str) -> bool {
        false
    }

    /// Calls made to regions for an answer so far, each counted once whatever its retries
    /// (`/metrics`' `hutong_upstream_calls_total`); `None` for a relay that does not count
    /// them (then the metric is left out).
    fn region_calls(&self) -> Option<u64> {
        None
    }

    /// The configured region that serves the GB/T 2260 `division`: the county, its
    /// prefecture or its province, the first configured (as calls from that area are
    /// routed). `None` when no region serves it.
    fn region_serving(&self, _division: &str) -> Option<String> {
        None
    }

    /// Sends a status-change callback to `region`; `Err` says why it was not acknowledged,
    /// and whether a retry could help.
    fn notify_region<'a>(
        &'a self,
        region: &'a str,
        _event: &'a Value,
    ) -> BoxFuture<'a, Result<(), NotifyFailure>> {
        Box::pin(async move { Err(NotifyFailure::retry(format!("no region {region}"))) })
    }

    /// The verifier of PHIC1 codes against the trust list in force, when there is one: the
    /// code page uses it, so a reload reaches the page too.
    fn local_verifier(&self) -> Option<crate::code::Verifier> {
        None
    }

    /// The region and local code id of a scanned code content, when a region's pattern
    /// (or a PHIC1 issuer) claims it.
    fn code_region(&self, _content: &str) -> Option<(String, Option<String>)> {
        None
    }
}

/// A relayed answer, with where it came from.
#[derive(Debug)]
pub struct Relayed {
    /// The national business content.
    pub biz: Value,
    /// The region that answered.
    pub region: Option<String>,
    /// The holder's full ID, when the region's answer carried it (it becomes a pseudonym at
    /// once).
    pub holder: Option<crate::upstream::HolderId>,
    /// What the exchange with the region lost (also added to the call's): an answer kept
    /// for other callers carries these, not what the caller's own request lost.
    pub losses: crate::translate::LossReport,
}

/// The shared state of the request path.
pub struct Gateway {
    /// The standard.
    pub standard: Arc<Standard>,
    /// The configuration; replaced whole on reload.
    pub config: ArcSwap<Validated>,
    /// Signs the gateway's answers.
    pub signing_key: SigningKey,
    /// Opens `encKey`s.
    pub decryption_key: DecryptionKey,
    /// Access-token keys.
    pub tokens: TokenKeys,
    /// The replay store.
    pub nonces: Arc<dyn NonceStore>,
    /// The embedded replay store and the file it is saved to across restarts.
    pub(crate) saved_nonces: SavedNonceStore,
    /// Envelope limits.
    pub limits: EnvelopeLimits,
    /// Counters.
    pub metrics: Metrics,
    /// What answers validated calls.
    pub relay: Arc<dyn Relay>,
    /// Rate limits (per IP, per client, per client and service).
    pub limiter: RateLimiter,
    /// Answers of `verifyCode` and `queryHealthInfo`.
    pub cache: ResponseCache<GatewayError>,
    /// The audit log, behind its writer thread.
    pub audit: AuditWriter,
    /// requestId idempotency records.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Secret of person pseudonyms.
    pub pseudonym_key: MacKey,
    /// Whether the gateway takes traffic (false while draining).
    pub ready: AtomicBool,
    /// The link registry: a person's codes across regions.
    pub links: Arc<dyn crate::link::LinkRegistry>,
    /// Status-change callbacks to regions, until delivered.
    pub outbox: Arc<crate::link::outbox::Outbox>,
    /// Wakes the callback delivery task.
    pub deliveries: tokio::sync::Notify,
    /// Seals and opens the gateway's BizExtData tickets.
    pub tickets: crate::ticket::TicketKey,
    /// Seals the person a consent token names (its `sub`): the app holding the token reads
    /// its claims, and the pseudonym, the same for every app, would let apps match people.
    pub(crate) consent_subjects: Sm4Key,
    /// Signs the national codes the gateway issues (mechanism 3), when configured.
    pub issuer: Option<crate::code::IssuerKey>,
    /// The embedded store (for the retention job).
    pub store: Store,
    /// Correction tickets, tracked to an answer.
    pub corrections: Arc<dyn crate::corrections::CorrectionStore>,
    /// Venue codes (场所码) the gateway issued.
    pub venues: crate::link::venue::Venues,
    /// Verifies the national codes whose pages the gateway serves, against the trust list,
    /// when the relay has no verifier of its own ([`Relay::local_verifier`] comes first).
    pub page_verifier: Option<crate::code::Verifier>,
    /// Signed answers to requests refused before anything of them was read (shed, over
    /// the per-IP limit, no such endpoint), kept a second each, so that a flood costs no
    /// signature per request.
    pub(crate) refusals: refusals::Refusals,
    /// Idempotent calls in progress, by `(appId, requestId)`.
    pub(crate) in_flight: services::InFlight,
    /// Region userTokens relayed from applyCodeAccess, with their person (a generateCode
    /// that brings one back is linked to that person).
    pub(crate) user_tokens: recognition::issuance::UserTokens,
    /// Requests in flight per source address, against `server.max_requests_per_ip`.
    pub(crate) requests_by_source: Arc<sources::Sources>,
    /// `gateway.code_host`, else `localhost:{port}` of the configured public listener: see
    /// [`code_host`](Self::code_host), which reads it.
    configured_code_host: String,
    /// Whether `gateway.code_host` named it (then a bound port changes nothing).
    code_host_set: bool,
    /// `localhost:{port}` of the bound listener, set by [`start`] when the configured port
    /// was 0 (the system's choice).
    bound_code_host: std::sync::OnceLock<String>,
}

impl Gateway {
    /// Idempotent calls in progress or waiting for a twin (zero when the gateway is idle).
    pub fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// The host of national code URLs (`https://{host}/phic/c?…`) that this gateway
    /// issues and whose page it serves: `gateway.code_host`, the public name phones reach;
    /// without it (development), `localhost:{port}` of the public listener. A listener
    /// configured on port 0 has its port once [`start`] has bound it; before that the host
    /// names port 0, which no code URL accepts.
    pub fn code_host(&self) -> &str {
        self.bound_code_host
            .get()
            .unwrap_or(&self.configured_code_host)
    }

    /// Records the port the public listener was bound to, when the configuration left the
    /// choice to the system (port 0); otherwise the configured host stands. The first bind
    /// counts: a second [`start`] of the same gateway keeps the first port.
    pub(crate) fn listener_bound(
        &self,
        configured: std::net::SocketAddr,
        bound: std::net::SocketAddr,
    ) {
        if configured.port() == 0 && !self.code_host_set {
            let _ = self
                .bound_code_host
                .set(format!("localhost:{}", bound.port()));
        }
    }

    /// Builds the state from a validated configuration: loads the keys it names.
    ///
    /// # Errors
    /// [`ServerError::Keys`] naming a missing or malformed key file.
    pub fn new(config: Validated, relay: Arc<dyn Relay>) -> Result<Self, ServerError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| ServerError::Keys(format!("{}: {e}", p.display())))
        };
        let g = &config.gateway;
        for loose in modes::loose_modes(&config) {
            tracing::warn!(file = %loose, "file mode wider than it should be");
        }
        let signing_key = SigningKey::from_pem(&read(&g.signing_key_file)?)
            .map_err(|e| ServerError::Keys(format!("{}: {e}", g.signing_key_file.display())))?;
        let decryption_key = DecryptionKey::from_pem(&read(&g.encryption_key_file)?)
            .map_err(|e| ServerError::Keys(format!("{}: {e}", g.encryption_key_file.display())))?;
        let tokens = TokenKeys::load(
            &config.auth.jwt_key_file,
            &config.auth.issuer,
            &config.auth.audience,
        )
        .map_err(|e| ServerError::Keys(e.to_string()))?;
        let secret = read_pseudonym_secret(&g.pseudonym_secret_file)?;
        let pseudonym_key = MacKey::from_bytes(&secret).map_err(|e| {
            ServerError::Keys(format!("{}: {e}", g.pseudonym_secret_file.display()))
        })?;
        // Bodies kept for idempotency are personal data: SM4 at rest, under a key derived
        // from the pseudonym secret (one secret to protect, two uses kept apart).
        let body_key = data_at_rest_key(&secret)?;
        let store = Store::open_with_cache(&g.data_dir, g.store_cache_mib.saturating_mul(1 << 20))
            .map_err(|e| ServerError::Keys(format!("store: {e}")))?;
        let limiter = RateLimiter::new(&config.limits);
        for c in config.clients.values() {
            limiter.set_client_limits(
                &c.app_id,
                c.rate_limit.per_client,
                c.rate_limit.per_client_service,
            );
        }
        let cache = ResponseCache::new(&config.cache, MillisClock::system());
        let links: Arc<dyn crate::link::LinkRegistry> =
            Arc::new(crate::link::RedbLinks::new(store.clone(), body_key.clone()));
        let outbox = Arc::new(
            crate::link::outbox::Outbox::new(store.clone(), body_key.clone())
                .map_err(|e| ServerError::Keys(format!("callback outbox: {e}")))?,
        );
        let tickets = recognition::ticket_key(&secret).map_err(ServerError::Keys)?;
        let consent_subjects = derived_sm4_key(b"hutong consent subjects v1", &secret)
            .map_err(|e| ServerError::Keys(e.to_string()))?;
        let venues = crate::link::venue::Venues::new(store.clone());
        let corrections: Arc<dyn crate::corrections::CorrectionStore> =
            Arc::new(crate::corrections::RedbCorrectionStore::new(store.clone()));
        let issuer = issuer_key(&config)?;
        // The page reads the router's verifier (and its key tables) when the router has one;
        // a relay without one (tests, custom wiring) gets the page its own.
        let page_verifier = match relay.local_verifier() {
            Some(_) => None,
            None => crate::route::local_verifier(&config, None)?,
        };
        // The public address phones reach; without one, the development default.
        let configured_code_host = g
            .code_host
            .clone()
            .unwrap_or_else(|| format!("localhost:{}", config.server.listen.port()));
        let code_host_set = g.code_host.is_some();
        let saved_nonces = SavedNonceStore::open(&g.data_dir, &secret, config.replay.clone());
        let audit = AuditWriter::start_embedded(
            Arc::new(RedbAuditLog::new(store.clone())),
            config.audit.policy(),
            &g.data_dir.join(crate::audit::journal::JOURNAL_FILE),
        )
        .map_err(|e| ServerError::Keys(format!("audit: {e}")))?;
        Ok(Self {
            standard: Standard::embedded(),
            config: ArcSwap::from_pointee(config),
            signing_key,
            decryption_key,
            tokens,
            nonces: Arc::clone(&saved_nonces.store) as Arc<dyn NonceStore>,
            saved_nonces,
            limits: EnvelopeLimits::default(),
            metrics: Metrics::default(),
            relay,
            limiter,
            cache,
            audit,
            idempotency: Arc::new(RedbIdempotencyStore::new(store.clone(), body_key)),
            pseudonym_key,
            ready: AtomicBool::new(true),
            links,
            outbox,
            deliveries: tokio::sync::Notify::new(),
            tickets,
            consent_subjects,
            issuer,
            store: store.clone(),
            corrections,
            venues,
            page_verifier,
            refusals: refusals::Refusals::default(),
            in_flight: services::InFlight::default(),
            requests_by_source: Arc::default(),
            user_tokens: recognition::issuance::UserTokens::default(),
            configured_code_host,
            code_host_set,
            bound_code_host: std::sync::OnceLock::new(),
        })
    }
}

/// The replay store of the embedded default, kept across restarts in `nonces.bin` in the
/// data directory ([`MemoryNonceStore::save`]): loaded at start, saved every
/// [`NONCE_SAVE_EVERY`](crate::envelope::NONCE_SAVE_EVERY) and once more after the drain at shutdown. Its digests are keyed by a
/// key derived from the pseudonym secret, so that the next process computes the same ones.
pub(crate) struct SavedNonceStore {
    store: Arc<MemoryNonceStore>,
    path: PathBuf,
    /// One save at a time: the last one, after the drain, may find a periodic one running,
    /// and waits for it rather than writing the same temporary file beside it.
    saving: std::sync::Mutex<()>,
}

impl SavedNonceStore {
    /// The file's name in the data directory.
    pub(crate) const FILE: &'static str = "nonces.bin";

    /// A store with what the last process saved. A file that cannot be loaded is named in
    /// the log, and the store starts empty: a restart then forgets the nonces, as it did
    /// before they were saved (README "Request path").
    fn open(data_dir: &Path, secret: &[u8], config: NonceStoreConfig) -> Self {
        let key = crate::crypto::DigestKey::derived(b"hutong replay store v1", secret);
        let store = Arc::new(MemoryNonceStore::with_key(config, key));
        let path = data_dir.join(Self::FILE);
        match store.load(&path, pipeline::now_ms()) {
            // Nonces the store's caps (lowered since the save) left out: those requests
            // could be sent again until they expire.
            Ok(found) if found.refused > 0 => tracing::warn!(
                file = %path.display(),
                loaded = found.loaded,
                refused = found.refused,
                "replay store loaded in part: nonces past [replay]'s caps were left out"
            ),
            Ok(found) if found.saved_at_ms > pipeline::now_ms() => tracing::warn!(
                file = %path.display(),
                loaded = found.loaded,
                ahead_ms = found.saved_at_ms.saturating_sub(pipeline::now_ms()),
                "replay store saved by a clock ahead of this one: its nonces are held a TTL \
                 past the save (at most an hour past now); check the clock"
            ),
            Ok(found) if found.saved_at_ms > 0 => tracing::info!(
                file = %path.display(),
                loaded = found.loaded,
                expired = found.expired,
                refused = found.refused,
                saved_at_ms = found.saved_at_ms,
                "replay store loaded"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(
                error = %e,
                "replay store not loaded; nonces of requests before this start are forgotten"
            ),
        }
        Self {
            store,
            path,
            saving: std::sync::Mutex::new(()),
        }
    }

    /// Saves the store now, and logs how it went; returns the nonces saved. Blocking: call
    /// it off the runtime's workers.
    pub(crate) fn save(&self, metrics: &Metrics) -> Option<usize> {
        let _one = self
            .saving
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let started = std::time::Instant::now();
        match self.store.save(&self.path, pipeline::now_ms()) {
            Ok(n) => {
                metrics
                    .replay_saves
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(
                    nonces = n,
                    ms = started.elapsed().as_millis() as u64,
                    "replay store saved"
                );
                Some(n)
            }
            Err(e) => {
                metrics
                    .replay_save_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(error = %e, "replay store not saved");
                None
            }
        }
    }

    /// The last save of a process that stops: the store refuses every nonce from here on
    /// (a request still running past the drain's grace is refused, fail closed, rather than
    /// accepted unsaved), then is saved.
    pub(crate) fn close_and_save(&self, metrics: &Metrics) {
        self.store.close();
        self.save(metrics);
    }
}

#[cfg(test)]
mod saved_nonce_tests {
    use super::*;
    use crate::envelope::NonceCheck;

    /// The saved store of `dir`, under one secret and the default caps.
    fn open_at(dir: &Path) -> SavedNonceStore {
        SavedNonceStore::open(
            dir,
            b"0123456789abcdef0123456789abcdef",
            NonceStoreConfig::default(),
        )
    }

    #[test]
    fn saves_that_overlap_take_turns_and_the_last_one_is_whole() {
        let dir = crate::testutil::fresh_dir("saved-nonces");
        std::fs::create_dir_all(&dir).unwrap();
        let saved = open_at(&dir);
        let metrics = Metrics::default();
        let now = pipeline::now_ms();
        for i in 0..20_000 {
            saved.store.check_and_insert("A1", &format!("{i}"), now);
        }
        // The periodic save and the last one, at once, many times over: every save is
        // written whole, by itself.
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..10 {
                        assert_eq!(saved.save(&metrics), Some(20_000));
                    }
                });
            }
        });
        saved.close_and_save(&metrics);
        assert_eq!(
            metrics
                .replay_saves
                .load(std::sync::atomic::Ordering::Relaxed),
            21
        );
        assert_eq!(
            metrics
                .replay_save_failures
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        assert_eq!(
            saved
                .store
                .check_and_insert("A1", "after the last save", now),
            NonceCheck::Unavailable,
            "a closed store accepts nothing the last save would miss"
        );
        let next = open_at(&dir);
        assert_eq!(
            next.store.fill(),
            Some((20_000, crate::envelope::DEFAULT_MAX_NONCES as u64))
        );
        assert_eq!(
            next.store.check_and_insert("A1", "7", now),
            NonceCheck::Replayed
        );
        assert_eq!(
            next.store.check_and_insert("A1", "new", now),
            NonceCheck::Fresh
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_save_that_fails_is_counted_and_keeps_the_file_before() {
        let dir = crate::testutil::fresh_dir("saved-nonces");
        std::fs::create_dir_all(&dir).unwrap();
        let saved = open_at(&dir);
        let metrics = Metrics::default();
        saved.store.check_and_insert("A1", "1", pipeline::now_ms());
        assert_eq!(saved.save(&metrics), Some(1));
        // The temporary file's place is taken by a directory: the next save cannot write.
        let tmp = crate::cli::temporary_for(&dir.join(SavedNonceStore::FILE)).unwrap();
        std::fs::create_dir_all(tmp.join("in the way")).unwrap();
        saved.store.check_and_insert("A1", "2", pipeline::now_ms());
        assert_eq!(saved.save(&metrics), None);
        let load = |m: &std::sync::atomic::AtomicU64| m.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            (
                load(&metrics.replay_saves),
                load(&metrics.replay_save_failures)
            ),
            (1, 1)
        );
        let text = metrics.render(&crate::metrics::Gauges::default());
        assert!(
            text.contains("\nhutong_replay_store_save_failures_total 1\n"),
            "{text}"
        );
        // The file of the good save is whole.
        std::fs::remove_dir_all(&tmp).unwrap();
        let next = open_at(&dir);
        assert_eq!(next.store.fill().map(|(n, _)| n), Some(1));
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The gateway's national-code issuer key: the `[trust]` issuer id and key file, when both
/// are configured and the key file exists.
fn issuer_key(config: &Validated) -> Result<Option<crate::code::IssuerKey>, ServerError> {
    let Some(t) = &config.trust else {
        return Ok(None);
    };
    let (Some(id), Some(file)) = (&t.dev_issuer_id, &t.dev_issuer_key_file) else {
        return Ok(None);
    };
    if !file.exists() {
        // Configured, not there: the gateway serves without issuing national codes, and
        // says so (bootstrap would have made it on a development machine).
        tracing::warn!(
            path = %file.display(),
            "trust.dev_issuer_key_file is missing: the gateway issues no national codes"
        );
        return Ok(None);
    }
    let bad = |e: &dyn std::fmt::Display| ServerError::Keys(format!("{}: {e}", file.display()));
    let pem = std::fs::read_to_string(file).map_err(|e| bad(&e))?;
    let key = SigningKey::from_pem(&pem).map_err(|e| bad(&e))?;
    let id = crate::trust::IssuerId::parse(id).map_err(|e| bad(&e))?;
    let kid = crate::trust::Kid::parse(bootstrap::DEV_ISSUER_KID).map_err(|e| bad(&e))?;
    Ok(Some(crate::code::IssuerKey::new(id, kid, key)))
}

/// An SM4 key derived from the pseudonym secret for one use, named by `label`: SM3 of
/// `label ‖ secret`, first 16 bytes. One secret to protect; its uses kept apart.
pub(crate) fn derived_sm4_key(
    label: &[u8],
    secret: &[u8],
) -> Result<Sm4Key, crate::crypto::CryptoError> {
    let mut material = Zeroizing::new(label.to_vec());
    material.extend_from_slice(secret);
    Sm4Key::from_bytes(&sm3(&material)[..16])
}

/// The pseudonym secret, from its hex file.
pub(crate) fn read_pseudonym_secret(path: &Path) -> Result<Zeroizing<Vec<u8>>, ServerError> {
    let hex = std::fs::read_to_string(path)
        .map_err(|e| ServerError::Keys(format!("{}: {e}", path.display())))?;
    crate::crypto::decode_hex(hex.trim(), "pseudonym secret")
        .map(|k| Zeroizing::new(k.to_vec()))
        .map_err(|_| ServerError::Keys(format!("{}: expected hex", path.display())))
}

/// The data-at-rest key (link entries, idempotency bodies, callbacks), derived from the
/// pseudonym secret.
pub(crate) fn data_at_rest_key(secret: &[u8]) -> Result<Sm4Key, ServerError> {
    derived_sm4_key(b"hutong data at rest v1", secret).map_err(|e| ServerError::Keys(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::pseudonym;

    fn key() -> MacKey {
        MacKey::from_bytes(b"0123456789abcdef0123456789abcdef").expect("key")
    }

    #[test]
    fn a_person_memo_gives_each_person_their_own_pseudonym() {
        let memo = PersonMemo::default();
        let first = memo.pseudonym(&key(), "10", "11010519491231002X");
        assert_eq!(first, pseudonym(&key(), "10", "11010519491231002X"));
        // Asked again for the same person: the one made first.
        assert_eq!(memo.pseudonym(&key(), "10", "11010519491231002X"), first);
        // Another number, or the same number as another type, is another person: never the
        // memo's.
        let other = memo.pseudonym(&key(), "10", "110105194912310038");
        assert_eq!(other, pseudonym(&key(), "10", "110105194912310038"));
        assert_ne!(other, first);
        let passport = memo.pseudonym(&key(), "11", "11010519491231002X");
        assert_eq!(passport, pseudonym(&key(), "11", "11010519491231002X"));
        assert_ne!(passport, first);
        // And the first is still the memo's.
        assert_eq!(memo.pseudonym(&key(), "10", "11010519491231002X"), first);
        assert_eq!(format!("{memo:?}"), "PersonMemo(..)");
    }
}
