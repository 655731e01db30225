//! One call that tells what a WIM or PE file is, for `capmedia inspect`.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;

use crate::pe::{read_pe, PeInfo};
use crate::wim::{read_up_to, read_wim, WimInfo, PIPABLE_WIM_MAGIC, WIM_MAGIC};
use crate::ArchError;

/// What `inspect` found. Serialises with a `"kind": "wim" | "pe"` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Inspection {
    /// A WIM (or one part of a split WIM).
    Wim(WimInspection),
    /// A PE file.
    Pe(PeInspection),
}

/// A WIM's inspection: its path plus the [`WimInfo`] fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WimInspection {
    /// The path as given (lossily UTF-8 for JSON).
    pub path: String,
    /// What the header and XML say.
    #[serde(flatten)]
    pub wim: WimInfo,
}

/// A PE file's inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeInspection {
    /// The path as given (lossily UTF-8 for JSON).
    pub path: String,
    /// The COFF machine as hex text, e.g. `"0x8664"`.
    pub machine: String,
    /// The architecture the machine means.
    pub arch: capmedia_content::Arch,
    /// PE32+ (64-bit optional header).
    pub pe32_plus: bool,
    /// Optional-header subsystem.
    pub subsystem: u16,
    /// Subsystem 10: a UEFI application.
    pub efi_application: bool,
}

impl PeInspection {
    fn new(path: String, pe: &PeInfo) -> Self {
        PeInspection {
            path,
            machine: format!("{:#06x}", pe.machine),
            arch: pe.arch,
            pe32_plus: pe.pe32_plus,
            subsystem: pe.subsystem,
            efi_application: pe.is_efi_application(),
        }
    }
}

/// Opens `path` and inspects it (see [`inspect_reader`]).
pub fn inspect(path: impl AsRef<Path>) -> Result<Inspection, ArchError> {
    let path = path.as_ref();
    let mut f = BufReader::new(File::open(path)?);
    inspect_reader(&mut f, &path.to_string_lossy())
}

/// Tells a WIM from a PE by magic and reads it; `path` is only reported.
pub fn inspect_reader<R: Read + Seek>(r: &mut R, path: &str) -> Result<Inspection, ArchError> {
    r.seek(SeekFrom::Start(0))?;
    let mut magic = [0u8; 8];
    let got = read_up_to(r, &mut magic)?;
    let magic = &magic[..got];
    if got == 0 {
        return Err(ArchError::Empty);
    }
    let is_prefix = |m: &[u8; 8]| m.starts_with(magic) || magic.starts_with(m);
    if is_prefix(&WIM_MAGIC) || is_prefix(&PIPABLE_WIM_MAGIC) {
        let wim = read_wim(r)?;
        Ok(Inspection::Wim(WimInspection {
            path: path.to_owned(),
            wim,
        }))
    } else if magic.starts_with(b"MZ") {
        let pe = read_pe(r)?;
        Ok(Inspection::Pe(PeInspection::new(path.to_owned(), &pe)))
    } else {
        Err(ArchError::UnknownFormat {
            found: magic.to_vec(),
        })
    }
}

/// The human-readable rendering, for `capmedia inspect` without `--json`.
impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inspection::Wim(w) => {
                let i = &w.wim;
                writeln!(
                    f,
                    "{}: WIM, version {:#x}, compression {}",
                    w.path, i.version, i.compression
                )?;
                writeln!(
                    f,
                    "  part {} of {}{}{}",
                    i.part,
                    i.total_parts,
                    if i.pipable { ", pipable" } else { "" },
                    if i.solid { ", solid" } else { "" }
                )?;
                match i.boot_image() {
                    Some(b) => writeln!(f, "  boot image: index {} ({})", b.index, b.arch)?,
                    None => writeln!(f, "  boot image: none (boot index 0)")?,
                }
                writeln!(f, "  images: {}", i.images.len())?;
                for img in &i.images {
                    writeln!(
                        f,
                        "  [{}] {:<6} {}{}",
                        img.index,
                        img.arch.as_str(),
                        img.name.as_deref().unwrap_or("(no name)"),
                        if img.is_boot { "  (boot)" } else { "" }
                    )?;
                }
                Ok(())
            }
            Inspection::Pe(p) => {
                writeln!(
                    f,
                    "{}: PE{}, machine {} ({}), subsystem {}{}",
                    p.path,
                    if p.pe32_plus { "32+" } else { "32" },
                    p.machine,
                    p.arch,
                    p.subsystem,
                    if p.efi_application {
                        " (EFI application)"
                    } else {
                        ""
                    }
                )
            }
        }
    }
}
