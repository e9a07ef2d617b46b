//! A crafted store directory cannot make the tool act outside it: with
//! links planted where the engine keeps its own folders and temporary
//! files, every command runs (or refuses) and a victim folder beside the
//! store, and every file in it, stays exactly as it was.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::{logstore, text, tree};

/// A store with documents, a blob and a lease, closed.
fn store_with_data(dir: &Path) {
    let store = dir.to_str().unwrap();
    for i in 0..5 {
        let body = format!(r#"{{"owner": "o{i}", "text": "hello"}}"#);
        let out = logstore(&["put", store, "msgs", &format!("m{i}"), &body]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
}

/// Links at each place the engine would write, delete or sweep: its blob
/// staging folder, a content folder, the quarantine folder and its
/// temporary files, each pointing into `victim`.
fn plant(dir: &Path, victim: &Path) {
    std::fs::create_dir_all(dir.join("blobs")).unwrap();
    let hash = format!("ab{}", "0123456789abcdef".repeat(4).get(..62).unwrap());
    std::fs::write(victim.join(&hash), b"a file named like a content file").unwrap();
    std::fs::write(
        victim.join("0b6a4ab5-54c1-4a7e-9d53-2f2d3c1a9e10.tmp"),
        b"a file named like a staging file",
    )
    .unwrap();
    std::fs::write(victim.join("authorized_keys"), b"ssh-ed25519 AAAA victim").unwrap();
    symlink(victim, dir.join("blobs/tmp")).unwrap();
    symlink(victim, dir.join("blobs").join(&hash[..2])).unwrap();
    symlink(victim, dir.join("quarantine")).unwrap();
    symlink(victim.join("authorized_keys"), dir.join("SNAPSHOT.tmp")).unwrap();
    symlink(victim.join("authorized_keys"), dir.join("MANIFEST.tmp")).unwrap();
}

#[test]
fn no_command_reads_writes_or_deletes_through_links_in_a_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let victim = tmp.path().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    store_with_data(&dir);
    plant(&dir, &victim);
    // A torn tail, so a writable open has bytes to quarantine.
    let newest = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .max()
        .unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    bytes.extend_from_slice(b"\x01torn bytes of a record being appended");
    std::fs::write(&newest, &bytes).unwrap();

    let victim_before = tree(&victim);
    let links = ["blobs/tmp", "quarantine", "SNAPSHOT.tmp", "MANIFEST.tmp"];
    let store = dir.to_str().unwrap();
    let aside = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let commands: Vec<Vec<String>> = [
        vec!["stats", store],
        vec!["verify", store],
        vec!["dump", store],
        vec!["get", store, "msgs", "m1"],
        vec!["query", store, "msgs"],
        vec!["count", store, "msgs"],
        vec!["collections", store],
        vec!["blobs", store],
        vec!["leases", store],
        vec!["backup", store, &aside("backup")],
        vec!["migrate", store, &aside("migrated")],
        vec!["repair", store, "--out", &aside("repaired")],
        vec!["repair", store, "--in-place"],
        vec!["put", store, "msgs", "m9", "{}"],
        vec!["ensure", store, "msgs", "owner", "rank"],
        vec!["delete", store, "msgs", "m2"],
        vec!["compact", store],
        vec!["verify", store],
    ]
    .into_iter()
    .map(|args| args.into_iter().map(String::from).collect())
    .collect();
    for args in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = logstore(&args);
        assert_ne!(
            out.status.code(),
            Some(101),
            "{args:?} panicked: {}",
            text(&out.stderr)
        );
        assert_eq!(tree(&victim), victim_before, "{args:?} changed the victim");
        for link in links {
            let meta = std::fs::symlink_metadata(dir.join(link)).unwrap();
            assert!(meta.file_type().is_symlink(), "{args:?} replaced {link}");
        }
    }
    // verify names the links it left alone.
    let out = logstore(&["verify", store]);
    let report = text(&out.stdout);
    for link in links {
        assert!(
            report.contains(link),
            "verify does not name {link}: {report}"
        );
    }
}
