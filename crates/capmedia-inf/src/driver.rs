//! What one INF says about its driver: class, provider, version, and the
//! hardware ids it installs on a given architecture and Windows version.
//!
//! Models-section selection (Microsoft's "INF Manufacturer section",
//! "Combining platform extensions with operating system versions" and "INF
//! file platform extensions and x64-based systems"):
//! - a `[Manufacturer]` entry is `%Mfg% = Models[, TargetOSVersion ...]`,
//!   a TargetOSVersion is
//!   `NT[Architecture][.[Major][.[Minor][.[ProductType][.[SuiteMask][.[Build]]]]]]`
//!   and names the section `Models.<TargetOSVersion>`;
//! - a decoration applies when its architecture is the target's or absent
//!   ("can be used with any hardware platform"), its version
//!   (major.minor.build, missing parts 0) is not higher than the target
//!   Windows, and its product type, if given, is the target's;
//! - of those, Windows "chooses the Models section that most closely
//!   matches": the highest version; on a tie an architecture-specific one
//!   over an architecture-less one, then one with a product type;
//! - the plain `NT` decoration (no architecture, no version) and the
//!   undecorated section are not used for Models on x64 (`.ntamd64` is
//!   required since Windows Server 2003 SP1) nor on any other non-x86
//!   architecture; on x86, when no decoration applies, the undecorated
//!   `[Models]` section is used.
//!
//! The suite mask is not compared: Windows PE has no suite to match and
//! drivers that use one are rare; a masked decoration is treated as if
//! it had none.

use std::fmt;

use capmedia_content::Arch;
use serde::Serialize;

use crate::inf::{Inf, InfError, ParseOptions};

/// A Windows version, as TargetOSVersion decorations compare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct OsVersion {
    pub major: u32,
    pub minor: u32,
    pub build: u32,
}

impl OsVersion {
    /// Windows 11 24H2 / Windows Server 2025, the Windows PE of the
    /// current ADK.
    pub const WIN11_24H2: OsVersion = OsVersion {
        major: 10,
        minor: 0,
        build: 26100,
    };
}

impl fmt::Display for OsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// The Windows a driver is judged for: the boot image's architecture and
/// version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Target {
    pub arch: Arch,
    pub os: OsVersion,
    /// `VER_NT_WORKSTATION` (1) for Windows PE and client Windows,
    /// 3 for servers.
    pub product_type: u32,
}

impl Target {
    /// `arch` on the current ADK's Windows PE (10.0.26100, workstation).
    pub fn new(arch: Arch) -> Target {
        Target {
            arch,
            os: OsVersion::WIN11_24H2,
            product_type: 1,
        }
    }

    /// The same target on another Windows version (for instance the one in
    /// the boot image's WIM XML).
    pub fn with_os(self, os: OsVersion) -> Target {
        Target { os, ..self }
    }
}

/// What a driver is for, as far as capture media care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// Network adapters: class `Net`.
    Net,
    /// Mass-storage controllers: classes `SCSIAdapter` (SCSI, SAS, RAID,
    /// NVMe, UFS, USB attached SCSI), `HDC` (IDE/ATA/AHCI) and `SDHost`
    /// (SD host controllers that boot some tablets).
    Storage,
    Other,
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            DriverKind::Net => "net",
            DriverKind::Storage => "storage",
            DriverKind::Other => "other",
        })
    }
}

/// Class GUIDs (lowercase, no braces) and names of the classes above.
const CLASSES: &[(&str, &str, DriverKind)] = &[
    (
        "4d36e972-e325-11ce-bfc1-08002be10318",
        "net",
        DriverKind::Net,
    ),
    (
        "4d36e97b-e325-11ce-bfc1-08002be10318",
        "scsiadapter",
        DriverKind::Storage,
    ),
    (
        "4d36e96a-e325-11ce-bfc1-08002be10318",
        "hdc",
        DriverKind::Storage,
    ),
    (
        "a0a588a4-c46f-4b37-b7ea-c82fe89870c6",
        "sdhost",
        DriverKind::Storage,
    ),
];

/// Classifies by class GUID, or by class name when the GUID is absent or
/// unknown (the GUID is what Windows goes by; the name is the fallback).
pub fn classify(class: Option<&str>, class_guid: Option<&str>) -> DriverKind {
    if let Some(g) = class_guid {
        let g = g
            .trim()
            .trim_start_matches('{')
            .trim_end_matches('}')
            .to_ascii_lowercase();
        if let Some((_, _, k)) = CLASSES.iter().find(|(guid, _, _)| *guid == g) {
            return *k;
        }
    }
    if let Some(c) = class {
        let c = c.trim().to_ascii_lowercase();
        if let Some((_, _, k)) = CLASSES.iter().find(|(_, name, _)| *name == c) {
            return *k;
        }
    }
    DriverKind::Other
}

