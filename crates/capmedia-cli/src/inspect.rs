//! `capmedia inspect`: what a WIM, a PE file or a BCD store holds, read from
//! the file itself; with `--bcd`, the BCD stores on a medium.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use capmedia_bcd::Store;
use capmedia_content::MediaPath;
use capmedia_driver::bootwim;
use capmedia_manifest::MediaReader;

/// The BCD stores a Windows PE medium boots through.
const MEDIUM_STORES: [&str; 2] = ["boot/bcd", "efi/microsoft/boot/bcd"];

/// A BCD store is a few dozen KiB; a bound keeps a hostile file from
/// taking memory.
const MAX_STORE_BYTES: u64 = 64 << 20;

pub fn run(file: &Path, bcd: bool, drivers: bool, json: bool) -> anyhow::Result<ExitCode> {
    if bcd {
        return medium_stores(file, json);
    }
    if drivers {
        return wim_drivers(file, json);
    }
    if file.is_dir() {
        return Err(a_medium(file, "a folder"));
    }
    let mut head = [0u8; 4];
    let n = std::fs::File::open(file)
        .and_then(|mut f| f.read(&mut head))
        .with_context(|| format!("cannot read {}", file.display()))?;
    if capmedia_regf::is_hive(&head[..n]) {
        let bytes = read_bounded(
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
            file,
        )?;
        let store = Store::from_hive(&bytes)
            .with_context(|| format!("{}: not a readable BCD store", file.display()))?;
        print_stores(&[(file.display().to_string(), store)], json)?;
        return Ok(ExitCode::SUCCESS);
    }
    let info = match capmedia_arch::inspect(file) {
        Ok(info) => info,
        Err(e) => {
            // A medium is a common thing to hand to `inspect`: say what it
            // is and which command reads it, rather than "not a WIM".
            if let Some(what) = medium_kind(file) {
                return Err(a_medium(file, what));
            }
            return Err(anyhow::Error::new(e).context(format!("cannot inspect {}", file.display())));
        }
    };
    if json {
        crate::json::print("inspect", true, &info)?;
    } else {
        print!("{info}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The error for a medium given to plain `inspect`, naming the commands
/// that do read media.
fn a_medium(file: &Path, what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is {what}, not a WIM, PE file or BCD store: `capmedia verify {}` checks a medium \
         against its manifest, `capmedia inspect --bcd {}` shows its BCD stores",
        file.display(),
        file.display(),
        file.display()
    )
}

/// What kind of medium `file` is, from its magic numbers: an ISO 9660
/// volume (`CD001` at 32 KiB + 1), a VHDX (`vhdxfile` at 0), a VHD
/// (`conectix` at 0 for a dynamic one's copy, or in the last 512 bytes), a
/// partitioned disk image (0x55AA at 510), or a block device.
fn medium_kind(file: &Path) -> Option<&'static str> {
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(file).ok()?;
    if meta.file_type().is_block_device() {
        return Some("a drive");
    }
    let mut f = std::fs::File::open(file).ok()?;
    let mut at = |offset: u64, len: usize| -> Option<Vec<u8>> {
        let mut buf = vec![0u8; len];
        f.seek(SeekFrom::Start(offset)).ok()?;
        f.read_exact(&mut buf).ok()?;
        Some(buf)
    };
    if at(0x8001, 5).is_some_and(|b| b == b"CD001") {
        return Some("an ISO 9660 volume");
    }
    if at(0, 8).is_some_and(|b| b == b"vhdxfile") {
        return Some("a VHDX virtual disk");
    }
    let len = meta.len();
    if at(0, 8).is_some_and(|b| b == b"conectix")
        || (len >= 512 && at(len - 512, 8).is_some_and(|b| b == b"conectix"))
    {
        return Some("a VHD virtual disk");
    }
    if at(510, 2).is_some_and(|b| b == [0x55, 0xAA]) {
        return Some("a disk image");
    }
    None
}

/// The boot image's drivers (every INF Windows PE installs from, read for
/// the image's architecture) and its Configuration Manager components.
fn wim_drivers(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let open =
        || std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()));
    let info = capmedia_arch::read_wim(&mut open()?)
        .with_context(|| format!("{}: not a readable WIM", file.display()))?;
    let image = info
        .boot_image()
        .or(info.images.first())
        .with_context(|| format!("{}: holds no image", file.display()))?
        .clone();
    let mut wim = capmedia_wim::Wim::open(open()?)
        .with_context(|| format!("{}: not a readable WIM", file.display()))?;
    let tree = wim
        .image(image.index)
        .with_context(|| format!("{}: image {}", file.display(), image.index))?;
    let (drivers, summary) = bootwim::drivers(&mut wim, &tree, image.arch)
        .with_context(|| format!("{}: image {}", file.display(), image.index))?;
    let sms = bootwim::sms_tree(&tree, image.arch);
    if json {
        let v = serde_json::json!({
            "file": file,
            "image": image.index,
            "arch": image.arch,
            "summary": summary,
            "drivers": drivers,
            "sms": sms,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: image {} ({}): {} network, {} mass-storage, {} other drivers",
        file.display(),
        image.index,
        image.arch,
        summary.net,
        summary.storage,
        summary.other
    );
    for d in &drivers {
        println!(
            "  {} [{}] class {}, provider {}, version {}",
            d.file,
            d.kind,
            d.class.as_deref().unwrap_or("-"),
            d.provider.as_deref().unwrap_or("-"),
            d.driver_ver
                .as_ref()
                .map(|v| format!(
                    "{} ({})",
                    v.version.as_deref().unwrap_or("-"),
                    v.date.as_deref().unwrap_or("no date")
                ))
                .unwrap_or_else(|| "-".into())
        );
        for id in &d.hardware_ids {
            println!("      {id}");
        }
    }
    for u in &summary.unreadable {
        println!("  unreadable: {u}");
    }
    println!(
        "Configuration Manager boot components (sms/bin): TsmBootstrap.exe {}, OsdCaptureCd.exe {}",
        if sms.tsm_bootstrap {
            "present"
        } else {
            "absent"
        },
        if sms.osd_capture { "present" } else { "absent" }
    );
    Ok(ExitCode::SUCCESS)
}

fn read_bounded(r: impl Read, what: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    r.take(MAX_STORE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", what.display()))?;
    if bytes.len() as u64 > MAX_STORE_BYTES {
        bail!(
            "{}: larger than {MAX_STORE_BYTES} bytes: not a BCD store",
            what.display()
        );
    }
    Ok(bytes)
}

fn print_stores(stores: &[(String, Store)], json: bool) -> anyhow::Result<()> {
    if json {
        let stores = stores
            .iter()
            .map(|(f, s)| crate::json::StoreEntry {
                file: f.clone(),
                store: s,
            })
            .collect();
        crate::json::print(
            "inspect",
            true,
            crate::json::StoresBody {
                kind: "bcd".into(),
                stores,
            },
        )?;
    } else {
        for (f, s) in stores {
            println!("{f}\n{}\n{s}", "=".repeat(f.chars().count()));
        }
    }
    Ok(())
}

/// The BCD stores on a medium: an ISO, a disk image or drive, a VHD, or a
/// folder holding a media tree.
fn medium_stores(medium: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let mut reader: Box<dyn MediaReader> = if medium.is_dir() {
        Box::new(capmedia_manifest::DirReader(medium.to_path_buf()))
    } else {
        let open = || {
            std::fs::File::open(medium).with_context(|| format!("cannot open {}", medium.display()))
        };
        match crate::verify::detect(medium)? {
            "iso-set" => Box::new(
                capmedia_iso::IsoReader::open(medium)
                    .with_context(|| format!("{}", medium.display()))?,
            ),
            "vhd" => Box::new(
                capmedia_disk::DiskReader::open(
                    capmedia_vhd::VhdReader::open(open()?)
                        .with_context(|| format!("{}", medium.display()))?,
                )
                .with_context(|| format!("{}", medium.display()))?,
            ),
            _ => Box::new(
                capmedia_disk::DiskReader::open(open()?)
                    .with_context(|| format!("{}", medium.display()))?,
            ),
        }
    };
    let mut stores = Vec::new();
    for p in MEDIUM_STORES {
        let path = MediaPath::new(p)?;
        let Some(r) = reader
            .open(&path)
            .with_context(|| format!("{}: reading /{p}", medium.display()))?
        else {
            continue;
        };
        let bytes = read_bounded(r, Path::new(p))?;
        let store = Store::from_hive(&bytes)
            .with_context(|| format!("{}: /{p} is not a readable BCD store", medium.display()))?;
        stores.push((format!("/{p}"), store));
    }
    if stores.is_empty() {
        bail!(
            "{}: no /boot/bcd or /efi/microsoft/boot/bcd on this medium",
            medium.display()
        );
    }
    print_stores(&stores, json)?;
    Ok(ExitCode::SUCCESS)
}
