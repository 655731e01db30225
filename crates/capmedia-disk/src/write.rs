//! Writing a plan as a whole disk.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Mutex;

use capmedia_content::{Cancel, MediaPlan, Progress, MANIFEST_PATH};
use capmedia_manifest::Manifest;
use fatfs::{
    Date, DateTime, Dir, FatType, FileSystem, FormatVolumeOptions, FsOptions, ReadWriteSeek, Time,
    TimeProvider,
};

use crate::layout::{fat_label, DiskLayout, PartitionScheme, ALIGN};
use crate::raw;
use crate::stream::{BlockCache, Slice};
use crate::{check_plan, derived_id, DiskError};

/// What [`write_disk`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteStats {
    pub layout: DiskLayout,
    /// Files written, the manifest included.
    pub files: usize,
    /// File bytes written, the manifest included.
    pub bytes: u64,
}

/// A fatfs clock stopped at `source_date_epoch`, so every timestamp on the
/// volume is the plan's and two builds are identical.
#[derive(Debug)]
struct EpochClock {
    epoch: u64,
    now: DateTime,
}

impl TimeProvider for EpochClock {
    fn get_current_date(&self) -> Date {
        self.now.date
    }
    fn get_current_date_time(&self) -> DateTime {
        self.now
    }
}

/// fatfs wants a `&'static` clock: keep one per epoch ever used (a
/// process writes media for a handful of epochs at most).
fn clock(epoch: u64) -> &'static EpochClock {
    static CLOCKS: Mutex<Vec<&'static EpochClock>> = Mutex::new(Vec::new());
    let mut clocks = CLOCKS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = clocks.iter().find(|c| c.epoch == epoch) {
        return c;
    }
    let (year, month, day, hour, min, sec) = raw::dos_datetime(epoch);
    let c: &'static EpochClock = Box::leak(Box::new(EpochClock {
        epoch,
        now: DateTime {
            date: Date { year, month, day },
            time: Time {
                hour,
                min,
                sec,
                millis: 0,
            },
        },
    }));
    clocks.push(c);
    c
}

