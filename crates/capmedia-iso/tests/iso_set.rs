#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use capmedia_content::{Capacity, EntrySource, MediaPlan};
use capmedia_iso::IsoSetSink;
use capmedia_manifest::MediaReader;
use capmedia_sink::{ErrorKind, MediaSink, NeverCancel, NoProgress, VerifyRequest};
use common::*;

fn write_ok(plan: &MediaPlan) -> capmedia_sink::WriteReport {
    IsoSetSink.write(plan, &NoProgress, &NeverCancel).unwrap()
}

/// Every extracted file equals its plan source.
fn assert_extracted_matches(plan: &MediaPlan, dir: &Path, paths: &[&capmedia_content::MediaPath]) {
    for p in paths {
        let e = plan.entries.iter().find(|e| &e.path == *p).unwrap();
        let want = match &e.source {
            EntrySource::File(f) => std::fs::read(f).unwrap(),
            EntrySource::Inline(b) => b.clone(),
            EntrySource::Stream { .. } => panic!("this test plans no streamed entries"),
        };
        let got = std::fs::read(p.to_host_path(dir))
            .unwrap_or_else(|err| panic!("{p} not extracted: {err}"));
        assert!(got == want, "{p} differs after extraction");
    }
}

#[test]
fn single_bootable_volume_as_tools_see_it() {
    let t = tempfile::tempdir().unwrap();
    let src = media_src(t.path(), 3 << 20);
    let out = t.path().join("out/capture.iso");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let plan = plan(builder(&src, &out, Capacity::Bytes(650 << 20), true));

    let check = IsoSetSink.check(&plan).unwrap();
    assert_eq!(check.volumes.len(), 1);
    assert_eq!(check.volumes[0].output, out);
    assert!(!out.exists(), "check wrote nothing");

    let report = write_ok(&plan);
    assert!(report.verified);
    assert_eq!(report.outputs.len(), 1);
    assert_eq!(report.outputs[0].path, out);
    let len = std::fs::metadata(&out).unwrap().len();
    assert_eq!(report.outputs[0].bytes, len);
    assert_eq!(check.volumes[0].used, len, "check's size is exact");
    // The BLAKE3 the sink computed while writing is the file's.
    assert_eq!(
        report.outputs[0].blake3.as_deref(),
        Some(
            blake3::hash(&std::fs::read(&out).unwrap())
                .to_hex()
                .as_str()
        ),
        "the reported BLAKE3 is the image's"
    );
    let iso = out.to_str().unwrap();

    let et = tool_ok(
        "xorriso",
        "xorriso",
        &["-indev", iso, "-report_el_torito", "plain"],
    );
    assert!(et.contains("BIOS"), "no BIOS entry:\n{et}");
    assert!(et.contains("UEFI"), "no UEFI entry:\n{et}");

    let info = tool_ok("isoinfo", "genisoimage", &["-d", "-i", iso]);
    assert!(info.contains("Joliet"), "no Joliet:\n{info}");
    assert!(
        info.contains("Volume id: CONFIGURATION_MANAGER"),
        "volume id:\n{info}"
    );

    let x = t.path().join("x");
    extract(&out, &x);
    let paths: Vec<_> = plan.entries.iter().map(|e| &e.path).collect();
    assert_extracted_matches(&plan, &x, &paths);
    // The manifest is there and lists every file.
    let m = capmedia_manifest::Manifest::parse(&std::fs::read(x.join("capmedia.json")).unwrap())
        .unwrap();
    assert_eq!((m.volume, m.volumes), (1, 1));
    assert_eq!(m.files.len(), plan.entries.len());

    // The EFI image capmedia built holds the loader byte for byte.
    let efisys = x.join("efi/microsoft/boot/efisys.bin");
    let dir = tool_ok(
        "mdir",
        "mtools",
        &["-i", efisys.to_str().unwrap(), "::/EFI/BOOT"],
    );
    assert!(dir.contains("BOOTX64"), "{dir}");
    let copy = t.path().join("bootx64.copy");
    tool_ok(
        "mcopy",
        "mtools",
        &[
            "-i",
            efisys.to_str().unwrap(),
            "::/EFI/BOOT/BOOTX64.EFI",
            copy.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(src.dir.join("efi/boot/bootx64.efi")).unwrap()
    );
    tool_ok("fsck.fat", "dosfstools", &["-n", efisys.to_str().unwrap()]);

    // verify reads it back clean.
    let v = IsoSetSink
        .verify(&VerifyRequest::from(&report), &NoProgress, &NeverCancel)
        .unwrap();
    assert!(v.is_ok());
    assert_eq!(v.volumes[0].outcome.files_checked, plan.entries.len());
}

#[test]
fn two_builds_are_byte_identical() {
    let t = tempfile::tempdir().unwrap();
    let src = media_src(t.path(), 1 << 20);
    let a = t.path().join("a/x.iso");
    let b = t.path().join("b/x.iso");
    for o in [&a, &b] {
        std::fs::create_dir_all(o.parent().unwrap()).unwrap();
        write_ok(&plan(builder(&src, o, Capacity::Unlimited, true)));
    }
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
}

#[test]
fn data_only_set_without_boot_files() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let out = root.join("data.iso");
    let mut b = capmedia_content::PlanBuilder::new("data", "iso-set", &out);
    add_packages(&mut b, root, 2, 3, 10_000);
    let plan = b.build().unwrap();
    write_ok(&plan);
    let et = tool(
        "xorriso",
        "xorriso",
        &[
            "-indev",
            out.to_str().unwrap(),
            "-report_el_torito",
            "plain",
        ],
    );
    let text = String::from_utf8_lossy(&et.stdout).into_owned();
    assert!(!text.contains("BIOS") && !text.contains("UEFI"), "{text}");
    let x = root.join("x");
    extract(&out, &x);
    let paths: Vec<_> = plan.entries.iter().map(|e| &e.path).collect();
    assert_extracted_matches(&plan, &x, &paths);
}

