//! The BCD object model and its registry layout.
//!
//! ```text
//! <root>\Description\KeyName = "BCD00000000"            REG_SZ
//! <root>\Objects\{guid}\Description\Type = object type  REG_DWORD
//! <root>\Objects\{guid}\Elements\<8 hex digits>\Element  by the id's format:
//!   1 device REG_BINARY, 2 string REG_SZ, 3 object REG_SZ "{guid}",
//!   4 object list REG_MULTI_SZ, 5 integer REG_BINARY (8 bytes LE),
//!   6 boolean REG_BINARY (1 byte), 7 integer list REG_BINARY (8 bytes each),
//!   8 binary REG_BINARY
//! ```

use std::fmt;

use capmedia_regf::{Key, Value, ValueType, WriteOptions};
use serde::Serialize;

use crate::device::{Device, DeviceValue};
use crate::names::{element_name, format_of, integer_text, object_kind, Format};
use crate::{well_known, BcdError, Guid};

/// The name of the root key, as in the BCD stores of Windows media (Windows
/// loads a store under its own key name, so this is cosmetic).
pub const ROOT_KEY_NAME: &str = "System";
/// `Description\KeyName`: the name the store was loaded under
/// (`BCD00000000` for the system store; media stores carry this or
/// `BCD00000001`).
pub const STORE_KEY_NAME: &str = "BCD00000000";
/// Most objects read from one store (real stores hold a few dozen).
const MAX_OBJECTS: usize = 4096;

/// An element's decoded value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum ElementValue {
    Device(DeviceValue),
    String(String),
    Object(Guid),
    ObjectList(Vec<Guid>),
    Integer(u64),
    Boolean(bool),
    IntegerList(Vec<u64>),
    Binary(Vec<u8>),
    /// Stored with a registry type that does not match the id's format.
    Raw {
        reg_type: u32,
        data: Vec<u8>,
    },
}

/// One element of an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Element {
    pub id: u32,
    /// The `bcdedit` name (`custom:xxxxxxxx` when it has none).
    pub name: String,
    pub value: ElementValue,
}

impl Element {
    /// An element of an object of type `object_type` (the type decides the name).
    pub fn new(object_type: u32, id: u32, value: ElementValue) -> Self {
        Self {
            id,
            name: element_name(object_type, id),
            value,
        }
    }
}

/// One BCD object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Object {
    pub id: Guid,
    /// The alias `bcdedit` shows (`{bootmgr}` ...), if any.
    pub alias: Option<String>,
    pub object_type: u32,
    /// The section title `bcdedit` prints for it.
    pub kind: String,
    pub elements: Vec<Element>,
}

impl Object {
    pub fn new(id: Guid, object_type: u32) -> Self {
        Self {
            id,
            alias: well_known::alias(id).map(str::to_string),
            object_type,
            kind: object_kind(object_type, id).to_string(),
            elements: Vec::new(),
        }
    }

    /// Builder: add an element (its name from this object's type).
    pub fn with(mut self, id: u32, value: ElementValue) -> Self {
        self.elements
            .push(Element::new(self.object_type, id, value));
        self
    }

    pub fn element(&self, id: u32) -> Option<&ElementValue> {
        self.elements.iter().find(|e| e.id == id).map(|e| &e.value)
    }
}

/// A BCD store: its objects in the order the hive lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Store {
    pub objects: Vec<Object>,
}

fn bad(what: &'static str) -> BcdError {
    BcdError::NotBcd(what)
}

