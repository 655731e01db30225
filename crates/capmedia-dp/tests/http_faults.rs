//! The HTTP backend against a local test server that lists folders as IIS
//! does and injects faults.
#![allow(clippy::unwrap_used, clippy::result_large_err)]

mod common;

use std::fs;
use std::time::Duration;

use capmedia_dp::{ContentCache, Dp, DpError, PackageContent};
use common::server::{iis_listing, Fault, Request, Server, PREFIX};
use common::*;

fn setup(
    policy: impl Fn(&Request, usize) -> Fault + Send + Sync + 'static,
) -> (Fixture, Server, Dp) {
    let fx = fixture(false);
    let srv = Server::start(fx.lib.clone(), policy);
    let dp = Dp::open(&srv.url(), quick_opts()).unwrap();
    (fx, srv, dp)
}

fn wim_hash(fx: &Fixture) -> String {
    sha256_hex(&fx.read_src(BOOT, &format!("boot.{BOOT}.wim")))
}

fn fetch(fx: &Fixture, dp: &Dp, c: &PackageContent) -> Result<(), DpError> {
    let cache = ContentCache::open(fx.dir.path().join("cache")).unwrap();
    let fetched = dp.fetch(c, &cache, &|_, _| {})?;
    for f in fetched {
        assert_eq!(
            fs::read(&f.local).unwrap(),
            fx.read_src(BOOT, f.path.as_str())
        );
    }
    Ok(())
}

#[test]
fn iis_style_server_end_to_end() {
    let (fx, srv, dp) = setup(|_, _| Fault::None);
    let list = dp.list_packages().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[1].files, 3, "{list:?}");
    let c = dp.resolve(&pid(BOOT)).unwrap();
    assert_eq!(c.files.len(), 4);
    assert_eq!(
        srv.hits("FileLib")
            .iter()
            .filter(|r| r.method == "HEAD")
            .count(),
        4
    );
    fetch(&fx, &dp, &c).unwrap();
    let wim = capmedia_dp::boot_wim(&c).unwrap();
    let head = dp.read_head(&c, wim, 208).unwrap();
    assert_eq!(head, fx.read_src(BOOT, &format!("boot.{BOOT}.wim"))[..208]);
    let last = srv.log.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.range.as_deref(), Some("bytes=0-207"));
}

#[test]
fn corrupted_bytes_are_detected_retried_then_refused() {
    let (fx, srv, dp) = setup(|r, _| {
        if r.method == "GET" && r.path.starts_with("FileLib/") {
            Fault::Corrupt
        } else {
            Fault::None
        }
    });
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let err = fetch(&fx, &dp, &c).unwrap_err();
    assert!(matches!(err, DpError::HashMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&srv.url()) && msg.contains(BOOT), "{msg}");
    // Each failing file was fetched exactly twice: detected, retried, refused.
    let failing = match &err {
        DpError::HashMismatch { file, .. } => c.file(file).unwrap().sha256.clone(),
        _ => unreachable!(),
    };
    let gets = srv
        .hits(&failing)
        .into_iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(gets, 2);
}

#[test]
fn corruption_once_is_healed_by_the_retry() {
    let (fx, srv, dp) = {
        let fx0 = fixture(false);
        let h = wim_hash(&fx0);
        let srv = Server::start(fx0.lib.clone(), move |r, nth| {
            if r.method == "GET" && r.path.ends_with(&h) && nth == 0 {
                Fault::Corrupt
            } else {
                Fault::None
            }
        });
        let dp = Dp::open(&srv.url(), quick_opts()).unwrap();
        (fx0, srv, dp)
    };
    let c = dp.resolve(&pid(BOOT)).unwrap();
    fetch(&fx, &dp, &c).unwrap();
    assert_eq!(
        srv.hits(&wim_hash(&fx))
            .iter()
            .filter(|r| r.method == "GET")
            .count(),
        2
    );
}

