//! Salvage: reads a damaged log store without changing it and writes every
//! record that still verifies into another store, reporting what was lost.
//! The command-line tool's `repair` is built on it.

use std::path::{Path, PathBuf};

use super::verify::Problem;
use crate::blobs;
use crate::contract::{BlobMeta, LeaseStore};
use crate::io::{RealFs, Vfs};
use crate::log::manifest::MANIFEST_FILE;
use crate::log::record::{read_frame, Frame, Record};
use crate::log::recovery::next_valid_frame;
use crate::log::segment::{self, parse_segment_name, segment_name, SEGMENT_HEADER_LEN};
use crate::transfer::Transfer;
use crate::{Error, Result};

/// What a salvage kept and lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalvageReport {
    /// Segments read.
    pub segments: usize,
    /// Records that verified and were written to the destination.
    pub records_kept: u64,
    /// Damaged byte ranges skipped (file, offset, and how much in the
    /// description), and records that verified but could not be applied.
    pub lost: Vec<Problem>,
}

/// The segments of `dir` in replay order, read without changing anything
/// (a damaged manifest falls back to id order).
fn segment_order(fs: &dyn Vfs, dir: &Path) -> Result<Vec<u32>> {
    let names = fs
        .list(dir)
        .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    let mut ids: Vec<u32> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
    ids.sort_unstable();
    let manifest = fs
        .open(&dir.join(MANIFEST_FILE), false)
        .ok()
        .and_then(|file| {
            let mut bytes = vec![0u8; file.size().ok()? as usize];
            file.read_exact_at(&mut bytes, 0).ok()?;
            let word = |at: usize| {
                bytes
                    .get(at..at + 4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            };
            let horizon = word(12)?;
            let count = word(16)? as usize;
            let base: Option<Vec<u32>> = (0..count.min(ids.len()))
                .map(|i| word(20 + 4 * i))
                .collect();
            Some((horizon, base?))
        });
    Ok(match manifest {
        Some((horizon, base)) if base.iter().all(|id| ids.contains(id)) => {
            let mut order = base.clone();
            order.extend(
                ids.iter()
                    .filter(|id| **id >= horizon && !base.contains(id)),
            );
            order
        }
        _ => ids,
    })
}

/// Replays every verifying record of the log store in `src` into `dst`.
///
/// # Errors
/// `Io` when `src` cannot be listed or read, or `dst` fails.
pub fn salvage(src: &Path, dst: &dyn Transfer) -> Result<SalvageReport> {
    let fs = RealFs;
    let mut report = SalvageReport::default();
    for id in segment_order(&fs, src)? {
        report.segments += 1;
        let path = src.join(segment_name(id));
        let image = std::fs::read(&path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if let Err(reason) = segment::check_header(&image, id) {
            report.lost.push(Problem {
                file: path.clone(),
                offset: 0,
                description: format!("{reason}; the header was skipped"),
            });
        }
        let mut pos = SEGMENT_HEADER_LEN;
        while pos < image.len() {
            match read_frame(&image, pos) {
                Frame::Valid { payload, next } => {
                    match Record::decode(payload)
                        .map_err(Error::invalid)
                        .and_then(|r| apply(src, dst, r))
                    {
                        Ok(()) => report.records_kept += 1,
                        Err(e) => report.lost.push(Problem {
                            file: path.clone(),
                            offset: pos as u64,
                            description: e.to_string(),
                        }),
                    }
                    pos = next;
                }
                Frame::Invalid(reason) => {
                    let resume = next_valid_frame(&image, pos + 1).unwrap_or(image.len());
                    report.lost.push(Problem {
                        file: path.clone(),
                        offset: pos as u64,
                        description: format!("{reason}; {} bytes skipped", resume - pos),
                    });
                    pos = resume;
                }
            }
        }
    }
    Ok(report)
}

fn content_file(src: &Path, hash: &str) -> PathBuf {
    blobs::content_path(src, hash).1
}

fn apply(src: &Path, dst: &dyn Transfer, record: Record<'_>) -> Result<()> {
    match record {
        Record::Collection {
            name,
            created_at,
            indexes,
        } => dst.import_collection(name, &indexes, created_at.unwrap_or(0)),
        Record::DocPut { .. } => {
            let doc = record.document().map_err(Error::invalid)?;
            dst.import_document(&doc)
        }
        Record::DocDelete { collection, id } => dst.docs().delete(collection, id).map(drop),
        Record::LeaseSet { .. } => match record.lease_row() {
            Some(row) => dst.import_lease(&row),
            None => Ok(()),
        },
        Record::LeaseDelete { key } => match LeaseStore::get(dst.leases(), key)? {
            Some(row) => dst.leases().release(key, &row.owner),
            None => Ok(()),
        },
        Record::LeaseReleaseAll { owner } => dst.leases().release_all(owner).map(drop),
        Record::BlobPut {
            id,
            mime,
            size,
            owner,
            created_at,
            hash,
        } => {
            let hash = blobs::hex(&hash);
            let path = content_file(src, &hash);
            let mut file = std::fs::File::open(&path).map_err(|e| {
                Error::corruption(&path, 0, format!("the bytes of blob {id} are gone: {e}"))
            })?;
            let meta = BlobMeta {
                id: id.into(),
                mime: mime.into(),
                size,
                owner_id: owner.map(Into::into),
                created_at,
                content_hash: None,
            };
            let imported = dst.import_blob(&meta, &mut file)?;
            if imported.content_hash.as_ref().is_some_and(|h| h != &hash) {
                dst.blobs().delete(id)?;
                return Err(Error::corruption(
                    &path,
                    0,
                    format!("the bytes of blob {id} no longer match their hash"),
                ));
            }
            Ok(())
        }
        Record::BlobDelete { id } => dst.blobs().delete(id).map(drop),
    }
}
