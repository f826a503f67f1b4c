//! Response-cache tests. Time is a hand-moved clock; concurrency is driven by a barrier and
//! a gate, never by sleeping (one test of the monotonic cap excepted). The store's own
//! mechanics (eviction, sweep, bounds, flights) are in `store.rs`.

mod store;

use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde_json::json;
use tokio::sync::{Barrier, Semaphore};

use super::*;
use crate::standard::ServiceName;

const T0: u64 = 1_700_000_000_000;
const PERSON: &str = "5e1f0c2a";

#[derive(Debug, PartialEq, Eq)]
struct Boom;

/// A clock the test moves by hand.
#[derive(Clone)]
struct FakeClock(Arc<AtomicU64>);

impl FakeClock {
    fn new() -> Self {
        Self(Arc::new(AtomicU64::new(T0)))
    }
    fn advance_ms(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    fn clock(&self) -> MillisClock {
        let now = Arc::clone(&self.0);
        MillisClock::from_fn(move || now.load(Ordering::SeqCst))
    }
}

fn cache_with(max_entries: u64) -> (ResponseCache<Boom>, FakeClock) {
    let clock = FakeClock::new();
    let config = CacheConfig {
        max_entries: NonZeroU64::new(max_entries).unwrap(),
        ..CacheConfig::default()
    };
    (ResponseCache::new(&config, clock.clock()), clock)
}

fn cache() -> (ResponseCache<Boom>, FakeClock) {
    cache_with(1_000)
}

fn key(partition: &str, request: &str) -> CacheKey {
    CacheKey::new(ServiceName::QueryHealthInfo, partition, request.as_bytes())
}

/// A fetch that counts its calls and answers `colour` about `subject`, fresh until
/// `expires_at_ms`.
fn fetch(
    calls: &Arc<AtomicUsize>,
    colour: &str,
    subject: Option<&str>,
    expires_at_ms: u64,
) -> impl Future<Output = Result<Cached, Boom>> + use<> {
    let calls = Arc::clone(calls);
    let cached = Cached::new(
        &json!({ "color": colour }),
        subject.map(Arc::from),
        Some(expires_at_ms),
    );
    async move {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok(cached)
    }
}

/// Asks `cache` for `key("p", request)`; a fetch, if one runs, answers `colour` about
/// `subject`, fresh for a minute.
async fn ask(
    cache: &ResponseCache<Boom>,
    calls: &Arc<AtomicUsize>,
    request: &str,
    colour: &str,
    subject: &str,
) -> Arc<Stored> {
    cache
        .get_or_fetch(
            key("p", request),
            fetch(calls, colour, Some(subject), T0 + 60_000),
        )
        .await
        .unwrap()
}

fn colour(answer: &Cached) -> &'static str {
    match answer.body().unwrap()["color"].as_str().unwrap() {
        "00" => "00",
        "01" => "01",
        "10" => "10",
        other => panic!("a colour no fetch gave: {other}"),
    }
}

#[test]
fn deadline_is_the_end_of_the_freshness_window() {
    // Updated 10 s ago, valid 60 s: 50 s left, under a 300 s cap.
    assert_eq!(
        freshness_deadline(T0 - 10_000, 60_000, None, T0, 300_000),
        Some(T0 + 50_000)
    );
}

#[test]
fn deadline_never_passes_the_codes_exp() {
    assert_eq!(
        freshness_deadline(T0, 60_000, Some(T0 + 5_000), T0, 300_000),
        Some(T0 + 5_000)
    );
}

#[test]
fn deadline_is_capped_by_max_ttl() {
    assert_eq!(
        freshness_deadline(T0, 86_400_000, None, T0, 300_000),
        Some(T0 + 300_000)
    );
    // A region clock running fast earns nothing beyond the cap.
    assert_eq!(
        freshness_deadline(T0 + 3_600_000, 60_000, None, T0, 300_000),
        Some(T0 + 300_000)
    );
}

#[test]
fn stale_answers_get_no_deadline() {
    // The window closed exactly now, or before; the code already expired.
    assert_eq!(
        freshness_deadline(T0 - 60_000, 60_000, None, T0, 300_000),
        None
    );
    assert_eq!(
        freshness_deadline(T0 - 90_000, 60_000, None, T0, 300_000),
        None
    );
    assert_eq!(
        freshness_deadline(T0, 60_000, Some(T0 - 1), T0, 300_000),
        None
    );
    assert_eq!(freshness_deadline(T0, 60_000, None, T0, 0), None);
}

