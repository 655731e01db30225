//! `cargo xtask demo`: the product on a fresh machine. Builds the bundle,
//! writes the sample DP, and runs `capmedia capture` with every sink into
//! `./out/`, then `capmedia verify` on each output.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::{root, run};

/// The sinks the demo uses, with the output each writes.
const MEDIA: [(&str, &str, &[&str]); 4] = [
    ("iso-set", "capture.iso", &[]),
    ("usb-raw", "capture.img", &[]),
    ("vhd", "capture.vhd", &["--vhd-type", "dynamic"]),
    ("vhdx", "capture.vhdx", &[]),
];

pub fn demo() -> Result<()> {
    crate::deps::ensure_runtime()?;
    let dist = crate::dist::dist()?;
    let capmedia = dist.join("capmedia");
    let out = root().join("out");
    std::fs::create_dir_all(&out)?;
    let sample = capmedia_sample::write_sample_dp(&out.join("sample-dp"))?;
    let dp = sample.content_lib.display().to_string();
    println!("sample DP: {dp}");
    run(Command::new(&capmedia).args(["dp", "list", "--dp", &dp]))?;

    let available = String::from_utf8(
        Command::new(&capmedia)
            .args(["plugins", "--json"])
            .output()
            .context("running capmedia plugins")?
            .stdout,
    )?;
    // A fixed epoch so the demo's media are the same bytes on every machine.
    let epoch = std::env::var("SOURCE_DATE_EPOCH").unwrap_or_else(|_| "1700000000".into());
    let cache = out.join("cache");
    let mut built = Vec::new();
    for (sink, file, extra) in MEDIA {
        if !available.contains(&format!("\"name\": \"{sink}\"")) {
            println!("\n(sink {sink} is not built yet; skipping {file})");
            continue;
        }
        let target = out.join(file);
        println!("\n== capmedia capture --sink {sink} --out {}", rel(&target));
        run(Command::new(&capmedia)
            .args([
                "capture",
                "--dp",
                &dp,
                "--boot-image",
                capmedia_sample::X64_PACKAGE,
            ])
            .args(["--target-arch", "x64", "--sink", sink, "--out"])
            .arg(&target)
            .arg("--cache")
            .arg(&cache)
            .args(extra)
            .env("SOURCE_DATE_EPOCH", &epoch))?;
        built.push(target);
    }
    println!("\n== capmedia verify");
    run(Command::new(&capmedia).arg("verify").args(&built))?;
    println!(
        "\nThe media boot in qemu and print {:?} (e.g. `qemu-system-x86_64 -nographic -cdrom out/capture.iso`, \
or with `-bios /usr/share/ovmf/OVMF.fd`).",
        capmedia_sample::MARKER
    );
    Ok(())
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}
