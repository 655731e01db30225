//! Driver INF reading and hardware-id matching: tells whether a boot
//! image's drivers cover the network and mass-storage devices of the
//! reference computer.
//!
//! Its one job: from INF bytes ([`Inf`], [`DriverInfo`]) and a device list
//! ([`parse_device_list`], [`Device::from_id`]), decide which devices
//! Windows' Plug and Play would find a driver for ([`check_devices`]). It
//! reads no WIM: the caller hands it each INF's name and bytes.
//!
//! Written by hand because no crates.io crate reads INF files with
//! SetupAPI's rules (quoting, `\` continuations, `%strkey%` substitution
//! from localized `[Strings]`, TargetOSVersion-decorated Models sections)
//! or knows the hardware and compatible ids Windows derives for a PCI or
//! USB device; generic INI crates get each of those wrong. Text decoding
//! (UTF-16, Windows-1252) is `encoding_rs`'s.
//!
//! ```
//! use capmedia_content::Arch;
//! use capmedia_inf::{check_devices, parse_device_list, DriverInfo, Target};
//!
//! let inf = b"[Version]\nClass=Net\nProvider=%P%\nDriverVer=01/02/2024,1.2.3.4\n\
//!     [Manufacturer]\n%P%=Models,NTamd64\n\
//!     [Models.NTamd64]\n%D%=Install,PCI\\VEN_8086&DEV_100E\n\
//!     [Strings]\nP=\"Intel\"\nD=\"NIC\"\n";
//! let drivers = vec![DriverInfo::from_bytes("e1000.inf", inf, &Target::new(Arch::X64)).unwrap()];
//! let list = parse_device_list(
//!     b"00:03.0 Ethernet controller [0200]: Intel Corporation 82540EM [8086:100e] (rev 03)\n",
//! )
//! .unwrap();
//! let report = check_devices(&list.devices, &drivers);
//! assert!(report.is_complete());
//! assert_eq!(report.devices[0].drivers[0].matched_id, "PCI\\VEN_8086&DEV_100E");
//! ```

pub mod coverage;
pub mod device;
pub mod driver;
pub mod inf;
pub mod text;

pub use coverage::{
    check_devices, uncovered_devices, CoverageReport, DeviceCoverage, DriverIndex, DriverMatch,
};
pub use device::{
    parse_device_list, parse_device_list_with, ClassCode, Device, DeviceKind, DeviceList,
    DeviceListError, DeviceListFormat, DeviceListLimits, Pattern,
};
pub use driver::{
    classify, select_models_section, DriverInfo, DriverKind, DriverTable, DriverVer, ModelsSection,
    OsVersion, Target,
};
pub use inf::{Inf, InfError, InfLimits, Line, ParseOptions, Section};
pub use text::TextEncoding;
