//! Build a usb-raw image from a folder, for benchmarks and manual checks:
//!
//! ```text
//! cargo run --release -p capmedia-usb --example usb_image -- SRC OUT.img [SIZE] [--gpt] [--no-verify]
//! ```
//!
//! Without `--no-verify` it runs the whole sink (temporary file, sync,
//! read-back, rename); with it, only `capmedia_disk::write_disk` and a sync.
//! Prints the planning (hashing) time and the writing time separately.

use std::path::PathBuf;
use std::time::Instant;

use capmedia_content::{Capacity, EntryRole, PlanBuilder};
use capmedia_disk::{min_disk_size, write_disk, PartitionScheme};
use capmedia_sink::{MediaSink, NeverCancel, NoProgress};
use capmedia_usb::UsbRawSink;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags: Vec<&String> = args.iter().filter(|a| a.starts_with("--")).collect();
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let (Some(src), Some(out)) = (pos.first(), pos.get(1)) else {
        return Err("usage: usb_image SRC OUT.img [SIZE] [--gpt] [--no-verify]".into());
    };
    let gpt = flags.iter().any(|f| *f == "--gpt");
    let verify = !flags.iter().any(|f| *f == "--no-verify");
    let t = Instant::now();
    let mut b = PlanBuilder::new("Configuration Manager", "usb-raw", PathBuf::from(out));
    b.add_tree("", &PathBuf::from(src), EntryRole::Template, "template")?;
    let mut b = b.source_date_epoch(1_700_000_000);
    if let Some(size) = pos.get(2) {
        b = b.capacity(size.parse::<Capacity>()?);
    }
    if gpt {
        b = b.option("partition-scheme", "gpt");
    }
    let plan = b.build()?;
    eprintln!(
        "plan (hashing {} bytes): {:?}",
        plan.content_bytes(),
        t.elapsed()
    );
    let t = Instant::now();
    if verify {
        UsbRawSink::new().write(&plan, &NoProgress, &NeverCancel)?;
    } else {
        let size = plan
            .capacity
            .bytes()
            .unwrap_or_else(|| min_disk_size(&plan));
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(out)?;
        f.set_len(size)?;
        let scheme = if gpt {
            PartitionScheme::Gpt
        } else {
            PartitionScheme::Mbr
        };
        write_disk(
            &mut f,
            size,
            &plan,
            scheme,
            &capmedia_content::NoProgress,
            &capmedia_content::NeverCancel,
        )?;
        f.sync_all()?;
    }
    eprintln!(
        "write{}: {:?}",
        if verify { " + verify" } else { "" },
        t.elapsed()
    );
    Ok(())
}
