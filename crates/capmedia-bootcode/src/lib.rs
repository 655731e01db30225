//! capmedia's own BIOS boot code, written for this project (no bytes from
//! Windows, syslinux, GRUB, FreeDOS or ms-sys): the code part of an MBR and
//! the code of a FAT32 volume boot record that loads `BOOTMGR`.
//!
//! One job: produce those bytes. They are assembled here, by Rust, from
//! the instruction bytes written in [`mbr`] and [`fat32`] with their
//! assembly listing as comments (no assembler is needed to build capmedia;
//! `cargo build -p capmedia-bootcode` is the "documented command", and the
//! bytes on a medium are whatever [`mbr_code`], [`fat32_boot_code`] and
//! [`fat32_stage2`] return: the same on every build).
//!
//! # The chain
//! 1. The BIOS loads sector 0 (the MBR) at 0000:7C00 with DL = drive.
//!    [`mbr_code`] copies itself to 0000:0600, finds the first partition
//!    entry marked active (0x80), checks INT 13h extensions (AH=41h), reads
//!    the partition's first sector to 0000:7C00 with AH=42h (LBA from the
//!    entry), checks its 55AA signature and jumps to 0000:7C00 with DL =
//!    drive and DS:SI = the partition entry (in the copy at 0000:07BE..).
//! 2. The volume boot record ([`fat32_boot_code`], at offset 0x5A of the FAT32
//!    boot sector, after the BPB capmedia-disk writes) stores DL in the BPB's
//!    drive-number field (offset 0x40), checks the extensions, and reads the
//!    volume's sector [`FAT32_STAGE2_SECTOR`] (LBA = BPB hidden sectors + 2,
//!    a reserved sector, as Windows keeps a further boot sector there) to
//!    0000:7E00: [`fat32_stage2`]. 420 bytes were too few for both the
//!    directory walk and messages on screen and on COM1.
//! 3. The second sector follows the root folder's cluster chain through the
//!    FAT, finds the short name `BOOTMGR    ` (not a folder or label), and
//!    loads the file, whole clusters at a time, to 2000:0000 upwards. A file
//!    over 512 KiB (the window 0x20000..0x9FFFF) or a chain that would run
//!    past 0x9FFFF is refused with a message.
//!
//! # The state BOOTMGR is entered with
//! The contract of the Windows FAT32 boot sector, as GRUB's `ntldr` command
//! reproduces it (grub-core/loader/i386/pc/ntldr.c: CS:IP = 2000:0000,
//! DS = ES = SS = 0, SP = 7C00, EDX = drive, the partition's boot sector at
//! 0000:7C00):
//! - CS:IP = 2000:0000, DL = BIOS drive number (as the BIOS gave it);
//! - DS = ES = SS = 0, SP = 0x7C00, interrupts enabled, direction flag clear;
//! - the volume's boot sector with its BPB intact at 0000:7C00, hidden
//!   sectors = the partition's first LBA, drive number (0x40) = DL;
//! - A20 as the BIOS left it (BOOTMGR enables it itself).
//!
//! # Messages
//! Every failure prints one line through INT 10h teletype and, first, the
//! same text to COM1 (port 0x3F8, waiting on the line status register with
//! a bounded count, so a machine without the port does not hang), then
//! halts for good. COM1 makes the messages visible to a test under
//! `qemu -nographic` and on a serial console.
//!
//! Memory used: 0000:0500..050F (variables), 0000:0600..07FF (MBR copy),
//! 0000:7C00..7FFF (the two boot sectors), 0000:8000..83FF (one directory
//! sector, one FAT sector), 2000:0000..9000:FFFF (BOOTMGR), and the stack
//! below 0000:7C00.

mod asm;
pub mod fat32;
pub mod mbr;

pub use fat32::{
    fat32_boot_code, fat32_stage2, install_fat32_boot, BOOTMGR_LOAD_SEGMENT, BOOTMGR_MAX_SIZE,
    FAT32_CODE_LEN, FAT32_CODE_OFFSET, FAT32_STAGE2_SECTOR, MSG_NO_BOOTMGR, MSG_READ_ERROR,
    MSG_TOO_LARGE,
};
pub use mbr::{
    mbr_code, MBR_CODE_LEN, MSG_MBR_READ_ERROR, MSG_MISSING_OS, MSG_NO_ACTIVE, MSG_NO_EXT,
};

