//! The boot image from the inside (product notes §5): the boot files a
//! medium needs, the drivers and the Configuration Manager boot components,
//! read from the WIM's booting image by range reads (on the DP, before
//! anything is fetched), and the boot files streamed out of the cached,
//! SHA-256-verified WIM into the staging folder during the fetch stage.
//!
//! Configuration Manager takes the boot managers from the boot image, not
//! from the ADK, so they match the Windows PE inside it; capmedia does the
//! same, which leaves a real boot image package (only `boot.<PKGID>.wim`)
//! needing no `--boot-files`.

use std::io::{Read, Seek, Write};
use std::path::Path;

use capmedia_content::{Arch, MediaPath};
use capmedia_inf::{DriverInfo, DriverKind, Target};
use capmedia_wim::{Image, Wim, WimError};
use serde::Serialize;

/// Which UEFI certificate authority the EFI boot managers are signed by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum UefiCa {
    /// "Microsoft Windows Production PCA 2011": the boot managers every
    /// Windows PE has (`Windows/Boot/EFI`).
    #[default]
    #[serde(rename = "2011")]
    Ca2011,
    /// "Windows UEFI CA 2023": the `_EX` boot managers (since 2024), for
    /// computers where the 2011 CA is revoked (BlackLotus mitigations).
    #[serde(rename = "2023")]
    Ca2023,
}

impl std::str::FromStr for UefiCa {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "2011" => Ok(UefiCa::Ca2011),
            "2023" => Ok(UefiCa::Ca2023),
            _ => Err(format!("{s:?}: the UEFI CA is 2011 or 2023")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BootWimError {
    #[error(transparent)]
    Wim(#[from] WimError),
    #[error("image {index} has no {file} (looked for {looked}); --boot-files DIR can supply it (a Windows PE Media folder from the ADK)")]
    Missing {
        index: u32,
        file: String,
        looked: String,
    },
    #[error("--uefi-ca 2023: image {index} has no Windows/Boot/EFI_EX/bootmgfw_EX.efi (boot managers signed by the Windows UEFI CA 2023); use a boot image built from a 2024 or later ADK, or --boot-files")]
    NoCa2023 { index: u32 },
    #[error("{path} in the boot image is {size} bytes, more than the {max} a boot file may have")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error("writing {path}: {source}")]
    Stage {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} came out of the WIM at {actual} bytes, not the {planned} its directory entry says"
    )]
    SizeChanged {
        path: String,
        planned: u64,
        actual: u64,
    },
}

/// A boot file of the medium and where it is in the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WimBootFile {
    /// Its place on the medium; `etfsboot.com` and `efisys.bin` at the root
    /// are the El Torito images (kept beside the tree).
    pub media: MediaPath,
    /// Its path in the image, as the image spells it.
    pub wim_path: String,
    pub size: u64,
}

/// The Configuration Manager boot components the image holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SmsTree {
    /// `sms/bin/<arch>/TsmBootstrap.exe`: the task sequence bootstrap.
    pub tsm_bootstrap: bool,
    /// `sms/bin/<arch>/OsdCaptureCd.exe`: the Image Capture Wizard.
    pub osd_capture: bool,
}

/// The drivers of the image, by what capture media need of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DriverSummary {
    pub net: usize,
    pub storage: usize,
    pub other: usize,
    /// INFs that could not be read, with the reason.
    pub unreadable: Vec<String>,
}

/// Everything read from the boot image.
#[derive(Debug, Clone)]
pub struct BootImageContents {
    pub files: Vec<WimBootFile>,
    pub drivers: Vec<DriverInfo>,
    pub summary: DriverSummary,
    pub sms: SmsTree,
}

/// The largest boot file read out of an image (boot.sdi is 3 MiB, efisys.bin
/// 1.4 MiB, fonts a few MiB each): a bound against a hostile directory entry.
const MAX_BOOT_FILE: u64 = 64 << 20;
/// An INF larger than this is not read (real ones are at most a few MiB).
const MAX_INF: u64 = 16 << 20;

/// `sms/bin/<arch>` folder names, as Configuration Manager lays them out.
fn sms_arch(arch: Arch) -> &'static str {
    match arch {
        Arch::X86 => "i386",
        Arch::X64 => "x64",
        Arch::Arm64 => "arm64",
        Arch::Arm => "arm",
        Arch::Ia64 => "ia64",
    }
}

