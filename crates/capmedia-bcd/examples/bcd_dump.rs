//! Prints a BCD store as `bcdedit /enum all` would, or writes the Windows PE
//! store: `bcd_dump FILE` / `bcd_dump --write-pe bios|uefi LABEL OUT`.
use capmedia_bcd::{pe_ramdisk_store, Firmware, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--write-pe") {
        let fw = if args.get(1).map(String::as_str) == Some("uefi") {
            Firmware::Uefi
        } else {
            Firmware::Bios
        };
        let label = args.get(2).ok_or("label")?;
        let out = args.get(3).ok_or("out")?;
        std::fs::write(
            out,
            pe_ramdisk_store(fw, label, capmedia_regf::filetime_from_unix(0))?,
        )?;
        return Ok(());
    }
    let path = args.first().ok_or("usage: bcd_dump FILE")?;
    let store = Store::from_hive(&std::fs::read(path)?)?;
    print!("{store}");
    Ok(())
}
