//! The path backend on libraries made by the builder.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};

use capmedia_content::PackageKind;
use capmedia_dp::{boot_wim, encode_utf16le_crlf, ContentCache, Dp, DpError, DpOptions};
use common::*;

fn open(fx: &Fixture, spread: bool) -> Dp {
    let opts = DpOptions {
        extra_filelib_roots: if spread {
            vec![fx.second.clone()]
        } else {
            vec![]
        },
        ..quick_opts()
    };
    Dp::open(fx.lib.to_str().unwrap(), opts).unwrap()
}

#[test]
fn layout_is_what_a_dp_writes() {
    let fx = fixture(false);
    let pkg_ini = fs::read(fx.lib.join("PkgLib").join(format!("{BOOT}.INI"))).unwrap();
    assert_eq!(
        pkg_ini,
        encode_utf16le_crlf(&format!("[Packages]\r\n{BOOT}.3=\r\n"))
    );
    let file_ini = fs::read(
        fx.lib
            .join("DataLib")
            .join(format!("{BOOT}.3"))
            .join("sources/setup.exe.INI"),
    )
    .unwrap();
    assert_eq!(&file_ini[..2], &[0xFF, 0xFE], "UTF-16LE BOM");
    let text = capmedia_dp::decode_ini_text(&file_ini).unwrap();
    let hash = sha256_hex(&fx.read_src(BOOT, "sources/setup.exe"));
    assert!(text.starts_with("[File]\r\nSize=5000\r\n"), "{text}");
    assert!(text.contains(&format!("\r\nHash={hash}\r\n")), "{text}");
    let blob = fx.lib.join("FileLib").join(&hash[..4]).join(&hash);
    assert_eq!(
        fs::read(blob).unwrap(),
        fx.read_src(BOOT, "sources/setup.exe")
    );
    // The shared file is stored once and its INI names both users.
    let shared = sha256_hex(&fx.read_src(BOOT, "shared/common.bin"));
    let users = fs::read(
        fx.lib
            .join("FileLib")
            .join(&shared[..4])
            .join(format!("{shared}.INI")),
    )
    .unwrap();
    let users = capmedia_dp::decode_ini_text(&users).unwrap();
    assert!(users.contains(BOOT) && users.contains(OTHER), "{users}");
    assert_eq!(fx.built.blobs, 6);
}

#[test]
fn resolves_lists_and_fetches_two_packages_sharing_a_file_over_two_roots() {
    let fx = fixture(true);
    assert!(!blobs(&fx.lib).is_empty() && !blobs(&fx.second).is_empty());
    let dp = open(&fx, true);

    let list = dp.list_packages().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, pid(BOOT));
    assert_eq!(list[0].kind, PackageKind::BootImage);
    assert_eq!(list[0].content.as_ref().unwrap().version, 3);
    assert_eq!(list[0].size, 300_000 + 5_000 + 100_000);
    assert_eq!(list[0].files, 4);
    assert_eq!(list[1].kind, PackageKind::Unknown);
    assert!(list.iter().all(|p| p.problem.is_none()));

    let boot = dp.resolve(&pid(BOOT)).unwrap();
    let paths: Vec<&str> = boot.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "Deep/Er/Still Deeper/empty.txt",
            "boot.PS100005.wim",
            "shared/common.bin",
            "sources/setup.exe"
        ]
    );
    let wim = boot_wim(&boot).unwrap();
    assert_eq!(wim.size, 300_000);
    assert_eq!(
        wim.sha256,
        sha256_hex(&fx.read_src(BOOT, "boot.PS100005.wim"))
    );
    assert_eq!(
        dp.read_head(&boot, wim, 208).unwrap(),
        fx.read_src(BOOT, "boot.PS100005.wim")[..208]
    );

    let cache_dir = fx.dir.path().join("cache");
    let cache = ContentCache::open(&cache_dir).unwrap();
    let last = AtomicU64::new(0);
    let fetched = dp
        .fetch(&boot, &cache, &|done, total| {
            assert!(done <= total);
            last.store(done, Ordering::Relaxed);
        })
        .unwrap();
    assert_eq!(last.load(Ordering::Relaxed), boot.total_size());
    for f in &fetched {
        assert_eq!(
            fs::read(&f.local).unwrap(),
            fx.read_src(BOOT, f.path.as_str())
        );
    }

    let other = dp.resolve(&pid(OTHER)).unwrap();
    assert!(boot_wim(&other).is_none());
    let shared = other.file("shared/common.bin").unwrap();
    assert!(
        cache.contains(shared),
        "shared file already cached by the first package"
    );
    let fetched = dp.fetch(&other, &cache, &|_, _| {}).unwrap();
    for f in &fetched {
        assert_eq!(
            fs::read(&f.local).unwrap(),
            fx.read_src(OTHER, f.path.as_str())
        );
    }

    // A later run reuses the cache without touching FileLib.
    for b in blobs(&fx.lib).into_iter().chain(blobs(&fx.second)) {
        fs::remove_file(b).unwrap();
    }
    let cache = ContentCache::open(&cache_dir).unwrap();
    assert_eq!(dp.fetch(&boot, &cache, &|_, _| {}).unwrap().len(), 4);
}