#[test]
fn deadline_arithmetic_saturates() {
    assert_eq!(
        freshness_deadline(u64::MAX, u64::MAX, None, u64::MAX - 10, u64::MAX),
        Some(u64::MAX)
    );
    assert_eq!(freshness_deadline(u64::MAX, 1, None, u64::MAX, 1), None);
}

#[test]
fn partition_ignores_scope_order_and_cannot_be_confused() {
    let a = CacheKey::partition_for("app", ["color", "regions"]);
    assert_eq!(
        a,
        CacheKey::partition_for("app", ["regions", "color", "color"])
    );
    assert_ne!(a, CacheKey::partition_for("app", ["color"]));
    assert_ne!(a, CacheKey::partition_for("other", ["color", "regions"]));
    assert_ne!(
        CacheKey::partition_for("a\",\"b", Vec::<String>::new()),
        CacheKey::partition_for("a", ["b"])
    );
}

#[test]
fn config_has_defaults_and_rejects_unknown_or_zero() {
    let empty: CacheConfig = toml::from_str("").unwrap();
    assert_eq!(empty, CacheConfig::default());
    assert_eq!(empty.max_entries, DEFAULT_MAX_ENTRIES);
    assert_eq!(empty.max_ttl_ms, DEFAULT_MAX_TTL_MS);
    let set: CacheConfig = toml::from_str("max_entries = 10\nmax_ttl_ms = 2000").unwrap();
    assert_eq!(set.max_entries.get(), 10);
    for bad in [
        "max_entries = 0",
        "max_ttl_ms = 0",
        "max_ttl = 5",
        "max_entries = -1",
    ] {
        assert!(toml::from_str::<CacheConfig>(bad).is_err(), "{bad}");
    }
}

#[test]
fn debug_output_leaves_out_the_body() {
    let cached = Cached::new(&json!({ "name": "张三" }), Some(PERSON.into()), Some(T0));
    let shown = format!("{cached:?}");
    assert!(!shown.contains("张三"), "{shown}");
    assert!(shown.contains(PERSON));
}

#[tokio::test]
async fn a_fresh_answer_is_served_without_fetching_again() {
    let (cache, _clock) = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let first = cache
        .get_or_fetch(key("p", "q"), fetch(&calls, "00", Some(PERSON), T0 + 1_000))
        .await
        .unwrap();
    let second = cache
        .get_or_fetch(key("p", "q"), fetch(&calls, "10", Some(PERSON), T0 + 1_000))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(colour(&second), "00");
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (1, 1));
}

#[tokio::test]
async fn an_answer_is_never_served_at_or_after_its_deadline() {
    let (cache, clock) = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("p", "q");
    cache
        .get_or_fetch(k.clone(), fetch(&calls, "00", None, T0 + 1_000))
        .await
        .unwrap();
    clock.advance_ms(999);
    let still = cache
        .get_or_fetch(k.clone(), fetch(&calls, "10", None, T0 + 9_000))
        .await
        .unwrap();
    assert_eq!((colour(&still), calls.load(Ordering::SeqCst)), ("00", 1));
    clock.advance_ms(1);
    let refetched = cache
        .get_or_fetch(k.clone(), fetch(&calls, "10", None, T0 + 9_000))
        .await
        .unwrap();
    assert_eq!(
        (colour(&refetched), calls.load(Ordering::SeqCst)),
        ("10", 2)
    );
    assert_eq!(cache.stats().stale, 1);
    // The replacement is kept in its turn.
    cache
        .get_or_fetch(k, fetch(&calls, "01", None, T0 + 9_000))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_already_stale_answer_is_returned_but_not_kept() {
    let (cache, _clock) = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let uncacheable = Cached::new(&json!({ "color": "01" }), Some(PERSON.into()), None);
    let counted = Arc::clone(&calls);
    let answer = cache
        .get_or_fetch(key("p", "q"), async move {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Boom>(uncacheable)
        })
        .await
        .unwrap();
    assert_eq!(colour(&answer), "01");
    cache
        .get_or_fetch(key("p", "q"), fetch(&calls, "01", None, 0))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Neither answer was kept, nor indexed.
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.subjects), (0, 0));
}

#[tokio::test]
async fn errors_are_not_cached() {
    let (cache, _clock) = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let failed = cache
        .get_or_fetch(key("p", "q"), async move {
            counted.fetch_add(1, Ordering::SeqCst);
            Err::<Cached, _>(Boom)
        })
        .await
        .unwrap_err();
    assert_eq!(*failed, Boom);
    let answer = cache
        .get_or_fetch(key("p", "q"), fetch(&calls, "00", None, T0 + 1_000))
        .await
        .unwrap();
    assert_eq!((colour(&answer), calls.load(Ordering::SeqCst)), ("00", 2));
    assert_eq!(cache.stats().fetch_errors, 1);
}

