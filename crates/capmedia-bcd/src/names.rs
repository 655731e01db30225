//! Element ids and the names `bcdedit` shows for them.
//!
//! Ids from Microsoft's `BcdLibraryElementTypes`, `BcdBootMgrElementTypes`,
//! `BcdOSLoaderElementTypes`, `BcdDeviceObjectElementTypes` and
//! `BcdMemDiagElementTypes` enumerations (BCD WMI provider documentation),
//! names as `bcdedit /enum` prints them (`bcdedit /? types ...` and Geoff
//! Chappell's "BCD Elements" notes). An id's class (bits 28..31) says whose
//! it is: 1 library (any object), 2 application (its meaning depends on the
//! application: boot manager, OS loader, resume loader, memory tester),
//! 3 device options. Its format (bits 24..27) says how the value is stored.

/// The value format of an element id (bits 24..27).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Device,
    String,
    Object,
    ObjectList,
    Integer,
    Boolean,
    IntegerList,
    Binary,
    Unknown(u32),
}

pub fn format_of(id: u32) -> Format {
    match (id >> 24) & 0xF {
        1 => Format::Device,
        2 => Format::String,
        3 => Format::Object,
        4 => Format::ObjectList,
        5 => Format::Integer,
        6 => Format::Boolean,
        7 => Format::IntegerList,
        8 => Format::Binary,
        n => Format::Unknown(n),
    }
}

/// Library elements (class 1): meaningful in every object.
pub const LIBRARY: &[(u32, &str)] = &[
    (0x11000001, "device"),
    (0x12000002, "path"),
    (0x12000004, "description"),
    (0x12000005, "locale"),
    (0x14000006, "inherit"),
    (0x15000007, "truncatememory"),
    (0x14000008, "recoverysequence"),
    (0x16000009, "recoveryenabled"),
    (0x1700000A, "badmemorylist"),
    (0x1600000B, "badmemoryaccess"),
    (0x1500000C, "firstmegabytepolicy"),
    (0x1500000D, "relocatephysical"),
    (0x1500000E, "avoidlowmemory"),
    (0x1600000F, "traditionalkseg"),
    (0x16000010, "bootdebug"),
    (0x15000011, "debugtype"),
    (0x15000012, "debugaddress"),
    (0x15000013, "debugport"),
    (0x15000014, "baudrate"),
    (0x15000015, "channel"),
    (0x12000016, "targetname"),
    (0x16000017, "noumex"),
    (0x15000018, "debugstart"),
    (0x12000019, "busparams"),
    (0x1500001A, "hostip"),
    (0x1500001B, "port"),
    (0x1600001C, "dhcp"),
    (0x1200001D, "key"),
    (0x1600001E, "vm"),
    (0x16000020, "bootems"),
    (0x15000022, "emsport"),
    (0x15000023, "emsbaudrate"),
    (0x12000030, "loadoptions"),
    (0x16000040, "advancedoptions"),
    (0x16000041, "optionsedit"),
    (0x15000042, "keyringaddress"),
    (0x11000043, "bootstatdevice"),
    (0x12000044, "bootstatfilepath"),
    (0x16000045, "preservebootstat"),
    (0x16000046, "graphicsmodedisabled"),
    (0x15000047, "configaccesspolicy"),
    (0x16000048, "nointegritychecks"),
    (0x16000049, "testsigning"),
    (0x1200004A, "fontpath"),
    (0x1500004B, "integrityservices"),
    (0x1500004C, "volumebandid"),
    (0x16000050, "extendedinput"),
    (0x15000051, "initialconsoleinput"),
    (0x15000052, "graphicsresolution"),
    (0x16000053, "restartonfailure"),
    (0x16000054, "highestmode"),
    (0x16000060, "isolatedcontext"),
    (0x15000065, "displaymessage"),
    (0x15000066, "displaymessageoverride"),
    (0x16000067, "nobootuxlogo"),
    (0x16000068, "nobootuxtext"),
    (0x16000069, "nobootuxprogress"),
    (0x1600006A, "nobootuxfade"),
    (0x1600006B, "bootuxreservepooldebug"),
    (0x1600006C, "bootuxdisabled"),
    (0x1500006D, "bootuxfadeframes"),
    (0x1600006E, "bootuxdumpstats"),
    (0x1600006F, "bootuxshowstats"),
    (0x16000071, "multibootsystem"),
    (0x16000072, "nokeyboard"),
    (0x15000073, "aliaswindowskey"),
    (0x16000074, "bootshutdowndisabled"),
    (0x15000075, "performancefrequency"),
    (0x15000076, "securebootrawpolicy"),
    (0x17000077, "allowedinmemorysettings"),
    (0x15000079, "bootuxtransitiontime"),
    (0x1600007A, "mobilegraphics"),
    (0x1600007B, "forcefipscrypto"),
    (0x1500007D, "booterrorux"),
    (0x1600007E, "flightsigning"),
    (0x1500007F, "measuredbootlogformat"),
    (0x15000080, "displayrotation"),
    (0x15000081, "logcontrol"),
    (0x16000082, "nofirmwaresync"),
    (0x11000084, "windowssyspart"),
    (0x16000087, "numlock"),
];

