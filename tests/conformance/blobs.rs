//! The Blobs section of the contract, rule by rule.

use std::io::{Cursor, Read};

use logstore::{BlobList, BlobMeta, BlobPut, Error};

use super::{Harness, START_MS, SUITE_MAX_BLOB_BYTES};

fn put(h: &Harness, bytes: &[u8], mime: Option<&str>, owner: Option<&str>) -> BlobMeta {
    let opts = BlobPut {
        mime: mime.map(str::to_string),
        owner_id: owner.map(str::to_string),
    };
    h.s()
        .blobs()
        .put(&mut Cursor::new(bytes.to_vec()), opts)
        .unwrap()
}

fn read_all(h: &Harness, id: &str) -> Vec<u8> {
    let (_, mut reader) = h.s().blobs().get(id).unwrap().expect("blob exists");
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    out
}

fn ids(metas: &[BlobMeta]) -> Vec<&str> {
    metas.iter().map(|m| m.id.as_str()).collect()
}

pub fn put_returns_metadata_and_get_streams_the_bytes(h: &Harness) {
    let meta = put(h, b"hello blob", None, None);
    assert!(
        uuid::Uuid::parse_str(&meta.id).is_ok(),
        "ids are UUIDs: {}",
        meta.id
    );
    assert_eq!(meta.mime, "application/octet-stream");
    assert_eq!(meta.size, 10);
    assert_eq!(meta.owner_id, None);
    assert_eq!(meta.created_at, START_MS);
    if let Some(hash) = &meta.content_hash {
        assert_eq!(hash, &blake3::hash(b"hello blob").to_hex().to_string());
    }
    assert_eq!(
        h.s().blobs().get_meta(&meta.id).unwrap(),
        Some(meta.clone())
    );
    let (got, _) = h.s().blobs().get(&meta.id).unwrap().unwrap();
    assert_eq!(got, meta);
    assert_eq!(read_all(h, &meta.id), b"hello blob");
}

pub fn put_keeps_mime_and_owner(h: &Harness) {
    let meta = put(h, b"\x89PNG", Some("image/png"), Some("u1"));
    assert_eq!(meta.mime, "image/png");
    assert_eq!(meta.owner_id.as_deref(), Some("u1"));
    assert_eq!(h.s().blobs().get_meta(&meta.id).unwrap().unwrap(), meta);
}

pub fn empty_and_limit_sized_blobs_are_stored(h: &Harness) {
    let empty = put(h, b"", None, None);
    assert_eq!(empty.size, 0);
    assert!(read_all(h, &empty.id).is_empty());
    let full = vec![7u8; SUITE_MAX_BLOB_BYTES as usize];
    let meta = put(h, &full, None, None);
    assert_eq!(meta.size, SUITE_MAX_BLOB_BYTES);
    assert_eq!(read_all(h, &meta.id), full);
}

pub fn an_oversized_blob_is_refused_and_leaves_nothing(h: &Harness) {
    let big = vec![1u8; SUITE_MAX_BLOB_BYTES as usize + 1];
    let err = h
        .s()
        .blobs()
        .put(&mut Cursor::new(big), BlobPut::default())
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(ref m) if m.contains("limit")),
        "{err}"
    );
    assert!(h.s().blobs().list(&BlobList::default()).unwrap().is_empty());
}

/// A reader that fails part-way.
struct Failing(usize);

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0 == 0 {
            return Err(std::io::Error::other("the caller's stream broke"));
        }
        let n = buf.len().min(self.0);
        buf[..n].fill(3);
        self.0 -= n;
        Ok(n)
    }
}

pub fn a_failing_reader_is_an_error_and_leaves_nothing(h: &Harness) {
    let err = h
        .s()
        .blobs()
        .put(&mut Failing(1000), BlobPut::default())
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(h.s().blobs().list(&BlobList::default()).unwrap().is_empty());
}

pub fn identical_bytes_are_still_two_blobs(h: &Harness) {
    let a = put(h, b"same bytes", Some("text/plain"), Some("u1"));
    let b = put(h, b"same bytes", Some("text/csv"), Some("u2"));
    assert_ne!(a.id, b.id);
    assert_eq!(
        h.s().blobs().get_meta(&a.id).unwrap().unwrap().mime,
        "text/plain"
    );
    assert_eq!(
        h.s()
            .blobs()
            .get_meta(&b.id)
            .unwrap()
            .unwrap()
            .owner_id
            .as_deref(),
        Some("u2")
    );
    assert!(h.s().blobs().delete(&a.id).unwrap());
    assert_eq!(
        read_all(h, &b.id),
        b"same bytes",
        "the other blob keeps its bytes"
    );
    assert!(h.s().blobs().get(&a.id).unwrap().is_none());
}

