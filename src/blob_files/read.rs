//! Reading content files: the checks a get and the integrity check make.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use super::{io_err, Opened, Verified};
use crate::contract::{BlobMeta, BlobReader};
use crate::io::{Stamp, VFile};
use crate::log::record::BLOB_HASH_LEN;
use crate::{Error, Result};

/// The checks a read of a log-engine blob makes: its size and its BLAKE3
/// hash (a missing or malformed hash in the metadata is `Corruption`).
/// Returns them with the hash's bytes, the key of [`Verified`].
fn expected(opened: Opened, meta: &BlobMeta) -> Result<(Checked, [u8; BLOB_HASH_LEN])> {
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
    let checked = Checked {
        file: opened.file,
        path: opened.path,
        id: meta.id.clone(),
        size: meta.size,
        hash: Some(hash),
    };
    Ok((checked, *hash.as_bytes()))
}

/// The file's [`Stamp`], read before any of its bytes.
fn stamp_of(checked: &Checked) -> Result<Option<Stamp>> {
    checked
        .file
        .stamp()
        .map_err(io_err(&checked.path, "reading the status of"))
}

/// A reader of the opened content file of `meta`: what a get returns. A
/// file this handle already hashed whole and whose [`Stamp`] has not moved
/// since (it is in `verified`) is checked for its length alone, as the
/// SQLite driver checks its files; any other is hashed as it is read (see
/// [`Checked::reader`]) and, once its bytes all match, added to `verified`
/// with the stamp it had before the first byte was read.
pub fn read(opened: Opened, meta: &BlobMeta, verified: &Arc<Verified>) -> Result<BlobReader> {
    let (mut checked, key) = expected(opened, meta)?;
    let stamp = stamp_of(&checked)?;
    let len = stamp.map(|s| s.len);
    if let Some(stamp) = stamp.filter(|s| verified.holds(&key, s)) {
        checked.hash = None;
        return checked.open(Some(stamp.len), None);
    }
    let record = Record {
        verified: verified.clone(),
        key,
        stamp,
    };
    checked.open(len, Some(record))
}

/// Reads the whole opened content file of `meta` and checks its size and
/// hash before returning a reader of it from its start: the integrity
/// check's read, which must see every byte whatever the blob's size, and
/// never consults `verified`. A file found whole is added to `verified`,
/// a damaged one taken out of it, so this handle's next get of it fails.
pub fn verify(
    opened: Opened,
    meta: &BlobMeta,
    verified: Option<&Arc<Verified>>,
) -> Result<BlobReader> {
    let (checked, key) = expected(opened, meta)?;
    let (file, path, size) = (checked.file.clone(), checked.path.clone(), checked.size);
    let stamp = stamp_of(&checked)?;
    let len = stamp.map(|s| s.len);
    let record = verified.map(|verified| Record {
        verified: verified.clone(),
        key,
        stamp,
    });
    let mut stream = checked.open(len, record)?;
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

/// Where a read that hashes a content file reports the outcome: a file
/// whose bytes all match joins `verified` (when its stamp was read and
/// settled), a damaged one leaves it.
#[derive(Debug)]
struct Record {
    verified: Arc<Verified>,
    key: [u8; BLOB_HASH_LEN],
    /// The file's stamp before its first byte was read.
    stamp: Option<Stamp>,
}

impl Record {
    fn whole(&self) {
        if let Some(stamp) = self.stamp {
            self.verified.insert(self.key, stamp);
        }
    }

    fn damaged(&self) {
        self.verified.forget(&self.key);
    }
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

    /// Checks the file's length: `len` when the caller just read it, or
    /// looked up now.
    fn check_size(&self, len: Option<u64>) -> Result<()> {
        let len = match len {
            Some(len) => len,
            None => self.file.size().map_err(io_err(&self.path, "reading"))?,
        };
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
    ///
    /// A caller's buffer that takes a whole piece is filled directly, and
    /// `read_to_end` reads the rest straight into the caller's vector: a
    /// blob with no hash to check is then one read of its file.
    #[cfg(feature = "sqlite")]
    pub fn reader(self) -> Result<BlobReader> {
        self.open(None, None)
    }

    /// [`Checked::reader`], given the file's length if the caller just
    /// read it, reporting a hash check's outcome to `record`.
    fn open(self, len: Option<u64>, record: Option<Record>) -> Result<BlobReader> {
        let damaged = |e: Error| {
            if let (Some(record), Error::Corruption { .. }) = (&record, &e) {
                record.damaged();
            }
            e
        };
        self.check_size(len).map_err(damaged)?;
        if self.size > SMALL_BLOB {
            return Ok(Box::new(CheckedReader::new(self, record)));
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
            })
            .map_err(damaged)?;
        if let Some(reason) = self.mismatch(|| blake3::hash(&bytes)) {
            return Err(damaged(self.corruption(0, reason)));
        }
        if let Some(record) = &record {
            record.whole();
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
    /// Told whether the bytes matched their hash, once that is known.
    record: Option<Record>,
}

impl CheckedReader {
    fn new(checked: Checked, record: Option<Record>) -> Self {
        CheckedReader {
            checked,
            hasher: blake3::Hasher::new(),
            pos: 0,
            buf: Vec::new(),
            start: 0,
            failed: None,
            record,
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
        if let Some(record) = &self.record {
            record.damaged();
        }
        let err = self.checked.corruption(offset, reason.clone());
        self.failed = Some((offset, reason));
        io::Error::new(io::ErrorKind::InvalidData, err)
    }

    /// Reads the next piece of the file into `target` (no longer than what
    /// is left) and hashes it; at the end of the blob, checks the hash and
    /// the file's length. A mismatch is recorded in `failed`; a plain I/O
    /// error is returned and may be retried.
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
            let piece = left.min(READ_AHEAD as u64) as usize;
            // A caller's buffer that takes the whole piece is filled
            // directly: no copy through our own. Bytes to hash come a
            // piece at a time, hashed while still in the cache; bytes with
            // nothing to hash, as many as the caller takes in one read.
            let direct = out.len() >= piece;
            let next = match (direct, &self.checked.hash) {
                (true, None) => usize::try_from(left).map_or(out.len(), |l| l.min(out.len())),
                _ => piece,
            };
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
            if self.pos == self.checked.size && self.checked.hash.is_some() {
                if let Some(record) = &self.record {
                    record.whole();
                }
            }
            if direct {
                return Ok(next);
            }
        }
        let n = out.len().min(self.buf.len() - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }

    /// Makes room for the whole rest at once, so every piece is read
    /// straight into `out` (the default grows it in small steps, each a
    /// read through the read-ahead). On an error, `out` keeps only the
    /// bytes handed out before it, as `Read::read_to_end` says.
    fn read_to_end(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        let rest = (self.buf.len() - self.start) as u64 + (self.checked.size - self.pos);
        let rest = usize::try_from(rest).map_err(|_| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                "the blob does not fit in memory",
            )
        })?;
        let start = out.len();
        out.resize(start + rest, 0);
        let mut filled = start;
        let ended = loop {
            match self.read(&mut out[filled..]) {
                Ok(0) => break Ok(()),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        out.truncate(filled);
        ended.map(|()| filled - start)
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
