//! Read-only handles: open a store without writing a byte, beside the
//! writer that owns it (in this process or another), and follow its log.
//!
//! A read-only open builds the same state a writable open would, from the
//! same valid prefix of the log (`log::recovery::Mode::ReadOnly`), but
//! settles nothing: no tail is cut or quarantined, no blob file swept, no
//! snapshot written, no lock file made. It takes no lock at all, so it
//! works beside a writer and on read-only media.
//!
//! [`LogStore::refresh`] catches up with what the writer appended since:
//! - With the manifest unchanged, it reads on from where its view ends:
//!   the frames of its newest segment that now verify, then each segment
//!   the writer rolled to. It stops at the first frame that does not
//!   verify (a write in progress, or a torn tail), exactly where recovery
//!   would, and starts there next time.
//! - With a new manifest (the writer compacted), it loads a new view from
//!   the new files and swaps it in whole.
//!
//! What a reader sees is always a prefix of the writer's writes, one
//! whole record at a time, and never goes backwards. Reads see the view
//! of the last open or refresh: they do not refresh on their own, so a
//! series of reads between two refreshes is consistent with one moment.
//!
//! The writer does not know its readers exist. It never writes a byte a
//! reader has read (records are written once; recovery cuts only past the
//! first invalid frame, which no reader has applied), and a segment it
//! deletes stays readable through the descriptors and maps a reader holds
//! (POSIX keeps an unlinked file until its last descriptor closes). A
//! reader process that dies leaves nothing behind.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::dir::{self, StoreDir};
use super::{snapshot_file, Inner, LogStore};
use crate::index::State;
use crate::io::{Access, RealFs, Vfs};
use crate::log::commit::GroupCommit;
use crate::log::manifest::{self, Layout, Manifest};
use crate::log::read::body as read_body;
use crate::log::recovery::{recover, Mode, RecoveryReport, Tail};
use crate::log::scan::{Scan, Step};
use crate::log::segment::{
    check_header, parse_segment_name, SegmentFile, SegmentFiles, SEGMENT_HEADER_LEN,
};
use crate::log::writer::LogWriter;
use crate::options::Options;
use crate::{Error, Result};

/// How many times a read-only open (or a refresh's reload) starts again
/// when a live writer's compaction switched files under it.
const ATTEMPTS: usize = 20;

/// The bytes a refresh reads at a time: a writer's few new records, not
/// the megabyte of zeros it reserves ahead of them.
const FOLLOW_WINDOW: usize = 64 * 1024;

/// What a read-only handle's view was built from.
#[derive(Debug)]
pub(super) struct Follow {
    /// The manifest the view was built from.
    manifest: Manifest,
    /// A refresh failed part way: the next one rebuilds the view whole.
    stale: bool,
}

/// A store's state built from its files, read-only.
struct View {
    state: State,
    files: SegmentFiles,
    tail: Tail,
    layout: Layout,
    recovery: RecoveryReport,
}

impl LogStore {
    /// Opens the store in `dir` for reading only.
    ///
    /// It writes nothing at all (no recovery cut, no quarantine copy, no
    /// sweep, no snapshot, no lock file), so it works beside a writer that
    /// holds the store (in this process or another) and on read-only media.
    /// It serves the valid prefix of the log: exactly what a writable open
    /// would keep (records after damage, which that open would cut, are
    /// named in [`LogStore::recovery_report`] and by `verify`).
    /// [`LogStore::refresh`] follows the writer's later writes.
    /// Every write returns [`Error::ReadOnly`]; `compact` does too.
    ///
    /// # Errors
    /// `NotAStore` when `dir` holds no store; `Corruption` for damage a
    /// writable open would refuse too; `Io` from the file system.
    pub fn open_read_only(dir: impl AsRef<Path>, opts: Options) -> Result<LogStore> {
        let dir = dir.as_ref();
        let fs = RealFs::open_root(dir, Access::ReadOnly)
            .map_err(|e| Error::io(format!("opening {}", dir.display()), e))?;
        Self::open_read_only_with_fs(Arc::new(fs), dir, opts)
    }

