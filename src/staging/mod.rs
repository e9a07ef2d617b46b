//! Building a new store beside its final place and moving it there whole,
//! for the copies that fill a new store (`migrate`, `load`).
//!
//! Built in place, an interrupted copy would leave half a store, which a
//! retry refuses as not empty. Instead each final path `F` gets a staging
//! area beside it, the directory `F.partial`: its first entry is the
//! marker file [`MARKER`], and it holds the store's file or directory
//! under `F`'s own name. Once the store is complete, verified (a log
//! store), closed and synced, it is renamed to `F` and `F`'s parent
//! directory synced. At every moment `F` holds either what it held before
//! (nothing, or an empty directory or file) or the whole store.
//!
//! An SQLite store is two paths, its database file and its blob folder, so
//! two areas and two renames, the blob folder first: the database file is
//! the store's commit point. Before the first rename the database's area
//! gets a `COMPLETE` file, so a run that finds the blob folder moved and
//! the database not finishes the move instead of starting over.
//!
//! A run that finds an area with the marker (left by an interrupted run)
//! removes it and starts over, as it does an empty area (a run killed
//! between making the area and writing its marker); an area without the
//! marker was not made here and is never touched: the run is refused,
//! saying what to do. The run that makes an area holds an exclusive lock
//! on its marker until the area is gone, so a second run for the same
//! target refuses an area still in use instead of removing it, and a
//! failed run removes only the areas whose marker it made.

mod area;

use std::fs::{self, File};
use std::io;
use std::path::{Component, Path, PathBuf};

use area::{
    area_state, check_new, content_of, holds, io_at, lock_marker, parent_of, remove_area, sync_dir,
    write_marker, write_synced, AreaState, MarkerLock, COMPLETE,
};
pub use area::{staging_area, MARKER};

use crate::store::LogStore;
use crate::transfer::Transfer;
use crate::{Error, Options, Result, Store};

/// Where a new store goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A log store directory.
    Log(PathBuf),
    /// An SQLite database file and its blob folder.
    #[cfg(feature = "sqlite")]
    Sqlite {
        /// The database file.
        db: PathBuf,
        /// The folder of its blob files.
        blobs: PathBuf,
    },
    /// A PostgreSQL store: the schema the URL names, built in
    /// `SCHEMA_partial` and renamed in one transaction.
    #[cfg(feature = "postgres")]
    Postgres {
        /// The server and schema, as [`PgStore::open`](crate::PgStore::open) takes them.
        url: String,
    },
}

impl Place {
    /// The final paths, in the order they are moved into place: the paths
    /// holding the store's data, whose insides belong to it (a log store's
    /// directory; an SQLite store's blob folder, then its database).
    fn finals(&self) -> Vec<&Path> {
        match self {
            Place::Log(dir) => vec![dir],
            #[cfg(feature = "sqlite")]
            Place::Sqlite { db, blobs } => vec![blobs, db],
            #[cfg(feature = "postgres")]
            Place::Postgres { .. } => vec![],
        }
    }

    /// The place with each path as its components spell it: a trailing
    /// `/` or `/.` names the same path but cannot be renamed onto.
    fn normalized(self) -> Place {
        let clean = |p: PathBuf| p.components().collect::<PathBuf>();
        match self {
            Place::Log(dir) => Place::Log(clean(dir)),
            #[cfg(feature = "sqlite")]
            Place::Sqlite { db, blobs } => Place::Sqlite {
                db: clean(db),
                blobs: clean(blobs),
            },
            #[cfg(feature = "postgres")]
            other @ Place::Postgres { .. } => other,
        }
    }
}

