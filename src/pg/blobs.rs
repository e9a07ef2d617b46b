//! The blob facility of the PostgreSQL driver: bytes in the database, in
//! `store_blob_chunks` rows of up to 1 MiB, written in the same transaction
//! as the `store_blobs` row, so a blob is there whole or not at all.
//!
//! Neither a put nor a get holds a whole blob: a put sends each chunk as it
//! fills and stops once the bytes pass the limit (the transaction then
//! rolls back, leaving nothing), and a get of a blob larger than one chunk
//! reads one chunk per round trip, inside a REPEATABLE READ, READ ONLY
//! transaction, so a delete that commits meanwhile does not cut the stream
//! short. Such a reader holds a pooled connection until it reaches the end
//! or is dropped.
//!
//! No stored number sizes anything before it is checked against what is
//! there: a get compares the size `store_blobs` records with the chunks
//! (their count and the last one's length) before it returns, takes a
//! chunk's bytes only when the chunk has the length due, and checks the
//! hash at the end. A row that fails is `Error::Corruption` naming the
//! blob.

use std::io::{self, Read};

use postgres::Row;
use r2d2_postgres::r2d2::PooledConnection;

use super::{opt_text_column, text_column, to_i64, Conn, Manager, PgStore, Session, Sql};
use crate::contract::{BlobList, BlobMeta, BlobPut, BlobReader, BlobStore};
use crate::validate;
use crate::{Error, Result};

/// The bytes of one chunk row: large enough that a round trip per chunk is
/// cheap next to moving its bytes, small enough to hold in memory.
pub(super) const CHUNK_BYTES: usize = 1024 * 1024;

const META_COLUMNS: &str = "b.id, b.mime, b.size, b.owner_id, b.created_at, b.content_hash";

/// The metadata and the first chunk in one round trip, which for most
/// blobs is the whole of them, with what the chunks hold: the length of
/// the first chunk (whose bytes come only when that is the length the size
/// calls for, `$2` being the chunk size, so a damaged row never sends more)
/// and the number and length of the last chunk. Every chunk before the last
/// is full (the reader checks each), so those two say how many bytes are
/// there before any is read.
const META_AND_FIRST_SQL: &str =
    "SELECT b.id, b.mime, b.size, b.owner_id, b.created_at, b.content_hash,
            octet_length(c.bytes),
            CASE WHEN octet_length(c.bytes) = LEAST(b.size, $2) THEN c.bytes END,
            l.seq, l.len
     FROM store_blobs b
     LEFT JOIN store_blob_chunks c ON c.blob_id = b.id AND c.seq = 0
     LEFT JOIN LATERAL (
        SELECT seq, octet_length(bytes) AS len FROM store_blob_chunks
        WHERE blob_id = b.id ORDER BY seq DESC LIMIT 1
     ) l ON true
     WHERE b.id = $1";

/// A later chunk, its bytes only when it is `$3` bytes long.
const NEXT_CHUNK_SQL: &str =
    "SELECT octet_length(bytes), CASE WHEN octet_length(bytes) = $3 THEN bytes END
     FROM store_blob_chunks WHERE blob_id = $1 AND seq = $2";

/// A blob row or its chunks do not add up: `Corruption` naming the table,
/// the byte of the blob where the damage starts, and the blob.
fn damaged(table: &str, offset: u64, id: &str, what: impl std::fmt::Display) -> Error {
    Error::corruption(
        table,
        offset,
        format!("blob {id} {what} (written by something other than logstore?)"),
    )
}

fn read_meta(row: &Row) -> Result<BlobMeta> {
    let id: String = row.try_get(0)?;
    let stored: i64 = row.try_get(2)?;
    let size = u64::try_from(stored).map_err(|_| {
        damaged(
            "store_blobs",
            0,
            &id,
            format!("records a size of {stored} bytes"),
        )
    })?;
    Ok(BlobMeta {
        mime: text_column(row, 1)?,
        size,
        owner_id: opt_text_column(row, 3)?,
        created_at: row.try_get(4)?,
        content_hash: Some(row.try_get(5)?),
        id,
    })
}

/// The length due for the next chunk of a blob when `left` of its bytes
/// are still to come: a full chunk, or the rest.
fn chunk_len(left: u64) -> usize {
    usize::try_from(left).map_or(CHUNK_BYTES, |left| left.min(CHUNK_BYTES))
}

/// The metadata of a row of `META_AND_FIRST_SQL`, its size checked against
/// what its chunks hold before a byte is read.
fn checked_meta(row: &Row) -> Result<BlobMeta> {
    let meta = read_meta(row)?;
    check_stored(row, &meta)?;
    Ok(meta)
}

