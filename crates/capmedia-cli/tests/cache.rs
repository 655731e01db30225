//! The content cache across captures (issue 18): a warm cache reads no
//! FileLib byte from the DP (counted in the test DP's access log), and a
//! cache entry damaged behind its stamp's back (bytes changed in place, the
//! mtime put back) is caught by the medium's read-back against the manifest
//! and reported as a damaged cache entry, which is removed; `--verify-cache`
//! re-hashes the entries and fetches a damaged one again.
//!
//! One pass (issue 18): a capture to a sink that reads streamed entries
//! (usb-raw, iso-set) fetches each DP file while it writes it, over HTTP too, fills
//! the cache on the way, and makes the same medium as a cached or a staged
//! capture; a DP file whose bytes do not match its SHA-256 stops it before
//! anything is committed, naming the file.
//!
//! Needs the sink plugins (`cargo build --workspace` first) and nginx
//! (Debian package `nginx-light`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use capmedia_content::{Arch, PackageId};
use capmedia_dp::{build_library, BuildOptions, PackageSource};
use capmedia_testdp::Nginx;

const EPOCH: &str = "1700000000";
const FILELIB: &str = "/SMS_DP_SMSPKG$/FileLib/";

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_capmedia"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Fail loudly (not skip) when the sink plugin was not built.
fn require_plugin() {
    let lib = bin_dir().join(format!(
        "{}capmedia_plugin_iso_set.{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_EXTENSION
    ));
    assert!(
        lib.is_file(),
        "{} is missing: run `cargo build --workspace` before these tests",
        lib.display()
    );
}

/// A boot image package carrying its own boot files (so `boot/boot.sdi`
/// is a DP file on the medium that nothing but the read-back reads) and
/// the sample x64 boot image.
fn library(dir: &Path) -> (PathBuf, PackageId, PathBuf) {
    let id: PackageId = "PS1000CC".parse().unwrap();
    let folder = dir.join("package");
    capmedia_testboot::write_media_folder(&folder, Arch::X64, capmedia_sample::MARKER).unwrap();
    fs::write(folder.join(id.boot_wim_name()), capmedia_sample::X64_WIM).unwrap();
    let lib = dir.join("SCCMContentLib");
    build_library(
        &lib,
        &[PackageSource {
            id: id.clone(),
            version: 1,
            folder: &folder,
        }],
        &BuildOptions::default(),
    )
    .unwrap();
    (lib, id, folder)
}

fn capture(dp: &str, id: &PackageId, out: &Path, cache: &Path, extra: &[&str]) -> Output {
    capture_with("iso-set", &[], dp, id, out, cache, extra)
}

fn capture_with(
    sink: &str,
    env: &[(&str, &str)],
    dp: &str,
    id: &PackageId,
    out: &Path,
    cache: &Path,
    extra: &[&str],
) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capmedia"))
        .args(["capture", "--dp", dp, "--boot-image", id.as_str()])
        .args(["--target-arch", "x64", "--sink", sink, "--out"])
        .arg(out)
        .arg("--cache")
        .arg(cache)
        .args(extra)
        .arg("--plugin-dir")
        .arg(bin_dir())
        .env_remove("CAPMEDIA_PLUGIN_PATH")
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env_remove("CAPMEDIA_STAGED")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The cache file holding exactly `bytes`.
fn cache_entry_of(cache: &Path, bytes: &[u8]) -> PathBuf {
    for d in fs::read_dir(cache).unwrap().flatten() {
        if d.file_name().len() != 2 {
            continue;
        }
        for f in fs::read_dir(d.path()).unwrap().flatten() {
            if fs::read(f.path()).unwrap() == bytes {
                return f.path();
            }
        }
    }
    panic!("no cache entry holds those bytes");
}

/// Change the last byte of `path` in place and put its mtime back.
fn damage_keeping_mtime(path: &Path) {
    let mtime = fs::metadata(path).unwrap().modified().unwrap();
    let len = fs::metadata(path).unwrap().len();
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, len - 1).unwrap();
    b[0] ^= 0x20;
    f.write_all_at(&b, len - 1).unwrap();
    f.set_modified(mtime).unwrap();
}

