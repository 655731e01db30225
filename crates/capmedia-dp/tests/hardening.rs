//! Hostile or broken DPs: dripping and ignoring servers, short copies, a
//! full cache, FIFOs and symlinks in a library, huge listings. Whatever can
//! hang runs in a thread with a generous deadline, so that a regression
//! fails the test instead of hanging it.
#![allow(clippy::unwrap_used, clippy::result_large_err)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use capmedia_dp::{
    boot_wim, parse_html_listing, ContentCache, Dp, DpError, DpOptions, FetchEvent, PackageContent,
};
use common::server::{iis_listing, Fault, Server, PREFIX};
use common::*;

/// Run `f` in a thread; its result, or a test failure after `secs`.
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what} did not end within {secs} s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the thread panicked"),
    }
}

fn wim_hash(fx: &Fixture) -> String {
    sha256_hex(&fx.read_src(BOOT, &format!("boot.{BOOT}.wim")))
}

/// A server whose answers for the boot WIM get `fault` (every time).
fn serve_wim(fx: &Fixture, fault: Fault) -> Server {
    let h = wim_hash(fx);
    Server::start(fx.lib.clone(), move |r, _| {
        if r.method == "GET" && r.path.ends_with(&h) {
            fault.clone()
        } else {
            Fault::None
        }
    })
}

fn fetch_all(fx: &Fixture, dp: &Dp, c: &PackageContent) -> Result<(), DpError> {
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    for f in dp.fetch(c, &cache, &|_, _| {})? {
        assert_eq!(
            fs::read(&f.local).unwrap(),
            fx.read_src(BOOT, f.path.as_str())
        );
    }
    Ok(())
}

#[test]
fn a_dripping_body_falls_below_the_minimum_rate() {
    let fx = fixture(false);
    let srv = serve_wim(
        &fx,
        Fault::Drip {
            every: Duration::from_millis(100),
            chunk: 10,
        },
    );
    let opts = DpOptions {
        retries: 1,
        read_timeout: Duration::from_secs(5),
        min_rate: 4096,
        rate_window: Duration::from_secs(1),
        ..quick_opts()
    };
    let dp = Dp::open(&srv.url(), opts).unwrap();
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let err = within(60, "a fetch from a dripping server", move || {
        fetch_all(&fx, &dp, &c).unwrap_err()
    });
    let msg = err.to_string();
    assert!(
        matches!(err, DpError::Transfer { attempts: 2, .. }),
        "{msg}"
    );
    for needle in [
        "FileLib/",
        &format!("boot.{BOOT}.wim"),
        "B/s), below the minimum rate of 4096 B/s averaged over 1 s",
    ] {
        assert!(msg.contains(needle), "{needle:?} not in {msg}");
    }
}

#[test]
fn a_slow_but_steady_body_is_cut_at_the_request_deadline() {
    let fx = fixture(false);
    let srv = serve_wim(
        &fx,
        Fault::Drip {
            every: Duration::from_millis(50),
            chunk: 1000,
        },
    );
    let opts = DpOptions {
        retries: 0,
        read_timeout: Duration::from_secs(5),
        request_deadline: Duration::from_secs(2),
        min_rate: 0,
        ..quick_opts()
    };
    let dp = Dp::open(&srv.url(), opts).unwrap();
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let err = within(60, "a fetch from a slow server", move || {
        fetch_all(&fx, &dp, &c).unwrap_err()
    });
    let msg = err.to_string();
    assert!(
        msg.contains("no complete answer within the request deadline of 2 s")
            && msg.contains("FileLib/"),
        "{msg}"
    );
}

