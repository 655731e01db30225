//! The SMB backend against a real Samba (`smbd` with its own config on
//! 127.0.0.1 and a free port): the library built by the builder shared as
//! `SCCMContentLib$`, with part of FileLib on a second share
//! `SCCMContentLibD$` that the backend must find by itself.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use capmedia_content::PackageKind;
use capmedia_dp::{boot_wim, Account, ContentCache, Credentials, Dp, DpError, DpOptions, Secret};
use capmedia_testdp::{Samba, SMB_USER};
use common::*;

const PASSWORD: &str = "Sm8-test-Pa55word";

fn creds(password: &str) -> Option<Arc<Credentials>> {
    Some(Arc::new(Credentials {
        account: Account::parse(&format!("TESTDP\\{SMB_USER}")).unwrap(),
        password: Secret::new(password.into()),
    }))
}

fn serve(fx: &Fixture) -> Samba {
    // Unspread fixtures have no second root: share an empty one.
    fs::create_dir_all(&fx.second).unwrap();
    Samba::open_up(&fx.lib).unwrap();
    Samba::open_up(&fx.second).unwrap();
    Samba::start(
        &[
            ("SCCMContentLib$", &fx.lib),
            ("SCCMContentLibD$", &fx.second),
        ],
        PASSWORD,
    )
    .unwrap()
}

fn open(smb: &Samba, password: &str) -> Dp {
    let opts = DpOptions {
        credentials: creds(password),
        ..quick_opts()
    };
    Dp::open(&smb.url("SCCMContentLib$"), opts).unwrap()
}

#[test]
fn lists_resolves_reads_ranges_and_fetches_over_two_shares() {
    let fx = fixture(true);
    assert!(!blobs(&fx.lib).is_empty() && !blobs(&fx.second).is_empty());
    let smb = serve(&fx);
    let dp = open(&smb, PASSWORD);

    let list = dp
        .list_packages()
        .unwrap_or_else(|e| panic!("{e}\n{}", smb.log()));
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, pid(BOOT));
    assert_eq!(list[0].kind, PackageKind::BootImage);
    assert_eq!(list[0].content.as_ref().unwrap().version, 3);
    assert_eq!(list[0].size, 300_000 + 5_000 + 100_000);
    assert_eq!(list[0].files, 4);
    assert!(list.iter().all(|p| p.problem.is_none()), "{list:?}");

    // Every blob must be found, half of them on SCCMContentLibD$ that
    // nobody named.
    let boot = dp.resolve(&pid(BOOT)).unwrap();
    let wim = boot_wim(&boot).unwrap();
    let wim_bytes = fx.read_src(BOOT, "boot.PS100005.wim");
    assert_eq!(dp.read_head(&boot, wim, 208).unwrap(), wim_bytes[..208]);
    assert_eq!(
        dp.read_range(&boot, wim, 123_456, 70_000).unwrap(),
        wim_bytes[123_456..193_456]
    );

    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    let last = AtomicU64::new(0);
    let fetched = dp
        .fetch(&boot, &cache, &|done, total| {
            assert!(done <= total);
            last.store(done, Ordering::Relaxed);
        })
        .unwrap();
    assert_eq!(last.load(Ordering::Relaxed), boot.total_size());
    assert_eq!(fetched.len(), 4);
    for f in &fetched {
        assert_eq!(
            fs::read(&f.local).unwrap(),
            fx.read_src(BOOT, f.path.as_str())
        );
    }
    let other = dp.resolve(&pid(OTHER)).unwrap();
    for f in dp.fetch(&other, &cache, &|_, _| {}).unwrap() {
        assert_eq!(
            fs::read(&f.local).unwrap(),
            fx.read_src(OTHER, f.path.as_str())
        );
    }
}