#[test]
fn multi_volume_set_of_25mb() {
    let t = tempfile::tempdir().unwrap();
    let src = media_src(t.path(), 4 << 20);
    let out = t.path().join("out/set.iso");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let mut b = builder(&src, &out, Capacity::Bytes(25 << 20), true);
    // 5 packages of 5 × 2 MB and one of 3 × 6 MB: ~68 MB of content.
    add_packages(&mut b, t.path(), 5, 5, 2_000_000);
    let big = t.path().join("big");
    for f in 0..3 {
        let p = big.join(format!("f{f}.bin"));
        write(&p, &bytes(77 + f, 6_000_000));
        b.add_file(
            &format!("SMS/PKG/PS200000/f{f}.bin"),
            &p,
            capmedia_content::EntryRole::Package,
            "PS200000",
        )
        .unwrap();
    }
    let plan = plan(b);
    assert!(plan.content_bytes() > 55_000_000);

    let check = IsoSetSink.check(&plan).unwrap();
    let n = check.volumes.len();
    assert!(n >= 3, "{n} volumes");
    let report = write_ok(&plan);
    assert_eq!(report.outputs.len(), n);
    let mut seen = std::collections::BTreeMap::new();
    for (i, o) in report.outputs.iter().enumerate() {
        let want = out.with_file_name(format!("set_{}.iso", i + 1));
        assert_eq!(o.path, want);
        let len = std::fs::metadata(&o.path).unwrap().len();
        assert!(len <= 25 << 20, "{} is {len} bytes", o.path.display());
        assert_eq!(len, check.volumes[i].used);
        let x = t.path().join(format!("x{i}"));
        extract(&o.path, &x);
        let m =
            capmedia_manifest::Manifest::parse(&std::fs::read(x.join("capmedia.json")).unwrap())
                .unwrap();
        assert_eq!((m.volume, m.volumes), (i as u32 + 1, n as u32));
        assert_eq!(m.set_id, plan.set_id);
        let paths: Vec<_> = m.files.iter().map(|f| &f.path).collect();
        assert_extracted_matches(&plan, &x, &paths);
        for f in &m.files {
            *seen.entry(f.path.clone()).or_insert(0) += 1;
        }
        // Boot content only on volume 1; packages never split.
        for e in &plan.entries {
            if e.role.is_boot_volume() {
                assert_eq!(paths.contains(&&e.path), i == 0, "{}", e.path);
            }
        }
    }
    assert_eq!(seen.len(), plan.entries.len());
    assert!(seen.values().all(|&c| c == 1));
    // Each 10 MB package group is whole on one volume.
    for g in 0..5 {
        let id = format!("PS10{g:04}");
        let vols: std::collections::BTreeSet<_> = check
            .volumes
            .iter()
            .filter(|v| v.entries.iter().any(|p| p.as_str().contains(&id)))
            .map(|v| v.number)
            .collect();
        assert_eq!(vols.len(), 1, "{id} split over {vols:?}");
    }

    // Verify from one volume finds the others.
    let v = IsoSetSink
        .verify(
            &VerifyRequest {
                outputs: vec![report.outputs[0].path.clone()],
                ..Default::default()
            },
            &NoProgress,
            &NeverCancel,
        )
        .unwrap();
    assert_eq!(v.volumes.len(), n);
    assert!(v.is_ok());

    // Rebuilding to unlimited replaces the set with one file and removes
    // the numbered volumes.
    let mut plan1 = plan.clone();
    plan1.capacity = Capacity::Unlimited;
    write_ok(&plan1);
    assert_eq!(names_with(out.parent().unwrap(), "set"), ["set.iso"]);
}

