//! A file system wrapper for timing and space faults over any other `Vfs`:
//! syncs that take a while (to widen races), writes that fail once a budget
//! runs out (as ENOSPC does), a hook run once when a file whose name
//! ends a certain way is first opened or synced, at a directory listing, or
//! when the lock is released (to act at a chosen moment), a listing that
//! leaves names out (as a directory read while entries are added may), a
//! file length read once a page longer than the file (as a length read
//! before a writer cut its file), and a read that once shows zeros where a
//! file has bytes (as a read racing an append may).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use logstore::io::{LockGuard, VFile, Vfs};

/// A hook run once.
type Once = Box<dyn FnOnce() + Send>;
type Hook = (String, Once);
/// Bytes `from..to` of the file at a path, shown as zeros by the first read
/// that covers them.
type Hidden = (PathBuf, u64, u64);
/// What to do at a listing: listings to let pass first, what to run
/// before the one after them, and which names to leave out of it.
type ListHook = (
    usize,
    Box<dyn FnOnce() + Send>,
    Box<dyn Fn(&str) -> bool + Send>,
);

/// The wrapper; clones share their settings.
#[derive(Clone)]
pub struct WrapFs {
    inner: Arc<dyn Vfs>,
    /// While set, each file write spends one of `writes_left`, and fails
    /// when none is left.
    pub fail_writes: Arc<AtomicBool>,
    pub writes_left: Arc<AtomicI64>,
    /// Every file sync first sleeps this many microseconds.
    pub sync_sleep_us: Arc<AtomicU64>,
    /// While set, the next file length read is a page longer than the
    /// file (and the flag clears).
    pub stale_size_once: Arc<AtomicBool>,
    on_open: Arc<Mutex<Option<Hook>>>,
    on_sync: Arc<Mutex<Option<Hook>>>,
    on_unlock: Arc<Mutex<Option<Once>>>,
    on_list: Arc<Mutex<Option<ListHook>>>,
    hidden: Arc<Mutex<Option<Hidden>>>,
}

impl std::fmt::Debug for WrapFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrapFs")
            .field("inner", &self.inner)
            .finish()
    }
}

impl WrapFs {
    pub fn new(inner: Arc<dyn Vfs>) -> Self {
        WrapFs {
            inner,
            fail_writes: Arc::default(),
            writes_left: Arc::default(),
            sync_sleep_us: Arc::default(),
            stale_size_once: Arc::default(),
            on_open: Arc::default(),
            on_sync: Arc::default(),
            on_unlock: Arc::default(),
            on_list: Arc::default(),
            hidden: Arc::default(),
        }
    }

    /// Runs `hook` once, at the next sync of a file whose path ends with
    /// `suffix` (before it).
    pub fn on_sync(&self, suffix: &str, hook: impl FnOnce() + Send + 'static) {
        *self.on_sync.lock().unwrap() = Some((suffix.to_string(), Box::new(hook)));
    }

    /// Runs `hook` once, when the next lock taken through this file system
    /// is released (after it is).
    pub fn on_unlock(&self, hook: impl FnOnce() + Send + 'static) {
        *self.on_unlock.lock().unwrap() = Some(Box::new(hook));
    }

    /// The first read of the file at `path` that covers bytes `from..to`
    /// shows zeros there.
    pub fn hide_once(&self, path: &Path, from: u64, to: u64) {
        *self.hidden.lock().unwrap() = Some((path.to_path_buf(), from, to));
    }

    /// Whether the bytes given to `hide_once` are still waiting for a read.
    pub fn hidden_pending(&self) -> bool {
        self.hidden.lock().unwrap().is_some()
    }

    /// Runs `hook` once, at the next listing of a directory (before it).
    pub fn on_list(&self, hook: impl FnOnce() + Send + 'static) {
        self.on_listing(0, hook, |_| false);
    }

    /// Lets `skip` listings pass, then at the next one runs `during`
    /// (before it) and leaves out of it each name `hide` picks.
    pub fn on_listing(
        &self,
        skip: usize,
        during: impl FnOnce() + Send + 'static,
        hide: impl Fn(&str) -> bool + Send + 'static,
    ) {
        *self.on_list.lock().unwrap() = Some((skip, Box::new(during), Box::new(hide)));
    }

    /// Whether the hook given to `on_list` is still waiting to run.
    pub fn list_hook_pending(&self) -> bool {
        self.on_list.lock().unwrap().is_some()
    }

    /// Runs `hook` once, the first time a file whose path ends with
    /// `suffix` is opened (before it is).
    pub fn on_open(&self, suffix: &str, hook: impl FnOnce() + Send + 'static) {
        *self.on_open.lock().unwrap() = Some((suffix.to_string(), Box::new(hook)));
    }

