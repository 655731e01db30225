//! `capmedia verify`: read any capmedia output back against its manifest.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use capmedia_sink::{MediaSink, NoProgress, VerifyReport, VerifyRequest, VolumeVerify};

/// Which sink reads this output back, from the bytes themselves.
pub(crate) fn detect(path: &Path) -> anyhow::Result<&'static str> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut head = vec![0u8; 0x8006];
    let n = read_up_to(&mut f, &mut head)?;
    head.truncate(n);
    if head.get(0x8001..0x8006) == Some(b"CD001") {
        return Ok("iso-set");
    }
    if head.starts_with(b"conectix") {
        return Ok("vhd");
    }
    // [MS-VHDX] 2.2.1: the file type identifier's signature.
    if head.starts_with(b"vhdxfile") {
        return Ok("vhdx");
    }
    let len = f.seek(SeekFrom::End(0))?;
    if len >= 512 {
        let mut tail = [0u8; 8];
        f.seek(SeekFrom::Start(len - 512))?;
        f.read_exact(&mut tail)?;
        if &tail == b"conectix" {
            return Ok("vhd");
        }
    }
    if head.get(510..512) == Some(&[0x55, 0xAA]) {
        return Ok("usb-raw");
    }
    bail!(
        "{}: not an ISO 9660 image, a VHD, a VHDX, or a disk with a partition table: not a capmedia output",
        path.display()
    )
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

pub fn run(outputs: &[PathBuf], plugin_dirs: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let reg = crate::plugins::registry(plugin_dirs);
    // Ctrl-C stops a read-back at the next chunk (exit 130).
    let stop = crate::ui::install_ctrlc();
    let interrupted = || {
        eprintln!("capmedia: interrupted: verification stopped");
        Ok(ExitCode::from(crate::capture::EXIT_INTERRUPTED))
    };
    let mut all = VerifyReport::default();
    for out in outputs {
        if out.is_dir() {
            // A media tree copied out, or a folder sink's output.
            let outcome = match capmedia_manifest::verify(
                &mut capmedia_manifest::DirReader(out.clone()),
                &NoProgress,
                stop.as_ref(),
            ) {
                Err(capmedia_manifest::ManifestError::Cancelled) => return interrupted(),
                r => r.with_context(|| format!("{}", out.display()))?,
            };
            all.volumes.push(VolumeVerify {
                output: out.clone(),
                outcome,
            });
            continue;
        }
        let name = detect(out)?;
        let sink = crate::plugins::sink(&reg, name).with_context(|| {
            format!(
                "{} looks like {name} media, but no {name} sink plugin was found",
                out.display()
            )
        })?;
        let r = match sink.verify(
            &VerifyRequest {
                outputs: vec![out.clone()],
                options: Default::default(),
            },
            &NoProgress,
            stop.as_ref(),
        ) {
            Err(e) if e.kind == capmedia_sink::ErrorKind::Cancelled => return interrupted(),
            r => r.with_context(|| format!("{}", out.display()))?,
        };
        all.volumes.extend(r.volumes);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        for v in &all.volumes {
            let m = &v.outcome.manifest;
            if v.outcome.is_ok() {
                println!(
                    "{}: OK: volume {} of {} of set {} ({:?}), {} files, {} bytes match capmedia.json",
                    v.output.display(),
                    m.volume,
                    m.volumes,
                    m.set_id,
                    m.label,
                    v.outcome.files_checked,
                    v.outcome.bytes_checked
                );
            } else {
                println!(
                    "{}: {} of {} files differ from capmedia.json:",
                    v.output.display(),
                    v.outcome.problems.len(),
                    v.outcome.files_checked
                );
                for p in &v.outcome.problems {
                    println!("  {p}");
                }
            }
        }
    }
    Ok(if all.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