/// `path` made absolute with links resolved as far as it exists; the
/// missing rest appended as written (without `.` and with `..` applied).
fn resolved(path: &Path) -> Result<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io("reading the working directory", e))?
            .join(path)
    };
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(mut at) => {
                for part in rest.iter().rev() {
                    match part {
                        Component::ParentDir => {
                            at.pop();
                        }
                        Component::CurDir => {}
                        other => at.push(other),
                    }
                }
                return Ok(at);
            }
            Err(_) => match (existing.parent(), existing.components().next_back()) {
                (Some(parent), Some(last)) => {
                    rest.push(last);
                    existing = parent;
                }
                _ => return Ok(absolute),
            },
        }
    }
}

/// Refuses a target whose paths (or staging areas) lie inside the
/// source's: its directory, or an SQLite source's blob folder or database;
/// and a source inside one of the target's staging areas.
///
/// # Errors
/// `InvalidInput` naming both paths; `Io` reading the working directory.
pub fn refuse_inside(target: &Place, source: &Place) -> Result<()> {
    let mut mine = Vec::new();
    for path in target.finals() {
        mine.push((path, resolved(path)?));
        let area = staging_area(path)?;
        let at = resolved(&area)?;
        mine.push((path, at));
    }
    // The store's own path (a directory, or an SQLite file) is the last of each.
    if let (Some(&to), Some(&from)) = (target.finals().last(), source.finals().last()) {
        if resolved(to)? == resolved(from)? {
            return Err(Error::invalid(format!(
                "the source and the target are the same path ({})",
                to.display()
            )));
        }
    }
    for theirs in source.finals() {
        let theirs_at = resolved(theirs)?;
        // A run removes a leftover area first: a source inside one (an
        // interrupted run's store, copied out) would go with it.
        for path in target.finals() {
            let area = staging_area(path)?;
            if theirs_at.starts_with(resolved(&area)?) {
                return Err(Error::invalid(format!(
                    "the source's {} lies inside {}, the staging area of {}, which the copy \
                     removes first; move the source out of it",
                    theirs.display(),
                    area.display(),
                    path.display()
                )));
            }
        }
        for (path, at) in &mine {
            if at.starts_with(&theirs_at) {
                return Err(Error::invalid(format!(
                    "{} lies inside the source's {}; choose a target outside the source",
                    path.display(),
                    theirs.display()
                )));
            }
        }
    }
    Ok(())
}

/// What a run found of an earlier, interrupted one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// The staging area of an interrupted run, removed.
    Removed(PathBuf),
    /// The staging schema of an interrupted run, dropped.
    DroppedSchema(String),
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Leftover::Removed(area) => {
                write!(f, "removed {}, left by an interrupted run", area.display())
            }
            Leftover::DroppedSchema(schema) => {
                write!(f, "dropped schema {schema}, left by an interrupted run")
            }
        }
    }
}

/// The store being built.
enum Built {
    Log(LogStore),
    #[cfg(feature = "sqlite")]
    Sqlite(crate::SqliteStore),
    /// A store in a staging schema, the schema it becomes, and the lock
    /// held on the staging schema while it is built.
    #[cfg(feature = "postgres")]
    Pg(Box<crate::PgStore>, String, crate::pg::StagingLock),
}

impl Built {
    fn transfer(&self) -> &dyn Transfer {
        match self {
            Built::Log(s) => s,
            #[cfg(feature = "sqlite")]
            Built::Sqlite(s) => s,
            #[cfg(feature = "postgres")]
            Built::Pg(s, _, _) => s.as_ref(),
        }
    }

    /// Closes the store of an abandoned build (a staging schema is
    /// dropped: nothing else removes it).
    fn discard(self) {
        match self {
            #[cfg(feature = "postgres")]
            Built::Pg(s, _, lock) => {
                let _ = s.drop_schema();
                drop(lock);
            }
            other => {
                let _ = other.transfer().close();
            }
        }
    }
}

/// A new store being built in its staging areas: fill
/// [`Staging::store`], then [`Staging::finish`] moves it into place.
/// Dropped unfinished (an error on the way), it closes the store and
/// removes its areas, leaving the target as it was.
pub struct Staging {
    place: Place,
    /// The staging area of each final path, in the order of
    /// [`Place::finals`].
    areas: Vec<PathBuf>,
    /// The lock of each area made so far, held until the areas are gone.
    locks: Vec<File>,
    store: Option<Built>,
    leftovers: Vec<Leftover>,
    done: bool,
}

