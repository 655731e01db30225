//! `capmedia inspect` on real WIMs made by wimlib, compared with what
//! `wimlib-imagex info` says about the same files.

// A panic in a test is a failed test: unwrapping is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use capmedia_content::Arch;
use capmedia_testboot::{pe_stub, windows_machine};

fn wimlib(args: &[&str]) -> String {
    let out = Command::new("wimlib-imagex")
        .args(args)
        .output()
        .expect("wimlib-imagex is missing: apt-get install wimtools");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tree wimlib will call `arch` (it reads kernel32.dll's PE machine).
fn tree(dir: &Path, arch: Arch) {
    let sys = dir.join("Windows/System32");
    std::fs::create_dir_all(&sys).unwrap();
    std::fs::write(sys.join("kernel32.dll"), pe_stub(windows_machine(arch))).unwrap();
    std::fs::write(dir.join("readme.txt"), format!("{arch} image")).unwrap();
}

fn inspect_json(path: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_capmedia"))
        .args(["inspect", "--json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::json_doc(&out)
}

/// (boot index, [(index, name, wimlib's architecture name)])
fn wimlib_info(path: &Path) -> (u64, Vec<(u64, String, String)>) {
    let text = wimlib(&["info", path.to_str().unwrap()]);
    let mut boot = 0;
    let mut images = Vec::new();
    let mut cur: Option<(u64, String)> = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_owned();
        match k.trim() {
            "Boot Index" => boot = v.parse().unwrap(),
            "Index" => cur = Some((v.parse().unwrap(), String::new())),
            "Name" => cur.as_mut().unwrap().1 = v,
            "Architecture" => {
                let (i, n) = cur.take().unwrap();
                images.push((i, n, v));
            }
            _ => {}
        }
    }
    (boot, images)
}

fn ours_as_wimlib(arch: &str) -> &'static str {
    match arch {
        "x86" => "x86",
        "x64" => "x86_64",
        "arm64" => "ARM64",
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn inspect_json_agrees_with_wimlib_on_a_two_architecture_wim() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    tree(&a, Arch::X86);
    tree(&b, Arch::X64);
    let wim = d.path().join("boot.PS100005.wim");
    let w = wim.to_str().unwrap();
    wimlib(&["capture", a.to_str().unwrap(), w, "PE x86"]);
    wimlib(&["append", b.to_str().unwrap(), w, "PE x64", "--boot"]);

    let v = inspect_json(&wim);
    let (boot, images) = wimlib_info(&wim);
    assert_eq!(v["kind"], "wim");
    assert_eq!(v["boot_index"], boot);
    assert_eq!(boot, 2);
    let ours = v["images"].as_array().unwrap();
    assert_eq!(ours.len(), images.len());
    for (o, (i, name, arch)) in ours.iter().zip(&images) {
        assert_eq!(o["index"], *i);
        assert_eq!(o["name"], name.as_str());
        assert_eq!(ours_as_wimlib(o["arch"].as_str().unwrap()), arch);
        assert_eq!(o["is_boot"], *i == boot);
    }
}

#[test]
fn inspect_reads_pe_machines_and_text_output() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("bootaa64.efi");
    std::fs::write(&f, capmedia_testboot::efi_app(Arch::Arm64, "m")).unwrap();
    let v = inspect_json(&f);
    assert_eq!(v["kind"], "pe");
    assert_eq!(v["arch"], "arm64");
    let out = Command::new(env!("CARGO_BIN_EXE_capmedia"))
        .arg("inspect")
        .arg(&f)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("arm64"));
}

#[test]
fn malformed_input_is_a_one_line_error_and_nonzero_exit() {
    let d = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("empty.wim", Vec::new()),
        ("magic.wim", b"NOTAWIM\0".repeat(40)),
        ("short.wim", b"MSWIM\0\0\0\x00".to_vec()),
    ] {
        let f = d.path().join(name);
        std::fs::write(&f, bytes).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_capmedia"))
            .arg("inspect")
            .arg(&f)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("capmedia: cannot inspect"), "{err}");
        assert!(!err.contains("panicked"));
    }
}
