//! The usb-raw sink writing image files.

#![allow(clippy::unwrap_used)] // tests may unwrap (HELPERS.md)

mod common;

use std::fs;
use std::sync::atomic::{AtomicBool, AtomicU64};

use capmedia_content::{Capacity, PlanBuilder};
use capmedia_sink::{ErrorKind, MediaSink, NeverCancel, NoProgress, VerifyRequest};
use capmedia_usb::UsbRawSink;
use common::*;

#[test]
fn writes_verifies_and_is_reproducible() {
    let src = tempfile::tempdir().unwrap();
    source_tree(src.path());
    let out = tempfile::tempdir().unwrap();
    let img = out.path().join("media.img");
    let plan = plan(src.path(), &img, &[]);
    let sink = UsbRawSink::new();
    assert_eq!(sink.describe().name, "usb-raw");
    let report = sink.check(&plan).unwrap();
    assert_eq!(report.volumes.len(), 1);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("mbr partition table")),
        "{:?}",
        report.notes
    );
    assert!(!img.exists(), "check wrote something");

    let rec = Recorder::default();
    let w = sink.write(&plan, &rec, &NeverCancel).unwrap();
    assert!(w.verified);
    assert_eq!(w.outputs[0].path, img);
    assert_eq!(w.outputs[0].bytes, fs::metadata(&img).unwrap().len());
    assert!(rec.writes.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert!(rec.verifies.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert!(temps(out.path()).is_empty());
    let (ok, text) = run("sfdisk", "fdisk", &["-V", img.to_str().unwrap()]);
    assert!(ok, "{text}");
    // The image's BLAKE3, taken from the read-back's reads, is b3sum's.
    assert_eq!(
        w.outputs[0].blake3.as_deref(),
        Some(b3sum(&img).as_str()),
        "reported BLAKE3 of the image"
    );

    let v = sink
        .verify(&VerifyRequest::from(&w), &NoProgress, &NeverCancel)
        .unwrap();
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(v.volumes[0].outcome.manifest.set_id, plan.set_id);

    let first = fs::read(&img).unwrap();
    sink.write(&plan, &NoProgress, &NeverCancel).unwrap();
    assert!(fs::read(&img).unwrap() == first, "second build differs");
}

#[test]
fn gpt_image_with_media_size() {
    let src = tempfile::tempdir().unwrap();
    source_tree(src.path());
    let out = tempfile::tempdir().unwrap();
    let img = out.path().join("gpt.img");
    let mut plan = plan(src.path(), &img, &[("partition-scheme", "gpt")]);
    plan.capacity = Capacity::Bytes(100 << 20);
    let sink = UsbRawSink::new();
    sink.write(&plan, &NoProgress, &NeverCancel).unwrap();
    assert_eq!(fs::metadata(&img).unwrap().len(), 100 << 20);
    let (ok, text) = run("sgdisk", "gdisk", &["-v", img.to_str().unwrap()]);
    assert!(ok && text.contains("No problems found"), "{text}");
}

#[test]
fn check_refuses_before_touching_the_target() {
    let out = tempfile::tempdir().unwrap();
    let img = out.path().join("media.img");
    fs::write(&img, b"old").unwrap();
    let sink = UsbRawSink::new();

    let mut b = PlanBuilder::new("x", "usb-raw", &img);
    b.add_known(fake_entry("sources/install.wim", 4 << 30));
    let p = b.build().unwrap();
    let e = sink.check(&p).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused);
    assert!(
        e.message.contains("sources/install.wim") && e.message.contains("4 GiB"),
        "{e}"
    );
    assert_eq!(
        sink.write(&p, &NoProgress, &NeverCancel).unwrap_err().kind,
        ErrorKind::Refused
    );

    let mut b = PlanBuilder::new("x", "usb-raw", &img);
    b.add_known(fake_entry("big.bin", 200 << 20));
    let p = b.capacity(Capacity::Bytes(100 << 20)).build().unwrap();
    let e = sink.check(&p).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused);
    assert!(e.message.contains("needs"), "{e}");

    let p = PlanBuilder::new("x", "usb-raw", out.path().join("missing/media.img"))
        .build()
        .unwrap();
    let e = sink.check(&p).unwrap_err();
    assert!(e.message.contains("does not exist"), "{e}");

    let p = PlanBuilder::new("x", "usb-raw", &img)
        .option("partition-scheme", "apm")
        .build()
        .unwrap();
    assert!(sink.check(&p).unwrap_err().message.contains("apm"));

    let p = PlanBuilder::new("x", "usb-raw", out.path())
        .build()
        .unwrap();
    let e = sink.check(&p).unwrap_err();
    assert!(
        e.message
            .contains("is a folder; give the path of the file to write"),
        "{e}"
    );

    assert_eq!(fs::read(&img).unwrap(), b"old");
    assert!(temps(out.path()).is_empty());
}

