//! Input rules shared by every driver.
//! The limits they enforce are public in [`crate::limits`].
//!
//! Each driver calls these before it touches storage, so bad input gets the
//! same typed error everywhere and changes nothing.

use serde_json::{Map, Value};

use crate::contract::{OrderDir, Query};
use crate::{Error, Result};

pub(crate) use crate::limits::*;

pub(crate) fn collection_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("a collection name must not be empty"));
    }
    if name.len() > MAX_COLLECTION_NAME_BYTES {
        return Err(Error::invalid(format!(
            "a collection name is at most {MAX_COLLECTION_NAME_BYTES} bytes, got {}",
            name.len()
        )));
    }
    Ok(())
}

pub(crate) fn doc_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid("a document id must not be empty"));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(Error::invalid(format!(
            "a document id is at most {MAX_ID_BYTES} bytes, got {}",
            id.len()
        )));
    }
    Ok(())
}

pub(crate) fn collection_and_id(collection: &str, id: &str) -> Result<()> {
    collection_name(collection)?;
    doc_id(id)
}

fn bounded(what: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(format!("{what} must not be empty")));
    }
    if value.len() > max {
        return Err(Error::invalid(format!(
            "{what} is at most {max} bytes, got {}",
            value.len()
        )));
    }
    Ok(())
}

/// A blob id names a file in the SQLite layout, so only characters that
/// cannot form a path are accepted.
pub(crate) fn blob_id(id: &str) -> Result<()> {
    bounded("a blob id", id, MAX_BLOB_ID_BYTES)?;
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::invalid(format!(
            "blob id \"{id}\" may only hold ASCII letters, digits, '-' and '_'"
        )));
    }
    Ok(())
}

/// The mime type and owner of a blob put, defaults applied.
pub(crate) fn blob_put(opts: &crate::contract::BlobPut) -> Result<(String, Option<String>)> {
    let mime = opts
        .mime
        .clone()
        .unwrap_or_else(|| crate::contract::DEFAULT_MIME.to_string());
    bounded("a blob mime type", &mime, MAX_MIME_BYTES)?;
    if let Some(owner) = &opts.owner_id {
        bounded("a blob owner id", owner, MAX_KEY_BYTES)?;
    }
    Ok((mime, opts.owner_id.clone()))
}

/// The blob an import describes, checked as its id and a put of it would
/// be: its mime type and owner.
pub(crate) fn blob_import(meta: &crate::contract::BlobMeta) -> Result<(String, Option<String>)> {
    blob_id(&meta.id)?;
    blob_put(&crate::contract::BlobPut {
        mime: Some(meta.mime.clone()),
        owner_id: meta.owner_id.clone(),
    })
}

/// The limit and offset of a blob list, defaults applied.
pub(crate) fn blob_page(list: &crate::contract::BlobList) -> (usize, usize) {
    (
        list.limit.unwrap_or(DEFAULT_BLOB_LIMIT),
        list.offset.unwrap_or(0),
    )
}

pub(crate) fn lease_key(key: &str) -> Result<()> {
    bounded("a lease key", key, MAX_KEY_BYTES)
}

pub(crate) fn lease_owner(owner: &str) -> Result<()> {
    bounded("a lease owner", owner, MAX_KEY_BYTES)
}

/// Checks a list of index paths for `ensure_collection`.
pub(crate) fn index_paths(collection: &str, indexes: &[&str]) -> Result<()> {
    collection_name(collection)?;
    if indexes.len() > MAX_INDEXES {
        return Err(Error::invalid(format!(
            "a collection declares at most {MAX_INDEXES} indexes, got {}",
            indexes.len()
        )));
    }
    for path in indexes {
        if path.len() > MAX_INDEX_PATH_BYTES {
            return Err(Error::invalid(format!(
                "an index path is at most {MAX_INDEX_PATH_BYTES} bytes, got {}",
                path.len()
            )));
        }
        if path.split('.').any(str::is_empty) {
            return Err(Error::invalid(format!(
                "index path \"{path}\" has an empty segment"
            )));
        }
    }
    Ok(())
}

/// Takes a document body: a JSON object no deeper than
/// [`MAX_DOCUMENT_DEPTH`] whose JSON text fits the limit. Returns the object
/// and its JSON text.
pub(crate) fn document_body(data: Value, max_bytes: u64) -> Result<(Map<String, Value>, Vec<u8>)> {
    let Value::Object(map) = data else {
        return Err(Error::invalid(format!(
            "document data must be a JSON object, got {}",
            json_kind(&data)
        )));
    };
    // Before encoding: serde_json's serializer recurses once per level.
    if let Err(e) = document_depth("the document", &map) {
        drop_flat(Value::Object(map));
        return Err(e);
    }
    let text = encode_body(&map)?;
    if text.len() as u64 > max_bytes {
        return Err(Error::invalid(format!(
            "the document is {} bytes of JSON, over the limit of {max_bytes} bytes",
            text.len()
        )));
    }
    Ok((map, text))
}

/// The JSON text of a document body (key order kept).
pub(crate) fn encode_body(map: &Map<String, Value>) -> Result<Vec<u8>> {
    serde_json::to_vec(map).map_err(|e| Error::invalid(format!("document is not valid JSON: {e}")))
}

