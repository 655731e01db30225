//! `capmedia capture` end to end, as a user runs it: the real binary, the
//! real sink plugins (`cargo build --workspace` first), the bundled sample DP
//! read from a path and over HTTP from a real nginx (Debian package
//! `nginx-light`), outputs checked with `capmedia verify`, BLAKE3, and qemu
//! (Debian packages `qemu-system-x86`, `ovmf`).
//!
//! Issue 8's acceptance, one test (or a group of tests) per point:
//! end-to-end per sink from both kinds of DP; boot; the architecture rule;
//! refusals that leave nothing behind; SIGINT mid-write; `--dry-run`;
//! reproducible output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use capmedia_content::{Arch, PackageId};
use capmedia_dp::{build_library, BuildOptions, PackageSource};
use capmedia_sample::{SampleDp, MARKER, X64_PACKAGE, X86_PACKAGE};
use capmedia_testboot::{qemu_boot, write_media_folder, OVMF_PATH};
use capmedia_testdp::Nginx;

/// A fixed epoch, so outputs are comparable between runs.
const EPOCH: &str = "1700000000";

/// A bound for one qemu boot, not a speed assertion: OVMF under TCG on a
/// busy two-core box is slow.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// A bound for one capture run, so a hung run fails instead of hanging the
/// test suite. Not a speed assertion.
const RUN_BOUND: Duration = Duration::from_secs(900);

// ---------------------------------------------------------------- helpers

/// The folder holding `capmedia` and, after `cargo build --workspace`, the
/// sink plugins.
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_capmedia"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Fail loudly (not skip) when the sink plugins were not built.
fn require_plugins() {
    for name in ["iso_set", "usb_raw", "vhd"] {
        let lib = bin_dir().join(format!(
            "{}capmedia_plugin_{name}.{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_EXTENSION
        ));
        assert!(
            lib.is_file(),
            "{} is missing: run `cargo build --workspace` before these tests",
            lib.display()
        );
    }
}

/// The bundled sample DP, written once per test run under cargo's test
/// scratch folder (same bytes every time).
fn sample() -> &'static SampleDp {
    static SAMPLE: OnceLock<SampleDp> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        require_plugins();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capture-sample-dp");
        capmedia_sample::write_sample_dp(&dir).unwrap()
    })
}

fn sample_dp() -> String {
    sample().content_lib.display().to_string()
}

/// A `capmedia` command with the built plugins and a fixed epoch.
fn capmedia_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_capmedia"));
    c.args(args)
        .arg("--plugin-dir")
        .arg(bin_dir())
        .env_remove("CAPMEDIA_PLUGIN_PATH")
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    capmedia_cmd(args).output().expect("running capmedia")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn blake3_file(p: &Path) -> String {
    let mut h = blake3::Hasher::new();
    h.update_reader(fs::File::open(p).unwrap()).unwrap();
    h.finalize().to_hex().to_string()
}

/// Every entry (files and folders) under `dir`, relative, recursively.
fn tree(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            out.insert(p.strip_prefix(root).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// Regular files under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<String> {
    tree(dir)
        .into_iter()
        .filter(|r| dir.join(r).is_file())
        .collect()
}

/// The capture arguments shared by every run.
#[derive(Clone)]
struct Run<'a> {
    dp: &'a str,
    package: &'a str,
    sink: &'a str,
    out: &'a Path,
    cache: &'a Path,
    staging: &'a Path,
    extra: Vec<&'a str>,
}

impl Run<'_> {
    fn args(&self) -> Vec<String> {
        let mut v: Vec<String> = [
            "capture",
            "--dp",
            self.dp,
            "--boot-image",
            self.package,
            "--sink",
            self.sink,
            "--out",
            s(self.out),
            "--cache",
            s(self.cache),
            "--staging",
            s(self.staging),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(self.extra.iter().map(|s| s.to_string()));
        v
    }

    fn output(&self) -> Output {
        let args = self.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    }
}

