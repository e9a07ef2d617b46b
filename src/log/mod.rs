//! The append-only log: record framing, segment files, appends with group
//! commit, reading a record back, and recovery. It knows nothing of the
//! index or the store built on it.

pub mod commit;
pub mod manifest;
pub mod outputs;
pub mod read;
pub mod record;
pub mod recovery;
pub mod scan;
pub mod segment;
pub mod writer;