#[test]
fn a_warm_cache_reads_no_filelib_byte_and_a_damaged_entry_is_caught_by_the_read_back() {
    require_plugin();
    let dir = tempfile::tempdir().unwrap();
    let (lib, id, folder) = library(dir.path());
    let ng = Nginx::start_temp(&lib).unwrap_or_else(|e| panic!("{e}"));
    let url = ng.url();
    let cache = dir.path().join("cache");
    let out = |name: &str| dir.path().join(name);

    // Cold: the package comes from the DP.
    let o = capture(&url, &id, &out("a.iso"), &cache, &[]);
    assert!(o.status.success(), "{}", show(&o));
    let cold = ng.bytes_served(FILELIB).unwrap();
    assert!(cold as usize >= capmedia_sample::X64_WIM.len(), "{cold}");

    // Warm: not one FileLib byte (range reads of the WIM included), and
    // the same medium.
    let o = capture(&url, &id, &out("b.iso"), &cache, &[]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(
        ng.bytes_served(FILELIB).unwrap(),
        cold,
        "FileLib bytes read"
    );
    assert_eq!(
        fs::read(out("a.iso")).unwrap(),
        fs::read(out("b.iso")).unwrap()
    );

    // Damaged behind the stamp's back: the stamp still matches, so the
    // entry is used unread, and the read-back of the medium against its
    // manifest finds it, names the cache entry and removes it.
    let sdi = fs::read(folder.join("boot/boot.sdi")).unwrap();
    let entry = cache_entry_of(&cache, &sdi);
    damage_keeping_mtime(&entry);
    let o = capture(&url, &id, &out("c.iso"), &cache, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("read back")
            && err.contains("content cache was damaged")
            && err.contains("boot/boot.sdi")
            && err.contains(&entry.display().to_string()),
        "{err}"
    );
    assert!(
        !out("c.iso").exists(),
        "a medium that failed its read-back was kept"
    );
    assert!(!entry.exists(), "the damaged entry stays in the cache");
    assert_eq!(
        ng.bytes_served(FILELIB).unwrap(),
        cold,
        "FileLib bytes read"
    );

    // The next run fetches that file again, and only that file.
    let o = capture(&url, &id, &out("c.iso"), &cache, &[]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(
        ng.bytes_served(FILELIB).unwrap(),
        cold + sdi.len() as u64,
        "only boot.sdi fetched again"
    );
    assert_eq!(
        fs::read(out("a.iso")).unwrap(),
        fs::read(out("c.iso")).unwrap()
    );

    // --verify-cache re-hashes every entry: the damage is found before
    // anything is written, and the file fetched again (the boot image is
    // then validated by range reads on the DP too: nothing is trusted).
    damage_keeping_mtime(&entry);
    let before = ng.bytes_served(FILELIB).unwrap();
    let o = capture(&url, &id, &out("d.iso"), &cache, &["--verify-cache"]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(ng.bytes_served(FILELIB).unwrap() >= before + sdi.len() as u64);
    assert_eq!(cache_entry_of(&cache, &sdi), entry, "fetched again");
    assert_eq!(
        fs::read(out("a.iso")).unwrap(),
        fs::read(out("d.iso")).unwrap()
    );
}

/// The FileLib blob holding exactly `bytes`.
fn filelib_blob_of(lib: &Path, bytes: &[u8]) -> PathBuf {
    let mut todo = vec![lib.join("FileLib")];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if fs::metadata(&p).unwrap().len() == bytes.len() as u64
                && fs::read(&p).unwrap() == bytes
            {
                return p;
            }
        }
    }
    panic!("no FileLib blob holds those bytes");
}

/// Names under `dir`, recursively (empty if it does not exist).
fn names_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            out.push(e.path().display().to_string());
            if e.path().is_dir() {
                todo.push(e.path());
            }
        }
    }
    out
}

/// `sources/boot.wim` out of a usb-raw image, by mtools (the FAT32
/// partition starts at 1 MiB).
fn wim_on_image(img: &Path) -> Vec<u8> {
    let o = Command::new("mcopy")
        .arg("-n")
        .arg("-i")
        .arg(format!("{}@@1048576", img.display()))
        .args(["::sources/boot.wim", "-"])
        .output()
        .expect("mcopy (apt-get install -y mtools)");
    assert!(o.status.success(), "{}", show(&o));
    o.stdout
}