#[test]
fn blake3_comes_with_the_fetch_and_with_cache_hits() {
    let fx = fixture(true);
    let mut opts = DpOptions {
        extra_filelib_roots: vec![fx.second.clone()],
        ..quick_opts()
    };
    // Not asked for: not computed.
    let dp = Dp::open(fx.lib.to_str().unwrap(), opts.clone()).unwrap();
    let boot = dp.resolve(&pid(BOOT)).unwrap();
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    assert!(dp
        .fetch(&boot, &cache, &|_, _| {})
        .unwrap()
        .iter()
        .all(|f| f.blake3.is_none()));
    // Asked for: from the copy (empty cache) and from a cache hit alike,
    // each the BLAKE3 of the package's file.
    opts.blake3 = true;
    let dp = Dp::open(fx.lib.to_str().unwrap(), opts).unwrap();
    for cache_dir in ["cache2", "cache2", "cache"] {
        let cache = ContentCache::open(fx.dir.path().join(cache_dir)).unwrap();
        for f in dp.fetch(&boot, &cache, &|_, _| {}).unwrap() {
            let want = blake3::hash(&fx.read_src(BOOT, f.path.as_str()));
            assert_eq!(
                f.blake3.as_deref(),
                Some(want.to_hex().as_str()),
                "{}",
                f.path
            );
        }
    }
}

