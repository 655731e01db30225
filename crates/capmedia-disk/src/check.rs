//! Bounds on every cluster chain of a FAT volume, checked before fatfs sees it.
//!
//! fatfs 0.3.6 follows cluster chains without a cycle check: a root folder
//! whose chain loops makes a lookup of a missing name spin forever, a file
//! chain pointing at cluster 1 makes it panic on an underflow. No crate reads
//! FAT with those bounds, so this module walks the whole tree once, by hand,
//! before [`crate::DiskReader`] hands the volume to fatfs: every chain
//! reachable from the root (folders and files) is followed with a bitmap of
//! the clusters seen, so each cluster is visited at most once and the walk
//! ends after at most as many steps as the FAT has clusters. A chain that
//! comes back to a cluster already seen (a loop, or two files sharing
//! clusters), leaves the data area, hits a free or bad cluster, makes a
//! folder larger than FAT allows, or does not match a file's size, is an
//! error naming the path. Names are not decoded here: only the entries'
//! attributes, first clusters and sizes matter for the bounds.

use std::io::{Read, Seek, SeekFrom};

use crate::DiskError;

/// FAT's own limit: a folder holds at most 65,536 32-byte entries.
const MAX_DIR_BYTES: u64 = 65_536 * 32;
const FAT16_MIN_CLUSTERS: u32 = 4085;
const FAT32_MIN_CLUSTERS: u32 = 65525;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fat12,
    Fat16,
    Fat32,
}

/// Where a folder's entries are.
#[derive(Debug, Clone, Copy)]
enum Root {
    /// FAT32: a cluster chain.
    Chain(u32),
    /// FAT12/16: a fixed region (byte offset, length).
    Fixed(u64, u64),
}

/// The geometry of a FAT volume from its boot sector, every figure checked
/// against the others and the volume length.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    kind: Kind,
    cluster_bytes: u64,
    /// Byte offset of the FAT fatfs reads (the active one).
    fat_offset: u64,
    fat_bytes: u64,
    data_offset: u64,
    clusters: u32,
    root: Root,
}

fn bad(reason: impl Into<String>) -> DiskError {
    DiskError::Corrupt(reason.into())
}

fn u16_at(b: &[u8], i: usize) -> u64 {
    b.get(i..i + 2)
        .map_or(0, |s| u64::from(u16::from_le_bytes([s[0], s[1]])))
}

fn u32_at(b: &[u8], i: usize) -> u64 {
    b.get(i..i + 4).map_or(0, |s| {
        u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    })
}

impl Geometry {
    fn parse(boot: &[u8; 512], volume_len: u64) -> Result<Geometry, DiskError> {
        let bps = u16_at(boot, 11);
        let spc = u64::from(boot[13]);
        let reserved = u16_at(boot, 14);
        let fats = u64::from(boot[16]);
        let root_entries = u16_at(boot, 17);
        let total16 = u16_at(boot, 19);
        let fat16 = u16_at(boot, 22);
        let total32 = u32_at(boot, 32);
        let fat32 = u32_at(boot, 36);
        let ext_flags = u16_at(boot, 40);
        let root_cluster = u32_at(boot, 44);
        if !bps.is_power_of_two() || !(512..=4096).contains(&bps) {
            return Err(bad(format!("{bps} bytes per sector")));
        }
        if !spc.is_power_of_two() || spc > 128 {
            return Err(bad(format!("{spc} sectors per cluster")));
        }
        if reserved == 0 || fats == 0 {
            return Err(bad("no reserved sectors or no FAT"));
        }
        let fat_sectors = if fat16 != 0 { fat16 } else { fat32 };
        let total = if total16 != 0 { total16 } else { total32 };
        if fat_sectors == 0 || total == 0 {
            return Err(bad("zero FAT or volume size in the boot sector"));
        }
        let root_sectors = (root_entries * 32).div_ceil(bps);
        let first_data = reserved + fats * fat_sectors + root_sectors;
        if total <= first_data {
            return Err(bad("the volume ends before its data area"));
        }
        if total * bps > volume_len {
            return Err(bad(format!(
                "the boot sector claims {} bytes but the volume has {volume_len}",
                total * bps
            )));
        }
        let clusters = (total - first_data) / spc;
        let clusters = u32::try_from(clusters).map_err(|_| bad("too many clusters"))?;
        if clusters == 0 {
            return Err(bad("no data clusters"));
        }
        let kind = if clusters < FAT16_MIN_CLUSTERS {
            Kind::Fat12
        } else if clusters < FAT32_MIN_CLUSTERS {
            Kind::Fat16
        } else {
            Kind::Fat32
        };
        if (kind == Kind::Fat32) != (fat16 == 0) {
            return Err(bad(
                "the FAT type by cluster count and by boot sector differ",
            ));
        }
        if kind == Kind::Fat32 && (clusters > 0x0FFF_FFF4 || root_entries != 0) {
            return Err(bad("not a valid FAT32 boot sector"));
        }
        if kind != Kind::Fat32 && root_entries == 0 {
            return Err(bad("FAT12/16 without a root folder region"));
        }
        let bits = match kind {
            Kind::Fat12 => 12,
            Kind::Fat16 => 16,
            Kind::Fat32 => 32,
        };
        let fat_bytes = fat_sectors * bps;
        if fat_bytes * 8 / bits < u64::from(clusters) + 2 {
            return Err(bad("the FAT is too small for the volume's clusters"));
        }
        // fatfs reads the active FAT when mirroring is off.
        let active = if kind == Kind::Fat32 && ext_flags & 0x80 != 0 {
            ext_flags & 0x0F
        } else {
            0
        };
        if active >= fats {
            return Err(bad("the active FAT does not exist"));
        }
        let root = match kind {
            Kind::Fat32 => Root::Chain(
                u32::try_from(root_cluster).map_err(|_| bad("root cluster out of range"))?,
            ),
            _ => Root::Fixed((reserved + fats * fat_sectors) * bps, root_entries * 32),
        };
        Ok(Geometry {
            kind,
            cluster_bytes: spc * bps,
            fat_offset: (reserved + active * fat_sectors) * bps,
            fat_bytes,
            data_offset: first_data * bps,
            clusters,
            root,
        })
    }
}

