//! Tests of the idempotency stores, run against both backends.

use std::path::PathBuf;

use super::*;
use crate::crypto::Sm4Key;
use crate::store::Store;
use crate::store::tables::IDEMPOTENCY;

struct Redb {
    dir: PathBuf,
    store: Store,
    inner: RedbIdempotencyStore,
}

impl Redb {
    fn new() -> Self {
        let dir = crate::testutil::fresh_dir("idem-unit");
        let store = Store::open(&dir).expect("open store");
        let inner = RedbIdempotencyStore::new(store.clone(), key());
        Self { dir, store, inner }
    }
}

impl Drop for Redb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn key() -> Sm4Key {
    Sm4Key::from_bytes(&[9; 16]).expect("key")
}

fn backends() -> Vec<(&'static str, Box<dyn IdempotencyStore>)> {
    let redb = Redb::new();
    // The harness outlives the test through the box; the directory goes with it.
    struct Owned(Redb);
    impl IdempotencyStore for Owned {
        fn get(&self, a: &str, r: &str, n: u64) -> Result<Option<StoredResponse>, StoreError> {
            self.0.inner.get(a, r, n)
        }
        fn put(
            &self,
            a: &str,
            r: &str,
            s: &StoredResponse,
            n: u64,
        ) -> Result<PutOutcome, StoreError> {
            self.0.inner.put(a, r, s, n)
        }
        fn purge_expired(&self, n: u64) -> Result<u64, StoreError> {
            self.0.inner.purge_expired(n)
        }
    }
    vec![
        ("memory", Box::new(MemoryIdempotencyStore::new())),
        ("redb", Box::new(Owned(redb))),
    ]
}

fn resp(code: &str, body: &str, request: &str) -> StoredResponse {
    StoredResponse {
        code: code.to_owned(),
        body: body.as_bytes().to_vec(),
        fingerprint: fingerprint(request.as_bytes()),
    }
}

const T0: u64 = 1_795_000_000_000;

#[test]
fn a_stored_answer_is_returned_until_it_expires() {
    for (name, s) in backends() {
        let r = resp("0", r#"{"colour":"green"}"#, r#"{"codeContent":"x"}"#);
        assert_eq!(s.get("A1", "req-1", T0).expect("get"), None, "{name}");
        assert_eq!(
            s.put("A1", "req-1", &r, T0).expect("put"),
            PutOutcome::Stored
        );
        assert_eq!(s.get("A1", "req-1", T0 + 1).expect("get"), Some(r.clone()));
        let last_live = T0 + IDEMPOTENCY_TTL_MS - 1;
        assert_eq!(s.get("A1", "req-1", last_live).expect("get"), Some(r));
        let expired = T0 + IDEMPOTENCY_TTL_MS;
        assert_eq!(s.get("A1", "req-1", expired).expect("get"), None, "{name}");
    }
}

#[test]
fn a_second_put_keeps_the_first_answer() {
    for (name, s) in backends() {
        let first = resp("0", "first", "content");
        let second = resp("2001", "second", "content");
        assert_eq!(
            s.put("A1", "r", &first, T0).expect("put"),
            PutOutcome::Stored
        );
        assert_eq!(
            s.put("A1", "r", &second, T0 + 5).expect("put"),
            PutOutcome::AlreadyExists(first.clone()),
            "{name}"
        );
        assert_eq!(s.get("A1", "r", T0 + 6).expect("get"), Some(first));
    }
}

#[test]
fn an_expired_record_is_replaced() {
    for (name, s) in backends() {
        let first = resp("0", "first", "content");
        let second = resp("0", "second", "content");
        s.put("A1", "r", &first, T0).expect("put");
        let later = T0 + IDEMPOTENCY_TTL_MS;
        assert_eq!(
            s.put("A1", "r", &second, later).expect("put"),
            PutOutcome::Stored,
            "{name}"
        );
        assert_eq!(s.get("A1", "r", later).expect("get"), Some(second));
        // The replaced record's expiry does not purge the new one.
        assert_eq!(s.purge_expired(later + 1).expect("purge"), 0, "{name}");
        assert!(s.get("A1", "r", later + 1).expect("get").is_some());
    }
}

#[test]
fn records_are_per_app() {
    for (name, s) in backends() {
        let a = resp("0", "a", "x");
        s.put("A1", "r", &a, T0).expect("put");
        assert_eq!(s.get("A2", "r", T0).expect("get"), None, "{name}");
        assert_eq!(
            s.put("A2", "r", &resp("0", "b", "x"), T0).expect("put"),
            PutOutcome::Stored
        );
    }
}

#[test]
fn fingerprint_tells_a_reused_request_id() {
    for (name, s) in backends() {
        s.put("A1", "r", &resp("0", "ok", r#"{"idNo":"1"}"#), T0)
            .expect("put");
        let stored = s.get("A1", "r", T0).expect("get").expect("present");
        assert!(
            stored.same_request(&fingerprint(br#"{"idNo":"1"}"#)),
            "{name}"
        );
        assert!(
            !stored.same_request(&fingerprint(br#"{"idNo":"2"}"#)),
            "{name}"
        );
    }
}

#[test]
fn purge_removes_only_expired_records() {
    for (name, s) in backends() {
        for i in 0..5u64 {
            s.put("A1", &format!("r{i}"), &resp("0", "b", "c"), T0 + i * 1000)
                .expect("put");
        }
        // At T0 + TTL + 2000, the records stored at T0, T0+1000 and T0+2000 are expired.
        let now = T0 + IDEMPOTENCY_TTL_MS + 2000;
        assert_eq!(s.purge_expired(now).expect("purge"), 3, "{name}");
        assert_eq!(s.purge_expired(now).expect("purge"), 0, "{name}");
        for i in 0..5u64 {
            let live = s.get("A1", &format!("r{i}"), T0).expect("get").is_some();
            assert_eq!(live, i >= 3, "{name}: r{i}");
        }
    }
}

#[test]
fn redb_encrypts_bodies_at_rest() {
    let h = Redb::new();
    let body = r#"{"name":"张三","idNo":"11010519491231002X"}"#;
    h.inner
        .put("A1", "r", &resp("0", body, "c"), T0)
        .expect("put");
    let txn = h.store.db().begin_read().expect("read");
    let raw = txn
        .open_table(IDEMPOTENCY)
        .expect("table")
        .get(("A1", "r"))
        .expect("get")
        .expect("present")
        .value()
        .to_vec();
    let needle = b"11010519491231002X";
    assert!(!raw.windows(needle.len()).any(|w| w == needle));
    // Another key cannot read it: the padding check fails (a StoreError::Crypto), or in
    // rare cases passes and yields garbage.
    let other =
        RedbIdempotencyStore::new(h.store.clone(), Sm4Key::from_bytes(&[1; 16]).expect("key"));
    assert_ne!(
        other.get("A1", "r", T0).ok().flatten().map(|r| r.body),
        Some(body.as_bytes().to_vec())
    );
    assert_eq!(
        h.inner.get("A1", "r", T0).expect("get").map(|r| r.body),
        Some(body.as_bytes().to_vec())
    );
}

#[test]
fn redb_records_survive_a_reopen() {
    let dir = std::env::temp_dir().join(format!("hutong-idem-reopen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let r = resp("0", "body", "c");
    {
        let s = RedbIdempotencyStore::new(Store::open(&dir).expect("open"), key());
        s.put("A1", "r", &r, T0).expect("put");
    }
    let s = RedbIdempotencyStore::new(Store::open(&dir).expect("reopen"), key());
    assert_eq!(s.get("A1", "r", T0).expect("get"), Some(r));
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
