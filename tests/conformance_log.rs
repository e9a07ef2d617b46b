//! The conformance suite against the log engine, on disk and in memory, and
//! on disk with segments so small that most reads come from sealed (mapped)
//! segments rather than the active one.

mod conformance;

use logstore::{LogStore, Options};

fn on_disk(opts: Options) -> (Box<dyn conformance::Driver>, Option<tempfile::TempDir>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LogStore::open(dir.path().join("store"), opts).expect("open");
    (Box::new(store), Some(dir))
}

fn on_disk_small_segments(
    opts: Options,
) -> (Box<dyn conformance::Driver>, Option<tempfile::TempDir>) {
    on_disk(Options {
        segment_bytes: 16 * 1024,
        ..opts
    })
}

fn in_memory(opts: Options) -> (Box<dyn conformance::Driver>, Option<tempfile::TempDir>) {
    (Box::new(LogStore::in_memory(opts).expect("open")), None)
}

conformance_suite!(log_on_disk, crate::on_disk);
conformance_suite!(log_in_memory, crate::in_memory);
conformance_suite!(log_mapped, crate::on_disk_small_segments);
