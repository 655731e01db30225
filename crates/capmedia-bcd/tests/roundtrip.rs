//! Random stores written as hives and read back unchanged.

use capmedia_bcd::{DeviceValue, Element, ElementValue, Guid, Object, Store};
use proptest::prelude::*;

fn guid() -> impl Strategy<Value = Guid> {
    any::<[u8; 16]>().prop_map(Guid::from_bytes_le)
}

fn text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9 \\\\._éΩ-]{0,40}"
}

/// An element id and a value of the format the id names.
fn element(object_type: u32) -> impl Strategy<Value = Element> {
    let value = prop_oneof![
        (Just(1u32), Just(ElementValue::Device(DeviceValue::boot()))).boxed(),
        (
            Just(1u32),
            (text(), guid())
                .prop_map(|(p, g)| ElementValue::Device(DeviceValue::ramdisk_on_boot(&p, g)))
        )
            .boxed(),
        (Just(2u32), text().prop_map(ElementValue::String)).boxed(),
        (Just(3u32), guid().prop_map(ElementValue::Object)).boxed(),
        (
            Just(4u32),
            proptest::collection::vec(guid(), 0..5).prop_map(ElementValue::ObjectList)
        )
            .boxed(),
        (Just(5u32), any::<u64>().prop_map(ElementValue::Integer)).boxed(),
        (Just(6u32), any::<bool>().prop_map(ElementValue::Boolean)).boxed(),
        (
            Just(7u32),
            proptest::collection::vec(any::<u64>(), 0..5).prop_map(ElementValue::IntegerList)
        )
            .boxed(),
        (
            Just(8u32),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(ElementValue::Binary)
        )
            .boxed(),
    ];
    (1u32..4, 0u32..0x100, value).prop_map(move |(class, sub, (format, v))| {
        Element::new(object_type, (class << 28) | (format << 24) | sub, v)
    })
}

fn object() -> impl Strategy<Value = Object> {
    let ty = prop_oneof![
        Just(0x1010_0002u32),
        Just(0x1020_0003),
        Just(0x1020_0005),
        Just(0x2010_0000),
        Just(0x2020_0003),
        Just(0x3000_0000),
        any::<u32>()
    ];
    (guid(), ty).prop_flat_map(|(id, ty)| {
        proptest::collection::vec(element(ty), 0..8).prop_map(move |mut els| {
            els.sort_by_key(|e| e.id);
            els.dedup_by_key(|e| e.id);
            let mut o = Object::new(id, ty);
            o.elements = els;
            o
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn stores_round_trip(mut objects in proptest::collection::vec(object(), 0..10), ts in any::<u64>()) {
        objects.sort_by_key(|o| o.id.to_string());
        objects.dedup_by_key(|o| o.id);
        let store = Store { objects };
        let bytes = store.to_hive(ts).expect("write");
        prop_assert_eq!(&store.to_hive(ts).expect("again"), &bytes);
        let back = Store::from_hive(&bytes).expect("read");
        prop_assert_eq!(back, store);
    }
}
