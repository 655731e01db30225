//! Splitting a plan into volumes, naming them, and the size estimate used
//! while packing.
//!
//! Packing uses a deliberately pessimistic estimate of the ISO metadata a
//! volume needs (descriptors, path tables and directory records for both the
//! ISO 9660 and the Joliet tree, El Torito catalog, sector rounding). The
//! exact size is then taken from `hadris_iso::plan` for every volume; if a
//! volume still came out too large, packing is redone with a smaller budget,
//! so the capacity is a hard limit and not a hope.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use capmedia_content::{MediaPath, MediaPlan, PlanEntry};

/// ISO 9660 logical sector size.
pub const SECTOR: u64 = 2048;

/// Fixed per-volume overhead: system area (16 sectors), primary, Joliet
/// supplementary and boot record descriptors, terminator, four path tables
/// and both root directories, with generous slack.
pub const FIXED_OVERHEAD: u64 = 64 * SECTOR;

/// Per directory: one sector in each tree for its records (the "+1" of
/// rounding up), plus its records in the parent and path-table entries.
const PER_DIR: u64 = 2 * SECTOR + 512;

/// Per file: its directory record in the ISO tree (≤ 33 + 32 bytes) and in
/// the Joliet tree (≤ 33 + 128 bytes), rounded up generously because records
/// never cross a sector boundary.
const PER_FILE: u64 = 512;

/// Files of 4 GiB and more take one extent (and one record per tree) per
/// 4 GiB - 2 KiB under level 3.
const EXTENT_MAX: u64 = 0xFFFF_F800;

/// A volume's content bytes rounded to whole sectors.
pub fn sectors(n: u64) -> u64 {
    n.div_ceil(SECTOR) * SECTOR
}

/// Estimated bytes a file of `size` named `path` adds to a volume, not
/// counting directories.
pub fn file_cost(path: &MediaPath, size: u64) -> u64 {
    let extents = size.div_ceil(EXTENT_MAX).max(1);
    // Manifest line for this file, counted where the file is.
    let manifest = 160 + path.as_str().len() as u64;
    sectors(size) + PER_FILE * extents + manifest
}

/// The folders of `path` (case-folded, as Joliet compares them).
fn dirs_of(path: &MediaPath) -> Vec<String> {
    let key = path.case_key();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = key[at..].find('/') {
        out.push(key[..at + i].to_owned());
        at += i + 1;
    }
    out
}

/// A volume being filled: an estimate of its size so far.
#[derive(Debug, Clone, Default)]
pub struct Bin {
    pub entries: Vec<usize>,
    dirs: BTreeSet<String>,
    pub estimate: u64,
}

impl Bin {
    pub fn new(base: u64) -> Self {
        Bin {
            entries: Vec::new(),
            dirs: BTreeSet::new(),
            estimate: FIXED_OVERHEAD + base,
        }
    }

    /// What adding these entries would cost.
    fn cost_of(&self, plan: &MediaPlan, idx: &[usize]) -> u64 {
        let mut new_dirs = BTreeSet::new();
        let mut cost = 0;
        for &i in idx {
            let e = &plan.entries[i];
            cost += file_cost(&e.path, e.size);
            for d in dirs_of(&e.path) {
                if !self.dirs.contains(&d) && new_dirs.insert(d) {
                    cost += PER_DIR;
                }
            }
        }
        cost
    }

    fn add(&mut self, plan: &MediaPlan, idx: &[usize]) {
        self.estimate += self.cost_of(plan, idx);
        for &i in idx {
            self.dirs.extend(dirs_of(&plan.entries[i].path));
            self.entries.push(i);
        }
    }
}

/// The boot-volume entries and the package groups, in plan order.
pub fn groups(plan: &MediaPlan) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut boot = Vec::new();
    let mut order: Vec<Vec<usize>> = Vec::new();
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (i, e) in plan.entries.iter().enumerate() {
        if e.role.is_boot_volume() {
            boot.push(i);
        } else {
            let g = *by_name.entry(e.group.as_str()).or_insert_with(|| {
                order.push(Vec::new());
                order.len() - 1
            });
            order[g].push(i);
        }
    }
    (boot, order)
}

