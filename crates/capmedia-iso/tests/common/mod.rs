#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use capmedia_content::{BootFile, BootSpec, Capacity, EntryRole, MediaPlan, PlanBuilder};

/// Run an external tool; fail (never skip) naming the Debian package when
/// it is missing.
pub fn tool(name: &str, package: &str, args: &[&str]) -> std::process::Output {
    match Command::new(name).args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("{name} is missing: install the Debian package `{package}`")
        }
        Err(e) => panic!("running {name}: {e}"),
    }
}

pub fn tool_ok(name: &str, package: &str, args: &[&str]) -> String {
    let o = tool(name, package, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{name} {args:?} failed:\n{text}");
    text
}

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// A Windows-PE-like media folder with fake boot files: `bootmgr`,
/// `boot/bcd`, `efi/boot/bootx64.efi`, `sources/boot.wim`, plus
/// `etfsboot.com` (not in the tree) for BIOS.
pub struct Src {
    pub dir: PathBuf,
    pub etfsboot: PathBuf,
}

pub fn media_src(root: &Path, wim_size: usize) -> Src {
    let media = root.join("media");
    write(&media.join("bootmgr"), &bytes(1, 400_000));
    write(&media.join("bootmgr.efi"), &bytes(2, 1_000_000));
    write(&media.join("boot/bcd"), &bytes(3, 16_384));
    write(&media.join("boot/boot.sdi"), &bytes(4, 3_170_304));
    write(&media.join("efi/boot/bootx64.efi"), &bytes(5, 1_500_000));
    write(&media.join("efi/microsoft/boot/bcd"), &bytes(6, 16_384));
    write(
        &media.join("efi/microsoft/boot/fonts/A Very Long Font File Name For Joliet.ttf"),
        &bytes(7, 5000),
    );
    write(&root.join("wim/boot.PS100001.wim"), &bytes(8, wim_size));
    let etfsboot = root.join("fw/etfsboot.com");
    write(&etfsboot, &bytes(9, 4096));
    Src {
        dir: media,
        etfsboot,
    }
}

pub fn builder(src: &Src, out: &Path, cap: Capacity, with_bios: bool) -> PlanBuilder {
    let mut b = PlanBuilder::new("Configuration Manager", "iso-set", out)
        .capacity(cap)
        .source_date_epoch(1_700_000_000);
    if with_bios {
        b = b.boot(BootSpec {
            bios: Some(BootFile {
                source: src.etfsboot.clone(),
                size: 4096,
                load_sectors: None,
            }),
            uefi: None,
        });
    }
    b.add_tree("", &src.dir, EntryRole::Boot, "boot").unwrap();
    let wim = src.dir.parent().unwrap().join("wim/boot.PS100001.wim");
    b.add_file("sources/boot.wim", &wim, EntryRole::BootImage, "boot")
        .unwrap();
    b.add_bytes(
        "MediaLabel.txt",
        b"label=Configuration Manager".to_vec(),
        EntryRole::Generated,
        "boot",
    )
    .unwrap();
    b
}

/// Add `n` package groups of `files` files of `size` bytes each.
pub fn add_packages(b: &mut PlanBuilder, root: &Path, groups: usize, files: usize, size: usize) {
    for g in 0..groups {
        let id = format!("PS10{g:04}");
        for f in 0..files {
            let p = root.join(format!("pkg/{id}/file{f}.bin"));
            write(&p, &bytes((g * 100 + f) as u64 + 1000, size));
            b.add_file(
                &format!("SMS/PKG/{id}/file{f}.bin"),
                &p,
                EntryRole::Package,
                &id,
            )
            .unwrap();
        }
    }
}

pub fn plan(b: PlanBuilder) -> MediaPlan {
    b.build().unwrap()
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_owned());
            }
        }
    }
    out.sort();
    out
}

/// Extract an ISO with osirrox into a fresh folder.
pub fn extract(iso: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    tool_ok(
        "osirrox",
        "xorriso",
        &[
            "-indev",
            iso.to_str().unwrap(),
            "-extract",
            "/",
            into.to_str().unwrap(),
        ],
    );
    // osirrox keeps the read-only modes of the medium.
    tool_ok("chmod", "coreutils", &["-R", "u+w", into.to_str().unwrap()]);
}

/// Files in `dir` whose name contains `mark`.
pub fn names_with(dir: &Path, mark: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(mark))
        .collect();
    v.sort();
    v
}
