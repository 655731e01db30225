//! Which boot image suits which target computer, and which UEFI loader suits
//! which boot image.
//!
//! These are the Configuration Manager wizard's first rule, made checkable:
//! media whose boot image the target cannot start is useless, and the user
//! only finds out at the reference computer. So capmedia refuses it up front,
//! with a message that names both architectures and the rule.

use capmedia_content::Arch;
use thiserror::Error;

/// Why a boot image (or its UEFI loader) does not suit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ArchMismatch {
    /// The target computer cannot start this boot image.
    #[error("the boot image is {image} but the target computer is {target}: {}", target_rule(*target))]
    ImageForTarget {
        /// The target computer's architecture.
        target: Arch,
        /// The boot image's architecture.
        image: Arch,
    },
    /// capmedia builds no media for this target.
    #[error("the target architecture {target} is not supported (boot image is {image}): capmedia builds media for x86, x64 and arm64 computers")]
    UnsupportedTarget {
        /// The target computer's architecture.
        target: Arch,
        /// The boot image's architecture.
        image: Arch,
    },
    /// capmedia builds no media for this boot image architecture.
    #[error("the boot image is {image}, which capmedia does not support: boot images must be x86, x64 or arm64")]
    UnsupportedImage {
        /// The boot image's architecture.
        image: Arch,
    },
    /// The UEFI loader's machine type is not the boot image's.
    #[error("the UEFI loader {loader_name} is {loader} code but the boot image is {image}: an {image} boot image needs an {image} {}", image.uefi_boot_file())]
    LoaderMachine {
        /// The boot image's architecture.
        image: Arch,
        /// The loader's file name as given.
        loader_name: String,
        /// The loader's PE machine.
        loader: Arch,
    },
    /// The UEFI loader's file name is not the one firmware of the image's
    /// architecture looks for (`efi/boot/boot<arch>.efi`).
    #[error("the UEFI loader is named {loader_name} but the boot image is {image}: {image} firmware starts {}", image.uefi_boot_file())]
    LoaderName {
        /// The boot image's architecture.
        image: Arch,
        /// The loader's file name as given.
        loader_name: String,
    },
}

/// The rule for one target, in words.
pub fn target_rule(target: Arch) -> &'static str {
    match target {
        Arch::X64 => "an x64 computer boots x86 or x64 boot images",
        Arch::X86 => "an x86 computer boots only x86 boot images",
        Arch::Arm64 => "an arm64 computer boots only arm64 boot images",
        Arch::Arm | Arch::Ia64 => "capmedia builds media only for x86, x64 and arm64 computers",
    }
}

/// The boot image architectures a target computer can start.
///
/// See [`image_suits_target`] for the table.
pub fn allowed_images(target: Arch) -> &'static [Arch] {
    match target {
        Arch::X64 => &[Arch::X86, Arch::X64],
        Arch::X86 => &[Arch::X86],
        Arch::Arm64 => &[Arch::Arm64],
        Arch::Arm | Arch::Ia64 => &[],
    }
}

/// Whether a boot image of architecture `image` suits a target computer of
/// architecture `target`.
///
/// | target ↓ / image → | x86 | x64 | arm64 | arm | ia64 |
/// |---|---|---|---|---|---|
/// | **x64**   | ok | ok | no | no | no |
/// | **x86**   | ok | no | no | no | no |
/// | **arm64** | no | no | ok | no | no |
/// | **arm**   | refused | refused | refused | refused | refused |
/// | **ia64**  | refused | refused | refused | refused | refused |
///
/// "no" is [`ArchMismatch::ImageForTarget`]; "refused" is
/// [`ArchMismatch::UnsupportedTarget`] (capmedia builds no media for arm or
/// ia64 computers).
///
/// This is Configuration Manager's rule: an x64 computer can run 32-bit x86
/// Windows PE, so x86 boot images serve both; arm64 computers need arm64
/// images (nothing emulates another architecture at boot time). arm and ia64 are recognised in
/// WIMs and PE files but capmedia builds no media for them.
pub fn image_suits_target(target: Arch, image: Arch) -> Result<(), ArchMismatch> {
    if !target.is_supported() {
        return Err(ArchMismatch::UnsupportedTarget { target, image });
    }
    if allowed_images(target).contains(&image) {
        Ok(())
    } else {
        Err(ArchMismatch::ImageForTarget { target, image })
    }
}

