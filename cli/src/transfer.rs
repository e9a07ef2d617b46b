//! `dump`, `load` and `migrate`: whole stores as JSON Lines, and copies
//! between drivers that keep ids, versions, timestamps, blob ids and bytes,
//! and leases.
//!
//! One JSON object per line, tagged by `type`:
//! `{"type":"collection","name":..,"indexes":[..]}` (ensured collections),
//! `{"type":"document", ..the Document fields..}`,
//! `{"type":"blob","meta":{..BlobMeta..},"bytes":"<base64>"}`,
//! `{"type":"lease", ..the LeaseRow fields..}`.

use std::io::{BufRead, Cursor, Read, Write};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use logstore::{BlobList, BlobMeta, Document, LeaseRow, Query, Transfer};
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

/// Every item of `src`, in an order that loads back exactly: collections,
/// then documents, blobs (oldest first) and leases.
fn each_item(
    src: &dyn Transfer,
    progress: &Progress,
    mut f: impl FnMut(Line) -> Result<()>,
) -> Result<u64> {
    let mut count = 0;
    let ensured = src.docs().list_collections()?;
    let mut names: Vec<String> = ensured.iter().map(|c| c.name.clone()).collect();
    names.extend(src.unensured_collections()?);
    let all_blobs = BlobList {
        limit: Some(usize::MAX),
        ..Default::default()
    };
    let mut blobs = src.blobs().list(&all_blobs)?;
    blobs.reverse();
    let leases = src.all_leases()?;
    let docs: u64 = ensured.iter().map(|c| c.doc_count).sum();
    progress.start(names.len() as u64 + docs + blobs.len() as u64 + leases.len() as u64);
    for info in ensured {
        let created_at = src.collection_created_at(&info.name)?.unwrap_or(0);
        f(Line::Collection {
            name: info.name,
            indexes: info.indexes,
            created_at,
        })?;
        count += 1;
    }
    for name in names {
        let q = Query::new(&name).order_by("id").limit(usize::MAX);
        for doc in src.docs().query(&q)? {
            progress.step("documents");
            f(Line::Document(doc))?;
            count += 1;
        }
    }
    for meta in blobs {
        progress.step("blobs");
        let (meta, mut reader) = src
            .blobs()
            .get(&meta.id)?
            .ok_or_else(|| anyhow!("blob {} vanished during the dump", meta.id))?;
        let mut bytes = Vec::with_capacity(meta.size as usize);
        reader.read_to_end(&mut bytes)?;
        f(Line::Blob {
            meta,
            bytes: base64::engine::general_purpose::STANDARD.encode(bytes),
        })?;
        count += 1;
    }
    for row in leases {
        progress.step("leases");
        f(Line::Lease(row))?;
        count += 1;
    }
    progress.finish();
    Ok(count)
}

fn apply(dst: &dyn Transfer, line: Line) -> Result<()> {
    match line {
        Line::Collection {
            name,
            indexes,
            created_at,
        } => {
            let fields: Vec<&str> = indexes.iter().map(String::as_str).collect();
            dst.import_collection(&name, &fields, created_at)?;
        }
        Line::Document(doc) => dst.import_document(&doc)?,
        Line::Blob { meta, bytes } => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(bytes)?;
            dst.import_blob(&meta, &mut Cursor::new(bytes))?;
        }
        Line::Lease(row) => dst.import_lease(&row)?,
    }
    Ok(())
}

fn refuse_non_empty(dst: &dyn Transfer, what: &str) -> Result<()> {
    if !dst.is_empty()? {
        bail!("the target store is not empty; {what} only fills an empty store");
    }
    Ok(())
}

/// Writes every item of `src` to `out`, one JSON object per line.
pub fn dump(src: &dyn Transfer, out: &mut dyn Write, progress: &Progress) -> Result<u64> {
    each_item(src, progress, |line| {
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
        Ok(())
    })
}

/// Reads JSON Lines from `input` into the empty store `dst`.
pub fn load(dst: &dyn Transfer, input: &mut dyn BufRead, progress: &Progress) -> Result<u64> {
    refuse_non_empty(dst, "load")?;
    let mut count = 0;
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("line {}", n + 1);
        let item: Line = serde_json::from_str(&line).with_context(at)?;
        apply(dst, item).with_context(at)?;
        progress.step("loading");
        count += 1;
    }
    progress.finish();
    Ok(count)
}

/// Copies everything from `src` into the empty store `dst`.
pub fn migrate(src: &dyn Transfer, dst: &dyn Transfer, progress: &Progress) -> Result<u64> {
    refuse_non_empty(dst, "migrate")?;
    each_item(src, progress, |line| apply(dst, line))
}
