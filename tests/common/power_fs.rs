//! The power-loss simulator: a file system that keeps what was written (the
//! page cache) apart from what is durable, for file contents and for
//! directory entries, and generates the images a power loss could leave.
//!
//! The fault model is the one in TESTING.md ("The fault model"):
//! - bytes made durable by a successful sync stay, and so do directory
//!   entries made durable by a sync of their directory;
//! - every page (4096 bytes) written since its file's last successful sync
//!   may hold its old bytes, its new bytes or zeros, independently of the
//!   other pages, and may be torn at sector (512 byte) boundaries;
//! - a file's length may be its durable length or its written length;
//! - every directory operation (create, rename, remove) not yet covered by a
//!   sync of its directory may be kept or lost, independently (a rename is
//!   atomic: the old name or the new one);
//! - fsyncgate: a failed sync may drop the dirty pages it covered; they are
//!   clean from then on, so reads still return them but no later sync
//!   persists them ([`PowerFs::fail_sync_at`]).
//!
//! At every sync point (a file sync or a directory sync) the simulator
//! records, before the sync takes effect:
//! - the images of the prefix model it started with: only the synced state;
//!   the synced state plus each prefix of the syncing file's later writes,
//!   also with the last write of the prefix torn in half; the file extended
//!   with zeros to its written length; for a directory sync, the directory's
//!   new entries over synced contents;
//! - unless built with [`PowerFs::prefix_model`], the images of the page
//!   model over every file and directory: the systematic extremes (all old,
//!   all new, all zero, contents new without the directory operations,
//!   contents old with them, each single dirty page zero with the rest new,
//!   each dirty page torn after each sector with the rest new, each single
//!   directory operation lost) and a bounded number of combinations drawn
//!   with a seeded xorshift generator (`LOGSTORE_POWER_SAMPLES` per sync
//!   point, 8 by default; `LOGSTORE_POWER_SEED` changes the seed).
//!
//! Identical images (same files, same acknowledged count) are kept once.
//! Each image is a set of files, which `image_fs` turns into a `MemFs` that
//! a store can open.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use logstore::io::{LockGuard, MemFs, VFile, Vfs};
use parking_lot::Mutex;

use super::env_number;

/// The unit of write-back: a page either reaches the disk or it does not.
pub const PAGE: usize = 4096;
/// The unit a page may be torn at.
pub const SECTOR: usize = 512;
const SECTORS: usize = PAGE / SECTOR;
/// Random combinations drawn per sync point unless `LOGSTORE_POWER_SAMPLES`
/// says otherwise.
pub const DEFAULT_SAMPLES: usize = 8;
const DEFAULT_SEED: u64 = 0x5eed_1e55_c0ff_ee01;
/// Pages torn after each sector are enumerated only while a sync point has
/// at most this many dirty pages (the random draws cover the rest).
const TEAR_ENUMERATION_PAGES: usize = 16;

/// Files by path, as a crash would leave them. Contents are shared between
/// images where they do not differ.
pub type Image = BTreeMap<PathBuf, Arc<Vec<u8>>>;

/// A tiny deterministic generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// Random combinations per sync point: `LOGSTORE_POWER_SAMPLES` or 8.
pub fn samples_from_env() -> usize {
    env_number("LOGSTORE_POWER_SAMPLES").map_or(DEFAULT_SAMPLES, |n| n as usize)
}

#[derive(Debug, Clone)]
enum Pending {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

#[derive(Debug, Default)]
struct FileState {
    /// The page-cache view: what reads return.
    written: Vec<u8>,
    /// What a power loss keeps for sure.
    durable: Arc<Vec<u8>>,
    /// Pages written since the last sync (successful or not).
    dirty: BTreeSet<usize>,
    /// Writes since the last sync, in order, for the prefix model.
    pending: Vec<Pending>,
}

impl FileState {
    fn touch(&mut self, from: usize, to: usize) {
        if to > from {
            self.dirty.extend(from / PAGE..=(to - 1) / PAGE);
        }
    }

