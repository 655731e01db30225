//! The FAT32 volume boot record's code: sector 0 of the volume from offset
//! 0x5A (after the BPB/EBPB, which stay as the formatter wrote them) and a
//! second sector kept in the reserved area at [`FAT32_STAGE2_SECTOR`].
//!
//! Sector 0 runs at 0000:7C00 (origin of its code 0x7C5A); the second
//! sector is read to 0000:7E00 and calls sector 0's `read` and `print`.

use crate::asm::Asm;
use crate::{emit_msg, emit_print_and_halt, to_array};

/// Where the boot code starts in a FAT32 boot sector (after the EBPB).
pub const FAT32_CODE_OFFSET: usize = 0x5A;
/// Bytes of code in the boot sector (0x5A..0x1FE; the signature follows).
pub const FAT32_CODE_LEN: usize = 0x1FE - FAT32_CODE_OFFSET;
/// The volume-relative sector holding the second part of the boot code (a
/// reserved sector, unused by FAT32: 0 is the boot sector, 1 FSInfo, 6 and 7
/// their backups).
pub const FAT32_STAGE2_SECTOR: u64 = 2;
/// Where BOOTMGR is loaded and entered: 2000:0000.
pub const BOOTMGR_LOAD_SEGMENT: u16 = 0x2000;
/// The largest BOOTMGR the boot sector loads: 0x20000..0x9FFFF.
pub const BOOTMGR_MAX_SIZE: u32 = 0x8_0000;

/// Shown when the root folder has no file `BOOTMGR` (or it is empty).
pub const MSG_NO_BOOTMGR: &str = "capmedia boot: no BOOTMGR";
/// Shown when an INT 13h read fails (or the extensions are missing).
pub const MSG_READ_ERROR: &str = "capmedia boot: disk read error";
/// Shown when BOOTMGR does not fit below 0xA0000.
pub const MSG_TOO_LARGE: &str = "capmedia boot: BOOTMGR larger than 512 KiB";
const MSG_NO_EXT: &str = "capmedia boot: disk read error (no INT 13h extensions)";
const MSG_NO_STAGE2: &str = "capmedia boot: second boot sector missing";

const ORG0: u16 = 0x7C00 + FAT32_CODE_OFFSET as u16;
const ORG2: u16 = 0x7E00;

// BPB fields, read in place at 0000:7C00.
const BPB_SECTORS_PER_CLUSTER: u16 = 0x7C0D;
const BPB_RESERVED: u16 = 0x7C0E;
const BPB_FATS: u16 = 0x7C10;
const BPB_HIDDEN: u16 = 0x7C1C;
const BPB_SECTORS_PER_FAT: u16 = 0x7C24;
const BPB_ROOT_CLUSTER: u16 = 0x7C2C;
const BPB_DRIVE: u16 = 0x7C40;

// Variables.
const V_FAT_LBA: u16 = 0x0500; // dword: first sector of the first FAT
const V_DATA_LBA: u16 = 0x0504; // dword: first sector of cluster 2
const V_FAT_CACHED: u16 = 0x0508; // dword: FAT sector now in the buffer
const V_DIR_BUDGET: u16 = 0x050C; // word: root clusters still allowed
const DIR_BUF: u16 = 0x8000;
const FAT_BUF: u16 = 0x8200;

fn lo(v: u16) -> u8 {
    v.to_le_bytes()[0]
}
fn hi(v: u16) -> u8 {
    v.to_le_bytes()[1]
}

