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

use capmedia_dp::Dp;
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
    // No account: the ticket logs on, on every connection of the ranged
    // fetch (a Kerberos context is bound to its connection, as NTLM's is).
    let dp = Dp::open(&server.url(), ranged_opts()).unwrap();
    ranges_authenticate_each_connection(&fx, &dp, &|| server.log(), &kerberos_auths);
    let log = server.log();
    assert!(
        log.contains(&format!("user=alice@{KRB_REALM} mech=kerberos")),
        "{log}"
    );
}
