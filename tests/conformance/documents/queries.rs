//! The Documents section of the contract, continued: filters, orders,
//! paging and counts of queries, how index values compare, and raw reads
//! (by id and by query) against parsed ones.

use logstore::{Document, Query, RawDocument};
use serde_json::{json, Map, Value};

use super::{assert_invalid, query_ids};
use crate::conformance::Harness;

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

/// An index path reads what JavaScript reads: `length` on an array is its
/// length (on a put and on a backfill), an object's own `length` key is
/// itself, and a string has none.
pub fn array_length_paths_are_indexed(h: &Harness) {
    let d = h.s().docs();
    d.put("c", "early", json!({"tags": [1, 2]}), None).unwrap();
    d.ensure_collection("c", &["tags.length"]).unwrap();
    d.put("c", "three", json!({"tags": ["a", "b", "c"]}), None)
        .unwrap();
    d.put("c", "empty", json!({"tags": []}), None).unwrap();
    d.put("c", "own", json!({"tags": {"length": 2}}), None)
        .unwrap();
    d.put("c", "text", json!({"tags": "ab"}), None).unwrap();
    assert_eq!(
        query_ids(h, &Query::new("c").filter("tags.length", 2)),
        vec!["early", "own"]
    );
    assert_eq!(
        query_ids(h, &Query::new("c").filter("tags.length", "0")),
        vec!["empty"]
    );
    assert_eq!(
        query_ids(h, &Query::new("c").order_by("tags.length")),
        vec!["text", "empty", "early", "own", "three"]
    );
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