#[test]
fn check_refuses_before_writing() {
    let t = tempfile::tempdir().unwrap();
    let src = media_src(t.path(), 8 << 20);
    let out = t.path().join("o.iso");

    // Boot content larger than a volume: says what it needs and the preset.
    let p = plan(builder(&src, &out, Capacity::Bytes(10 << 20), true));
    let e = IsoSetSink.check(&p).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused);
    assert!(e.message.contains("boot content needs"), "{}", e.message);
    assert!(e.message.contains("fits is cd"), "{}", e.message);
    assert!(IsoSetSink.write(&p, &NoProgress, &NeverCancel).is_err());
    assert!(!out.exists());

    // A single file larger than a volume.
    let mut b = builder(&src, &out, Capacity::Bytes(20 << 20), true);
    let big = t.path().join("big.bin");
    write(&big, &bytes(1, 21 << 20));
    b.add_file(
        "SMS/big.bin",
        &big,
        capmedia_content::EntryRole::Package,
        "P",
    )
    .unwrap();
    let e = IsoSetSink.check(&plan(b)).unwrap_err();
    assert!(
        e.message.contains("larger than one medium"),
        "{}",
        e.message
    );

    // An output folder that does not exist.
    let p = plan(builder(
        &src,
        &t.path().join("missing/o.iso"),
        Capacity::Unlimited,
        true,
    ));
    let e = IsoSetSink.check(&p).unwrap_err();
    assert!(e.message.contains("does not exist"), "{}", e.message);

    // An output that is a folder.
    let p = plan(builder(&src, t.path(), Capacity::Unlimited, true));
    assert_eq!(IsoSetSink.check(&p).unwrap_err().kind, ErrorKind::Refused);

    // Not enough free space: a sparse 4 TiB source (size taken from the
    // file, never read) on an unlimited medium.
    let huge = t.path().join("huge.bin");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(1 << 42)
        .unwrap();
    let mut b = builder(&src, &out, Capacity::Unlimited, true);
    b.add_known(capmedia_content::PlanEntry {
        path: capmedia_content::MediaPath::new("SMS/huge.bin").unwrap(),
        source: EntrySource::File(huge),
        size: 1 << 42,
        blake3: "0".repeat(64),
        role: capmedia_content::EntryRole::Package,
        group: "H".to_owned(),
    });
    let p = plan(b);
    let e = IsoSetSink.check(&p).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused);
    assert!(e.message.contains("bytes free"), "{}", e.message);
    let e = IsoSetSink.write(&p, &NoProgress, &NeverCancel).unwrap_err();
    assert!(e.message.contains("bytes free"), "{}", e.message);
    assert!(!out.exists());
    assert!(names_with(t.path(), "capmedia-tmp").is_empty());
}

