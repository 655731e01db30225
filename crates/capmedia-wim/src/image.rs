//! An image's directory tree, parsed from its metadata resource.
//!
//! The metadata resource is the security data (a u32 total length, a u32
//! count, sizes and descriptors; the root dentry starts at the length
//! rounded up to 8), then dentries. A dentry (102 bytes, then its names,
//! rounded to 8) names its children's list by `subdir_offset`; a list ends
//! with an 8-byte zero length. Extra stream entries follow a dentry: named
//! data streams, or (as wimlib and DISM write for reparse points and some
//! files) the unnamed data stream whose hash then is not in the dentry.
//!
//! The tree is read with an explicit stack (no recursion), every directory
//! list at most once (so a loop in the offsets is an error, not an endless
//! walk), with caps on entries and depth. Children are stored
//! contiguously, parents before children: the tree is acyclic by
//! construction.

use serde::Serialize;

use crate::header::{le_u16, le_u32, le_u64};
use crate::{Sha1Hash, WimError};

/// File attribute: directory.
pub const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;
/// File attribute: reparse point (symbolic link, junction, ...).
pub const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;

const DENTRY_SIZE: usize = 102;
const STREAM_ENTRY_SIZE: usize = 38;
/// SHA-1 of no bytes: an empty stream some writers record instead of zeros.
const EMPTY_SHA1: Sha1Hash = [
    0xda, 0x39, 0xa3, 0xee, 0x5e, 0x6b, 0x4b, 0x0d, 0x32, 0x55, 0xbf, 0xef, 0x95, 0x60, 0x18, 0x90,
    0xaf, 0xd8, 0x07, 0x09,
];

/// A named data stream (alternate data stream) of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedStream {
    /// The stream's name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-1, `None` if empty.
    pub hash: Option<Sha1Hash>,
}

/// One file or directory of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Its name ("" for the root).
    pub name: String,
    /// Whether it is a directory.
    pub is_dir: bool,
    /// Windows file attributes.
    pub attributes: u32,
    /// Size of the unnamed data stream (0 for directories and reparse points).
    pub size: u64,
    /// SHA-1 of the unnamed data stream, `None` if empty.
    pub hash: Option<Sha1Hash>,
    /// The reparse tag, if this is a reparse point (symbolic link,
    /// junction...). Its reparse data is not a file's content and is not
    /// streamed.
    pub reparse_tag: Option<u32>,
    /// Named data streams.
    pub streams: Vec<NamedStream>,
    index: u32,
    parent: u32,
    children: (u32, u32),
}

impl Entry {
    /// Whether this is a regular file (no directory, no reparse point).
    pub fn is_file(&self) -> bool {
        !self.is_dir && self.reparse_tag.is_none()
    }
}

/// Caps on one image's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeLimits {
    /// Most entries in one image.
    pub max_entries: usize,
    /// Deepest directory nesting.
    pub max_depth: usize,
}

/// One image's directory tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    index: u32,
    entries: Vec<Entry>,
}

impl Image {
    /// The image's 1-based index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The root directory.
    pub fn root(&self) -> &Entry {
        // An Image always has its root at 0 (see parse).
        &self.entries[0]
    }

    /// All entries, parents before children, the root first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries of a directory.
    pub fn children(&self, e: &Entry) -> &[Entry] {
        let (a, b) = e.children;
        self.entries.get(a as usize..b as usize).unwrap_or(&[])
    }

    /// The parent directory (`None` for the root).
    pub fn parent(&self, e: &Entry) -> Option<&Entry> {
        if e.index == 0 {
            None
        } else {
            self.entries.get(e.parent as usize)
        }
    }

    /// The entry's path from the root, '/'-separated, without a leading '/'.
    pub fn path(&self, e: &Entry) -> String {
        let mut names = Vec::new();
        let mut cur = e;
        // Parents come before children, so this walk ends.
        while let Some(p) = self.parent(cur) {
            names.push(cur.name.as_str());
            if p.index >= cur.index {
                break;
            }
            cur = p;
        }
        names.reverse();
        names.join("/")
    }

    /// Finds a path case-insensitively (as Windows does); '/' or '\\'
    /// separate components, empty components are ignored.
    pub fn find(&self, path: &str) -> Option<&Entry> {
        let mut cur = self.root();
        for comp in path.split(['/', '\\']).filter(|c| !c.is_empty()) {
            cur = self
                .children(cur)
                .iter()
                .find(|c| eq_ignore_case(&c.name, comp))?;
        }
        Some(cur)
    }

