//! Property tests: no input makes the readers panic, and quoted values
//! survive parsing exactly.

// Helpers outside #[test] fns unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use capmedia_content::Arch;
use capmedia_inf::{
    check_devices, parse_device_list, DriverInfo, DriverTable, Inf, OsVersion, Target,
};
use proptest::prelude::*;

const INF_TOKENS: &[&str] = &[
    "[",
    "]",
    "=",
    ",",
    ";",
    "\"",
    "\"\"",
    "\\",
    "%",
    "%%",
    "\r\n",
    "\n",
    " ",
    "\t",
    "Version",
    "Manufacturer",
    "Strings",
    "Strings.0409",
    "Class",
    "Net",
    "ClassGuid",
    "{4d36e972-e325-11ce-bfc1-08002be10318}",
    "Provider",
    "DriverVer",
    "07/19/2019",
    "1.2.3.4",
    "M",
    "M.NTamd64",
    "NTamd64",
    "NTx86",
    "NTarm64",
    "NT",
    ".10.0",
    "...17763",
    ".6.1",
    ".3",
    "%S%",
    "S",
    "PCI\\VEN_8086&DEV_100E",
    "PCI\\CC_010802",
    "é",
    "\u{FEFF}",
    "\0",
];

const LIST_TOKENS: &[&str] = &[
    "Instance ID:",
    "Hardware IDs:",
    "Compatible IDs:",
    "Class Name:",
    "Class GUID:",
    "Net",
    "SCSIAdapter",
    "Device Description:",
    "00:03.0 ",
    "0000:3b:00.1 ",
    "Ethernet controller [0200]: ",
    "[8086:100e]",
    "8086:100e",
    "0200: ",
    "(rev 03)",
    "(prog-if 02 [NVM])",
    "\tSubsystem: x [1af4:1100]",
    "Slot:\t",
    "Class:\t",
    "Vendor:\t",
    "Device:\t",
    "SVendor:\t",
    "ProgIf:\t",
    "[0108]",
    "PCI\\VEN_8086&DEV_100E&SUBSYS_11001AF4&REV_03",
    "\\3&267A616A&0&18",
    "PCI\\CC_0200",
    "&CC_020000",
    "USB\\VID_0BDA&PID_8153&REV_3100",
    "*PNP0A03",
    "\n",
    "\r\n",
    " ",
    "    ",
    "\\",
    "&",
    "#",
    ";",
    "[",
    "]",
    ":",
    "\"",
];

fn driver() -> DriverInfo {
    let inf = "[Version]\nClass=Net\n[Manufacturer]\nM=M,NTamd64\n[M.NTamd64]\n\
               D=I,PCI\\VEN_8086&DEV_100E,PCI\\CC_010802,PCI\\VEN_8086&DEV_100E&SUBSYS_11001AF4\n";
    DriverInfo::from_bytes("t.inf", inf.as_bytes(), &Target::new(Arch::X64)).unwrap()
}

fn exercise_inf(bytes: &[u8]) {
    if let Ok(inf) = Inf::parse(bytes) {
        for arch in Arch::ALL {
            for os in [
                OsVersion::WIN11_24H2,
                OsVersion {
                    major: 6,
                    minor: 1,
                    build: 0,
                },
            ] {
                let d = DriverInfo::from_inf("x.inf", &inf, &Target::new(arch).with_os(os));
                let _ = DriverTable(std::slice::from_ref(&d)).to_string();
                let _ = serde_json::to_string(&d).unwrap();
            }
        }
    }
}

fn exercise_list(bytes: &[u8]) {
    if let Ok(list) = parse_device_list(bytes) {
        let r = check_devices(&list.devices, &[driver()]);
        let _ = r.to_string();
        let _ = serde_json::to_string(&r).unwrap();
        for d in &list.devices {
            let _ = d.match_ids();
        }
    }
}

