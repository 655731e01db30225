//! The INF file syntax ("General syntax rules for INF files"), as SetupAPI
//! reads it: `[Section]` headers (case-insensitive; sections of the same name
//! are merged), `key = value, value, ...` and plain `value, value` lines, `;`
//! comments outside quotes, `"quoted"` text with `""` for a literal quote,
//! whitespace around unquoted values dropped, a trailing `\` joining the
//! next line, and `%strkey%` tokens replaced from the `[Strings]` sections
//! (`%%` is a literal `%`).
//!
//! Which `[Strings]` section: SetupAPI matches the caller's language id
//! first exactly (`[Strings.0409]`), then by its primary language alone
//! (`[Strings.0009]`), and uses the undecorated `[Strings]` as the fallback.
//! This parser looks a token up in that order, per token, so a localized
//! section that lacks a token still finds it in `[Strings]`. The values of
//! `[Strings*]` sections are literal (never substituted again), so expansion
//! cannot recurse; an unknown token is left as written (DIRIDs such as
//! `%12%` stay as they are).

use std::collections::HashMap;

use serde::Serialize;

use crate::text::{decode, TextEncoding};

/// Bounds for hostile input. The defaults are far above any real INF
/// (the largest inbox INFs are a few MiB with some 100,000 lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct InfLimits {
    /// Input size in bytes.
    pub max_bytes: usize,
    /// Physical lines.
    pub max_lines: usize,
    /// Distinct sections.
    pub max_sections: usize,
    /// Characters of one logical line (after joining `\` continuations).
    pub max_line_chars: usize,
    /// Values on one line.
    pub max_fields_per_line: usize,
    /// Characters of one value after `%strkey%` substitution. SetupAPI's
    /// own limit is `MAX_INF_STRING_LENGTH` (4096).
    pub max_value_chars: usize,
    /// `%strkey%` substitutions in the whole file.
    pub max_substitutions: usize,
    /// Bytes inserted by all substitutions together (what bounds memory:
    /// each value is short, but a file may hold a million of them).
    pub max_substituted_bytes: usize,
}

impl Default for InfLimits {
    fn default() -> Self {
        InfLimits {
            max_bytes: 16 << 20,
            max_lines: 1_000_000,
            max_sections: 100_000,
            max_line_chars: 1 << 20,
            max_fields_per_line: 65_536,
            max_value_chars: 4096,
            max_substitutions: 1_000_000,
            max_substituted_bytes: 64 << 20,
        }
    }
}

/// How to read an INF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    pub limits: InfLimits,
    /// The language id whose `[Strings.<id>]` section is preferred
    /// (0x0409, US English, by default: the language of Windows PE's
    /// own INFs and the one a report is read in).
    pub language: u16,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            limits: InfLimits::default(),
            language: 0x0409,
        }
    }
}

/// Why an INF could not be read. Only limits fail a parse: the syntax
/// itself has no errors (SetupAPI reads any text), damaged lines just
/// yield odd values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfError {
    #[error("the file is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("more than {limit} {what} (line {line})")]
    Limit {
        what: &'static str,
        limit: usize,
        line: usize,
    },
}

/// One logical line of a section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// 1-based physical line number where the logical line starts.
    pub line: usize,
    /// The text before the first unquoted `=`, if the line has one (before
    /// any unquoted comma).
    pub key: Option<String>,
    /// The comma-separated values (after the `=` for a key line). A line
    /// with nothing but whitespace between commas has empty values.
    pub fields: Vec<String>,
}

impl Line {
    /// The values joined back with commas (for single-valued entries whose
    /// text may contain an unquoted comma).
    pub fn value(&self) -> String {
        self.fields.join(",")
    }
}

/// A section: its name as first written, and its lines in file order
/// (lines of same-named sections appended).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    pub name: String,
    pub lines: Vec<Line>,
}

impl Section {
    /// The first line whose key is `key` (case-insensitive).
    pub fn entry(&self, key: &str) -> Option<&Line> {
        self.lines.iter().find(|l| {
            l.key
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case(key))
        })
    }
}

