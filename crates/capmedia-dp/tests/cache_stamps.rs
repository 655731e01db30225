//! Sealed cache stamps: a warm cache is used without reading the DP or
//! re-hashing an entry whose stamp still matches; a write after sealing is
//! noticed; a stamp that was torn or edited is not trusted; `verify_cache`
//! re-hashes everything.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::FileExt;

use capmedia_dp::{boot_wim, ContentCache, ContentReader, Dp, DpOptions, FetchedFile};
use common::*;

fn open(fx: &Fixture, verify_cache: bool) -> Dp {
    let opts = DpOptions {
        blake3: true,
        verify_cache,
        ..quick_opts()
    };
    Dp::open(fx.lib.to_str().unwrap(), opts).unwrap()
}

fn fetch(dp: &Dp, fx: &Fixture, cache: &ContentCache) -> Vec<FetchedFile> {
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let _ = fx;
    dp.fetch(&c, cache, &|_, _| {}).unwrap()
}

/// Replace every FileLib blob's bytes with others of the same size: any
/// byte the DP serves after this fails its SHA-256.
fn spoil_filelib(fx: &Fixture) {
    for b in blobs(&fx.lib) {
        let n = fs::metadata(&b).unwrap().len() as usize;
        fs::write(&b, bytes(99, n)).unwrap();
    }
}

/// Flip the first byte of `path` in place and put its mtime back, as
/// something would that meant to hide the change.
fn damage_keeping_mtime(path: &std::path::Path) {
    let mtime = fs::metadata(path).unwrap().modified().unwrap();
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, 0).unwrap();
    b[0] ^= 0xFF;
    f.write_all_at(&b, 0).unwrap();
    f.set_modified(mtime).unwrap();
}

#[test]
fn a_warm_cache_reads_no_dp_byte_and_hashes_nothing() {
    let fx = fixture(false);
    let dp = open(&fx, false);
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    let cold = fetch(&dp, &fx, &cache);
    assert!(cold.iter().all(|f| !f.trusted && f.blake3.is_some()));
    // The DP's blobs now hold other bytes: a run that read any of them
    // would fail its SHA-256.
    spoil_filelib(&fx);
    let warm = fetch(&dp, &fx, &cache);
    assert!(warm.iter().all(|f| f.trusted), "{warm:?}");
    for (c, w) in cold.iter().zip(&warm) {
        assert_eq!(
            (&c.path, &c.blake3, &c.local),
            (&w.path, &w.blake3, &w.local)
        );
    }
    // The validate stage's reader takes the cache's copy too.
    let content = dp.resolve(&pid(BOOT)).unwrap();
    let wim = boot_wim(&content).unwrap();
    let mut r = dp.content_reader(&content, wim, &cache);
    assert!(matches!(r, ContentReader::Cached(_)));
    let mut head = vec![0u8; 64];
    r.read_exact(&mut head).unwrap();
    assert_eq!(head, fx.read_src(BOOT, &format!("boot.{BOOT}.wim"))[..64]);
}

#[test]
fn bytes_changed_with_the_mtime_put_back_pass_the_stamp_but_not_verify_cache() {
    let fx = fixture(false);
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    let dp = open(&fx, false);
    fetch(&dp, &fx, &cache);
    let content = dp.resolve(&pid(BOOT)).unwrap();
    let wim = boot_wim(&content).unwrap().clone();
    damage_keeping_mtime(&cache.path_of(&wim.sha256));
    // The stamp cannot see it, and the entry is not read: it stays damaged
    // (the medium's read-back is what catches it; see the CLI tests).
    let warm = fetch(&dp, &fx, &cache);
    assert!(warm.iter().all(|f| f.trusted));
    assert!(!cache.verify(&wim).unwrap());
    // --verify-cache hashes it, finds it wrong and fetches it again.
    let checking = open(&fx, true);
    let again = fetch(&checking, &fx, &cache);
    assert!(again.iter().all(|f| !f.trusted));
    assert!(cache.verify(&wim).unwrap());
    assert!(cache.trusted(&wim).is_some(), "sealed again");
}

