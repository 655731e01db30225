//! Rules of the code base that are checked, not just written down
//! (ARCHITECTURE.md's invariants that a test can hold).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `cargo metadata` of the workspace, for this host's platform (other
/// platforms' packages are never downloaded here), once per test run.
fn metadata() -> &'static serde_json::Value {
    static META: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    META.get_or_init(|| {
        let rustc = Command::new("rustc")
            .arg("-vV")
            .output()
            .expect("rustc -vV");
        let host = String::from_utf8_lossy(&rustc.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
            .expect("rustc -vV names the host");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--filter-platform",
                &host,
            ])
            .current_dir(root())
            .output()
            .expect("cargo metadata");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    })
}

/// Workspace package name → the names of the packages it needs to build
/// (normal dependencies, transitively; dev-dependencies left out).
fn normal_closure(meta: &serde_json::Value) -> BTreeMap<String, BTreeSet<String>> {
    let name_of: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut direct: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for n in meta["resolve"]["nodes"].as_array().unwrap() {
        let deps = n["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|d| name_of[d["pkg"].as_str().unwrap()])
            .collect();
        direct.insert(name_of[n["id"].as_str().unwrap()], deps);
    }
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| name_of[m.as_str().unwrap()])
        .collect();
    members
        .into_iter()
        .map(|m| {
            let mut seen = BTreeSet::new();
            let mut stack = vec![m];
            while let Some(p) = stack.pop() {
                for d in direct.get(p).into_iter().flatten() {
                    if seen.insert(d.to_string()) {
                        stack.push(d);
                    }
                }
            }
            (m.to_owned(), seen)
        })
        .collect()
}

#[test]
fn sinks_never_depend_on_the_dp() {
    let closure = normal_closure(metadata());
    let sinks: Vec<&String> = closure
        .keys()
        .filter(|n| {
            n.starts_with("capmedia-plugin-")
                || [
                    "capmedia-usb",
                    "capmedia-iso",
                    "capmedia-vhd",
                    "capmedia-sink",
                    "capmedia-disk",
                ]
                .contains(&n.as_str())
        })
        .collect();
    assert!(sinks.len() >= 7, "{sinks:?}");
    for s in sinks {
        assert!(
            !closure[s].contains("capmedia-dp"),
            "{s} depends on capmedia-dp: sinks get local files from the driver"
        );
        assert!(
            !closure[s].contains("capmedia-driver"),
            "{s} depends on the driver"
        );
    }
}

#[test]
fn libraries_never_depend_on_the_cli() {
    let closure = normal_closure(metadata());
    for (name, deps) in &closure {
        assert!(!deps.contains("capmedia-cli"), "{name} depends on the CLI");
    }
}

/// Crates whose one job needs `unsafe`: the plugin boundary, the binding
/// to wimlib's decompressors, and the binding to the system's GSSAPI
/// (Kerberos from the ticket cache).
const UNSAFE_ALLOWED: [&str; 3] = [
    "crates/capmedia-sink",
    "crates/capmedia-wimlib",
    "crates/capmedia-gssapi",
];

#[test]
fn unsafe_only_where_a_crate_needs_it_and_every_block_says_why() {
    let mut offenders = Vec::new();
    for top in ["crates", "plugins", "xtask"] {
        let mut stack = vec![root().join(top)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(root()).unwrap().display().to_string();
                if p.is_dir() {
                    if !rel.ends_with("/target") && !rel.contains("/fuzz") {
                        stack.push(p);
                    }
                    continue;
                }
                if p.extension().is_none_or(|x| x != "rs") || p.ends_with("tidy.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap();
                let allowed = UNSAFE_ALLOWED.iter().any(|a| rel.starts_with(a));
                if text.contains("allow(unsafe_code)") && !allowed {
                    offenders.push(format!("{rel}: allows unsafe_code"));
                }
                for (i, line) in text.lines().enumerate() {
                    let t = line.trim_start();
                    if t.starts_with("//") {
                        continue;
                    }
                    if (t.contains("unsafe {") || t.starts_with("unsafe impl"))
                        && !text
                            .lines()
                            .take(i + 1)
                            .skip(i.saturating_sub(8))
                            .any(|l| l.contains("SAFETY:"))
                    {
                        offenders.push(format!("{rel}:{}: unsafe without a SAFETY: note", i + 1));
                    }
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[test]
fn every_member_uses_the_workspace_lints() {
    let meta = metadata();
    for p in meta["packages"].as_array().unwrap() {
        let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap());
        if !manifest.starts_with(root().canonicalize().unwrap()) {
            continue;
        }
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(
            text.contains("[lints]\nworkspace = true"),
            "{} does not use the workspace lints",
            manifest.display()
        );
    }
}
