//! Blob bytes in both directions, in chunks.
//!
//! A put hands the engine a `Read` whose bytes arrive from JavaScript one
//! chunk at a time over a channel; the engine's `BlobStore::put` runs on a
//! thread of its own (it waits on JavaScript, so it must not hold a pool
//! thread that a chunk's delivery could be queued behind). Each chunk's
//! promise settles when the engine takes the chunk, so the JavaScript side
//! sends the next one only then: at most one chunk is in flight.
//!
//! A get of a blob of at most 64 KiB runs on the JavaScript thread and
//! answers its bytes whole, as a get of a document of that size does,
//! unless a lock is busy; any other get runs on the pool, which reads the
//! first chunk with the lookup and hands JavaScript a reader it pulls the
//! rest from.

use std::io::{self, Read};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use logstore::{BlobPut, BlobReader};
use napi::bindgen_prelude::{Buffer, BufferSlice, Either, Object};
use napi::{Env, JsDeferred};
use napi_derive::napi;

use crate::engine::Shared;
use crate::work::{self, spawn};
use crate::{no_blob_if_malformed, rows, NativeStore, IN_THREAD_GET_BYTES};

type Deferred<T> = JsDeferred<T, Box<dyn FnOnce(Env) -> napi::Result<T>>>;

enum Msg {
    Chunk(Vec<u8>, Deferred<()>),
    End(Deferred<String>),
    Abort(Deferred<()>),
}

fn ok<T: 'static>(value: T) -> Box<dyn FnOnce(Env) -> napi::Result<T>> {
    Box::new(move |_| Ok(value))
}

/// The engine's side of the channel.
struct ChannelReader {
    rx: Receiver<Msg>,
    chunk: Vec<u8>,
    pos: usize,
    end: Option<Deferred<String>>,
    abort: Option<Deferred<()>>,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.chunk.len() {
                let n = out.len().min(self.chunk.len() - self.pos);
                out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.end.is_some() {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Msg::Chunk(bytes, taken)) => {
                    taken.resolve(ok(()));
                    self.chunk = bytes;
                    self.pos = 0;
                }
                Ok(Msg::End(done)) => {
                    self.end = Some(done);
                    return Ok(0);
                }
                Ok(Msg::Abort(done)) => {
                    self.abort = Some(done);
                    return Err(io::Error::other("the blob stream was aborted"));
                }
                Err(_) => return Err(io::Error::other("the blob stream was dropped")),
            }
        }
    }
}

/// One streamed blob put in progress.
#[napi]
pub struct BlobUpload {
    tx: Mutex<Option<Sender<Msg>>>,
}

impl BlobUpload {
    fn send(&self, msg: Msg) -> napi::Result<()> {
        let guard = self
            .tx
            .lock()
            .map_err(|_| napi::Error::from_reason("store: the blob upload is broken"))?;
        match guard.as_ref() {
            Some(tx) => tx
                .send(msg)
                .map_err(|_| napi::Error::from_reason("store: the blob upload has ended")),
            None => Err(napi::Error::from_reason("store: the blob upload has ended")),
        }
    }

    fn finish(&self) {
        if let Ok(mut guard) = self.tx.lock() {
            guard.take();
        }
    }
}

#[napi]
impl BlobUpload {
    /// Hands one chunk to the engine; settles when the engine has taken it.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn write<'e>(&self, env: &'e Env, chunk: Buffer) -> napi::Result<Object<'e>> {
        let (taken, promise) =
            env.create_deferred::<(), Box<dyn FnOnce(Env) -> napi::Result<()>>>()?;
        self.send(Msg::Chunk(chunk.to_vec(), taken))?;
        Ok(promise)
    }

    /// Ends the stream; settles with the new blob's metadata (JSON text).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn end<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let (done, promise) =
            env.create_deferred::<String, Box<dyn FnOnce(Env) -> napi::Result<String>>>()?;
        self.send(Msg::End(done))?;
        self.finish();
        Ok(promise)
    }

    /// Abandons the put; settles once the engine has removed what it staged.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn abort<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let (done, promise) =
            env.create_deferred::<(), Box<dyn FnOnce(Env) -> napi::Result<()>>>()?;
        self.send(Msg::Abort(done))?;
        self.finish();
        Ok(promise)
    }
}

