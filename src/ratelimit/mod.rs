//! Rate limiting (DESIGN.md §5): per source IP before authentication, then per client
//! (`appId`) and per client and service after it. A refusal is [`Limited`]: return code 1007
//! with a `Retry-After`.
//!
//! # Where it sits
//!
//! ```text
//! … body limit → check_ip → authentication → check_client → route …
//! ```
//!
//! [`RateLimiter::check_ip`] runs before any signature is verified, so an unauthenticated
//! flood costs a hash-map lookup, not an SM2 verify. [`RateLimiter::check_client`] runs once
//! the `appId` is proven and the service is known.
//!
//! # Design
//!
//! governor (GCRA) behind a domain type, after linkerd2-proxy's `local_rate_limit`: three
//! keyed limiters for the defaults, plus one bucket (and one per service) for each client
//! with its own quota. Everything is generic over governor's [`Clock`], so tests drive a
//! [`governor::clock::FakeRelativeClock`] and never sleep.
//!
//! The settings live in one immutable snapshot behind an [`ArcSwap`]: a check loads it
//! without locking, and [`RateLimiter::reconfigure`] and [`RateLimiter::set_client_limits`]
//! publish a new one. See [`RateLimiter::reconfigure`] for what a reload does to buckets
//! already in use, and the `limiter` module for how keyed state stays bounded.
//!
//! This is the in-process tier. The cluster tier of DESIGN.md §7 (a shared Redis GCRA quota
//! behind this one) is not here yet.

mod config;
mod error;
mod limiter;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use governor::clock::{Clock, DefaultClock};

pub use config::{
    ClientLimitsConfig, DEFAULT_PER_CLIENT, DEFAULT_PER_CLIENT_BURST,
    DEFAULT_PER_CLIENT_PER_SECOND, DEFAULT_PER_IP, DEFAULT_PER_IP_BURST, DEFAULT_PER_IP_PER_SECOND,
    LimitsConfig, RateLimitConfig,
};
pub use error::{LimitScope, Limited};

use crate::standard::ServiceName;
use limiter::{Direct, Keyed};

/// The gateway's rate limiter. Cheap to share (`Arc`); every method takes `&self`.
pub struct RateLimiter<C: Clock = DefaultClock> {
    clock: C,
    limits: ArcSwap<Limits<C>>,
    /// Serialises writers, so a `set_client_limits` racing a `reconfigure` is not lost.
    /// Checks never take it.
    write: Mutex<()>,
}

/// One published snapshot of every limiter.
struct Limits<C: Clock> {
    config: LimitsConfig,
    per_ip: Arc<Keyed<IpAddr, C>>,
    per_client: Arc<Keyed<Arc<str>, C>>,
    per_client_service: Option<Arc<Keyed<ClientService, C>>>,
    clients: HashMap<Arc<str>, Arc<ClientOverride<C>>>,
}

/// The key of the default per-client-service limiter.
type ClientService = (Arc<str>, ServiceName);

/// A client's own limits. A `None` field falls back to the default keyed limiter.
struct ClientOverride<C: Clock> {
    per_client: Option<Arc<Direct<C>>>,
    per_client_service: Option<Arc<PerService<C>>>,
}

/// One bucket per service, for one client.
struct PerService<C: Clock> {
    config: RateLimitConfig,
    by_service: [Direct<C>; ServiceName::ALL.len()],
}

/// How many keys each keyed limiter holds, for metrics and for tests of the memory bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrackedKeys {
    /// Source addresses (IPv6 by /64) in the per-IP limiter.
    pub per_ip: usize,
    /// Clients in the default per-client limiter.
    pub per_client: usize,
    /// (client, service) pairs in the default per-client-service limiter.
    pub per_client_service: usize,
}

impl RateLimiter<DefaultClock> {
    /// A limiter on the system's monotonic clock, with no client overrides.
    pub fn new(config: &LimitsConfig) -> Self {
        Self::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    /// A limiter on `clock` (tests pass a `FakeRelativeClock`), with no client overrides.
    pub fn with_clock(config: &LimitsConfig, clock: C) -> Self {
        let limits = Limits::build(config, std::iter::empty::<(&str, _)>(), None, &clock);
        Self {
            clock,
            limits: ArcSwap::from_pointee(limits),
            write: Mutex::new(()),
        }
    }

    /// Takes one request from `ip`'s bucket.
    ///
    /// IPv4-mapped IPv6 addresses count as their IPv4 address, and other IPv6 addresses by
    /// their /64 ([`ip_bucket`]), so a host cannot escape the limit by rotating addresses
    /// within its own prefix.
    ///
    /// # Errors
    ///
    /// [`Limited`] with [`LimitScope::Ip`] when the bucket is empty.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Limited> {
        self.limits
            .load()
            .per_ip
            .check(&ip_bucket(ip))
            .map_err(|wait| limited(wait, LimitScope::Ip))
    }

