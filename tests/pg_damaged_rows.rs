//! Blob rows of a PostgreSQL store damaged by a foreign writer: a size of
//! 2^62, a negative size, a size a byte or a chunk off, a chunk changed,
//! shortened or gone. Every read is `Error::Corruption` naming the blob
//! (never an allocation of the recorded size, never a clean end of stream),
//! and a whole-store walk stops with it.
#![cfg(feature = "postgres")]

mod pg;

use std::io::{Cursor, Read};

use logstore::{each_item, BlobList, BlobPut, Error, Item, Options, PgStore, Store};

const CHUNK: usize = 1024 * 1024;

fn bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A fresh store holding one blob of `len` bytes; the blob's id.
fn store_with_blob(len: usize) -> (PgStore, String, String) {
    let (store, schema) = pg::open_fresh(Options::default());
    let meta = store
        .blobs()
        .put(&mut Cursor::new(bytes(len)), BlobPut::default())
        .expect("put");
    (store, schema, meta.id)
}

/// The `Corruption` of `result`, which must name blob `id`.
fn corruption<T: std::fmt::Debug>(result: logstore::Result<T>, id: &str, what: &str) -> String {
    match result {
        Err(Error::Corruption { reason, .. }) => {
            assert!(
                reason.contains(id),
                "{what}: the reason names no blob: {reason}"
            );
            reason
        }
        other => panic!("{what}: expected Corruption, got {other:?}"),
    }
}

/// Walks the whole store as `logstore dump` and `migrate` do, reading every
/// blob to its end.
fn walk(store: &PgStore) -> logstore::Result<()> {
    each_item(
        store,
        |_| {},
        |item| {
            if let Item::Blob { bytes, .. } = item {
                std::io::copy(bytes, &mut std::io::sink()).map_err(|e| {
                    e.downcast::<Error>().unwrap_or_else(|e| Error::Io {
                        context: "reading a blob".into(),
                        source: e,
                    })
                })?;
            }
            Ok(())
        },
    )
    .map(drop)
}

#[test]
fn a_blob_size_that_is_not_its_bytes_is_corruption_before_a_byte_is_read() {
    if !pg::available() {
        return;
    }
    for len in [5, CHUNK + 10, 3 * CHUNK] {
        for size in [
            "4611686018427387904",
            "size - 1",
            "size + 1",
            "size + 1048576",
            "0",
        ] {
            let what = format!("a blob of {len} bytes recorded as {size}");
            let (store, schema, id) = store_with_blob(len);
            pg::psql(&format!(
                "UPDATE {schema}.store_blobs SET size = {size} WHERE id = '{id}'"
            ));
            corruption(store.blobs().get(&id).map(|_| ()), &id, &what);
            corruption(walk(&store), &id, &what);
            // The store still serves what is whole.
            let other = store
                .blobs()
                .put(&mut Cursor::new(bytes(7)), BlobPut::default())
                .expect("put");
            let (_, mut reader) = store.blobs().get(&other.id).expect("get").expect("blob");
            let mut back = Vec::new();
            reader.read_to_end(&mut back).expect("read");
            assert_eq!(back, bytes(7), "{what}");
            store.drop_schema().expect("drop");
        }
    }
}

#[test]
fn a_negative_blob_size_is_corruption_naming_the_blob() {
    if !pg::available() {
        return;
    }
    let (store, schema, id) = store_with_blob(5);
    pg::psql(&format!(
        "UPDATE {schema}.store_blobs SET size = -1 WHERE id = '{id}'"
    ));
    let b = store.blobs();
    corruption(b.get(&id).map(|_| ()), &id, "get");
    corruption(b.get_meta(&id), &id, "get_meta");
    corruption(b.list(&BlobList::default()), &id, "list");
    corruption(walk(&store), &id, "walk");
    store.drop_schema().expect("drop");
}

/// Reads `id` to its end: the error of the first failing read, and of a
/// read after it.
fn read_fails_twice(store: &PgStore, id: &str) -> (std::io::Error, std::io::Error) {
    let (_, mut reader) = store.blobs().get(id).expect("get").expect("blob");
    let mut sink = Vec::new();
    let first = reader.read_to_end(&mut sink).expect_err("damage");
    let again = reader.read(&mut [0u8; 16]).expect_err("still damaged");
    (first, again)
}

fn carried_corruption(e: std::io::Error, id: &str, what: &str) -> String {
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{what}: {e}");
    let inner = e.downcast::<Error>();
    corruption::<()>(inner.map_or_else(|e| panic!("{what}: {e}"), Err), id, what)
}

#[test]
fn a_damaged_chunk_fails_the_stream_as_corruption_and_keeps_failing() {
    if !pg::available() {
        return;
    }
    let cases = [
        (
            "a byte changed in the second chunk",
            "UPDATE {s}.store_blob_chunks SET bytes = overlay(bytes placing '\\x00ff'::bytea from 7)
             WHERE blob_id = '{id}' AND seq = 1",
        ),
        (
            "the middle chunk shortened",
            "UPDATE {s}.store_blob_chunks SET bytes = substring(bytes from 1 for 10)
             WHERE blob_id = '{id}' AND seq = 1",
        ),
        (
            "the middle chunk gone",
            "DELETE FROM {s}.store_blob_chunks WHERE blob_id = '{id}' AND seq = 1",
        ),
    ];
    for (what, sql) in cases {
        let (store, schema, id) = store_with_blob(2 * CHUNK + 100);
        pg::psql(&sql.replace("{s}", &schema).replace("{id}", &id));
        let (first, again) = read_fails_twice(&store, &id);
        carried_corruption(first, &id, what);
        carried_corruption(again, &id, what);
        corruption(walk(&store), &id, what);
        store.drop_schema().expect("drop");
    }
}
