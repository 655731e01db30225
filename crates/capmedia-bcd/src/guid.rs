use std::fmt;

use serde::{Serialize, Serializer};
use uuid::Uuid;

/// A BCD object identifier. Key names spell it `{xxxxxxxx-xxxx-...}` in
/// lowercase; binary elements store it in the Windows GUID layout (the
/// first three fields little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Guid(pub Uuid);

impl Guid {
    /// From the text form, with or without braces.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let inner = s
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .unwrap_or(s);
        // Only the hyphenated 36-character form, as BCD key names use.
        if inner.len() != 36 {
            return None;
        }
        Uuid::try_parse(inner).ok().map(Self)
    }

    /// A compile-time constant from the text form (panics at compile time
    /// on a malformed literal).
    pub const fn from_u128(v: u128) -> Self {
        Self(Uuid::from_u128(v))
    }

    /// From the 16 bytes of a Windows `GUID` structure.
    pub fn from_bytes_le(b: [u8; 16]) -> Self {
        Self(Uuid::from_bytes_le(b))
    }

    /// The 16 bytes of a Windows `GUID` structure.
    pub fn to_bytes_le(self) -> [u8; 16] {
        self.0.to_bytes_le()
    }

    pub fn is_nil(self) -> bool {
        self.0.is_nil()
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.0.hyphenated())
    }
}

impl Serialize for Guid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The well-known objects and the aliases `bcdedit` shows for them.
pub mod well_known {
    use super::Guid;

    pub const FWBOOTMGR: Guid = Guid::from_u128(0xa5a30fa2_3d06_4e9f_b5f4_a01df9d1fcba);
    pub const BOOTMGR: Guid = Guid::from_u128(0x9dea862c_5cdd_4e70_acc1_f32b344d4795);
    pub const MEMDIAG: Guid = Guid::from_u128(0xb2721d73_1db4_4c62_bf78_c548a880142d);
    pub const NTLDR: Guid = Guid::from_u128(0x466f5a88_0af2_4f76_9038_095b170dc21c);
    pub const CURRENT: Guid = Guid::from_u128(0xfa926493_6f1c_4193_a414_58f0b2456d1e);
    pub const DEFAULT: Guid = Guid::from_u128(0x1cae1eb7_a0df_4d4d_9851_4860e34ef535);
    pub const BADMEMORY: Guid = Guid::from_u128(0x5189b25c_5558_4bf2_bca4_289b11bd29e2);
    pub const BOOTLOADERSETTINGS: Guid = Guid::from_u128(0x6efb52bf_1766_41db_a6b3_0ee5eff72bd7);
    pub const DBGSETTINGS: Guid = Guid::from_u128(0x4636856e_540f_4170_a130_a84776f4c654);
    pub const EMSSETTINGS: Guid = Guid::from_u128(0x0ce4991b_e6b3_4b16_b23c_5e0d9250e5d9);
    pub const GLOBALSETTINGS: Guid = Guid::from_u128(0x7ea2e1ac_2e61_4728_aaa3_896d9d0a9f0e);
    pub const HYPERVISORSETTINGS: Guid = Guid::from_u128(0x7ff607e0_4395_11db_b0de_0800200c9a66);
    pub const KERNELDBGSETTINGS: Guid = Guid::from_u128(0x313e8eed_7098_4586_a9bf_309c61f8d449);
    pub const RESUMELOADERSETTINGS: Guid = Guid::from_u128(0x1afa9c49_16ab_4a5c_901b_212802da9460);
    pub const RAMDISKOPTIONS: Guid = Guid::from_u128(0xae5534e0_a924_466c_b836_758539a3ee3a);
    /// The Windows Setup / Windows PE media boot entry (`GUID_WINDOWS_SETUP_BOOT_ENTRY`
    /// in the Windows SDK's bcd headers): the loader of the BCD stores on
    /// Windows installation and ADK Windows PE media.
    pub const WINDOWS_SETUP_BOOT_ENTRY: Guid =
        Guid::from_u128(0x7619dcc9_fafe_11d9_b411_000476eba25f);

    /// `(guid, alias)` for every alias `bcdedit` prints.
    pub const ALIASES: &[(Guid, &str)] = &[
        (FWBOOTMGR, "{fwbootmgr}"),
        (BOOTMGR, "{bootmgr}"),
        (MEMDIAG, "{memdiag}"),
        (NTLDR, "{ntldr}"),
        (CURRENT, "{current}"),
        (DEFAULT, "{default}"),
        (BADMEMORY, "{badmemory}"),
        (BOOTLOADERSETTINGS, "{bootloadersettings}"),
        (DBGSETTINGS, "{dbgsettings}"),
        (EMSSETTINGS, "{emssettings}"),
        (GLOBALSETTINGS, "{globalsettings}"),
        (HYPERVISORSETTINGS, "{hypervisorsettings}"),
        (KERNELDBGSETTINGS, "{kerneldbgsettings}"),
        (RESUMELOADERSETTINGS, "{resumeloadersettings}"),
        (RAMDISKOPTIONS, "{ramdiskoptions}"),
    ];

    /// The alias of a well-known object.
    pub fn alias(g: Guid) -> Option<&'static str> {
        ALIASES.iter().find(|(id, _)| *id == g).map(|(_, a)| *a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary_forms() {
        let g = well_known::RAMDISKOPTIONS;
        assert_eq!(g.to_string(), "{ae5534e0-a924-466c-b836-758539a3ee3a}");
        assert_eq!(Guid::parse(&g.to_string()), Some(g));
        assert_eq!(
            Guid::parse("{AE5534E0-A924-466C-B836-758539A3EE3A}"),
            Some(g)
        );
        assert_eq!(Guid::parse("{ae5534e0}"), None);
        // Windows GUID layout: Data1..Data3 little-endian.
        assert_eq!(
            g.to_bytes_le()[..8],
            [0xe0, 0x34, 0x55, 0xae, 0x24, 0xa9, 0x6c, 0x46]
        );
    }
}
