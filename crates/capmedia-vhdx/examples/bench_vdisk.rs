//! Benchmark pairs for `cargo xtask bench vhd` and `vhdx`: a dynamic VHD or
//! VHDX of a disk written straight through [`VhdWriter`] / [`VhdxWriter`],
//! against writing the raw image and running `qemu-img convert -O vpc|vhdx
//! -o subformat=dynamic` (Debian: qemu-utils). One program for both formats
//! (the VHDX crate depends on the VHD one), so the two rows measure alike.
//!
//! `bench_vdisk plan FORMAT CONTENT_DIR PLAN.json`: build the plan of a
//! content folder (BLAKE3 of every file) once, untimed.
//! `bench_vdisk FORMAT PLAN.json|CONTENT_DIR OUT_DIR [DISK_MIB [direct|convert|both|direct-sync]]`
//! (default 1024, both): the timed runs. Given a folder, the plan is built
//! (and its content hashed) in the run, which costs both sides alike and is
//! neither writer's work; the bench rows pass the plan file. Both sides write
//! through the page cache and neither fsyncs (qemu-img does not by default),
//! so they are measured alike. Mode `direct-sync` (VHDX) writes as the vhdx
//! sink does instead: past the page cache (capmedia-directio;
//! `CAPMEDIA_DIRECT_IO=0` for the page cache), then fsync. Prints one line
//! per side with the seconds taken. Run under `/usr/bin/time -v` for peak
//! RSS.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use capmedia_content::{EntryRole, MediaPlan, PlanBuilder};
use capmedia_disk::{write_disk, PartitionScheme};
use capmedia_vhd::{unique_id_from_seed, VhdParams, VhdType, VhdWriter};
use capmedia_vhdx::{VhdxIds, VhdxParams, VhdxType, VhdxWriter};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "usage: bench_vdisk plan vhd|vhdx CONTENT_DIR PLAN.json\n       \
     bench_vdisk vhd|vhdx PLAN.json|CONTENT_DIR OUT_DIR [DISK_MIB [direct|convert|both|direct-sync]]";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Vhd,
    Vhdx,
}

impl Format {
    fn parse(s: &str) -> Res<Format> {
        match s {
            "vhd" => Ok(Format::Vhd),
            "vhdx" => Ok(Format::Vhdx),
            _ => Err(USAGE.into()),
        }
    }
    /// The file extension and qemu-img's name of the format.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Format::Vhd => ("vhd", "vpc"),
            Format::Vhdx => ("vhdx", "vhdx"),
        }
    }
    /// The disk's size for a wanted size, rounded as the format rounds it.
    fn size(self, mib: u64) -> Res<u64> {
        Ok(match self {
            Format::Vhd => capmedia_vhd::virtual_size_for(mib << 20)?,
            Format::Vhdx => capmedia_vhdx::virtual_size_for(mib << 20)?,
        })
    }
    /// VHDX is for Hyper-V generation 2 (UEFI): GPT, as its sink defaults.
    fn scheme(self) -> PartitionScheme {
        match self {
            Format::Vhd => PartitionScheme::Mbr,
            Format::Vhdx => PartitionScheme::Gpt,
        }
    }
}

fn build_plan(format: Format, content: &Path) -> Res<MediaPlan> {
    let ext = format.names().0;
    let mut b = PlanBuilder::new("Configuration Manager", ext, format!("x.{ext}"))
        .source_date_epoch(1_700_000_000);
    b.add_tree("", content, EntryRole::Template, "template")?;
    Ok(b.build()?)
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).ok_or(USAGE);
    if arg(0)? == "plan" {
        let plan = build_plan(Format::parse(arg(1)?)?, Path::new(arg(2)?))?;
        serde_json::to_writer(File::create(arg(3)?)?, &plan)?;
        return Ok(());
    }
    let format = Format::parse(arg(0)?)?;
    let source = Path::new(arg(1)?);
    let out = Path::new(arg(2)?);
    let mib: u64 = args.get(3).map_or(Ok(1024), |s| s.parse())?;
    let mode = args.get(4).map_or("both", String::as_str);
    let plan = if source.is_dir() {
        build_plan(format, source)?
    } else {
        serde_json::from_reader(std::io::BufReader::new(File::open(source)?))?
    };
    let size = format.size(mib)?;
    let open = |name: &str| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(out.join(name))
    };
    if mode == "direct-sync" {
        return direct(format, &plan, size, out, &open, true);
    }
    if mode != "convert" {
        direct(format, &plan, size, out, &open, false)?;
    }
    if mode != "direct" {
        convert(format, &plan, size, out, &open)?;
    }
    Ok(())
}

type Open<'a> = dyn Fn(&str) -> std::io::Result<File> + 'a;

fn disk<T: Read + Write + Seek>(format: Format, target: T, plan: &MediaPlan, size: u64) -> Res<()> {
    write_disk(
        target,
        size,
        plan,
        format.scheme(),
        &capmedia_content::NoProgress,
        &capmedia_content::NeverCancel,
    )?;
    Ok(())
}

fn direct(
    format: Format,
    plan: &MediaPlan,
    size: u64,
    out: &Path,
    open: &Open<'_>,
    synced: bool,
) -> Res<()> {
    let t = Instant::now();
    let (ext, _) = format.names();
    match format {
        Format::Vhd => {
            let params = VhdParams {
                vhd_type: VhdType::Dynamic,
                min_size: size,
                source_date_epoch: plan.source_date_epoch,
                unique_id: unique_id_from_seed(plan.set_id.as_bytes()),
            };
            let mut w = VhdWriter::create(open(&format!("direct.{ext}"))?, &params)?;
            disk(format, &mut w, plan, size)?;
            w.finish()?;
        }
        Format::Vhdx => {
            let params = VhdxParams {
                vhdx_type: VhdxType::Dynamic,
                min_size: size,
                ids: VhdxIds::from_seed(&plan.set_id),
            };
            if synced {
                // As the vhdx sink writes it: past the page cache
                // (`CAPMEDIA_DIRECT_IO=0`: through it), then fsync.
                let path = out.join(format!("direct.{ext}"));
                let file = capmedia_directio::DirectFile::create_new(&path)?;
                let mut w = VhdxWriter::create(file, &params)?;
                disk(format, &mut w, plan, size)?;
                w.finish()?.sync_all()?;
            } else {
                let mut w = VhdxWriter::create(open(&format!("direct.{ext}"))?, &params)?;
                disk(format, &mut w, plan, size)?;
                w.finish()?;
            }
        }
    }
    println!("direct dynamic {ext}: {:.2} s", t.elapsed().as_secs_f64());
    Ok(())
}

fn convert(format: Format, plan: &MediaPlan, size: u64, out: &Path, open: &Open<'_>) -> Res<()> {
    let t = Instant::now();
    let (ext, qemu_format) = format.names();
    let mut raw = open("disk.raw")?;
    raw.set_len(size)?;
    disk(format, &mut raw, plan, size)?;
    drop(raw);
    let raw_secs = t.elapsed().as_secs_f64();
    let status = Command::new("qemu-img")
        .args([
            "convert",
            "-f",
            "raw",
            "-O",
            qemu_format,
            "-o",
            "subformat=dynamic",
        ])
        .arg(out.join("disk.raw"))
        .arg(out.join(format!("converted.{ext}")))
        .status()
        .map_err(|e| format!("qemu-img ({e}): apt-get install -y qemu-utils"))?;
    if !status.success() {
        return Err("qemu-img convert failed".into());
    }
    println!(
        "raw + qemu-img convert: {:.2} s (raw image {raw_secs:.2} s)",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
