//! Rows as the JSON text the TypeScript layer parses: the reference
//! package's field names (`createdAt`, `ownerId`, ...) and its key order, so
//! `JSON.parse` yields objects shaped exactly like the reference drivers'.
//!
//! Rows that reads return carry the document body as the engine stored it
//! (`RawDocument`): its text is spliced into the row unparsed, so a get or
//! a query never parses and re-serializes a body in Rust; JavaScript's
//! `JSON.parse` is the one parse.

use std::fmt::Write;

use logstore::{Acquire, BlobMeta, CollectionInfo, Document, LeaseRow, RawDocument};
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DocRow<'a> {
    id: &'a str,
    collection: &'a str,
    data: &'a Map<String, Value>,
    version: u64,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetaRow<'a> {
    id: &'a str,
    mime: &'a str,
    size: u64,
    owner_id: Option<&'a str>,
    created_at: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LeaseJs<'a> {
    key: &'a str,
    owner: &'a str,
    expires_at: i64,
    version: u64,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize)]
#[serde(untagged)]
enum AcquireJs<'a> {
    Won {
        ok: bool,
        lease: LeaseJs<'a>,
    },
    Held {
        ok: bool,
        owner: &'a str,
        #[serde(rename = "expiresAt")]
        expires_at: i64,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CollectionJs<'a> {
    name: &'a str,
    indexes: &'a [String],
    doc_count: u64,
}

fn text(value: &impl Serialize) -> String {
    // Serializing these structs cannot fail: every map key is a string and
    // every number is an integer.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

fn doc_row(d: &Document) -> DocRow<'_> {
    DocRow {
        id: &d.id,
        collection: &d.collection,
        data: &d.data,
        version: d.version,
        created_at: d.created_at,
        updated_at: d.updated_at,
    }
}

fn meta_row(m: &BlobMeta) -> MetaRow<'_> {
    MetaRow {
        id: &m.id,
        mime: &m.mime,
        size: m.size,
        owner_id: m.owner_id.as_deref(),
        created_at: m.created_at,
    }
}

fn lease_row(l: &LeaseRow) -> LeaseJs<'_> {
    LeaseJs {
        key: &l.key,
        owner: &l.owner,
        expires_at: l.expires_at,
        version: l.version,
        created_at: l.created_at,
        updated_at: l.updated_at,
    }
}

pub fn document(d: &Document) -> String {
    text(&doc_row(d))
}

/// Appends the row of `d` to `out`, the stored body spliced in as it is.
fn push_raw_document(out: &mut String, d: &RawDocument) {
    out.push_str("{\"id\":");
    out.push_str(&text(&d.id));
    out.push_str(",\"collection\":");
    out.push_str(&text(&d.collection));
    out.push_str(",\"data\":");
    out.push_str(&d.data);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        ",\"version\":{},\"createdAt\":{},\"updatedAt\":{}}}",
        d.version, d.created_at, d.updated_at
    );
}

/// The row of a read, as `document` writes a parsed one.
pub fn raw_document(d: &RawDocument) -> String {
    let mut out = String::with_capacity(d.data.len() + 128);
    push_raw_document(&mut out, d);
    out
}

/// The rows of a query, as a JSON array.
pub fn raw_documents(ds: &[RawDocument]) -> String {
    let bytes: usize = ds.iter().map(|d| d.data.len() + 128).sum();
    let mut out = String::with_capacity(bytes + 2);
    out.push('[');
    for (i, d) in ds.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_raw_document(&mut out, d);
    }
    out.push(']');
    out
}

pub fn blob_meta(m: &BlobMeta) -> String {
    text(&meta_row(m))
}

pub fn blob_metas(ms: &[BlobMeta]) -> String {
    text(&ms.iter().map(meta_row).collect::<Vec<_>>())
}

pub fn lease(l: &LeaseRow) -> String {
    text(&lease_row(l))
}

pub fn acquire(a: &Acquire) -> String {
    text(&match a {
        Acquire::Acquired(l) => AcquireJs::Won {
            ok: true,
            lease: lease_row(l),
        },
        Acquire::Held { owner, expires_at } => AcquireJs::Held {
            ok: false,
            owner,
            expires_at: *expires_at,
        },
    })
}

pub fn collections(cs: &[CollectionInfo]) -> String {
    text(
        &cs.iter()
            .map(|c| CollectionJs {
                name: &c.name,
                indexes: &c.indexes,
                doc_count: c.doc_count,
            })
            .collect::<Vec<_>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A raw row is the same JSON as the parsed row it stands for: the same
    /// fields, names, key order and escapes.
    #[test]
    fn raw_rows_read_as_the_parsed_rows() {
        let body = json!({"z": 1, "a": "quote \" slash \\ é 😀\n", "m": {"y": [1.5, null]}});
        let Value::Object(data) = body.clone() else {
            unreachable!()
        };
        let doc = Document {
            id: "i\"d".into(),
            collection: "c\\ol".into(),
            data,
            version: 9_007_199_254_740_991,
            created_at: -5,
            updated_at: 1_700_000_000_000,
        };
        let raw = RawDocument {
            id: doc.id.clone(),
            collection: doc.collection.clone(),
            data: serde_json::to_string(&body).unwrap(),
            version: doc.version,
            created_at: doc.created_at,
            updated_at: doc.updated_at,
        };
        assert_eq!(raw_document(&raw), document(&doc));
        let two = [raw.clone(), raw];
        assert_eq!(raw_documents(&two), text(&[doc_row(&doc), doc_row(&doc)]));
        assert_eq!(raw_documents(&[]), "[]");
    }
}
