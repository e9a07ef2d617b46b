//! The inspection and maintenance commands: stats, verify, repair, compact,
//! and single-document get, put, delete, query and count for scripts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use logstore::{LogStore, Query, Store};
use serde_json::{json, Value};

use crate::args::Condition;
use crate::store::{self, Opened};

/// A command's outcome: what to print, and whether it found a problem
/// (exit code 1).
pub struct Outcome {
    pub stdout: String,
    pub problem: bool,
}

impl Outcome {
    fn ok(stdout: String) -> Self {
        Outcome {
            stdout,
            problem: false,
        }
    }
}

pub fn stats(opened: &Opened, as_json: bool) -> Result<Outcome> {
    let s = opened.transfer();
    let collections = s.docs().list_collections()?;
    let all = logstore::BlobList {
        limit: Some(usize::MAX),
        ..Default::default()
    };
    let blobs = s.blobs().list(&all)?;
    let blob_bytes: u64 = blobs.iter().map(|b| b.size).sum();
    let leases = s.all_leases()?;
    let mut report = json!({
        "collections": collections,
        "blobs": {"count": blobs.len(), "bytes": blob_bytes},
        "leases": {"rows": leases.len()},
    });
    if let Opened::Log(log) = opened {
        let st = log.stats()?;
        report["log"] = json!({
            "segments": st.segments,
            "total_bytes": st.total_bytes,
            "live_bytes": st.live_bytes,
            "dead_bytes": st.dead_bytes,
            "space_amplification": st.space_amplification,
            "documents": st.documents,
            "index_bytes_estimate": st.index_bytes_estimate,
            "foreign_entries": st.foreign_entries,
        });
        report["blobs"]["distinct_files"] = json!(st.blob_files);
        report["leases"]["expired"] = json!(st.leases_expired);
        report["leases"]["held"] = json!(st.leases - st.leases_expired);
    }
    if as_json {
        return Ok(Outcome::ok(serde_json::to_string_pretty(&report)?));
    }
    let mut out = String::new();
    if let Some(log) = report.get("log") {
        out += &format!(
            "segments: {}\ntotal bytes: {}\nlive bytes: {}\ndead bytes: {}\nspace amplification: {:.2}\ndocuments: {}\nindex memory (estimate): {} bytes\n",
            log["segments"], log["total_bytes"], log["live_bytes"], log["dead_bytes"],
            log["space_amplification"].as_f64().unwrap_or(0.0), log["documents"], log["index_bytes_estimate"]
        );
        out += &format!("foreign entries: {}", log["foreign_entries"]);
        if log["foreign_entries"].as_u64().unwrap_or(0) > 0 {
            out +=
                " (entries the store did not make and leaves alone; `logstore verify` lists them)";
        }
        out += "\n";
    }
    out += "collections:\n";
    for c in &collections {
        out += &format!(
            "  {}: {} documents, indexes {:?}\n",
            c.name, c.doc_count, c.indexes
        );
    }
    out += &format!("blobs: {} ({} bytes", blobs.len(), blob_bytes);
    if let Some(files) = report["blobs"].get("distinct_files") {
        out += &format!(", {files} distinct files");
    }
    out += ")\n";
    out += &format!("leases: {}", leases.len());
    if let Some(held) = report["leases"].get("held") {
        out += &format!(" ({held} held, {} expired)", report["leases"]["expired"]);
    }
    out += "\n";
    Ok(Outcome::ok(out))
}

pub fn verify(opened: &Opened) -> Result<Outcome> {
    let log = opened.log("verify")?;
    let report = log.verify()?;
    let mut stdout = if report.is_clean() {
        format!(
            "ok: {} segments, {} records, {} blobs verified{}\n",
            report.segments,
            report.records,
            report.blobs,
            if report.snapshot_checked {
                ", snapshot matches the log"
            } else {
                ""
            }
        )
    } else {
        report.problems.iter().map(|p| format!("{p}\n")).collect()
    };
    // Not damage: listed so a user sees them, without failing the check.
    for entry in &report.foreign {
        stdout += &format!("warning: {entry}\n");
    }
    Ok(Outcome {
        stdout,
        problem: !report.is_clean(),
    })
}

pub fn compact(opened: &Opened) -> Result<Outcome> {
    let r = opened.log("compact")?.compact()?;
    Ok(Outcome::ok(format!(
        "compacted {} segments into {}: {} -> {} bytes, {} records kept, {} dropped, {} blob files removed, in {:.2?}\n",
        r.segments_compacted, r.segments_written, r.bytes_before, r.bytes_after, r.records_kept,
        r.records_dropped, r.blob_files_removed, r.duration
    )))
}

