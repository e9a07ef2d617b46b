//! The Documents section of the contract, rule by rule.

use std::sync::Barrier;

use logstore::MAX_DOCUMENT_DEPTH;
use logstore::{Document, Error, Query, RawDocument};
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

pub fn query_matches_every_filter(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["owner", "kind"]).unwrap();
    d.put("c", "1", json!({"owner": "a", "kind": "x"}), None)
        .unwrap();
    d.put("c", "2", json!({"owner": "a", "kind": "y"}), None)
        .unwrap();
    d.put("c", "3", json!({"owner": "b", "kind": "x"}), None)
        .unwrap();
    d.put("c", "4", json!({"owner": "a"}), None).unwrap();
    assert_eq!(
        query_ids(h, &Query::new("c").filter("owner", "a")),
        vec!["1", "2", "4"]
    );
    assert_eq!(
        query_ids(h, &Query::new("c").filter("owner", "a").filter("kind", "x")),
        vec!["1"]
    );
    assert!(query_ids(h, &Query::new("c").filter("owner", "zzz")).is_empty());
    assert!(query_ids(
        h,
        &Query::new("c").filter("owner", "a").filter("owner", "b")
    )
    .is_empty());
    assert!(query_ids(h, &Query::new("nothing-here")).is_empty());
}

pub fn query_rejects_an_unindexed_field(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["owner"]).unwrap();
    let needle = "field \"kind\" is not indexed on collection \"c\"";
    assert_invalid(d.query(&Query::new("c").filter("kind", "x")), needle);
    assert_invalid(d.count(&Query::new("c").filter("kind", "x")), needle);
}

pub fn query_rejects_null_object_and_array_values(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["owner"]).unwrap();
    for bad in [json!(null), json!({"a": 1}), json!([1])] {
        assert_invalid(
            d.query(&Query::new("c").filter("owner", bad.clone())),
            "owner",
        );
        assert_invalid(d.count(&Query::new("c").filter("owner", bad)), "owner");
    }
}

pub fn query_orders_by_created_at_by_default_with_id_ties(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["owner"]).unwrap();
    for id in ["b", "a", "c"] {
        d.put("c", id, json!({"owner": "o"}), None).unwrap();
    }
    h.clock.advance(1);
    d.put("c", "0", json!({"owner": "o"}), None).unwrap();
    h.clock.advance(1);
    // An update keeps created_at, so the order does not move.
    d.put("c", "a", json!({"owner": "o"}), None).unwrap();
    assert_eq!(query_ids(h, &Query::new("c")), vec!["a", "b", "c", "0"]);
    assert_eq!(
        query_ids(h, &Query::new("c").desc()),
        vec!["0", "c", "b", "a"]
    );
    let filtered = Query::new("c").filter("owner", "o");
    assert_eq!(query_ids(h, &filtered), vec!["a", "b", "c", "0"]);
    assert_eq!(query_ids(h, &filtered.desc()), vec!["0", "c", "b", "a"]);
    assert_eq!(
        query_ids(h, &Query::new("c").order_by("createdAt").desc()),
        vec!["0", "c", "b", "a"]
    );
}

pub fn query_orders_by_updated_at_and_id(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["owner"]).unwrap();
    for id in ["a", "b", "c", "d"] {
        d.put("c", id, json!({"owner": "o"}), None).unwrap();
        h.clock.advance(1);
    }
    d.put("c", "b", json!({"owner": "o"}), None).unwrap();
    h.clock.advance(1);
    d.put("c", "a", json!({"owner": "o"}), None).unwrap();
    assert_eq!(
        query_ids(h, &Query::new("c").order_by("updatedAt")),
        vec!["c", "d", "b", "a"]
    );
    assert_eq!(
        query_ids(
            h,
            &Query::new("c")
                .filter("owner", "o")
                .order_by("updatedAt")
                .desc()
        ),
        vec!["a", "b", "d", "c"]
    );
    assert_eq!(
        query_ids(h, &Query::new("c").order_by("id").desc()),
        vec!["d", "c", "b", "a"]
    );
    assert_eq!(
        query_ids(h, &Query::new("c").filter("owner", "o").order_by("id")),
        vec!["a", "b", "c", "d"]
    );
}

