//! Holds FORMAT.md to the code: its constants table and its worked examples
//! must match what the engine writes.

use crate::blob_files::{BLOB_DIR, TMP_DIR};
use crate::codec::CRC_MASK_DELTA;
use crate::index::snapshot::{DOC_META_LEN, NO_VALUE, SNAPSHOT_MAGIC, SNAPSHOT_VERSION};
use crate::log::manifest::{MANIFEST_FILE, MANIFEST_MAGIC};
use crate::log::record::*;
use crate::log::segment::{encode_header, FORMAT_VERSION, SEGMENT_HEADER_LEN, SEGMENT_MAGIC};
use crate::store::SNAPSHOT_FILE;

const FORMAT_MD: &str = include_str!("../FORMAT.md");

/// The `| `NAME` | `VALUE` |` rows of the constants table.
fn documented_constants() -> Vec<(String, String)> {
    let section = FORMAT_MD
        .split("## Constants")
        .nth(1)
        .expect("FORMAT.md has a Constants section");
    section
        .lines()
        .take_while(|l| !l.starts_with("## "))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let value = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

fn hex_block(label: &str) -> Vec<u8> {
    let fence = format!("```{label}\n");
    let start = FORMAT_MD
        .find(&fence)
        .expect("FORMAT.md has the example block")
        + fence.len();
    let end = start + FORMAT_MD[start..].find("```").expect("block is closed");
    FORMAT_MD[start..end]
        .split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

#[test]
fn constants_table_matches_the_code() {
    let code: Vec<(&str, String)> = vec![
        (
            "SEGMENT_MAGIC",
            String::from_utf8_lossy(&SEGMENT_MAGIC).into_owned(),
        ),
        ("FORMAT_VERSION", FORMAT_VERSION.to_string()),
        ("SEGMENT_HEADER_LEN", SEGMENT_HEADER_LEN.to_string()),
        ("FRAME_HEADER_LEN", FRAME_HEADER_LEN.to_string()),
        ("FRAME_HEADER_LEN_V1", FRAME_HEADER_LEN_V1.to_string()),
        ("MAX_PAYLOAD_LEN", MAX_PAYLOAD_LEN.to_string()),
        ("CRC_MASK_DELTA", format!("{CRC_MASK_DELTA:#x}")),
        ("ZERO_AHEAD", crate::log::writer::ZERO_AHEAD.to_string()),
        ("KIND_COLLECTION", KIND_COLLECTION.to_string()),
        ("KIND_DOC_PUT", KIND_DOC_PUT.to_string()),
        ("KIND_DOC_DELETE", KIND_DOC_DELETE.to_string()),
        ("KIND_COLLECTION_AT", KIND_COLLECTION_AT.to_string()),
        ("KIND_LEASE_SET", KIND_LEASE_SET.to_string()),
        ("KIND_LEASE_DELETE", KIND_LEASE_DELETE.to_string()),
        ("KIND_LEASE_RELEASE_ALL", KIND_LEASE_RELEASE_ALL.to_string()),
        ("KIND_BLOB_PUT", KIND_BLOB_PUT.to_string()),
        ("KIND_BLOB_DELETE", KIND_BLOB_DELETE.to_string()),
        ("KIND_PAD", KIND_PAD.to_string()),
        ("PAGE", PAGE.to_string()),
        ("BLOB_HASH_LEN", BLOB_HASH_LEN.to_string()),
        ("BLOB_DIR", BLOB_DIR.to_string()),
        ("TMP_DIR", TMP_DIR.to_string()),
        (
            "MANIFEST_MAGIC",
            String::from_utf8_lossy(&MANIFEST_MAGIC).into_owned(),
        ),
        ("MANIFEST_FILE", MANIFEST_FILE.to_string()),
        (
            "SNAPSHOT_MAGIC",
            String::from_utf8_lossy(&SNAPSHOT_MAGIC).into_owned(),
        ),
        ("SNAPSHOT_FILE", SNAPSHOT_FILE.to_string()),
        ("SNAPSHOT_VERSION", SNAPSHOT_VERSION.to_string()),
        ("DOC_META_LEN", DOC_META_LEN.to_string()),
        ("NO_VALUE", format!("{NO_VALUE:#x}")),
        (
            "QUARANTINE_DIR",
            crate::log::recovery::QUARANTINE_DIR.to_string(),
        ),
        ("WINDOW", crate::log::scan::WINDOW.to_string()),
    ];
    let documented = documented_constants();
    assert_eq!(
        documented.len(),
        code.len(),
        "every constant is documented once: {documented:?}"
    );
    for (name, value) in code {
        let doc = documented
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} is missing from FORMAT.md"));
        assert_eq!(doc.1, value, "{name}");
    }
}

#[test]
fn worked_examples_match_the_encoder() {
    let salt = 0x0102_0304;
    assert_eq!(hex_block("hex-header"), encode_header(1, salt).to_vec());
    let mut frame = Vec::new();
    Record::DocPut {
        collection: "c",
        id: "x",
        version: 1,
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_000,
        body: br#"{"a":1}"#,
    }
    .encode_frame(Framing::V2 { salt }, SEGMENT_HEADER_LEN as u64, &mut frame);
    assert_eq!(hex_block("hex-frame"), frame);
}

/// The state of the snapshot example: collection `c` (ensured at 5, one
/// index field `a`) holding `y` (created at 1, `a` = "v") and `x` (created
/// at 1, no `a`), covering segment 1 up to offset 24.
fn example_snapshot() -> Vec<u8> {
    use crate::index::apply::Change;
    use crate::index::snapshot::{encode, Covers};
    use crate::index::State;
    use std::borrow::Cow;
    let no_bodies = |_| -> crate::Result<Vec<u8>> { Err(crate::Error::invalid("no bodies")) };
    let loc = |offset, len| crate::log::segment::Loc {
        segment: 1,
        offset,
        len,
    };
    let mut state = State::default();
    let ensure = Change::Collection {
        name: "c",
        created_at: Some(5),
        indexes: vec!["a".into()],
        backfill: None,
    };
    state.apply(ensure, loc(24, 30), &no_bodies).unwrap();
    for (id, body, offset) in [("y", br#"{"a":"v"}"#.as_slice(), 60), ("x", b"{}", 100)] {
        let put = Change::DocPut {
            collection: "c",
            id,
            version: 1,
            created_at: 1,
            updated_at: 2,
            body: Cow::Borrowed(body),
            values: None,
        };
        state.apply(put, loc(offset, 40), &no_bodies).unwrap();
    }
    let covers = Covers {
        segment: 1,
        offset: 24,
        horizon: 0,
        base: vec![],
    };
    encode(&state, &covers)
}

#[test]
fn the_snapshot_example_matches_the_encoder() {
    let bytes = example_snapshot();
    if std::env::var_os("PRINT_SNAPSHOT_EXAMPLE").is_some() {
        for b in &bytes {
            print!("{b:02x} ");
        }
        println!();
    }
    assert_eq!(hex_block("hex-snapshot"), bytes);
}