/// Checks the size a row of `META_AND_FIRST_SQL` records against what its
/// chunks hold.
fn check_stored(row: &Row, meta: &BlobMeta) -> Result<()> {
    let last: Option<i32> = row.try_get(8)?;
    let last_len: Option<i32> = row.try_get(9)?;
    let held = match (last, last_len) {
        (None, _) => Some(0),
        (Some(seq), Some(len)) => u64::try_from(seq)
            .ok()
            .and_then(|seq| seq.checked_mul(CHUNK_BYTES as u64))
            .zip(u64::try_from(len).ok())
            .and_then(|(full, len)| full.checked_add(len)),
        (Some(_), None) => None,
    };
    if held == Some(meta.size) {
        return Ok(());
    }
    let what = match (last, last_len) {
        (Some(seq), Some(len)) => format!(
            "records {} bytes, but its last chunk is number {seq}, of {len} bytes",
            meta.size
        ),
        _ => format!("records {} bytes, but it has no chunks", meta.size),
    };
    Err(damaged("store_blob_chunks", 0, &meta.id, what))
}

/// Fills `buf` from `reader` until it is full or the reader ends; returns
/// how many bytes it holds.
fn fill(reader: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(reader_error(e, "reading the blob's bytes from the caller")),
        }
    }
    Ok(filled)
}

/// Streams `reader` into chunk rows of blob `id`; fails once more than
/// `max` bytes arrive (reading at most one byte past it). Returns the size
/// and the BLAKE3 hash in hex.
pub(super) fn write_chunks(
    s: &mut Session<'_>,
    id: &str,
    reader: &mut dyn Read,
    max: u64,
) -> Result<(u64, String)> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut size = 0u64;
    let mut seq = 0i32;
    loop {
        // Never ask for more than one byte past the limit.
        let room = usize::try_from((max - size).saturating_add(1)).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        let n = fill(reader, &mut buf[..want])?;
        if size + n as u64 > max {
            return Err(Error::invalid(format!(
                "the blob is larger than the limit of {max} bytes"
            )));
        }
        if n == 0 {
            break;
        }
        let bytes = &buf[..n];
        s.execute(
            "INSERT INTO store_blob_chunks (blob_id, seq, bytes) VALUES ($1, $2, $3)",
            &[&id, &seq, &bytes],
        )?;
        hasher.update(bytes);
        size += n as u64;
        seq += 1;
        if n < want {
            break;
        }
    }
    Ok((size, hasher.finalize().to_hex().to_string()))
}

/// Inserts the metadata row of a blob whose chunks are written.
pub(super) fn insert_meta(s: &mut Session<'_>, meta: &BlobMeta) -> Result<()> {
    s.execute(
        "INSERT INTO store_blobs (id, mime, size, owner_id, created_at, content_hash)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &meta.id,
            &meta.mime.as_bytes(),
            &i64::try_from(meta.size).unwrap_or(i64::MAX),
            &meta.owner_id.as_deref().map(str::as_bytes),
            &meta.created_at,
            &meta.content_hash.as_deref().unwrap_or_default(),
        ],
    )?;
    Ok(())
}

/// Streams a blob's chunks, checking each one's length as it comes (each
/// is full but the last) and the hash at the end. A damaged chunk is an
/// `io::Error` of kind `InvalidData` carrying `Error::Corruption`, and
/// every read after it fails the same way.
struct ChunkReader {
    /// The connection with the snapshot transaction, until the last chunk
    /// is read (`None` for a blob that came whole with its metadata).
    conn: Option<PooledConnection<Manager>>,
    id: String,
    next_seq: i32,
    chunk: Vec<u8>,
    pos: usize,
    /// Bytes not yet read from the server.
    left: u64,
    size: u64,
    hasher: blake3::Hasher,
    expected_hash: String,
    /// Set once the bytes failed their check: where, and why.
    failed: Option<(&'static str, u64, String)>,
}

impl ChunkReader {
    /// Records damage at byte `offset` of the blob and returns its error.
    fn fail(&mut self, table: &'static str, offset: u64, what: String) -> io::Error {
        self.chunk.clear();
        self.pos = 0;
        let e = corrupt_io(table, offset, &self.id, &what);
        self.failed = Some((table, offset, what));
        e
    }

    fn failure(&self) -> Option<io::Error> {
        let (table, offset, what) = self.failed.as_ref()?;
        Some(corrupt_io(table, *offset, &self.id, what))
    }