/// A scratch area for one capture: output folder, cache and staging.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        for d in ["out", "cache", "staging"] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        Scratch { dir }
    }
    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }
    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
    fn staging(&self) -> PathBuf {
        self.dir.path().join("staging")
    }
}

/// Run a capture that must succeed with `--json`; check the report lists
/// exactly the files now in the output folder, each with its true size and
/// BLAKE3; then `capmedia verify` each one. Returns the outputs.
fn capture_ok(r: &Run<'_>) -> Vec<PathBuf> {
    let mut r2 = r.clone();
    r2.extra.push("--json");
    let o = r2.output();
    assert!(o.status.success(), "capture failed: {}", show(&o));
    let report = common::json_doc(&o);
    assert_eq!(report["sink"], r.sink, "{report:#}");
    assert_eq!(report["dry_run"], false, "{report:#}");
    assert_eq!(report["boot_image"]["package"], r.package, "{report:#}");
    let outputs = report["outputs"].as_array().expect("outputs array");
    assert!(!outputs.is_empty(), "{report:#}");
    let out_dir = r.out.parent().unwrap();
    let mut listed = BTreeSet::new();
    let mut paths = Vec::new();
    for o in outputs {
        let path = PathBuf::from(o["path"].as_str().expect("output path"));
        assert!(path.is_file(), "{} listed but missing", path.display());
        let b3 = o["blake3"].as_str().expect("output blake3");
        assert_eq!(b3, blake3_file(&path), "BLAKE3 of {}", path.display());
        assert_eq!(
            o["bytes"].as_u64().unwrap(),
            fs::metadata(&path).unwrap().len(),
            "size of {}",
            path.display()
        );
        listed.insert(path.strip_prefix(out_dir).unwrap().display().to_string());
        paths.push(path);
    }
    assert_eq!(paths[0], r.out, "first output is --out");
    // Nothing but the outputs: no temporaries left beside them.
    assert_eq!(
        tree(out_dir),
        listed,
        "output folder holds exactly the outputs"
    );
    assert!(
        tree(r.staging).is_empty(),
        "staging left: {:?}",
        tree(r.staging)
    );
    for p in &paths {
        let v = run(&["verify", s(p)]);
        assert!(v.status.success(), "verify {}: {}", p.display(), show(&v));
        assert!(text(&v.stdout).contains(": OK"), "{}", show(&v));
    }
    paths
}