/// Boot manager elements (class 2 in `{bootmgr}` / `{fwbootmgr}`).
pub const BOOTMGR: &[(u32, &str)] = &[
    (0x24000001, "displayorder"),
    (0x24000002, "bootsequence"),
    (0x23000003, "default"),
    (0x25000004, "timeout"),
    (0x26000005, "resume"),
    (0x23000006, "resumeobject"),
    (0x24000007, "startupsequence"),
    (0x24000010, "toolsdisplayorder"),
    (0x26000020, "displaybootmenu"),
    (0x26000021, "noerrordisplay"),
    (0x21000022, "bcddevice"),
    (0x22000023, "bcdfilepath"),
    (0x26000024, "hormenabled"),
    (0x26000025, "hiberboot"),
    (0x22000026, "passwordoverride"),
    (0x22000027, "pinpassphraseoverride"),
    (0x26000028, "processcustomactionsfirst"),
    (0x27000030, "customactions"),
    (0x26000031, "persistbootsequence"),
    (0x26000032, "skipstartupsequence"),
];

/// OS loader elements (class 2 in Windows boot loaders and the settings
/// objects they inherit, `{bootloadersettings}`, `{hypervisorsettings}`).
pub const OSLOADER: &[(u32, &str)] = &[
    (0x21000001, "osdevice"),
    (0x22000002, "systemroot"),
    (0x23000003, "resumeobject"),
    (0x26000004, "stampdisks"),
    (0x26000010, "detecthal"),
    (0x22000011, "kernel"),
    (0x22000012, "hal"),
    (0x22000013, "dbgtransport"),
    (0x25000020, "nx"),
    (0x25000021, "pae"),
    (0x26000022, "winpe"),
    (0x26000024, "nocrashautoreboot"),
    (0x26000025, "lastknowngood"),
    (0x26000026, "oslnointegritychecks"),
    (0x26000027, "osltestsigning"),
    (0x26000030, "nolowmem"),
    (0x25000031, "removememory"),
    (0x25000032, "increaseuserva"),
    (0x25000033, "perfmem"),
    (0x26000040, "vga"),
    (0x26000041, "quietboot"),
    (0x26000042, "novesa"),
    (0x26000043, "novga"),
    (0x25000050, "clustermodeaddressing"),
    (0x26000051, "usephysicaldestination"),
    (0x25000052, "restrictapiccluster"),
    (0x22000053, "evstore"),
    (0x26000054, "uselegacyapicmode"),
    (0x25000055, "x2apicpolicy"),
    (0x26000060, "onecpu"),
    (0x25000061, "numproc"),
    (0x26000062, "maxproc"),
    (0x25000063, "configflags"),
    (0x26000064, "maxgroup"),
    (0x26000065, "groupaware"),
    (0x25000066, "groupsize"),
    (0x26000070, "usefirmwarepcisettings"),
    (0x25000071, "msi"),
    (0x25000072, "pciexpress"),
    (0x25000080, "safeboot"),
    (0x26000081, "safebootalternateshell"),
    (0x26000090, "bootlog"),
    (0x26000091, "sos"),
    (0x260000A0, "debug"),
    (0x260000A1, "halbreakpoint"),
    (0x260000A2, "useplatformclock"),
    (0x260000A3, "forcelegacyplatform"),
    (0x260000A4, "useplatformtick"),
    (0x260000A5, "disabledynamictick"),
    (0x250000A6, "tscsyncpolicy"),
    (0x260000B0, "ems"),
    (0x250000C0, "forcefailure"),
    (0x250000C1, "driverloadfailurepolicy"),
    (0x250000C2, "bootmenupolicy"),
    (0x260000C3, "onetimeadvancedoptions"),
    (0x260000C4, "onetimeoptionsedit"),
    (0x250000E0, "bootstatuspolicy"),
    (0x260000E1, "disableelamdrivers"),
    (0x250000F0, "hypervisorlaunchtype"),
    (0x220000F1, "hypervisorpath"),
    (0x260000F2, "hypervisordebug"),
    (0x250000F3, "hypervisordebugtype"),
    (0x250000F4, "hypervisordebugport"),
    (0x250000F5, "hypervisorbaudrate"),
    (0x250000F6, "hypervisorchannel"),
    (0x250000F7, "bootux"),
    (0x260000F8, "hypervisordisableslat"),
    (0x220000F9, "hypervisorbusparams"),
    (0x250000FA, "hypervisornumproc"),
    (0x250000FB, "hypervisorrootprocpernode"),
    (0x260000FC, "hypervisoruselargevtlb"),
    (0x250000FD, "hypervisorhostip"),
    (0x250000FE, "hypervisorhostport"),
    (0x250000FF, "hypervisordebugpages"),
    (0x25000100, "tpmbootentropy"),
    (0x22000110, "hypervisorusekey"),
    (0x22000112, "hypervisorproductskutype"),
    (0x25000113, "hypervisorrootproc"),
    (0x26000114, "hypervisordhcp"),
    (0x25000115, "hypervisoriommupolicy"),
    (0x26000116, "hypervisorusevapic"),
    (0x22000117, "hypervisorloadoptions"),
    (0x25000118, "hypervisormsrfilterpolicy"),
    (0x25000119, "hypervisormmionxpolicy"),
    (0x2500011A, "hypervisorschedulertype"),
    (0x25000120, "xsavepolicy"),
    (0x2500012B, "xsavedisable"),
    (0x25000142, "vsmlaunchtype"),
    (0x25000144, "hypervisorenforcedcodeintegrity"),
];

