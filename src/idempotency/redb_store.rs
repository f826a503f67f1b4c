//! The embedded [`IdempotencyStore`]: redb tables of a [`Store`], bodies SM4-encrypted.
//!
//! Commits are `Durability::Eventual`: written to the operating system at once, flushed to
//! disk with the next durable commit (the audit log makes one per batch). A machine crash
//! can lose the last records, and then a retry after the crash executes again; a process
//! crash loses nothing. That trade buys an `fsync` per request.

use redb::{Durability, ReadableTable};

use crate::crypto::{SM3_LEN, Sm4Key};
use crate::store::tables::{IDEMPOTENCY, IDEMPOTENCY_EXPIRY};
use crate::store::{Store, StoreError};

use super::{IdempotencyStore, PutOutcome, StoredResponse, expires_at};

/// Version byte of the stored value.
const VALUE_VERSION: u8 = 1;

/// Most records removed in one purge transaction.
const PURGE_BATCH: usize = 10_000;

/// The redb [`IdempotencyStore`].
#[derive(Debug)]
pub struct RedbIdempotencyStore {
    store: Store,
    /// Encrypts the stored bodies (the gateway's data-at-rest key).
    body_key: Sm4Key,
}

impl RedbIdempotencyStore {
    /// The idempotency records in `store`, with bodies encrypted under `body_key`. Records
    /// written under another key fail to decrypt ([`StoreError::Crypto`]).
    pub fn new(store: Store, body_key: Sm4Key) -> Self {
        Self { store, body_key }
    }

