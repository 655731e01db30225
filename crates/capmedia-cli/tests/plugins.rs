//! The plugin boundary, proven with sinks built as a third party would
//! (`tests/sinks`, a separate workspace depending on `capmedia-sink` by path).

// A panic in a test is a failed test: unwrapping is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use common::{fixtures, lib};

use capmedia_content::{EntryRole, PlanBuilder};
use capmedia_sink::host::{probe, LoadError, PluginSink, ProbeCommand, DEFAULT_PROBE_TIMEOUT};
use capmedia_sink::{ErrorKind, MediaSink, NeverCancel, NoProgress, VerifyRequest};

fn capmedia(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_capmedia"))
        .args(args)
        .env_remove("CAPMEDIA_PLUGIN_PATH")
        .output()
        .expect("running capmedia")
}

/// A folder holding only the given libraries, so each test sees just those.
fn only(libs: &[PathBuf]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for l in libs {
        std::fs::copy(l, d.path().join(l.file_name().unwrap())).unwrap();
    }
    d
}

#[test]
fn third_party_sink_is_listed_with_its_abi() {
    let (dir, _) = fixtures();
    let d = only(&[lib(dir, "folder_sink")]);
    let out = capmedia(&["plugins", "--plugin-dir", d.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("folder"))
        .expect(&stdout);
    assert!(line.contains("0.3.1") && line.contains("1.1"), "{line}");
    assert!(line.contains("libfolder_sink"), "{line}");

    let out = capmedia(&[
        "plugins",
        "--json",
        "--plugin-dir",
        d.path().to_str().unwrap(),
    ]);
    let v = common::json_doc(&out);
    assert_eq!(v["sinks"][0]["name"], "folder");
    assert_eq!(v["sinks"][0]["abi"], "1.1");
}

#[test]
fn plugin_path_env_is_searched() {
    let (dir, _) = fixtures();
    let d = only(&[lib(dir, "folder_sink")]);
    let out = Command::new(env!("CARGO_BIN_EXE_capmedia"))
        .arg("plugins")
        .env("CAPMEDIA_PLUGIN_PATH", d.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("folder"));
}

#[test]
fn a_plan_is_written_and_verified_through_a_third_party_plugin() {
    let (dir, _) = fixtures();
    let sink = PluginSink::load(&lib(dir, "folder_sink")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("boot.wim");
    std::fs::write(&src, vec![7u8; 100_000]).unwrap();
    let out = work.path().join("media");
    let mut b = PlanBuilder::new("Configuration Manager", "folder", &out);
    b.add_file("sources/boot.wim", &src, EntryRole::BootImage, "PS100005")
        .unwrap();
    b.add_bytes(
        "MediaLabel.txt",
        b"label=Configuration Manager".to_vec(),
        EntryRole::Generated,
        "media",
    )
    .unwrap();
    let plan = b.build().unwrap();
    assert_eq!(sink.check(&plan).unwrap().volumes.len(), 1);
    let report = sink.write(&plan, &NoProgress, &NeverCancel).unwrap();
    assert_eq!(report.outputs[0].path, out);
    assert_eq!(
        std::fs::read(out.join("sources/boot.wim")).unwrap(),
        vec![7u8; 100_000]
    );
    assert!(out.join("capmedia.json").is_file());
    let v = sink
        .verify(&VerifyRequest::from(&report), &NoProgress, &NeverCancel)
        .unwrap();
    assert!(v.is_ok());

    // A damaged file is found by the plugin's read-back.
    std::fs::write(out.join("MediaLabel.txt"), b"label=Tampered!!!!!!!!!!!!!").unwrap();
    let v = sink
        .verify(&VerifyRequest::from(&report), &NoProgress, &NeverCancel)
        .unwrap();
    assert!(!v.is_ok());
    assert!(format!("{}", v.volumes[0].outcome.problems[0]).contains("MediaLabel.txt"));
}

#[test]
fn a_panic_in_write_is_an_error_and_the_host_goes_on() {
    let (dir, _) = fixtures();
    let sink = PluginSink::load(&lib(dir, "panic_sink")).unwrap();
    let plan = PlanBuilder::new("x", "panic", "/nonexistent/x")
        .build()
        .unwrap();
    let err = sink.write(&plan, &NoProgress, &NeverCancel).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal);
    assert!(
        err.message
            .contains("the sink panicked: deliberate panic in write"),
        "{err}"
    );
    assert!(err.message.contains("libpanic_sink"), "{err}");
    // The host and the plugin are still usable.
    assert!(sink.check(&plan).is_ok());
    let err = sink.write(&plan, &NoProgress, &NeverCancel).unwrap_err();
    assert!(err.message.contains("deliberate panic"));
}

#[test]
fn a_different_abi_major_is_refused_naming_both_versions() {
    let (dir, _) = fixtures();
    let path = lib(dir, "future_abi_sink");
    match PluginSink::load(&path) {
        Err(LoadError::AbiMismatch {
            plugin_major: 2,
            plugin_minor: 3,
            host_major: 1,
            ..
        }) => {}
        other => panic!("expected an ABI mismatch, got {other:?}"),
    }
    let d = only(&[path, lib(dir, "folder_sink")]);
    let out = capmedia(&["plugins", "--plugin-dir", d.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("libfuture_abi_sink"), "{stderr}");
    assert!(
        stderr.contains("plugin ABI 2.3") && stderr.contains("(ABI 1.1)"),
        "{stderr}"
    );
    // The good plugin next to it is still listed.
    assert!(String::from_utf8_lossy(&out.stdout).contains("folder"));
}

#[test]
fn a_plugin_built_with_panic_abort_is_refused() {
    let (_, abort) = fixtures();
    let err = PluginSink::load(&lib(abort, "abort_sink")).unwrap_err();
    assert!(matches!(err, LoadError::PanicAbort { .. }), "{err}");
    assert!(err.to_string().contains("panic = \"abort\""));
}

#[test]
fn duplicate_names_and_non_plugins_are_reported_by_file() {
    let (dir, _) = fixtures();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    std::fs::copy(lib(dir, "folder_sink"), a.path().join("libone.so")).unwrap();
    std::fs::copy(lib(dir, "folder_sink"), b.path().join("libtwo.so")).unwrap();
    std::fs::write(b.path().join("libjunk.so"), b"not an ELF file").unwrap();
    let out = capmedia(&[
        "plugins",
        "--plugin-dir",
        a.path().to_str().unwrap(),
        "--plugin-dir",
        b.path().to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("libtwo.so: sink name \"folder\" is already provided by"),
        "{stderr}"
    );
    assert!(
        stderr.contains("libjunk.so: cannot load library"),
        "{stderr}"
    );
    assert!(!out.status.success());
}

// ------------------------------------------------ a host that survives plugins

/// A bound for one `capmedia` run, so a hang fails the test instead of
/// hanging the suite. Well past the 10 s probe timeout; not a speed check.
const RUN_BOUND: Duration = Duration::from_secs(300);

/// Run `capmedia` with `args`, killed and failed after [`RUN_BOUND`].
fn bounded(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_capmedia"))
        .args(args)
        .env_remove("CAPMEDIA_PLUGIN_PATH")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running capmedia");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(RUN_BOUND) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("capmedia {args:?} did not finish within {RUN_BOUND:?}");
        }
    }
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The folder holding `capmedia` and, after `cargo build --workspace`, the
/// first-party sink plugins. Fails loudly (not skip) when they are missing.
fn bin_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_capmedia"))
        .parent()
        .unwrap()
        .to_path_buf();
    for name in ["iso_set", "usb_raw", "vhd"] {
        let l = lib(&dir, &format!("capmedia_plugin_{name}"));
        assert!(
            l.is_file(),
            "{} is missing: run `cargo build --workspace` before these tests",
            l.display()
        );
    }
    dir
}

/// Every kind of bad plugin library, as (file name in the plugin folder,
/// source library, what `capmedia plugins` must say about it).
#[derive(Clone, Copy, Debug)]
enum Bad {
    Truncated,
    Segv,
    Hang,
    LongVersion,
    NullCheck,
    IsoSet,
}

const ALL_BAD: [Bad; 6] = [
    Bad::Truncated,
    Bad::Segv,
    Bad::Hang,
    Bad::LongVersion,
    Bad::NullCheck,
    Bad::IsoSet,
];

impl Bad {
    fn file(self) -> &'static str {
        match self {
            Bad::Truncated => "libtruncated.so",
            Bad::Segv => "libsegv_sink.so",
            Bad::Hang => "libhang_sink.so",
            Bad::LongVersion => "liblong_version_sink.so",
            Bad::NullCheck => "libnull_check_sink.so",
            Bad::IsoSet => "libfake_iso_set_sink.so",
        }
    }

    /// Put this library into `dir`.
    fn install(self, dir: &Path) {
        let (fixtures, _) = fixtures();
        let to = dir.join(self.file());
        match self {
            Bad::Truncated => {
                // The first 100 KB of a good plugin: headers intact, code
                // and data segments cut off, as an interrupted copy leaves
                // it. (Half of a debug build would still load: most of it
                // is debug info at the end.)
                let good = std::fs::read(lib(fixtures, "folder_sink")).unwrap();
                assert!(good.len() > 200_000, "folder_sink is unexpectedly small");
                std::fs::write(&to, &good[..100_000]).unwrap();
            }
            _ => {
                let name = self
                    .file()
                    .trim_start_matches("lib")
                    .trim_end_matches(".so");
                std::fs::copy(lib(fixtures, name), &to).unwrap();
            }
        }
    }

    /// What `capmedia plugins` must say (after the file name).
    fn reasons(self) -> &'static [&'static str] {
        match self {
            // The loader either refuses the file or dies mapping it.
            Bad::Truncated => &["cannot load library", "killed by signal"],
            Bad::Segv => &["killed by signal 11 (SIGSEGV) while describing itself"],
            Bad::Hang => &["did not answer within 10 s"],
            Bad::LongVersion => {
                &["SDK version string is 1099511627776 bytes long (at most 256 are accepted)"]
            }
            Bad::NullCheck => &["the plugin's check function pointer is NULL"],
            Bad::IsoSet => &["sink name \"iso-set\" belongs to a sink shipped with capmedia"],
        }
    }
}

