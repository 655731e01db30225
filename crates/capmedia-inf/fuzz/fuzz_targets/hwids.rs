//! Device-list bytes → parse (ids, pnputil, lspci) → match against a small
//! driver set → report table and JSON. Must never panic or blow up.
#![no_main]

use std::sync::OnceLock;

use capmedia_content::Arch;
use capmedia_inf::{check_devices, parse_device_list, DriverInfo, Target};
use libfuzzer_sys::fuzz_target;

fn drivers() -> &'static [DriverInfo] {
    static D: OnceLock<Vec<DriverInfo>> = OnceLock::new();
    D.get_or_init(|| {
        let inf = "[Version]\nClass=Net\n[Manufacturer]\nM=M,NTamd64\n[M.NTamd64]\n\
                   D=I,PCI\\VEN_8086&DEV_100E,PCI\\CC_010802,PCI\\VEN_8086&DEV_10D3&SUBSYS_00008086,\
                   PCI\\VEN_1AF4&CC_0200,USB\\VID_0BDA&PID_8153\n";
        DriverInfo::from_bytes("t.inf", inf.as_bytes(), &Target::new(Arch::X64))
            .into_iter()
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(list) = parse_device_list(data) else {
        return;
    };
    let report = check_devices(&list.devices, drivers());
    let _ = report.to_string();
    let _ = serde_json::to_string(&report);
    let _ = report.uncovered();
});
