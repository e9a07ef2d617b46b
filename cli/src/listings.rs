//! Declaring indexes and listing what a store holds: `ensure`,
//! `collections`, `blobs` and `leases`.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use logstore::{BlobList, CollectionInfo, LeaseRow, Query, Transfer};
use serde_json::json;

use crate::commands::Outcome;

/// `n` and the noun, plural unless `n` is 1.
fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The index fields as a list for a line of text.
fn index_list(indexes: &[String]) -> String {
    if indexes.is_empty() {
        "no indexes".into()
    } else {
        format!("indexes {}", indexes.join(", "))
    }
}

fn collection_info(s: &dyn Transfer, name: &str) -> Result<Option<CollectionInfo>> {
    Ok(s.docs()
        .list_collections()?
        .into_iter()
        .find(|c| c.name == name))
}

/// Declares `fields` as indexes of `collection` (the contract's
/// `ensureCollection`: the collection is made if missing, new fields are
/// appended and the documents already stored are indexed by them).
pub fn ensure(s: &dyn Transfer, collection: &str, fields: &[String]) -> Result<Outcome> {
    let before = collection_info(s, collection)?;
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    s.docs()
        .ensure_collection(collection, &fields)
        .with_context(|| format!("declaring the indexes of {collection}"))?;
    let after = collection_info(s, collection)?
        .with_context(|| format!("{collection} is not listed after it was declared"))?;
    let declared = before
        .as_ref()
        .map(|b| b.indexes.clone())
        .unwrap_or_default();
    let mut added: Vec<&str> = Vec::new();
    for &field in &fields {
        if !declared.iter().any(|d| d == field) && !added.contains(&field) {
            added.push(field);
        }
    }
    let docs = counted(after.doc_count, "document");
    let line = match (before.is_some(), added.is_empty()) {
        (_, false) => format!(
            "{collection}: declared {} {} ({docs} indexed); {}",
            if added.len() == 1 { "index" } else { "indexes" },
            added.join(", "),
            index_list(&after.indexes)
        ),
        (false, true) => format!(
            "{collection}: declared the collection ({docs}); {}",
            index_list(&after.indexes)
        ),
        (true, true) => format!(
            "{collection}: nothing new to declare ({docs}); {}",
            index_list(&after.indexes)
        ),
    };
    Ok(Outcome {
        stdout: line + "\n",
        problem: false,
    })
}

/// Every collection, declared or only holding documents, with its count
/// and indexes, by name.
pub fn collections(s: &dyn Transfer, as_json: bool) -> Result<Outcome> {
    // (name, documents, indexes, declared)
    let mut rows: Vec<(String, u64, Vec<String>, bool)> = s
        .docs()
        .list_collections()?
        .into_iter()
        .map(|c| (c.name, c.doc_count, c.indexes, true))
        .collect();
    for name in s.unensured_collections()? {
        let n = s
            .docs()
            .count(&Query::new(name.as_str()).limit(usize::MAX))?;
        rows.push((name, n, Vec::new(), false));
    }
    rows.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    if as_json {
        let list: Vec<_> = rows
            .iter()
            .map(|(name, n, indexes, declared)| {
                json!({"name": name, "documents": n, "indexes": indexes, "declared": declared})
            })
            .collect();
        return Ok(Outcome {
            stdout: serde_json::to_string_pretty(&list)? + "\n",
            problem: false,
        });
    }
    let mut out = String::new();
    if rows.is_empty() {
        out += "no collections\n";
    }
    for (name, n, indexes, declared) in &rows {
        let docs = counted(*n, "document");
        out += &if *declared {
            format!("{name}: {docs}; {}\n", index_list(indexes))
        } else {
            format!(
                "{name}: {docs}; never declared, no indexes (`logstore ensure` declares them)\n"
            )
        };
    }
    Ok(Outcome {
        stdout: out,
        problem: false,
    })
}

/// A page of blobs, newest first, optionally of one owner.
pub fn blobs(
    s: &dyn Transfer,
    owner: Option<String>,
    limit: usize,
    offset: usize,
    as_json: bool,
) -> Result<Outcome> {
    // One more than asked, to tell whether more follow.
    let mut page = s.blobs().list(&BlobList {
        owner_id: owner.clone(),
        limit: Some(limit.saturating_add(1)),
        offset: Some(offset),
    })?;
    let more = page.len() > limit;
    page.truncate(limit);
    if as_json {
        return Ok(Outcome {
            stdout: serde_json::to_string_pretty(&page)? + "\n",
            problem: false,
        });
    }
    let mut out = String::new();
    if page.is_empty() {
        out += &match (&owner, offset) {
            (Some(owner), 0) => format!("no blobs owned by {owner}\n"),
            (None, 0) => "no blobs\n".into(),
            _ => format!("no blobs past the first {offset}\n"),
        };
    }
    for b in &page {
        let owner = b
            .owner_id
            .as_deref()
            .map_or_else(|| "no owner".to_string(), |o| format!("owner {o}"));
        out += &format!(
            "{}  {}  {}  {owner}  created {}\n",
            b.id,
            counted(b.size, "byte"),
            b.mime,
            utc(b.created_at)
        );
    }
    if more {
        out += &format!(
            "more blobs follow: --offset {}\n",
            offset.saturating_add(limit)
        );
    }
    Ok(Outcome {
        stdout: out,
        problem: false,
    })
}

/// Every lease row, by key, expired ones marked (a lease is expired once
/// its expiry is in the past).
pub fn leases(s: &dyn Transfer, as_json: bool) -> Result<Outcome> {
    let rows = s.all_leases()?;
    let now = now_ms();
    if as_json {
        let mut list = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut v = serde_json::to_value(r)?;
            v["expired"] = json!(r.expires_at < now);
            list.push(v);
        }
        return Ok(Outcome {
            stdout: serde_json::to_string_pretty(&list)? + "\n",
            problem: false,
        });
    }
    let mut out = String::new();
    if rows.is_empty() {
        out += "no leases\n";
    }
    for r in &rows {
        out += &lease_line(r, now);
    }
    Ok(Outcome {
        stdout: out,
        problem: false,
    })
}

fn lease_line(r: &LeaseRow, now: i64) -> String {
    let when = utc(r.expires_at);
    let left = r.expires_at.saturating_sub(now);
    if left < 0 {
        format!(
            "{}  owner {}  expired {when} ({} ago)\n",
            r.key,
            r.owner,
            span(left.unsigned_abs())
        )
    } else {
        format!(
            "{}  owner {}  expires {when} (in {})\n",
            r.key,
            r.owner,
            span(left.unsigned_abs())
        )
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A length of time in its largest whole unit.
fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms} ms"),
        1..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// Milliseconds since the Unix epoch as a UTC time, to the second.
fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(-1000), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn leases_say_whether_they_expired() {
        let row = |expires_at| LeaseRow {
            key: "k".into(),
            owner: "o".into(),
            expires_at,
            version: 1,
            created_at: 0,
            updated_at: 0,
        };
        assert!(
            lease_line(&row(1_000), 61_000).contains("expired 1970-01-01 00:00:01 UTC (60 s ago)")
        );
        assert!(
            lease_line(&row(7_201_000), 1_000).contains("expires 1970-01-01 02:00:01 UTC (in 2 h)")
        );
    }
}
