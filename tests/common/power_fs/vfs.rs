//! The simulator as a file system: writes go to the page-cache view, a
//! sync records the crash images first and then makes its file or its
//! directory's entries durable (or, armed by `fail_sync_at`, drops them).

use std::io;
use std::path::Path;
use std::sync::Arc;

use logstore::io::{LockGuard, VFile, Vfs};

use super::state::{apply, apply_dir_op, parent, DirOp, FileState, Pending};
use super::{PowerFs, SyncOf};

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
