//! `capmedia devices`: the drives a USB medium can go to.

use std::process::ExitCode;

use capmedia_device::{list_drives, SystemPaths};

pub fn run(all: bool, json: bool) -> anyhow::Result<ExitCode> {
    let drives = list_drives(&SystemPaths::default(), all)?;
    if json {
        crate::json::print(
            "devices",
            true,
            crate::json::DevicesBody {
                drives,
                firmware: crate::firmware::USB_RAW.into(),
            },
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", crate::firmware::USB_RAW);
    if drives.is_empty() {
        println!(
            "no {}drives found{}",
            if all { "" } else { "removable or USB " },
            if all {
                ""
            } else {
                " (--all lists internal disks too)"
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    for d in &drives {
        println!("{}", d.describe());
        for m in &d.mounts {
            println!("    mounted: {} on {}", m.device, m.mount_point);
        }
        if d.refusals.is_empty() {
            println!(
                "    can be written (capmedia capture --sink usb-raw --out {})",
                d.path.display()
            );
        }
        for r in &d.refusals {
            println!("    refused: {r}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
