//! Repair in place (`Salvage::repair_in_place`, behind `logstore repair
//! --in-place`) under the fault model: a power loss before every file
//! operation and at every sync of the repair, with the simulator's choices
//! of what unsynced state survives, and an I/O error at every step. After
//! each, the store holds either what it held before the repair (which a
//! rerun then repairs) or the repaired state, and every damaged original
//! exists, whole, in place or in the folder the repair keeps them in.

mod common;

use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::power_fs::{image_fs, Image, PowerFs};
use common::repair::{damaged_store, load, open_dump, repair, salvage_dump, Damage, Expected};
use logstore::io::{FaultFs, LockGuard, VFile, Vfs};
use logstore::{Error, ManualClock};

/// The power-loss simulator with a crash image recorded before every file
/// operation (creating, writing, resizing, renaming, removing), besides
/// the ones it records at every sync.
#[derive(Debug, Clone)]
struct EveryStep(PowerFs);

#[derive(Debug)]
struct StepFile {
    file: Arc<dyn VFile>,
    power: PowerFs,
}

impl VFile for StepFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.power.capture_now();
        self.file.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.power.capture_now();
        self.file.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        self.file.size()
    }
}

impl Vfs for EveryStep {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.0.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.0.list(dir)
    }
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VFile>> {
        if create && self.0.open(path, false).is_err() {
            self.0.capture_now();
        }
        let file = self.0.open(path, create)?;
        Ok(Arc::new(StepFile {
            file,
            power: self.0.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.capture_now();
        self.0.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.0.capture_now();
        self.0.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.sync_dir(dir)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn LockGuard>>> {
        self.0.try_lock(path)
    }
}

/// What a crash image holds.
#[derive(Debug, Default)]
struct Tally {
    before: usize,
    repaired: usize,
}

/// Checks one crash image; `finished` when the repair had returned.
fn check_image(
    image: &Image,
    finished: bool,
    want: &Expected,
    clock: &Arc<ManualClock>,
    tally: &mut Tally,
) -> Result<(), String> {
    let fresh = || Arc::new(image_fs(image)) as Arc<dyn Vfs>;
    let committed = match open_dump(fresh(), clock) {
        Ok(dump) if dump == want.repaired => true,
        Ok(dump) if Some(&dump) == want.before.as_ref() => false,
        Ok(dump) => return Err(format!("opens to neither state:\n{dump}")),
        Err(Error::Corruption { .. }) if want.before.is_none() => false,
        Err(e) => return Err(format!("does not open: {e}")),
    };
    if finished && !committed {
        return Err("the repair returned before its switch was durable".into());
    }
    // Every original exists whole: in place, or kept.
    for (path, bytes) in &want.originals {
        let here = image.get(path).map(|b| b.as_slice());
        let kept = image
            .get(&want.kept.join(path.file_name().unwrap()))
            .map(|b| b.as_slice());
        let whole = |b: Option<&[u8]>| b == Some(bytes.as_slice());
        if committed && !whole(here) && !whole(kept) {
            return Err(format!("{} is lost", path.display()));
        }
        if !committed && !whole(here) {
            return Err(format!(
                "{} changed before the switch was durable",
                path.display()
            ));
        }
    }
    if committed {
        tally.repaired += 1;
    } else {
        tally.before += 1;
        let salvaged = salvage_dump(fresh(), clock);
        if salvaged != want.salvaged {
            return Err(format!("salvages to another state:\n{salvaged}"));
        }
    }
    // Whatever the crash left, running the repair again completes it.
    let fs = fresh();
    repair(fs.clone(), clock).map_err(|e| format!("the rerun failed: {e}"))?;
    match open_dump(fs, clock) {
        Ok(dump) if dump == want.repaired => Ok(()),
        Ok(dump) => Err(format!("the rerun repaired to another state:\n{dump}")),
        Err(e) => Err(format!("the rerun left a store that does not open: {e}")),
    }
}

fn power_loss_at_every_step(damaged: Damage) {
    let (clock, files, want) = damaged_store(damaged);

    let power = PowerFs::new();
    load(&power, &files);
    power.set_capture(true);
    let fs: Arc<dyn Vfs> = Arc::new(EveryStep(power.clone()));
    let report = repair(fs, &clock).unwrap();
    assert_eq!(report.originals, want.kept);
    power.acked.store(1, Ordering::SeqCst);
    power.capture_now();

    let stats = power.stats();
    let images = power.take_labelled_images();
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for (image, acked, label) in &images {
        if let Err(why) = check_image(image, *acked == 1, &want, &clock, &mut tally) {
            failures.push(format!("{label} (finished: {}): {why}", *acked == 1));
        }
    }
    eprintln!(
        "{damaged:?}: {} crash points, {} distinct images: {} before the switch, {} after",
        stats.sync_points,
        images.len(),
        tally.before,
        tally.repaired
    );
    common::assert_no_failures(&format!("{damaged:?}, {} images", images.len()), &failures);
    assert!(tally.before > 0 && tally.repaired > 0, "{tally:?}");
}

/// A store that opens (its newest segment was cut at damage) repaired in
/// place, with a power loss at every step: it opens as it was or as
/// repaired, and keeps its originals throughout.
#[test]
fn a_power_loss_at_every_step_of_a_repair_leaves_the_store_before_or_repaired() {
    power_loss_at_every_step(Damage::Tail);
}

/// The same for a store that no longer opens (a sealed segment is
/// damaged): before the switch it fails to open as before and salvages as
/// before.
#[test]
fn a_power_loss_at_every_step_of_repairing_a_store_that_does_not_open() {
    power_loss_at_every_step(Damage::Sealed);
}

/// An I/O error at each file operation of the repair, in turn: the repair
/// reports it, the store opens before or repaired (or, not yet switched,
/// fails to open as it did), and a rerun completes the repair.
#[test]
fn an_io_error_at_every_step_of_a_repair_leaves_the_store_openable_and_a_rerun_completes() {
    for damaged in [Damage::Tail, Damage::Sealed] {
        let (clock, files, want) = damaged_store(damaged);
        let steps = common::crash::at_every_step(|step| {
            let fs = FaultFs::new();
            for (path, bytes) in &files {
                fs.open(path, true).unwrap().write_all_at(bytes, 0).unwrap();
            }
            fs.fail_at(step, false);
            let result = repair(fs.as_vfs(), &clock);
            let faulted = fs.injected() > 0;
            fs.heal();
            match open_dump(fs.as_vfs(), &clock) {
                Ok(dump) => assert!(
                    dump == want.repaired || Some(&dump) == want.before.as_ref(),
                    "{damaged:?} step {step}: opens to neither state:\n{dump}"
                ),
                Err(Error::Corruption { .. }) if want.before.is_none() => {}
                Err(e) => panic!("{damaged:?} step {step}: does not open: {e}"),
            }
            repair(fs.as_vfs(), &clock)
                .unwrap_or_else(|e| panic!("{damaged:?} step {step}: the rerun: {e}"));
            assert_eq!(
                open_dump(fs.as_vfs(), &clock).unwrap(),
                want.repaired,
                "{damaged:?} step {step}"
            );
            (faulted, result)
        });
        eprintln!("{damaged:?}: an I/O error at each of {steps} steps");
        assert!(steps > 20, "a repair has many steps: {steps}");
    }
}
