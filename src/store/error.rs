//! The one error type of the gateway's state.
//!
//! Every variant is the gateway's own fault (its disk, its file, its configuration): the
//! client gets [`ReturnCode::SystemError`] and none of the detail. Messages name tables and
//! paths, never stored values, so they can be logged.

use std::path::PathBuf;

use crate::standard::ReturnCode;

/// A failure of the embedded state or of a store behind one of its traits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {}: {reason}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },

    /// [`crate::store::Store::open_existing`] found no database file.
    #[error("no hutong database at {} (is --data-dir right?)", path.display())]
    Missing {
        /// Where the file was expected.
        path: PathBuf,
    },

    /// redb could not open the database file: another process (a running gateway) holds
    /// it, it is corrupted beyond repair, or it was written by a newer format.
    #[error("cannot open the database {}: {reason}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// redb's reason.
        reason: String,
    },

    /// A transaction, table operation or commit failed: an I/O error, a full disk, or
    /// corruption that redb detected. A retry may help only for transient I/O errors.
    #[error("database error: {0}")]
    Db(String),

    /// A stored value does not decode: the file was altered, or written by an incompatible
    /// version.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// Which kind of value ("audit record", "idempotency record", "chain marker").
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A value to store is over its limit (an audit field over
    /// [`crate::audit::MAX_FIELD_BYTES`], too many loss-report entries, or a sequence
    /// number that would overflow).
    #[error("{what} is too large to store")]
    TooLarge {
        /// Which value.
        what: &'static str,
    },

    /// Encrypting or decrypting a stored value failed: the OS random number generator
    /// failed, or the data key is not the one the value was written with.
    #[error("cannot {op} a stored {what} (wrong data key, or the value was altered)")]
    Crypto {
        /// "encrypt" or "decrypt".
        op: &'static str,
        /// Which kind of value.
        what: &'static str,
    },
}

impl StoreError {
    /// The return code a client sees: always [`ReturnCode::SystemError`], since the state
    /// is the gateway's own.
    pub const fn return_code(&self) -> ReturnCode {
        ReturnCode::SystemError
    }
}

/// redb's errors, each converted through `redb::Error` so they share one message format.
macro_rules! from_redb {
    ($($t:ty),+) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(redb::Error::from(e).to_string())
            }
        }
    )+};
}

from_redb!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
