//! Kerberos over parallel ranged downloads, against a real MIT KDC and the
//! Kerberos-only test DP (`python/ntlm_dp.py --kerberos` in
//! capmedia-testdp): every connection of a ranged fetch authenticates with
//! its own `Negotiate` token from the ticket cache.
//!
//! Its own test binary: the Kerberos library takes its configuration and
//! ticket cache from the process environment (`KRB5_CONFIG`,
//! `KRB5CCNAME`), which this binary's one test sets for itself alone.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;

use capmedia_dp::{boot_wim, ContentCache, Dp};
use capmedia_testdp::{Kdc, NtlmDp, KRB_REALM};
use common::*;

fn kerberos_auths(log: &str) -> usize {
    log.lines()
        .filter(|l| l.starts_with("auth ") && l.ends_with("mech=kerberos"))
        .count()
}

#[test]
fn kerberos_parallel_ranges_each_authenticate_their_connection() {
    let fx = fixture(false);
    let kdc = Kdc::start().unwrap_or_else(|e| panic!("{e}"));
    let alice = kdc.add_principal("alice").unwrap();
    let http = kdc.add_principal("HTTP/127.0.0.1").unwrap();
    let cc = fx.dir.path().join("cc");
    kdc.kinit("alice", &alice, &cc).unwrap();
    std::env::set_var("KRB5_CONFIG", kdc.krb5_conf());
    std::env::set_var("KRB5CCNAME", format!("FILE:{}", cc.display()));
    let server = NtlmDp::start_kerberos(&fx.lib, &kdc, &http).unwrap_or_else(|e| panic!("{e}"));

    // No account: the ticket logs on. The 300 000-byte WIM goes as five
    // 64 KiB ranges, four at once.
    let dp = Dp::open(&server.url(), ranged_opts()).unwrap();
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let wim = boot_wim(&c).unwrap();
    let src = fx.read_src(BOOT, wim.path.as_str());
    let stream = |name: &str| {
        let path = fx.dir.path().join(name);
        let mut out = fs::File::create_new(&path).unwrap();
        dp.stream_blob(&c, wim, &mut out, &|_| {}, &|| false)
            .unwrap();
        fs::read(&path).unwrap()
    };
    assert!(stream("first") == src, "the streamed WIM differs");
    let log = server.log();
    assert!(!log.contains("refused"), "{log}");
    assert!(
        log.contains(&format!("user=alice@{KRB_REALM} mech=kerberos")),
        "{log}"
    );
    // The parts came on several connections at once, each with its own
    // handshake (a Kerberos context is bound to its connection, as NTLM
    // is), and no more connections than parts in flight.
    let first = kerberos_auths(&log);
    assert!((2..=4).contains(&first), "{first} handshakes:\n{log}");

    // Into the cache: the same bytes; then streamed again over the
    // authenticated connections kept alive, with no new handshake.
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    for f in dp.fetch(&c, &cache, &|_, _| {}).unwrap() {
        assert_eq!(
            fs::read(&f.local).unwrap(),
            fx.read_src(BOOT, f.path.as_str())
        );
    }
    let after_fetch = kerberos_auths(&server.log());
    assert!(stream("again") == src, "the second stream differs");
    let log = server.log();
    assert!(!log.contains("refused"), "{log}");
    assert_eq!(kerberos_auths(&log), after_fetch, "{log}");
}