#[test]
fn usb_raw_streams_the_dp_into_the_medium_and_commits_nothing_unverified() {
    require_plugin();
    let dir = tempfile::tempdir().unwrap();
    let (lib, id, folder) = library(dir.path());
    let ng = Nginx::start_temp(&lib).unwrap_or_else(|e| panic!("{e}"));
    let url = ng.url();
    let out = |name: &str| dir.path().join(name);
    let package: u64 = names_under(&folder)
        .iter()
        .filter_map(|p| fs::metadata(p).ok().filter(|m| m.is_file()))
        .map(|m| m.len())
        .sum();

    // Cold, over HTTP: every FileLib byte once (plus the validation's
    // range reads of the WIM's header and XML), the cache filled on the
    // way, and no stream left behind.
    let cache = dir.path().join("cache");
    let o = capture_with("usb-raw", &[], &url, &id, &out("a.img"), &cache, &[]);
    assert!(o.status.success(), "{}", show(&o));
    let cold = ng.bytes_served(FILELIB).unwrap();
    assert!(
        cold >= package && cold < package + package / 2,
        "{cold} FileLib bytes served for a {package}-byte package"
    );
    assert_eq!(wim_on_image(&out("a.img")), capmedia_sample::X64_WIM);
    cache_entry_of(&cache, capmedia_sample::X64_WIM);
    assert!(
        names_under(&cache.join("tmp")).is_empty(),
        "{:?}",
        names_under(&cache.join("tmp"))
    );

    // Warm: nothing from the DP, and the same medium.
    let o = capture_with("usb-raw", &[], &url, &id, &out("b.img"), &cache, &[]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(
        ng.bytes_served(FILELIB).unwrap(),
        cold,
        "FileLib bytes read"
    );
    assert_eq!(
        fs::read(out("a.img")).unwrap(),
        fs::read(out("b.img")).unwrap()
    );

    // Entries without their stamps (an older capmedia's cache, or stamps
    // lost): hashed again where they are and sealed, not fetched again;
    // not one FileLib byte (the boot image's validation included).
    fs::remove_dir_all(cache.join("stamps")).unwrap();
    let o = capture_with("usb-raw", &[], &url, &id, &out("b.img"), &cache, &[]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(
        ng.bytes_served(FILELIB).unwrap(),
        cold,
        "FileLib bytes read for unstamped entries"
    );
    assert_eq!(
        fs::read(out("a.img")).unwrap(),
        fs::read(out("b.img")).unwrap()
    );
    assert!(
        names_under(&cache.join("stamps")).len() >= 2,
        "{:?}",
        names_under(&cache.join("stamps"))
    );

    // Stages one after another, from a path DP: the same medium again.
    let staged_cache = dir.path().join("staged-cache");
    let o = capture_with(
        "usb-raw",
        &[("CAPMEDIA_STAGED", "1")],
        &lib.display().to_string(),
        &id,
        &out("c.img"),
        &staged_cache,
        &[],
    );
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(
        fs::read(out("a.img")).unwrap(),
        fs::read(out("c.img")).unwrap()
    );

    // A FileLib blob whose bytes no longer match its SHA-256 (same size):
    // the capture over the existing a.img fails naming the file, a.img is
    // untouched, nothing is left beside it, and the cache keeps no entry
    // of the bad bytes and no stream.
    let sdi = fs::read(folder.join("boot/boot.sdi")).unwrap();
    let blob = filelib_blob_of(&lib, &sdi);
    damage_keeping_mtime(&blob);
    let before = fs::read(out("a.img")).unwrap();
    let listing = names_under(dir.path());
    for (dp, cache) in [
        (url.clone(), dir.path().join("cold-http")),
        (lib.display().to_string(), dir.path().join("cold-path")),
    ] {
        let o = capture_with("usb-raw", &[], &dp, &id, &out("a.img"), &cache, &[]);
        assert_eq!(o.status.code(), Some(1), "{}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("boot/boot.sdi")
                && err.contains("SHA-256")
                && err.contains("not committed"),
            "{err}"
        );
        assert_eq!(fs::read(out("a.img")).unwrap(), before, "a.img changed");
        let mut now = names_under(dir.path());
        let scratch = dir.path().join("cold-");
        now.retain(|n| !n.starts_with(&scratch.display().to_string()));
        assert_eq!(now, listing, "files left beside the output");
        assert!(
            names_under(&cache.join("tmp")).is_empty(),
            "{:?}",
            names_under(&cache.join("tmp"))
        );
        let mut bad = sdi.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x20;
        for f in names_under(&cache) {
            let p = Path::new(&f);
            assert!(
                !p.is_file() || fs::read(p).unwrap() != bad,
                "the bad bytes were cached as {f}"
            );
        }
    }
}

/// Whether the DP was fetched during the write stage (one pass): a fetch
/// progress line after the `write` stage line (non-terminal output prints
/// stages and progress as lines).
fn fetched_while_writing(stderr: &[u8]) -> bool {
    let text = String::from_utf8_lossy(stderr);
    let mut lines = text.lines().skip_while(|l| l.trim() != "capmedia: write");
    lines.next().is_some() && lines.any(|l| l.starts_with("capmedia: fetch "))
}

/// One pass to the iso-set sink (issue 18): a cold capture from a path DP
/// fetches while it writes (the fetch's progress comes in the write
/// stage; the staged reference's does not), makes the image xorriso
/// checks, whose files isoinfo lists and whose manifest holds every file's
/// real BLAKE3, reports the image's true BLAKE3, fills the cache on the
/// way, and gives the same bytes as the staged capture; a DP file whose
/// bytes do not match its SHA-256 fails the capture naming it, with the
/// old ISO untouched and nothing left beside it.
#[test]
fn iso_set_streams_the_dp_into_the_medium_and_commits_nothing_unverified() {
    require_plugin();
    let dir = tempfile::tempdir().unwrap();
    let (lib, id, folder) = library(dir.path());
    let dp = lib.display().to_string();
    let out = |name: &str| dir.path().join(name);

    let cache = dir.path().join("cache");
    let o = capture_with("iso-set", &[], &dp, &id, &out("a.iso"), &cache, &["--json"]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(fetched_while_writing(&o.stderr), "{}", show(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let iso = fs::read(out("a.iso")).unwrap();
    assert_eq!(
        report["outputs"][0]["blake3"].as_str(),
        Some(blake3::hash(&iso).to_hex().as_str()),
        "{report:#}"
    );
    cache_entry_of(&cache, capmedia_sample::X64_WIM);
    assert!(
        names_under(&cache.join("tmp")).is_empty(),
        "{:?}",
        names_under(&cache.join("tmp"))
    );
    let a = out("a.iso").display().to_string();
    let check = Command::new("xorriso")
        .args(["-indev", &a, "-check_media", "--"])
        .output()
        .expect("xorriso (apt-get install -y xorriso)");
    assert!(check.status.success(), "{}", show(&check));
    let listing = Command::new("isoinfo")
        .args(["-J", "-l", "-i", &a])
        .output()
        .expect("isoinfo (apt-get install -y genisoimage)");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("boot.wim") && listing.contains("capmedia.json"),
        "{listing}"
    );
    let manifest = Command::new("osirrox")
        .args(["-indev", &a, "-extract", "/capmedia.json"])
        .arg(out("manifest.json"))
        .output()
        .expect("osirrox (apt-get install -y xorriso)");
    assert!(manifest.status.success(), "{}", show(&manifest));
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(out("manifest.json")).unwrap()).unwrap();
    let wim = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "sources/boot.wim")
        .unwrap_or_else(|| panic!("{m:#}"));
    assert_eq!(
        wim["blake3"].as_str(),
        Some(blake3::hash(capmedia_sample::X64_WIM).to_hex().as_str())
    );
    fs::remove_file(out("manifest.json")).unwrap();

    // Stages one after another, with the same SOURCE_DATE_EPOCH: the same
    // bytes, and this time the fetch is over before the write.
    let o = capture_with(
        "iso-set",
        &[("CAPMEDIA_STAGED", "1")],
        &dp,
        &id,
        &out("c.iso"),
        &dir.path().join("staged-cache"),
        &[],
    );
    assert!(o.status.success(), "{}", show(&o));
    assert!(!fetched_while_writing(&o.stderr), "{}", show(&o));
    assert_eq!(
        blake3::hash(&fs::read(out("c.iso")).unwrap()),
        blake3::hash(&iso),
        "the staged and the streamed ISO differ"
    );
    fs::remove_file(out("c.iso")).unwrap();

    // A FileLib blob whose bytes no longer match its SHA-256.
    let sdi = fs::read(folder.join("boot/boot.sdi")).unwrap();
    let blob = filelib_blob_of(&lib, &sdi);
    damage_keeping_mtime(&blob);
    let listing = names_under(dir.path());
    let cold = dir.path().join("cold-path");
    let o = capture_with("iso-set", &[], &dp, &id, &out("a.iso"), &cold, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("boot/boot.sdi") && err.contains("SHA-256") && err.contains("not committed"),
        "{err}"
    );
    assert!(fs::read(out("a.iso")).unwrap() == iso, "a.iso changed");
    let mut now = names_under(dir.path());
    now.retain(|n| !n.starts_with(&cold.display().to_string()));
    assert_eq!(now, listing, "files left beside the output");
    assert!(names_under(&cold.join("tmp")).is_empty());
}
