//! Windows authentication and client certificates against real servers:
//! the Python NTLM test DP (pyspnego's NTLM acceptor, `python/ntlm_dp.py`
//! in capmedia-testdp) and nginx with `ssl_verify_client on` and a test PKI
//! made with `openssl`.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use capmedia_dp::{
    boot_wim, Account, ClientCert, ContentCache, Credentials, Dp, DpError, DpOptions, Secret,
};
use capmedia_testdp::{Nginx, NtlmDp, Pki};
use common::*;

const PASSWORD: &str = "Sup3r-s3cret!pw";

fn ntlm_dp(lib: &std::path::Path, forbid: &[&str]) -> NtlmDp {
    NtlmDp::start(lib, "CONTOSO", "cmadmin", PASSWORD, forbid).unwrap_or_else(|e| panic!("{e}"))
}

fn with_account(account: &str, password: &str) -> DpOptions {
    DpOptions {
        credentials: Some(Arc::new(Credentials {
            account: Account::parse(account).unwrap(),
            password: Secret::new(password.into()),
        })),
        ..quick_opts()
    }
}

fn auth_lines(log: &str) -> usize {
    log.lines().filter(|l| l.starts_with("auth ")).count()
}

#[test]
fn ntlm_dp_serves_listing_fetch_and_range_reads_to_the_account() {
    let fx = fixture(false);
    let server = ntlm_dp(&fx.lib, &[]);
    let opts = DpOptions {
        concurrency: 4,
        ..with_account("CONTOSO\\cmadmin", PASSWORD)
    };
    let dp = Dp::open(&server.url(), opts).unwrap();

    let list = dp.list_packages().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    let mut requests = 0;
    for pkg in [BOOT, OTHER] {
        let c = dp.resolve(&pid(pkg)).unwrap();
        requests += c.files.len();
        // Parallel downloads: each connection authenticates on its own.
        for f in dp.fetch(&c, &cache, &|_, _| {}).unwrap() {
            assert_eq!(
                fs::read(&f.local).unwrap(),
                fx.read_src(pkg, f.path.as_str()),
                "{}",
                f.path
            );
        }
    }
    // Range reads, as the WIM check does them.
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let wim = boot_wim(&c).unwrap();
    let src = fx.read_src(BOOT, wim.path.as_str());
    assert_eq!(
        dp.read_range(&c, wim, 1000, 5000).unwrap(),
        &src[1000..6000]
    );
    let mut r = dp.remote_reader(&c, wim);
    r.seek(SeekFrom::Start(250_000)).unwrap();
    let mut buf = vec![0; 4096];
    r.read_exact(&mut buf).unwrap();
    assert_eq!(buf, &src[250_000..254_096]);

    let log = server.log();
    assert!(!log.contains("refused"), "{log}");
    assert!(log.contains("user=CONTOSO\\cmadmin"), "{log}");
    // Kept-alive connections stay authenticated: far fewer handshakes than
    // requests (listings, INIs, HEADs, blobs, ranges).
    let auths = auth_lines(&log);
    assert!(auths >= 1 && auths < requests, "{auths} handshakes:\n{log}");
}

