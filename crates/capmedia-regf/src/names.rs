//! Name comparison as the registry does it: per UTF-16 code unit, uppercased.

/// One UTF-16 code unit uppercased the way `RtlUpcaseUnicodeChar` does for
/// the units it maps one-to-one (surrogates and characters whose uppercase is
/// more than one unit stay as they are).
fn upcase_unit(u: u16) -> u16 {
    if u < 0x80 {
        return (u as u8).to_ascii_uppercase() as u16;
    }
    let Some(c) = char::from_u32(u as u32) else {
        return u;
    };
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(one), None) if (one as u32) <= 0xFFFF => one as u32 as u16,
        _ => u,
    }
}

/// The name as uppercased UTF-16 code units: the registry's sort and compare key.
pub fn upcase_name(name: &str) -> Vec<u16> {
    name.encode_utf16().map(upcase_unit).collect()
}

/// The hash of an `lh` leaf entry: `h = h * 37 + unit` over the uppercased
/// UTF-16 code units of the name, wrapping at 32 bits.
pub fn lh_hash(name: &str) -> u32 {
    name.encode_utf16()
        .map(upcase_unit)
        .fold(0u32, |h, u| h.wrapping_mul(37).wrapping_add(u as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_of_the_uppercase_name() {
        assert_eq!(lh_hash("a"), 'A' as u32);
        assert_eq!(lh_hash("ab"), 'A' as u32 * 37 + 'B' as u32);
        assert_eq!(lh_hash("Objects"), lh_hash("OBJECTS"));
    }

    #[test]
    fn upcase_non_ascii() {
        assert_eq!(upcase_name("é"), vec![0xC9]);
        // U+00DF uppercases to "SS" (two units): kept as is.
        assert_eq!(upcase_name("ß"), vec![0xDF]);
    }
}