#[test]
fn second_root_missing_means_incomplete() {
    let fx = fixture(true);
    let dp = open(&fx, false);
    let err = dp.resolve(&pid(BOOT)).unwrap_err();
    assert!(matches!(err, DpError::Incomplete { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(fx.lib.to_str().unwrap()) && msg.contains(BOOT),
        "{msg}"
    );
}

#[test]
fn not_distributed() {
    let fx = fixture(false);
    let dp = open(&fx, false);
    let err = dp.resolve(&pid("PS1000FF")).unwrap_err();
    assert!(matches!(err, DpError::NotDistributed { .. }), "{err}");
    assert!(err.to_string().contains("PS1000FF"));
    // PkgLib lists it but DataLib does not have it (yet).
    fs::remove_file(fx.lib.join("DataLib").join(format!("{OTHER}.1.INI"))).unwrap();
    let err = dp.resolve(&pid(OTHER)).unwrap_err();
    assert!(matches!(err, DpError::NotDistributed { .. }), "{err}");
    // The listing goes on, showing the problem.
    let list = dp.list_packages().unwrap();
    assert!(list[1]
        .problem
        .as_deref()
        .unwrap()
        .contains("not distributed"));
}

#[test]
fn incomplete_content_is_found_before_fetching() {
    let fx = fixture(false);
    let hash = sha256_hex(&fx.read_src(BOOT, "sources/setup.exe"));
    fs::remove_file(blob_path(&fx, &hash)).unwrap();
    let err = open(&fx, false).resolve(&pid(BOOT)).unwrap_err();
    match &err {
        DpError::Incomplete {
            file,
            sha256,
            package,
            ..
        } => {
            assert_eq!(file, "sources/setup.exe");
            assert_eq!(sha256, &hash);
            assert_eq!(package, &pid(BOOT));
        }
        e => panic!("{e}"),
    }
}

#[test]
fn wrong_bytes_in_filelib_are_refused() {
    let fx = fixture(false);
    let hash = sha256_hex(&fx.read_src(BOOT, "sources/setup.exe"));
    let p = blob_path(&fx, &hash);
    let mut b = fs::read(&p).unwrap();
    b[10] ^= 0xFF;
    fs::write(&p, b).unwrap();
    let dp = open(&fx, false);
    let content = dp.resolve(&pid(BOOT)).unwrap();
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    let err = dp.fetch(&content, &cache, &|_, _| {}).unwrap_err();
    assert!(matches!(err, DpError::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains("sources/setup.exe"));
    assert!(
        !cache.path_of(&hash).exists(),
        "nothing unverified enters the cache"
    );
}

#[test]
fn malformed_inis_name_file_and_line() {
    let fx = fixture(false);
    let ini = fx
        .lib
        .join("DataLib")
        .join(format!("{OTHER}.1"))
        .join("install.cmd.INI");
    fs::write(
        &ini,
        encode_utf16le_crlf("[File]\r\nSize=abc\r\nHash=00\r\n"),
    )
    .unwrap();
    let err = open(&fx, false).resolve(&pid(OTHER)).unwrap_err();
    match &err {
        DpError::MalformedIni { file, line, .. } => {
            assert!(file.ends_with("install.cmd.INI"), "{file}");
            assert_eq!(*line, Some(2));
        }
        e => panic!("{e}"),
    }
    fs::write(&ini, b"[File\r\nSize=1\r\n").unwrap();
    let err = open(&fx, false).resolve(&pid(OTHER)).unwrap_err();
    assert!(
        matches!(err, DpError::MalformedIni { line: Some(1), .. }),
        "{err}"
    );
    fs::write(
        &ini,
        encode_utf16le_crlf("[file]\r\nSIZE=1\r\nhash=../../etc/passwd\r\n"),
    )
    .unwrap();
    let err = open(&fx, false).resolve(&pid(OTHER)).unwrap_err();
    assert!(
        matches!(err, DpError::MalformedIni { line: Some(3), .. }),
        "{err}"
    );
    let pkg = fx.lib.join("PkgLib").join(format!("{OTHER}.INI"));
    fs::write(&pkg, "[Packages]\r\nnonsense=\r\n").unwrap();
    let err = open(&fx, false).resolve(&pid(OTHER)).unwrap_err();
    assert!(
        matches!(err, DpError::MalformedIni { line: Some(2), .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("{OTHER}.INI")), "{err}");
}

#[test]
fn any_key_case_and_utf8_inis() {
    let fx = fixture(false);
    let dir = fx.lib.join("DataLib").join(format!("{OTHER}.1"));
    let data = fx.read_src(OTHER, "install.cmd");
    let text = format!(
        "\u{feff}[FILE]\r\nsize={}\r\nHASH={}\r\n",
        data.len(),
        sha256_hex(&data).to_lowercase()
    );
    fs::write(dir.join("install.cmd.INI"), text).unwrap();
    // Copies on Linux may have other spellings of the INI names.
    fs::rename(
        fx.lib.join("PkgLib").join(format!("{OTHER}.INI")),
        fx.lib.join("PkgLib").join(format!("{OTHER}.ini")),
    )
    .unwrap();
    // A folder's own INI beside it is not a file.
    fs::write(
        dir.join("shared.INI"),
        encode_utf16le_crlf("[Folder]\r\nAttributes=16\r\n"),
    )
    .unwrap();
    let c = open(&fx, false).resolve(&pid(OTHER)).unwrap();
    assert_eq!(c.files.len(), 3);
    assert_eq!(c.file("install.cmd").unwrap().sha256, sha256_hex(&data));
}

#[test]
fn unsafe_datalib_names_are_refused() {
    for bad in [
        "..\\..\\evil.INI",
        "C:evil.INI",
        "tab\there.INI",
        "ctl\u{1}.INI",
        "a:b.INI",
    ] {
        let fx = fixture(false);
        let dir = fx.lib.join("DataLib").join(format!("{OTHER}.1"));
        fs::write(dir.join(bad), encode_utf16le_crlf("[File]\r\nSize=0\r\nHash=E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\r\n")).unwrap();
        let err = open(&fx, false).resolve(&pid(OTHER)).unwrap_err();
        assert!(matches!(err, DpError::UnsafeName { .. }), "{bad:?}: {err}");
        assert!(err.to_string().contains(fx.lib.to_str().unwrap()));
    }
}

#[test]
fn bad_locations() {
    let fx = fixture(false);
    let err = Dp::open(fx.dir.path().to_str().unwrap(), DpOptions::default()).unwrap_err();
    assert!(matches!(err, DpError::BadLocation { .. }), "{err}");
    assert!(Dp::open("ftp://dp/x", DpOptions::default()).is_err());
    assert!(Dp::open("/nonexistent/SCCMContentLib", DpOptions::default()).is_err());
}

/// EACCES on a DataLib INI. As root, permissions do not bite, so the check
/// runs in a child process of this test binary dropped to `nobody` with
/// `setpriv` (util-linux).
#[test]
fn no_read_access_names_dp_and_package() {
    let fx = fixture(false);
    let ini = fx
        .lib
        .join("DataLib")
        .join(format!("{OTHER}.1"))
        .join("install.cmd.INI");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(fx.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&ini, fs::Permissions::from_mode(0o000)).unwrap();
    let lib = fx.lib.to_str().unwrap().to_owned();
    if fs::read(&ini).is_err() {
        check_no_access(&lib);
        return;
    }
    // We are root: run the check as nobody, from a copy of this test
    // binary that nobody may execute wherever the build tree lives.
    let exe = fx.dir.path().join("probe");
    fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(exe)
        .args([
            "--exact",
            "eacces_child",
            "--include-ignored",
            "--nocapture",
        ])
        .env("CAPMEDIA_DP_EACCES_LIB", &lib)
        .output()
        .unwrap_or_else(|e| panic!("setpriv (Debian package util-linux) is needed: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

fn check_no_access(lib: &str) {
    let dp = Dp::open(lib, DpOptions::default()).unwrap();
    let err = dp.resolve(&pid(OTHER)).unwrap_err();
    assert!(matches!(err, DpError::NoReadAccess { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(lib) && msg.contains("install.cmd.INI") && msg.contains("Read access"),
        "{msg}"
    );
}

#[test]
#[ignore = "run by no_read_access_names_dp_and_package as an unprivileged user"]
fn eacces_child() {
    let lib = std::env::var("CAPMEDIA_DP_EACCES_LIB").unwrap();
    check_no_access(&lib);
}

#[test]
fn cancel_stops_the_fetch() {
    let fx = fixture(false);
    let dp = open(&fx, false);
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    let err = dp
        .fetch_with_cancel(&c, &cache, &|_, _| {}, &|| true)
        .unwrap_err();
    assert!(matches!(err, DpError::Cancelled), "{err}");
    assert!(c.files.iter().all(|f| !cache.contains(f)));
    assert_eq!(fs::read_dir(cache.dir().join("tmp")).unwrap().count(), 0);
}

#[test]
fn a_damaged_cache_entry_is_fetched_again() {
    let fx = fixture(false);
    let dp = open(&fx, false);
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    dp.fetch(&c, &cache, &|_, _| {}).unwrap();
    let wim = boot_wim(&c).unwrap();
    let p = cache.path_of(&wim.sha256);
    let mut b = fs::read(&p).unwrap();
    b[0] ^= 1;
    fs::write(&p, &b).unwrap();
    assert!(cache.contains(wim) && !cache.verify(wim).unwrap());
    dp.fetch(&c, &cache, &|_, _| {}).unwrap();
    assert!(cache.verify(wim).unwrap());
}

#[test]
fn an_application_lists_its_content_guid() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("app");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("setup.msi"), bytes(3, 1000)).unwrap();
    let guid = "Content_3c2b5d4e-1a2b-4c3d-8e9f-0123456789ab";
    let lib = dir.path().join("lib");
    capmedia_dp::build_library(
        &lib,
        &[capmedia_dp::PackageSource {
            id: pid(guid),
            version: 2,
            folder: &src,
        }],
        &capmedia_dp::BuildOptions {
            encoding: capmedia_dp::IniEncoding::Utf8Bom,
            ..Default::default()
        },
    )
    .unwrap();
    fs::remove_file(lib.join("PkgLib").join(format!("{guid}.INI"))).unwrap();
    fs::write(
        lib.join("PkgLib").join("PS100012.INI"),
        encode_utf16le_crlf(&format!("[Packages]\r\n{guid}.1=\r\n{guid}.2=\r\n")),
    )
    .unwrap();
    let dp = Dp::open(lib.to_str().unwrap(), DpOptions::default()).unwrap();
    let c = dp.resolve(&pid("PS100012")).unwrap();
    assert_eq!(c.content.to_string(), format!("{guid}.2"));
    assert_eq!(c.kind, PackageKind::Application);
    assert_eq!(c.files[0].path.as_str(), "setup.msi");
    assert_eq!(dp.list_package_ids().unwrap(), [pid("PS100012")]);
}

#[test]
fn a_streamed_fetch_resumes_a_short_read_from_the_files_length() {
    // The DP's WIM is short at first (a copy still being written, or a
    // read that stopped early) and whole by the retry: the stream file
    // keeps its first half and the retry copies on from there, never from 0.
    use capmedia_dp::FetchEvent;
    let fx = fixture(false);
    let opts = DpOptions {
        blake3: true,
        ..quick_opts()
    };
    let dp = Dp::open(fx.lib.to_str().unwrap(), opts).unwrap();
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let wim = boot_wim(&c).unwrap();
    let blob = blob_path(&fx, &wim.sha256);
    let whole = fs::read(&blob).unwrap();
    fs::write(&blob, &whole[..120_000]).unwrap();
    let path = fx.dir.path().join("stream");
    let mut out = fs::File::create_new(&path).unwrap();
    let last = AtomicU64::new(0);
    let backwards = AtomicU64::new(0);
    let at_retry = std::sync::Mutex::new(Vec::new());
    let events = |e: FetchEvent<'_>| match e {
        FetchEvent::Progress { done, .. } => {
            let before = last.swap(done, Ordering::Relaxed);
            backwards.fetch_add(u64::from(done < before), Ordering::Relaxed);
        }
        FetchEvent::Retry { .. } => {
            at_retry
                .lock()
                .unwrap()
                .push(fs::metadata(&path).unwrap().len());
            // Appended in place: the DP's copy is now whole.
            fs::OpenOptions::new()
                .append(true)
                .open(&blob)
                .unwrap()
                .write_all_at_end(&whole[120_000..]);
        }
        _ => {}
    };
    let blake3 = dp
        .stream_blob_events(&c, wim, &mut out, &events, &|| false)
        .unwrap();
    assert_eq!(fs::read(&path).unwrap(), whole);
    assert_eq!(blake3, blake3::hash(&whole).to_hex().to_string());
    assert_eq!(*at_retry.lock().unwrap(), vec![120_000]);
    assert_eq!(backwards.load(Ordering::Relaxed), 0, "progress went back");

    // Short for good: found short again where it ended, it is named so.
    fs::write(&blob, &whole[..120_000]).unwrap();
    let path = fx.dir.path().join("stream2");
    let mut out = fs::File::create_new(&path).unwrap();
    let err = dp
        .stream_blob(&c, wim, &mut out, &|_| {}, &|| false)
        .unwrap_err();
    assert!(matches!(err, DpError::Incomplete { .. }), "{err}");
    assert!(
        err.to_string().contains("ended after 120000 bytes"),
        "{err}"
    );
}

trait AppendAll {
    fn write_all_at_end(self, data: &[u8]);
}

impl AppendAll for fs::File {
    fn write_all_at_end(mut self, data: &[u8]) {
        std::io::Write::write_all(&mut self, data).unwrap();
    }
}