pub fn query_orders_by_index_field_with_missing_lowest(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["rank", "owner"]).unwrap();
    d.put("c", "1", json!({"owner": "o", "rank": "b"}), None)
        .unwrap();
    d.put("c", "2", json!({"owner": "o"}), None).unwrap();
    d.put("c", "3", json!({"owner": "o", "rank": "a"}), None)
        .unwrap();
    d.put("c", "4", json!({"owner": "o", "rank": "b"}), None)
        .unwrap();
    d.put("c", "5", json!({"owner": "o", "rank": null}), None)
        .unwrap();
    d.put("c", "6", json!({"owner": "o", "rank": {"x": 1}}), None)
        .unwrap();
    let asc = vec!["2", "5", "6", "3", "1", "4"];
    assert_eq!(query_ids(h, &Query::new("c").order_by("rank")), asc);
    let desc: Vec<&str> = asc.iter().rev().copied().collect();
    assert_eq!(query_ids(h, &Query::new("c").order_by("rank").desc()), desc);
    assert_eq!(
        query_ids(h, &Query::new("c").filter("owner", "o").order_by("rank")),
        asc
    );
    assert_eq!(
        query_ids(
            h,
            &Query::new("c").filter("rank", "b").order_by("rank").desc()
        ),
        vec!["4", "1"]
    );
}

pub fn query_rejects_an_unindexed_order(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["owner"]).unwrap();
    assert_invalid(
        d.query(&Query::new("c").order_by("rank")),
        "orderBy \"rank\" is not indexed",
    );
    assert_invalid(
        d.query(&Query::new("never").order_by("rank")),
        "orderBy \"rank\" is not indexed",
    );
}

pub fn query_pages_with_limit_and_offset(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["owner"]).unwrap();
    for i in 0..130 {
        d.put("c", &format!("{i:03}"), json!({"owner": "o"}), None)
            .unwrap();
        h.clock.advance(1);
    }
    assert_eq!(query_ids(h, &Query::new("c")).len(), 100, "default limit");
    let page = query_ids(h, &Query::new("c").filter("owner", "o").limit(3).offset(10));
    assert_eq!(page, vec!["010", "011", "012"]);
    let page = query_ids(h, &Query::new("c").order_by("id").desc().limit(2).offset(1));
    assert_eq!(page, vec!["128", "127"]);
    let page = query_ids(
        h,
        &Query::new("c").order_by("updatedAt").limit(2).offset(128),
    );
    assert_eq!(page, vec!["128", "129"]);
    assert!(query_ids(h, &Query::new("c").offset(500)).is_empty());
    assert!(query_ids(h, &Query::new("c").limit(0)).is_empty());
}

pub fn count_ignores_order_limit_and_offset(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["owner", "kind"]).unwrap();
    for i in 0..7 {
        let owner = if i % 2 == 0 { "a" } else { "b" };
        d.put(
            "c",
            &i.to_string(),
            json!({"owner": owner, "kind": "k"}),
            None,
        )
        .unwrap();
    }
    let q = Query::new("c")
        .filter("owner", "a")
        .order_by("id")
        .desc()
        .limit(1)
        .offset(2);
    assert_eq!(d.count(&q).unwrap(), 4);
    assert_eq!(d.count(&Query::new("c").limit(1)).unwrap(), 7);
    assert_eq!(
        d.count(&Query::new("c").filter("owner", "b").filter("kind", "k"))
            .unwrap(),
        3
    );
    assert_eq!(d.count(&Query::new("c").filter("owner", "zz")).unwrap(), 0);
    assert_eq!(d.count(&Query::new("empty")).unwrap(), 0);
}

pub fn index_values_follow_javascript(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["n"]).unwrap();
    let cases = [
        ("int", json!(1), "1"),
        ("frac", json!(1.5), "1.5"),
        ("negzero", json!(-0.0), "0"),
        ("big", json!(1e21), "1e+21"),
        ("small", json!(1e-7), "1e-7"),
        ("true", json!(true), "true"),
        ("str", json!("hello"), "hello"),
    ];
    for (id, value, _) in &cases {
        d.put("c", id, json!({ "n": value }), None).unwrap();
    }
    for (id, value, text) in &cases {
        assert_eq!(
            query_ids(h, &Query::new("c").filter("n", *text)),
            vec![*id],
            "{text}"
        );
        assert_eq!(
            query_ids(h, &Query::new("c").filter("n", value.clone())),
            vec![*id],
            "{value}"
        );
    }
    // -0 as a where value is "0" too, and a boolean matches its string.
    assert_eq!(
        query_ids(h, &Query::new("c").filter("n", -0.0)),
        vec!["negzero"]
    );
    assert_eq!(
        query_ids(h, &Query::new("c").filter("n", "true")),
        vec!["true"]
    );
}

pub fn numbers_compare_as_strings(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["n"]).unwrap();
    d.put("c", "nine", json!({"n": 9}), None).unwrap();
    d.put("c", "ten", json!({"n": 10}), None).unwrap();
    d.put("c", "padded", json!({"n": "09"}), None).unwrap();
    assert_eq!(
        query_ids(h, &Query::new("c").order_by("n")),
        vec!["padded", "ten", "nine"]
    );
}

