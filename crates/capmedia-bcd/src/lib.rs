//! Boot Configuration Data stores: one job, the BCD object model on a
//! registry hive.
//!
//! - [`pe_ramdisk_store`]: the store a Windows PE medium boots through (as
//!   `bcdedit` and the ADK make it for `\sources\boot.wim` in a RAM disk),
//!   for the BIOS boot manager (`/boot/bcd`) or the UEFI one
//!   (`/efi/microsoft/boot/bcd`), byte-for-byte reproducible.
//! - [`Store::from_hive`]: reads any store (also ones Windows wrote) into
//!   objects and decoded elements; `Display` prints it as
//!   `bcdedit /enum all` does, `Serialize` gives JSON.
//!
//! The hive format itself is `capmedia-regf`'s job. Written by hand because
//! no crate models BCD.

mod device;
mod guid;
mod names;
mod pe;
mod store;

pub use device::{Device, DeviceValue};
pub use guid::{well_known, Guid};
pub use names::{element_name, format_of, integer_text, object_kind, Format};
pub use pe::{elements, object_types, pe_ramdisk_objects, pe_ramdisk_store, Firmware};
pub use store::{Element, ElementValue, Object, Store, ROOT_KEY_NAME, STORE_KEY_NAME};

use thiserror::Error;

/// Why a store could not be read or written.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BcdError {
    #[error("registry hive: {0}")]
    Hive(#[from] capmedia_regf::RegfError),
    #[error("not a BCD store: {0}")]
    NotBcd(&'static str),
    #[error("object key {0:?} is not a GUID")]
    ObjectName(String),
    #[error("object {0} has no Description\\Type")]
    ObjectType(String),
    #[error("element key {0:?} is not an 8-digit element id with an Element value")]
    ElementName(String),
}