fn on_wim(fault: Fault, times: usize) -> (Fixture, Server, Dp) {
    let fx = fixture(false);
    let h = wim_hash(&fx);
    let srv = Server::start(fx.lib.clone(), move |r, nth| {
        if r.method == "GET" && r.path.ends_with(&h) && nth < times {
            fault.clone()
        } else {
            Fault::None
        }
    });
    let dp = Dp::open(&srv.url(), quick_opts()).unwrap();
    (fx, srv, dp)
}

#[test]
fn a_500_then_success() {
    let (fx, srv, dp) = on_wim(Fault::Status(500), 1);
    let c = dp.resolve(&pid(BOOT)).unwrap();
    fetch(&fx, &dp, &c).unwrap();
    assert_eq!(
        srv.hits(&wim_hash(&fx))
            .iter()
            .filter(|r| r.method == "GET")
            .count(),
        2
    );
}

#[test]
fn persistent_503_gives_up_after_the_retries() {
    let (fx, srv, dp) = on_wim(Fault::Status(503), usize::MAX);
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let err = fetch(&fx, &dp, &c).unwrap_err();
    assert!(
        matches!(err, DpError::Transfer { attempts: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("boot.{BOOT}.wim")));
    assert_eq!(
        srv.hits(&wim_hash(&fx))
            .iter()
            .filter(|r| r.method == "GET")
            .count(),
        4
    );
}

#[test]
fn a_stalled_response_times_out_and_resumes_with_range() {
    let (fx, srv, dp) = on_wim(Fault::Stall(Duration::from_secs(3)), 1);
    let c = dp.resolve(&pid(BOOT)).unwrap();
    fetch(&fx, &dp, &c).unwrap();
    let gets: Vec<_> = srv
        .hits(&wim_hash(&fx))
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].range, None);
    let resumed = gets[1].range.as_deref().unwrap();
    assert!(
        resumed.starts_with("bytes=") && resumed != "bytes=0-",
        "{resumed}"
    );
}

#[test]
fn a_truncated_body_is_resumed() {
    let (fx, srv, dp) = on_wim(Fault::Truncate, 1);
    let c = dp.resolve(&pid(BOOT)).unwrap();
    fetch(&fx, &dp, &c).unwrap();
    let gets: Vec<_> = srv
        .hits(&wim_hash(&fx))
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[1].range.as_deref(), Some("bytes=150000-"));
}

#[test]
fn a_server_ignoring_range_restarts_cleanly() {
    let fx = fixture(false);
    let h = wim_hash(&fx);
    let srv = Server::start(fx.lib.clone(), move |r, nth| {
        if r.method == "GET" && r.path.ends_with(&h) {
            if nth == 0 {
                Fault::Truncate
            } else {
                Fault::IgnoreRange
            }
        } else {
            Fault::None
        }
    });
    let dp = Dp::open(&srv.url(), quick_opts()).unwrap();
    let c = dp.resolve(&pid(BOOT)).unwrap();
    fetch(&fx, &dp, &c).unwrap();
}

#[test]
fn always_truncated_is_refused() {
    let (fx, _srv, dp) = on_wim(Fault::Truncate, usize::MAX);
    let c = dp.resolve(&pid(BOOT)).unwrap();
    let err = fetch(&fx, &dp, &c).unwrap_err();
    assert!(matches!(err, DpError::Transfer { .. }), "{err}");
}

