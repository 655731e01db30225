//! Shared test fixtures: package folders, a built library, and hashing.
#![allow(dead_code, clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use capmedia_content::PackageId;
use capmedia_dp::{
    boot_wim, build_library, BuildOptions, BuiltLibrary, ContentCache, Dp, DpOptions,
    PackageContent, PackageSource,
};
use sha2::{Digest, Sha256};

pub const BOOT: &str = "PS100005";
pub const OTHER: &str = "PS10000A";

pub fn pid(s: &str) -> PackageId {
    s.parse().unwrap()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode_upper(Sha256::digest(bytes))
}

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub lib: PathBuf,
    pub second: PathBuf,
    pub built: BuiltLibrary,
}

impl Fixture {
    pub fn src(&self, pkg: &str) -> PathBuf {
        self.dir.path().join("src").join(pkg)
    }
    pub fn read_src(&self, pkg: &str, rel: &str) -> Vec<u8> {
        fs::read(self.src(pkg).join(rel)).unwrap()
    }
}

fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// Two packages: a boot image package and a plain one, sharing
/// `shared/common.bin`; FileLib optionally spread over a second root.
pub fn fixture(spread: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let shared = bytes(7, 100_000);
    let boot = src.join(BOOT);
    write(&boot.join(format!("boot.{BOOT}.wim")), &bytes(1, 300_000));
    write(&boot.join("sources/setup.exe"), &bytes(2, 5_000));
    write(&boot.join("shared/common.bin"), &shared);
    write(&boot.join("Deep/Er/Still Deeper/empty.txt"), b"");
    let other = src.join(OTHER);
    write(&other.join("install.cmd"), b"@echo off\r\nexit 0\r\n");
    write(&other.join("shared/common.bin"), &shared);
    write(&other.join("Ünïcode name.txt"), "héllo".as_bytes());
    let lib = dir.path().join("SCCMContentLib");
    let second = dir.path().join("SCCMContentLibD");
    let opts = BuildOptions {
        second_filelib_root: spread.then(|| second.clone()),
        ..BuildOptions::default()
    };
    let built = build_library(
        &lib,
        &[
            PackageSource {
                id: pid(BOOT),
                version: 3,
                folder: &boot,
            },
            PackageSource {
                id: pid(OTHER),
                version: 1,
                folder: &other,
            },
        ],
        &opts,
    )
    .unwrap();
    Fixture {
        dir,
        lib,
        second,
        built,
    }
}

/// Options with short timeouts so fault tests run quickly.
pub fn quick_opts() -> DpOptions {
    DpOptions {
        retries: 3,
        backoff: Duration::from_millis(10),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_millis(400),
        ..DpOptions::default()
    }
}

/// The smallest part of a ranged download.
pub const PART: u64 = 64 << 10;

/// [`quick_opts`] fetching every blob larger than [`PART`] as parallel
/// ranges of that size (the 300 000-byte WIM in five parts, four at once).
pub fn ranged_opts() -> DpOptions {
    DpOptions {
        range_part: PART,
        range_min: 0,
        concurrency: 4,
        blake3: true,
        ..quick_opts()
    }
}

/// All FileLib blob paths under `root/FileLib`.
pub fn blobs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(root.join("FileLib")) else {
        return out;
    };
    for d in rd.flatten() {
        for f in fs::read_dir(d.path()).unwrap().flatten() {
            let name = f.file_name().into_string().unwrap();
            if name.len() == 64 {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

/// The FileLib path of `hash` in whichever root holds it.
pub fn blob_path(fx: &Fixture, hash: &str) -> PathBuf {
    for root in [&fx.lib, &fx.second] {
        let p = root.join("FileLib").join(&hash[..4]).join(hash);
        if p.exists() {
            return p;
        }
    }
    panic!("no blob {hash}");
}
pub mod server;

/// Stream the WIM of `c` as a streamed capture does, into a new file under
/// `dir`; returns its bytes.
pub fn stream_wim(dp: &Dp, c: &PackageContent, dir: &Path) -> Vec<u8> {
    let path = dir.join("stream");
    let _ = fs::remove_file(&path);
    let mut out = fs::File::create_new(&path).unwrap();
    dp.stream_blob(c, boot_wim(c).unwrap(), &mut out, &|_| {}, &|| false)
        .unwrap();
    fs::read(&path).unwrap()
}

/// A DP that authenticates each connection (NTLM, Kerberos), fetched from
/// with [`ranged_opts`]: the boot WIM is streamed, the package fetched
/// into a cache, the WIM streamed again, each with the source's bytes.
/// `handshakes` counts the handshakes in the server's `log`. The first
/// stream's parts come on several connections at once, each authenticated
/// by its own handshake (a handshake split over connections fails), and no
/// more connections than parts in flight (the five parts take four at
/// most); the kept-alive, authenticated connections then serve the next
/// blob's parts with no new handshake.
pub fn ranges_authenticate_each_connection(
    fx: &Fixture,
    dp: &Dp,
    log: &dyn Fn() -> String,
    handshakes: &dyn Fn(&str) -> usize,
) {
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let src = fx.read_src(BOOT, boot_wim(&c).unwrap().path.as_str());
    assert!(stream_wim(dp, &c, fx.dir.path()) == src, "the WIM differs");
    let text = log();
    assert!(!text.contains("refused"), "{text}");
    let first = handshakes(&text);
    assert!((2..=4).contains(&first), "{first} handshakes:\n{text}");
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    for f in dp.fetch(&c, &cache, &|_, _| {}).unwrap() {
        assert!(
            fs::read(&f.local).unwrap() == fx.read_src(BOOT, f.path.as_str()),
            "{} differs in the cache",
            f.path.as_str()
        );
    }
    let after_fetch = handshakes(&log());
    assert!(stream_wim(dp, &c, fx.dir.path()) == src, "the WIM differs");
    let text = log();
    assert!(!text.contains("refused"), "{text}");
    assert_eq!(handshakes(&text), after_fetch, "{text}");
}
