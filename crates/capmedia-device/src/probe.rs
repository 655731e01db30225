//! What a block device is, read from sysfs and the mount table, and whether
//! capmedia may erase it.
//!
//! Writing the wrong disk is the classic disaster of USB-imaging tools. The
//! decision here rests only on what the kernel reports (not on names), and
//! every path it reads is injectable so tests run over fake sysfs trees.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// Where the kernel's view of the system is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemPaths {
    /// `/sys` (holds `class/block/<name>`).
    pub sysfs: PathBuf,
    /// `/proc/self/mountinfo`.
    pub mountinfo: PathBuf,
    /// `/proc/swaps`.
    pub swaps: PathBuf,
    /// `/dev` (device nodes and the `disk/by-id` links).
    pub dev: PathBuf,
}

impl Default for SystemPaths {
    fn default() -> Self {
        SystemPaths {
            sysfs: PathBuf::from("/sys"),
            mountinfo: PathBuf::from("/proc/self/mountinfo"),
            swaps: PathBuf::from("/proc/swaps"),
            dev: PathBuf::from("/dev"),
        }
    }
}

/// The bus a disk hangs on, from its sysfs device path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bus {
    Usb,
    Nvme,
    Ata,
    Scsi,
    Mmc,
    Virtio,
    /// Loop, RAM and device-mapper disks.
    Virtual,
    Other,
}

impl fmt::Display for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Bus::Usb => "USB",
            Bus::Nvme => "NVMe",
            Bus::Ata => "ATA/SATA",
            Bus::Scsi => "SCSI/SAS",
            Bus::Mmc => "MMC/SD",
            Bus::Virtio => "virtio",
            Bus::Virtual => "virtual",
            Bus::Other => "unknown",
        })
    }
}

/// A mount of the disk or one of its partitions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mount {
    /// Kernel name of the block device mounted (`sdb1`).
    pub device: String,
    pub mount_point: String,
}

/// What the kernel says about one block device.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceInfo {
    /// Kernel name of the device asked about (`sdb`, or `sdb1`).
    pub name: String,
    /// The whole disk it belongs to (itself unless it is a partition).
    pub disk: String,
    pub is_partition: bool,
    pub model: String,
    pub size: u64,
    pub removable: bool,
    pub bus: Bus,
    pub read_only: bool,
    /// Partitions of the whole disk (kernel names).
    pub partitions: Vec<String>,
    pub mounts: Vec<Mount>,
    /// The disk or its partitions used as swap.
    pub swap: Vec<String>,
    /// Devices stacked on it (device-mapper, RAID, LVM).
    pub holders: Vec<String>,
}

/// Why a device could not be examined.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0} is not a block device the kernel knows (no {1})")]
    Unknown(String, PathBuf),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn read_trim(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_owned())
}

fn dev_number(dir: &Path) -> Option<String> {
    read_trim(&dir.join("dev"))
}

fn list_dir(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .map(|it| {
            it.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Bus from the resolved sysfs path of the disk.
fn bus_of(path: &Path) -> Bus {
    let comps: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let any = |f: &dyn Fn(&str) -> bool| comps.iter().any(|c| f(c));
    if any(&|c| c.starts_with("usb")) {
        Bus::Usb
    } else if any(&|c| c.starts_with("nvme")) {
        Bus::Nvme
    } else if any(&|c| c.starts_with("ata")) {
        Bus::Ata
    } else if any(&|c| c.starts_with("mmc")) {
        Bus::Mmc
    } else if any(&|c| c.starts_with("virtio")) {
        Bus::Virtio
    } else if any(&|c| c == "virtual") {
        Bus::Virtual
    } else if any(&|c| c.starts_with("host") || c.starts_with("target")) {
        Bus::Scsi
    } else {
        Bus::Other
    }
}

/// Reads sysfs, the mount table and the swap list for the block device
/// with kernel name `name` (`sdb`, `nvme0n1`, `loop3p1`).
pub fn probe(sys: &SystemPaths, name: &str) -> Result<DeviceInfo, ProbeError> {
    let link = sys.sysfs.join("class/block").join(name);
    let dir =
        fs::canonicalize(&link).map_err(|_| ProbeError::Unknown(name.to_owned(), link.clone()))?;
    let is_partition = dir.join("partition").exists();
    let disk_dir = if is_partition {
        dir.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.clone())
    } else {
        dir.clone()
    };
    let disk = disk_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.to_owned());
    let sectors: u64 = read_trim(&dir.join("size"))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let model = [
        read_trim(&disk_dir.join("device/vendor")),
        read_trim(&disk_dir.join("device/model")),
    ]
    .into_iter()
    .flatten()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(" ");
    let partitions: Vec<String> = list_dir(&disk_dir)
        .into_iter()
        .filter(|n| disk_dir.join(n).join("partition").exists())
        .collect();

    // Every device node of the disk: the disk and its partitions.
    let mut family: Vec<(String, Option<String>)> = vec![(disk.clone(), dev_number(&disk_dir))];
    for p in &partitions {
        family.push((p.clone(), dev_number(&disk_dir.join(p))));
    }

    let mut holders = Vec::new();
    for (n, _) in &family {
        let d = if *n == disk {
            disk_dir.clone()
        } else {
            disk_dir.join(n)
        };
        holders.extend(list_dir(&d.join("holders")));
    }

    let mountinfo = fs::read_to_string(&sys.mountinfo).map_err(|source| ProbeError::Read {
        path: sys.mountinfo.clone(),
        source,
    })?;
    let mut mounts = Vec::new();
    for line in mountinfo.lines() {
        let (pre, post) = line.split_once(" - ").unwrap_or((line, ""));
        let f: Vec<&str> = pre.split(' ').collect();
        if f.len() < 5 {
            continue;
        }
        let source = post.split(' ').nth(1).unwrap_or("");
        let source_name = source.strip_prefix("/dev/").unwrap_or("");
        for (n, num) in &family {
            if num.as_deref() == Some(f[2]) || source_name == n {
                mounts.push(Mount {
                    device: n.clone(),
                    mount_point: unescape(f[4]),
                });
            }
        }
    }
    // /proc/swaps may be missing (a container): no swap then.
    let swaps = fs::read_to_string(&sys.swaps).unwrap_or_default();
    let swap = swaps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|p| {
            let base = fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p));
            let base = base.file_name()?.to_string_lossy().into_owned();
            family.iter().any(|(n, _)| *n == base).then_some(base)
        })
        .collect();

    Ok(DeviceInfo {
        name: name.to_owned(),
        is_partition,
        model: if model.is_empty() {
            "unknown model".to_owned()
        } else {
            model
        },
        size: sectors * 512,
        removable: read_trim(&disk_dir.join("removable")).as_deref() == Some("1"),
        bus: bus_of(&disk_dir),
        read_only: read_trim(&dir.join("ro")).as_deref() == Some("1"),
        partitions,
        mounts,
        swap,
        holders,
        disk,
    })
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points that mean "this disk runs the system".
const SYSTEM_MOUNTS: [&str; 5] = ["/", "/boot", "/boot/efi", "/efi", "/usr"];