#[test]
fn range_reads_are_exact_when_the_server_ignores_range() {
    let fx = fixture(false);
    let srv = serve_wim(&fx, Fault::IgnoreRange);
    let dp = Dp::open(&srv.url(), quick_opts()).unwrap();
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let wim = boot_wim(&c).unwrap();
    let src = fx.read_src(BOOT, wim.path.as_str());
    for (offset, len) in [(0u64, 100u64), (1, 7), (150_000, 4096), (299_990, 100)] {
        let got = dp.read_range(&c, wim, offset, len).unwrap();
        let end = (offset + len).min(src.len() as u64) as usize;
        assert_eq!(got, src[offset as usize..end], "at {offset}+{len}");
    }
    // Every request asked for a range, and every answer ignored it.
    assert!(srv
        .hits(&wim_hash(&fx))
        .iter()
        .filter(|r| r.method == "GET")
        .all(|r| r.range.is_some()));
    fetch_all(&fx, &dp, &c).unwrap();
}

#[test]
fn a_short_copy_on_the_dp_is_named_not_a_bare_416() {
    let fx = fixture(false);
    let h = wim_hash(&fx);
    // The DP's blob is shorter than DataLib says.
    let blob = blob_path(&fx, &h);
    let bytes = fs::read(&blob).unwrap();
    let srv = Server::start(fx.lib.clone(), |_, _| Fault::None);
    let dp = Dp::open(&srv.url(), quick_opts()).unwrap();
    let c = dp.resolve(&pid(BOOT)).unwrap();
    fs::write(&blob, &bytes[..100_000]).unwrap();
    let err = fetch_all(&fx, &dp, &c).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DpError::Incomplete { .. }), "{msg}");
    for needle in [
        format!("boot.{BOOT}.wim"),
        format!("package {BOOT}"),
        format!("FileLib/{}/{h}", &h[..4]),
        "shorter than the 300000 bytes DataLib records".into(),
        "ended after 100000 bytes".into(),
    ] {
        assert!(msg.contains(&needle), "{needle:?} not in {msg}");
    }
    // The range read says the same, not "416".
    let wim = boot_wim(&c).unwrap();
    let err = dp.read_range(&c, wim, 200_000, 10).unwrap_err().to_string();
    assert!(err.contains("ended after") || err.contains("416"), "{err}");
    assert!(err.contains(&format!("FileLib/{}/{h}", &h[..4])), "{err}");
}

#[test]
fn retries_are_reported_as_they_happen() {
    let fx = fixture(false);
    let h = wim_hash(&fx);
    let srv = Server::start(fx.lib.clone(), move |r, nth| {
        if r.method == "GET" && r.path.ends_with(&h) && nth < 2 {
            Fault::Status(503)
        } else {
            Fault::None
        }
    });
    let dp = Dp::open(&srv.url(), quick_opts()).unwrap();
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    let seen = Mutex::new(Vec::new());
    let last = Mutex::new((0, 0));
    dp.fetch_events(
        &c,
        &cache,
        &|e| match e {
            FetchEvent::Retry { .. } => seen.lock().unwrap().push(e.to_string()),
            FetchEvent::Progress { done, total } => *last.lock().unwrap() = (done, total),
            _ => {}
        },
        &|| false,
    )
    .unwrap();
    let seen = seen.into_inner().unwrap();
    let wim = format!("boot.{BOOT}.wim");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen[0].starts_with(&format!("retrying {wim} (attempt 2 of 4): ")),
        "{seen:?}"
    );
    assert!(
        seen[1].starts_with(&format!("retrying {wim} (attempt 3 of 4): ")),
        "{seen:?}"
    );
    assert!(
        seen[0].contains("503") && seen[0].contains("FileLib/"),
        "{seen:?}"
    );
    let (done, total) = last.into_inner().unwrap();
    assert_eq!((done, total), (c.total_size(), c.total_size()));
}

