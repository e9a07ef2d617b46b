//! Where the benchmark's stores go, and what file system holds them: a
//! `Sync` figure measures `fdatasync`, which a file system in memory
//! (tmpfs, ramfs) answers without touching a disk.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;

/// The folder the stores go in (made for the run, removed at its end) and
/// its file system.
pub struct Place {
    dir: tempfile::TempDir,
    pub file_system: FileSystem,
}

/// A file system, as `statfs` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSystem {
    /// Its name (`ext4`, `tmpfs`), or its magic number in hex.
    pub name: String,
    /// True when its files live in memory, so a sync reaches no disk.
    pub in_memory: bool,
}

impl Place {
    /// A new folder in `parent` (the system's temporary folder when `None`),
    /// which must be an existing directory.
    pub fn make(parent: Option<&Path>) -> anyhow::Result<Place> {
        let parent: PathBuf = match parent {
            Some(p) => p.to_path_buf(),
            None => std::env::temp_dir(),
        };
        match std::fs::metadata(&parent) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => bail!("--dir {} is not a directory", parent.display()),
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("--dir {}", parent.display())))
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("logstore-bench-")
            .tempdir_in(&parent)
            .with_context(|| format!("making a folder in {}", parent.display()))?;
        let file_system = file_system(dir.path())?;
        Ok(Place { dir, file_system })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where the stores are, in one line.
    pub fn describe(&self) -> String {
        format!(
            "stores in {} (file system: {})",
            self.path().display(),
            self.file_system.name
        )
    }

    /// The warning for `Sync` figures measured here, if they mean nothing.
    pub fn sync_warning(&self) -> Option<String> {
        self.file_system.in_memory.then(|| {
            format!(
                "warning: {} is on {}, in memory: fdatasync reaches no disk there, so the Sync \
                 figures are meaningless; give --dir a directory on the disk to measure",
                self.path().display(),
                self.file_system.name
            )
        })
    }
}

/// The file system holding `path`.
fn file_system(path: &Path) -> anyhow::Result<FileSystem> {
    let stat = rustix::fs::statfs(path)
        .with_context(|| format!("reading the file system of {}", path.display()))?;
    // The field's integer type differs between C libraries; the magic
    // numbers fit in 32 bits.
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
    let magic = stat.f_type as u32;
    Ok(named(magic))
}

/// The name of the file system with this `f_type` (linux/magic.h).
fn named(magic: u32) -> FileSystem {
    let (name, in_memory) = match magic {
        0x0102_1994 => ("tmpfs", true),
        0x8584_58f6 => ("ramfs", true),
        0xef53 => ("ext2/ext3/ext4", false),
        0x5846_5342 => ("xfs", false),
        0x9123_683e => ("btrfs", false),
        0x2fc1_2fc1 => ("zfs", false),
        0xf2f5_2010 => ("f2fs", false),
        0x794c_7630 => ("overlayfs", false),
        0x6969 => ("nfs", false),
        0x6573_5546 => ("fuse", false),
        0xff53_4d42 => ("cifs", false),
        0xfe53_4d42 => ("smb2", false),
        0x0102_1997 => ("9p", false),
        0x4d44 => ("vfat", false),
        _ => {
            return FileSystem {
                name: format!("unknown, f_type {magic:#x}"),
                in_memory: false,
            }
        }
    };
    FileSystem {
        name: name.into(),
        in_memory,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_file_systems_are_told_apart_from_disks() {
        assert!(named(0x0102_1994).in_memory);
        assert!(named(0x8584_58f6).in_memory);
        assert!(!named(0xef53).in_memory);
        assert_eq!(named(0x1234).name, "unknown, f_type 0x1234");
    }
}