/// Write `plan` as a whole disk of `disk_bytes` onto `target` (which must
/// be at least that long; bytes beyond are left alone, e.g. a VHD footer).
///
/// Everything that can refuse is checked before the first write: file sizes
/// and names, the FAT32 geometry, and that the content fits. Each file is
/// read once in 1 MiB chunks; `cancel` is asked between chunks and
/// `progress` told (phase `write`) after each. `capmedia.json` is written
/// last.
/// The caller syncs the target.
pub fn write_disk<T: Read + Write + Seek>(
    target: T,
    disk_bytes: u64,
    plan: &MediaPlan,
    scheme: PartitionScheme,
    progress: &dyn Progress,
    cancel: &dyn Cancel,
) -> Result<WriteStats, DiskError> {
    check_plan(plan)?;
    let layout = DiskLayout::new(disk_bytes, scheme)?;
    layout.check_fits(plan)?;
    let manifest = Manifest::for_plan(plan).to_bytes();
    let total = plan.content_bytes() + manifest.len() as u64;
    if cancel.is_cancelled() {
        return Err(DiskError::Cancelled);
    }

    let mut disk = BlockCache::new(Slice::new(target, 0, layout.disk_bytes));
    // Wipe old partition tables at both ends (a stale backup GPT at the end
    // of a drive would confuse every partitioning tool).
    let zeros = vec![0u8; ALIGN as usize];
    disk.seek(SeekFrom::Start(0))?;
    disk.write_all(&zeros)?;
    let tail = layout.disk_bytes.saturating_sub(ALIGN).max(ALIGN);
    if tail < layout.disk_bytes {
        disk.seek(SeekFrom::Start(tail))?;
        disk.write_all(&zeros[..(layout.disk_bytes - tail) as usize])?;
    }
    write_partition_table(&mut disk, &layout, &plan.set_id)?;

    let (off, len) = (layout.part_offset(), layout.part_bytes());
    let label = fat_label(&plan.label);
    let id = derived_id(&plan.set_id, "fat-volume-id");
    let opts = FormatVolumeOptions::new()
        .bytes_per_cluster(layout.fat.cluster_bytes() as u32)
        .fat_type(FatType::Fat32)
        .total_sectors(layout.part_sectors as u32)
        .volume_id(u32::from_le_bytes([id[0], id[1], id[2], id[3]]))
        .volume_label(label)
        .fats(2)
        .media(0xF8)
        .sectors_per_track(63)
        .heads(255)
        .drive_num(0x80);
    fatfs::format_volume(Slice::new(&mut disk, off, len), opts)?;
    {
        let mut vol = Slice::new(&mut disk, off, len);
        raw::patch_hidden_sectors(&mut vol, layout.part_start_lba as u32)?;
        raw::install_boot_code(&mut vol)?;
        raw::write_label_entry(&mut vol, &label, plan.source_date_epoch)?;
    }

    {
        let options = FsOptions::new()
            .update_accessed_date(false)
            .time_provider(clock(plan.source_date_epoch));
        let fs = FileSystem::new(Slice::new(&mut disk, off, len), options)?;
        if fs.fat_type() != FatType::Fat32 {
            return Err(DiskError::NotFat32(format!("{:?}", fs.fat_type())));
        }
        let clusters = fs.stats()?.total_clusters();
        if clusters != layout.fat.clusters {
            return Err(DiskError::NotFat32(format!(
                "FAT32 with {clusters} clusters where {} were planned",
                layout.fat.clusters
            )));
        }
        let root = fs.root_dir();
        let mut dirs: BTreeMap<String, Dir<'_, _>> = BTreeMap::new();
        let mut w = Copier {
            buf: vec![0u8; 1 << 20],
            done: 0,
            total,
            progress,
            cancel,
        };
        for e in &plan.entries {
            let path = e.path.as_str();
            let mut src = e.source.open().map_err(|source| DiskError::Source {
                path: e.source.describe(),
                source,
            })?;
            let dir = parent_dir(&root, &mut dirs, path)?;
            w.copy(&dir, path, &mut src, e.size)?;
        }
        // Streamed entries' BLAKE3 is known only now that each was read to
        // its end (which the stream allows only once its SHA-256 matched);
        // hex digests have one length, so the manifest keeps the size the
        // layout reserved for it.
        let manifest = if plan.has_streams() {
            let mut settled = plan.clone();
            settled
                .settle_streams()
                .map_err(|source| DiskError::Source {
                    path: MANIFEST_PATH.to_owned(),
                    source,
                })?;
            let m = Manifest::for_plan(&settled).to_bytes();
            if m.len() != manifest.len() {
                return Err(DiskError::Source {
                    path: MANIFEST_PATH.to_owned(),
                    source: std::io::Error::other(format!(
                        "the manifest grew from {} to {} bytes once streamed hashes were known",
                        manifest.len(),
                        m.len()
                    )),
                });
            }
            m
        } else {
            manifest
        };
        w.copy(
            &root,
            MANIFEST_PATH,
            &mut manifest.as_slice(),
            manifest.len() as u64,
        )?;
        drop(dirs);
        drop(root);
        fs.unmount()?;
    }

    raw::fix_directories(&mut Slice::new(&mut disk, off, len))?;
    disk.flush()?;
    disk.into_inner()?;
    Ok(WriteStats {
        layout,
        files: plan.entries.len() + 1,
        bytes: total,
    })
}