use asm::Asm;

/// Emits `print`: SI -> NUL-terminated text, sent to COM1 then to the
/// screen, then halt forever (interrupts on). Shared by the MBR and the boot sector.
pub(crate) fn emit_print_and_halt(a: &mut Asm) {
    a.label("print")
        .emit(&[0x56]) //                 push si          ; keep the start for the screen pass
        .label("ser_next")
        .emit(&[0xAC]) //                 lodsb            ; AL = [DS:SI++]
        .emit(&[0x84, 0xC0]) //           test al,al
        .rel8(&[0x74], "ser_done") //     jz ser_done      ; NUL ends the text
        .emit(&[0x88, 0xC3]) //           mov bl,al
        .emit(&[0xBA, 0xFD, 0x03]) //     mov dx,0x3FD     ; COM1 line status register
        .emit(&[0xB9, 0xFF, 0xFF]) //     mov cx,0xFFFF    ; bounded wait (no UART: reads 0xFF)
        .label("ser_wait")
        .emit(&[0xEC]) //                 in al,dx
        .emit(&[0xA8, 0x20]) //           test al,0x20     ; transmit holding register empty?
        .rel8(&[0xE1], "ser_wait") //     loopz ser_wait
        .emit(&[0x88, 0xD8]) //           mov al,bl
        .emit(&[0xB2, 0xF8]) //           mov dl,0xF8      ; DX = 0x3F8, COM1 data
        .emit(&[0xEE]) //                 out dx,al
        .rel8(&[0xEB], "ser_next") //     jmp ser_next
        .label("ser_done")
        .emit(&[0x5E]) //                 pop si
        .label("vid_next")
        .emit(&[0xAC]) //                 lodsb
        .emit(&[0x84, 0xC0]) //           test al,al
        .rel8(&[0x74], "halt") //         jz halt
        .emit(&[0x60]) //                 pusha            ; the video BIOS may clobber registers
        .emit(&[0xB4, 0x0E]) //           mov ah,0x0E      ; teletype output of AL
        .emit(&[0xBB, 0x07, 0x00]) //     mov bx,0x0007    ; page 0, light grey
        .emit(&[0xCD, 0x10]) //           int 0x10
        .emit(&[0x61]) //                 popa
        .rel8(&[0xEB], "vid_next") //     jmp vid_next
        .label("halt")
        // Interrupts stay on: a BIOS that mirrors the screen to a serial
        // console (SeaBIOS under `-nographic`) flushes it on timer ticks.
        .emit(&[0xFB]) //                 sti
        .emit(&[0xF4]) //                 hlt              ; any interrupt resumes: halt again
        .rel8(&[0xEB], "halt"); //        jmp halt
}

/// Emits `text` NUL-terminated under `name`.
pub(crate) fn emit_msg(a: &mut Asm, name: &'static str, text: &str) {
    a.label(name).emit(text.as_bytes()).emit(&[0]);
}

/// Copies `code` into a fixed-size array (zero-padded). The callers' tests
/// check that the code fits; this never panics.
pub(crate) fn to_array<const N: usize>(code: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(code) {
        *o = *b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(hay: &[u8], needle: &str) -> bool {
        hay.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    /// Each message is in the sector whose code prints it; the file name
    /// the second sector looks for is the 8.3 name of BOOTMGR.
    #[test]
    fn messages_are_where_they_are_printed() {
        let mbr = mbr_code();
        for m in [
            MSG_NO_ACTIVE,
            MSG_NO_EXT,
            MSG_MBR_READ_ERROR,
            MSG_MISSING_OS,
        ] {
            assert!(contains(&mbr, m), "{m}");
        }
        assert!(contains(&fat32_boot_code(), MSG_READ_ERROR));
        let s2 = fat32_stage2();
        assert!(contains(&s2, MSG_NO_BOOTMGR) && contains(&s2, MSG_TOO_LARGE));
        assert!(contains(&s2, "BOOTMGR    "));
    }

    /// Same build, same bytes (nothing in the assembly depends on state).
    #[test]
    fn reproducible() {
        assert_eq!(mbr_code(), mbr_code());
        assert_eq!(fat32_boot_code(), fat32_boot_code());
        assert_eq!(fat32_stage2(), fat32_stage2());
    }
}
