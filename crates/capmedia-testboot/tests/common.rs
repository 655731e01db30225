#![allow(dead_code)]
use std::path::PathBuf;
use std::process::Command;

/// The path of `program`, or a panic naming the Debian package (never a skip).
pub fn tool(program: &str, package: &str) -> PathBuf {
    match capmedia_testboot::require_tool(program, package) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// Runs a command, panicking with its output if it fails; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
