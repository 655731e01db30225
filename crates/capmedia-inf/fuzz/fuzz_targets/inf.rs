//! INF bytes → parse → driver info for every architecture and two Windows
//! versions → table and JSON. Must never panic or blow up.
#![no_main]

use capmedia_content::Arch;
use capmedia_inf::{DriverInfo, DriverTable, Inf, OsVersion, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(inf) = Inf::parse(data) else {
        return;
    };
    let win7 = OsVersion {
        major: 6,
        minor: 1,
        build: 7601,
    };
    for arch in Arch::ALL {
        for os in [OsVersion::WIN11_24H2, win7] {
            let d = DriverInfo::from_inf("fuzz.inf", &inf, &Target::new(arch).with_os(os));
            let _ = DriverTable(std::slice::from_ref(&d)).to_string();
            let _ = serde_json::to_string(&d);
        }
    }
});
