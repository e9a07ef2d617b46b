//! Blob gets in a loop, for profiling what a get costs per byte
//! (`perf record -g target/release/examples/blob_profile 1048576`):
//! puts 32 blobs of the size given (bytes, default 1 MiB), reads each once
//! (the log engine's hashed first read of it, timed apart), then reads
//! them in turn to the end through
//! `io::copy` into a sink, as `logstore bench` does, for the seconds given
//! (default 5), and prints the rate and the CPU time a get takes. A second
//! argument `sqlite` runs the same loop on the SQLite driver (with
//! `--features sqlite`); a fourth, `whole`, reads each blob with
//! `read_to_end` into a vector instead (one read of the file when it is
//! not hashed: `strace -c` shows it).

use std::io::{Cursor, Read};
use std::time::{Duration, Instant};

use logstore::{BlobPut, Durability, LogStore, Options, Store};

fn main() -> logstore::Result<()> {
    let mut args = std::env::args().skip(1);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1 << 20);
    let driver = args.next().unwrap_or_else(|| "log".into());
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5.0);
    let whole = args.next().as_deref() == Some("whole");
    let dir = std::env::temp_dir().join(format!("logstore-blob-profile-{}", std::process::id()));
    let opts = Options {
        durability: Durability::Flush,
        auto_compact: false,
        ..Options::default()
    };
    let store: Box<dyn Store> = match driver.as_str() {
        #[cfg(feature = "sqlite")]
        "sqlite" => Box::new(logstore::SqliteStore::open(
            dir.join("store.db"),
            dir.join("blobs"),
            opts,
        )?),
        _ => Box::new(LogStore::open(&dir, opts)?),
    };
    let mut ids = Vec::new();
    for i in 0..32u8 {
        let mut bytes: Vec<u8> = (0..size).map(|j| (j * 31 % 251) as u8).collect();
        bytes[0] = i;
        let meta = store
            .blobs()
            .put(&mut Cursor::new(bytes), BlobPut::default())?;
        ids.push(meta.id);
    }
    // Old enough that the first read's stamp counts (see `RealFs`).
    std::thread::sleep(Duration::from_millis(200));
    let get = |id: &str| -> logstore::Result<()> {
        let (_, mut reader) = store.blobs().get(id)?.expect("the blob exists");
        let read = if whole {
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).map(|_| ())
        } else {
            std::io::copy(&mut reader, &mut std::io::sink()).map(|_| ())
        };
        read.map_err(|source| logstore::Error::Io {
            context: "reading a blob".into(),
            source,
        })
    };
    let (started, cpu) = (Instant::now(), cpu_time());
    for id in &ids {
        get(id)?;
    }
    let first = (cpu_time() - cpu).as_secs_f64() / ids.len() as f64 * 1e6;
    let first_wall = started.elapsed().as_secs_f64() / ids.len() as f64 * 1e6;
    let (started, cpu) = (Instant::now(), cpu_time());
    let mut n = 0usize;
    while started.elapsed().as_secs_f64() < seconds {
        get(&ids[n % ids.len()])?;
        n += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let per_get = (cpu_time() - cpu).as_secs_f64() / n as f64 * 1e6;
    println!("{driver}: {rate:.0} gets/s of {size} bytes, {per_get:.1} us of CPU a get");
    println!("{driver}: each blob's first get {first_wall:.1} us, {first:.1} us of CPU");
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The time this thread has run on a CPU so far (Linux's schedstat):
/// steadier than the wall clock on a machine that other work shares.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let nanos = stat.split_whitespace().next().and_then(|n| n.parse().ok());
    Duration::from_nanos(nanos.unwrap_or(0))
}
