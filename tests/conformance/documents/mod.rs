//! The Documents section of the contract, rule by rule: writes, reads by
//! id and the limits here, queries and raw reads in `queries`.

mod queries;

pub use queries::*;

use std::sync::Barrier;

use logstore::MAX_DOCUMENT_DEPTH;
use logstore::{Document, Error, Query};
use serde_json::{json, Map, Value};

use super::{import_at_top_version, Harness, START_MS, SUITE_MAX_DOCUMENT_BYTES};

fn ids(rows: &[logstore::Document]) -> Vec<&str> {
    rows.iter().map(|d| d.id.as_str()).collect()
}

fn query_ids(h: &Harness, q: &Query) -> Vec<String> {
    let rows = h.s().docs().query(q).expect("query succeeds");
    ids(&rows).into_iter().map(str::to_string).collect()
}

fn assert_invalid<T: std::fmt::Debug>(result: logstore::Result<T>, needle: &str) {
    match result {
        Err(Error::InvalidInput(message)) => assert!(
            message.contains(needle),
            "message {message:?} should contain {needle:?}"
        ),
        other => panic!("expected InvalidInput containing {needle:?}, got {other:?}"),
    }
}

pub fn put_new_row_starts_at_version_one(h: &Harness) {
    let d = h.s().docs();
    let row = d.put("c", "x", json!({"a": 1}), None).unwrap().unwrap();
    assert_eq!(row.id, "x");
    assert_eq!(row.collection, "c");
    assert_eq!(row.version, 1);
    assert_eq!(row.created_at, START_MS);
    assert_eq!(row.updated_at, START_MS);
    assert_eq!(Value::Object(row.data.clone()), json!({"a": 1}));
    assert_eq!(d.get("c", "x").unwrap(), Some(row));
}

pub fn upsert_bumps_version_and_keeps_created_at(h: &Harness) {
    let d = h.s().docs();
    d.put("c", "x", json!({"a": 1}), None).unwrap();
    h.clock.advance(500);
    let row = d.put("c", "x", json!({"b": 2}), None).unwrap().unwrap();
    assert_eq!(row.version, 2);
    assert_eq!(row.created_at, START_MS);
    assert_eq!(row.updated_at, START_MS + 500);
    assert_eq!(
        Value::Object(row.data.clone()),
        json!({"b": 2}),
        "upsert replaces the body"
    );
    assert_eq!(d.get("c", "x").unwrap(), Some(row));
}

pub fn cas_put_wins_only_at_the_expected_version(h: &Harness) {
    let d = h.s().docs();
    d.put("c", "x", json!({"v": 1}), None).unwrap();
    assert_eq!(
        d.put("c", "x", json!({"v": "stale"}), Some(2)).unwrap(),
        None
    );
    assert_eq!(
        d.put("c", "x", json!({"v": "stale"}), Some(0)).unwrap(),
        None
    );
    let unchanged = d.get("c", "x").unwrap().unwrap();
    assert_eq!(unchanged.version, 1);
    assert_eq!(unchanged.data["v"], json!(1));
    let row = d.put("c", "x", json!({"v": 2}), Some(1)).unwrap().unwrap();
    assert_eq!(row.version, 2);
    assert_eq!(d.get("c", "x").unwrap().unwrap().data["v"], json!(2));
}

pub fn cas_put_on_a_missing_row_is_none(h: &Harness) {
    let d = h.s().docs();
    assert_eq!(d.put("c", "x", json!({}), Some(1)).unwrap(), None);
    assert_eq!(d.get("c", "x").unwrap(), None);
}

pub fn put_rejects_data_that_is_not_an_object(h: &Harness) {
    let d = h.s().docs();
    d.put("c", "x", json!({"keep": true}), None).unwrap();
    for bad in [json!([1]), json!("s"), json!(1), json!(null), json!(true)] {
        assert_invalid(d.put("c", "x", bad.clone(), None), "JSON object");
        assert_invalid(d.put("c", "y", bad, None), "JSON object");
    }
    assert_eq!(d.get("c", "x").unwrap().unwrap().version, 1);
    assert_eq!(d.get("c", "y").unwrap(), None);
}

