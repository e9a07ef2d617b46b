//! Backups of a live log store (`LogStore::backup_to`), from a writing or
//! a read-only handle.

use logstore::Error;
use napi::bindgen_prelude::Object;
use napi::Env;
use napi_derive::napi;

use crate::work::spawn;
use crate::NativeStore;

/// What a backup copied (`logstore::BackupReport`).
#[napi(object)]
pub struct BackupReport {
    /// Segment files copied.
    pub segments: f64,
    /// Bytes of segments copied.
    pub segment_bytes: f64,
    /// Blob content files copied.
    pub blob_files: f64,
    /// Bytes of blob content copied.
    pub blob_bytes: f64,
    /// Documents in the copy.
    pub documents: f64,
    /// Blobs in the copy.
    pub blobs: f64,
    /// Leases in the copy.
    pub leases: f64,
}

#[napi]
impl NativeStore {
    /// Copies the store as it stands at one moment into `dest` (missing, or
    /// an empty directory) while writes go on, makes the copy durable and
    /// verifies it. A PostgreSQL store rejects: the server's own tools
    /// (`pg_dump`) back it up.
    #[napi(ts_return_type = "Promise<BackupReport>")]
    pub fn backup<'e>(&self, env: &'e Env, dest: String) -> napi::Result<Object<'e>> {
        let s = self.live();
        spawn(env, move || {
            let s = s?;
            let log = s.log().ok_or_else(|| {
                Error::InvalidInput(
                    "a PostgreSQL store is backed up with the server's tools (pg_dump), not backup"
                        .into(),
                )
            })?;
            let r = log.backup_to(&dest)?;
            Ok(BackupReport {
                segments: r.segments as f64,
                segment_bytes: r.segment_bytes as f64,
                blob_files: r.blob_files as f64,
                blob_bytes: r.blob_bytes as f64,
                documents: r.documents as f64,
                blobs: r.blobs as f64,
                leases: r.leases as f64,
            })
        })
    }
}
