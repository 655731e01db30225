use thiserror::Error;

/// Everything that can be wrong with a hive being read, or with a tree that
/// cannot be written as one.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegfError {
    #[error("not a registry hive (no `regf` signature)")]
    NotAHive,
    #[error("the hive is truncated: {0}")]
    Truncated(&'static str),
    #[error("unsupported hive version {major}.{minor}")]
    Version { major: u32, minor: u32 },
    #[error("the hive is not a primary file (file type {0})")]
    FileType(u32),
    #[error("base block checksum {stored:#010x} does not match the computed {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("bad hive bin at offset {offset:#x}: {reason}")]
    Bin { offset: u32, reason: &'static str },
    #[error("bad cell at offset {offset:#x}: {reason}")]
    Cell { offset: u32, reason: &'static str },
    #[error("expected a `{expected}` cell at offset {offset:#x}")]
    Signature { offset: u32, expected: &'static str },
    #[error("key at offset {0:#x} is reached twice (a cycle or a shared key)")]
    Cycle(u32),
    #[error("the hive exceeds a reading limit: {0}")]
    Limit(&'static str),
    #[error("invalid key name {0:?}")]
    KeyName(String),
    #[error("invalid value name {0:?}")]
    ValueName(String),
    #[error("two subkeys named {0:?} (names compare case-insensitively)")]
    DuplicateKey(String),
    #[error("two values named {0:?} (names compare case-insensitively)")]
    DuplicateValue(String),
    #[error("the tree is too large for a hive: {0}")]
    TooLarge(&'static str),
    #[error("only hive versions 1.3 and 1.5 are written, not 1.{0}")]
    WriteVersion(u32),
}
