//! UEFI applications. The x64 one really runs under OVMF; the others are valid
//! images of the right machine type whose entry point just returns EFI_SUCCESS.

use capmedia_content::Arch;

use crate::asm::Asm;
use crate::bios::truncate;
use crate::pe::{self, PeSpec};

/// Longest marker (in bytes) put into an EFI application; longer ones are cut.
pub const MAX_EFI_MARKER: usize = 4096;

// UEFI 2.x, x64 (all pointers 8 bytes):
// EFI_SYSTEM_TABLE: Hdr (EFI_TABLE_HEADER, 24 bytes), FirmwareVendor @24,
// FirmwareRevision @32 (u32, padded), ConsoleInHandle @40, ConIn @48,
// ConsoleOutHandle @56, ConOut @64, StandardErrorHandle @72, StdErr @80,
// RuntimeServices @88, BootServices @96, ...
const ST_CON_OUT: u8 = 64;
const ST_RUNTIME_SERVICES: u8 = 88;
// EFI_SIMPLE_TEXT_OUTPUT_PROTOCOL: Reset @0, OutputString @8, ...
const TEXT_OUTPUT_STRING: u8 = 8;
// EFI_RUNTIME_SERVICES: Hdr (24), GetTime @24, SetTime @32, GetWakeupTime @40,
// SetWakeupTime @48, SetVirtualAddressMap @56, ConvertPointer @64,
// GetVariable @72, GetNextVariableName @80, SetVariable @88,
// GetNextHighMonotonicCount @96, ResetSystem @104.
const RT_RESET_SYSTEM: u8 = 104;
// EFI_RESET_TYPE: EfiResetCold 0, EfiResetWarm 1, EfiResetShutdown 2.
const EFI_RESET_SHUTDOWN: u8 = 2;

/// The PE machine type UEFI uses for `arch` (UEFI spec, table "UEFI Image Types").
pub fn efi_machine(arch: Arch) -> u16 {
    match arch {
        Arch::X86 => pe::MACHINE_X86,
        Arch::X64 => pe::MACHINE_X64,
        Arch::Arm64 => pe::MACHINE_ARM64,
        // UEFI names 0x01C2 (ARM Thumb/Thumb-2 interworking) for 32-bit ARM.
        Arch::Arm => 0x01C2,
        Arch::Ia64 => pe::MACHINE_IA64,
    }
}

/// x64 entry point, `EFI_STATUS efi_main(EFI_HANDLE ImageHandle /*rcx*/,
/// EFI_SYSTEM_TABLE *SystemTable /*rdx*/)`, Microsoft x64 calling convention:
/// arguments in rcx, rdx, r8, r9; the caller reserves 32 bytes of shadow space
/// and calls with RSP 16-byte aligned; rbx, rsi are callee-saved.
/// All data is reached RIP-relatively, so the image needs no relocation.
fn x64_code(marker: &str) -> Vec<u8> {
    let mut a = Asm::new();
    a.emit(&[0x53]) // push rbx          ; callee-saved; RSP now 16-aligned (entry had RSP = 8 mod 16)
        .emit(&[0x56]) // push rsi       ; callee-saved; RSP = 8 mod 16
        .emit(&[0x48, 0x83, 0xEC, 0x28]) // sub rsp,0x28 ; 32 bytes shadow space + 8 to re-align
        .emit(&[0x48, 0x89, 0xD3]) // mov rbx,rdx ; rbx = SystemTable
        // 1) Straight to COM1, so the marker shows even if the console is odd.
        .rel32(&[0x48, 0x8D, 0x35], "ascii") // lea rsi,[rip+ascii]
        .label("ser_next")
        .emit(&[0x66, 0xBA, 0xFD, 0x03]) // mov dx,0x3FD ; COM1 line status register
        .label("ser_wait")
        .emit(&[0xEC]) // in al,dx
        .emit(&[0xA8, 0x20]) // test al,0x20 ; transmit holding register empty?
        .rel8(&[0x74], "ser_wait") // jz ser_wait
        .emit(&[0x8A, 0x06]) // mov al,[rsi]
        .emit(&[0x84, 0xC0]) // test al,al ; NUL ends the string
        .rel8(&[0x74], "con_out") // jz con_out
        .emit(&[0x66, 0xBA, 0xF8, 0x03]) // mov dx,0x3F8 ; COM1 transmit register
        .emit(&[0xEE]) // out dx,al
        .emit(&[0x48, 0xFF, 0xC6]) // inc rsi
        .rel8(&[0xEB], "ser_next") // jmp ser_next
        // 2) SystemTable->ConOut->OutputString(ConOut, L"marker\r\n").
        .label("con_out")
        .emit(&[0x48, 0x8B, 0x4B, ST_CON_OUT]) // mov rcx,[rbx+64] ; This = ConOut
        .rel32(&[0x48, 0x8D, 0x15], "utf16") // lea rdx,[rip+utf16] ; String
        .emit(&[0xFF, 0x51, TEXT_OUTPUT_STRING]) // call [rcx+8] ; OutputString
        // 3) SystemTable->RuntimeServices->ResetSystem(EfiResetShutdown, EFI_SUCCESS, 0, NULL):
        //    OVMF powers the VM off through the ACPI PM registers and qemu exits.
        .emit(&[0x48, 0x8B, 0x43, ST_RUNTIME_SERVICES]) // mov rax,[rbx+88] ; RuntimeServices
        .emit(&[0xB9, EFI_RESET_SHUTDOWN, 0, 0, 0]) // mov ecx,2 ; ResetType
        .emit(&[0x31, 0xD2]) // xor edx,edx ; ResetStatus = EFI_SUCCESS
        .emit(&[0x45, 0x31, 0xC0]) // xor r8d,r8d ; DataSize = 0
        .emit(&[0x45, 0x31, 0xC9]) // xor r9d,r9d ; ResetData = NULL
        .emit(&[0xFF, 0x50, RT_RESET_SYSTEM]) // call [rax+104] ; ResetSystem (does not return)
        .label("hang")
        .emit(&[0xF4]) // hlt             ; should ResetSystem ever return
        .rel8(&[0xEB], "hang"); // jmp hang
                                // Data. ASCII copy for the serial port (NUL-terminated; NULs in the
                                // marker are dropped so they cannot cut it short).
    let text: String = marker.chars().filter(|&c| c != '\0').collect();
    let text = format!("{}\r\n", truncate(&text, MAX_EFI_MARKER));
    a.label("ascii").emit(text.as_bytes()).emit(&[0]);
    // CHAR16 copy for OutputString (UCS-2, NUL-terminated, 2-byte aligned).
    if a.bytes.len() % 2 == 1 {
        a.emit(&[0]);
    }
    a.label("utf16");
    for u in text.encode_utf16() {
        a.emit(&u.to_le_bytes());
    }
    a.emit(&[0, 0]);
    a.finish()
}

