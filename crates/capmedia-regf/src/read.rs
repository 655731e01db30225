//! The bounded hive reader.
//!
//! Hostile input is expected: every cell offset is checked to lie inside one
//! hive bin (after its header), every cell size against that bin, every
//! count against the cell that holds it. Keys are visited once (a visited
//! set turns cycles and shared keys into [`RegfError::Cycle`]); depth, key
//! and value counts and value bytes are capped by [`ReadLimits`] and, because
//! cells of a sound hive are never shared, the total of value bytes also by
//! the size of the hive bins, so a small file cannot make the reader
//! allocate much more than its own size.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::write::checksum;
use crate::{Key, RegfError, Value, ValueType, BIG_DATA_SEGMENT};

const BASE_BLOCK: usize = 4096;
const BIN_HEADER: usize = 32;
const NONE: u32 = 0xFFFF_FFFF;

/// Caps on what a hive may make the reader do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Deepest key nesting (Windows allows 512).
    pub max_depth: usize,
    /// Most keys in the tree.
    pub max_keys: usize,
    /// Most values in the tree.
    pub max_values: usize,
    /// Largest single value, in bytes.
    pub max_value_size: usize,
    /// Most value bytes in total (also never more than the hive bins' size).
    pub max_total_value_bytes: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_depth: 512,
            max_keys: 1 << 20,
            max_values: 1 << 22,
            max_value_size: 64 << 20,
            max_total_value_bytes: 512 << 20,
        }
    }
}

/// A security (`sk`) cell as found, and how many keys the walk saw use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityCell {
    pub offset: u32,
    /// The reference count stored in the cell.
    pub reference_count: u32,
    /// Keys of the tree that point to this cell.
    pub used_by: u32,
    /// The self-relative security descriptor.
    pub descriptor: Vec<u8>,
}

/// A hive as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hive {
    pub root: Key,
    pub minor_version: u32,
    /// The base block's last-written FILETIME.
    pub timestamp: u64,
    /// The sequence numbers differ: Windows did not finish a write, and
    /// changes may sit in transaction logs this reader does not apply.
    pub dirty: bool,
    /// The security cells keys point to, by offset.
    pub security: Vec<SecurityCell>,
}

/// Reads a hive with the default [`ReadLimits`].
pub fn read(bytes: &[u8]) -> Result<Hive, RegfError> {
    read_with_limits(bytes, &ReadLimits::default())
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads a hive; `limits` caps the work and memory hostile input can cause.
pub fn read_with_limits(bytes: &[u8], limits: &ReadLimits) -> Result<Hive, RegfError> {
    let base = bytes
        .get(..BASE_BLOCK)
        .ok_or(RegfError::Truncated("shorter than the 4 KiB base block"))?;
    if &base[..4] != b"regf" {
        return Err(RegfError::NotAHive);
    }
    let field = |at: usize| u32_at(base, at).unwrap_or(0);
    let (major, minor) = (field(20), field(24));
    if major != 1 || !(2..=6).contains(&minor) {
        return Err(RegfError::Version { major, minor });
    }
    if field(28) != 0 {
        return Err(RegfError::FileType(field(28)));
    }
    let stored = field(508);
    let computed = checksum(base);
    if stored != computed {
        return Err(RegfError::Checksum { stored, computed });
    }
    let bins_size = field(40) as usize;
    if bins_size == 0 || !bins_size.is_multiple_of(4096) {
        return Err(RegfError::Bin {
            offset: 0,
            reason: "hive bins data size is not a positive multiple of 4096",
        });
    }
    let data = bytes
        .get(BASE_BLOCK..BASE_BLOCK + bins_size)
        .ok_or(RegfError::Truncated("hive bins end past the file"))?;

    let mut bins = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let bad = |reason| RegfError::Bin {
            offset: pos as u32,
            reason,
        };
        if data.get(pos..pos + 4) != Some(b"hbin".as_slice()) {
            return Err(bad("no `hbin` signature"));
        }
        if u32_at(data, pos + 4) != Some(pos as u32) {
            return Err(bad("its offset field does not match its position"));
        }
        let size = u32_at(data, pos + 8).unwrap_or(0) as usize;
        if size < 4096 || !size.is_multiple_of(4096) || pos + size > data.len() {
            return Err(bad("size is not a multiple of 4096 inside the hive bins"));
        }
        bins.push((pos, pos + size));
        pos += size;
    }

    let mut r = Reader {
        data,
        bins,
        minor,
        limits: *limits,
        visited: BTreeSet::new(),
        values: 0,
        value_bytes: 0,
        byte_budget: limits.max_total_value_bytes.min(data.len()),
        security: BTreeMap::new(),
    };
    let root = r.key(field(36), 0)?;
    Ok(Hive {
        root,
        minor_version: minor,
        timestamp: u64_at(base, 12).unwrap_or(0),
        dirty: field(4) != field(8),
        security: r.security.into_values().collect(),
    })
}