/// `DriverVer = mm/dd/yyyy[,w.x.y.z]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriverVer {
    /// `yyyy-mm-dd`, if the date is well formed.
    pub date: Option<String>,
    pub version: Option<String>,
}

impl DriverVer {
    fn parse(fields: &[String]) -> DriverVer {
        let date = fields.first().and_then(|d| {
            let mut it = d.trim().split('/').map(|p| p.trim().parse::<u32>().ok());
            match (it.next()??, it.next()??, it.next()??, it.next()) {
                (m @ 1..=12, d @ 1..=31, y @ 1980..=9999, None) => {
                    Some(format!("{y:04}-{m:02}-{d:02}"))
                }
                _ => None,
            }
        });
        let version = fields
            .get(1)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        DriverVer { date, version }
    }
}

/// One Models section a driver's ids came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelsSection {
    /// The manufacturer's name as the INF shows it (`%Mfg%` substituted).
    pub manufacturer: String,
    /// The section used, e.g. `Intel.NTamd64.10.0.1.19041`.
    pub section: String,
}

/// What capmedia needs to know about one INF for one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriverInfo {
    /// The INF's file name, as the caller named it.
    pub file: String,
    pub arch: Arch,
    pub class: Option<String>,
    pub class_guid: Option<String>,
    pub kind: DriverKind,
    pub provider: Option<String>,
    pub driver_ver: Option<DriverVer>,
    /// The Models sections chosen for the target, in `[Manufacturer]` order.
    pub models: Vec<ModelsSection>,
    /// Every hardware and compatible id those sections list, in order,
    /// each once (compared case-insensitively).
    pub hardware_ids: Vec<String>,
}

impl DriverInfo {
    /// Reads INF bytes (default parse options) and describes the driver.
    pub fn from_bytes(file: &str, bytes: &[u8], target: &Target) -> Result<DriverInfo, InfError> {
        Ok(DriverInfo::from_inf(file, &Inf::parse(bytes)?, target))
    }

    /// Like [`DriverInfo::from_bytes`] with explicit parse options.
    pub fn from_bytes_with(
        file: &str,
        bytes: &[u8],
        target: &Target,
        opts: &ParseOptions,
    ) -> Result<DriverInfo, InfError> {
        Ok(DriverInfo::from_inf(
            file,
            &Inf::parse_with(bytes, opts)?,
            target,
        ))
    }

    /// Describes a parsed INF for `target`.
    pub fn from_inf(file: &str, inf: &Inf, target: &Target) -> DriverInfo {
        let version = inf.section("Version");
        let first = |key: &str| {
            version
                .and_then(|s| s.entry(key))
                .and_then(|l| l.fields.first())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let class = first("Class");
        let class_guid = first("ClassGuid");
        let provider = version
            .and_then(|s| s.entry("Provider"))
            .map(|l| l.value().trim().to_owned())
            .filter(|v| !v.is_empty());
        let driver_ver = version
            .and_then(|s| s.entry("DriverVer"))
            .map(|l| DriverVer::parse(&l.fields));
        let kind = classify(class.as_deref(), class_guid.as_deref());

        let mut models = Vec::new();
        let mut hardware_ids: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut used = std::collections::HashSet::new();
        for entry in inf.section("Manufacturer").map_or(&[][..], |s| &s.lines) {
            // `%Mfg% = Models, decorations...`, or the legacy bare
            // `Manufacturer` naming a Models section of the same name.
            let (manufacturer, base, decorations) = match &entry.key {
                Some(k) => match entry.fields.split_first() {
                    Some((base, decs)) => (k.clone(), base.trim(), decs),
                    None => continue,
                },
                None => match entry.fields.first() {
                    Some(name) => (name.clone(), name.trim(), &[][..]),
                    None => continue,
                },
            };
            if base.is_empty() {
                continue;
            }
            let Some(name) = select_models_section(base, decorations, target) else {
                continue;
            };
            let Some(section) = inf.section(&name) else {
                continue;
            };
            // Each Models section is read once, however many entries name
            // it (a hostile INF could name one huge section a million times).
            if !used.insert(section.name.to_lowercase()) {
                continue;
            }
            models.push(ModelsSection {
                manufacturer: manufacturer.trim().to_owned(),
                section: section.name.clone(),
            });
            for model in &section.lines {
                // `%Desc% = InstallSection, hw-id[, compatible-id...]`
                if model.key.is_none() {
                    continue;
                }
                for id in model.fields.iter().skip(1) {
                    let id = id.trim();
                    if !id.is_empty() && seen.insert(id.to_ascii_uppercase()) {
                        hardware_ids.push(id.to_owned());
                    }
                }
            }
        }
        DriverInfo {
            file: file.to_owned(),
            arch: target.arch,
            class,
            class_guid,
            kind,
            provider,
            driver_ver,
            models,
            hardware_ids,
        }
    }
}

/// The architecture names of TargetOSVersion decorations.
fn decoration_arch(arch: Arch) -> &'static str {
    match arch {
        Arch::X86 => "x86",
        Arch::X64 => "amd64",
        Arch::Arm64 => "arm64",
        Arch::Arm => "arm",
        Arch::Ia64 => "ia64",
    }
}

