//! Reading content files: the checks a get and the integrity check make.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use super::{io_err, Opened};
use crate::contract::{BlobMeta, BlobReader};
use crate::io::VFile;
use crate::{Error, Result};

/// The checks a read of a log-engine blob makes: its size and its BLAKE3
/// hash (a missing or malformed hash in the metadata is `Corruption`).
fn expected(opened: Opened, meta: &BlobMeta) -> Result<Checked> {
    let hash = meta
        .content_hash
        .as_deref()
        .and_then(|h| blake3::Hash::from_hex(h).ok())
        .ok_or_else(|| {
            Error::corruption(
                &opened.path,
                0,
                format!("blob {} has no valid content hash", meta.id),
            )
        })?;
    Ok(Checked {
        file: opened.file,
        path: opened.path,
        id: meta.id.clone(),
        size: meta.size,
        hash: Some(hash),
    })
}

/// A reader of the opened content file of `meta` that checks its size and
/// hash as it goes (see [`Checked::reader`]): what a get returns.
pub fn read(opened: Opened, meta: &BlobMeta) -> Result<BlobReader> {
    expected(opened, meta)?.reader()
}

/// Reads the whole opened content file of `meta` and checks its size and
/// hash before returning a reader of it from its start: the integrity
/// check's read, which must see every byte whatever the blob's size.
pub fn verify(opened: Opened, meta: &BlobMeta) -> Result<BlobReader> {
    let checked = expected(opened, meta)?;
    let (file, path, size) = (checked.file.clone(), checked.path.clone(), checked.size);
    let mut stream = checked.reader()?;
    // As large as a read-ahead piece, so pieces are hashed in place.
    let mut buf = vec![0u8; READ_AHEAD];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The corruption the reader found, or a plain I/O error.
            Err(e) => {
                return Err(e
                    .downcast::<Error>()
                    .unwrap_or_else(io_err(&path, "reading")))
            }
        }
    }
    Ok(Box::new(FileReader::new(file, size)))
}

/// Blobs of at most this many bytes are read whole and checked before a get
/// returns: a damaged small blob fails the get itself. Larger ones stream.
pub const SMALL_BLOB: u64 = 64 * 1024;
/// How much a streaming read takes from its file (and hashes) at a time.
const READ_AHEAD: usize = 256 * 1024;

/// A content file with what its bytes must be: `size` bytes and, when
/// `hash` is given, that BLAKE3 hash (the SQLite driver's schema has no
/// hash, so it checks the size alone).
#[derive(Debug)]
pub struct Checked {
    /// The open file.
    pub file: Arc<dyn VFile>,
    /// Its path, for errors.
    pub path: PathBuf,
    /// The blob's id, for errors.
    pub id: String,
    /// The size the metadata records.
    pub size: u64,
    /// The hash the metadata records, if the driver keeps one.
    pub hash: Option<blake3::Hash>,
}

impl Checked {
    fn corruption(&self, offset: u64, reason: String) -> Error {
        Error::corruption(&self.path, offset, reason)
    }

    fn check_size(&self) -> Result<()> {
        let len = self.file.size().map_err(io_err(&self.path, "reading"))?;
        if len != self.size {
            return Err(self.corruption(
                0,
                format!(
                    "blob {} should be {} bytes, the file has {len}",
                    self.id, self.size
                ),
            ));
        }
        Ok(())
    }

    /// A reader of the blob's bytes. The file's length is checked first
    /// (a mismatch is `Corruption`). A blob of at most [`SMALL_BLOB`] bytes
    /// is then read whole and its hash checked before this returns; a
    /// larger one streams, hashed as it is read, and the read that would
    /// hand out its last bytes instead fails with an `io::Error` of kind
    /// `InvalidData` carrying `Error::Corruption` when the bytes do not
    /// match the hash or the file is not `size` bytes long (it may change
    /// after this check), and keeps failing after that. So a consumer that
    /// reads to the end, or reads exactly `size` bytes, never takes damaged
    /// bytes for the whole blob.
    pub fn reader(self) -> Result<BlobReader> {
        self.check_size()?;
        if self.size > SMALL_BLOB {
            return Ok(Box::new(CheckedReader::new(self)));
        }
        let mut bytes = vec![0u8; self.size as usize];
        self.file
            .read_exact_at(&mut bytes, 0)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => self.corruption(
                    0,
                    format!(
                        "the file of blob {} is shorter than {} bytes",
                        self.id, self.size
                    ),
                ),
                _ => io_err(&self.path, "reading")(e),
            })?;
        if let Some(reason) = self.mismatch(|| blake3::hash(&bytes)) {
            return Err(self.corruption(0, reason));
        }
        Ok(Box::new(io::Cursor::new(bytes)))
    }

    /// Why a file whose bytes hash to `got()` is not the blob, if it is
    /// not (never hashing when there is no hash to check against).
    fn mismatch(&self, got: impl FnOnce() -> blake3::Hash) -> Option<String> {
        let want = self.hash?;
        (got() != want).then(|| format!("the bytes of blob {} no longer match their hash", self.id))
    }
}