#[test]
fn the_backslash_spelling_and_a_named_second_share_work_too() {
    let fx = fixture(true);
    let smb = serve(&fx);
    // `\\host\share` has no port: use the URL for the server and give
    // the second share explicitly, as --dp-filelib does.
    let opts = DpOptions {
        credentials: creds(PASSWORD),
        extra_filelib_roots: vec![smb.url("SCCMContentLibD$/FileLib").into()],
        ..quick_opts()
    };
    let dp = Dp::open(&smb.url("SCCMContentLib$"), opts).unwrap();
    let boot = dp.resolve(&pid(BOOT)).unwrap();
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    assert_eq!(dp.fetch(&boot, &cache, &|_, _| {}).unwrap().len(), 4);
    // The UNC spelling parses to the same place (port 445: nothing
    // listens there, which must be reported, not hang).
    let err = Dp::open(
        "\\\\127.0.0.1\\SCCMContentLib$",
        DpOptions {
            retries: 1,
            ..quick_opts()
        },
    )
    .unwrap()
    .resolve(&pid(BOOT))
    .unwrap_err();
    assert!(matches!(err, DpError::Unreachable { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("127.0.0.1:445") && msg.contains("2 attempts") && msg.contains(BOOT),
        "{msg}"
    );
}

#[test]
fn a_wrong_password_is_named_with_the_account_and_not_shown() {
    let fx = fixture(false);
    let smb = serve(&fx);
    let wrong = "Not-the-Pa55word";
    let dp = open(&smb, wrong);
    let err = dp.resolve(&pid(BOOT)).unwrap_err();
    assert!(matches!(err, DpError::LogonFailed { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&smb.url("SCCMContentLib$"))
            && msg.contains(&format!("TESTDP\\{SMB_USER}"))
            && msg.contains(BOOT)
            && msg.contains("--dp-user"),
        "{msg}"
    );
    assert!(
        !msg.contains(wrong) && !format!("{err:?}").contains(wrong),
        "{msg}"
    );
    // No account at all: guest logons are refused by this server.
    let dp = Dp::open(&smb.url("SCCMContentLib$"), quick_opts()).unwrap();
    let err = dp.list_packages().unwrap_err();
    assert!(matches!(err, DpError::LogonFailed { .. }), "{err}");
}

#[test]
fn a_missing_share_is_named() {
    let fx = fixture(false);
    let smb = serve(&fx);
    let opts = DpOptions {
        credentials: creds(PASSWORD),
        ..quick_opts()
    };
    let dp = Dp::open(&smb.url("NoSuchLib$"), opts).unwrap();
    let err = dp.resolve(&pid(BOOT)).unwrap_err();
    assert!(matches!(err, DpError::ShareNotFound { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("NoSuchLib$") && msg.contains(BOOT) && msg.contains(SMB_USER),
        "{msg}"
    );
}

#[test]
fn a_blob_the_account_may_not_read_is_named_and_nothing_is_cached() {
    let fx = fixture(false);
    let smb = serve(&fx);
    let dp = open(&smb, PASSWORD);
    let boot = dp.resolve(&pid(BOOT)).unwrap();
    let setup = boot.file("sources/setup.exe").unwrap();
    let blob = blob_path(&fx, &setup.sha256);
    // Owned by root, mode 0600: the SMB session's unix user cannot read.
    fs::set_permissions(&blob, fs::Permissions::from_mode(0o600)).unwrap();
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    let err = dp.fetch(&boot, &cache, &|_, _| {}).unwrap_err();
    assert!(matches!(err, DpError::NoReadAccess { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&setup.sha256) && msg.contains(BOOT) && msg.contains(SMB_USER),
        "{msg}"
    );
    assert!(!cache.contains(setup));
}

#[test]
fn cancel_stops_an_smb_fetch() {
    let fx = fixture(false);
    let smb = serve(&fx);
    let dp = open(&smb, PASSWORD);
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    let err = dp
        .fetch_with_cancel(&c, &cache, &|_, _| {}, &|| true)
        .unwrap_err();
    assert!(matches!(err, DpError::Cancelled), "{err}");
    assert!(c.files.iter().all(|f| !cache.contains(f)));
}

/// A DP that lets guests read (`guest ok`): with no account the logon is
/// anonymous, the session a guest's (unsigned: it has no key), and the
/// library reads as with an account.
#[test]
fn a_dp_that_lets_guests_read_is_read_as_a_guest() {
    let fx = fixture(false);
    Samba::open_up(&fx.lib).unwrap();
    let smb = Samba::start_with(
        &[("SCCMContentLib$", &fx.lib)],
        PASSWORD,
        "  map to guest = bad user\n  guest ok = yes\n  guest account = daemon\n",
    )
    .unwrap();
    let opts = DpOptions {
        kerberos: false,
        ..quick_opts()
    };
    let dp = Dp::open(&smb.url("SCCMContentLib$"), opts).unwrap();
    let list = dp
        .list_packages()
        .unwrap_or_else(|e| panic!("{e}\n{}", smb.log()));
    assert_eq!(list.len(), 2);
    let boot = dp.resolve(&pid(BOOT)).unwrap();
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    let fetched = dp.fetch(&boot, &cache, &|_, _| {}).unwrap();
    for f in &fetched {
        assert_eq!(
            fs::read(&f.local).unwrap(),
            fx.read_src(BOOT, f.path.as_str())
        );
    }
}
