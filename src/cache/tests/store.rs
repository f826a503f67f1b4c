//! The store under the cache's rules: the clock hand, the sweep, the bound on the total,
//! flights whose callers go away, and the monotonic cap.

use super::*;

#[tokio::test]
async fn the_clock_spares_an_answer_read_since_it_last_passed() {
    let (cache, _clock) = cache_with(4);
    let calls = Arc::new(AtomicUsize::new(0));
    let get = |request: &str| {
        cache.get_or_fetch(key("p", request), fetch(&calls, "00", None, T0 + 60_000))
    };
    for request in ["a", "b", "c", "d"] {
        get(request).await.unwrap();
    }
    get("a").await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    // Full: the fifth answer takes the slot of the oldest one nobody read again.
    get("e").await.unwrap();
    assert_eq!(cache.stats().entries, 4);
    get("a").await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        5,
        "the answer read again was evicted"
    );
    get("b").await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        6,
        "the unread answer was kept"
    );
}

#[tokio::test]
async fn the_sweep_frees_expired_answers_and_their_index() {
    let (cache, clock) = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    for (request, until) in [("short", T0 + 1_000), ("long", T0 + 60_000)] {
        cache
            .get_or_fetch(key("p", request), fetch(&calls, "00", Some(request), until))
            .await
            .unwrap();
    }
    assert_eq!(cache.run_pending_tasks().await, 0);
    clock.advance_ms(1_000);
    assert_eq!(cache.run_pending_tasks().await, 1);
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.subjects), (1, 1), "{stats:?}");
}

#[tokio::test]
async fn a_waiter_fetches_when_the_caller_whose_fetch_ran_goes_away() {
    let cache = Arc::new(cache().0);
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let first = start_gated_fetch(&cache, &calls, &gate).await;
    let waiter = join_gated_fetch(&cache, &calls).await;
    first.abort();
    assert_eq!(colour(&waiter.await.unwrap()), "10");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.stats().in_flight, 0);
}

#[tokio::test]
async fn a_fetch_whose_caller_goes_away_leaves_nothing_in_flight() {
    let cache = Arc::new(cache().0);
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let task = start_gated_fetch(&cache, &calls, &gate).await;
    assert_eq!(cache.stats().in_flight, 1);
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(
        cache.stats().in_flight,
        0,
        "a cancelled fetch stays in the map"
    );
    // The next caller fetches afresh.
    ask(&cache, &calls, "q", "10", PERSON).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_sharded_cache_fills_to_its_bound_and_no_further() {
    // Large enough to be split into shards, which fill unevenly: the bound is on the total.
    const MAX: u64 = 5_000;
    let (cache, _clock) = cache_with(MAX);
    let calls = Arc::new(AtomicUsize::new(0));
    for i in 0..MAX + 1_000 {
        let person = format!("person-{i}");
        ask(&cache, &calls, &format!("q{i}"), "00", &person).await;
        if i + 1 == MAX {
            assert_eq!(cache.stats().entries, MAX, "every answer kept until full");
        }
    }
    let stats = cache.stats();
    assert_eq!(
        (stats.entries, stats.subjects as u64),
        (MAX, MAX),
        "{stats:?}"
    );
}

#[tokio::test]
async fn a_wall_clock_stepped_back_does_not_stretch_an_answer_past_max_ttl() {
    // The one test that waits: the cap runs on the real monotonic clock, which the test
    // cannot move. 1 ms of max_ttl, 20 ms of waiting.
    let clock = FakeClock::new();
    let config = CacheConfig {
        max_ttl_ms: NonZeroU64::new(1).unwrap(),
        ..CacheConfig::default()
    };
    let cache = ResponseCache::<Boom>::new(&config, clock.clock());
    let calls = Arc::new(AtomicUsize::new(0));
    ask(&cache, &calls, "q", "00", PERSON).await;
    std::thread::sleep(Duration::from_millis(20));
    // By the wall clock the answer is fresh for another minute; by the cap it is not.
    ask(&cache, &calls, "q", "10", PERSON).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "served past max_ttl");
}

#[tokio::test]
async fn a_caller_that_missed_as_a_flight_ended_is_served_its_answer() {
    // One upstream call per key: a caller that read the store just before the answer went
    // in, and reached the flights just after that flight had left the map, fetched again.
    let (cache, _clock) = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    ask(&cache, &calls, "q", "00", PERSON).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().in_flight, 0);
    // Where that caller stands: past its read of the store, with no flight to join.
    let late = cache
        .miss(
            key("p", "q").digest(),
            fetch(&calls, "10", Some(PERSON), T0 + 60_000),
        )
        .await
        .unwrap();
    assert_eq!(colour(&late), "00", "served the stored answer");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "fetched again");
    assert_eq!(cache.stats().hits, 1);
}