pub fn put_keeps_key_order(h: &Harness) {
    let d = h.s().docs();
    let data: Value = serde_json::from_str(r#"{"z":1,"a":2,"m":{"y":1,"b":2}}"#).unwrap();
    d.put("c", "x", data, None).unwrap();
    let row = d.get("c", "x").unwrap().unwrap();
    let text = serde_json::to_string(&row.data).unwrap();
    assert_eq!(text, r#"{"z":1,"a":2,"m":{"y":1,"b":2}}"#);
}

pub fn put_into_an_unensured_collection(h: &Harness) {
    let d = h.s().docs();
    d.put("loose", "x", json!({"owner": "a"}), None).unwrap();
    assert!(d.list_collections().unwrap().is_empty());
    assert_eq!(query_ids(h, &Query::new("loose")), vec!["x"]);
    assert_invalid(
        d.query(&Query::new("loose").filter("owner", "a")),
        "field \"owner\" is not indexed on collection \"loose\"",
    );
}

pub fn ensure_collection_is_idempotent_and_appends_fields(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["a", "b"]).unwrap();
    d.ensure_collection("c", &["a", "b"]).unwrap();
    d.ensure_collection("c", &["c", "a"]).unwrap();
    d.ensure_collection("c", &[]).unwrap();
    let cols = d.list_collections().unwrap();
    assert_eq!(cols.len(), 1);
    assert_eq!(
        cols[0].indexes,
        vec!["a", "b", "c"],
        "existing keep order, new appended, none dropped"
    );
}

pub fn ensure_collection_backfills_existing_documents(h: &Harness) {
    let d = h.s().docs();
    d.put("c", "x", json!({"owner": "a", "kind": "k"}), None)
        .unwrap();
    d.put("c", "y", json!({"owner": "b"}), None).unwrap();
    d.ensure_collection("c", &["owner"]).unwrap();
    assert_eq!(
        query_ids(h, &Query::new("c").filter("owner", "a")),
        vec!["x"]
    );
    d.ensure_collection("c", &["kind"]).unwrap();
    assert_eq!(
        query_ids(h, &Query::new("c").filter("kind", "k")),
        vec!["x"]
    );
    assert_eq!(
        query_ids(h, &Query::new("c").filter("kind", "k").filter("owner", "a")),
        vec!["x"]
    );
    assert_eq!(d.count(&Query::new("c").filter("owner", "b")).unwrap(), 1);
}

pub fn list_collections_orders_by_name_with_counts(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("b", &["f"]).unwrap();
    d.ensure_collection("B", &[]).unwrap();
    d.ensure_collection("a", &[]).unwrap();
    d.put("b", "1", json!({}), None).unwrap();
    d.put("b", "2", json!({}), None).unwrap();
    d.put("a", "1", json!({}), None).unwrap();
    let cols = d.list_collections().unwrap();
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["B", "a", "b"], "byte order");
    assert_eq!(cols[2].doc_count, 2);
    assert_eq!(cols[2].indexes, vec!["f"]);
    assert_eq!(cols[1].doc_count, 1);
    assert_eq!(cols[0].doc_count, 0);
}

pub fn get_missing_is_none(h: &Harness) {
    let d = h.s().docs();
    assert_eq!(d.get("c", "nope").unwrap(), None);
    d.put("c", "x", json!({}), None).unwrap();
    assert_eq!(d.get("other", "x").unwrap(), None);
}

pub fn patch_merges_shallowly_and_stores_null(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["rank"]).unwrap();
    d.put(
        "c",
        "x",
        json!({"a": 1, "rank": "r1", "nested": {"p": 1, "q": 2}}),
        None,
    )
    .unwrap();
    h.clock.advance(10);
    let row = d
        .patch(
            "c",
            "x",
            json!({"rank": "r2", "nested": {"p": 9}, "a": null, "new": true}),
            1,
        )
        .unwrap()
        .unwrap();
    assert_eq!(row.version, 2);
    assert_eq!(row.created_at, START_MS);
    assert_eq!(row.updated_at, START_MS + 10);
    assert_eq!(
        Value::Object(row.data.clone()),
        json!({"a": null, "rank": "r2", "nested": {"p": 9}, "new": true})
    );
    assert_eq!(d.get("c", "x").unwrap(), Some(row));
    assert_eq!(
        query_ids(h, &Query::new("c").filter("rank", "r2")),
        vec!["x"]
    );
    assert!(query_ids(h, &Query::new("c").filter("rank", "r1")).is_empty());
}

