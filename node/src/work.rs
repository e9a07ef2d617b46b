//! Running store calls off the JavaScript thread.
//!
//! A call that may wait on the disk (every write waits for its sync under
//! `Durability::Sync`) runs on this module's own pool of threads and settles
//! a promise when it is done. The pool is not libuv's: libuv has four
//! threads by default, which would cap group commit at four writers, and its
//! threads also serve `fs` calls that a streamed blob put may be waiting on.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread;

use napi::bindgen_prelude::{Object, ToNapiValue};
use napi::{Env, Status};

/// Threads in the pool: more than the writers a Pattern app runs at once
/// (the benchmark's 8), so that concurrent writes share one sync.
const POOL_THREADS: usize = 16;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The pool's queue. Idle threads wait on the condition variable without
/// holding the lock, so a job wakes exactly one thread and a thread that
/// finishes one wakes no other (a channel's receiver shared behind a mutex
/// would pass the lock from thread to thread, a context switch each).
struct Pool {
    jobs: Mutex<VecDeque<Job>>,
    ready: Condvar,
}

impl Pool {
    /// Queues `job`, or hands it back when the queue is unusable.
    fn push(&self, job: Job) -> Result<(), Job> {
        match self.jobs.lock() {
            Ok(mut jobs) => jobs.push_back(job),
            Err(_) => return Err(job),
        }
        self.ready.notify_one();
        Ok(())
    }

    fn next(&self) -> Option<Job> {
        let mut jobs = self.jobs.lock().ok()?;
        loop {
            if let Some(job) = jobs.pop_front() {
                return Some(job);
            }
            jobs = self.ready.wait(jobs).ok()?;
        }
    }
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    let mut started = false;
    let pool = POOL.get_or_init(|| {
        started = true;
        Pool {
            jobs: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
        }
    });
    if started {
        for n in 0..POOL_THREADS {
            let spawned = thread::Builder::new()
                .name(format!("logstore-{n}"))
                .spawn(move || {
                    while let Some(job) = pool.next() {
                        job();
                    }
                });
            // A thread that cannot start leaves the others to do the work.
            drop(spawned);
        }
    }
    pool
}

/// The message of a write through a read-only handle (the TypeScript layer
/// rejects with the same one before calling in).
pub const READ_ONLY: &str =
    "store: the store is open read-only (readOnly: true); write through a handle opened without readOnly";

/// The message a JavaScript `Error` carries for a store error.
///
/// The reference package fixes two messages a query can fail with; the
/// engine's wording of the same rule is turned into them here. Everything
/// else is the engine's sentence behind `store: `.
pub fn message(e: &logstore::Error) -> String {
    if let logstore::Error::ReadOnly = e {
        // The engine's wording names its Rust call; this names the option.
        return READ_ONLY.to_string();
    }
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

/// Runs `f` on the pool, with no promise to settle: work the JavaScript
/// thread must not do, such as freeing an engine. Without a pool, `f` runs
/// here.
pub fn detach(f: impl FnOnce() + Send + 'static) {
    let job: Job = Box::new(move || {
        // A panic (a bug) must not end the pool thread.
        let _ = panic::catch_unwind(AssertUnwindSafe(f));
    });
    if let Err(job) = pool().push(job) {
        job();
    }
}

/// Runs `f` on the pool; the returned promise settles with its result.
pub fn spawn<T, F>(env: &Env, f: F) -> napi::Result<Object<'_>>
where
    T: ToNapiValue + Send + 'static,
    F: FnOnce() -> logstore::Result<T> + Send + 'static,
{
    let (deferred, promise) = env.create_deferred::<T, Resolver<T>>()?;
    // A panic (a bug) rejects the call instead of ending the pool thread
    // with the promise never settled.
    let job: Job = Box::new(move || match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => deferred.resolve(Box::new(move |_| Ok(value))),
        Ok(Err(e)) => deferred.reject(to_napi(e)),
        Err(_) => deferred.reject(napi::Error::from_reason(
            "store: internal error (a call panicked; please report it)",
        )),
    });
    if pool().push(job).is_err() {
        return Err(napi::Error::from_reason("store: the worker pool is gone"));
    }
    Ok(promise)
}
