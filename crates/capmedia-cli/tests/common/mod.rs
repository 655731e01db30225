//! Helpers shared by the CLI's test files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use capmedia_sample::SampleDp;

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

pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_capmedia"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn sample() -> &'static SampleDp {
    static SAMPLE: OnceLock<SampleDp> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("common-sample-dp");
        capmedia_sample::write_sample_dp(&dir).unwrap()
    })
}

pub fn capmedia(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capmedia"))
        .args(args)
        .env_remove("CAPMEDIA_PLUGIN_PATH")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .stdin(Stdio::null())
        .output()
        .expect("running capmedia")
}

pub fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The shipped schema of a `--json` document's command
/// (`docs/schema/<command>.json`).
pub fn schema_for(command: &str) -> serde_json::Value {
    let path = root()
        .join("docs/schema")
        .join(format!("{}.json", command.replace(' ', "-")));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Parse a `--json` document from a run's stdout and validate it against
/// its command's shipped schema; check the envelope and that `ok` agrees
/// with the exit code.
pub fn json_doc(o: &Output) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("--json output is not one JSON document ({e}): {}", show(o)));
    assert_eq!(v["capmedia"], 1, "{}", show(o));
    let command = v["command"]
        .as_str()
        .unwrap_or_else(|| panic!("no command: {}", show(o)));
    assert_eq!(
        v["ok"].as_bool(),
        Some(o.status.success()),
        "ok vs exit code: {}",
        show(o)
    );
    let schema = schema_for(command);
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&v)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "not valid against docs/schema for {command}: {errors:#?}\n{}",
        show(o)
    );
    v
}

/// Every 15-byte piece of `secret` as hex and as base64 (at each of the
/// three alignments a longer base64 text can have), none of which may
/// appear in `text`: a key, a ticket or a token leaked whole or in part
/// would show one of them.
pub fn assert_no_piece_of(what: &str, secret: &[u8], text: &str) {
    use base64::prelude::{Engine, BASE64_STANDARD};
    assert!(secret.len() > 40, "{what}: a real file");
    let lower = text.to_ascii_lowercase();
    for w in secret.windows(15) {
        let hex: String = w.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!lower.contains(&hex), "{what} (hex) leaked: {text}");
        let b64 = BASE64_STANDARD.encode(w);
        assert!(!text.contains(&b64), "{what} (base64) leaked: {text}");
    }
    // No Authorization or WWW-Authenticate token either.
    for (i, _) in text.match_indices("Negotiate ") {
        let after: String = text[i + 10..].chars().take(16).collect();
        assert!(
            !(after.len() == 16
                && after
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))),
            "a Negotiate token in {what}: {text}"
        );
    }
}