    /// The durable contents after a successful sync: dirty pages from the
    /// page cache, every other page as it was (a page dropped by a failed
    /// sync keeps its old bytes, or zeros past the old end).
    fn synced(&self) -> Vec<u8> {
        let mut out = self.durable.as_ref().clone();
        out.resize(self.written.len(), 0);
        for &page in &self.dirty {
            let start = page * PAGE;
            if start >= out.len() {
                break;
            }
            let end = (start + PAGE).min(out.len());
            out[start..end].copy_from_slice(&self.written[start..end]);
        }
        out
    }
}

fn apply(content: &mut Vec<u8>, op: &Pending) {
    match op {
        Pending::Write(offset, bytes) => {
            let end = *offset as usize + bytes.len();
            if content.len() < end {
                content.resize(end, 0);
            }
            content[*offset as usize..end].copy_from_slice(bytes);
        }
        Pending::SetLen(len) => content.resize(*len as usize, 0),
    }
}

/// A directory operation not yet made durable by a sync of its directory.
#[derive(Debug, Clone)]
enum DirOp {
    Link(PathBuf, u64),
    Unlink(PathBuf),
    /// Within one directory: atomic, the old name or the new one.
    Rename(PathBuf, PathBuf, u64),
}

fn apply_dir_op(entries: &mut BTreeMap<PathBuf, u64>, op: &DirOp) {
    match op {
        DirOp::Link(path, id) => {
            entries.insert(path.clone(), *id);
        }
        DirOp::Unlink(path) => {
            entries.remove(path);
        }
        DirOp::Rename(from, to, id) => {
            if entries.get(from) == Some(id) {
                entries.remove(from);
            }
            entries.insert(to.clone(), *id);
        }
    }
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// What became of one dirty page in a crash image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Old,
    New,
    Zero,
    /// Bit `s` set: sector `s` holds its new bytes, otherwise its old ones.
    Torn(u8),
}

/// One combination: the fate of every dirty page, every file's length and
/// every pending directory operation.
#[derive(Debug, Clone)]
struct Plan {
    default: Fate,
    fates: HashMap<(u64, usize), Fate>,
    new_len: bool,
    lens: HashMap<u64, bool>,
    /// Directory operations kept, by their index in the flat list.
    ops: Vec<bool>,
}

impl Plan {
    fn uniform(fate: Fate, new_len: bool, ops: usize, keep_ops: bool) -> Plan {
        Plan {
            default: fate,
            fates: HashMap::new(),
            new_len,
            lens: HashMap::new(),
            ops: vec![keep_ops; ops],
        }
    }
}

/// Counters of what the simulator did.
#[derive(Debug, Clone, Copy, Default)]
pub struct PowerStats {
    /// Sync points seen while capturing.
    pub sync_points: u64,
    /// Images generated (before removing duplicates).
    pub generated: u64,
    /// Distinct images kept.
    pub kept: u64,
}

#[derive(Debug)]
struct State {
    files: HashMap<u64, FileState>,
    /// The page-cache view of every directory.
    entries: BTreeMap<PathBuf, u64>,
    /// The durable view.
    durable_entries: BTreeMap<PathBuf, u64>,
    /// Operations not yet durable, by directory, in order.
    dir_ops: BTreeMap<PathBuf, Vec<DirOp>>,
    next_id: u64,
    /// (image, how many operations the test had seen acknowledged, what
    /// the crash did).
    images: Vec<(Image, usize, String)>,
    seen: HashSet<(u64, usize)>,
    stats: PowerStats,
    capture: bool,
    page_model: bool,
    samples: usize,
    rng: XorShift,
    /// Syncs (file or directory) since `fail_sync_at`.
    syncs: u64,
    fail_at: u64,
    failed: u64,
}

impl Default for State {
    fn default() -> Self {
        State {
            files: HashMap::new(),
            entries: BTreeMap::new(),
            durable_entries: BTreeMap::new(),
            dir_ops: BTreeMap::new(),
            next_id: 0,
            images: Vec::new(),
            seen: HashSet::new(),
            stats: PowerStats::default(),
            capture: true,
            page_model: true,
            samples: samples_from_env(),
            rng: XorShift::new(env_number("LOGSTORE_POWER_SEED").unwrap_or(DEFAULT_SEED)),
            syncs: 0,
            fail_at: 0,
            failed: 0,
        }
    }
}

impl State {
    fn durable_image(&self) -> Image {
        self.durable_entries
            .iter()
            .map(|(path, id)| (path.clone(), self.files[id].durable.clone()))
            .collect()
    }

