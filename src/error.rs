//! The one error type of the crate.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in a store call.
///
/// `Display` writes a sentence a user can act on. The enum is
/// `#[non_exhaustive]`: match the variants you handle and keep a `_` arm.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused an I/O call. `context` says what the
    /// store was doing.
    Io {
        /// What the store was doing when the call failed.
        context: String,
        /// The error the operating system returned.
        source: io::Error,
    },
    /// A file of the store holds bytes that do not verify. Nothing was
    /// guessed: the store refuses to read past damage it cannot explain.
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset in that file where the damage starts.
        offset: u64,
        /// What did not verify.
        reason: String,
    },
    /// Another handle (in this process or another one) owns the store
    /// directory.
    Locked {
        /// The store directory.
        path: PathBuf,
    },
    /// The directory is neither a logstore directory (it has no manifest
    /// and no segment) nor empty, so the store refuses to create one there
    /// or read it as one. Nothing was written.
    NotAStore {
        /// The directory.
        path: PathBuf,
    },
    /// The handle was opened read-only ([`LogStore::open_read_only`](crate::LogStore::open_read_only)):
    /// it reads and follows the log but never writes. Nothing was written.
    ReadOnly,
    /// An earlier write or sync failed, so the store no longer knows what is
    /// durable. It refuses writes until it is reopened.
    Poisoned,
    /// The call's arguments break a rule of the contract; nothing was written.
    InvalidInput(String),
    /// The store was closed; open it again to use it.
    Closed,
    /// A write made through [`LogStore::without_waiting`](crate::LogStore::without_waiting)
    /// would have had to wait, for the reason given; it wrote nothing. Make
    /// it again through the store itself.
    WouldBlock(Blocked),
    /// A bug or an impossible state: an internal limit was reached or an
    /// invariant the code relies on did not hold. Nothing the caller passed
    /// explains it; please report it.
    Internal(String),
    /// The SQLite driver's database reported an error.
    #[cfg(feature = "sqlite")]
    Sqlite(rusqlite::Error),
    /// The PostgreSQL server refused a statement. A connection that broke
    /// or could not be made is `Io` instead (kind `ConnectionAborted` or
    /// `NotConnected`): retry those once the server is back. `Display`
    /// gives the SQLSTATE and the server's message (and its detail and
    /// hint); `source` is `None`, since the text holds it all.
    #[cfg(feature = "postgres")]
    Postgres(postgres::Error),
}

/// What a write that may not block would have waited for: the reason a
/// [`Error::WouldBlock`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Blocked {
    /// The store syncs every write (`Durability::Sync`).
    SyncEveryWrite,
    /// Another thread holds the writer lock (writing, rolling the log or
    /// syncing it).
    WriterBusy,
    /// The record does not fit the active segment: the log would roll to a
    /// new one, which takes two syncs.
    Roll,
    /// The record ends past the zeros written ahead of the tail: the next
    /// window of them would be written first.
    Reserve,
    /// The write stores a blob, whose file is written and synced first.
    BlobFile,
    /// The delete leaves a blob file with no reference: its record is
    /// synced before the file is removed.
    BlobRemoval,
    /// Another thread holds the in-memory state's lock (a long query
    /// reading it, or a compaction switching files), so the write could
    /// not apply its record without waiting.
    StateBusy,
    /// Applying the record would copy one of its collection's large
    /// tables (one that grows past its capacity, or the ids, compacted
    /// once half of them are removed): work in proportion to the
    /// collection's size.
    LargeCopy,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Blocked::SyncEveryWrite => "the store syncs every write",
            Blocked::WriterBusy => "another thread holds the writer lock",
            Blocked::Roll => "the record would roll the log to a new segment",
            Blocked::Reserve => "the record would first write zeros ahead of the log's tail",
            Blocked::BlobFile => "a blob's file is written and synced before its record",
            Blocked::BlobRemoval => {
                "the delete's record is synced before the blob's file is removed"
            }
            Blocked::StateBusy => "another thread holds the in-memory state",
            Blocked::LargeCopy => "applying the record would copy a large table of its collection",
        })
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }

    pub(crate) fn corruption(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl fmt::Display,
    ) -> Self {
        Error::Corruption {
            file: file.into(),
            offset,
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "I/O error while {context}: {source}"),
            Error::Corruption {
                file,
                offset,
                reason,
            } => write!(
                f,
                "corruption in {} at byte offset {offset}: {reason}; run `logstore verify` and restore or repair the store",
                file.display()
            ),
            Error::Locked { path } => write!(
                f,
                "the store at {} is locked by another open handle (this or another process); close it first",
                path.display()
            ),
            Error::NotAStore { path } => write!(
                f,
                "{} is not a logstore directory (it has no MANIFEST and no segment file; a new store is made only in a missing or empty directory)",
                path.display()
            ),
            Error::ReadOnly => write!(
                f,
                "the store was opened read-only; open it with `LogStore::open` to write"
            ),
            Error::Poisoned => write!(
                f,
                "an earlier write or sync failed, so the store refuses writes until it is reopened"
            ),
            Error::InvalidInput(message) => write!(f, "invalid input: {message}"),
            Error::Closed => write!(f, "the store is closed; open it again to use it"),
            Error::WouldBlock(why) => write!(
                f,
                "the write would have waited ({why}), so it was not made; make it again without `without_waiting`"
            ),
            Error::Internal(message) => write!(
                f,
                "internal error (a bug or an impossible state; please report it): {message}"
            ),
            #[cfg(feature = "sqlite")]
            Error::Sqlite(e) => write!(f, "SQLite error: {e}"),
            #[cfg(feature = "postgres")]
            Error::Postgres(e) => crate::pg::fmt_error(e, f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            #[cfg(feature = "sqlite")]
            Error::Sqlite(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Sqlite(e)
    }
}
