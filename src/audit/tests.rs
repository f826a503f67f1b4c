//! Tests of the audit log, run against both backends: the chain, every kind of tampering,
//! purging, receipts, and concurrent appends.

use std::path::PathBuf;
use std::sync::Arc;

use redb::ReadableTable;

use super::*;
use crate::crypto::MacKey;
use crate::store::tables::{AUDIT_BY_SUBJECT, AUDIT_META, AUDIT_RECORDS};
use crate::store::{Store, StoreError};

mod receipts;

// ---------------------------------------------------------------------------------------
// Harness: each backend, with raw access to its stored records for tampering.

pub(super) trait Harness: AuditLog {
    fn name(&self) -> &'static str;
    fn raw_get(&self, key: u64) -> Option<Vec<u8>>;
    fn raw_put(&self, key: u64, bytes: &[u8]);
    fn raw_remove(&self, key: u64);
    fn raw_keys(&self) -> Vec<u64>;
    fn raw_set_head(&self, mark: ChainMark);
    fn raw_set_checkpoint(&self, mark: ChainMark);
}

impl Harness for MemoryAuditLog {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn raw_get(&self, key: u64) -> Option<Vec<u8>> {
        let mut out = None;
        self.danger_tamper(|st| out = st.records.get(&key).cloned());
        out
    }
    fn raw_put(&self, key: u64, bytes: &[u8]) {
        self.danger_tamper(|st| {
            st.records.insert(key, bytes.to_vec());
        });
    }
    fn raw_remove(&self, key: u64) {
        self.danger_tamper(|st| {
            st.records.remove(&key);
        });
    }
    fn raw_keys(&self) -> Vec<u64> {
        let mut out = Vec::new();
        self.danger_tamper(|st| out = st.records.keys().copied().collect());
        out
    }
    fn raw_set_head(&self, mark: ChainMark) {
        self.danger_tamper(|st| st.head = Some(mark));
    }
    fn raw_set_checkpoint(&self, mark: ChainMark) {
        self.danger_tamper(|st| st.checkpoint = Some(mark));
    }
}

pub(super) struct Redb {
    dir: PathBuf,
    pub(super) store: Store,
    pub(super) log: RedbAuditLog,
}

impl Redb {
    pub(super) fn new() -> Self {
        let dir = crate::testutil::fresh_dir("audit-unit");
        let store = Store::open(&dir).expect("open store");
        let log = RedbAuditLog::new(store.clone());
        Self { dir, store, log }
    }
}

impl Drop for Redb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl AuditLog for Redb {
    fn append(&self, rec: NewRecord) -> Result<AuditRecord, StoreError> {
        self.log.append(rec)
    }
    fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.log.verify()
    }
    fn receipt(&self, subject: &Pseudonym) -> Result<Vec<AuditRecord>, StoreError> {
        self.log.receipt(subject)
    }
    fn purge_before(&self, time_ms: u64) -> Result<u64, StoreError> {
        self.log.purge_before(time_ms)
    }
    fn tail(&self, n: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.log.tail(n)
    }
}

impl Harness for Redb {
    fn name(&self) -> &'static str {
        "redb"
    }
    fn raw_get(&self, key: u64) -> Option<Vec<u8>> {
        let txn = self.store.db().begin_read().expect("read");
        let t = txn.open_table(AUDIT_RECORDS).expect("table");
        t.get(key).expect("get").map(|v| v.value().to_vec())
    }
    fn raw_put(&self, key: u64, bytes: &[u8]) {
        let txn = self.store.db().begin_write().expect("write");
        txn.open_table(AUDIT_RECORDS)
            .expect("table")
            .insert(key, bytes)
            .expect("insert");
        txn.commit().expect("commit");
    }
    fn raw_remove(&self, key: u64) {
        let txn = self.store.db().begin_write().expect("write");
        txn.open_table(AUDIT_RECORDS)
            .expect("table")
            .remove(key)
            .expect("remove");
        txn.commit().expect("commit");
    }
    fn raw_keys(&self) -> Vec<u64> {
        let txn = self.store.db().begin_read().expect("read");
        let t = txn.open_table(AUDIT_RECORDS).expect("table");
        t.iter()
            .expect("iter")
            .map(|e| e.expect("entry").0.value())
            .collect()
    }
    fn raw_set_head(&self, mark: ChainMark) {
        let txn = self.store.db().begin_write().expect("write");
        txn.open_table(AUDIT_META)
            .expect("table")
            .insert(HEAD_KEY, mark.encode().as_slice())
            .expect("insert");
        txn.commit().expect("commit");
    }
    fn raw_set_checkpoint(&self, mark: ChainMark) {
        let txn = self.store.db().begin_write().expect("write");
        txn.open_table(AUDIT_META)
            .expect("table")
            .insert(CHECKPOINT_KEY, mark.encode().as_slice())
            .expect("insert");
        txn.commit().expect("commit");
    }
}

