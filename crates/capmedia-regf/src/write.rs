//! The deterministic hive writer.
//!
//! Layout: the 4 KiB base block, then hive bins. Cells are placed in the
//! order the tree is walked (root first, then the shared security cell, then
//! each key's values before its subkeys, depth first), each bin is 4 KiB
//! unless one cell needs more, and the unused tail of every bin is one free
//! cell, so the file is a multiple of 4 KiB and the same tree always gives
//! the same bytes.

use crate::names::{lh_hash, upcase_name};
use crate::{Key, RegfError, Value, BIG_DATA_SEGMENT, LEAF_MAX, MAX_KEY_NAME, MAX_VALUE_NAME};

const BASE_BLOCK: usize = 4096;
const BIN_HEADER: usize = 32;
const NONE: u32 = 0xFFFF_FFFF;
/// Hive bins may not reach 2 GiB (cell offsets are signed in places).
const MAX_BINS: usize = 0x7FFF_0000;

/// `nk` flags.
const KEY_HIVE_ENTRY: u16 = 0x0004;
const KEY_NO_DELETE: u16 = 0x0008;
const KEY_COMP_NAME: u16 = 0x0020;
/// `vk` flag: the name is stored in one byte per character.
const VALUE_COMP_NAME: u16 = 0x0001;

/// A self-relative security descriptor granting full control
/// (`KEY_ALL_ACCESS`, inherited by subkeys) to SYSTEM and Administrators,
/// owned by Administrators, group SYSTEM. Every key shares it, as in hives
/// Windows creates.
pub const DEFAULT_SECURITY_DESCRIPTOR: [u8; 100] = default_sd();

const fn default_sd() -> [u8; 100] {
    let mut sd = [0u8; 100];
    // Header: revision 1, control SE_DACL_PRESENT | SE_SELF_RELATIVE.
    sd[0] = 1;
    sd[2] = 0x04;
    sd[3] = 0x80;
    // Owner at 72, group at 88, no SACL, DACL at 20.
    sd[4] = 72;
    sd[8] = 88;
    sd[16] = 20;
    // DACL: revision 2, size 52, two ACEs.
    sd[20] = 2;
    sd[22] = 52;
    sd[24] = 2;
    // ACE 1 at 28: ACCESS_ALLOWED, CONTAINER_INHERIT, size 20, mask 0x000F003F, S-1-5-18.
    sd[28] = 0;
    sd[29] = 0x02;
    sd[30] = 20;
    sd[32] = 0x3F;
    sd[34] = 0x0F;
    sd[36] = 1;
    sd[37] = 1;
    sd[43] = 5;
    sd[44] = 18;
    // ACE 2 at 48: same for S-1-5-32-544 (size 24).
    sd[48] = 0;
    sd[49] = 0x02;
    sd[50] = 24;
    sd[52] = 0x3F;
    sd[54] = 0x0F;
    sd[56] = 1;
    sd[57] = 2;
    sd[63] = 5;
    sd[64] = 32;
    sd[68] = 0x20; // 544 = 0x220
    sd[69] = 0x02;
    // Owner at 72: S-1-5-32-544.
    sd[72] = 1;
    sd[73] = 2;
    sd[79] = 5;
    sd[80] = 32;
    sd[84] = 0x20;
    sd[85] = 0x02;
    // Group at 88: S-1-5-18.
    sd[88] = 1;
    sd[89] = 1;
    sd[95] = 5;
    sd[96] = 18;
    sd
}

/// How to write a hive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    /// Minor version: 5 (Windows XP and later; `lh` lists, big data) or 3
    /// (NT 4 layout; `lf` lists, no big data).
    pub minor_version: u32,
    /// FILETIME written as the hive's and every key's last-written time
    /// (derive it from `SOURCE_DATE_EPOCH` for reproducible output).
    pub timestamp: u64,
    /// The file name stored in the base block (informational; at most 31
    /// UTF-16 units are kept).
    pub file_name: String,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            minor_version: 5,
            timestamp: 0,
            file_name: String::new(),
        }
    }
}