/// Sector 0's code, and the addresses of its `read` and `print` routines.
pub(crate) fn assemble_sector0() -> Result<(Vec<u8>, u16, u16), String> {
    let mut a = Asm::new(ORG0);
    a.emit(&[0xFA]) //                    cli
        .emit(&[0x31, 0xC0]) //           xor ax,ax
        .emit(&[0x8E, 0xD8]) //           mov ds,ax
        .emit(&[0x8E, 0xC0]) //           mov es,ax
        .emit(&[0x8E, 0xD0]) //           mov ss,ax
        .emit(&[0xBC, 0x00, 0x7C]) //     mov sp,0x7C00
        .emit(&[0xFB]) //                 sti
        .emit(&[0xFC]) //                 cld
        .abs16(&[0xEA], "norm", &[0x00, 0x00]) // jmp 0000:norm ; CS = 0 whatever the caller used
        .label("norm")
        .emit(&[0x88, 0x16, lo(BPB_DRIVE), hi(BPB_DRIVE)]) // mov [bpb.drive],dl
        .emit(&[0xB4, 0x41]) //           mov ah,0x41      ; INT 13h extensions installed?
        .emit(&[0xBB, 0xAA, 0x55]) //     mov bx,0x55AA
        .emit(&[0xCD, 0x13]) //           int 0x13
        .rel8(&[0x72], "err_noext") //    jc err_noext
        .emit(&[0x81, 0xFB, 0x55, 0xAA]) // cmp bx,0xAA55
        .rel8(&[0x75], "err_noext") //    jne err_noext
        .emit(&[0xF6, 0xC1, 0x01]) //     test cl,1        ; packet access supported?
        .rel8(&[0x74], "err_noext") //    jz err_noext
        .emit(&[0x66, 0xA1, lo(BPB_HIDDEN), hi(BPB_HIDDEN)]) // mov eax,[bpb.hidden] ; partition start
        .emit(&[0x66, 0x83, 0xC0, FAT32_STAGE2_SECTOR as u8]) // add eax,2
        .emit(&[0xBB, lo(ORG2), hi(ORG2)]) // mov bx,0x7E00 ; ES = 0
        .emit(&[0xB9, 0x01, 0x00]) //     mov cx,1
        .rel16(&[0xE8], "read") //        call read
        .emit(&[0x81, 0x3E, 0xFE, 0x7F, 0x55, 0xAA]) // cmp word [0x7FFE],0xAA55
        .rel8(&[0x75], "err_stage2") //   jne err_stage2
        .rel16_to(&[0xE9], ORG2) //       jmp 0x7E00
        .label("err_noext")
        .abs16(&[0xBE], "m_noext", &[]) //mov si,m_noext
        .rel8(&[0xEB], "print") //        jmp print
        .label("err_stage2")
        .abs16(&[0xBE], "m_stage2", &[]) // mov si,m_stage2
        .rel8(&[0xEB], "print") //        jmp print
        .label("err_read")
        .abs16(&[0xBE], "m_read", &[]) // mov si,m_read
        .rel8(&[0xEB], "print") //        jmp print
        // read: CX sectors from LBA EAX to ES:BX, one at a time; returns
        // EAX += CX and ES advanced past the data (BX unchanged, so any
        // size up to the end of conventional memory works). Clobbers CX, DX.
        .label("read")
        .emit(&[0x66, 0x60]) //           pushad
        .emit(&[0x89, 0xE5]) //           mov bp,sp
        .emit(&[0x66, 0x6A, 0x00]) //     push dword 0     ; LBA bits 32..63
        .emit(&[0x66, 0x50]) //           push eax         ; LBA bits 0..31
        .emit(&[0x06]) //                 push es          ; buffer segment
        .emit(&[0x53]) //                 push bx          ; buffer offset
        .emit(&[0x6A, 0x01]) //           push 1           ; one sector
        .emit(&[0x6A, 0x10]) //           push 0x10        ; packet size 16, reserved 0
        .emit(&[0x89, 0xE6]) //           mov si,sp        ; DS:SI -> packet (DS = SS = 0)
        .emit(&[0x8A, 0x16, lo(BPB_DRIVE), hi(BPB_DRIVE)]) // mov dl,[bpb.drive]
        .emit(&[0xB4, 0x42]) //           mov ah,0x42      ; extended read
        .emit(&[0xCD, 0x13]) //           int 0x13
        .emit(&[0x89, 0xEC]) //           mov sp,bp        ; (mov and popad keep CF)
        .emit(&[0x66, 0x61]) //           popad
        .rel8(&[0x72], "err_read") //     jc err_read
        .emit(&[0x66, 0x40]) //           inc eax
        .emit(&[0x8C, 0xC2]) //           mov dx,es
        .emit(&[0x83, 0xC2, 0x20]) //     add dx,0x20      ; 512 bytes further
        .emit(&[0x8E, 0xC2]) //           mov es,dx
        .rel8(&[0xE2], "read") //         loop read
        .emit(&[0xC3]); //                ret
    emit_print_and_halt(&mut a);
    emit_msg(&mut a, "m_noext", &format!("{MSG_NO_EXT}\r\n"));
    emit_msg(&mut a, "m_stage2", &format!("{MSG_NO_STAGE2}\r\n"));
    emit_msg(&mut a, "m_read", &format!("{MSG_READ_ERROR}\r\n"));
    let read = a.addr("read").ok_or("no read label")?;
    let print = a.addr("print").ok_or("no print label")?;
    let code = a.finish()?;
    if code.len() > FAT32_CODE_LEN {
        return Err(format!(
            "boot sector code is {} bytes, more than {FAT32_CODE_LEN}",
            code.len()
        ));
    }
    Ok((code, read, print))
}