    fn record(&mut self, image: Image, acked: usize, label: String) {
        self.stats.generated += 1;
        let mut hasher = DefaultHasher::new();
        for (path, content) in &image {
            path.hash(&mut hasher);
            content.hash(&mut hasher);
        }
        if self.seen.insert((hasher.finish(), acked)) {
            self.stats.kept += 1;
            self.images.push((image, acked, label));
        }
    }

    /// Counts a sync and says whether it is the one to fail.
    fn sync_fails(&mut self) -> bool {
        self.syncs += 1;
        let fail = self.fail_at != 0 && self.syncs == self.fail_at;
        if fail {
            self.failed += 1;
        }
        fail
    }

    fn flat_ops(&self) -> Vec<DirOp> {
        self.dir_ops.values().flatten().cloned().collect()
    }

    /// The image `plan` describes.
    fn render(&self, plan: &Plan, ops: &[DirOp]) -> Image {
        let mut entries = self.durable_entries.clone();
        for (op, keep) in ops.iter().zip(&plan.ops) {
            if *keep {
                apply_dir_op(&mut entries, op);
            }
        }
        entries
            .into_iter()
            .map(|(path, id)| {
                let content = self.render_file(id, plan);
                (path, content)
            })
            .collect()
    }

    fn render_file(&self, id: u64, plan: &Plan) -> Arc<Vec<u8>> {
        let file = &self.files[&id];
        if file.dirty.is_empty() && file.written.len() == file.durable.len() {
            return file.durable.clone();
        }
        let new_len = *plan.lens.get(&id).unwrap_or(&plan.new_len);
        let len = if new_len {
            file.written.len()
        } else {
            file.durable.len()
        };
        let old = |i: usize| file.durable.get(i).copied().unwrap_or(0);
        let new = |i: usize| file.written.get(i).copied().unwrap_or(0);
        let mut out: Vec<u8> = (0..len).map(old).collect();
        for &page in &file.dirty {
            let start = page * PAGE;
            if start >= len {
                break;
            }
            let end = (start + PAGE).min(len);
            let fate = *plan.fates.get(&(id, page)).unwrap_or(&plan.default);
            for (i, byte) in out.iter_mut().enumerate().take(end).skip(start) {
                *byte = match fate {
                    Fate::Old => old(i),
                    Fate::New => new(i),
                    Fate::Zero => 0,
                    Fate::Torn(mask) => {
                        if mask & (1 << ((i - start) / SECTOR)) != 0 {
                            new(i)
                        } else {
                            old(i)
                        }
                    }
                };
            }
        }
        Arc::new(out)
    }

    /// Files an image can hold: those named by either view or by a
    /// pending directory operation.
    fn reachable(&self) -> BTreeSet<u64> {
        let mut ids: BTreeSet<u64> = self.entries.values().copied().collect();
        ids.extend(self.durable_entries.values().copied());
        for op in self.dir_ops.values().flatten() {
            match op {
                DirOp::Link(_, id) | DirOp::Rename(_, _, id) => {
                    ids.insert(*id);
                }
                DirOp::Unlink(_) => {}
            }
        }
        ids
    }

