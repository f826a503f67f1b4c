//! Audit records and their canonical encoding.
//!
//! # Canonical bytes
//!
//! The bytes a record's hash covers, in this order (integers big-endian; `str` is a `u32`
//! byte length followed by that many bytes of UTF-8):
//!
//! | field        | encoding                                              |
//! |--------------|-------------------------------------------------------|
//! | version      | `u8`, [`RECORD_VERSION`] (1)                          |
//! | `seq`        | `u64`                                                 |
//! | `time_ms`    | `u64`                                                 |
//! | `actor`      | `str`                                                 |
//! | `action`     | `str`                                                 |
//! | `subject`    | `u8` 0 (none), or `u8` 1 followed by the 32 bytes     |
//! | `purpose`    | `str`                                                 |
//! | `result`     | `str`                                                 |
//! | `loss`       | `u32` count, then each entry as `str`                 |
//! | `request_id` | `str`                                                 |
//!
//! Every field has a fixed size or a length prefix, so distinct records have distinct
//! bytes. Then `hash = SM3(prev_hash ‖ canonical bytes)`.
//!
//! # Stored form
//!
//! A record is stored as `prev_hash (32) ‖ canonical bytes ‖ hash (32)`: the hash covers
//! everything before it, and decoding rejects trailing bytes.

use crate::crypto::{SM3_LEN, sm3};
use crate::store::StoreError;

use super::Pseudonym;

/// Version byte that opens the canonical bytes.
pub const RECORD_VERSION: u8 = 1;

/// Longest string field of a record, in bytes. Longer values are refused, not truncated:
/// an audit record is exact or absent.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;

/// Most entries a record's loss report may hold.
pub const MAX_LOSS_ENTRIES: usize = 4096;

/// What a caller appends: everything but the sequence number and the chain hashes, which
/// the log assigns.
///
/// Personal fields never go here: the subject is a [`Pseudonym`], the rest are ids, codes
/// and field paths.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewRecord {
    /// When the access happened, Unix milliseconds (the caller's clock).
    pub time_ms: u64,
    /// Who: the caller's `appId`.
    pub actor: String,
    /// What: the national service (`verifyCode`) or event (`statusChange`).
    pub action: String,
    /// Whose data, if a person's.
    pub subject: Option<Pseudonym>,
    /// Why: the purpose the caller declared or its scope implies.
    pub purpose: String,
    /// The return code given (`0`, `2001`, …).
    pub result: String,
    /// The loss report of the translation: field paths that were unmapped, defaulted or
    /// truncated.
    pub loss: Vec<String>,
    /// The request's id (`requestId`, or the gateway's own id when the caller gave none).
    pub request_id: String,
}

/// An appended record: a [`NewRecord`] with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// See [`NewRecord::time_ms`].
    pub time_ms: u64,
    /// See [`NewRecord::actor`].
    pub actor: String,
    /// See [`NewRecord::action`].
    pub action: String,
    /// See [`NewRecord::subject`].
    pub subject: Option<Pseudonym>,
    /// See [`NewRecord::purpose`].
    pub purpose: String,
    /// See [`NewRecord::result`].
    pub result: String,
    /// See [`NewRecord::loss`].
    pub loss: Vec<String>,
    /// See [`NewRecord::request_id`].
    pub request_id: String,
    /// Hash of the previous record; 32 zero bytes for the first record ever.
    pub prev_hash: [u8; SM3_LEN],
    /// `SM3(prev_hash ‖ canonical bytes)`.
    pub hash: [u8; SM3_LEN],
}

impl NewRecord {
    /// Checks the limits that [`AuditRecord::seal`] enforces.
    ///
    /// # Errors
    /// [`StoreError::TooLarge`] naming the field.
    pub fn check(&self) -> Result<(), StoreError> {
        let fields = [
            ("audit actor", &self.actor),
            ("audit action", &self.action),
            ("audit purpose", &self.purpose),
            ("audit result", &self.result),
            ("audit request id", &self.request_id),
        ];
        for (what, value) in fields {
            if value.len() > MAX_FIELD_BYTES {
                return Err(StoreError::TooLarge { what });
            }
        }
        if self.loss.len() > MAX_LOSS_ENTRIES {
            return Err(StoreError::TooLarge {
                what: "audit loss report",
            });
        }
        if self.loss.iter().any(|l| l.len() > MAX_FIELD_BYTES) {
            return Err(StoreError::TooLarge {
                what: "audit loss report entry",
            });
        }
        Ok(())
    }
}

impl AuditRecord {
    /// Places `rec` in the chain at `seq` after a record whose hash is `prev_hash`, and
    /// computes its hash.
    ///
    /// # Errors
    /// [`StoreError::TooLarge`] when a field is over its limit ([`NewRecord::check`]).
    pub fn seal(seq: u64, prev_hash: [u8; SM3_LEN], rec: NewRecord) -> Result<Self, StoreError> {
        rec.check()?;
        let mut out = Self {
            seq,
            time_ms: rec.time_ms,
            actor: rec.actor,
            action: rec.action,
            subject: rec.subject,
            purpose: rec.purpose,
            result: rec.result,
            loss: rec.loss,
            request_id: rec.request_id,
            prev_hash,
            hash: [0; SM3_LEN],
        };
        out.hash = out.compute_hash();
        Ok(out)
    }