#[test]
fn a_write_after_sealing_is_noticed_even_in_the_same_tick() {
    let fx = fixture(false);
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    let dp = open(&fx, false);
    fetch(&dp, &fx, &cache);
    let content = dp.resolve(&pid(BOOT)).unwrap();
    let wim = boot_wim(&content).unwrap().clone();
    let p = cache.path_of(&wim.sha256);
    // In place, same size, same inode, right after sealing.
    let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.write_all_at(b"X", 0).unwrap();
    drop(f);
    assert!(cache.trusted(&wim).is_none());
    let again = fetch(&dp, &fx, &cache);
    let w = again.iter().find(|f| f.sha256 == wim.sha256).unwrap();
    assert!(!w.trusted);
    assert!(cache.verify(&wim).unwrap(), "fetched again");
    // A replaced file (another inode) is not trusted either.
    let copy = p.with_extension("copy");
    fs::copy(&p, &copy).unwrap();
    let mtime = fs::metadata(&p).unwrap().modified().unwrap();
    fs::rename(&copy, &p).unwrap();
    fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert!(cache.trusted(&wim).is_none());
}

#[test]
fn a_torn_or_edited_stamp_is_not_trusted() {
    let fx = fixture(false);
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    let dp = open(&fx, false);
    fetch(&dp, &fx, &cache);
    let content = dp.resolve(&pid(BOOT)).unwrap();
    let wim = boot_wim(&content).unwrap().clone();
    let stamp = cache.dir().join("stamps").join(&wim.sha256);
    let good = fs::read_to_string(&stamp).unwrap();
    assert!(cache.trusted(&wim).is_some());
    let cases = [
        good[..good.len() / 2].to_owned(),
        good.replacen("size ", "size 1", 1),
        good.replacen("blake3 ", "blake3 0", 1),
        format!("{good}extra line\n"),
        String::new(),
    ];
    for bad in cases {
        fs::write(&stamp, &bad).unwrap();
        assert!(cache.trusted(&wim).is_none(), "{bad:?}");
    }
    fs::remove_file(&stamp).unwrap();
    assert!(cache.trusted(&wim).is_none());
    // The next fetch hashes the entry (it is intact) and seals it again.
    let again = fetch(&dp, &fx, &cache);
    for f in &again {
        assert_eq!(f.trusted, f.sha256 != wim.sha256, "{}", f.path);
    }
    // (Not byte for byte: the new mtime's nanoseconds may have another
    // number of digits.)
    assert_eq!(
        fs::read_to_string(&stamp).unwrap().lines().count(),
        good.lines().count()
    );
    assert!(cache.trusted(&wim).is_some());
    // `forget` removes the entry and its stamp; `cache list` never shows
    // stamps as blobs.
    assert!(cache
        .blobs()
        .unwrap()
        .iter()
        .all(|(p, _)| !p.starts_with(cache.dir().join("stamps"))));
    cache.forget(&wim.sha256).unwrap();
    assert!(!stamp.exists() && !cache.path_of(&wim.sha256).exists());
}

#[test]
fn an_unstamped_entry_is_hashed_again_sealed_and_used_without_the_dp() {
    let fx = fixture(false);
    let dp = open(&fx, false);
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    let cold = fetch(&dp, &fx, &cache);
    fs::remove_dir_all(cache.dir().join("stamps")).unwrap();
    // Any byte read from the DP now fails its SHA-256.
    spoil_filelib(&fx);
    let content = dp.resolve(&pid(BOOT)).unwrap();
    let wim = boot_wim(&content).unwrap();
    assert!(cache.trusted(wim).is_none());
    // The validate stage's reader hashes the entry again where it is...
    assert!(matches!(
        dp.content_reader(&content, wim, &cache),
        ContentReader::Cached(_)
    ));
    // ... and seals it: trusted from now on, with the BLAKE3 the fetch had.
    let t = cache.trusted(wim).unwrap();
    let cold_wim = cold.iter().find(|f| f.sha256 == wim.sha256).unwrap();
    assert_eq!(t.blake3, cold_wim.blake3);
    for f in &content.files {
        let again = cache.revalidate(f).unwrap().unwrap();
        assert_eq!(
            again.blake3,
            cold.iter().find(|c| c.sha256 == f.sha256).unwrap().blake3
        );
    }
    let warm = fetch(&dp, &fx, &cache);
    assert!(warm.iter().all(|f| f.trusted), "{warm:?}");

    // An entry whose bytes are not its name's is not revalidated.
    let entry = cache.path_of(&wim.sha256);
    damage_keeping_mtime(&entry);
    assert!(cache.revalidate(wim).unwrap().is_none());
    assert!(matches!(
        dp.content_reader(&content, wim, &ContentCache::at(fx.dir.path().join("none"))),
        ContentReader::Remote(_)
    ));
}