    /// The page model's images at this moment.
    fn page_model_images(&mut self, acked: usize) {
        let ops = self.flat_ops();
        let dirty: Vec<(u64, usize)> = self
            .reachable()
            .into_iter()
            .flat_map(|id| self.files[&id].dirty.iter().map(move |&p| (id, p)))
            .collect();
        let n = ops.len();
        let names: HashMap<u64, String> = dirty
            .iter()
            .map(|&(id, _)| (id, self.name_of(id)))
            .collect();
        let name = |id: u64| names[&id].clone();
        let mut plans = vec![
            (
                "all old".to_string(),
                Plan::uniform(Fate::Old, false, n, false),
            ),
            (
                "all new".to_string(),
                Plan::uniform(Fate::New, true, n, true),
            ),
            (
                "every dirty page zero".to_string(),
                Plan::uniform(Fate::Zero, true, n, true),
            ),
            (
                "contents new, directory operations lost".to_string(),
                Plan::uniform(Fate::New, true, n, false),
            ),
            (
                "contents old, directory operations kept".to_string(),
                Plan::uniform(Fate::Old, false, n, true),
            ),
        ];
        for &(id, page) in &dirty {
            let mut plan = Plan::uniform(Fate::New, true, n, true);
            plan.fates.insert((id, page), Fate::Zero);
            plans.push((
                format!("page {page} of {} zero, the rest new", name(id)),
                plan,
            ));
        }
        if dirty.len() <= TEAR_ENUMERATION_PAGES {
            for &(id, page) in &dirty {
                for k in 1..SECTORS {
                    let mut plan = Plan::uniform(Fate::New, true, n, true);
                    plan.fates
                        .insert((id, page), Fate::Torn(((1u16 << k) - 1) as u8));
                    let label = format!(
                        "page {page} of {} torn after {k} sectors (the rest of it old), the rest new",
                        name(id)
                    );
                    plans.push((label, plan));
                }
            }
        }
        for (i, op) in ops.iter().enumerate() {
            let mut plan = Plan::uniform(Fate::New, true, n, true);
            plan.ops[i] = false;
            plans.push((format!("all new but {op:?} lost"), plan));
        }
        for j in 0..self.samples {
            let mut plan = Plan::uniform(Fate::New, true, n, true);
            let mut label = format!("random combination {j}:");
            for &(id, page) in &dirty {
                let fate = match self.rng.below(4) {
                    0 => Fate::Old,
                    1 => Fate::New,
                    2 => Fate::Zero,
                    _ => Fate::Torn(self.rng.below(256) as u8),
                };
                label.push_str(&format!(" page {page} of {} {fate:?};", name(id)));
                plan.fates.insert((id, page), fate);
            }
            for &(id, _) in &dirty {
                let coin = self.rng.coin();
                plan.lens.entry(id).or_insert(coin);
            }
            for (keep, op) in plan.ops.iter_mut().zip(&ops) {
                *keep = self.rng.coin();
                if !*keep {
                    label.push_str(&format!(" {op:?} lost;"));
                }
            }
            plans.push((label, plan));
        }
        for (label, plan) in plans {
            let image = self.render(&plan, &ops);
            self.record(image, acked, format!("page model: {label}"));
        }
    }

    /// A file's name for labels: its page-cache path, or its durable one.
    fn name_of(&self, id: u64) -> String {
        self.entries
            .iter()
            .chain(&self.durable_entries)
            .find(|(_, fid)| **fid == id)
            .map_or_else(|| format!("file #{id}"), |(p, _)| p.display().to_string())
    }

    /// The prefix model's images for a sync of file `id`.
    fn prefix_model_file_images(&mut self, id: u64, acked: usize) {
        let base = self.durable_image();
        let mut new_images = vec![(base.clone(), "synced state".to_string())];
        let paths: Vec<PathBuf> = self
            .durable_entries
            .iter()
            .filter(|(_, fid)| **fid == id)
            .map(|(p, _)| p.clone())
            .collect();
        let file = &self.files[&id];
        for path in paths {
            let mut content = file.durable.as_ref().clone();
            for op in &file.pending {
                if let Pending::Write(offset, bytes) = op {
                    let mut torn = content.clone();
                    apply(
                        &mut torn,
                        &Pending::Write(*offset, bytes[..bytes.len() / 2].to_vec()),
                    );
                    let mut image = base.clone();
                    image.insert(path.clone(), Arc::new(torn));
                    new_images.push((
                        image,
                        format!("{} up to a write torn in half", path.display()),
                    ));
                }
                apply(&mut content, op);
                let mut image = base.clone();
                image.insert(path.clone(), Arc::new(content.clone()));
                new_images.push((image, format!("{} up to a write", path.display())));
            }
            if file.written.len() > file.durable.len() {
                let mut zeros = file.durable.as_ref().clone();
                zeros.resize(file.written.len(), 0);
                let mut image = base.clone();
                image.insert(path.clone(), Arc::new(zeros));
                new_images.push((image, format!("{} extended with zeros", path.display())));
            }
        }
        for (image, label) in new_images {
            self.record(image, acked, format!("prefix model: {label}"));
        }
    }

