use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A malformed package or content id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("package id {0:?} is not a site code of 3 letters or digits followed by 5 hex digits (e.g. PS100005), nor Content_<GUID>")]
    Package(String),
    #[error("content id {0:?} is not <package id>.<version> (e.g. PS100005.1)")]
    Content(String),
}

/// A Configuration Manager package id: a 3-character site code and 5 hex
/// digits (`PS100005`), or an application content id `Content_<GUID>`.
///
/// Stored upper-case (site codes and hex are case-insensitive on a DP) except
/// for the literal `Content_` prefix, so two spellings compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PackageId(String);

impl PackageId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file name of a boot image package's WIM: `boot.<PKGID>.wim`.
    pub fn boot_wim_name(&self) -> String {
        format!("boot.{}.wim", self.0)
    }
}

fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    groups.len() == 5
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl FromStr for PackageId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(guid) = s
            .strip_prefix("Content_")
            .or_else(|| s.strip_prefix("content_"))
        {
            if is_guid(guid) {
                return Ok(PackageId(format!("Content_{}", guid.to_ascii_lowercase())));
            }
            return Err(IdError::Package(s.to_owned()));
        }
        let b = s.as_bytes();
        if b.len() == 8
            && b[..3].iter().all(u8::is_ascii_alphanumeric)
            && b[3..].iter().all(u8::is_ascii_hexdigit)
        {
            Ok(PackageId(s.to_ascii_uppercase()))
        } else {
            Err(IdError::Package(s.to_owned()))
        }
    }
}

impl TryFrom<String> for PackageId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PackageId> for String {
    fn from(p: PackageId) -> String {
        p.0
    }
}

impl fmt::Display for PackageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A package's content at one version, as `PkgLib` lists it: `PS100005.1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContentId {
    pub package: PackageId,
    pub version: u32,
}

impl FromStr for ContentId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IdError::Content(s.to_owned());
        let (pkg, ver) = s.rsplit_once('.').ok_or_else(bad)?;
        if ver.is_empty() || !ver.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(ContentId {
            package: pkg.parse().map_err(|_| bad())?,
            version: ver.parse().map_err(|_| bad())?,
        })
    }
}

impl TryFrom<String> for ContentId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ContentId> for String {
    fn from(c: ContentId) -> String {
        c.to_string()
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.package, self.version)
    }
}

/// What a package is, where the DP or its contents tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageKind {
    BootImage,
    OsImage,
    Package,
    DriverPackage,
    Application,
    /// The DP does not say and the contents do not show.
    Unknown,
}

impl PackageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageKind::BootImage => "boot-image",
            PackageKind::OsImage => "os-image",
            PackageKind::Package => "package",
            PackageKind::DriverPackage => "driver-package",
            PackageKind::Application => "application",
            PackageKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for PackageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_ids() {
        assert_eq!(
            "ps100005".parse::<PackageId>().map(|p| p.0),
            Ok("PS100005".into())
        );
        assert!("PS1000G5".parse::<PackageId>().is_err());
        assert!("PS10005".parse::<PackageId>().is_err());
        assert!("P-100005".parse::<PackageId>().is_err());
        let c: PackageId = "Content_3C2B5D4E-1A2B-4C3D-8E9F-0123456789AB"
            .parse()
            .unwrap();
        assert_eq!(c.as_str(), "Content_3c2b5d4e-1a2b-4c3d-8e9f-0123456789ab");
        assert!("Content_xyz".parse::<PackageId>().is_err());
        assert_eq!(
            "PS100005".parse::<PackageId>().unwrap().boot_wim_name(),
            "boot.PS100005.wim"
        );
    }

    #[test]
    fn content_ids() {
        let c: ContentId = "PS100005.12".parse().unwrap();
        assert_eq!(c.version, 12);
        assert_eq!(c.to_string(), "PS100005.12");
        for bad in ["PS100005", "PS100005.", "PS100005.x", ".1", "PS1000.1"] {
            assert!(bad.parse::<ContentId>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, "\"PS100005.12\"");
        assert_eq!(serde_json::from_str::<ContentId>(&json).unwrap(), c);
        assert!(serde_json::from_str::<ContentId>("\"nope\"").is_err());
    }
}
