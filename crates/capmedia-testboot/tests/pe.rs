//! Parses the generated PE images back and checks every field we set, and has
//! `file`/`objdump` (tools we did not write) and wimlib agree on the machine.

#![allow(clippy::unwrap_used)] // tests may unwrap (HELPERS.md)

mod common;

use std::process::Command;

use capmedia_content::Arch;
use capmedia_testboot::pe::{pe_checksum, FILE_ALIGNMENT, SECTION_ALIGNMENT};
use capmedia_testboot::{efi_app, pe_stub, write_media_folder, BIOS_BOOT_SIZE};
use common::{run, tool};

fn u16at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

struct Pe {
    machine: u16,
    magic: u16,
    subsystem: u16,
    characteristics: u16,
}

/// Parses and checks the header invariants a loader relies on.
fn parse(b: &[u8]) -> Pe {
    assert_eq!(&b[0..2], b"MZ");
    let pe = u32at(b, 0x3C) as usize;
    assert_eq!(&b[pe..pe + 4], b"PE\0\0");
    let coff = pe + 4;
    let machine = u16at(b, coff);
    let nsec = u16at(b, coff + 2) as usize;
    let opt_size = u16at(b, coff + 16) as usize;
    let characteristics = u16at(b, coff + 18);
    assert_eq!(characteristics & 0x0001, 0, "RELOCS_STRIPPED must be clear");
    assert_ne!(characteristics & 0x0002, 0, "EXECUTABLE_IMAGE");
    let opt = coff + 20;
    let magic = u16at(b, opt);
    let plus = magic == 0x20B;
    assert!(magic == 0x20B || magic == 0x10B);
    assert_eq!(opt_size, if plus { 240 } else { 224 });
    let w = if plus { opt + 24 } else { opt + 28 };
    let w = if plus { w + 8 } else { w + 4 }; // past ImageBase
    assert_eq!(u32at(b, w), SECTION_ALIGNMENT);
    assert_eq!(u32at(b, w + 4), FILE_ALIGNMENT);
    let size_of_image = u32at(b, w + 24);
    let size_of_headers = u32at(b, w + 28);
    let checksum = u32at(b, w + 32);
    assert_eq!(checksum, pe_checksum(b, w + 32), "CheckSum");
    let subsystem = u16at(b, w + 36);
    let dirs = w + 40 + if plus { 32 } else { 16 } + 8;
    assert_eq!(u32at(b, dirs - 4), 16, "NumberOfRvaAndSizes");
    let sections = opt + opt_size;
    assert_eq!(dirs + 128, sections);
    assert_eq!(size_of_headers as usize % FILE_ALIGNMENT as usize, 0);
    assert!(size_of_headers as usize >= sections + nsec * 40);
    let mut end = 0;
    let mut prev_end = SECTION_ALIGNMENT;
    for i in 0..nsec {
        let s = sections + i * 40;
        let (vsize, rva, raw, ptr) = (
            u32at(b, s + 8),
            u32at(b, s + 12),
            u32at(b, s + 16),
            u32at(b, s + 20),
        );
        assert_eq!(rva % SECTION_ALIGNMENT, 0);
        assert!(rva >= prev_end);
        assert_eq!(raw % FILE_ALIGNMENT, 0);
        assert_eq!(ptr % FILE_ALIGNMENT, 0);
        assert!(vsize <= raw && (ptr + raw) as usize <= b.len());
        prev_end = rva + vsize.div_ceil(SECTION_ALIGNMENT) * SECTION_ALIGNMENT;
        end = prev_end;
    }
    assert_eq!(size_of_image, end, "SizeOfImage");
    // Base relocation directory: present, holding one block with no entries.
    let (rrva, rsize) = (u32at(b, dirs + 5 * 8), u32at(b, dirs + 5 * 8 + 4));
    assert!(rrva != 0 && rsize == 8);
    let entry = u32at(b, opt + 16);
    assert!(entry < size_of_image);
    Pe {
        machine,
        magic,
        subsystem,
        characteristics,
    }
}

#[test]
fn efi_apps_have_right_headers() {
    for (arch, machine, magic) in [
        (Arch::X64, 0x8664, 0x20B),
        (Arch::X86, 0x014C, 0x10B),
        (Arch::Arm64, 0xAA64, 0x20B),
        (Arch::Arm, 0x01C2, 0x10B),
        (Arch::Ia64, 0x0200, 0x20B),
    ] {
        let pe = parse(&efi_app(arch, "hello"));
        assert_eq!(
            (pe.machine, pe.magic, pe.subsystem),
            (machine, magic, 10),
            "{arch}"
        );
        assert_eq!(pe.characteristics & 0x2000, 0, "{arch}: not a DLL");
    }
}

#[test]
fn pe_stubs_are_dlls_of_the_machine() {
    for (machine, magic) in [
        (0x8664u16, 0x20B),
        (0x014C, 0x10B),
        (0xAA64, 0x20B),
        (0x01C4, 0x10B),
    ] {
        let pe = parse(&pe_stub(machine));
        assert_eq!((pe.machine, pe.magic), (machine, magic));
        assert_ne!(pe.characteristics & 0x2000, 0, "DLL flag");
    }
}

