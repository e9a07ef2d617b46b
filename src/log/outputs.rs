//! New segments written whole before they join the log: compaction's
//! outputs and a repair's. Each is a `<id>.seg.tmp` file created
//! exclusively, its records framed anew for their place (format 2, at most
//! `segment_bytes` a file, a longer record alone in its own), synced when
//! it is full. A caller commits them with a manifest write, or removes them
//! all with [`Outputs::abandon`].

use std::path::{Path, PathBuf};

use super::manifest::TMP_SUFFIX;
use super::record::{Framing, FRAME_HEADER_LEN};
use super::segment::{
    encode_header, new_salt, segment_name, Loc, SegmentFile, SegmentFiles, SEGMENT_HEADER_LEN,
};
use crate::io::Vfs;
use crate::{Error, Result};

/// One output: its id, file, and where its frames end.
#[derive(Debug, Clone)]
pub struct Output {
    /// The segment id.
    pub id: u32,
    /// The file, named `<id>.seg.tmp` until it is committed.
    pub file: SegmentFile,
    /// The end of its last frame.
    pub end: u64,
}

/// The name of output `id` before its commit.
pub fn tmp_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{}{TMP_SUFFIX}", segment_name(id)))
}

/// The outputs being written.
pub struct Outputs<'a> {
    fs: &'a dyn Vfs,
    dir: &'a Path,
    segment_bytes: u64,
    /// What writes them, for error messages ("compaction", "repair").
    what: &'static str,
    /// A fresh id for each new output.
    allocate: Box<dyn FnMut() -> Result<u32> + 'a>,
    /// Every output sealed so far, in order.
    done: Vec<Output>,
    current: Option<Output>,
    /// Every output made, for reading records back before the commit.
    files: SegmentFiles,
}

impl<'a> Outputs<'a> {
    /// Outputs in `dir` of at most `segment_bytes` each, with ids from
    /// `allocate`.
    pub fn new(
        fs: &'a dyn Vfs,
        dir: &'a Path,
        segment_bytes: u64,
        what: &'static str,
        allocate: impl FnMut() -> Result<u32> + 'a,
    ) -> Self {
        Outputs {
            fs,
            dir,
            segment_bytes,
            what,
            allocate: Box::new(allocate),
            done: Vec::new(),
            current: None,
            files: SegmentFiles::default(),
        }
    }

    /// Where a frame of `len` bytes goes: the end of the current output, or
    /// the start of a new one, made first, when there is none or it is full.
    ///
    /// # Errors
    /// `Io` when a new output cannot be made; `InvalidInput` for a frame too
    /// long for any segment.
    pub fn place(&mut self, len: u64) -> Result<Loc> {
        let full = self
            .current
            .as_ref()
            .is_none_or(|c| c.end > SEGMENT_HEADER_LEN as u64 && c.end + len > self.segment_bytes);
        if full {
            self.start()?;
        }
        let current = self.current()?;
        let too_long = || Error::invalid(format!("a {len}-byte record does not fit a segment"));
        Ok(Loc {
            segment: current.id,
            offset: u32::try_from(current.end).map_err(|_| too_long())?,
            len: u32::try_from(len).map_err(|_| too_long())?,
        })
    }

    /// Appends `payload` as a frame at [`Outputs::place`].
    ///
    /// # Errors
    /// As [`Outputs::place`], and `Io` when the write fails.
    pub fn push(&mut self, payload: &[u8]) -> Result<Loc> {
        let mut frame = vec![0u8; FRAME_HEADER_LEN];
        frame.extend_from_slice(payload);
        let loc = self.place(frame.len() as u64)?;
        let what = self.what;
        let current = self.current_mut()?;
        debug_assert_eq!(u64::from(loc.offset), current.end);
        current.file.framing.seal(&mut frame, current.end);
        current
            .file
            .file
            .write_all_at(&frame, current.end)
            .map_err(|e| Error::io(format!("writing {what} output {}", current.id), e))?;
        current.end += frame.len() as u64;
        Ok(loc)
    }

    /// Seals the current output and makes a new one, its header written.
    ///
    /// # Errors
    /// `Io` from the file system; what the id allocator returns.
    pub fn start(&mut self) -> Result<()> {
        self.seal()?;
        let id = (self.allocate)()?;
        let path = tmp_path(self.dir, id);
        let context = || format!("creating {} output {}", self.what, path.display());
        let salt = new_salt();
        let file = self
            .fs
            .create_new(&path)
            .map_err(|e| Error::io(context(), e))?;
        let segment = SegmentFile::new(file, Framing::V2 { salt });
        // Listed at once, so that `abandon` removes it whatever fails next.
        self.files.write().insert(id, segment.clone());
        segment
            .file
            .write_all_at(&encode_header(id, salt), 0)
            .map_err(|e| Error::io(context(), e))?;
        self.current = Some(Output {
            id,
            file: segment,
            end: SEGMENT_HEADER_LEN as u64,
        });
        Ok(())
    }

    /// Every output made so far, for reading records back.
    pub fn files(&self) -> &SegmentFiles {
        &self.files
    }

    /// Whether no output has been made.
    pub fn is_empty(&self) -> bool {
        self.files.read().is_empty()
    }

    /// Syncs the current output and returns every output, in order. The
    /// caller syncs the directory before it commits them.
    ///
    /// # Errors
    /// `Io` when the sync fails.
    pub fn finish(&mut self) -> Result<Vec<Output>> {
        self.seal()?;
        Ok(std::mem::take(&mut self.done))
    }

    /// Removes every output made, finished or not: for a failure before
    /// the commit.
    pub fn abandon(&mut self) {
        self.current = None;
        self.done.clear();
        for id in self.files.read().keys() {
            let _ = self.fs.remove(&tmp_path(self.dir, *id));
        }
    }

    fn seal(&mut self) -> Result<()> {
        if let Some(current) = self.current.take() {
            current.file.file.sync_data().map_err(|e| {
                Error::io(format!("syncing {} output {}", self.what, current.id), e)
            })?;
            self.done.push(current);
        }
        Ok(())
    }

    fn current(&self) -> Result<&Output> {
        self.current
            .as_ref()
            .ok_or_else(|| Error::Internal(format!("no {} output is open", self.what)))
    }

    fn current_mut(&mut self) -> Result<&mut Output> {
        let what = self.what;
        self.current
            .as_mut()
            .ok_or_else(|| Error::Internal(format!("no {what} output is open")))
    }
}
