//! Random trees written and read back; hostile bytes refused without panics.

use std::collections::BTreeSet;

use capmedia_regf::{
    read, read_with_limits, upcase_name, write, Key, ReadLimits, RegfError, Value, ValueType,
    WriteOptions,
};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    // ASCII, Latin-1 (stored one byte a character) and wider characters
    // (stored as UTF-16).
    prop_oneof![
        "[A-Za-z0-9 _.{}-]{1,12}",
        "[a-zé ÄÖü]{1,8}",
        "[a-zΩЖ中]{1,6}",
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let data = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..6),
        proptest::collection::vec(any::<u8>(), 0..300),
        // Around and over one big-data segment.
        (16_300usize..16_400, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
        (30_000usize..40_000, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
    ];
    (
        prop_oneof![Just(String::new()), name()],
        prop_oneof![0u32..12, Just(0x4000_0001)],
        data,
    )
        .prop_map(|(n, t, d)| Value::new(n, ValueType(t), d))
}

fn unique<T>(items: Vec<T>, key: impl Fn(&T) -> String) -> Vec<T> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(upcase_name(&key(i))))
        .collect()
}

fn tree() -> impl Strategy<Value = Key> {
    let leaf = (name(), proptest::collection::vec(value(), 0..4)).prop_map(|(n, v)| Key {
        name: n,
        values: unique(v, |v| v.name.clone()),
        subkeys: Vec::new(),
    });
    leaf.prop_recursive(4, 64, 12, |inner| {
        (
            name(),
            proptest::collection::vec(value(), 0..3),
            proptest::collection::vec(inner, 0..12),
        )
            .prop_map(|(n, v, k)| Key {
                name: n,
                values: unique(v, |v| v.name.clone()),
                subkeys: unique(k, |k| k.name.clone()),
            })
    })
}