#[test]
fn http_401_says_windows_authentication() {
    let (_fx, _srv, dp) = setup(|_, _| Fault::Status(401));
    let err = dp.list_packages().unwrap_err();
    assert!(matches!(err, DpError::AuthRequired { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("Windows authentication")
            && msg.contains("Negotiate, NTLM")
            && msg.contains("--dp-user"),
        "{msg}"
    );
    let err = dp.resolve(&pid(BOOT)).unwrap_err();
    assert!(matches!(err, DpError::AuthRequired { .. }), "{err}");
    assert!(err.to_string().contains(BOOT), "{err}");
}

#[test]
fn http_403_is_no_read_access() {
    let (_fx, srv, dp) = setup(|r, _| {
        if r.path.starts_with("DataLib") {
            Fault::Status(403)
        } else {
            Fault::None
        }
    });
    let err = dp.resolve(&pid(BOOT)).unwrap_err();
    assert!(matches!(err, DpError::NoReadAccess { .. }), "{err}");
    assert!(
        err.to_string().contains(&srv.url()) && err.to_string().contains(BOOT),
        "{err}"
    );
    let err = dp.list_packages().unwrap_err();
    assert!(matches!(err, DpError::NoReadAccess { .. }), "{err}");
}

#[test]
fn http_403_on_filelib_fails_resolve() {
    let (_fx, _srv, dp) = setup(|r, _| {
        if r.path.starts_with("FileLib") {
            Fault::Status(403)
        } else {
            Fault::None
        }
    });
    let err = dp.resolve(&pid(BOOT)).unwrap_err();
    assert!(matches!(err, DpError::NoReadAccess { .. }), "{err}");
}

#[test]
fn missing_filelib_blob_found_by_head() {
    let fx = fixture(false);
    let h = wim_hash(&fx);
    fs::remove_file(blob_path(&fx, &h)).unwrap();
    let srv = Server::start(fx.lib.clone(), |_, _| Fault::None);
    let dp = Dp::open(&srv.url(), quick_opts()).unwrap();
    let err = dp.resolve(&pid(BOOT)).unwrap_err();
    assert!(matches!(err, DpError::Incomplete { .. }), "{err}");
    assert!(err.to_string().contains(&format!("boot.{BOOT}.wim")));
    assert!(
        srv.hits(&h).iter().all(|r| r.method == "HEAD"),
        "nothing fetched"
    );
}

#[test]
fn a_listing_with_dotdot_names_is_refused_and_not_followed() {
    let dir = format!("{PREFIX}DataLib/{BOOT}.3/");
    let evil = iis_listing(
        "dp01",
        &dir,
        &[
            ("sources".into(), true, 0),
            ("..\\..\\..\\Windows\\win.ini".into(), false, 10),
        ],
    );
    let html = evil.replace(
        &format!("{dir}..%5C..%5C..%5CWindows%5Cwin.ini"),
        &format!("{dir}../../../Windows/win.ini"),
    );
    assert!(html.contains("../../../Windows"));
    let (_fx, srv, dp) = setup(move |r, _| {
        if r.path == format!("DataLib/{BOOT}.3/") {
            Fault::Html(html.clone())
        } else {
            Fault::None
        }
    });
    let err = dp.resolve(&pid(BOOT)).unwrap_err();
    assert!(matches!(err, DpError::UnsafeName { .. }), "{err}");
    assert!(err.to_string().contains(".."), "{err}");
    assert!(srv.hits("Windows").is_empty() && srv.hits("win.ini").is_empty());
}

#[test]
fn a_listing_with_a_backslash_dotdot_name_is_refused() {
    let dir = format!("{PREFIX}DataLib/{BOOT}.3/");
    let html = iis_listing("dp01", &dir, &[("..\\evil.INI".into(), false, 10)]);
    let (_fx, _srv, dp) = setup(move |r, _| {
        if r.path == format!("DataLib/{BOOT}.3/") {
            Fault::Html(html.clone())
        } else {
            Fault::None
        }
    });
    let err = dp.resolve(&pid(BOOT)).unwrap_err();
    assert!(matches!(err, DpError::UnsafeName { .. }), "{err}");
}

#[test]
fn not_distributed_over_http() {
    let (_fx, _srv, dp) = setup(|_, _| Fault::None);
    let err = dp.resolve(&pid("PS1000FF")).unwrap_err();
    assert!(matches!(err, DpError::NotDistributed { .. }), "{err}");
}

#[test]
fn metadata_requests_are_retried_too() {
    let (_fx, srv, dp) = setup(|r, nth| {
        let flaky =
            r.path.starts_with("DataLib") || (r.path.starts_with("FileLib") && r.method == "HEAD");
        if flaky && nth == 0 {
            Fault::Status(502)
        } else {
            Fault::None
        }
    });
    let c = dp.resolve(&pid(BOOT)).unwrap();
    assert_eq!(c.files.len(), 4);
    assert!(srv.hits("DataLib").len() > 8);
}

#[test]
fn persistent_500_on_metadata_gives_up_naming_the_file() {
    let (_fx, _srv, dp) = setup(|r, _| {
        if r.path.ends_with("setup.exe.INI") {
            Fault::Status(500)
        } else {
            Fault::None
        }
    });
    let err = dp.resolve(&pid(BOOT)).unwrap_err();
    assert!(
        matches!(err, DpError::Transfer { attempts: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("setup.exe.INI"), "{err}");
}

#[test]
fn a_server_that_never_answers_times_out_and_is_retried() {
    let (fx, srv, dp) = on_wim(Fault::StallHead(Duration::from_secs(3)), 1);
    let c = dp.resolve(&pid(BOOT)).unwrap();
    fetch(&fx, &dp, &c).unwrap();
    let gets: Vec<_> = srv
        .hits(&wim_hash(&fx))
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(
        gets[1].range, None,
        "nothing was received, so nothing to resume"
    );
}

/// Parallel ranged downloads, and resuming a streamed fetch.
mod ranges {
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::Mutex;

    use capmedia_dp::{ContentFile, DpOptions, FetchEvent};

    use super::*;

    /// The WIM's five parts of [`PART`] bytes, as `Range` values.
    fn parts() -> Vec<String> {
        (0..5u64)
            .map(|i| format!("bytes={}-{}", i * PART, ((i + 1) * PART).min(300_000) - 1))
            .collect()
    }

    fn ranged(
        policy: impl Fn(&Request, usize) -> Fault + Send + Sync + 'static,
    ) -> (Fixture, Server, Dp, PackageContent) {
        let fx = fixture(false);
        let srv = Server::start(fx.lib.clone(), policy);
        let dp = Dp::open(&srv.url(), ranged_opts()).unwrap();
        let c = dp.resolve(&pid(BOOT)).unwrap();
        (fx, srv, dp, c)
    }

    fn wim_gets(fx: &Fixture, srv: &Server) -> Vec<Option<String>> {
        srv.hits(&wim_hash(fx))
            .into_iter()
            .filter(|r| r.method == "GET")
            .map(|r| r.range)
            .collect()
    }

    /// What one streamed fetch reported.
    #[derive(Default)]
    struct Seen {
        /// Progress only ever went forward (a restart would go back).
        forward: AtomicBool,
        last: AtomicU64,
        retries: AtomicUsize,
        /// The length of the stream file at each retry.
        at_retry: Mutex<Vec<u64>>,
    }

    /// Stream the WIM into a new file as a streamed capture does; returns
    /// the result and the file's bytes. `on_retry` runs at each retry.
    fn stream(
        fx: &Fixture,
        dp: &Dp,
        c: &PackageContent,
        seen: &Seen,
        cancel: &(dyn Fn() -> bool + Sync),
        on_retry: &(dyn Fn() + Sync),
    ) -> (Result<String, DpError>, Vec<u8>) {
        let wim: &ContentFile = capmedia_dp::boot_wim(c).unwrap();
        let path = fx.dir.path().join("stream");
        let _ = fs::remove_file(&path);
        let mut out = fs::File::create_new(&path).unwrap();
        seen.forward.store(true, Ordering::Relaxed);
        let events = |e: FetchEvent<'_>| match e {
            FetchEvent::Progress { done, .. } => {
                let before = seen.last.swap(done, Ordering::Relaxed);
                seen.forward.fetch_and(done >= before, Ordering::Relaxed);
            }
            FetchEvent::Retry { .. } => {
                seen.retries.fetch_add(1, Ordering::Relaxed);
                seen.at_retry
                    .lock()
                    .unwrap()
                    .push(fs::metadata(&path).unwrap().len());
                on_retry();
            }
            _ => {}
        };
        let r = dp.stream_blob_events(c, wim, &mut out, &events, cancel);
        (r, fs::read(&path).unwrap())
    }

    #[test]
    fn a_large_blob_comes_as_parallel_ranges_appended_in_order() {
        let (fx, srv, dp, c) = ranged(|_, _| Fault::None);
        // Streamed: five parts, the file growing front to back.
        let seen = Seen::default();
        let (r, bytes) = stream(&fx, &dp, &c, &seen, &|| false, &|| {});
        let blake3 = r.unwrap();
        let src = fx.read_src(BOOT, &format!("boot.{BOOT}.wim"));
        assert_eq!(bytes, src);
        assert_eq!(blake3, blake3::hash(&src).to_hex().to_string());
        assert!(seen.forward.load(Ordering::Relaxed));
        let mut gets = wim_gets(&fx, &srv);
        gets.sort();
        let mut want: Vec<Option<String>> = parts().into_iter().map(Some).collect();
        want.sort();
        assert_eq!(gets, want);
        // Into the cache: the same bytes (whichever large blob of the
        // package got the ranges; the others went as one request each).
        fetch(&fx, &dp, &c).unwrap();
    }

    #[test]
    fn a_part_cut_short_is_resumed_within_the_part_and_the_stream_only_grows() {
        let third = parts()[2].clone();
        let (fx, srv, dp, c) = ranged(move |r, _| {
            if r.method == "GET" && r.range.as_deref() == Some(third.as_str()) {
                Fault::Truncate
            } else {
                Fault::None
            }
        });
        let seen = Seen::default();
        let (r, bytes) = stream(&fx, &dp, &c, &seen, &|| false, &|| {});
        r.unwrap();
        assert_eq!(bytes, fx.read_src(BOOT, &format!("boot.{BOOT}.wim")));
        assert!(seen.forward.load(Ordering::Relaxed));
        assert_eq!(seen.retries.load(Ordering::Relaxed), 1);
        // Half of the part came; the retry asked for the other half only.
        let resumed = format!("bytes={}-{}", 2 * PART + PART / 2, 3 * PART - 1);
        let gets = wim_gets(&fx, &srv);
        assert!(
            gets.contains(&Some(resumed.clone())),
            "{resumed} not in {gets:?}"
        );
        assert_eq!(gets.len(), 6, "{gets:?}");
    }

    /// Stream the boot WIM from `srv` in one request (no ranges), check
    /// its bytes, and that the retry moved forward.
    fn stream_whole(fx: &Fixture, srv: &Server) -> Seen {
        let opts = DpOptions {
            range_part: 0,
            ..ranged_opts()
        };
        let dp = Dp::open(&srv.url(), opts).unwrap();
        let c = dp.resolve(&pid(BOOT)).unwrap();
        let seen = Seen::default();
        let (r, bytes) = stream(fx, &dp, &c, &seen, &|| false, &|| {});
        r.unwrap();
        assert_eq!(bytes, fx.read_src(BOOT, &format!("boot.{BOOT}.wim")));
        assert!(seen.forward.load(Ordering::Relaxed));
        seen
    }

    #[test]
    fn a_dropped_connection_resumes_a_streamed_fetch_from_the_files_length() {
        // One request for the whole blob, cut after half of it: the retry
        // asks for the rest from the stream file's length, never from 0.
        let fx = fixture(false);
        let h = wim_hash(&fx);
        let srv = Server::start(fx.lib.clone(), move |r, nth| {
            if r.method == "GET" && r.path.ends_with(&h) && nth == 0 {
                Fault::Truncate
            } else {
                Fault::None
            }
        });
        let seen = stream_whole(&fx, &srv);
        assert_eq!(*seen.at_retry.lock().unwrap(), vec![150_000]);
        assert_eq!(
            wim_gets(&fx, &srv),
            vec![None, Some("bytes=150000-".to_owned())]
        );
    }

    #[test]
    fn a_server_ignoring_range_is_read_as_one_stream() {
        let fx = fixture(false);
        let h = wim_hash(&fx);
        let srv = Server::start(fx.lib.clone(), move |r, _| {
            if r.method == "GET" && r.path.ends_with(&h) {
                Fault::IgnoreRange
            } else {
                Fault::None
            }
        });
        let dp = Dp::open(&srv.url(), ranged_opts()).unwrap();
        let c = dp.resolve(&pid(BOOT)).unwrap();
        let seen = Seen::default();
        let (r, bytes) = stream(&fx, &dp, &c, &seen, &|| false, &|| {});
        r.unwrap();
        assert_eq!(bytes, fx.read_src(BOOT, &format!("boot.{BOOT}.wim")));
        // The first part's request got the whole blob, and that was all.
        assert_eq!(wim_gets(&fx, &srv), vec![Some(parts()[0].clone())]);
        fetch(&fx, &dp, &c).unwrap();
    }

    #[test]
    fn a_server_ignoring_range_on_a_resume_is_skipped_not_rewound() {
        // Cut after half, then every answer ignores `Range`: the resumed
        // stream drops the first half it already has.
        let fx = fixture(false);
        let h = wim_hash(&fx);
        let srv = Server::start(fx.lib.clone(), move |r, nth| {
            if r.method == "GET" && r.path.ends_with(&h) {
                if nth == 0 {
                    Fault::Truncate
                } else {
                    Fault::IgnoreRange
                }
            } else {
                Fault::None
            }
        });
        stream_whole(&fx, &srv);
    }

    #[test]
    fn a_part_failing_every_time_gives_up_after_the_retries() {
        let second = parts()[1].clone();
        let (fx, _srv, dp, c) = ranged(move |r, _| {
            if r.method == "GET" && r.range.as_deref() == Some(second.as_str()) {
                Fault::Status(503)
            } else {
                Fault::None
            }
        });
        let seen = Seen::default();
        let (r, bytes) = stream(&fx, &dp, &c, &seen, &|| false, &|| {});
        let err = r.unwrap_err();
        assert!(
            matches!(err, DpError::Transfer { attempts: 4, .. }),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("boot.{BOOT}.wim")));
        assert_eq!(seen.retries.load(Ordering::Relaxed), 3);
        // Nothing past the failed part was appended.
        assert!(bytes.len() as u64 <= PART, "{}", bytes.len());
    }

    #[test]
    fn a_corrupted_part_fails_the_streamed_blob() {
        // The server flips byte 150 000, in the third part, once.
        let third = parts()[2].clone();
        let once = AtomicBool::new(true);
        let (fx, _srv, dp, c) = ranged(move |r, _| {
            if r.method == "GET"
                && r.range.as_deref() == Some(third.as_str())
                && once.swap(false, Ordering::Relaxed)
            {
                Fault::Corrupt
            } else {
                Fault::None
            }
        });
        let seen = Seen::default();
        let (r, _) = stream(&fx, &dp, &c, &seen, &|| false, &|| {});
        assert!(matches!(r, Err(DpError::StreamMismatch { .. })), "{r:?}");
    }

    #[test]
    fn a_cancel_stops_a_ranged_fetch() {
        let (fx, _srv, dp, c) = ranged(|_, _| Fault::None);
        let seen = Seen::default();
        // Cancelled once the first part is in the file.
        let cancel = || seen.last.load(Ordering::Relaxed) > 0;
        let (r, bytes) = stream(&fx, &dp, &c, &seen, &cancel, &|| {});
        assert!(matches!(r, Err(DpError::Cancelled)), "{r:?}");
        assert!((bytes.len() as u64) < 300_000, "{}", bytes.len());
    }
}
