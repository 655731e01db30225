//! Block devices and output paths: the one place that decides what an
//! `--out` path really names and whether capmedia may write it.
//!
//! Writing the wrong disk is the classic disaster of USB-imaging tools, and
//! a tool that "writes a file" to `/dev/sdz` (creating a node-sized file in
//! RAM) or renames over `/dev/loop0` is no better. So before any sink sees
//! an output, the driver calls [`resolve_output`]: symlinks (such as
//! `/dev/disk/by-id/...`) are followed, anything under `/dev` must be an
//! existing block device, character devices and other special files are
//! refused, and a block device is examined here ([`probe`]) and refused
//! when it is a partition, mounted, the system disk, in use, read-only, or
//! internal without the override. [`list_drives`] is the same view as a
//! list, for `capmedia devices` and the wizard.
//!
//! Every path read is injectable ([`SystemPaths`]) so tests run over fake
//! sysfs trees.

mod probe;

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

pub use probe::{human_size, probe, Bus, DeviceInfo, Mount, ProbeError, SystemPaths};

/// What an output path names, once resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A file (existing or to be created) or a folder: the sink writes it
    /// under a temporary name and renames. The path is absolute with its
    /// folder's symlinks resolved.
    File(PathBuf),
    /// An existing whole-disk block device that passed every refusal
    /// (boxed: it carries the whole device description).
    Device(Box<DeviceTarget>),
}

/// A block device output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceTarget {
    /// The path the user gave.
    pub given: PathBuf,
    /// The device node it resolves to (`/dev/sdb`).
    pub path: PathBuf,
    pub info: DeviceInfo,
}

/// Why an output path is refused.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{given}: no such device; `capmedia devices` lists the drives")]
    NoSuchDevice { given: PathBuf },
    #[error(
        "{given}{}: is a {kind}, not a block device or a file; nothing was written",
        via(given, resolved)
    )]
    Special {
        given: PathBuf,
        resolved: PathBuf,
        kind: &'static str,
    },
    #[error("{given}{}: not a block device; under /dev capmedia writes only existing drives (`capmedia devices` lists them)", via(given, resolved))]
    NotADeviceUnderDev { given: PathBuf, resolved: PathBuf },
    /// A block device given to a sink that writes only files; the caller
    /// names the sink.
    #[error("{given}{}: is a block device", via(given, resolved))]
    BlockDevice { given: PathBuf, resolved: PathBuf },
    #[error("refusing to write {}: {}", info.describe(), reasons.join("; "))]
    Refused {
        info: Box<DeviceInfo>,
        reasons: Vec<String>,
    },
    #[error("{path}: {source}")]
    Probe {
        path: PathBuf,
        #[source]
        source: ProbeError,
    },
    #[error("cannot resolve {path}: {source}")]
    Resolve {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn via(given: &Path, resolved: &Path) -> String {
    if given == resolved {
        String::new()
    } else {
        format!(" (-> {})", resolved.display())
    }
}

/// What the writer accepts, and the options that lift refusals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    /// The writer writes block devices at all (a sink's
    /// `SinkInfo::writes_devices`); without it any block device is refused
    /// before it is examined.
    pub devices: bool,
    /// Also a disk that is neither removable nor on USB.
    pub allow_fixed_disk: bool,
}

/// Whether `p`, made absolute and cleaned of `.` and `..`, lies in `dev`.
fn under(p: &Path, dev: &Path) -> bool {
    let mut clean = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            c => clean.push(c),
        }
    }
    clean.starts_with(dev)
}

/// Resolve `given` as an output and apply every device rule; see the crate
/// documentation. Reads only metadata, sysfs and the mount table: nothing
/// is opened for writing and nothing is created.
pub fn resolve_output(
    given: &Path,
    sys: &SystemPaths,
    ov: Overrides,
) -> Result<Output, OutputError> {
    let absolute = if given.is_absolute() {
        given.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|source| OutputError::Resolve {
                path: given.to_path_buf(),
                source,
            })?
            .join(given)
    };
    let resolved = match fs::canonicalize(&absolute) {
        Ok(p) => p,
        // Not there (yet): resolve the folder, keep the name. A dangling
        // symlink also lands here, and is then written as a new file in
        // place of the link by the sink's rename.
        Err(_) => match (absolute.parent(), absolute.file_name()) {
            (Some(parent), Some(name)) => fs::canonicalize(parent)
                .map(|p| p.join(name))
                .unwrap_or_else(|_| absolute.clone()),
            _ => absolute.clone(),
        },
    };
    let in_dev = under(&absolute, &sys.dev) || under(&resolved, &sys.dev);
    let meta = match fs::metadata(&resolved) {
        Ok(m) => m,
        Err(_) if in_dev => {
            return Err(OutputError::NoSuchDevice {
                given: given.to_path_buf(),
            })
        }
        Err(_) => return Ok(Output::File(resolved)),
    };
    let ft = meta.file_type();
    let special = |kind| OutputError::Special {
        given: given.to_path_buf(),
        resolved: resolved.clone(),
        kind,
    };
    if ft.is_char_device() {
        return Err(special("character device"));
    }
    if ft.is_fifo() {
        return Err(special("named pipe"));
    }
    if ft.is_socket() {
        return Err(special("socket"));
    }
    if !ft.is_block_device() {
        if in_dev {
            return Err(OutputError::NotADeviceUnderDev {
                given: given.to_path_buf(),
                resolved,
            });
        }
        return Ok(Output::File(resolved));
    }
    if !ov.devices {
        return Err(OutputError::BlockDevice {
            given: given.to_path_buf(),
            resolved,
        });
    }
    let name = resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let info = probe(sys, &name).map_err(|source| OutputError::Probe {
        path: resolved.clone(),
        source,
    })?;
    let reasons = info.refusals(ov.allow_fixed_disk);
    if !reasons.is_empty() {
        return Err(OutputError::Refused {
            info: Box::new(info),
            reasons,
        });
    }
    Ok(Output::Device(Box::new(DeviceTarget {
        given: given.to_path_buf(),
        path: resolved,
        info,
    })))
}

