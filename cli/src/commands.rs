//! The inspection and maintenance commands: stats, verify, repair, compact,
//! and single-document get, put, delete, query and count for scripts.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use logstore::{LogStore, Query, Store};
use serde_json::{json, Value};

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
    if out.is_some_and(|out| store::is_sqlite(out) || crate::pg::url_of(out).is_some()) {
        bail!("repair writes a log store; --out must be a directory");
    }
    // The names beside the store need its real path (`.` has no sibling).
    let src_buf = src.canonicalize()?;
    let src = src_buf.as_path();
    // Refuse a store that a running program holds. The lock is held for the
    // salvage and, in place, through the switch.
    let salvage = logstore::Salvage::lock(src)?;
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
    Ok(Outcome {
        stdout,
        problem: !report.lost.is_empty(),
    })
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
        None => Ok(Outcome {
            stdout: String::new(),
            problem: true,
        }),
    }
}

pub fn put(
    s: &dyn Store,
    collection: &str,
    id: &str,
    data: &str,
    expected: Option<u64>,
) -> Result<Outcome> {
    let value: Value = serde_json::from_str(data).context("the document is not JSON")?;
    match s.docs().put(collection, id, value, expected)? {
        Some(doc) => Ok(Outcome::ok(serde_json::to_string(&doc)? + "\n")),
        None => Ok(Outcome {
            stdout: "null\n".into(),
            problem: true,
        }),
    }
}

pub fn delete(s: &dyn Store, collection: &str, id: &str) -> Result<Outcome> {
    let existed = s.docs().delete(collection, id)?;
    Ok(Outcome {
        stdout: format!("{existed}\n"),
        problem: !existed,
    })
}

/// Builds a query from `field=value` conditions (values are strings).
pub fn query_of(
    collection: &str,
    conditions: &[String],
    order_by: Option<&str>,
    desc: bool,
    limit: usize,
    offset: usize,
) -> Result<Query> {
    let mut q = Query::new(collection).limit(limit).offset(offset);
    for condition in conditions {
        let (field, value) = condition
            .split_once('=')
            .ok_or_else(|| anyhow!("--where takes field=value, got {condition:?}"))?;
        q = q.filter(field, value);
    }
    if let Some(order) = order_by {
        q = q.order_by(order);
    }
    if desc {
        q = q.desc();
    }
    Ok(q)
}

pub fn query(s: &dyn Store, q: &Query) -> Result<Outcome> {
    let rows = s.docs().query(q)?;
    let mut out = String::new();
    for row in rows {
        out += &serde_json::to_string(&row)?;
        out.push('\n');
    }
    Ok(Outcome::ok(out))
}

pub fn count(s: &dyn Store, q: &Query) -> Result<Outcome> {
    Ok(Outcome::ok(format!("{}\n", s.docs().count(q)?)))
}
