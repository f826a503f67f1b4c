//! Rate-limit configuration: the quotas, as serde structs with named defaults.
//!
//! A quota is a rate and a burst (a token bucket of `burst` cells refilled at `per_second`
//! cells a second; governor's GCRA). Both are [`NonZeroU32`], so a configuration that parses
//! cannot hold a zero rate or an empty bucket.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

/// `NonZeroU32` from a literal, checked at compile time: the constants below are only ever
/// evaluated in const context, where a zero fails the build instead of panicking at runtime.
const fn nonzero(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => panic!("a quota constant must not be zero"),
    }
}

/// Default per-IP rate, requests a second. Generous: a provincial system often reaches the
/// gateway from a handful of egress addresses, and its real quota is the per-client one. This
/// limit exists to blunt unauthenticated floods before any signature is checked.
pub const DEFAULT_PER_IP_PER_SECOND: NonZeroU32 = nonzero(1_000);

/// Default per-IP burst, requests.
pub const DEFAULT_PER_IP_BURST: NonZeroU32 = nonzero(2_000);

/// Default per-client (`appId`) rate, requests a second, for clients without their own.
pub const DEFAULT_PER_CLIENT_PER_SECOND: NonZeroU32 = nonzero(500);

/// Default per-client burst, requests.
pub const DEFAULT_PER_CLIENT_BURST: NonZeroU32 = nonzero(1_000);

/// Default per-IP quota: [`DEFAULT_PER_IP_PER_SECOND`], [`DEFAULT_PER_IP_BURST`].
pub const DEFAULT_PER_IP: RateLimitConfig = RateLimitConfig {
    per_second: DEFAULT_PER_IP_PER_SECOND,
    burst: DEFAULT_PER_IP_BURST,
};

/// Default per-client quota: [`DEFAULT_PER_CLIENT_PER_SECOND`], [`DEFAULT_PER_CLIENT_BURST`].
pub const DEFAULT_PER_CLIENT: RateLimitConfig = RateLimitConfig {
    per_second: DEFAULT_PER_CLIENT_PER_SECOND,
    burst: DEFAULT_PER_CLIENT_BURST,
};

/// One quota: a bucket of `burst` requests, refilled at `per_second` requests a second.
///
/// A client idle long enough may send `burst` requests at once; sustained, it gets
/// `per_second`. A refused request waits at most `1 / per_second` s for its next cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RateLimitConfig {
    /// Sustained rate, in requests per second. Rates above 10⁹ behave as 10⁹ (governor
    /// measures the refill interval in whole nanoseconds).
    pub per_second: NonZeroU32,
    /// Largest burst, in requests: how many may arrive at once after an idle period.
    pub burst: NonZeroU32,
}

impl RateLimitConfig {
    /// The governor quota for this configuration.
    pub fn quota(&self) -> governor::Quota {
        governor::Quota::per_second(self.per_second).allow_burst(self.burst)
    }
}

/// The gateway's rate limits (DESIGN.md §5): per IP before authentication, then per client
/// and per client and service after it. Per-client overrides come from client registrations,
/// not from this struct (see [`ClientLimitsConfig`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct LimitsConfig {
    /// Quota per source address ([`DEFAULT_PER_IP`]). IPv6 sources are grouped by /64, the
    /// smallest block an end site is normally given.
    #[serde(default = "default_per_ip")]
    pub per_ip: RateLimitConfig,
    /// Quota per client (`appId`) across all services, for clients without their own
    /// ([`DEFAULT_PER_CLIENT`]).
    #[serde(default = "default_per_client")]
    pub default_per_client: RateLimitConfig,
    /// Quota per client and service, for clients without their own; absent (the default)
    /// means no per-service limit beyond the per-client one.
    #[serde(default)]
    pub default_per_client_service: Option<RateLimitConfig>,
}

fn default_per_ip() -> RateLimitConfig {
    DEFAULT_PER_IP
}
fn default_per_client() -> RateLimitConfig {
    DEFAULT_PER_CLIENT
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            per_ip: DEFAULT_PER_IP,
            default_per_client: DEFAULT_PER_CLIENT,
            default_per_client_service: None,
        }
    }
}

/// One client's own limits, from its registration. A field left out falls back to the
/// matching default of [`LimitsConfig`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ClientLimitsConfig {
    /// The client's quota across all services; absent: [`LimitsConfig::default_per_client`].
    #[serde(default)]
    pub per_client: Option<RateLimitConfig>,
    /// The client's quota for each service separately; absent:
    /// [`LimitsConfig::default_per_client_service`].
    #[serde(default)]
    pub per_client_service: Option<RateLimitConfig>,
}

impl ClientLimitsConfig {
    /// Whether this overrides nothing, so the client simply uses the defaults.
    pub fn is_default(&self) -> bool {
        self.per_client.is_none() && self.per_client_service.is_none()
    }
}
