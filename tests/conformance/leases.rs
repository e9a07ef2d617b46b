//! The Leases section of the contract, rule by rule.

use std::sync::Barrier;

use logstore::{Acquire, Error, LeaseRow};

use super::{import_at_top_version, Harness, START_MS};

fn acquired(outcome: Acquire) -> LeaseRow {
    match outcome {
        Acquire::Acquired(row) => row,
        held @ Acquire::Held { .. } => panic!("expected Acquired, got {held:?}"),
    }
}

pub fn acquire_claims_a_free_key(h: &Harness) {
    let row = acquired(h.s().leases().acquire("k", "run-a", 60_000).unwrap());
    let expected = LeaseRow {
        key: "k".into(),
        owner: "run-a".into(),
        expires_at: START_MS + 60_000,
        version: 1,
        created_at: START_MS,
        updated_at: START_MS,
    };
    assert_eq!(row, expected);
    assert_eq!(h.s().leases().get("k").unwrap(), Some(expected));
}

pub fn acquire_of_a_held_key_says_who_holds_it(h: &Harness) {
    let l = h.s().leases();
    let row = acquired(l.acquire("k", "run-a", 1_000).unwrap());
    h.clock.advance(1_000);
    // expires_at == now is not yet expired.
    assert_eq!(
        l.acquire("k", "run-b", 5).unwrap(),
        Acquire::Held {
            owner: "run-a".into(),
            expires_at: START_MS + 1_000
        }
    );
    assert_eq!(l.get("k").unwrap(), Some(row));
}

pub fn acquire_is_reentrant_for_the_holder(h: &Harness) {
    let l = h.s().leases();
    acquired(l.acquire("k", "run-a", 1_000).unwrap());
    h.clock.advance(10);
    let row = acquired(l.acquire("k", "run-a", 50).unwrap());
    assert_eq!(
        (row.version, row.created_at, row.updated_at),
        (2, START_MS, START_MS + 10)
    );
    assert_eq!(row.expires_at, START_MS + 60);
}

pub fn an_expired_lease_can_be_stolen(h: &Harness) {
    let l = h.s().leases();
    acquired(l.acquire("k", "run-a", 100).unwrap());
    h.clock.advance(101);
    let row = acquired(l.acquire("k", "run-b", 100).unwrap());
    assert_eq!(row.owner, "run-b");
    assert_eq!(
        (row.version, row.created_at),
        (2, START_MS),
        "created_at kept for an existing row"
    );
    assert_eq!(row.expires_at, START_MS + 201);
}

pub fn a_negative_ttl_is_born_expired(h: &Harness) {
    let l = h.s().leases();
    let row = acquired(l.acquire("k", "run-a", -5).unwrap());
    assert_eq!(row.expires_at, START_MS - 5);
    let stolen = acquired(l.acquire("k", "run-b", 10).unwrap());
    assert_eq!(stolen.owner, "run-b");
}

pub fn renew_extends_only_an_unexpired_own_lease(h: &Harness) {
    let l = h.s().leases();
    assert_eq!(
        l.renew("k", "run-a", 10).unwrap(),
        Acquire::Held {
            owner: String::new(),
            expires_at: 0
        }
    );
    assert_eq!(l.get("k").unwrap(), None, "renew never creates a row");
    acquired(l.acquire("k", "run-a", 100).unwrap());
    h.clock.advance(50);
    let row = acquired(l.renew("k", "run-a", 100).unwrap());
    assert_eq!(
        (row.version, row.expires_at, row.updated_at),
        (2, START_MS + 150, START_MS + 50)
    );
    assert_eq!(
        l.renew("k", "run-b", 100).unwrap(),
        Acquire::Held {
            owner: "run-a".into(),
            expires_at: START_MS + 150
        }
    );
    h.clock.advance(101);
    assert_eq!(
        l.renew("k", "run-a", 100).unwrap(),
        Acquire::Held {
            owner: "run-a".into(),
            expires_at: START_MS + 150
        },
        "an expired lease cannot be renewed"
    );
    assert_eq!(l.get("k").unwrap().unwrap().version, 2);
}

pub fn release_removes_only_the_holders_lease(h: &Harness) {
    let l = h.s().leases();
    acquired(l.acquire("k", "run-a", 100).unwrap());
    l.release("k", "run-b").unwrap();
    assert!(l.get("k").unwrap().is_some(), "not the holder: no-op");
    l.release("k", "run-a").unwrap();
    assert_eq!(l.get("k").unwrap(), None);
    l.release("k", "run-a").unwrap();
    let row = acquired(l.acquire("k", "run-b", 100).unwrap());
    assert_eq!(row.version, 1, "a released key starts over");
}

