//! The MBR's code (the first 440 bytes of sector 0; the disk signature and
//! the partition table that follow are capmedia-disk's).
//!
//! Assembled for origin 0000:0600, where it copies itself first (the BIOS
//! loads it at 0000:7C00, where the volume boot record must go).

use crate::asm::Asm;
use crate::{emit_msg, emit_print_and_halt, to_array};

/// Bytes of MBR code (sector 0 bytes 0..440).
pub const MBR_CODE_LEN: usize = 440;

/// Shown when no partition entry is marked active (0x80).
pub const MSG_NO_ACTIVE: &str = "capmedia MBR: no active partition";
/// Shown when the BIOS lacks INT 13h extensions (no LBA reads).
pub const MSG_NO_EXT: &str = "capmedia MBR: disk read error (no INT 13h extensions)";
/// Shown when reading the volume boot record fails.
pub const MSG_MBR_READ_ERROR: &str = "capmedia MBR: disk read error";
/// Shown when the active partition's first sector lacks the 55AA signature.
pub const MSG_MISSING_OS: &str = "capmedia MBR: missing operating system";

const ORG: u16 = 0x0600;

pub(crate) fn assemble() -> Result<Vec<u8>, String> {
    let mut a = Asm::new(ORG);
    a.emit(&[0xFA]) //                    cli
        .emit(&[0x31, 0xC0]) //           xor ax,ax
        .emit(&[0x8E, 0xD0]) //           mov ss,ax
        .emit(&[0xBC, 0x00, 0x7C]) //     mov sp,0x7C00    ; stack below where we were loaded
        .emit(&[0x8E, 0xD8]) //           mov ds,ax
        .emit(&[0x8E, 0xC0]) //           mov es,ax
        .emit(&[0xFB]) //                 sti
        .emit(&[0xFC]) //                 cld
        .emit(&[0xBE, 0x00, 0x7C]) //     mov si,0x7C00
        .emit(&[0xBF, 0x00, 0x06]) //     mov di,0x0600
        .emit(&[0xB9, 0x00, 0x01]) //     mov cx,256
        .emit(&[0xF3, 0xA5]) //           rep movsw        ; the whole sector to 0000:0600
        .abs16(&[0xEA], "moved", &[0x00, 0x00]) // jmp 0000:moved ; continue in the copy
        .label("moved")
        .abs16(&[0x88, 0x16], "drive", &[]) //    mov [drive],dl   ; the BIOS's boot drive
        .emit(&[0xBE, 0xBE, 0x07]) //     mov si,0x07BE    ; first partition entry (in the copy)
        .emit(&[0xB9, 0x04, 0x00]) //     mov cx,4
        .label("find")
        .emit(&[0xF6, 0x04, 0x80]) //     test byte [si],0x80 ; boot indicator
        .rel8(&[0x75], "found") //        jnz found
        .emit(&[0x83, 0xC6, 0x10]) //     add si,16
        .rel8(&[0xE2], "find") //         loop find
        .abs16(&[0xBE], "m_noact", &[]) //mov si,m_noact
        .rel8(&[0xEB], "print") //        jmp print
        .label("found")
        .emit(&[0x89, 0xF5]) //           mov bp,si        ; BP = the active entry
        .emit(&[0xB4, 0x41]) //           mov ah,0x41      ; INT 13h extensions installed?
        .emit(&[0xBB, 0xAA, 0x55]) //     mov bx,0x55AA
        .emit(&[0xCD, 0x13]) //           int 0x13         ; (DL = drive still)
        .rel8(&[0x72], "err_noext") //    jc err_noext
        .emit(&[0x81, 0xFB, 0x55, 0xAA]) // cmp bx,0xAA55
        .rel8(&[0x75], "err_noext") //    jne err_noext
        .emit(&[0xF6, 0xC1, 0x01]) //     test cl,1        ; bit 0: packet (AH=42h) access
        .rel8(&[0x74], "err_noext") //    jz err_noext
        .abs16(&[0xBE], "dap", &[]) //    mov si,dap
        .emit(&[0x66, 0x8B, 0x46, 0x08]) // mov eax,[bp+8]  ; the partition's first LBA
        .emit(&[0x66, 0x89, 0x44, 0x08]) // mov [si+8],eax  ; into the packet (high dword stays 0)
        .emit(&[0xB4, 0x42]) //           mov ah,0x42      ; extended read
        .abs16(&[0x8A, 0x16], "drive", &[]) // mov dl,[drive]
        .emit(&[0xCD, 0x13]) //           int 0x13
        .rel8(&[0x72], "err_read") //     jc err_read
        .emit(&[0x81, 0x3E, 0xFE, 0x7D, 0x55, 0xAA]) // cmp word [0x7DFE],0xAA55
        .rel8(&[0x75], "err_missing") //  jne err_missing  ; not a boot sector
        .emit(&[0x89, 0xEE]) //           mov si,bp        ; DS:SI -> the partition entry
        .abs16(&[0x8A, 0x16], "drive", &[]) // mov dl,[drive]
        .emit(&[0xEA, 0x00, 0x7C, 0x00, 0x00]) // jmp 0000:7C00
        .label("err_noext")
        .abs16(&[0xBE], "m_noext", &[]) //mov si,m_noext
        .rel8(&[0xEB], "print") //        jmp print
        .label("err_read")
        .abs16(&[0xBE], "m_read", &[]) // mov si,m_read
        .rel8(&[0xEB], "print") //        jmp print
        .label("err_missing")
        .abs16(&[0xBE], "m_missing", &[]); // mov si,m_missing ; falls into print
    emit_print_and_halt(&mut a);
    // The disk address packet: size 16, reserved, 1 sector, to 0000:7C00,
    // LBA (low dword patched above, high dword 0).
    a.label("dap")
        .emit(&[0x10, 0x00, 0x01, 0x00, 0x00, 0x7C, 0x00, 0x00])
        .emit(&[0; 8])
        .label("drive")
        .emit(&[0x80]);
    emit_msg(&mut a, "m_noact", &format!("{MSG_NO_ACTIVE}\r\n"));
    emit_msg(&mut a, "m_noext", &format!("{MSG_NO_EXT}\r\n"));
    emit_msg(&mut a, "m_read", &format!("{MSG_MBR_READ_ERROR}\r\n"));
    emit_msg(&mut a, "m_missing", &format!("{MSG_MISSING_OS}\r\n"));
    let code = a.finish()?;
    if code.len() > MBR_CODE_LEN {
        return Err(format!(
            "MBR code is {} bytes, more than {MBR_CODE_LEN}",
            code.len()
        ));
    }
    Ok(code)
}

/// The MBR code: bytes 0..440 of sector 0. The same on every call.
pub fn mbr_code() -> [u8; MBR_CODE_LEN] {
    to_array(&assemble().unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn assembles_and_fits() {
        let code = assemble().unwrap();
        assert!(code.len() <= MBR_CODE_LEN, "{} bytes", code.len());
        assert_eq!(&mbr_code()[..code.len()], &code[..]);
        // The far jump into the copy targets the copy's `moved`.
        assert_eq!(code[0..2], [0xFA, 0x31]);
    }
}