/// A parsed TargetOSVersion decoration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decoration {
    arch: Option<Arch>,
    version: OsVersion,
    has_version: bool,
    product_type: Option<u32>,
}

fn parse_number(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parses `NT[arch][.major[.minor[.ptype[.suite[.build]]]]]`; `None` for
/// anything else (such a decoration never matches).
fn parse_decoration(d: &str) -> Option<Decoration> {
    let d = d.trim();
    let mut parts = d.split('.');
    let head = parts.next()?.to_ascii_lowercase();
    let arch_name = head.strip_prefix("nt")?;
    let arch = if arch_name.is_empty() {
        None
    } else {
        Some(
            Arch::ALL
                .into_iter()
                .find(|a| decoration_arch(*a) == arch_name)?,
        )
    };
    let fields: Vec<&str> = parts.collect();
    if fields.len() > 5 {
        return None;
    }
    // Empty fields are allowed ("NTamd64.10.0...17763").
    let num = |i: usize| -> Option<Option<u32>> {
        match fields.get(i).map(|s| s.trim()) {
            None | Some("") => Some(None),
            Some(s) => parse_number(s).map(Some),
        }
    };
    let major = num(0)?;
    let minor = num(1)?;
    let product_type = num(2)?;
    let _suite = num(3)?;
    let build = num(4)?;
    Some(Decoration {
        arch,
        version: OsVersion {
            major: major.unwrap_or(0),
            minor: minor.unwrap_or(0),
            build: build.unwrap_or(0),
        },
        has_version: major.is_some() || minor.is_some() || build.is_some(),
        product_type,
    })
}

/// The Models section Windows would use for one `[Manufacturer]` entry on
/// `target`, by the rules in this module's documentation; `None` if the
/// entry has none for it.
pub fn select_models_section<S: AsRef<str>>(
    base: &str,
    decorations: &[S],
    target: &Target,
) -> Option<String> {
    let mut best: Option<((OsVersion, bool, bool), &str)> = None;
    for raw in decorations {
        let raw = raw.as_ref().trim();
        let Some(d) = parse_decoration(raw) else {
            continue;
        };
        match d.arch {
            Some(a) if a != target.arch => continue,
            None if !d.has_version && target.arch != Arch::X86 => continue,
            _ => {}
        }
        if d.version > target.os {
            continue;
        }
        if d.product_type.is_some_and(|p| p != target.product_type) {
            continue;
        }
        let score = (d.version, d.arch.is_some(), d.product_type.is_some());
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, raw));
        }
    }
    match best {
        Some((_, dec)) => Some(format!("{base}.{dec}")),
        None if target.arch == Arch::X86 => Some(base.to_owned()),
        None => None,
    }
}

impl fmt::Display for DriverInfo {
    /// One row of the driver table: file, kind, class, provider, version,
    /// date, number of ids.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dv = self.driver_ver.as_ref();
        write!(
            f,
            "{:<28} {:<7} {:<14} {:<24} {:<18} {:<10} {}",
            self.file,
            self.kind,
            self.class.as_deref().unwrap_or("-"),
            self.provider.as_deref().unwrap_or("-"),
            dv.and_then(|v| v.version.as_deref()).unwrap_or("-"),
            dv.and_then(|v| v.date.as_deref()).unwrap_or("-"),
            self.hardware_ids.len()
        )
    }
}

/// A terminal table of drivers, with a header line.
#[derive(Debug, Clone, Copy)]
pub struct DriverTable<'a>(pub &'a [DriverInfo]);

