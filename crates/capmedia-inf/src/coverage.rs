//! Which drivers cover which devices: a device is covered by every driver
//! one of whose Models ids equals (case-insensitively) one of the device's
//! ids ([`Device::patterns`]: its hardware id, the less specific forms, the
//! compatible ids), as Windows' driver search matches them. In the report
//! certain matches come before those that needed a part the device list did
//! not show (lspci without `-v`), and among each the match on the device's
//! more specific id first.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::device::{Device, DeviceKind};
use crate::driver::{DriverInfo, DriverKind};

/// One driver that covers a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriverMatch {
    pub file: String,
    pub class: Option<String>,
    pub kind: DriverKind,
    pub provider: Option<String>,
    pub version: Option<String>,
    /// The id as the INF lists it.
    pub matched_id: String,
    /// Position of the matching id in the device's list (0 = its most
    /// specific hardware id; higher = less specific, as Windows ranks).
    pub rank: usize,
    /// False when the match went through a part the device list did not
    /// show (lspci without `-v`: SUBSYS or prog-if), so it may not hold.
    pub exact: bool,
}

/// A device and the drivers that cover it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceCoverage {
    pub device: Device,
    pub kind: DeviceKind,
    /// Whether the device must be covered (net, storage, or unknown class).
    pub checked: bool,
    /// Best first: certain matches, then by rank.
    pub drivers: Vec<DriverMatch>,
}

impl DeviceCoverage {
    pub fn is_covered(&self) -> bool {
        !self.drivers.is_empty()
    }
}

/// The result of checking a device list against a set of drivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoverageReport {
    pub devices: Vec<DeviceCoverage>,
}

impl CoverageReport {
    /// Checked devices that no driver covers: the ones that make the
    /// driver refuse a run.
    pub fn uncovered(&self) -> Vec<&DeviceCoverage> {
        self.devices
            .iter()
            .filter(|d| d.checked && !d.is_covered())
            .collect()
    }

    /// Whether every checked device is covered.
    pub fn is_complete(&self) -> bool {
        self.devices.iter().all(|d| !d.checked || d.is_covered())
    }
}

/// The drivers' ids, uppercase, for lookups.
#[derive(Debug)]
pub struct DriverIndex<'a> {
    drivers: &'a [DriverInfo],
    /// Uppercase id → (driver index, index into its `hardware_ids`).
    ids: BTreeMap<String, Vec<(usize, usize)>>,
}

impl<'a> DriverIndex<'a> {
    pub fn new(drivers: &'a [DriverInfo]) -> DriverIndex<'a> {
        let mut ids: BTreeMap<String, Vec<(usize, usize)>> = BTreeMap::new();
        for (di, d) in drivers.iter().enumerate() {
            for (ii, id) in d.hardware_ids.iter().enumerate() {
                ids.entry(id.trim().to_ascii_uppercase())
                    .or_default()
                    .push((di, ii));
            }
        }
        DriverIndex { drivers, ids }
    }

    /// The drivers covering `device`, best first, each once.
    pub fn matches(&self, device: &Device) -> Vec<DriverMatch> {
        let mut best: BTreeMap<usize, DriverMatch> = BTreeMap::new();
        for (rank, p) in device.patterns().iter().enumerate() {
            let hits: Vec<(usize, usize)> = if p.wildcard {
                let prefix = p.literal_prefix();
                self.ids
                    .range(prefix.to_owned()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .filter(|(k, _)| p.matches(k))
                    .flat_map(|(_, v)| v.iter().copied())
                    .collect()
            } else {
                self.ids.get(&p.text).cloned().unwrap_or_default()
            };
            for (di, ii) in hits {
                // A driver counts once: by its first exact match, else by
                // its first match through an unknown part.
                if best.get(&di).is_some_and(|m| m.exact || p.wildcard) {
                    continue;
                }
                let (Some(d), Some(id)) = (
                    self.drivers.get(di),
                    self.drivers.get(di).and_then(|d| d.hardware_ids.get(ii)),
                ) else {
                    continue;
                };
                best.insert(
                    di,
                    DriverMatch {
                        file: d.file.clone(),
                        class: d.class.clone(),
                        kind: d.kind,
                        provider: d.provider.clone(),
                        version: d.driver_ver.as_ref().and_then(|v| v.version.clone()),
                        matched_id: id.clone(),
                        rank,
                        exact: !p.wildcard,
                    },
                );
            }
        }
        let mut out: Vec<DriverMatch> = best.into_values().collect();
        out.sort_by(|a, b| (!a.exact, a.rank, &a.file).cmp(&(!b.exact, b.rank, &b.file)));
        out
    }
}

/// Checks every device against the drivers.
pub fn check_devices(devices: &[Device], drivers: &[DriverInfo]) -> CoverageReport {
    let index = DriverIndex::new(drivers);
    CoverageReport {
        devices: devices
            .iter()
            .map(|d| DeviceCoverage {
                device: d.clone(),
                kind: d.kind,
                checked: d.is_checked(),
                drivers: index.matches(d),
            })
            .collect(),
    }
}

/// The checked devices no driver covers.
pub fn uncovered_devices(devices: &[Device], drivers: &[DriverInfo]) -> Vec<Device> {
    check_devices(devices, drivers)
        .uncovered()
        .into_iter()
        .map(|c| c.device.clone())
        .collect()
}

impl fmt::Display for DriverMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {}, {}) via {}{}",
            self.file,
            self.class.as_deref().unwrap_or("-"),
            self.provider.as_deref().unwrap_or("-"),
            self.version.as_deref().unwrap_or("-"),
            self.matched_id,
            if self.exact {
                ""
            } else {
                " (if SUBSYS/prog-if agree)"
            }
        )
    }
}

/// Width of the device column.
const ID_W: usize = 56;

impl fmt::Display for DeviceCoverage {
    /// One table row (and a continuation row per further driver).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match (self.checked, self.is_covered()) {
            (_, true) => "covered",
            (true, false) => "MISSING",
            (false, false) => "ignored",
        };
        write!(
            f,
            "{:<ID_W$} {:<8} {:<8}",
            self.device.id, self.kind, status
        )?;
        match self.drivers.split_first() {
            None => write!(f, " -"),
            Some((first, rest)) => {
                write!(f, " {first}")?;
                for m in rest {
                    write!(f, "\n{:<ID_W$} {:<8} {:<8} {m}", "", "", "")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for CoverageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<ID_W$} {:<8} {:<8} DRIVER (CLASS, PROVIDER, VERSION) VIA ID",
            "DEVICE", "KIND", "STATUS"
        )?;
        for d in &self.devices {
            writeln!(f, "{d}")?;
        }
        let missing = self.uncovered().len();
        let checked = self.devices.iter().filter(|d| d.checked).count();
        writeln!(
            f,
            "{} of {checked} checked devices covered{}",
            checked - missing,
            if missing > 0 {
                format!(", {missing} without a driver")
            } else {
                String::new()
            }
        )
    }
}
