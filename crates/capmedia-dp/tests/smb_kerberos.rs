//! The SMB backend logging on with a Kerberos ticket (no password), against
//! a real MIT KDC and a real Samba accepting Kerberos (`smbd` with a
//! dedicated keytab, signing mandatory): the library shared as
//! `SCCMContentLib$` with part of FileLib on `SCCMContentLibD$`.
//!
//! Its own test binary, and one test: the Kerberos library takes its
//! configuration and ticket cache from the process environment
//! (`KRB5_CONFIG`, `KRB5CCNAME`), which this test sets for itself alone.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use capmedia_dp::{boot_wim, ContentCache, Dp, DpError, DpOptions};
use capmedia_testdp::{Kdc, Samba, KRB_REALM, SMB_USER};
use common::*;

fn set_cache(cc: &std::path::Path) {
    std::env::set_var("KRB5CCNAME", format!("FILE:{}", cc.display()));
}

#[test]
fn a_ticket_logs_on_to_smb_with_no_password_and_failures_are_named() {
    let fx = fixture(true);
    fs::create_dir_all(&fx.second).unwrap();
    Samba::open_up(&fx.lib).unwrap();
    Samba::open_up(&fx.second).unwrap();
    let kdc = Kdc::start().unwrap_or_else(|e| panic!("{e}"));
    let smb = Samba::start_kerberos(
        &[
            ("SCCMContentLib$", &fx.lib),
            ("SCCMContentLibD$", &fx.second),
        ],
        "An-unused-Pa55word",
        &kdc,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let cc = kdc.ticket(SMB_USER).unwrap();
    std::env::set_var("KRB5_CONFIG", kdc.krb5_conf());
    set_cache(&cc);
    let url = smb.url_by_name("SCCMContentLib$");

    // No account and no password: the cache's ticket logs on, every
    // message signed; blobs are found on the second share by themselves.
    let dp = Dp::open(&url, quick_opts()).unwrap();
    let list = dp
        .list_packages()
        .unwrap_or_else(|e| panic!("{e}\n{}", smb.log()));
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, pid(BOOT));
    let boot = dp.resolve(&pid(BOOT)).unwrap();
    let wim = boot_wim(&boot).unwrap();
    let wim_bytes = fx.read_src(BOOT, "boot.PS100005.wim");
    assert_eq!(
        dp.read_range(&boot, wim, 123_456, 70_000).unwrap(),
        wim_bytes[123_456..193_456]
    );
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    let fetched = dp.fetch(&boot, &cache, &|_, _| {}).unwrap();
    assert_eq!(fetched.len(), 4);
    for f in &fetched {
        assert_eq!(
            fs::read(&f.local).unwrap(),
            fx.read_src(BOOT, f.path.as_str())
        );
    }
    let log = smb.log();
    assert!(
        log.contains(&format!("{SMB_USER}@{KRB_REALM}")),
        "smbd saw no Kerberos logon of {SMB_USER}: {log}"
    );

    // The principal asked for by name (--dp-user daemon@REALM).
    let named = DpOptions {
        kerberos_principal: Some(format!("{SMB_USER}@{KRB_REALM}")),
        ..quick_opts()
    };
    let other = Dp::open(&url, named).unwrap();
    assert_eq!(other.list_packages().unwrap().len(), 2);

    // A blob the principal's account may not read: named, with the
    // principal, and nothing cached.
    let setup = boot.file("sources/setup.exe").unwrap();
    let blob = blob_path(&fx, &setup.sha256);
    let mode = fs::metadata(&blob).unwrap().permissions().mode();
    fs::set_permissions(&blob, fs::Permissions::from_mode(0o600)).unwrap();
    let cache2 = ContentCache::open(fx.dir.path().join("cache2")).unwrap();
    let err = dp.fetch(&boot, &cache2, &|_, _| {}).unwrap_err();
    assert!(matches!(err, DpError::NoReadAccess { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&setup.sha256)
            && msg.contains(BOOT)
            && msg.contains(&format!("{SMB_USER}@{KRB_REALM}")),
        "{msg}"
    );
    assert!(!cache2.contains(setup));
    fs::set_permissions(&blob, fs::Permissions::from_mode(mode)).unwrap();

    // A missing share.
    let err = Dp::open(&smb.url_by_name("NoSuchLib$"), quick_opts())
        .unwrap()
        .resolve(&pid(BOOT))
        .unwrap_err();
    assert!(matches!(err, DpError::ShareNotFound { .. }), "{err}");
    assert!(err.to_string().contains("NoSuchLib$"), "{err}");

    // A principal with no account on the server: refused at logon, named.
    let stranger = kdc.ticket("stranger").unwrap();
    set_cache(&stranger);
    let err = Dp::open(&url, quick_opts())
        .unwrap()
        .resolve(&pid(BOOT))
        .unwrap_err();
    assert!(matches!(err, DpError::Kerberos { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("refused the logon")
            && msg.contains(&format!(
                "stranger@{KRB_REALM} (the Kerberos ticket in FILE:"
            ))
            && msg.contains("stranger.ccache")
            && msg.contains(BOOT),
        "{msg}"
    );

    // The server reached by an address the KDC has no SPN for: the
    // missing SPN is named with its fix.
    set_cache(&cc);
    let by_ip = format!("smb://127.0.0.1:{}/SCCMContentLib$", smb.port());
    let err = Dp::open(&by_ip, quick_opts())
        .unwrap()
        .list_packages()
        .unwrap_err();
    assert!(matches!(err, DpError::Kerberos { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("cifs/127.0.0.1") && msg.contains("setspn"),
        "{msg}"
    );

    // A principal asked for that has no ticket in the cache.
    let missing = DpOptions {
        kerberos_principal: Some(format!("bob@{KRB_REALM}")),
        ..quick_opts()
    };
    let err = Dp::open(&url, missing)
        .unwrap()
        .list_packages()
        .unwrap_err();
    assert!(err.to_string().contains("kinit bob@"), "{err}");

    // Signing with AES-CMAC on 3.1.1 (the server otherwise picks GMAC,
    // as above); and a server that requires encryption (it refuses any
    // request after the logon that is not): AES-128-GCM on 3.1.1, and on
    // SMB 3.0.2 (no pre-authentication integrity, keys of their own
    // derivation) AES-128-CCM.
    let shares = [
        ("SCCMContentLib$", fx.lib.as_path()),
        ("SCCMContentLibD$", fx.second.as_path()),
    ];
    for (n, (conf, dialect)) in [
        (
            "  server smb3 signing algorithms = AES-128-CMAC\n",
            "SMB3_11",
        ),
        ("  server smb encrypt = required\n", "SMB3_11"),
        (
            "  server max protocol = SMB3_02\n  server smb encrypt = required\n",
            "SMB3_02",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let sealed = Samba::start_kerberos_with(&shares, "An-unused-Pa55word", &kdc, conf)
            .unwrap_or_else(|e| panic!("{e}"));
        let dp = Dp::open(&sealed.url_by_name("SCCMContentLib$"), quick_opts()).unwrap();
        let other = dp.resolve(&pid(OTHER)).unwrap();
        let c = ContentCache::open(fx.dir.path().join(format!("sealed{n}"))).unwrap();
        let got = dp
            .fetch(&other, &c, &|_, _| {})
            .unwrap_or_else(|e| panic!("{dialect}: {e}\n{}", sealed.log()));
        assert!(!got.is_empty());
        let log = sealed.log();
        assert!(
            log.contains(&format!("Selected protocol {dialect}")),
            "{log}"
        );
    }

    // No ticket and Kerberos not wanted: a guest logon, which this server
    // refuses.
    let off = DpOptions {
        kerberos: false,
        ..quick_opts()
    };
    let err = Dp::open(&url, off).unwrap().list_packages().unwrap_err();
    assert!(matches!(err, DpError::LogonFailed { .. }), "{err}");
}