pub fn patch_is_compare_and_swap_only(h: &Harness) {
    let d = h.s().docs();
    assert_eq!(d.patch("c", "missing", json!({"a": 1}), 1).unwrap(), None);
    assert_eq!(d.get("c", "missing").unwrap(), None);
    d.put("c", "x", json!({"a": 1}), None).unwrap();
    assert_eq!(d.patch("c", "x", json!({"a": 2}), 2).unwrap(), None);
    assert_eq!(d.get("c", "x").unwrap().unwrap().data["a"], json!(1));
    assert_invalid(d.patch("c", "x", json!([1]), 1), "JSON object");
}

pub fn delete_removes_the_row_and_its_index_entries(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["owner"]).unwrap();
    d.put("c", "x", json!({"owner": "a"}), None).unwrap();
    d.put("c", "y", json!({"owner": "a"}), None).unwrap();
    assert!(d.delete("c", "x").unwrap());
    assert!(!d.delete("c", "x").unwrap());
    assert!(!d.delete("c", "never").unwrap());
    assert_eq!(d.get("c", "x").unwrap(), None);
    assert_eq!(
        query_ids(h, &Query::new("c").filter("owner", "a")),
        vec!["y"]
    );
    assert_eq!(d.count(&Query::new("c").filter("owner", "a")).unwrap(), 1);
    assert_eq!(query_ids(h, &Query::new("c")), vec!["y"]);
    // A re-created row starts over at version 1.
    let row = d
        .put("c", "x", json!({"owner": "b"}), None)
        .unwrap()
        .unwrap();
    assert_eq!(row.version, 1);
}

pub fn bad_names_and_ids_are_rejected(h: &Harness) {
    let d = h.s().docs();
    let long_name = "n".repeat(logstore::MAX_COLLECTION_NAME_BYTES + 1);
    let long_id = "i".repeat(logstore::MAX_ID_BYTES + 1);
    assert_invalid(d.put("", "x", json!({}), None), "collection name");
    assert_invalid(d.put(&long_name, "x", json!({}), None), "collection name");
    assert_invalid(d.put("c", "", json!({}), None), "document id");
    assert_invalid(d.put("c", &long_id, json!({}), None), "document id");
    assert_invalid(d.get("", "x"), "collection name");
    assert_invalid(d.delete("c", ""), "document id");
    assert_invalid(d.patch("c", "", json!({}), 1), "document id");
    assert_invalid(d.ensure_collection("", &[]), "collection name");
    assert_invalid(d.query(&Query::new("")), "collection name");
    // The limits themselves are accepted.
    let name = "n".repeat(logstore::MAX_COLLECTION_NAME_BYTES);
    let id = "i".repeat(logstore::MAX_ID_BYTES);
    d.put(&name, &id, json!({}), None).unwrap();
    assert!(d.get(&name, &id).unwrap().is_some());
    assert!(d.list_collections().unwrap().is_empty());
    assert_eq!(d.count(&Query::new("c")).unwrap(), 0);
}

pub fn oversized_document_is_rejected(h: &Harness) {
    let d = h.s().docs();
    let big = "x".repeat(SUITE_MAX_DOCUMENT_BYTES as usize);
    assert_invalid(d.put("c", "x", json!({ "s": big }), None), "over the limit");
    assert_eq!(d.get("c", "x").unwrap(), None);
    d.put("c", "x", json!({"s": "small"}), None).unwrap();
    assert_invalid(d.patch("c", "x", json!({ "s": big }), 1), "over the limit");
    let row = d.get("c", "x").unwrap().unwrap();
    assert_eq!((row.version, row.data["s"].clone()), (1, json!("small")));
}

/// A value `levels` deep, arrays and objects alternating around a string,
/// built in a loop (the `json!` macro would recurse).
fn nested(levels: usize) -> Value {
    let mut value = json!("leaf");
    for level in 0..levels {
        value = if level % 2 == 0 {
            Value::Array(vec![value])
        } else {
            let mut map = Map::new();
            map.insert("n".into(), value);
            Value::Object(map)
        };
    }
    value
}