impl std::fmt::Debug for Staging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staging")
            .field("place", &self.place)
            .field("areas", &self.areas)
            .finish_non_exhaustive()
    }
}

impl Staging {
    /// Makes the staging areas of a new store at `place` (for PostgreSQL,
    /// its staging schema) and opens the store in them with `opts`. An
    /// area an interrupted run left (it holds the marker) is removed first
    /// and named in [`Staging::leftovers`]; if an SQLite store's move into
    /// place was interrupted between its two renames, the move is finished
    /// and the run refused, since the target then holds the whole store.
    ///
    /// # Errors
    /// `InvalidInput` when a final path holds something (other than an
    /// empty directory, or for a database a file without tables), when a
    /// staging area exists without the marker (it is left as it is), or
    /// when a path has no final name; `Io`, `Sqlite` or the store's open
    /// errors.
    pub fn begin(place: Place, opts: Options) -> Result<Staging> {
        let place = place.normalized();
        let finals: Vec<PathBuf> = place.finals().into_iter().map(Path::to_path_buf).collect();
        let areas = finals
            .iter()
            .map(|f| staging_area(f))
            .collect::<Result<Vec<_>>>()?;
        for (area, final_path) in areas.iter().zip(&finals) {
            if let AreaState::Foreign(why) = area_state(area)? {
                return Err(Error::invalid(format!(
                    "{} exists, and logstore did not make it ({why}), so it was left as it is; \
                     move it away or remove it, then run again to build {}",
                    area.display(),
                    final_path.display()
                )));
            }
        }
        // An area of ours is a leftover only once its lock is taken: a
        // run still working in it holds the lock.
        let mut taken = Vec::new();
        for (area, final_path) in areas.iter().zip(&finals) {
            if area_state(area)? != AreaState::Ours {
                continue;
            }
            match lock_marker(area)? {
                MarkerLock::Held(lock) => taken.push(lock),
                MarkerLock::NoMarker => {}
                MarkerLock::Busy => {
                    return Err(Error::invalid(format!(
                        "another run of logstore is building {} in {}, so it was left as it is; \
                         wait for that run to end, then run again",
                        final_path.display(),
                        area.display()
                    )))
                }
            }
        }
        finish_interrupted_move(&place, &areas)?;
        let mut leftovers = Vec::new();
        for area in &areas {
            if area_state(area)? != AreaState::Ours {
                continue;
            }
            if taken.iter().any(|lock| holds(area, lock)) {
                remove_area(area)?;
            } else {
                // No marker when its lock was tried: an empty area (or one
                // holding a marker begun since, which this refuses).
                fs::remove_dir(area).map_err(io_at("removing", area))?;
                sync_dir(parent_of(area))?;
            }
            leftovers.push(Leftover::Removed(area.clone()));
        }
        drop(taken);
        match &place {
            Place::Log(dir) => check_new(dir, true, "")?,
            #[cfg(feature = "sqlite")]
            Place::Sqlite { db, blobs } => {
                check_new(db, false, "")?;
                check_new(
                    blobs,
                    true,
                    &format!(" (where {} keeps its blobs)", db.display()),
                )?;
            }
            // The server checks its schemas in the transaction that makes
            // the staging one.
            #[cfg(feature = "postgres")]
            Place::Postgres { .. } => {}
        }
        let mut staging = Staging {
            place,
            areas,
            locks: Vec::new(),
            store: None,
            leftovers,
            done: false,
        };
        for area in &staging.areas {
            let parent = parent_of(area);
            crate::io::create_dirs_durable(parent).map_err(io_at("creating", parent))?;
            fs::create_dir(area).map_err(io_at("creating", area))?;
            staging.locks.push(write_marker(area)?);
            sync_dir(area)?;
            sync_dir(parent)?;
        }
        let built = match &staging.place {
            Place::Log(dir) => {
                let content = content_of(&staging.areas[0], dir)?;
                Built::Log(LogStore::open(content, opts)?)
            }
            #[cfg(feature = "sqlite")]
            Place::Sqlite { db, blobs } => {
                let blob_content = content_of(&staging.areas[0], blobs)?;
                let db_content = content_of(&staging.areas[1], db)?;
                Built::Sqlite(crate::SqliteStore::open(db_content, blob_content, opts)?)
            }
            #[cfg(feature = "postgres")]
            Place::Postgres { url } => {
                let (store, target, dropped, lock) = crate::PgStore::open_staging(url, opts)?;
                if let Some(schema) = dropped {
                    staging.leftovers.push(Leftover::DroppedSchema(schema));
                }
                Built::Pg(Box::new(store), target, lock)
            }
        };
        staging.store = Some(built);
        Ok(staging)
    }

