//! INI files as Windows tools write them.
//!
//! A DP writes its content-library INIs in UTF-16LE with a BOM and CRLF line
//! ends; copies and mirrors may have been re-saved as UTF-8 (with or without
//! a BOM). Decoding is done here with std.
//!
//! The grammar is parsed by a small parser of our own rather than `rust-ini`:
//! errors must name the exact line, and rust-ini reports the line *after* an
//! error found at a line end (e.g. `[broken` on line 3 is reported as line 4);
//! its grammar (escapes, quotes, continuation lines) also differs from
//! Windows' `GetPrivateProfileString`, which has none of those and which
//! this parser follows: `[section]`, `key=value`, `;` comments, sections and
//! keys compared case-insensitively, the first occurrence of a key winning.

/// Why INI bytes could not be read; `line` is 1-based where known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniError {
    pub line: Option<usize>,
    pub reason: String,
}

#[derive(Debug)]
struct Section {
    name: String,
    /// (key, value, 1-based line)
    entries: Vec<(String, String, usize)>,
}

/// A parsed INI file.
#[derive(Debug)]
pub struct IniDoc {
    sections: Vec<Section>,
}

/// Turn the bytes of an INI file into text: UTF-16LE/BE with BOM, UTF-8 with
/// or without BOM; other bytes are taken as Latin-1 (Windows' ANSI code page
/// is the only other thing a DP could have written, and the keys capmedia
/// reads are ASCII either way).
pub fn decode_ini_text(bytes: &[u8]) -> Result<String, IniError> {
    let utf16 = |body: &[u8], le: bool| -> Result<String, IniError> {
        if !body.len().is_multiple_of(2) {
            return Err(IniError {
                line: None,
                reason: "UTF-16 text with an odd number of bytes".into(),
            });
        }
        let units = body.chunks_exact(2).map(|c| {
            if le {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        });
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|e| IniError {
                line: None,
                reason: format!("invalid UTF-16: {e}"),
            })
    };
    if let Some(body) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(body, true);
    }
    if let Some(body) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(body, false);
    }
    let body = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    match std::str::from_utf8(body) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Ok(body.iter().map(|&b| char::from(b)).collect()),
    }
}

impl IniDoc {
    /// Decode and parse.
    pub fn parse(bytes: &[u8]) -> Result<IniDoc, IniError> {
        let text = decode_ini_text(bytes)?;
        let mut sections: Vec<Section> = Vec::new();
        for (i, raw) in text.split('\n').enumerate() {
            let line = i + 1;
            let err = |reason: &str| IniError {
                line: Some(line),
                reason: reason.to_owned(),
            };
            if raw.contains('\0') {
                return Err(err("contains NUL"));
            }
            let l = raw.trim();
            if l.is_empty() || l.starts_with(';') || l.starts_with('#') {
                continue;
            }
            if let Some(rest) = l.strip_prefix('[') {
                let name = rest
                    .strip_suffix(']')
                    .ok_or_else(|| err("section header without a closing ']'"))?
                    .trim();
                if name.is_empty() {
                    return Err(err("empty section name"));
                }
                sections.push(Section {
                    name: name.to_owned(),
                    entries: Vec::new(),
                });
            } else if let Some((k, v)) = l.split_once('=') {
                let k = k.trim();
                if k.is_empty() {
                    return Err(err("a value without a key"));
                }
                let section = sections
                    .last_mut()
                    .ok_or_else(|| err("key=value before any [section]"))?;
                section
                    .entries
                    .push((k.to_owned(), v.trim().to_owned(), line));
            } else {
                return Err(err("neither a [section] nor key=value"));
            }
        }
        Ok(IniDoc { sections })
    }

    fn entry(&self, section: &str, key: &str) -> Option<&(String, String, usize)> {
        self.sections
            .iter()
            .filter(|s| s.name.eq_ignore_ascii_case(section))
            .flat_map(|s| s.entries.iter())
            .find(|(k, _, _)| k.eq_ignore_ascii_case(key))
    }

    /// A value, trimmed; section and key compare case-insensitively.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.entry(section, key).map(|(_, v, _)| v.as_str())
    }

    pub fn has_section(&self, section: &str) -> bool {
        self.sections
            .iter()
            .any(|s| s.name.eq_ignore_ascii_case(section))
    }

    /// The keys of a section, in file order.
    pub fn keys(&self, section: &str) -> Vec<&str> {
        self.sections
            .iter()
            .filter(|s| s.name.eq_ignore_ascii_case(section))
            .flat_map(|s| s.entries.iter().map(|(k, _, _)| k.as_str()))
            .collect()
    }

    /// The 1-based line on which `key` of `section` is set, for messages.
    pub fn line_of(&self, section: &str, key: &str) -> Option<usize> {
        self.entry(section, key).map(|(_, _, l)| *l)
    }

    /// Look up a required value and an error pointing at it if missing.
    pub fn require(&self, section: &str, key: &str) -> Result<&str, IniError> {
        self.get(section, key).ok_or_else(|| IniError {
            line: None,
            reason: format!("[{section}] has no {key}="),
        })
    }
}

/// Text as a DP writes it: UTF-16LE with BOM, CRLF line ends.
pub fn encode_utf16le_crlf(text: &str) -> Vec<u8> {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let mut out = vec![0xFF, 0xFE];
    for u in crlf.encode_utf16() {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decodes_all_windows_encodings() {
        let text = "[File]\nSize=12\nHASH=AB\n";
        let utf16 = encode_utf16le_crlf(text);
        let mut be = vec![0xFE, 0xFF];
        for u in "[file]\r\nsize=12\r\n".encode_utf16() {
            be.extend_from_slice(&u.to_be_bytes());
        }
        let mut bom8 = vec![0xEF, 0xBB, 0xBF];
        bom8.extend_from_slice(b"[FILE]\r\nsize=12\r\nhash=AB\r\n");
        for bytes in [utf16, be, bom8, b"[File]\nSize = 12 \n".to_vec()] {
            let d = IniDoc::parse(&bytes).unwrap();
            assert_eq!(d.get("file", "SIZE"), Some("12"));
            assert!(d.has_section("FILE"));
        }
        assert_eq!(
            IniDoc::parse(&encode_utf16le_crlf(text))
                .unwrap()
                .line_of("FILE", "hash"),
            Some(3)
        );
    }

    #[test]
    fn keeps_backslashes_and_reports_lines() {
        let d = IniDoc::parse(b"[A]\r\nPath=C:\\Windows\\x\r\n").unwrap();
        assert_eq!(d.get("a", "path"), Some("C:\\Windows\\x"));
        let e = IniDoc::parse(b"[A]\r\nok=1\r\n[broken\r\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        let e = IniDoc::parse(&[0xFF, 0xFE, 0x41]).unwrap_err();
        assert_eq!(e.line, None);
        let e = IniDoc::parse(b"[A]\r\nx=\0\r\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        let e = IniDoc::parse(b"; c\r\nk=v\r\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        let e = IniDoc::parse(b"[A]\r\n\r\njunk\r\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        let d = IniDoc::parse(b"[A]\r\nk=1\r\nk=2\r\n[a]\r\nj= x \r\n").unwrap();
        assert_eq!((d.get("A", "K"), d.get("a", "j")), (Some("1"), Some("x")));
        assert_eq!(d.keys("a"), ["k", "k", "j"]);
    }
}
