//! Directory listings: entry-name checks and the HTML listings web servers
//! produce (IIS "directory browsing" as DPs serve it, nginx and Apache
//! autoindex).
//!
//! A listing is untrusted input that names things capmedia will then read,
//! so every entry must be a single plain name directly inside the listed
//! folder. Parent links are recognised and dropped; anything else that
//! climbs, is absolute elsewhere, or carries a drive letter or control
//! characters is an error rather than something silently skipped.

use std::collections::HashSet;

use percent_encoding::percent_decode_str;

/// The most entries one folder of a content library may list. DataLib
/// folders mirror package folders; no package holds anything near this, and
/// the bound keeps a hostile listing from costing unbounded memory and time
/// (HTTP listings are also cut at 64 MiB of text before parsing).
pub const MAX_LISTING_ENTRIES: usize = 1_000_000;

/// One entry of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingEntry {
    pub name: String,
    pub is_dir: bool,
    /// The size where the listing shows it in bytes (IIS does).
    pub size: Option<u64>,
}

/// A listing entry that must not be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("listing entry {name:?}: {reason}")]
pub struct UnsafeEntry {
    pub name: String,
    pub reason: String,
}

/// Check one name (a folder entry, never a path): not empty, not `.`/`..`,
/// no separator, not absolute, no drive letter, no NUL or control character.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name == "." || name == ".." {
        return Err("a '.' or '..' name climbs out of the folder");
    }
    if name.contains('\0') {
        return Err("contains NUL");
    }
    if name.chars().any(char::is_control) {
        return Err("contains a control character");
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return Err("is an absolute path");
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Err("starts with a drive letter");
    }
    if name.contains('/') || name.contains('\\') {
        return Err("contains a path separator");
    }
    if name.split(['/', '\\']).any(|c| c == "..") {
        return Err("has a '..' component");
    }
    Ok(())
}

