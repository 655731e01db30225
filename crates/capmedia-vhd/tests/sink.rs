//! The `vhd` sink end to end: the VHD holds exactly the disk capmedia-disk
//! writes for the same plan (by qemu-img, Debian: qemu-utils), verifies, and
//! replaces an existing output only when complete.
#![cfg(feature = "sink")]
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use capmedia_content::{Capacity, EntryRole, MediaPlan, PlanBuilder};
use capmedia_disk::{write_disk, PartitionScheme};
use capmedia_sink::{Cancel, ErrorKind, MediaSink, NeverCancel, NoProgress, VerifyRequest};
use capmedia_vhd::{VhdReader, VhdSink, VhdType};
use common::*;

fn plan(
    dir: &Path,
    out: &Path,
    vhd_type: &str,
    scheme: &str,
    capacity: Capacity,
    big: usize,
) -> MediaPlan {
    let options = [("vhd-type", vhd_type), ("partition-scheme", scheme)];
    capture_plan(dir, out, "vhd", &options, capacity, big)
}

fn same_disk_as_raw(vhd_type: &str, scheme: PartitionScheme) {
    let (_d, dir) = tmp();
    let out = dir.join("capture.vhd");
    let p = plan(
        &dir,
        &out,
        vhd_type,
        scheme.as_str(),
        Capacity::Unlimited,
        6 << 20,
    );
    let sink = VhdSink;
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

    // The raw image of the same plan, at the same size.
    let r = VhdReader::open_path(&out).unwrap();
    let size = r.size();
    let want_type = if vhd_type == "dynamic" {
        VhdType::Dynamic
    } else {
        VhdType::Fixed
    };
    assert_eq!(r.info().footer.vhd_type, want_type);
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

    let info: serde_json::Value =
        serde_json::from_str(&qemu_ok(&["info", "-f", "vpc", "--output=json", s(&out)])).unwrap();
    assert_eq!(info["virtual-size"].as_u64(), Some(size));
    let o = qemu_img(&["check", "-f", "vpc", s(&out)]);
    assert!(
        o.status.success()
            || String::from_utf8_lossy(&o.stderr).contains("does not support checks"),
        "{o:?}"
    );
    // Same size (above), same bytes. Not `-s`: strict mode also compares
    // allocation, and the raw image is sparse where the VHD is not.
    let cmp = qemu_ok(&["compare", "-f", "vpc", "-F", "raw", s(&out), s(&raw)]);
    assert!(cmp.contains("identical"), "{cmp}");

    let v = sink
        .verify(&VerifyRequest::from(&report), &NoProgress, &NeverCancel)
        .unwrap();
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(v.volumes[0].outcome.files_checked, 5);

    // Reproducible: the same plan again gives the same bytes.
    let out2 = dir.join("again.vhd");
    let mut p2 = p.clone();
    p2.output = out2.clone();
    sink.write(&p2, &NoProgress, &NeverCancel).unwrap();
    assert!(fs::read(&out).unwrap() == fs::read(&out2).unwrap());
}

#[test]
fn fixed_vhd_is_the_raw_disk() {
    same_disk_as_raw("fixed", PartitionScheme::Mbr);
}

#[test]
fn dynamic_vhd_is_the_raw_disk() {
    same_disk_as_raw("dynamic", PartitionScheme::Mbr);
}

#[test]
fn dynamic_gpt_vhd_is_the_raw_disk() {
    same_disk_as_raw("dynamic", PartitionScheme::Gpt);
}

#[test]
fn dynamic_4gb_disk_with_100_mb_is_small() {
    let (_d, dir) = tmp();
    let out = dir.join("big.vhd");
    let p = plan(
        &dir,
        &out,
        "dynamic",
        "mbr",
        Capacity::Bytes(4 << 30),
        100 << 20,
    );
    let report = VhdSink.write(&p, &NoProgress, &NeverCancel).unwrap();
    let len = fs::metadata(&out).unwrap().len();
    assert!(len < 150_000_000, "{len}");
    assert_eq!(report.outputs[0].bytes, len);
    let size = VhdReader::open_path(&out).unwrap().size();
    assert!(size >= 4 << 30);
}

