//! The append-only log: record framing, segment files, appends with group
//! commit, and recovery.

pub mod commit;
pub mod manifest;
pub mod record;
pub mod recovery;
pub mod scan;
pub mod segment;
pub mod writer;

#[cfg(test)]
mod format_doc;
