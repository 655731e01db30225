//! Opening a WIM (or all parts of a split one): header, lookup table,
//! images, streams.

use std::collections::HashMap;
use std::io::{Read, Seek, Write};

use sha1::{Digest, Sha1};

use crate::header::{
    le_u16, le_u32, read_header, read_xml, ResourceHeader, WimHeader, DEFAULT_VERSION,
    RESHDR_FLAG_COMPRESSED, RESHDR_FLAG_METADATA, RESHDR_FLAG_SOLID,
};
use crate::image::{self, Entry, Image, NamedStream, TreeLimits};
use crate::resource::{Io, PartFile, Resource, ResourceSpec};
use crate::stream::{Blob, StreamReader};
use crate::{Sha1Hash, WimError};

/// Default cap on the XML data: real WIMs carry a few KiB per image.
pub const DEFAULT_MAX_XML_SIZE: u64 = 16 * 1024 * 1024;
/// Default cap on chunk sizes: 64 MiB, the largest solid chunk wimlib
/// writes (`--solid-chunk-size` defaults to 64 MiB for LZMS) and what DISM
/// uses for ESD files. One chunk and one compressed chunk are held in memory.
pub const DEFAULT_MAX_CHUNK_SIZE: u32 = 64 * 1024 * 1024;

/// Entry size of the lookup table.
const LOOKUP_ENTRY_SIZE: usize = 50;
/// A lookup-table entry with this uncompressed size describes a solid
/// resource, not a blob.
const SOLID_RESOURCE_MAGIC: u64 = 0x1_0000_0000;

/// Caps that keep hostile input bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest XML data resource.
    pub max_xml: u64,
    /// Largest lookup table (50 bytes per stream; held while opening).
    pub max_lookup_table: u64,
    /// Largest metadata resource of one image (held while reading its tree).
    pub max_metadata: u64,
    /// Largest chunk.
    pub max_chunk_size: u32,
    /// Caps on one image's tree.
    pub tree: TreeLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_xml: DEFAULT_MAX_XML_SIZE,
            // 2.6 million streams: far beyond any Windows image.
            max_lookup_table: 128 * 1024 * 1024,
            // A full Windows 11 image's metadata is some 60 MiB.
            max_metadata: 512 * 1024 * 1024,
            max_chunk_size: DEFAULT_MAX_CHUNK_SIZE,
            tree: TreeLimits {
                max_entries: 4_000_000,
                max_depth: 2048,
            },
        }
    }
}

/// An open WIM: its header, lookup table and readers.
#[derive(Debug)]
pub struct Wim<R> {
    header: WimHeader,
    io: Io<R>,
    blobs: HashMap<Sha1Hash, Blob>,
    metadata: Vec<(Sha1Hash, Blob)>,
    limits: Limits,
}

impl<R: Read + Seek> Wim<R> {
    /// Opens a WIM that is not split, with the default limits.
    pub fn open(r: R) -> Result<Self, WimError> {
        Self::open_parts_with_limits(vec![r], Limits::default())
    }

    /// Opens all parts of a split WIM (`.swm`), in any order; a WIM that is
    /// not split is a set of one.
    pub fn open_parts(parts: Vec<R>) -> Result<Self, WimError> {
        Self::open_parts_with_limits(parts, Limits::default())
    }

    /// [`Wim::open_parts`] with explicit limits.
    pub fn open_parts_with_limits(parts: Vec<R>, limits: Limits) -> Result<Self, WimError> {
        let given = parts.len();
        let mut headed = Vec::with_capacity(given);
        for mut r in parts {
            let (h, len) = read_header(&mut r)?;
            headed.push((h, PartFile::new(r, len)));
        }
        let Some((first, _)) = headed.first() else {
            return Err(WimError::BadPartSet {
                reason: "no part given".into(),
            });
        };
        let total = first.total_parts;
        if given == 1 && total != 1 {
            return Err(WimError::SplitNeedsAllParts {
                part: first.part,
                total,
            });
        }
        if usize::from(total) != given {
            return Err(WimError::BadPartSet {
                reason: format!("{given} parts given, the set has {total}"),
            });
        }
        let guid = first.guid;
        headed.sort_by_key(|(h, _)| h.part);
        for (i, (h, _)) in headed.iter().enumerate() {
            if h.guid != guid || h.total_parts != total {
                return Err(WimError::BadPartSet {
                    reason: format!(
                        "part {} belongs to another WIM (GUID or part count)",
                        h.part
                    ),
                });
            }
            if usize::from(h.part) != i + 1 {
                return Err(WimError::BadPartSet {
                    reason: format!("part {} is missing or given twice", i + 1),
                });
            }
        }
        let headers: Vec<WimHeader> = headed.iter().map(|(h, _)| h.clone()).collect();
        let mut io = Io::new(headed.into_iter().map(|(_, p)| p).collect());
        let mut blobs = HashMap::new();
        let mut metadata = Vec::new();
        for (i, h) in headers.iter().enumerate() {
            read_lookup_table(&mut io, i, h, &limits, &mut blobs, &mut metadata)?;
        }
        let header = headers.into_iter().next().ok_or(WimError::BadPartSet {
            reason: "no part given".into(),
        })?;
        let found = u32::try_from(metadata.len()).unwrap_or(u32::MAX);
        if found < header.image_count {
            return Err(WimError::MissingMetadata {
                header: header.image_count,
                found,
            });
        }
        if header.boot_index > header.image_count {
            return Err(WimError::BadBootIndex {
                boot_index: header.boot_index,
                image_count: header.image_count,
            });
        }
        Ok(Wim {
            header,
            io,
            blobs,
            metadata,
            limits,
        })
    }