pub(super) fn backends() -> Vec<Box<dyn Harness>> {
    vec![Box::new(MemoryAuditLog::new()), Box::new(Redb::new())]
}

pub(super) fn secret() -> MacKey {
    MacKey::from_bytes(&[0x42; 32]).expect("key")
}

pub(super) fn alice() -> Pseudonym {
    pseudonym(&secret(), "10", "11010519491231002X")
}

pub(super) fn bob() -> Pseudonym {
    pseudonym(&secret(), "10", "110105194912310038")
}

/// Record `i`: about alice when `i` is odd, bob when it is a multiple of 4, nobody else.
pub(super) fn rec(i: u64) -> NewRecord {
    NewRecord {
        time_ms: 1_795_000_000_000 + i * 1000,
        actor: format!("A33000100{i:02}"),
        action: "verifyCode".to_owned(),
        subject: if i % 2 == 1 {
            Some(alice())
        } else if i % 4 == 0 {
            Some(bob())
        } else {
            None
        },
        purpose: "entry-check".to_owned(),
        result: "0".to_owned(),
        loss: if i % 3 == 0 {
            vec!["bizExtData.venue".to_owned()]
        } else {
            Vec::new()
        },
        request_id: format!("req-{i}"),
    }
}

pub(super) fn fill(log: &dyn Harness, n: u64) -> Vec<AuditRecord> {
    (1..=n)
        .map(|i| log.append(rec(i)).expect("append"))
        .collect()
}

/// Verifies, expecting failure, and returns the problems.
pub(super) fn problems(log: &dyn Harness) -> Vec<String> {
    let r = log.verify().expect("verify runs");
    assert!(!r.ok, "{}: tampering not detected", log.name());
    assert_eq!(r.problems.is_empty(), r.ok);
    r.problems
}

pub(super) fn assert_problem(problems: &[String], needle: &str, backend: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "{backend}: no problem containing {needle:?} in {problems:#?}"
    );
}

pub(super) fn assert_intact(log: &dyn Harness) -> VerifyReport {
    let r = log.verify().expect("verify runs");
    assert!(r.ok, "{}: {:#?}", log.name(), r.problems);
    r
}

