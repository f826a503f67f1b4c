//! The gateway's embedded state (DESIGN.md §7): one redb file, `hutong.redb`, in the data
//! directory, holding the audit chain, the idempotency records and the correction tickets.
//!
//! [`Store`] owns the database and creates every table on open, so readers never meet a
//! missing table. The modules that keep state ([`crate::audit`], [`crate::idempotency`],
//! [`crate::corrections`]) define their behaviour behind traits ([`crate::audit::AuditLog`],
//! [`crate::idempotency::IdempotencyStore`], [`crate::corrections::CorrectionStore`]) with a
//! redb implementation over a [`Store`]; a PostgreSQL backend for the cluster deployment
//! implements the same traits. [`crate::retention`] purges all three.
//!
//! # Blocking
//!
//! redb is synchronous and a durable commit waits for `fsync`. Every method of the store and
//! of the implementations over it blocks the calling thread: async code must not call them
//! on a runtime worker thread. Use [`blocking`] (a `tokio::task::spawn_blocking` wrapper),
//! or `spawn_blocking` directly.
//!
//! # Schema
//!
//! The table definitions live in [`tables`]: they are the on-disk format, and the
//! integration tests open the file with redb directly to tamper with it.

mod error;

pub use error::StoreError;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::Database;

/// The on-disk schema: every table of `hutong.redb`. Changing a key or value type here is a
/// format change.
pub mod tables {
    use redb::TableDefinition;

    /// Audit records by sequence number. The value is the stored form of
    /// [`crate::audit::AuditRecord`] (`prev_hash ‖ canonical bytes ‖ hash`).
    pub const AUDIT_RECORDS: TableDefinition<'static, u64, &[u8]> =
        TableDefinition::new("audit_records");

    /// The audit chain's markers: [`crate::audit::HEAD_KEY`] and
    /// [`crate::audit::CHECKPOINT_KEY`], each a [`crate::audit::ChainMark`] as
    /// `seq (u64 big-endian) ‖ hash (32 bytes)`; and [`crate::audit::PROBE_KEY`], the Unix
    /// ms (u64 big-endian) of the writer's last probe, no part of the chain.
    pub const AUDIT_META: TableDefinition<'static, &str, &[u8]> =
        TableDefinition::new("audit_meta");

    /// Index for holder receipts: `(pseudonym, seq)` of every record that has a subject.
    pub const AUDIT_BY_SUBJECT: TableDefinition<'static, ([u8; 32], u64), ()> =
        TableDefinition::new("audit_by_subject");

    /// Idempotency records by `(appId, requestId)`; the value is described in
    /// [`crate::idempotency`].
    pub const IDEMPOTENCY: TableDefinition<'static, (&str, &str), &[u8]> =
        TableDefinition::new("idempotency");

    /// Expiry index of the idempotency records: `(expires_at_ms, appId, requestId)`.
    pub const IDEMPOTENCY_EXPIRY: TableDefinition<'static, (u64, &str, &str), ()> =
        TableDefinition::new("idempotency_expiry");

    /// Link registry entries by pseudonym; the value is the SM4-encrypted JSON of a
    /// [`crate::link::LinkEntry`].
    pub const LINKS: TableDefinition<'static, [u8; 32], &[u8]> = TableDefinition::new("links");

    /// Index of the link registry: `(region, keyed SM3 of the local code id)` → pseudonym.
    pub const LINK_CODES: TableDefinition<'static, (&str, &str), [u8; 32]> =
        TableDefinition::new("link_codes");

    /// Index of the link registry: national code id → pseudonym.
    pub const LINK_NATIONAL: TableDefinition<'static, &str, [u8; 32]> =
        TableDefinition::new("link_national");

    /// Status-event callbacks to regions, by delivery id; the value is the SM4-encrypted
    /// JSON of a [`crate::link::outbox::Delivery`].
    pub const CALLBACKS: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("callbacks");

    /// The pending callbacks by when they are due: `(next attempt, Unix ms; delivery id)`.
    /// Delivered and abandoned ones are kept in [`CALLBACKS`] for the audit period and are
    /// not here, so the delivery task reads only what it may send. Derived from
    /// [`CALLBACKS`], written in the same transactions, and rebuilt when the outbox opens a
    /// store without it (see [`CALLBACKS_META`]).
    pub const CALLBACKS_DUE: TableDefinition<'static, (u64, u64), ()> =
        TableDefinition::new("callbacks_due");

    /// The finished (delivered or abandoned) callbacks by `(created, Unix ms; delivery
    /// id)`, for the retention purge. Derived from [`CALLBACKS`], like [`CALLBACKS_DUE`].
    pub const CALLBACKS_FINISHED: TableDefinition<'static, (u64, u64), ()> =
        TableDefinition::new("callbacks_finished");