fn decode(id: u32, v: &Value) -> ElementValue {
    let raw = || ElementValue::Raw {
        reg_type: v.kind.0,
        data: v.data.clone(),
    };
    let le = |b: &[u8]| {
        let mut x = [0u8; 8];
        x[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(x)
    };
    match (format_of(id), v.kind) {
        (Format::Device, ValueType::BINARY) => ElementValue::Device(DeviceValue::parse(&v.data)),
        (Format::String, ValueType::SZ) => v.as_string().map_or_else(raw, ElementValue::String),
        (Format::Object, ValueType::SZ) => v
            .as_string()
            .and_then(|s| Guid::parse(&s))
            .map_or_else(raw, ElementValue::Object),
        (Format::ObjectList, ValueType::MULTI_SZ) => v
            .as_multi_string()
            .and_then(|l| l.iter().map(|s| Guid::parse(s)).collect::<Option<Vec<_>>>())
            .map_or_else(raw, ElementValue::ObjectList),
        (Format::Integer, ValueType::BINARY) if (1..=8).contains(&v.data.len()) => {
            ElementValue::Integer(le(&v.data))
        }
        (Format::Boolean, ValueType::BINARY) if (1..=8).contains(&v.data.len()) => {
            ElementValue::Boolean(v.data.iter().any(|&b| b != 0))
        }
        (Format::IntegerList, ValueType::BINARY) if v.data.len().is_multiple_of(8) => {
            ElementValue::IntegerList(v.data.chunks_exact(8).map(le).collect())
        }
        (Format::Binary, ValueType::BINARY) => ElementValue::Binary(v.data.clone()),
        _ => raw(),
    }
}

fn encode(v: &ElementValue) -> Value {
    const N: &str = "Element";
    match v {
        ElementValue::Device(d) => Value::binary(N, d.raw.clone()),
        ElementValue::String(s) => Value::string(N, s),
        ElementValue::Object(g) => Value::string(N, &g.to_string()),
        ElementValue::ObjectList(l) => {
            let items: Vec<String> = l.iter().map(Guid::to_string).collect();
            Value::multi_string(N, &items)
        }
        ElementValue::Integer(i) => Value::binary(N, i.to_le_bytes().to_vec()),
        ElementValue::Boolean(b) => Value::binary(N, vec![u8::from(*b)]),
        ElementValue::IntegerList(l) => {
            Value::binary(N, l.iter().flat_map(|i| i.to_le_bytes()).collect())
        }
        ElementValue::Binary(b) => Value::binary(N, b.clone()),
        ElementValue::Raw { reg_type, data } => Value::new(N, ValueType(*reg_type), data.clone()),
    }
}

impl Store {
    /// Reads a store from hive bytes (any store: written here or by Windows).
    pub fn from_hive(bytes: &[u8]) -> Result<Self, BcdError> {
        let hive = capmedia_regf::read(bytes)?;
        Self::from_key(&hive.root)
    }

    /// Reads a store from a hive's root key.
    pub fn from_key(root: &Key) -> Result<Self, BcdError> {
        let objects_key = root.subkey("Objects").ok_or(bad("no Objects key"))?;
        if objects_key.subkeys.len() > MAX_OBJECTS {
            return Err(bad("more objects than any store holds"));
        }
        let mut objects = Vec::with_capacity(objects_key.subkeys.len());
        for k in &objects_key.subkeys {
            let id = Guid::parse(&k.name).ok_or_else(|| BcdError::ObjectName(k.name.clone()))?;
            let object_type = k
                .path("Description")
                .and_then(|d| d.value("Type"))
                .and_then(Value::as_dword)
                .ok_or_else(|| BcdError::ObjectType(k.name.clone()))?;
            let mut obj = Object::new(id, object_type);
            if let Some(elements) = k.subkey("Elements") {
                for e in &elements.subkeys {
                    let eid = u32::from_str_radix(&e.name, 16)
                        .ok()
                        .filter(|_| e.name.len() == 8)
                        .ok_or_else(|| BcdError::ElementName(e.name.clone()))?;
                    let Some(v) = e.value("Element") else {
                        return Err(BcdError::ElementName(e.name.clone()));
                    };
                    obj.elements
                        .push(Element::new(object_type, eid, decode(eid, v)));
                }
            }
            objects.push(obj);
        }
        Ok(Self { objects })
    }

    /// The registry tree of this store.
    pub fn to_key(&self) -> Key {
        let mut objects = Key::new("Objects");
        for o in &self.objects {
            let mut elements = Key::new("Elements");
            for e in &o.elements {
                elements
                    .subkeys
                    .push(Key::new(format!("{:08x}", e.id)).with_value(encode(&e.value)));
            }
            objects.subkeys.push(
                Key::new(o.id.to_string())
                    .with_subkey(
                        Key::new("Description").with_value(Value::dword("Type", o.object_type)),
                    )
                    .with_subkey(elements),
            );
        }
        Key::new(ROOT_KEY_NAME)
            .with_subkey(
                Key::new("Description").with_value(Value::string("KeyName", STORE_KEY_NAME)),
            )
            .with_subkey(objects)
    }

    /// The store as a hive file (regf 1.5), every time stamp `timestamp`
    /// (a FILETIME).
    pub fn to_hive(&self, timestamp: u64) -> Result<Vec<u8>, BcdError> {
        let opts = WriteOptions {
            minor_version: 5,
            timestamp,
            file_name: String::new(),
        };
        Ok(capmedia_regf::write(&self.to_key(), &opts)?)
    }

    pub fn object(&self, id: Guid) -> Option<&Object> {
        self.objects.iter().find(|o| o.id == id)
    }

    /// The object `{bootmgr}`'s `default` names (shown as `{default}`).
    fn default_object(&self) -> Option<Guid> {
        let bm = self
            .object(well_known::BOOTMGR)
            .or_else(|| self.object(well_known::FWBOOTMGR))?;
        match bm.element(0x2300_0003)? {
            ElementValue::Object(g) => Some(*g),
            _ => None,
        }
    }
}

/// `bcdedit /enum all` ordering: boot managers, applications, inherited
/// settings, device options.
fn rank(object_type: u32) -> u32 {
    match object_type {
        0x1010_0001 => 0,
        0x1010_0002 => 1,
        t => (t >> 28) + 1,
    }
}

struct Names {
    default: Option<Guid>,
}

impl Names {
    fn guid(&self, g: Guid) -> String {
        if Some(g) == self.default {
            return "{default}".to_string();
        }
        well_known::alias(g).map_or_else(|| g.to_string(), str::to_string)
    }

    fn device(&self, d: &Device, options: Guid) -> String {
        match d {
            Device::Boot => "boot".to_string(),
            Device::Ramdisk { parent, path } => {
                let parent = match **parent {
                    Device::Boot => "boot".to_string(),
                    ref p => self.device(p, Guid::from_bytes_le([0; 16])),
                };
                let mut s = format!("ramdisk=[{parent}]{path}");
                if !options.is_nil() {
                    s.push(',');
                    s.push_str(&self.guid(options));
                }
                s
            }
            Device::GptPartition { disk, partition } => {
                format!("partition=(gpt disk {disk} partition {partition})")
            }
            Device::MbrPartition {
                disk_signature,
                offset,
            } => format!("partition=(mbr disk {disk_signature:08x} offset {offset})"),
            Device::Unknown { .. } => "unknown".to_string(),
        }
    }

    /// The value's lines (object lists print one GUID a line).
    fn value(&self, name: &str, v: &ElementValue) -> Vec<String> {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        match v {
            ElementValue::Device(d) => vec![self.device(&d.device, d.options)],
            ElementValue::String(s) => vec![s.clone()],
            ElementValue::Object(g) => vec![self.guid(*g)],
            ElementValue::ObjectList(l) if l.is_empty() => vec![String::new()],
            ElementValue::ObjectList(l) => l.iter().map(|g| self.guid(*g)).collect(),
            ElementValue::Integer(i) => vec![integer_text(name, *i)],
            ElementValue::Boolean(b) => vec![if *b { "Yes" } else { "No" }.to_string()],
            ElementValue::IntegerList(l) => {
                vec![l
                    .iter()
                    .map(|i| format!("{i:#x}"))
                    .collect::<Vec<_>>()
                    .join(" ")]
            }
            ElementValue::Binary(b) => vec![hex(b)],
            ElementValue::Raw { data, .. } => vec![hex(data)],
        }
    }
}

/// Prints the store as `bcdedit /store <file> /enum all` does.
impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = Names {
            default: self.default_object(),
        };
        let mut order: Vec<&Object> = self.objects.iter().collect();
        order.sort_by_key(|o| rank(o.object_type));
        for (i, o) in order.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{}", o.kind)?;
            writeln!(f, "{}", "-".repeat(o.kind.chars().count()))?;
            writeln!(f, "{:<24}{}", "identifier", names.guid(o.id))?;
            for e in &o.elements {
                for (n, line) in names.value(&e.name, &e.value).iter().enumerate() {
                    let label = if n == 0 { e.name.as_str() } else { "" };
                    writeln!(f, "{label:<24}{line}")?;
                }
            }
        }
        Ok(())
    }
}
