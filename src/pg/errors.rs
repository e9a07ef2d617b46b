//! The PostgreSQL driver's errors: a refused statement is
//! `Error::Postgres`, shown with the server's SQLSTATE and message; a
//! connection that broke or could not be made is `Error::Io` (kind
//! `ConnectionAborted` or `NotConnected`) with the reason.

use std::io;

use r2d2_postgres::r2d2;

use crate::Error;

/// Whether `e` says the connection broke or the server could not be
/// reached (as opposed to the server refusing a statement).
pub(super) fn is_connection_error(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. }
        if matches!(source.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::NotConnected))
}

/// The error for a pool that could not hand out a connection in time: the
/// server is down or unreachable, or every connection stayed busy.
pub(super) fn unavailable(e: r2d2::Error) -> Error {
    Error::io(
        "connecting to the PostgreSQL server (no connection could be made within the connect timeout)",
        io::Error::new(io::ErrorKind::NotConnected, e.to_string()),
    )
}

/// SQLSTATEs that mean the connection is gone or the server is going away.
fn connection_state(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// A connection that could not be made: `Io` (kind `NotConnected`) with the
/// reason, unless the server answered and refused for a reason of its own
/// (a wrong password, a missing database), which is `Postgres`.
pub(super) fn connect_error(e: postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) if !connection_state(db.code().code()) => Error::Postgres(e),
        _ => Error::io(
            "connecting to the PostgreSQL server",
            io::Error::new(io::ErrorKind::NotConnected, Described(e)),
        ),
    }
}

/// A PostgreSQL error whose `Display` says everything it holds: the
/// server's SQLSTATE, message, detail and hint, or the chain of causes (the
/// client's own `Display` says only "db error" or "error connecting to
/// server"). It reports no `source`, since its text already holds it.
#[derive(Debug)]
pub(crate) struct Described(pub(crate) postgres::Error);

impl std::fmt::Display for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        describe(&self.0, f)
    }
}

fn describe(e: &postgres::Error, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    if let Some(db) = e.as_db_error() {
        write!(f, "{}: {}", db.code().code(), db.message())?;
        if let Some(detail) = db.detail() {
            write!(f, " (detail: {detail})")?;
        }
        if let Some(hint) = db.hint() {
            write!(f, " (hint: {hint})")?;
        }
        return Ok(());
    }
    write!(f, "{e}")?;
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        write!(f, ": {c}")?;
        cause = c.source();
    }
    Ok(())
}

impl std::error::Error for Described {}

/// `Error::Postgres`'s `Display`: the SQLSTATE and the server's message
/// (`PostgreSQL error 42P01: relation "x" does not exist`), or the
/// client's error with its causes.
pub(crate) fn fmt_error(e: &postgres::Error, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    let sep = if e.as_db_error().is_some() { " " } else { ": " };
    write!(f, "PostgreSQL error{sep}")?;
    describe(e, f)
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        let lost = match e.as_db_error() {
            Some(db) => connection_state(db.code().code()),
            None => {
                e.is_closed()
                    || std::error::Error::source(&e)
                        .is_some_and(<dyn std::error::Error + 'static>::is::<io::Error>)
            }
        };
        if lost {
            Error::io(
                "talking to the PostgreSQL server: the connection was lost, so the call's transaction \
                 was rolled back (unless the loss came during its commit, which leaves the outcome \
                 unknown); the next call reconnects",
                io::Error::new(io::ErrorKind::ConnectionAborted, Described(e)),
            )
        } else {
            Error::Postgres(e)
        }
    }
}
