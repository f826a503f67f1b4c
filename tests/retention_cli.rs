//! Retention through the command line, as an operator runs it: `hutong retention purge` on
//! a data directory, then `hutong audit verify` and `hutong audit receipt` on what is left;
//! and a purge that meets a tampered chain.

use std::path::{Path, PathBuf};

use hutong::audit::{AuditLog, NewRecord, RedbAuditLog, pseudonym};
use hutong::crypto::{MacKey, to_hex};
use hutong::store::Store;
use hutong::store::tables::AUDIT_RECORDS;

use crate::support::{hutong, stdout, temp_dir};

const SECRET: [u8; 32] = [0x5a; 32];
const ALICE: &str = "11010519491231002X";
/// "Now" for the purges: 2026-11-17, in Unix milliseconds.
const NOW: u64 = 1_795_000_000_000;
const DAY_MS: u64 = 86_400_000;
/// Ages of the records, in days: with `audit_days = 30`, the first four are due.
const AGES: [u64; 7] = [90, 60, 45, 31, 29, 10, 1];

/// A configuration (`[gateway]` and `[retention]` with `audit_days = 30`) and a data
/// directory with a record for each of [`AGES`], the odd seqs about Alice.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(retention: &str) -> Self {
        let dir = temp_dir("retention");
        let secret = MacKey::from_bytes(&SECRET).unwrap();
        let log = RedbAuditLog::new(Store::open(&dir.join("data")).unwrap());
        for (i, age) in AGES.into_iter().enumerate() {
            log.append(NewRecord {
                time_ms: NOW - age * DAY_MS,
                actor: "A3300010001".to_owned(),
                action: "queryHealthInfo".to_owned(),
                subject: (i % 2 == 0).then(|| pseudonym(&secret, "10", ALICE)),
                purpose: "venue-entry".to_owned(),
                result: "0".to_owned(),
                loss: vec![],
                request_id: format!("req-{}", i + 1),
            })
            .unwrap();
        }
        std::fs::write(dir.join("secret.hex"), to_hex(&SECRET) + "\n").unwrap();
        std::fs::write(
            dir.join("hutong.toml"),
            format!(
                "[server]\nlisten = \"127.0.0.1:8443\"\n\n[gateway]\napp_id = \"GW0000000001\"\n\
                 data_dir = \"data\"\n\n{retention}"
            ),
        )
        .unwrap();
        Self { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `hutong retention purge` at `now` (which may be ahead of the clock): (exit status,
    /// stdout, stderr).
    fn purge(&self, now: u64) -> (i32, String, String) {
        self.purge_with(now, &["--allow-future"])
    }

    fn purge_with(&self, now: u64, more: &[&str]) -> (i32, String, String) {
        let config = self.dir.join("hutong.toml");
        let now = now.to_string();
        let mut args = vec![
            "retention",
            "purge",
            "--config",
            config.to_str().unwrap(),
            "--now-ms",
            &now,
        ];
        args.extend_from_slice(more);
        let out = hutong(args);
        (
            out.status.code().unwrap_or(-1),
            stdout(&out),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `hutong audit verify`: (exit status, stdout).
    fn verify(&self, data: &Path) -> (i32, String) {
        let out = hutong(["audit", "verify", "--data-dir", data.to_str().unwrap()]);
        (out.status.code().unwrap_or(-1), stdout(&out))
    }

    /// The seqs of Alice's receipt.
    fn receipt_seqs(&self) -> Vec<u64> {
        crate::support::receipt_seqs(&self.data(), &self.dir.join("secret.hex"), ALICE)
    }

    fn remove_record(&self, seq: u64) {
        let db = redb::Database::open(self.data().join(Store::FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(AUDIT_RECORDS).unwrap().remove(seq).unwrap();
        txn.commit().unwrap();
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn purge_leaves_a_chain_that_verifies_and_receipts_of_what_is_kept() {
    let fx = Fixture::new("[retention]\naudit_days = 30\n");
    assert_eq!(fx.receipt_seqs(), vec![1, 3, 5, 7]);
    let (code, out, err) = fx.purge(NOW);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "purged 4 audit record(s), 0 expired idempotency record(s), 0 closed correction ticket(s)"
        ),
        "{out}"
    );
    let (code, out) = fx.verify(&fx.data());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("3 record(s) after the purge checkpoint at seq 4"),
        "{out}"
    );
    assert!(out.contains("intact"), "{out}");
    assert_eq!(fx.receipt_seqs(), vec![5, 7]);
    // Nothing more is due at the same time; a later pass takes the next record.
    assert!(fx.purge(NOW).1.contains("purged 0 audit record(s)"));
    assert!(
        fx.purge(NOW + 2 * DAY_MS)
            .1
            .contains("purged 1 audit record(s)")
    );
    assert_eq!(fx.verify(&fx.data()).0, 0);
    assert_eq!(fx.receipt_seqs(), vec![7]);
}

#[test]
fn a_purge_time_far_ahead_of_the_clock_is_refused_without_allow_future() {
    let fx = Fixture::new("[retention]\naudit_days = 30\n");
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // Seconds taken for milliseconds' thousandfold: a purge in the year 50,000.
    let (code, out, err) = fx.purge_with(clock * 1000, &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("ahead of the system clock"), "{err}");
    assert_eq!(fx.receipt_seqs(), vec![1, 3, 5, 7], "nothing was purged");
    // Within a day of the clock it runs.
    assert_eq!(fx.purge_with(clock + 3_600_000, &[]).0, 0);
}

#[test]
fn the_default_policy_keeps_half_a_year() {
    let fx = Fixture::new("");
    let (code, out, err) = fx.purge(NOW);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("purged 0 audit record(s)"), "{out}");
    // 150 days on, what is more than 180 days old is what was more than 30 days old.
    assert!(
        fx.purge(NOW + 150 * DAY_MS)
            .1
            .contains("purged 4 audit record(s)")
    );
    assert_eq!(fx.verify(&fx.data()).0, 0);
}

#[test]
fn deleting_the_oldest_kept_records_is_detected_and_not_laundered_by_a_purge() {
    let fx = Fixture::new("[retention]\naudit_days = 30\n");
    assert_eq!(fx.purge(NOW).0, 0);
    // An intruder removes the oldest record the purge kept, leaving the checkpoint.
    fx.remove_record(5);
    let (code, out) = fx.verify(&fx.data());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("seq 5: missing (deleted)"), "{out}");
    assert!(
        out.contains(
            "seq 6: chain break: prev_hash does not match the hash of the purge checkpoint (seq 4)"
        ),
        "{out}"
    );
    // A purge that would move the checkpoint over the gap refuses, and says why.
    let (code, out, err) = fx.purge(NOW + 30 * DAY_MS);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FAILED: audit records"), "{out}");
    assert!(out.contains("seq 5: missing (deleted)"), "{out}");
    let (code, out) = fx.verify(&fx.data());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("seq 5: missing (deleted)"), "{out}");
}

#[test]
fn purge_refuses_an_unknown_retention_key() {
    let fx = Fixture::new("[retention]\naudit_days = 30\nidempotency_hours = 1\n");
    let (code, out, err) = fx.purge(NOW);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("idempotency_hours"), "{err}");
    assert!(fx.verify(&fx.data()).1.contains("7 record(s)"));
}