/// Streams a content file, hashing each piece as it is read, and checks
/// the whole before handing out the last piece (see [`Checked::reader`]).
struct CheckedReader {
    checked: Checked,
    hasher: blake3::Hasher,
    /// Bytes read from the file (and hashed) so far.
    pos: u64,
    /// Read ahead and hashed, not yet handed out from `start` on.
    buf: Vec<u8>,
    start: usize,
    /// Set once the bytes failed their check: every later read fails too.
    failed: Option<(u64, String)>,
}

impl CheckedReader {
    fn new(checked: Checked) -> Self {
        CheckedReader {
            checked,
            hasher: blake3::Hasher::new(),
            pos: 0,
            buf: Vec::new(),
            start: 0,
            failed: None,
        }
    }

    fn failure(&self) -> Option<io::Error> {
        let (offset, reason) = self.failed.as_ref()?;
        let err = self.checked.corruption(*offset, reason.clone());
        Some(io::Error::new(io::ErrorKind::InvalidData, err))
    }

    /// Records that the bytes failed their check and returns the error; the
    /// read-ahead is dropped, so nothing more is handed out.
    fn fail(&mut self, offset: u64, reason: String) -> io::Error {
        self.buf.clear();
        self.start = 0;
        let err = self.checked.corruption(offset, reason.clone());
        self.failed = Some((offset, reason));
        io::Error::new(io::ErrorKind::InvalidData, err)
    }

    /// Reads the next piece of the file into `target` (whose length is what
    /// is left, at most [`READ_AHEAD`]) and hashes it; at the end of the
    /// blob, checks the hash and the file's length. A mismatch is recorded
    /// in `failed`; a plain I/O error is returned and may be retried.
    fn fill(
        c: &Checked,
        hasher: &mut blake3::Hasher,
        pos: u64,
        target: &mut [u8],
    ) -> io::Result<std::result::Result<(), (u64, String)>> {
        match c.file.read_exact_at(target, pos) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                let reason = format!("the file of blob {} ends before its {} bytes", c.id, c.size);
                return Ok(Err((pos, reason)));
            }
            other => other?,
        }
        let end = pos + target.len() as u64;
        let hashed = c.hash.is_some();
        if end < c.size {
            if hashed {
                hasher.update(target);
            }
            return Ok(Ok(()));
        }
        // Before hashing the last piece: a failed size lookup leaves the
        // hasher as it was, so the piece can be read again.
        let len = c.file.size()?;
        if len != c.size {
            let reason = format!(
                "blob {} should be {} bytes, the file has {len}",
                c.id, c.size
            );
            return Ok(Err((c.size.min(len), reason)));
        }
        if hashed {
            hasher.update(target);
        }
        Ok(c.mismatch(|| hasher.finalize())
            .map_or(Ok(()), |reason| Err((0, reason))))
    }
}

impl Read for CheckedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(err) = self.failure() {
            return Err(err);
        }
        if self.start == self.buf.len() {
            let left = self.checked.size - self.pos;
            if left == 0 || out.is_empty() {
                return Ok(0);
            }
            let next = left.min(READ_AHEAD as u64) as usize;
            // A caller's buffer that takes the whole piece is filled
            // directly: no copy through our own.
            let direct = out.len() >= next;
            let target = if direct {
                &mut out[..next]
            } else {
                self.buf.resize(next, 0);
                self.start = 0;
                &mut self.buf[..]
            };
            match Self::fill(&self.checked, &mut self.hasher, self.pos, target) {
                Ok(Ok(())) => {}
                Ok(Err((offset, reason))) => return Err(self.fail(offset, reason)),
                Err(e) => {
                    // The piece was not hashed: the next call reads it
                    // again.
                    self.buf.clear();
                    self.start = 0;
                    return Err(e);
                }
            }
            self.pos += next as u64;
            if direct {
                return Ok(next);
            }
        }
        let n = out.len().min(self.buf.len() - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

/// Streams a file through the file-system seam.
#[derive(Debug)]
pub struct FileReader {
    file: Arc<dyn VFile>,
    pos: u64,
    len: u64,
}

impl FileReader {
    /// Reads `file` from its start to `len`.
    pub fn new(file: Arc<dyn VFile>, len: u64) -> Self {
        FileReader { file, pos: 0, len }
    }
}

impl Read for FileReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min((self.len - self.pos) as usize);
        if n == 0 {
            return Ok(0);
        }
        self.file.read_exact_at(&mut buf[..n], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}