pub fn missing_blobs_are_none_and_delete_reports_existence(h: &Harness) {
    let missing = uuid::Uuid::new_v4().to_string();
    assert!(h.s().blobs().get(&missing).unwrap().is_none());
    assert_eq!(h.s().blobs().get_meta(&missing).unwrap(), None);
    assert!(!h.s().blobs().delete(&missing).unwrap());
    let meta = put(h, b"x", None, None);
    assert!(h.s().blobs().delete(&meta.id).unwrap());
    assert!(!h.s().blobs().delete(&meta.id).unwrap());
    assert_eq!(h.s().blobs().get_meta(&meta.id).unwrap(), None);
}

pub fn list_is_newest_first_with_owner_and_paging(h: &Harness) {
    let a = put(h, b"a", None, Some("u1"));
    h.clock.advance(1);
    let b = put(h, b"b", None, Some("u2"));
    h.clock.advance(1);
    let c = put(h, b"c", None, Some("u1"));
    let d = put(h, b"d", None, Some("u1"));
    // c and d share a timestamp: ties go by id, descending.
    let (first, second) = if c.id > d.id { (&c, &d) } else { (&d, &c) };
    let all = h.s().blobs().list(&BlobList::default()).unwrap();
    assert_eq!(
        ids(&all),
        vec![
            first.id.as_str(),
            second.id.as_str(),
            b.id.as_str(),
            a.id.as_str()
        ]
    );
    let mine = h
        .s()
        .blobs()
        .list(&BlobList {
            owner_id: Some("u1".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        ids(&mine),
        vec![first.id.as_str(), second.id.as_str(), a.id.as_str()]
    );
    let page = h
        .s()
        .blobs()
        .list(&BlobList {
            owner_id: Some("u1".into()),
            limit: Some(1),
            offset: Some(1),
        })
        .unwrap();
    assert_eq!(ids(&page), vec![second.id.as_str()]);
    let none = h
        .s()
        .blobs()
        .list(&BlobList {
            owner_id: Some("nobody".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(none.is_empty());
    for i in 0..105u8 {
        put(h, &[i], None, Some("many"));
    }
    let many = BlobList {
        owner_id: Some("many".into()),
        ..Default::default()
    };
    assert_eq!(
        h.s().blobs().list(&many).unwrap().len(),
        100,
        "default limit"
    );
}

pub fn bad_blob_input_is_rejected(h: &Harness) {
    for bad in ["", "../etc/passwd", "a/b", "a b"] {
        assert!(
            matches!(h.s().blobs().get_meta(bad), Err(Error::InvalidInput(_))),
            "{bad:?}"
        );
        assert!(
            matches!(h.s().blobs().delete(bad), Err(Error::InvalidInput(_))),
            "{bad:?}"
        );
    }
    let empty_mime = BlobPut {
        mime: Some(String::new()),
        owner_id: None,
    };
    let err = h
        .s()
        .blobs()
        .put(&mut Cursor::new(b"x".to_vec()), empty_mime)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(h.s().blobs().list(&BlobList::default()).unwrap().is_empty());
}

pub fn closed_store_refuses_blob_calls(h: &Harness) {
    let meta = put(h, b"x", None, None);
    h.s().close().unwrap();
    let b = h.s().blobs();
    assert!(matches!(
        b.put(&mut Cursor::new(b"y".to_vec()), BlobPut::default()),
        Err(Error::Closed)
    ));
    assert!(matches!(b.get(&meta.id), Err(Error::Closed)));
    assert!(matches!(b.get_meta(&meta.id), Err(Error::Closed)));
    assert!(matches!(b.delete(&meta.id), Err(Error::Closed)));
    assert!(matches!(b.list(&BlobList::default()), Err(Error::Closed)));
}

/// Reads `reader` to its end in pieces of at most `piece` bytes.
fn read_in_pieces(reader: &mut dyn Read, piece: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; piece];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

pub fn blobs_of_every_size_stream_whole_in_reads_of_any_size(h: &Harness) {
    // Around the size up to which drivers check a blob before the first
    // byte (64 KiB), and up to the suite's limit.
    for size in [
        64 * 1024 - 1,
        64 * 1024,
        64 * 1024 + 1,
        SUITE_MAX_BLOB_BYTES as usize,
    ] {
        let bytes: Vec<u8> = (0..size).map(|i| (i * 7 % 253) as u8).collect();
        let meta = put(h, &bytes, None, None);
        for piece in [1000, 8192, size, size + 4096] {
            let (_, mut reader) = h.s().blobs().get(&meta.id).unwrap().unwrap();
            let got = read_in_pieces(&mut reader, piece);
            assert!(got == bytes, "{size} bytes read {piece} at a time");
        }
        // Exactly `size` bytes, then the end.
        let (_, mut reader) = h.s().blobs().get(&meta.id).unwrap().unwrap();
        let mut exact = vec![0u8; size];
        reader.read_exact(&mut exact).unwrap();
        assert!(exact == bytes);
        assert_eq!(reader.read(&mut [0u8; 16]).unwrap(), 0);
    }
}
