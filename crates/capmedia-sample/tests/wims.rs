//! The committed sample boot images hold exactly what
//! `capmedia_testboot::write_boot_image_tree` writes today (rerun `cargo
//! xtask sample-wims` when it changes), LZX-compressed and bootable.
#![allow(clippy::unwrap_used)]

use std::io::Cursor;

use capmedia_content::Arch;
use capmedia_sample::{MARKER, X64_WIM, X86_WIM};
use capmedia_testboot::{write_boot_image_tree, BootImageShape};

#[test]
fn sample_wims_match_the_testboot_tree() {
    for (arch, bytes) in [(Arch::X64, X64_WIM), (Arch::X86, X86_WIM)] {
        let info = capmedia_arch::read_wim(&mut Cursor::new(bytes)).unwrap();
        assert_eq!(info.compression, "lzx", "{arch}");
        let boot = info.boot_image().expect("a boot index");
        assert_eq!(boot.arch, arch);

        let dir = tempfile::tempdir().unwrap();
        write_boot_image_tree(dir.path(), arch, MARKER, BootImageShape::default()).unwrap();
        let mut wim = capmedia_wim::Wim::open(Cursor::new(bytes)).unwrap();
        let image = wim.image(boot.index).unwrap();
        let mut expected = Vec::new();
        let mut stack = vec![dir.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    expected.push(p);
                }
            }
        }
        let files = image.walk().filter(|(_, e)| e.is_file()).count();
        assert_eq!(files, expected.len(), "{arch}: files in the WIM");
        for p in expected {
            let rel = p.strip_prefix(dir.path()).unwrap().to_str().unwrap();
            let e = image
                .find(rel)
                .unwrap_or_else(|| panic!("{arch}: {rel} missing"));
            let mut got = Vec::new();
            wim.extract_to(e, &mut got).unwrap();
            assert!(
                got == std::fs::read(&p).unwrap(),
                "{arch}: {rel} differs: run `cargo xtask sample-wims`"
            );
        }
    }
}