fn write_partition_table<T: Read + Write + Seek>(
    disk: &mut BlockCache<T>,
    layout: &DiskLayout,
    set_id: &str,
) -> Result<(), DiskError> {
    let sig = derived_id(set_id, "disk-signature");
    let sig = [sig[0], sig[1], sig[2], sig[3]];
    match layout.scheme {
        PartitionScheme::Mbr => {
            disk.seek(SeekFrom::Start(0))?;
            disk.write_all(&raw::mbr_sector(layout, sig))?;
        }
        // The protective MBR carries no boot code: GPT disks boot on UEFI
        // only (the FAT32 boot sector still has its code, unused there).
        PartitionScheme::Gpt => {
            let pt = |e: gpt::GptError| DiskError::PartitionTable(e.to_string());
            let disk_guid =
                uuid::Builder::from_random_bytes(derived_id(set_id, "gpt-disk")).into_uuid();
            let part_guid =
                uuid::Builder::from_random_bytes(derived_id(set_id, "gpt-esp")).into_uuid();
            let mut g = gpt::GptConfig::new()
                .writable(true)
                .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
                .create_from_device(&mut *disk, Some(disk_guid))
                .map_err(pt)?;
            let mut parts = BTreeMap::new();
            parts.insert(
                1,
                gpt::partition::Partition {
                    part_type_guid: gpt::partition_types::EFI,
                    part_guid,
                    first_lba: layout.part_start_lba,
                    last_lba: layout.part_start_lba + layout.part_sectors - 1,
                    flags: 0,
                    name: "EFI system partition".to_owned(),
                },
            );
            g.update_partitions(parts).map_err(pt)?;
            g.write_inplace().map_err(pt)?;
            drop(g);
            let sectors = layout.disk_bytes / crate::SECTOR;
            let mut pmbr = gpt::mbr::ProtectiveMBR::with_lb_size(
                u32::try_from(sectors - 1).unwrap_or(u32::MAX),
            );
            pmbr.set_disk_signature(sig);
            pmbr.overwrite_lba0(disk)
                .map_err(|e| DiskError::PartitionTable(e.to_string()))?;
        }
    }
    Ok(())
}

/// The directory holding `path`, created (with its parents) on first use
/// and remembered, so a folder of many files is looked up once.
fn parent_dir<'a, IO: ReadWriteSeek>(
    root: &Dir<'a, IO>,
    dirs: &mut BTreeMap<String, Dir<'a, IO>>,
    path: &str,
) -> Result<Dir<'a, IO>, DiskError> {
    let Some((parent, _)) = path.rsplit_once('/') else {
        return Ok(root.clone());
    };
    let key = parent.to_lowercase();
    if let Some(d) = dirs.get(&key) {
        return Ok(d.clone());
    }
    let mut d = root.clone();
    let mut sofar = String::new();
    for c in parent.split('/') {
        if !sofar.is_empty() {
            sofar.push('/');
        }
        sofar.push_str(&c.to_lowercase());
        d = match dirs.get(&sofar) {
            Some(known) => known.clone(),
            None => {
                let made = d.create_dir(c)?;
                dirs.insert(sofar.clone(), made.clone());
                made
            }
        };
    }
    Ok(d)
}

struct Copier<'p> {
    buf: Vec<u8>,
    done: u64,
    total: u64,
    progress: &'p dyn Progress,
    cancel: &'p dyn Cancel,
}

impl Copier<'_> {
    fn copy<IO: ReadWriteSeek>(
        &mut self,
        dir: &Dir<'_, IO>,
        path: &str,
        src: &mut dyn Read,
        expected: u64,
    ) -> Result<(), DiskError> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let mut f = dir.create_file(name)?;
        let mut src = src.take(expected + 1);
        let mut n = 0u64;
        loop {
            if self.cancel.is_cancelled() {
                return Err(DiskError::Cancelled);
            }
            let k = match src.read(&mut self.buf) {
                Ok(k) => k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(DiskError::Source {
                        path: path.to_owned(),
                        source,
                    })
                }
            };
            if k == 0 {
                break;
            }
            n += k as u64;
            if n > expected {
                break;
            }
            f.write_all(&self.buf[..k])?;
            self.done += k as u64;
            self.progress.update("write", self.done, self.total);
        }
        if n != expected {
            return Err(DiskError::SourceChanged {
                path: path.to_owned(),
                expected,
                actual: n,
            });
        }
        f.flush()?;
        Ok(())
    }
}