#[test]
fn verify_finds_damage() {
    let t = tempfile::tempdir().unwrap();
    let src = media_src(t.path(), 1 << 20);
    let out = t.path().join("v.iso");
    let plan = plan(builder(&src, &out, Capacity::Unlimited, true));
    write_ok(&plan);
    // Flip one byte inside boot.wim's data.
    let mut r = capmedia_iso::IsoReader::open(&out).unwrap();
    let wim = capmedia_content::MediaPath::new("sources/boot.wim").unwrap();
    assert!(r.open(&wim).unwrap().is_some());
    drop(r);
    let mut data = std::fs::read(&out).unwrap();
    let needle = &bytes(8, 1 << 20)[1000..1064];
    let at = data
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    data[at] ^= 0xFF;
    std::fs::write(&out, &data).unwrap();
    let v = IsoSetSink
        .verify(
            &VerifyRequest {
                outputs: vec![out.clone()],
                ..Default::default()
            },
            &NoProgress,
            &NeverCancel,
        )
        .unwrap();
    assert!(!v.is_ok());
    assert_eq!(v.volumes[0].outcome.problems.len(), 1);
}

/// `plan` with the entries `pick` chooses turned into streams (files in
/// `dir`, fed by the returned thread in plan order, in pieces, each
/// finished `.ok` with its BLAKE3; or, for the entry named `bad`, ended
/// `.err` after half its bytes, as a failed SHA-256 does).
fn streamed(
    plan: &MediaPlan,
    dir: &Path,
    pick: impl Fn(&capmedia_content::PlanEntry) -> bool,
    bad: Option<&str>,
) -> (MediaPlan, std::thread::JoinHandle<()>) {
    use capmedia_content::stream;
    use std::io::Write;
    let mut plan = plan.clone();
    let mut feeds = Vec::new();
    for (i, e) in plan.entries.iter_mut().enumerate() {
        if !pick(e) {
            continue;
        }
        let EntrySource::File(src) = &e.source else {
            continue;
        };
        let bytes = std::fs::read(src).unwrap();
        let path = dir.join(format!("s{i}"));
        // A stream of its own: no file, no verdict left by an earlier one
        // of the same name (a stale `.ok` would end this stream early).
        assert!(
            !path.exists() && !stream::ok_marker(&path).exists(),
            "{} is in use",
            path.display()
        );
        std::fs::File::create(&path).unwrap();
        feeds.push((
            path.clone(),
            bytes,
            e.blake3.clone(),
            bad == Some(e.path.as_str()),
        ));
        e.source = EntrySource::Stream { path, size: e.size };
        e.blake3 = "0".repeat(64);
    }
    assert!(!feeds.is_empty());
    let feeder = std::thread::spawn(move || {
        for (path, bytes, b3, bad) in feeds {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            let end = if bad { bytes.len() / 2 } else { bytes.len() };
            for piece in bytes[..end].chunks(300_000) {
                f.write_all(piece).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            if bad {
                stream::finish_err(&path, "sources/boot.wim: SHA-256 mismatch").unwrap();
                return;
            }
            stream::finish_ok(&path, &b3).unwrap();
        }
    });
    (plan, feeder)
}

/// One pass (issue 18): entries still being fetched are written as they
/// arrive, and the medium is the one their files would give, byte for
/// byte, with the manifest's hashes final (patched after the streams when
/// it lies before them) and the reported BLAKE3 the file's; across
/// volumes too. A stream that fails leaves the old output as it was.
#[test]
fn streamed_entries_give_the_same_medium() {
    let t = tempfile::tempdir().unwrap();
    let src = media_src(t.path(), 3 << 20);
    let streams = t.path().join("streams");
    std::fs::create_dir_all(&streams).unwrap();
    let b3_of = |p: &Path| {
        blake3::hash(&std::fs::read(p).unwrap())
            .to_hex()
            .to_string()
    };

    // One volume: the WIM (after the manifest), a root file, the EFI
    // loader the EFI boot image is built from, and a folder's file.
    let a = t.path().join("a/x.iso");
    let b = t.path().join("b/x.iso");
    for o in [&a, &b] {
        std::fs::create_dir_all(o.parent().unwrap()).unwrap();
    }
    // An empty file too: it has no extent, its verdict is waited for.
    let empty = t.path().join("empty.bin");
    write(&empty, b"");
    let mut bld = builder(&src, &a, Capacity::Unlimited, true);
    bld.add_file(
        "sources/empty.bin",
        &empty,
        capmedia_content::EntryRole::Boot,
        "boot",
    )
    .unwrap();
    let staged = plan(bld);
    let ra = write_ok(&staged);
    let mut plan_b = staged.clone();
    plan_b.output = b.clone();
    let (plan_b, feeder) = streamed(
        &plan_b,
        &streams,
        |e| {
            matches!(
                e.path.as_str(),
                "sources/boot.wim"
                    | "sources/empty.bin"
                    | "bootmgr"
                    | "efi/boot/bootx64.efi"
                    | "boot/boot.sdi"
            )
        },
        None,
    );
    let rb = write_ok(&plan_b);
    feeder.join().unwrap();
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "the streamed image differs from the staged one"
    );
    assert_eq!(rb.outputs[0].blake3.as_deref(), Some(&*b3_of(&b)));
    assert_eq!(ra.outputs[0].blake3, rb.outputs[0].blake3);
    tool_ok(
        "xorriso",
        "xorriso",
        &["-indev", b.to_str().unwrap(), "-check_media", "--"],
    );

    // Several volumes: every package file streamed.
    let sa = t.path().join("ma/set.iso");
    let sb = t.path().join("mb/set.iso");
    for o in [&sa, &sb] {
        std::fs::create_dir_all(o.parent().unwrap()).unwrap();
    }
    let mut bld = builder(&src, &sa, Capacity::Bytes(12 << 20), true);
    add_packages(&mut bld, t.path(), 3, 3, 2_000_000);
    let staged = plan(bld);
    let ra = write_ok(&staged);
    assert!(ra.outputs.len() >= 2, "{} volumes", ra.outputs.len());
    let mut plan_b = staged.clone();
    plan_b.output = sb.clone();
    let streams = t.path().join("streams-set");
    std::fs::create_dir_all(&streams).unwrap();
    let (plan_b, feeder) = streamed(
        &plan_b,
        &streams,
        |e| e.path.as_str().starts_with("SMS/") || e.path.as_str() == "sources/boot.wim",
        None,
    );
    let rb = write_ok(&plan_b);
    feeder.join().unwrap();
    assert_eq!(ra.outputs.len(), rb.outputs.len());
    for (oa, ob) in ra.outputs.iter().zip(&rb.outputs) {
        assert!(
            std::fs::read(&oa.path).unwrap() == std::fs::read(&ob.path).unwrap(),
            "{} differs from {}",
            ob.path.display(),
            oa.path.display()
        );
        assert_eq!(ob.blake3.as_deref(), Some(&*b3_of(&ob.path)));
    }

    // A stream that fails: an error naming the file, the old image as it
    // was, nothing left beside it.
    let before = std::fs::read(&b).unwrap();
    let fresh = t.path().join("streams2");
    std::fs::create_dir_all(&fresh).unwrap();
    let staged = plan(builder(&src, &b, Capacity::Unlimited, true));
    let (plan_c, feeder) = streamed(
        &staged,
        &fresh,
        |e| matches!(e.path.as_str(), "sources/boot.wim" | "bootmgr"),
        Some("sources/boot.wim"),
    );
    let err = IsoSetSink
        .write(&plan_c, &NoProgress, &NeverCancel)
        .unwrap_err();
    feeder.join().unwrap();
    assert!(
        err.message.contains("sources/boot.wim: SHA-256 mismatch"),
        "{}",
        err.message
    );
    assert!(
        std::fs::read(&b).unwrap() == before,
        "the old image changed"
    );
    assert_eq!(names_with(b.parent().unwrap(), ""), ["x.iso"]);
}
