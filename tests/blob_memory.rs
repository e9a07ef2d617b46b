//! A blob never sits whole in memory: putting and reading back a 200 MiB
//! blob raises the process's peak resident memory by far less than the
//! blob's size. (Its own test binary, so no other test shares the peak.)

use std::io::Read;

use logstore::{BlobPut, Durability, LogStore, Options, Store};

const SIZE: u64 = 200 * 1024 * 1024;

/// Yields `left` pseudo-random bytes without holding them.
struct Generated {
    left: u64,
    state: u64,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left as usize);
        for byte in &mut buf[..n] {
            self.state = self
                .state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            *byte = (self.state >> 56) as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_large_blob_streams_through_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options {
        durability: Durability::Flush,
        max_blob_bytes: SIZE,
        ..Options::default()
    };
    let store = LogStore::open(tmp.path().join("store"), opts).unwrap();
    let before = peak_rss_kib();
    let mut source = Generated {
        left: SIZE,
        state: 7,
    };
    let meta = store.blobs().put(&mut source, BlobPut::default()).unwrap();
    assert_eq!(meta.size, SIZE);

    let (_, mut reader) = store.blobs().get(&meta.id).unwrap().unwrap();
    let mut expected = Generated {
        left: SIZE,
        state: 7,
    };
    let (mut got, mut want) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut got).unwrap();
        if n == 0 {
            break;
        }
        expected.read_exact(&mut want[..n]).unwrap();
        assert_eq!(got[..n], want[..n], "bytes at {total}");
        total += n as u64;
    }
    assert_eq!(total, SIZE);
    let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    assert!(
        grown_mib < 32,
        "peak memory grew by {grown_mib} MiB for a 200 MiB blob"
    );
}