    /// Every entry but the root with its path, parents before children.
    pub fn walk(&self) -> impl Iterator<Item = (String, &Entry)> + '_ {
        self.entries.iter().skip(1).map(|e| (self.path(e), e))
    }
}

fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_uppercase)
        .eq(b.chars().flat_map(char::to_uppercase))
}

struct Raw {
    attributes: u32,
    subdir: u64,
    reparse_tag: u32,
    name: String,
    has_name: bool,
    /// (name, hash) of each stream; stream 0 is the dentry's own.
    streams: Vec<(Option<String>, Sha1Hash)>,
}

/// Parses a metadata resource; `size_of` gives a stream's size from the
/// lookup table (`None` if the hash is not there).
pub(crate) fn parse(
    image: u32,
    buf: &[u8],
    limits: TreeLimits,
    size_of: &dyn Fn(&Sha1Hash) -> Option<u64>,
) -> Result<Image, WimError> {
    let bad = |offset: u64, reason| WimError::BadMetadata {
        image,
        offset,
        reason,
    };
    let head = buf
        .get(0..8)
        .ok_or(bad(0, "shorter than its security data header"))?;
    let total = u64::from(le_u32(&head[0..4]));
    let count = u64::from(le_u32(&head[4..8]));
    let total = if total == 0 { 8 } else { total.div_ceil(8) * 8 };
    if count > 0x8000_0000 || total > buf.len() as u64 || 8 + count * 8 > total {
        return Err(bad(0, "bad security data length"));
    }
    let blob = |hash: &Sha1Hash| -> Result<(u64, Option<Sha1Hash>), WimError> {
        if *hash == [0; 20] || *hash == EMPTY_SHA1 {
            return Ok((0, None));
        }
        match size_of(hash) {
            Some(s) => Ok((s, Some(*hash))),
            None => Err(WimError::MissingBlob {
                hash: hex::encode(hash),
            }),
        }
    };
    let make = |raw: Raw, index: u32, parent: u32| -> Result<Entry, WimError> {
        let is_dir = raw.attributes & FILE_ATTRIBUTE_DIRECTORY != 0;
        let is_reparse = raw.attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0;
        // wimlib's stream assignment (dentry.c): the first unnamed non-empty
        // stream is the reparse data of a reparse point, the next (or first)
        // the unnamed data stream.
        let mut data: Option<Sha1Hash> = None;
        let mut found_rp = false;
        let mut streams = Vec::new();
        for (i, (name, hash)) in raw.streams.iter().enumerate() {
            match name {
                Some(n) => {
                    let (size, hash) = blob(hash)?;
                    streams.push(NamedStream {
                        name: n.clone(),
                        size,
                        hash,
                    });
                }
                None if i != 0 || *hash != [0; 20] => {
                    if is_reparse && !found_rp {
                        found_rp = true;
                    } else if data.is_none() {
                        data = Some(*hash);
                    }
                }
                None => {}
            }
        }
        let (size, hash) = match data {
            Some(h) if !is_dir => blob(&h)?,
            _ => (0, None),
        };
        Ok(Entry {
            name: raw.name,
            is_dir,
            attributes: raw.attributes,
            size,
            hash,
            reparse_tag: is_reparse.then_some(raw.reparse_tag),
            streams,
            index,
            parent,
            children: (0, 0),
        })
    };

    let (root, _) = read_dentry(buf, total).map_err(|r| bad(total, r))?;
    let root = root.ok_or(bad(total, "no root directory"))?;
    if root.attributes & FILE_ATTRIBUTE_DIRECTORY == 0 {
        return Err(bad(total, "the root is not a directory"));
    }
    let root_subdir = root.subdir;
    let mut entries = vec![make(
        Raw {
            name: String::new(),
            ..root
        },
        0,
        0,
    )?];
    let mut visited = std::collections::HashSet::new();
    // (directory's entry index, its list's offset, its depth)
    let mut stack: Vec<(u32, u64, usize)> = Vec::new();
    if root_subdir != 0 {
        stack.push((0, root_subdir, 1));
    }
    while let Some((dir, list, depth)) = stack.pop() {
        if depth > limits.max_depth {
            return Err(WimError::TooDeep {
                image,
                limit: limits.max_depth,
            });
        }
        if !visited.insert(list) {
            return Err(WimError::DirectoryLoop {
                image,
                offset: list,
            });
        }
        let first = entries.len();
        let mut off = list;
        let mut subdirs = Vec::new();
        // Each step moves `off` forward by at least 102 bytes: this ends.
        loop {
            let (raw, next) = read_dentry(buf, off).map_err(|r| bad(off, r))?;
            let Some(raw) = raw else { break };
            off = next;
            // wimlib ignores unnamed entries, "." and "..", and names with NULs.
            if !raw.has_name || raw.name == "." || raw.name == ".." || raw.name.contains('\0') {
                continue;
            }
            if entries.len() >= limits.max_entries {
                return Err(WimError::TooManyEntries {
                    image,
                    limit: limits.max_entries,
                });
            }
            let index = u32::try_from(entries.len()).map_err(|_| WimError::TooManyEntries {
                image,
                limit: limits.max_entries,
            })?;
            let subdir = raw.subdir;
            let e = make(raw, index, dir)?;
            if e.is_dir && subdir != 0 {
                subdirs.push((index, subdir, depth + 1));
            }
            entries.push(e);
        }
        let end = entries.len();
        if let Some(d) = entries.get_mut(dir as usize) {
            // Both fit u32: entries.len() was checked above.
            d.children = (first as u32, end as u32);
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(Image {
        index: image,
        entries,
    })
}

/// Reads the dentry at `off`: `None` for the end of a list; and the offset
/// after it (and its extra stream entries).
fn read_dentry(buf: &[u8], off: u64) -> Result<(Option<Raw>, u64), &'static str> {
    let at = usize::try_from(off).map_err(|_| "offset beyond the metadata")?;
    let len_field = buf
        .get(at..at.saturating_add(8))
        .ok_or("dentry beyond the metadata")?;
    let length = le_u64(len_field);
    if length <= 8 {
        return Ok((None, off + 8));
    }
    let length = length.checked_add(7).ok_or("dentry length overflows")? & !7;
    if length < DENTRY_SIZE as u64 {
        return Err("dentry shorter than 102 bytes");
    }
    let end = off.checked_add(length).ok_or("dentry length overflows")?;
    if end > buf.len() as u64 {
        return Err("dentry beyond the metadata");
    }
    // In bounds: checked just above.
    let d = &buf[at..end as usize];
    let attributes = le_u32(&d[8..12]);
    let subdir = le_u64(&d[16..24]);
    let mut main_hash = [0u8; 20];
    main_hash.copy_from_slice(&d[64..84]);
    let reparse_tag = le_u32(&d[88..92]);
    let num_extra = le_u16(&d[96..98]);
    let short_nbytes = usize::from(le_u16(&d[98..100]));
    let name_nbytes = usize::from(le_u16(&d[100..102]));
    if short_nbytes % 2 != 0 || name_nbytes % 2 != 0 {
        return Err("odd name length");
    }
    let min = DENTRY_SIZE
        + if name_nbytes > 0 { name_nbytes + 2 } else { 0 }
        + if short_nbytes > 0 {
            short_nbytes + 2
        } else {
            0
        };
    if (min as u64) > length {
        return Err("names longer than the dentry");
    }
    let name = utf16(&d[DENTRY_SIZE..DENTRY_SIZE + name_nbytes]);
    let mut streams = vec![(None, main_hash)];
    let mut p = end;
    for _ in 0..num_extra {
        let pa = p as usize; // p <= buf.len(), a usize.
        let e = buf
            .get(pa..pa.saturating_add(STREAM_ENTRY_SIZE))
            .ok_or("stream entry beyond the metadata")?;
        let slen = le_u64(&e[0..8]);
        let slen = slen.checked_add(7).ok_or("stream entry length overflows")? & !7;
        if slen < STREAM_ENTRY_SIZE as u64 || slen > buf.len() as u64 - p {
            return Err("bad stream entry length");
        }
        let mut hash = [0u8; 20];
        hash.copy_from_slice(&e[16..36]);
        let nbytes = usize::from(le_u16(&e[36..38]));
        if nbytes % 2 != 0 || (STREAM_ENTRY_SIZE + nbytes) as u64 > slen {
            return Err("bad stream name length");
        }
        let sname = (nbytes > 0).then(|| {
            utf16(
                buf.get(pa + STREAM_ENTRY_SIZE..pa + STREAM_ENTRY_SIZE + nbytes)
                    .unwrap_or(&[]),
            )
        });
        streams.push((sname, hash));
        p += slen;
    }
    Ok((
        Some(Raw {
            attributes,
            subdir,
            reparse_tag,
            has_name: name_nbytes > 0,
            name,
            streams,
        }),
        p,
    ))
}

fn utf16(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}