#[test]
fn without_an_account_the_401_names_the_schemes_and_dp_user() {
    let fx = fixture(false);
    let server = ntlm_dp(&fx.lib, &[]);
    let dp = Dp::open(&server.url(), quick_opts()).unwrap();
    let err = dp.resolve(&pid(BOOT)).unwrap_err();
    match &err {
        DpError::AuthRequired {
            offered, account, ..
        } => {
            assert_eq!(offered, "Negotiate, NTLM");
            assert_eq!(account, &None);
        }
        e => panic!("{e}"),
    }
    let msg = err.to_string();
    for part in [
        "401",
        "Negotiate, NTLM",
        "--dp-user",
        "--dp-client-cert",
        &server.url(),
        BOOT,
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    assert!(matches!(
        dp.list_packages().unwrap_err(),
        DpError::AuthRequired { .. }
    ));
}

#[test]
fn a_wrong_password_is_named_with_the_account_and_never_shown() {
    let fx = fixture(false);
    let server = ntlm_dp(&fx.lib, &[]);
    let wrong = "Wr0ng-pa55word";
    for account in ["CONTOSO\\cmadmin", "someone@CONTOSO.COM"] {
        let dp = Dp::open(&server.url(), with_account(account, wrong)).unwrap();
        let err = dp.resolve(&pid(BOOT)).unwrap_err();
        assert!(matches!(err, DpError::LogonFailed { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(account), "{msg}");
        assert!(msg.contains("wrong password"), "{msg}");
        assert!(msg.contains("NTLM"), "{msg}");
        assert!(!msg.contains(wrong), "{msg}");
        assert!(!format!("{err:?}").contains(wrong));
        assert!(matches!(
            dp.list_packages().unwrap_err(),
            DpError::LogonFailed { .. }
        ));
    }
    // One refused handshake per account and Dp, however many requests
    // follow: a wrong password must not lock the account out.
    let log = server.log();
    assert_eq!(log.matches("refused").count(), 2, "{log}");
}

#[test]
fn a_403_says_the_account_lacks_read_access() {
    let fx = fixture(false);
    let c = Dp::open_path(&fx.lib, quick_opts())
        .unwrap()
        .resolve(&pid(BOOT))
        .unwrap();
    let wim = boot_wim(&c).unwrap().sha256.clone();
    let server = ntlm_dp(&fx.lib, &[&wim]);
    let dp = Dp::open(&server.url(), with_account("CONTOSO\\cmadmin", PASSWORD)).unwrap();
    let err = dp.resolve(&pid(BOOT)).unwrap_err();
    assert!(matches!(err, DpError::NoReadAccess { .. }), "{err}");
    let msg = err.to_string();
    for part in ["Read access", "CONTOSO\\cmadmin", "403", BOOT] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
}

/// nginx over HTTPS requiring a client certificate from a test CA.
struct TlsDp {
    _nginx: Nginx,
    url: String,
    pki: Pki,
}

fn tls_dp(fx: &Fixture) -> TlsDp {
    let pki = Pki::make(&fx.dir.path().join("pki")).unwrap_or_else(|e| panic!("{e}"));
    let ng_dir = fx.dir.path().join("nginx");
    let nginx = Nginx::start_with(
        &ng_dir,
        &fx.lib,
        Some((&pki.server_cert(), &pki.server_key())),
        Some(&pki.ca()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    TlsDp {
        url: nginx.https_url(),
        _nginx: nginx,
        pki,
    }
}

fn tls_opts(pki: &Pki, cert: Option<ClientCert>) -> DpOptions {
    DpOptions {
        ca_file: Some(pki.ca()),
        client_cert: cert.map(Arc::new),
        // Large blobs as parallel ranges: each connection presents the
        // certificate.
        ..ranged_opts()
    }
}

#[test]
fn ntlm_parallel_ranges_each_authenticate_their_connection() {
    let fx = fixture(false);
    let server = ntlm_dp(&fx.lib, &[]);
    let opts = DpOptions {
        credentials: with_account("CONTOSO\\cmadmin", PASSWORD).credentials,
        ..ranged_opts()
    };
    let dp = Dp::open(&server.url(), opts).unwrap();
    ranges_authenticate_each_connection(&fx, &dp, &|| server.log(), &auth_lines);
}

#[test]
fn https_dp_requiring_a_client_certificate_refuses_without_one() {
    let fx = fixture(false);
    let dp = tls_dp(&fx);
    let d = Dp::open(&dp.url, tls_opts(&dp.pki, None)).unwrap();
    let err = d.resolve(&pid(BOOT)).unwrap_err();
    assert!(matches!(err, DpError::ClientCertRequired { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("--dp-client-cert"), "{msg}");
    assert!(msg.contains(BOOT), "{msg}");
}

#[test]
fn https_dp_serves_with_a_pem_or_pkcs12_client_certificate() {
    let fx = fixture(false);
    let dp = tls_dp(&fx);
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    for cert in [
        ClientCert {
            file: dp.pki.client_pem(),
            password: None,
        },
        ClientCert {
            file: dp.pki.client_pfx(),
            password: Some(Secret::new(Pki::PFX_PASSWORD.into())),
        },
    ] {
        let d = Dp::open(&dp.url, tls_opts(&dp.pki, Some(cert))).unwrap();
        let c = d.resolve(&pid(BOOT)).unwrap();
        let wim = boot_wim(&c).unwrap();
        assert_eq!(
            stream_wim(&d, &c, fx.dir.path()),
            fx.read_src(BOOT, wim.path.as_str())
        );
        for f in d.fetch(&c, &cache, &|_, _| {}).unwrap() {
            assert_eq!(
                fs::read(&f.local).unwrap(),
                fx.read_src(BOOT, f.path.as_str())
            );
        }
    }
}

#[test]
fn a_wrong_pkcs12_password_is_named_and_not_shown() {
    let fx = fixture(false);
    let pki = Pki::make(&fx.dir.path().join("pki")).unwrap();
    let wrong = "not-the-pfx-password";
    let err = Dp::open(
        "https://127.0.0.1:1/SMS_DP_SMSPKG$/",
        tls_opts(
            &pki,
            Some(ClientCert {
                file: pki.client_pfx(),
                password: Some(Secret::new(wrong.into())),
            }),
        ),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("wrong password"), "{msg}");
    assert!(msg.contains("client.pfx"), "{msg}");
    assert!(!msg.contains(wrong), "{msg}");
    // A PEM file without its key says what is missing.
    let crt = pki.dir.join("client.crt");
    let err = Dp::open(
        "https://127.0.0.1:1/SMS_DP_SMSPKG$/",
        tls_opts(
            &pki,
            Some(ClientCert {
                file: crt,
                password: None,
            }),
        ),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no private key"), "{err}");
}

#[test]
fn a_client_certificate_from_another_ca_is_refused_by_name() {
    let fx = fixture(false);
    let dp = tls_dp(&fx);
    let other = Pki::make(&fx.dir.path().join("other-pki")).unwrap();
    let d = Dp::open(
        &dp.url,
        tls_opts(
            &dp.pki,
            Some(ClientCert {
                file: other.client_pem(),
                password: None,
            }),
        ),
    )
    .unwrap();
    let err = d.resolve(&pid(BOOT)).unwrap_err();
    assert!(matches!(err, DpError::ClientCertRefused { .. }), "{err}");
    assert!(err.to_string().contains("client.pem"), "{err}");
}
