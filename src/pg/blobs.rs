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

use std::io::{self, Read};

use postgres::Row;
use r2d2_postgres::r2d2::PooledConnection;

use super::{
    opt_text_column, text_column, to_i64, unsigned_column, Conn, Manager, PgStore, Session, Sql,
};
use crate::contract::{BlobList, BlobMeta, BlobPut, BlobReader, BlobStore};
use crate::validate;
use crate::{Error, Result};

/// The bytes of one chunk row: large enough that a round trip per chunk is
/// cheap next to moving its bytes, small enough to hold in memory.
pub(super) const CHUNK_BYTES: usize = 1024 * 1024;

const META_COLUMNS: &str = "b.id, b.mime, b.size, b.owner_id, b.created_at, b.content_hash";

/// The metadata and the first chunk in one round trip, which for most
/// blobs is the whole of them.
const META_AND_FIRST_SQL: &str =
    "SELECT b.id, b.mime, b.size, b.owner_id, b.created_at, b.content_hash, c.bytes
     FROM store_blobs b LEFT JOIN store_blob_chunks c ON c.blob_id = b.id AND c.seq = 0
     WHERE b.id = $1";

fn read_meta(row: &Row) -> Result<BlobMeta> {
    Ok(BlobMeta {
        id: row.try_get(0)?,
        mime: text_column(row, 1)?,
        size: unsigned_column(row, 2)?,
        owner_id: opt_text_column(row, 3)?,
        created_at: row.try_get(4)?,
        content_hash: Some(row.try_get(5)?),
    })
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
            Err(e) => return Err(Error::io("reading the blob's bytes from the caller", e)),
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

/// Streams a blob's chunks, checking their length and hash at the end.
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
    hasher: blake3::Hasher,
    expected_hash: String,
}

fn corrupt(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl ChunkReader {
    fn next_chunk(&mut self) -> io::Result<()> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| corrupt(format!("blob {} ended early", self.id)))?;
        let row = conn
            .query_opt(
                "SELECT bytes FROM store_blob_chunks WHERE blob_id = $1 AND seq = $2",
                &[&self.id, &self.next_seq],
            )
            .map_err(|e| io::Error::other(e.to_string()))?;
        let bytes: Vec<u8> = match row {
            Some(row) => row
                .try_get(0)
                .map_err(|e| io::Error::other(e.to_string()))?,
            None => {
                return Err(corrupt(format!(
                    "blob {} lacks chunk {} (store_blob_chunks is damaged)",
                    self.id, self.next_seq
                )))
            }
        };
        self.accept(bytes)
    }

    /// Takes the next chunk's bytes; at the end, checks the hash and ends
    /// the snapshot transaction, returning the connection to the pool.
    fn accept(&mut self, bytes: Vec<u8>) -> io::Result<()> {
        if bytes.len() as u64 > self.left || bytes.is_empty() {
            return Err(corrupt(format!(
                "blob {}'s chunks do not add up to its size",
                self.id
            )));
        }
        self.left -= bytes.len() as u64;
        self.next_seq += 1;
        self.hasher.update(&bytes);
        self.chunk = bytes;
        self.pos = 0;
        if self.left == 0 {
            let hash = self.hasher.finalize().to_hex().to_string();
            if hash != self.expected_hash {
                return Err(corrupt(format!(
                    "blob {}'s bytes no longer match their hash",
                    self.id
                )));
            }
            if let Some(mut conn) = self.conn.take() {
                end_snapshot(&mut conn);
            }
        }
        Ok(())
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
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

/// Ends a reader's read-only transaction; a connection where that fails is
/// not reused.
fn end_snapshot(conn: &mut Conn) {
    if conn.client.batch_execute("COMMIT").is_err() {
        conn.broken = true;
    }
}

/// A reader over a blob whose metadata row (with its first chunk) is `row`.
fn reader_for(
    row: &Row,
    conn: Option<PooledConnection<Manager>>,
) -> Result<(BlobMeta, ChunkReader)> {
    let meta = read_meta(row)?;
    let mut reader = ChunkReader {
        conn,
        id: meta.id.clone(),
        next_seq: 0,
        chunk: Vec::new(),
        pos: 0,
        left: meta.size,
        hasher: blake3::Hasher::new(),
        expected_hash: meta.content_hash.clone().unwrap_or_default(),
    };
    let first: Option<Vec<u8>> = row.try_get(6)?;
    let checked = match first {
        Some(bytes) => reader.accept(bytes),
        None if meta.size == 0 => reader.accept_empty(),
        None => Err(corrupt(format!("blob {} has no chunks", meta.id))),
    };
    checked.map_err(|e| Error::corruption("store_blob_chunks", 0, e.to_string()))?;
    Ok((meta, reader))
}

impl ChunkReader {
    fn accept_empty(&mut self) -> io::Result<()> {
        if self.expected_hash != blake3::hash(b"").to_hex().as_str() {
            return Err(corrupt(format!(
                "blob {}'s bytes no longer match their hash",
                self.id
            )));
        }
        if let Some(mut conn) = self.conn.take() {
            end_snapshot(&mut conn);
        }
        Ok(())
    }
}

impl PgStore {
    /// A get of a blob larger than one chunk: the metadata and first chunk
    /// again, inside a snapshot the reader keeps.
    fn get_chunked(&self, id: &str) -> Result<Option<(BlobMeta, BlobReader)>> {
        let (pool, mut conn) = self.checkout()?;
        let opened = (|| -> Result<Option<Row>> {
            conn.client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
            conn.query_opt(META_AND_FIRST_SQL, &[&id])
        })();
        // Every way out ends the transaction begun above: a pooled
        // connection left inside it would fail the next writes on it
        // (READ ONLY) and serve its reads from this old snapshot.
        match opened {
            Ok(Some(row)) => {
                // Once the reader holds the connection, dropping it ends
                // the transaction; a row it cannot be built from ends it here.
                if let Err(e) = read_meta(&row) {
                    end_snapshot(&mut conn);
                    return Err(e);
                }
                let (meta, reader) = reader_for(&row, Some(conn))?;
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
        let row = self.with_conn(|conn| conn.query_opt(META_AND_FIRST_SQL, &[&id]))?;
        let Some(row) = row else {
            return Ok(None);
        };
        if unsigned_column(&row, 2)? > CHUNK_BYTES as u64 {
            return self.get_chunked(id);
        }
        let (meta, reader) = reader_for(&row, None)?;
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
