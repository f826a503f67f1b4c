//! Rate-limit tests, all on governor's `FakeRelativeClock`: nothing here sleeps.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use proptest::prelude::*;

use super::limiter::MIN_SWEEP_KEYS;
use super::*;
use crate::standard::ReturnCode;

fn quota(per_second: u32, burst: u32) -> RateLimitConfig {
    RateLimitConfig {
        per_second: NonZeroU32::new(per_second).unwrap(),
        burst: NonZeroU32::new(burst).unwrap(),
    }
}

/// Every limit generous except the ones a test sets.
fn config(per_ip: RateLimitConfig, per_client: RateLimitConfig) -> LimitsConfig {
    LimitsConfig {
        per_ip,
        default_per_client: per_client,
        default_per_client_service: None,
    }
}

fn wide() -> RateLimitConfig {
    quota(1_000_000, 1_000_000)
}

fn limiter(config: &LimitsConfig) -> (RateLimiter<FakeRelativeClock>, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    (RateLimiter::with_clock(config, clock.clone()), clock)
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

/// Checks `app_id` on `service` `n` times and returns how many were admitted.
fn admitted(
    rl: &RateLimiter<FakeRelativeClock>,
    app_id: &str,
    service: ServiceName,
    n: u32,
) -> u32 {
    (0..n)
        .filter(|_| rl.check_client(app_id, service).is_ok())
        .count() as u32
}

const Q: ServiceName = ServiceName::QueryHealthInfo;
const V: ServiceName = ServiceName::VerifyCode;

#[test]
fn burst_is_admitted_then_next_is_refused_with_retry_after() {
    let (rl, _clock) = limiter(&config(quota(2, 3), wide()));
    for _ in 0..3 {
        rl.check_ip(ip(1)).unwrap();
    }
    let refused = rl.check_ip(ip(1)).unwrap_err();
    assert_eq!(refused.scope, LimitScope::Ip);
    // 2 a second: one cell every 500 ms.
    assert_eq!(refused.retry_after, Duration::from_millis(500));
    assert_eq!(refused.retry_after_secs(), 1);
}

#[test]
fn refills_after_the_fake_clock_advances() {
    let (rl, clock) = limiter(&config(quota(2, 3), wide()));
    for _ in 0..3 {
        rl.check_ip(ip(1)).unwrap();
    }
    clock.advance(Duration::from_millis(499));
    assert_eq!(
        rl.check_ip(ip(1)).unwrap_err().retry_after,
        Duration::from_millis(1)
    );
    clock.advance(Duration::from_millis(1));
    rl.check_ip(ip(1)).unwrap();
    rl.check_ip(ip(1)).unwrap_err();
    // Long idle: the whole burst is back, and no more.
    clock.advance(Duration::from_secs(60));
    for _ in 0..3 {
        rl.check_ip(ip(1)).unwrap();
    }
    rl.check_ip(ip(1)).unwrap_err();
}

#[test]
fn refusal_maps_to_1007_with_whole_second_retry_after() {
    let at = |d| Limited {
        retry_after: d,
        scope: LimitScope::Client,
    };
    assert_eq!(at(Duration::ZERO).retry_after_secs(), 1);
    assert_eq!(at(Duration::from_millis(1)).retry_after_secs(), 1);
    assert_eq!(at(Duration::from_secs(1)).retry_after_secs(), 1);
    assert_eq!(at(Duration::from_millis(1_001)).retry_after_secs(), 2);
    assert_eq!(
        at(Duration::from_nanos(2_000_000_001)).retry_after_secs(),
        3
    );
    assert_eq!(at(Duration::from_secs(7)).retry_after_header(), "7");
    assert_eq!(at(Duration::ZERO).return_code(), ReturnCode::RateLimited);
    assert_eq!(at(Duration::ZERO).return_code().as_str(), "1007");
}

#[test]
fn slow_quota_reports_retry_after_in_seconds_rounded_up() {
    // 1 a second with a burst of 1: the wait after a refusal is a full second.
    let (rl, clock) = limiter(&config(quota(1, 1), wide()));
    rl.check_ip(ip(1)).unwrap();
    clock.advance(Duration::from_millis(250));
    let refused = rl.check_ip(ip(1)).unwrap_err();
    assert_eq!(refused.retry_after, Duration::from_millis(750));
    assert_eq!(refused.retry_after_secs(), 1);
}

#[test]
fn distinct_ips_have_their_own_buckets() {
    let (rl, _clock) = limiter(&config(quota(1, 1), wide()));
    rl.check_ip(ip(1)).unwrap();
    rl.check_ip(ip(1)).unwrap_err();
    rl.check_ip(ip(2)).unwrap();
}

#[test]
fn ipv6_addresses_in_one_slash_64_share_a_bucket() {
    let (rl, _clock) = limiter(&config(quota(1, 1), wide()));
    let a: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
    let b: Ipv6Addr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
    let other: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
    rl.check_ip(IpAddr::V6(a)).unwrap();
    rl.check_ip(IpAddr::V6(b)).unwrap_err();
    rl.check_ip(IpAddr::V6(other)).unwrap();
}

#[test]
fn ipv4_mapped_ipv6_counts_as_its_ipv4_address() {
    let (rl, _clock) = limiter(&config(quota(1, 1), wide()));
    rl.check_ip(ip(9)).unwrap();
    let mapped: Ipv6Addr = "::ffff:192.0.2.9".parse().unwrap();
    assert_eq!(ip_bucket(IpAddr::V6(mapped)), ip(9));
    rl.check_ip(IpAddr::V6(mapped)).unwrap_err();
}

#[test]
fn clients_without_their_own_limits_get_the_default() {
    let (rl, _clock) = limiter(&config(wide(), quota(1, 2)));
    assert_eq!(admitted(&rl, "app-a", Q, 5), 2);
    assert_eq!(admitted(&rl, "app-b", Q, 5), 2);
    let refused = rl.check_client("app-a", V).unwrap_err();
    assert_eq!(refused.scope, LimitScope::Client);
    assert_eq!(refused.retry_after, Duration::from_secs(1));
}

#[test]
fn a_client_override_replaces_the_default() {
    let (rl, _clock) = limiter(&config(wide(), quota(1, 2)));
    rl.set_client_limits("big", Some(quota(10, 5)), None);
    assert_eq!(admitted(&rl, "big", Q, 10), 5);
    assert_eq!(admitted(&rl, "small", Q, 10), 2);
    let refused = rl.check_client("big", Q).unwrap_err();
    assert_eq!(refused.retry_after, Duration::from_millis(100));
    assert_eq!(rl.client_limits("big").per_client, Some(quota(10, 5)));
    assert!(rl.client_limits("small").is_default());
}

#[test]
fn per_service_limits_isolate_services() {
    let limits = LimitsConfig {
        per_ip: wide(),
        default_per_client: quota(100, 100),
        default_per_client_service: Some(quota(1, 2)),
    };
    let (rl, _clock) = limiter(&limits);
    assert_eq!(admitted(&rl, "app", Q, 5), 2);
    let refused = rl.check_client("app", Q).unwrap_err();
    assert_eq!(refused.scope, LimitScope::ClientService);
    // The same client's other service, and another client's same service, are untouched.
    assert_eq!(admitted(&rl, "app", V, 5), 2);
    assert_eq!(admitted(&rl, "other", Q, 5), 2);
}

#[test]
fn the_gateways_own_endpoints_spend_no_services_quota() {
    let limits = LimitsConfig {
        per_ip: wide(),
        default_per_client: quota(1, 4),
        default_per_client_service: Some(quota(1, 2)),
    };
    let (rl, _clock) = limiter(&limits);
    let d = ServiceName::DeclareHealth;
    // Two status events: the client's own quota only (they took declareHealth's before).
    rl.check_client_alone("region").unwrap();
    rl.check_client_alone("region").unwrap();
    assert_eq!(
        admitted(&rl, "region", d, 5),
        2,
        "declareHealth's two are left"
    );
    // And they are under the client's own limit: four in all.
    let refused = rl.check_client_alone("region").unwrap_err();
    assert_eq!(refused.scope, LimitScope::Client);
}

#[test]
fn service_refusals_do_not_spend_the_client_quota() {
    let limits = LimitsConfig {
        per_ip: wide(),
        default_per_client: quota(1, 4),
        default_per_client_service: Some(quota(1, 2)),
    };
    let (rl, _clock) = limiter(&limits);
    // Ten tries on one service: two pass, eight are refused per service.
    assert_eq!(admitted(&rl, "app", Q, 10), 2);
    // The client still has two of its four for another service.
    assert_eq!(admitted(&rl, "app", V, 10), 2);
    assert_eq!(
        rl.check_client("app", ServiceName::DeclareTrip)
            .unwrap_err()
            .scope,
        LimitScope::Client
    );
}

#[test]
fn a_client_per_service_override_applies_to_each_service_separately() {
    let (rl, _clock) = limiter(&config(wide(), quota(100, 100)));
    rl.set_client_limits("app", None, Some(quota(1, 3)));
    assert_eq!(admitted(&rl, "app", Q, 10), 3);
    assert_eq!(admitted(&rl, "app", V, 10), 3);
    // No default per-service limit for everyone else.
    assert_eq!(admitted(&rl, "other", Q, 10), 10);
}

#[test]
fn clearing_a_client_override_returns_it_to_the_defaults() {
    let (rl, _clock) = limiter(&config(wide(), quota(1, 2)));
    rl.set_client_limits("app", Some(quota(1, 6)), None);
    assert_eq!(admitted(&rl, "app", Q, 10), 6);
    rl.set_client_limits("app", None, None);
    assert!(rl.client_limits("app").is_default());
    assert_eq!(admitted(&rl, "app", Q, 10), 2);
}

#[test]
fn reconfigure_changes_the_quota_of_existing_keys() {
    let (rl, clock) = limiter(&config(quota(1, 2), quota(1, 2)));
    assert_eq!(admitted(&rl, "app", Q, 5), 2);
    rl.reconfigure(
        &config(quota(1, 2), quota(10, 5)),
        Vec::<(String, ClientLimitsConfig)>::new(),
    );
    assert_eq!(rl.config().default_per_client, quota(10, 5));
    // A changed quota starts fresh: the new burst, then the new rate.
    assert_eq!(admitted(&rl, "app", Q, 10), 5);
    clock.advance(Duration::from_millis(200));
    assert_eq!(admitted(&rl, "app", Q, 10), 2);
}

#[test]
fn reconfigure_keeps_the_state_of_unchanged_limits() {
    let (rl, _clock) = limiter(&config(quota(1, 2), quota(1, 2)));
    rl.check_ip(ip(1)).unwrap();
    rl.check_ip(ip(1)).unwrap();
    rl.check_ip(ip(1)).unwrap_err();
    rl.set_client_limits("own", Some(quota(1, 1)), None);
    rl.check_client("own", Q).unwrap();
    rl.check_client("own", Q).unwrap_err();
    // Only the default per-client quota changes; the IP and "own" stay exhausted.
    rl.reconfigure(
        &config(quota(1, 2), quota(5, 5)),
        [(
            "own",
            ClientLimitsConfig {
                per_client: Some(quota(1, 1)),
                per_client_service: None,
            },
        )],
    );
    rl.check_ip(ip(1)).unwrap_err();
    rl.check_client("own", Q).unwrap_err();
}

#[test]
fn reconfigure_replaces_the_set_of_client_overrides() {
    let (rl, _clock) = limiter(&config(wide(), quota(1, 2)));
    rl.set_client_limits("was", Some(quota(1, 8)), None);
    let now = ClientLimitsConfig {
        per_client: Some(quota(1, 4)),
        per_client_service: None,
    };
    rl.reconfigure(&config(wide(), quota(1, 2)), [("is".to_owned(), now)]);
    assert!(rl.client_limits("was").is_default());
    assert_eq!(admitted(&rl, "was", Q, 10), 2);
    assert_eq!(admitted(&rl, "is", Q, 10), 4);
}

#[test]
fn keyed_state_stays_bounded_under_many_distinct_ips() {
    let (rl, clock) = limiter(&config(quota(1_000, 1), wide()));
    let phase = 3 * MIN_SWEEP_KEYS as u32;
    let addr = |i: u32| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
    for i in 0..phase {
        rl.check_ip(addr(i)).unwrap();
    }
    // Every key is live (its bucket refills in 1 ms), so none could be dropped yet.
    assert_eq!(rl.tracked_keys().per_ip, phase as usize);
    // Later, a second wave of new addresses: the first wave is swept out on the way.
    clock.advance(Duration::from_secs(10));
    for i in phase..2 * phase {
        rl.check_ip(addr(i)).unwrap();
    }
    let keys = rl.tracked_keys().per_ip;
    assert!(
        keys <= phase as usize,
        "{keys} keys held, more than one wave"
    );
}

#[test]
fn retain_recent_drops_only_refilled_keys() {
    let (rl, clock) = limiter(&config(quota(1, 1), quota(1, 1)));
    rl.check_ip(ip(1)).unwrap();
    rl.check_client("a", Q).unwrap();
    clock.advance(Duration::from_secs(5));
    rl.check_ip(ip(2)).unwrap();
    rl.retain_recent();
    let keys = rl.tracked_keys();
    assert_eq!(keys.per_ip, 1);
    assert_eq!(keys.per_client, 0);
    // The survivor still remembers its spent cell.
    rl.check_ip(ip(2)).unwrap_err();
}

#[test]
fn config_parses_with_defaults_and_rejects_bad_values() {
    let full: LimitsConfig = toml::from_str(
        "per_ip = { per_second = 5, burst = 10 }\n\
         default_per_client = { per_second = 1, burst = 2 }\n\
         default_per_client_service = { per_second = 3, burst = 4 }\n",
    )
    .unwrap();
    assert_eq!(full.per_ip, quota(5, 10));
    assert_eq!(full.default_per_client_service, Some(quota(3, 4)));

    let empty: LimitsConfig = toml::from_str("").unwrap();
    assert_eq!(empty, LimitsConfig::default());
    assert_eq!(empty.per_ip, DEFAULT_PER_IP);
    assert_eq!(empty.default_per_client, DEFAULT_PER_CLIENT);

    for bad in [
        "per_ip = { per_second = 0, burst = 10 }",
        "per_ip = { per_second = 1, burst = 0 }",
        "per_ip = { per_second = 1 }",
        "per_ip = { per_second = 1, burst = 1, burst_ms = 3 }",
        "per_ipv4 = { per_second = 1, burst = 1 }",
    ] {
        assert!(toml::from_str::<LimitsConfig>(bad).is_err(), "{bad}");
    }
    let own: ClientLimitsConfig =
        toml::from_str("per_client_service = { per_second = 2, burst = 2 }").unwrap();
    assert_eq!(own.per_client, None);
    assert!(
        toml::from_str::<ClientLimitsConfig>("per_service = { per_second = 2, burst = 2 }")
            .is_err()
    );
}

/// One step of a property run.
#[derive(Debug, Clone)]
enum Op {
    /// A request from one of four callers: two IPs, a client with its own quota, and a
    /// client on the default one (all four share the quota under test).
    Request(usize),
    /// Time passes, in nanoseconds.
    Advance(u64),
    /// Housekeeping runs; it must never change a decision.
    Sweep,
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4usize).prop_map(Op::Request),
        3 => (0..1_500_000_000u64).prop_map(Op::Advance),
        1 => Just(Op::Sweep),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Over any sequence of requests, clock advances and sweeps: each caller's admitted count
    /// stays within `burst + per_second × elapsed`; a refusal's wait is positive and at most
    /// one refill interval; and asking again once that wait has passed is admitted.
    #[test]
    fn admissions_follow_the_quota(
        // Divisors of 10⁹, so governor's whole-nanosecond interval is exact.
        per_second in prop::sample::select(vec![1u32, 2, 4, 5, 8, 10, 25, 100, 1_000]),
        burst in 1u32..20,
        ops in prop::collection::vec(arb_op(), 1..300),
    ) {
        let q = quota(per_second, burst);
        let (rl, clock) = limiter(&config(q, q));
        rl.set_client_limits("own", Some(q), None);
        let interval_ns = 1_000_000_000 / u64::from(per_second);
        let mut elapsed_ns = 0u64;
        let mut admitted = [0u64; 4];
        let mut refused_until: [Option<u64>; 4] = [None; 4];
        for op in ops {
            match op {
                Op::Advance(ns) => {
                    clock.advance(Duration::from_nanos(ns));
                    elapsed_ns += ns;
                }
                Op::Sweep => rl.retain_recent(),
                Op::Request(who) => {
                    let outcome = match who {
                        0 => rl.check_ip(ip(1)),
                        1 => rl.check_ip(ip(2)),
                        2 => rl.check_client("own", Q),
                        _ => rl.check_client("default", Q),
                    };
                    match outcome {
                        Ok(()) => {
                            admitted[who] += 1;
                            refused_until[who] = None;
                            let bound = u64::from(burst) + elapsed_ns / interval_ns;
                            prop_assert!(admitted[who] <= bound, "{} admitted, bound {}", admitted[who], bound);
                        }
                        Err(limited) => {
                            if let Some(until) = refused_until[who] {
                                prop_assert!(elapsed_ns < until, "refused after its retry_after had passed");
                            }
                            let wait = u64::try_from(limited.retry_after.as_nanos()).unwrap();
                            prop_assert!(wait > 0 && wait <= interval_ns, "wait {wait} ns, interval {interval_ns} ns");
                            prop_assert!(limited.retry_after_secs() >= 1);
                            refused_until[who] = Some(elapsed_ns + wait);
                        }
                    }
                }
            }
        }
    }
}