    /// The canonical bytes (see the module documentation): the record without `prev_hash`
    /// and `hash`.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.write_canonical(&mut out);
        out
    }

    fn write_canonical(&self, out: &mut Vec<u8>) {
        out.push(RECORD_VERSION);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        put_str(out, &self.actor);
        put_str(out, &self.action);
        match &self.subject {
            None => out.push(0),
            Some(p) => {
                out.push(1);
                out.extend_from_slice(&p.0);
            }
        }
        put_str(out, &self.purpose);
        put_str(out, &self.result);
        put_len(out, self.loss.len());
        for l in &self.loss {
            put_str(out, l);
        }
        put_str(out, &self.request_id);
    }

    /// `SM3(prev_hash ‖ canonical bytes)`: what `hash` should be.
    pub fn compute_hash(&self) -> [u8; SM3_LEN] {
        let mut input = Vec::with_capacity(SM3_LEN + 128);
        input.extend_from_slice(&self.prev_hash);
        self.write_canonical(&mut input);
        sm3(&input)
    }

    /// Whether `hash` matches the record's content and `prev_hash`.
    pub fn hash_is_valid(&self) -> bool {
        self.compute_hash() == self.hash
    }

    /// The stored form: `prev_hash ‖ canonical bytes ‖ hash`.
    pub fn encode_stored(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 * SM3_LEN + 128);
        out.extend_from_slice(&self.prev_hash);
        self.write_canonical(&mut out);
        out.extend_from_slice(&self.hash);
        out
    }

    /// Decodes the stored form. The hash is read, not checked: see
    /// [`AuditRecord::hash_is_valid`].
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the bytes are truncated, have trailing bytes, an unknown
    /// version or subject tag, or a string that is not UTF-8.
    pub fn decode_stored(bytes: &[u8]) -> Result<Self, StoreError> {
        let mut r = Reader { rest: bytes };
        let prev_hash = r.array()?;
        let version = r.u8()?;
        if version != RECORD_VERSION {
            return Err(corrupt(format!("unknown version {version}")));
        }
        let seq = r.u64()?;
        let time_ms = r.u64()?;
        let actor = r.str()?;
        let action = r.str()?;
        let subject = match r.u8()? {
            0 => None,
            1 => Some(Pseudonym(r.array()?)),
            t => return Err(corrupt(format!("unknown subject tag {t}"))),
        };
        let purpose = r.str()?;
        let result = r.str()?;
        let n = r.u32()?;
        // Each entry takes at least its 4-byte length, so a count larger than that bound
        // is corrupt; checking first keeps a forged count from reserving memory.
        if usize::try_from(n).map_or(true, |n| n > r.rest.len() / 4) {
            return Err(corrupt(format!("loss count {n} exceeds the record")));
        }
        let mut loss = Vec::new();
        for _ in 0..n {
            loss.push(r.str()?);
        }
        let request_id = r.str()?;
        let hash = r.array()?;
        if !r.rest.is_empty() {
            return Err(corrupt(format!("{} trailing bytes", r.rest.len())));
        }
        Ok(Self {
            seq,
            time_ms,
            actor,
            action,
            subject,
            purpose,
            result,
            loss,
            request_id,
            prev_hash,
            hash,
        })
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // `NewRecord::check` bounds every length far below u32::MAX. A record assembled by hand
    // past those limits saturates here, and then fails to decode; it can never collide
    // with a record the log wrote.
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn corrupt(reason: String) -> StoreError {
    StoreError::Corrupt {
        what: "audit record",
        reason,
    }
}

/// A cursor over stored bytes.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.rest.len() < n {
            return Err(corrupt("truncated".to_owned()));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn str(&mut self) -> Result<String, StoreError> {
        let len = usize::try_from(self.u32()?).map_err(|_| corrupt("length".to_owned()))?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("a field is not UTF-8".to_owned()))
    }
}

/// JSON form for receipts and tools: hashes and the subject as lowercase hex.
impl serde::Serialize for AuditRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("AuditRecord", 11)?;
        st.serialize_field("seq", &self.seq)?;
        st.serialize_field("time_ms", &self.time_ms)?;
        st.serialize_field("actor", &self.actor)?;
        st.serialize_field("action", &self.action)?;
        st.serialize_field("subject", &self.subject.map(|p| p.to_hex()))?;
        st.serialize_field("purpose", &self.purpose)?;
        st.serialize_field("result", &self.result)?;
        st.serialize_field("loss", &self.loss)?;
        st.serialize_field("request_id", &self.request_id)?;
        st.serialize_field("prev_hash", &crate::crypto::to_hex(&self.prev_hash))?;
        st.serialize_field("hash", &crate::crypto::to_hex(&self.hash))?;
        st.end()
    }
}
