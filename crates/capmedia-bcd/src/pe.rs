//! The Windows PE RAM-disk store.
//!
//! What the BCD stores of Windows Setup / Windows PE media hold (compared
//! element by element with the `boot/BCD` and `EFI/Microsoft/Boot/BCD` of a
//! Windows 10 setup medium): a boot manager whose default is one Windows
//! boot loader that boots `\sources\boot.wim` in a RAM disk, the RAM
//! disk's options (`\boot\boot.sdi` on the boot device), and the inherited
//! settings objects (global, debugger, EMS, boot loader, hypervisor). The
//! UEFI loader also has `isolatedcontext` (Windows 8 and later UEFI loaders
//! need it). The loader is `{7619dcc9-fafe-11d9-b411-000476eba25f}`, the
//! fixed identifier those media use for it, so every medium's store is the
//! same for the same firmware and label.
//!
//! Differences from those media, on purpose: the RAM disk options are the
//! documented `{ramdiskoptions}` object (`bcdedit`'s way for Windows PE RAM
//! disks) instead of setup's private `{7619dcc8-...}`; the memory tester
//! (`{memdiag}`, `toolsdisplayorder`) is left out because capmedia's media
//! carry no memtest; insider `flightsigning` is not set.

use crate::device::DeviceValue;
use crate::store::{ElementValue, Object, Store};
use crate::{well_known as w, BcdError, Guid};

/// Which boot manager reads the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Firmware {
    /// `/boot/bcd`, read by `bootmgr`; the loader is `winload.exe`.
    Bios,
    /// `/efi/microsoft/boot/bcd`, read by `bootmgfw.efi`; the loader is `winload.efi`.
    Uefi,
}

/// Object types (`Description\Type`).
pub mod object_types {
    /// Application, firmware image, Windows boot manager.
    pub const BOOT_MANAGER: u32 = 0x1010_0002;
    /// Application, boot application image, Windows OS loader.
    pub const OS_LOADER: u32 = 0x1020_0003;
    /// Inheritable by any object (library settings).
    pub const INHERIT_LIBRARY: u32 = 0x2010_0000;
    /// Inheritable by OS loaders.
    pub const INHERIT_OS_LOADER: u32 = 0x2020_0003;
    /// Device options.
    pub const DEVICE: u32 = 0x3000_0000;
}

/// The element ids the Windows PE store uses.
pub mod elements {
    pub const DEVICE: u32 = 0x1100_0001;
    pub const PATH: u32 = 0x1200_0002;
    pub const DESCRIPTION: u32 = 0x1200_0004;
    pub const LOCALE: u32 = 0x1200_0005;
    pub const INHERIT: u32 = 0x1400_0006;
    pub const DEBUG_TYPE: u32 = 0x1500_0011;
    pub const DEBUG_PORT: u32 = 0x1500_0013;
    pub const BAUD_RATE: u32 = 0x1500_0014;
    pub const BOOT_EMS: u32 = 0x1600_0020;
    pub const ISOLATED_CONTEXT: u32 = 0x1600_0060;
    pub const OS_DEVICE: u32 = 0x2100_0001;
    pub const SYSTEM_ROOT: u32 = 0x2200_0002;
    pub const DEFAULT: u32 = 0x2300_0003;
    pub const DISPLAY_ORDER: u32 = 0x2400_0001;
    pub const TIMEOUT: u32 = 0x2500_0004;
    pub const DETECT_HAL: u32 = 0x2600_0010;
    pub const WINPE: u32 = 0x2600_0022;
    pub const EMS: u32 = 0x2600_00B0;
    pub const BOOT_MENU_POLICY: u32 = 0x2500_00C2;
    pub const HYPERVISOR_DEBUG_TYPE: u32 = 0x2500_00F3;
    pub const HYPERVISOR_DEBUG_PORT: u32 = 0x2500_00F4;
    pub const HYPERVISOR_BAUD_RATE: u32 = 0x2500_00F5;
    pub const RAMDISK_SDI_DEVICE: u32 = 0x3100_0003;
    pub const RAMDISK_SDI_PATH: u32 = 0x3200_0004;
}

/// Where the boot image lives on the medium (layout §4).
pub const BOOT_WIM: &str = "\\sources\\boot.wim";
/// Where the RAM disk's SDI image lives on the medium.
pub const BOOT_SDI: &str = "\\boot\\boot.sdi";
const LOCALE: &str = "en-US";