/// Pack entries into volumes of at most `budget` estimated bytes.
///
/// Volume 1 gets every boot-volume entry plus `boot_extra` (boot images, El
/// Torito catalog). Package groups follow in plan order, each kept whole on
/// one volume where it fits on an empty one; a group larger than a volume is
/// spread file by file. Files are never split: the caller has already
/// refused files larger than a volume.
pub fn pack(plan: &MediaPlan, budget: Option<u64>, boot_extra: u64) -> Vec<Vec<usize>> {
    let (boot, groups) = groups(plan);
    let mut first = Bin::new(boot_extra);
    first.add(plan, &boot);
    let Some(budget) = budget else {
        let mut all = first;
        for g in &groups {
            all.add(plan, g);
        }
        return vec![all.entries];
    };
    let mut bins = vec![first];
    for g in &groups {
        let last = bins.len() - 1;
        if bins[last].estimate + bins[last].cost_of(plan, g) <= budget {
            bins[last].add(plan, g);
            continue;
        }
        let empty = Bin::new(0);
        if empty.estimate + empty.cost_of(plan, g) <= budget {
            let mut b = empty;
            b.add(plan, g);
            bins.push(b);
            continue;
        }
        // Larger than a volume: fill file by file.
        for &i in g {
            let last = bins.len() - 1;
            if bins[last].estimate + bins[last].cost_of(plan, &[i]) > budget {
                bins.push(Bin::new(0));
            }
            let last = bins.len() - 1;
            bins[last].add(plan, &[i]);
        }
    }
    bins.into_iter().map(|b| b.entries).collect()
}

/// The ISO 9660 volume identifier for a media label: d-characters only
/// (`A-Z 0-9 _`), at most 32 of them; `_<n>` marks later volumes of a set.
pub fn volume_id(label: &str, number: u32, count: u32) -> String {
    let mut id = String::new();
    for c in label.chars() {
        let c = c.to_ascii_uppercase();
        let c = if c.is_ascii_uppercase() || c.is_ascii_digit() {
            c
        } else {
            '_'
        };
        if c == '_' && (id.is_empty() || id.ends_with('_')) {
            continue;
        }
        id.push(c);
    }
    while id.ends_with('_') {
        id.pop();
    }
    if id.is_empty() {
        id.push_str("CAPMEDIA");
    }
    let suffix = if count > 1 && number > 1 {
        format!("_{number}")
    } else {
        String::new()
    };
    id.truncate(32 - suffix.len());
    while id.ends_with('_') {
        id.pop();
    }
    id + &suffix
}

/// File names of a set: one volume is exactly `output`; several are
/// `<stem>_<n>.<ext>` beside it, `n` zero-padded to the width of the count.
pub fn volume_paths(output: &Path, count: u32) -> Vec<PathBuf> {
    if count <= 1 {
        return vec![output.to_owned()];
    }
    let (stem, ext) = stem_ext(output);
    let width = count.to_string().len();
    (1..=count)
        .map(|n| output.with_file_name(format!("{stem}_{n:0width$}.{ext}")))
        .collect()
}

/// The stem and extension that volume names are made of (`iso` when the
/// output has none).
pub fn stem_ext(output: &Path) -> (String, String) {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = output
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "iso".to_owned());
    (stem, ext)
}

/// Whether `name` is a volume name of the set named after `output`
/// (`<stem>.<ext>` or `<stem>_<digits>.<ext>`).
pub fn is_set_member(output: &Path, name: &str) -> bool {
    let (stem, ext) = stem_ext(output);
    let Some(base) = name.strip_suffix(&format!(".{ext}")) else {
        return false;
    };
    if base == stem {
        return true;
    }
    base.strip_prefix(&stem)
        .and_then(|r| r.strip_prefix('_'))
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The entries of `plan` at `idx`.
pub fn entries<'a>(plan: &'a MediaPlan, idx: &'a [usize]) -> impl Iterator<Item = &'a PlanEntry> {
    idx.iter().map(move |&i| &plan.entries[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_ids() {
        assert_eq!(
            volume_id("Configuration Manager", 1, 1),
            "CONFIGURATION_MANAGER"
        );
        assert_eq!(
            volume_id("Configuration Manager", 2, 3),
            "CONFIGURATION_MANAGER_2"
        );
        assert_eq!(volume_id("  ", 1, 1), "CAPMEDIA");
        assert_eq!(volume_id("é-x", 1, 1), "X");
        let long = volume_id(&"a".repeat(50), 12, 12);
        assert_eq!(long.len(), 32);
        assert!(long.ends_with("_12"));
    }

    #[test]
    fn names() {
        let p = Path::new("/o/out.iso");
        assert_eq!(volume_paths(p, 1), vec![PathBuf::from("/o/out.iso")]);
        let v = volume_paths(p, 12);
        assert_eq!(v[0], PathBuf::from("/o/out_01.iso"));
        assert_eq!(v[11], PathBuf::from("/o/out_12.iso"));
        assert!(is_set_member(p, "out.iso"));
        assert!(is_set_member(p, "out_3.iso"));
        assert!(is_set_member(p, "out_003.iso"));
        assert!(!is_set_member(p, "out_.iso"));
        assert!(!is_set_member(p, "out_x.iso"));
        assert!(!is_set_member(p, "outer_1.iso"));
    }
}