/// Emits `cmp eax,2 / jb out / cmp eax,0x0FFFFFF7 / jae out`: leaves when
/// EAX is not a data cluster (free, reserved, bad or end of chain).
fn not_a_cluster(a: &mut Asm, out: &'static str) {
    a.emit(&[0x66, 0x83, 0xF8, 0x02]) //  cmp eax,2
        .rel8(&[0x72], out) //            jb out
        .emit(&[0x66, 0x3D, 0xF7, 0xFF, 0xFF, 0x0F]) // cmp eax,0x0FFFFFF7
        .rel8(&[0x73], out); //           jae out
}

pub(crate) fn assemble_stage2(read: u16, print: u16) -> Result<Vec<u8>, String> {
    let mut a = Asm::new(ORG2);
    let (spc, fats, spf) = (BPB_SECTORS_PER_CLUSTER, BPB_FATS, BPB_SECTORS_PER_FAT);
    a.emit(&[0x66, 0x0F, 0xB7, 0x06, lo(BPB_RESERVED), hi(BPB_RESERVED)]) // movzx eax,word [bpb.reserved]
        .emit(&[0x66, 0x03, 0x06, lo(BPB_HIDDEN), hi(BPB_HIDDEN)]) // add eax,[bpb.hidden]
        .emit(&[0x66, 0xA3, lo(V_FAT_LBA), hi(V_FAT_LBA)]) // mov [fat_lba],eax
        .emit(&[0x66, 0x0F, 0xB6, 0x0E, lo(fats), hi(fats)]) // movzx ecx,byte [bpb.fats]
        .emit(&[0x66, 0xA1, lo(spf), hi(spf)]) // mov eax,[bpb.sectors_per_fat]
        .emit(&[0x66, 0xF7, 0xE1]) //     mul ecx          ; EAX = all FATs' sectors
        .emit(&[0x66, 0x03, 0x06, lo(V_FAT_LBA), hi(V_FAT_LBA)]) // add eax,[fat_lba]
        .emit(&[0x66, 0xA3, lo(V_DATA_LBA), hi(V_DATA_LBA)]) // mov [data_lba],eax
        .emit(&[0x66, 0x83, 0x0E, lo(V_FAT_CACHED), hi(V_FAT_CACHED), 0xFF]) // or dword [fat_cached],-1
        .emit(&[0xC7, 0x06, lo(V_DIR_BUDGET), hi(V_DIR_BUDGET), 0x00, 0x10]) // mov word [dir_budget],4096
        .emit(&[0x66, 0xA1, lo(BPB_ROOT_CLUSTER), hi(BPB_ROOT_CLUSTER)]) // mov eax,[bpb.root_cluster]
        // Walk the root folder, cluster by cluster, sector by sector.
        .label("dir_cluster");
    not_a_cluster(&mut a, "not_found");
    a.emit(&[0xFF, 0x0E, lo(V_DIR_BUDGET), hi(V_DIR_BUDGET)]) // dec word [dir_budget] ; a looping chain ends
        .rel8(&[0x74], "not_found") //    jz not_found
        .emit(&[0x66, 0x50]) //           push eax         ; this cluster
        .rel16(&[0xE8], "clu_lba") //     call clu_lba     ; EAX = its first sector
        .emit(&[0x0F, 0xB6, 0x2E, lo(spc), hi(spc)]) // movzx bp,byte [bpb.sectors_per_cluster]
        .label("dir_sector")
        .emit(&[0x6A, 0x00]) //           push 0
        .emit(&[0x07]) //                 pop es
        .emit(&[0xBB, lo(DIR_BUF), hi(DIR_BUF)]) // mov bx,DIR_BUF
        .emit(&[0xB9, 0x01, 0x00]) //     mov cx,1
        .rel16_to(&[0xE8], read) //       call read        ; EAX = next sector (BP kept)
        .emit(&[0x6A, 0x00]) //           push 0
        .emit(&[0x07]) //                 pop es           ; ES = 0 again for cmpsb
        .emit(&[0xBF, lo(DIR_BUF), hi(DIR_BUF)]) // mov di,DIR_BUF
        .label("entry")
        .emit(&[0x80, 0x3D, 0x00]) //     cmp byte [di],0  ; end of the folder
        .rel8(&[0x74], "not_found") //    je not_found
        .emit(&[0x57]) //                 push di
        .abs16(&[0xBE], "name", &[]) //   mov si,name
        .emit(&[0xB9, 0x0B, 0x00]) //     mov cx,11
        .emit(&[0xF3, 0xA6]) //           repe cmpsb       ; "BOOTMGR    "?
        .emit(&[0x5F]) //                 pop di
        .rel8(&[0x75], "next_entry") //   jne next_entry
        .emit(&[0xF6, 0x45, 0x0B, 0x18]) // test byte [di+11],0x18 ; not a folder or label
        .rel8(&[0x74], "found") //        jz found
        .label("next_entry")
        .emit(&[0x83, 0xC7, 0x20]) //     add di,32
        .emit(&[0x81, 0xFF, lo(DIR_BUF + 512), hi(DIR_BUF + 512)]) // cmp di,DIR_BUF+512
        .rel8(&[0x72], "entry") //        jb entry
        .emit(&[0x4D]) //                 dec bp
        .rel8(&[0x75], "dir_sector") //   jnz dir_sector
        .emit(&[0x66, 0x58]) //           pop eax
        .rel16(&[0xE8], "next") //        call next        ; the folder's next cluster
        .rel8(&[0xEB], "dir_cluster") //  jmp dir_cluster
        .label("not_found")
        .abs16(&[0xBE], "m_nobootmgr", &[]) // mov si,m_nobootmgr
        .rel16_to(&[0xE9], print) //      jmp print
        .label("too_big")
        .abs16(&[0xBE], "m_toobig", &[]) // mov si,m_toobig
        .rel16_to(&[0xE9], print) //      jmp print
        // DI -> BOOTMGR's directory entry.
        .label("found")
        .emit(&[0x66, 0x8B, 0x45, 0x1C]) // mov eax,[di+28] ; file size
        .emit(&[0x66, 0x85, 0xC0]) //     test eax,eax
        .rel8(&[0x74], "not_found") //    jz not_found     ; an empty file is no BOOTMGR
        .emit(&[0x66, 0x3D, 0x00, 0x00, 0x08, 0x00]) // cmp eax,0x80000
        .rel8(&[0x77], "too_big") //      ja too_big
        .emit(&[0x8B, 0x45, 0x14]) //     mov ax,[di+20]   ; first cluster, high word
        .emit(&[0x66, 0xC1, 0xE0, 0x10]) // shl eax,16
        .emit(&[0x8B, 0x45, 0x1A]) //     mov ax,[di+26]   ; first cluster, low word
        .emit(&[0x68, 0x00, 0x20]) //     push 0x2000
        .emit(&[0x07]) //                 pop es
        .emit(&[0x31, 0xDB]) //           xor bx,bx        ; ES:BX = 2000:0000
        .label("load_cluster");
    not_a_cluster(&mut a, "loaded");
    a.emit(&[0x8C, 0xC2]) //              mov dx,es
        .emit(&[0x81, 0xFA, 0x00, 0xA0]) // cmp dx,0xA000  ; the window ends at 0x9FFFF
        .rel8(&[0x73], "too_big") //      jae too_big      ; (a chain longer than the size)
        .emit(&[0x66, 0x50]) //           push eax
        .rel16(&[0xE8], "clu_lba") //     call clu_lba
        .emit(&[0x0F, 0xB6, 0x0E, lo(spc), hi(spc)]) // movzx cx,byte [bpb.sectors_per_cluster]
        .rel16_to(&[0xE8], read) //       call read        ; ES moves past the cluster
        .emit(&[0x66, 0x58]) //           pop eax
        .rel16(&[0xE8], "next") //        call next
        .rel8(&[0xEB], "load_cluster") // jmp load_cluster
        .label("loaded")
        .emit(&[0x8A, 0x16, lo(BPB_DRIVE), hi(BPB_DRIVE)]) // mov dl,[bpb.drive]
        .emit(&[0xFA]) //                 cli
        .emit(&[0x31, 0xC0]) //           xor ax,ax
        .emit(&[0x8E, 0xD0]) //           mov ss,ax
        .emit(&[0xBC, 0x00, 0x7C]) //     mov sp,0x7C00
        .emit(&[0xFB]) //                 sti
        .emit(&[0x8E, 0xD8]) //           mov ds,ax
        .emit(&[0x8E, 0xC0]) //           mov es,ax
        .emit(&[0xEA, 0x00, 0x00, 0x00, 0x20]) // jmp 2000:0000
        // clu_lba: EAX = cluster -> EAX = its first sector. Clobbers EDX.
        .label("clu_lba")
        .emit(&[0x66, 0x83, 0xE8, 0x02]) // sub eax,2
        .emit(&[0x66, 0x0F, 0xB6, 0x16, lo(spc), hi(spc)]) // movzx edx,byte [bpb.sectors_per_cluster]
        .emit(&[0x66, 0xF7, 0xE2]) //     mul edx
        .emit(&[0x66, 0x03, 0x06, lo(V_DATA_LBA), hi(V_DATA_LBA)]) // add eax,[data_lba]
        .emit(&[0xC3]) //                 ret
        // next: EAX = cluster -> EAX = the FAT's entry for it (28 bits).
        // Keeps ES:BX; clobbers CX, DX, ESI.
        .label("next")
        .emit(&[0x06]) //                 push es
        .emit(&[0x53]) //                 push bx
        .emit(&[0x66, 0x89, 0xC6]) //     mov esi,eax
        .emit(&[0x66, 0xC1, 0xE8, 0x07]) // shr eax,7      ; 128 entries per FAT sector
        .emit(&[0x83, 0xE6, 0x7F]) //     and si,0x7F
        .emit(&[0xC1, 0xE6, 0x02]) //     shl si,2         ; byte offset in that sector
        .emit(&[0x66, 0x03, 0x06, lo(V_FAT_LBA), hi(V_FAT_LBA)]) // add eax,[fat_lba]
        .emit(&[0x66, 0x3B, 0x06, lo(V_FAT_CACHED), hi(V_FAT_CACHED)]) // cmp eax,[fat_cached]
        .rel8(&[0x74], "cached") //       je cached
        .emit(&[0x66, 0xA3, lo(V_FAT_CACHED), hi(V_FAT_CACHED)]) // mov [fat_cached],eax
        .emit(&[0x6A, 0x00]) //           push 0
        .emit(&[0x07]) //                 pop es
        .emit(&[0xBB, lo(FAT_BUF), hi(FAT_BUF)]) // mov bx,FAT_BUF
        .emit(&[0xB9, 0x01, 0x00]) //     mov cx,1
        .rel16_to(&[0xE8], read) //       call read        ; (keeps SI)
        .label("cached")
        .emit(&[0x66, 0x8B, 0x84, lo(FAT_BUF), hi(FAT_BUF)]) // mov eax,[si+FAT_BUF]
        .emit(&[0x66, 0x25, 0xFF, 0xFF, 0xFF, 0x0F]) // and eax,0x0FFFFFFF
        .emit(&[0x5B]) //                 pop bx
        .emit(&[0x07]) //                 pop es
        .emit(&[0xC3]) //                 ret
        .label("name")
        .emit(b"BOOTMGR    ");
    emit_msg(&mut a, "m_nobootmgr", &format!("{MSG_NO_BOOTMGR}\r\n"));
    emit_msg(&mut a, "m_toobig", &format!("{MSG_TOO_LARGE}\r\n"));
    let code = a.finish()?;
    if code.len() > 510 {
        return Err(format!(
            "second boot sector is {} bytes, more than 510",
            code.len()
        ));
    }
    Ok(code)
}

