//! Benchmark pair for `cargo xtask bench vhdx`: a dynamic VHDX of a disk
//! built straight through [`VhdxWriter`], against building the raw image and
//! running `qemu-img convert -O vhdx -o subformat=dynamic` (Debian: qemu-utils).
//!
//! `bench_vhdx CONTENT_DIR OUT_DIR [DISK_MIB [direct|convert|both]]`
//! (default 1024, both). Prints one line per side with the seconds taken;
//! neither side fsyncs (qemu-img does not by default). Run under
//! `/usr/bin/time -v` for peak RSS.

use std::fs::OpenOptions;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use capmedia_content::{EntryRole, MediaPlan, PlanBuilder};
use capmedia_disk::{write_disk, PartitionScheme};
use capmedia_vhdx::{virtual_size_for, VhdxIds, VhdxParams, VhdxType, VhdxWriter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(content), Some(out)) = (args.get(1), args.get(2)) else {
        return Err(
            "usage: bench_vhdx CONTENT_DIR OUT_DIR [DISK_MIB [direct|convert|both]]".into(),
        );
    };
    let mib: u64 = args.get(3).map_or(Ok(1024), |s| s.parse())?;
    let mode = args.get(4).map_or("both", String::as_str);
    let out = Path::new(out);
    let mut b = PlanBuilder::new("Configuration Manager", "vhdx", out.join("x.vhdx"))
        .source_date_epoch(1_700_000_000);
    b.add_tree("", Path::new(content), EntryRole::Template, "template")?;
    let plan = b.build()?;
    let size = virtual_size_for(mib << 20)?;
    let open = |name: &str| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(out.join(name))
    };

    if mode != "convert" {
        direct(&plan, size, &open)?;
    }
    if mode != "direct" {
        convert(&plan, size, out, &open)?;
    }
    Ok(())
}

type Open<'a> = dyn Fn(&str) -> std::io::Result<std::fs::File> + 'a;

fn direct(plan: &MediaPlan, size: u64, open: &Open<'_>) -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let params = VhdxParams {
        vhdx_type: VhdxType::Dynamic,
        min_size: size,
        ids: VhdxIds::from_seed(&plan.set_id),
    };
    let mut w = VhdxWriter::create(open("direct.vhdx")?, &params)?;
    write_disk(
        &mut w,
        size,
        plan,
        PartitionScheme::Gpt,
        &capmedia_content::NoProgress,
        &capmedia_content::NeverCancel,
    )?;
    w.finish()?;
    println!("direct dynamic VHDX: {:.2} s", t.elapsed().as_secs_f64());
    Ok(())
}

fn convert(
    plan: &MediaPlan,
    size: u64,
    out: &Path,
    open: &Open<'_>,
) -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let mut raw = open("disk.raw")?;
    raw.set_len(size)?;
    write_disk(
        &mut raw,
        size,
        plan,
        PartitionScheme::Gpt,
        &capmedia_content::NoProgress,
        &capmedia_content::NeverCancel,
    )?;
    drop(raw);
    let raw_secs = t.elapsed().as_secs_f64();
    let status = Command::new("qemu-img")
        .args([
            "convert",
            "-f",
            "raw",
            "-O",
            "vhdx",
            "-o",
            "subformat=dynamic",
        ])
        .arg(out.join("disk.raw"))
        .arg(out.join("converted.vhdx"))
        .status()
        .map_err(|e| format!("qemu-img ({e}): install the Debian package qemu-utils"))?;
    if !status.success() {
        return Err("qemu-img convert failed".into());
    }
    println!(
        "raw + qemu-img convert: {:.2} s (raw image {raw_secs:.2} s)",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