    /// The prefix model's images for a sync of directory `dir`.
    fn prefix_model_dir_images(&mut self, dir: &Path, acked: usize) {
        let base = self.durable_image();
        self.record(base, acked, "prefix model: synced state".to_string());
        let mut entries = self.durable_entries.clone();
        for op in self.dir_ops.get(dir).into_iter().flatten() {
            apply_dir_op(&mut entries, op);
        }
        let image = entries
            .iter()
            .map(|(path, id)| (path.clone(), self.files[id].durable.clone()))
            .collect();
        self.record(
            image,
            acked,
            format!("prefix model: the entries of {} synced", dir.display()),
        );
    }
}

/// What is being synced at a sync point.
enum SyncOf<'a> {
    File(u64),
    Dir(&'a Path),
    Nothing,
}

/// The simulator; clones share state.
#[derive(Debug, Clone, Default)]
pub struct PowerFs {
    state: Arc<Mutex<State>>,
    /// Operations acknowledged so far; the test bumps it after each one.
    pub acked: Arc<AtomicUsize>,
}

impl PowerFs {
    /// A simulator that records the images of both models.
    pub fn new() -> Self {
        Self::default()
    }

    /// A simulator that records only the prefix model's images (the model
    /// the engine was first tested against).
    pub fn prefix_model() -> Self {
        let fs = Self::default();
        fs.state.lock().page_model = false;
        fs
    }

    pub fn as_vfs(&self) -> Arc<dyn Vfs> {
        Arc::new(self.clone())
    }

    /// Random combinations drawn per sync point.
    pub fn set_samples(&self, samples: usize) {
        self.state.lock().samples = samples;
    }

    /// Whether sync points record images (on by default; tests that only
    /// need the durable image at the end switch it off).
    pub fn set_capture(&self, on: bool) {
        self.state.lock().capture = on;
    }

    /// fsyncgate: sync number `n` from now (file or directory syncs, 1 is
    /// the next) fails, and the dirty pages (or directory operations) it
    /// covered are dropped: they stay in the page-cache view, which reads
    /// and `list` return, but never become durable, and later syncs succeed
    /// without them. `0` disarms.
    pub fn fail_sync_at(&self, n: u64) {
        let mut state = self.state.lock();
        state.syncs = 0;
        state.fail_at = n;
    }

    /// Syncs failed so far.
    pub fn failed_syncs(&self) -> u64 {
        self.state.lock().failed
    }

    /// Syncs counted since the last `fail_sync_at`.
    pub fn syncs(&self) -> u64 {
        self.state.lock().syncs
    }

    /// What a power loss at this moment leaves for sure: the durable state,
    /// nothing of what is only in the page cache.
    pub fn durable_image(&self) -> Image {
        self.state.lock().durable_image()
    }

    /// Records the images of a power loss at this moment, as at a sync
    /// point.
    pub fn capture_now(&self) {
        let mut state = self.state.lock();
        self.capture(&mut state, SyncOf::Nothing);
    }

    /// Every crash image recorded, with the acknowledged count at its time.
    pub fn take_images(&self) -> Vec<(Image, usize)> {
        self.take_labelled_images()
            .into_iter()
            .map(|(image, acked, _)| (image, acked))
            .collect()
    }

    /// Every crash image recorded, with the acknowledged count at its time
    /// and what the crash did to make it.
    pub fn take_labelled_images(&self) -> Vec<(Image, usize, String)> {
        std::mem::take(&mut self.state.lock().images)
    }

    pub fn stats(&self) -> PowerStats {
        self.state.lock().stats
    }

