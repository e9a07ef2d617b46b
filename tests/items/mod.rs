//! What the migration tests share: a whole store as comparable text.

use logstore::{each_item, Item, Transfer};

/// Every item of `s` as text, each blob as its length and the BLAKE3 hash
/// of its bytes, in walk order.
pub fn items(s: &dyn Transfer) -> Vec<String> {
    let mut out = Vec::new();
    each_item(
        s,
        |_| {},
        |item| {
            out.push(match item {
                Item::Collection {
                    name,
                    indexes,
                    created_at,
                } => format!("collection {name} {indexes:?} {created_at}"),
                Item::Document(d) => format!("document {d:?}"),
                Item::Blob { mut meta, bytes } => {
                    let mut buf = Vec::new();
                    bytes.read_to_end(&mut buf).expect("blob bytes");
                    // Which drivers record a content hash is their own affair.
                    meta.content_hash = None;
                    let hash = blake3::hash(&buf);
                    format!("blob {meta:?} {} bytes, blake3 {hash}", buf.len())
                }
                Item::Lease(row) => format!("lease {row:?}"),
            });
            Ok(())
        },
    )
    .expect("walk");
    out
}