/// Writes `root` (its name is the root key's name) as a complete hive file.
pub fn write(root: &Key, opts: &WriteOptions) -> Result<Vec<u8>, RegfError> {
    if opts.minor_version != 3 && opts.minor_version != 5 {
        return Err(RegfError::WriteVersion(opts.minor_version));
    }
    let mut w = Writer {
        bins: Vec::new(),
        bin_start: 0,
        bin_end: 0,
        cursor: 0,
        minor: opts.minor_version,
        timestamp: opts.timestamp,
        sk: 0,
        keys: 0,
    };
    check_key(root, 0)?;
    let root_off = w.write_key(root, None)?;
    w.finish_bin();
    // The security cell's reference count is the number of keys using it.
    let refs = w.keys;
    w.put_u32(w.sk + 4 + 12, refs);

    let bins_size = w.bins.len();
    let mut out = vec![0u8; BASE_BLOCK];
    out[0..4].copy_from_slice(b"regf");
    out[4..8].copy_from_slice(&1u32.to_le_bytes()); // primary sequence
    out[8..12].copy_from_slice(&1u32.to_le_bytes()); // secondary sequence
    out[12..20].copy_from_slice(&opts.timestamp.to_le_bytes());
    out[20..24].copy_from_slice(&1u32.to_le_bytes()); // major
    out[24..28].copy_from_slice(&opts.minor_version.to_le_bytes());
    // 28: file type 0 (primary); 32: format 1 (direct memory load).
    out[32..36].copy_from_slice(&1u32.to_le_bytes());
    out[36..40].copy_from_slice(&root_off.to_le_bytes());
    out[40..44].copy_from_slice(&(bins_size as u32).to_le_bytes());
    out[44..48].copy_from_slice(&1u32.to_le_bytes()); // clustering factor
    for (i, unit) in opts.file_name.encode_utf16().take(31).enumerate() {
        out[48 + 2 * i..50 + 2 * i].copy_from_slice(&unit.to_le_bytes());
    }
    let sum = checksum(&out);
    out[508..512].copy_from_slice(&sum.to_le_bytes());
    out.extend_from_slice(&w.bins);
    Ok(out)
}

