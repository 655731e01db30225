//! Shared by the regf and bcd tests: running the hive tools nobody here
//! wrote (hivex, chntpw) and reading the `.reg` text they export.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use capmedia_regf::{Key, ValueType};

/// (type, data) of each value name of a key.
pub type Values = BTreeMap<String, (u32, Vec<u8>)>;
/// Every key by path (`""` for the root, `A\B` below), case as stored.
pub type Flat = BTreeMap<String, Values>;

/// The path of a Debian tool; a missing one fails the test with the apt-get line.
pub fn tool(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` is missing; install it: apt-get update && apt-get install -y {package}");
}

/// The tree as path → values.
pub fn flatten(root: &Key) -> Flat {
    fn walk(k: &Key, path: String, out: &mut Flat) {
        let vals = k
            .values
            .iter()
            .map(|v| (v.name.clone(), (v.kind.0, v.data.clone())))
            .collect();
        out.insert(path.clone(), vals);
        for s in &k.subkeys {
            let p = if path.is_empty() {
                s.name.clone()
            } else {
                format!("{path}\\{}", s.name)
            };
            walk(s, p, out);
        }
    }
    let mut out = Flat::new();
    walk(root, String::new(), &mut out);
    out
}

fn unquote(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            '"' => return Some((out, &s[i + 2..])),
            c => out.push(c),
        }
    }
    None
}

fn hex_bytes(s: &str) -> Vec<u8> {
    s.split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

/// Parses `.reg` text (`Windows Registry Editor Version 5.00`) as hivexregedit
/// and reged write it; `prefix` is stripped from key paths.
pub fn parse_reg(text: &str, prefix: &str) -> Flat {
    let mut joined = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(head) = line.strip_suffix('\\') {
            if !line.starts_with('[') {
                cur.push_str(head.trim_start());
                continue;
            }
        }
        cur.push_str(line.trim_start());
        joined.push(std::mem::take(&mut cur));
    }
    let mut out = Flat::new();
    let mut key: Option<String> = None;
    for line in joined {
        if let Some(path) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let p = path
                .strip_prefix(prefix)
                .unwrap_or(path)
                .trim_start_matches('\\')
                .to_string();
            out.entry(p.clone()).or_default();
            key = Some(p);
            continue;
        }
        let Some(k) = &key else { continue };
        let (name, rest) = if let Some(r) = line.strip_prefix("@=") {
            (String::new(), r)
        } else if let Some((n, r)) = unquote(&line) {
            (n, r.strip_prefix('=').expect("="))
        } else {
            continue;
        };
        let val = if let Some(h) = rest.strip_prefix("dword:") {
            (
                4,
                u32::from_str_radix(h, 16)
                    .expect("dword")
                    .to_le_bytes()
                    .to_vec(),
            )
        } else if let Some(h) = rest.strip_prefix("hex:") {
            (3, hex_bytes(h))
        } else if let Some(h) = rest.strip_prefix("hex(") {
            let (t, bytes) = h.split_once("):").expect("hex(t):");
            (u32::from_str_radix(t, 16).expect("type"), hex_bytes(bytes))
        } else if let Some((s, _)) = unquote(rest) {
            (1, capmedia_regf::utf16z(&s))
        } else {
            panic!("unparsed value line {line:?}");
        };
        out.get_mut(k).expect("key").insert(name, val);
    }
    out
}

/// `hivexregedit --export` of the whole hive, parsed.
pub fn hivexregedit(hive: &Path) -> Flat {
    let out = Command::new(tool("hivexregedit", "libwin-hivex-perl"))
        .arg("--export")
        .arg(hive)
        .arg("\\")
        .output()
        .expect("run hivexregedit");
    assert!(
        out.status.success(),
        "hivexregedit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_reg(&String::from_utf8_lossy(&out.stdout), "")
}

/// `reged -x` (chntpw) of the whole hive, parsed.
pub fn reged(hive: &Path) -> Flat {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = dir.path().join("out.reg");
    let out = Command::new(tool("reged", "chntpw"))
        .arg("-x")
        .arg(hive)
        .arg("HKEY_LOCAL_MACHINE\\T")
        .arg("\\")
        .arg(&reg)
        .current_dir(dir.path())
        .output()
        .expect("run reged");
    assert!(
        out.status.success(),
        "reged failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read(&reg).expect("reged output");
    parse_reg(&String::from_utf8_lossy(&text), "HKEY_LOCAL_MACHINE\\T")
}

/// `reged`'s export writes REG_SZ values as text: the comparison form of a
/// tree for it (REG_SZ data cut at the first NUL, as the text shows it).
pub fn as_reged_sees(mut flat: Flat) -> Flat {
    for vals in flat.values_mut() {
        for (t, data) in vals.values_mut() {
            if *t == ValueType::SZ.0 {
                let units: Vec<u16> = data
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .take_while(|&u| u != 0)
                    .collect();
                *data = capmedia_regf::utf16z(&String::from_utf16_lossy(&units));
            }
        }
    }
    flat
}

/// Compares two flattened trees, naming the first difference.
pub fn assert_same(what: &str, got: &Flat, want: &Flat) {
    let gk: Vec<&String> = got.keys().collect();
    let wk: Vec<&String> = want.keys().collect();
    assert_eq!(gk, wk, "{what}: key paths differ");
    for (path, wv) in want {
        let gv = &got[path];
        let gn: Vec<&String> = gv.keys().collect();
        let wn: Vec<&String> = wv.keys().collect();
        assert_eq!(gn, wn, "{what}: value names of [{path}] differ");
        for (name, (t, d)) in wv {
            let (gt, gd) = &gv[name];
            assert_eq!(gt, t, "{what}: type of [{path}] {name:?}");
            if gd.len() <= 64 && d.len() <= 64 {
                assert_eq!(gd, d, "{what}: data of [{path}] {name:?}");
            }
            assert!(
                gd == d,
                "{what}: data of [{path}] {name:?}: {} bytes vs {} expected",
                gd.len(),
                d.len()
            );
        }
    }
}
