//! The Windows registry hive format (regf): one job, read and write hive files.
//!
//! A Boot Configuration Data store is a registry hive, and capmedia writes BCD
//! stores on Linux, so it needs a hive writer that Windows' boot manager and
//! `bcdedit` accept, and a reader for stores that Windows wrote. No crate on
//! crates.io writes hives (the readers there are forensic parsers with large
//! dependency trees and no bounds on hostile input), so this one is written by
//! hand from the public format description ("Windows registry file format
//! specification", Maxim Suhanov).
//!
//! - [`Key`] / [`Value`] / [`ValueType`]: the tree, independent of the format.
//! - [`read`] / [`read_with_limits`]: parse a hive into a [`Hive`]. Every cell
//!   offset and size is checked against the hive bins, keys are visited once
//!   (a visited set breaks cycles), depth, key, value and byte counts are
//!   capped, and every fault is a typed [`RegfError`]; nothing panics.
//! - [`write`]: a deterministic writer (same tree and options, same bytes):
//!   base block with checksum, 4 KiB hive bins, one shared security
//!   descriptor, `lh` (1.5) or `lf` (1.3) subkey lists sorted as Windows sorts
//!   them, `ri` index roots above [`LEAF_MAX`] subkeys, small values in the
//!   offset field and big-data (`db`) records for values over
//!   [`BIG_DATA_SEGMENT`] bytes in 1.5 hives.

mod error;
mod names;
mod read;
mod write;

pub use error::RegfError;
pub use names::{lh_hash, upcase_name};
pub use read::{read, read_with_limits, Hive, ReadLimits, SecurityCell};
pub use write::{write, WriteOptions, DEFAULT_SECURITY_DESCRIPTOR};

use serde::Serialize;

/// Largest value stored in one cell in a 1.4+ hive; larger data goes into a
/// big-data (`db`) record of segments of this size.
pub const BIG_DATA_SEGMENT: usize = 16344;

/// Most subkeys the writer puts in one `lh`/`lf` leaf before it splits the
/// list under an `ri` index root (a leaf of this size still fits one 4 KiB bin).
pub const LEAF_MAX: usize = 500;

/// Longest key name Windows accepts, in UTF-16 code units.
pub const MAX_KEY_NAME: usize = 255;

/// Longest value name Windows accepts, in UTF-16 code units.
pub const MAX_VALUE_NAME: usize = 16383;

/// A registry value type (`REG_*`). Unknown types are kept as their number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ValueType(pub u32);

impl ValueType {
    pub const NONE: Self = Self(0);
    pub const SZ: Self = Self(1);
    pub const EXPAND_SZ: Self = Self(2);
    pub const BINARY: Self = Self(3);
    pub const DWORD: Self = Self(4);
    pub const DWORD_BIG_ENDIAN: Self = Self(5);
    pub const LINK: Self = Self(6);
    pub const MULTI_SZ: Self = Self(7);
    pub const RESOURCE_LIST: Self = Self(8);
    pub const FULL_RESOURCE_DESCRIPTOR: Self = Self(9);
    pub const RESOURCE_REQUIREMENTS_LIST: Self = Self(10);
    pub const QWORD: Self = Self(11);

    /// The `REG_*` name, or `None` for a type Windows does not define.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "REG_NONE",
            1 => "REG_SZ",
            2 => "REG_EXPAND_SZ",
            3 => "REG_BINARY",
            4 => "REG_DWORD",
            5 => "REG_DWORD_BIG_ENDIAN",
            6 => "REG_LINK",
            7 => "REG_MULTI_SZ",
            8 => "REG_RESOURCE_LIST",
            9 => "REG_FULL_RESOURCE_DESCRIPTOR",
            10 => "REG_RESOURCE_REQUIREMENTS_LIST",
            11 => "REG_QWORD",
            _ => return None,
        })
    }
}

/// A named value: its type and raw data (strings are UTF-16LE as stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Value {
    /// Empty for the key's default value.
    pub name: String,
    pub kind: ValueType,
    pub data: Vec<u8>,
}