/// A parsed INF file, tokens substituted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inf {
    pub encoding: TextEncoding,
    sections: Vec<Section>,
    #[serde(skip)]
    index: HashMap<String, usize>,
}

impl Inf {
    /// Parses INF bytes with the default limits and US English strings.
    pub fn parse(bytes: &[u8]) -> Result<Inf, InfError> {
        Inf::parse_with(bytes, &ParseOptions::default())
    }

    pub fn parse_with(bytes: &[u8], opts: &ParseOptions) -> Result<Inf, InfError> {
        let limits = &opts.limits;
        if bytes.len() > limits.max_bytes {
            return Err(InfError::TooLarge {
                size: bytes.len(),
                limit: limits.max_bytes,
            });
        }
        let (text, encoding) = decode(bytes);
        let (mut sections, index) = tokenize(&text, limits)?;
        let strings = StringTables::new(&sections, &index, opts.language);
        let mut subs = Budget::default();
        for section in &mut sections {
            if is_strings_section(&section.name) {
                continue;
            }
            for line in &mut section.lines {
                if let Some(k) = &mut line.key {
                    *k = strings.expand(k, limits, &mut subs, line.line)?;
                }
                for f in &mut line.fields {
                    *f = strings.expand(f, limits, &mut subs, line.line)?;
                }
            }
        }
        Ok(Inf {
            encoding,
            sections,
            index,
        })
    }

    /// The section named `name` (case-insensitive).
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.index
            .get(&name.to_lowercase())
            .and_then(|&i| self.sections.get(i))
    }

    /// Every section in order of first appearance.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The values of the first `key` line in `section`, joined with commas.
    pub fn value(&self, section: &str, key: &str) -> Option<String> {
        self.section(section)?.entry(key).map(Line::value)
    }
}

fn is_strings_section(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "strings" || n.starts_with("strings.")
}

/// What substitution has used so far of its limits.
#[derive(Debug, Default)]
struct Budget {
    count: usize,
    bytes: usize,
}

/// The `[Strings]` tables in lookup order.
struct StringTables {
    tables: Vec<HashMap<String, String>>,
}

impl StringTables {
    fn new(sections: &[Section], index: &HashMap<String, usize>, lang: u16) -> Self {
        let names = [
            format!("strings.{lang:04x}"),
            format!("strings.{:04x}", lang & 0x3FF),
            "strings".to_owned(),
        ];
        let mut tables = Vec::new();
        let mut seen = Vec::new();
        for name in names {
            if seen.contains(&name) {
                continue;
            }
            if let Some(section) = index.get(&name).and_then(|&i| sections.get(i)) {
                let mut map = HashMap::new();
                for line in &section.lines {
                    if let (Some(k), Some(v)) = (&line.key, line.fields.first()) {
                        // A value with an unquoted comma has several fields;
                        // keep the first, which is what a quoted value would be.
                        map.entry(k.to_lowercase()).or_insert_with(|| v.clone());
                    }
                }
                tables.push(map);
            }
            seen.push(name);
        }
        StringTables { tables }
    }

    fn lookup(&self, token: &str) -> Option<&str> {
        let key = token.to_lowercase();
        self.tables
            .iter()
            .find_map(|t| t.get(&key).map(String::as_str))
    }

