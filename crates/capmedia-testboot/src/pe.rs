//! A minimal PE/COFF image writer: DOS header, PE signature, COFF file header,
//! optional header (PE32 or PE32+), and two sections, `.text` and `.reloc`.
//! Field meanings and offsets follow the Microsoft PE/COFF specification
//! ("PE Format", sections 2-6); the comments name each field.

/// `IMAGE_FILE_MACHINE_I386`.
pub const MACHINE_X86: u16 = 0x014C;
/// `IMAGE_FILE_MACHINE_AMD64`.
pub const MACHINE_X64: u16 = 0x8664;
/// `IMAGE_FILE_MACHINE_ARM64`.
pub const MACHINE_ARM64: u16 = 0xAA64;
/// `IMAGE_FILE_MACHINE_ARMNT` (Thumb-2, what 32-bit ARM Windows/UEFI images use).
pub const MACHINE_ARMNT: u16 = 0x01C4;
/// `IMAGE_FILE_MACHINE_IA64`.
pub const MACHINE_IA64: u16 = 0x0200;

/// Optional-header magic of a PE32 image.
pub const MAGIC_PE32: u16 = 0x10B;
/// Optional-header magic of a PE32+ (64-bit) image.
pub const MAGIC_PE32_PLUS: u16 = 0x20B;
/// `IMAGE_SUBSYSTEM_EFI_APPLICATION`.
pub const SUBSYSTEM_EFI_APPLICATION: u16 = 10;
/// `IMAGE_SUBSYSTEM_WINDOWS_CUI`.
pub const SUBSYSTEM_WINDOWS_CUI: u16 = 3;

/// Section alignment in memory: one 4 KiB page, so firmware that maps sections
/// with page permissions (OVMF's memory protection) can do so.
pub const SECTION_ALIGNMENT: u32 = 0x1000;
/// Section alignment in the file: 512, the spec's default and minimum for images
/// whose section alignment is at least a page.
pub const FILE_ALIGNMENT: u32 = 0x200;

/// Offset of the PE signature (`e_lfanew`): right after the 64-byte DOS header.
const PE_OFFSET: usize = 0x40;

/// What varies between the images this crate makes.
#[derive(Debug, Clone)]
pub(crate) struct PeSpec<'a> {
    pub machine: u16,
    /// COFF `Characteristics` (IMAGE_FILE_*).
    pub characteristics: u16,
    pub subsystem: u16,
    pub subsystem_version: (u16, u16),
    pub os_version: (u16, u16),
    pub dll_characteristics: u16,
    /// Contents of `.text` (code and read-only data; no writable data needed).
    pub text: &'a [u8],
    /// Entry point as an offset into `.text`, or `None` for "no entry point"
    /// (allowed for DLLs: `AddressOfEntryPoint` = 0).
    pub entry: Option<u32>,
}

/// True when `machine` uses the PE32+ optional header (64-bit address space).
pub fn is_pe32_plus(machine: u16) -> bool {
    matches!(machine, MACHINE_X64 | MACHINE_ARM64 | MACHINE_IA64)
}