impl Value {
    pub fn new(name: impl Into<String>, kind: ValueType, data: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            kind,
            data,
        }
    }

    /// A `REG_SZ` holding `text` with its terminating NUL, as Windows stores it.
    pub fn string(name: impl Into<String>, text: &str) -> Self {
        Self::new(name, ValueType::SZ, utf16z(text))
    }

    /// A `REG_MULTI_SZ`: each string NUL-terminated, then one more NUL.
    pub fn multi_string<S: AsRef<str>>(name: impl Into<String>, items: &[S]) -> Self {
        let mut data = Vec::new();
        for s in items {
            data.extend(utf16z(s.as_ref()));
        }
        data.extend([0, 0]);
        Self::new(name, ValueType::MULTI_SZ, data)
    }

    pub fn dword(name: impl Into<String>, v: u32) -> Self {
        Self::new(name, ValueType::DWORD, v.to_le_bytes().to_vec())
    }

    pub fn qword(name: impl Into<String>, v: u64) -> Self {
        Self::new(name, ValueType::QWORD, v.to_le_bytes().to_vec())
    }

    pub fn binary(name: impl Into<String>, data: Vec<u8>) -> Self {
        Self::new(name, ValueType::BINARY, data)
    }

    /// The data as a string (UTF-16LE up to the first NUL), for `REG_SZ`,
    /// `REG_EXPAND_SZ` and `REG_LINK`; `None` for other types or odd lengths.
    pub fn as_string(&self) -> Option<String> {
        if !matches!(
            self.kind,
            ValueType::SZ | ValueType::EXPAND_SZ | ValueType::LINK
        ) {
            return None;
        }
        let units = utf16_units(&self.data)?;
        let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
        Some(String::from_utf16_lossy(&units[..end]))
    }

    /// The strings of a `REG_MULTI_SZ` (stops at the empty string that ends the list).
    pub fn as_multi_string(&self) -> Option<Vec<String>> {
        if self.kind != ValueType::MULTI_SZ {
            return None;
        }
        let units = utf16_units(&self.data)?;
        let mut out = Vec::new();
        for part in units.split(|&u| u == 0) {
            if part.is_empty() {
                break;
            }
            out.push(String::from_utf16_lossy(part));
        }
        Some(out)
    }

    /// A `REG_DWORD` (or `REG_DWORD_BIG_ENDIAN`) of exactly four bytes.
    pub fn as_dword(&self) -> Option<u32> {
        let b: [u8; 4] = self.data.as_slice().try_into().ok()?;
        match self.kind {
            ValueType::DWORD => Some(u32::from_le_bytes(b)),
            ValueType::DWORD_BIG_ENDIAN => Some(u32::from_be_bytes(b)),
            _ => None,
        }
    }

    /// A `REG_QWORD` of exactly eight bytes.
    pub fn as_qword(&self) -> Option<u64> {
        if self.kind != ValueType::QWORD {
            return None;
        }
        Some(u64::from_le_bytes(self.data.as_slice().try_into().ok()?))
    }
}

/// A key: its name, values and subkeys. Names compare case-insensitively in
/// the registry; the writer refuses two siblings that differ only in case.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Key {
    pub name: String,
    pub values: Vec<Value>,
    pub subkeys: Vec<Key>,
}

impl Key {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Builder: add a value.
    pub fn with_value(mut self, v: Value) -> Self {
        self.values.push(v);
        self
    }

    /// Builder: add a subkey.
    pub fn with_subkey(mut self, k: Key) -> Self {
        self.subkeys.push(k);
        self
    }

    /// The subkey named `name`, compared as Windows compares (case-insensitive).
    pub fn subkey(&self, name: &str) -> Option<&Key> {
        let want = upcase_name(name);
        self.subkeys.iter().find(|k| upcase_name(&k.name) == want)
    }

    /// The value named `name` (case-insensitive).
    pub fn value(&self, name: &str) -> Option<&Value> {
        let want = upcase_name(name);
        self.values.iter().find(|v| upcase_name(&v.name) == want)
    }

    /// The key at a backslash-separated path below this one.
    pub fn path(&self, path: &str) -> Option<&Key> {
        let mut k = self;
        for part in path.split('\\').filter(|p| !p.is_empty()) {
            k = k.subkey(part)?;
        }
        Some(k)
    }
}

/// Whether `bytes` start like a hive file (the `regf` signature): for
/// detecting a file's kind before reading it.
pub fn is_hive(bytes: &[u8]) -> bool {
    bytes.starts_with(b"regf")
}

/// `text` as UTF-16LE with a terminating NUL.
pub fn utf16z(text: &str) -> Vec<u8> {
    let mut out: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    out.extend([0, 0]);
    out
}

fn utf16_units(data: &[u8]) -> Option<Vec<u16>> {
    if !data.len().is_multiple_of(2) {
        return None;
    }
    Some(
        data.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect(),
    )
}

/// Seconds since 1970-01-01 (e.g. `SOURCE_DATE_EPOCH`) as a Windows FILETIME
/// (100 ns units since 1601-01-01); negative times clamp to 1970.
pub fn filetime_from_unix(secs: i64) -> u64 {
    const EPOCH_DIFF: u64 = 11_644_473_600;
    (secs.max(0) as u64)
        .saturating_add(EPOCH_DIFF)
        .saturating_mul(10_000_000)
}