    /// Where the next chunk starts in the blob.
    fn offset(&self) -> u64 {
        self.size - self.left
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        let want = chunk_len(self.left);
        let Some(conn) = self.conn.as_mut() else {
            let at = self.offset();
            return Err(self.fail("store_blob_chunks", at, "ended early".into()));
        };
        let row = conn
            .query_opt(
                NEXT_CHUNK_SQL,
                &[
                    &self.id,
                    &self.next_seq,
                    &i32::try_from(want).unwrap_or(i32::MAX),
                ],
            )
            .map_err(io::Error::other)?;
        let (len, bytes) = match row {
            Some(row) => {
                let len: i32 = row
                    .try_get(0)
                    .map_err(|e| io::Error::other(Error::from(e)))?;
                let bytes: Option<Vec<u8>> = row
                    .try_get(1)
                    .map_err(|e| io::Error::other(Error::from(e)))?;
                (Some(len), bytes)
            }
            None => (None, None),
        };
        self.accept(len, bytes)
    }

    /// Takes the next chunk (`len` its length on the server, `bytes` its
    /// bytes when that length was right); at the end, checks the hash and
    /// ends the snapshot transaction, returning the connection to the pool.
    fn accept(&mut self, len: Option<i32>, bytes: Option<Vec<u8>>) -> io::Result<()> {
        let (at, seq) = (self.offset(), self.next_seq);
        let want = chunk_len(self.left);
        let bytes = match (len, bytes) {
            (None, _) => {
                let what = format!("lacks chunk {seq} (it records {} bytes)", self.size);
                return Err(self.fail("store_blob_chunks", at, what));
            }
            (Some(_), Some(bytes)) if bytes.len() == want => bytes,
            (Some(len), _) => {
                let what = format!(
                    "has a chunk {seq} of {len} bytes where {want} were due (it records {} bytes)",
                    self.size
                );
                return Err(self.fail("store_blob_chunks", at, what));
            }
        };
        self.left -= bytes.len() as u64;
        self.next_seq += 1;
        self.hasher.update(&bytes);
        self.chunk = bytes;
        self.pos = 0;
        if self.left == 0 {
            self.finish()?;
        }
        Ok(())
    }

    /// Checks the hash of all the bytes and ends the snapshot.
    fn finish(&mut self) -> io::Result<()> {
        let hash = self.hasher.finalize().to_hex().to_string();
        if let Some(mut conn) = self.conn.take() {
            end_snapshot(&mut conn);
        }
        if hash != self.expected_hash {
            let what = "has bytes that no longer match their hash".to_string();
            return Err(self.fail("store_blob_chunks", 0, what));
        }
        Ok(())
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        if self.pos == self.chunk.len() {
            if self.left == 0 {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for ChunkReader {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            end_snapshot(&mut conn);
        }
    }
}

/// The error a damaged chunk reads as: `InvalidData` carrying `Corruption`.
fn corrupt_io(table: &str, offset: u64, id: &str, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, damaged(table, offset, id, what))
}

/// Ends a reader's read-only transaction; a connection where that fails is
/// not reused.
fn end_snapshot(conn: &mut Conn) {
    if conn.client.batch_execute("COMMIT").is_err() {
        conn.broken = true;
    }
}

/// The `Error` a reader's `io::Error` carries (its `Corruption`), or an
/// `Io` error of `context`.
fn reader_error(e: io::Error, context: &str) -> Error {
    e.downcast::<Error>()
        .unwrap_or_else(|e| Error::io(context, e))
}

/// A reader over a blob whose row of `META_AND_FIRST_SQL` is `row` and
/// whose metadata, read from it by [`checked_meta`], is `meta`, after
/// checking its first chunk against its size.
fn reader_for(
    row: &Row,
    meta: BlobMeta,
    conn: Option<PooledConnection<Manager>>,
) -> Result<(BlobMeta, ChunkReader)> {
    let mut reader = ChunkReader {
        conn,
        id: meta.id.clone(),
        next_seq: 0,
        chunk: Vec::new(),
        pos: 0,
        left: meta.size,
        size: meta.size,
        hasher: blake3::Hasher::new(),
        expected_hash: meta.content_hash.clone().unwrap_or_default(),
        failed: None,
    };
    let checked = if meta.size == 0 {
        reader.finish()
    } else {
        reader.accept(row.try_get(6)?, row.try_get(7)?)
    };
    checked.map_err(|e| reader_error(e, "reading a blob"))?;
    Ok((meta, reader))
}

impl PgStore {
    /// A get of a blob larger than one chunk: the metadata and first chunk
    /// again, inside a snapshot the reader keeps.
    fn get_chunked(&self, id: &str) -> Result<Option<(BlobMeta, BlobReader)>> {
        let (pool, mut conn) = self.checkout()?;
        let opened = (|| -> Result<Option<Row>> {
            conn.client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
            conn.query_opt(META_AND_FIRST_SQL, &[&id, &to_i64(CHUNK_BYTES)])
        })();
        // Every way out ends the transaction begun above: a pooled
        // connection left inside it would fail the next writes on it
        // (READ ONLY) and serve its reads from this old snapshot.
        match opened {
            Ok(Some(row)) => {
                // Once the reader holds the connection, dropping it ends
                // the transaction; a row it cannot be built from ends it here.
                let meta = match checked_meta(&row) {
                    Ok(meta) => meta,
                    Err(e) => {
                        end_snapshot(&mut conn);
                        return Err(e);
                    }
                };
                let (meta, reader) = reader_for(&row, meta, Some(conn))?;
                Ok(Some((meta, Box::new(reader))))
            }
            Ok(None) => {
                end_snapshot(&mut conn);
                Ok(None)
            }
            Err(e) => {
                end_snapshot(&mut conn);
                self.release_after(pool, conn, &e);
                Err(e)
            }
        }
    }
}

impl BlobStore for PgStore {
    fn put(&self, bytes: &mut dyn Read, opts: BlobPut) -> Result<BlobMeta> {
        let (mime, owner_id) = validate::blob_put(&opts)?;
        let id = uuid::Uuid::new_v4().to_string();
        let max = self.opts.max_blob_bytes;
        self.with_tx(|s| {
            let (size, hash) = write_chunks(s, &id, bytes, max)?;
            let meta = BlobMeta {
                id: id.clone(),
                mime,
                size,
                owner_id,
                created_at: self.opts.clock.now_ms(),
                content_hash: Some(hash),
            };
            insert_meta(s, &meta)?;
            Ok(meta)
        })
    }