/// `capmedia plugins` lists the bad library with why, lists the good one
/// beside it, and exits 1 (documented: some library cannot be used).
fn assert_listed(bad: Bad) {
    let (fixtures, _) = fixtures();
    let d = tempfile::tempdir().unwrap();
    bad.install(d.path());
    std::fs::copy(lib(fixtures, "folder_sink"), d.path().join("libgood.so")).unwrap();
    let out = bounded(&["plugins", "--plugin-dir", s(d.path())]);
    assert_eq!(out.status.code(), Some(1), "{bad:?}: {}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains(bad.file()))
        .unwrap_or_else(|| panic!("{bad:?} not listed: {}", show(&out)));
    assert!(
        bad.reasons().iter().any(|r| line.contains(r)),
        "{bad:?}: {line}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("libgood.so"),
        "{bad:?}: {}",
        show(&out)
    );

    let out = bounded(&["plugins", "--json", "--plugin-dir", s(d.path())]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{bad:?}: {v:#}");
    assert!(errors[0].as_str().unwrap().contains(bad.file()), "{v:#}");
    assert_eq!(v["sinks"][0]["name"], "folder", "{v:#}");
}

/// An ISO set captured from the bundled sample DP with the built-in
/// iso-set sink, in the presence of every kind of bad plugin at once.
fn iso_beside_bad_plugins() -> &'static PathBuf {
    static ISO: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &ISO.get_or_init(|| {
        let bin = bin_dir();
        let work = tempfile::tempdir().unwrap();
        let bad = work.path().join("bad");
        std::fs::create_dir(&bad).unwrap();
        for b in ALL_BAD {
            b.install(&bad);
        }
        let dp = capmedia_sample::write_sample_dp(&work.path().join("dp")).unwrap();
        for d in ["out", "cache", "staging"] {
            std::fs::create_dir(work.path().join(d)).unwrap();
        }
        let iso = work.path().join("out/c.iso");
        let out = bounded(&[
            "capture",
            "--dp",
            s(&dp.content_lib),
            "--boot-image",
            capmedia_sample::X64_PACKAGE,
            "--sink",
            "iso-set",
            "--out",
            s(&iso),
            "--cache",
            s(&work.path().join("cache")),
            "--staging",
            s(&work.path().join("staging")),
            "--plugin-dir",
            s(&bad),
            "--plugin-dir",
            s(&bin),
            "--json",
        ]);
        assert!(out.status.success(), "{}", show(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["sink"], "iso-set", "{report:#}");
        // The impostor was reported, not used.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("warning: ") && stderr.contains("libfake_iso_set_sink.so"),
            "{}",
            show(&out)
        );
        let first = report["outputs"][0]["path"].as_str().unwrap().to_owned();
        (work, PathBuf::from(first))
    })
    .1
}

/// The bad library does not stop `capmedia verify` (built-in iso-set) from
/// working in its presence.
fn assert_verify_survives(bad: Bad) {
    let bin = bin_dir();
    let iso = iso_beside_bad_plugins();
    let d = tempfile::tempdir().unwrap();
    bad.install(d.path());
    let out = bounded(&[
        "verify",
        s(iso),
        "--plugin-dir",
        s(d.path()),
        "--plugin-dir",
        s(&bin),
    ]);
    assert!(out.status.success(), "{bad:?}: {}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(": OK"),
        "{bad:?}: {}",
        show(&out)
    );
}

fn survives(bad: Bad) {
    assert_listed(bad);
    assert_verify_survives(bad);
}

#[test]
fn a_truncated_library_is_listed_and_ignored() {
    survives(Bad::Truncated);
}

#[test]
fn a_plugin_crashing_in_describe_is_listed_and_ignored() {
    survives(Bad::Segv);
}

#[test]
fn a_plugin_hanging_in_describe_is_killed_listed_and_ignored() {
    survives(Bad::Hang);
}

#[test]
fn a_huge_sdk_version_length_is_listed_and_ignored() {
    survives(Bad::LongVersion);
}

#[test]
fn a_null_check_pointer_is_listed_and_ignored() {
    survives(Bad::NullCheck);
}

#[test]
fn a_third_party_iso_set_is_listed_and_ignored() {
    survives(Bad::IsoSet);
}

#[test]
fn requesting_a_broken_sink_says_why_it_is_unavailable() {
    let d = tempfile::tempdir().unwrap();
    Bad::Segv.install(d.path());
    let out = bounded(&[
        "capture",
        "--dp",
        "/nonexistent",
        "--boot-image",
        "PS100001",
        "--sink",
        "segv",
        "--out",
        "/nonexistent/x.iso",
        "--plugin-dir",
        s(d.path()),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no sink named \"segv\"")
            && stderr.contains("libsegv_sink.so: killed by signal 11 (SIGSEGV)"),
        "{}",
        show(&out)
    );
}

#[test]
fn vtable_faults_are_typed_errors_before_any_call() {
    let (dir, _) = fixtures();
    match PluginSink::load(&lib(dir, "long_version_sink")) {
        Err(LoadError::SdkVersionTooLong { len, max: 256, .. }) => assert_eq!(len, 1 << 40),
        other => panic!("expected SdkVersionTooLong, got {other:?}"),
    }
    match PluginSink::load(&lib(dir, "null_check_sink")) {
        Err(LoadError::NullFunction { function, .. }) => assert_eq!(function, "check"),
        other => panic!("expected NullFunction, got {other:?}"),
    }
}

#[test]
fn the_probe_reports_a_good_plugin_as_the_loader_does() {
    let (dir, _) = fixtures();
    let cmd = ProbeCommand {
        program: env!("CARGO_BIN_EXE_capmedia").into(),
        args: vec!["__probe-plugin".into()],
    };
    let path = lib(dir, "folder_sink");
    let r = probe(&cmd, &path, DEFAULT_PROBE_TIMEOUT).unwrap();
    let direct = PluginSink::load(&path).unwrap();
    assert_eq!(&r.info, direct.info());
    assert_eq!(r.abi, direct.abi());
    assert_eq!(r.sdk_version, direct.sdk_version());
    assert_eq!(r.path, path);
    // A refusal in the child comes back typed.
    match probe(&cmd, &lib(dir, "future_abi_sink"), DEFAULT_PROBE_TIMEOUT) {
        Err(LoadError::AbiMismatch {
            plugin_major: 2, ..
        }) => {}
        other => panic!("expected an ABI mismatch, got {other:?}"),
    }
}

/// A probe command standing in for a misbehaving child: `sh -c SCRIPT sh LIB`.
fn sh(script: &str) -> ProbeCommand {
    ProbeCommand {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into(), "sh".into()],
    }
}

#[test]
fn a_probe_that_prints_garbage_dies_or_hangs_is_an_error_naming_the_library() {
    let lib = Path::new("/plugins/libx.so");
    let t = Duration::from_secs(10);
    match probe(&sh("echo garbage; echo oops >&2"), lib, t) {
        Err(e @ LoadError::Probe { .. }) => {
            let m = e.to_string();
            assert!(m.starts_with("/plugins/libx.so: "), "{m}");
            assert!(
                m.contains("without a report (its last message: oops)"),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
    match probe(&sh("echo 'capmedia-probe-report: {\"ok\": 3}'"), lib, t) {
        Err(LoadError::Probe { message, .. }) => {
            assert!(message.contains("not understood"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    match probe(&sh("kill -BUS $$"), lib, t) {
        Err(e @ LoadError::ProbeSignal { .. }) => assert!(
            e.to_string()
                .ends_with("killed by signal 7 (SIGBUS) while describing itself"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    // A child that never answers is killed at the timeout.
    match probe(&sh("exec sleep 1000"), lib, Duration::from_secs(1)) {
        Err(e @ LoadError::ProbeTimeout { seconds: 1, .. }) => {
            assert!(e.to_string().contains("did not answer within 1 s"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn first_party_names_cannot_be_shadowed_whatever_the_order() {
    let bin = bin_dir();
    let d = tempfile::tempdir().unwrap();
    Bad::IsoSet.install(d.path());
    // The impostor's folder comes first in the search path; the shipped
    // library still provides iso-set, and the impostor is reported naming
    // both files.
    let out = bounded(&[
        "plugins",
        "--json",
        "--plugin-dir",
        s(d.path()),
        "--plugin-dir",
        s(&bin),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let iso = v["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "iso-set")
        .unwrap_or_else(|| panic!("{v:#}"));
    assert!(
        iso["path"]
            .as_str()
            .unwrap()
            .ends_with("libcapmedia_plugin_iso_set.so"),
        "{v:#}"
    );
    let errors: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 1, "{v:#}");
    assert!(
        errors[0].contains("libfake_iso_set_sink.so: sink name \"iso-set\" is already provided by")
            && errors[0].ends_with("libcapmedia_plugin_iso_set.so"),
        "{}",
        errors[0]
    );
}

#[test]
fn two_third_party_plugins_with_one_name_first_in_search_order_wins() {
    let (dir, _) = fixtures();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    std::fs::copy(lib(dir, "folder_sink"), a.path().join("libzz.so")).unwrap();
    std::fs::copy(lib(dir, "folder_sink"), b.path().join("libaa.so")).unwrap();
    for (first, second) in [(&a, &b), (&b, &a)] {
        let out = bounded(&[
            "plugins",
            "--json",
            "--plugin-dir",
            s(first.path()),
            "--plugin-dir",
            s(second.path()),
        ]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["sinks"].as_array().unwrap().len(), 1, "{v:#}");
        assert!(
            v["sinks"][0]["path"]
                .as_str()
                .unwrap()
                .starts_with(s(first.path())),
            "{v:#}"
        );
        assert!(v["errors"][0]
            .as_str()
            .unwrap()
            .starts_with(s(second.path())));
    }
}
