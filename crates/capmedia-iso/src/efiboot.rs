//! The FAT image for the El Torito EFI entry, built when the boot files
//! have `efi/boot/boot*.efi` but no `efisys.bin`.
//!
//! UEFI firmware boots optical media by mounting the El Torito EFI image as
//! a FAT volume and starting `\EFI\BOOT\BOOT<ARCH>.EFI` from it. The image
//! is FAT12/16, just big enough, and deterministic: fixed volume id derived
//! from the set id, and every timestamp from `SOURCE_DATE_EPOCH`.

use std::collections::BTreeMap;
use std::io::{self, Cursor, Read, Write};
use std::sync::{Mutex, OnceLock};

use capmedia_content::{MediaPlan, PlanEntry};
use fatfs::{Date, FileSystem, FormatVolumeOptions, FsOptions, Time, TimeProvider};

use crate::IsoError;

/// The EFI loaders UEFI looks for, as media paths (case-folded) and as
/// names inside the FAT image.
pub const LOADERS: [(&str, &str); 3] = [
    ("efi/boot/bootx64.efi", "BOOTX64.EFI"),
    ("efi/boot/bootia32.efi", "BOOTIA32.EFI"),
    ("efi/boot/bootaa64.efi", "BOOTAA64.EFI"),
];

/// Loaders larger than this in total are refused: the image is built in
/// memory, and real loaders are a few MiB.
pub const MAX_LOADERS: u64 = 64 << 20;

/// The plan's EFI loaders, with their FAT names.
pub fn loaders(plan: &MediaPlan) -> Vec<(&PlanEntry, &'static str)> {
    LOADERS
        .iter()
        .filter_map(|(path, name)| {
            plan.entries
                .iter()
                .find(|e| e.path.case_key() == *path)
                .map(|e| (e, *name))
        })
        .collect()
}

/// A clock fixed at one instant, so the FAT image is reproducible.
#[derive(Debug)]
struct FixedTime(fatfs::DateTime);

impl TimeProvider for FixedTime {
    fn get_current_date(&self) -> Date {
        self.0.date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        self.0
    }
}

/// `fatfs` 0.3 wants a `&'static` time provider; one is kept per distinct
/// epoch, so memory is bounded by the epochs a process ever uses.
fn provider(epoch: u64) -> &'static FixedTime {
    static CLOCKS: OnceLock<Mutex<BTreeMap<u64, &'static FixedTime>>> = OnceLock::new();
    let mut map = CLOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.entry(epoch)
        .or_insert_with(|| Box::leak(Box::new(FixedTime(dos_time(epoch)))))
}

/// `epoch` as a FAT date and time (UTC), clamped to FAT's 1980..=2107;
/// the conversion is capmedia-disk's, which writes the other FAT volumes.
pub fn dos_time(epoch: u64) -> fatfs::DateTime {
    let (year, month, day, hour, min, sec) = capmedia_disk::dos_datetime(epoch);
    fatfs::DateTime {
        date: Date { year, month, day },
        time: Time {
            hour,
            min,
            sec,
            millis: 0,
        },
    }
}

/// Build the FAT image holding `EFI/BOOT/<name>` for each loader.
///
/// With `content == false` the loaders are written as zeros of their
/// planned sizes: the image's size (all `check` needs) depends only on the
/// sizes, and `check` runs before the sources are fetched.
pub fn build(
    plan: &MediaPlan,
    loaders: &[(&PlanEntry, &str)],
    content: bool,
) -> Result<Vec<u8>, IsoError> {
    let total: u64 = loaders.iter().map(|(e, _)| e.size).sum();
    if total > MAX_LOADERS {
        return Err(IsoError::Refused(format!(
            "the EFI loaders are {total} bytes, more than the {MAX_LOADERS} an El Torito EFI image built by capmedia may hold; supply efisys.bin instead"
        )));
    }
    let id_hash = blake3::hash(plan.set_id.as_bytes());
    let hb = id_hash.as_bytes();
    let volume_id = u32::from_le_bytes([hb[0], hb[1], hb[2], hb[3]]);
    // Data sectors, directories (root, EFI, BOOT) and FAT overhead; grown
    // until everything fits.
    let mut sectors = (total.div_ceil(512) * 11 / 10 + 128).max(256);
    for _ in 0..16 {
        match try_build(plan, loaders, sectors, volume_id, content) {
            Ok(img) => return Ok(img),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof || is_full(&e) => {
                sectors = sectors * 5 / 4 + 64;
            }
            Err(e) => return Err(IsoError::EfiImage(e.to_string())),
        }
    }
    Err(IsoError::EfiImage(
        "could not size the FAT image for the EFI loaders".to_owned(),
    ))
}

fn is_full(e: &io::Error) -> bool {
    let s = e.to_string().to_ascii_lowercase();
    s.contains("no space") || s.contains("full") || s.contains("cluster")
}

fn try_build(
    plan: &MediaPlan,
    loaders: &[(&PlanEntry, &str)],
    sectors: u64,
    volume_id: u32,
    content: bool,
) -> io::Result<Vec<u8>> {
    let sectors32 = u32::try_from(sectors).map_err(|_| io::Error::other("too large"))?;
    let mut disk = Cursor::new(vec![0u8; sectors as usize * 512]);
    fatfs::format_volume(
        &mut disk,
        FormatVolumeOptions::new()
            .total_sectors(sectors32)
            .bytes_per_sector(512)
            .volume_id(volume_id)
            .volume_label(*b"EFISYS     "),
    )?;
    disk.set_position(0);
    let clock = provider(plan.source_date_epoch);
    {
        let fs = FileSystem::new(&mut disk, FsOptions::new().time_provider(clock))?;
        // Every timestamp comes from the fixed clock.
        {
            let boot = fs.root_dir().create_dir("EFI")?.create_dir("BOOT")?;
            for (entry, name) in loaders {
                let mut f = boot.create_file(name)?;
                let mut src: Box<dyn Read + '_> = if content {
                    entry.source.open()?
                } else {
                    Box::new(io::repeat(0).take(entry.size))
                };
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    let n = src.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    f.write_all(&buf[..n])?;
                }
                f.flush()?;
            }
        }
        fs.unmount()?;
    }
    let mut img = disk.into_inner();
    fix_directories(&mut img)?;
    Ok(img)
}