/// The base block checksum: XOR of its first 127 little-endian u32s, with 0
/// and 0xFFFFFFFF replaced as Windows does (by 1 and 0xFFFFFFFE).
pub(crate) fn checksum(base: &[u8]) -> u32 {
    let mut x = 0u32;
    for c in base[..508].chunks_exact(4) {
        x ^= u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    match x {
        0 => 1,
        0xFFFF_FFFF => 0xFFFF_FFFE,
        x => x,
    }
}

fn check_name(name: &str, max: usize) -> bool {
    let len = name.encode_utf16().count();
    len <= max && !name.contains('\0')
}

/// Names, duplicates, and depth, before any byte is laid out.
fn check_key(key: &Key, depth: usize) -> Result<(), RegfError> {
    // Windows limits key depth to 512 levels.
    if depth > 512 {
        return Err(RegfError::TooLarge("keys nest deeper than 512 levels"));
    }
    if (depth > 0 && key.name.is_empty())
        || !check_name(&key.name, MAX_KEY_NAME)
        || key.name.contains('\\')
    {
        return Err(RegfError::KeyName(key.name.clone()));
    }
    let mut seen = std::collections::BTreeSet::new();
    for v in &key.values {
        if !check_name(&v.name, MAX_VALUE_NAME) {
            return Err(RegfError::ValueName(v.name.clone()));
        }
        if !seen.insert(upcase_name(&v.name)) {
            return Err(RegfError::DuplicateValue(v.name.clone()));
        }
        if v.data.len() > 0x7FFF_0000 {
            return Err(RegfError::TooLarge("value data over 2 GiB"));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for k in &key.subkeys {
        if !seen.insert(upcase_name(&k.name)) {
            return Err(RegfError::DuplicateKey(k.name.clone()));
        }
        check_key(k, depth + 1)?;
    }
    Ok(())
}

/// A name as stored: Latin-1 bytes with the compressed flag when every
/// character fits one byte (as Windows does), else UTF-16LE.
fn stored_name(name: &str) -> (Vec<u8>, bool) {
    if name.chars().all(|c| (c as u32) <= 0xFF) {
        (name.chars().map(|c| c as u32 as u8).collect(), true)
    } else {
        (
            name.encode_utf16().flat_map(u16::to_le_bytes).collect(),
            false,
        )
    }
}

struct Writer {
    bins: Vec<u8>,
    bin_start: usize,
    bin_end: usize,
    cursor: usize,
    minor: u32,
    timestamp: u64,
    sk: u32,
    keys: u32,
}

impl Writer {
    /// Closes the open bin: its unused tail becomes one free cell.
    fn finish_bin(&mut self) {
        let rest = self.bin_end - self.cursor;
        if rest > 0 {
            self.put_u32(self.cursor as u32, rest as u32);
        }
        self.cursor = self.bin_end;
    }

    /// Reserves an allocated cell for `len` bytes of content; returns its offset.
    fn alloc(&mut self, len: usize) -> Result<u32, RegfError> {
        let size = (len + 4 + 7) & !7;
        if self.cursor + size > self.bin_end {
            self.finish_bin();
            let bin_size = (size + BIN_HEADER).div_ceil(4096) * 4096;
            if self.bin_end + bin_size > MAX_BINS {
                return Err(RegfError::TooLarge("hive bins over 2 GiB"));
            }
            self.bin_start = self.bin_end;
            self.bin_end += bin_size;
            self.bins.resize(self.bin_end, 0);
            let h = self.bin_start;
            self.bins[h..h + 4].copy_from_slice(b"hbin");
            self.put_u32(h as u32 + 4, h as u32);
            self.put_u32(h as u32 + 8, bin_size as u32);
            if h == 0 {
                // Only the first bin's timestamp means anything.
                self.bins[h + 20..h + 28].copy_from_slice(&self.timestamp.to_le_bytes());
            }
            self.cursor = h + BIN_HEADER;
        }
        let off = self.cursor;
        self.cursor += size;
        // Allocated cells have a negative size.
        self.put_u32(off as u32, (-(size as i32)) as u32);
        Ok(off as u32)
    }

    fn put(&mut self, at: u32, bytes: &[u8]) {
        let at = at as usize;
        self.bins[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn put_u16(&mut self, at: u32, v: u16) {
        self.put(at, &v.to_le_bytes());
    }

    fn put_u32(&mut self, at: u32, v: u32) {
        self.put(at, &v.to_le_bytes());
    }

    /// A cell holding `data`; returns its offset.
    fn data_cell(&mut self, data: &[u8]) -> Result<u32, RegfError> {
        let off = self.alloc(data.len())?;
        self.put(off + 4, data);
        Ok(off)
    }

    fn offsets_cell(&mut self, offs: &[u32]) -> Result<u32, RegfError> {
        let bytes: Vec<u8> = offs.iter().flat_map(|o| o.to_le_bytes()).collect();
        self.data_cell(&bytes)
    }

    fn write_value(&mut self, v: &Value) -> Result<u32, RegfError> {
        let (name, compressed) = stored_name(&v.name);
        let vk = self.alloc(20 + name.len())?;
        let len = v.data.len();
        let (size_field, data_field) = if len <= 4 {
            // Small data lives in the offset field itself.
            let mut b = [0u8; 4];
            b[..len].copy_from_slice(&v.data);
            (len as u32 | 0x8000_0000, u32::from_le_bytes(b))
        } else if len > BIG_DATA_SEGMENT && self.minor >= 4 {
            if len.div_ceil(BIG_DATA_SEGMENT) > 0xFFFF {
                return Err(RegfError::TooLarge(
                    "value needs over 65535 big-data segments",
                ));
            }
            // Each segment's cell keeps 4 spare bytes, as a full segment
            // does (16344 + 4 + 4 = 16352): readers such as hivex take a
            // segment's length from its cell size minus 8.
            let segs: Vec<u32> = v
                .data
                .chunks(BIG_DATA_SEGMENT)
                .map(|c| {
                    let off = self.alloc(c.len() + 4)?;
                    self.put(off + 4, c);
                    Ok(off)
                })
                .collect::<Result<_, RegfError>>()?;
            let list = self.offsets_cell(&segs)?;
            let db = self.alloc(8)?;
            self.put(db + 4, b"db");
            self.put_u16(db + 6, segs.len() as u16);
            self.put_u32(db + 8, list);
            (len as u32, db)
        } else {
            (len as u32, self.data_cell(&v.data)?)
        };
        let b = vk + 4;
        self.put(b, b"vk");
        self.put_u16(b + 2, name.len() as u16);
        self.put_u32(b + 4, size_field);
        self.put_u32(b + 8, data_field);
        self.put_u32(b + 12, v.kind.0);
        self.put_u16(b + 16, if compressed { VALUE_COMP_NAME } else { 0 });
        self.put(b + 20, &name);
        Ok(vk)
    }

    fn write_key(&mut self, key: &Key, parent: Option<u32>) -> Result<u32, RegfError> {
        let (name, compressed) = stored_name(&key.name);
        let nk = self.alloc(76 + name.len())?;
        self.keys += 1;
        if parent.is_none() {
            self.sk = self.alloc(20 + DEFAULT_SECURITY_DESCRIPTOR.len())?;
            let s = self.sk + 4;
            self.put(s, b"sk");
            // One descriptor: its list links point to itself.
            self.put_u32(s + 4, self.sk);
            self.put_u32(s + 8, self.sk);
            self.put_u32(s + 16, DEFAULT_SECURITY_DESCRIPTOR.len() as u32);
            self.put(s + 20, &DEFAULT_SECURITY_DESCRIPTOR);
        }

        let mut value_offs = Vec::with_capacity(key.values.len());
        for v in &key.values {
            value_offs.push(self.write_value(v)?);
        }
        let values_list = if value_offs.is_empty() {
            NONE
        } else {
            self.offsets_cell(&value_offs)?
        };

        // Subkeys sorted as Windows sorts them: uppercased UTF-16 units.
        let mut subs: Vec<&Key> = key.subkeys.iter().collect();
        subs.sort_by_cached_key(|k| upcase_name(&k.name));
        let mut child_offs = Vec::with_capacity(subs.len());
        for k in &subs {
            child_offs.push(self.write_key(k, Some(nk))?);
        }
        let subkey_list = if subs.is_empty() {
            NONE
        } else {
            let leaves: Vec<u32> = subs
                .chunks(LEAF_MAX)
                .zip(child_offs.chunks(LEAF_MAX))
                .map(|(ks, offs)| self.leaf(ks, offs))
                .collect::<Result<_, _>>()?;
            if leaves.len() == 1 {
                leaves[0]
            } else {
                let ri = self.alloc(4 + 4 * leaves.len())?;
                self.put(ri + 4, b"ri");
                self.put_u16(ri + 6, leaves.len() as u16);
                for (i, l) in leaves.iter().enumerate() {
                    self.put_u32(ri + 8 + 4 * i as u32, *l);
                }
                ri
            }
        };

        let utf16_len = |s: &str| 2 * s.encode_utf16().count() as u32;
        let max_sub = subs.iter().map(|k| utf16_len(&k.name)).max().unwrap_or(0);
        let max_vname = key
            .values
            .iter()
            .map(|v| utf16_len(&v.name))
            .max()
            .unwrap_or(0);
        let max_vdata = key
            .values
            .iter()
            .map(|v| v.data.len() as u32)
            .max()
            .unwrap_or(0);

        let b = nk + 4;
        let mut flags = if compressed { KEY_COMP_NAME } else { 0 };
        if parent.is_none() {
            flags |= KEY_HIVE_ENTRY | KEY_NO_DELETE;
        }
        self.put(b, b"nk");
        self.put_u16(b + 2, flags);
        self.put(b + 4, &self.timestamp.to_le_bytes());
        // 12: access bits, 0.
        self.put_u32(b + 16, parent.unwrap_or(0));
        self.put_u32(b + 20, subs.len() as u32);
        // 24: volatile subkey count 0.
        self.put_u32(b + 28, subkey_list);
        self.put_u32(b + 32, NONE); // volatile subkeys list
        self.put_u32(b + 36, key.values.len() as u32);
        self.put_u32(b + 40, values_list);
        self.put_u32(b + 44, self.sk);
        self.put_u32(b + 48, NONE); // no class name
        self.put_u32(b + 52, max_sub);
        // 56: largest subkey class name length 0.
        self.put_u32(b + 60, max_vname);
        self.put_u32(b + 64, max_vdata);
        // 68: work var 0.
        self.put_u16(b + 72, name.len() as u16);
        // 74: class name length 0.
        self.put(b + 76, &name);
        Ok(nk)
    }

    /// An `lh` leaf (1.5) with name hashes, or an `lf` leaf (1.3) with the
    /// first four name characters as hints.
    fn leaf(&mut self, keys: &[&Key], offs: &[u32]) -> Result<u32, RegfError> {
        let cell = self.alloc(4 + 8 * keys.len())?;
        let lh = self.minor >= 5;
        self.put(cell + 4, if lh { b"lh" } else { b"lf" });
        self.put_u16(cell + 6, keys.len() as u16);
        for (i, (k, off)) in keys.iter().zip(offs).enumerate() {
            let e = cell + 8 + 8 * i as u32;
            self.put_u32(e, *off);
            if lh {
                self.put_u32(e + 4, lh_hash(&k.name));
            } else {
                let mut hint = [0u8; 4];
                for (h, u) in hint.iter_mut().zip(k.name.encode_utf16()) {
                    *h = if u <= 0xFF { u as u8 } else { 0 };
                }
                self.put(e + 4, &hint);
            }
        }
        Ok(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::DEFAULT_SECURITY_DESCRIPTOR as SD;

    fn u16_at(at: usize) -> usize {
        u16::from_le_bytes([SD[at], SD[at + 1]]) as usize
    }

    fn u32_at(at: usize) -> usize {
        u32::from_le_bytes([SD[at], SD[at + 1], SD[at + 2], SD[at + 3]]) as usize
    }

    /// A SID as `S-1-...` text, and its length.
    fn sid(at: usize) -> (String, usize) {
        let n = SD[at + 1] as usize;
        let auth = SD[at + 2..at + 8]
            .iter()
            .fold(0u64, |a, &b| (a << 8) | b as u64);
        let mut s = format!("S-{}-{auth}", SD[at]);
        for i in 0..n {
            s += &format!("-{}", u32_at(at + 8 + 4 * i));
        }
        (s, 8 + 4 * n)
    }

    /// The descriptor is what `RtlValidSecurityDescriptor` wants: self-relative,
    /// owner, group and DACL inside it, ACL and ACE sizes that add up.
    #[test]
    fn default_descriptor_is_well_formed() {
        assert_eq!(SD[0], 1, "revision");
        assert_eq!(u16_at(2), 0x8004, "self-relative, DACL present");
        assert_eq!(sid(u32_at(4)).0, "S-1-5-32-544", "owner: Administrators");
        assert_eq!(sid(u32_at(8)).0, "S-1-5-18", "group: SYSTEM");
        assert_eq!(u32_at(12), 0, "no SACL");
        let acl = u32_at(16);
        assert_eq!(SD[acl], 2, "ACL revision");
        let (size, count) = (u16_at(acl + 2), u16_at(acl + 4));
        assert_eq!(count, 2);
        let mut at = acl + 8;
        let mut sids = Vec::new();
        for _ in 0..count {
            assert_eq!(SD[at], 0, "ACCESS_ALLOWED_ACE");
            assert_eq!(u32_at(at + 4), 0x000F_003F, "KEY_ALL_ACCESS");
            let (s, len) = sid(at + 8);
            assert_eq!(u16_at(at + 2), 8 + len, "ACE size");
            sids.push(s);
            at += 8 + len;
        }
        assert_eq!(at - acl, size, "ACL size");
        assert_eq!(sids, ["S-1-5-18", "S-1-5-32-544"]);
        assert!(u32_at(4) >= at && u32_at(8) + sid(u32_at(8)).1 == SD.len());
    }
}
