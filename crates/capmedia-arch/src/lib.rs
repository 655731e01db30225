//! Reads a boot image's architecture from the files themselves, and decides
//! whether it suits the target computer.
//!
//! capmedia does not trust package names or metadata for the architecture:
//! it reads the WIM's XML data (`<ARCH>` of every image, the boot index) and
//! the machine field of PE files such as `bootmgr.efi` and
//! `efi/boot/boot*.efi`. Nothing is decompressed; every size read from a
//! file is bounded before it is used, and every malformed field is a typed
//! [`ArchError`]. The WIM header and XML resource are read by
//! capmedia-wim (the workspace's one WIM parser); this crate keeps the
//! architecture rules.
//!
//! - [`read_wim`] / [`read_pe`]: parse from any `Read + Seek`.
//! - [`inspect`]: detect by magic and report (JSON via serde, text via `Display`).
//! - [`image_suits_target`], [`uefi_loader_suits_image`]: the rules.

mod error;
mod inspect;
pub mod pe;
mod rules;
pub mod wim;

pub use error::ArchError;
pub use inspect::{inspect, inspect_reader, Inspection, PeInspection, WimInspection};
pub use pe::{arch_from_machine, read_pe, PeInfo};
pub use rules::{
    allowed_images, image_suits_target, target_rule, uefi_loader_suits_image, ArchMismatch,
};
pub use wim::{read_wim, read_wim_with_limit, WimHeader, WimImage, WimInfo, DEFAULT_MAX_XML_SIZE};

pub use capmedia_content::Arch;
