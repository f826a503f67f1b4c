//! The audit log through the command line, as an operator and a holder use it: records
//! appended by the library, `hutong audit verify` on the intact log and on tampered copies
//! (edited through redb directly, as an intruder with the file would), and
//! `hutong audit receipt`.

use std::path::{Path, PathBuf};

use hutong::audit::{AuditLog, AuditRecord, NewRecord, RedbAuditLog, pseudonym};
use hutong::crypto::{MacKey, to_hex};
use hutong::store::Store;
use hutong::store::tables::AUDIT_RECORDS;

use crate::support::{hutong, hutong_stdin, stdout, temp_dir};

const SECRET: [u8; 32] = [0x5a; 32];
const ALICE: &str = "11010519491231002X";
const BOB: &str = "110105194912310038";

/// A data directory with 8 records: odd seqs about Alice, seqs 4 and 8 about Bob, the rest
/// about nobody.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = temp_dir("audit");
        let secret = MacKey::from_bytes(&SECRET).unwrap();
        let log = RedbAuditLog::new(Store::open(&dir.join("data")).unwrap());
        for i in 1..=8u64 {
            let subject = match i {
                _ if i % 2 == 1 => Some(pseudonym(&secret, "10", ALICE)),
                4 | 8 => Some(pseudonym(&secret, "10", BOB)),
                _ => None,
            };
            log.append(NewRecord {
                time_ms: 1_795_000_000_000 + i * 60_000,
                actor: format!("A330001000{i}"),
                action: "queryHealthInfo".to_owned(),
                subject,
                purpose: "venue-entry".to_owned(),
                result: "0".to_owned(),
                loss: vec![],
                request_id: format!("req-{i}"),
            })
            .unwrap();
        }
        std::fs::write(dir.join("secret.hex"), to_hex(&SECRET) + "\n").unwrap();
        Self { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A fresh copy of the data directory, tampered with by `f` through redb.
    fn tampered(&self, name: &str, f: impl FnOnce(&redb::Database)) -> PathBuf {
        let copy = self.dir.join(name);
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::copy(
            self.data().join(Store::FILE_NAME),
            copy.join(Store::FILE_NAME),
        )
        .unwrap();
        let db = redb::Database::open(copy.join(Store::FILE_NAME)).unwrap();
        f(&db);
        copy
    }

    /// `hutong audit verify`: (exit status, stdout).
    fn verify(&self, data: &Path) -> (i32, String) {
        let out = hutong(["audit", "verify", "--data-dir", data.to_str().unwrap()]);
        (out.status.code().unwrap_or(-1), stdout(&out))
    }

    /// The seqs in `hutong audit receipt --json` for `id_no`.
    fn receipt_seqs(&self, id_no: &str) -> Vec<u64> {
        crate::support::receipt_seqs(&self.data(), &self.dir.join("secret.hex"), id_no)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn record(db: &redb::Database, seq: u64) -> AuditRecord {
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(AUDIT_RECORDS).unwrap();
    AuditRecord::decode_stored(t.get(seq).unwrap().unwrap().value()).unwrap()
}

fn write(db: &redb::Database, f: impl FnOnce(&mut redb::Table<'_, u64, &[u8]>)) {
    let txn = db.begin_write().unwrap();
    f(&mut txn.open_table(AUDIT_RECORDS).unwrap());
    txn.commit().unwrap();
}

#[test]
fn verify_passes_on_an_intact_log() {
    let fx = Fixture::new();
    let (code, out) = fx.verify(&fx.data());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("8 record(s)"), "{out}");
    assert!(out.contains("intact"), "{out}");
}

#[test]
fn verify_names_a_changed_record() {
    let fx = Fixture::new();
    let copy = fx.tampered("changed", |db| {
        let mut r = record(db, 3);
        r.actor = "A9999999999".to_owned();
        write(db, |t| {
            t.insert(3, r.encode_stored().as_slice()).unwrap();
        });
    });
    let (code, out) = fx.verify(&copy);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TAMPERED"), "{out}");
    assert!(out.contains("seq 3: hash mismatch"), "{out}");
    // The original is untouched.
    assert_eq!(fx.verify(&fx.data()).0, 0);
}

#[test]
fn verify_names_an_inserted_record() {
    let fx = Fixture::new();
    let copy = fx.tampered("inserted", |db| {
        let before = record(db, 4);
        let shifted: Vec<AuditRecord> = (5..=8).map(|s| record(db, s)).collect();
        let forged = AuditRecord::seal(
            5,
            before.hash,
            NewRecord {
                time_ms: before.time_ms + 1,
                actor: "A3300010009".to_owned(),
                action: "verifyCode".to_owned(),
                result: "0".to_owned(),
                request_id: "forged".to_owned(),
                ..NewRecord::default()
            },
        )
        .unwrap();
        write(db, |t| {
            for r in &shifted {
                t.insert(r.seq + 1, r.encode_stored().as_slice()).unwrap();
            }
            t.insert(5, forged.encode_stored().as_slice()).unwrap();
        });
    });
    let (code, out) = fx.verify(&copy);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("seq 6: the record inside says seq 5"), "{out}");
    assert!(out.contains("seq 6: chain break"), "{out}");
}

#[test]
fn verify_names_a_deleted_record() {
    let fx = Fixture::new();
    let copy = fx.tampered("deleted", |db| {
        write(db, |t| {
            t.remove(4).unwrap();
        });
    });
    let (code, out) = fx.verify(&copy);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("seq 4: missing (deleted)"), "{out}");
    assert!(out.contains("seq 5: chain break"), "{out}");
}

