//! Per-client rate limits of the national simulator: what a region back-end does when one
//! caller sends too much, so a gateway's (or a conformance suite's) handling of 1007 can be
//! exercised.
//!
//! A client with `rate_limit_per_second` in the clients file gets a token bucket of its own
//! (governor's GCRA, `rate_limit_burst` cells refilled at `rate_limit_per_second` a second);
//! a client without one is unlimited, which is the default. The check runs once the envelope
//! is opened, so the `appId` is proven and the 1007 answer is sealed in the request's own
//! sign type; it carries HTTP 429 and a `Retry-After` header.
//!
//! The gateway's own limiter (`crate::ratelimit`) has per-IP and default per-client tiers
//! that a simulator does not want; this is one bucket per configured client and nothing else.
//! The clock is a type parameter so tests drive governor's `FakeRelativeClock`.

use std::collections::HashMap;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};

use crate::ratelimit::{LimitScope, Limited, RateLimitConfig};

type Bucket<C> =
    governor::RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One bucket per rate-limited client.
pub(super) struct ClientQuotas<C: Clock = DefaultClock> {
    clock: C,
    buckets: HashMap<String, Bucket<C>>,
}

impl ClientQuotas<DefaultClock> {
    /// Buckets for `limits`, on the system clock.
    pub(super) fn new(limits: &HashMap<String, RateLimitConfig>) -> Self {
        Self::with_clock(limits, DefaultClock::default())
    }
}

impl<C: Clock + Clone> ClientQuotas<C> {
    /// Buckets for `limits`, on `clock`.
    pub(super) fn with_clock(limits: &HashMap<String, RateLimitConfig>, clock: C) -> Self {
        let buckets = limits
            .iter()
            .map(|(app, limit)| {
                (
                    app.clone(),
                    governor::RateLimiter::direct_with_clock(limit.quota(), clock.clone()),
                )
            })
            .collect();
        Self { clock, buckets }
    }

    /// Takes one request from `app_id`'s bucket. A client without a limit always passes;
    /// one over its limit gets [`Limited`] with the wait until its next request.
    pub(super) fn check(&self, app_id: &str) -> Result<(), Limited> {
        let Some(bucket) = self.buckets.get(app_id) else {
            return Ok(());
        };
        bucket.check().map_err(|not_until| Limited {
            retry_after: not_until.wait_time_from(self.clock.now()),
            scope: LimitScope::Client,
        })
    }
}

impl<C: Clock> std::fmt::Debug for ClientQuotas<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientQuotas")
            .field("limited_clients", &self.buckets.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn limit(per_second: u32, burst: u32) -> RateLimitConfig {
        RateLimitConfig {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[test]
    fn a_limited_client_gets_its_burst_then_waits_for_a_refill() {
        let clock = FakeRelativeClock::default();
        let quotas =
            ClientQuotas::with_clock(&[("A1".to_owned(), limit(2, 3))].into(), clock.clone());
        for _ in 0..3 {
            assert!(quotas.check("A1").is_ok());
        }
        let refused = quotas.check("A1").unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(500));
        assert_eq!(refused.retry_after_secs(), 1);
        clock.advance(Duration::from_millis(500));
        assert!(quotas.check("A1").is_ok(), "one cell back after 1/rate s");
        assert!(quotas.check("A1").is_err());
    }

    #[test]
    fn a_client_without_a_limit_is_never_refused() {
        let quotas = ClientQuotas::with_clock(
            &[("A1".to_owned(), limit(1, 1))].into(),
            FakeRelativeClock::default(),
        );
        assert!((0..1000).all(|_| quotas.check("B2").is_ok()));
        assert!(quotas.check("A1").is_ok());
        assert!(quotas.check("A1").is_err(), "and the limited one is");
    }
}
