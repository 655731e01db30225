//! Reaching a DP that wants credentials, as a user does: the real binary
//! against the Python NTLM test DP (pyspnego's acceptor, requiring Windows
//! authentication as an IIS content site does) and against nginx over HTTPS
//! requiring a PKI client certificate (`ssl_verify_client on`, a test CA
//! made with `openssl`), both serving the bundled sample DP on 127.0.0.1.
//! The password never appears in stdout, stderr, the JSON report or the
//! cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use capmedia_sample::X64_PACKAGE;
use capmedia_testdp::{Kdc, Nginx, NtlmDp, Pki, KRB_REALM};
use common::{assert_no_piece_of, json_doc, sample, show};

const PASSWORD: &str = "Pa55-w0rd-nobody-may-see";
const ACCOUNT: &str = "CONTOSO\\cmadmin";

fn ntlm_dp() -> NtlmDp {
    NtlmDp::start(&sample().content_lib, "CONTOSO", "cmadmin", PASSWORD, &[])
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `capmedia args` with the environment given (and no terminal).
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_capmedia"));
    cmd.args(args);
    if matches!(args.first(), Some(&"capture" | &"verify")) {
        cmd.arg("--plugin-dir").arg(require_plugins());
    }
    cmd.env_remove("CAPMEDIA_PLUGIN_PATH")
        .env_remove("CAPMEDIA_DP_PASSWORD")
        .env_remove("CAPMEDIA_DP_CERT_PASSWORD")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        // No Kerberos ticket of whoever runs the tests: a test that wants
        // one gives its own cache.
        .env("KRB5CCNAME", "FILE:/nonexistent/capmedia-test-no-ticket")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running capmedia")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every byte of every file under `dir` (the cache), as lossy text.
fn all_text_under(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            out.push_str(&p.display().to_string());
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = fs::read(&p) {
                out.push_str(&String::from_utf8_lossy(&b));
            }
        }
    }
    out
}

fn assert_no_password(what: &str, text: &str) {
    assert!(
        !text.contains(PASSWORD),
        "the password appears in {what}: {text}"
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn require_plugins() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_capmedia"))
        .parent()
        .unwrap()
        .to_path_buf();
    let lib = common::lib(&dir, "capmedia_plugin_iso_set");
    assert!(
        lib.is_file(),
        "{} missing: run `cargo build --workspace` first (cargo xtask test does)",
        lib.display()
    );
    dir
}

#[test]
fn capture_and_dp_list_through_ntlm_with_dp_user_and_no_password_anywhere() {
    require_plugins();
    let dp = ntlm_dp();
    let url = dp.url();
    let tmp = tempfile::tempdir().unwrap();
    let pwfile = tmp.path().join("pw");
    fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();

    // dp list, password from the environment.
    let o = run(
        &["dp", "list", "--dp", &url, "--dp-user", ACCOUNT, "--json"],
        &[("CAPMEDIA_DP_PASSWORD", PASSWORD)],
    );
    assert!(o.status.success(), "{}", show(&o));
    let doc = json_doc(&o);
    let ids: Vec<&str> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["package"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&X64_PACKAGE), "{doc:#}");
    assert_no_password("dp list stdout", &String::from_utf8_lossy(&o.stdout));
    assert_no_password("dp list stderr", &stderr(&o));

    // A capture, password from --dp-password-file, JSON report and text run.
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let iso = out.join("capture.iso");
    for json in [true, false] {
        let mut args = vec![
            "capture",
            "--dp",
            &url,
            "--dp-user",
            ACCOUNT,
            "--dp-password-file",
            s(&pwfile),
            "--boot-image",
            X64_PACKAGE,
            "--target-arch",
            "x64",
            "--sink",
            "iso-set",
            "--out",
            s(&iso),
            "--cache",
            s(&cache),
            "-v",
        ];
        if json {
            args.push("--json");
        }
        let o = run(&args, &[]);
        assert!(o.status.success(), "{}", show(&o));
        if json {
            let report = json_doc(&o);
            assert_eq!(report["boot_image"]["package"], X64_PACKAGE, "{report:#}");
        }
        assert_no_password("capture stdout", &String::from_utf8_lossy(&o.stdout));
        assert_no_password("capture stderr", &stderr(&o));
    }
    let v = run(&["verify", s(&iso)], &[]);
    assert!(v.status.success(), "{}", show(&v));
    assert_no_password("the cache", &all_text_under(&cache));
    assert_no_password("the output folder", &all_text_under(&out));
    let log = dp.log();
    assert!(log.contains("auth conn="), "{log}");
    assert!(!log.contains("refused"), "{log}");
}

