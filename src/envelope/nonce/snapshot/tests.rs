use std::fs::{self, OpenOptions};
use std::path::PathBuf;

use super::super::{NonceCheck, NonceStore, NonceStoreConfig};
use super::*;
use crate::crypto::DigestKey;

const NOW: u64 = 1_800_000_000_000;
const TTL: u64 = 601_000;

fn key() -> DigestKey {
    DigestKey::derived(b"test replay store", b"the gateway's secret")
}

fn store_with(key: DigestKey, per_app: usize) -> MemoryNonceStore {
    MemoryNonceStore::with_key(
        NonceStoreConfig {
            ttl_ms: TTL,
            max_entries: 1_000,
            max_entries_per_app: per_app,
        },
        key,
    )
}

fn file(dir: &Path) -> PathBuf {
    dir.join("nonces.bin")
}

/// A store that saw `n` nonces of each of two clients at `NOW`, saved to a file.
fn saved(n: usize) -> (PathBuf, PathBuf) {
    let dir = crate::testutil::fresh_dir("nonce-snapshot");
    fs::create_dir_all(&dir).unwrap();
    let path = file(&dir);
    let store = store_with(key(), 1_000);
    for i in 0..n {
        for app in ["A1", "B22"] {
            assert_eq!(
                store.check_and_insert(app, &format!("n{i}"), NOW),
                NonceCheck::Fresh
            );
        }
    }
    assert_eq!(store.save(&path, NOW + 1).unwrap(), 2 * n);
    (dir, path)
}

#[test]
fn a_saved_nonce_is_still_refused_by_the_next_store() {
    let (_dir, path) = saved(5);
    let next = store_with(key(), 1_000);
    let found = next.load(&path, NOW + 60_000).unwrap();
    assert_eq!(
        found,
        SavedNonces {
            saved_at_ms: NOW + 1,
            loaded: 10,
            expired: 0,
            refused: 0
        }
    );
    assert_eq!(next.fill(), Some((10, 1_000)));
    for i in 0..5 {
        for app in ["A1", "B22"] {
            assert_eq!(
                next.check_and_insert(app, &format!("n{i}"), NOW + 60_000),
                NonceCheck::Replayed,
                "{app} n{i} came back"
            );
        }
    }
    // Another client's same nonce, and a new one, are fresh.
    assert_eq!(
        next.check_and_insert("C3", "n0", NOW + 60_000),
        NonceCheck::Fresh
    );
    assert_eq!(
        next.check_and_insert("A1", "n5", NOW + 60_000),
        NonceCheck::Fresh
    );
    // They expire when they would have: a TTL after they were first seen.
    assert_eq!(
        next.check_and_insert("A1", "n0", NOW + TTL + 1),
        NonceCheck::Fresh
    );
}

#[test]
fn nonces_expired_since_the_save_are_left_out() {
    let (_dir, path) = saved(3);
    let next = store_with(key(), 1_000);
    let found = next.load(&path, NOW + TTL).unwrap();
    assert_eq!((found.loaded, found.expired), (0, 6));
    assert_eq!(next.fill(), Some((0, 1_000)));
}

#[test]
fn loading_twice_adds_nothing_the_second_time() {
    let (_dir, path) = saved(4);
    let next = store_with(key(), 1_000);
    next.load(&path, NOW + 1).unwrap();
    next.load(&path, NOW + 2).unwrap();
    assert_eq!(next.fill(), Some((8, 1_000)));
}

#[test]
fn a_store_at_its_cap_loads_what_fits_and_counts_the_rest() {
    let (_dir, path) = saved(4);
    let next = store_with(key(), 3);
    let found = next.load(&path, NOW + 1).unwrap();
    assert_eq!((found.loaded, found.refused), (6, 2));
    assert_eq!(next.fill(), Some((6, 1_000)));
}

#[test]
fn a_file_saved_under_another_key_loads_nothing() {
    let (_dir, path) = saved(2);
    let other = store_with(
        DigestKey::derived(b"test replay store", b"another secret"),
        1_000,
    );
    let err = other.load(&path, NOW + 1).unwrap_err();
    assert!(matches!(err, NonceSnapshotError::OtherKey { .. }), "{err}");
    assert_eq!(other.fill(), Some((0, 1_000)));
}

#[test]
fn a_changed_cut_or_foreign_file_loads_nothing_and_says_why() {
    let (_dir, path) = saved(2);
    let good = fs::read(&path).unwrap();
    let mut flipped = good.clone();
    flipped[MAGIC.len() + 40] ^= 1;
    let mut foreign = good.clone();
    foreign[0] = b'H';
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("one bit changed", flipped, "checksum"),
        ("cut short", good[..good.len() - 5].to_vec(), "checksum"),
        ("another format", foreign, "no header"),
        ("empty", Vec::new(), "no header"),
    ];
    for (what, bytes, why) in cases {
        fs::write(&path, bytes).unwrap();
        let next = store_with(key(), 1_000);
        let err = next.load(&path, NOW + 1).unwrap_err();
        assert!(err.to_string().contains(why), "{what}: {err}");
        assert_eq!(next.fill(), Some((0, 1_000)), "{what}");
    }
}

