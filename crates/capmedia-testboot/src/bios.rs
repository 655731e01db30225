//! The El Torito no-emulation BIOS boot program (our stand-in for `etfsboot.com`).
//!
//! El Torito 1.0, section 2.0/5.3: for a no-emulation entry the BIOS copies
//! "sector count" virtual (512-byte) sectors from the image's load RBA to
//! `load segment:0`, where load segment 0 means the traditional 0x07C0, and
//! jumps there in 16-bit real mode. Some BIOSes jump to 0000:7C00, others to
//! 07C0:0000, so the program never assumes CS: it takes DS from CS and finds its
//! message with a `call`/`pop` pair (the IP-relative idiom of real mode).

use crate::asm::Asm;

/// Size of the program we hand back: one CD sector (2048 bytes), which is also
/// El Torito's "boot-load-size 8" (8 x 512). The BIOS never loads more than that.
pub const BIOS_BOOT_SIZE: usize = 2048;

/// Assembles the program. `marker` is truncated (on a UTF-8 boundary) so that
/// program + marker + CR LF fit in [`BIOS_BOOT_SIZE`].
pub fn bios_boot_sector(marker: &str) -> Vec<u8> {
    let mut a = Asm::new();
    a.emit(&[0xFA]) // cli                  ; no interrupts while we move the stack
        .emit(&[0x0E]) // push cs
        .emit(&[0x1F]) // pop ds             ; DS = CS, whatever segment the BIOS used
        .emit(&[0x31, 0xC0]) // xor ax,ax
        .emit(&[0x8E, 0xD0]) // mov ss,ax    ; stack just below 0000:7C00 ...
        .emit(&[0xBC, 0x00, 0x7C]) // mov sp,0x7C00
        .emit(&[0xFB]) // sti                ; ... then interrupts back on (int 10h needs them)
        .emit(&[0xFC]) // cld                ; lodsb counts upwards
        // call here: E8 rel16 with displacement 0 = "call the next instruction",
        // which pushes the IP of `here`, so the `pop` below learns where we run.
        .emit(&[0xE8, 0x00, 0x00])
        .label("here")
        .emit(&[0x5E]) // pop si             ; SI = CS-relative offset of `here`
        .diff16(&[0x81, 0xC6], "msg", "here") // add si, msg-here ; SI -> message
        .diff16(&[0xB9], "msg_end", "msg") // mov cx, msg_end-msg ; byte count
        .emit(&[0x56]) // push si
        .emit(&[0x51]) // push cx
        // Pass 1: the whole string through the video BIOS teletype. Under
        // `-nographic` SeaBIOS mirrors the screen to COM1 lazily, flushing
        // on timer ticks: that copy is complete only if interrupts keep
        // running, and it would interleave with our own COM1 writes if
        // those came while it still had characters pending (a loaded CI
        // box saw both: "capmedia ." and a copy cut at "boote").
        .label("vid_next")
        .emit(&[0xAC]) // lodsb
        .emit(&[0x60]) // pusha               ; the video BIOS may clobber registers
        .emit(&[0xB4, 0x0E]) // mov ah,0x0E  ; int 10h teletype output of AL
        .emit(&[0xBB, 0x07, 0x00]) // mov bx,0x0007 ; page 0, light grey
        .emit(&[0xCD, 0x10]) // int 0x10
        .emit(&[0x61]) // popa
        .rel8(&[0xE2], "vid_next") // loop vid_next
        // So wait 4 timer ticks (about 220 ms) with interrupts on: the
        // BIOS tick count at 0040:006C, counted modulo 2^16.
        .emit(&[0xB8, 0x40, 0x00]) // mov ax,0x40
        .emit(&[0x8E, 0xC0]) // mov es,ax
        .emit(&[0x26, 0x8B, 0x1E, 0x6C, 0x00]) // mov bx,[es:0x6C] ; ticks at the start
        .label("tick_wait")
        .emit(&[0xFB]) // sti
        .emit(&[0xF4]) // hlt                 ; until the next interrupt
        .emit(&[0x26, 0xA1, 0x6C, 0x00]) // mov ax,[es:0x6C]
        .emit(&[0x29, 0xD8]) // sub ax,bx    ; ticks gone by
        .emit(&[0x83, 0xF8, 0x04]) // cmp ax,4
        .rel8(&[0x72], "tick_wait") // jb tick_wait
        .emit(&[0x59]) // pop cx
        .emit(&[0x5E]) // pop si
        // Pass 2: the whole string to COM1 ourselves, now that the mirror
        // is quiet.
        .label("ser_next")
        .emit(&[0xBA, 0xFD, 0x03]) // mov dx,0x3FD ; COM1 line status register
        .label("ser_wait")
        .emit(&[0xEC]) // in al,dx
        .emit(&[0xA8, 0x20]) // test al,0x20 ; bit 5 = transmit holding register empty
        .rel8(&[0x74], "ser_wait") // jz ser_wait
        .emit(&[0xAC]) // lodsb              ; AL = [DS:SI], SI += 1
        .emit(&[0xBA, 0xF8, 0x03]) // mov dx,0x3F8 ; COM1 transmit holding register
        .emit(&[0xEE]) // out dx,al           ; character to the serial port
        .rel8(&[0xE2], "ser_next") // loop ser_next ; CX -= 1, again while CX != 0
        // Halt for good, interrupts on so the BIOS can still flush its
        // mirror; a wake-up halts again.
        .label("done")
        .emit(&[0xFB]) // sti
        .emit(&[0xF4]) // hlt
        .rel8(&[0xEB], "done"); // jmp done
    a.label("msg");
    let room = BIOS_BOOT_SIZE - a.bytes.len() - 2;
    a.emit(truncate(marker, room).as_bytes())
        .emit(b"\r\n")
        .label("msg_end");
    let mut out = a.finish();
    out.resize(BIOS_BOOT_SIZE, 0);
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
