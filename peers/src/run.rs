//! The run: the same workload on every store, at each durability asked
//! for, in the shape of `logstore bench` (writes a fixed count, the same for
//! every store; reads for a time budget).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use logstore_workload::{self as workload, Rng};

use crate::drivers::{Durability, FjallStore, Logstore, NativeDbStore, RedbStore, Store};

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Documents loaded into each store before the operations run.
    pub docs: u64,
    /// The time budget of each read operation on each store.
    pub seconds_per_op: f64,
    /// The durabilities to run, each a section of the report.
    pub durabilities: Vec<Durability>,
    /// The folder the stores go in (in a folder made for the run and
    /// removed after it); the system's temporary folder when `None`.
    pub dir: Option<PathBuf>,
}

/// One store's rate for one operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Operations per second.
    pub ops_per_sec: f64,
}

/// One operation: a rate per store of the section (in the order of
/// `Section::stores`), `None` where the store does not offer it.
#[derive(Debug, Clone)]
pub struct Row {
    pub operation: String,
    pub rates: Vec<Option<Rate>>,
}

/// Every store's figures at one durability.
#[derive(Debug, Clone)]
pub struct Section {
    pub durability: Durability,
    /// Each store's name and the setting of its own that the section ran
    /// with; logstore first.
    pub stores: Vec<(String, String)>,
    pub rows: Vec<Row>,
}

impl Section {
    /// The rate of `store` for `operation`, when measured.
    pub fn rate(&self, operation: &str, store: &str) -> Option<f64> {
        let column = self.stores.iter().position(|(name, _)| name == store)?;
        let row = self.rows.iter().find(|row| row.operation == operation)?;
        row.rates[column].map(|rate| rate.ops_per_sec)
    }
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct Report {
    pub documents: u64,
    pub cores: usize,
    pub sections: Vec<Section>,
}

/// The operations, as the table names them.
pub const LOAD: &str = "load (puts)";
pub const PUT: &str = "put (new)";
pub const GET: &str = "get by id";
pub const QUERY: &str = "query, 1 filter, limit 20";
pub const COUNT: &str = "count, 1 filter";
pub const UPSERT: &str = "upsert";
pub const DELETE: &str = "delete";

/// Runs `f` until `budget` has passed (at least 10 times) or `max` calls;
/// returns calls per second.
fn rate(budget: Duration, max: u64, mut f: impl FnMut(u64) -> Result<()>) -> Result<Rate> {
    let started = Instant::now();
    let mut i = 0;
    while i < max && (i < 10 || started.elapsed() < budget) {
        f(i)?;
        i += 1;
    }
    Ok(Rate {
        ops_per_sec: i as f64 / started.elapsed().as_secs_f64(),
    })
}

/// The stores of a section, logstore first, each in its own place in
/// `dir`. `native_db` has no non-durable mode, so it runs with `Sync` only.
fn open_stores(dir: &Path, durability: Durability) -> Result<Vec<Store>> {
    let mut stores = vec![Store::Doc(Box::new(Logstore::open(
        &dir.join("logstore"),
        durability,
    )?))];
    if durability == Durability::Sync {
        stores.push(Store::Doc(Box::new(NativeDbStore::create(
            &dir.join("native_db.redb"),
        )?)));
    }
    stores.push(Store::Kv(Box::new(RedbStore::create(
        &dir.join("kv.redb"),
        durability,
    )?)));
    stores.push(Store::Kv(Box::new(FjallStore::open(
        &dir.join("fjall"),
        durability,
    )?)));
    Ok(stores)
}

/// Loads turns `0..docs` into `store` (the same turns as
/// `logstore_workload::load`); returns the rate.
pub fn load(store: &Store, docs: u64) -> Result<Rate> {
    let mut rng = Rng::new(42);
    rate(Duration::MAX, docs, |i| {
        store
            .peer()
            .put(&workload::id(i), workload::turn(&mut rng, i))
    })
}

/// The stores an operation runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offered {
    /// Every store: the key-value floors' operations.
    ByEvery,
    /// The document stores only.
    ByDocumentStores,
}

/// The document operations of `store`, which `measure` calls only for a
/// document store.
fn doc(store: &Store) -> Result<&dyn crate::drivers::DocPeer> {
    store
        .doc()
        .ok_or_else(|| anyhow!("{} is not a document store", store.peer().name()))
}