fn utf16le(s: &str) -> Vec<u8> {
    let mut v = vec![0xFF, 0xFE];
    for u in s.encode_utf16() {
        v.extend_from_slice(&u.to_le_bytes());
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn inf_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise_inf(&bytes);
    }

    #[test]
    fn inf_token_soup(tokens in proptest::collection::vec(0..INF_TOKENS.len(), 0..300), wide in any::<bool>()) {
        let text: String = tokens.iter().filter_map(|&i| INF_TOKENS.get(i).copied()).collect();
        if wide {
            exercise_inf(&utf16le(&text));
        } else {
            exercise_inf(text.as_bytes());
        }
    }

    #[test]
    fn list_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise_list(&bytes);
    }

    #[test]
    fn list_token_soup(tokens in proptest::collection::vec(0..LIST_TOKENS.len(), 0..300), wide in any::<bool>()) {
        let text: String = tokens.iter().filter_map(|&i| LIST_TOKENS.get(i).copied()).collect();
        if wide {
            exercise_list(&utf16le(&text));
        } else {
            exercise_list(text.as_bytes());
        }
    }

    /// Any printable value without quotes or percent signs, quoted, comes
    /// back exactly, whatever it holds (`;`, `,`, `=`, `\`, spaces).
    #[test]
    fn quoted_values_round_trip(
        key in "[A-Za-z][A-Za-z0-9_.]{0,20}",
        value in "[ -!#-$&-~]{0,60}",
    ) {
        let text = format!("[Sec]\r\n{key} = \"{value}\" ; comment\r\n");
        let inf = Inf::parse(&utf16le(&text)).unwrap();
        let line = &inf.section("sec").unwrap().lines[0];
        prop_assert_eq!(line.key.as_deref(), Some(key.as_str()));
        prop_assert_eq!(&line.fields, &vec![value.clone()]);
        // And through a %strkey%.
        let text = format!("[Sec]\r\nk = %{key}%\r\n[Strings]\r\n{key} = \"{value}\"\r\n");
        let inf = Inf::parse(text.as_bytes()).unwrap();
        prop_assert_eq!(inf.value("sec", "k"), Some(value));
    }
}

/// Inputs near the size limit that would take hours if any step were
/// quadratic in the line or section length. Each must finish with a
/// result (this is not a timing assertion: a regression shows as a hang).
#[test]
fn large_hostile_inputs_stay_linear() {
    // One 1 MiB line of backslashes (each a possible continuation).
    let mut s = b"[a]\nx=".to_vec();
    s.extend(std::iter::repeat_n(b'\\', (1 << 20) - 16));
    s.extend_from_slice(b"y\n");
    // Scanned whole, then refused: longer than any value Windows accepts.
    assert!(matches!(
        Inf::parse(&s),
        Err(capmedia_inf::InfError::Limit { line: 2, .. })
    ));
    // 900,000 Manufacturer entries naming one 20,000-id Models section.
    let mut inf = String::from("[Manufacturer]\n");
    inf.push_str(&"M=Big,NTamd64\n".repeat(900_000));
    inf.push_str("[Big.NTamd64]\n");
    for i in 0..20_000 {
        inf.push_str(&format!("D=I,PCI\\VEN_8086&DEV_{i:04X}\n"));
    }
    let d = DriverInfo::from_bytes("big.inf", inf.as_bytes(), &Target::new(Arch::X64)).unwrap();
    assert_eq!(d.hardware_ids.len(), 20_000);
    assert_eq!(d.models.len(), 1);
    // A line of 200,000 tokens each expanding to 1000 bytes: refused.
    let line = format!(
        "[a]\nx={}\n[Strings]\nS=\"{}\"\n",
        "%S%".repeat(200_000),
        "y".repeat(1000)
    );
    assert!(Inf::parse(line.as_bytes()).is_err());
    // A device list: one device with 1000 ids, then Device Manager blocks
    // of lines with 150 parts each.
    let mut list = String::from("Instance ID: PCI\\VEN_8086&DEV_100E\\1\nHardware IDs:\n");
    for i in 0..1000 {
        list.push_str(&format!("    PCI\\VEN_8086&DEV_100E&SUBSYS_{i:08X}\n"));
    }
    let l = parse_device_list(list.as_bytes()).unwrap();
    assert_eq!(l.devices[0].match_ids().len(), 1002);
    let parts: String = (0..150).map(|i| format!("&P_{i}")).collect();
    let line = format!("PCI\\VEN_8086{parts}\n");
    let l = parse_device_list(line.repeat(1000).as_bytes()).unwrap();
    assert_eq!(l.devices.len(), 1);
    assert_eq!(l.devices[0].hardware_ids.len(), 999);
    // Past the per-device id limit: refused, naming the line.
    assert_eq!(
        parse_device_list(line.repeat(10_000).as_bytes()),
        Err(capmedia_inf::DeviceListError::Limit {
            what: "ids for one device",
            limit: 1024,
            line: 1026
        })
    );
}