/// Whether a UEFI loader suits a boot image: its PE machine must be the
/// image's architecture, and its file name the one that architecture's
/// firmware looks for.
///
/// | image | loader name | loader machine |
/// |---|---|---|
/// | x64   | `bootx64.efi`  | x64 (0x8664) |
/// | x86   | `bootia32.efi` | x86 (0x014C) |
/// | arm64 | `bootaa64.efi` | arm64 (0xAA64) |
///
/// `loader_name` may be a path (`efi/boot/BOOTX64.EFI`, either separator);
/// its last component is compared case-insensitively, as FAT does.
/// Unsupported image architectures are refused.
pub fn uefi_loader_suits_image(
    image: Arch,
    loader_name: &str,
    loader_machine: Arch,
) -> Result<(), ArchMismatch> {
    if !image.is_supported() {
        return Err(ArchMismatch::UnsupportedImage { image });
    }
    if loader_machine != image {
        return Err(ArchMismatch::LoaderMachine {
            image,
            loader_name: loader_name.to_owned(),
            loader: loader_machine,
        });
    }
    let file = loader_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(loader_name);
    if !file.eq_ignore_ascii_case(image.uefi_boot_file()) {
        return Err(ArchMismatch::LoaderName {
            image,
            loader_name: loader_name.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every (target, image) pair, against the table in the doc comment.
    #[test]
    fn rule_table_every_pair() {
        use Arch::*;
        let table: [(Arch, [bool; 5]); 5] = [
            // image order: X86, X64, Arm64, Arm, Ia64 (= Arch::ALL)
            (X64, [true, true, false, false, false]),
            (X86, [true, false, false, false, false]),
            (Arm64, [false, false, true, false, false]),
            (Arm, [false; 5]),
            (Ia64, [false; 5]),
        ];
        assert_eq!(Arch::ALL, [X86, X64, Arm64, Arm, Ia64]);
        let mut checked = 0;
        for target in Arch::ALL {
            let row = table.iter().find(|(t, _)| *t == target).unwrap().1;
            for (i, image) in Arch::ALL.into_iter().enumerate() {
                let got = image_suits_target(target, image);
                assert_eq!(
                    got.is_ok(),
                    row[i],
                    "target {target}, image {image}: {got:?}"
                );
                if let Err(e) = got {
                    let msg = e.to_string();
                    assert!(msg.contains(image.as_str()), "{msg}");
                    assert!(msg.contains(target.as_str()), "{msg}");
                    if target.is_supported() {
                        assert_eq!(e, ArchMismatch::ImageForTarget { target, image });
                        assert!(msg.contains(target_rule(target)), "{msg}");
                    } else {
                        assert_eq!(e, ArchMismatch::UnsupportedTarget { target, image });
                        assert!(msg.contains("not supported"), "{msg}");
                    }
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 25);
    }

    #[test]
    fn mismatch_message_names_both_and_the_rule() {
        let e = image_suits_target(Arch::X86, Arch::X64).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the boot image is x64 but the target computer is x86: an x86 computer boots only x86 boot images"
        );
    }

    #[test]
    fn loader_rules() {
        for image in Arch::ALL {
            for machine in Arch::ALL {
                for name in Arch::ALL.map(|a| a.uefi_boot_file()) {
                    let got = uefi_loader_suits_image(
                        image,
                        &format!("EFI/BOOT/{}", name.to_uppercase()),
                        machine,
                    );
                    let want =
                        image.is_supported() && machine == image && name == image.uefi_boot_file();
                    assert_eq!(got.is_ok(), want, "{image} {machine} {name}: {got:?}");
                }
            }
        }
        let e = uefi_loader_suits_image(Arch::X64, "bootx64.efi", Arch::X86).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the UEFI loader bootx64.efi is x86 code but the boot image is x64: an x64 boot image needs an x64 bootx64.efi"
        );
        let e =
            uefi_loader_suits_image(Arch::X86, "efi\\boot\\bootx64.efi", Arch::X86).unwrap_err();
        assert!(matches!(e, ArchMismatch::LoaderName { .. }));
        assert!(e.to_string().contains("bootia32.efi"));
        assert!(uefi_loader_suits_image(Arch::Arm64, "bootaa64.efi", Arch::Arm64).is_ok());
        assert!(matches!(
            uefi_loader_suits_image(Arch::Ia64, "bootia64.efi", Arch::Ia64),
            Err(ArchMismatch::UnsupportedImage { .. })
        ));
    }
}
