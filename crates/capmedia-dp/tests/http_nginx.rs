//! The HTTP backend against a real nginx (Debian package `nginx-light`)
//! serving a built library with autoindex, started and stopped by the test.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use capmedia_content::PackageKind;
use capmedia_dp::{boot_wim, ContentCache, Dp, DpError, DpOptions};
use capmedia_testdp::Nginx;
use common::*;

/// Start nginx serving `lib` at `/SMS_DP_SMSPKG$/` with its own config, pid
/// and logs in `dir`.
fn start_nginx(dir: &Path, lib: &Path) -> Nginx {
    start_nginx_with(dir, lib, None)
}

/// As [`start_nginx`]; with `tls = Some((cert, key))` it speaks HTTPS.
fn start_nginx_with(dir: &Path, lib: &Path, tls: Option<(&Path, &Path)>) -> Nginx {
    Nginx::start(dir, lib, tls).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn nginx_autoindex_serves_the_same_library() {
    let fx = fixture(false);
    let ng_dir = fx.dir.path().join("nginx");
    fs::create_dir_all(&ng_dir).unwrap();
    let ng = start_nginx(&ng_dir, &fx.lib);
    let url = format!("http://127.0.0.1:{}/SMS_DP_SMSPKG$/", ng.port());
    let dp = Dp::open(&url, quick_opts()).unwrap();

    let list = dp.list_packages().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0].kind, PackageKind::BootImage);
    assert_eq!(list[0].size, 405_000);
    assert_eq!(list[1].files, 3);

    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    for (pkg, files) in [(BOOT, 4), (OTHER, 3)] {
        let c = dp.resolve(&pid(pkg)).unwrap();
        assert_eq!(c.files.len(), files);
        let fetched = dp.fetch(&c, &cache, &|_, _| {}).unwrap();
        for f in fetched {
            assert_eq!(
                fs::read(&f.local).unwrap(),
                fx.read_src(pkg, f.path.as_str()),
                "{}",
                f.path
            );
        }
    }
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let wim = boot_wim(&c).unwrap();
    assert_eq!(
        dp.read_head(&c, wim, 208).unwrap(),
        fx.read_src(BOOT, &format!("boot.{BOOT}.wim"))[..208]
    );

    // A blob removed from FileLib is found missing before any fetch.
    let h = sha256_hex(&fx.read_src(OTHER, "install.cmd"));
    fs::remove_file(blob_path(&fx, &h)).unwrap();
    let err = dp.resolve(&pid(OTHER)).unwrap_err();
    assert!(matches!(err, DpError::Incomplete { .. }), "{err}");
    assert!(err.to_string().contains("install.cmd") && err.to_string().contains(&url));
    let err = dp.resolve(&pid("PS1000FF")).unwrap_err();
    assert!(matches!(err, DpError::NotDistributed { .. }), "{err}");
    drop(ng);
}

/// A web server that answers but serves no content library: listing,
/// resolving and reading a package all say there is no PkgLib there, not
/// "package not distributed".
#[test]
fn a_server_without_pkglib_is_not_a_dp() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    fs::create_dir_all(site.join("DataLib")).unwrap();
    fs::write(site.join("index.html"), "<html>intranet</html>").unwrap();
    let ng = start_nginx(&dir.path().join("nginx"), &site);
    let url = format!("http://127.0.0.1:{}/SMS_DP_SMSPKG$/", ng.port());
    let dp = Dp::open(&url, quick_opts()).unwrap();
    let want = format!("no PkgLib at {url}PkgLib/: is this the SMS_DP_SMSPKG$ endpoint?");
    let e = dp.list_packages().unwrap_err();
    assert!(matches!(e, DpError::NoPkgLib { .. }), "{e:?}");
    assert!(e.to_string().contains(&want), "{e}");
    for e in [
        dp.resolve(&pid(BOOT)).unwrap_err(),
        dp.resolve_listed(&pid(BOOT)).unwrap_err(),
    ] {
        assert!(matches!(e, DpError::NoPkgLib { .. }), "{e:?}");
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("openssl (Debian package openssl) is needed: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA and a server certificate for 127.0.0.1 signed by it.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3650",
            "-subj",
            "/CN=capmedia test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "3650",
            "-extfile",
            "ext.cnf",
        ],
    );
}

#[test]
fn https_with_a_given_ca_file() {
    let fx = fixture(false);
    let ng_dir = fx.dir.path().join("nginx");
    fs::create_dir_all(&ng_dir).unwrap();
    make_certs(&ng_dir);
    let ng = start_nginx_with(
        &ng_dir,
        &fx.lib,
        Some((&ng_dir.join("leaf.pem"), &ng_dir.join("leaf.key"))),
    );
    let url = format!("https://127.0.0.1:{}/SMS_DP_SMSPKG$/", ng.port());

    let opts = DpOptions {
        ca_file: Some(ng_dir.join("ca.pem")),
        ..quick_opts()
    };
    let dp = Dp::open(&url, opts).unwrap();
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    for f in dp.fetch(&c, &cache, &|_, _| {}).unwrap() {
        assert_eq!(
            fs::read(&f.local).unwrap(),
            fx.read_src(BOOT, f.path.as_str())
        );
    }

    // The system roots do not know the test CA: refused, not retried forever.
    let dp = Dp::open(&url, quick_opts()).unwrap();
    let err = dp.list_packages().unwrap_err();
    assert!(matches!(err, DpError::Request { .. }), "{err}");
    assert!(err.to_string().contains(&url), "{err}");
    eprintln!("{err}");

    // A CA file without certificates is a bad location.
    fs::write(ng_dir.join("empty.pem"), "").unwrap();
    let opts = DpOptions {
        ca_file: Some(ng_dir.join("empty.pem")),
        ..quick_opts()
    };
    assert!(matches!(
        Dp::open(&url, opts),
        Err(DpError::BadLocation { .. })
    ));
    drop(ng);
}
