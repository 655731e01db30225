//! Shared test helpers: generated trees, and driving wimlib-imagex (Debian
//! package wimtools), the judge of what our reader returns.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use capmedia_wim::Wim;

pub fn require_wimlib() {
    let ok = Command::new("wimlib-imagex")
        .arg("--version")
        .output()
        .map(|o| o.status.success());
    assert!(
        matches!(ok, Ok(true)),
        "wimlib-imagex is needed for this test: apt-get install -y wimtools"
    );
}

pub fn wimlib(args: &[&str]) {
    let out = Command::new("wimlib-imagex")
        .args(args)
        .output()
        .expect("wimlib-imagex (apt-get install -y wimtools)");
    assert!(
        out.status.success(),
        "wimlib-imagex {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deterministic incompressible bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Compressible text-like bytes.
pub fn text(seed: u64, len: usize) -> Vec<u8> {
    let words = [
        "boot", "manager ", "Windows ", "PE\r\n", "capture ", "media\t", "0123 ",
    ];
    let mut v = Vec::with_capacity(len + 16);
    let mut i = seed as usize;
    while v.len() < len {
        v.extend_from_slice(words[i % words.len()].as_bytes());
        i = i.wrapping_mul(31).wrapping_add(7);
    }
    v.truncate(len);
    v
}

/// A tree with nested folders, empty files and directories, files around
/// and well above the 32 KiB chunk size and above 1 MiB, compressible and
/// incompressible data, a duplicate (one blob, two files), a hard link and
/// a symbolic link (a reparse point in the WIM). `variant` changes contents.
pub fn make_tree(root: &Path, variant: u64) {
    let w = |p: &str, data: &[u8]| {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    w("Windows/Boot/PCAT/bootmgr", &noise(1 + variant, 70_000));
    w(
        "Windows/Boot/EFI/bootmgfw.efi",
        &text(2 + variant, 1_500_000),
    );
    w("Windows/Boot/EFI/en-US/bootmgfw.efi.mui", &text(3, 32_768));
    w("Windows/Boot/Fonts/empty.ttf", b"");
    w("Windows/System32/big.bin", &noise(4 + variant, 2_300_000));
    w("Windows/System32/exact64k.bin", &text(5, 65_536));
    w("Windows/System32/one.bin", b"x");
    w(
        "Windows/System32/copy-of-bootmgr",
        &noise(1 + variant, 70_000),
    );
    w("sources/Ünïcode näme.txt", "grüße\n".as_bytes());
    for i in 0..20 {
        w(
            &format!("deep/a/b/c/d/e/f/g/file{i}.txt"),
            &text(100 + i, i as usize * 997),
        );
    }
    std::fs::create_dir_all(root.join("empty/dir")).unwrap();
    std::fs::hard_link(
        root.join("Windows/System32/one.bin"),
        root.join("Windows/System32/one-link.bin"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "../Boot/PCAT/bootmgr",
        root.join("Windows/System32/bm-link"),
    )
    .unwrap();
}

/// Every path under `root` ('/'-separated, relative): Some(bytes) for
/// files, None for directories; symbolic links are listed with their target.
pub fn disk_tree(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_owned();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.insert(rel, Some(format!("->{}", t.display()).into_bytes()));
            } else if ft.is_dir() {
                out.insert(rel, None);
                stack.push(p);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// The tree of image `index` as our reader returns it, in the same shape
/// as [`disk_tree`] (reparse points as "->?" since we do not decode them).
pub fn wim_tree(wim: &mut Wim<File>, index: u32) -> BTreeMap<String, Option<Vec<u8>>> {
    let image = wim.image(index).unwrap();
    let mut out = BTreeMap::new();
    for (path, e) in image.walk() {
        if e.is_dir {
            out.insert(path, None);
        } else if e.reparse_tag.is_some() {
            out.insert(path, Some(b"->?".to_vec()));
        } else {
            let mut data = Vec::new();
            let n = wim.extract_to(e, &mut data).unwrap();
            assert_eq!(n, e.size, "{path}: size");
            assert_eq!(data.len() as u64, e.size);
            out.insert(path, Some(data));
        }
    }
    out
}

/// Compares every file of every image with what `wimlib-imagex apply`
/// extracts. Returns the number of files compared.
pub fn agree_with_wimlib(parts: &[PathBuf], dir: &Path) -> usize {
    let mut wim = Wim::open_parts(parts.iter().map(|p| File::open(p).unwrap()).collect()).unwrap();
    let mut compared = 0;
    for index in 1..=wim.image_count() {
        let out = dir.join(format!("applied-{index}"));
        let first = parts[0].to_str().unwrap();
        let mut args = vec!["apply", first];
        let idx = index.to_string();
        args.push(&idx);
        args.push(out.to_str().unwrap());
        let glob;
        if parts.len() > 1 {
            let p = parts[0].with_extension("");
            glob = format!("--ref={}*.swm", p.display());
            args.push(&glob);
        }
        wimlib(&args);
        let theirs = disk_tree(&out);
        let mut ours = wim_tree(&mut wim, index);
        // Symbolic links: wimlib restores them; we report the reparse point.
        for (p, v) in &theirs {
            if v.as_deref().is_some_and(|b| b.starts_with(b"->")) {
                assert_eq!(
                    ours.get(p),
                    Some(&Some(b"->?".to_vec())),
                    "{p}: reparse point"
                );
                ours.insert(p.clone(), v.clone());
            }
        }
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "image {index}: paths"
        );
        for (p, v) in &theirs {
            assert!(ours.get(p) == Some(v), "image {index}: {p} differs");
            compared += usize::from(v.is_some());
        }
        std::fs::remove_dir_all(&out).unwrap();
    }
    compared
}