/// A tmpfs of `kib` KiB mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, kib: u64) -> Tmpfs {
        fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(at)
            .output()
            .expect("mount (util-linux) is needed: apt-get install -y mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn full_cache(fx: &Fixture, dp: &Dp, c: &PackageContent) {
    let mnt = fx.dir.path().join("small-cache");
    let _fs = Tmpfs::mount(&mnt, 128);
    let cache = ContentCache::open(&mnt).unwrap();
    let err = dp.fetch(c, &cache, &|_, _| {}).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DpError::Cache { .. }), "{msg}");
    for needle in [
        format!("content cache {}", mnt.join("tmp").display()),
        format!("boot.{BOOT}.wim of package {BOOT}"),
        format!("from DP {}", dp.name()),
        "No space left on device".into(),
    ] {
        assert!(msg.contains(&needle), "{needle:?} not in {msg}");
    }
}

#[test]
fn a_full_cache_names_path_file_package_and_cause() {
    let fx = fixture(false);
    let dp = Dp::open(fx.lib.to_str().unwrap(), quick_opts()).unwrap();
    let c = dp.resolve(&pid(BOOT)).unwrap();
    full_cache(&fx, &dp, &c);
    let srv = Server::start(fx.lib.clone(), |_, _| Fault::None);
    let dp = Dp::open(&srv.url(), quick_opts()).unwrap();
    full_cache(&fx, &dp, &c);
}

fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo")
        .arg(p)
        .status()
        .expect("mkfifo (coreutils) is needed: apt-get install -y coreutils");
    assert!(st.success());
}

#[test]
fn a_fifo_ini_is_refused_not_opened() {
    let fx = fixture(false);
    let pkg_ini = fx.lib.join("PkgLib").join(format!("{BOOT}.INI"));
    fs::remove_file(&pkg_ini).unwrap();
    mkfifo(&pkg_ini);
    let lib = fx.lib.clone();
    let err = within(60, "resolving with a FIFO PkgLib INI", move || {
        let dp = Dp::open(lib.to_str().unwrap(), quick_opts()).unwrap();
        dp.resolve(&pid(BOOT)).unwrap_err()
    });
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{BOOT}.INI is a FIFO, not a regular file")),
        "{msg}"
    );

    // The same for a DataLib file INI.
    let fx = fixture(false);
    let ini = fx
        .lib
        .join("DataLib")
        .join(format!("{BOOT}.3"))
        .join(format!("boot.{BOOT}.wim.INI"));
    fs::remove_file(&ini).unwrap();
    mkfifo(&ini);
    let lib = fx.lib.clone();
    let msg = within(60, "resolving with a FIFO DataLib INI", move || {
        let dp = Dp::open(lib.to_str().unwrap(), quick_opts()).unwrap();
        dp.resolve(&pid(BOOT)).unwrap_err().to_string()
    });
    assert!(msg.contains("is a FIFO, not a regular file"), "{msg}");
}

#[test]
fn symlinks_leaving_the_library_are_refused() {
    let fx = fixture(false);
    let dl = fx.lib.join("DataLib").join(format!("{BOOT}.3"));
    std::os::unix::fs::symlink("/", dl.join("escape")).unwrap();
    let dp = Dp::open(fx.lib.to_str().unwrap(), quick_opts()).unwrap();
    let err = dp.resolve(&pid(BOOT)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DpError::UnsafeName { .. }), "{msg}");
    assert!(
        msg.contains("\"escape\"") && msg.contains("outside the content library"),
        "{msg}"
    );

    // A symlink that stays inside the library is followed.
    fs::remove_file(dl.join("escape")).unwrap();
    std::os::unix::fs::symlink(dl.join("sources"), dl.join("again")).unwrap();
    let c = dp.resolve(&pid(BOOT)).unwrap();
    assert!(c.file("again/setup.exe").is_some());

    // A whole DataLib folder pointing out (at /etc) is refused too.
    let fx = fixture(false);
    let dl = fx.lib.join("DataLib").join(format!("{BOOT}.3"));
    fs::remove_dir_all(&dl).unwrap();
    std::os::unix::fs::symlink("/etc", &dl).unwrap();
    let dp = Dp::open(fx.lib.to_str().unwrap(), quick_opts()).unwrap();
    let msg = dp.resolve(&pid(BOOT)).unwrap_err().to_string();
    assert!(msg.contains("outside the content library"), "{msg}");

    // And a FileLib that is a symlink out of its root.
    let fx = fixture(false);
    let fl = fx.lib.join("FileLib");
    let elsewhere = fx.dir.path().join("elsewhere");
    fs::rename(&fl, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &fl).unwrap();
    let err = Dp::open(fx.lib.to_str().unwrap(), quick_opts()).unwrap_err();
    assert!(
        err.to_string().contains("outside the content library"),
        "{err}"
    );
}