/// Runs `op` on each store that offers `operation` and adds its row. Each
/// store gets a generator of the same seed, so all make the same calls.
fn measure(
    stores: &[Store],
    rows: &mut Vec<Row>,
    operation: &str,
    offered: Offered,
    (budget, max): (Duration, u64),
    op: impl Fn(&Store, &mut Rng, u64) -> Result<()>,
) -> Result<()> {
    let mut rates = Vec::new();
    for store in stores {
        if offered == Offered::ByDocumentStores && store.doc().is_none() {
            rates.push(None);
            continue;
        }
        let mut rng = Rng::new(9);
        let measured = rate(budget, max, |i| op(store, &mut rng, i))
            .with_context(|| format!("{operation} on {}", store.peer().name()))?;
        rates.push(Some(measured));
    }
    rows.push(Row {
        operation: operation.to_owned(),
        rates,
    });
    Ok(())
}

/// One section: every operation on every store at `durability`, stores in
/// a folder of `dir`.
fn section(config: &Config, dir: &Path, durability: Durability) -> Result<Section> {
    let name = match durability {
        Durability::Sync => "sync",
        Durability::Flush => "flush",
    };
    let dir = dir.join(name);
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stores = open_stores(&dir, durability)?;
    let docs = config.docs;
    let budget = Duration::from_secs_f64(config.seconds_per_op);
    // Writes run a fixed count, the same on every store, so the reads see
    // stores of the same size.
    let writes = (docs / 4).max(10);
    let mut rows = Vec::new();

    eprintln!("logstore-peers: {name}: loading {docs} documents");
    let mut rates = Vec::new();
    for store in &stores {
        rates.push(Some(load(store, docs)?));
    }
    rows.push(Row {
        operation: LOAD.to_owned(),
        rates,
    });

    eprintln!("logstore-peers: {name}: operations");
    // New ids above the loaded ones; reads pick loaded ids, which every
    // store holds until the upserts and deletes at the end.
    let (timed, counted) = ((budget, u64::MAX), (Duration::MAX, writes));
    measure(
        &stores,
        &mut rows,
        PUT,
        Offered::ByEvery,
        counted,
        |s, rng, i| {
            let n = docs + 1_000_000_000 + i;
            s.peer().put(&workload::id(n), workload::turn(rng, n))
        },
    )?;
    measure(
        &stores,
        &mut rows,
        GET,
        Offered::ByEvery,
        timed,
        |s, rng, _| {
            let id = workload::id(rng.below(docs.max(1)));
            match s.peer().get(&id)? {
                Some(_) => Ok(()),
                None => Err(anyhow!("{id} is missing")),
            }
        },
    )?;
    measure(
        &stores,
        &mut rows,
        QUERY,
        Offered::ByEvery,
        timed,
        |s, rng, _| {
            let conversation = workload::conversation(rng.below(workload::CONVERSATIONS));
            s.peer().query(&conversation, 20).map(drop)
        },
    )?;
    let docs_only = Offered::ByDocumentStores;
    measure(&stores, &mut rows, COUNT, docs_only, timed, |s, rng, _| {
        let author = workload::author(rng.below(workload::AUTHORS));
        doc(s)?.count(&author).map(drop)
    })?;
    measure(
        &stores,
        &mut rows,
        UPSERT,
        docs_only,
        counted,
        |s, rng, i| {
            let id = workload::id(rng.below(docs.max(1)));
            doc(s)?.upsert(&id, workload::turn(rng, i))
        },
    )?;
    // From the top of the loaded range down, one each.
    let deletes = (Duration::MAX, writes.min(docs));
    measure(&stores, &mut rows, DELETE, docs_only, deletes, |s, _, i| {
        let id = workload::id(docs - 1 - i);
        if doc(s)?.delete(&id)? {
            Ok(())
        } else {
            Err(anyhow!("{id} was not there to delete"))
        }
    })?;

    let stores_named = stores
        .iter()
        .map(|s| (s.peer().name().to_owned(), s.peer().durability().to_owned()))
        .collect();
    Ok(Section {
        durability,
        stores: stores_named,
        rows,
    })
}

/// Runs every section of `config`.
///
/// # Errors
/// When a store fails, or returns a wrong answer (a loaded document
/// missing, a delete of nothing).
pub fn run(config: &Config) -> Result<Report> {
    let base = match &config.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir(),
    };
    let tmp = tempfile::Builder::new()
        .prefix("logstore-peers.")
        .tempdir_in(&base)
        .with_context(|| format!("making a folder in {}", base.display()))?;
    eprintln!("logstore-peers: stores in {}", tmp.path().display());
    let mut sections = Vec::new();
    for &durability in &config.durabilities {
        sections.push(section(config, tmp.path(), durability)?);
    }
    Ok(Report {
        documents: config.docs,
        cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        sections,
    })
}