/// Resume loader elements (class 2 in resume applications and `{resumeloadersettings}`).
pub const RESUME: &[(u32, &str)] = &[
    (0x21000001, "filedevice"),
    (0x22000002, "filepath"),
    (0x26000003, "customsettings"),
    (0x26000004, "pae"),
    (0x21000005, "associatedosdevice"),
    (0x26000006, "debugoptionenabled"),
    (0x25000007, "bootux"),
    (0x25000008, "bootmenupolicy"),
    (0x26000024, "hormenabled"),
];

/// Memory tester elements (class 2 in `{memdiag}`).
pub const MEMDIAG: &[(u32, &str)] = &[
    (0x25000001, "passcount"),
    (0x25000002, "testmix"),
    (0x25000003, "failurecount"),
    (0x25000004, "testtofail"),
    (0x26000005, "cacheenable"),
];

/// Device options elements (class 3, e.g. in `{ramdiskoptions}`).
pub const DEVICE: &[(u32, &str)] = &[
    (0x35000001, "ramdiskimageoffset"),
    (0x35000002, "ramdisktftpclientport"),
    (0x31000003, "ramdisksdidevice"),
    (0x32000004, "ramdisksdipath"),
    (0x35000005, "ramdiskimagelength"),
    (0x36000006, "exportascd"),
    (0x35000007, "ramdisktftpblocksize"),
    (0x35000008, "ramdisktftpwindowsize"),
    (0x36000009, "ramdiskmcenabled"),
    (0x3600000A, "ramdiskmctftpfallback"),
    (0x3600000B, "ramdisktftpvarwindow"),
];

