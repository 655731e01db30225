use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a text is not a valid media path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaPathError {
    #[error("media path is empty")]
    Empty,
    #[error("media path {0:?} is absolute; media paths are relative to the medium's root")]
    Absolute(String),
    #[error("media path {0:?} uses '\\'; media paths are '/'-separated")]
    Backslash(String),
    #[error("media path {0:?} has an empty component")]
    EmptyComponent(String),
    #[error("media path {0:?} has a '.' or '..' component")]
    DotComponent(String),
    #[error("media path {path:?} contains the control character {ch:?}")]
    ControlChar { path: String, ch: char },
    #[error("media path {path:?} contains {ch:?}, which FAT, ISO 9660/Joliet and Windows forbid")]
    ForbiddenChar { path: String, ch: char },
    #[error("media path {path:?} uses the reserved device name {name:?}")]
    ReservedName { path: String, name: String },
    #[error("media path {0:?} has a component ending in '.' or ' ', which Windows cannot open")]
    TrailingDotOrSpace(String),
    #[error("media path {0:?} has a component longer than 255 characters")]
    ComponentTooLong(String),
}

/// A path on the medium: relative, `/`-separated, every component a name that
/// FAT32, Joliet and Windows all accept.
///
/// The invariant is established by [`MediaPath::new`] and cannot be broken
/// afterwards, so sinks may join a `MediaPath` onto a directory without
/// re-checking it for traversal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MediaPath(String);

/// Windows device names, reserved with or without an extension.
const RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

impl MediaPath {
    pub fn new(s: &str) -> Result<Self, MediaPathError> {
        if s.is_empty() {
            return Err(MediaPathError::Empty);
        }
        let owned = || s.to_owned();
        if let Some(ch) = s.chars().find(|c| c.is_control()) {
            return Err(MediaPathError::ControlChar { path: owned(), ch });
        }
        if s.starts_with('/') || (s.len() >= 2 && s.as_bytes()[1] == b':') {
            return Err(MediaPathError::Absolute(owned()));
        }
        if s.contains('\\') {
            return Err(MediaPathError::Backslash(owned()));
        }
        for comp in s.split('/') {
            if comp.is_empty() {
                return Err(MediaPathError::EmptyComponent(owned()));
            }
            if comp == "." || comp == ".." {
                return Err(MediaPathError::DotComponent(owned()));
            }
            if let Some(ch) = comp.chars().find(|c| "<>:\"|?*".contains(*c)) {
                return Err(MediaPathError::ForbiddenChar { path: owned(), ch });
            }
            if comp.ends_with('.') || comp.ends_with(' ') {
                return Err(MediaPathError::TrailingDotOrSpace(owned()));
            }
            if comp.chars().count() > 255 {
                return Err(MediaPathError::ComponentTooLong(owned()));
            }
            let stem = comp.split('.').next().unwrap_or(comp).trim_end();
            if let Some(r) = RESERVED.iter().find(|r| r.eq_ignore_ascii_case(stem)) {
                return Err(MediaPathError::ReservedName {
                    path: owned(),
                    name: (*r).to_owned(),
                });
            }
        }
        Ok(MediaPath(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, root first.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The parent directory, `None` for a file at the root.
    pub fn parent(&self) -> Option<&str> {
        self.0.rsplit_once('/').map(|(p, _)| p)
    }

    /// `self` followed by `name`, validated.
    pub fn join(&self, name: &str) -> Result<MediaPath, MediaPathError> {
        MediaPath::new(&format!("{}/{}", self.0, name))
    }

    /// The key under which FAT and Joliet consider two names the same.
    pub fn case_key(&self) -> String {
        self.0.to_lowercase()
    }

    /// Join onto a host directory. Safe by construction: no component can
    /// climb out of `dir`.
    pub fn to_host_path(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let mut p = dir.to_path_buf();
        p.extend(self.components());
        p
    }
}

impl FromStr for MediaPath {
    type Err = MediaPathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MediaPath::new(s)
    }
}

impl TryFrom<String> for MediaPath {
    type Error = MediaPathError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        MediaPath::new(&s)
    }
}

impl From<MediaPath> for String {
    fn from(p: MediaPath) -> String {
        p.0
    }
}

impl fmt::Display for MediaPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> MediaPathError {
        MediaPath::new(s).expect_err(s)
    }

    #[test]
    fn accepts_ordinary_paths() {
        for ok in [
            "bootmgr",
            "boot/bcd",
            "efi/microsoft/boot/bcd",
            "sources/boot.wim",
            "SMS/data/TsmBootstrap.ini",
            "Long name with spaces.txt",
            "ünïcödé/ファイル",
            "CONSOLE/x",
            "NULL.txt",
        ] {
            assert_eq!(MediaPath::new(ok).map(|p| p.to_string()), Ok(ok.to_owned()));
        }
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(err(""), MediaPathError::Empty);
    }

    #[test]
    fn rejects_absolute() {
        assert!(matches!(err("/boot/bcd"), MediaPathError::Absolute(_)));
        assert!(matches!(err("C:/boot"), MediaPathError::Absolute(_)));
        assert!(matches!(err("c:boot"), MediaPathError::Absolute(_)));
    }

    #[test]
    fn rejects_backslash() {
        assert!(matches!(err("boot\\bcd"), MediaPathError::Backslash(_)));
    }

    #[test]
    fn rejects_empty_components() {
        assert!(matches!(
            err("boot//bcd"),
            MediaPathError::EmptyComponent(_)
        ));
        assert!(matches!(err("boot/"), MediaPathError::EmptyComponent(_)));
    }

    #[test]
    fn rejects_dot_components() {
        assert!(matches!(err(".."), MediaPathError::DotComponent(_)));
        assert!(matches!(err("a/../b"), MediaPathError::DotComponent(_)));
        assert!(matches!(err("./a"), MediaPathError::DotComponent(_)));
    }

    #[test]
    fn rejects_reserved_names() {
        for bad in ["CON", "nul", "boot/aux.txt", "COM1", "lpt9.log", "PRN/x"] {
            assert!(
                matches!(err(bad), MediaPathError::ReservedName { .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_control_characters() {
        for bad in ["a\0b", "a\nb", "tab\there", "del\u{7f}"] {
            assert!(
                matches!(err(bad), MediaPathError::ControlChar { .. }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejects_forbidden_characters_and_trailing_dots() {
        for bad in ["a<b", "a>b", "what?", "star*", "pipe|", "quo\"te", "a/b:c"] {
            assert!(
                matches!(err(bad), MediaPathError::ForbiddenChar { .. }),
                "{bad}"
            );
        }
        assert!(matches!(
            err("dir./x"),
            MediaPathError::TrailingDotOrSpace(_)
        ));
        assert!(matches!(err("x "), MediaPathError::TrailingDotOrSpace(_)));
        assert!(matches!(
            err(&"n".repeat(256)),
            MediaPathError::ComponentTooLong(_)
        ));
    }

    #[test]
    fn serde_validates() {
        assert!(serde_json::from_str::<MediaPath>("\"../etc/passwd\"").is_err());
        let p: MediaPath = serde_json::from_str("\"boot/bcd\"").unwrap();
        assert_eq!(p.parent(), Some("boot"));
        assert_eq!(p.file_name(), "bcd");
        assert_eq!(
            p.to_host_path(std::path::Path::new("/m")),
            std::path::PathBuf::from("/m/boot/bcd")
        );
    }
}