/// Repair what fatfs 0.3.6's `create_dir` writes wrongly (fsck.fat rejects
/// both): long-name entries in front of `.` and `..`, and a `..` that points
/// at the root's cluster instead of 0 in first-level folders.
///
/// capmedia-disk repairs FAT32 volumes; this image is FAT12/16 (its root is
/// a fixed region) and holds only `EFI` and `EFI/BOOT`, each a handful of
/// entries, so each folder is one cluster and the repair stays small.
fn fix_directories(img: &mut [u8]) -> io::Result<()> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
    let u16at = |b: &[u8], o: usize| usize::from(u16::from_le_bytes([b[o], b[o + 1]]));
    if img.len() < 512 {
        return Err(bad("EFI image too small"));
    }
    let bps = u16at(img, 11);
    let spc = usize::from(img[13]);
    let reserved = u16at(img, 14);
    let fats = usize::from(img[16]);
    let root_entries = u16at(img, 17);
    let spf = u16at(img, 22);
    if bps != 512 || spc == 0 || spf == 0 {
        return Err(bad("EFI image is not FAT12/16 with 512-byte sectors"));
    }
    let root_off = (reserved + fats * spf) * bps;
    let data_off = root_off + root_entries * 32;
    let cluster_bytes = spc * bps;
    let cluster_off = |c: usize| data_off + (c - 2) * cluster_bytes;
    let first_cluster = |e: &[u8]| u16at(e, 26);
    let is_subdir =
        |e: &[u8]| e[0] != 0 && e[0] != 0xE5 && e[0] != b'.' && e[11] != 0x0F && e[11] & 0x10 != 0;
    // (folder cluster, cluster ".." must name: 0 for the root)
    let mut todo: Vec<(usize, usize)> = img[root_off..data_off]
        .chunks_exact(32)
        .take_while(|e| e[0] != 0)
        .filter(|e| is_subdir(e))
        .map(|e| (first_cluster(e), 0))
        .collect();
    let mut seen = 0;
    while let Some((dir, parent)) = todo.pop() {
        seen += 1;
        if dir < 2 || cluster_off(dir) + cluster_bytes > img.len() || seen > 64 {
            return Err(bad("EFI image folder outside the image"));
        }
        let range = cluster_off(dir)..cluster_off(dir) + cluster_bytes;
        let old = img[range.clone()].to_vec();
        let used: Vec<&[u8]> = old.chunks_exact(32).take_while(|e| e[0] != 0).collect();
        if used.len() == cluster_bytes / 32 {
            return Err(bad(
                "EFI image folder fills its cluster; the repair assumes one cluster",
            ));
        }
        let mut keep: Vec<Vec<u8>> = Vec::new();
        let (mut dot, mut dotdot) = (None, None);
        for e in used {
            if &e[..11] == b".          " || &e[..11] == b"..         " {
                while keep.last().is_some_and(|p| p[11] == 0x0F) {
                    keep.pop();
                }
                let mut v = e.to_vec();
                let target = if e[1] == b'.' { parent } else { dir };
                v[26..28].copy_from_slice(&(target as u16).to_le_bytes());
                v[20..22].copy_from_slice(&[0, 0]);
                if e[1] == b'.' {
                    dotdot = Some(v);
                } else {
                    dot = Some(v);
                }
            } else {
                if is_subdir(e) {
                    todo.push((first_cluster(e), dir));
                }
                keep.push(e.to_vec());
            }
        }
        let (Some(dot), Some(dotdot)) = (dot, dotdot) else {
            return Err(bad("EFI image folder without . or .."));
        };
        let mut new = Vec::with_capacity(cluster_bytes);
        new.extend_from_slice(&dot);
        new.extend_from_slice(&dotdot);
        keep.iter().for_each(|e| new.extend_from_slice(e));
        new.resize(cluster_bytes, 0);
        img[range].copy_from_slice(&new);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn image_is_reproducible_and_holds_the_loader() {
        let mk = || {
            let mut b = capmedia_content::PlanBuilder::new("x", "iso-set", "/tmp/x.iso");
            b.add_bytes(
                "EFI/Boot/bootx64.efi",
                vec![7u8; 5000],
                capmedia_content::EntryRole::Boot,
                "boot",
            )
            .unwrap();
            let plan = b.source_date_epoch(1_700_000_000).build().unwrap();
            build(&plan, &loaders(&plan), true).unwrap()
        };
        let img = mk();
        assert_eq!(img, mk());
        let fs = FileSystem::new(Cursor::new(img), FsOptions::new()).unwrap();
        let mut f = fs.root_dir().open_file("EFI/BOOT/BOOTX64.EFI").unwrap();
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        assert_eq!(v, vec![7u8; 5000]);
    }

    #[test]
    fn dos_times() {
        let t = dos_time(1_700_000_000); // 2023-11-14 22:13:20 UTC
        assert_eq!((t.date.year, t.date.month, t.date.day), (2023, 11, 14));
        assert_eq!((t.time.hour, t.time.min, t.time.sec), (22, 13, 20));
        assert_eq!(dos_time(0).date.year, 1980);
        assert_eq!(dos_time(u64::MAX / 4).date.year, 2107);
    }
}