    /// Takes one request from the client's per-service bucket (if it has one), then from
    /// its per-client bucket. The client's own limits apply if it has them, else the
    /// defaults.
    ///
    /// The narrower limit goes first so that a client hammering one service is refused
    /// there without spending its overall quota, which keeps its other services usable. The
    /// two buckets are not taken atomically: a request refused by the per-client limit has
    /// already spent a per-service cell. governor has no two-bucket transaction, and the
    /// error is in the conservative direction.
    ///
    /// # Errors
    ///
    /// [`Limited`] with [`LimitScope::ClientService`] or [`LimitScope::Client`].
    pub fn check_client(&self, app_id: &str, service: ServiceName) -> Result<(), Limited> {
        self.check_client_for(app_id, Some(service))
    }

    /// The per-client limit alone, for the gateway's own endpoints (status events, links,
    /// venue codes, correction tickets), which are none of the seven services: they spent
    /// `declareHealth`'s per-service quota, so a region's status events and its declarations
    /// refused each other.
    ///
    /// # Errors
    ///
    /// [`Limited`] with [`LimitScope::Client`].
    pub fn check_client_alone(&self, app_id: &str) -> Result<(), Limited> {
        self.check_client_for(app_id, None)
    }

    fn check_client_for(&self, app_id: &str, service: Option<ServiceName>) -> Result<(), Limited> {
        let limits = self.limits.load();
        let own = limits.clients.get(app_id);
        // Allocated once per check and shared by both keys; governor's `check_key` wants an
        // owned key type.
        let key: Arc<str> = Arc::from(app_id);

        if let Some(service) = service {
            let per_service = match own.and_then(|o| o.per_client_service.as_ref()) {
                Some(buckets) => buckets.check(service),
                None => match &limits.per_client_service {
                    Some(keyed) => keyed.check(&(Arc::clone(&key), service)),
                    None => Ok(()),
                },
            };
            per_service.map_err(|wait| limited(wait, LimitScope::ClientService))?;
        }

        let per_client = match own.and_then(|o| o.per_client.as_ref()) {
            Some(bucket) => bucket.check(),
            None => limits.per_client.check(&key),
        };
        per_client.map_err(|wait| limited(wait, LimitScope::Client))
    }

    /// Gives `app_id` its own limits, or (both `None`) returns it to the defaults. Takes
    /// effect for the next check. A limit whose quota is unchanged keeps its bucket; see
    /// [`RateLimiter::reconfigure`].
    pub fn set_client_limits(
        &self,
        app_id: &str,
        per_client: Option<RateLimitConfig>,
        per_client_service: Option<RateLimitConfig>,
    ) {
        let wanted = ClientLimitsConfig {
            per_client,
            per_client_service,
        };
        let _writer = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.limits.load_full();
        let mut clients = current.clients.clone();
        match ClientOverride::build(wanted, clients.get(app_id).map(Arc::as_ref), &self.clock) {
            Some(own) => {
                clients.insert(Arc::from(app_id), Arc::new(own));
            }
            None => {
                clients.remove(app_id);
            }
        }
        self.limits.store(Arc::new(Limits {
            config: current.config.clone(),
            per_ip: Arc::clone(&current.per_ip),
            per_client: Arc::clone(&current.per_client),
            per_client_service: current.per_client_service.clone(),
            clients,
        }));
    }

    /// Replaces every setting at once: the defaults from `config`, and the complete set of
    /// client overrides from `clients` (a client not listed returns to the defaults). No
    /// restart, and checks never wait for it.
    ///
    /// # What happens to buckets in use
    ///
    /// - A limiter whose quota is unchanged is kept with all its state: a reload that does
    ///   not touch a limit resets no one.
    /// - A limiter whose quota changed is rebuilt empty, so every key it covers starts with
    ///   a full bucket of the new quota. A reload can therefore grant each affected key one
    ///   extra burst. governor cannot change a live limiter's quota, and carrying its state
    ///   over would reinterpret each key's theoretical arrival time under a different
    ///   interval; reloads are rare operator actions, so one burst is the accepted price.
    /// - A check already running finishes against the snapshot it loaded; the next check
    ///   sees the new one.
    pub fn reconfigure<I, K>(&self, config: &LimitsConfig, clients: I)
    where
        I: IntoIterator<Item = (K, ClientLimitsConfig)>,
        K: AsRef<str>,
    {
        let _writer = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.limits.load_full();
        let next = Limits::build(config, clients, Some(&current), &self.clock);
        self.limits.store(Arc::new(next));
    }

    /// The default limits in force.
    pub fn config(&self) -> LimitsConfig {
        self.limits.load().config.clone()
    }

    /// `app_id`'s own limits (all `None` when it uses the defaults).
    pub fn client_limits(&self, app_id: &str) -> ClientLimitsConfig {
        self.limits
            .load()
            .clients
            .get(app_id)
            .map(|o| o.config())
            .unwrap_or_default()
    }