/// Drops a value in a loop: serde_json's own drop recurses once per level.
fn take_apart(value: Value) {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// A document body `depth` deep (its own object is the first level), with
/// the nesting under `key`.
fn deep_body(key: &str, depth: usize) -> Value {
    let mut map = Map::new();
    map.insert("k".into(), json!("v"));
    map.insert(key.into(), nested(depth - 1));
    Value::Object(map)
}

pub fn documents_at_the_depth_limit_round_trip(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["k"]).unwrap();
    let body = deep_body("deep", MAX_DOCUMENT_DEPTH);
    let row = d.put("c", "x", body.clone(), None).unwrap().unwrap();
    assert_eq!(Value::Object(row.data.clone()), body);
    assert_eq!(d.get("c", "x").unwrap(), Some(row));
    let row = d.put("c", "x", body.clone(), Some(1)).unwrap().unwrap();
    assert_eq!(row.version, 2);
    let patch = deep_body("other", MAX_DOCUMENT_DEPTH);
    let row = d.patch("c", "x", patch, 2).unwrap().unwrap();
    assert_eq!(row.version, 3);
    assert_eq!(row.data["deep"], body["deep"]);
    assert_eq!(d.get("c", "x").unwrap(), Some(row));
    assert_eq!(query_ids(h, &Query::new("c").filter("k", "v")), vec!["x"]);
}

pub fn documents_deeper_than_the_limit_are_rejected(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["k"]).unwrap();
    let too_deep = MAX_DOCUMENT_DEPTH + 1;
    for depth in [too_deep, 129, 200, 10_000] {
        assert_invalid(
            d.put("c", "x", deep_body("deep", depth), None),
            "MAX_DOCUMENT_DEPTH",
        );
        assert_eq!(d.get("c", "x").unwrap(), None, "depth {depth}");
    }
    assert_eq!(d.count(&Query::new("c")).unwrap(), 0);

    let row = d.put("c", "x", json!({"k": "v"}), None).unwrap().unwrap();
    for depth in [too_deep, 129, 200, 10_000] {
        assert_invalid(
            d.put("c", "x", deep_body("deep", depth), Some(1)),
            "MAX_DOCUMENT_DEPTH",
        );
        assert_invalid(
            d.put("c", "x", deep_body("deep", depth), None),
            "MAX_DOCUMENT_DEPTH",
        );
        assert_invalid(
            d.patch("c", "x", deep_body("deep", depth), 1),
            "MAX_DOCUMENT_DEPTH",
        );
    }
    assert_eq!(d.get("c", "x").unwrap(), Some(row), "nothing was written");
    assert_eq!(query_ids(h, &Query::new("c").filter("k", "v")), vec!["x"]);
}

pub fn imported_documents_deeper_than_the_limit_are_rejected(h: &Harness) {
    let doc = |depth: usize| {
        let Value::Object(data) = deep_body("deep", depth) else {
            unreachable!()
        };
        Document {
            id: "x".into(),
            collection: "c".into(),
            data,
            version: 7,
            created_at: START_MS,
            updated_at: START_MS,
        }
    };
    h.s().docs().ensure_collection("c", &["k"]).unwrap();
    for depth in [MAX_DOCUMENT_DEPTH + 1, 129, 200, 10_000] {
        let deep = doc(depth);
        assert_invalid(h.t().import_document(&deep), "MAX_DOCUMENT_DEPTH");
        take_apart(Value::Object(deep.data));
        assert_eq!(h.s().docs().get("c", "x").unwrap(), None, "depth {depth}");
    }
    let at_limit = doc(MAX_DOCUMENT_DEPTH);
    h.t().import_document(&at_limit).unwrap();
    assert_eq!(h.s().docs().get("c", "x").unwrap(), Some(at_limit));
}

