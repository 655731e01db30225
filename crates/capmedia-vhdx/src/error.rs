use std::io;

/// Why a VHDX cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum VhdxError {
    #[error("unknown VHDX type {0:?}: expected fixed or dynamic")]
    UnknownType(String),
    #[error("a VHDX of {requested} bytes is too large: the format allows at most {max}")]
    TooLarge { requested: u64, max: u64 },
    #[error("the file to write the VHDX into is not empty ({0} bytes)")]
    NotEmpty(u64),
    #[error("the file is {0} bytes, too small to be a VHDX")]
    TooSmall(u64),
    #[error("no VHDX file type identifier: signature is {0:02x?}, expected \"vhdxfile\"")]
    FileSignature([u8; 8]),
    #[error("VHDX header {0} has no \"head\" signature")]
    HeaderSignature(usize),
    #[error(
        "VHDX header {which} checksum is wrong: stored {stored:#010x}, computed {computed:#010x}"
    )]
    HeaderChecksum {
        which: usize,
        stored: u32,
        computed: u32,
    },
    #[error("neither VHDX header is valid: {0}")]
    NoValidHeader(Box<VhdxError>),
    #[error("unsupported VHDX version {0}")]
    Version(u16),
    #[error("the VHDX log is not empty (log GUID {0}): replaying it is not supported")]
    LogNotEmpty(uuid::Uuid),
    #[error("VHDX region table {0} has no \"regi\" signature")]
    RegionSignature(usize),
    #[error("VHDX region table {which} checksum is wrong: stored {stored:#010x}, computed {computed:#010x}")]
    RegionChecksum {
        which: usize,
        stored: u32,
        computed: u32,
    },
    #[error("neither VHDX region table is valid: {0}")]
    NoValidRegionTable(Box<VhdxError>),
    #[error("VHDX region table has {0} entries, more than 2047")]
    RegionCount(u32),
    #[error("VHDX has an unknown required region {0}")]
    UnknownRequiredRegion(uuid::Uuid),
    #[error("VHDX region {0} appears twice")]
    DuplicateRegion(uuid::Uuid),
    #[error("VHDX has no {0} region")]
    MissingRegion(&'static str),
    #[error("VHDX {what} ({offset}, {length} bytes) is not 1 MiB aligned, overlaps the headers or another region, or lies outside the {file_len}-byte file")]
    BadRegion {
        what: &'static str,
        offset: u64,
        length: u64,
        file_len: u64,
    },
    #[error("VHDX metadata table has no \"metadata\" signature")]
    MetadataSignature,
    #[error("VHDX metadata table has {0} entries, more than 2047")]
    MetadataCount(u16),
    #[error("VHDX metadata item {guid} ({offset}, {length} bytes) lies outside the metadata region or has the wrong length")]
    BadMetadataItem {
        guid: uuid::Uuid,
        offset: u32,
        length: u32,
    },
    #[error("VHDX metadata item {0} appears twice")]
    DuplicateMetadataItem(uuid::Uuid),
    #[error("VHDX has an unknown required metadata item {0}")]
    UnknownRequiredMetadata(uuid::Uuid),
    #[error("VHDX lacks the required metadata item {0}")]
    MissingMetadata(&'static str),
    #[error("unsupported VHDX block size {0}")]
    BlockSize(u32),
    #[error("unsupported VHDX sector size {0}")]
    SectorSize(u32),
    #[error("VHDX virtual disk size {0} is zero, not whole sectors, or above 64 TiB")]
    DiskSize(u64),
    #[error("differencing VHDX files are not supported")]
    Differencing,
    #[error("VHDX BAT region of {region} bytes is too small for {entries} entries")]
    BatTooSmall { region: u64, entries: u64 },
    #[error("VHDX BAT entry {index} has state {state}, not valid here")]
    BatState { index: u64, state: u64 },
    #[error("VHDX block {block} at {offset} lies outside the {file_len}-byte file or inside its metadata")]
    BlockOutOfBounds {
        block: u64,
        offset: u64,
        file_len: u64,
    },
    #[error("VHDX file grew past what a BAT entry can address")]
    FileTooLarge,
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<VhdxError> for io::Error {
    fn from(e: VhdxError) -> io::Error {
        match e {
            VhdxError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}
