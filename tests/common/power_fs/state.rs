//! What the simulator keeps: each file's page-cache and durable contents
//! with the writes since its last sync, and the directory entries of both
//! views with the operations not yet synced into their directory.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::super::env_number;
use super::{samples_from_env, Image, PowerStats, XorShift, DEFAULT_SEED, PAGE};

#[derive(Debug, Clone)]
pub(super) enum Pending {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

#[derive(Debug, Default)]
pub(super) struct FileState {
    /// The page-cache view: what reads return.
    pub(super) written: Vec<u8>,
    /// What a power loss keeps for sure.
    pub(super) durable: Arc<Vec<u8>>,
    /// Pages written since the last sync (successful or not).
    pub(super) dirty: BTreeSet<usize>,
    /// Writes since the last sync, in order, for the prefix model.
    pub(super) pending: Vec<Pending>,
}

impl FileState {
    pub(super) fn touch(&mut self, from: usize, to: usize) {
        if to > from {
            self.dirty.extend(from / PAGE..=(to - 1) / PAGE);
        }
    }

    /// The durable contents after a successful sync: dirty pages from the
    /// page cache, every other page as it was (a page dropped by a failed
    /// sync keeps its old bytes, or zeros past the old end).
    pub(super) fn synced(&self) -> Vec<u8> {
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

pub(super) fn apply(content: &mut Vec<u8>, op: &Pending) {
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
pub(super) enum DirOp {
    Link(PathBuf, u64),
    Unlink(PathBuf),
    /// Within one directory: atomic, the old name or the new one.
    Rename(PathBuf, PathBuf, u64),
}

pub(super) fn apply_dir_op(entries: &mut BTreeMap<PathBuf, u64>, op: &DirOp) {
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

pub(super) fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) files: HashMap<u64, FileState>,
    /// The page-cache view of every directory.
    pub(super) entries: BTreeMap<PathBuf, u64>,
    /// The durable view.
    pub(super) durable_entries: BTreeMap<PathBuf, u64>,
    /// Operations not yet durable, by directory, in order.
    pub(super) dir_ops: BTreeMap<PathBuf, Vec<DirOp>>,
    pub(super) next_id: u64,
    /// (image, how many operations the test had seen acknowledged, what
    /// the crash did).
    pub(super) images: Vec<(Image, usize, String)>,
    pub(super) seen: HashSet<(u64, usize)>,
    pub(super) stats: PowerStats,
    pub(super) capture: bool,
    pub(super) page_model: bool,
    pub(super) samples: usize,
    pub(super) rng: XorShift,
    /// Syncs (file or directory) since `fail_sync_at`.
    pub(super) syncs: u64,
    pub(super) fail_at: u64,
    pub(super) failed: u64,
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
    pub(super) fn durable_image(&self) -> Image {
        self.durable_entries
            .iter()
            .map(|(path, id)| (path.clone(), self.files[id].durable.clone()))
            .collect()
    }

    pub(super) fn record(&mut self, image: Image, acked: usize, label: String) {
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
    pub(super) fn sync_fails(&mut self) -> bool {
        self.syncs += 1;
        let fail = self.fail_at != 0 && self.syncs == self.fail_at;
        if fail {
            self.failed += 1;
        }
        fail
    }

    pub(super) fn flat_ops(&self) -> Vec<DirOp> {
        self.dir_ops.values().flatten().cloned().collect()
    }

    /// Files an image can hold: those named by either view or by a
    /// pending directory operation.
    pub(super) fn reachable(&self) -> BTreeSet<u64> {
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

    /// A file's name for labels: its page-cache path, or its durable one.
    pub(super) fn name_of(&self, id: u64) -> String {
        self.entries
            .iter()
            .chain(&self.durable_entries)
            .find(|(_, fid)| **fid == id)
            .map_or_else(|| format!("file #{id}"), |(p, _)| p.display().to_string())
    }
}
