//! A blob delete whose record is synced while `close` runs, and another
//! handle that opens the directory and puts the same bytes before the
//! delete's clean step: the new handle's content file stays. The clean step
//! of `Decision::WriteThenClean` runs under the writer lock only while the
//! store is open.

mod common;

use std::io::{Cursor, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::wrap_fs::WrapFs;
use logstore::{BlobPut, Durability, LogStore, Options, Store};

fn opts() -> Options {
    Options {
        durability: Durability::Flush,
        auto_compact: false,
        ..Options::default()
    }
}

const BYTES: &[u8] = b"the same bytes, put again by the next handle";

#[test]
fn a_delete_racing_close_and_a_reopen_that_puts_the_same_bytes_keeps_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("db");
    let fs = WrapFs::new(Arc::new(common::real_fs(&dir)));
    let store = LogStore::open_with_fs(Arc::new(fs.clone()), &dir, opts()).unwrap();
    let meta = store
        .blobs()
        .put(&mut Cursor::new(BYTES.to_vec()), BlobPut::default())
        .unwrap();

    // The delete's sync waits for the test.
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    fs.on_sync(".seg", move || {
        entered_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    });
    // When close releases the directory: another handle opens it and puts
    // the same bytes.
    let reopened_id: Arc<Mutex<Option<String>>> = Arc::default();
    let ran = Arc::new(AtomicBool::new(false));
    {
        let (dir, reopened_id, ran) = (dir.clone(), reopened_id.clone(), ran.clone());
        fs.on_unlock(move || {
            let other = LogStore::open(&dir, opts()).unwrap();
            let m = other
                .blobs()
                .put(&mut Cursor::new(BYTES.to_vec()), BlobPut::default())
                .unwrap();
            *reopened_id.lock().unwrap() = Some(m.id);
            other.close().unwrap();
            ran.store(true, Ordering::SeqCst);
        });
    }
    std::thread::scope(|s| {
        let deleter = s.spawn(|| store.blobs().delete(&meta.id));
        entered_rx.recv().unwrap();
        let closer = s.spawn(|| store.close());
        // Let close reach the commit gate the delete's sync holds.
        std::thread::sleep(Duration::from_millis(100));
        release_tx.send(()).unwrap();
        assert!(deleter.join().unwrap().unwrap(), "the delete was made");
        closer.join().unwrap().unwrap();
    });
    assert!(ran.load(Ordering::SeqCst), "the other handle ran");
    drop(store);
    let id = reopened_id.lock().unwrap().clone().unwrap();
    let store = LogStore::open(&dir, opts()).unwrap();
    let (_, mut reader) = store.blobs().get(&id).unwrap().expect("the blob");
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).expect("its file is there");
    assert_eq!(bytes, BYTES);
    assert!(store.verify().unwrap().is_clean());
}