impl fmt::Display for DriverTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<28} {:<7} {:<14} {:<24} {:<18} {:<10} IDS",
            "INF", "KIND", "CLASS", "PROVIDER", "VERSION", "DATE"
        )?;
        for d in self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(decs: &[&str], arch: Arch, os: (u32, u32, u32)) -> Option<String> {
        let t = Target::new(arch).with_os(OsVersion {
            major: os.0,
            minor: os.1,
            build: os.2,
        });
        select_models_section("M", decs, &t)
    }

    #[test]
    fn decoration_selection() {
        let win10 = (10, 0, 19041);
        let win7 = (6, 1, 7601);
        // Architecture picks its own decoration.
        let d = ["NTx86", "NTamd64", "NTarm64"];
        assert_eq!(sel(&d, Arch::X86, win10).as_deref(), Some("M.NTx86"));
        assert_eq!(sel(&d, Arch::X64, win10).as_deref(), Some("M.NTamd64"));
        assert_eq!(sel(&d, Arch::Arm64, win10).as_deref(), Some("M.NTarm64"));
        // Undecorated: x86 only.
        assert_eq!(sel(&["NTamd64"], Arch::X86, win10).as_deref(), Some("M"));
        assert_eq!(sel(&[], Arch::X64, win10), None);
        assert_eq!(sel(&["NTamd64"], Arch::Arm64, win10), None);
        // Plain NT: x86 only; NT with a version: any architecture.
        assert_eq!(sel(&["NT"], Arch::X86, win10).as_deref(), Some("M.NT"));
        assert_eq!(sel(&["NT"], Arch::X64, win10), None);
        assert_eq!(
            sel(&["NTx86.6.0", "NT.6.1"], Arch::X64, win10).as_deref(),
            Some("M.NT.6.1")
        );
        // Highest version not above the target.
        let v = [
            "NTamd64",
            "NTamd64.6.1",
            "NTamd64.10.0",
            "NTamd64.10.0...17763",
            "NTamd64.10.0...22000",
        ];
        assert_eq!(
            sel(&v, Arch::X64, win10).as_deref(),
            Some("M.NTamd64.10.0...17763")
        );
        assert_eq!(
            sel(&v, Arch::X64, (10, 0, 26100)).as_deref(),
            Some("M.NTamd64.10.0...22000")
        );
        assert_eq!(sel(&v, Arch::X64, win7).as_deref(), Some("M.NTamd64.6.1"));
        assert_eq!(
            sel(&v, Arch::X64, (6, 0, 6002)).as_deref(),
            Some("M.NTamd64")
        );
        // On a tie the architecture-specific decoration wins.
        assert_eq!(
            sel(&["NT.10.0", "NTamd64.10.0"], Arch::X64, win10).as_deref(),
            Some("M.NTamd64.10.0")
        );
        // Product type: 1 (workstation) matches, 3 (server) does not.
        assert_eq!(
            sel(&["NTamd64.10.0.3", "NTamd64.6.3"], Arch::X64, win10).as_deref(),
            Some("M.NTamd64.6.3")
        );
        assert_eq!(
            sel(&["NTamd64.10.0.0x1"], Arch::X64, win10).as_deref(),
            Some("M.NTamd64.10.0.0x1")
        );
        // Case-insensitive, garbage ignored.
        assert_eq!(
            sel(&["ntAMD64", "NTfoo", "XP", "NTamd64.x"], Arch::X64, win10).as_deref(),
            Some("M.ntAMD64")
        );
    }

    #[test]
    fn classes() {
        assert_eq!(classify(Some("Net"), None), DriverKind::Net);
        assert_eq!(
            classify(None, Some("{4D36E97B-E325-11CE-BFC1-08002BE10318}")),
            DriverKind::Storage
        );
        assert_eq!(classify(Some("hdc"), None), DriverKind::Storage);
        assert_eq!(classify(Some("SDHost"), None), DriverKind::Storage);
        // The GUID wins over a contradicting name.
        assert_eq!(
            classify(Some("Net"), Some("{4d36e96a-e325-11ce-bfc1-08002be10318}")),
            DriverKind::Storage
        );
        assert_eq!(classify(Some("System"), None), DriverKind::Other);
        assert_eq!(classify(None, None), DriverKind::Other);
    }

    #[test]
    fn driver_ver() {
        let f = |s: &[&str]| DriverVer::parse(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(
            f(&["06/21/2006", "10.0.19041.1"]),
            DriverVer {
                date: Some("2006-06-21".into()),
                version: Some("10.0.19041.1".into())
            }
        );
        assert_eq!(
            f(&["13/01/2020"]),
            DriverVer {
                date: None,
                version: None
            }
        );
        assert_eq!(f(&["1/2/2003/4", " 1.0 "]).date, None);
        assert_eq!(f(&["1/2/2003", " 1.0 "]).version.as_deref(), Some("1.0"));
    }
}