pub fn document_writes_past_the_highest_version_are_refused(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["k"]).unwrap();
    let row = |version: u64| Document {
        id: "x".into(),
        collection: "c".into(),
        data: json!({"k": "v"}).as_object().unwrap().clone(),
        version,
        created_at: START_MS,
        updated_at: START_MS,
    };
    let top = import_at_top_version(|v| h.t().import_document(&row(v)));
    let stored = d.get("c", "x").unwrap().unwrap();
    assert_eq!(stored, row(top));
    h.clock.advance(10);
    let overflow = "version would overflow";
    assert_invalid(d.put("c", "x", json!({"k": "w"}), None), overflow);
    assert_invalid(d.put("c", "x", json!({"k": "w"}), Some(top)), overflow);
    assert_invalid(d.patch("c", "x", json!({"k": "w"}), top), overflow);
    // A stale CAS is still just stale.
    assert_eq!(d.put("c", "x", json!({"k": "w"}), Some(1)).unwrap(), None);
    assert_eq!(d.patch("c", "x", json!({"k": "w"}), 1).unwrap(), None);
    assert_eq!(
        d.get("c", "x").unwrap(),
        Some(stored),
        "nothing was written"
    );
    assert_eq!(query_ids(h, &Query::new("c").filter("k", "v")), vec!["x"]);
    assert!(query_ids(h, &Query::new("c").filter("k", "w")).is_empty());
    // Deleting the row starts it over.
    assert!(d.delete("c", "x").unwrap());
    let fresh = d.put("c", "x", json!({"k": "w"}), None).unwrap().unwrap();
    assert_eq!(fresh.version, 1);
}

pub fn index_path_with_an_empty_segment_is_rejected(h: &Harness) {
    let d = h.s().docs();
    for bad in ["", "a.", ".a", "a..b"] {
        assert_invalid(d.ensure_collection("c", &["ok", bad]), "empty segment");
    }
    assert!(
        d.list_collections().unwrap().is_empty(),
        "nothing was created"
    );
}

pub fn concurrent_cas_puts_have_one_winner(h: &Harness) {
    let d = h.s().docs();
    d.put("c", "x", json!({"winner": null}), None).unwrap();
    let barrier = Barrier::new(8);
    let wins: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    d.put("c", "x", json!({ "winner": t }), Some(1))
                        .unwrap()
                        .is_some()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(wins.iter().filter(|w| **w).count(), 1);
    let row = d.get("c", "x").unwrap().unwrap();
    assert_eq!(row.version, 2);
    let winner = wins.iter().position(|w| *w).unwrap();
    assert_eq!(row.data["winner"], json!(winner));
}

pub fn closed_store_refuses_calls(h: &Harness) {
    let s = h.s();
    s.docs().put("c", "x", json!({}), None).unwrap();
    s.close().unwrap();
    s.close().unwrap();
    let d = s.docs();
    assert!(matches!(d.get("c", "x"), Err(Error::Closed)));
    assert!(matches!(d.get_raw("c", "x"), Err(Error::Closed)));
    assert!(matches!(
        d.put("c", "y", json!({}), None),
        Err(Error::Closed)
    ));
    assert!(matches!(
        d.patch("c", "x", json!({}), 1),
        Err(Error::Closed)
    ));
    assert!(matches!(d.delete("c", "x"), Err(Error::Closed)));
    assert!(matches!(d.ensure_collection("c", &[]), Err(Error::Closed)));
    assert!(matches!(d.query(&Query::new("c")), Err(Error::Closed)));
    assert!(matches!(d.query_raw(&Query::new("c")), Err(Error::Closed)));
    assert!(matches!(d.count(&Query::new("c")), Err(Error::Closed)));
    assert!(matches!(d.list_collections(), Err(Error::Closed)));
}

/// Doubles whose shortest spelling has many digits or lies past 2^64: a
/// JSON parser that is not correctly rounded reads some of them one unit
/// off, so a stored document would come back holding another number.
pub fn numbers_round_trip_exactly(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("nums", &["n"]).unwrap();
    let nums = [
        123_456_789_012_345_680_000.0_f64,
        2f64.powi(70),
        2f64.powi(64),
        1e23,
        8.988_465_674_311_58e307,
        5e-324,
        0.1 + 0.2,
    ];
    for (i, n) in nums.into_iter().enumerate() {
        let id = format!("n{i}");
        d.put("nums", &id, json!({ "n": n }), None)
            .unwrap()
            .unwrap();
        d.patch("nums", &id, json!({ "m": n }), 1).unwrap().unwrap();
        let row = d.get("nums", &id).unwrap().unwrap();
        for field in ["n", "m"] {
            let got = row.data[field].as_f64().unwrap();
            assert_eq!(got.to_bits(), n.to_bits(), "{field} of {n}: got {got}");
        }
        let q = Query::new("nums").filter("n", json!(n));
        assert_eq!(query_ids(h, &q), vec![id.clone()], "query for {n}");
    }
}