/// Subkeys come back in Windows order.
fn sorted(mut k: Key) -> Key {
    k.subkeys.sort_by_cached_key(|s| upcase_name(&s.name));
    k.subkeys = k.subkeys.into_iter().map(sorted).collect();
    k
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn write_then_read_gives_the_tree(t in tree(), minor in prop_oneof![Just(3u32), Just(5u32)], ts in any::<u64>()) {
        let opts = WriteOptions { minor_version: minor, timestamp: ts, file_name: String::new() };
        let bytes = write(&t, &opts).expect("write");
        prop_assert_eq!(bytes.len() % 4096, 0);
        prop_assert_eq!(&write(&t, &opts).expect("write again"), &bytes);
        let hive = read(&bytes).expect("read");
        prop_assert_eq!(hive.root, sorted(t));
        prop_assert_eq!(hive.timestamp, ts);
        prop_assert_eq!(hive.security.len(), 1);
        prop_assert_eq!(hive.security[0].reference_count, hive.security[0].used_by);
    }

    #[test]
    fn mutated_hives_never_panic(t in tree(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..40)) {
        let mut bytes = write(&t, &WriteOptions::default()).expect("write");
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        // Recompute the checksum half the time so mutations reach the cells.
        let _ = read(&bytes);
        let mut x = 0u32;
        for c in bytes[..508].chunks_exact(4) {
            x ^= u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        bytes[508..512].copy_from_slice(&x.to_le_bytes());
        let _ = read(&bytes);
    }

    #[test]
    fn truncated_hives_are_errors(t in tree(), cut in any::<prop::sample::Index>()) {
        let bytes = write(&t, &WriteOptions::default()).expect("write");
        let n = cut.index(bytes.len());
        prop_assert!(read(&bytes[..n]).is_err());
    }
}

fn fix_checksum(b: &mut [u8]) {
    let mut x = 0u32;
    for c in b[..508].chunks_exact(4) {
        x ^= u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    b[508..512].copy_from_slice(&x.to_le_bytes());
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

#[test]
fn a_key_that_lists_its_ancestor_is_a_cycle() {
    let t = Key::new("R").with_subkey(Key::new("A").with_subkey(Key::new("B")));
    let mut bytes = write(&t, &WriteOptions::default()).expect("write");
    let root = u32_at(&bytes, 36) as usize;
    // Find B's nk and point its (empty) subkey list at the root's list, so
    // that B lists A again.
    let root_list = u32_at(&bytes, 4096 + root + 4 + 28);
    let a = u32_at(&bytes, 4096 + root_list as usize + 8) as usize;
    let a_list = u32_at(&bytes, 4096 + a + 4 + 28);
    let b = u32_at(&bytes, 4096 + a_list as usize + 8) as usize;
    bytes[4096 + b + 4 + 20..4096 + b + 4 + 24].copy_from_slice(&1u32.to_le_bytes());
    bytes[4096 + b + 4 + 28..4096 + b + 4 + 32].copy_from_slice(&root_list.to_le_bytes());
    assert!(matches!(read(&bytes), Err(RegfError::Cycle(_))));
}

#[test]
fn limits_hold() {
    let mut t = Key::new("R");
    for i in 0..50 {
        t.subkeys
            .push(Key::new(format!("k{i}")).with_value(Value::binary("v", vec![1; 100])));
    }
    let bytes = write(&t, &WriteOptions::default()).expect("write");
    let few_keys = ReadLimits {
        max_keys: 10,
        ..ReadLimits::default()
    };
    assert!(matches!(
        read_with_limits(&bytes, &few_keys),
        Err(RegfError::Limit(_))
    ));
    let small_values = ReadLimits {
        max_value_size: 99,
        ..ReadLimits::default()
    };
    assert!(matches!(
        read_with_limits(&bytes, &small_values),
        Err(RegfError::Limit(_))
    ));
    let shallow = ReadLimits {
        max_depth: 0,
        ..ReadLimits::default()
    };
    assert!(matches!(
        read_with_limits(&bytes, &shallow),
        Err(RegfError::Limit(_))
    ));
}

#[test]
fn base_block_faults_are_typed() {
    let bytes = write(&Key::new("R"), &WriteOptions::default()).expect("write");
    assert_eq!(
        read(&bytes[..100]),
        Err(RegfError::Truncated("shorter than the 4 KiB base block"))
    );
    let mut b = bytes.clone();
    b[0] = b'x';
    assert_eq!(read(&b), Err(RegfError::NotAHive));
    let mut b = bytes.clone();
    b[100] ^= 1;
    assert!(matches!(read(&b), Err(RegfError::Checksum { .. })));
    let mut b = bytes.clone();
    b[24] = 9;
    fix_checksum(&mut b);
    assert_eq!(read(&b), Err(RegfError::Version { major: 1, minor: 9 }));
    let mut b = bytes.clone();
    b[8] = 7; // secondary sequence number
    fix_checksum(&mut b);
    assert!(read(&b).expect("dirty hives still read").dirty);
    // A root offset into the middle of nowhere.
    let mut b = bytes;
    b[36..40].copy_from_slice(&0x7FFF_0000u32.to_le_bytes());
    fix_checksum(&mut b);
    assert!(matches!(read(&b), Err(RegfError::Cell { .. })));
}

#[test]
fn writer_refuses_what_windows_would() {
    let dup = Key::new("R")
        .with_subkey(Key::new("a"))
        .with_subkey(Key::new("A"));
    assert_eq!(
        write(&dup, &WriteOptions::default()),
        Err(RegfError::DuplicateKey("A".into()))
    );
    let dupv = Key::new("R")
        .with_value(Value::dword("x", 1))
        .with_value(Value::dword("X", 2));
    assert_eq!(
        write(&dupv, &WriteOptions::default()),
        Err(RegfError::DuplicateValue("X".into()))
    );
    let slash = Key::new("R").with_subkey(Key::new("a\\b"));
    assert!(matches!(
        write(&slash, &WriteOptions::default()),
        Err(RegfError::KeyName(_))
    ));
    let long = Key::new("R").with_subkey(Key::new("x".repeat(256)));
    assert!(matches!(
        write(&long, &WriteOptions::default()),
        Err(RegfError::KeyName(_))
    ));
    let v4 = WriteOptions {
        minor_version: 4,
        ..WriteOptions::default()
    };
    assert_eq!(write(&Key::new("R"), &v4), Err(RegfError::WriteVersion(4)));
}

#[test]
fn nk_fields_as_windows_fills_them() {
    // Largest subkey name / value name in UTF-16 bytes, largest data in bytes,
    // subkey lists sorted by uppercase name with lh hashes.
    let t = Key::new("R")
        .with_value(Value::binary("vvvvv", vec![0; 300]))
        .with_subkey(Key::new("zeta"))
        .with_subkey(Key::new("Alpha"))
        .with_subkey(Key::new("beta12"));
    let bytes = write(&t, &WriteOptions::default()).expect("write");
    let root = 4096 + u32_at(&bytes, 36) as usize + 4;
    assert_eq!(&bytes[root..root + 2], b"nk");
    assert_eq!(u32_at(&bytes, root + 52), 12, "largest subkey name");
    assert_eq!(u32_at(&bytes, root + 60), 10, "largest value name");
    assert_eq!(u32_at(&bytes, root + 64), 300, "largest value data");
    assert_eq!(u32_at(&bytes, root + 48), 0xFFFF_FFFF, "no class name");
    let list = 4096 + u32_at(&bytes, root + 28) as usize + 4;
    assert_eq!(&bytes[list..list + 2], b"lh");
    let names: Vec<u32> = (0..3).map(|i| u32_at(&bytes, list + 8 + 8 * i)).collect();
    assert_eq!(
        names,
        [
            capmedia_regf::lh_hash("Alpha"),
            capmedia_regf::lh_hash("beta12"),
            capmedia_regf::lh_hash("zeta")
        ]
    );
}