    fn expand(
        &self,
        s: &str,
        limits: &InfLimits,
        subs: &mut Budget,
        line: usize,
    ) -> Result<String, InfError> {
        let too_long = || InfError::Limit {
            what: "characters in one value after %strkey% substitution",
            limit: limits.max_value_chars,
            line,
        };
        if !s.contains('%') {
            if s.chars().count() > limits.max_value_chars {
                return Err(too_long());
            }
            return Ok(s.to_owned());
        }
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find('%') {
            out.push_str(rest.get(..start).unwrap_or_default());
            let after = rest.get(start + 1..).unwrap_or_default();
            match after.find('%') {
                Some(0) => {
                    out.push('%');
                    rest = after.get(1..).unwrap_or_default();
                }
                Some(end) => {
                    let token = after.get(..end).unwrap_or_default();
                    match self.lookup(token) {
                        Some(v) => {
                            subs.count += 1;
                            subs.bytes += v.len();
                            if subs.count > limits.max_substitutions {
                                return Err(InfError::Limit {
                                    what: "%strkey% substitutions",
                                    limit: limits.max_substitutions,
                                    line,
                                });
                            }
                            if subs.bytes > limits.max_substituted_bytes {
                                return Err(InfError::Limit {
                                    what: "bytes inserted by %strkey% substitutions",
                                    limit: limits.max_substituted_bytes,
                                    line,
                                });
                            }
                            out.push_str(v);
                        }
                        None => {
                            out.push('%');
                            out.push_str(token);
                            out.push('%');
                        }
                    }
                    rest = after.get(end + 1..).unwrap_or_default();
                }
                None => {
                    out.push('%');
                    rest = after;
                }
            }
            // A char is at most 4 bytes, so past this many bytes the value
            // is surely too long; checked per step (in O(1)) so a line of
            // many tokens cannot grow `out` far, the exact count comes once.
            if out.len() > limits.max_value_chars.saturating_mul(4) {
                return Err(too_long());
            }
        }
        out.push_str(rest);
        if out.chars().count() > limits.max_value_chars {
            return Err(too_long());
        }
        Ok(out)
    }
}

/// Splits decoded text into sections and lines (no substitution yet).
fn tokenize(
    text: &str,
    limits: &InfLimits,
) -> Result<(Vec<Section>, HashMap<String, usize>), InfError> {
    let mut sections: Vec<Section> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut current: Option<usize> = None;
    let mut builder = LineBuilder::default();
    let mut physical = 0usize;
    for raw in text.split('\n') {
        physical += 1;
        if physical > limits.max_lines {
            return Err(InfError::Limit {
                what: "lines",
                limit: limits.max_lines,
                line: physical,
            });
        }
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if !builder.continuing {
            let trimmed = line.trim_start();
            if let Some(header) = trimmed.strip_prefix('[') {
                // The name runs to the closing bracket; the rest of the line
                // (normally a comment) is ignored.
                let name = header.split(']').next().unwrap_or_default().trim();
                let key = name.to_lowercase();
                let idx = match index.get(&key) {
                    Some(&i) => i,
                    None => {
                        if sections.len() >= limits.max_sections {
                            return Err(InfError::Limit {
                                what: "sections",
                                limit: limits.max_sections,
                                line: physical,
                            });
                        }
                        sections.push(Section {
                            name: name.to_owned(),
                            lines: Vec::new(),
                        });
                        index.insert(key, sections.len() - 1);
                        sections.len() - 1
                    }
                };
                current = Some(idx);
                continue;
            }
            builder.start = physical;
        }
        if builder.feed(line, limits)? {
            continue;
        }
        if let Some(done) = builder.finish(limits)? {
            // Lines before the first section belong to none and are dropped,
            // as SetupAPI does.
            if let Some(s) = current.and_then(|i| sections.get_mut(i)) {
                s.lines.push(done);
            }
        }
    }
    if builder.continuing {
        if let Some(done) = builder.finish(limits)? {
            if let Some(s) = current.and_then(|i| sections.get_mut(i)) {
                s.lines.push(done);
            }
        }
    }
    Ok((sections, index))
}

/// Accumulates one logical line across `\` continuations.
#[derive(Debug, Default)]
struct LineBuilder {
    start: usize,
    continuing: bool,
    key: Option<String>,
    fields: Vec<String>,
    field: String,
    /// Bytes of `field` that came from quotes: never trimmed.
    protected: usize,
    /// Whether the field has begun (a non-blank char or a quote).
    started: bool,
    /// Whether anything at all is on the line (an empty line is no line).
    any: bool,
    seen_comma: bool,
    in_quotes: bool,
    chars: usize,
}