pub fn release_all_removes_every_lease_of_the_owner(h: &Harness) {
    let l = h.s().leases();
    for key in ["a", "b", "c"] {
        acquired(l.acquire(key, "run-a", 100).unwrap());
    }
    acquired(l.acquire("d", "run-b", 100).unwrap());
    assert_eq!(l.release_all("run-a").unwrap(), 3);
    assert_eq!(l.release_all("run-a").unwrap(), 0);
    for key in ["a", "b", "c"] {
        assert_eq!(l.get(key).unwrap(), None);
    }
    assert_eq!(l.get("d").unwrap().unwrap().owner, "run-b");
}

pub fn an_expired_row_is_still_returned(h: &Harness) {
    let l = h.s().leases();
    let row = acquired(l.acquire("k", "run-a", 10).unwrap());
    h.clock.advance(1_000);
    assert_eq!(l.get("k").unwrap(), Some(row));
}

pub fn concurrent_acquires_have_one_winner(h: &Harness) {
    let l = h.s().leases();
    let barrier = Barrier::new(8);
    let winners: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    matches!(
                        l.acquire("k", &format!("run-{t}"), 60_000).unwrap(),
                        Acquire::Acquired(_)
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(winners.iter().filter(|w| **w).count(), 1);
    let winner = winners.iter().position(|w| *w).unwrap();
    assert_eq!(l.get("k").unwrap().unwrap().owner, format!("run-{winner}"));
}

pub fn bad_lease_input_is_rejected(h: &Harness) {
    let l = h.s().leases();
    let long = "k".repeat(logstore::MAX_KEY_BYTES + 1);
    assert!(matches!(l.acquire("", "o", 1), Err(Error::InvalidInput(_))));
    assert!(matches!(l.acquire("k", "", 1), Err(Error::InvalidInput(_))));
    assert!(matches!(
        l.acquire(&long, "o", 1),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(l.renew("k", "", 1), Err(Error::InvalidInput(_))));
    assert!(matches!(l.release("", "o"), Err(Error::InvalidInput(_))));
    assert!(matches!(l.release_all(""), Err(Error::InvalidInput(_))));
    assert!(matches!(l.get(""), Err(Error::InvalidInput(_))));
    assert_eq!(l.get("k").unwrap(), None);
}

pub fn lease_writes_past_the_highest_version_are_refused(h: &Harness) {
    let l = h.s().leases();
    let row = |version: u64| LeaseRow {
        key: "k".into(),
        owner: "run-a".into(),
        expires_at: START_MS + 1_000,
        version,
        created_at: START_MS,
        updated_at: START_MS,
    };
    let top = import_at_top_version(|v| h.t().import_lease(&row(v)));
    assert_eq!(l.get("k").unwrap(), Some(row(top)));
    let overflow = |result: logstore::Result<Acquire>| match result {
        Err(Error::InvalidInput(message)) => assert!(
            message.contains("version would overflow"),
            "message {message:?}"
        ),
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    h.clock.advance(10);
    overflow(l.acquire("k", "run-a", 60_000));
    overflow(l.renew("k", "run-a", 60_000));
    // Refusals that bump nothing are unchanged.
    assert_eq!(
        l.acquire("k", "run-b", 60_000).unwrap(),
        Acquire::Held {
            owner: "run-a".into(),
            expires_at: START_MS + 1_000
        }
    );
    assert_eq!(l.get("k").unwrap(), Some(row(top)), "nothing was written");
    // Once expired, a steal would bump the version too.
    h.clock.advance(1_000);
    overflow(l.acquire("k", "run-b", 60_000));
    assert_eq!(l.get("k").unwrap(), Some(row(top)), "nothing was written");
    // Releasing the row starts it over.
    l.release("k", "run-a").unwrap();
    assert_eq!(
        acquired(l.acquire("k", "run-b", 60_000).unwrap()).version,
        1
    );
}

pub fn closed_store_refuses_lease_calls(h: &Harness) {
    h.s().close().unwrap();
    let l = h.s().leases();
    assert!(matches!(l.acquire("k", "o", 1), Err(Error::Closed)));
    assert!(matches!(l.renew("k", "o", 1), Err(Error::Closed)));
    assert!(matches!(l.release("k", "o"), Err(Error::Closed)));
    assert!(matches!(l.release_all("o"), Err(Error::Closed)));
    assert!(matches!(l.get("k"), Err(Error::Closed)));
}