#[test]
fn a_consistent_file_with_a_bad_count_or_client_is_refused() {
    // A file with a valid checksum over wrong contents: the parser's own checks.
    let (_dir, path) = saved(1);
    let good = fs::read(&path).unwrap();
    let body = &good[..good.len() - 16];
    let resum = |mut body: Vec<u8>| {
        let sum = key().digest(&[&body]);
        body.extend_from_slice(&sum);
        body
    };
    let mut count = body.to_vec();
    let at = count.len() - 16;
    count[at] += 1;
    // The last entry's client index, just before the clients' list: past the two clients.
    let names_len = le_u32(&body[body.len() - 4..]) as usize;
    let mut client = body.to_vec();
    let at = client.len() - 16 - names_len - 4;
    client[at] = 9;
    for (what, bytes, why) in [
        ("count", resum(count), "entry count"),
        ("client", resum(client), "names no client"),
    ] {
        fs::write(&path, bytes).unwrap();
        let err = store_with(key(), 1_000).load(&path, NOW + 1).unwrap_err();
        assert!(err.to_string().contains(why), "{what}: {err}");
    }
}

#[test]
fn a_missing_file_is_an_empty_save_and_the_file_is_private() {
    let dir = crate::testutil::fresh_dir("nonce-snapshot");
    fs::create_dir_all(&dir).unwrap();
    let store = store_with(key(), 1_000);
    assert_eq!(store.load(&file(&dir), NOW).unwrap().loaded, 0);
    store.check_and_insert("A1", "x", NOW);
    store.save(&file(&dir), NOW).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(file(&dir)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Nothing is left beside it: the temporary file was renamed over it.
    let left: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from("nonces.bin")]);
}

#[test]
fn a_closed_store_refuses_every_nonce() {
    let store = store_with(key(), 1_000);
    assert_eq!(store.check_and_insert("A1", "x", NOW), NonceCheck::Fresh);
    store.close();
    assert_eq!(
        store.check_and_insert("A1", "y", NOW),
        NonceCheck::Unavailable
    );
    assert_eq!(
        store.check_and_insert("A1", "x", NOW),
        NonceCheck::Unavailable
    );
}

#[test]
fn an_expiry_is_held_no_longer_than_a_ttl_past_the_save() {
    let (_dir, path) = saved(1);
    // The clock is an hour behind the one that saved. Which was wrong cannot be told: the
    // saved nonces are held until a TTL past the save (refused in vain if the saving clock
    // was ahead; bounded by the caps), and no longer.
    let now = NOW - 3_600_000;
    let next = store_with(key(), 1_000);
    assert_eq!(next.load(&path, now).unwrap().loaded, 2);
    assert_eq!(
        next.check_and_insert("A1", "n0", now + 1),
        NonceCheck::Replayed
    );
    assert_eq!(
        next.check_and_insert("B22", "n0", now + TTL + 1),
        NonceCheck::Replayed
    );
    assert_eq!(
        next.check_and_insert("B22", "n0", NOW + TTL + 1),
        NonceCheck::Fresh
    );
}

/// A start with the clock 15 minutes behind cut every saved nonce to a TTL from that
/// clock: once the clock was set right, a captured request still within its window was
/// taken as fresh.
#[test]
fn a_start_with_the_clock_behind_does_not_forget_the_saved_nonces() {
    let (_dir, path) = saved(1);
    let next = store_with(key(), 1_000);
    next.load(&path, NOW - 900_000).unwrap();
    assert_eq!(
        next.check_and_insert("A1", "n0", NOW + 60_000),
        NonceCheck::Replayed
    );
}

#[test]
fn a_nonce_loaded_twice_keeps_the_later_expiry() {
    let dir = crate::testutil::fresh_dir("nonce-snapshot");
    fs::create_dir_all(&dir).unwrap();
    let (early, late) = (dir.join("early.bin"), dir.join("late.bin"));
    let a = store_with(key(), 1_000);
    a.check_and_insert("A1", "n", NOW);
    a.save(&early, NOW).unwrap();
    let b = store_with(key(), 1_000);
    b.check_and_insert("A1", "n", NOW + 100_000);
    b.save(&late, NOW + 100_000).unwrap();
    let next = store_with(key(), 1_000);
    next.load(&early, NOW + 100_000).unwrap();
    next.load(&late, NOW + 100_000).unwrap();
    assert_eq!(next.fill(), Some((1, 1_000)));
    assert_eq!(
        next.check_and_insert("A1", "n", NOW + TTL + 50_000),
        NonceCheck::Replayed
    );
}

#[test]
fn a_file_longer_than_the_store_could_save_is_not_read() {
    let (_dir, path) = saved(1);
    let store = store_with(key(), 1_000);
    // Sparse: the length is what counts, and it is checked before a byte is read.
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(store.max_file_len() + 1).unwrap();
    let err = store.load(&path, NOW).unwrap_err();
    assert!(err.to_string().contains("more than the"), "{err}");
    f.set_len(store.max_file_len()).unwrap();
    let err = store.load(&path, NOW).unwrap_err();
    assert!(
        err.to_string().contains("checksum"),
        "read, then refused: {err}"
    );
}

/// A save's clock is believed at most an hour ahead of the loading one: further, its
/// nonces would hold their places (refusing new requests at a cap) as long as it had been
/// ahead.
#[test]
fn a_save_far_ahead_of_the_clock_is_believed_an_hour_ahead() {
    let (_dir, path) = saved(1);
    let now = NOW - 5 * 3_600_000;
    let next = store_with(key(), 1_000);
    next.load(&path, now).unwrap();
    let held_until = now + 3_600_000 + TTL;
    assert_eq!(
        next.check_and_insert("A1", "n0", held_until - 1),
        NonceCheck::Replayed
    );
    assert_eq!(
        next.check_and_insert("B22", "n0", held_until + 1),
        NonceCheck::Fresh
    );
}