/// Copies the log store `opened` (named `src`) into the new or empty
/// directory `dest`; the library verifies the copy before it returns.
pub fn backup(opened: &Opened, src: &Path, dest: &Path) -> Result<Outcome> {
    // The library refuses a target that is not new or empty, or lies
    // inside the store, before it makes anything.
    let log = opened.log("backup")?;
    let r = log
        .backup_to(dest)
        .with_context(|| format!("backing up {} to {}", src.display(), dest.display()))?;
    Ok(Outcome::ok(format!(
        "backed up {} documents, {} blobs and {} leases ({} segments, {} bytes; {} blob files, {} bytes) to {}; the copy verifies\n",
        r.documents, r.blobs, r.leases, r.segments, r.segment_bytes, r.blob_files, r.blob_bytes,
        dest.display()
    )))
}

/// Salvages the log store at `src` into a new store; with `in_place`, into
/// new segments of the store itself, switched in by the library, which
/// keeps the damaged originals in the store's `quarantine/` folder.
pub fn repair(src: &Path, out: Option<&Path>, in_place: bool) -> Result<Outcome> {
    store::existing_log_store(src)?;
    // The names beside the store need its real path (`.` has no sibling).
    let src_buf = src.canonicalize()?;
    let src = src_buf.as_path();
    // Refuse a store that a running program holds. The lock is held for the
    // salvage and, in place, through the switch.
    let salvage = logstore::Salvage::lock(src)?;
    let before = document_counts(src);
    if in_place {
        let r = salvage.repair_in_place(&store::options())?;
        let mut stdout = format!(
            "kept {} records from {} segments, rewritten into {} segments of {}\n",
            r.salvage.records_kept,
            r.salvage.segments,
            r.segments_written,
            src.display()
        );
        for lost in &r.salvage.lost {
            stdout += &format!("lost: {lost}\n");
        }
        stdout += &lost_in_words(&r.salvage.lost, before, document_counts(src));
        stdout += &format!(
            "the repaired store replaced the original in place; the damaged originals are kept in {}\n",
            r.originals.display()
        );
        return Ok(Outcome {
            stdout,
            problem: !r.salvage.lost.is_empty(),
        });
    }
    let target: PathBuf = match out {
        Some(out) => out.to_path_buf(),
        None => sibling(src, "repaired"),
    };
    if target.exists() {
        bail!(
            "{} already exists; name another with --out",
            target.display()
        );
    }
    let dst = LogStore::open(&target, store::options())?;
    let report = salvage.run(&dst)?;
    dst.close()?;
    let mut stdout = format!(
        "kept {} records from {} segments into {}\n",
        report.records_kept,
        report.segments,
        target.display()
    );
    for lost in &report.lost {
        stdout += &format!("lost: {lost}\n");
    }
    drop(salvage);
    stdout += &lost_in_words(&report.lost, before, document_counts(&target));
    Ok(Outcome {
        stdout,
        problem: !report.lost.is_empty(),
    })
}

/// The documents of each collection of the log store at `dir`, as its
/// index holds them, when it opens read-only with nothing cut: its index
/// snapshot may cover damage in the log, and then holds the documents as
/// they were before it. `None` when it does not open so.
fn document_counts(dir: &Path) -> Option<BTreeMap<String, u64>> {
    let store = LogStore::open_read_only(dir, store::options()).ok()?;
    if store.recovery_report().truncated.is_some() {
        return None;
    }
    let mut counts: BTreeMap<String, u64> = store
        .docs()
        .list_collections()
        .ok()?
        .into_iter()
        .map(|c| (c.name, c.doc_count))
        .collect();
    for name in logstore::Transfer::unensured_collections(&store).ok()? {
        let n = store
            .docs()
            .count(&Query::new(name.as_str()).limit(usize::MAX))
            .ok()?;
        counts.insert(name, n);
    }
    Some(counts)
}

/// What a repair lost, in a sentence: how many documents, where the
/// damaged store's index could be read to count them (`before`, and
/// `after` in the repaired store), else only that it cannot be told.
fn lost_in_words(
    lost: &[logstore::Problem],
    before: Option<BTreeMap<String, u64>>,
    after: Option<BTreeMap<String, u64>>,
) -> String {
    if lost.is_empty() {
        return "no documents were lost: every record verified\n".into();
    }
    let losses = match lost.len() {
        1 => "1 loss listed above".to_string(),
        n => format!("{n} losses listed above"),
    };
    let (Some(before), Some(after)) = (before, after) else {
        return format!(
            "{losses}; how many documents were lost cannot be told (the damaged store does not open to count them), and documents may be back at an earlier version: compare with a backup\n"
        );
    };
    let missing: u64 = before
        .iter()
        .map(|(name, n)| n.saturating_sub(after.get(name).copied().unwrap_or(0)))
        .sum();
    let back: u64 = after
        .iter()
        .map(|(name, n)| n.saturating_sub(before.get(name).copied().unwrap_or(0)))
        .sum();
    let total: u64 = before.values().sum();
    let mut line = match missing {
        0 => format!("{losses}, but no documents were lost: the repaired store holds all {total} the damaged store's index lists"),
        1 => format!("{losses}: 1 document could not be recovered (the damaged store's index lists {total})"),
        n => format!("{losses}: {n} documents could not be recovered (the damaged store's index lists {total})"),
    };
    if back > 0 {
        line += &format!(
            "; {back} deleted {} back, {} delete being lost",
            if back == 1 {
                "document is"
            } else {
                "documents are"
            },
            if back == 1 { "its" } else { "their" }
        );
    }
    line + "; a document may also be back at an earlier version\n"
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "store".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!("{name}.{suffix}"))
}