impl LineBuilder {
    /// Feeds a physical line; true if it ends in a continuation.
    fn feed(&mut self, line: &str, limits: &InfLimits) -> Result<bool, InfError> {
        self.continuing = false;
        // Where a `\` would be the last visible character (a continuation).
        let last_visible = line.trim_end().len().checked_sub(1);
        let mut it = line.char_indices().peekable();
        while let Some((pos, c)) = it.next() {
            self.chars += 1;
            if self.chars > limits.max_line_chars {
                return Err(InfError::Limit {
                    what: "characters in one line",
                    limit: limits.max_line_chars,
                    line: self.start,
                });
            }
            if self.in_quotes {
                if c == '"' {
                    if it.peek().is_some_and(|&(_, n)| n == '"') {
                        it.next();
                        self.push_protected('"');
                    } else {
                        self.in_quotes = false;
                    }
                } else {
                    self.push_protected(c);
                }
                continue;
            }
            match c {
                '"' => {
                    self.in_quotes = true;
                    self.started = true;
                    self.any = true;
                    self.protected = self.field.len();
                }
                ';' => break,
                ',' => {
                    self.any = true;
                    self.seen_comma = true;
                    self.end_field(limits)?;
                }
                '=' if self.key.is_none() && !self.seen_comma => {
                    self.any = true;
                    let k = self.take_field();
                    self.key = Some(k);
                }
                '\\' if Some(pos) == last_visible => {
                    self.continuing = true;
                    return Ok(true);
                }
                c if c.is_whitespace() && !self.started => {}
                c => {
                    self.started = true;
                    self.any = true;
                    self.field.push(c);
                }
            }
        }
        // A quote left open ends with the line.
        self.in_quotes = false;
        Ok(false)
    }

    fn push_protected(&mut self, c: char) {
        self.started = true;
        self.any = true;
        self.field.push(c);
        self.protected = self.field.len();
    }

    fn take_field(&mut self) -> String {
        let keep = self.field.trim_end().len().max(self.protected);
        self.field.truncate(keep);
        self.protected = 0;
        self.started = false;
        std::mem::take(&mut self.field)
    }

    fn end_field(&mut self, limits: &InfLimits) -> Result<(), InfError> {
        if self.fields.len() >= limits.max_fields_per_line {
            return Err(InfError::Limit {
                what: "values on one line",
                limit: limits.max_fields_per_line,
                line: self.start,
            });
        }
        let f = self.take_field();
        self.fields.push(f);
        Ok(())
    }

    fn finish(&mut self, limits: &InfLimits) -> Result<Option<Line>, InfError> {
        self.continuing = false;
        self.in_quotes = false;
        if !self.any {
            self.reset();
            return Ok(None);
        }
        self.end_field(limits)?;
        let line = Line {
            line: self.start,
            key: self.key.take(),
            fields: std::mem::take(&mut self.fields),
        };
        self.reset();
        Ok(Some(line))
    }

