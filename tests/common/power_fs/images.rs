//! The images a power loss could leave at a sync point: the prefix model's
//! and the page model's, as the simulator's documentation describes them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::state::{apply, apply_dir_op, DirOp, Pending, State};
use super::{Image, PAGE, SECTOR, SECTORS, TEAR_ENUMERATION_PAGES};

/// What became of one dirty page in a crash image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    Old,
    New,
    Zero,
    /// Bit `s` set: sector `s` holds its new bytes, otherwise its old ones.
    Torn(u8),
}

/// One combination: the fate of every dirty page, every file's length and
/// every pending directory operation.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) default: Fate,
    pub(super) fates: HashMap<(u64, usize), Fate>,
    pub(super) new_len: bool,
    pub(super) lens: HashMap<u64, bool>,
    /// Directory operations kept, by their index in the flat list.
    pub(super) ops: Vec<bool>,
}

impl Plan {
    pub(super) fn uniform(fate: Fate, new_len: bool, ops: usize, keep_ops: bool) -> Plan {
        Plan {
            default: fate,
            fates: HashMap::new(),
            new_len,
            lens: HashMap::new(),
            ops: vec![keep_ops; ops],
        }
    }
}

impl State {
    /// The image `plan` describes.
    pub(super) fn render(&self, plan: &Plan, ops: &[DirOp]) -> Image {
        let mut entries = self.durable_entries.clone();
        for (op, keep) in ops.iter().zip(&plan.ops) {
            if *keep {
                apply_dir_op(&mut entries, op);
            }
        }
        entries
            .into_iter()
            .map(|(path, id)| {
                let content = self.render_file(id, plan);
                (path, content)
            })
            .collect()
    }

    fn render_file(&self, id: u64, plan: &Plan) -> Arc<Vec<u8>> {
        let file = &self.files[&id];
        if file.dirty.is_empty() && file.written.len() == file.durable.len() {
            return file.durable.clone();
        }
        let new_len = *plan.lens.get(&id).unwrap_or(&plan.new_len);
        let len = if new_len {
            file.written.len()
        } else {
            file.durable.len()
        };
        let old = |i: usize| file.durable.get(i).copied().unwrap_or(0);
        let new = |i: usize| file.written.get(i).copied().unwrap_or(0);
        let mut out: Vec<u8> = (0..len).map(old).collect();
        for &page in &file.dirty {
            let start = page * PAGE;
            if start >= len {
                break;
            }
            let end = (start + PAGE).min(len);
            let fate = *plan.fates.get(&(id, page)).unwrap_or(&plan.default);
            for (i, byte) in out.iter_mut().enumerate().take(end).skip(start) {
                *byte = match fate {
                    Fate::Old => old(i),
                    Fate::New => new(i),
                    Fate::Zero => 0,
                    Fate::Torn(mask) => {
                        if mask & (1 << ((i - start) / SECTOR)) != 0 {
                            new(i)
                        } else {
                            old(i)
                        }
                    }
                };
            }
        }
        Arc::new(out)
    }

