//! Disks written by capmedia-disk, checked with tools nobody here wrote:
//! fsck.fat, sfdisk, sgdisk and mtools.

#![allow(clippy::unwrap_used)] // tests may unwrap (HELPERS.md)

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use capmedia_content::{EntryRole, EntrySource, MediaPath, MediaPlan, PlanBuilder, PlanEntry};
use capmedia_disk::{
    find_fat_partition, min_disk_size, write_disk, DiskError, DiskReader, PartitionScheme,
};

/// Runs a tool; a missing tool fails the test naming its Debian package.
fn run(tool: &str, package: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(tool)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {tool} ({e}): install the Debian package {package}")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn lcg_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

/// A source tree with nested folders, long names, empty and odd-sized
/// files, and a folder with enough entries to span several clusters.
fn source_tree(dir: &Path) {
    let files: Vec<(String, usize)> = vec![
        ("bootmgr".into(), 4097),
        ("bootmgr.efi".into(), 1),
        ("boot/bcd".into(), 0),
        ("boot/boot.sdi".into(), 3 << 20),
        ("efi/boot/bootx64.efi".into(), 12345),
        ("efi/microsoft/boot/bcd".into(), 8192),
        ("sources/boot.wim".into(), (5 << 20) + 17),
        ("SMS/data/TsmBootstrap.ini".into(), 300),
        (
            "A Folder With A Rather Long Name/and a nested folder with spaces/a file with a very long name indeed.txt".into(),
            2000,
        ),
        ("MixedCase/lower.txt".into(), 10),
        ("deep/a/b/c/d/e/f/g/leaf.bin".into(), 513),
    ];
    for (p, n) in files {
        let host = dir.join(&p);
        fs::create_dir_all(host.parent().unwrap()).unwrap();
        fs::write(&host, lcg_bytes(p.len() as u64, n)).unwrap();
    }
    for i in 0..60 {
        let host = dir.join(format!("many/entry number {i:03} with a long name.dat"));
        fs::create_dir_all(host.parent().unwrap()).unwrap();
        fs::write(&host, lcg_bytes(i, i as usize * 7)).unwrap();
    }
}

fn plan_for(dir: &Path, label: &str) -> MediaPlan {
    let mut b = PlanBuilder::new(label, "usb-raw", "unused");
    b.add_tree("", dir, EntryRole::Template, "template")
        .unwrap();
    b.add_bytes(
        "MediaLabel.txt",
        format!("label={label}").into_bytes(),
        EntryRole::Generated,
        "boot",
    )
    .unwrap();
    b.source_date_epoch(1_700_000_000).build().unwrap()
}

/// The last `done` the writer reported.
#[derive(Default)]
struct LastDone(AtomicU64);
impl capmedia_content::Progress for LastDone {
    fn update(&self, _: &str, done: u64, _: u64) {
        self.0.store(done, Ordering::SeqCst);
    }
}

/// Cancels from the `.1`-th question on.
struct CancelAfter(AtomicUsize, usize);
impl capmedia_content::Cancel for CancelAfter {
    fn is_cancelled(&self) -> bool {
        self.0.fetch_add(1, Ordering::SeqCst) >= self.1
    }
}

fn write_image(path: &Path, plan: &MediaPlan, size: u64, scheme: PartitionScheme) {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap();
    f.set_len(size).unwrap();
    let last = LastDone::default();
    write_disk(
        &mut f,
        size,
        plan,
        scheme,
        &last,
        &capmedia_content::NeverCancel,
    )
    .unwrap();
    assert!(last.0.load(Ordering::SeqCst) > 0);
    f.sync_all().unwrap();
}

/// Copies the FAT partition out of an image (what `dd skip=` would do).
fn extract_partition(img: &Path, out: &Path) -> u64 {
    let mut f = File::open(img).unwrap();
    let p = find_fat_partition(&mut f).unwrap();
    f.seek(SeekFrom::Start(p.offset)).unwrap();
    let mut o = File::create(out).unwrap();
    std::io::copy(&mut f.take(p.len), &mut o).unwrap();
    p.offset
}

fn check_image(img: &Path, src: &Path, plan: &MediaPlan, scheme: PartitionScheme) {
    let tmp = tempfile::tempdir().unwrap();
    let img_s = img.to_str().unwrap();
    // Partition table.
    match scheme {
        PartitionScheme::Mbr => {
            let (ok, out) = run("sfdisk", "fdisk", &["-V", img_s]);
            assert!(ok, "sfdisk -V: {out}");
            let (_, dump) = run("sfdisk", "fdisk", &["-d", img_s]);
            assert!(
                dump.contains("type=c") && dump.contains("bootable"),
                "{dump}"
            );
            assert!(dump.contains("start=        2048"), "{dump}");
        }
        PartitionScheme::Gpt => {
            let (ok, out) = run("sgdisk", "gdisk", &["-v", img_s]);
            assert!(ok && out.contains("No problems found"), "sgdisk -v: {out}");
            let (_, info) = run("sgdisk", "gdisk", &["-i", "1", img_s]);
            assert!(
                info.contains("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"),
                "{info}"
            );
            assert!(info.contains("First sector: 2048"), "{info}");
        }
    }
    // File system.
    let part = tmp.path().join("part.img");
    let offset = extract_partition(img, &part);
    check_boot_code(img, offset, scheme);
    let (ok, out) = run(
        "fsck.fat",
        "dosfstools",
        &["-n", "-v", part.to_str().unwrap()],
    );
    assert!(ok, "fsck.fat -n: {out}");
    assert!(
        !out.contains("differ") && !out.contains("summary wrong"),
        "fsck.fat: {out}"
    );
    assert!(out.contains("32 bit entries"), "fsck.fat: {out}");
    // Label and files through mtools, addressing the partition inside the image.
    let at = format!("{img_s}@@{offset}");
    let (ok, out) = run("mdir", "mtools", &["-i", &at, "::/"]);
    assert!(ok, "mdir: {out}");
    let label = capmedia_disk::fat_label(&plan.label);
    let label = String::from_utf8_lossy(&label).trim_end().to_owned();
    assert!(
        out.contains(&format!("Volume in drive : is {label}")),
        "mdir: {out}"
    );
    for e in &plan.entries {
        let dest = tmp.path().join("out.bin");
        let _ = fs::remove_file(&dest);
        let from = format!("::/{}", e.path.as_str());
        let (ok, out) = run(
            "mcopy",
            "mtools",
            &["-n", "-i", &at, &from, dest.to_str().unwrap()],
        );
        assert!(ok, "mcopy {from}: {out}");
        let expected = match &e.source {
            EntrySource::File(p) => fs::read(p).unwrap(),
            EntrySource::Inline(b) => b.clone(),
            EntrySource::Stream { .. } => panic!("this test plans no streamed entries"),
        };
        assert_eq!(fs::read(&dest).unwrap(), expected, "{}", e.path);
        let _ = src;
    }
    // Read back through our own reader and the manifest.
    let mut reader = DiskReader::open(File::open(img).unwrap()).unwrap();
    assert!(reader.is_fat32());
    let outcome = capmedia_manifest::verify(
        &mut reader,
        &capmedia_content::NoProgress,
        &capmedia_content::NeverCancel,
    )
    .unwrap();
    assert!(outcome.is_ok(), "{:?}", outcome.problems);
    assert_eq!(outcome.files_checked, plan.entries.len());
    assert_eq!(outcome.manifest.set_id, plan.set_id);
}

/// The bytes on the medium are the bytes capmedia-bootcode builds: the MBR
/// code (MBR disks; a GPT's protective MBR has none), the FAT32 boot sector's
/// code in the boot sector and its backup, the second boot sector, and the
/// BPB fields the code relies on (hidden sectors = partition start).
fn check_boot_code(img: &Path, part_offset: u64, scheme: PartitionScheme) {
    let disk = fs::read(img).unwrap();
    let mbr = &disk[..512];
    match scheme {
        PartitionScheme::Mbr => {
            assert_eq!(&mbr[..440], &capmedia_bootcode::mbr_code()[..]);
            assert_eq!(mbr[446], 0x80, "partition 1 is not active");
        }
        PartitionScheme::Gpt => assert!(mbr[..440].iter().all(|&b| b == 0), "GPT boot code"),
    }
    assert_eq!(&mbr[510..], &[0x55, 0xAA]);
    let vol = &disk[part_offset as usize..];
    let code = capmedia_bootcode::fat32_boot_code();
    let sector = |n: usize| &vol[n * 512..(n + 1) * 512];
    assert_eq!(&sector(0)[..3], &[0xEB, 0x58, 0x90]);
    assert_eq!(&sector(0)[0x5A..0x1FE], &code[..]);
    assert_eq!(sector(0), sector(6), "backup boot sector differs");
    assert_eq!(sector(2), &capmedia_bootcode::fat32_stage2()[..]);
    let hidden = u32::from_le_bytes(sector(0)[0x1C..0x20].try_into().unwrap());
    assert_eq!(u64::from(hidden) * 512, part_offset);
}

fn both(scheme: PartitionScheme) {
    let src = tempfile::tempdir().unwrap();
    source_tree(src.path());
    let plan = plan_for(src.path(), "Configuration Manager");
    let size = min_disk_size(&plan);
    let work = tempfile::tempdir().unwrap();
    let a = work.path().join("a.img");
    let b = work.path().join("b.img");
    write_image(&a, &plan, size, scheme);
    check_image(&a, src.path(), &plan, scheme);
    // Reproducible: a second build is byte-identical.
    write_image(&b, &plan, size, scheme);
    assert!(
        fs::read(&a).unwrap() == fs::read(&b).unwrap(),
        "two builds differ"
    );
}

#[test]
fn mbr_image_passes_fsck_sfdisk_and_mtools() {
    both(PartitionScheme::Mbr);
}

#[test]
fn gpt_image_passes_fsck_sgdisk_and_mtools() {
    both(PartitionScheme::Gpt);
}

/// Larger volumes get larger clusters and stay FAT32 (4 KiB clusters here).
#[test]
fn larger_volume_with_4k_clusters() {
    let src = tempfile::tempdir().unwrap();
    source_tree(src.path());
    let plan = plan_for(src.path(), "big");
    let work = tempfile::tempdir().unwrap();
    let img = work.path().join("big.img");
    write_image(&img, &plan, 600 << 20, PartitionScheme::Mbr);
    check_image(&img, src.path(), &plan, PartitionScheme::Mbr);
}

fn fake_entry(path: &str, size: u64) -> PlanEntry {
    PlanEntry {
        path: MediaPath::new(path).unwrap(),
        source: EntrySource::File(PathBuf::from("/nonexistent")),
        size,
        blake3: String::new(),
        role: EntryRole::Package,
        group: "g".into(),
    }
}

#[test]
fn refuses_before_writing() {
    let mut b = PlanBuilder::new("x", "usb-raw", "o");
    b.add_known(fake_entry("sources/install.wim", 5 << 30));
    let plan = b.build().unwrap();
    let mut target = std::io::Cursor::new(vec![0xAAu8; 64 << 20]);
    let err = write_disk(
        &mut target,
        64 << 20,
        &plan,
        PartitionScheme::Mbr,
        &capmedia_content::NoProgress,
        &capmedia_content::NeverCancel,
    )
    .unwrap_err();
    assert!(matches!(err, DiskError::FileTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("sources/install.wim"), "{err}");
    assert!(
        target.get_ref().iter().all(|&b| b == 0xAA),
        "bytes were written"
    );

    let mut b = PlanBuilder::new("x", "usb-raw", "o");
    b.add_known(fake_entry("big.bin", 100 << 20));
    let plan = b.build().unwrap();
    let err = write_disk(
        &mut target,
        64 << 20,
        &plan,
        PartitionScheme::Mbr,
        &capmedia_content::NoProgress,
        &capmedia_content::NeverCancel,
    )
    .unwrap_err();
    assert!(matches!(err, DiskError::DoesNotFit { .. }), "{err}");
    assert!(
        target.get_ref().iter().all(|&b| b == 0xAA),
        "bytes were written"
    );

    let err = write_disk(
        &mut target,
        20 << 20,
        &plan,
        PartitionScheme::Mbr,
        &capmedia_content::NoProgress,
        &capmedia_content::NeverCancel,
    )
    .unwrap_err();
    assert!(matches!(err, DiskError::TooSmallForFat32 { .. }), "{err}");
    assert!(min_disk_size(&plan) > 100 << 20);
}

#[test]
fn cancel_and_changed_source_stop_the_write() {
    let src = tempfile::tempdir().unwrap();
    source_tree(src.path());
    let plan = plan_for(src.path(), "x");
    let size = min_disk_size(&plan);
    let mut target = std::io::Cursor::new(vec![0u8; size as usize]);
    let err = write_disk(
        &mut target,
        size,
        &plan,
        PartitionScheme::Mbr,
        &capmedia_content::NoProgress,
        &CancelAfter(AtomicUsize::new(0), 3),
    )
    .unwrap_err();
    assert!(matches!(err, DiskError::Cancelled), "{err}");

    fs::write(src.path().join("bootmgr"), b"shorter").unwrap();
    let err = write_disk(
        &mut target,
        size,
        &plan,
        PartitionScheme::Mbr,
        &capmedia_content::NoProgress,
        &capmedia_content::NeverCancel,
    )
    .unwrap_err();
    assert!(matches!(err, DiskError::SourceChanged { .. }), "{err}");
    assert!(err.to_string().contains("bootmgr"), "{err}");
}

#[test]
fn target_longer_than_the_disk_keeps_its_tail() {
    // A VHD keeps its footer after the disk: write_disk must not touch it.
    let src = tempfile::tempdir().unwrap();
    source_tree(src.path());
    let plan = plan_for(src.path(), "vhd");
    let size = min_disk_size(&plan);
    let mut buf = vec![0u8; size as usize + 512];
    buf[size as usize..].fill(0x5A);
    let mut target = std::io::Cursor::new(buf);
    write_disk(
        &mut target,
        size,
        &plan,
        PartitionScheme::Gpt,
        &capmedia_content::NoProgress,
        &capmedia_content::NeverCancel,
    )
    .unwrap();
    let buf = target.into_inner();
    assert!(buf[size as usize..].iter().all(|&b| b == 0x5A));
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&buf[..size as usize]).unwrap();
    let (ok, out) = run("sgdisk", "gdisk", &["-v", f.path().to_str().unwrap()]);
    assert!(ok && out.contains("No problems found"), "{out}");
}