#[tokio::test]
async fn concurrent_misses_share_one_upstream_call() {
    const N: usize = 32;
    let (cache, _clock) = cache();
    let cache = Arc::new(cache);
    let calls = Arc::new(AtomicUsize::new(0));
    // The fetch blocks until the test opens the gate, after every task has asked. With no
    // single flight, all N fetches would start and wait here, and the count would be N.
    let gate = Arc::new(Semaphore::new(0));
    let barrier = Arc::new(Barrier::new(N + 1));
    let mut tasks = Vec::new();
    for _ in 0..N {
        let (cache, calls, gate, barrier) = (
            Arc::clone(&cache),
            Arc::clone(&calls),
            Arc::clone(&gate),
            Arc::clone(&barrier),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let fetch = async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let _open = gate.acquire().await.unwrap();
                Ok::<_, Boom>(Cached::new(
                    &json!({ "color": "00" }),
                    Some(PERSON.into()),
                    Some(T0 + 1_000),
                ))
            };
            cache.get_or_fetch(key("p", "q"), fetch).await.unwrap()
        }));
    }
    barrier.wait().await;
    // Current-thread runtime: each yield lets every ready task run up to its next await.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(N);
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(answers.iter().all(|a| Arc::ptr_eq(a, &answers[0])));
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.hits), (1, N as u64 - 1));
}

#[tokio::test]
async fn callers_that_shared_a_failed_fetch_are_not_hits() {
    const N: usize = 8;
    let (cache, _clock) = cache();
    let cache = Arc::new(cache);
    let gate = Arc::new(Semaphore::new(0));
    let barrier = Arc::new(Barrier::new(N + 1));
    let mut tasks = Vec::new();
    for _ in 0..N {
        let (cache, gate, barrier) = (Arc::clone(&cache), Arc::clone(&gate), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let fetch = async move {
                let _open = gate.acquire().await.unwrap();
                Err::<Cached, _>(Boom)
            };
            cache.get_or_fetch(key("p", "q"), fetch).await.map(|_| ())
        }));
    }
    barrier.wait().await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(N);
    for task in tasks {
        assert!(task.await.unwrap().is_err());
    }
    let stats = cache.stats();
    // One fetch ran and failed; the seven that joined it were served nothing.
    assert_eq!((stats.misses, stats.fetch_errors, stats.hits), (1, 1, 0));
}