/// Takes a patch: it must be a JSON object no deeper than
/// [`MAX_DOCUMENT_DEPTH`] (the patched document is checked again as a body).
pub(crate) fn patch_body(patch: Value) -> Result<Map<String, Value>> {
    match patch {
        Value::Object(map) => match document_depth("the patch", &map) {
            Ok(()) => Ok(map),
            Err(e) => {
                drop_flat(Value::Object(map));
                Err(e)
            }
        },
        other => Err(Error::invalid(format!(
            "a patch must be a JSON object, got {}",
            json_kind(&other)
        ))),
    }
}

/// Checks that a body (`what` names it in the message) nests objects and
/// arrays at most [`MAX_DOCUMENT_DEPTH`] levels deep, its own object being
/// the first. The walk keeps its own stack on the heap, so a hostile depth
/// cannot overflow the call stack.
pub(crate) fn document_depth(what: &str, data: &Map<String, Value>) -> Result<()> {
    fn nests(v: &Value) -> bool {
        matches!(v, Value::Array(_) | Value::Object(_))
    }
    // Containers still to visit, with the level each sits at.
    let mut stack: Vec<(&Value, usize)> =
        data.values().filter(|v| nests(v)).map(|v| (v, 2)).collect();
    while let Some((value, level)) = stack.pop() {
        if level > MAX_DOCUMENT_DEPTH {
            return Err(Error::invalid(format!(
                "{what} nests objects and arrays more than {MAX_DOCUMENT_DEPTH} levels deep \
                 (MAX_DOCUMENT_DEPTH)"
            )));
        }
        let next = level + 1;
        match value {
            Value::Array(items) => {
                stack.extend(items.iter().filter(|v| nests(v)).map(|v| (v, next)));
            }
            Value::Object(map) => {
                stack.extend(map.values().filter(|v| nests(v)).map(|v| (v, next)));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Drops a value without recursing. serde_json's own drop recurses once per
/// level, so a rejected hostile nesting is taken apart here instead.
fn drop_flat(value: Value) {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What a query orders by, once checked against the collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OrderKey {
    CreatedAt,
    UpdatedAt,
    Id,
    /// Position of the field in the collection's index list, and its path.
    Field(usize, String),
}

/// A query whose fields were checked against the collection's indexes.
#[derive(Debug, Clone)]
pub(crate) struct CheckedQuery {
    /// (position in the index list, field path, index string).
    pub filters: Vec<(usize, String, String)>,
    pub order: OrderKey,
    pub desc: bool,
    pub limit: usize,
    pub offset: usize,
}

/// Checks a query against the indexes of its collection (`&[]` when the
/// collection was never ensured).
pub(crate) fn query(q: &Query, indexes: &[String]) -> Result<CheckedQuery> {
    collection_name(&q.collection)?;
    let position = |field: &str| indexes.iter().position(|f| f == field);
    let mut filters = Vec::with_capacity(q.filter.len());
    for (field, value) in &q.filter {
        let Some(pos) = position(field) else {
            return Err(Error::invalid(format!(
                "field \"{field}\" is not indexed on collection \"{}\"",
                q.collection
            )));
        };
        let Some(text) = crate::document_rules::index_string(value) else {
            return Err(Error::invalid(format!(
                "the where value for field \"{field}\" is {}; it must be a string, number or boolean",
                json_kind(value)
            )));
        };
        filters.push((pos, field.clone(), text));
    }
    let order = match q.order_by.as_deref() {
        None | Some(ORDER_CREATED_AT) => OrderKey::CreatedAt,
        Some(ORDER_UPDATED_AT) => OrderKey::UpdatedAt,
        Some(ORDER_ID) => OrderKey::Id,
        Some(field) => match position(field) {
            Some(pos) => OrderKey::Field(pos, field.to_string()),
            None => {
                return Err(Error::invalid(format!(
                    "orderBy \"{field}\" is not indexed on collection \"{}\"",
                    q.collection
                )))
            }
        },
    };
    Ok(CheckedQuery {
        filters,
        order,
        desc: q.order_dir == OrderDir::Desc,
        limit: q.limit,
        offset: q.offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A value `levels` deep, arrays and objects alternating, built in a loop.
    fn nested(levels: usize) -> Value {
        let mut value = json!(1);
        for level in 0..levels {
            value = if level % 2 == 0 {
                Value::Array(vec![value])
            } else {
                Value::Object(Map::from_iter([("n".to_string(), value)]))
            };
        }
        value
    }

    fn body(inner: Value) -> Map<String, Value> {
        Map::from_iter([("s".to_string(), json!("flat")), ("a".to_string(), inner)])
    }

    #[test]
    fn depth_counts_objects_and_arrays_from_the_body() {
        assert!(document_depth("d", &Map::new()).is_ok());
        assert!(document_depth("d", &body(json!(1))).is_ok());
        assert!(document_depth("d", &body(nested(MAX_DOCUMENT_DEPTH - 1))).is_ok());
        assert!(document_depth("d", &body(nested(MAX_DOCUMENT_DEPTH))).is_err());
        let wide = body(Value::Array(vec![
            nested(3),
            nested(MAX_DOCUMENT_DEPTH),
            json!(2),
        ]));
        assert!(document_depth("d", &wide).is_err(), "any branch counts");
    }

    #[test]
    fn a_hostile_depth_is_refused_without_recursing() {
        // A recursive walk, serializer or drop would overflow the test
        // thread's stack at this depth.
        let deep = || Value::Object(body(nested(1_000_000)));
        let refused = |r: Result<()>| matches!(r, Err(Error::InvalidInput(m)) if m.contains("MAX_DOCUMENT_DEPTH"));
        assert!(refused(document_body(deep(), u64::MAX).map(|_| ())));
        assert!(refused(patch_body(deep()).map(|_| ())));
    }
}