pub fn nested_and_array_paths_are_indexed(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["meta.kind", "tags.1"]).unwrap();
    d.put(
        "c",
        "x",
        json!({"meta": {"kind": "note"}, "tags": ["a", "b"]}),
        None,
    )
    .unwrap();
    d.put(
        "c",
        "y",
        json!({"meta": {"kind": ["note"]}, "tags": {"1": "b"}}),
        None,
    )
    .unwrap();
    d.put("c", "z", json!({"meta": "note", "tags": ["b"]}), None)
        .unwrap();
    assert_eq!(
        query_ids(h, &Query::new("c").filter("meta.kind", "note")),
        vec!["x"]
    );
    assert_eq!(
        query_ids(h, &Query::new("c").filter("tags.1", "b")),
        vec!["x", "y"]
    );
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

/// A raw row is the parsed row with its body as text: every field equal,
/// and the text parses to the same body with the same key order.
fn assert_raw_matches(raw: &RawDocument, doc: &Document) {
    let data: Map<String, Value> = serde_json::from_str(&raw.data)
        .unwrap_or_else(|e| panic!("raw body {:?} does not parse: {e}", raw.data));
    assert_eq!(data, doc.data, "body of {}", doc.id);
    assert_eq!(
        serde_json::to_string(&data).unwrap(),
        serde_json::to_string(&doc.data).unwrap(),
        "key order of {}",
        doc.id
    );
    let fields = |d: &Document| {
        (
            d.id.clone(),
            d.collection.clone(),
            d.version,
            d.created_at,
            d.updated_at,
        )
    };
    let raw_fields = (
        raw.id.clone(),
        raw.collection.clone(),
        raw.version,
        raw.created_at,
        raw.updated_at,
    );
    assert_eq!(raw_fields, fields(doc));
    assert_eq!(&raw.parse().unwrap(), doc);
}

fn assert_query_raw_matches(h: &Harness, q: &Query) {
    let d = h.s().docs();
    let parsed = d.query(q).expect("query succeeds");
    let raw = d.query_raw(q).expect("raw query succeeds");
    assert_eq!(raw.len(), parsed.len(), "{q:?}");
    for (raw, doc) in raw.iter().zip(&parsed) {
        assert_raw_matches(raw, doc);
    }
}

pub fn raw_reads_match_parsed_reads(h: &Harness) {
    let d = h.s().docs();
    d.ensure_collection("c", &["owner", "rank"]).unwrap();
    for i in 0..30u64 {
        let body = json!({
            "z": i,
            "owner": if i % 3 == 0 { "a" } else { "b" },
            "rank": (i * 7) % 11,
            "text": format!("line \"{i}\"\n\u{e9}\u{1F600}\\"),
            "nested": {"y": [1, 2.5, -3e-7, null, true], "b": {}},
        });
        d.put("c", &format!("d{i:02}"), body, None).unwrap();
        h.clock.advance(1);
    }
    // Later writes: a patch and an upsert, so versions and times differ.
    d.patch("c", "d04", json!({"rank": 99, "extra": "x"}), 1)
        .unwrap()
        .unwrap();
    d.put("c", "d07", json!({"owner": "a"}), None).unwrap();
    for i in 0..30 {
        let id = format!("d{i:02}");
        let doc = d.get("c", &id).unwrap().unwrap();
        let raw = d.get_raw("c", &id).unwrap().unwrap();
        assert_raw_matches(&raw, &doc);
    }
    assert_eq!(d.get_raw("c", "missing").unwrap(), None);
    assert_eq!(d.get_raw("nope", "d00").unwrap(), None);
    assert_query_raw_matches(h, &Query::new("c"));
    assert_query_raw_matches(h, &Query::new("c").filter("owner", "a"));
    assert_query_raw_matches(
        h,
        &Query::new("c")
            .filter("owner", "b")
            .order_by("rank")
            .desc()
            .limit(5)
            .offset(3),
    );
    assert_query_raw_matches(
        h,
        &Query::new("c").order_by("updatedAt").limit(4).offset(26),
    );
    assert_eq!(
        d.query_raw(&Query::new("c").filter("owner", "a").limit(3).offset(1))
            .unwrap()
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        vec!["d03", "d06", "d07"]
    );
    assert!(d
        .query_raw(&Query::new("c").offset(500))
        .unwrap()
        .is_empty());
    assert_invalid(
        d.query_raw(&Query::new("c").filter("text", "x")),
        "field \"text\" is not indexed",
    );
    assert_invalid(d.get_raw("c", ""), "document id");
}