fn found(image: &Image, candidates: &[String]) -> Option<(String, u64)> {
    candidates.iter().find_map(|c| {
        image
            .find(c)
            .filter(|e| e.is_file())
            .map(|e| (image.path(e), e.size))
    })
}

/// The boot files of the medium, from image `index` (first match wins;
/// paths are matched case-insensitively, as Windows does).
pub fn boot_files(image: &Image, arch: Arch, ca: UefiCa) -> Result<Vec<WimBootFile>, BootWimError> {
    let index = image.index();
    let sms = format!("sms/bin/{}", sms_arch(arch));
    let ex = ca == UefiCa::Ca2023;
    if ex && image.find("Windows/Boot/EFI_EX/bootmgfw_EX.efi").is_none() {
        return Err(BootWimError::NoCa2023 { index });
    }
    let efi_loader = format!("efi/boot/{}", arch.uefi_boot_file());
    let pick = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // (media path, candidates, required)
    let table: Vec<(String, Vec<String>, bool)> = vec![
        (
            "bootmgr".into(),
            pick(&["Windows/Boot/PCAT/bootmgr"]),
            matches!(arch, Arch::X86 | Arch::X64),
        ),
        (
            "bootmgr.efi".into(),
            if ex {
                pick(&["Windows/Boot/EFI_EX/bootmgr_EX.efi"])
            } else {
                pick(&["Windows/Boot/EFI/bootmgr.efi"])
            },
            false,
        ),
        (
            efi_loader,
            if ex {
                pick(&["Windows/Boot/EFI_EX/bootmgfw_EX.efi"])
            } else {
                pick(&["Windows/Boot/EFI/bootmgfw.efi"])
            },
            true,
        ),
        (
            "boot/boot.sdi".into(),
            pick(&[
                "Windows/Boot/DVD/PCAT/boot.sdi",
                "sms/boot/boot.sdi",
                "Windows/Boot/DVD/EFI/boot.sdi",
            ]),
            true,
        ),
        (
            "boot/bcd".into(),
            pick(&["Windows/Boot/DVD/PCAT/BCD"]),
            false,
        ),
        (
            "efi/microsoft/boot/bcd".into(),
            pick(&["Windows/Boot/DVD/EFI/BCD"]),
            false,
        ),
        (
            "etfsboot.com".into(),
            vec![
                "Windows/Boot/DVD/PCAT/etfsboot.com".into(),
                format!("{sms}/etfsboot.com"),
            ],
            false,
        ),
        (
            "efisys.bin".into(),
            if ex {
                pick(&["Windows/Boot/DVD_EX/EFI/en-US/efisys_EX.bin"])
            } else {
                vec![
                    "Windows/Boot/DVD/EFI/en-US/efisys.bin".into(),
                    format!("{sms}/efisys.bin"),
                ]
            },
            false,
        ),
    ];
    let mut files = Vec::new();
    for (media, candidates, required) in table {
        match found(image, &candidates) {
            Some((wim_path, size)) => files.push(boot_file(&media, wim_path, size)?),
            None if required => {
                return Err(BootWimError::Missing {
                    index,
                    file: format!("/{media}"),
                    looked: candidates.join(", "),
                })
            }
            None => {}
        }
    }
    // Fonts go to both boot managers' font folders.
    let fonts_dir = if ex && image.find("Windows/Boot/Fonts_EX").is_some() {
        "Windows/Boot/Fonts_EX"
    } else {
        "Windows/Boot/Fonts"
    };
    if let Some(dir) = image.find(fonts_dir).filter(|e| e.is_dir) {
        for font in image.children(dir).iter().filter(|e| e.is_file()) {
            let name = font.name.replace("_EX.", ".");
            for to in ["boot/fonts", "efi/microsoft/boot/fonts"] {
                files.push(boot_file(
                    &format!("{to}/{name}"),
                    image.path(font),
                    font.size,
                )?);
            }
        }
    }
    Ok(files)
}

fn boot_file(media: &str, wim_path: String, size: u64) -> Result<WimBootFile, BootWimError> {
    if size > MAX_BOOT_FILE {
        return Err(BootWimError::TooLarge {
            path: wim_path,
            size,
            max: MAX_BOOT_FILE,
        });
    }
    let media = MediaPath::new(media).map_err(|_| BootWimError::Missing {
        index: 0,
        file: media.to_owned(),
        looked: wim_path.clone(),
    })?;
    Ok(WimBootFile {
        media,
        wim_path,
        size,
    })
}

