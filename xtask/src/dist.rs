//! `cargo xtask dist`: a relocatable bundle, `dist/capmedia` and the sink
//! plugins in `dist/plugins/`, which the binary finds beside itself.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::{cargo, root, run};

/// Workspace packages under `plugins/` (each a cdylib sink), by package name.
pub fn plugin_packages() -> Result<Vec<(String, String)>> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("cargo metadata")?;
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let plugins_dir = root().join("plugins");
    let mut found = Vec::new();
    for p in meta["packages"].as_array().into_iter().flatten() {
        let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap_or_default());
        if !manifest.starts_with(&plugins_dir) {
            continue;
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            let cdylib = t["crate_types"]
                .as_array()
                .is_some_and(|k| k.iter().any(|x| x == "cdylib"));
            if cdylib {
                found.push((
                    p["name"].as_str().unwrap_or_default().to_owned(),
                    t["name"].as_str().unwrap_or_default().replace('-', "_"),
                ));
            }
        }
    }
    found.sort();
    Ok(found)
}

pub fn dist() -> Result<PathBuf> {
    let plugins = plugin_packages()?;
    let mut build = cargo();
    build.args(["build", "--release", "--quiet", "-p", "capmedia-cli"]);
    for (pkg, _) in &plugins {
        build.args(["-p", pkg]);
    }
    run(&mut build)?;
    let release = root().join("target/release");
    let dist = root().join("dist");
    let pdir = dist.join("plugins");
    // Start clean so a removed plugin does not linger in the bundle.
    if pdir.exists() {
        std::fs::remove_dir_all(&pdir)?;
    }
    std::fs::create_dir_all(&pdir)?;
    let exe = format!("capmedia{}", std::env::consts::EXE_SUFFIX);
    copy(&release.join(&exe), &dist.join(&exe))?;
    for (_, lib) in &plugins {
        let file = format!(
            "{}{lib}.{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_EXTENSION
        );
        copy(&release.join(&file), &pdir.join(&file))?;
    }
    Ok(dist)
}

/// Copy via a temporary name, so a running `dist/capmedia` is never
/// truncated under itself.
fn copy(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    let tmp = to.with_extension("tmp-xtask");
    std::fs::copy(from, &tmp).with_context(|| format!("copying {}", from.display()))?;
    std::fs::rename(&tmp, to).with_context(|| format!("placing {}", to.display()))?;
    Ok(())
}
