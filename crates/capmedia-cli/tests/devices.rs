//! Device outputs that cannot go wrong (issue 14), on real loop devices:
//! every sink, first-party and third-party. Needs root (losetup, mount);
//! without it each test says so and does nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use capmedia_sample::X64_PACKAGE;
use common::{bin_dir, capmedia, sample, show};

/// A plugin folder holding only the well-behaved third-party `folder` sink.
/// The fixtures folder also holds the hanging plugin, whose probe costs every
/// run its full 10 s timeout, and these tests run a dozen captures.
fn third_party_sinks() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let all = &common::fixtures().0;
        let dir = all.with_file_name("only-folder-sink");
        fs::create_dir_all(&dir).unwrap();
        let lib = common::lib(all, "folder_sink");
        fs::copy(&lib, dir.join(lib.file_name().unwrap())).unwrap();
        dir
    })
}

/// A capture of the sample to `out` with `sink`, and extra arguments.
fn capture(sink: &str, out: &str, extra: &[&str], cache: &Path) -> Output {
    let lib = sample().content_lib.display().to_string();
    let plugins = bin_dir().display().to_string();
    let third = third_party_sinks().display().to_string();
    let mut args = vec![
        "capture",
        "--dp",
        &lib,
        "--boot-image",
        X64_PACKAGE,
        "--sink",
        sink,
        "--out",
        out,
        "--plugin-dir",
        &plugins,
        "--plugin-dir",
        &third,
        "--cache",
        cache.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    capmedia(&args)
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skip (with a message) when not root: loop devices need it.
macro_rules! need_root {
    () => {
        if !is_root() {
            eprintln!("skipped: this test attaches loop devices and needs root");
            return;
        }
    };
}

/// A loop device over a sparse image, detached (and unmounted) on drop.
struct Loop {
    dev: PathBuf,
    _dir: tempfile::TempDir,
    mounted: Option<PathBuf>,
}

impl Loop {
    fn new(bytes: u64, partitioned: bool) -> Loop {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img");
        fs::File::create(&img).unwrap().set_len(bytes).unwrap();
        // Recognisable bytes, to prove a refusal left them alone.
        fs::write(dir.path().join("pattern"), [0xA5u8; 4096]).unwrap();
        let st = Command::new("dd")
            .args([
                "if=/dev/urandom",
                "bs=1M",
                "count=2",
                "conv=notrunc",
                "status=none",
            ])
            .arg(format!("of={}", img.display()))
            .status()
            .unwrap();
        assert!(st.success());
        if partitioned {
            let mut c = Command::new("sfdisk")
                .args(["--quiet", img.to_str().unwrap()])
                .stdin(Stdio::piped())
                .spawn()
                .expect("sfdisk (fdisk)");
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(b"label: dos\n,,83\n")
                .unwrap();
            assert!(c.wait().unwrap().success());
        }
        let out = Command::new("losetup")
            .args(["-f", "--show", "-P"])
            .arg(&img)
            .output()
            .expect("losetup (mount)");
        assert!(out.status.success(), "losetup: {}", show(&out));
        let dev = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        // `losetup -P` does not always get the kernel to scan (seen on this
        // VM's kernel); partx asks it directly. Already there is fine.
        if partitioned {
            let _ = Command::new("partx").arg("-a").arg(&dev).output();
        }
        Loop {
            dev,
            _dir: dir,
            mounted: None,
        }
    }

    fn path(&self) -> &str {
        self.dev.to_str().unwrap()
    }

    /// Device number and BLAKE3 of the first 4 MiB: what a refusal must
    /// leave as it was.
    fn fingerprint(&self) -> (u64, String) {
        let m = fs::metadata(&self.dev).unwrap();
        assert!(
            m.file_type().is_block_device(),
            "{} is no longer a block device",
            self.path()
        );
        let mut f = fs::File::open(&self.dev).unwrap();
        let mut buf = vec![0u8; 4 << 20];
        use std::io::Read;
        f.read_exact(&mut buf).unwrap();
        (m.rdev(), blake3::hash(&buf).to_hex().to_string())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        if let Some(m) = self.mounted.take() {
            let _ = Command::new("umount").arg(&m).status();
        }
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

fn dev_listing() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir("/dev")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn devices_all_json_lists_a_loop_disk_with_its_size() {
    need_root!();
    let lo = Loop::new(48 << 20, false);
    let o = capmedia(&["devices", "--all", "--json"]);
    assert!(o.status.success(), "{}", show(&o));
    let v = common::json_doc(&o);
    let d = v["drives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == lo.path())
        .unwrap_or_else(|| panic!("{} not listed: {}", lo.path(), show(&o)));
    assert_eq!(d["size"], 48u64 << 20);
    assert_eq!(d["bus"], "virtual");
    assert_eq!(d["internal"], true);
    assert!(
        d["refusals"][0].as_str().unwrap().contains("not removable"),
        "{d}"
    );
    // Without --all, internal disks are hidden.
    let o = capmedia(&["devices", "--json"]);
    common::json_doc(&o);
    assert!(!String::from_utf8_lossy(&o.stdout).contains(lo.path()));
}

#[test]
fn file_sinks_refuse_a_loop_device_and_leave_it_alone() {
    need_root!();
    let lo = Loop::new(64 << 20, false);
    let before = lo.fingerprint();
    let cache = tempfile::tempdir().unwrap();
    // Also through a symlink, as /dev/disk/by-id links are.
    let links = tempfile::tempdir().unwrap();
    let link = links.path().join("usb-Fake_Stick-0:0");
    std::os::unix::fs::symlink(&lo.dev, &link).unwrap();
    for sink in ["iso-set", "vhd", "folder"] {
        for out in [lo.path(), link.to_str().unwrap()] {
            for extra in [&[][..], &["--yes", "--allow-fixed-disk"][..]] {
                let o = capture(sink, out, extra, cache.path());
                assert_eq!(o.status.code(), Some(1), "{sink} {out}: {}", show(&o));
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(
                    err.contains(&format!(
                        "is a block device, and sink {sink} writes files, not devices"
                    )),
                    "{sink} {out}: {err}"
                );
                assert_eq!(lo.fingerprint(), before, "{sink} changed {out}");
            }
        }
    }
    // Nothing was fetched either: the output is judged first.
    assert_eq!(fs::read_dir(cache.path()).unwrap().count(), 0);
}

#[test]
fn a_mistyped_dev_path_is_refused_and_nothing_appears_in_dev() {
    let before = dev_listing();
    let cache = tempfile::tempdir().unwrap();
    for sink in ["usb-raw", "iso-set", "vhd", "folder"] {
        let o = capture(sink, "/dev/sdzq", &["--yes"], cache.path());
        assert_eq!(o.status.code(), Some(1), "{sink}: {}", show(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr)
                .contains("/dev/sdzq: no such device; `capmedia devices` lists the drives"),
            "{sink}: {}",
            show(&o)
        );
        assert!(!Path::new("/dev/sdzq").exists());
    }
    let after = dev_listing();
    let new: Vec<&String> = after
        .iter()
        .filter(|n| !before.contains(n) && n.contains("sdzq"))
        .collect();
    assert!(new.is_empty(), "{new:?}");
}

#[test]
fn a_partition_and_a_disk_with_a_mounted_partition_are_refused() {
    need_root!();
    let mut lo = Loop::new(64 << 20, true);
    let part = PathBuf::from(format!("{}p1", lo.path()));
    assert!(part.exists(), "{} has no partition node", lo.path());
    let cache = tempfile::tempdir().unwrap();
    let o = capture(
        "usb-raw",
        part.to_str().unwrap(),
        &["--yes", "--allow-fixed-disk"],
        cache.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let name = lo.dev.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!(
            "give the whole disk, /dev/{name}, not /dev/{name}p1"
        )),
        "{}",
        show(&o)
    );
    // Mount the partition: the whole disk is refused, override or not.
    let st = Command::new("mkfs.ext2")
        .args(["-q", "-F"])
        .arg(&part)
        .status()
        .expect("mkfs.ext2 (e2fsprogs)");
    assert!(st.success());
    let mnt = tempfile::tempdir().unwrap();
    let st = Command::new("mount")
        .arg(&part)
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(st.success());
    lo.mounted = Some(mnt.path().to_path_buf());
    let before = lo.fingerprint();
    let o = capture(
        "usb-raw",
        lo.path(),
        &["--yes", "--allow-fixed-disk"],
        cache.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is mounted"),
        "{}",
        show(&o)
    );
    assert_eq!(lo.fingerprint(), before);
}

#[test]
fn usb_raw_writes_and_verifies_a_whole_loop_disk_only_with_the_override_and_yes() {
    need_root!();
    let lo = Loop::new(96 << 20, false);
    let before = lo.fingerprint();
    let cache = tempfile::tempdir().unwrap();
    // A loop disk is not removable: refused without the override.
    let o = capture("usb-raw", lo.path(), &["--yes"], cache.path());
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not removable"));
    // With it but without --yes and no terminal to ask: refused before any
    // fetch.
    let o = capture("usb-raw", lo.path(), &["--allow-fixed-disk"], cache.path());
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("confirm at the prompt or pass --yes"),
        "{}",
        show(&o)
    );
    assert_eq!(lo.fingerprint(), before);
    assert_eq!(fs::read_dir(cache.path()).unwrap().count(), 0);
    // Both: written and read back.
    let o = capture(
        "usb-raw",
        lo.path(),
        &["--allow-fixed-disk", "--yes", "--json"],
        cache.path(),
    );
    assert!(o.status.success(), "{}", show(&o));
    let v = common::json_doc(&o);
    assert_eq!(v["device"]["path"], lo.path());
    assert_ne!(lo.fingerprint(), before);
    let o = capmedia(&[
        "verify",
        lo.path(),
        "--plugin-dir",
        bin_dir().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", show(&o));
}
