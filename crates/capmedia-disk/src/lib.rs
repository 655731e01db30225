//! A whole bootable disk written onto any `Read + Write + Seek` target: a
//! partition table (MBR or GPT, 1 MiB aligned), one FAT32 volume over the
//! rest of the disk whatever its size, the plan's files and `capmedia.json`
//! last; and a reader that finds the FAT partition again and serves its files
//! to `capmedia_manifest::verify`.
//!
//! The crate knows nothing about where the bytes go (an image file, a USB
//! drive, the inside of a VHD): callers hand it a target and a size.
//!
//! fatfs 0.3.6 does the FAT work. What it leaves unset or gets wrong is fixed
//! here with raw writes after it finishes (see [`raw`]): the hidden-sector
//! count, the root volume-label entry, and the `.`/`..` entries of
//! directories. Everything is deterministic: ids derive from the plan's
//! `set_id`, every timestamp is the plan's `source_date_epoch`.

mod check;
mod image_hash;
mod layout;
mod raw;
mod read;
mod stream;
mod write;

pub use crate::stream::{BlockCache, ReadOnly, Slice};
pub use image_hash::{verify_while_syncing, HashingReader};
pub use layout::{
    fat_label, min_disk_size, DiskLayout, FatGeometry, PartitionScheme, ALIGN, MAX_FAT32_FILE,
    MIN_FAT32_CLUSTERS, SECTOR,
};
pub use raw::dos_datetime;
pub use read::{find_fat_partition, DiskReader, FatPartition};
pub use write::{write_disk, WriteStats};

use capmedia_content::MediaPlan;

/// Why a disk cannot be planned, written or read.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{path} is {size} bytes; FAT32 holds files of at most 4 GiB - 1 ({max} bytes)", max = MAX_FAT32_FILE)]
    FileTooLarge { path: String, size: u64 },
    #[error("{path}: {reason}")]
    BadName { path: String, reason: String },
    #[error(
        "the content needs {needed} bytes on FAT32 but a {disk}-byte disk has room for {available}"
    )]
    DoesNotFit {
        needed: u64,
        available: u64,
        disk: u64,
    },
    #[error("a {size}-byte disk is too small for FAT32 (at least {minimum} bytes are needed)")]
    TooSmallForFat32 { size: u64, minimum: u64 },
    #[error("unknown partition scheme {0:?} (expected mbr or gpt)")]
    BadScheme(String),
    #[error("the formatted volume is {0}, not FAT32")]
    NotFat32(String),
    #[error("cannot read {path}: {source}")]
    Source {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} changed since it was planned: {actual} bytes, planned {expected}")]
    SourceChanged {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error("writing the partition table: {0}")]
    PartitionTable(String),
    #[error("no FAT partition found: {0}")]
    NoFatPartition(String),
    /// The FAT volume's structure is damaged or hostile (a cluster chain
    /// that loops, leaves the volume, or does not match a file's size).
    #[error("the FAT volume is damaged: {0}")]
    Corrupt(String),
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Refuses what FAT32 cannot hold, naming the file: files over 4 GiB - 1
/// and names with characters or lengths FAT long names do not allow.
pub fn check_plan(plan: &MediaPlan) -> Result<(), DiskError> {
    for e in &plan.entries {
        let path = e.path.as_str();
        if e.size > MAX_FAT32_FILE {
            return Err(DiskError::FileTooLarge {
                path: path.to_owned(),
                size: e.size,
            });
        }
        for comp in e.path.components() {
            check_name(comp).map_err(|reason| DiskError::BadName {
                path: path.to_owned(),
                reason,
            })?;
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("{name:?} is not a file name"));
    }
    if name.encode_utf16().count() > 255 {
        return Err("a FAT long name has at most 255 characters".into());
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Err("a FAT name cannot end with a dot or space".into());
    }
    for c in name.chars() {
        let ok = matches!(c,
            'a'..='z' | 'A'..='Z' | '0'..='9' | '\u{80}'..='\u{FFFF}'
            | '$' | '%' | '\'' | '-' | '_' | '@' | '~' | '`' | '!' | '(' | ')' | '{' | '}' | '.'
            | ' ' | '+' | ',' | ';' | '=' | '[' | ']' | '^' | '#' | '&');
        if !ok {
            return Err(format!("character {c:?} cannot appear in a FAT name"));
        }
    }
    Ok(())
}

/// 16 bytes derived from the set id and a purpose: disk and partition GUIDs,
/// the MBR signature and the volume id are stable for a plan.
pub(crate) fn derived_id(set_id: &str, purpose: &str) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(b"capmedia-disk/");
    h.update(purpose.as_bytes());
    h.update(b"/");
    h.update(set_id.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

/// Entry points for the fuzz targets in `fuzz/`; not an API.
#[doc(hidden)]
pub mod fuzzing {
    use std::io::{Cursor, Read};

    use crate::DiskReader;

    /// Open `bytes` as a disk, list every folder and read every file. Any
    /// error is fine; a panic or an endless loop is the bug fuzzing looks for.
    pub fn read_all(bytes: &[u8]) {
        let Ok(reader) = DiskReader::open(Cursor::new(bytes)) else {
            return;
        };
        let _ = reader.label();
        let mut dirs = vec![reader.fs.root_dir()];
        let mut buf = vec![0u8; 4096];
        while let Some(dir) = dirs.pop() {
            for entry in dir.iter() {
                let Ok(entry) = entry else { break };
                // By the short name: that is what the chain check skips.
                let name = entry.short_file_name_as_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                if entry.is_dir() {
                    dirs.push(entry.to_dir());
                } else {
                    let mut f = entry.to_file();
                    while let Ok(n) = f.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                    }
                }
            }
        }
    }
}