    /// Fails every file write after the next `n`, until `heal`.
    pub fn fail_writes_after(&self, n: i64) {
        self.writes_left.store(n, Ordering::SeqCst);
        self.fail_writes.store(true, Ordering::SeqCst);
    }

    pub fn heal(&self) {
        self.fail_writes.store(false, Ordering::SeqCst);
    }
}

/// Takes the hook in `slot` when `path` ends with its suffix.
fn take_hook(slot: &Mutex<Option<Hook>>, path: &Path) -> Option<Once> {
    let mut slot = slot.lock().unwrap();
    let hit = slot
        .as_ref()
        .is_some_and(|(suffix, _)| path.to_string_lossy().ends_with(suffix.as_str()));
    if hit {
        slot.take().map(|(_, hook)| hook)
    } else {
        None
    }
}

#[derive(Debug)]
struct WrapFile {
    inner: Arc<dyn VFile>,
    path: PathBuf,
    fs: WrapFs,
}

impl VFile for WrapFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.inner.read_exact_at(buf, offset)?;
        let mut hidden = self.fs.hidden.lock().unwrap();
        let end = offset + buf.len() as u64;
        let hit = hidden
            .as_ref()
            .filter(|(path, from, to)| *path == self.path && offset <= *from && *to <= end)
            .map(|(_, from, to)| (*from, *to));
        if let Some((from, to)) = hit {
            let at = |x: u64| usize::try_from(x - offset).unwrap();
            buf[at(from)..at(to)].fill(0);
            *hidden = None;
        }
        Ok(())
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        if self.fs.fail_writes.load(Ordering::SeqCst)
            && self.fs.writes_left.fetch_sub(1, Ordering::SeqCst) <= 0
        {
            return Err(std::io::Error::other("injected: no space left"));
        }
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        if let Some(hook) = take_hook(&self.fs.on_sync, &self.path) {
            hook();
        }
        let us = self.fs.sync_sleep_us.load(Ordering::SeqCst);
        if us > 0 {
            std::thread::sleep(std::time::Duration::from_micros(us));
        }
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn size(&self) -> std::io::Result<u64> {
        let stale = self.fs.stale_size_once.swap(false, Ordering::SeqCst);
        Ok(self.inner.size()? + if stale { 4096 } else { 0 })
    }
}

impl Vfs for WrapFs {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        let hook = {
            let mut slot = self.on_list.lock().unwrap();
            match slot.as_mut() {
                Some((skip, _, _)) if *skip > 0 => {
                    *skip -= 1;
                    None
                }
                _ => slot.take(),
            }
        };
        let Some((_, during, hide)) = hook else {
            return self.inner.list(dir);
        };
        during();
        let mut names = self.inner.list(dir)?;
        names.retain(|n| !hide(n));
        Ok(names)
    }
    fn open(&self, path: &Path, create: bool) -> std::io::Result<Arc<dyn VFile>> {
        if let Some(hook) = take_hook(&self.on_open, path) {
            hook();
        }
        let inner = self.inner.open(path, create)?;
        Ok(Arc::new(WrapFile {
            inner,
            path: path.to_path_buf(),
            fs: self.clone(),
        }))
    }
    fn create_new(&self, path: &Path) -> std::io::Result<Arc<dyn VFile>> {
        if let Some(hook) = take_hook(&self.on_open, path) {
            hook();
        }
        let inner = self.inner.create_new(path)?;
        Ok(Arc::new(WrapFile {
            inner,
            path: path.to_path_buf(),
            fs: self.clone(),
        }))
    }
    fn list_entries(&self, dir: &Path) -> std::io::Result<Vec<logstore::io::Entry>> {
        self.inner.list_entries(dir)
    }
    fn root_id(&self) -> Option<(u64, u64)> {
        self.inner.root_id()
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn try_lock(&self, path: &Path) -> std::io::Result<Option<Box<dyn LockGuard>>> {
        let on_unlock = self.on_unlock.clone();
        Ok(self.inner.try_lock(path)?.map(|guard| {
            Box::new(UnlockGuard {
                guard: Some(guard),
                on_unlock,
            }) as Box<dyn LockGuard>
        }))
    }
}

/// A lock guard that runs the `on_unlock` hook once it has released the
/// lock.
struct UnlockGuard {
    guard: Option<Box<dyn LockGuard>>,
    on_unlock: Arc<Mutex<Option<Once>>>,
}

impl std::fmt::Debug for UnlockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnlockGuard").finish()
    }
}

impl LockGuard for UnlockGuard {}

impl Drop for UnlockGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        let hook = self.on_unlock.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
    }
}
