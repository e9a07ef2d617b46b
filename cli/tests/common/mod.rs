//! What the tests of the `logstore` binary share: running it, and taking
//! a picture of a directory to show that a command changed nothing.

#![allow(dead_code)]

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub fn logstore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logstore"))
        .args(args)
        .output()
        .expect("run logstore")
}

/// Runs the tool, which must succeed; returns what it printed on stdout.
pub fn ok(args: &[&str]) -> String {
    let out = logstore(args);
    assert!(
        out.status.success(),
        "logstore {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs the tool with `input` on its stdin.
pub fn logstore_with_input(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_logstore"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run logstore");
    // The tool may refuse and exit before it reads its input: a broken
    // pipe here is that, and its output says why.
    match child.stdin.take().unwrap().write_all(input) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        written => written.unwrap(),
    }
    child.wait_with_output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every entry at and under `path`, in name order: its path relative to
/// `path`, kind, size and modification time, and a hash of a file's bytes
/// or a link's target. Two pictures are equal only if nothing was made,
/// removed, renamed, written or touched (access times are left out:
/// reading moves them).
pub fn tree(path: &Path) -> Vec<String> {
    let mut out = Vec::new();
    picture(path, Path::new("."), &mut out);
    out
}

fn picture(path: &Path, name: &Path, out: &mut Vec<String>) {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            out.push(format!("{}: missing", name.display()));
            return;
        }
        Err(e) => panic!("{}: {e}", path.display()),
    };
    let head = format!(
        "{}: {:?} {} bytes, modified {:?}",
        name.display(),
        meta.file_type(),
        meta.len(),
        meta.modified().unwrap()
    );
    if meta.is_symlink() {
        out.push(format!("{head} -> {:?}", std::fs::read_link(path).unwrap()));
    } else if meta.is_file() {
        let mut hasher = DefaultHasher::new();
        std::fs::read(path).unwrap().hash(&mut hasher);
        out.push(format!("{head}, contents {:016x}", hasher.finish()));
    } else {
        out.push(head);
        let mut names: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for entry in names {
            picture(&path.join(&entry), &name.join(&entry), out);
        }
    }
}
