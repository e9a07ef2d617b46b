//! A file system wrapper for timing and space faults over any other `Vfs`:
//! syncs that take a while (to widen races), writes that fail once a budget
//! runs out (as ENOSPC does), a hook run once when a file whose name
//! ends a certain way is first opened, or at a directory listing (to act
//! at a chosen moment), a listing that leaves names out (as a directory
//! read while entries are added may), and a file length read once a page
//! longer than the file (as a length read before a writer cut its file).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use logstore::io::{LockGuard, VFile, Vfs};

type Hook = (String, Box<dyn FnOnce() + Send>);
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
    on_list: Arc<Mutex<Option<ListHook>>>,
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
            on_list: Arc::default(),
        }
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

#[derive(Debug)]
struct WrapFile {
    inner: Arc<dyn VFile>,
    fs: WrapFs,
}

impl VFile for WrapFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.inner.read_exact_at(buf, offset)
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
        let hook = {
            let mut slot = self.on_open.lock().unwrap();
            let hit = slot
                .as_ref()
                .is_some_and(|(suffix, _)| path.to_string_lossy().ends_with(suffix.as_str()));
            if hit {
                slot.take()
            } else {
                None
            }
        };
        if let Some((_, hook)) = hook {
            hook();
        }
        let inner = self.inner.open(path, create)?;
        Ok(Arc::new(WrapFile {
            inner,
            fs: self.clone(),
        }))
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
        self.inner.try_lock(path)
    }
}