/// The FAT, read a block at a time through a one-block cache.
struct Fat<'a, R> {
    io: &'a mut R,
    geo: Geometry,
    block: Vec<u8>,
    block_at: Option<u64>,
}

/// What a FAT entry says follows a cluster.
enum Next {
    Cluster(u32),
    End,
}

/// Bytes of the FAT read at once: below the block cache's read bypass (a
/// sector), so that FAT reads land in its cached blocks, as fatfs's own do,
/// rather than each going to the disk (or a read-ahead window) again.
const FAT_BLOCK: u64 = 256;

impl<R: Read + Seek> Fat<'_, R> {
    fn byte(&mut self, at: u64) -> Result<u8, DiskError> {
        if at >= self.geo.fat_bytes {
            return Err(bad("FAT entry beyond the FAT"));
        }
        let block = at / FAT_BLOCK * FAT_BLOCK;
        if self.block_at != Some(block) {
            let len = FAT_BLOCK.min(self.geo.fat_bytes - block) as usize;
            self.block.resize(len, 0);
            self.io
                .seek(SeekFrom::Start(self.geo.fat_offset + block))
                .and_then(|_| self.io.read_exact(&mut self.block))
                .map_err(|e| bad(format!("reading the FAT: {e}")))?;
            self.block_at = Some(block);
        }
        self.block
            .get((at - block) as usize)
            .copied()
            .ok_or_else(|| bad("FAT entry beyond the FAT"))
    }

    fn next(&mut self, cluster: u32) -> Result<Next, DiskError> {
        let c = u64::from(cluster);
        let (value, end, bad_mark) = match self.geo.kind {
            Kind::Fat32 => {
                let mut v = 0u64;
                for i in 0..4 {
                    v |= u64::from(self.byte(c * 4 + i)?) << (8 * i);
                }
                (v & 0x0FFF_FFFF, 0x0FFF_FFF8, 0x0FFF_FFF7)
            }
            Kind::Fat16 => {
                let v = u64::from(self.byte(c * 2)?) | u64::from(self.byte(c * 2 + 1)?) << 8;
                (v, 0xFFF8, 0xFFF7)
            }
            Kind::Fat12 => {
                let at = c + c / 2;
                let v = u64::from(self.byte(at)?) | u64::from(self.byte(at + 1)?) << 8;
                let v = if c % 2 == 1 { v >> 4 } else { v & 0x0FFF };
                (v, 0x0FF8, 0x0FF7)
            }
        };
        if value >= end {
            return Ok(Next::End);
        }
        if value == bad_mark {
            return Err(bad(format!("cluster {cluster} leads to a bad cluster")));
        }
        if value == 0 {
            return Err(bad(format!("cluster {cluster} leads to a free cluster")));
        }
        Ok(Next::Cluster(value as u32))
    }
}

/// The walk: which clusters some chain already holds.
struct Walk<'a, R> {
    fat: Fat<'a, R>,
    seen: Vec<u64>,
}

impl<R: Read + Seek> Walk<'_, R> {
    /// Follow the chain from `first`, marking its clusters, for at most
    /// `max` clusters; returns them in order.
    fn chain(&mut self, first: u32, max: u64, what: &str) -> Result<Vec<u32>, DiskError> {
        let mut out = Vec::new();
        let mut c = first;
        loop {
            if c < 2 || c - 2 >= self.fat.geo.clusters {
                return Err(bad(format!("{what}: cluster {c} is outside the data area")));
            }
            let i = (c - 2) as usize;
            let (word, bit) = (i / 64, i % 64);
            let Some(w) = self.seen.get_mut(word) else {
                return Err(bad(format!("{what}: cluster {c} out of range")));
            };
            if *w & (1 << bit) != 0 {
                return Err(bad(format!(
                    "{what}: cluster {c} is reached twice (the chain loops or is shared)"
                )));
            }
            *w |= 1 << bit;
            out.push(c);
            if out.len() as u64 > max {
                return Err(bad(format!(
                    "{what}: the cluster chain is longer than {max} clusters"
                )));
            }
            match self.fat.next(c)? {
                Next::End => return Ok(out),
                Next::Cluster(n) => c = n,
            }
        }
    }

    fn read_at(&mut self, at: u64, buf: &mut [u8], what: &str) -> Result<(), DiskError> {
        self.fat
            .io
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.fat.io.read_exact(buf))
            .map_err(|e| bad(format!("{what}: {e}")))
    }
}

