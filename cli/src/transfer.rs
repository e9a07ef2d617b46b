//! `dump`, `load` and `migrate`: whole stores as JSON Lines, and copies
//! between drivers that keep ids, versions, timestamps, blob ids and bytes,
//! and leases.
//!
//! One JSON object per line, tagged by `type`:
//! `{"type":"collection","name":..,"indexes":[..]}` (ensured collections),
//! `{"type":"document", ..the Document fields..}`,
//! `{"type":"blob","meta":{..BlobMeta..},"bytes":"<base64>"}`,
//! `{"type":"lease", ..the LeaseRow fields..}`.

use std::io::{BufRead, Cursor, Write};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use logstore::{each_item, BlobMeta, Document, Importer, Item, LeaseRow, Transfer};
use serde::{Deserialize, Serialize};

use crate::progress::Progress;

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Line {
    Collection {
        name: String,
        indexes: Vec<String>,
        #[serde(default)]
        created_at: i64,
    },
    Document(Document),
    Blob {
        meta: BlobMeta,
        bytes: String,
    },
    Lease(LeaseRow),
}

impl Line {
    /// The line of an item, with a blob's bytes read and encoded.
    fn of(item: Item<'_>) -> std::io::Result<Line> {
        Ok(match item {
            Item::Collection {
                name,
                indexes,
                created_at,
            } => Line::Collection {
                name,
                indexes,
                created_at,
            },
            Item::Document(doc) => Line::Document(doc),
            Item::Blob { meta, bytes } => {
                let mut buf = Vec::new();
                bytes.read_to_end(&mut buf)?;
                Line::Blob {
                    meta,
                    bytes: base64::engine::general_purpose::STANDARD.encode(buf),
                }
            }
            Item::Lease(row) => Line::Lease(row),
        })
    }

    /// Hands the line's item to `importer`.
    fn apply(self, importer: &mut Importer<'_>) -> Result<()> {
        match self {
            Line::Collection {
                name,
                indexes,
                created_at,
            } => importer.add(Item::Collection {
                name,
                indexes,
                created_at,
            })?,
            Line::Document(doc) => importer.add(Item::Document(doc))?,
            Line::Blob { meta, bytes } => {
                let bytes = base64::engine::general_purpose::STANDARD.decode(bytes)?;
                importer.add(Item::Blob {
                    meta,
                    bytes: &mut Cursor::new(bytes),
                })?;
            }
            Line::Lease(row) => importer.add(Item::Lease(row))?,
        }
        Ok(())
    }
}

/// The progress label of an item's kind.
fn label(item: &Item<'_>) -> &'static str {
    match item {
        Item::Collection { .. } => "collections",
        Item::Document(_) => "documents",
        Item::Blob { .. } => "blobs",
        Item::Lease(_) => "leases",
    }
}

fn refuse_non_empty(dst: &dyn Transfer, what: &str) -> Result<()> {
    if !dst.is_empty()? {
        bail!("the target store is not empty; {what} only fills an empty store");
    }
    Ok(())
}

/// Writes every item of `src` to `out`, one JSON object per line.
pub fn dump(src: &dyn Transfer, out: &mut dyn Write, progress: &Progress) -> Result<u64> {
    let io = |context: &str, source: std::io::Error| logstore::Error::Io {
        context: context.into(),
        source,
    };
    let walked = each_item(
        src,
        |n| progress.start(n),
        |item| {
            progress.step(label(&item));
            // A damaged blob's reader carries the store's `Corruption`.
            let line = Line::of(item).map_err(|e| {
                e.downcast::<logstore::Error>()
                    .unwrap_or_else(|e| io("reading a blob", e))
            })?;
            serde_json::to_writer(&mut *out, &line)
                .map_err(|e| io("writing the dump", e.into()))?;
            out.write_all(b"\n").map_err(|e| io("writing the dump", e))
        },
    );
    progress.finish();
    Ok(walked?.items())
}

/// The lines a failed chunk came from.
fn lines_of(lines: &[usize]) -> String {
    match (lines.first(), lines.last()) {
        (Some(a), Some(b)) if a != b => format!("lines {a} to {b}"),
        (Some(a), _) => format!("line {a}"),
        _ => "the end of the input".into(),
    }
}

/// Reads JSON Lines from `input` into the empty store `dst`, in chunks
/// (an error in a chunk's write names the lines the chunk holds).
pub fn load(dst: &dyn Transfer, input: &mut dyn BufRead, progress: &Progress) -> Result<u64> {
    refuse_non_empty(dst, "load")?;
    let mut importer = Importer::new(dst);
    let mut pending = Vec::new();
    let mut count = 0;
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let item: Line = serde_json::from_str(&line).with_context(|| format!("line {}", n + 1))?;
        pending.push(n + 1);
        item.apply(&mut importer)
            .with_context(|| lines_of(&pending))?;
        if importer.pending() == 0 {
            pending.clear();
        }
        progress.step("loading");
        count += 1;
    }
    importer.finish().with_context(|| lines_of(&pending))?;
    progress.finish();
    Ok(count)
}

/// Copies everything from `src` into the empty store `dst`.
pub fn migrate(src: &dyn Transfer, dst: &dyn Transfer, progress: &Progress) -> Result<u64> {
    refuse_non_empty(dst, "migrate")?;
    let copied = logstore::migrate(
        src,
        dst,
        |n| progress.start(n),
        |item| {
            progress.step(label(item));
        },
    );
    progress.finish();
    Ok(copied?.items())
}
