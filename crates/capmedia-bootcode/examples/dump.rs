//! Writes the boot code to files for disassembly:
//! `cargo run -p capmedia-bootcode --example dump -- DIR` writes
//! DIR/mbr.bin (440 bytes, origin 0x600), DIR/vbr.bin (420 bytes, origin
//! 0x7C5A) and DIR/stage2.bin (512 bytes, origin 0x7E00); e.g.
//! `objdump -D -b binary -mi8086 --adjust-vma=0x7c5a DIR/vbr.bin`.

fn main() -> std::io::Result<()> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    std::fs::write(dir.join("mbr.bin"), capmedia_bootcode::mbr_code())?;
    std::fs::write(dir.join("vbr.bin"), capmedia_bootcode::fat32_boot_code())?;
    std::fs::write(dir.join("stage2.bin"), capmedia_bootcode::fat32_stage2())?;
    Ok(())
}