#[test]
fn corrupt_footer_checksum_is_reported_by_verify() {
    let (_d, dir) = tmp();
    let out = dir.join("c.vhd");
    let p = plan(&dir, &out, "dynamic", "mbr", Capacity::Unlimited, 1 << 20);
    VhdSink.write(&p, &NoProgress, &NeverCancel).unwrap();
    let mut f = fs::OpenOptions::new().write(true).open(&out).unwrap();
    f.seek(SeekFrom::End(-512 + 30)).unwrap();
    f.write_all(b"X").unwrap();
    drop(f);
    let req = VerifyRequest {
        outputs: vec![out],
        ..Default::default()
    };
    let e = VhdSink.verify(&req, &NoProgress, &NeverCancel).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Corrupt);
    assert!(e.message.contains("checksum"), "{}", e.message);
    // A file that is no VHD at all is another format, not a corrupt VHD.
    let raw = dir.join("plain.img");
    fs::write(&raw, vec![0u8; 4096]).unwrap();
    let req = VerifyRequest {
        outputs: vec![raw],
        ..Default::default()
    };
    let e = VhdSink.verify(&req, &NoProgress, &NeverCancel).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported, "{}", e.message);
}

#[test]
fn changed_file_content_is_reported_by_verify() {
    let (_d, dir) = tmp();
    let out = dir.join("h.vhd");
    let p = plan(&dir, &out, "fixed", "mbr", Capacity::Unlimited, 1 << 20);
    VhdSink.write(&p, &NoProgress, &NeverCancel).unwrap();
    // Flip a byte of boot.wim's data where it lies in the image.
    let mut bytes = fs::read(&out).unwrap();
    let needle = &pattern(11, 1 << 20)[1000..1064];
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at] ^= 0xFF;
    fs::write(&out, bytes).unwrap();
    let v = VhdSink
        .verify(
            &VerifyRequest {
                outputs: vec![out],
                ..Default::default()
            },
            &NoProgress,
            &NeverCancel,
        )
        .unwrap();
    assert!(!v.is_ok());
}

struct CancelNow;
impl Cancel for CancelNow {
    fn is_cancelled(&self) -> bool {
        true
    }
}

#[test]
fn existing_output_survives_refusal_and_cancel() {
    let (_d, dir) = tmp();
    let out = dir.join("keep.vhd");
    fs::write(&out, b"old").unwrap();
    // Too small for the content (100 MiB rounds up to the CHS-exact 155 MiB,
    // still short of 180 MiB): refused before anything is written.
    let small = plan(
        &dir,
        &out,
        "fixed",
        "mbr",
        Capacity::Bytes(100 << 20),
        180 << 20,
    );
    let e = VhdSink.check(&small).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused);
    assert_eq!(
        VhdSink
            .write(&small, &NoProgress, &NeverCancel)
            .unwrap_err()
            .kind,
        ErrorKind::Refused
    );
    // Cancelled mid-way.
    let p = plan(&dir, &out, "dynamic", "mbr", Capacity::Unlimited, 1 << 20);
    let e = VhdSink.write(&p, &NoProgress, &CancelNow).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Cancelled);
    assert_eq!(fs::read(&out).unwrap(), b"old");
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    // A bad option is refused.
    let mut bad = p.clone();
    bad.options.insert("vhd-type".into(), "sparse".into());
    assert_eq!(VhdSink.check(&bad).unwrap_err().kind, ErrorKind::Refused);
    // And a real write replaces it.
    VhdSink.write(&p, &NoProgress, &NeverCancel).unwrap();
    assert!(capmedia_vhd::detect(&out));
}

#[test]
fn a_folder_without_room_for_the_vhd_is_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.vhd");
    // `check` decides from the sizes the plan states and reads no source,
    // so a plan claiming more content than the disk has free needs no data.
    let free = {
        let st = rustix::fs::statvfs(dir.path()).unwrap();
        st.f_bavail * st.f_frsize
    };
    let per_file = (4u64 << 30) - 1;
    let mut b = PlanBuilder::new("Configuration Manager", "vhd", &out);
    for i in 0..(free / per_file + 2) {
        b.add_known(capmedia_content::PlanEntry {
            path: format!("data/part{i}.bin").parse().unwrap(),
            source: capmedia_content::EntrySource::File(dir.path().join("absent")),
            size: per_file,
            blake3: "0".repeat(64),
            role: EntryRole::Package,
            group: "data".into(),
        });
    }
    let plan = b.option("vhd-type", "dynamic").build().unwrap();
    let e = VhdSink.check(&plan).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused, "{e}");
    assert!(e.message.contains("bytes free"), "{e}");
    assert!(!out.exists());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}
