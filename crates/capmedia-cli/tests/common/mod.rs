//! Helpers shared by the CLI's test files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Build the fixture sinks once per test run; returns (normal dir, abort dir).
pub fn fixtures() -> &'static (PathBuf, PathBuf) {
    static DIRS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DIRS.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let manifest = root().join("tests/sinks/Cargo.toml");
        let build = |target: &Path, extra: &[&str]| {
            let st = Command::new(&cargo)
                .args(["build", "--quiet", "--manifest-path"])
                .arg(&manifest)
                .args(extra)
                .env("CARGO_TARGET_DIR", target)
                .status()
                .expect("running cargo");
            assert!(st.success(), "building tests/sinks failed");
            target.join("debug")
        };
        let normal = build(&root().join("target/test-sinks"), &[]);
        // Separate target dir: a different panic strategy rebuilds everything.
        let abort = build(
            &root().join("target/test-sinks-abort"),
            &[
                "-p",
                "abort-sink",
                "--config",
                "profile.dev.panic=\"abort\"",
            ],
        );
        (normal, abort)
    })
}

pub fn lib(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(
        "{}{name}.{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_EXTENSION
    ))
}