    fn capture(&self, state: &mut State, what: SyncOf<'_>) {
        if !state.capture {
            return;
        }
        state.stats.sync_points += 1;
        let acked = self.acked.load(Ordering::SeqCst);
        match what {
            SyncOf::File(id) => state.prefix_model_file_images(id, acked),
            SyncOf::Dir(dir) => state.prefix_model_dir_images(dir, acked),
            SyncOf::Nothing => {
                let base = state.durable_image();
                state.record(base, acked, "synced state".to_string());
            }
        }
        if state.page_model {
            state.page_model_images(acked);
        }
    }
}

/// A `MemFs` holding an image's files.
pub fn image_fs(image: &Image) -> MemFs {
    let fs = MemFs::new();
    for (path, content) in image {
        let file = fs.open(path, true).expect("create image file");
        file.write_all_at(content, 0).expect("fill image file");
    }
    fs
}

#[derive(Debug)]
struct PowerFile {
    fs: PowerFs,
    id: u64,
}

fn fsyncgate(what: &str) -> io::Error {
    io::Error::other(format!(
        "injected sync failure of {what}; its dirty pages were dropped"
    ))
}

impl VFile for PowerFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let state = self.fs.state.lock();
        let data = &state.files[&self.id].written;
        let src = data
            .get(offset as usize..offset as usize + buf.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut state = self.fs.state.lock();
        let file = state.files.get_mut(&self.id).expect("file exists");
        let op = Pending::Write(offset, buf.to_vec());
        apply(&mut file.written, &op);
        file.touch(offset as usize, offset as usize + buf.len());
        file.pending.push(op);
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.fs.state.lock();
        self.fs.capture(&mut state, SyncOf::File(self.id));
        let fail = state.sync_fails();
        let file = state.files.get_mut(&self.id).expect("file exists");
        if !fail {
            file.durable = Arc::new(file.synced());
        }
        file.dirty.clear();
        file.pending.clear();
        if fail {
            return Err(fsyncgate("a file"));
        }
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.fs.state.lock();
        let file = state.files.get_mut(&self.id).expect("file exists");
        let old = file.written.len();
        let op = Pending::SetLen(len);
        apply(&mut file.written, &op);
        file.touch(old.min(len as usize), old.max(len as usize));
        file.pending.push(op);
        Ok(())
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.fs.state.lock().files[&self.id].written.len() as u64)
    }
}

#[derive(Debug)]
struct NoLock;
impl LockGuard for NoLock {}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} does not exist", path.display()),
    )
}

impl Vfs for PowerFs {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.state.lock();
        Ok(state
            .entries
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect())
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        let mut state = self.state.lock();
        let id = match state.entries.get(path) {
            Some(id) => *id,
            None if create => {
                let id = state.next_id;
                state.next_id += 1;
                state.files.insert(id, FileState::default());
                state.entries.insert(path.to_path_buf(), id);
                state
                    .dir_ops
                    .entry(parent(path))
                    .or_default()
                    .push(DirOp::Link(path.to_path_buf(), id));
                id
            }
            None => return Err(not_found(path)),
        };
        Ok(Arc::new(PowerFile {
            fs: self.clone(),
            id,
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let id = state.entries.remove(from).ok_or_else(|| not_found(from))?;
        state.entries.insert(to.to_path_buf(), id);
        let (from_dir, to_dir) = (parent(from), parent(to));
        if from_dir == to_dir {
            state
                .dir_ops
                .entry(from_dir)
                .or_default()
                .push(DirOp::Rename(from.to_path_buf(), to.to_path_buf(), id));
        } else {
            state
                .dir_ops
                .entry(from_dir)
                .or_default()
                .push(DirOp::Unlink(from.to_path_buf()));
            state
                .dir_ops
                .entry(to_dir)
                .or_default()
                .push(DirOp::Link(to.to_path_buf(), id));
        }
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.entries.remove(path).ok_or_else(|| not_found(path))?;
        state
            .dir_ops
            .entry(parent(path))
            .or_default()
            .push(DirOp::Unlink(path.to_path_buf()));
        Ok(())
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        self.capture(&mut state, SyncOf::Dir(dir));
        let fail = state.sync_fails();
        let ops = state.dir_ops.remove(dir).unwrap_or_default();
        if fail {
            return Err(fsyncgate("a directory"));
        }
        for op in &ops {
            apply_dir_op(&mut state.durable_entries, op);
        }
        Ok(())
    }
    fn try_lock(&self, _path: &Path) -> io::Result<Option<Box<dyn LockGuard>>> {
        Ok(Some(Box::new(NoLock)))
    }
}