/// The boot sector's code: the bytes for offsets 0x5A..0x1FE.
pub fn fat32_boot_code() -> [u8; FAT32_CODE_LEN] {
    to_array(&assemble_sector0().map(|(c, _, _)| c).unwrap_or_default())
}

/// The second boot sector (volume sector [`FAT32_STAGE2_SECTOR`]), with
/// the 55AA signature the first one checks.
pub fn fat32_stage2() -> [u8; 512] {
    let code = assemble_sector0()
        .and_then(|(_, read, print)| assemble_stage2(read, print))
        .unwrap_or_default();
    let mut s: [u8; 512] = to_array(&code);
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

/// Puts the boot code into a FAT32 boot sector, keeping its BPB/EBPB
/// (bytes 3..0x5A): the jump at 0 (`jmp short 0x5A; nop`), the code, and the
/// 55AA signature.
pub fn install_fat32_boot(sector: &mut [u8; 512]) {
    sector[0] = 0xEB; // jmp short 0x5A
    sector[1] = (FAT32_CODE_OFFSET - 2) as u8;
    sector[2] = 0x90; // nop
    sector[FAT32_CODE_OFFSET..0x1FE].copy_from_slice(&fat32_boot_code());
    sector[510] = 0x55;
    sector[511] = 0xAA;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn both_sectors_assemble_and_fit() {
        let (code, read, print) = assemble_sector0().unwrap();
        assert!(code.len() <= FAT32_CODE_LEN, "{}", code.len());
        assert!(read > ORG0 && print > read);
        let s2 = assemble_stage2(read, print).unwrap();
        assert!(s2.len() <= 510, "{}", s2.len());
        assert_eq!(&fat32_stage2()[..s2.len()], &s2[..]);
        assert_eq!(&fat32_boot_code()[..code.len()], &code[..]);
        println!(
            "sector 0 code {} bytes, stage 2 {} bytes",
            code.len(),
            s2.len()
        );
    }

    #[test]
    fn install_keeps_the_bpb() {
        let mut s = [0xA5u8; 512];
        install_fat32_boot(&mut s);
        assert!(s[3..0x5A].iter().all(|&b| b == 0xA5));
        assert_eq!(&s[..3], &[0xEB, 0x58, 0x90]);
        assert_eq!(&s[510..], &[0x55, 0xAA]);
        // The code starts with `cli`.
        assert_eq!(s[0x5A], 0xFA);
    }
}