#[tokio::test]
async fn callers_with_different_rights_do_not_share_answers() {
    let (cache, _clock) = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let wide = CacheKey::partition_for("app", ["color", "regions"]);
    let narrow = CacheKey::partition_for("app", ["color"]);
    let a = cache
        .get_or_fetch(key(&wide, "q"), fetch(&calls, "10", None, T0 + 1_000))
        .await
        .unwrap();
    let b = cache
        .get_or_fetch(key(&narrow, "q"), fetch(&calls, "00", None, T0 + 1_000))
        .await
        .unwrap();
    assert_eq!((colour(&a), colour(&b)), ("10", "00"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn purging_a_person_makes_the_next_get_fetch_again() {
    let (cache, _clock) = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    for partition in ["a", "b"] {
        cache
            .get_or_fetch(
                key(partition, "q"),
                fetch(&calls, "00", Some(PERSON), T0 + 60_000),
            )
            .await
            .unwrap();
    }
    cache
        .get_or_fetch(
            key("a", "other"),
            fetch(&calls, "00", Some("someone-else"), T0 + 60_000),
        )
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    assert_eq!(cache.purge_subject(PERSON).await, 2);
    assert_eq!(cache.stats().purges, 2);
    let after = cache
        .get_or_fetch(
            key("a", "q"),
            fetch(&calls, "10", Some(PERSON), T0 + 60_000),
        )
        .await
        .unwrap();
    assert_eq!((colour(&after), calls.load(Ordering::SeqCst)), ("10", 4));
    // Another person's answer is untouched.
    cache
        .get_or_fetch(
            key("a", "other"),
            fetch(&calls, "10", Some("someone-else"), T0 + 60_000),
        )
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    // Purging someone with nothing cached is a no-op.
    assert_eq!(cache.purge_subject("nobody").await, 0);
}

/// Starts a get for `key("p", "q")` whose fetch (answering green about [`PERSON`]) waits
/// for `gate`, and returns once that fetch has started.
async fn start_gated_fetch(
    cache: &Arc<ResponseCache<Boom>>,
    calls: &Arc<AtomicUsize>,
    gate: &Arc<Semaphore>,
) -> tokio::task::JoinHandle<Arc<Stored>> {
    let (cache, counted, gate) = (Arc::clone(cache), Arc::clone(calls), Arc::clone(gate));
    let started = calls.load(Ordering::SeqCst);
    let task = tokio::spawn(async move {
        let fetch = async move {
            counted.fetch_add(1, Ordering::SeqCst);
            let _open = gate.acquire().await.unwrap();
            Ok::<_, Boom>(Cached::new(
                &json!({ "color": "00" }),
                Some(PERSON.into()),
                Some(T0 + 60_000),
            ))
        };
        cache.get_or_fetch(key("p", "q"), fetch).await.unwrap()
    });
    while calls.load(Ordering::SeqCst) == started {
        tokio::task::yield_now().await;
    }
    task
}

/// Starts a second get for `key("p", "q")` (its fetch, if it runs, answers red about
/// [`PERSON`]) and returns once it waits on the gated fetch in flight.
async fn join_gated_fetch(
    cache: &Arc<ResponseCache<Boom>>,
    calls: &Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<Arc<Stored>> {
    let joiner = {
        let (cache, calls) = (Arc::clone(cache), Arc::clone(calls));
        tokio::spawn(async move { ask(&cache, &calls, "q", "10", PERSON).await })
    };
    // Current-thread runtime: each yield lets the joiner run up to its next await.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the second get joined the fetch in flight"
    );
    joiner
}

#[tokio::test]
async fn a_fetch_in_flight_during_a_purge_is_not_kept() {
    let cache = Arc::new(cache().0);
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let before = start_gated_fetch(&cache, &calls, &gate).await;
    // The status event arrives while the old answer is on its way.
    assert_eq!(cache.purge_subject(PERSON).await, 0);
    gate.add_permits(1);
    assert_eq!(colour(&before.await.unwrap()), "00");
    let after = ask(&cache, &calls, "q", "10", PERSON).await;
    assert_eq!((colour(&after), calls.load(Ordering::SeqCst)), ("10", 2));
}

#[tokio::test]
async fn a_request_that_joined_a_condemned_fetch_fetches_afresh() {
    let cache = Arc::new(cache().0);
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let before = start_gated_fetch(&cache, &calls, &gate).await;
    // The status event arrives while the old (green) answer is on its way, and then a
    // request for the same key joins that fetch.
    assert_eq!(cache.purge_subject(PERSON).await, 0);
    let joiner = join_gated_fetch(&cache, &calls).await;
    gate.add_permits(1);
    // The caller whose fetch was on its way gets it; the joiner does not.
    assert_eq!(colour(&before.await.unwrap()), "00");
    let joined = joiner.await.unwrap();
    assert_eq!((colour(&joined), calls.load(Ordering::SeqCst)), ("10", 2));
    assert!(!joined.is_purged());
    // And the fresh answer is the one kept.
    let kept = ask(&cache, &calls, "q", "01", PERSON).await;
    assert_eq!(colour(&kept), "10");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Two fetches ran (the condemned one and the joiner's own); only the last ask was
    // served from the store.
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.hits, stats.in_flight), (2, 1, 0));
}

#[tokio::test]
async fn a_purge_of_someone_else_does_not_condemn_a_fetch() {
    let cache = Arc::new(cache().0);
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let before = start_gated_fetch(&cache, &calls, &gate).await;
    cache.purge_subject("someone-else").await;
    gate.add_permits(1);
    before.await.unwrap();
    ask(&cache, &calls, "q", "10", PERSON).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_fetch_outliving_the_purge_log_is_not_kept() {
    let cache = Arc::new(cache().0);
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let before = start_gated_fetch(&cache, &calls, &gate).await;
    // So many purges of others that the log no longer reaches back to the fetch's start:
    // the cache cannot tell, so it keeps nothing.
    for i in 0..=index::PURGE_LOG_LEN {
        cache.purge_subject(&format!("other-{i}")).await;
    }
    gate.add_permits(1);
    before.await.unwrap();
    ask(&cache, &calls, "q", "10", PERSON).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_subject_index_follows_evictions() {
    let (cache, _clock) = cache_with(8);
    let calls = Arc::new(AtomicUsize::new(0));
    for i in 0..200 {
        let person = format!("person-{i}");
        let request = format!("q{i}");
        ask(&cache, &calls, &request, "00", &person).await;
    }
    cache.run_pending_tasks().await;
    let stats = cache.stats();
    assert!(stats.entries <= 8, "{stats:?}");
    assert_eq!(stats.subjects as u64, stats.entries, "{stats:?}");
}