    /// The page model's images at this moment.
    pub(super) fn page_model_images(&mut self, acked: usize) {
        let ops = self.flat_ops();
        let dirty: Vec<(u64, usize)> = self
            .reachable()
            .into_iter()
            .flat_map(|id| self.files[&id].dirty.iter().map(move |&p| (id, p)))
            .collect();
        let n = ops.len();
        let names: HashMap<u64, String> = dirty
            .iter()
            .map(|&(id, _)| (id, self.name_of(id)))
            .collect();
        let name = |id: u64| names[&id].clone();
        let mut plans = vec![
            (
                "all old".to_string(),
                Plan::uniform(Fate::Old, false, n, false),
            ),
            (
                "all new".to_string(),
                Plan::uniform(Fate::New, true, n, true),
            ),
            (
                "every dirty page zero".to_string(),
                Plan::uniform(Fate::Zero, true, n, true),
            ),
            (
                "contents new, directory operations lost".to_string(),
                Plan::uniform(Fate::New, true, n, false),
            ),
            (
                "contents old, directory operations kept".to_string(),
                Plan::uniform(Fate::Old, false, n, true),
            ),
        ];
        for &(id, page) in &dirty {
            let mut plan = Plan::uniform(Fate::New, true, n, true);
            plan.fates.insert((id, page), Fate::Zero);
            plans.push((
                format!("page {page} of {} zero, the rest new", name(id)),
                plan,
            ));
        }
        if dirty.len() <= TEAR_ENUMERATION_PAGES {
            for &(id, page) in &dirty {
                for k in 1..SECTORS {
                    let mut plan = Plan::uniform(Fate::New, true, n, true);
                    plan.fates
                        .insert((id, page), Fate::Torn(((1u16 << k) - 1) as u8));
                    let label = format!(
                        "page {page} of {} torn after {k} sectors (the rest of it old), the rest new",
                        name(id)
                    );
                    plans.push((label, plan));
                }
            }
        }
        for (i, op) in ops.iter().enumerate() {
            let mut plan = Plan::uniform(Fate::New, true, n, true);
            plan.ops[i] = false;
            plans.push((format!("all new but {op:?} lost"), plan));
        }
        for j in 0..self.samples {
            let mut plan = Plan::uniform(Fate::New, true, n, true);
            let mut label = format!("random combination {j}:");
            for &(id, page) in &dirty {
                let fate = match self.rng.below(4) {
                    0 => Fate::Old,
                    1 => Fate::New,
                    2 => Fate::Zero,
                    _ => Fate::Torn(self.rng.below(256) as u8),
                };
                label.push_str(&format!(" page {page} of {} {fate:?};", name(id)));
                plan.fates.insert((id, page), fate);
            }
            for &(id, _) in &dirty {
                let coin = self.rng.coin();
                plan.lens.entry(id).or_insert(coin);
            }
            for (keep, op) in plan.ops.iter_mut().zip(&ops) {
                *keep = self.rng.coin();
                if !*keep {
                    label.push_str(&format!(" {op:?} lost;"));
                }
            }
            plans.push((label, plan));
        }
        for (label, plan) in plans {
            let image = self.render(&plan, &ops);
            self.record(image, acked, format!("page model: {label}"));
        }
    }

    /// The prefix model's images for a sync of file `id`.
    pub(super) fn prefix_model_file_images(&mut self, id: u64, acked: usize) {
        let base = self.durable_image();
        let mut new_images = vec![(base.clone(), "synced state".to_string())];
        let paths: Vec<PathBuf> = self
            .durable_entries
            .iter()
            .filter(|(_, fid)| **fid == id)
            .map(|(p, _)| p.clone())
            .collect();
        let file = &self.files[&id];
        for path in paths {
            let mut content = file.durable.as_ref().clone();
            for op in &file.pending {
                if let Pending::Write(offset, bytes) = op {
                    let mut torn = content.clone();
                    apply(
                        &mut torn,
                        &Pending::Write(*offset, bytes[..bytes.len() / 2].to_vec()),
                    );
                    let mut image = base.clone();
                    image.insert(path.clone(), Arc::new(torn));
                    new_images.push((
                        image,
                        format!("{} up to a write torn in half", path.display()),
                    ));
                }
                apply(&mut content, op);
                let mut image = base.clone();
                image.insert(path.clone(), Arc::new(content.clone()));
                new_images.push((image, format!("{} up to a write", path.display())));
            }
            if file.written.len() > file.durable.len() {
                let mut zeros = file.durable.as_ref().clone();
                zeros.resize(file.written.len(), 0);
                let mut image = base.clone();
                image.insert(path.clone(), Arc::new(zeros));
                new_images.push((image, format!("{} extended with zeros", path.display())));
            }
        }
        for (image, label) in new_images {
            self.record(image, acked, format!("prefix model: {label}"));
        }
    }

    /// The prefix model's images for a sync of directory `dir`.
    pub(super) fn prefix_model_dir_images(&mut self, dir: &Path, acked: usize) {
        let base = self.durable_image();
        self.record(base, acked, "prefix model: synced state".to_string());
        let mut entries = self.durable_entries.clone();
        for op in self.dir_ops.get(dir).into_iter().flatten() {
            apply_dir_op(&mut entries, op);
        }
        let image = entries
            .iter()
            .map(|(path, id)| (path.clone(), self.files[id].durable.clone()))
            .collect();
        self.record(
            image,
            acked,
            format!("prefix model: the entries of {} synced", dir.display()),
        );
    }
}
