//! `cargo run -p capmedia-inf --example check -- ARCH DEVICE-LIST INF...`:
//! prints the drivers table and the coverage report (what the CLI will do
//! with INFs from a boot image), for trying device lists by hand.

use std::process::ExitCode;

use capmedia_content::Arch;
use capmedia_inf::{check_devices, parse_device_list, DriverInfo, DriverTable, Target};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(arch), Some(list), infs) =
        (args.first(), args.get(1), args.get(2..).unwrap_or_default())
    else {
        eprintln!("usage: check ARCH DEVICE-LIST INF...");
        return ExitCode::from(2);
    };
    let arch: Arch = match arch.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let target = Target::new(arch);
    let mut drivers = Vec::new();
    for path in infs {
        let name = std::path::Path::new(path)
            .file_name()
            .map_or(path.clone(), |n| n.to_string_lossy().into_owned());
        match std::fs::read(path).map(|b| DriverInfo::from_bytes(&name, &b, &target)) {
            Ok(Ok(d)) => drivers.push(d),
            Ok(Err(e)) => eprintln!("{path}: {e}"),
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
    print!("{}", DriverTable(&drivers));
    let devices = match std::fs::read(list).map(|b| parse_device_list(&b)) {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            eprintln!("{list}: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("{list}: {e}");
            return ExitCode::from(2);
        }
    };
    println!();
    let report = check_devices(&devices.devices, &drivers);
    print!("{report}");
    if report.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
