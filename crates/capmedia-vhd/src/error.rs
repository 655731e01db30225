use std::io;

/// Why a VHD cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum VhdError {
    #[error("unknown VHD type {0:?}: expected fixed or dynamic")]
    UnknownType(String),
    #[error("a VHD of {requested} bytes is too large: the format allows at most {max}")]
    TooLarge { requested: u64, max: u64 },
    #[error("the file to write the VHD into is not empty ({0} bytes)")]
    NotEmpty(u64),
    #[error("the file is {0} bytes, too small to be a VHD")]
    TooSmall(u64),
    #[error("no VHD footer: cookie is {0:02x?}, expected \"conectix\"")]
    FooterCookie([u8; 8]),
    #[error("VHD footer checksum is wrong: stored {stored:#010x}, computed {computed:#010x}")]
    FooterChecksum { stored: u32, computed: u32 },
    #[error("unsupported VHD footer version {0:#010x}")]
    FooterVersion(u32),
    #[error("differencing VHDs are not supported")]
    Differencing,
    #[error("unknown VHD disk type {0}")]
    DiskType(u32),
    #[error("VHD current size {0} is not a whole number of sectors or is too large")]
    BadSize(u64),
    #[error("fixed VHD of {size} bytes needs a {expected}-byte file, the file has {actual}")]
    FixedLength {
        size: u64,
        expected: u64,
        actual: u64,
    },
    #[error("dynamic header offset {offset} lies outside the {file_len}-byte file")]
    HeaderOffset { offset: u64, file_len: u64 },
    #[error("no dynamic disk header: cookie is {0:02x?}, expected \"cxsparse\"")]
    HeaderCookie([u8; 8]),
    #[error("dynamic header checksum is wrong: stored {stored:#010x}, computed {computed:#010x}")]
    HeaderChecksum { stored: u32, computed: u32 },
    #[error("unsupported dynamic header version {0:#010x}")]
    HeaderVersion(u32),
    #[error("unsupported dynamic block size {0}")]
    BlockSize(u32),
    #[error("block allocation table has {entries} entries, the disk needs {needed}")]
    TableTooSmall { entries: u32, needed: u64 },
    #[error("block allocation table ({entries} entries at {offset}) lies outside the {file_len}-byte file")]
    TableOutOfBounds {
        offset: u64,
        entries: u32,
        file_len: u64,
    },
    #[error(
        "block {block} at sector {sector} lies outside the data area of the {file_len}-byte file"
    )]
    BlockOutOfBounds {
        block: u64,
        sector: u32,
        file_len: u64,
    },
    #[error("VHD file grew past the 2 TiB a block allocation table can address")]
    FileTooLarge,
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<VhdError> for io::Error {
    fn from(e: VhdError) -> io::Error {
        match e {
            VhdError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}
