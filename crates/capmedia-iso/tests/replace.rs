//! An existing set survives a failed, cancelled or killed rebuild, and the
//! next run cleans what a killed one left.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use capmedia_content::{Capacity, MediaPlan};
use capmedia_iso::IsoSetSink;
use capmedia_sink::{Cancel, ErrorKind, MediaSink, NeverCancel, NoProgress, Progress};
use common::*;

const KILL_ENV: &str = "CAPMEDIA_ISO_KILL_TEST_DIR";

/// The old set: two volumes of 25 MiB named `set_1.iso`, `set_2.iso`.
fn old_set(root: &Path) -> (PathBuf, Vec<(PathBuf, Vec<u8>)>) {
    let src = media_src(&root.join("old"), 2 << 20);
    let out = root.join("out/set.iso");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let mut b = builder(&src, &out, Capacity::Bytes(25 << 20), true);
    add_packages(&mut b, &root.join("old"), 3, 4, 2_000_000);
    let plan = plan(b);
    let r = IsoSetSink.write(&plan, &NoProgress, &NeverCancel).unwrap();
    assert_eq!(r.outputs.len(), 2);
    let snap = r
        .outputs
        .iter()
        .map(|o| (o.path.clone(), std::fs::read(&o.path).unwrap()))
        .collect();
    (out, snap)
}

/// A different plan for the same output: one volume of new content.
fn new_plan(root: &Path, out: &Path) -> MediaPlan {
    let src = media_src(&root.join("new"), 12 << 20);
    let mut b = builder(&src, out, Capacity::Unlimited, true);
    add_packages(&mut b, &root.join("new"), 2, 3, 1_000_000);
    plan(b)
}

fn assert_intact(out: &Path, snap: &[(PathBuf, Vec<u8>)]) {
    for (p, bytes) in snap {
        assert!(
            std::fs::read(p).unwrap() == *bytes,
            "{} changed",
            p.display()
        );
    }
    let dir = out.parent().unwrap();
    let mut names = names_with(dir, "set");
    // A killed run leaves its temporaries and its (released) lock file:
    // the next run removes both.
    names.retain(|n| !n.contains("capmedia-tmp") && !n.ends_with(".capmedia-lock"));
    assert_eq!(names, ["set_1.iso", "set_2.iso"]);
}

fn no_temps(out: &Path) {
    assert_eq!(
        names_with(out.parent().unwrap(), "capmedia-tmp"),
        Vec::<String>::new()
    );
}

/// Truncates a source file once writing has begun.
struct Saboteur {
    victim: PathBuf,
    done: AtomicBool,
}
impl Progress for Saboteur {
    fn update(&self, _: &str, _: u64, _: u64) {
        if !self.done.swap(true, Ordering::SeqCst) {
            std::fs::write(&self.victim, b"short").unwrap();
        }
    }
    fn message(&self, _: &str) {}
}

#[test]
fn failed_rebuild_leaves_old_set() {
    let t = tempfile::tempdir().unwrap();
    let (out, snap) = old_set(t.path());
    let plan = new_plan(t.path(), &out);
    let victim = t.path().join("new/wim/boot.PS100001.wim");
    let e = IsoSetSink
        .write(
            &plan,
            &Saboteur {
                victim,
                done: AtomicBool::new(false),
            },
            &NeverCancel,
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io, "{e}");
    assert_intact(&out, &snap);
    no_temps(&out);
}

struct CancelAfter(AtomicU32);
impl Cancel for CancelAfter {
    fn is_cancelled(&self) -> bool {
        let n = self.0.load(Ordering::SeqCst);
        self.0.store(n.saturating_sub(1), Ordering::SeqCst);
        n == 0
    }
}

#[test]
fn cancelled_rebuild_leaves_old_set() {
    let t = tempfile::tempdir().unwrap();
    let (out, snap) = old_set(t.path());
    let plan = new_plan(t.path(), &out);
    let e = IsoSetSink
        .write(&plan, &NoProgress, &CancelAfter(AtomicU32::new(20)))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Cancelled, "{e}");
    assert_intact(&out, &snap);
    no_temps(&out);

    // A check refusal touches nothing either.
    let mut small = plan.clone();
    small.capacity = Capacity::Bytes(1 << 20);
    let e = IsoSetSink
        .write(&small, &NoProgress, &NeverCancel)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused);
    assert_intact(&out, &snap);
    no_temps(&out);
}

/// Writes slowly and says when it has started, so the parent can kill it.
struct Slow {
    marker: PathBuf,
}
impl Progress for Slow {
    fn update(&self, _: &str, _: u64, _: u64) {
        if !self.marker.exists() {
            std::fs::write(&self.marker, b"started").unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    fn message(&self, _: &str) {}
}

/// Run by `killed_rebuild_leaves_old_set` in a child process, which it
/// kills with SIGKILL mid-write. Does nothing when run on its own.
#[test]
#[ignore = "helper: run by killed_rebuild_leaves_old_set"]
fn kill_helper() {
    let Ok(root) = std::env::var(KILL_ENV) else {
        return;
    };
    let root = PathBuf::from(root);
    let out = root.join("out/set.iso");
    let plan = new_plan(&root, &out);
    let _ = IsoSetSink.write(
        &plan,
        &Slow {
            marker: root.join("started"),
        },
        &NeverCancel,
    );
}

#[test]
fn killed_rebuild_leaves_old_set() {
    let t = tempfile::tempdir().unwrap();
    let (out, snap) = old_set(t.path());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill_helper", "--ignored", "--nocapture"])
        .env(KILL_ENV, t.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let marker = t.path().join("started");
    let mut waited = 0;
    while !marker.exists() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("child ended before it started writing: {st}");
        }
        std::thread::sleep(Duration::from_millis(50));
        waited += 1;
        assert!(waited < 2400, "child never started writing");
    }
    // Let it write a few chunks, then SIGKILL.
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();

    assert_intact(&out, &snap);
    let stale = names_with(out.parent().unwrap(), "capmedia-tmp");
    assert_eq!(
        stale.len(),
        1,
        "the killed run left its temporary: {stale:?}"
    );

    // check() touches nothing; the next write cleans the stale temporary
    // and replaces the two-volume set with one volume.
    let plan = new_plan(t.path(), &out);
    IsoSetSink.check(&plan).unwrap();
    assert_eq!(names_with(out.parent().unwrap(), "capmedia-tmp"), stale);
    let r = IsoSetSink.write(&plan, &NoProgress, &NeverCancel).unwrap();
    assert_eq!(r.outputs.len(), 1);
    no_temps(&out);
    assert_eq!(names_with(out.parent().unwrap(), "set"), ["set.iso"]);
}
