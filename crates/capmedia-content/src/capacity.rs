use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How much one medium holds.
///
/// The presets are disc capacities, named after the discs (`cd`, `dvd`,
/// `dvd-dl`); the wizard's names for them (`650MB`, `4GB`, `8GB`, and the
/// cmdlet's `Size650MB`, ...) are accepted as aliases. The byte counts are
/// the real capacities of the discs, so a set planned for `dvd` fits a
/// single-layer DVD. They are not USB stick sizes: a stick is given in bytes
/// with K/M/G (see [`Capacity::disc_preset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capacity {
    Unlimited,
    Bytes(u64),
}

/// A CD-R: 333,000 sectors of 2048 bytes.
pub const CD_650MB: u64 = 333_000 * 2048;
/// A single-layer DVD±R (4.7 GB): 2,295,104 sectors of 2048 bytes.
pub const DVD_4GB: u64 = 2_295_104 * 2048;
/// A dual-layer DVD+R (8.5 GB): 4,173,824 sectors of 2048 bytes.
pub const DVD_8GB: u64 = 4_173_824 * 2048;

impl Capacity {
    /// The presets from smallest to largest, with their command-line names.
    pub const PRESETS: [(&'static str, Capacity); 4] = [
        ("cd", Capacity::Bytes(CD_650MB)),
        ("dvd", Capacity::Bytes(DVD_4GB)),
        ("dvd-dl", Capacity::Bytes(DVD_8GB)),
        ("unlimited", Capacity::Unlimited),
    ];

    /// The wizard's names for the disc presets, kept as aliases:
    /// (alias, preset name).
    pub const ALIASES: [(&'static str, &'static str); 3] =
        [("650MB", "cd"), ("4GB", "dvd"), ("8GB", "dvd-dl")];

    /// The disc preset this capacity is (`cd`, `dvd`, `dvd-dl`), if it is
    /// one. Sinks that write disks (a USB stick, a VHD) refuse these: a
    /// disc's capacity says nothing about a stick's size.
    pub fn disc_preset(self) -> Option<&'static str> {
        Self::PRESETS
            .iter()
            .find(|(name, c)| *c == self && *name != "unlimited")
            .map(|(name, _)| *name)
    }

    pub fn bytes(self) -> Option<u64> {
        match self {
            Capacity::Unlimited => None,
            Capacity::Bytes(b) => Some(b),
        }
    }

    /// Whether `n` bytes fit.
    pub fn holds(self, n: u64) -> bool {
        self.bytes().is_none_or(|b| n <= b)
    }

    /// The smallest preset that holds `n` bytes.
    pub fn smallest_preset_for(n: u64) -> (&'static str, Capacity) {
        Self::PRESETS
            .into_iter()
            .find(|(_, c)| c.holds(n))
            .unwrap_or(("unlimited", Capacity::Unlimited))
    }
}

/// Why a text is not a media size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid media size {0:?}: use cd, dvd, dvd-dl (disc presets; 650MB, 4GB, 8GB are aliases), unlimited, or a byte count with an optional K/M/G/T suffix (powers of 1024)")]
pub struct CapacityParseError(pub String);

impl FromStr for Capacity {
    type Err = CapacityParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CapacityParseError(s.to_owned());
        let t = s.trim();
        let named = |n: &str| {
            let n = Self::ALIASES
                .iter()
                .find(|(alias, _)| alias.eq_ignore_ascii_case(n))
                .map_or(n, |(_, name)| *name);
            Self::PRESETS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(n))
                .map(|(_, c)| *c)
        };
        if let Some(c) = named(t) {
            return Ok(c);
        }
        // The wizard's cmdlet spells them Size650MB, Size4GB, ...
        if let Some(c) = t
            .strip_prefix("Size")
            .or_else(|| t.strip_prefix("size"))
            .and_then(named)
        {
            return Ok(c);
        }
        let upper = t.to_ascii_uppercase();
        let digits_end = upper
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(upper.len());
        let (num, suffix) = upper.split_at(digits_end);
        let n: u64 = num.parse().map_err(|_| bad())?;
        let shift = match suffix.trim_end_matches("IB").trim_end_matches('B') {
            "" => 0,
            "K" => 10,
            "M" => 20,
            "G" => 30,
            "T" => 40,
            _ => return Err(bad()),
        };
        let bytes = n.checked_mul(1u64 << shift).ok_or_else(bad)?;
        if bytes == 0 {
            return Err(bad());
        }
        Ok(Capacity::Bytes(bytes))
    }
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capacity::Unlimited => f.write_str("unlimited"),
            Capacity::Bytes(b) => {
                if let Some((name, _)) = Self::PRESETS.iter().find(|(_, c)| *c == *self) {
                    write!(f, "{name} ({b} bytes)")
                } else {
                    write!(f, "{b} bytes")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_presets_and_sizes() {
        assert_eq!("650MB".parse(), Ok(Capacity::Bytes(CD_650MB)));
        assert_eq!("cd".parse(), Ok(Capacity::Bytes(CD_650MB)));
        assert_eq!("DVD".parse(), Ok(Capacity::Bytes(DVD_4GB)));
        assert_eq!("dvd-dl".parse(), Ok(Capacity::Bytes(DVD_8GB)));
        assert_eq!("SizeUnlimited".parse(), Ok(Capacity::Unlimited));
        assert_eq!("Size4GB".parse(), Ok(Capacity::Bytes(DVD_4GB)));
        assert_eq!("8gb".parse(), Ok(Capacity::Bytes(DVD_8GB)));
        assert_eq!("unlimited".parse(), Ok(Capacity::Unlimited));
        assert_eq!("25M".parse(), Ok(Capacity::Bytes(25 << 20)));
        assert_eq!("25MiB".parse(), Ok(Capacity::Bytes(25 << 20)));
        assert_eq!("1G".parse(), Ok(Capacity::Bytes(1 << 30)));
        assert_eq!("4096".parse(), Ok(Capacity::Bytes(4096)));
        for bad in ["", "0", "12X", "-1", "M", "99999999999999999999T"] {
            assert!(bad.parse::<Capacity>().is_err(), "{bad}");
        }
    }

    #[test]
    fn smallest_preset() {
        assert_eq!(Capacity::smallest_preset_for(10).0, "cd");
        assert_eq!(Capacity::smallest_preset_for(CD_650MB + 1).0, "dvd");
        assert_eq!(Capacity::smallest_preset_for(u64::MAX).0, "unlimited");
    }

    #[test]
    fn disc_presets_are_known_as_such() {
        assert_eq!(Capacity::Bytes(DVD_4GB).disc_preset(), Some("dvd"));
        assert_eq!(
            "8GB".parse::<Capacity>().unwrap().disc_preset(),
            Some("dvd-dl")
        );
        assert_eq!(Capacity::Bytes(4 << 30).disc_preset(), None);
        assert_eq!(Capacity::Unlimited.disc_preset(), None);
        assert_eq!(
            Capacity::Bytes(CD_650MB).to_string(),
            "cd (681984000 bytes)"
        );
    }
}
