//! The power-loss simulator: a file system that keeps what was written
//! apart from what was synced, for file contents and for directory entries.
//! At every sync point it records the images a power loss at that moment
//! could leave behind:
//! - only the synced state;
//! - the synced state plus each prefix of the file's later writes;
//! - the same with the last write of the prefix torn in half;
//! - the file extended with zeros to its written length;
//! - for a directory sync, the directory's new entries over synced contents.
//!
//! Each image is a set of files, which `image_fs` turns into a `MemFs` that a
//! store can open.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use logstore::io::{LockGuard, MemFs, VFile, Vfs};
use parking_lot::Mutex;

/// Files by path, as a crash would leave them.
pub type Image = BTreeMap<PathBuf, Vec<u8>>;

#[derive(Debug, Clone)]
enum Pending {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

#[derive(Debug, Default)]
struct FileState {
    written: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Pending>,
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

#[derive(Debug, Default)]
struct State {
    files: HashMap<u64, FileState>,
    entries: BTreeMap<PathBuf, u64>,
    durable_entries: BTreeMap<PathBuf, u64>,
    next_id: u64,
    /// (images, how many operations the test had seen acknowledged).
    images: Vec<(Image, usize)>,
}

impl State {
    fn durable_image(&self) -> Image {
        self.durable_entries
            .iter()
            .map(|(path, id)| (path.clone(), self.files[id].durable.clone()))
            .collect()
    }
}

/// The simulator; clones share state.
#[derive(Debug, Clone, Default)]
pub struct PowerFs {
    state: Arc<Mutex<State>>,
    /// Operations acknowledged so far; the test bumps it after each one.
    pub acked: Arc<AtomicUsize>,
}

impl PowerFs {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn as_vfs(&self) -> Arc<dyn Vfs> {
        Arc::new(self.clone())
    }

    /// Every crash image recorded, with the acknowledged count at its time.
    pub fn take_images(&self) -> Vec<(Image, usize)> {
        std::mem::take(&mut self.state.lock().images)
    }

    fn capture_file_sync(&self, state: &mut State, id: u64) {
        let acked = self.acked.load(Ordering::SeqCst);
        let base = state.durable_image();
        state.images.push((base.clone(), acked));
        let paths: Vec<PathBuf> = state
            .durable_entries
            .iter()
            .filter(|(_, fid)| **fid == id)
            .map(|(p, _)| p.clone())
            .collect();
        let file = &state.files[&id];
        let mut new_images = Vec::new();
        for path in paths {
            let mut content = file.durable.clone();
            for op in &file.pending {
                if let Pending::Write(offset, bytes) = op {
                    let mut torn = content.clone();
                    apply(
                        &mut torn,
                        &Pending::Write(*offset, bytes[..bytes.len() / 2].to_vec()),
                    );
                    let mut image = base.clone();
                    image.insert(path.clone(), torn);
                    new_images.push((image, acked));
                }
                apply(&mut content, op);
                let mut image = base.clone();
                image.insert(path.clone(), content.clone());
                new_images.push((image, acked));
            }
            if file.written.len() > file.durable.len() {
                let mut zeros = file.durable.clone();
                zeros.resize(file.written.len(), 0);
                let mut image = base.clone();
                image.insert(path.clone(), zeros);
                new_images.push((image, acked));
            }
        }
        state.images.extend(new_images);
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
        file.pending.push(op);
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.fs.state.lock();
        self.fs.capture_file_sync(&mut state, self.id);
        let file = state.files.get_mut(&self.id).expect("file exists");
        file.durable = file.written.clone();
        file.pending.clear();
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.fs.state.lock();
        let file = state.files.get_mut(&self.id).expect("file exists");
        let op = Pending::SetLen(len);
        apply(&mut file.written, &op);
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
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state
            .entries
            .remove(path)
            .map(drop)
            .ok_or_else(|| not_found(path))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let acked = self.acked.load(Ordering::SeqCst);
        let base = state.durable_image();
        state.images.push((base, acked));
        // The directory's entries become durable: children of `dir` now
        // are what `entries` says.
        let children = |map: &BTreeMap<PathBuf, u64>| -> Vec<(PathBuf, u64)> {
            map.iter()
                .filter(|(p, _)| p.parent() == Some(dir))
                .map(|(p, id)| (p.clone(), *id))
                .collect()
        };
        for (path, _) in children(&state.durable_entries.clone()) {
            state.durable_entries.remove(&path);
        }
        for (path, id) in children(&state.entries.clone()) {
            state.durable_entries.insert(path, id);
        }
        let image = state.durable_image();
        state.images.push((image, acked));
        Ok(())
    }
    fn try_lock(&self, _path: &Path) -> io::Result<Option<Box<dyn LockGuard>>> {
        Ok(Some(Box::new(NoLock)))
    }
}
