//! Races between separate stores on a server whose default transaction
//! isolation is not READ COMMITTED (SERIALIZABLE, REPEATABLE READ: set here
//! through the URL's options, as `postgresql.conf`, `ALTER DATABASE` or
//! `ALTER ROLE` would set it). The driver pins READ COMMITTED, so a lost
//! race is still `Ok(None)` or `Held`, never SQLSTATE 40001.
#![cfg(feature = "postgres")]

mod pg;

use logstore::{Acquire, Options, PgStore, Store};
use serde_json::json;

const THREADS: usize = 8;
const ROUNDS: usize = 20;

/// What a connection made with `url` reports as its default isolation,
/// asked on a plain client: the setting the stores start from.
fn server_default(url: &str) -> String {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    client
        .query_one("SHOW default_transaction_isolation", &[])
        .expect("show")
        .get(0)
}

/// `THREADS` stores race, round after round, a CAS put, a patch, an
/// unconditional put, an acquire of a new key and a takeover of an expired
/// lease: each CAS and claim has exactly one winner, and no call fails.
fn races_have_one_winner_and_no_error(level: &str) {
    let Some(url) = pg::url_with_default_isolation(level) else {
        return;
    };
    assert_eq!(server_default(&url), level, "the URL sets the default");
    let schema = pg::fresh_schema();
    // One store per thread, as separate processes would race.
    let stores: Vec<PgStore> = (0..THREADS)
        .map(|_| PgStore::open_in_schema(&url, &schema, Options::default()).expect("open"))
        .collect();
    let docs = stores[0].docs();
    docs.ensure_collection("c", &["round"]).expect("ensure");
    for round in 0..ROUNDS {
        let base = docs
            .put("c", "race", json!({ "round": round }), None)
            .expect("put")
            .expect("an upsert writes");

        let cas = pg::race(THREADS, |t| {
            let body = json!({ "round": round, "winner": t });
            stores[t].docs().put("c", "race", body, Some(base.version))
        });
        let won = cas.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
        let lost = cas.iter().filter(|r| matches!(r, Ok(None))).count();
        assert_eq!((won, lost), (1, THREADS - 1), "round {round}, CAS: {cas:?}");

        let current = base.version + 1;
        let patches = pg::race(THREADS, |t| {
            stores[t]
                .docs()
                .patch("c", "race", json!({ "patched": t }), current)
        });
        let won = patches.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
        let lost = patches.iter().filter(|r| matches!(r, Ok(None))).count();
        assert_eq!(
            (won, lost),
            (1, THREADS - 1),
            "round {round}, patch: {patches:?}"
        );

        // Unconditional puts all write, each at a version of its own, after
        // the patch's.
        let patched = current + 1;
        let upserts = pg::race(THREADS, |t| {
            stores[t]
                .docs()
                .put("c", "race", json!({ "upsert": t }), None)
        });
        let mut versions: Vec<u64> = upserts
            .iter()
            .map(|r| match r {
                Ok(Some(doc)) => doc.version,
                other => panic!("round {round}, upsert: {other:?}"),
            })
            .collect();
        versions.sort_unstable();
        let expected: Vec<u64> = (1..=THREADS as u64).map(|i| patched + i).collect();
        assert_eq!(versions, expected, "round {round}, upsert versions");

        let fresh = format!("new-{round}");
        let acquires = pg::race(THREADS, |t| {
            stores[t]
                .leases()
                .acquire(&fresh, &format!("run-{t}"), 60_000)
        });
        claims_have_one_winner(&acquires, &format!("round {round}, new key"));

        // A lease that expired before the race: every claim contends for
        // the same existing row.
        let stale = format!("stale-{round}");
        stores[0]
            .leases()
            .acquire(&stale, "gone", -1)
            .expect("an expired lease");
        let takeovers = pg::race(THREADS, |t| {
            stores[t]
                .leases()
                .acquire(&stale, &format!("run-{t}"), 60_000)
        });
        claims_have_one_winner(&takeovers, &format!("round {round}, takeover"));
    }
    stores[0].drop_schema().expect("drop the schema");
}

fn claims_have_one_winner(outcomes: &[logstore::Result<Acquire>], what: &str) {
    let won = outcomes
        .iter()
        .filter(|r| matches!(r, Ok(Acquire::Acquired(_))))
        .count();
    let held = outcomes
        .iter()
        .filter(|r| matches!(r, Ok(Acquire::Held { .. })))
        .count();
    assert_eq!((won, held), (1, THREADS - 1), "{what}: {outcomes:?}");
}

#[test]
fn races_under_a_serializable_default_have_one_winner_and_no_error() {
    races_have_one_winner_and_no_error("serializable");
}

#[test]
fn races_under_a_repeatable_read_default_have_one_winner_and_no_error() {
    races_have_one_winner_and_no_error("repeatable read");
}
