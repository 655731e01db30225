//! The plugin boundary, proven with sinks built as a third party would
//! (`tests/sinks`, a separate workspace depending on `capmedia-sink` by path).

// A panic in a test is a failed test: unwrapping is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{fixtures, lib};

use capmedia_content::{EntryRole, PlanBuilder};
use capmedia_sink::host::{LoadError, PluginSink};
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
    assert!(line.contains("0.3.1") && line.contains("1.0"), "{line}");
    assert!(line.contains("libfolder_sink"), "{line}");

    let out = capmedia(&[
        "plugins",
        "--json",
        "--plugin-dir",
        d.path().to_str().unwrap(),
    ]);
    let v = common::json_doc(&out);
    assert_eq!(v["sinks"][0]["name"], "folder");
    assert_eq!(v["sinks"][0]["abi"], "1.0");
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
        stderr.contains("plugin ABI 2.3") && stderr.contains("(ABI 1.0)"),
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