pub fn get(s: &dyn Store, collection: &str, id: &str) -> Result<Outcome> {
    match s.docs().get(collection, id)? {
        Some(doc) => Ok(Outcome::ok(serde_json::to_string(&doc)? + "\n")),
        None => bail!("not found: {collection}/{id}"),
    }
}

/// Writes `data`; a compare-and-swap that loses is an error naming the
/// version the row is at now.
pub fn put(
    s: &dyn Store,
    collection: &str,
    id: &str,
    data: Value,
    expected: Option<u64>,
) -> Result<Outcome> {
    match s.docs().put(collection, id, data, expected)? {
        Some(doc) => Ok(Outcome::ok(serde_json::to_string(&doc)? + "\n")),
        // The row as it is now: another writer may move it on before the
        // message is read, which a conflict implies anyway.
        None => match s.docs().get(collection, id)? {
            Some(now) => bail!(
                "version conflict (current {}): {collection}/{id} is not at version {}; nothing was written",
                now.version,
                expected.unwrap_or_default()
            ),
            None => bail!(
                "version conflict (the document does not exist): {collection}/{id}; nothing was written"
            ),
        },
    }
}

pub fn delete(s: &dyn Store, collection: &str, id: &str) -> Result<Outcome> {
    if !s.docs().delete(collection, id)? {
        bail!("not found: {collection}/{id}");
    }
    Ok(Outcome::ok("true\n".into()))
}

/// Builds a query from `field=value` conditions (values are strings).
pub fn query_of(
    collection: &str,
    conditions: &[Condition],
    order_by: Option<&str>,
    desc: bool,
    limit: usize,
    offset: usize,
) -> Query {
    let mut q = Query::new(collection).limit(limit).offset(offset);
    for c in conditions {
        q = q.filter(c.field.as_str(), c.value.as_str());
    }
    if let Some(order) = order_by {
        q = q.order_by(order);
    }
    if desc {
        q = q.desc();
    }
    q
}

/// Refuses a query on a field its collection does not index, saying how
/// to declare it (`store` as the user named it).
fn check_indexed(s: &dyn Store, q: &Query, store: &Path) -> Result<()> {
    let declared: Vec<String> = s
        .docs()
        .list_collections()?
        .into_iter()
        .find(|c| c.name == q.collection)
        .map(|c| c.indexes)
        .unwrap_or_default();
    let builtin = [
        logstore::ORDER_CREATED_AT,
        logstore::ORDER_UPDATED_AT,
        logstore::ORDER_ID,
    ];
    let order = q.order_by.iter().filter(|f| !builtin.contains(&f.as_str()));
    let missing: Vec<&str> = q
        .filter
        .iter()
        .map(|(field, _)| field)
        .chain(order)
        .filter(|field| !declared.contains(*field))
        .map(String::as_str)
        .collect();
    let Some(&first) = missing.first() else {
        return Ok(());
    };
    let mut fields: Vec<&str> = Vec::new();
    for field in missing {
        if !fields.contains(&field) {
            fields.push(field);
        }
    }
    let store = match crate::pg::url_of(store) {
        Some(url) => crate::pg::redacted(url),
        None => store.display().to_string(),
    };
    bail!(
        "field {first} is not indexed in collection {}; declare it with `logstore ensure {store} {} {}` (which indexes the documents already there too)",
        q.collection,
        q.collection,
        fields.join(" ")
    )
}

pub fn query(s: &dyn Store, q: &Query, store: &Path) -> Result<Outcome> {
    check_indexed(s, q, store)?;
    let rows = s.docs().query(q)?;
    let mut out = String::new();
    for row in rows {
        out += &serde_json::to_string(&row)?;
        out.push('\n');
    }
    Ok(Outcome::ok(out))
}

pub fn count(s: &dyn Store, q: &Query, store: &Path) -> Result<Outcome> {
    check_indexed(s, q, store)?;
    Ok(Outcome::ok(format!("{}\n", s.docs().count(q)?)))
}
