//! The VHDs this crate writes, checked by qemu-img (Debian: qemu-utils) and
//! read back through our own reader.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use capmedia_vhd::{detect, virtual_size_for, VhdError, VhdReader, VhdType, VhdWriter, BLOCK_SIZE};
use common::*;

const MIB: u64 = 1 << 20;

fn info(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&qemu_ok(&["info", "-f", "vpc", "--output=json", s(path)])).unwrap()
}

/// `qemu-img check` has no vpc support in Debian's qemu 7.2 ("This image
/// format does not support checks", exit 63); when it has, it must be clean.
fn check_if_supported(path: &std::path::Path) {
    let o = qemu_img(&["check", "-f", "vpc", s(path)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() || err.contains("does not support checks"),
        "qemu-img check: {}{err}",
        String::from_utf8_lossy(&o.stdout)
    );
}

fn round_trip(vhd_type: VhdType) {
    let (_d, dir) = tmp();
    let size = virtual_size_for(64 * MIB).unwrap();
    let ops = sequence(size);
    let vhd = dir.join("x.vhd");
    let raw = dir.join("x.raw");
    assert_eq!(write_vhd(&vhd, vhd_type, 64 * MIB, &ops), size);
    write_raw(&raw, size, &ops);
    let want = model(size, &ops);

    // qemu sees the size we chose, and the type.
    let i = info(&vhd);
    assert_eq!(i["format"], "vpc");
    assert_eq!(i["virtual-size"].as_u64(), Some(size));
    match vhd_type {
        VhdType::Dynamic => assert_eq!(i["cluster-size"].as_u64(), Some(u64::from(BLOCK_SIZE))),
        VhdType::Fixed => assert!(i.get("cluster-size").is_none(), "{i}"),
    }
    check_if_supported(&vhd);

    // Same disk as the raw image, by qemu's reading.
    let out = qemu_ok(&["compare", "-f", "vpc", "-F", "raw", s(&vhd), s(&raw)]);
    assert!(out.contains("identical"), "{out}");
    let conv = dir.join("conv.raw");
    qemu_ok(&["convert", "-f", "vpc", "-O", "raw", s(&vhd), s(&conv)]);
    assert!(
        std::fs::read(&conv).unwrap() == want,
        "qemu-img convert differs"
    );

    // And by ours, with an odd buffer size.
    let r = VhdReader::open_path(&vhd).unwrap();
    assert_eq!(r.size(), size);
    assert_eq!(r.info().footer.vhd_type, vhd_type);
    assert!(read_all(r, 777_777) == want, "VhdReader differs");
    assert!(detect(&vhd));
    assert!(!detect(&raw));

    // Reproducible.
    let again = dir.join("again.vhd");
    write_vhd(&again, vhd_type, 64 * MIB, &ops);
    assert!(std::fs::read(&vhd).unwrap() == std::fs::read(&again).unwrap());
}

#[test]
fn fixed_round_trip() {
    round_trip(VhdType::Fixed);
}

#[test]
fn dynamic_round_trip() {
    round_trip(VhdType::Dynamic);
}

#[test]
fn dynamic_allocates_only_non_zero_blocks_in_write_order() {
    let (_d, dir) = tmp();
    let size = virtual_size_for(64 * MIB).unwrap();
    let ops = sequence(size);
    let vhd = dir.join("x.vhd");
    write_vhd(&vhd, VhdType::Dynamic, 64 * MIB, &ops);
    // Blocks first written with non-zero data, in order: 0, 2 (6 MiB - 1000),
    // 3, 6, 7, 10, 1, the last, 15.
    let last = (size - 1) / u64::from(BLOCK_SIZE);
    let order = [0u64, 2, 3, 6, 7, 10, 1, last, 15];
    let r = VhdReader::open_path(&vhd).unwrap();
    assert_eq!(r.info().allocated_blocks, order.len() as u64);
    let bat_bytes = (size.div_ceil(u64::from(BLOCK_SIZE)) * 4).next_multiple_of(512);
    let data = 1536 + bat_bytes;
    let per = u64::from(BLOCK_SIZE) + 512;
    assert_eq!(
        std::fs::metadata(&vhd).unwrap().len(),
        data + order.len() as u64 * per + 512
    );
    // qemu's map: data exactly where the allocated blocks are.
    let map: serde_json::Value =
        serde_json::from_str(&qemu_ok(&["map", "-f", "vpc", "--output=json", s(&vhd)])).unwrap();
    for ext in map.as_array().unwrap() {
        let start = ext["start"].as_u64().unwrap();
        let len = ext["length"].as_u64().unwrap();
        let is_data = ext["data"].as_bool().unwrap();
        let mut b = start;
        while b < start + len {
            let block = b / u64::from(BLOCK_SIZE);
            assert_eq!(order.contains(&block), is_data, "block {block} in {ext}");
            if let Some(i) = order.iter().position(|&x| x == block) {
                let off = ext["offset"].as_u64().unwrap() + (block * u64::from(BLOCK_SIZE) - start);
                assert_eq!(off, data + i as u64 * per + 512, "block {block}");
            }
            b = (block + 1) * u64::from(BLOCK_SIZE);
        }
    }
}

#[test]
fn footer_geometry_matches_qemu_img_create() {
    // qemu-img create rounds a size up to its CHS geometry; for our sizes that
    // is the size itself, with the same geometry bytes in the footer.
    let (_d, dir) = tmp();
    for mib in [1u64, 20, 64, 100, 700, 1024, 4096, 40_000] {
        let size = virtual_size_for(mib * MIB).unwrap();
        let theirs = dir.join(format!("q{mib}.vhd"));
        qemu_ok(&[
            "create",
            "-q",
            "-f",
            "vpc",
            "-o",
            "subformat=dynamic",
            s(&theirs),
            &size.to_string(),
        ]);
        assert_eq!(
            info(&theirs)["virtual-size"].as_u64(),
            Some(size),
            "{mib} MiB"
        );
        let ours = dir.join(format!("o{mib}.vhd"));
        write_vhd(&ours, VhdType::Dynamic, mib * MIB, &[]);
        let q = std::fs::read(&theirs).unwrap();
        let o = std::fs::read(&ours).unwrap();
        assert_eq!(q[56..60], o[56..60], "geometry for {mib} MiB");
        assert_eq!(q[40..56], o[40..56], "sizes for {mib} MiB");
    }
}

#[test]
fn four_gib_dynamic_with_100_mb_is_small() {
    let (_d, dir) = tmp();
    let vhd = dir.join("big.vhd");
    let f = File::create(&vhd).unwrap();
    let mut w = VhdWriter::create(f, &params(VhdType::Dynamic, 4 << 30)).unwrap();
    let size = w.size();
    assert!(size >= 4 << 30);
    // 100 MB of data in three places, and 256 MiB of explicit zeros.
    let chunk = pattern(9, MIB as usize);
    for (start, mibs) in [(0u64, 40u64), (1 << 30, 30), (3 << 30, 30)] {
        w.seek(SeekFrom::Start(start + 12_345)).unwrap();
        for _ in 0..mibs {
            w.write_all(&chunk).unwrap();
        }
    }
    w.seek(SeekFrom::Start(2 << 30)).unwrap();
    let zeros = vec![0u8; 4 * MIB as usize];
    for _ in 0..64 {
        w.write_all(&zeros).unwrap();
    }
    w.finish().unwrap();
    let len = std::fs::metadata(&vhd).unwrap().len();
    assert!(len < 150_000_000, "{len} bytes");
    let i = info(&vhd);
    assert_eq!(i["virtual-size"].as_u64(), Some(size));
    check_if_supported(&vhd);
    // Spot-check through our reader.
    let mut r = VhdReader::open_path(&vhd).unwrap();
    let mut buf = vec![0u8; MIB as usize];
    r.seek(SeekFrom::Start((1 << 30) + 12_345 + 5 * MIB))
        .unwrap();
    r.read_exact(&mut buf).unwrap();
    assert!(buf == chunk);
    r.seek(SeekFrom::Start(2 << 30)).unwrap();
    r.read_exact(&mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
}

#[test]
fn writer_reads_back_before_finish() {
    let size = virtual_size_for(64 * MIB).unwrap();
    let ops = sequence(size);
    for t in [VhdType::Fixed, VhdType::Dynamic] {
        let mut w =
            VhdWriter::create(std::io::Cursor::new(Vec::new()), &params(t, 64 * MIB)).unwrap();
        apply(&mut w, &ops);
        w.seek(SeekFrom::Start(0)).unwrap();
        assert!(read_all(&mut w, 1_000_003) == model(size, &ops), "{t}");
        // Writes stop at the end of the disk.
        w.seek(SeekFrom::Start(size - 1)).unwrap();
        assert!(w.write_all(&[1, 2]).is_err());
        assert_eq!(w.write(&[1]).unwrap(), 0);
    }
}

#[test]
fn corrupt_footer_checksum_is_a_typed_error() {
    let (_d, dir) = tmp();
    for t in [VhdType::Fixed, VhdType::Dynamic] {
        let vhd = dir.join(format!("{t}.vhd"));
        write_vhd(
            &vhd,
            t,
            20 * MIB,
            &[Op {
                offset: 3,
                data: pattern(1, 10),
            }],
        );
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&vhd)
            .unwrap();
        // The timestamp's last byte, in the footer at the end.
        f.seek(SeekFrom::End(-512 + 27)).unwrap();
        let mut b = [0u8];
        f.read_exact(&mut b).unwrap();
        f.seek(SeekFrom::End(-512 + 27)).unwrap();
        f.write_all(&[b[0] ^ 0x10]).unwrap();
        drop(f);
        match VhdReader::open_path(&vhd) {
            Err(VhdError::FooterChecksum { stored, computed }) => {
                assert_ne!(stored, computed, "{t}")
            }
            other => panic!("{t}: {other:?}"),
        }
        assert!(detect(&vhd), "the cookie is still there");
    }
}

#[test]
fn create_refuses_a_non_empty_file_and_too_large_sizes() {
    let w = VhdWriter::create(
        std::io::Cursor::new(vec![1u8]),
        &params(VhdType::Fixed, MIB),
    );
    assert!(matches!(w, Err(VhdError::NotEmpty(1))));
    let w = VhdWriter::create(
        std::io::Cursor::new(Vec::new()),
        &params(VhdType::Dynamic, 3 << 40),
    );
    assert!(matches!(w, Err(VhdError::TooLarge { .. })));
}