    /// [`LogStore::open_read_only`] through a given file system: the seam
    /// the tests use.
    ///
    /// # Errors
    /// As [`LogStore::open_read_only`].
    #[doc(hidden)]
    pub fn open_read_only_with_fs(fs: Arc<dyn Vfs>, dir: &Path, opts: Options) -> Result<LogStore> {
        opts.validate()?;
        if dir::classify(fs.as_ref(), dir)? != StoreDir::Store {
            return Err(Error::NotAStore {
                path: dir.to_path_buf(),
            });
        }
        let view = load_view(fs.as_ref(), dir)?;
        let commit = Arc::new(GroupCommit::default());
        let writer = view.writer(&fs, dir, &opts, commit.clone());
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            opts,
            state: RwLock::new(view.state),
            files: view.files,
            writer: Mutex::new(writer),
            commit,
            poisoned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            lock: Mutex::new(None),
            recovery: view.recovery,
            fs,
            compaction: Mutex::new(()),
            auto: super::compaction::AutoCompact::default(),
            snapshot_covers: Mutex::new(None),
            follow: Some(Mutex::new(Follow {
                manifest: view.layout.manifest,
                stale: false,
            })),
            verified: Arc::default(),
            blob_dirs_synced: AtomicBool::new(false),
        });
        Ok(LogStore::serving(inner, None))
    }

    /// Catches up a read-only handle with what the writer appended since
    /// its open or last refresh (new records, new segments, a compaction's
    /// new files). Reads before it see the old view, reads after it the
    /// new one; the view never goes backwards, and every write the writer
    /// had acknowledged before the refresh began is in it. On a writable
    /// handle, which is always current, it does nothing.
    ///
    /// # Errors
    /// `Closed`; `Corruption` for damage in a segment the writer sealed;
    /// `Io` from the file system. After an error the view is still a
    /// prefix of the log, and the next refresh rebuilds it whole.
    pub fn refresh(&self) -> Result<()> {
        self.inner().refresh()
    }

    /// Whether this handle was opened with [`LogStore::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.inner().follow.is_some()
    }
}

impl View {
    /// The log writer that holds this view's order and end (a read-only
    /// handle never appends with it).
    fn writer(
        &self,
        fs: &Arc<dyn Vfs>,
        dir: &Path,
        opts: &Options,
        commit: Arc<GroupCommit>,
    ) -> LogWriter {
        let mut writer = LogWriter::new(
            fs.clone(),
            dir.to_path_buf(),
            opts.segment_bytes,
            self.tail.clone(),
            self.layout.manifest.clone(),
            commit,
        );
        if self.tail.end > 0 {
            writer.map_active(&self.files);
        }
        writer
    }
}

/// Builds a view of the store from its files. A live writer may commit a
/// compaction meanwhile (and remove the files the old manifest named), so
/// the manifest is read again after the files are open, and the whole
/// load starts again when it changed or a file it named was gone.
fn load_view(fs: &dyn Vfs, dir: &Path) -> Result<View> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        match try_load_view(fs, dir) {
            Ok(view) if manifest::read(fs, dir)? == view.layout.manifest => return Ok(view),
            Ok(_) => {}
            Err(e) if switched(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
        std::thread::yield_now();
    }
    Err(last.unwrap_or_else(|| {
        Error::io(
            format!("reading {}", dir.display()),
            std::io::Error::other("the writer kept compacting while the store was read"),
        )
    }))
}

/// An error a compaction's switch can cause: a file gone, or the manifest
/// naming one not yet renamed.
fn switched(e: &Error) -> bool {
    match e {
        Error::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        Error::Corruption { reason, .. } => reason.contains("which is missing"),
        _ => false,
    }
}

fn try_load_view(fs: &dyn Vfs, dir: &Path) -> Result<View> {
    let layout = manifest::layout_read_only(fs, dir)?;
    let files = SegmentFiles::default();
    let (mut state, start, snapshot_use) = snapshot_file::load(fs, dir, &layout);
    let (tail, mut recovery) = recover(fs, dir, &layout, &files, start, Mode::ReadOnly, |r, l| {
        state.replay(r, l, &|at| read_body(&files, dir, at))
    })?;
    recovery.snapshot = snapshot_use;
    Ok(View {
        state,
        files,
        tail,
        layout,
        recovery,
    })
}

impl Inner {
    pub(super) fn refresh(&self) -> Result<()> {
        self.check_open()?;
        let Some(follow) = &self.follow else {
            return Ok(());
        };
        let mut follow = follow.lock();
        let manifest = manifest::read(self.fs.as_ref(), &self.dir)?;
        if follow.stale || manifest != follow.manifest {
            return self.reload(&mut follow);
        }
        // The listing comes first: a segment it shows was created after
        // every append to the ones before it, so reading those to their
        // end after the listing misses nothing.
        let newer = self.newer_segments(&follow.manifest)?;
        // A compaction renames its outputs into place only after it
        // commits its manifest: if the listing caught one, the manifest
        // read again has changed, and the view is rebuilt instead of the
        // outputs being taken for the writer's new segments.
        if manifest::read(self.fs.as_ref(), &self.dir)? != follow.manifest {
            return self.reload(&mut follow);
        }
        let mut writer = self.writer.lock();
        let at = writer.position();
        // Every segment to read is opened before any record is applied: a
        // compaction that commits now may remove the newer ones (they are
        // its inputs), and that is a new manifest, not an error.
        let last = newer.last().copied().unwrap_or(at.segment);
        let mut segments = Vec::new();
        for id in std::iter::once(at.segment).chain(newer.iter().copied()) {
            let from = if id == at.segment { at.offset } else { 0 };
            match self.segment_to_follow(id, from, id != last) {
                Ok(Some(segment)) => segments.push((id, from, segment)),
                Ok(None) => break,
                Err(e) if switched(&e) => {
                    drop(writer);
                    return self.reload(&mut follow);
                }
                Err(e) => return Err(e),
            }
        }
        let mut state = self.state.write();
        for (id, from, segment) in segments {
            match self.catch_up(id, &segment, from, id != last, &mut state) {
                Ok(end) => writer.follow(&self.files, id, segment, end),
                Err(e) => {
                    // Some records may be applied and others not: the view
                    // is rebuilt whole, now or at the next refresh.
                    follow.stale = true;
                    drop((state, writer));
                    // A rebuild that succeeds reads the same files: the
                    // error was the moment's, and the view is now whole.
                    return self.reload(&mut follow).map_err(|_| e);
                }
            }
        }
        Ok(())
    }