    /// Sweeps every keyed limiter now: drops keys whose buckets are full again. Checks
    /// already do this as the maps grow; a server may also call it from a timer so an idle
    /// gateway gives memory back.
    pub fn retain_recent(&self) {
        let limits = self.limits.load();
        limits.per_ip.sweep();
        limits.per_client.sweep();
        if let Some(keyed) = &limits.per_client_service {
            keyed.sweep();
        }
    }

    /// How many keys each keyed limiter holds.
    pub fn tracked_keys(&self) -> TrackedKeys {
        let limits = self.limits.load();
        TrackedKeys {
            per_ip: limits.per_ip.len(),
            per_client: limits.per_client.len(),
            per_client_service: limits.per_client_service.as_ref().map_or(0, |k| k.len()),
        }
    }
}

impl<C: Clock> fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limits = self.limits.load();
        f.debug_struct("RateLimiter")
            .field("config", &limits.config)
            .field("client_overrides", &limits.clients.len())
            .finish_non_exhaustive()
    }
}

/// The key the per-IP limit counts `ip` under: IPv4 as is, IPv4-mapped IPv6 as its IPv4
/// address, other IPv6 addresses by their /64 (the low 64 bits zeroed).
pub fn ip_bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

fn limited(retry_after: Duration, scope: LimitScope) -> Limited {
    Limited { retry_after, scope }
}

impl<C: Clock + Clone> Limits<C> {
    /// Builds a snapshot, reusing from `old` every limiter whose quota is unchanged.
    fn build<I, K>(config: &LimitsConfig, clients: I, old: Option<&Self>, clock: &C) -> Self
    where
        I: IntoIterator<Item = (K, ClientLimitsConfig)>,
        K: AsRef<str>,
    {
        let per_client_service = config.default_per_client_service.map(|quota| {
            keep_or_new(
                old.and_then(|o| o.per_client_service.as_ref()),
                quota,
                |k| k.config(),
                || Keyed::new(quota, clock),
            )
        });
        let mut overrides = HashMap::new();
        for (app_id, wanted) in clients {
            let app_id = app_id.as_ref();
            let previous = old.and_then(|o| o.clients.get(app_id)).map(Arc::as_ref);
            if let Some(own) = ClientOverride::build(wanted, previous, clock) {
                overrides.insert(Arc::from(app_id), Arc::new(own));
            }
        }
        Self {
            config: config.clone(),
            per_ip: keep_or_new(
                old.map(|o| &o.per_ip),
                config.per_ip,
                |k| k.config(),
                || Keyed::new(config.per_ip, clock),
            ),
            per_client: keep_or_new(
                old.map(|o| &o.per_client),
                config.default_per_client,
                |k| k.config(),
                || Keyed::new(config.default_per_client, clock),
            ),
            per_client_service,
            clients: overrides,
        }
    }
}

impl<C: Clock + Clone> ClientOverride<C> {
    /// The override for `wanted`, reusing `old`'s buckets whose quota is unchanged; `None`
    /// when `wanted` overrides nothing.
    fn build(wanted: ClientLimitsConfig, old: Option<&Self>, clock: &C) -> Option<Self> {
        if wanted.is_default() {
            return None;
        }
        Some(Self {
            per_client: wanted.per_client.map(|quota| {
                keep_or_new(
                    old.and_then(|o| o.per_client.as_ref()),
                    quota,
                    |d| d.config(),
                    || Direct::new(quota, clock),
                )
            }),
            per_client_service: wanted.per_client_service.map(|quota| {
                keep_or_new(
                    old.and_then(|o| o.per_client_service.as_ref()),
                    quota,
                    |p| p.config,
                    || PerService::new(quota, clock),
                )
            }),
        })
    }
}

impl<C: Clock + Clone> ClientOverride<C> {
    /// The limits this override was built from.
    fn config(&self) -> ClientLimitsConfig {
        ClientLimitsConfig {
            per_client: self.per_client.as_ref().map(|d| d.config()),
            per_client_service: self.per_client_service.as_ref().map(|p| p.config),
        }
    }
}

impl<C: Clock + Clone> PerService<C> {
    fn new(config: RateLimitConfig, clock: &C) -> Self {
        Self {
            config,
            by_service: ServiceName::ALL.map(|_| Direct::new(config, clock)),
        }
    }

    fn check(&self, service: ServiceName) -> Result<(), Duration> {
        // `index()` is the enum discriminant, and `by_service` has one slot per variant of
        // `ServiceName::ALL`, so the index is always in range.
        self.by_service[service.index()].check()
    }
}

/// `old` if it was built for `quota`, else a fresh limiter from `new`.
fn keep_or_new<T>(
    old: Option<&Arc<T>>,
    quota: RateLimitConfig,
    quota_of: impl Fn(&T) -> RateLimitConfig,
    new: impl FnOnce() -> T,
) -> Arc<T> {
    match old {
        Some(old) if quota_of(old) == quota => Arc::clone(old),
        _ => Arc::new(new()),
    }
}
