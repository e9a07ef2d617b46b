//! Repair in place under fsyncgate: sync N of a repair fails (the pages or
//! directory operations it covered are dropped for good), for each N; the
//! repair reports it; the process (not the machine) restarts on the same
//! page cache and repairs again, or opens the store first. Then the power
//! fails: the durable image (and, for a rerun, every image the page model
//! records during it) opens as before or as repaired, is repaired whenever
//! a repair returned `Ok`, and keeps every original whole, in place or in a
//! `repair-*` folder.

mod common;

use std::sync::Arc;

use common::power_fs::{image_fs, Image, PowerFs};
use common::repair::{damaged_store, load, open_dump, repair, Damage, Expected};
use logstore::io::Vfs;
use logstore::{Error, ManualClock};

/// Whether the crash image `image` holds the store as before the repair or
/// repaired (repaired when `acked`), with every original whole somewhere.
fn check(
    image: &Image,
    want: &Expected,
    clock: &Arc<ManualClock>,
    acked: bool,
) -> Result<(), String> {
    let fs = Arc::new(image_fs(image)) as Arc<dyn Vfs>;
    let committed = match open_dump(fs, clock) {
        Ok(d) if d == want.repaired => true,
        Ok(d) if Some(&d) == want.before.as_ref() => false,
        Ok(d) => return Err(format!("opens to neither state:\n{d}")),
        Err(Error::Corruption { .. }) if want.before.is_none() => false,
        Err(e) => return Err(format!("does not open: {e}")),
    };
    if acked && !committed {
        return Err("a repair returned Ok but the durable image is not repaired".into());
    }
    for (path, bytes) in &want.originals {
        let name = path.file_name().unwrap();
        let whole_here = image.get(path).map(|b| b.as_slice()) == Some(bytes.as_slice());
        let kept = image.iter().any(|(p, b)| {
            p.file_name() == Some(name)
                && p.parent()
                    .and_then(|d| d.file_name())
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("repair-"))
                && b.as_slice() == bytes.as_slice()
        });
        if !whole_here && !kept {
            return Err(format!(
                "{} is lost (committed: {committed})",
                path.display()
            ));
        }
    }
    Ok(())
}

/// What the restarted process does before the power fails.
#[derive(Debug, Clone, Copy)]
enum Then {
    /// Runs the repair again.
    Rerun,
    /// Runs the repair again, with a power-loss image at each of its steps.
    RerunImages,
    /// Opens the store, then runs the repair again.
    OpenThenRerun,
    /// Opens the store.
    Open,
}

/// Sync `n` of a repair fails, for each `n` in turn; the process restarts
/// and does `then`; the power fails.
fn fsyncgate_then(then: Then) {
    let mut failures = Vec::new();
    let mut runs = 0;
    for damaged in [Damage::Tail, Damage::Sealed] {
        let (clock, files, want) = damaged_store(damaged);
        for n in 1.. {
            let power = PowerFs::new();
            load(&power, &files);
            power.fail_sync_at(n);
            let first = repair(power.as_vfs(), &clock);
            if power.failed_syncs() == 0 {
                break;
            }
            runs += 1;
            if first.is_ok() {
                failures.push(format!(
                    "{damaged:?} sync {n}: the repair returned Ok after a failed sync"
                ));
            }
            power.fail_sync_at(0);
            let acked = match then {
                Then::Rerun => repair(power.as_vfs(), &clock).is_ok(),
                Then::RerunImages => {
                    power.set_capture(true);
                    let ok = repair(power.as_vfs(), &clock).is_ok();
                    power.set_capture(false);
                    for (image, _, label) in power.take_labelled_images() {
                        if let Err(why) = check(&image, &want, &clock, false) {
                            failures.push(format!(
                                "{damaged:?} sync {n} failed, rerun crashed at {label}: {why}"
                            ));
                        }
                    }
                    ok
                }
                Then::OpenThenRerun => {
                    let _ = open_dump(power.as_vfs(), &clock);
                    repair(power.as_vfs(), &clock).is_ok()
                }
                Then::Open => {
                    let _ = open_dump(power.as_vfs(), &clock);
                    false
                }
            };
            if let Err(why) = check(&power.durable_image(), &want, &clock, acked) {
                failures.push(format!(
                    "{damaged:?} sync {n} failed, then {then:?} (ok: {acked}): {why}; first: {first:?}"
                ));
            }
        }
    }
    assert!(runs > 20, "a repair has many syncs: {runs}");
    common::assert_no_failures(&format!("fsyncgate then {then:?}"), &failures);
}

#[test]
fn a_failed_sync_during_a_repair_then_a_rerun_without_reboot() {
    fsyncgate_then(Then::Rerun);
}

#[test]
fn a_failed_sync_during_a_repair_then_an_open_without_reboot() {
    fsyncgate_then(Then::Open);
}

#[test]
fn a_failed_sync_during_a_repair_then_an_open_and_a_rerun_without_reboot() {
    fsyncgate_then(Then::OpenThenRerun);
}

#[test]
fn a_failed_sync_during_a_repair_then_a_rerun_with_a_power_loss_at_every_step() {
    fsyncgate_then(Then::RerunImages);
}