    fn get(&self, id: &str) -> Result<Option<(BlobMeta, BlobReader)>> {
        validate::blob_id(id)?;
        let row = self
            .with_conn(|conn| conn.query_opt(META_AND_FIRST_SQL, &[&id, &to_i64(CHUNK_BYTES)]))?;
        let Some(row) = row else {
            return Ok(None);
        };
        // A damaged row fails here, before a snapshot is begun for it.
        let meta = checked_meta(&row)?;
        if meta.size > CHUNK_BYTES as u64 {
            return self.get_chunked(id);
        }
        let (meta, reader) = reader_for(&row, meta, None)?;
        Ok(Some((meta, Box::new(reader))))
    }

    fn get_meta(&self, id: &str) -> Result<Option<BlobMeta>> {
        validate::blob_id(id)?;
        self.with_conn(|conn| {
            conn.query_opt(
                &format!("SELECT {META_COLUMNS} FROM store_blobs b WHERE b.id = $1"),
                &[&id],
            )?
            .map(|row| read_meta(&row))
            .transpose()
        })
    }

    fn delete(&self, id: &str) -> Result<bool> {
        validate::blob_id(id)?;
        self.with_tx(|s| {
            let removed = s.execute("DELETE FROM store_blobs WHERE id = $1", &[&id])?;
            s.execute("DELETE FROM store_blob_chunks WHERE blob_id = $1", &[&id])?;
            Ok(removed > 0)
        })
    }

    fn list(&self, query: &BlobList) -> Result<Vec<BlobMeta>> {
        let (limit, offset) = validate::blob_page(query);
        let (limit, offset) = (to_i64(limit), to_i64(offset));
        self.with_conn(|conn| {
            let rows = match &query.owner_id {
                Some(owner) => conn.query(
                    &format!(
                        "SELECT {META_COLUMNS} FROM store_blobs b WHERE b.owner_id = $1
                         ORDER BY b.created_at DESC, b.id DESC LIMIT $2 OFFSET $3"
                    ),
                    &[&owner.as_bytes(), &limit, &offset],
                )?,
                None => conn.query(
                    &format!(
                        "SELECT {META_COLUMNS} FROM store_blobs b
                         ORDER BY b.created_at DESC, b.id DESC LIMIT $1 OFFSET $2"
                    ),
                    &[&limit, &offset],
                )?,
            };
            rows.iter().map(read_meta).collect()
        })
    }
}