/// `xor eax,eax; ret`: EFI_SUCCESS under both i386 (cdecl) and x64 conventions.
const X86_RETURN_SUCCESS: &[u8] = &[0x31, 0xC0, 0xC3];
/// AArch64 `mov x0,#0` (0xD2800000) then `ret` (0xD65F03C0), little-endian.
const ARM64_RETURN_SUCCESS: &[u8] = &[0x00, 0x00, 0x80, 0xD2, 0xC0, 0x03, 0x5F, 0xD6];
/// Thumb-2 `movs r0,#0` (0x2000) then `bx lr` (0x4770).
const THUMB_RETURN_SUCCESS: &[u8] = &[0x00, 0x20, 0x70, 0x47];

/// See [`crate::efi_app`].
pub fn efi_app(arch: Arch, marker: &str) -> Vec<u8> {
    let machine = efi_machine(arch);
    let code;
    let (text, entry): (&[u8], u32) = match arch {
        Arch::X64 => {
            code = x64_code(marker);
            (&code, 0)
        }
        Arch::X86 => (X86_RETURN_SUCCESS, 0),
        Arch::Arm64 => (ARM64_RETURN_SUCCESS, 0),
        // Thumb code: entry address has bit 0 set, as for any Thumb branch target.
        Arch::Arm => (THUMB_RETURN_SUCCESS, 1),
        // IA64 entry points are function descriptors; a placeholder body will do,
        // we only ever need the header of such an image.
        Arch::Ia64 => (&[0u8; 16], 0),
    };
    // EXECUTABLE_IMAGE (0x0002), plus LARGE_ADDRESS_AWARE (0x0020) for PE32+ or
    // 32BIT_MACHINE (0x0100) for PE32. RELOCS_STRIPPED (0x0001) stays clear so
    // the loader may relocate the image.
    let characteristics = 0x0002
        | if pe::is_pe32_plus(machine) {
            0x0020
        } else {
            0x0100
        };
    pe::build(&PeSpec {
        machine,
        characteristics,
        subsystem: pe::SUBSYSTEM_EFI_APPLICATION,
        subsystem_version: (0, 0),
        os_version: (0, 0),
        // DYNAMIC_BASE: may be loaded at any address.
        dll_characteristics: 0x0040,
        text,
        entry: Some(entry),
    })
}

/// See [`crate::pe_stub`].
pub fn pe_stub(machine: u16) -> Vec<u8> {
    let text: &[u8] = match machine {
        pe::MACHINE_ARM64 => ARM64_RETURN_SUCCESS,
        pe::MACHINE_ARMNT | 0x01C2 => THUMB_RETURN_SUCCESS,
        _ => X86_RETURN_SUCCESS,
    };
    // EXECUTABLE_IMAGE | DLL (0x2000), plus LARGE_ADDRESS_AWARE / 32BIT_MACHINE.
    let characteristics = 0x2002
        | if pe::is_pe32_plus(machine) {
            0x0020
        } else {
            0x0100
        };
    pe::build(&PeSpec {
        machine,
        characteristics,
        subsystem: pe::SUBSYSTEM_WINDOWS_CUI,
        subsystem_version: (6, 0),
        os_version: (6, 0),
        // DYNAMIC_BASE | NX_COMPAT, as every modern system DLL.
        dll_characteristics: 0x0140,
        text,
        // No DllMain: AddressOfEntryPoint = 0 is allowed for DLLs.
        entry: None,
    })
}