#[test]
fn without_dp_user_the_401_names_ntlm_negotiate_and_dp_user() {
    let dp = ntlm_dp();
    let url = dp.url();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("capture.iso");
    let o = run(
        &[
            "capture",
            "--dp",
            &url,
            "--boot-image",
            X64_PACKAGE,
            "--sink",
            "iso-set",
            "--out",
            s(&out),
            "--cache",
            s(&tmp.path().join("cache")),
            "--json",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let doc = json_doc(&o);
    let msg = doc["error"]["message"].as_str().unwrap();
    for part in ["401", "NTLM", "Negotiate", "--dp-user", X64_PACKAGE, &url] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    assert_eq!(doc["error"]["kind"], "dp", "{doc:#}");
    assert!(!out.exists(), "nothing written");

    let o = run(&["dp", "list", "--dp", &url], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = stderr(&o);
    assert!(err.contains("--dp-user") && err.contains("NTLM"), "{err}");
}

#[test]
fn a_wrong_password_is_named_with_the_account_and_nothing_is_written() {
    let dp = ntlm_dp();
    let url = dp.url();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("capture.iso");
    let wrong = "Wr0ng-but-still-secret";
    let o = run(
        &[
            "capture",
            "--dp",
            &url,
            "--dp-user",
            ACCOUNT,
            "--boot-image",
            X64_PACKAGE,
            "--sink",
            "iso-set",
            "--out",
            s(&out),
            "--cache",
            s(&tmp.path().join("cache")),
        ],
        &[("CAPMEDIA_DP_PASSWORD", wrong)],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = stderr(&o);
    assert!(err.contains("wrong password"), "{err}");
    assert!(err.contains(ACCOUNT), "{err}");
    assert!(err.contains(X64_PACKAGE), "{err}");
    assert!(!err.contains(wrong), "{err}");
    assert!(!String::from_utf8_lossy(&o.stdout).contains(wrong));
    assert!(!out.exists(), "nothing written");
}

#[test]
fn https_dp_with_client_certificates_pem_and_pkcs12() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::make(&tmp.path().join("pki")).unwrap_or_else(|e| panic!("{e}"));
    let nginx = Nginx::start_with(
        &tmp.path().join("nginx"),
        &sample().content_lib,
        Some((&pki.server_cert(), &pki.server_key())),
        Some(&pki.ca()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let url = nginx.https_url();
    let ca = pki.ca();
    let base = ["dp", "list", "--dp", &url, "--dp-ca-file", s(&ca), "--json"];

    let o = run(&base, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let doc = json_doc(&o);
    let msg = doc["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("client certificate") && msg.contains("--dp-client-cert"),
        "{msg}"
    );

    let pem = pki.client_pem();
    let o = run(&[&base[..], &["--dp-client-cert", s(&pem)]].concat(), &[]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(json_doc(&o)["packages"].as_array().unwrap().len() >= 2);

    let pfx = pki.client_pfx();
    let o = run(
        &[&base[..], &["--dp-client-cert", s(&pfx)]].concat(),
        &[("CAPMEDIA_DP_CERT_PASSWORD", Pki::PFX_PASSWORD)],
    );
    assert!(o.status.success(), "{}", show(&o));
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(!text.contains(Pki::PFX_PASSWORD), "{text}");

    let o = run(
        &[&base[..], &["--dp-client-cert", s(&pfx)]].concat(),
        &[("CAPMEDIA_DP_CERT_PASSWORD", "not-it")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let msg = json_doc(&o)["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        msg.contains("wrong password") && msg.contains("client.pfx"),
        "{msg}"
    );
    assert!(!msg.contains("not-it"), "{msg}");
}

/// A realm with its KDC, the user `alice` with a ticket in a cache file,
/// and the Kerberos test DP (`Negotiate` only, its key for
/// `HTTP/127.0.0.1` in a keytab) serving the sample DP.
struct Realm {
    kdc: Kdc,
    dp: NtlmDp,
    alice_keytab: PathBuf,
    ccache: PathBuf,
    tmp: tempfile::TempDir,
}

impl Realm {
    fn start() -> Realm {
        let kdc = Kdc::start().unwrap_or_else(|e| panic!("{e}"));
        let alice_keytab = kdc.add_principal("alice").unwrap();
        let http_keytab = kdc.add_principal("HTTP/127.0.0.1").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let ccache = tmp.path().join("cc");
        kdc.kinit("alice", &alice_keytab, &ccache).unwrap();
        let dp = NtlmDp::start_kerberos(&sample().content_lib, &kdc, &http_keytab)
            .unwrap_or_else(|e| panic!("{e}"));
        Realm {
            kdc,
            dp,
            alice_keytab,
            ccache,
            tmp,
        }
    }

    fn cc_env(&self, ccache: &Path) -> String {
        format!("FILE:{}", ccache.display())
    }

    /// `capmedia args` with the realm's krb5.conf and `ccache`.
    fn run(&self, args: &[&str], ccache: &Path) -> Output {
        let conf = self.kdc.krb5_conf();
        let cc = self.cc_env(ccache);
        run(args, &[("KRB5_CONFIG", s(&conf)), ("KRB5CCNAME", &cc)])
    }

    /// A new cache holding alice's ticket-granting ticket only.
    fn fresh_cache(&self, name: &str) -> PathBuf {
        let cc = self.tmp.path().join(name);
        self.kdc.kinit("alice", &self.alice_keytab, &cc).unwrap();
        cc
    }
}

#[test]
fn kerberos_from_a_ticket_cache_with_no_password_and_no_secret_in_any_output() {
    require_plugins();
    let realm = Realm::start();
    let url = realm.dp.url();
    let out = realm.tmp.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let cache = realm.tmp.path().join("cache");

    // A capture with no --dp-user and no password: the cache's ticket.
    let o = realm.run(
        &[
            "capture",
            "--dp",
            &url,
            "--boot-image",
            X64_PACKAGE,
            "--target-arch",
            "x64",
            "--sink",
            "iso-set",
            "--out",
            s(&out.join("capture.iso")),
            "--cache",
            s(&cache),
            "--json",
        ],
        &realm.ccache,
    );
    assert!(o.status.success(), "{}\n{}", show(&o), realm.dp.log());
    let log = realm.dp.log();
    assert!(
        log.contains(&format!("user=alice@{KRB_REALM} mech=kerberos")),
        "{log}"
    );
    assert!(!log.contains("refused"), "{log}");
    let report = json_doc(&o);
    assert_eq!(report["boot_image"]["package"], X64_PACKAGE, "{report:#}");
    assert!(out.join("capture.iso").is_file());

    // dp list as user@REALM: that principal's ticket, no password asked
    // (no terminal, no CAPMEDIA_DP_PASSWORD).
    let principal = format!("alice@{KRB_REALM}");
    let o2 = realm.run(
        &[
            "dp",
            "list",
            "--dp",
            &url,
            "--dp-user",
            &principal,
            "--json",
        ],
        &realm.ccache,
    );
    assert!(o2.status.success(), "{}\n{}", show(&o2), realm.dp.log());
    assert!(String::from_utf8_lossy(&o2.stdout).contains(X64_PACKAGE));

    // A principal with no ticket in the cache: a password is wanted, and
    // the message says kinit.
    let o3 = realm.run(
        &[
            "dp",
            "list",
            "--dp",
            &url,
            "--dp-user",
            &format!("bob@{KRB_REALM}"),
        ],
        &realm.ccache,
    );
    assert_eq!(o3.status.code(), Some(1), "{}", show(&o3));
    let err = stderr(&o3);
    assert!(
        err.contains("needs a password") && err.contains("kinit bob@"),
        "{err}"
    );

    // No piece of the ticket cache (tickets, session keys) or of the
    // user's or the service's keys in stdout, stderr, the report or the
    // content cache.
    let mut text = String::new();
    for o in [&o, &o2, &o3] {
        text.push_str(&String::from_utf8_lossy(&o.stdout));
        text.push_str(&stderr(o));
    }
    text.push_str(&all_text_under(&cache));
    let keytab = fs::read(&realm.alice_keytab).unwrap();
    let tickets = fs::read(&realm.ccache).unwrap();
    assert_no_piece_of("the ticket cache", &tickets, &text);
    assert_no_piece_of("alice's keytab", &keytab, &text);
}

#[test]
fn kerberos_failures_are_named_with_their_fix() {
    let realm = Realm::start();
    let url = realm.dp.url();
    let list = ["dp", "list", "--dp", &url];

    // No ticket: the 401 says so, kinit, and --dp-user for NTLM.
    let none = realm.tmp.path().join("no-such-cache");
    let o = realm.run(&list, &none);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = stderr(&o);
    for part in [
        "401",
        "Negotiate",
        "no Kerberos ticket",
        "no-such-cache",
        "kinit",
        "--dp-user",
    ] {
        assert!(err.contains(part), "{part:?} not in {err}");
    }

    // The KDC does not answer (a service ticket is needed: a cache with
    // the ticket-granting ticket only).
    let cc = realm.fresh_cache("tgt-only");
    let dead = capmedia_testdp::free_port().unwrap();
    let conf = realm.kdc.unreachable_conf(dead).unwrap();
    let o = run(
        &list,
        &[
            ("KRB5_CONFIG", s(&conf)),
            ("KRB5CCNAME", &realm.cc_env(&cc)),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = stderr(&o);
    assert!(err.contains("no Kerberos KDC answered"), "{err}");
    assert!(err.contains("--dp-user"), "{err}");

    // The KDC knows no HTTP/127.0.0.1 (no SPN for the DP).
    realm.kdc.delete_principal("HTTP/127.0.0.1").unwrap();
    let o = realm.run(&list, &cc);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = stderr(&o);
    assert!(
        err.contains("no Kerberos principal for HTTP@127.0.0.1") && err.contains("setspn"),
        "{err}"
    );
    let log = realm.dp.log();
    assert!(!log.contains("auth conn"), "{log}");
}