#[test]
fn file_and_objdump_agree_on_format_and_machine() {
    let file = tool("file", "file");
    let objdump = tool("objdump", "binutils");
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>, &str, Option<&str>); 6] = [
        (
            "x64.efi",
            efi_app(Arch::X64, "m"),
            "PE32+ executable (EFI application) x86-64",
            Some("pei-x86-64"),
        ),
        (
            "x86.efi",
            efi_app(Arch::X86, "m"),
            "PE32 executable (EFI application) Intel 80386",
            Some("pei-i386"),
        ),
        (
            "aa64.efi",
            efi_app(Arch::Arm64, "m"),
            "PE32+ executable (EFI application) Aarch64",
            None,
        ),
        (
            "x64.dll",
            pe_stub(0x8664),
            "PE32+ executable (DLL) (console) x86-64",
            Some("pei-x86-64"),
        ),
        (
            "x86.dll",
            pe_stub(0x014C),
            "PE32 executable (DLL) (console) Intel 80386",
            Some("pei-i386"),
        ),
        (
            "aa64.dll",
            pe_stub(0xAA64),
            "PE32+ executable (DLL) (console) Aarch64",
            None,
        ),
    ];
    for (name, bytes, want_file, want_objdump) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let got = run(Command::new(&file).arg("-b").arg(&p));
        assert!(
            got.starts_with(want_file),
            "{name}: file says {got:?}, want {want_file:?}"
        );
        if let Some(fmt) = want_objdump {
            let got = run(Command::new(&objdump).arg("-f").arg(&p));
            assert!(
                got.contains(&format!("file format {fmt}")),
                "{name}: objdump says {got}"
            );
        }
    }
    // The x64 app's code disassembles to what the comments in src/efi.rs say.
    let p = dir.path().join("x64.efi");
    let dis = run(Command::new(&objdump).arg("-d").arg(&p));
    for insn in [
        "push   %rbx",
        "out    %al,(%dx)",
        "call   *0x8(%rcx)",
        "call   *0x68(%rax)",
        "hlt",
    ] {
        assert!(dis.contains(insn), "missing {insn:?} in\n{dis}");
    }
}

#[test]
fn bios_boot_sector_is_one_cd_sector_and_deterministic() {
    let a = capmedia_testboot::bios_boot_sector("M");
    assert_eq!(a.len(), BIOS_BOOT_SIZE);
    assert_eq!(a, capmedia_testboot::bios_boot_sector("M"));
    // An over-long marker is cut, never overflows.
    let long = "é".repeat(5000);
    assert_eq!(
        capmedia_testboot::bios_boot_sector(&long).len(),
        BIOS_BOOT_SIZE
    );
    let objdump = tool("objdump", "binutils");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("boot.bin");
    std::fs::write(&p, &a).unwrap();
    let dis = run(Command::new(objdump)
        .args(["-D", "-b", "binary", "-m", "i8086"])
        .arg(&p));
    for insn in [
        "mov    $0x3fd,%dx",
        "out    %al,(%dx)",
        "int    $0x10",
        "loop",
        "hlt",
    ] {
        assert!(dis.contains(insn), "missing {insn:?} in\n{dis}");
    }
}

#[test]
fn wimlib_reads_architecture_from_kernel32_stub() {
    let wimlib = tool("wimlib-imagex", "wimtools");
    for (machine, want) in [(0x8664u16, "x86_64"), (0x014C, "x86"), (0xAA64, "ARM64")] {
        let dir = tempfile::tempdir().unwrap();
        let sys32 = dir.path().join("tree/Windows/System32");
        std::fs::create_dir_all(&sys32).unwrap();
        std::fs::write(sys32.join("kernel32.dll"), pe_stub(machine)).unwrap();
        let wim = dir.path().join("x.wim");
        run(Command::new(&wimlib)
            .arg("capture")
            .arg(dir.path().join("tree"))
            .arg(&wim)
            .arg("--no-acls"));
        let info = run(Command::new(&wimlib).arg("info").arg(&wim));
        let line = info
            .lines()
            .find(|l| l.starts_with("Architecture:"))
            .unwrap_or_else(|| panic!("{info}"));
        assert_eq!(line.split(':').nth(1).unwrap().trim(), want, "{info}");
    }
}

#[test]
fn media_folder_has_adk_layout_and_is_deterministic() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write_media_folder(a.path(), Arch::X64, "MK").unwrap();
    write_media_folder(b.path(), Arch::X64, "MK").unwrap();
    for rel in [
        "bootmgr",
        "bootmgr.efi",
        "boot/bcd",
        "boot/boot.sdi",
        "efi/boot/bootx64.efi",
        "efi/microsoft/boot/bcd",
        "etfsboot.com",
    ] {
        let x = std::fs::read(a.path().join(rel)).unwrap();
        assert!(!x.is_empty(), "{rel}");
        assert_eq!(x, std::fs::read(b.path().join(rel)).unwrap(), "{rel}");
    }
    assert_eq!(
        std::fs::read(a.path().join("efi/boot/bootx64.efi")).unwrap(),
        efi_app(Arch::X64, "MK")
    );
    let c = tempfile::tempdir().unwrap();
    write_media_folder(c.path(), Arch::Arm64, "MK").unwrap();
    assert_eq!(
        parse(&std::fs::read(c.path().join("efi/boot/bootaa64.efi")).unwrap()).machine,
        0xAA64
    );
}