/// A folder still to read: its shown path, where its entries are (byte
/// offset, length), its first cluster and its parent's.
type Folder = (String, Vec<(u64, u64)>, u32, u32);

/// Walk every folder and file of the FAT volume that `io` holds (its
/// `len` bytes from offset 0) and check every cluster chain. Leaves `io`
/// at an unspecified position.
pub(crate) fn check_volume<R: Read + Seek>(io: &mut R, len: u64) -> Result<(), DiskError> {
    let mut boot = [0u8; 512];
    io.seek(SeekFrom::Start(0))
        .and_then(|_| io.read_exact(&mut boot))
        .map_err(|e| bad(format!("reading the boot sector: {e}")))?;
    let geo = Geometry::parse(&boot, len)?;
    let words = (geo.clusters as usize).div_ceil(64);
    let mut walk = Walk {
        fat: Fat {
            io,
            geo,
            block: Vec::new(),
            block_at: None,
        },
        seen: vec![0; words],
    };
    let dir_clusters_max = MAX_DIR_BYTES.div_ceil(geo.cluster_bytes).max(1);
    // Folders to read: (shown path, where its entries are, its first
    // cluster, its parent's first cluster: 0 for the root, as `..` says).
    let mut pending: Vec<Folder> = Vec::new();
    let root_regions = match geo.root {
        Root::Fixed(at, n) => vec![(at, n)],
        Root::Chain(c) => walk
            .chain(c, dir_clusters_max, "the root folder")?
            .into_iter()
            .map(|c| (cluster_at(&geo, c), geo.cluster_bytes))
            .collect(),
    };
    let root_first = match geo.root {
        Root::Chain(c) => c,
        Root::Fixed(..) => 0,
    };
    pending.push(("/".to_owned(), root_regions, root_first, 0));
    let mut entry = vec![0u8; 32];
    while let Some((path, regions, own, parent)) = pending.pop() {
        'regions: for (at, n) in regions {
            for k in 0..n / 32 {
                walk.read_at(at + k * 32, &mut entry, &path)?;
                match entry[0] {
                    0x00 => break 'regions, // end of the folder
                    0xE5 => continue,       // deleted
                    _ => {}
                }
                let attr = entry[11];
                if attr & 0x0F == 0x0F || attr & 0x08 != 0 {
                    continue; // long-name part or volume label
                }
                let hi = if geo.kind == Kind::Fat32 {
                    u16_at(&entry, 20)
                } else {
                    0
                };
                let first = (hi << 16 | u16_at(&entry, 26)) as u32;
                let size = u32_at(&entry, 28);
                let short = String::from_utf8_lossy(&entry[..11]).trim_end().to_owned();
                if attr & 0x10 != 0 {
                    // `.` and `..` point back, not down: they must point
                    // exactly there, since fatfs follows them by any long
                    // name attached to them.
                    let back = match &entry[..11] {
                        b".          " => Some(own),
                        b"..         " => Some(parent),
                        _ => None,
                    };
                    if let Some(want) = back {
                        // The root is cluster 0 to `..`, or its own number.
                        let norm = |c: u32| if c == root_first { 0 } else { c };
                        if norm(first) != norm(want) {
                            return Err(bad(format!(
                                "{path}: its {short:?} entry points at cluster {first}, not {want}"
                            )));
                        }
                        continue;
                    }
                    let shown = format!("{path}{short}/");
                    if first == 0 {
                        // fatfs opens such a folder as the root: a loop.
                        return Err(bad(format!("{shown}: a folder entry without a cluster")));
                    }
                    let regions = walk
                        .chain(first, dir_clusters_max, &shown)?
                        .into_iter()
                        .map(|c| (cluster_at(&geo, c), geo.cluster_bytes))
                        .collect();
                    let parent_first = if own == root_first { 0 } else { own };
                    pending.push((shown, regions, first, parent_first));
                } else {
                    let shown = format!("{path}{short}");
                    let need = size.div_ceil(geo.cluster_bytes);
                    if need == 0 {
                        continue; // empty: fatfs reads nothing
                    }
                    let got = walk.chain(first, need, &shown)?.len() as u64;
                    if got != need {
                        return Err(bad(format!(
                            "{shown}: {size} bytes need {need} clusters but the chain has {got}"
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

fn cluster_at(geo: &Geometry, c: u32) -> u64 {
    geo.data_offset + u64::from(c - 2) * geo.cluster_bytes
}