/// The last stderr line of a refused run: one line, `capmedia: <reason>`.
/// Lines before it may only be the plain progress lines (and the warning
/// of a run without `--target-arch`).
fn refusal_line(o: &Output) -> String {
    assert!(!o.status.success(), "expected a refusal: {}", show(o));
    assert_ne!(o.status.code(), Some(130), "{}", show(o));
    let err = text(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    let last = *lines
        .last()
        .unwrap_or_else(|| panic!("no reason on stderr: {}", show(o)));
    assert!(last.starts_with("capmedia: "), "{}", show(o));
    // Stated once: no part of the reason repeats.
    let parts: Vec<&str> = last.split(": ").filter(|p| p.len() > 12).collect();
    for (i, p) in parts.iter().enumerate() {
        assert!(!parts[i + 1..].contains(p), "reason repeats {p:?}: {last}");
    }
    for l in &lines[..lines.len() - 1] {
        let stage = l.strip_prefix("capmedia: ").unwrap_or("");
        assert!(
            ["resolve", "validate", "plan", "check"].contains(&stage)
                || stage.starts_with("warning: no --target-arch: "),
            "unexpected stderr line {l:?} before the reason: {}",
            show(o)
        );
    }
    last.to_owned()
}

// ---------------------------------------------------------------- nginx

fn start_nginx(lib: &Path) -> Nginx {
    Nginx::start_temp(lib).unwrap_or_else(|e| panic!("{e}"))
}

// ------------------------------------------- 1. end to end, every sink

/// Capture the x64 sample package with `sink` from the path DP and from the
/// HTTP DP; both runs report, list and verify their outputs.
fn end_to_end(sink: &str, extra: &[&str], file: &str) {
    let ng = start_nginx(&sample().content_lib);
    let url = ng.url();
    for dp in [sample_dp(), url] {
        let sc = Scratch::new();
        let out = sc.out().join(file);
        let outs = capture_ok(&Run {
            dp: &dp,
            package: X64_PACKAGE,
            sink,
            out: &out,
            cache: &sc.cache(),
            staging: &sc.staging(),
            extra: [&["--target-arch", "x64"], extra].concat(),
        });
        assert_eq!(outs, vec![out], "one output from {dp}");
    }
}

#[test]
fn end_to_end_iso_set_from_path_and_http_dp() {
    end_to_end("iso-set", &[], "capture.iso");
}

#[test]
fn end_to_end_usb_raw_from_path_and_http_dp() {
    end_to_end("usb-raw", &[], "capture.img");
}

#[test]
fn end_to_end_vhd_fixed_from_path_and_http_dp() {
    end_to_end("vhd", &["--vhd-type", "fixed"], "capture.vhd");
}

#[test]
fn end_to_end_vhd_dynamic_from_path_and_http_dp() {
    end_to_end("vhd", &["--vhd-type", "dynamic"], "capture.vhd");
}

// ------------------------------------------------------------ 2. boot

fn capture_sample(sink: &str, file: &str, extra: &[&str]) -> (Scratch, PathBuf) {
    let sc = Scratch::new();
    let out = sc.out().join(file);
    capture_ok(&Run {
        dp: &sample_dp(),
        package: X64_PACKAGE,
        sink,
        out: &out,
        cache: &sc.cache(),
        staging: &sc.staging(),
        extra: extra.to_vec(),
    });
    (sc, out)
}

fn require_ovmf() {
    assert!(
        Path::new(OVMF_PATH).is_file(),
        "{OVMF_PATH} missing: install the Debian package ovmf"
    );
}

fn boot(what: &str, args: &[&str]) {
    let serial = qemu_boot(args, MARKER, BOOT_TIMEOUT).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(serial.contains(MARKER), "{what}: {serial}");
}

#[test]
fn iso_boots_under_seabios_and_ovmf() {
    require_ovmf();
    let (_sc, iso) = capture_sample("iso-set", "capture.iso", &[]);
    boot("ISO under SeaBIOS", &["-cdrom", s(&iso), "-net", "none"]);
    boot(
        "ISO under OVMF",
        &["-bios", OVMF_PATH, "-cdrom", s(&iso), "-net", "none"],
    );
}

#[test]
fn usb_image_boots_under_ovmf() {
    require_ovmf();
    let (_sc, img) = capture_sample("usb-raw", "capture.img", &[]);
    let drive = format!("file={},format=raw,snapshot=on", img.display());
    boot(
        "USB image under OVMF",
        &["-bios", OVMF_PATH, "-drive", &drive, "-net", "none"],
    );
}

#[test]
fn vhd_boots_under_ovmf() {
    require_ovmf();
    let (_sc, vhd) = capture_sample("vhd", "capture.vhd", &["--vhd-type", "dynamic"]);
    let drive = format!("file={},format=vpc,if=ide,snapshot=on", vhd.display());
    boot(
        "dynamic VHD under OVMF",
        &["-bios", OVMF_PATH, "-drive", &drive, "-net", "none"],
    );
}

// ------------------------------------------- 3. the architecture rule

/// A refusal that must leave the scratch area as it found it.
fn refused(r: &Run<'_>) -> String {
    let before = tree(r.out.parent().unwrap());
    let o = r.output();
    let line = refusal_line(&o);
    assert!(
        !r.out.exists(),
        "{} exists after a refusal",
        r.out.display()
    );
    assert_eq!(
        tree(r.out.parent().unwrap()),
        before,
        "the output folder changed: {}",
        show(&o)
    );
    assert!(
        tree(r.staging).is_empty(),
        "staging left: {:?}",
        tree(r.staging)
    );
    line
}

#[test]
fn x64_image_for_an_x86_computer_is_refused_stating_the_rule() {
    for (sink, file) in [("iso-set", "c.iso"), ("usb-raw", "c.img"), ("vhd", "c.vhd")] {
        let sc = Scratch::new();
        let line = refused(&Run {
            dp: &sample_dp(),
            package: X64_PACKAGE,
            sink,
            out: &sc.out().join(file),
            cache: &sc.cache(),
            staging: &sc.staging(),
            extra: vec!["--target-arch", "x86"],
        });
        assert!(
            line.contains("an x86 computer boots only x86 boot images"),
            "{sink}: {line}"
        );
        assert!(line.contains("x64"), "names the image's arch: {line}");
        // Refused before anything was fetched.
        assert!(files_under(&sc.cache()).is_empty(), "{sink}: fetched");
    }
}

#[test]
fn x86_image_with_x64_uefi_boot_files_is_refused_stating_the_rule() {
    let sc = Scratch::new();
    let media = sc.dir.path().join("media-x64");
    write_media_folder(&media, Arch::X64, MARKER).unwrap();
    for target in [None, Some("x86"), Some("x64")] {
        let mut extra = vec!["--boot-files", s(&media)];
        if let Some(t) = target {
            extra.extend(["--target-arch", t]);
        }
        let line = refused(&Run {
            dp: &sample_dp(),
            package: X86_PACKAGE,
            sink: "iso-set",
            out: &sc.out().join("c.iso"),
            cache: &sc.cache(),
            staging: &sc.staging(),
            extra,
        });
        assert!(
            line.contains("UEFI loader")
                && line.contains("bootx64.efi")
                && line.contains("an x86 boot image needs an x86 bootia32.efi"),
            "target {target:?}: {line}"
        );
        assert!(files_under(&sc.cache()).is_empty(), "fetched");
    }
}

#[test]
fn x86_image_with_its_own_boot_files_suits_an_x64_computer() {
    // The other half of the rule: an x64 computer boots x86 images.
    let sc = Scratch::new();
    let out = sc.out().join("x86.img");
    capture_ok(&Run {
        dp: &sample_dp(),
        package: X86_PACKAGE,
        sink: "usb-raw",
        out: &out,
        cache: &sc.cache(),
        staging: &sc.staging(),
        extra: vec!["--target-arch", "x64"],
    });
}

// --------------------------------- 4. refusals leave nothing behind

#[test]
fn a_dp_without_the_package_is_refused_leaving_nothing() {
    let ng = start_nginx(&sample().content_lib);
    for dp in [sample_dp(), ng.url()] {
        for (sink, file) in [("iso-set", "c.iso"), ("usb-raw", "c.img"), ("vhd", "c.vhd")] {
            let sc = Scratch::new();
            let line = refused(&Run {
                dp: &dp,
                package: "PS1000FF",
                sink,
                out: &sc.out().join(file),
                cache: &sc.cache(),
                staging: &sc.staging(),
                extra: vec![],
            });
            assert!(line.contains("PS1000FF"), "{dp} {sink}: {line}");
            assert!(files_under(&sc.cache()).is_empty());
        }
    }
}

#[test]
fn a_medium_too_small_is_refused_leaving_nothing() {
    let sc = Scratch::new();
    // usb-raw: a 1 MiB disk holds no FAT32 partition.
    let line = refused(&Run {
        dp: &sample_dp(),
        package: X64_PACKAGE,
        sink: "usb-raw",
        out: &sc.out().join("small.img"),
        cache: &sc.cache(),
        staging: &sc.staging(),
        extra: vec!["--media-size", "1M"],
    });
    assert!(!line.is_empty());
    // iso-set: smaller than the boot content, which cannot be split.
    let boot_bytes: u64 = files_under(&sample().content_lib.join("FileLib"))
        .iter()
        .filter(|f| !f.ends_with(".INI"))
        .map(|f| {
            fs::metadata(sample().content_lib.join("FileLib").join(f))
                .unwrap()
                .len()
        })
        .sum();
    let size = format!("{}K", (boot_bytes / 2048).max(1));
    let line = refused(&Run {
        dp: &sample_dp(),
        package: X64_PACKAGE,
        sink: "iso-set",
        out: &sc.out().join("small.iso"),
        cache: &sc.cache(),
        staging: &sc.staging(),
        extra: vec!["--media-size", &size],
    });
    assert!(!line.is_empty());
    // vhd: a disk too small as well.
    refused(&Run {
        dp: &sample_dp(),
        package: X64_PACKAGE,
        sink: "vhd",
        out: &sc.out().join("small.vhd"),
        cache: &sc.cache(),
        staging: &sc.staging(),
        extra: vec!["--media-size", "1M"],
    });
    assert!(
        files_under(&sc.cache()).is_empty(),
        "fetched before refusing"
    );
}

#[test]
fn an_output_folder_that_does_not_exist_is_refused_leaving_nothing() {
    let sc = Scratch::new();
    let missing = sc.out().join("no-such-folder");
    for (sink, file) in [("iso-set", "c.iso"), ("usb-raw", "c.img"), ("vhd", "c.vhd")] {
        let line = refused(&Run {
            dp: &sample_dp(),
            package: X64_PACKAGE,
            sink,
            out: &missing.join(file),
            cache: &sc.cache(),
            staging: &sc.staging(),
            extra: vec![],
        });
        assert!(line.contains("no-such-folder"), "{sink}: {line}");
        assert!(!missing.exists(), "{sink} created the folder");
    }
    assert!(
        files_under(&sc.cache()).is_empty(),
        "fetched before refusing"
    );
}

// ------------------------------------------------- 5. SIGINT mid-write

/// A DP whose boot image package carries a big extra file, so a write lasts
/// long enough to interrupt. Returns (SCCMContentLib, package id).
fn big_dp(dir: &Path) -> (PathBuf, PackageId) {
    let id: PackageId = "PS1000AA".parse().unwrap();
    let folder = dir.join("packages").join(id.as_str());
    write_media_folder(&folder, Arch::X64, MARKER).unwrap();
    fs::write(folder.join(id.boot_wim_name()), capmedia_sample::X64_WIM).unwrap();
    // 300 MB of pseudo-random data, written streaming.
    let mut xof = blake3::Hasher::new().update(b"capmedia big").finalize_xof();
    let mut f = std::io::BufWriter::new(fs::File::create(folder.join("big.bin")).unwrap());
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..300 {
        xof.fill(&mut buf);
        f.write_all(&buf).unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
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
    // The package folder is no longer needed: keep disk use down.
    fs::remove_file(folder.join("big.bin")).unwrap();
    (lib, id)
}

fn wait_bounded(child: &mut Child) -> std::process::ExitStatus {
    let until = Instant::now() + RUN_BOUND;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("capmedia did not end within {RUN_BOUND:?} after SIGINT");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigint_mid_write_leaves_the_previous_output_and_no_temporaries() {
    let work = tempfile::tempdir().unwrap();
    let (lib, id) = big_dp(work.path());
    let dp = lib.display().to_string();
    // One cache for both sinks. usb-raw first: its cold run streams the DP
    // into the medium (issue 18), so the interrupt lands mid-stream; the
    // ISO run then fetches what the stream did not finish.
    let cache = work.path().join("cache");
    fs::create_dir(&cache).unwrap();
    for (sink, file) in [("usb-raw", "capture.img"), ("iso-set", "capture.iso")] {
        let sc = Scratch::new();
        let out = sc.out().join(file);
        // The previous output: a good capture from the sample DP.
        capture_ok(&Run {
            dp: &sample_dp(),
            package: X64_PACKAGE,
            sink,
            out: &out,
            cache: &sc.cache(),
            staging: &sc.staging(),
            extra: vec![],
        });
        let before = blake3_file(&out);
        let listing = tree(&sc.out());

        let r = Run {
            dp: &dp,
            package: id.as_str(),
            sink,
            out: &out,
            cache: &cache,
            staging: &sc.staging(),
            extra: vec![],
        };
        let args = r.args();
        let mut child = capmedia_cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        let reader = thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                all.push_str(&line);
                all.push('\n');
                let _ = tx.send(line);
            }
            all
        });
        // Wait for the write to be under way: its first progress line.
        let mut seen_write = false;
        for line in rx.iter() {
            if line.starts_with("capmedia: write ") && line.contains('%') {
                seen_write = true;
                break;
            }
        }
        assert!(seen_write, "capmedia ended before writing");
        // ... and its temporary output to exist beside the old one, so the
        // interrupt really lands mid-write.
        let until = Instant::now() + RUN_BOUND;
        while !tree(&sc.out()).iter().any(|n| n.contains(".capmedia-tmp")) {
            assert!(
                child.try_wait().unwrap().is_none() && Instant::now() < until,
                "{sink}: no temporary output appeared while writing"
            );
            thread::sleep(Duration::from_millis(5));
        }
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let status = wait_bounded(&mut child);
        drop(rx);
        let err = reader.join().unwrap();
        assert_eq!(
            status.code(),
            Some(130),
            "{sink}: exit {status:?}; stderr:\n{err}"
        );
        assert!(err.contains("interrupted"), "{sink}: {err}");
        // Stopped inside the write: the driver never reached its verify stage.
        assert!(!err.contains("capmedia: verify"), "{sink}: {err}");
        assert_eq!(blake3_file(&out), before, "{sink}: previous output changed");
        assert_eq!(tree(&sc.out()), listing, "{sink}: output folder changed");
        for name in tree(&sc.out()) {
            assert!(
                !name.contains(".capmedia-tmp") && !name.ends_with(".tmp"),
                "{sink}: temporary {name} left"
            );
        }
        assert!(
            tree(&sc.staging()).is_empty(),
            "{sink}: staging left: {:?}",
            tree(&sc.staging())
        );
        assert!(
            tree(&cache.join("tmp")).is_empty(),
            "{sink}: cache partials or streams left: {:?}",
            tree(&cache.join("tmp"))
        );
        // The old output is still a good medium.
        let v = run(&["verify", s(&out)]);
        assert!(v.status.success(), "{}", show(&v));
    }
}

