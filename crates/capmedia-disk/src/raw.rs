//! Raw FAT32 structures capmedia writes or repairs itself, where fatfs 0.3.6
//! leaves a field unset or writes it wrongly: the partition tables, the BPB's
//! hidden-sector count, the root directory's volume-label entry, and the
//! `.`/`..` entries of every directory.

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::layout::{DiskLayout, SECTOR};

/// A DOS date and time (2-second resolution) from seconds since the Unix
/// epoch, clamped to the range FAT can store (1980-01-01 to 2107-12-31).
pub fn dos_datetime(epoch: u64) -> (u16, u16, u16, u16, u16, u16) {
    const MIN: u64 = 315_532_800; // 1980-01-01T00:00:00Z
    const MAX: u64 = 4_354_819_198; // 2107-12-31T23:59:58Z
    let t = epoch.clamp(MIN, MAX);
    let days = (t / 86_400) as i64;
    let secs = t % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year as u16,
        month as u16,
        day as u16,
        (secs / 3600) as u16,
        ((secs / 60) % 60) as u16,
        (secs % 60) as u16,
    )
}

fn dos_encode(epoch: u64) -> (u16, u16) {
    let (y, mo, d, h, mi, s) = dos_datetime(epoch);
    let date = ((y - 1980) << 9) | (mo << 5) | d;
    let time = (h << 11) | (mi << 5) | (s / 2);
    (date, time)
}

/// CHS address of `lba` for an MBR entry (255 heads, 63 sectors), or the
/// "beyond CHS" marker.
fn chs(lba: u64) -> [u8; 3] {
    let c = lba / (255 * 63);
    if c > 1023 {
        return [0xFE, 0xFF, 0xFF];
    }
    let h = (lba / 63) % 255;
    let s = lba % 63 + 1;
    [h as u8, (s as u8) | (((c >> 8) as u8) << 6), c as u8]
}

/// The MBR of an MBR-partitioned disk: capmedia's BIOS boot code
/// (`capmedia_bootcode::mbr_code`, which chains the active partition's boot
/// sector) and one active (0x80) FAT32 LBA partition.
pub(crate) fn mbr_sector(layout: &DiskLayout, signature: [u8; 4]) -> [u8; 512] {
    let mut s = [0u8; 512];
    s[..capmedia_bootcode::MBR_CODE_LEN].copy_from_slice(&capmedia_bootcode::mbr_code());
    s[440..444].copy_from_slice(&signature);
    let e = &mut s[446..462];
    e[0] = 0x80;
    e[1..4].copy_from_slice(&chs(layout.part_start_lba));
    e[4] = 0x0C;
    e[5..8].copy_from_slice(&chs(layout.part_start_lba + layout.part_sectors - 1));
    e[8..12].copy_from_slice(&(layout.part_start_lba as u32).to_le_bytes());
    e[12..16].copy_from_slice(&(layout.part_sectors as u32).to_le_bytes());
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

/// The fields of a FAT32 boot sector capmedia needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bpb {
    pub sectors_per_cluster: u64,
    pub reserved: u64,
    pub fats: u64,
    pub sectors_per_fat: u64,
    pub root_cluster: u32,
    pub backup_boot: u64,
    pub clusters: u64,
}

impl Bpb {
    pub fn read<T: Read + Seek>(vol: &mut T) -> io::Result<Bpb> {
        let mut b = [0u8; 512];
        vol.seek(SeekFrom::Start(0))?;
        vol.read_exact(&mut b)?;
        let u16at = |o: usize| u64::from(u16::from_le_bytes([b[o], b[o + 1]]));
        let u32at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
        if u16at(11) != SECTOR || b[510] != 0x55 || b[511] != 0xAA {
            return Err(bad("not a FAT volume with 512-byte sectors"));
        }
        let spf = u64::from(u32at(36));
        if u16at(22) != 0 || spf == 0 {
            return Err(bad("not a FAT32 volume"));
        }
        let bpb = Bpb {
            sectors_per_cluster: u64::from(b[13]),
            reserved: u16at(14),
            fats: u64::from(b[16]),
            sectors_per_fat: spf,
            root_cluster: u32at(44),
            backup_boot: u16at(50),
            clusters: 0,
        };
        if bpb.sectors_per_cluster == 0 || bpb.fats == 0 {
            return Err(bad("corrupt FAT32 boot sector"));
        }
        let total = u64::from(u32at(32));
        let data = total
            .checked_sub(bpb.reserved + bpb.fats * spf)
            .ok_or_else(|| bad("corrupt FAT32 boot sector"))?;
        Ok(Bpb {
            clusters: data / bpb.sectors_per_cluster,
            ..bpb
        })
    }

    fn cluster_bytes(&self) -> u64 {
        self.sectors_per_cluster * SECTOR
    }

    fn cluster_offset(&self, c: u32) -> u64 {
        (self.reserved + self.fats * self.sectors_per_fat) * SECTOR
            + u64::from(c.saturating_sub(2)) * self.cluster_bytes()
    }