    /// What [`Staging::begin`] found of interrupted runs and removed.
    pub fn leftovers(&self) -> &[Leftover] {
        &self.leftovers
    }

    /// The store being built.
    ///
    /// # Errors
    /// `Closed` once finished.
    pub fn store(&self) -> Result<&dyn Transfer> {
        self.store
            .as_ref()
            .map(Built::transfer)
            .ok_or(Error::Closed)
    }

    /// Verifies (a log store), closes and syncs the store, then moves it
    /// into place and removes the staging areas.
    ///
    /// # Errors
    /// `Corruption` when a log store does not verify (nothing is moved and
    /// the areas are removed); `Io` or the store's close errors.
    pub fn finish(mut self) -> Result<()> {
        let built = self.store.take().ok_or(Error::Closed)?;
        match built {
            Built::Log(store) => {
                let report = store.verify()?;
                if !report.is_clean() {
                    let problems: Vec<String> =
                        report.problems.iter().map(ToString::to_string).collect();
                    return Err(Error::corruption(
                        self.areas[0].clone(),
                        0,
                        format!("the copy does not verify: {}", problems.join("; ")),
                    ));
                }
                store.close()?;
            }
            #[cfg(feature = "sqlite")]
            Built::Sqlite(store) => {
                // The last connection's close checkpoints the WAL into the
                // database file and removes the WAL.
                store.close()?;
                drop(store);
            }
            // One transaction: the schema is renamed whole, or not at all
            // (then the staging schema stays for the next run to drop).
            #[cfg(feature = "postgres")]
            Built::Pg(store, target, lock) => {
                self.done = true;
                let promoted = store.promote(&target);
                drop(lock);
                return promoted;
            }
        }
        let finals: Vec<PathBuf> = self
            .place
            .finals()
            .into_iter()
            .map(Path::to_path_buf)
            .collect();
        for (area, final_path) in self.areas.iter().zip(&finals) {
            let content = content_of(area, final_path)?;
            if content.is_dir() {
                sync_dir(&content)?;
            } else {
                let mut wal = content.clone().into_os_string();
                wal.push("-wal");
                if Path::new(&wal).exists() {
                    return Err(Error::io(
                        format!("closing {}", content.display()),
                        io::Error::other("its write-ahead log was not checkpointed at close"),
                    ));
                }
                File::open(&content)
                    .and_then(|f| f.sync_all())
                    .map_err(io_at("syncing", &content))?;
            }
            sync_dir(area)?;
        }
        if self.areas.len() > 1 {
            let last = &self.areas[self.areas.len() - 1];
            write_synced(&last.join(COMPLETE), "complete\n")?;
            sync_dir(last)?;
        }
        // Nothing may have been made at a final path since the run began:
        // a rename would replace a file (an SQLite database) silently.
        check_finals(&self.areas, &finals)?;
        // From here the store is whole: each rename puts one part in place.
        self.done = true;
        move_into_place(&self.areas, &finals)
    }
}