const MANY: usize = 100_000;

#[test]
fn a_datalib_folder_of_100000_files_resolves() {
    let fx = fixture(false);
    let dl = fx.lib.join("DataLib").join(format!("{BOOT}.3"));
    // 100,000 file INIs naming one existing blob: the listing is large,
    // the FileLib check small.
    let ini = fs::read(dl.join("sources").join("setup.exe.INI")).unwrap();
    // On a tmpfs mounted inside the library: 100,000 files on this
    // machine's disk take minutes to create, which is not what is tested.
    let many = dl.join("many");
    let _fs = Tmpfs::mount(&many, 1 << 20);
    for i in 0..MANY {
        fs::write(many.join(format!("f{i:06}.bin.INI")), &ini).unwrap();
    }
    let lib = fx.lib.clone();
    let c = within(60, "resolving a 100,000-file folder", move || {
        let dp = Dp::open(lib.to_str().unwrap(), quick_opts()).unwrap();
        dp.resolve(&pid(BOOT)).unwrap()
    });
    assert_eq!(
        c.files
            .iter()
            .filter(|f| f.path.as_str().starts_with("many/"))
            .count(),
        MANY
    );
}

#[test]
fn an_iis_listing_of_100000_entries_parses() {
    let dir = format!("{PREFIX}DataLib/{BOOT}.3/");
    let entries: Vec<(String, bool, u64)> = (0..MANY)
        .map(|i| (format!("f{i:06}.bin.INI"), i % 100 == 0, 412))
        .collect();
    let html = iis_listing("dp01.contoso.com", &dir, &entries);
    let got = within(60, "parsing a 100,000-entry listing", move || {
        parse_html_listing(&html, &dir).unwrap()
    });
    assert_eq!(got.len(), MANY);
    assert!(got[100].is_dir && !got[101].is_dir && got[101].size == Some(412));

    // Unclosed links (no `</a>` anywhere) are still read in linear time.
    let dir = format!("{PREFIX}DataLib/");
    let mut html = String::new();
    for i in 0..MANY {
        html.push_str(&format!("<a href=\"{dir}n{i}\">"));
    }
    let got = within(60, "parsing 100,000 unclosed links", move || {
        parse_html_listing(&html, &dir).unwrap()
    });
    assert_eq!(got.len(), MANY);
}

#[test]
fn an_oversized_listing_is_refused() {
    let fx = fixture(false);
    let big = "<p>x</p>".repeat((64 << 20) / 8 + 1);
    let srv = Server::start(fx.lib.clone(), move |r, _| {
        if r.path.starts_with("DataLib") && r.path.ends_with('/') {
            Fault::Html(big.clone())
        } else {
            Fault::None
        }
    });
    let opts = DpOptions {
        // 64 MiB from a test server in a debug build, beside other tests.
        read_timeout: Duration::from_secs(30),
        ..quick_opts()
    };
    let dp = Dp::open(&srv.url(), opts).unwrap();
    let msg = dp.resolve(&pid(BOOT)).unwrap_err().to_string();
    assert!(msg.contains("answer larger than 67108864 bytes"), "{msg}");
    assert!(msg.contains("/DataLib/"), "{msg}");
}
