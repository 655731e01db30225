//! `capmedia verify`: read any capmedia output back against its manifest.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use capmedia_sink::{MediaSink, NoProgress, VerifyRequest, VolumeVerify};

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

/// What one output's read-back found: its sink and volumes, or why it
/// could not be read at all.
type Checked = Result<(String, Vec<VolumeVerify>), anyhow::Error>;

/// Read one output back. `Err(None)` is Ctrl-C.
fn check_one(
    out: &Path,
    reg: &capmedia_sink::host::PluginRegistry,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<Checked, ()> {
    if out.is_dir() {
        // A media tree copied out, or a folder sink's output.
        return match capmedia_manifest::verify(
            &mut capmedia_manifest::DirReader(out.to_path_buf()),
            &NoProgress,
            stop,
        ) {
            Err(capmedia_manifest::ManifestError::Cancelled) => Err(()),
            Err(e) => Ok(Err(
                anyhow::Error::new(e).context(format!("{}", out.display()))
            )),
            Ok(outcome) => Ok(Ok((
                "folder".to_owned(),
                vec![VolumeVerify {
                    output: out.to_path_buf(),
                    outcome,
                }],
            ))),
        };
    }
    let name = match detect(out) {
        Ok(n) => n,
        Err(e) => return Ok(Err(e)),
    };
    let sink = match crate::plugins::sink(reg, name) {
        Ok(s) => s,
        Err(e) => {
            return Ok(Err(e.context(format!(
                "{} looks like {name} media, but no {name} sink plugin can be used",
                out.display()
            ))))
        }
    };
    match sink.verify(
        &VerifyRequest {
            outputs: vec![out.to_path_buf()],
            options: Default::default(),
        },
        &NoProgress,
        stop,
    ) {
        Err(e) if e.kind == capmedia_sink::ErrorKind::Cancelled => Err(()),
        Err(e) => Ok(Err(
            anyhow::Error::new(e).context(format!("{}", out.display()))
        )),
        Ok(r) => Ok(Ok((name.to_owned(), r.volumes))),
    }
}

/// Check every output and report each; an output that cannot be read is
/// reported as failed and the others are still checked. Exit 1 if any
/// fails, 130 on Ctrl-C.
pub fn run(outputs: &[PathBuf], plugin_dirs: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let reg = crate::plugins::registry(plugin_dirs);
    // Ctrl-C stops a read-back at the next chunk (exit 130).
    let stop = crate::ui::install_ctrlc();
    let mut rows = Vec::new();
    let mut all_ok = true;
    for out in outputs {
        let began = std::time::Instant::now();
        let Ok(checked) = check_one(out, &reg, stop.as_ref()) else {
            eprintln!("capmedia: interrupted: verification stopped");
            if json {
                let error = crate::json::ErrorInfo {
                    kind: "cancelled".into(),
                    message: "interrupted: verification stopped".into(),
                    dp: None,
                    package: None,
                    file: Some(out.clone()),
                    hint: None,
                };
                crate::json::print("verify", false, crate::json::Failure { error })?;
            }
            return Ok(ExitCode::from(crate::capture::EXIT_INTERRUPTED));
        };
        crate::ui::verbose(&format!(
            "{}: read back in {:.2}s",
            out.display(),
            began.elapsed().as_secs_f64()
        ));
        let row = match checked {
            Ok((sink, volumes)) => {
                let ok = volumes.iter().all(|v| v.outcome.is_ok());
                if !json {
                    print_volumes(&volumes);
                }
                crate::json::VerifiedOutput {
                    path: out.clone(),
                    ok,
                    sink: Some(sink),
                    volumes: volumes
                        .iter()
                        .map(crate::json::VolumeMirror::of)
                        .collect::<anyhow::Result<_>>()?,
                    error: None,
                }
            }
            Err(e) => {
                let error =
                    crate::json::ErrorInfo::from_error(&e).concerning(None, None, Some(out));
                if !json {
                    println!("{}: FAILED: {}", out.display(), error.message);
                }
                crate::json::VerifiedOutput {
                    path: out.clone(),
                    ok: false,
                    sink: None,
                    volumes: Vec::new(),
                    error: Some(error),
                }
            }
        };
        all_ok &= row.ok;
        rows.push(row);
    }
    let failed = rows.iter().filter(|r| !r.ok).count();
    if json {
        crate::json::print("verify", all_ok, crate::json::VerifyBody { outputs: rows })?;
    } else if outputs.len() > 1 {
        println!(
            "{} of {} outputs verified{}",
            outputs.len() - failed,
            outputs.len(),
            if failed > 0 { "; some FAILED" } else { "" }
        );
    }
    if failed > 0 {
        eprintln!(
            "capmedia: {failed} of {} outputs failed verification",
            outputs.len()
        );
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_volumes(volumes: &[VolumeVerify]) {
    for v in volumes {
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
                "{}: FAILED: {} of {} files differ from capmedia.json:",
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
