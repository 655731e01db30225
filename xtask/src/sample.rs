//! `cargo xtask sample-wims`: regenerate the sample DP's boot images
//! (`crates/capmedia-sample/data/boot-{x64,x86}.wim`) from the trees
//! `capmedia-testboot` writes, with `wimlib-imagex capture --compress=lzx
//! --boot`. They are committed so the sample (and `cargo xtask demo`) needs
//! no tool; a test in capmedia-sample checks that they still hold exactly
//! what testboot writes.

use std::process::Command;

use anyhow::{Context, Result};
use capmedia_content::Arch;
use capmedia_testboot::{write_boot_image_tree, BootImageShape};

pub fn sample_wims() -> Result<()> {
    let data = crate::root().join("crates/capmedia-sample/data");
    for (arch, name) in [(Arch::X64, "boot-x64.wim"), (Arch::X86, "boot-x86.wim")] {
        let tmp = tempfile::tempdir()?;
        let tree = tmp.path().join("tree");
        write_boot_image_tree(
            &tree,
            arch,
            capmedia_sample::MARKER,
            BootImageShape::default(),
        )?;
        let out = data.join(name);
        let _ = std::fs::remove_file(&out);
        crate::run(
            Command::new("wimlib-imagex")
                .arg("capture")
                .arg(&tree)
                .arg(&out)
                .arg(format!("Microsoft Windows PE ({arch})"))
                .args(["--compress=lzx", "--boot", "--quiet"]),
        )
        .context("wimlib-imagex capture (Debian package wimtools)")?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