    /// The header (of part 1 for a split WIM).
    pub fn header(&self) -> &WimHeader {
        &self.header
    }

    /// Images in the WIM.
    pub fn image_count(&self) -> u32 {
        self.header.image_count
    }

    /// The bootable image's index, 0 for none.
    pub fn boot_index(&self) -> u32 {
        self.header.boot_index
    }

    /// The XML data (decoded UTF-16), at most [`Limits::max_xml`] bytes.
    pub fn xml_text(&mut self) -> Result<String, WimError> {
        let part = self.io.parts.first_mut().ok_or(WimError::XmlMissing)?;
        read_xml(&mut part.r, &self.header.xml, part.len, self.limits.max_xml)
    }

    /// Reads image `index`'s (1-based) directory tree.
    pub fn image(&mut self, index: u32) -> Result<Image, WimError> {
        let no_such = WimError::NoSuchImage {
            index,
            image_count: self.header.image_count,
        };
        if index == 0 || index > self.header.image_count {
            return Err(no_such);
        }
        let (hash, blob) = *self.metadata.get(index as usize - 1).ok_or(no_such)?;
        if blob.size > self.limits.max_metadata {
            return Err(WimError::ResourceTooLarge {
                what: "metadata resource",
                size: blob.size,
                limit: self.limits.max_metadata,
            });
        }
        let mut buf = Vec::new();
        StreamReader::new(&mut self.io, Some(blob), hash).copy_to(&mut buf)?;
        let blobs = &self.blobs;
        image::parse(index, &buf, self.limits.tree, &|h| {
            blobs.get(h).map(|b| b.size)
        })
    }

    fn stream(&mut self, hash: Option<Sha1Hash>) -> Result<StreamReader<'_, R>, WimError> {
        let Some(hash) = hash else {
            return Ok(StreamReader::new(&mut self.io, None, [0; 20]));
        };
        let blob = *self.blobs.get(&hash).ok_or_else(|| WimError::MissingBlob {
            hash: hex::encode(hash),
        })?;
        Ok(StreamReader::new(&mut self.io, Some(blob), hash))
    }

    /// A reader of an entry's data, decoded chunk by chunk and checked
    /// against its SHA-1. Directories are an error; reparse points read as
    /// empty.
    pub fn open_file(&mut self, entry: &Entry) -> Result<StreamReader<'_, R>, WimError> {
        if entry.is_dir {
            return Err(WimError::IsDirectory {
                path: entry.name.clone(),
            });
        }
        self.stream(entry.hash)
    }

    /// A reader of a named data stream.
    pub fn open_named(&mut self, s: &NamedStream) -> Result<StreamReader<'_, R>, WimError> {
        self.stream(s.hash)
    }

    /// Streams an entry's data into `w`; returns the bytes written.
    pub fn extract_to<W: Write + ?Sized>(
        &mut self,
        entry: &Entry,
        w: &mut W,
    ) -> Result<u64, WimError> {
        self.open_file(entry)?.copy_to(w)
    }

    /// Gives the part readers back.
    pub fn into_inner(self) -> Vec<R> {
        self.io.parts.into_iter().map(|p| p.r).collect()
    }
}

