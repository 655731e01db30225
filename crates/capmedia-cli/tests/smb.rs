//! `capmedia` against an SMB DP: a real Samba (`smbd` with its own config
//! on 127.0.0.1 and a free port) sharing the bundled sample library as
//! `SCCMContentLib$`, with part of its FileLib moved to a second share
//! `SCCMContentLibD$`, read with `--dp smb://...` and a Windows account.
//!
//! Each capture is checked as capture.rs checks its own: the report lists
//! exactly the outputs with their BLAKE3, and `capmedia verify` accepts
//! them. The password must never appear in any output, report or cache.
//! A capture with a Kerberos ticket instead of a password runs against a
//! real MIT KDC and a Samba accepting Kerberos; no piece of the ticket
//! cache or the keys may appear anywhere either.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use capmedia_sample::X64_PACKAGE;
use capmedia_testdp::{Kdc, Samba, KRB_REALM, SMB_USER};

const PASSWORD: &str = "Cm-Smb-Secret-4711";
const EPOCH: &str = "1700000000";

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_capmedia"))
        .parent()
        .unwrap()
        .to_path_buf()
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

/// The sample library split over two share folders, once per test run:
/// every second FileLib prefix folder moved to `SCCMContentLibD/FileLib`.
fn split_sample() -> &'static (PathBuf, PathBuf) {
    static DIRS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DIRS.get_or_init(|| {
        for name in ["iso_set", "usb_raw", "vhd", "vhdx"] {
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
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("smb-sample-dp");
        let _ = fs::remove_dir_all(&dir);
        let sample = capmedia_sample::write_sample_dp(&dir.join("src")).unwrap();
        let lib = dir.join("SCCMContentLib");
        let second = dir.join("SCCMContentLibD");
        copy_tree(&sample.content_lib, &lib);
        fs::create_dir_all(second.join("FileLib")).unwrap();
        let mut prefixes: Vec<PathBuf> = fs::read_dir(lib.join("FileLib"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        prefixes.sort();
        assert!(prefixes.len() >= 2, "{prefixes:?}");
        for p in prefixes.iter().step_by(2) {
            fs::rename(p, second.join("FileLib").join(p.file_name().unwrap())).unwrap();
        }
        Samba::open_up(&lib).unwrap();
        Samba::open_up(&second).unwrap();
        (lib, second)
    })
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn samba() -> Samba {
    let (lib, second) = split_sample();
    Samba::start(
        &[("SCCMContentLib$", lib), ("SCCMContentLibD$", second)],
        PASSWORD,
    )
    .unwrap()
}

/// How a test logs on.
enum Auth<'a> {
    /// `TESTDP\daemon` with this password (from the environment).
    Password(&'a str),
    /// The ticket cache `KRB5CCNAME` of the realm whose `krb5.conf` is
    /// given, as `--dp-user` if given (else the cache's default).
    Ticket {
        krb5_conf: PathBuf,
        ccache: PathBuf,
        user: Option<String>,
    },
}

/// `capmedia` with the built plugins, the account, and the password from
/// the environment (never argv).
fn capmedia(args: &[&str], password: &str) -> Output {
    capmedia_as(args, &Auth::Password(password))
}

fn capmedia_as(args: &[&str], auth: &Auth<'_>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_capmedia"));
    c.args(args);
    if args.first() == Some(&"capture") {
        c.arg("--plugin-dir").arg(bin_dir());
    }
    match auth {
        Auth::Password(password) => {
            c.args(["--dp-user", &format!("TESTDP\\{SMB_USER}")])
                .env("CAPMEDIA_DP_PASSWORD", password);
        }
        Auth::Ticket {
            krb5_conf,
            ccache,
            user,
        } => {
            if let Some(u) = user {
                c.args(["--dp-user", u]);
            }
            c.env("KRB5_CONFIG", krb5_conf)
                .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
                .env_remove("CAPMEDIA_DP_PASSWORD");
        }
    }
    c.env_remove("CAPMEDIA_PLUGIN_PATH")
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(files(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Capture the x64 sample package over SMB with `sink`; check the report
/// and `capmedia verify`, and that the password is nowhere.
fn capture_over_smb(sink: &str, extra: &[&str], file: &str) {
    let smb = samba();
    capture_from(
        &smb,
        &smb.url("SCCMContentLib$"),
        &Auth::Password(PASSWORD),
        sink,
        extra,
        file,
    );
}

/// Capture from `url` on `smb` as `auth`, check the outputs; returns the
/// run's output and the cache folder's files' contents, for secret checks.
fn capture_from(
    smb: &Samba,
    url: &str,
    auth: &Auth<'_>,
    sink: &str,
    extra: &[&str],
    file: &str,
) -> (Output, Vec<Vec<u8>>) {
    let scratch = tempfile::tempdir().unwrap();
    let (out_dir, cache, staging) = (
        scratch.path().join("out"),
        scratch.path().join("cache"),
        scratch.path().join("staging"),
    );
    for d in [&out_dir, &cache, &staging] {
        fs::create_dir(d).unwrap();
    }
    let out = out_dir.join(file);
    let mut args = vec![
        "capture",
        "--dp",
        url,
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
        "--target-arch",
        "x64",
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = capmedia_as(&args, auth);
    assert!(o.status.success(), "{}\n{}", show(&o), smb.log());
    let report = common::json_doc(&o);
    assert_eq!(report["sink"], sink, "{report:#}");
    assert_eq!(report["boot_image"]["package"], X64_PACKAGE, "{report:#}");
    let mut listed = BTreeSet::new();
    for entry in report["outputs"].as_array().unwrap() {
        let path = PathBuf::from(entry["path"].as_str().unwrap());
        let mut h = blake3::Hasher::new();
        h.update_reader(fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(
            entry["blake3"].as_str().unwrap(),
            h.finalize().to_hex().as_str()
        );
        let v = Command::new(env!("CARGO_BIN_EXE_capmedia"))
            .arg("verify")
            .arg(&path)
            .arg("--plugin-dir")
            .arg(bin_dir())
            .output()
            .unwrap();
        assert!(
            v.status.success() && text(&v.stdout).contains(": OK"),
            "{}",
            show(&v)
        );
        listed.insert(path);
    }
    assert_eq!(listed.first(), Some(&out), "{report:#}");
    assert_eq!(
        files(&out_dir).into_iter().collect::<BTreeSet<_>>(),
        listed,
        "the output folder holds exactly the outputs"
    );
    // The password is in no output, report or cached file.
    let cached: Vec<Vec<u8>> = files(&cache).iter().map(|f| fs::read(f).unwrap()).collect();
    assert!(!contains(&o.stdout, PASSWORD) && !contains(&o.stderr, PASSWORD));
    for f in &cached {
        assert!(!contains(f, PASSWORD));
    }
    (o, cached)
}

#[test]
fn capture_iso_set_over_smb() {
    capture_over_smb("iso-set", &[], "capture.iso");
}

#[test]
fn capture_usb_raw_over_smb() {
    capture_over_smb("usb-raw", &[], "capture.img");
}

#[test]
fn capture_vhd_over_smb() {
    capture_over_smb("vhd", &["--vhd-type", "fixed"], "capture.vhd");
}

#[test]
fn capture_vhdx_over_smb() {
    capture_over_smb("vhdx", &[], "capture.vhdx");
}

#[test]
fn dp_list_over_smb() {
    let smb = samba();
    let url = smb.url("SCCMContentLib$");
    let o = capmedia(&["dp", "list", "--dp", &url, "--json"], PASSWORD);
    assert!(o.status.success(), "{}\n{}", show(&o), smb.log());
    let doc = common::json_doc(&o);
    let listed = doc.to_string();
    assert!(listed.contains(X64_PACKAGE), "{doc:#}");
    assert!(!contains(&o.stdout, PASSWORD) && !contains(&o.stderr, PASSWORD));
    // And as a table, the UNC spelling of the same DP is refused politely
    // only by its port (445 is not where this Samba listens): that path
    // is covered by the dp crate; here the table names the package.
    let o = capmedia(&["dp", "list", "--dp", &url], PASSWORD);
    assert!(o.status.success(), "{}", show(&o));
    assert!(text(&o.stdout).contains(X64_PACKAGE), "{}", show(&o));
}

#[test]
fn a_wrong_password_writes_nothing_and_never_shows() {
    let smb = samba();
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("out.iso");
    let cache = scratch.path().join("cache");
    let url = smb.url("SCCMContentLib$");
    let wrong = "Wrong-Secret-0815";
    for json in [false, true] {
        let mut args = vec![
            "capture",
            "--dp",
            &url,
            "--boot-image",
            X64_PACKAGE,
            "--sink",
            "iso-set",
            "--out",
            out.to_str().unwrap(),
            "--cache",
            cache.to_str().unwrap(),
        ];
        if json {
            args.push("--json");
        }
        let o = capmedia(&args, wrong);
        assert!(!o.status.success(), "{}", show(&o));
        let all = text(&o.stdout) + &text(&o.stderr);
        assert!(
            all.contains("logon")
                && all.contains(&format!("TESTDP\\{SMB_USER}"))
                && all.contains(&url),
            "{}",
            show(&o)
        );
        assert!(!all.contains(wrong), "{}", show(&o));
        assert!(!out.exists(), "nothing written");
        for f in files(&cache) {
            assert!(!contains(&fs::read(&f).unwrap(), wrong), "{}", f.display());
        }
    }
}

/// A Kerberos ticket instead of a password: `--dp-user daemon@REALM` with
/// that principal's ticket in the cache (no password anywhere, none asked
/// for), then `dp list` with no account at all (the cache's default
/// principal). No piece of the ticket cache or of the user's keytab shows
/// in any output, report or cached file.
#[test]
fn capture_and_dp_list_over_smb_with_a_kerberos_ticket() {
    let (lib, second) = split_sample();
    let kdc = Kdc::start().unwrap_or_else(|e| panic!("{e}"));
    let smb = Samba::start_kerberos(
        &[("SCCMContentLib$", lib), ("SCCMContentLibD$", second)],
        PASSWORD,
        &kdc,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ccache = kdc.ticket(SMB_USER).unwrap();
    let url = smb.url_by_name("SCCMContentLib$");
    let principal = format!("{SMB_USER}@{KRB_REALM}");
    let named = Auth::Ticket {
        krb5_conf: kdc.krb5_conf(),
        ccache: ccache.clone(),
        user: Some(principal.clone()),
    };
    let (o, cached) = capture_from(&smb, &url, &named, "usb-raw", &[], "capture.img");
    let log = smb.log();
    assert!(
        log.contains(&principal),
        "no Kerberos logon in the smbd log: {log}"
    );

    let default = Auth::Ticket {
        krb5_conf: kdc.krb5_conf(),
        ccache: ccache.clone(),
        user: None,
    };
    let o2 = capmedia_as(&["dp", "list", "--dp", &url, "--json"], &default);
    assert!(o2.status.success(), "{}\n{}", show(&o2), smb.log());
    assert!(text(&o2.stdout).contains(X64_PACKAGE), "{}", show(&o2));

    let mut all = String::new();
    for o in [&o, &o2] {
        all.push_str(&text(&o.stdout));
        all.push_str(&text(&o.stderr));
    }
    for f in &cached {
        all.push_str(&String::from_utf8_lossy(f));
    }
    let tickets = fs::read(&ccache).unwrap();
    common::assert_no_piece_of("the ticket cache", &tickets, &all);
}