impl DeviceInfo {
    /// One line naming the device for the user: model, size, bus, flag.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, {}, bus {}, {}{})",
            self.name,
            self.model,
            human_size(self.size),
            self.bus,
            if self.removable {
                "removable"
            } else {
                "not removable"
            },
            if self.is_partition {
                format!(", partition of {}", self.disk)
            } else {
                String::new()
            }
        )
    }

    /// Why this device must not be erased; empty when it may be.
    ///
    /// `allow_fixed_disk` lifts only the refusal about what kind of disk it
    /// is (not removable and not USB). A partition is always refused: a
    /// medium is a whole disk with its own partition table, and writing one
    /// into a partition would leave neither a bootable stick nor the disk's
    /// other partitions intact. A disk that is mounted, holds the running
    /// system, backs swap or another device, or is read-only is refused
    /// whatever the options: erasing it would break the running system or
    /// fail half-way (the kernel refuses the exclusive open anyway).
    pub fn refusals(&self, allow_fixed_disk: bool) -> Vec<String> {
        let mut r = Vec::new();
        if self.is_partition {
            r.push(format!(
                "{} is a partition of {}: give the whole disk, /dev/{}, not /dev/{}",
                self.name, self.disk, self.disk, self.name
            ));
        }
        if !self.removable && self.bus != Bus::Usb && !allow_fixed_disk {
            r.push(format!(
                "{} is not removable and not on the USB bus (bus {}): it looks like an internal disk (pass allow-fixed-disk if it really is the one to erase)",
                self.disk, self.bus
            ));
        }
        let system: Vec<&Mount> = self
            .mounts
            .iter()
            .filter(|m| SYSTEM_MOUNTS.contains(&m.mount_point.as_str()))
            .collect();
        if let Some(m) = system.first() {
            r.push(format!(
                "{} holds the running system ({} is mounted on {})",
                self.disk, m.device, m.mount_point
            ));
        }
        let others: Vec<String> = self
            .mounts
            .iter()
            .filter(|m| !SYSTEM_MOUNTS.contains(&m.mount_point.as_str()))
            .map(|m| format!("{} on {}", m.device, m.mount_point))
            .collect();
        if !others.is_empty() {
            r.push(format!(
                "{} is mounted ({}): unmount it first",
                self.disk,
                others.join(", ")
            ));
        }
        if !self.swap.is_empty() {
            r.push(format!(
                "{} holds the running system's swap ({})",
                self.disk,
                self.swap.join(", ")
            ));
        }
        if !self.holders.is_empty() {
            r.push(format!(
                "{} is in use by {} (device-mapper, RAID or LVM)",
                self.disk,
                self.holders.join(", ")
            ));
        }
        if self.read_only {
            r.push(format!("{} is read-only", self.name));
        }
        if self.size == 0 {
            r.push(format!("{} has no medium (size 0)", self.name));
        }
        r
    }
}

/// `16.0 GB (14.9 GiB)`: sticks are sold in decimal units.
pub fn human_size(b: u64) -> String {
    format!(
        "{:.1} GB ({:.1} GiB)",
        b as f64 / 1e9,
        b as f64 / (1u64 << 30) as f64
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mount_points() {
        assert_eq!(unescape("/media/my\\040stick"), "/media/my stick");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn buses() {
        assert_eq!(
            bus_of(Path::new("/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb")),
            Bus::Usb
        );
        assert_eq!(
            bus_of(Path::new(
                "/sys/devices/pci0000:00/0000:00:1d.0/nvme/nvme0/nvme0n1"
            )),
            Bus::Nvme
        );
        assert_eq!(
            bus_of(Path::new(
                "/sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda"
            )),
            Bus::Ata
        );
        assert_eq!(
            bus_of(Path::new("/sys/devices/virtual/block/loop0")),
            Bus::Virtual
        );
    }
}