    fn encode(&self, resp: &StoredResponse, expires: u64) -> Result<Vec<u8>, StoreError> {
        let code_len = u16::try_from(resp.code.len()).map_err(|_| StoreError::TooLarge {
            what: "idempotency return code",
        })?;
        let body = self
            .body_key
            .encrypt_cbc(&resp.body)
            .map_err(|_| StoreError::Crypto {
                op: "encrypt",
                what: "idempotency body",
            })?;
        let mut out = Vec::with_capacity(1 + 8 + SM3_LEN + 2 + resp.code.len() + body.len());
        out.push(VALUE_VERSION);
        out.extend_from_slice(&expires.to_be_bytes());
        out.extend_from_slice(&resp.fingerprint);
        out.extend_from_slice(&code_len.to_be_bytes());
        out.extend_from_slice(resp.code.as_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decodes a stored value into (expires at, answer).
    fn decode(&self, v: &[u8]) -> Result<(u64, StoredResponse), StoreError> {
        let expires = expiry_of(v)?;
        let rest = &v[9..];
        let corrupt = |reason: &str| StoreError::Corrupt {
            what: "idempotency record",
            reason: reason.to_owned(),
        };
        if rest.len() < SM3_LEN + 2 {
            return Err(corrupt("truncated"));
        }
        let (fp, rest) = rest.split_at(SM3_LEN);
        let mut fingerprint = [0u8; SM3_LEN];
        fingerprint.copy_from_slice(fp);
        let code_len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let rest = &rest[2..];
        if rest.len() < code_len {
            return Err(corrupt("truncated"));
        }
        let (code, body) = rest.split_at(code_len);
        let code = String::from_utf8(code.to_vec()).map_err(|_| corrupt("code is not UTF-8"))?;
        let body = self
            .body_key
            .decrypt_cbc(body)
            .map_err(|_| StoreError::Crypto {
                op: "decrypt",
                what: "idempotency body",
            })?;
        Ok((
            expires,
            StoredResponse {
                code,
                body,
                fingerprint,
            },
        ))
    }
}

/// The expiry of a stored value, without decrypting it.
fn expiry_of(v: &[u8]) -> Result<u64, StoreError> {
    match v {
        [VALUE_VERSION, e0, e1, e2, e3, e4, e5, e6, e7, ..] => {
            Ok(u64::from_be_bytes([*e0, *e1, *e2, *e3, *e4, *e5, *e6, *e7]))
        }
        _ => Err(StoreError::Corrupt {
            what: "idempotency record",
            reason: "unknown version or truncated".to_owned(),
        }),
    }
}

impl IdempotencyStore for RedbIdempotencyStore {
    fn get(
        &self,
        app_id: &str,
        request_id: &str,
        now_ms: u64,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let txn = self.store.db().begin_read()?;
        let table = txn.open_table(IDEMPOTENCY)?;
        let Some(v) = table.get((app_id, request_id))? else {
            return Ok(None);
        };
        // Check expiry before decrypting: an expired record is absent, even if unreadable.
        if now_ms >= expiry_of(v.value())? {
            return Ok(None);
        }
        self.decode(v.value()).map(|(_, r)| Some(r))
    }

    fn put(
        &self,
        app_id: &str,
        request_id: &str,
        resp: &StoredResponse,
        now_ms: u64,
    ) -> Result<PutOutcome, StoreError> {
        let expires = expires_at(now_ms);
        let value = self.encode(resp, expires)?;
        let mut txn = self.store.db().begin_write()?;
        txn.set_durability(Durability::Eventual);
        {
            let mut table = txn.open_table(IDEMPOTENCY)?;
            let mut expiry = txn.open_table(IDEMPOTENCY_EXPIRY)?;
            let existing = table.get((app_id, request_id))?.map(|v| v.value().to_vec());
            if let Some(bytes) = existing {
                let old = expiry_of(&bytes)?;
                if now_ms < old {
                    // Returning drops the transaction, which aborts it: nothing is written.
                    return Ok(PutOutcome::AlreadyExists(self.decode(&bytes)?.1));
                }
                expiry.remove((old, app_id, request_id))?;
            }
            table.insert((app_id, request_id), value.as_slice())?;
            expiry.insert((expires, app_id, request_id), ())?;
        }
        txn.commit()?;
        Ok(PutOutcome::Stored)
    }

    fn purge_expired(&self, now_ms: u64) -> Result<u64, StoreError> {
        purge_expired(&self.store, now_ms)
    }
}

/// Removes every idempotency record in `store` expired at `now_ms`; returns how many.
///
/// Purging reads expiries only, never bodies, so it needs no body key: retention
/// ([`crate::retention`]) runs it on a [`Store`] alone. Blocks: one commit for every
/// 10 000 records removed.
///
/// # Errors
/// Any store failure, or a record whose expiry does not decode; what was removed before it
/// stays removed.
pub fn purge_expired(store: &Store, now_ms: u64) -> Result<u64, StoreError> {
    let mut purged = 0u64;
    loop {
        let mut txn = store.db().begin_write()?;
        txn.set_durability(Durability::Eventual);
        let mut due: Vec<(u64, String, String)> = Vec::new();
        {
            let mut table = txn.open_table(IDEMPOTENCY)?;
            let mut expiry = txn.open_table(IDEMPOTENCY_EXPIRY)?;
            for entry in expiry.iter()? {
                let (k, _) = entry?;
                let (exp, app, req) = k.value();
                if exp > now_ms || due.len() >= PURGE_BATCH {
                    break;
                }
                due.push((exp, app.to_owned(), req.to_owned()));
            }
            for (exp, app, req) in &due {
                expiry.remove((*exp, app.as_str(), req.as_str()))?;
                // Remove the record only if this expiry entry is its own (a `put`
                // that replaces a record also replaces its entry, so it always is).
                let current = match table.get((app.as_str(), req.as_str()))? {
                    Some(v) => Some(expiry_of(v.value())?),
                    None => None,
                };
                if current == Some(*exp) {
                    table.remove((app.as_str(), req.as_str()))?;
                    purged += 1;
                }
            }
        }
        txn.commit()?;
        if due.len() < PURGE_BATCH {
            return Ok(purged);
        }
    }
}