/// Wait (bounded) until `dir` holds a file whose name contains `needle`.
fn wait_for_name(child: &mut Child, dir: &Path, needle: &str) {
    let until = Instant::now() + RUN_BOUND;
    while !files_under(dir).iter().any(|n| n.contains(needle)) {
        assert!(
            child.try_wait().unwrap().is_none() && Instant::now() < until,
            "no {needle} appeared in {}",
            dir.display()
        );
        thread::sleep(Duration::from_millis(2));
    }
}

fn sigkill(child: &mut Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_bounded(child);
}

#[test]
fn sigkill_leftovers_are_removed_by_the_next_run_and_cache_clean() {
    let work = tempfile::tempdir().unwrap();
    let (lib, id) = big_dp(work.path());
    let dp = lib.display().to_string();
    for (sink, file) in [("vhd", "capture.vhd"), ("usb-raw", "capture.img")] {
        let sc = Scratch::new();
        let out = sc.out().join(file);
        let cache = sc.cache();
        let r = Run {
            dp: &dp,
            package: id.as_str(),
            sink,
            out: &out,
            cache: &cache,
            staging: &sc.staging(),
            extra: vec![],
        };
        let args = r.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // Killed while fetching (a partial download in the cache) ...
        let mut child = capmedia_cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_name(&mut child, &cache.join("tmp"), ".capmedia-tmp.");
        sigkill(&mut child);
        assert!(
            !files_under(&cache.join("tmp")).is_empty(),
            "{sink}: nothing to clean"
        );
        // ... then while writing (an output temporary, a staging folder).
        let mut child = capmedia_cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_name(&mut child, &sc.out(), ".capmedia-tmp.");
        sigkill(&mut child);
        assert!(
            !tree(&sc.staging()).is_empty(),
            "{sink}: no staging left to clean"
        );
        assert!(!out.exists(), "{sink}: a killed run put an output in place");

        // The next complete run removes every leftover of the dead ones.
        capture_ok(&Run {
            dp: &sample_dp(),
            package: X64_PACKAGE,
            sink,
            out: &out,
            cache: &cache,
            staging: &sc.staging(),
            extra: vec![],
        });
        assert_eq!(tree(&sc.out()), BTreeSet::from([file.to_owned()]), "{sink}");
        assert!(
            tree(&sc.staging()).is_empty(),
            "{sink}: {:?}",
            tree(&sc.staging())
        );
        assert!(
            files_under(&cache.join("tmp")).is_empty(),
            "{sink}: {:?}",
            files_under(&cache.join("tmp"))
        );
    }

    // `capmedia cache clean` removes a dead run's partial download and
    // leaves blobs and live runs' files alone.
    let cache = work.path().join("cache-clean");
    fs::create_dir_all(cache.join("tmp")).unwrap();
    fs::create_dir_all(cache.join("AB")).unwrap();
    let dead = cache.join("tmp/.ABCD.capmedia-tmp.999999999-1.0");
    fs::write(&dead, b"partial").unwrap();
    fs::write(cache.join("AB/ABCDEF"), b"blob").unwrap();
    let plain = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_capmedia"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = plain(&["cache", "clean", "--cache", s(&cache)]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(!dead.exists());
    assert!(cache.join("AB/ABCDEF").exists());
    let o = plain(&["cache", "list", "--cache", s(&cache), "--json"]);
    assert!(o.status.success(), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["bytes"], 4);
}