/// Refuses a final path that holds something now (other than an empty
/// directory, or for a database a file without tables).
fn check_finals(areas: &[PathBuf], finals: &[PathBuf]) -> Result<()> {
    for (area, final_path) in areas.iter().zip(finals) {
        let content = content_of(area, final_path)?;
        if let Ok(meta) = fs::symlink_metadata(&content) {
            check_new(final_path, meta.is_dir(), "")?;
        }
    }
    Ok(())
}

/// Renames each area's content to its final path, the last one being the
/// commit point, then removes the areas.
fn move_into_place(areas: &[PathBuf], finals: &[PathBuf]) -> Result<()> {
    for (area, final_path) in areas.iter().zip(finals) {
        let content = content_of(area, final_path)?;
        if fs::symlink_metadata(&content).is_ok() {
            rename_new(&content, final_path).map_err(|e| {
                Error::io(
                    format!(
                        "moving the finished store from {} to {}",
                        content.display(),
                        final_path.display()
                    ),
                    e,
                )
            })?;
            // A rename across directories is a create in the final path's
            // parent and a remove in the area: the create is made durable
            // first (losing it would lose the part), then the remove, so a
            // crash cannot leave the area naming the part as well (the
            // next run would remove the area, and the part with it).
            sync_dir(parent_of(final_path))?;
            sync_dir(area)?;
        }
    }
    for area in areas {
        remove_area(area)?;
    }
    Ok(())
}

/// Renames `from` to `to`; onto a missing `to` without replacing what
/// appears there meanwhile (where the file system can refuse that).
fn rename_new(from: &Path, to: &Path) -> io::Result<()> {
    if fs::symlink_metadata(to).is_ok() {
        // An empty directory or database, checked by `check_finals`.
        return fs::rename(from, to);
    }
    let cwd = rustix::fs::CWD;
    match rustix::fs::renameat_with(cwd, from, cwd, to, rustix::fs::RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => fs::rename(from, to),
        Err(e) => Err(e.into()),
    }
}

/// An SQLite store whose move into place stopped between its renames: the
/// database's area is complete and still holds the database, and the blob
/// folder's area no longer holds the folder. The move is finished, and the
/// run refused: the target holds the whole store.
fn finish_interrupted_move(place: &Place, areas: &[PathBuf]) -> Result<()> {
    if areas.len() < 2 {
        return Ok(());
    }
    let finals: Vec<PathBuf> = place.finals().into_iter().map(Path::to_path_buf).collect();
    let (first, last) = (&areas[0], &areas[areas.len() - 1]);
    let interrupted = area_state(last)? == AreaState::Ours
        && fs::symlink_metadata(last.join(COMPLETE)).is_ok_and(|m| m.is_file())
        && fs::symlink_metadata(content_of(last, &finals[finals.len() - 1])?)
            .is_ok_and(|m| m.is_file())
        && area_state(first)? == AreaState::Ours
        && fs::symlink_metadata(content_of(first, &finals[0])?).is_err()
        // The folder's rename reached its final path: a power loss before
        // the parent's sync may keep the remove from the area and lose
        // the create, and the folder with it (then the run starts over).
        && fs::symlink_metadata(&finals[0]).is_ok_and(|m| m.is_dir());
    if !interrupted {
        return Ok(());
    }
    check_finals(areas, &finals)?;
    move_into_place(areas, &finals)?;
    Err(Error::invalid(format!(
        "an interrupted run had built the whole store and was moving it into place; \
         the move is now finished and {} holds that store (remove it to copy again)",
        finals[finals.len() - 1].display()
    )))
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(built) = self.store.take() {
            built.discard();
        }
        // Best effort: a failure leaves the areas for the next run, which
        // recognises them by their marker.
        // Only the areas this run made: another run may have replaced one.
        for (area, lock) in self.areas.iter().zip(&self.locks) {
            if holds(area, lock) {
                let _ = remove_area(area);
            }
        }
    }
}

#[cfg(test)]
mod tests;