/// Reads one part's lookup table into `blobs` (first entry per hash wins)
/// and, for part 1, the images' metadata resources into `metadata`.
fn read_lookup_table<R: Read + Seek>(
    io: &mut Io<R>,
    part: usize,
    h: &WimHeader,
    limits: &Limits,
    blobs: &mut HashMap<Sha1Hash, Blob>,
    metadata: &mut Vec<(Sha1Hash, Blob)>,
) -> Result<(), WimError> {
    let file_len = io.parts.get(part).map_or(0, |p| p.len);
    let codec = h.codec()?;
    let lt = h.lookup_table;
    if lt.original_size > limits.max_lookup_table {
        return Err(WimError::ResourceTooLarge {
            what: "lookup table",
            size: lt.original_size,
            limit: limits.max_lookup_table,
        });
    }
    let spec = |r: &ResourceHeader| -> Result<ResourceSpec, WimError> {
        let chunked = if r.is_compressed() {
            Some(Some(codec.ok_or(WimError::BadResource {
                offset: r.offset,
                reason: "compressed resource in a WIM without compression",
            })?))
        } else {
            None
        };
        Ok(ResourceSpec {
            part,
            offset: r.offset,
            stored: r.stored_size,
            size: r.original_size,
            chunked,
            chunk_size: h.chunk_size,
            solid: false,
            pipable: h.pipable,
        })
    };
    let table_res = Resource::new(spec(&lt)?, file_len, limits.max_chunk_size)?;
    let mut buf = Vec::new();
    // The table itself has no recorded hash.
    read_unverified(io, table_res, &mut buf)?;
    let entries: Vec<&[u8]> = buf.chunks_exact(LOOKUP_ENTRY_SIZE).collect();
    let parse = |e: &[u8]| {
        let mut r = [0u8; 24];
        r.copy_from_slice(&e[..24]);
        let mut reshdr = ResourceHeader::parse(&r);
        if h.version == DEFAULT_VERSION {
            // wimlib: ordinary WIMs have no solid resources, whatever the flag.
            reshdr.flags &= !RESHDR_FLAG_SOLID;
        }
        let mut hash = [0u8; 20];
        hash.copy_from_slice(&e[30..50]);
        (reshdr, le_u16(&e[24..26]), le_u32(&e[26..30]), hash)
    };
    // The solid resources of the current run of solid entries.
    let mut run: Option<Vec<Resource>> = None;
    for (i, e) in entries.iter().enumerate() {
        let bad = |reason| WimError::BadLookupTable {
            entry: i as u64,
            reason,
        };
        let (reshdr, part_number, refcnt, hash) = parse(e);
        let blob = if reshdr.flags & RESHDR_FLAG_SOLID != 0 {
            if run.is_none() {
                let mut res = Vec::new();
                for e2 in entries.iter().skip(i) {
                    let (r2, ..) = parse(e2);
                    if r2.flags & RESHDR_FLAG_SOLID == 0 {
                        break;
                    }
                    if r2.original_size != SOLID_RESOURCE_MAGIC {
                        continue;
                    }
                    let (usize_, chunk, ctype) =
                        io.solid_header(part, r2.offset, r2.stored_size)?;
                    let codec = match ctype {
                        0 => None,
                        1 => Some(capmedia_wimlib::Codec::Xpress),
                        2 => Some(capmedia_wimlib::Codec::Lzx),
                        3 => Some(capmedia_wimlib::Codec::Lzms),
                        _ => return Err(bad("unknown codec in a solid resource")),
                    };
                    res.push(Resource::new(
                        ResourceSpec {
                            part,
                            offset: r2.offset,
                            stored: r2.stored_size,
                            size: usize_,
                            chunked: Some(codec),
                            chunk_size: chunk,
                            solid: true,
                            pipable: h.pipable,
                        },
                        file_len,
                        limits.max_chunk_size,
                    )?);
                }
                run = Some(res);
            }
            if reshdr.original_size == SOLID_RESOURCE_MAGIC {
                continue;
            }
            // Offsets are into the concatenation of the run's resources.
            let size = reshdr.stored_size;
            let mut offset = reshdr.offset;
            let mut found = None;
            for r in run.iter().flatten() {
                if offset.checked_add(size).is_some_and(|end| end <= r.size) {
                    found = Some(Blob {
                        res: *r,
                        offset,
                        size,
                    });
                    break;
                }
                offset = offset
                    .checked_sub(r.size)
                    .ok_or(bad("blob straddles solid resources"))?;
            }
            found.ok_or(bad("blob beyond its solid resources"))?
        } else {
            run = None;
            if part_number != h.part || hash == [0; 20] || reshdr.original_size == 0 {
                continue;
            }
            let res = Resource::new(spec(&reshdr)?, file_len, limits.max_chunk_size)?;
            Blob {
                res,
                offset: 0,
                size: res.size,
            }
        };
        if part_number != h.part || hash == [0; 20] || blob.size == 0 {
            continue;
        }
        if reshdr.flags & RESHDR_FLAG_METADATA != 0 {
            if refcnt == 0 || h.part != 1 || metadata.len() as u64 >= u64::from(h.image_count) {
                continue;
            }
            if refcnt != 1 {
                return Err(bad("metadata resource with reference count != 1"));
            }
            if reshdr.flags & RESHDR_FLAG_SOLID != 0 {
                return Err(bad("metadata in a solid resource"));
            }
            metadata.push((hash, blob));
        } else {
            blobs.entry(hash).or_insert(blob);
        }
    }
    Ok(())
}

/// Reads a whole (size-capped by the caller) resource.
fn read_unverified<R: Read + Seek>(
    io: &mut Io<R>,
    res: Resource,
    out: &mut Vec<u8>,
) -> Result<(), WimError> {
    let mut pos = 0;
    while pos < res.size {
        let range = io.fill(&res, pos, res.size - pos)?;
        let piece = io.buf().get(range).unwrap_or(&[]);
        if piece.is_empty() {
            return Err(WimError::BadResource {
                offset: res.offset,
                reason: "resource ends early",
            });
        }
        out.extend_from_slice(piece);
        pos += piece.len() as u64;
    }
    Ok(())
}

/// SHA-1 of some bytes, as the lookup table records it.
pub fn sha1(data: &[u8]) -> Sha1Hash {
    Sha1::digest(data).into()
}

#[allow(dead_code)]
const _: u8 = RESHDR_FLAG_COMPRESSED;