#[test]
fn failed_write_leaves_the_old_image_byte_identical() {
    let src = tempfile::tempdir().unwrap();
    source_tree(src.path());
    let out = tempfile::tempdir().unwrap();
    let img = out.path().join("media.img");
    let plan = plan(src.path(), &img, &[]);
    let sink = UsbRawSink::new();
    sink.write(&plan, &NoProgress, &NeverCancel).unwrap();
    let old = fs::read(&img).unwrap();

    // A source file deleted between check and write.
    let src2 = tempfile::tempdir().unwrap();
    source_tree(src2.path());
    fs::write(src2.path().join("extra.bin"), vec![1u8; 1 << 20]).unwrap();
    let plan2 = common::plan(src2.path(), &img, &[]);
    sink.check(&plan2).unwrap();
    fs::remove_file(src2.path().join("sources/boot.wim")).unwrap();
    let e = sink.write(&plan2, &NoProgress, &NeverCancel).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io, "{e}");
    assert!(e.message.contains("boot.wim"), "{e}");
    assert!(fs::read(&img).unwrap() == old, "old image changed");
    assert!(temps(out.path()).is_empty(), "{:?}", temps(out.path()));

    // Cancelled part-way through the data.
    fs::write(src2.path().join("sources/boot.wim"), vec![9u8; 3 << 20]).unwrap();
    let plan3 = common::plan(src2.path(), &img, &[]);
    let cancel = CancelAfter {
        after: 5,
        asked: AtomicU64::new(0),
        fired: AtomicBool::new(false),
    };
    let e = sink.write(&plan3, &NoProgress, &cancel).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Cancelled, "{e}");
    assert!(fs::read(&img).unwrap() == old, "old image changed");
    assert!(temps(out.path()).is_empty(), "{:?}", temps(out.path()));

    // And then a good write replaces it.
    sink.write(&plan3, &NoProgress, &NeverCancel).unwrap();
    assert!(fs::read(&img).unwrap() != old);
}

#[test]
fn stale_temporaries_are_removed() {
    let src = tempfile::tempdir().unwrap();
    source_tree(src.path());
    let out = tempfile::tempdir().unwrap();
    let img = out.path().join("media.img");
    // Temporaries of a killed run (no such pid), of this live process, and
    // a dead run's temporary of another output (any sink's leftovers of a
    // dead process are garbage).
    let stale = out.path().join(".media.img.capmedia-tmp.999999999-1.0");
    let live = out.path().join(capmedia_tempfile::temp_name("media.img"));
    let other = out.path().join(".other.img.capmedia-tmp.999999999-1.3");
    for p in [&stale, &live, &other] {
        fs::write(p, b"junk").unwrap();
    }
    let plan = plan(src.path(), &img, &[]);
    UsbRawSink::new()
        .write(&plan, &NoProgress, &NeverCancel)
        .unwrap();
    assert!(!stale.exists());
    assert!(live.exists(), "a live writer's temp was removed");
    assert!(
        !other.exists(),
        "a dead run's temporary of another output stayed"
    );
}
