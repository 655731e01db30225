//! The command line for people and for scripts (issue 16): completions, man
//! pages, JSON documents and their schemas, errors as JSON, `verify` of
//! several outputs, the disc presets, `-q`/`-v`, notes printed once.
//! Needs `cargo build --workspace` first (the sink plugins).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use capmedia_sample::X64_PACKAGE;
use common::{bin_dir, json_doc, root, sample, show};

/// Text with man's overstrike (bold `X\bX`, underline `_\bX`) removed.
fn text(b: &[u8]) -> String {
    let mut out = String::new();
    for c in String::from_utf8_lossy(b).chars() {
        if c == '\u{8}' {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out
}

/// `capmedia` with the built sink plugins.
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capmedia"))
        .args(args)
        .env_remove("CAPMEDIA_PLUGIN_PATH")
        .env("CAPMEDIA_PLUGIN_PATH", bin_dir())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .stdin(Stdio::null())
        .output()
        .expect("running capmedia")
}

/// A capture of the x64 sample package into `out` (cache and staging in
/// `scratch`), with extra arguments.
fn capture(sink: &str, out: &Path, scratch: &Path, extra: &[&str]) -> Output {
    let lib = sample().content_lib.display().to_string();
    let cache = scratch.join("cache");
    let staging = scratch.join("staging");
    fs::create_dir_all(&staging).unwrap();
    let mut args = vec![
        "capture",
        "--dp",
        &lib,
        "--boot-image",
        X64_PACKAGE,
        "--sink",
        sink,
        "--out",
        out.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
        "--staging",
        staging.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

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

// ------------------------------------------------- 1. shell integration

#[test]
fn completions_for_every_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef capmedia"),
        ("fish", "complete -c capmedia"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[capmedia]"),
    ] {
        let o = run(&["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", show(&o));
        let script = text(&o.stdout);
        assert!(script.contains(marker), "{shell}: no {marker:?}: {script}");
        // Subcommands and their options are completed.
        assert!(script.contains("capture"), "{shell}");
        assert!(script.contains("media-size"), "{shell}");
    }
    // bash itself accepts the script.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("capmedia.bash");
    fs::write(&f, run(&["completions", "bash"]).stdout).unwrap();
    let st = Command::new("bash").arg("-n").arg(&f).output().unwrap();
    assert!(st.status.success(), "bash -n: {}", show(&st));
    // An unknown shell is a usage error: exit 2.
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn man_pages_render_with_man() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["__man", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", show(&o));
    let mut pages: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for want in [
        "capmedia.1",
        "capmedia-capture.1",
        "capmedia-completions.1",
        "capmedia-devices.1",
        "capmedia-dp.1",
        "capmedia-dp-list.1",
        "capmedia-inspect.1",
        "capmedia-plugins.1",
        "capmedia-verify.1",
    ] {
        assert!(
            pages.contains(&want.to_owned()),
            "{want} missing: {pages:?}"
        );
    }
    assert!(!pages.iter().any(|p| p.contains("__")), "{pages:?}");
    for p in &pages {
        let r = Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(dir.path().join(p))
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "0")
            .output()
            .expect("man (Debian package man-db) must be installed: apt-get install -y man-db");
        assert!(r.status.success(), "man -l {p}: {}", show(&r));
        let page = text(&r.stdout);
        let name = p.trim_end_matches(".1");
        assert!(page.contains("NAME"), "{p}: {page}");
        assert!(page.contains(name), "{p}: {page}");
        // groff's own warnings (bad requests) would be on stderr.
        assert!(
            !text(&r.stderr).contains("warning"),
            "{p}: {}",
            text(&r.stderr)
        );
    }
    let capture = Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(dir.path().join("capmedia-capture.1"))
        .env("MANWIDTH", "80")
        .output()
        .unwrap();
    let page = text(&capture.stdout);
    for want in ["--media-size", "dvd-dl", "Examples:", "~/.cache/capmedia"] {
        assert!(page.contains(want), "{want}: {page}");
    }
}

#[test]
fn help_shows_examples_defaults_and_exit_codes() {
    let o = run(&["--help"]);
    let h = text(&o.stdout);
    assert!(h.contains("Exit codes: 0 ok, 1 failure"), "{h}");
    assert!(h.contains("130 interrupted"), "{h}");
    assert!(h.contains("--quiet") && h.contains("--verbose"), "{h}");
    let o = run(&["capture", "--help"]);
    let h = text(&o.stdout);
    assert!(h.contains("Examples:"), "{h}");
    assert!(h.contains("[default: unlimited]"), "{h}");
    assert!(h.contains("$XDG_CACHE_HOME/capmedia"), "{h}");
    let o = run(&["verify", "--help"]);
    let h = text(&o.stdout);
    assert!(h.contains("The outputs to check"), "{h}");
    assert!(h.contains("docs/schema/verify.json"), "{h}");
    // A usage error is exit 2 (clap's).
    assert_eq!(run(&["verify"]).status.code(), Some(2));
    assert_eq!(run(&["capture", "--bogus"]).status.code(), Some(2));
}

// ---------------------------------------------------------- 3. scripts

/// The shipped schemas are what the types generate now.
#[test]
fn shipped_schemas_match_the_types() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["__schemas", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", show(&o));
    let shipped = root().join("docs/schema");
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cache-list.json",
            "capture.json",
            "devices.json",
            "dp-list.json",
            "inspect.json",
            "plugins.json",
            "verify.json"
        ]
    );
    for n in &names {
        let now = fs::read_to_string(dir.path().join(n)).unwrap();
        let ship = fs::read_to_string(shipped.join(n)).unwrap_or_default();
        assert!(
            now == ship,
            "docs/schema/{n} differs from the types: run `capmedia __schemas docs/schema`"
        );
        // Each is a schema the validator accepts.
        let v: serde_json::Value = serde_json::from_str(&now).unwrap();
        jsonschema::validator_for(&v).unwrap();
    }
    // A document of the wrong command or version is rejected: the schema
    // is not vacuous.
    let schema = common::schema_for("verify");
    let v = jsonschema::validator_for(&schema).unwrap();
    let good = serde_json::json!({"capmedia": 1, "command": "verify", "ok": true, "outputs": []});
    assert!(v.is_valid(&good));
    for bad in [
        serde_json::json!({"capmedia": 2, "command": "verify", "ok": true, "outputs": []}),
        serde_json::json!({"capmedia": 1, "command": "capture", "ok": true, "outputs": []}),
        serde_json::json!({"capmedia": 1, "command": "verify", "ok": true}),
        serde_json::json!({"capmedia": 1, "command": "verify", "ok": true, "error": {"kind": "io", "message": "x"}}),
    ] {
        assert!(!v.is_valid(&bad), "{bad}");
    }
}

#[test]
fn every_command_prints_its_json_shape_and_errors_as_json() {
    require_plugins();
    let lib = sample().content_lib.display().to_string();

    let v = json_doc(&run(&["dp", "list", "--dp", &lib, "--json"]));
    assert_eq!(v["command"], "dp list");
    assert!(v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["package"] == X64_PACKAGE));

    // A DP that is not there: a JSON error naming the DP, exit 1.
    let nowhere = "/nonexistent/SCCMContentLib";
    let o = run(&["dp", "list", "--dp", nowhere, "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v = json_doc(&o);
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["dp"], nowhere, "{v:#}");
    assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    // The error is on stderr too, for people.
    assert!(text(&o.stderr).starts_with("capmedia: "), "{}", show(&o));

    let v = json_doc(&run(&["plugins", "--json"]));
    assert!(v["sinks"].as_array().unwrap().len() >= 3, "{v:#}");

    let v = json_doc(&run(&["devices", "--all", "--json"]));
    assert!(v["drives"].is_array());
    assert!(
        v["firmware"].as_str().unwrap().contains("BIOS and UEFI"),
        "{v:#}"
    );

    // inspect: a file that is none of what it reads, as a JSON error.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.bin");
    fs::write(&junk, b"not a wim, not a pe").unwrap();
    let o = run(&["inspect", "--json", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v = json_doc(&o);
    assert_eq!(v["error"]["file"], junk.to_str().unwrap(), "{v:#}");

    // capture: an unknown package, a JSON error naming DP and package.
    let out = dir.path().join("x.iso");
    let o = capture_with(&lib, "PS1FFFFF", "iso-set", &out, dir.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v = json_doc(&o);
    assert_eq!(v["command"], "capture");
    assert_eq!(v["error"]["dp"], lib.as_str(), "{v:#}");
    assert_eq!(v["error"]["package"], "PS1FFFFF", "{v:#}");
    assert_eq!(v["error"]["kind"], "dp", "{v:#}");
    assert!(!out.exists());

    // capture --dry-run --json and a real one, each valid.
    let v = json_doc(&capture(
        "iso-set",
        &out,
        dir.path(),
        &["--dry-run", "--json", "--media-size", "cd"],
    ));
    assert_eq!(v["dry_run"], true);
    let v = json_doc(&capture("iso-set", &out, dir.path(), &["--json"]));
    assert_eq!(v["outputs"][0]["path"], out.to_str().unwrap());

    // inspect --bcd of that ISO.
    let v = json_doc(&run(&["inspect", "--bcd", "--json", out.to_str().unwrap()]));
    assert_eq!(v["command"], "inspect");
}

fn capture_with(
    dp: &str,
    package: &str,
    sink: &str,
    out: &Path,
    scratch: &Path,
    extra: &[&str],
) -> Output {
    let cache = scratch.join("cache");
    let mut args = vec![
        "capture",
        "--dp",
        dp,
        "--boot-image",
        package,
        "--sink",
        sink,
        "--out",
        out.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// `verify A B C` with B bad: all three checked and reported, exit 1.
#[test]
fn verify_checks_every_output_and_fails_if_any_fails() {
    require_plugins();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.img");
    let o = capture("usb-raw", &a, dir.path(), &[]);
    assert!(o.status.success(), "{}", show(&o));
    let c = dir.path().join("c.vhd");
    let o = capture("vhd", &c, dir.path(), &[]);
    assert!(o.status.success(), "{}", show(&o));
    // B: not a capmedia output at all (unreadable as media).
    let b = dir.path().join("b.img");
    fs::write(&b, vec![0x5Au8; 4096]).unwrap();
    // And D: a copy of A with a file's bytes changed.
    let d = dir.path().join("d.img");
    let mut bytes = fs::read(&a).unwrap();
    let at = find(&bytes, capmedia_sample::MARKER.as_bytes()).expect("marker in the image");
    bytes[at] ^= 0xFF;
    fs::write(&d, &bytes).unwrap();

    let paths: Vec<PathBuf> = vec![a.clone(), b.clone(), c.clone()];
    let args: Vec<&str> = std::iter::once("verify")
        .chain(paths.iter().map(|p| p.to_str().unwrap()))
        .collect();
    let o = run(&args);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let out = text(&o.stdout);
    assert!(out.contains(&format!("{}: OK", a.display())), "{out}");
    assert!(out.contains(&format!("{}: FAILED", b.display())), "{out}");
    assert!(out.contains(&format!("{}: OK", c.display())), "{out}");
    assert!(out.contains("2 of 3 outputs verified"), "{out}");

    let mut j = args.clone();
    j.push("--json");
    let o = run(&j);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v = json_doc(&o);
    let rows = v["outputs"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{v:#}");
    assert_eq!(
        rows.iter()
            .map(|r| r["ok"].as_bool().unwrap())
            .collect::<Vec<_>>(),
        [true, false, true]
    );
    assert_eq!(rows[1]["error"]["file"], b.to_str().unwrap());
    assert!(rows[1]["volumes"].as_array().unwrap().is_empty());

    // A damaged file inside a readable image: reported per file.
    let o = run(&["verify", a.to_str().unwrap(), d.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v = json_doc(&o);
    assert_eq!(v["outputs"][0]["ok"], true);
    assert_eq!(v["outputs"][1]["ok"], false);
    let problems = v["outputs"][1]["volumes"][0]["outcome"]["problems"]
        .as_array()
        .unwrap();
    assert!(!problems.is_empty(), "{v:#}");

    // All good: exit 0.
    let o = run(&["verify", a.to_str().unwrap(), c.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", show(&o));
    json_doc(&o);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ----------------------------------------------------------- 2. sizes

#[test]
fn disc_presets_are_refused_for_usb_raw_and_vhd_with_a_hint() {
    require_plugins();
    let dir = tempfile::tempdir().unwrap();
    for (sink, file, size) in [
        ("usb-raw", "u.img", "dvd"),
        ("usb-raw", "u.img", "4GB"),
        ("vhd", "v.vhd", "cd"),
        ("vhd", "v.vhd", "Size8GB"),
    ] {
        let out = dir.path().join(file);
        let o = capture(sink, &out, dir.path(), &["--media-size", size, "--dry-run"]);
        assert_eq!(o.status.code(), Some(1), "{sink} {size}: {}", show(&o));
        let err = text(&o.stderr);
        assert!(err.contains("is a disc's capacity"), "{sink} {size}: {err}");
        assert!(err.contains("K/M/G"), "{sink} {size}: {err}");
        assert!(!out.exists());
        let o = capture(sink, &out, dir.path(), &["--media-size", size, "--json"]);
        let v = json_doc(&o);
        assert_eq!(v["error"]["kind"], "refused", "{v:#}");
        assert_eq!(v["error"]["file"], out.to_str().unwrap(), "{v:#}");
        assert!(!out.exists());
    }
    // A size in bytes is a size: accepted.
    let o = capture(
        "usb-raw",
        &dir.path().join("u.img"),
        dir.path(),
        &["--media-size", "600M", "--dry-run"],
    );
    assert!(o.status.success(), "{}", show(&o));
    // The presets by their names, for the ISO set.
    for size in ["cd", "dvd", "dvd-dl", "650MB"] {
        let o = capture(
            "iso-set",
            &dir.path().join("i.iso"),
            dir.path(),
            &["--media-size", size, "--dry-run"],
        );
        assert!(o.status.success(), "{size}: {}", show(&o));
    }
    let o = capture(
        "iso-set",
        &dir.path().join("i.iso"),
        dir.path(),
        &["--media-size", "dvd", "--dry-run"],
    );
    assert!(text(&o.stdout).contains("free of"), "{}", show(&o));
}

#[test]
fn vhd_rounding_is_explained_and_never_shows_more_used_than_capacity() {
    require_plugins();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v.vhd");
    let o = capture(
        "vhd",
        &out,
        dir.path(),
        &["--media-size", "1G", "--dry-run"],
    );
    assert!(o.status.success(), "{}", show(&o));
    let t = text(&o.stdout);
    assert!(t.contains("1024 MiB (1073741824 bytes) requested"), "{t}");
    assert!(t.contains("because a VHD's size must be"), "{t}");
    let v = json_doc(&capture(
        "vhd",
        &out,
        dir.path(),
        &["--media-size", "1G", "--dry-run", "--json"],
    ));
    for vol in v["volumes"].as_array().unwrap() {
        let cap = vol["capacity"]["bytes"].as_u64().unwrap();
        assert!(vol["used"].as_u64().unwrap() <= cap, "{vol:#}");
    }
    assert!(v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("requested")));
    // And in the report of a real run, with the size actually written.
    let o = capture("vhd", &out, dir.path(), &["--media-size", "1G"]);
    assert!(o.status.success(), "{}", show(&o));
    let t = text(&o.stdout);
    assert!(t.contains("requested"), "{t}");
    let written = fs::metadata(&out).unwrap().len();
    assert!(
        t.contains(&format!("({} bytes) virtual disk written", written - 512)),
        "{t}"
    );
}

// ---------------------------------------------------- 4. noise and quiet

#[test]
fn quiet_prints_nothing_but_errors() {
    require_plugins();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q.img");
    let o = capture("usb-raw", &out, dir.path(), &["-q"]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(text(&o.stderr), "", "{}", show(&o));
    assert!(text(&o.stdout).contains("wrote"), "{}", show(&o));
    // An error still is printed.
    let o = capture(
        "usb-raw",
        &out,
        dir.path(),
        &["--quiet", "--media-size", "dvd"],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("disc's capacity"), "{err}");
    // -q and -v together are a usage error.
    assert_eq!(run(&["-q", "-v", "devices"]).status.code(), Some(2));
}

#[test]
fn verbose_shows_stage_timings_and_each_file_and_notes_print_once() {
    require_plugins();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v.img");
    let o = capture("usb-raw", &out, dir.path(), &["--verbose"]);
    assert!(o.status.success(), "{}", show(&o));
    let err = text(&o.stderr);
    for stage in ["resolve", "check", "fetch", "write", "verify"] {
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("capmedia: {stage} done in "))),
            "{stage}: {err}"
        );
    }
    assert!(err.contains("capmedia: file sources/boot.wim ("), "{err}");
    // Normal: stage lines, no timings, and every note line once.
    let o = capture("usb-raw", &out, dir.path(), &[]);
    assert!(o.status.success(), "{}", show(&o));
    let err = text(&o.stderr);
    assert!(!err.contains("done in"), "{err}");
    assert!(!err.contains("capmedia: file "), "{err}");
    let mut lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains('%') && l.len() > 30)
        .collect();
    assert!(lines.iter().any(|l| l.contains("target image")), "{err}");
    let n = lines.len();
    lines.sort();
    lines.dedup();
    assert_eq!(lines.len(), n, "a line printed twice: {err}");
    // The report says how long the read-back took.
    let out_text = text(&o.stdout);
    assert!(
        out_text
            .lines()
            .any(|l| l.contains(", verify ") && l.contains("s, total ")),
        "{out_text}"
    );
}

// ---------------------------------------------- 5. answers that lead on

/// An unknown package: the error says how to list the DP's packages.
#[test]
fn an_unknown_package_suggests_dp_list() {
    require_plugins();
    let lib = sample().content_lib.display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.iso");
    let o = capture_with(&lib, "PS1FFFFF", "iso-set", &out, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = text(&o.stderr);
    // One line: the reason and its hint.
    let last = err.lines().last().unwrap();
    assert!(last.contains("PS1FFFFF is not distributed"), "{err}");
    assert!(
        last.contains(&format!("`capmedia dp list --dp {lib}`")),
        "{err}"
    );
    // The command it names works and lists the DP's packages.
    let v = json_doc(&run(&["dp", "list", "--dp", &lib, "--json"]));
    assert!(v["packages"].as_array().unwrap().len() >= 2, "{v:#}");
    // In JSON, the hint has its own field.
    let o = capture_with(&lib, "PS1FFFFF", "iso-set", &out, dir.path(), &["--json"]);
    let v = json_doc(&o);
    assert!(
        v["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("capmedia dp list --dp"),
        "{v:#}"
    );
    assert!(!out.exists());
}

/// A web server that is not a DP's content site: said so, for `dp list`
/// and for a capture, instead of "package not distributed".
#[test]
fn an_http_server_that_is_not_a_dp_says_so() {
    require_plugins();
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    fs::create_dir_all(site.join("images")).unwrap();
    fs::write(
        site.join("index.html"),
        "<html><body>intranet</body></html>",
    )
    .unwrap();
    fs::write(site.join("images/logo.png"), b"png").unwrap();
    let ng = capmedia_testdp::Nginx::start_temp(&site).unwrap_or_else(|e| panic!("{e}"));
    // nginx does serve the folder there: the server answers, PkgLib is what
    // is missing.
    let url = ng.url();
    let o = Command::new("curl")
        .args(["-sf", &format!("{url}index.html")])
        .output()
        .expect("curl is missing: apt-get install curl");
    assert!(text(&o.stdout).contains("intranet"), "{}", show(&o));

    let want = format!("no PkgLib at {url}PkgLib/: is this the SMS_DP_SMSPKG$ endpoint?");
    let o = run(&["dp", "list", "--dp", &url]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(text(&o.stderr).contains(&want), "{}", show(&o));
    let o = run(&["dp", "list", "--dp", &url, "--json"]);
    let v = json_doc(&o);
    assert_eq!(v["error"]["kind"], "dp", "{v:#}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains(&want),
        "{v:#}"
    );

    let out = dir.path().join("x.iso");
    let o = capture_with(&url, X64_PACKAGE, "iso-set", &out, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = text(&o.stderr);
    assert!(err.contains(&want), "{err}");
    assert!(!err.contains("not distributed"), "{err}");
    assert!(!out.exists());
}

/// `inspect` given a medium names what it is and the commands that read
/// media; a file that is no medium still gets the plain error.
#[test]
fn inspect_of_a_medium_suggests_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tree = d.join("tree");
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("readme.txt"), "hello").unwrap();
    let iso = d.join("m.iso");
    let o = Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-o"])
        .arg(&iso)
        .arg(&tree)
        .output()
        .expect("xorriso is missing: apt-get install xorriso");
    assert!(o.status.success(), "{}", show(&o));
    let img = d.join("m.img");
    let o = Command::new("mkfs.fat")
        .args(["-C", img.to_str().unwrap(), "4096"])
        .output()
        .expect("mkfs.fat is missing: apt-get install dosfstools");
    assert!(o.status.success(), "{}", show(&o));
    let vhd = d.join("m.vhd");
    let o = Command::new("qemu-img")
        .args(["create", "-q", "-f", "vpc", vhd.to_str().unwrap(), "8M"])
        .output()
        .expect("qemu-img is missing: apt-get install qemu-utils");
    assert!(o.status.success(), "{}", show(&o));
    for (file, what) in [
        (&iso, "an ISO 9660 volume"),
        (&img, "a disk image"),
        (&vhd, "a VHD virtual disk"),
        (&tree, "a folder"),
    ] {
        let f = file.to_str().unwrap();
        let o = run(&["inspect", f]);
        assert_eq!(o.status.code(), Some(1), "{f}: {}", show(&o));
        let err = text(&o.stderr);
        assert!(err.contains(&format!("{f} is {what}")), "{err}");
        assert!(err.contains(&format!("`capmedia verify {f}`")), "{err}");
        assert!(err.contains("inspect --bcd"), "{err}");
        json_doc(&run(&["inspect", "--json", f]));
    }
    let junk = d.join("junk.bin");
    fs::write(&junk, b"not a wim, not a pe").unwrap();
    let o = run(&["inspect", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(!text(&o.stderr).contains("capmedia verify"), "{}", show(&o));
}

/// Options the chosen sink does not read are refused (exit 2, as a usage
/// error) before anything is fetched or written.
#[test]
fn options_the_sink_ignores_are_refused_before_anything_is_written() {
    require_plugins();
    let dir = tempfile::tempdir().unwrap();
    for (sink, file, extra, flag) in [
        (
            "iso-set",
            "x.iso",
            &["--vhd-type", "dynamic"][..],
            "--vhd-type",
        ),
        (
            "iso-set",
            "x.iso",
            &["--partition-scheme", "gpt"][..],
            "--partition-scheme",
        ),
        (
            "vhd",
            "x.vhd",
            &["--sink-option", "colour=blue"][..],
            "--sink-option colour",
        ),
        ("vhdx", "x.vhdx", &["--vhd-type", "fixed"][..], "--vhd-type"),
    ] {
        let out = dir.path().join(file);
        let o = capture(sink, &out, dir.path(), extra);
        assert_eq!(o.status.code(), Some(2), "{sink} {extra:?}: {}", show(&o));
        let err = text(&o.stderr);
        assert!(
            err.contains(&format!("sink {sink} does not read {flag} (it reads: ")),
            "{err}"
        );
        assert!(!out.exists(), "{sink}");
        assert!(!dir.path().join("cache").exists(), "{sink}: fetched");
        if sink == "vhdx" {
            assert!(err.contains("--sink-option vhdx-type=fixed"), "{err}");
        }
        let v = json_doc(&capture(
            sink,
            &out,
            dir.path(),
            &[extra, &["--json"]].concat(),
        ));
        assert_eq!(v["error"]["kind"], "usage", "{v:#}");
    }
    // The capacity has one flag, whatever the sink declares.
    let out = dir.path().join("x.iso");
    let o = capture(
        "iso-set",
        &out,
        dir.path(),
        &["--sink-option", "media-size=cd"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        text(&o.stderr).contains("use --media-size cd"),
        "{}",
        show(&o)
    );
    assert!(!out.exists());
    // What the sink reads passes.
    for (sink, file, extra) in [
        (
            "vhd",
            "x.vhd",
            &["--vhd-type", "dynamic", "--partition-scheme", "gpt"][..],
        ),
        ("vhdx", "x.vhdx", &["--sink-option", "vhdx-type=fixed"][..]),
        ("usb-raw", "x.img", &["--partition-scheme", "mbr"][..]),
    ] {
        let o = capture(
            sink,
            &dir.path().join(file),
            dir.path(),
            &[extra, &["--dry-run"]].concat(),
        );
        assert!(o.status.success(), "{sink} {extra:?}: {}", show(&o));
    }
}

/// Without `--target-arch` the architecture rule cannot be checked: a
/// warning on stderr (and a note in JSON); with it, no warning.
#[test]
fn capture_without_target_arch_warns_the_rule_was_not_checked() {
    require_plugins();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.iso");
    let o = capture("iso-set", &out, dir.path(), &["--dry-run"]);
    assert!(o.status.success(), "{}", show(&o));
    let warn = "capmedia: warning: no --target-arch: the architecture rule";
    assert_eq!(text(&o.stderr).matches(warn).count(), 1, "{}", show(&o));
    let v = json_doc(&capture(
        "iso-set",
        &out,
        dir.path(),
        &["--dry-run", "--json"],
    ));
    assert!(
        v["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("was not checked")),
        "{v:#}"
    );
    let o = capture(
        "iso-set",
        &out,
        dir.path(),
        &["--dry-run", "--target-arch", "x64"],
    );
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        !text(&o.stderr).contains("no --target-arch"),
        "{}",
        show(&o)
    );
    // The rule itself is checked when the target is given.
    let o = capture(
        "iso-set",
        &out,
        dir.path(),
        &["--dry-run", "--target-arch", "x86"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
}

// ------------------------------------------------------------ 6. dp list

/// Reads `wimlib-imagex info`'s "Architecture" and version lines.
fn wimlib_arch_and_version(wim: &Path) -> (String, Option<String>) {
    let o = Command::new("wimlib-imagex")
        .arg("info")
        .arg(wim)
        .arg("1")
        .output()
        .expect("wimlib-imagex is missing: apt-get install wimtools");
    assert!(o.status.success(), "{}", show(&o));
    let t = text(&o.stdout);
    let field = |k: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim_start_matches(':').trim().to_owned())
    };
    let arch = match field("Architecture").as_deref() {
        Some("x86_64") => "x64".to_owned(),
        Some("x86") => "x86".to_owned(),
        Some("ARM64") => "arm64".to_owned(),
        other => panic!("wimlib arch {other:?}: {t}"),
    };
    let version = match (
        field("Major Version"),
        field("Minor Version"),
        field("Build"),
        field("Service Pack Build"),
    ) {
        (Some(a), Some(b), Some(c), Some(d)) => Some(format!("{a}.{b}.{c}.{d}")),
        _ => None,
    };
    (arch, version)
}

/// `dp list` shows each boot image's architecture and Windows PE version,
/// as wimlib reads them from the same WIMs, sizes in human units in text
/// and exact bytes in JSON; over HTTP too (range reads).
#[test]
fn dp_list_shows_each_boot_images_arch_and_winpe_version() {
    use capmedia_dp::{build_library, BuildOptions, PackageSource};
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("readme.txt"), vec![b'x'; 300_000]).unwrap();
    // (package, ARCH value, version properties)
    type Spec<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let specs: [Spec<'_>; 2] = [
        (
            "PS10000A",
            "9",
            &[
                ("MAJOR", "10"),
                ("MINOR", "0"),
                ("BUILD", "26100"),
                ("SPBUILD", "1"),
            ],
        ),
        ("PS10000C", "12", &[]),
    ];
    let mut sources = Vec::new();
    let mut wims = Vec::new();
    for (id, arch, version) in specs {
        let id: capmedia_content::PackageId = id.parse().unwrap();
        let pkg = dir.path().join(id.as_str());
        fs::create_dir_all(&pkg).unwrap();
        let wim = pkg.join(id.boot_wim_name());
        let o = Command::new("wimlib-imagex")
            .arg("capture")
            .arg(&tree)
            .arg(&wim)
            .args(["Microsoft Windows PE", "--boot", "--quiet"])
            .output()
            .expect("wimlib-imagex is missing: apt-get install wimtools");
        assert!(o.status.success(), "{}", show(&o));
        let mut info = Command::new("wimlib-imagex");
        info.arg("info").arg(&wim).arg("1");
        info.args(["--image-property", &format!("WINDOWS/ARCH={arch}")]);
        for (k, v) in version {
            info.args(["--image-property", &format!("WINDOWS/VERSION/{k}={v}")]);
        }
        let o = info.output().unwrap();
        assert!(o.status.success(), "{}", show(&o));
        wims.push((id.to_string(), wimlib_arch_and_version(&wim)));
        sources.push((id, pkg));
    }
    let lib = dir.path().join("SCCMContentLib");
    let pkgs: Vec<PackageSource<'_>> = sources
        .iter()
        .map(|(id, folder)| PackageSource {
            id: id.clone(),
            version: 1,
            folder,
        })
        .collect();
    build_library(&lib, &pkgs, &BuildOptions::default()).unwrap();
    let ng = capmedia_testdp::Nginx::start_temp(&lib).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(wims[0].1 .1.as_deref(), Some("10.0.26100.1"));
    assert_eq!(wims[1].1 .1, None);

    for dp in [lib.display().to_string(), ng.url()] {
        let v = json_doc(&run(&["dp", "list", "--dp", &dp, "--json"]));
        let rows = v["packages"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "{v:#}");
        for (row, (id, (arch, version))) in rows.iter().zip(&wims) {
            assert_eq!(row["package"], id.as_str(), "{v:#}");
            assert_eq!(row["boot_image"]["arch"], arch.as_str(), "{v:#}");
            assert_eq!(
                row["boot_image"]["winpe_version"].as_str(),
                version.as_deref(),
                "{v:#}"
            );
            assert_eq!(row["boot_image"]["image_index"], 1, "{v:#}");
            // Exact bytes: the WIM's size on disk.
            let wim = dir.path().join(id).join(format!("boot.{id}.wim"));
            assert_eq!(row["size"], fs::metadata(&wim).unwrap().len(), "{v:#}");
        }
        let o = run(&["dp", "list", "--dp", &dp]);
        assert!(o.status.success(), "{}", show(&o));
        let t = text(&o.stdout);
        assert!(t.lines().next().unwrap().contains("ARCH"), "{t}");
        let a = t.lines().find(|l| l.starts_with("PS10000A")).unwrap();
        assert!(a.contains(" x64 ") && a.contains("10.0.26100.1"), "{t}");
        assert!(a.contains(" KiB"), "{t}");
        let c = t.lines().find(|l| l.starts_with("PS10000C")).unwrap();
        assert!(c.contains(" arm64 "), "{t}");
    }
}

// -------------------------------------------------------------- 7. cache

/// `cache list` shows the cache's place and total size; `cache clean
/// --older-than DAYS` removes the blobs not used for that long, and only
/// those.
#[test]
fn cache_list_shows_place_and_size_and_clean_removes_old_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let old = cache.join("AB/AB00");
    let recent = cache.join("CD/CD00");
    fs::create_dir_all(old.parent().unwrap()).unwrap();
    fs::create_dir_all(recent.parent().unwrap()).unwrap();
    fs::write(&old, vec![0u8; 3 << 20]).unwrap();
    fs::write(&recent, vec![0u8; 1000]).unwrap();
    let days_ago =
        |d: u64| std::time::SystemTime::now() - std::time::Duration::from_secs(d * 86_400);
    let set = |p: &Path, t| {
        let f = fs::File::options().write(true).open(p).unwrap();
        f.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t))
            .unwrap();
    };
    set(&old, days_ago(40));
    set(&recent, days_ago(2));
    // Stamps (their content does not matter here): one per blob, and one
    // whose blob is gone.
    let stamps = cache.join("stamps");
    fs::create_dir_all(&stamps).unwrap();
    for s in ["AB00", "CD00", "EF00"] {
        fs::write(stamps.join(s), "stamp").unwrap();
    }
    let c = cache.to_str().unwrap();

    let o = run(&["cache", "list", "--cache", c]);
    assert!(o.status.success(), "{}", show(&o));
    let t = text(&o.stdout);
    let total = (3u64 << 20) + 1000;
    assert!(
        t.contains(&format!("cache {c}: 2 blobs, 3.00 MiB ({total} bytes)")),
        "{t}"
    );
    let v = json_doc(&run(&["cache", "list", "--cache", c, "--json"]));
    assert_eq!(v["command"], "cache list");
    assert_eq!(v["cache"], c);
    assert_eq!(v["bytes"], total);
    assert_eq!(v["blobs"].as_array().unwrap().len(), 2, "{v:#}");

    // Without --older-than, blobs stay; only the orphan stamp goes.
    let o = run(&["cache", "clean", "--cache", c]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(old.exists() && recent.exists());
    assert!(!stamps.join("EF00").exists(), "{}", show(&o));
    assert!(stamps.join("AB00").exists() && stamps.join("CD00").exists());
    let o = run(&["cache", "clean", "--cache", c, "--older-than", "30"]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(!old.exists(), "{}", show(&o));
    assert!(!stamps.join("AB00").exists(), "the old blob's stamp stays");
    assert!(recent.exists(), "{}", show(&o));
    assert!(stamps.join("CD00").exists());
    assert!(
        text(&o.stdout).contains("1 blobs not used for 30 days removed (3.00 MiB)"),
        "{}",
        show(&o)
    );
    let v = json_doc(&run(&["cache", "list", "--cache", c, "--json"]));
    assert_eq!(v["bytes"], 1000);
}

// ------------------------------------------ firmware (issue 19, item 3)

/// The dry run says which firmware each output boots on: MBR disks BIOS
/// and UEFI, GPT disks UEFI only, vhdx GPT (generation 2) by default, ISO
/// sets both; `capmedia devices` says it of usb-raw.
#[test]
fn dry_run_says_which_firmware_each_output_boots_on() {
    require_plugins();
    let dir = tempfile::tempdir().unwrap();
    for (sink, file, extra, says) in [
        (
            "iso-set",
            "x.iso",
            &[][..],
            "boots on BIOS and UEFI computers (El Torito",
        ),
        (
            "usb-raw",
            "x.img",
            &[][..],
            "boots on BIOS and UEFI computers (MBR disk",
        ),
        (
            "usb-raw",
            "x.img",
            &["--partition-scheme", "gpt"][..],
            "boots on UEFI computers only (GPT disk",
        ),
        (
            "vhd",
            "x.vhd",
            &[][..],
            "Hyper-V: a generation 1 virtual machine boots it by BIOS",
        ),
        (
            "vhdx",
            "x.vhdx",
            &[][..],
            "boots on UEFI computers only (GPT disk); Hyper-V: a generation 2",
        ),
        (
            "vhdx",
            "x.vhdx",
            &["--partition-scheme", "mbr"][..],
            "boots on BIOS and UEFI computers (MBR disk",
        ),
    ] {
        let out = dir.path().join(file);
        let o = capture(sink, &out, dir.path(), &[extra, &["--dry-run"]].concat());
        assert!(o.status.success(), "{sink} {extra:?}: {}", show(&o));
        let t = text(&o.stdout);
        assert!(t.contains(says), "{sink} {extra:?}: {t}");
        let v = json_doc(&capture(
            sink,
            &out,
            dir.path(),
            &[extra, &["--dry-run", "--json"]].concat(),
        ));
        assert!(
            v["notes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n.as_str().unwrap().contains(says)),
            "{v:#}"
        );
    }
    let o = run(&["devices", "--all"]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        text(&o.stdout)
            .contains("usb-raw writes an MBR disk by default: it boots on BIOS and UEFI"),
        "{}",
        show(&o)
    );
}

/// A sink that reads back before committing (usb-raw): the report's verify
/// time is that read-back's, not the zero of a verify stage with nothing
/// left to do.
#[test]
fn verify_time_is_the_read_backs_own() {
    require_plugins();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.img");
    let v = json_doc(&capture("usb-raw", &out, dir.path(), &["--json"]));
    assert_eq!(v["verified_by"], "sink", "{v:#}");
    let t = &v["timings"];
    assert!(t["verify_s"].as_f64().unwrap() > 0.0, "{v:#}");
    assert!(
        t["verify_s"].as_f64().unwrap() + t["write_s"].as_f64().unwrap()
            <= t["total_s"].as_f64().unwrap(),
        "{v:#}"
    );
}