fn align(v: u32, a: u32) -> u32 {
    v.div_ceil(a) * a
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Builds the image. `text` must be small (the crate caps markers), so all
/// sizes fit in u32.
pub(crate) fn build(spec: &PeSpec<'_>) -> Vec<u8> {
    let plus = is_pe32_plus(spec.machine);
    let opt_size: usize = if plus { 240 } else { 224 };
    let coff = PE_OFFSET + 4; // COFF file header follows the "PE\0\0" signature
    let opt = coff + 20; // optional header follows the 20-byte COFF header
    let sections = opt + opt_size; // section table follows the optional header
    let n_sections = 2usize;
    let headers_end = sections + n_sections * 40;
    let size_of_headers = align(headers_end as u32, FILE_ALIGNMENT);

    let text_len = spec.text.len() as u32;
    let text_rva = SECTION_ALIGNMENT; // first page after the headers
    let text_raw = align(text_len.max(1), FILE_ALIGNMENT);
    let text_ptr = size_of_headers;

    // .reloc: one base-relocation block with no entries (PageRVA = .text,
    // SizeOfBlock = 8, just the block header). The code is position-independent,
    // so nothing needs fixing up; but an image *with* a relocation directory is
    // one the loader may place anywhere (RELOCS_STRIPPED stays clear).
    let reloc_block: [u8; 8] = {
        let mut r = [0u8; 8];
        put32(&mut r, 0, text_rva); // PageRVA
        put32(&mut r, 4, 8); // SizeOfBlock: header only, zero type/offset entries
        r
    };
    let reloc_rva = text_rva + align(text_len.max(1), SECTION_ALIGNMENT);
    let reloc_raw = FILE_ALIGNMENT;
    let reloc_ptr = text_ptr + text_raw;
    let size_of_image = reloc_rva + align(reloc_block.len() as u32, SECTION_ALIGNMENT);

    let file_len = (reloc_ptr + reloc_raw) as usize;
    let mut b = vec![0u8; file_len];

    // --- DOS header (IMAGE_DOS_HEADER): only e_magic and e_lfanew matter.
    b[0..2].copy_from_slice(b"MZ"); // e_magic
    put32(&mut b, 0x3C, PE_OFFSET as u32); // e_lfanew: file offset of the PE signature

    // --- PE signature.
    b[PE_OFFSET..PE_OFFSET + 4].copy_from_slice(b"PE\0\0");

    // --- COFF file header.
    put16(&mut b, coff, spec.machine); // Machine
    put16(&mut b, coff + 2, n_sections as u16); // NumberOfSections
    put32(&mut b, coff + 4, 0); // TimeDateStamp: 0 keeps the output reproducible
    put32(&mut b, coff + 8, 0); // PointerToSymbolTable: none (images carry no COFF symbols)
    put32(&mut b, coff + 12, 0); // NumberOfSymbols
    put16(&mut b, coff + 16, opt_size as u16); // SizeOfOptionalHeader
    put16(&mut b, coff + 18, spec.characteristics); // Characteristics

    // --- Optional header, standard fields.
    put16(&mut b, opt, if plus { MAGIC_PE32_PLUS } else { MAGIC_PE32 }); // Magic
    b[opt + 2] = 1; // MajorLinkerVersion (informational)
    b[opt + 3] = 0; // MinorLinkerVersion
    put32(&mut b, opt + 4, text_raw); // SizeOfCode: sum of code sections' raw sizes
    put32(&mut b, opt + 8, reloc_raw); // SizeOfInitializedData: .reloc
    put32(&mut b, opt + 12, 0); // SizeOfUninitializedData: no .bss
    let entry = spec.entry.map_or(0, |e| text_rva + e);
    put32(&mut b, opt + 16, entry); // AddressOfEntryPoint (RVA)
    put32(&mut b, opt + 20, text_rva); // BaseOfCode
    let mut w = opt + 24; // Windows-specific fields start here (PE32+) ...
    if !plus {
        put32(&mut b, w, reloc_rva); // BaseOfData (PE32 only)
        w += 4;
    }
    // --- Optional header, Windows-specific fields.
    if plus {
        put64(&mut b, w, 0x1_4000_0000); // ImageBase: the usual 64-bit default, 64 KiB aligned
        w += 8;
    } else {
        put32(&mut b, w, 0x0040_0000); // ImageBase: the usual 32-bit default
        w += 4;
    }
    put32(&mut b, w, SECTION_ALIGNMENT); // SectionAlignment
    put32(&mut b, w + 4, FILE_ALIGNMENT); // FileAlignment
    put16(&mut b, w + 8, spec.os_version.0); // MajorOperatingSystemVersion
    put16(&mut b, w + 10, spec.os_version.1); // MinorOperatingSystemVersion
    put16(&mut b, w + 12, 0); // MajorImageVersion
    put16(&mut b, w + 14, 0); // MinorImageVersion
    put16(&mut b, w + 16, spec.subsystem_version.0); // MajorSubsystemVersion
    put16(&mut b, w + 18, spec.subsystem_version.1); // MinorSubsystemVersion
    put32(&mut b, w + 20, 0); // Win32VersionValue: reserved, must be 0
    put32(&mut b, w + 24, size_of_image); // SizeOfImage: multiple of SectionAlignment
    put32(&mut b, w + 28, size_of_headers); // SizeOfHeaders: multiple of FileAlignment
    let checksum_at = w + 32; // CheckSum: filled in last
    put16(&mut b, w + 36, spec.subsystem); // Subsystem
    put16(&mut b, w + 38, spec.dll_characteristics); // DllCharacteristics
    w += 40;
    // SizeOfStackReserve/Commit, SizeOfHeapReserve/Commit (ignored by UEFI).
    for v in [0x10_0000u64, 0x1000, 0x10_0000, 0x1000] {
        if plus {
            put64(&mut b, w, v);
            w += 8;
        } else {
            put32(&mut b, w, v as u32);
            w += 4;
        }
    }
    put32(&mut b, w, 0); // LoaderFlags: reserved, 0
    put32(&mut b, w + 4, 16); // NumberOfRvaAndSizes: all 16 directories present
    let dirs = w + 8;
    debug_assert_eq!(dirs + 16 * 8, sections);
    // Data directory 5 = base relocation table: our empty block in .reloc.
    put32(&mut b, dirs + 5 * 8, reloc_rva);
    put32(&mut b, dirs + 5 * 8 + 4, reloc_block.len() as u32);

    // --- Section table.
    let section = |b: &mut Vec<u8>,
                   at: usize,
                   name: &[u8; 8],
                   vsize: u32,
                   rva: u32,
                   raw: u32,
                   ptr: u32,
                   ch: u32| {
        b[at..at + 8].copy_from_slice(name); // Name (NUL padded)
        put32(b, at + 8, vsize); // VirtualSize: bytes actually used
        put32(b, at + 12, rva); // VirtualAddress: multiple of SectionAlignment
        put32(b, at + 16, raw); // SizeOfRawData: multiple of FileAlignment
        put32(b, at + 20, ptr); // PointerToRawData: multiple of FileAlignment
                                // PointerToRelocations, PointerToLinenumbers, NumberOfRelocations,
                                // NumberOfLinenumbers: all 0 in images.
        put32(b, at + 36, ch); // Characteristics
    };
    // CNT_CODE | MEM_EXECUTE | MEM_READ: code and the (read-only) strings.
    section(
        &mut b,
        sections,
        b".text\0\0\0",
        text_len.max(1),
        text_rva,
        text_raw,
        text_ptr,
        0x6000_0020,
    );
    // CNT_INITIALIZED_DATA | MEM_DISCARDABLE | MEM_READ.
    section(
        &mut b,
        sections + 40,
        b".reloc\0\0",
        reloc_block.len() as u32,
        reloc_rva,
        reloc_raw,
        reloc_ptr,
        0x4200_0040,
    );

    // --- Section data.
    let tp = text_ptr as usize;
    b[tp..tp + spec.text.len()].copy_from_slice(spec.text);
    let rp = reloc_ptr as usize;
    b[rp..rp + reloc_block.len()].copy_from_slice(&reloc_block);

    let sum = pe_checksum(&b, checksum_at);
    put32(&mut b, checksum_at, sum);
    b
}

/// The PE image checksum (the algorithm of `imagehlp!CheckSumMappedFile`):
/// add the file as little-endian 16-bit words with end-around carry, treating
/// the CheckSum field itself as zero, then add the file length.
pub fn pe_checksum(file: &[u8], checksum_at: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, chunk) in file.chunks(2).enumerate() {
        let at = i * 2;
        if at >= checksum_at && at < checksum_at + 4 {
            continue;
        }
        let word = u16::from_le_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u64::from(word);
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum = (sum & 0xFFFF) + (sum >> 16);
    (sum as u32).wrapping_add(file.len() as u32)
}