// -------------------------------------------------------- 6. dry run

#[test]
fn dry_run_prints_the_plan_and_fetches_and_writes_nothing() {
    let ng = start_nginx(&sample().content_lib);
    for dp in [sample_dp(), ng.url()] {
        let sc = Scratch::new();
        let out = sc.out().join("capture.iso");
        let r = Run {
            dp: &dp,
            package: X64_PACKAGE,
            sink: "iso-set",
            out: &out,
            cache: &sc.cache(),
            staging: &sc.staging(),
            extra: vec!["--dry-run", "--media-size", "cd"],
        };
        let o = r.output();
        assert!(o.status.success(), "{}", show(&o));
        let plan = text(&o.stdout);
        for needle in [
            "sources/boot.wim",
            "MediaLabel.txt",
            "bootmgr",
            "efi/boot/bootx64.efi",
            "volume 1 of 1",
            "MiB free of 650.4 MiB",
            "dry run: nothing was fetched or written",
        ] {
            assert!(plan.contains(needle), "plan lacks {needle:?}:\n{plan}");
        }
        // Each file's size is shown with it.
        let wim_line = plan
            .lines()
            .find(|l| l.trim_start().starts_with("sources/boot.wim"))
            .unwrap();
        assert!(
            wim_line.contains(&capmedia_sample::X64_WIM.len().to_string()),
            "{wim_line}"
        );
        assert!(tree(&sc.out()).is_empty(), "wrote {:?}", tree(&sc.out()));
        assert!(
            files_under(&sc.cache()).is_empty(),
            "fetched {:?}",
            files_under(&sc.cache())
        );
        assert!(tree(&sc.staging()).is_empty(), "{:?}", tree(&sc.staging()));

        // The same as JSON.
        let mut r = r;
        r.extra.push("--json");
        let o = r.output();
        assert!(o.status.success(), "{}", show(&o));
        let v = common::json_doc(&o);
        assert_eq!(v["dry_run"], true);
        assert!(v["outputs"].as_array().unwrap().is_empty());
        assert!(v["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "sources/boot.wim"));
        assert!(tree(&sc.out()).is_empty());
        assert!(files_under(&sc.cache()).is_empty());
    }
}

// ---------------------------------------------------- 7. reproducible

#[test]
fn same_epoch_gives_byte_identical_outputs_in_different_paths() {
    for (sink, extra) in [
        ("iso-set", &[][..]),
        ("usb-raw", &[][..]),
        ("vhd", &["--vhd-type", "dynamic"][..]),
    ] {
        let a = Scratch::new();
        let b = Scratch::new();
        let out_a = a.out().join("first.out");
        let out_b = b.out().join("second.out");
        let ra = capture_ok(&Run {
            dp: &sample_dp(),
            package: X64_PACKAGE,
            sink,
            out: &out_a,
            cache: &a.cache(),
            staging: &a.staging(),
            extra: extra.to_vec(),
        });
        let rb = capture_ok(&Run {
            dp: &sample_dp(),
            package: X64_PACKAGE,
            sink,
            out: &out_b,
            cache: &b.cache(),
            staging: &b.staging(),
            extra: extra.to_vec(),
        });
        assert_eq!(ra.len(), rb.len());
        for (x, y) in ra.iter().zip(&rb) {
            let (mut fx, mut fy) = (fs::File::open(x).unwrap(), fs::File::open(y).unwrap());
            let (mut bx, mut by) = (Vec::new(), Vec::new());
            fx.read_to_end(&mut bx).unwrap();
            fy.read_to_end(&mut by).unwrap();
            assert!(
                bx == by,
                "{sink}: {} and {} differ",
                x.display(),
                y.display()
            );
        }
    }
}

// ------------------------------------------------------------ verify

/// `capmedia verify` names what is wrong: a damaged VHD footer (issue 7) and
/// a changed file inside an image (which file differs).
#[test]
fn verify_reports_a_corrupt_vhd_footer_and_names_changed_files() {
    require_plugins();
    let (_sc, vhd) = capture_sample("vhd", "c.vhd", &["--vhd-type", "dynamic"]);
    let good = run(&["verify", s(&vhd)]);
    assert!(good.status.success(), "{}", show(&good));

    // Flip a byte of the footer's creator application: the checksum no
    // longer matches.
    let mut bytes = fs::read(&vhd).unwrap();
    let footer = bytes.len() - 512;
    bytes[footer + 28] ^= 0xFF;
    fs::write(&vhd, &bytes).unwrap();
    let bad = run(&["verify", s(&vhd)]);
    assert!(!bad.status.success(), "{}", show(&bad));
    // Reported as that output's failure (every output gets its row).
    let err = show(&bad).to_lowercase();
    assert!(err.contains("checksum"), "{}", show(&bad));

    // A file changed inside a raw image: verify names it.
    let (_sc2, img) = capture_sample("usb-raw", "c.img", &[]);
    let mut bytes = fs::read(&img).unwrap();
    let needle = b"label=Configuration Manager";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("MediaLabel.txt's bytes are in the image");
    bytes[at + 6] = b'X';
    fs::write(&img, &bytes).unwrap();
    let bad = run(&["verify", s(&img)]);
    assert!(!bad.status.success(), "{}", show(&bad));
    let out = text(&bad.stdout);
    assert!(out.contains("MediaLabel.txt"), "{}", show(&bad));
}

// ------------------------------------------------------------ vhd = usb-raw

/// The VHD holds exactly the disk the usb-raw sink writes for the same plan
/// (issue 7): `qemu-img compare` says so, for both VHD types. 155 MiB is a
/// size the VHD's CHS geometry keeps exactly, so both disks are that size.
#[test]
fn vhd_holds_the_same_disk_as_the_usb_raw_image_of_the_same_plan() {
    require_plugins();
    let (_a, img) = capture_sample("usb-raw", "same.img", &["--media-size", "155M"]);
    for t in ["fixed", "dynamic"] {
        let (_b, vhd) = capture_sample(
            "vhd",
            &format!("same-{t}.vhd"),
            &["--media-size", "155M", "--vhd-type", t],
        );
        let out = Command::new("qemu-img")
            .args(["compare", "-f", "vpc", "-F", "raw"])
            .arg(&vhd)
            .arg(&img)
            .output()
            .expect("qemu-img (Debian package qemu-utils)");
        assert!(
            out.status.success() && text(&out.stdout).contains("Images are identical"),
            "{t}: {}",
            show(&out)
        );
        let info = Command::new("qemu-img")
            .args(["info", "-f", "vpc", "--output=json"])
            .arg(&vhd)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(v["virtual-size"], 155u64 << 20, "{t}");
    }
}
