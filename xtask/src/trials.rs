//! `cargo xtask trials`: SIGINT and SIGKILL at random moments of a rebuild,
//! per sink (issue 14's acceptance; not part of `cargo xtask test`, which
//! runs a few such trials on small content instead).
//!
//! For each sink: build an output of a 512 MiB boot image package, then
//! rebuild it with a new label again and again, each time sending a signal
//! at a random moment within the rebuild's duration. After each trial:
//! - the output is the old one, byte-identical, or the new one, and then
//!   `capmedia verify` passes (the signal came after the commit, or after
//!   the end);
//! - after SIGINT, no temporary is left (output folder, staging, cache);
//! - after SIGKILL, what is left is gone after the next run (checked after
//!   the next trial's run and after a final complete run).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::bench::rows::{boot_package_library, BOOT_PACKAGE};

#[derive(Debug, clap::Args)]
pub struct TrialArgs {
    /// SIGINT trials per sink.
    #[arg(long, default_value_t = 20)]
    sigint: usize,
    /// SIGKILL trials per sink.
    #[arg(long, default_value_t = 20)]
    sigkill: usize,
    /// Size of the boot image package.
    #[arg(long, default_value_t = 512)]
    size_mib: u64,
    /// The sinks to try.
    #[arg(long, value_delimiter = ',', default_value = "iso-set,usb-raw,vhd")]
    sinks: Vec<String>,
    /// Seed of the random moments (the same seed, the same moments).
    #[arg(long, default_value_t = 14)]
    seed: u64,
}

/// What one trial came to.
#[derive(Debug, Default)]
struct Tally {
    old_kept: usize,
    new_in_place: usize,
    leftovers_after_kill: usize,
}

/// xorshift64*: reproducible moments without a dependency.
struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn blake3_file(p: &Path) -> Result<String> {
    let mut h = blake3::Hasher::new();
    h.update_reader(std::fs::File::open(p).with_context(|| format!("{}", p.display()))?)?;
    Ok(h.finalize().to_hex().to_string())
}

/// Names in `dir` that a run leaves only while it runs (or when killed).
fn leftovers(dirs: &[&Path]) -> Vec<String> {
    let mut v = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.contains(".capmedia-tmp.") || n.ends_with(".capmedia-lock") {
                v.push(format!("{}/{n}", d.display()));
            }
        }
    }
    v
}

pub fn trials(a: &TrialArgs) -> Result<()> {
    let dist = crate::dist::dist()?;
    let capmedia = dist.join("capmedia");
    let base = crate::root()
        .join("target/bench/shared")
        .join(format!("{}mib", a.size_mib))
        .join("capture");
    let lib = boot_package_library(&base, a.size_mib)?;
    let work = crate::root().join("target/trials");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    let (staging, cache) = (work.join("staging"), work.join("cache"));
    std::fs::create_dir_all(&staging)?;
    let mut rng = Rng(a.seed.max(1));
    let mut report = Vec::new();
    for sink in &a.sinks {
        let ext = match sink.as_str() {
            "iso-set" => "iso",
            "usb-raw" => "img",
            "vhd" => "vhd",
            _ => "out",
        };
        let dir = work.join(sink);
        std::fs::create_dir_all(&dir)?;
        let out = dir.join(format!("capture.{ext}"));
        let cmd = |label: &str| {
            let mut c = Command::new(&capmedia);
            c.args([
                "capture",
                "--boot-image",
                BOOT_PACKAGE,
                "--target-arch",
                "x64",
            ])
            .arg("--dp")
            .arg(&lib)
            .args(["--sink", sink, "--label", label])
            .arg("--out")
            .arg(&out)
            .arg("--staging")
            .arg(&staging)
            .arg("--cache")
            .arg(&cache)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
            c
        };
        let t = Instant::now();
        crate::run(&mut cmd("first"))?;
        let full = t.elapsed();
        let mut current = blake3_file(&out)?;
        let mut tally = Tally::default();
        for i in 0..a.sigint + a.sigkill {
            let signal = if i < a.sigint {
                Signal::SIGINT
            } else {
                Signal::SIGKILL
            };
            let label = format!("trial {i}");
            let mut child = cmd(&label).spawn().context("starting capmedia")?;
            let wait = full.mul_f64(rng.unit() * 1.1);
            std::thread::sleep(wait);
            let pid = Pid::from_raw(i32::try_from(child.id())?);
            let _ = kill(pid, signal);
            let st = child.wait()?;
            let now = blake3_file(&out)?;
            if now == current {
                tally.old_kept += 1;
            } else {
                let v = Command::new(&capmedia)
                    .arg("verify")
                    .arg(&out)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()?;
                if !v.success() {
                    bail!("{sink} trial {i} ({signal} after {wait:?}): the output changed and does not verify");
                }
                tally.new_in_place += 1;
                current = now;
            }
            let left = leftovers(&[&dir, &staging]);
            match signal {
                Signal::SIGINT if !left.is_empty() => {
                    bail!("{sink} trial {i} (SIGINT after {wait:?}, {st}): left {left:?}")
                }
                Signal::SIGKILL if !left.is_empty() => {
                    // The next complete run must remove them.
                    tally.leftovers_after_kill += 1;
                    crate::run(&mut cmd(&format!("after trial {i}")))?;
                    let still = leftovers(&[&dir, &staging]);
                    if !still.is_empty() {
                        bail!("{sink} trial {i}: the next run left a killed run's {still:?}");
                    }
                    current = blake3_file(&out)?;
                }
                _ => {}
            }
            eprintln!("{sink} trial {i}: {signal} after {wait:.2?} → {st}");
        }
        // One complete run: every killed run's leftovers go.
        crate::run(&mut cmd("final"))?;
        let left = leftovers(&[&dir, &staging]);
        if !left.is_empty() {
            bail!("{sink}: a complete run left {left:?}");
        }
        report.push((sink.clone(), full, tally));
    }
    println!(
        "\n{:<8} {:>9} {:>16} {:>16} {:>22}",
        "sink", "full run", "old kept", "new in place", "killed runs' leftovers"
    );
    for (sink, full, t) in report {
        println!(
            "{sink:<8} {:>8.2}s {:>16} {:>16} {:>22}",
            full.as_secs_f64(),
            t.old_kept,
            t.new_in_place,
            format!("{} (all removed)", t.leftovers_after_kill)
        );
    }
    println!(
        "{} SIGINT + {} SIGKILL trials per sink: every old output byte-identical or every new one verified; no SIGINT left a temporary",
        a.sigint, a.sigkill
    );
    Ok(())
}