/// The store's objects, in the order the hive lists them (by GUID).
pub fn pe_ramdisk_objects(firmware: Firmware, label: &str) -> Store {
    use elements as e;
    use object_types as t;
    use ElementValue as V;
    let loader = w::WINDOWS_SETUP_BOOT_ENTRY;
    let s = |x: &str| V::String(x.to_string());
    let ramdisk = || V::Device(DeviceValue::ramdisk_on_boot(BOOT_WIM, w::RAMDISKOPTIONS));
    let winload = match firmware {
        Firmware::Bios => "\\windows\\system32\\boot\\winload.exe",
        Firmware::Uefi => "\\windows\\system32\\boot\\winload.efi",
    };
    let list = |l: &[Guid]| V::ObjectList(l.to_vec());

    let mut loader_obj = Object::new(loader, t::OS_LOADER)
        .with(e::DEVICE, ramdisk())
        .with(e::PATH, s(winload))
        .with(e::DESCRIPTION, s(label))
        .with(e::LOCALE, s(LOCALE))
        .with(e::INHERIT, list(&[w::BOOTLOADERSETTINGS]))
        .with(e::OS_DEVICE, ramdisk())
        .with(e::SYSTEM_ROOT, s("\\windows"))
        .with(e::BOOT_MENU_POLICY, V::Integer(1))
        .with(e::DETECT_HAL, V::Boolean(true))
        .with(e::WINPE, V::Boolean(true))
        .with(e::EMS, V::Boolean(false));
    if firmware == Firmware::Uefi {
        loader_obj = loader_obj.with(e::ISOLATED_CONTEXT, V::Boolean(true));
    }

    let mut objects = vec![
        Object::new(w::BOOTMGR, t::BOOT_MANAGER)
            .with(e::DESCRIPTION, s("Windows Boot Manager"))
            .with(e::LOCALE, s(LOCALE))
            .with(e::INHERIT, list(&[w::GLOBALSETTINGS]))
            .with(e::DEFAULT, V::Object(loader))
            .with(e::DISPLAY_ORDER, list(&[loader]))
            .with(e::TIMEOUT, V::Integer(30)),
        loader_obj,
        Object::new(w::RAMDISKOPTIONS, t::DEVICE)
            .with(e::DESCRIPTION, s("Ramdisk Options"))
            .with(e::RAMDISK_SDI_DEVICE, V::Device(DeviceValue::boot()))
            .with(e::RAMDISK_SDI_PATH, s(BOOT_SDI)),
        Object::new(w::BOOTLOADERSETTINGS, t::INHERIT_OS_LOADER).with(
            e::INHERIT,
            list(&[w::GLOBALSETTINGS, w::HYPERVISORSETTINGS]),
        ),
        Object::new(w::GLOBALSETTINGS, t::INHERIT_LIBRARY)
            .with(e::INHERIT, list(&[w::DBGSETTINGS, w::EMSSETTINGS])),
        Object::new(w::DBGSETTINGS, t::INHERIT_LIBRARY)
            .with(e::DEBUG_TYPE, V::Integer(0))
            .with(e::DEBUG_PORT, V::Integer(1))
            .with(e::BAUD_RATE, V::Integer(115_200)),
        Object::new(w::EMSSETTINGS, t::INHERIT_LIBRARY).with(e::BOOT_EMS, V::Boolean(false)),
        Object::new(w::HYPERVISORSETTINGS, t::INHERIT_OS_LOADER)
            .with(e::DESCRIPTION, s("Hypervisor Settings"))
            .with(e::HYPERVISOR_DEBUG_TYPE, V::Integer(0))
            .with(e::HYPERVISOR_DEBUG_PORT, V::Integer(1))
            .with(e::HYPERVISOR_BAUD_RATE, V::Integer(115_200)),
    ];
    // The hive lists objects by name; keep the model in the same order so a
    // written and re-read store compares equal.
    objects.sort_by_key(|o| o.id.to_string().to_uppercase());
    for o in &mut objects {
        o.elements.sort_by_key(|el| el.id);
    }
    Store { objects }
}

/// The Windows PE RAM-disk store as hive bytes; `label` is the boot entry's
/// description, `timestamp` the FILETIME stamped on every key.
pub fn pe_ramdisk_store(
    firmware: Firmware,
    label: &str,
    timestamp: u64,
) -> Result<Vec<u8>, BcdError> {
    pe_ramdisk_objects(firmware, label).to_hive(timestamp)
}