#[test]
fn verify_names_a_truncated_tail() {
    let fx = Fixture::new();
    let copy = fx.tampered("truncated", |db| {
        write(db, |t| {
            t.remove(8).unwrap();
        });
    });
    let (code, out) = fx.verify(&copy);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("seq 8: missing at the tail"), "{out}");
}

#[test]
fn verify_json_reports_every_problem() {
    let fx = Fixture::new();
    let copy = fx.tampered("json", |db| {
        let mut r = record(db, 2);
        r.result = "1006".to_owned();
        write(db, |t| {
            t.insert(2, r.encode_stored().as_slice()).unwrap();
            t.remove(6).unwrap();
        });
    });
    let out = hutong([
        "audit",
        "verify",
        "--data-dir",
        copy.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["records"], 7);
    assert_eq!(doc["head"]["seq"], 8);
    let problems: Vec<&str> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("seq 2: hash mismatch")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("seq 6: missing")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.starts_with("seq 7: chain break")),
        "{problems:?}"
    );
}

#[test]
fn verify_refuses_a_directory_without_a_database() {
    let dir = temp_dir("audit-empty");
    let out = hutong(["audit", "verify", "--data-dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no hutong database"));
    assert!(!dir.join(Store::FILE_NAME).exists());
}

#[test]
fn receipt_lists_exactly_the_holders_records() {
    let fx = Fixture::new();
    assert_eq!(fx.receipt_seqs(ALICE), vec![1, 3, 5, 7]);
    assert_eq!(fx.receipt_seqs(BOB), vec![4, 8]);
    // The check character typed in lower case is the same person.
    assert_eq!(fx.receipt_seqs(&ALICE.to_lowercase()), vec![1, 3, 5, 7]);
    assert!(fx.receipt_seqs("110105194912310046").is_empty());
}

#[test]
fn receipt_table_reads_the_id_from_stdin_and_never_prints_it() {
    let fx = Fixture::new();
    let out = hutong_stdin(
        &[
            "audit",
            "receipt",
            "--data-dir",
            fx.data().to_str().unwrap(),
            "--secret-file",
            fx.dir.join("secret.hex").to_str().unwrap(),
            "--id-no",
            "-",
        ],
        format!("{BOB}\n").as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    let secret = MacKey::from_bytes(&SECRET).unwrap();
    assert!(
        text.contains(&pseudonym(&secret, "10", BOB).to_hex()),
        "{text}"
    );
    assert!(text.contains("2 record(s)"), "{text}");
    let rows: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0].starts_with("4 ") && rows[1].starts_with("8 "),
        "{text}"
    );
    assert!(
        text.contains("req-4") && text.contains("A3300010008"),
        "{text}"
    );
    assert!(!text.contains(BOB), "the ID number leaked: {text}");
    // Nothing in the data directory holds the ID number either.
    let file = std::fs::read(fx.data().join(Store::FILE_NAME)).unwrap();
    for id in [ALICE, BOB] {
        assert!(!file.windows(id.len()).any(|w| w == id.as_bytes()));
    }
}

