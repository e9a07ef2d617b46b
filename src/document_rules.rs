//! The contract's document rules as pure functions, shared by every driver:
//! how an ensure merges index lists, how versions advance, what a patch
//! does, and the index value of a field (as the reference drivers compute
//! it: JavaScript's string of the value at a dotted path).

use serde_json::{Map, Value};

use crate::{Error, Result};

/// The new index list after declaring `requested` on a collection that has
/// `existing`: existing fields keep their order, new ones are appended once.
pub(crate) fn merge_indexes(existing: &[String], requested: &[&str]) -> Vec<String> {
    let mut merged = existing.to_vec();
    for field in requested {
        if !merged.iter().any(|f| f == field) {
            merged.push((*field).to_string());
        }
    }
    merged
}

/// The version after `version`. Versions never wrap or go back: at
/// `u64::MAX` (which only an import can set) the next write is refused.
pub(crate) fn next_version(version: u64) -> Result<u64> {
    version
        .checked_add(1)
        .ok_or_else(|| version_overflow(version))
}

/// The error for a write past the highest version a driver stores.
pub(crate) fn version_overflow(version: u64) -> Error {
    Error::invalid(format!(
        "version would overflow: the row is at version {version}, the highest there is; \
         delete it (or release the lease) to start over at 1"
    ))
}

/// Shallow merge: top-level keys of `patch` replace those of `data`.
pub(crate) fn apply_patch(data: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        data.insert(key, value);
    }
}

/// Where a dotted path has got to: a value of the body, or what JavaScript
/// reads past an array that is no element of it: its `length`, or its
/// prototype (`arr.__proto__`, an empty array, whose `length` is 0).
enum At<'a> {
    Value(&'a Value),
    Length(usize),
    ArrayPrototype,
}

/// Follows a dotted path into a document as the reference drivers'
/// `valueAtPath` reads a JavaScript value: each segment selects an object
/// key; on an array a canonical decimal segment selects an element and
/// `length` is its length. Every other property JavaScript finds on the
/// way (the prototypes' methods) is not indexable, nor is anything past it.
fn lookup<'a>(data: &'a Map<String, Value>, path: &str) -> Option<At<'a>> {
    let mut segments = path.split('.');
    let mut at = At::Value(data.get(segments.next()?)?);
    for segment in segments {
        at = match at {
            At::Value(Value::Object(map)) => At::Value(map.get(segment)?),
            At::Value(Value::Array(items)) => match segment {
                "length" => At::Length(items.len()),
                "__proto__" => At::ArrayPrototype,
                _ => At::Value(items.get(array_position(segment)?)?),
            },
            At::ArrayPrototype if segment == "length" => At::Length(0),
            _ => return None,
        };
    }
    Some(at)
}

// JavaScript reads `arr["01"]` as a missing property, so only the canonical
// spelling of a position selects an element.
fn array_position(segment: &str) -> Option<usize> {
    let n: usize = segment.parse().ok()?;
    (n.to_string() == segment).then_some(n)
}

/// The index string of a JSON value, or `None` when the value is not
/// indexable (null, object, array).
pub fn index_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => n.as_f64().map(js_number_string),
        Value::Null | Value::Object(_) | Value::Array(_) => None,
    }
}

/// The index string of the value at `path` in `data`, if any.
pub fn index_value(data: &Map<String, Value>, path: &str) -> Option<String> {
    match lookup(data, path)? {
        At::Value(value) => index_string(value),
        At::Length(n) => Some(n.to_string()),
        At::ArrayPrototype => None,
    }
}

/// A number as JavaScript's `String(n)` writes it.
fn js_number_string(n: f64) -> String {
    if n == 0.0 {
        // String(-0) is "0".
        return "0".to_string();
    }
    ryu_js::Buffer::new().format(n).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_format_as_javascript_does() {
        let cases = [
            (json!(1), "1"),
            (json!(1.5), "1.5"),
            (json!(-0.0), "0"),
            (json!(1e21), "1e+21"),
            (json!(1e-7), "1e-7"),
            (json!(123456789012345678_u64), "123456789012345680"),
            (json!(-42), "-42"),
            (json!(0.1), "0.1"),
            (json!(100), "100"),
        ];
        for (value, expected) in cases {
            assert_eq!(index_string(&value).as_deref(), Some(expected), "{value}");
        }
    }

    #[test]
    fn paths_select_keys_and_array_positions() {
        let doc = json!({"a": {"b": [10, {"c": true}]}, "n": null});
        let Value::Object(map) = doc else { panic!() };
        assert_eq!(index_value(&map, "a.b.0").as_deref(), Some("10"));
        assert_eq!(index_value(&map, "a.b.1.c").as_deref(), Some("true"));
        assert_eq!(index_value(&map, "a.b.01"), None);
        assert_eq!(index_value(&map, "a.b"), None);
        assert_eq!(index_value(&map, "n"), None);
        assert_eq!(index_value(&map, "missing"), None);
    }

    #[test]
    fn paths_read_what_javascript_reads_past_an_array() {
        let doc = json!({"a": [1, 2, 3], "e": [], "o": {"length": "own"}, "s": "abc"});
        let Value::Object(map) = doc else { panic!() };
        assert_eq!(index_value(&map, "a.length").as_deref(), Some("3"));
        assert_eq!(index_value(&map, "e.length").as_deref(), Some("0"));
        assert_eq!(
            index_value(&map, "a.__proto__.length").as_deref(),
            Some("0")
        );
        // An object's own key, never a length; a string is no object.
        assert_eq!(index_value(&map, "o.length").as_deref(), Some("own"));
        assert_eq!(index_value(&map, "s.length"), None);
        // A length is a number, so nothing lies past it; methods are not values.
        assert_eq!(index_value(&map, "a.length.x"), None);
        assert_eq!(index_value(&map, "a.__proto__"), None);
        assert_eq!(index_value(&map, "a.__proto__.0"), None);
        assert_eq!(index_value(&map, "a.map"), None);
        assert_eq!(index_value(&map, "o.__proto__.length"), None);
    }

    #[test]
    fn versions_do_not_wrap() {
        assert_eq!(next_version(1).ok(), Some(2));
        assert!(matches!(
            next_version(u64::MAX),
            Err(Error::InvalidInput(m)) if m.contains("version would overflow")
        ));
    }

    #[test]
    fn merge_keeps_order_and_appends_new_fields() {
        let merged = merge_indexes(&["a".into(), "b".into()], &["c", "a", "c"]);
        assert_eq!(merged, vec!["a", "b", "c"]);
    }
}
