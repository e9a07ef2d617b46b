//! The contract's drivers: the log engine, and SQLite behind the `sqlite`
//! feature.

pub mod log;
#[cfg(feature = "sqlite")]
pub mod sqlite;