#[test]
fn receipt_rejects_a_short_secret() {
    let fx = Fixture::new();
    std::fs::write(fx.dir.join("short.hex"), "00112233").unwrap();
    let out = hutong([
        "audit",
        "receipt",
        "--data-dir",
        fx.data().to_str().unwrap(),
        "--secret-file",
        fx.dir.join("short.hex").to_str().unwrap(),
        "--id-no",
        ALICE,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 16 bytes"));
}

#[test]
fn receipt_refuses_a_mistyped_id_number_rather_than_finding_nobody() {
    let fx = Fixture::new();
    // Alice's number with the wrong check character.
    let mistyped = "110105194912310021";
    let out = hutong_stdin(
        &[
            "audit",
            "receipt",
            "--data-dir",
            fx.data().to_str().unwrap(),
            "--secret-file",
            fx.dir.join("secret.hex").to_str().unwrap(),
            "--id-no",
            "-",
        ],
        format!("{mistyped}\n").as_bytes(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a valid resident ID number"), "{err}");
    assert!(err.contains("check character does not match"), "{err}");
    // No part of the number is said: not its birth date, not the right check character.
    assert!(!err.contains("19491231"), "{err}");
    assert!(!err.contains("expected"), "{err}");
}

#[test]
fn an_anchor_catches_a_tail_cut_off_with_the_head_marker_moved_back() {
    let fx = Fixture::new();
    // The head as `verify` printed it, kept outside the file.
    let (_, out) = fx.verify(&fx.data());
    let hash = out
        .split("head seq 8 hash ")
        .nth(1)
        .and_then(|rest| rest.get(..64))
        .unwrap_or_else(|| panic!("no head in {out}"))
        .to_owned();
    let verify = |data: &Path, anchor: &str| {
        let out = hutong([
            "audit",
            "verify",
            "--data-dir",
            data.to_str().unwrap(),
            "--anchor",
            anchor,
        ]);
        (out.status.code().unwrap_or(-1), stdout(&out))
    };
    let (code, out) = verify(&fx.data(), &format!("8:{hash}"));
    assert_eq!(code, 0, "the anchor holds on the intact log: {out}");
    // Seqs 7 and 8 cut off, and the head marker moved onto 6: the file agrees with itself.
    let copy = fx.tampered("rewound", |db| {
        let six = record(db, 6);
        write(db, |t| {
            t.remove(7).unwrap();
            t.remove(8).unwrap();
        });
        let txn = db.begin_write().unwrap();
        {
            use redb::ReadableTable as _;
            // And their entries in the holders' index, as a careful intruder would.
            let mut index = txn
                .open_table(hutong::store::tables::AUDIT_BY_SUBJECT)
                .unwrap();
            let gone: Vec<([u8; 32], u64)> = index
                .iter()
                .unwrap()
                .map(|e| e.unwrap().0.value())
                .filter(|(_, seq)| *seq > 6)
                .collect();
            assert_eq!(gone.len(), 2);
            for k in gone {
                index.remove(k).unwrap();
            }
        }
        txn.open_table(hutong::store::tables::AUDIT_META)
            .unwrap()
            .insert(
                hutong::audit::HEAD_KEY,
                hutong::audit::ChainMark::of(&six).encode().as_slice(),
            )
            .unwrap();
        txn.commit().unwrap();
    });
    let (code, out) = fx.verify(&copy);
    assert_eq!(code, 0, "without an anchor the cut does not show: {out}");
    let (code, out) = verify(&copy, &format!("8:{hash}"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("seq 8: the anchored record is gone"), "{out}");
    // Every record deleted and the purge checkpoint moved past the anchor: the file
    // agrees with itself again, and an anchor that cannot be checked is not a pass.
    let forward = fx.tampered("forward", |db| {
        let txn = db.begin_write().unwrap();
        {
            let mut records = txn.open_table(AUDIT_RECORDS).unwrap();
            for seq in 1..=8u64 {
                records.remove(seq).unwrap();
            }
            let _ = txn.delete_table(hutong::store::tables::AUDIT_BY_SUBJECT);
            let mut meta = txn.open_table(hutong::store::tables::AUDIT_META).unwrap();
            let mark = hutong::audit::ChainMark {
                seq: 9,
                hash: [7u8; 32],
            }
            .encode();
            meta.insert(hutong::audit::CHECKPOINT_KEY, mark.as_slice())
                .unwrap();
            meta.insert(hutong::audit::HEAD_KEY, mark.as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    });
    let (code, out) = fx.verify(&forward);
    assert_eq!(
        code, 0,
        "without an anchor the deletion does not show: {out}"
    );
    let (code, out) = verify(&forward, &format!("8:{hash}"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("cannot be checked"), "{out}");
    // The anchor's hash must be the record's, not any record's.
    let (code, out) = verify(&fx.data(), &format!("6:{hash}"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("seq 6: hash differs from the anchor"), "{out}");
    // An anchor that is not one is refused, not ignored.
    let out = hutong([
        "audit",
        "verify",
        "--data-dir",
        fx.data().to_str().unwrap(),
        "--anchor",
        "8:xyz",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 hex digits"));
}
