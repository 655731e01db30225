//! The `vhdx` sink end to end: the VHDX holds exactly the disk capmedia-disk
//! writes for the same plan, and usb-raw's image of it (by qemu-img, Debian:
//! qemu-utils), verifies, is
//! reproducible, and replaces an existing output only when complete.
#![cfg(feature = "sink")]
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;

use capmedia_content::{Capacity, MediaPlan};
use capmedia_disk::{find_fat_partition, write_disk, PartitionScheme};
use capmedia_sink::{ErrorKind, MediaSink, NeverCancel, NoProgress, VerifyRequest};
use capmedia_vhdx::{VhdxReader, VhdxSink};
use common::*;

fn plan(dir: &Path, out: &Path, options: &[(&str, &str)], capacity: Capacity) -> MediaPlan {
    capture_plan(dir, out, "vhdx", options, capacity, 6 << 20)
}

/// Write the plan with the sink; check it against the raw image of the same
/// plan; return the VHDX's bytes.
fn same_disk_as_raw(options: &[(&str, &str)], scheme: PartitionScheme, dynamic: bool) {
    let (_d, dir) = tmp();
    let out = dir.join("capture.vhdx");
    let p = plan(&dir, &out, options, Capacity::Unlimited);
    let sink = VhdxSink;
    let check = sink.check(&p).unwrap();
    assert_eq!(check.volumes.len(), 1);
    let report = sink.write(&p, &NoProgress, &NeverCancel).unwrap();
    assert!(report.verified);
    assert_eq!(report.outputs[0].path, out);
    assert_eq!(report.outputs[0].bytes, fs::metadata(&out).unwrap().len());
    assert!(leftovers(&dir).is_empty());
    // The file's BLAKE3, taken from the read-back's reads, is b3sum's.
    let b3 = ok("b3sum", "b3sum", &["--no-names", s(&out)]);
    assert_eq!(report.outputs[0].blake3.as_deref(), Some(b3.trim()));

    let mut r = VhdxReader::open_path(&out).unwrap();
    let size = r.size();
    assert_eq!(r.info().leave_blocks_allocated, !dynamic);
    // The partition scheme asked for (GPT by default).
    let part = find_fat_partition(&mut r).unwrap();
    assert_eq!(part.scheme, Some(scheme), "{part:?}");

    let raw = dir.join("capture.raw");
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&raw)
        .unwrap();
    f.set_len(size).unwrap();
    write_disk(
        &mut f,
        size,
        &p,
        scheme,
        &capmedia_content::NoProgress,
        &capmedia_content::NeverCancel,
    )
    .unwrap();
    drop(f);

    qemu_info_check(&out, size);
    qemu_identical(&out, &raw);
    vhdiinfo(&out);

    let v = sink
        .verify(&VerifyRequest::from(&report), &NoProgress, &NeverCancel)
        .unwrap();
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(v.volumes[0].outcome.files_checked, 5);

    // Reproducible: the same plan again gives the same bytes.
    let out2 = dir.join("again.vhdx");
    let mut p2 = p.clone();
    p2.output = out2.clone();
    sink.write(&p2, &NoProgress, &NeverCancel).unwrap();
    assert!(fs::read(&out).unwrap() == fs::read(&out2).unwrap());
}

#[test]
fn default_is_a_dynamic_gpt_vhdx_of_the_raw_disk() {
    same_disk_as_raw(&[], PartitionScheme::Gpt, true);
}

#[test]
fn fixed_gpt_vhdx_is_the_raw_disk() {
    same_disk_as_raw(&[("vhdx-type", "fixed")], PartitionScheme::Gpt, false);
}

#[test]
fn dynamic_mbr_vhdx_is_the_raw_disk() {
    same_disk_as_raw(
        &[("vhdx-type", "dynamic"), ("partition-scheme", "mbr")],
        PartitionScheme::Mbr,
        true,
    );
}

