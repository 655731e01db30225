//! The staged driver with an in-process fake sink (no dynamic loading):
//! the stages in order, a cancel at every stage boundary, and what each
//! cancel leaves behind (nothing: old output byte-identical, no
//! temporaries, no staging folder, no partial cache file).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use capmedia_content::{Capacity, MediaPlan, Volume};
use capmedia_dp::DpOptions;
use capmedia_driver::{capture, resolve, CaptureError, CaptureRequest, Events, SystemPaths};
use capmedia_sample::{write_sample_dp, X64_PACKAGE};
use capmedia_sink::output::{check_output, OutputKind, OutputSet};
use capmedia_sink::{
    Cancel, CheckReport, MediaSink, Progress, SinkError, SinkInfo, VerifyReport, VerifyRequest,
    WriteReport,
};

/// Writes "path blake3" lines after checking every entry's bytes against
/// the hash the plan promises; uses the SDK's output protocol.
#[derive(Default)]
struct FakeSink {
    writes: AtomicUsize,
}

impl MediaSink for FakeSink {
    fn describe(&self) -> SinkInfo {
        SinkInfo {
            name: "fake".into(),
            version: "1".into(),
            description: "test sink".into(),
            ..Default::default()
        }
    }

    fn check(&self, plan: &MediaPlan) -> Result<CheckReport, SinkError> {
        check_output(&plan.output, OutputKind::File, plan.content_bytes())?;
        Ok(CheckReport {
            volumes: vec![Volume::whole(plan, plan.content_bytes(), plan.capacity)],
            notes: vec![],
        })
    }

    fn write(
        &self,
        plan: &MediaPlan,
        _progress: &dyn Progress,
        cancel: &dyn Cancel,
    ) -> Result<WriteReport, SinkError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut set = OutputSet::begin(&plan.output, OutputKind::File, plan.content_bytes())?;
        let tmp = set.create_file(&plan.output)?;
        let mut text = String::new();
        for e in &plan.entries {
            if cancel.is_cancelled() {
                return Err(SinkError::cancelled());
            }
            let mut bytes = Vec::new();
            e.source.open().unwrap().read_to_end(&mut bytes).unwrap();
            let h = blake3::hash(&bytes).to_hex().to_string();
            assert_eq!(h, e.blake3, "{}", e.path);
            text.push_str(&format!("{} {h}\n", e.path));
        }
        fs::write(&tmp, text).unwrap();
        if cancel.is_cancelled() {
            return Err(SinkError::cancelled());
        }
        set.commit(&[])?;
        Ok(WriteReport::single(
            "fake",
            plan,
            plan.output.clone(),
            fs::metadata(&plan.output).unwrap().len(),
            true,
        ))
    }

    fn verify(
        &self,
        _: &VerifyRequest,
        _: &dyn Progress,
        _: &dyn Cancel,
    ) -> Result<VerifyReport, SinkError> {
        Err(SinkError::unsupported(
            "the fake sink verifies while writing",
        ))
    }
}

/// Events that ask to stop once `cancel_after` stages have begun.
struct Recorder {
    cancel_after: usize,
    stages: Mutex<Vec<String>>,
}

impl Recorder {
    fn new(cancel_after: usize) -> Recorder {
        Recorder {
            cancel_after,
            stages: Mutex::new(Vec::new()),
        }
    }
    fn stages(&self) -> Vec<String> {
        self.stages.lock().unwrap().clone()
    }
}

impl Events for Recorder {
    fn stage(&self, stage: &str) {
        self.stages.lock().unwrap().push(stage.to_owned());
    }
    fn progress(&self, _: &str, _: u64, _: u64) {}
    fn message(&self, _: &str) {}
    fn cancelled(&self) -> bool {
        self.stages.lock().unwrap().len() >= self.cancel_after
    }
}

struct World {
    _dir: tempfile::TempDir,
    lib: PathBuf,
    out: PathBuf,
    staging: PathBuf,
    cache: PathBuf,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let dp = write_sample_dp(&dir.path().join("dp")).unwrap();
    for d in ["out", "staging", "cache"] {
        fs::create_dir(dir.path().join(d)).unwrap();
    }
    World {
        lib: dp.content_lib,
        out: dir.path().join("out/capture.fake"),
        staging: dir.path().join("staging"),
        cache: dir.path().join("cache"),
        _dir: dir,
    }
}

fn request(w: &World) -> CaptureRequest {
    CaptureRequest {
        dp: w.lib.to_str().unwrap().to_owned(),
        dp_options: DpOptions::default(),
        boot_image: X64_PACKAGE.parse().unwrap(),
        out: w.out.clone(),
        target_arch: None,
        capacity: Capacity::Unlimited,
        label: "Test".into(),
        boot_files: None,
        media_template: None,
        autorun: true,
        staging: Some(w.staging.clone()),
        cache_dir: w.cache.clone(),
        options: BTreeMap::new(),
        source_date_epoch: 1_700_000_000,
        dry_run: false,
        system: SystemPaths::default(),
        uefi_ca: Default::default(),
        target_hwids: None,
        require_hwids: Vec::new(),
    }
}