pub(super) fn fill_plain(log: &dyn AuditLog, n: u64) -> Vec<AuditRecord> {
    (1..=n)
        .map(|i| log.append(rec(i)).expect("append"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The record encoding.

#[test]
fn canonical_bytes_follow_the_documented_layout() {
    let r = AuditRecord::seal(
        7,
        [0xaa; 32],
        NewRecord {
            time_ms: 0x0102,
            actor: "A1".to_owned(),
            action: "v".to_owned(),
            subject: Some(Pseudonym([0x11; 32])),
            purpose: "p".to_owned(),
            result: "0".to_owned(),
            loss: vec!["x".to_owned(), "yz".to_owned()],
            request_id: "r".to_owned(),
        },
    )
    .expect("seal");
    let mut want = vec![RECORD_VERSION];
    want.extend_from_slice(&7u64.to_be_bytes());
    want.extend_from_slice(&0x0102u64.to_be_bytes());
    want.extend_from_slice(b"\0\0\0\x02A1");
    want.extend_from_slice(b"\0\0\0\x01v");
    want.push(1);
    want.extend_from_slice(&[0x11; 32]);
    want.extend_from_slice(b"\0\0\0\x01p");
    want.extend_from_slice(b"\0\0\0\x010");
    want.extend_from_slice(b"\0\0\0\x02\0\0\0\x01x\0\0\0\x02yz");
    want.extend_from_slice(b"\0\0\0\x01r");
    assert_eq!(r.canonical_bytes(), want);

    let mut hashed = vec![0xaa; 32];
    hashed.extend_from_slice(&want);
    assert_eq!(r.hash, crate::crypto::sm3(&hashed));

    let stored = r.encode_stored();
    assert_eq!(&stored[..32], &[0xaa; 32]);
    assert_eq!(&stored[32..stored.len() - 32], want.as_slice());
    assert_eq!(&stored[stored.len() - 32..], &r.hash);
}

#[test]
fn stored_form_round_trips() {
    for i in 1..=8 {
        let r = AuditRecord::seal(i, [i as u8; 32], rec(i)).expect("seal");
        let back = AuditRecord::decode_stored(&r.encode_stored()).expect("decode");
        assert_eq!(back, r);
        assert!(back.hash_is_valid());
    }
}

#[test]
fn length_prefixes_keep_neighbouring_fields_apart() {
    let a = NewRecord {
        actor: "ab".to_owned(),
        action: "c".to_owned(),
        ..NewRecord::default()
    };
    let b = NewRecord {
        actor: "a".to_owned(),
        action: "bc".to_owned(),
        ..NewRecord::default()
    };
    let ha = AuditRecord::seal(1, [0; 32], a).expect("seal").hash;
    let hb = AuditRecord::seal(1, [0; 32], b).expect("seal").hash;
    assert_ne!(ha, hb);
}

#[test]
fn decode_rejects_truncated_trailing_and_bad_bytes() {
    let stored = AuditRecord::seal(1, [0; 32], rec(3))
        .expect("seal")
        .encode_stored();
    for bad in [
        stored[..stored.len() - 1].to_vec(),
        [stored.as_slice(), b"x"].concat(),
        Vec::new(),
    ] {
        let err = AuditRecord::decode_stored(&bad).expect_err("rejected");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    }
    let mut wrong_version = stored.clone();
    wrong_version[32] = 9;
    assert!(AuditRecord::decode_stored(&wrong_version).is_err());
    // A forged huge loss count must not allocate: it is checked against the bytes left.
    let r = AuditRecord::seal(1, [0; 32], NewRecord::default()).expect("seal");
    let mut forged = r.encode_stored();
    let count_at = 32 + 1 + 8 + 8 + 4 + 4 + 1 + 4 + 4;
    forged[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(AuditRecord::decode_stored(&forged).is_err());
}

#[test]
fn refuses_oversized_fields_and_appends_nothing() {
    for log in backends() {
        fill(&*log, 2);
        let mut big = rec(3);
        big.purpose = "x".repeat(MAX_FIELD_BYTES + 1);
        let err = log.append(big).expect_err("too large");
        assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
        let mut many = rec(3);
        many.loss = vec!["a".to_owned(); MAX_LOSS_ENTRIES + 1];
        assert!(log.append(many).is_err());
        let next = log.append(rec(3)).expect("append");
        assert_eq!(next.seq, 3, "{}", log.name());
        assert_intact(&*log);
    }
}

// ---------------------------------------------------------------------------------------
// The chain.

#[test]
fn appends_build_a_chain_from_zero() {
    for log in backends() {
        let recs = fill(&*log, 5);
        assert_eq!(recs[0].prev_hash, [0; 32]);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.seq, i as u64 + 1);
            assert!(r.hash_is_valid());
            if i > 0 {
                assert_eq!(r.prev_hash, recs[i - 1].hash);
            }
        }
        let report = assert_intact(&*log);
        assert_eq!(report.records, 5);
        assert_eq!(report.head, Some(ChainMark::of(&recs[4])));
        assert_eq!(report.checkpoint, ChainMark::GENESIS);
    }
}

#[test]
fn a_probe_commits_beside_the_chain_and_changes_no_record() {
    let r = Redb::new();
    let recs = fill(&r, 3);
    r.log.probe().expect("probe");
    let report = assert_intact(&r);
    assert_eq!(report.records, 3);
    assert_eq!(report.head, Some(ChainMark::of(&recs[2])));
    assert_eq!(r.log.append(rec(10)).expect("append").seq, 4);
}

#[test]
fn an_empty_log_verifies() {
    for log in backends() {
        let r = assert_intact(&*log);
        assert_eq!((r.records, r.head), (0, None));
    }
}

#[test]
fn detects_a_changed_record() {
    for log in backends() {
        fill(&*log, 6);
        let mut r = AuditRecord::decode_stored(&log.raw_get(3).expect("seq 3")).expect("decode");
        r.actor = "A9999999999".to_owned();
        log.raw_put(3, &r.encode_stored());
        let p = problems(&*log);
        assert_problem(&p, "seq 3: hash mismatch", log.name());
        assert_eq!(p.len(), 1, "{}: {p:#?}", log.name());
    }
}

#[test]
fn detects_a_changed_record_whose_hash_was_recomputed() {
    for log in backends() {
        fill(&*log, 6);
        let mut r = AuditRecord::decode_stored(&log.raw_get(3).expect("seq 3")).expect("decode");
        r.result = "1006".to_owned();
        r.hash = r.compute_hash();
        log.raw_put(3, &r.encode_stored());
        let p = problems(&*log);
        assert_problem(&p, "seq 4: chain break", log.name());
    }
}

#[test]
fn detects_a_record_inserted_in_the_middle() {
    for log in backends() {
        let recs = fill(&*log, 6);
        // Shift 4..=6 up by one and forge a well-chained record at 4.
        for k in (4..=6).rev() {
            let bytes = log.raw_get(k).expect("record");
            log.raw_put(k + 1, &bytes);
        }
        let forged = AuditRecord::seal(4, recs[2].hash, rec(40)).expect("seal");
        log.raw_put(4, &forged.encode_stored());
        let p = problems(&*log);
        assert_problem(&p, "seq 5: the record inside says seq 4", log.name());
        assert_problem(&p, "seq 5: chain break", log.name());
        assert_problem(&p, "seq 7: beyond the head marker", log.name());
    }
}

#[test]
fn detects_a_record_appended_outside_the_log() {
    for log in backends() {
        let recs = fill(&*log, 4);
        let forged = AuditRecord::seal(5, recs[3].hash, rec(5)).expect("seal");
        log.raw_put(5, &forged.encode_stored());
        let p = problems(&*log);
        assert_problem(&p, "seq 5: beyond the head marker (seq 4)", log.name());
    }
}

#[test]
fn detects_a_record_deleted_in_the_middle() {
    for log in backends() {
        fill(&*log, 6);
        log.raw_remove(3);
        let p = problems(&*log);
        assert_problem(&p, "seq 3: missing (deleted)", log.name());
        assert_problem(&p, "seq 4: chain break", log.name());
    }
}

#[test]
fn detects_a_run_of_deleted_records() {
    for log in backends() {
        fill(&*log, 8);
        for k in 3..=5 {
            log.raw_remove(k);
        }
        assert_problem(&problems(&*log), "seq 3..=5: missing", log.name());
    }
}

#[test]
fn detects_a_truncated_tail() {
    for log in backends() {
        fill(&*log, 6);
        log.raw_remove(6);
        log.raw_remove(5);
        let p = problems(&*log);
        assert_problem(&p, "seq 5..=6: missing at the tail", log.name());
    }
}

#[test]
fn detects_a_replaced_last_record() {
    for log in backends() {
        fill(&*log, 3);
        let mut r = AuditRecord::decode_stored(&log.raw_get(3).expect("seq 3")).expect("decode");
        r.purpose = "other".to_owned();
        r.hash = r.compute_hash();
        log.raw_put(3, &r.encode_stored());
        let p = problems(&*log);
        assert_problem(&p, "seq 3: hash differs from the head marker", log.name());
    }
}

#[test]
fn detects_a_head_marker_moved_with_the_truncation() {
    // Truncating and rewinding the head is caught only by an anchored head hash; but a
    // head that points at a record with another hash is caught here.
    for log in backends() {
        let recs = fill(&*log, 4);
        log.raw_remove(4);
        log.raw_set_head(ChainMark {
            seq: 3,
            hash: recs[1].hash,
        });
        assert_problem(&problems(&*log), "seq 3: hash differs", log.name());
    }
}

#[test]
fn an_unreadable_chain_marker_is_a_finding_not_an_error() {
    let log = Redb::new();
    fill(&log, 3);
    for key in [HEAD_KEY, CHECKPOINT_KEY] {
        let txn = log.store.db().begin_write().expect("write");
        txn.open_table(AUDIT_META)
            .expect("table")
            .insert(key, b"short".as_slice())
            .expect("insert");
        txn.commit().expect("commit");
        let report = log.verify().expect("a report, not an error");
        assert!(!report.ok, "{report:?}");
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains("marker is unreadable")),
            "{report:?}"
        );
    }
}

#[test]
fn detects_an_unreadable_record() {
    for log in backends() {
        fill(&*log, 4);
        log.raw_put(2, b"garbage");
        let p = problems(&*log);
        assert_problem(&p, "seq 2: unreadable", log.name());
    }
}
