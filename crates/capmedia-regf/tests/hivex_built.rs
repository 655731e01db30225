//! Hives built by hivex (`hivexsh` scripts for keys and small values,
//! `hivexregedit --merge` for values too long for a hivexsh line), read by
//! this crate: every key and value must come back as hivex stored it.
//!
//! hivex opens only existing hives, so the start is an empty hive from this
//! crate's writer; everything compared below was written by hivex.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use capmedia_regf::{read, utf16z, write, Key, Value, ValueType, WriteOptions};
use common::*;

fn hex(data: &[u8]) -> String {
    data.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The values hivexsh can set, as `(name, hivexsh text, expected value)`.
fn small_values() -> Vec<(String, String, Value)> {
    let mut v = vec![
        (
            "@".to_string(),
            "string:default here".to_string(),
            Value::string("", "default here"),
        ),
        (
            "str".into(),
            "string:hello world".into(),
            Value::string("str", "hello world"),
        ),
        (
            "exp".into(),
            "expandstring:%SystemRoot%\\system32".into(),
            Value::new(
                "exp",
                ValueType::EXPAND_SZ,
                utf16z("%SystemRoot%\\system32"),
            ),
        ),
        (
            "dw".into(),
            "dword:0x12345678".into(),
            Value::dword("dw", 0x1234_5678),
        ),
        (
            "nothing".into(),
            "none".into(),
            Value::new("nothing", ValueType::NONE, Vec::new()),
        ),
    ];
    let multi = Value::multi_string("multi", &["a", "bb", "ccc"]);
    let bin: Vec<u8> = (0..=255).collect();
    let be = vec![0x11, 0x22, 0x33, 0x44];
    let odd = vec![0xAA; 7];
    // hivexsh's `qword:` input keeps only the low half (the high half is
    // garbage in hivex 1.3.23), so the QWORD goes in as hex.
    for (name, ty, data) in [
        (
            "qw",
            11u32,
            0x0123_4567_89ab_cdef_u64.to_le_bytes().to_vec(),
        ),
        ("multi", 7, multi.data.clone()),
        ("bin", 3, bin),
        ("bin1", 3, vec![0x42]),
        ("be", 5, be),
        ("custom type", 0x0100_0000, odd),
    ] {
        v.push((
            name.to_string(),
            format!("hex:{ty}:{}", hex(&data)),
            Value::new(name, ValueType(ty), data),
        ));
    }
    v
}

fn hivexsh(hive: &Path, script: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("script");
    std::fs::write(&f, script).expect("script");
    let out = Command::new(tool("hivexsh", "libhivex-bin"))
        .arg("-w")
        .arg("-f")
        .arg(&f)
        .arg(hive)
        .output()
        .expect("run hivexsh");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "hivexsh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn merge(hive: &Path, reg: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("in.reg");
    std::fs::write(&f, reg).expect("reg");
    let out = Command::new(tool("hivexregedit", "libwin-hivex-perl"))
        .arg("--merge")
        .arg(hive)
        .arg(&f)
        .output()
        .expect("run hivexregedit");
    assert!(
        out.status.success(),
        "hivexregedit --merge: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn hives_built_by_hivex_read_back_exactly() {
    for minor in [3, 5] {
        let dir = tempfile::tempdir().expect("tempdir");
        let hive = dir.path().join("h.hiv");
        let empty = write(
            &Key::new("ROOT"),
            &WriteOptions {
                minor_version: minor,
                ..WriteOptions::default()
            },
        )
        .expect("empty hive");
        std::fs::write(&hive, empty).expect("write");

        let mut expected = Key::new("ROOT");
        let mut script = String::new();

        // Values of every kind hivexsh knows.
        let vals = small_values();
        let mut alpha = Key::new("Alpha");
        script += "add Alpha\ncd Alpha\n";
        writeln!(script, "setval {}", vals.len()).expect("fmt");
        for (name, text, v) in vals {
            writeln!(script, "{name}\n{text}").expect("fmt");
            alpha.values.push(v);
        }
        // Nested keys.
        script += "add Beta\ncd Beta\nadd Gamma\ncd Gamma\nsetval 1\nleaf\ndword:7\ncd \\\n";
        alpha = alpha.with_subkey(
            Key::new("Beta").with_subkey(Key::new("Gamma").with_value(Value::dword("leaf", 7))),
        );
        expected.subkeys.push(alpha);
        // Many subkeys, added in an order that is not the sorted one.
        let mut many = Key::new("Many");
        script += "add Many\ncd Many\n";
        for i in (0..700).rev() {
            let name = format!("Key{:04}", (i * 7919) % 700);
            writeln!(script, "add {name}").expect("fmt");
            many.subkeys.push(Key::new(name));
        }
        script += "cd \\\ncommit\n";
        expected.subkeys.push(many);
        hivexsh(&hive, &script);

        // Big values (over one 16344-byte segment) through a merge.
        let big: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let text = "y".repeat(12_000);
        let reg = format!(
            "Windows Registry Editor Version 5.00\n\n[\\Big]\n\"blob\"=hex(3):{}\n\"text\"=hex(1):{}\n\"small\"=dword:00000001\n",
            hex(&big),
            hex(&utf16z(&text))
        );
        merge(&hive, &reg);
        expected.subkeys.push(
            Key::new("Big")
                .with_value(Value::binary("blob", big))
                .with_value(Value::string("text", &text))
                .with_value(Value::dword("small", 1)),
        );

        let bytes = std::fs::read(&hive).expect("read hive");
        let got = read(&bytes).unwrap_or_else(|e| panic!("1.{minor}: {e}"));
        assert_same(
            &format!("hivex-built 1.{minor}"),
            &flatten(&got.root),
            &flatten(&expected),
        );
        // And hivex itself agrees with the expectation (the test's own check).
        assert_same(
            &format!("hivexregedit 1.{minor}"),
            &hivexregedit(&hive),
            &flatten(&expected),
        );
    }
}