    fn valid(&self, c: u32) -> bool {
        c >= 2 && u64::from(c) < self.clusters + 2
    }

    /// The cluster chain starting at `first` (from the first FAT).
    fn chain<T: Read + Seek>(&self, vol: &mut T, first: u32) -> io::Result<Vec<u32>> {
        let mut out = Vec::new();
        let mut c = first;
        while self.valid(c) {
            if out.len() as u64 > self.clusters {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "cluster chain loops",
                ));
            }
            out.push(c);
            let mut e = [0u8; 4];
            vol.seek(SeekFrom::Start(self.reserved * SECTOR + u64::from(c) * 4))?;
            vol.read_exact(&mut e)?;
            c = u32::from_le_bytes(e) & 0x0FFF_FFFF;
        }
        Ok(out)
    }
}

/// Set the BPB's hidden-sector count (the partition's first LBA) in the
/// boot sector and its backup: Windows and some firmware use it to find
/// the volume, and fatfs always writes 0.
pub(crate) fn patch_hidden_sectors<T: Read + Write + Seek>(
    vol: &mut T,
    start_lba: u32,
) -> io::Result<()> {
    let bpb = Bpb::read(vol)?;
    for sector in [0, bpb.backup_boot] {
        vol.seek(SeekFrom::Start(sector * SECTOR + 0x1C))?;
        vol.write_all(&start_lba.to_le_bytes())?;
    }
    Ok(())
}

/// Put capmedia's FAT32 boot code into the volume: the boot sector's code
/// (after the BPB/EBPB, which stay as written) in the boot sector and its
/// backup, and the second boot sector at
/// `capmedia_bootcode::FAT32_STAGE2_SECTOR` (a reserved sector fatfs leaves
/// zero). Together they load `/BOOTMGR` at 2000:0000 on BIOS computers.
pub(crate) fn install_boot_code<T: Read + Write + Seek>(vol: &mut T) -> io::Result<()> {
    let bpb = Bpb::read(vol)?;
    let stage2 = capmedia_bootcode::FAT32_STAGE2_SECTOR;
    if bpb.reserved <= stage2 || bpb.backup_boot == stage2 || bpb.backup_boot >= bpb.reserved {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no free reserved sector for the second boot sector",
        ));
    }
    let mut fsinfo = [0u8; 2];
    vol.seek(SeekFrom::Start(48))?;
    vol.read_exact(&mut fsinfo)?;
    if u64::from(u16::from_le_bytes(fsinfo)) == stage2 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the FSInfo sector is where the second boot sector goes",
        ));
    }
    for sector in [0, bpb.backup_boot] {
        let mut s = [0u8; 512];
        vol.seek(SeekFrom::Start(sector * SECTOR))?;
        vol.read_exact(&mut s)?;
        capmedia_bootcode::install_fat32_boot(&mut s);
        vol.seek(SeekFrom::Start(sector * SECTOR))?;
        vol.write_all(&s)?;
    }
    vol.seek(SeekFrom::Start(stage2 * SECTOR))?;
    vol.write_all(&capmedia_bootcode::fat32_stage2())
}

fn set_times(e: &mut [u8], epoch: u64) {
    let (date, time) = dos_encode(epoch);
    e[13] = 0;
    e[14..16].copy_from_slice(&time.to_le_bytes());
    e[16..18].copy_from_slice(&date.to_le_bytes());
    e[18..20].copy_from_slice(&date.to_le_bytes());
    e[22..24].copy_from_slice(&time.to_le_bytes());
    e[24..26].copy_from_slice(&date.to_le_bytes());
}

/// Put the volume label entry in the first slot of the (empty, freshly
/// formatted) root directory, where DOS, Windows and mtools read the label;
/// fatfs writes it only into the boot sector.
pub(crate) fn write_label_entry<T: Read + Write + Seek>(
    vol: &mut T,
    label: &[u8; 11],
    epoch: u64,
) -> io::Result<()> {
    let bpb = Bpb::read(vol)?;
    let mut e = [0u8; 32];
    e[..11].copy_from_slice(label);
    e[11] = 0x08;
    set_times(&mut e, epoch);
    // The label entry carries no creation or access date.
    e[13..20].fill(0);
    vol.seek(SeekFrom::Start(bpb.cluster_offset(bpb.root_cluster)))?;
    vol.write_all(&e)
}

const ATTR_LFN: u8 = 0x0F;
const ATTR_DIR: u8 = 0x10;
const ATTR_VOLUME: u8 = 0x08;

fn first_cluster(e: &[u8]) -> u32 {
    (u32::from(u16::from_le_bytes([e[20], e[21]])) << 16)
        | u32::from(u16::from_le_bytes([e[26], e[27]]))
}

fn set_first_cluster(e: &mut [u8], c: u32) {
    e[20..22].copy_from_slice(&((c >> 16) as u16).to_le_bytes());
    e[26..28].copy_from_slice(&(c as u16).to_le_bytes());
}