/// Runs the engine's put on its own thread, settling whichever of `end` or
/// `abort` the JavaScript side sent, and failing chunks sent after an error.
fn run_upload(shared: Arc<Shared>, rx: Receiver<Msg>, opts: BlobPut) {
    let store = shared.store();
    let mut reader = ChannelReader {
        rx,
        chunk: Vec::new(),
        pos: 0,
        end: None,
        abort: None,
    };
    let result = store.blobs().put(&mut reader, opts);
    let ChannelReader { rx, end, abort, .. } = reader;
    let failure = match (result, end) {
        (Ok(meta), Some(done)) => {
            done.resolve(ok(rows::blob_meta(&meta)));
            return;
        }
        (Ok(meta), None) => {
            // The engine stopped reading before the end: it cannot, as a put
            // reads to end of stream; undo rather than keep a blob the
            // caller never finished.
            let _ = store.blobs().delete(&meta.id);
            "store: the blob put ended before its stream".to_string()
        }
        (Err(e), end) => {
            let message = work::message(&e);
            if let Some(done) = end {
                done.reject(napi::Error::from_reason(message.clone()));
            }
            message
        }
    };
    if let Some(done) = abort {
        done.resolve(ok(()));
    }
    // Whatever JavaScript still sends learns of the failure.
    for msg in rx {
        match msg {
            Msg::Chunk(_, d) => d.reject(napi::Error::from_reason(failure.clone())),
            Msg::End(d) => d.reject(napi::Error::from_reason(failure.clone())),
            Msg::Abort(d) => d.resolve(ok(())),
        }
    }
}

/// What is left of a blob being read: its reader and how many bytes it
/// has yet to hand out.
struct Left {
    reader: BlobReader,
    bytes: u64,
}

/// Up to `size` bytes of what is left, filling the chunk (fewer, larger
/// hops to JavaScript), as [`fill`] reads them.
fn read_chunk(slot: &mut Option<Left>, size: u32) -> logstore::Result<Vec<u8>> {
    let want = slot
        .as_ref()
        .map_or(0, |left| u64::from(size.max(1)).min(left.bytes) as usize);
    let mut buf = vec![0u8; want];
    let filled = fill(slot, &mut buf)?;
    buf.truncate(filled);
    Ok(buf)
}

/// Fills `buf` with what is left, or as much of it as there is; answers
/// how many bytes it holds (0 at the end). The reader is dropped, closing
/// its file, once the blob's last byte is out: the engine checks a blob's
/// length and hash before it hands out the last bytes, so a blob read to
/// its size was read whole and checked, and the end is never read for.
fn fill(slot: &mut Option<Left>, buf: &mut [u8]) -> logstore::Result<usize> {
    let Some(left) = slot.as_mut() else {
        return Ok(0);
    };
    let want = (buf.len() as u64).min(left.bytes) as usize;
    let mut filled = 0;
    while filled < want {
        let n = left
            .reader
            .read(&mut buf[filled..want])
            .map_err(read_error)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    left.bytes -= filled as u64;
    if left.bytes == 0 || filled < want {
        slot.take();
    }
    Ok(filled)
}

/// The engine's error a blob reader carries (a damaged blob's
/// `Corruption`), or the I/O error as it is.
fn read_error(e: io::Error) -> logstore::Error {
    e.downcast::<logstore::Error>()
        .unwrap_or_else(|e| logstore::Error::Io {
            context: "reading a blob".into(),
            source: e,
        })
}

/// The bytes of one blob, pulled in chunks: the first read with the get.
#[napi]
pub struct BlobBytes {
    meta: String,
    first: Mutex<Option<Vec<u8>>>,
    reader: Arc<Mutex<Option<Left>>>,
}

#[napi]
impl BlobBytes {
    /// JSON text of the blob's metadata.
    #[napi(getter)]
    pub fn meta(&self) -> String {
        self.meta.clone()
    }

    /// The blob's first chunk, read with the get; null once taken.
    #[napi]
    pub fn first(&self) -> Option<Buffer> {
        let mut first = self.first.lock().ok()?;
        first.take().map(Buffer::from)
    }

    /// Fills `buf` (allocated by JavaScript, untouched there until this
    /// settles) with the bytes after those handed out; settles with how
    /// many it holds, 0 at the end. Reading into JavaScript's memory spares
    /// the pool a buffer of its own to allocate, zero and hand over.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn read_into<'e>(&self, env: &'e Env, mut buf: Buffer) -> napi::Result<Object<'e>> {
        let reader = self.reader.clone();
        spawn(env, move || {
            let mut guard = reader
                .lock()
                .map_err(|_| logstore::Error::InvalidInput("the blob reader is broken".into()))?;
            fill(&mut guard, &mut buf).map(|n| n as u32)
        })
    }

    /// Stops reading and closes the file.
    #[napi]
    pub fn cancel(&self) {
        if let Ok(mut guard) = self.reader.lock() {
            guard.take();
        }
    }
}