/// Whether a path of the image is a driver INF Windows PE installs from:
/// `Windows/INF/*.inf` and `Windows/System32/DriverStore/FileRepository/*/*.inf`.
fn is_driver_inf(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    if !p.ends_with(".inf") {
        return false;
    }
    let parts: Vec<&str> = p.split('/').collect();
    matches!(parts.as_slice(), ["windows", "inf", _])
        || matches!(
            parts.as_slice(),
            ["windows", "system32", "driverstore", "filerepository", _, _]
        )
}

/// Every driver INF of the image, read for `arch`.
pub fn drivers<R: Read + Seek>(
    wim: &mut Wim<R>,
    image: &Image,
    arch: Arch,
) -> Result<(Vec<DriverInfo>, DriverSummary), BootWimError> {
    let target = Target::new(arch);
    let mut drivers = Vec::new();
    let mut summary = DriverSummary::default();
    for (path, e) in image.walk() {
        if !e.is_file() || !is_driver_inf(&path) {
            continue;
        }
        if e.size > MAX_INF {
            summary.unreadable.push(format!(
                "{path}: {} bytes, larger than an INF can be",
                e.size
            ));
            continue;
        }
        let mut bytes = Vec::new();
        wim.open_file(e)?
            .read_to_end(&mut bytes)
            .map_err(WimError::from_io)?;
        match DriverInfo::from_bytes(&path, &bytes, &target) {
            Ok(d) => {
                match d.kind {
                    DriverKind::Net => summary.net += 1,
                    DriverKind::Storage => summary.storage += 1,
                    DriverKind::Other => summary.other += 1,
                }
                drivers.push(d);
            }
            Err(err) => summary.unreadable.push(format!("{path}: {err}")),
        }
    }
    Ok((drivers, summary))
}

/// The Configuration Manager boot components in the image.
pub fn sms_tree(image: &Image, arch: Arch) -> SmsTree {
    let dir = format!("sms/bin/{}", sms_arch(arch));
    let has = |f: &str| {
        image
            .find(&format!("{dir}/{f}"))
            .is_some_and(|e| e.is_file())
    };
    SmsTree {
        tsm_bootstrap: has("TsmBootstrap.exe"),
        osd_capture: has("OsdCaptureCd.exe"),
    }
}

/// The first `max` bytes of a file of the image (a PE header, for the
/// architecture check), decoded chunk by chunk.
pub fn head<R: Read + Seek>(
    wim: &mut Wim<R>,
    image: &Image,
    path: &str,
    max: u64,
) -> Result<Vec<u8>, BootWimError> {
    let e = image.find(path).ok_or_else(|| BootWimError::Missing {
        index: image.index(),
        file: path.to_owned(),
        looked: path.to_owned(),
    })?;
    let mut bytes = Vec::new();
    wim.open_file(e)?
        .take(max)
        .read_to_end(&mut bytes)
        .map_err(WimError::from_io)?;
    Ok(bytes)
}

/// Stream each boot file out of the (cached, verified) WIM into
/// `dir/<media path>`, checking each comes out at the size planned.
pub fn stage<R: Read + Seek>(
    wim: &mut Wim<R>,
    image: &Image,
    files: &[WimBootFile],
    dir: &Path,
) -> Result<(), BootWimError> {
    for f in files {
        let e = image
            .find(&f.wim_path)
            .ok_or_else(|| BootWimError::Missing {
                index: image.index(),
                file: f.wim_path.clone(),
                looked: f.wim_path.clone(),
            })?;
        let to = f.media.to_host_path(dir);
        let io = |source| BootWimError::Stage {
            path: to.display().to_string(),
            source,
        };
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut out = std::fs::File::create(&to).map_err(io)?;
        let n = wim.extract_to(e, &mut out)?;
        out.flush().map_err(io)?;
        if n != f.size {
            return Err(BootWimError::SizeChanged {
                path: f.wim_path.clone(),
                planned: f.size,
                actual: n,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_inf_paths() {
        assert!(is_driver_inf("Windows/INF/netkvm.inf"));
        assert!(is_driver_inf("WINDOWS/inf/OEM1.INF"));
        assert!(is_driver_inf(
            "Windows/System32/DriverStore/FileRepository/e1i68x64.inf_amd64_1/e1i68x64.inf"
        ));
        assert!(!is_driver_inf("Windows/INF/sub/x.inf"));
        assert!(!is_driver_inf("Windows/INF/x.pnf"));
        assert!(!is_driver_inf("sms/x.inf"));
    }
}
