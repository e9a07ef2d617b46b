//! logstore against the Rust stores a user would pick instead, on the
//! benchmark workload (chat turns of about 400 B; one collection indexed on
//! conversation and author), at equal durability, in one run:
//!
//! - `native_db`, an embedded document store with secondary keys on redb:
//!   the closest peer, measured on every document operation it offers;
//! - `redb` and `fjall` as key-value floors: put, get by id, and a
//!   one-filter query through an index kept by hand in a second table
//!   (`conversation\0id` to nothing), written in the same transaction.
//!
//! The peers' crates live in this crate only, so they never reach the
//! library or the command-line tool.

pub mod drivers;
mod print;
mod run;

pub use print::{markdown, table};
pub use run::{load, run, Config, Rate, Report, Row, Section};
