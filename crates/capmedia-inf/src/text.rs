//! Turning the bytes of an INF file or a device list into text.
//!
//! Inbox INFs are UTF-16LE with a byte-order mark; third-party INFs are
//! mostly "ANSI" (the code page of the machine that wrote them, in practice
//! Windows-1252) or UTF-8; `pnputil` output redirected by PowerShell 5 is
//! UTF-16LE. Decoding never fails: bytes that are not valid in the detected
//! encoding become U+FFFD, so a damaged file still yields its readable lines.

use serde::Serialize;

/// How the text was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TextEncoding {
    /// UTF-16 little-endian (with or without a byte-order mark).
    Utf16Le,
    /// UTF-16 big-endian (with a byte-order mark, or detected).
    Utf16Be,
    /// UTF-8 (with or without a byte-order mark).
    Utf8,
    /// Anything else, read as Windows-1252 (a superset of Latin-1's
    /// printable range; every byte decodes).
    Windows1252,
}

impl std::fmt::Display for TextEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            TextEncoding::Utf16Le => "utf-16le",
            TextEncoding::Utf16Be => "utf-16be",
            TextEncoding::Utf8 => "utf-8",
            TextEncoding::Windows1252 => "windows-1252",
        })
    }
}

/// How many leading bytes the BOM-less UTF-16 guess looks at.
const SNIFF: usize = 512;

/// Decodes `bytes`, choosing the encoding by byte-order mark, then by the
/// zero bytes that ASCII text in UTF-16 has, then by UTF-8 validity.
pub fn decode(bytes: &[u8]) -> (String, TextEncoding) {
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return (utf16(rest, encoding_rs::UTF_16LE), TextEncoding::Utf16Le);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return (utf16(rest, encoding_rs::UTF_16BE), TextEncoding::Utf16Be);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return (
            String::from_utf8_lossy(rest).into_owned(),
            TextEncoding::Utf8,
        );
    }
    match utf16_without_bom(bytes) {
        Some(TextEncoding::Utf16Le) => {
            return (utf16(bytes, encoding_rs::UTF_16LE), TextEncoding::Utf16Le)
        }
        Some(TextEncoding::Utf16Be) => {
            return (utf16(bytes, encoding_rs::UTF_16BE), TextEncoding::Utf16Be)
        }
        _ => {}
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_owned(), TextEncoding::Utf8),
        Err(_) => {
            let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
            (text.into_owned(), TextEncoding::Windows1252)
        }
    }
}

fn utf16(bytes: &[u8], enc: &'static encoding_rs::Encoding) -> String {
    enc.decode_without_bom_handling(bytes).0.into_owned()
}

/// INF and device-list text is nearly all ASCII, so in UTF-16 one byte of
/// each pair is zero. Text in a single-byte encoding has no zero bytes.
fn utf16_without_bom(bytes: &[u8]) -> Option<TextEncoding> {
    let head = bytes.get(..bytes.len().min(SNIFF))?;
    let pairs = head.len() / 2;
    if pairs < 2 {
        return None;
    }
    let (mut zero_even, mut zero_odd) = (0usize, 0usize);
    for pair in head.chunks_exact(2) {
        if let [a, b] = pair {
            zero_even += usize::from(*a == 0);
            zero_odd += usize::from(*b == 0);
        }
    }
    // Three quarters of the pairs with the zero on one side, none on the other.
    if zero_odd * 4 >= pairs * 3 && zero_even == 0 {
        Some(TextEncoding::Utf16Le)
    } else if zero_even * 4 >= pairs * 3 && zero_odd == 0 {
        Some(TextEncoding::Utf16Be)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(s: &str, bom: bool) -> Vec<u8> {
        let mut v = if bom { vec![0xFF, 0xFE] } else { vec![] };
        for u in s.encode_utf16() {
            v.extend_from_slice(&u.to_le_bytes());
        }
        v
    }

    #[test]
    fn detects_each_encoding() {
        let s = "[Version]\r\nProvider=Müller\r\n";
        assert_eq!(
            decode(&utf16le(s, true)),
            (s.to_owned(), TextEncoding::Utf16Le)
        );
        assert_eq!(
            decode(&utf16le(s, false)),
            (s.to_owned(), TextEncoding::Utf16Le)
        );
        let mut be = vec![0xFE, 0xFF];
        for u in s.encode_utf16() {
            be.extend_from_slice(&u.to_be_bytes());
        }
        assert_eq!(decode(&be), (s.to_owned(), TextEncoding::Utf16Be));
        let mut u8bom = vec![0xEF, 0xBB, 0xBF];
        u8bom.extend_from_slice(s.as_bytes());
        assert_eq!(decode(&u8bom), (s.to_owned(), TextEncoding::Utf8));
        assert_eq!(decode(s.as_bytes()), (s.to_owned(), TextEncoding::Utf8));
        // "Müller" in Windows-1252 is 0xFC for ü; 0x99 is the trade mark sign
        // (a C1 control in Latin-1, a letter-like symbol in Windows-1252).
        let ansi = b"Provider=M\xFCller\x99\r\n";
        assert_eq!(
            decode(ansi),
            (
                "Provider=Müller\u{2122}\r\n".to_owned(),
                TextEncoding::Windows1252
            )
        );
    }

    #[test]
    fn odd_utf16_tail_is_replaced_not_dropped_silently() {
        let mut b = utf16le("[a]", true);
        b.push(0x41);
        let (t, e) = decode(&b);
        assert_eq!(e, TextEncoding::Utf16Le);
        assert!(t.starts_with("[a]") && t.ends_with('\u{FFFD}'));
    }
}