    fn reset(&mut self) {
        let start = self.start;
        *self = LineBuilder::default();
        self.start = start;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(inf: &Inf, section: &str) -> Vec<(Option<String>, Vec<String>)> {
        inf.section(section)
            .map(|s| {
                s.lines
                    .iter()
                    .map(|l| (l.key.clone(), l.fields.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn kv(k: Option<&str>, f: &[&str]) -> (Option<String>, Vec<String>) {
        (
            k.map(str::to_owned),
            f.iter().map(|s| s.to_string()).collect(),
        )
    }

    #[test]
    fn syntax_rules() {
        let src = "; header comment\r\n\
            orphan = dropped\r\n\
            [Sec] ; comment after header\r\n\
            Key = Value ; comment\r\n\
            Key2=\"  spaced ; not a comment \"  , second ,, \r\n\
            plain, line\r\n\
            \r\n\
            quoted=\"say \"\"hi\"\"\"\r\n\
            a,b = c\r\n\
            cont = one, \\\r\n    two, \\   \r\n three\r\n\
            path = \"C:\\dir\\\"\r\n\
            [sec]\r\n\
            merged = yes\r\n";
        let inf = Inf::parse(src.as_bytes()).unwrap();
        assert_eq!(
            lines(&inf, "SEC"),
            vec![
                kv(Some("Key"), &["Value"]),
                kv(
                    Some("Key2"),
                    &["  spaced ; not a comment ", "second", "", ""]
                ),
                kv(None, &["plain", "line"]),
                kv(Some("quoted"), &["say \"hi\""]),
                kv(None, &["a", "b = c"]),
                kv(Some("cont"), &["one", "two", "three"]),
                kv(Some("path"), &["C:\\dir\\"]),
                kv(Some("merged"), &["yes"]),
            ]
        );
        assert_eq!(inf.sections().len(), 1);
        assert_eq!(inf.section("sec").unwrap().lines[5].line, 10);
    }

    #[test]
    fn strings_substitution_prefers_language_then_falls_back() {
        let src = "[Version]\nProvider=%Prov%\nClass=%Cls%\n\
            [X]\n%Desc% = install, PCI\\VEN_1234&DEV_0001\n\
            pct = 50%%, %Unknown%, %12%\\x, 100%\n\
            [Strings]\nProv=\"Neutral Provider\"\nCls=Net\nDesc=\"Neutral desc\"\n\
            [Strings.0409]\nProv=\"US Provider\"\n\
            [Strings.0007]\nProv=\"German\"\n";
        let inf = Inf::parse(src.as_bytes()).unwrap();
        assert_eq!(inf.value("version", "provider").unwrap(), "US Provider");
        assert_eq!(inf.value("VERSION", "class").unwrap(), "Net");
        assert_eq!(
            lines(&inf, "x"),
            vec![
                kv(Some("Neutral desc"), &["install", "PCI\\VEN_1234&DEV_0001"]),
                kv(Some("pct"), &["50%", "%Unknown%", "%12%\\x", "100%"]),
            ]
        );
        // German: no [Strings.0407], but the primary-language [Strings.0007].
        let de = Inf::parse_with(
            src.as_bytes(),
            &ParseOptions {
                language: 0x0407,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(de.value("version", "provider").unwrap(), "German");
        // French: neither, so [Strings].
        let fr = Inf::parse_with(
            src.as_bytes(),
            &ParseOptions {
                language: 0x040C,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(fr.value("version", "provider").unwrap(), "Neutral Provider");
    }

    #[test]
    fn limits_are_enforced() {
        let opts = |f: fn(&mut InfLimits)| {
            let mut o = ParseOptions::default();
            f(&mut o.limits);
            o
        };
        assert!(matches!(
            Inf::parse_with(b"[a]\nx=1\n", &opts(|l| l.max_bytes = 4)),
            Err(InfError::TooLarge { .. })
        ));
        assert!(matches!(
            Inf::parse_with(b"[a]\n[b]\n[c]\n", &opts(|l| l.max_sections = 2)),
            Err(InfError::Limit {
                what: "sections",
                ..
            })
        ));
        assert!(matches!(
            Inf::parse_with(b"[a]\n\n\n\n", &opts(|l| l.max_lines = 3)),
            Err(InfError::Limit { what: "lines", .. })
        ));
        assert!(matches!(
            Inf::parse_with(b"[a]\nx=1,2,3\n", &opts(|l| l.max_fields_per_line = 2)),
            Err(InfError::Limit { line: 2, .. })
        ));
        // A token that doubles: 12 references to a 1000-char string exceed
        // the 4096-char value limit.
        let big = format!(
            "[a]\nx={}\n[Strings]\nS=\"{}\"\n",
            "%S%".repeat(12),
            "y".repeat(1000)
        );
        assert!(matches!(
            Inf::parse(big.as_bytes()),
            Err(InfError::Limit { line: 2, .. })
        ));
        let wide = format!(
            "[a]\nx={}\n[Strings]\nS=\"{}\"\n",
            "%S%,".repeat(20),
            "y".repeat(100)
        );
        assert!(matches!(
            Inf::parse_with(wide.as_bytes(), &opts(|l| l.max_substituted_bytes = 1000)),
            Err(InfError::Limit {
                what: "bytes inserted by %strkey% substitutions",
                ..
            })
        ));
        let many = format!("[a]\nx={}\n[Strings]\nS=1\n", "%S%,".repeat(20));
        assert!(matches!(
            Inf::parse_with(many.as_bytes(), &opts(|l| l.max_substitutions = 10)),
            Err(InfError::Limit {
                what: "%strkey% substitutions",
                ..
            })
        ));
    }
}