/// Every file under `dir`, relative.
fn tree(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            v.push(p.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    v.sort();
    v
}

const STAGES: [&str; 8] = [
    "resolve", "validate", "plan", "check", "fetch", "hash", "write", "verify",
];

#[test]
fn stages_run_in_order_and_leave_only_the_output() {
    let w = world();
    let sink = FakeSink::default();
    let ev = Recorder::new(usize::MAX);
    let report = capture(&request(&w), &sink, &ev).unwrap();
    assert_eq!(ev.stages(), STAGES);
    assert_eq!(report.outputs.len(), 1);
    assert_eq!(report.out, fs::canonicalize(&w.out).unwrap());
    assert!(!report.interrupted_after_commit);
    let listed = fs::read_to_string(&w.out).unwrap();
    assert!(listed.contains("sources/boot.wim "), "{listed}");
    assert!(listed.contains("autorun.inf "), "{listed}");
    assert_eq!(tree(w.out.parent().unwrap()), ["capture.fake"]);
    assert!(tree(&w.staging).is_empty(), "{:?}", tree(&w.staging));
}

#[test]
fn a_cancel_at_every_stage_boundary_leaves_nothing() {
    // `after` stages have begun when the user asks to stop: 0 is before
    // "resolve", 7 is during "write" (before the sink's commit), 8 is
    // during "verify" (after it).
    for after in 0..=STAGES.len() {
        let w = world();
        fs::write(&w.out, b"the old output").unwrap();
        let sink = FakeSink::default();
        let ev = Recorder::new(after);
        let r = capture(&request(&w), &sink, &ev);
        if after == STAGES.len() {
            // The cancel came after the sink's commit (during "verify"): the
            // run finishes and says so.
            let report = r.unwrap();
            assert!(report.interrupted_after_commit);
            assert_ne!(fs::read(&w.out).unwrap(), b"the old output");
        } else {
            let e = r.expect_err("cancelled");
            assert!(e.is_cancelled(), "after {after} stages: {e}");
            assert!(matches!(
                e,
                CaptureError::Cancelled | CaptureError::Sink { .. }
            ));
            assert_eq!(ev.stages(), STAGES[..after], "after {after}");
            assert_eq!(
                fs::read(&w.out).unwrap(),
                b"the old output",
                "after {after}"
            );
        }
        assert_eq!(
            tree(w.out.parent().unwrap()),
            ["capture.fake"],
            "after {after}"
        );
        assert!(
            tree(&w.staging).is_empty(),
            "after {after}: {:?}",
            tree(&w.staging)
        );
        let leftovers: Vec<String> = tree(&w.cache)
            .into_iter()
            .filter(|n| n.starts_with("tmp/"))
            .collect();
        assert!(leftovers.is_empty(), "after {after}: {leftovers:?}");
        // Nothing was written unless the write stage began.
        let wrote = sink.writes.load(Ordering::SeqCst);
        assert_eq!(wrote > 0, after >= 7, "after {after}");
    }
}

#[test]
fn dry_run_stops_after_check() {
    let w = world();
    let mut req = request(&w);
    req.dry_run = true;
    let sink = FakeSink::default();
    let ev = Recorder::new(usize::MAX);
    let report = capture(&req, &sink, &ev).unwrap();
    assert!(report.dry_run);
    assert_eq!(ev.stages(), STAGES[..4]);
    assert!(!w.out.exists());
    assert_eq!(sink.writes.load(Ordering::SeqCst), 0);
    assert!(tree(&w.cache).is_empty(), "{:?}", tree(&w.cache));
}

#[test]
fn checked_is_the_confirmation_point() {
    // A file needs no confirmation; the stages can be driven one by one.
    let w = world();
    let sink = FakeSink::default();
    let ev = Recorder::new(usize::MAX);
    let req = request(&w);
    let checked = resolve(&req, &sink, &ev)
        .unwrap()
        .validate()
        .unwrap()
        .plan()
        .unwrap()
        .check()
        .unwrap();
    assert!(checked.device().is_none());
    assert!(checked.is_confirmed());
    assert!(!w.out.exists());
    let fetched = checked.fetch().unwrap();
    assert!(!fetched.plan().entries.is_empty());
    let report = fetched.write().unwrap().verify().unwrap();
    assert_eq!(report.verified_by.as_deref(), Some("sink"));
}

#[test]
fn outputs_under_dev_and_special_files_are_refused_first() {
    let w = world();
    let sink = FakeSink::default();
    for (out, says) in [
        ("/dev/sdzz7", "no such device"),
        ("/dev/null", "character device"),
    ] {
        let mut req = request(&w);
        req.out = PathBuf::from(out);
        // A wrong DP too: the output is judged before the DP is opened.
        req.dp = w.lib.join("missing").to_str().unwrap().to_owned();
        let ev = Recorder::new(usize::MAX);
        let e = capture(&req, &sink, &ev).unwrap_err().to_string();
        assert!(e.contains(says), "{out}: {e}");
        assert!(!Path::new(out).exists() || out == "/dev/null");
    }
    assert_eq!(sink.writes.load(Ordering::SeqCst), 0);
}