/// The VHDX holds usb-raw's image of the same plan (the sink, not only the
/// disk code they share): `qemu-img compare` says identical.
fn same_as_usb_raw(vhdx_type: &str, scheme: &str) {
    let (_d, dir) = tmp();
    let out = dir.join("capture.vhdx");
    let options = [("vhdx-type", vhdx_type), ("partition-scheme", scheme)];
    let p = plan(&dir, &out, &options, Capacity::Unlimited);
    VhdxSink.write(&p, &NoProgress, &NeverCancel).unwrap();
    let img = dir.join("capture.img");
    let mut u = plan(
        &dir,
        &img,
        &[("partition-scheme", scheme)],
        Capacity::Unlimited,
    );
    u.sink = capmedia_usb::NAME.to_owned();
    assert_eq!(u.set_id, p.set_id, "the same plan");
    let report = capmedia_usb::UsbRawSink::new()
        .write(&u, &NoProgress, &NeverCancel)
        .unwrap();
    assert!(report.verified);
    qemu_identical(&out, &img);
    let size = VhdxReader::open_path(&out).unwrap().size();
    assert_eq!(fs::metadata(&img).unwrap().len(), size);
}

#[test]
fn dynamic_gpt_vhdx_is_usb_raws_image() {
    same_as_usb_raw("dynamic", "gpt");
}

#[test]
fn fixed_mbr_vhdx_is_usb_raws_image() {
    same_as_usb_raw("fixed", "mbr");
}

#[test]
fn dynamic_4gb_disk_with_small_content_is_small() {
    let (_d, dir) = tmp();
    let out = dir.join("big.vhdx");
    let p = plan(&dir, &out, &[], Capacity::Bytes(4 << 30));
    VhdxSink.write(&p, &NoProgress, &NeverCancel).unwrap();
    let len = fs::metadata(&out).unwrap().len();
    let r = VhdxReader::open_path(&out).unwrap();
    assert_eq!(r.size(), 4 << 30);
    // 6 MiB of content, the FAT (4 MiB for 4 GiB), the backup GPT's MiB,
    // 4 MiB of headers, log, metadata and BAT.
    assert!(len < 24 << 20, "{len}");
    qemu_info_check(&out, 4 << 30);
}

#[test]
fn check_refuses_bad_options_and_small_media() {
    let (_d, dir) = tmp();
    let out = dir.join("x.vhdx");
    for opts in [
        &[("vhdx-type", "sparse")][..],
        &[("partition-scheme", "apm")][..],
    ] {
        let p = plan(&dir, &out, opts, Capacity::Unlimited);
        let e = VhdxSink.check(&p).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Refused, "{e:?}");
    }
    // 8 MiB cannot hold FAT32 with this content.
    let p = plan(&dir, &out, &[], Capacity::Bytes(8 << 20));
    let e = VhdxSink.check(&p).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused, "{e:?}");
    assert!(!out.exists());
}

#[test]
fn an_existing_output_is_replaced_only_by_a_verified_vhdx() {
    let (_d, dir) = tmp();
    let out = dir.join("capture.vhdx");
    fs::write(&out, b"old").unwrap();
    let p = plan(&dir, &out, &[], Capacity::Unlimited);
    // Refused at write: nothing changes.
    let mut bad = p.clone();
    bad.options
        .insert("vhdx-type".to_owned(), "sparse".to_owned());
    assert!(VhdxSink.write(&bad, &NoProgress, &NeverCancel).is_err());
    assert_eq!(fs::read(&out).unwrap(), b"old");
    assert!(leftovers(&dir).is_empty());
    // A good write replaces it.
    VhdxSink.write(&p, &NoProgress, &NeverCancel).unwrap();
    assert!(VhdxReader::open_path(&out).is_ok());
    assert!(leftovers(&dir).is_empty());
}

#[test]
fn verify_says_an_iso_is_not_a_vhdx() {
    let (_d, dir) = tmp();
    let other = dir.join("other.img");
    fs::write(&other, vec![0u8; 3 << 20]).unwrap();
    let e = capmedia_vhdx::verify_vhdx(&other, &NoProgress, &NeverCancel).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported, "{e:?}");
}