    /// The outbox's counters: `next_id`, the id the next delivery takes (ids are never
    /// reused, even after the newest records are purged), and `index_version`, stamped by
    /// the rebuild of [`CALLBACKS_DUE`] and [`CALLBACKS_FINISHED`] that last read every
    /// record (absent: a store from a build that did not keep them; see
    /// [`crate::link::outbox`] for the other checks an open makes).
    pub const CALLBACKS_META: TableDefinition<'static, &str, u64> =
        TableDefinition::new("callbacks_meta");

    /// Venue codes (场所码) the gateway issued, by id; the value is the JSON of a
    /// [`crate::link::venue::Venue`] (a place, not a person).
    pub const VENUES: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("venues");

    /// Correction tickets by ticket id; the value is the JSON stored form described in
    /// [`crate::corrections`].
    pub const CORRECTIONS: TableDefinition<'static, &str, &[u8]> =
        TableDefinition::new("corrections");

    /// Closed (DONE or REJECTED) correction tickets by `(updated_ms, ticket id)`, for
    /// purging them after their retention period.
    pub const CORRECTIONS_CLOSED: TableDefinition<'static, (u64, &str), ()> =
        TableDefinition::new("corrections_closed");
}

/// The embedded database: a redb file in the data directory, shared by cloning (the
/// database sits behind an `Arc`).
///
/// redb locks the file: one process at a time. `hutong audit verify` on a data directory
/// that a running gateway holds fails with [`StoreError::Open`].
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Name of the database file inside the data directory.
    pub const FILE_NAME: &'static str = "hutong.redb";

    /// Opens the database in `dir`, creating the directory, the file and the tables when
    /// they are missing.
    ///
    /// # Errors
    /// [`StoreError::Dir`] when the directory cannot be created; [`StoreError::Open`] when
    /// redb cannot open the file (held by another process, corrupted beyond repair, or of a
    /// newer format); [`StoreError::Db`] when the tables cannot be created.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        create_private_dir(dir)?;
        Self::open_file(dir.join(Self::FILE_NAME), Self::DEFAULT_CACHE_BYTES)
    }

    /// Opens the database in `dir` only if it exists: for the commands that inspect a data
    /// directory (`hutong audit …`), where creating an empty database would hide a mistyped
    /// path.
    ///
    /// # Errors
    /// [`StoreError::Missing`] when `dir` holds no database; otherwise as [`Store::open`].
    pub fn open_existing(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(Self::FILE_NAME);
        if !path.is_file() {
            return Err(StoreError::Missing { path });
        }
        Self::open_file(path, Self::DEFAULT_CACHE_BYTES)
    }

    /// Memory redb may use to cache the file's pages, unless told otherwise
    /// ([`Store::open_with_cache`]; the gateway's `gateway.store_cache_mib`): 64 MiB.
    /// redb's own default, 1 GiB, let the gateway's memory grow with its store: one pass
    /// over a million links (the retention purge) filled it, 1.2 GB more RSS. 64 MiB holds
    /// the B-trees' branch pages of a store of several GB and the hot leaves (the audit
    /// chain's tail, recent links); the rest is read through the operating system's page
    /// cache.
    pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

    /// [`Store::open`] with a page cache of `cache_bytes`.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with_cache(dir: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        create_private_dir(dir)?;
        Self::open_file(dir.join(Self::FILE_NAME), cache_bytes)
    }

    fn open_file(path: PathBuf, cache_bytes: usize) -> Result<Self, StoreError> {
        let new = !path.exists();
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(&path)
            .map_err(|e| StoreError::Open {
                path: path.clone(),
                reason: match e {
                    redb::DatabaseError::DatabaseAlreadyOpen => {
                        "it is held open, most likely by a \
                        running `hutong serve` on this data directory: stop it first, or \
                        read a copy"
                            .to_owned()
                    }
                    e => e.to_string(),
                },
            })?;
        // A new database file is its owner's alone, like its directory.
        #[cfg(unix)]
        if new {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(
                |e| StoreError::Open {
                    path: path.clone(),
                    reason: format!("cannot restrict it to its owner: {e}"),
                },
            )?;
        }
        #[cfg(not(unix))]
        let _ = new;
        let txn = db.begin_write()?;
        txn.open_table(tables::AUDIT_RECORDS)?;
        txn.open_table(tables::AUDIT_META)?;
        txn.open_table(tables::AUDIT_BY_SUBJECT)?;
        txn.open_table(tables::IDEMPOTENCY)?;
        txn.open_table(tables::IDEMPOTENCY_EXPIRY)?;
        txn.open_table(tables::LINKS)?;
        txn.open_table(tables::LINK_CODES)?;
        txn.open_table(tables::LINK_NATIONAL)?;
        txn.open_table(tables::CALLBACKS)?;
        txn.open_table(tables::CALLBACKS_DUE)?;
        txn.open_table(tables::CALLBACKS_FINISHED)?;
        txn.open_table(tables::CALLBACKS_META)?;
        txn.open_table(tables::VENUES)?;
        txn.open_table(tables::CORRECTIONS)?;
        txn.open_table(tables::CORRECTIONS_CLOSED)?;
        txn.commit()?;
        Ok(Self {
            inner: Arc::new(Inner { db, path }),
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The redb database, for the implementations in this crate.
    pub(crate) fn db(&self) -> &Database {
        &self.inner.db
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// Runs blocking store work `f` on tokio's blocking thread pool, so that a redb commit never
/// stalls a runtime worker.
///
/// # Errors
/// What `f` returns, or [`StoreError::Db`] if the task panicked or the runtime is shutting
/// down.
///
/// # Panics
/// When called outside a tokio runtime.
pub async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Db(format!("blocking store task failed: {e}")))?
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every critical
/// section in the stores either completes its update or makes none), so poisoning is
/// ignored rather than turned into a panic on every later call.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Creates a data directory that does not exist yet readable by its owner only (0700): it
/// holds the audit chain, the link registry and correction tickets. An existing directory
/// keeps the mode its operator gave it.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| StoreError::Dir {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })
}

/// A stored entry that does not decode, said without serde's message: its messages quote
/// the values they did not expect (`invalid type: string "https://…"`), and the error
/// reaches the log.
pub(crate) fn undecodable(what: &'static str, e: &serde_json::Error) -> StoreError {
    StoreError::Corrupt {
        what,
        reason: format!(
            "does not decode ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ),
    }
}

/// The bytes of the file at `path`, if it is no longer than `max` (checked before any is
/// read, and again as it is read: a file that grows meanwhile stops at the bound).
pub(crate) fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > max {
        return Err(std::io::Error::other(format!(
            "{len} bytes, more than the {max} allowed"
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "more than the {max} bytes allowed (the file grew as it was read)"
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        crate::testutil::fresh_dir(&format!("store-{tag}"))
    }

    #[test]
    fn an_entry_that_does_not_decode_is_said_without_its_values() {
        #[derive(Debug, serde::Deserialize)]
        struct Entry {
            #[allow(dead_code)]
            n: u32,
        }
        let e = serde_json::from_str::<Entry>(r#"{"n":"110101199003071234"}"#).unwrap_err();
        assert!(
            e.to_string().contains("110101199003071234"),
            "serde quotes it: {e}"
        );
        let said = undecodable("link entry", &e).to_string();
        assert!(!said.contains("110101199003071234"), "{said}");
        assert!(said.contains("line 1"), "{said}");
    }

    #[test]
    fn a_file_over_its_bound_is_not_read() {
        let dir = temp_dir("bounded");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_bounded(&p, 5).unwrap(), b"12345");
        let e = read_bounded(&p, 4).unwrap_err();
        assert!(e.to_string().contains("more than the 4"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn open_creates_the_directory_and_reopens() {
        let dir = temp_dir("open").join("nested");
        let store = Store::open(&dir).expect("open");
        assert_eq!(store.path(), dir.join(Store::FILE_NAME));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "a new data directory is its owner's: {mode:o}");
            let file = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(file, 0o600, "a new database file is its owner's: {file:o}");
        }
        drop(store);
        Store::open_existing(&dir).expect("reopen");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn open_existing_refuses_an_empty_directory() {
        let dir = temp_dir("missing");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let err = Store::open_existing(&dir).expect_err("no database");
        assert!(matches!(err, StoreError::Missing { .. }), "{err}");
        assert!(!dir.join(Store::FILE_NAME).exists());
        assert_eq!(err.return_code(), crate::standard::ReturnCode::SystemError);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_second_open_of_the_same_file_fails_cleanly() {
        let dir = temp_dir("locked");
        let _first = Store::open(&dir).expect("open");
        let err = Store::open(&dir).expect_err("locked");
        assert!(matches!(err, StoreError::Open { .. }), "{err}");
        assert!(err.to_string().contains("stop it first"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn blocking_runs_store_work_off_the_runtime() {
        let dir = temp_dir("blocking");
        let store = Store::open(&dir).expect("open");
        let s = store.clone();
        let path = blocking(move || Ok(s.path().to_path_buf()))
            .await
            .expect("runs");
        assert_eq!(path, store.path());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
