//! Checks of the command line that need no store: each value is parsed
//! while clap reads the arguments, so a malformed one is a usage error
//! (exit 2, with the command's usage) before any store is opened.

use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::CommandFactory;
use serde_json::Value;

/// One `--where FIELD=VALUE` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub field: String,
    pub value: String,
}

/// `FIELD=VALUE`, split at the first `=`; the field is not empty.
pub fn condition(text: &str) -> Result<Condition, String> {
    match text.split_once('=') {
        Some((field, value)) if !field.is_empty() => Ok(Condition {
            field: field.to_string(),
            value: value.to_string(),
        }),
        Some(_) => Err("the field before `=` is empty (FIELD=VALUE)".into()),
        None => Err("expected FIELD=VALUE, with an `=`".into()),
    }
}

/// `text` when it is 1 to `max` bytes long.
fn bounded(text: &str, max: usize) -> Result<String, String> {
    match text.len() {
        0 => Err("must not be empty".into()),
        n if n > max => Err(format!("at most {max} bytes, got {n}")),
        _ => Ok(text.to_string()),
    }
}

/// A collection name: 1 to 256 bytes.
pub fn collection(text: &str) -> Result<String, String> {
    bounded(text, logstore::MAX_COLLECTION_NAME_BYTES)
}

/// A document id: 1 to 1024 bytes.
pub fn doc_id(text: &str) -> Result<String, String> {
    bounded(text, logstore::MAX_ID_BYTES)
}

/// A blob owner: 1 to 1024 bytes.
pub fn owner(text: &str) -> Result<String, String> {
    bounded(text, logstore::MAX_KEY_BYTES)
}

/// An index field: a dotted path of 1 to 256 bytes with no empty segment.
pub fn index_field(text: &str) -> Result<String, String> {
    let path = bounded(text, logstore::MAX_INDEX_PATH_BYTES)?;
    if path.split('.').any(str::is_empty) {
        return Err("a dotted path with no empty segment expected (meta.kind)".into());
    }
    Ok(path)
}

/// The timestamp order fields as the tool prints them (`created_at`,
/// `updated_at`, as in every row it prints), or the contract's spelling
/// (`createdAt`, `updatedAt`), as the contract names them; any other name
/// (`id`, an index field) as it is.
pub fn order_by(text: &str) -> Result<String, String> {
    Ok(match text {
        "" => return Err("an empty field name".into()),
        "created_at" | "createdAt" => logstore::ORDER_CREATED_AT.to_string(),
        "updated_at" | "updatedAt" => logstore::ORDER_UPDATED_AT.to_string(),
        other => other.to_string(),
    })
}

/// A document: the text of a JSON object.
pub fn document(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err("a document is a JSON object, `{...}`".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// A count of at least 1 (writer threads, a page of blobs).
pub fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("at least 1 expected".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// The longest time an operation may be timed for: a day.
const MAX_SECONDS: f64 = 86_400.0;

/// Seconds per operation: more than 0, at most a day.
pub fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= MAX_SECONDS => Ok(s),
        Ok(_) => Err(format!(
            "more than 0 and at most {MAX_SECONDS} seconds expected"
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// A PostgreSQL URL.
pub fn pg_url(text: &str) -> Result<String, String> {
    if crate::pg::url_of(std::path::Path::new(text)).is_some() {
        Ok(text.to_string())
    } else {
        Err("expected a postgres:// or postgresql:// URL".into())
    }
}

/// A directory for a log store: neither a `.db` file nor a URL.
pub fn directory(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if crate::store::is_sqlite(&path) || crate::pg::url_of(&path).is_some() {
        return Err("a directory is expected (a log store), not an SQLite file or a URL".into());
    }
    Ok(path)
}

/// Ends the process as clap does for a malformed command line: the
/// message and the usage on stderr, exit code 2.
pub fn usage(kind: ErrorKind, message: &str) -> ! {
    crate::Cli::command().error(kind, message).exit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_split_at_the_first_equals_sign() {
        let c = condition("meta.kind=a=b").unwrap();
        assert_eq!((c.field.as_str(), c.value.as_str()), ("meta.kind", "a=b"));
        assert_eq!(condition("owner=").unwrap().value, "");
        assert!(condition("owner").is_err());
        assert!(condition("=ana").is_err());
    }

    #[test]
    fn both_spellings_of_the_timestamps_order_alike() {
        for (given, meant) in [
            ("created_at", "createdAt"),
            ("createdAt", "createdAt"),
            ("updated_at", "updatedAt"),
            ("updatedAt", "updatedAt"),
            ("rank", "rank"),
        ] {
            assert_eq!(order_by(given).unwrap(), meant);
        }
    }

    #[test]
    fn numbers_out_of_range_are_refused() {
        for bad in ["0", "-1", "nan", "inf", "1e30"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(seconds("0.01").unwrap(), 0.01);
        assert!(at_least_one("0").is_err());
        assert_eq!(at_least_one("3"), Ok(3));
        assert!(document("[1]").is_err());
        assert!(document("{").is_err());
        assert!(directory("x.db").is_err());
        assert!(collection("").is_err());
        assert!(doc_id(&"x".repeat(logstore::MAX_ID_BYTES + 1)).is_err());
        for bad in ["", "meta.", ".kind", "a..b"] {
            assert!(index_field(bad).is_err(), "{bad:?}");
        }
        assert_eq!(index_field("meta.kind").unwrap(), "meta.kind");
    }
}