fn find(table: &[(u32, &'static str)], id: u32) -> Option<&'static str> {
    table.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// The application elements that apply inside an object of `object_type`.
fn application_table(object_type: u32) -> &'static [(u32, &'static str)] {
    match object_type {
        // Applications: the low 20 bits name the application.
        t if t >> 28 == 1 => match t & 0xF_FFFF {
            1 | 2 => BOOTMGR,
            3 => OSLOADER,
            4 => RESUME,
            5 => MEMDIAG,
            _ => &[],
        },
        // Settings inheritable by OS loaders / resume loaders.
        0x2020_0003 => OSLOADER,
        0x2020_0004 => RESUME,
        _ => &[],
    }
}

/// The `bcdedit` name of element `id` inside an object of `object_type`,
/// or `custom:xxxxxxxx` as `bcdedit` prints ids it has no name for.
pub fn element_name(object_type: u32, id: u32) -> String {
    let known = match id >> 28 {
        1 => find(LIBRARY, id),
        2 => find(application_table(object_type), id),
        3 => find(DEVICE, id),
        _ => None,
    };
    match known {
        Some(n) => n.to_string(),
        None => format!("custom:{id:08x}"),
    }
}

/// The section title `bcdedit /enum` prints for an object.
pub fn object_kind(object_type: u32, id: crate::Guid) -> &'static str {
    use crate::well_known as w;
    match object_type {
        0x1010_0001 => "Firmware Boot Manager",
        0x1010_0002 => "Windows Boot Manager",
        0x1020_0003 => "Windows Boot Loader",
        0x1020_0004 => "Resume from Hibernate",
        0x1020_0005 => "Windows Memory Tester",
        0x1030_0006 => "Windows Legacy OS Loader",
        0x1040_0008 => "Real-mode Boot Sector",
        t if t >> 28 == 1 => "Boot application",
        t if t >> 28 == 2 => match id {
            i if i == w::GLOBALSETTINGS => "Global Settings",
            i if i == w::DBGSETTINGS => "Debugger Settings",
            i if i == w::EMSSETTINGS => "EMS Settings",
            i if i == w::BADMEMORY => "RAM Defects",
            i if i == w::BOOTLOADERSETTINGS => "Boot Loader Settings",
            i if i == w::HYPERVISORSETTINGS => "Hypervisor Settings",
            i if i == w::RESUMELOADERSETTINGS => "Resume Loader Settings",
            i if i == w::KERNELDBGSETTINGS => "Kernel Debugger Settings",
            _ => "Inherited settings",
        },
        t if t >> 28 == 3 => "Device options",
        _ => "Unknown object",
    }
}

/// Integers `bcdedit` prints by name: `(element name, [(value, text)])`.
pub const ENUMS: &[(&str, &[(u64, &str)])] = &[
    (
        "debugtype",
        &[
            (0, "Serial"),
            (1, "1394"),
            (2, "USB"),
            (3, "NET"),
            (4, "Local"),
        ],
    ),
    (
        "debugstart",
        &[(0, "Active"), (1, "AutoEnable"), (2, "Disable")],
    ),
    (
        "nx",
        &[
            (0, "OptIn"),
            (1, "OptOut"),
            (2, "AlwaysOff"),
            (3, "AlwaysOn"),
        ],
    ),
    (
        "pae",
        &[(0, "Default"), (1, "ForceEnable"), (2, "ForceDisable")],
    ),
    ("bootmenupolicy", &[(0, "Legacy"), (1, "Standard")]),
    ("hypervisorlaunchtype", &[(0, "Off"), (1, "Auto")]),
    (
        "hypervisordebugtype",
        &[(0, "Serial"), (1, "1394"), (2, "NET")],
    ),
    (
        "bootstatuspolicy",
        &[
            (0, "DisplayAllFailures"),
            (1, "IgnoreAllFailures"),
            (2, "IgnoreShutdownFailures"),
            (3, "IgnoreBootFailures"),
            (4, "IgnoreCheckpointFailures"),
            (5, "DisplayShutdownFailures"),
            (6, "DisplayBootFailures"),
            (7, "DisplayCheckpointFailures"),
        ],
    ),
    (
        "safeboot",
        &[(0, "Minimal"), (1, "Network"), (2, "DsRepair")],
    ),
];

/// `value` as `bcdedit` prints the integer element `name`.
pub fn integer_text(name: &str, value: u64) -> String {
    ENUMS
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, vals)| vals.iter().find(|(v, _)| *v == value))
        .map(|(_, t)| t.to_string())
        .unwrap_or_else(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_agree_with_ids() {
        for table in [LIBRARY, BOOTMGR, OSLOADER, RESUME, MEMDIAG, DEVICE] {
            for (id, name) in table {
                assert!(
                    !matches!(format_of(*id), Format::Unknown(_)),
                    "{name} {id:08x}"
                );
            }
        }
    }

    #[test]
    fn names_depend_on_the_object() {
        assert_eq!(element_name(0x1010_0002, 0x23000003), "default");
        assert_eq!(element_name(0x1020_0003, 0x23000003), "resumeobject");
        assert_eq!(element_name(0x3000_0000, 0x32000004), "ramdisksdipath");
        assert_eq!(element_name(0x2010_0000, 0x250000c2), "custom:250000c2");
    }
}