/// One drive of [`list_drives`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drive {
    /// The device node, `/dev/sdb`.
    pub path: PathBuf,
    /// A stable `/dev/disk/by-id/...` link to it, when udev made one.
    pub by_id: Option<PathBuf>,
    pub vendor_model: String,
    pub size: u64,
    pub size_human: String,
    pub bus: Bus,
    pub removable: bool,
    /// Neither removable nor on USB: hidden unless `--all`.
    pub internal: bool,
    /// Mounted file systems of the disk and its partitions.
    pub mounts: Vec<Mount>,
    /// Why capmedia would refuse it (empty: it may be written).
    pub refusals: Vec<String>,
}

impl Drive {
    fn new(sys: &SystemPaths, name: &str, info: DeviceInfo, by_id: &[(PathBuf, String)]) -> Drive {
        Drive {
            path: sys.dev.join(name),
            by_id: by_id
                .iter()
                .find(|(_, target)| target == name)
                .map(|(link, _)| link.clone()),
            vendor_model: info.model.clone(),
            size: info.size,
            size_human: human_size(info.size),
            bus: info.bus,
            removable: info.removable,
            internal: !info.removable && info.bus != Bus::Usb,
            refusals: info.refusals(false),
            mounts: info.mounts,
        }
    }

    /// The drive with kernel name `name` (`sdb`), as [`list_drives`] shows it.
    pub fn of(sys: &SystemPaths, name: &str) -> Result<Drive, ProbeError> {
        let info = probe(sys, name)?;
        Ok(Drive::new(sys, name, info, &by_id_links(sys)))
    }

    /// One line, as the prompt before writing shows it.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} {} {} ({} bytes), {}, {}",
            self.path.display(),
            self.vendor_model,
            self.size_human,
            self.size,
            self.bus,
            if self.removable {
                "removable"
            } else {
                "not removable"
            }
        );
        if self.internal {
            s.push_str(", internal");
        }
        if let Some(b) = &self.by_id {
            s.push_str(&format!(", {}", b.display()));
        }
        s
    }
}

/// The whole disks the kernel knows, as Rufus and Etcher show them.
/// Partitions, RAM disks and disks without a medium are left out; internal
/// disks only with `all`.
pub fn list_drives(sys: &SystemPaths, all: bool) -> Result<Vec<Drive>, ProbeError> {
    let class = sys.sysfs.join("class/block");
    let rd = fs::read_dir(&class).map_err(|source| ProbeError::Read {
        path: class.clone(),
        source,
    })?;
    let mut names: Vec<String> = rd
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let by_id = by_id_links(sys);
    let mut drives = Vec::new();
    for name in names {
        if name.starts_with("ram") || name.starts_with("zram") {
            continue;
        }
        let info = match probe(sys, &name) {
            Ok(i) => i,
            Err(_) => continue,
        };
        if info.is_partition || info.size == 0 {
            continue;
        }
        let d = Drive::new(sys, &name, info, &by_id);
        if d.internal && !all {
            continue;
        }
        drives.push(d);
    }
    Ok(drives)
}

/// `/dev/disk/by-id` links and the kernel names they point at, best first
/// (`usb-`, `ata-`, `nvme-` before `wwn-`), for a stable name to show.
fn by_id_links(sys: &SystemPaths) -> Vec<(PathBuf, String)> {
    let dir = sys.dev.join("disk/by-id");
    let Ok(rd) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut v: Vec<(PathBuf, String)> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let link = e.path();
            let target = fs::read_link(&link).ok()?;
            let name = target.file_name()?.to_string_lossy().into_owned();
            Some((link, name))
        })
        .collect();
    v.sort_by_key(|(l, _)| {
        let n = l
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (n.starts_with("wwn-") || n.starts_with("nvme-eui"), n)
    });
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dev_prefix_is_judged_after_dots() {
        let dev = Path::new("/dev");
        assert!(under(Path::new("/dev/sdz"), dev));
        assert!(under(Path::new("/tmp/../dev/sdz"), dev));
        assert!(!under(Path::new("/dev/../tmp/x"), dev));
        assert!(!under(Path::new("/devices/x"), dev));
    }

    #[test]
    fn files_and_special_files() {
        let sys = SystemPaths::default();
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("out.iso");
        assert_eq!(
            resolve_output(&f, &sys, Overrides::default()).unwrap(),
            Output::File(fs::canonicalize(dir.path()).unwrap().join("out.iso"))
        );
        let e = resolve_output(Path::new("/dev/null"), &sys, Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let e = resolve_output(Path::new("/dev/sdzz9"), &sys, Overrides::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/sdzz9: no such device; `capmedia devices` lists the drives"
        );
        // A symlink to /dev/null is judged by what it names.
        let l = dir.path().join("link.img");
        std::os::unix::fs::symlink("/dev/null", &l).unwrap();
        let e = resolve_output(&l, &sys, Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("-> /dev/null"), "{e}");
        // A regular file under /dev (shared memory) is not an output either.
        if Path::new("/dev/shm").is_dir() {
            let e = resolve_output(Path::new("/dev/shm/x.img"), &sys, Overrides::default())
                .unwrap_err();
            assert!(e.to_string().contains("no such device"), "{e}");
        }
    }
}