fn unsafe_entry(name: &str, reason: &str) -> UnsafeEntry {
    UnsafeEntry {
        name: name.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Undo the HTML character references a listing uses in attributes.
fn html_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..end];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .or_else(|| ent.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// ASCII-case-insensitive `find`.
fn find_ci(hay: &str, needle: &str, from: usize) -> Option<usize> {
    let h = hay.as_bytes();
    let n = needle.as_bytes();
    (from..h.len().saturating_sub(n.len()) + 1)
        .find(|&i| i + n.len() <= h.len() && h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// The value of `href` in the attribute text of a tag.
fn href_of(attrs: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = find_ci(attrs, "href", from) {
        from = i + 4;
        let before_ok = i == 0 || attrs.as_bytes()[i - 1].is_ascii_whitespace();
        let rest = attrs[i + 4..].trim_start();
        let Some(rest) = rest.strip_prefix('=').filter(|_| before_ok) else {
            continue;
        };
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or(""),
            _ => rest
                .split(|c: char| c.is_ascii_whitespace() || c == '>')
                .next()
                .unwrap_or(""),
        };
        return Some(html_unescape(value));
    }
    None
}

fn parent_of(dir: &str) -> Option<&str> {
    let t = dir.strip_suffix('/')?;
    t.rfind('/').map(|i| &t[..=i])
}

/// Parse an HTML directory listing of the folder whose decoded URL path is
/// `dir_path` (starting and ending with `/`).
///
/// Entries are taken from the `href`s (not the link text, which nginx
/// truncates); a trailing `/` or an IIS `<dir>` row marks a folder. Parent
/// and sort links are dropped; any other link that is not a plain name
/// directly inside `dir_path` is an [`UnsafeEntry`], and so is the entry
/// past [`MAX_LISTING_ENTRIES`]. Linear in the length of `html`.
pub fn parse_html_listing(html: &str, dir_path: &str) -> Result<Vec<ListingEntry>, UnsafeEntry> {
    let dir_lc = dir_path.to_ascii_lowercase();
    let parent_lc = parent_of(&dir_lc).map(str::to_owned);
    let mut out: Vec<ListingEntry> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut row_start = 0;
    let mut pos = 0;
    // Once no `</a>` is left, never look for one again: a page of
    // unclosed links would otherwise be scanned to its end per link.
    let mut closes_left = true;
    while let Some(i) = find_ci(html, "<a", pos) {
        let after = html.as_bytes().get(i + 2).copied();
        if !after.is_some_and(|b| b.is_ascii_whitespace()) {
            pos = i + 2;
            continue;
        }
        let Some(tag_end) = html[i..].find('>').map(|e| i + e) else {
            break;
        };
        let attrs = &html[i + 2..tag_end];
        let close = if closes_left {
            find_ci(html, "</a>", tag_end)
        } else {
            None
        };
        closes_left = close.is_some();
        let close = close.unwrap_or(tag_end);
        let row = &html[row_start..i];
        pos = close.max(tag_end + 1);
        row_start = pos;
        let Some(href) = href_of(attrs) else {
            continue;
        };
        if let Some(e) = classify(&href, row, dir_path, &dir_lc, parent_lc.as_deref())? {
            if !seen.contains(&e.name) {
                if out.len() >= MAX_LISTING_ENTRIES {
                    return Err(unsafe_entry(
                        &e.name,
                        &format!("the listing has more than {MAX_LISTING_ENTRIES} entries"),
                    ));
                }
                seen.insert(e.name.clone());
                out.push(e);
            }
        }
    }
    Ok(out)
}

/// What one link of a listing is: `None` for links to drop.
fn classify(
    href: &str,
    row: &str,
    dir_path: &str,
    dir_lc: &str,
    parent_lc: Option<&str>,
) -> Result<Option<ListingEntry>, UnsafeEntry> {
    let raw = href.split('#').next().unwrap_or("");
    if raw.is_empty() || raw.starts_with('?') {
        return Ok(None); // self or sort link (Apache `?C=N;O=D`)
    }
    let raw = raw.split('?').next().unwrap_or("");
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| unsafe_entry(raw, "is not UTF-8 once percent-decoded"))?
        .into_owned();
    if decoded == "../" || decoded == ".." {
        return Ok(None); // nginx/Apache relative parent link
    }
    // Absolute URL: keep only its path.
    let path = if let Some(i) = decoded.find("://") {
        let after = &decoded[i + 3..];
        match after.find('/') {
            Some(j) => after[j..].to_owned(),
            None => "/".to_owned(),
        }
    } else if decoded.starts_with('/') {
        decoded.clone()
    } else {
        format!("{dir_path}{decoded}")
    };
    let name_for_err = decoded.trim_end_matches('/');
    if path.split('/').any(|c| c == ".." || c == ".") {
        return Err(unsafe_entry(name_for_err, "has a '.' or '..' component"));
    }
    if path.contains('\\') {
        let seg = name_for_err.rsplit('/').next().unwrap_or(name_for_err);
        return Err(unsafe_entry(
            seg,
            check_name(seg).err().unwrap_or("contains a path separator"),
        ));
    }
    let path_lc = path.to_ascii_lowercase();
    if path_lc == dir_lc || Some(path_lc.as_str()) == parent_lc {
        return Ok(None); // self, or IIS "[To Parent Directory]" / Apache "Parent Directory"
    }
    if !path_lc.starts_with(dir_lc) {
        return Err(unsafe_entry(
            name_for_err,
            "points outside the listed folder",
        ));
    }
    let rest = &path[dir_path.len()..];
    let (name, slash) = match rest.strip_suffix('/') {
        Some(n) => (n, true),
        None => (rest, false),
    };
    if name.contains('/') {
        return Err(unsafe_entry(
            name,
            "is not directly inside the listed folder",
        ));
    }
    check_name(name).map_err(|r| unsafe_entry(name, r))?;
    let row_lc = row.to_ascii_lowercase();
    let dir_marker = row_lc.contains("&lt;dir&gt;") || row_lc.contains("<dir>");
    // IIS rows read `date time <size|&lt;dir&gt;> <A ...>`: the size is the
    // last token before the link.
    let size = row
        .rsplit("<br>")
        .next()
        .and_then(|r| r.split_whitespace().last())
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|_| !dir_marker);
    Ok(Some(ListingEntry {
        name: name.to_owned(),
        is_dir: slash || dir_marker,
        size,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("boot.PS100005.wim").is_ok());
        for bad in [
            "", ".", "..", "a/b", "a\\b", "/x", "\\x", "C:x", "c:", "a\0", "a\tb",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unescape() {
        assert_eq!(
            html_unescape("a&amp;b&lt;&#36;&#x24;&bogus"),
            "a&b<$$&bogus"
        );
    }
}
