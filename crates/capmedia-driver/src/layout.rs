//! The medium's tree (product notes §4): boot files, `sources/boot.wim`,
//! `MediaLabel.txt`, `autorun.inf` (opt-in), the media template, and the
//! El Torito boot images kept beside the tree.

use std::path::PathBuf;

use crate::pipeline::PENDING_HASH;
use capmedia_content::{
    walk_tree, BootFile, BootSpec, EntryRole, EntrySource, MediaPath, PlanEntry, PlanError,
    TreeFile,
};

/// Where the boot files (bootmgr, boot/, efi/, etfsboot.com, efisys.bin) are.
#[derive(Debug, Clone)]
pub enum BootFiles {
    /// A Windows PE `Media` folder given with `--boot-files`.
    Dir(PathBuf),
    /// Files of the boot image package (path in package → local file, size).
    Package(Vec<(MediaPath, PathBuf, u64)>),
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(transparent)]
    Tree(#[from] PlanError),
    #[error("--boot-files {0}: no bootmgr, bootmgr.efi or efi/boot/boot*.efi: this is not a Windows PE media folder (the ADK's Media folder, e.g. ...\\Windows Preinstallation Environment\\amd64\\Media)")]
    NotBootFiles(PathBuf),
}

/// The El Torito images, looked for at the folder's root (ADK `fwfiles`) and
/// then where the ADK's Media folder keeps them.
const BIOS_IMAGES: [&str; 2] = ["etfsboot.com", "boot/etfsboot.com"];
const UEFI_IMAGES: [&str; 2] = ["efisys.bin", "efi/microsoft/boot/efisys.bin"];

/// Files at the root that are El Torito images, not part of the tree.
fn is_firmware_image(p: &str) -> bool {
    p.eq_ignore_ascii_case("etfsboot.com")
        || p.eq_ignore_ascii_case("efisys.bin")
        || p.eq_ignore_ascii_case("efisys_noprompt.bin")
}

/// A local file of the boot files or the template.
pub type BootFileEntry = TreeFile;

impl BootFiles {
    /// Every file, with local path and size.
    pub fn entries(&self) -> Result<Vec<BootFileEntry>, LayoutError> {
        match self {
            BootFiles::Dir(d) => {
                let all = walk_tree(d)?;
                let has_loader = all.iter().any(|e| {
                    let p = e.path.as_str().to_ascii_lowercase();
                    p == "bootmgr" || p == "bootmgr.efi" || p.starts_with("efi/boot/boot")
                });
                if !has_loader {
                    return Err(LayoutError::NotBootFiles(d.clone()));
                }
                Ok(all)
            }
            BootFiles::Package(files) => Ok(files
                .iter()
                .map(|(p, l, s)| BootFileEntry {
                    path: p.clone(),
                    local: l.clone(),
                    size: *s,
                })
                .collect()),
        }
    }
}

/// The El Torito images among the boot files.
pub fn boot_spec(files: &[BootFileEntry]) -> BootSpec {
    let find = |names: &[&str]| {
        names.iter().find_map(|n| {
            files
                .iter()
                .find(|e| e.path.as_str().eq_ignore_ascii_case(n))
                .map(|e| (e.local.clone(), e.size))
        })
    };
    BootSpec {
        bios: find(&BIOS_IMAGES).map(|(source, size)| BootFile {
            source,
            size,
            // etfsboot.com is loaded as 8 sectors of 512 bytes, like oscdimg does.
            load_sectors: Some(8),
        }),
        uefi: find(&UEFI_IMAGES).map(|(source, size)| BootFile {
            source,
            size,
            load_sectors: None,
        }),
    }
}

/// The UEFI loaders of the tree (`efi/boot/boot*.efi`).
pub fn uefi_loaders(files: &[BootFileEntry]) -> Vec<&BootFileEntry> {
    files
        .iter()
        .filter(|e| {
            let p = e.path.as_str().to_ascii_lowercase();
            p.starts_with("efi/boot/boot") && p.ends_with(".efi") && p.matches('/').count() == 2
        })
        .collect()
}

/// Plan entries (without BLAKE3 yet) for the boot files that go on the tree.
pub fn boot_entries(files: &[BootFileEntry]) -> Vec<PlanEntry> {
    files
        .iter()
        .filter(|e| !is_firmware_image(e.path.as_str()))
        .map(|e| PlanEntry {
            path: e.path.clone(),
            source: EntrySource::File(e.local.clone()),
            size: e.size,
            blake3: PENDING_HASH.to_owned(),
            role: EntryRole::Boot,
            group: "boot".into(),
        })
        .collect()
}

/// The BCD stores the medium needs but the boot files lack: `boot/bcd` when
/// BIOS boots it (`bootmgr`), `efi/microsoft/boot/bcd` when UEFI does
/// (`efi/boot/boot*.efi`). capmedia writes those (see `capmedia-bcd`); a
/// store the boot files carry always wins.
pub fn missing_bcds(files: &[BootFileEntry]) -> Vec<(&'static str, capmedia_bcd::Firmware)> {
    let has = |p: &str| {
        files
            .iter()
            .any(|e| e.path.as_str().eq_ignore_ascii_case(p))
    };
    let mut v = Vec::new();
    if has("bootmgr") && !has("boot/bcd") {
        v.push(("boot/bcd", capmedia_bcd::Firmware::Bios));
    }
    if !uefi_loaders(files).is_empty() && !has("efi/microsoft/boot/bcd") {
        v.push(("efi/microsoft/boot/bcd", capmedia_bcd::Firmware::Uefi));
    }
    v
}

/// `MediaLabel.txt`, as the wizard writes it.
pub fn media_label_txt(label: &str) -> Vec<u8> {
    format!("label={label}\r\n").into_bytes()
}

/// `autorun.inf`: the label, and the task sequence media autorun program
/// only when the template provides it (capmedia invents no client files).
pub fn autorun_inf(label: &str, autorun_exe: Option<&MediaPath>) -> Vec<u8> {
    let mut s = String::from("[autorun]\r\n");
    if let Some(exe) = autorun_exe {
        let win = exe.as_str().replace('/', "\\");
        s.push_str(&format!("open={win}\r\nicon={win},0\r\n"));
    }
    s.push_str(&format!("label={label}\r\n"));
    s.into_bytes()
}

/// The validated media label.
pub fn check_label(label: &str) -> Result<(), String> {
    if label.trim().is_empty() {
        return Err("the media label is empty".into());
    }
    if let Some(c) = label.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the media label contains the control character {c:?}"
        ));
    }
    if label.chars().count() > 32 {
        return Err(format!(
            "the media label {label:?} is longer than 32 characters (the ISO volume name holds 32)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_files() {
        assert_eq!(media_label_txt("CM"), b"label=CM\r\n");
        let exe = MediaPath::new("SMS/bin/x64/TSMBAutorun.exe").unwrap();
        let a = String::from_utf8(autorun_inf("CM", Some(&exe))).unwrap();
        assert!(a.contains("open=SMS\\bin\\x64\\TSMBAutorun.exe\r\n"));
        assert!(check_label("").is_err());
        assert!(check_label("a\tb").is_err());
        assert!(check_label(&"x".repeat(33)).is_err());
        assert!(check_label("Configuration Manager").is_ok());
    }
}