    /// The segment `id` a refresh reads on from `from`: the one the view
    /// holds, or (for a segment new to it) opened, its header checked.
    /// `None` when a new segment's header does not verify yet (the writer
    /// is creating it); a sealed one's must.
    fn segment_to_follow(&self, id: u32, from: u64, sealed: bool) -> Result<Option<SegmentFile>> {
        if from > 0 {
            if let Some(segment) = self.files.read().get(&id) {
                return Ok(Some(segment.clone()));
            }
        }
        let path = self.dir.join(crate::log::segment::segment_name(id));
        let io_err = |e| Error::io(format!("reading segment {}", path.display()), e);
        let file = self.fs.open(&path, false).map_err(io_err)?;
        let len = file.size().map_err(io_err)?;
        let mut header = vec![0u8; SEGMENT_HEADER_LEN.min(len as usize)];
        file.read_exact_at(&mut header, 0).map_err(io_err)?;
        match check_header(&header, id) {
            Ok(framing) => Ok(Some(
                SegmentFile::new(file, framing)
                    .active(self.opts.segment_bytes, SEGMENT_HEADER_LEN as u64),
            )),
            Err(_) if !sealed => Ok(None),
            Err(reason) => Err(Error::corruption(&path, 0, reason)),
        }
    }

    /// Reads `segment` (id `id`) on from `from`, applying each record that
    /// verifies; returns where its records now end. A sealed segment must
    /// verify to its end; the newest ends at its first invalid frame.
    fn catch_up(
        &self,
        id: u32,
        segment: &SegmentFile,
        from: u64,
        sealed: bool,
        state: &mut State,
    ) -> Result<u64> {
        let path = self.dir.join(crate::log::segment::segment_name(id));
        let io_err = |e| Error::io(format!("reading segment {}", path.display()), e);
        let len = segment.file.size().map_err(io_err)?;
        let start = from.max(SEGMENT_HEADER_LEN as u64);
        let mut scan =
            Scan::new(segment.file.as_ref(), segment.framing, id, len, start).window(FOLLOW_WINDOW);
        // Registered before its records are applied, so a record that
        // reads a body (a patch) finds it; readers wait on the state lock
        // the caller holds, so none sees the file before its records.
        self.files.write().insert(id, segment.clone());
        loop {
            let step = match scan.next() {
                Ok(step) => step,
                // The writer's roll cuts the zeros it reserved past its last
                // record: the file may have ended before the length read
                // above. The records so far are whole; the next refresh
                // reads on from them.
                Err(e) if !sealed && e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Ok(scan.position());
                }
                Err(e) => return Err(io_err(e)),
            };
            match step {
                Step::Frame { loc, record, .. } => {
                    let record = record.map_err(|reason| {
                        Error::corruption(&path, u64::from(loc.offset), reason)
                    })?;
                    state.replay(record, loc, &|at| read_body(&self.files, &self.dir, at))?;
                }
                Step::End => return Ok(scan.position().min(len)),
                Step::Invalid { offset, reason } if sealed => {
                    let reason = format!("{reason} in a sealed segment");
                    return Err(Error::corruption(&path, offset, reason));
                }
                Step::Invalid { offset, .. } => return Ok(offset),
            }
        }
    }

    /// The writer's segments newer than this view's newest, in order: a
    /// compaction's outputs (the manifest's base) take ids above the
    /// writer's segment of the moment, but replay before it, and are not
    /// among them.
    fn newer_segments(&self, manifest: &Manifest) -> Result<Vec<u32>> {
        let newest = self.writer.lock().position().segment;
        let mut ids: Vec<u32> = manifest::settled_listing(self.fs.as_ref(), &self.dir)?
            .iter()
            .filter_map(|name| parse_segment_name(name))
            .filter(|id| *id > newest && !manifest.base.contains(id))
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// The writer compacted: a new view from the new files, swapped in
    /// whole (state and files under their locks together, so no read
    /// pairs a location of one view with a file of the other).
    fn reload(&self, follow: &mut Follow) -> Result<()> {
        let view = load_view(self.fs.as_ref(), &self.dir)?;
        let writer = view.writer(&self.fs, &self.dir, &self.opts, self.commit.clone());
        let mut old_writer = self.writer.lock();
        let mut state = self.state.write();
        let mut files = self.files.write();
        *files = std::mem::take(&mut *view.files.write());
        *state = view.state;
        *old_writer = writer;
        follow.manifest = view.layout.manifest;
        follow.stale = false;
        Ok(())
    }
}