fn blob_opts(mime: Option<String>, owner_id: Option<String>) -> BlobPut {
    BlobPut { mime, owner_id }
}

#[napi]
impl NativeStore {
    /// Puts a blob held whole in one buffer; resolves to its metadata
    /// (JSON text).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn blob_put<'e>(
        &self,
        env: &'e Env,
        bytes: Buffer,
        mime: Option<String>,
        owner_id: Option<String>,
    ) -> napi::Result<Object<'e>> {
        let s = self.live();
        let bytes = bytes.to_vec();
        spawn(env, move || {
            let meta = s?
                .store()
                .blobs()
                .put(&mut bytes.as_slice(), blob_opts(mime, owner_id))?;
            Ok(rows::blob_meta(&meta))
        })
    }

    /// Starts a streamed blob put: send chunks with `write`, then `end`.
    #[napi]
    pub fn blob_upload(
        &self,
        mime: Option<String>,
        owner_id: Option<String>,
    ) -> napi::Result<BlobUpload> {
        let s = self.live().map_err(work::to_napi)?;
        let (tx, rx) = channel();
        let opts = blob_opts(mime, owner_id);
        thread::Builder::new()
            .name("logstore-blob-put".into())
            .spawn(move || run_upload(s, rx, opts))
            .map_err(|e| {
                napi::Error::from_reason(format!("store: cannot start a blob put: {e}"))
            })?;
        Ok(BlobUpload {
            tx: Mutex::new(Some(tx)),
        })
    }

    /// The blob's metadata and a reader of its bytes with the first
    /// `chunk` bytes read, or null (also for a malformed id, see
    /// [`no_blob_if_malformed`]).
    #[napi(ts_return_type = "Promise<BlobBytes | null>")]
    pub fn blob_get<'e>(&self, env: &'e Env, id: String, chunk: u32) -> napi::Result<Object<'e>> {
        let s = self.live();
        spawn(env, move || {
            let Some((meta, reader)) = no_blob_if_malformed(s?.store().blobs().get(&id), None)?
            else {
                return Ok(None);
            };
            let mut left = Some(Left {
                reader,
                bytes: meta.size,
            });
            let first = read_chunk(&mut left, chunk)?;
            Ok(Some(BlobBytes {
                meta: rows::blob_meta(&meta),
                first: Mutex::new(Some(first)),
                reader: Arc::new(Mutex::new(left)),
            }))
        })
    }

    /// The get of `blobGet` on the calling thread, for a blob of at most
    /// [`IN_THREAD_GET_BYTES`] (read whole and checked, as a get of a
    /// document of that size is): a read that finds its file in the page
    /// cache costs less than a trip to the pool. Its answer is the blob's
    /// metadata (JSON text), its bytes written to the start of `into` (at
    /// least `IN_THREAD_GET_BYTES` long; the metadata's `size` says how
    /// many); `null` when there is no such blob (or the id is malformed);
    /// or `false`, having read nothing, when the blob is larger or a lock
    /// is busy (`LogStore::blob_get_within`), and `blobGet` reads it on the
    /// pool instead. Writing into a buffer the caller keeps spares a buffer
    /// and an object made through N-API for every get.
    #[napi(catch_unwind, ts_return_type = "string | false | null")]
    pub fn blob_get_sync(
        &self,
        id: String,
        mut into: BufferSlice<'_>,
    ) -> napi::Result<Option<Either<String, bool>>> {
        if (into.len() as u64) < IN_THREAD_GET_BYTES {
            return Err(napi::Error::from_reason(
                "store: blobGetSync needs a buffer of 64 KiB for the bytes",
            ));
        }
        let got = no_blob_if_malformed(
            self.in_thread()?.blob_get_within(&id, IN_THREAD_GET_BYTES),
            Some(None),
        )
        .map_err(work::to_napi)?;
        let (meta, reader) = match got {
            None => return Ok(Some(Either::B(false))),
            Some(None) => return Ok(None),
            Some(Some(found)) => found,
        };
        let mut left = Some(Left {
            reader,
            bytes: meta.size,
        });
        let filled = fill(&mut left, &mut into).map_err(work::to_napi)?;
        if filled as u64 != meta.size {
            // The engine fails a read of a blob shorter than its size.
            return Err(napi::Error::from_reason(format!(
                "store: blob {} ended after {filled} of its {} bytes",
                meta.id, meta.size
            )));
        }
        Ok(Some(Either::A(rows::blob_meta(&meta))))
    }
}
