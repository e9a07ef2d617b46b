//! Running store calls off the JavaScript thread.
//!
//! A call that may wait on the disk (every write waits for its sync under
//! `Durability::Sync`) runs on this module's own pool of threads and settles
//! a promise when it is done. The pool is not libuv's: libuv has four
//! threads by default, which would cap group commit at four writers, and its
//! threads also serve `fs` calls that a streamed blob put may be waiting on.

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;

use napi::bindgen_prelude::{Object, ToNapiValue};
use napi::{Env, Status};

/// Threads in the pool: more than the writers a Pattern app runs at once
/// (the benchmark's 8), so that concurrent writes share one sync.
const POOL_THREADS: usize = 16;

type Job = Box<dyn FnOnce() + Send + 'static>;

fn pool() -> &'static Mutex<Sender<Job>> {
    static POOL: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..POOL_THREADS {
            let rx = Arc::clone(&rx);
            let spawned =
                thread::Builder::new()
                    .name(format!("logstore-{n}"))
                    .spawn(move || loop {
                        // The lock is held only while taking one job.
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    });
            // A thread that cannot start leaves the others to do the work.
            drop(spawned);
        }
        Mutex::new(tx)
    })
}

/// The message a JavaScript `Error` carries for a store error.
///
/// The reference package fixes two messages a query can fail with; the
/// engine's wording of the same rule is turned into them here. Everything
/// else is the engine's sentence behind `store: `.
pub fn message(e: &logstore::Error) -> String {
    if let logstore::Error::InvalidInput(m) = e {
        if m.starts_with("field \"") && m.contains("\" is not indexed on collection \"") {
            return format!("store: {m} — declare it via ensureCollection");
        }
        if m.starts_with("orderBy \"") && m.contains("\" is not indexed on collection \"") {
            return format!("store: {m}");
        }
    }
    format!("store: {e}")
}

pub fn to_napi(e: logstore::Error) -> napi::Error {
    napi::Error::new(Status::GenericFailure, message(&e))
}

type Resolver<T> = Box<dyn FnOnce(Env) -> napi::Result<T>>;

/// Runs `f` on the pool; the returned promise settles with its result.
pub fn spawn<T, F>(env: &Env, f: F) -> napi::Result<Object<'_>>
where
    T: ToNapiValue + Send + 'static,
    F: FnOnce() -> logstore::Result<T> + Send + 'static,
{
    let (deferred, promise) = env.create_deferred::<T, Resolver<T>>()?;
    let job: Job = Box::new(move || match f() {
        Ok(value) => deferred.resolve(Box::new(move |_| Ok(value))),
        Err(e) => deferred.reject(to_napi(e)),
    });
    pool()
        .lock()
        .map_err(|_| napi::Error::from_reason("store: the worker pool is gone"))?
        .send(job)
        .map_err(|_| napi::Error::from_reason("store: the worker pool is gone"))?;
    Ok(promise)
}
