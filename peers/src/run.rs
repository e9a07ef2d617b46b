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
pub const LOAD: &str = "load, 1,000 documents per commit";
pub const PUT: &str = "put (new)";
pub const GET: &str = "get by id";
pub const QUERY: &str = "query, 1 filter, limit 20";
pub const COUNT: &str = "count, 1 filter";
pub const UPSERT: &str = "upsert";
pub const DELETE: &str = "delete";

/// Documents per commit of the load.
const LOAD_CHUNK: u64 = 1_000;

/// Each operation runs on the stores in this many alternating slices, so
/// a moment of load on the shared machine (another process's fsyncs)
/// slows every store alike.
const SLICES: u32 = 8;

/// How long an operation runs on each store.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// For this long (and at least twice a slice): the reads.
    Time(Duration),
    /// This many calls: the writes, the same on every store, so the reads
    /// after them see stores of the same size.
    Calls(u64),
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

/// Loads turns `0..docs` into each of `stores` (the same turns as
/// `logstore_workload::load`), [`LOAD_CHUNK`] to a commit, the stores
/// taking turns chunk by chunk; returns each store's rate in documents per
/// second.
///
/// # Errors
/// Whatever a store returns.
pub fn load(stores: &[Store], docs: u64) -> Result<Vec<Rate>> {
    let mut rng = Rng::new(42);
    let mut took = vec![Duration::ZERO; stores.len()];
    let mut next = 0;
    while next < docs {
        let end = (next + LOAD_CHUNK).min(docs);
        let chunk: Vec<(String, serde_json::Value)> = (next..end)
            .map(|i| (workload::id(i), workload::turn(&mut rng, i)))
            .collect();
        for (store, took) in stores.iter().zip(&mut took) {
            let chunk = chunk.clone();
            let started = Instant::now();
            store
                .peer()
                .load(chunk)
                .with_context(|| format!("loading {}", store.peer().name()))?;
            *took += started.elapsed();
        }
        next = end;
    }
    Ok(took
        .into_iter()
        .map(|took| Rate {
            ops_per_sec: docs as f64 / took.as_secs_f64(),
        })
        .collect())
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

/// One store's progress through an operation.
struct Progress {
    rng: Rng,
    calls: u64,
    took: Duration,
}

/// Runs `op` on each store that offers `operation`, in [`SLICES`]
/// alternating slices, and adds its row. `op` gets the call's number
/// (from 0) and a generator of the same seed on every store, so all make
/// the same calls.
fn measure(
    stores: &[Store],
    rows: &mut Vec<Row>,
    operation: &str,
    offered: Offered,
    limit: Limit,
    op: impl Fn(&Store, &mut Rng, u64) -> Result<()>,
) -> Result<()> {
    let runs = |store: &Store| offered == Offered::ByEvery || store.doc().is_some();
    let mut progress: Vec<Progress> = stores
        .iter()
        .map(|_| Progress {
            rng: Rng::new(9),
            calls: 0,
            took: Duration::ZERO,
        })
        .collect();
    for slice in 1..=SLICES {
        for (store, p) in stores.iter().zip(&mut progress) {
            if !runs(store) {
                continue;
            }
            let started = Instant::now();
            let call = |p: &mut Progress| {
                op(store, &mut p.rng, p.calls)
                    .with_context(|| format!("{operation} on {}", store.peer().name()))?;
                p.calls += 1;
                anyhow::Ok(())
            };
            match limit {
                Limit::Time(budget) => {
                    let slice_budget = budget / SLICES;
                    let mut n = 0;
                    while n < 2 || started.elapsed() < slice_budget {
                        call(p)?;
                        n += 1;
                    }
                }
                Limit::Calls(total) => {
                    let end = total * u64::from(slice) / u64::from(SLICES);
                    while p.calls < end {
                        call(p)?;
                    }
                }
            }
            p.took += started.elapsed();
        }
    }
    let rates = stores
        .iter()
        .zip(&progress)
        .map(|(store, p)| {
            runs(store).then(|| Rate {
                ops_per_sec: p.calls as f64 / p.took.as_secs_f64(),
            })
        })
        .collect();
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
    // A quarter of the store's size, as `logstore bench` runs them.
    let writes = (docs / 4).max(10);
    let mut rows = Vec::new();

    eprintln!("logstore-peers: {name}: loading {docs} documents");
    let rates = load(&stores, docs)?.into_iter().map(Some).collect();
    rows.push(Row {
        operation: LOAD.to_owned(),
        rates,
    });

    eprintln!("logstore-peers: {name}: operations");
    // New ids above the loaded ones; reads pick loaded ids, which every
    // store holds until the upserts and deletes at the end.
    let (timed, counted) = (Limit::Time(budget), Limit::Calls(writes));
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
    let deletes = Limit::Calls(writes.min(docs));
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
