//! Rows as the JSON text the TypeScript layer parses: the reference
//! package's field names (`createdAt`, `ownerId`, ...) and its key order, so
//! `JSON.parse` yields objects shaped exactly like the reference drivers'.

use logstore::{Acquire, BlobMeta, CollectionInfo, Document, LeaseRow};
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

pub fn documents(ds: &[Document]) -> String {
    text(&ds.iter().map(doc_row).collect::<Vec<_>>())
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