fn is_dot(e: &[u8]) -> bool {
    &e[..11] == b".          "
}

fn is_dotdot(e: &[u8]) -> bool {
    &e[..11] == b"..         "
}

/// Repair what fatfs 0.3.6's `create_dir` writes wrongly in every directory
/// (fsck.fat rejects both): long-name entries in front of `.` and `..`, and
/// a `..` pointing at the root's cluster instead of 0 in first-level
/// directories. Walks the whole tree from the root; rewrites each directory
/// in place within its own cluster chain (it only gets shorter).
pub(crate) fn fix_directories<T: Read + Write + Seek>(vol: &mut T) -> io::Result<()> {
    let bpb = Bpb::read(vol)?;
    let mut stack: Vec<(u32, u32)> = Vec::new(); // (dir cluster, parent for "..": 0 = root)
    for c in subdirs(vol, &bpb, bpb.root_cluster)? {
        stack.push((c, 0));
    }
    let mut seen = 0u64;
    while let Some((dir, parent)) = stack.pop() {
        seen += 1;
        if seen > bpb.clusters {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "directory tree loops",
            ));
        }
        fix_one(vol, &bpb, dir, parent)?;
        for c in subdirs(vol, &bpb, dir)? {
            stack.push((c, dir));
        }
    }
    Ok(())
}

fn read_dir<T: Read + Seek>(vol: &mut T, bpb: &Bpb, first: u32) -> io::Result<(Vec<u32>, Vec<u8>)> {
    let chain = bpb.chain(vol, first)?;
    let cb = bpb.cluster_bytes() as usize;
    let mut buf = vec![0u8; chain.len() * cb];
    for (i, &c) in chain.iter().enumerate() {
        vol.seek(SeekFrom::Start(bpb.cluster_offset(c)))?;
        vol.read_exact(&mut buf[i * cb..(i + 1) * cb])?;
    }
    Ok((chain, buf))
}

/// Slots in use, up to the end marker.
fn slots(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.chunks_exact(32).take_while(|e| e[0] != 0)
}

fn subdirs<T: Read + Seek>(vol: &mut T, bpb: &Bpb, dir: u32) -> io::Result<Vec<u32>> {
    let (_, buf) = read_dir(vol, bpb, dir)?;
    Ok(slots(&buf)
        .filter(|e| {
            e[0] != 0xE5
                && e[11] != ATTR_LFN
                && e[11] & ATTR_VOLUME == 0
                && e[11] & ATTR_DIR != 0
                && !is_dot(e)
                && !is_dotdot(e)
        })
        .map(first_cluster)
        .filter(|&c| bpb.valid(c))
        .collect())
}

fn fix_one<T: Read + Write + Seek>(
    vol: &mut T,
    bpb: &Bpb,
    dir: u32,
    parent: u32,
) -> io::Result<()> {
    let (chain, buf) = read_dir(vol, bpb, dir)?;
    let entries: Vec<&[u8]> = slots(&buf).collect();
    // Drop the long-name run in front of "." and "..", then put them first.
    let mut keep: Vec<Vec<u8>> = Vec::with_capacity(entries.len());
    let mut dot: Option<Vec<u8>> = None;
    let mut dotdot: Option<Vec<u8>> = None;
    for e in entries {
        if is_dot(e) || is_dotdot(e) {
            while keep
                .last()
                .is_some_and(|p| p[11] == ATTR_LFN && p[0] != 0xE5)
            {
                keep.pop();
            }
            if is_dot(e) {
                dot = Some(e.to_vec());
            } else {
                dotdot = Some(e.to_vec());
            }
        } else {
            keep.push(e.to_vec());
        }
    }
    let (Some(mut dot), Some(mut dotdot)) = (dot, dotdot) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("directory at cluster {dir} has no . or .. entry"),
        ));
    };
    set_first_cluster(&mut dot, dir);
    set_first_cluster(&mut dotdot, parent);
    let mut out = Vec::with_capacity(buf.len());
    out.extend_from_slice(&dot);
    out.extend_from_slice(&dotdot);
    for e in keep {
        out.extend_from_slice(&e);
    }
    out.resize(buf.len(), 0);
    if out == buf {
        return Ok(());
    }
    let cb = bpb.cluster_bytes() as usize;
    for (i, &c) in chain.iter().enumerate() {
        let part = &out[i * cb..(i + 1) * cb];
        if part != &buf[i * cb..(i + 1) * cb] {
            vol.seek(SeekFrom::Start(bpb.cluster_offset(c)))?;
            vol.write_all(part)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(dos_datetime(0), (1980, 1, 1, 0, 0, 0));
        assert_eq!(dos_datetime(1_700_000_000), (2023, 11, 14, 22, 13, 20));
        assert_eq!(dos_datetime(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(dos_datetime(u64::MAX).0, 2107);
    }

    #[test]
    fn chs_values() {
        assert_eq!(chs(2048), [32, 33, 0]);
        assert_eq!(chs(1 << 40), [0xFE, 0xFF, 0xFF]);
    }
}