struct Reader<'a> {
    data: &'a [u8],
    bins: Vec<(usize, usize)>,
    minor: u32,
    limits: ReadLimits,
    visited: BTreeSet<u32>,
    values: usize,
    value_bytes: usize,
    byte_budget: usize,
    security: BTreeMap<u32, SecurityCell>,
}

impl<'a> Reader<'a> {
    /// The content of the allocated cell at `off` (after its size field).
    fn cell(&self, off: u32) -> Result<&'a [u8], RegfError> {
        let bad = |reason| RegfError::Cell {
            offset: off,
            reason,
        };
        if off == NONE {
            return Err(bad("offset is the `none` marker"));
        }
        if !off.is_multiple_of(8) {
            return Err(bad("not 8-byte aligned"));
        }
        let o = off as usize;
        let i = self.bins.partition_point(|&(start, _)| start <= o);
        let &(start, end) = i
            .checked_sub(1)
            .and_then(|i| self.bins.get(i))
            .ok_or_else(|| bad("outside the hive bins"))?;
        if o < start + BIN_HEADER || o + 4 > end {
            return Err(bad("outside its hive bin's cell area"));
        }
        let size = u32_at(self.data, o).ok_or_else(|| bad("truncated"))? as i32;
        if size >= 0 {
            return Err(bad("the cell is free (positive size)"));
        }
        let size = size.unsigned_abs() as usize;
        if size < 8 || o + size > end {
            return Err(bad("size runs past its hive bin"));
        }
        Ok(&self.data[o + 4..o + size])
    }

    fn signed(&self, off: u32, sig: &'static str, min: usize) -> Result<&'a [u8], RegfError> {
        let c = self.cell(off)?;
        if c.len() < min.max(2) || &c[..2] != sig.as_bytes() {
            return Err(RegfError::Signature {
                offset: off,
                expected: sig,
            });
        }
        Ok(c)
    }

    fn key(&mut self, off: u32, depth: usize) -> Result<Key, RegfError> {
        if depth > self.limits.max_depth {
            return Err(RegfError::Limit("keys nest too deep"));
        }
        if !self.visited.insert(off) {
            return Err(RegfError::Cycle(off));
        }
        if self.visited.len() > self.limits.max_keys {
            return Err(RegfError::Limit("too many keys"));
        }
        let c = self.signed(off, "nk", 76)?;
        let flags = u16_at(c, 2).unwrap_or(0);
        let f = |at| u32_at(c, at).unwrap_or(0);
        let name_len = u16_at(c, 72).unwrap_or(0) as usize;
        let name_bytes = c.get(76..76 + name_len).ok_or(RegfError::Cell {
            offset: off,
            reason: "key name runs past the cell",
        })?;
        let name = decode_name(name_bytes, flags & 0x0020 != 0);

        let sk = f(44);
        if sk != NONE {
            self.security_cell(sk)?;
        }

        let mut values = Vec::new();
        let value_count = f(36) as usize;
        if value_count > 0 {
            let list = self.cell(f(40))?;
            if value_count > list.len() / 4 {
                return Err(RegfError::Cell {
                    offset: f(40),
                    reason: "value list shorter than the key's value count",
                });
            }
            for i in 0..value_count {
                self.values += 1;
                if self.values > self.limits.max_values || self.values > self.data.len() / 4 {
                    return Err(RegfError::Limit("too many values"));
                }
                let vk = u32_at(list, 4 * i).unwrap_or(NONE);
                values.push(self.value(vk)?);
            }
        }

        let mut subkeys = Vec::new();
        if f(20) > 0 {
            let mut offs = Vec::new();
            self.subkey_list(f(28), false, &mut offs)?;
            for child in offs {
                subkeys.push(self.key(child, depth + 1)?);
            }
        }
        Ok(Key {
            name,
            values,
            subkeys,
        })
    }

    fn security_cell(&mut self, off: u32) -> Result<(), RegfError> {
        if let Some(s) = self.security.get_mut(&off) {
            s.used_by += 1;
            return Ok(());
        }
        let c = self.signed(off, "sk", 20)?;
        let len = u32_at(c, 16).unwrap_or(0) as usize;
        let sd = c.get(20..20 + len).ok_or(RegfError::Cell {
            offset: off,
            reason: "security descriptor runs past the cell",
        })?;
        self.security.insert(
            off,
            SecurityCell {
                offset: off,
                reference_count: u32_at(c, 12).unwrap_or(0),
                used_by: 1,
                descriptor: sd.to_vec(),
            },
        );
        Ok(())
    }

    /// Appends the key offsets of a subkey list (`lf`, `lh`, `li`, or an
    /// `ri` of those; an `ri` inside an `ri` is refused).
    fn subkey_list(&self, off: u32, in_ri: bool, out: &mut Vec<u32>) -> Result<(), RegfError> {
        let c = self.cell(off)?;
        let sig = c.get(..2).ok_or(RegfError::Cell {
            offset: off,
            reason: "empty subkey list",
        })?;
        let count = u16_at(c, 2).unwrap_or(0) as usize;
        let stride = match sig {
            b"lf" | b"lh" => 8,
            b"li" => 4,
            b"ri" if !in_ri => 4,
            _ => {
                return Err(RegfError::Signature {
                    offset: off,
                    expected: "lf/lh/li/ri",
                })
            }
        };
        if 4 + stride * count > c.len() {
            return Err(RegfError::Cell {
                offset: off,
                reason: "subkey list shorter than its count",
            });
        }
        for i in 0..count {
            let e = u32_at(c, 4 + stride * i).unwrap_or(NONE);
            if sig == b"ri" {
                self.subkey_list(e, true, out)?;
            } else {
                if out.len() >= self.limits.max_keys {
                    return Err(RegfError::Limit("too many subkeys"));
                }
                out.push(e);
            }
        }
        Ok(())
    }

    fn take_bytes(&mut self, n: usize) -> Result<(), RegfError> {
        if n > self.limits.max_value_size {
            return Err(RegfError::Limit("a value is larger than the limit"));
        }
        self.value_bytes += n;
        if self.value_bytes > self.byte_budget {
            return Err(RegfError::Limit("more value bytes than the hive can hold"));
        }
        Ok(())
    }

    fn value(&mut self, off: u32) -> Result<Value, RegfError> {
        let c = self.signed(off, "vk", 20)?;
        let name_len = u16_at(c, 2).unwrap_or(0) as usize;
        let size_field = u32_at(c, 4).unwrap_or(0);
        let data_off = u32_at(c, 8).unwrap_or(NONE);
        let kind = ValueType(u32_at(c, 12).unwrap_or(0));
        let flags = u16_at(c, 16).unwrap_or(0);
        let name_bytes = c.get(20..20 + name_len).ok_or(RegfError::Cell {
            offset: off,
            reason: "value name runs past the cell",
        })?;
        let name = decode_name(name_bytes, flags & 0x0001 != 0);
        let bad = |reason| RegfError::Cell {
            offset: off,
            reason,
        };

        let data = if size_field & 0x8000_0000 != 0 {
            // Small data in the offset field.
            let n = (size_field & 0x7FFF_FFFF) as usize;
            if n > 4 {
                return Err(bad("inline value data longer than 4 bytes"));
            }
            data_off.to_le_bytes()[..n].to_vec()
        } else if size_field == 0 {
            Vec::new()
        } else {
            let size = size_field as usize;
            self.take_bytes(size)?;
            let cell = self.cell(data_off)?;
            if self.minor >= 4 && size > BIG_DATA_SEGMENT && cell.starts_with(b"db") {
                self.big_data(data_off, cell, size)?
            } else {
                cell.get(..size)
                    .ok_or(bad("value data runs past its cell"))?
                    .to_vec()
            }
        };
        Ok(Value { name, kind, data })
    }

    /// Concatenates the segments of a big-data (`db`) record.
    fn big_data(&self, off: u32, db: &[u8], size: usize) -> Result<Vec<u8>, RegfError> {
        let bad = |reason| RegfError::Cell {
            offset: off,
            reason,
        };
        let count = u16_at(db, 2).ok_or(bad("truncated big-data record"))? as usize;
        let list_off = u32_at(db, 4).ok_or(bad("truncated big-data record"))?;
        if count.saturating_mul(BIG_DATA_SEGMENT) < size {
            return Err(bad("big-data segments cannot hold the value"));
        }
        let list = self.cell(list_off)?;
        if list.len() < 4 * count {
            return Err(bad("big-data segment list shorter than its count"));
        }
        let mut out = Vec::with_capacity(size);
        for i in 0..count {
            let rest = size - out.len();
            if rest == 0 {
                break;
            }
            let seg = self.cell(u32_at(list, 4 * i).unwrap_or(NONE))?;
            let n = rest.min(BIG_DATA_SEGMENT);
            out.extend_from_slice(seg.get(..n).ok_or(bad("big-data segment too short"))?);
        }
        if out.len() != size {
            return Err(bad("big-data segments hold less than the value size"));
        }
        Ok(out)
    }
}

/// A stored name: Latin-1 when compressed, else UTF-16LE.
fn decode_name(b: &[u8], compressed: bool) -> String {
    if compressed {
        b.iter().map(|&c| c as char).collect()
    } else {
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    }
}
