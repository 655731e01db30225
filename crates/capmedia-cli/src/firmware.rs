//! Which firmware each output boots on (issue 19): MBR disks carry
//! capmedia's BIOS boot code and an EFI boot folder, so they boot on BIOS
//! and UEFI computers; GPT disks boot on UEFI only; ISO sets have El Torito
//! images for both. Said by the dry run and the report (a note),
//! `capmedia devices` and README.

use std::collections::BTreeMap;

use capmedia_sink::SinkInfo;

/// What `usb-raw` writes to a drive by default, for `capmedia devices`.
pub const USB_RAW: &str = "usb-raw writes an MBR disk by default: it boots on BIOS and UEFI \
     computers (--partition-scheme gpt: UEFI only)";

/// The note for a capture with `sink` and its `options`, or `None` for a
/// sink capmedia does not ship (its firmware is its own business).
pub fn note(info: &SinkInfo, options: &BTreeMap<String, String>) -> Option<String> {
    let scheme = options.get("partition-scheme").cloned().or_else(|| {
        info.options
            .iter()
            .find(|o| o.name == "partition-scheme")
            .and_then(|o| o.default.clone())
    });
    let gpt = scheme
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("gpt"));
    let text = match (info.name.as_str(), gpt) {
        ("iso-set", _) => {
            "boots on BIOS and UEFI computers (El Torito: a BIOS and a UEFI boot image)".into()
        }
        ("usb-raw", false) => "boots on BIOS and UEFI computers (MBR disk: capmedia's BIOS boot \
             code on an active FAT32 partition, and efi/boot for UEFI)"
            .to_string(),
        ("vhd", false) => "boots on BIOS and UEFI computers (MBR disk: capmedia's BIOS boot code \
             on an active FAT32 partition, and efi/boot for UEFI); Hyper-V: a generation 1 \
             virtual machine boots it by BIOS"
            .to_string(),
        ("vhdx", false) => "boots on BIOS and UEFI computers (MBR disk: capmedia's BIOS boot \
             code on an active FAT32 partition, and efi/boot for UEFI)"
            .to_string(),
        ("vhdx", true) => "boots on UEFI computers only (GPT disk); Hyper-V: a generation 2 \
             virtual machine (UEFI) boots it"
            .to_string(),
        ("usb-raw" | "vhd", true) => {
            "boots on UEFI computers only (GPT disk: no BIOS boot; --partition-scheme mbr boots \
             on both)"
                .to_string()
        }
        _ => return None,
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use capmedia_sink::SinkOption;

    fn info(name: &str, default_scheme: Option<&str>) -> SinkInfo {
        SinkInfo {
            name: name.into(),
            options: default_scheme
                .map(|d| SinkOption {
                    name: "partition-scheme".into(),
                    values: "mbr|gpt".into(),
                    default: Some(d.into()),
                    help: String::new(),
                })
                .into_iter()
                .collect(),
            ..SinkInfo::default()
        }
    }

    #[test]
    fn mbr_boots_both_gpt_uefi_only_and_the_sink_default_counts() {
        let none = BTreeMap::new();
        let gpt = BTreeMap::from([("partition-scheme".to_string(), "gpt".to_string())]);
        let n = |name, d, o| note(&info(name, d), o).unwrap_or_default();
        assert!(n("usb-raw", Some("mbr"), &none).starts_with("boots on BIOS and UEFI"));
        assert!(n("usb-raw", Some("mbr"), &gpt).starts_with("boots on UEFI computers only"));
        assert!(n("vhd", Some("mbr"), &none).contains("generation 1"));
        assert!(n("vhdx", Some("gpt"), &none).contains("UEFI computers only"));
        assert!(n("vhdx", Some("gpt"), &none).contains("generation 2"));
        assert!(n("iso-set", None, &none).starts_with("boots on BIOS and UEFI"));
        assert_eq!(note(&info("folder", None), &none), None);
    }
}
