//! The reference computer's devices, and the ids Windows matches INFs
//! against for each.
//!
//! A device list is one of (detected from the text):
//! - **ids**: one Windows hardware or device-instance id a line
//!   (`PCI\VEN_8086&DEV_100E&SUBSYS_11001AF4&REV_03\3&267A616A&0&18`), as
//!   Device Manager or `Get-PnpDevice` show them. `#` or `;` start a
//!   comment, the first word of a line is the id, lines that hold no id
//!   (headers, rulers) are counted as ignored. Consecutive lines that only
//!   generalize the line before (Device Manager's "Hardware Ids" copied as
//!   a block: `...&SUBSYS_..&REV_..`, `...&SUBSYS_..`, `...&CC_020000`, ...)
//!   are one device, and a `CC_` id among them gives its class code.
//! - **pnputil**: `pnputil /enum-devices` output, with or without `/ids`:
//!   `Instance ID:` starts a device, `Class Name`, `Class GUID`, `Device
//!   Description`, and the `Hardware IDs` / `Compatible IDs` blocks are
//!   read.
//! - **lspci**: `lspci -nn` (`00:03.0 Ethernet controller [0200]: ...
//!   [8086:100e] (rev 03)`), optionally with `-v`/`-vv` detail lines whose
//!   `Subsystem: ... [1af4:1100]` gives the SUBSYS part, or `lspci -n`, or
//!   the machine-readable `lspci -vmm -nn`.
//!
//! Which devices are checked: where the list gives a class (lspci's class
//! code, pnputil's class, a `CC_` id), only network (PCI class 02, `Net`)
//! and mass-storage (PCI class 01, `SCSIAdapter`, `HDC`, `SDHost`) devices;
//! a device of unknown class (a bare id the user listed) is always checked.

use std::fmt;

use serde::Serialize;

use crate::driver::{classify, DriverKind};
use crate::text::{decode, TextEncoding};

/// Bounds for hostile device lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeviceListLimits {
    pub max_bytes: usize,
    pub max_lines: usize,
    pub max_devices: usize,
    /// Hardware plus compatible ids of one device.
    pub max_ids_per_device: usize,
    /// Characters of one id (Windows' own limit is `MAX_DEVICE_ID_LEN`, 200).
    pub max_id_chars: usize,
}

impl Default for DeviceListLimits {
    fn default() -> Self {
        DeviceListLimits {
            max_bytes: 16 << 20,
            max_lines: 1_000_000,
            max_devices: 100_000,
            max_ids_per_device: 1024,
            max_id_chars: 1024,
        }
    }
}

/// Why a device list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceListError {
    #[error("the device list is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("more than {limit} {what} (line {line})")]
    Limit {
        what: &'static str,
        limit: usize,
        line: usize,
    },
    #[error("line {line}: lspci output without numeric ids; run `lspci -nn` (or `lspci -nnv`)")]
    LspciWithoutIds { line: usize },
}

/// Which format a device list was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceListFormat {
    Ids,
    Pnputil,
    Lspci,
    /// `lspci -vmm`.
    LspciMachine,
}

/// What a device is, for deciding whether it must be covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Net,
    Storage,
    /// Known to be neither: not checked.
    Other,
    /// The list does not say: checked.
    Unknown,
}

impl DeviceKind {
    fn from_pci_class(class: u8) -> DeviceKind {
        match class {
            0x01 => DeviceKind::Storage,
            0x02 => DeviceKind::Net,
            _ => DeviceKind::Other,
        }
    }
}

impl From<DriverKind> for DeviceKind {
    fn from(k: DriverKind) -> Self {
        match k {
            DriverKind::Net => DeviceKind::Net,
            DriverKind::Storage => DeviceKind::Storage,
            DriverKind::Other => DeviceKind::Other,
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            DeviceKind::Net => "net",
            DeviceKind::Storage => "storage",
            DeviceKind::Other => "other",
            DeviceKind::Unknown => "unknown",
        })
    }
}

/// A PCI class code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ClassCode {
    pub class: u8,
    pub subclass: u8,
    /// The programming interface, when the list shows it (`lspci -nn`
    /// without `-v` does not).
    pub prog_if: Option<u8>,
}

/// One device of the reference computer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// The id as the list gave it (instance id or hardware id); for lspci,
    /// the PCI hardware id built from its numbers.
    pub id: String,
    /// 1-based line of the list where the device starts (0 if not from a list).
    pub line: usize,
    pub description: Option<String>,
    /// pnputil's class name (`Net`, `SCSIAdapter`, ...).
    pub class_name: Option<String>,
    pub class_guid: Option<String>,
    pub class_code: Option<ClassCode>,
    /// Further hardware ids the list gave (pnputil `/ids`, Device Manager).
    pub hardware_ids: Vec<String>,
    /// Compatible ids the list gave (pnputil `/ids`).
    pub compatible_ids: Vec<String>,
    /// For lspci output: whether the SUBSYS part is known (lspci shows it
    /// only with `-v`). Unknown, an INF id with any SUBSYS may match.
    pub subsys_known: bool,
    pub kind: DeviceKind,
}

impl Device {
    /// A device named by one id (for `--require-hwid`, or a list line).
    /// Its kind comes from a `CC_` part of a PCI id, else is unknown.
    pub fn from_id(id: &str) -> Device {
        let id = id.trim().to_owned();
        let class_code = pci_parts(&hardware_id(&id)).and_then(|p| p.cc);
        let mut d = Device {
            id,
            line: 0,
            description: None,
            class_name: None,
            class_guid: None,
            class_code,
            hardware_ids: Vec::new(),
            compatible_ids: Vec::new(),
            subsys_known: true,
            kind: DeviceKind::Unknown,
        };
        d.kind = d.infer_kind();
        d
    }

    /// Net or storage if the class (pnputil) or the class code says so;
    /// other if either is known and neither says so; else unknown. The
    /// "Other devices" class of a driverless device counts as not known.
    fn infer_kind(&self) -> DeviceKind {
        let by_class = if self.class_name.is_some() || self.class_guid.is_some() {
            let unknown_class = self.class_name.as_deref().is_some_and(|c| {
                c.eq_ignore_ascii_case("unknown") || c.eq_ignore_ascii_case("other devices")
            }) || self.class_guid.as_deref().is_some_and(|g| {
                g.trim_matches(|c| c == '{' || c == '}' || char::is_whitespace(c))
                    .eq_ignore_ascii_case("4d36e97e-e325-11ce-bfc1-08002be10318")
            });
            (!unknown_class).then(|| {
                DeviceKind::from(classify(
                    self.class_name.as_deref(),
                    self.class_guid.as_deref(),
                ))
            })
        } else {
            None
        };
        let by_code = self
            .class_code
            .map(|cc| DeviceKind::from_pci_class(cc.class));
        let specific =
            |k: &Option<DeviceKind>| matches!(k, Some(DeviceKind::Net | DeviceKind::Storage));
        if specific(&by_class) {
            by_class.unwrap_or(DeviceKind::Unknown)
        } else if specific(&by_code) {
            by_code.unwrap_or(DeviceKind::Unknown)
        } else {
            by_class.or(by_code).unwrap_or(DeviceKind::Unknown)
        }
    }

    /// Whether the device must be covered by a driver.
    pub fn is_checked(&self) -> bool {
        self.kind != DeviceKind::Other
    }

    /// The hardware id: the id without its instance part (an id of three
    /// or more `\`-separated parts loses the last one).
    pub fn hardware_id(&self) -> String {
        hardware_id(&self.id)
    }

    /// The ids Windows would match INFs against, most specific first
    /// (uppercase). `?` stands for one unknown hex digit (a SUBSYS or
    /// prog-if the list did not show); [`Pattern`] tells them apart.
    pub fn match_ids(&self) -> Vec<String> {
        self.patterns().into_iter().map(|p| p.text).collect()
    }

    /// [`Device::match_ids`] with wildcard information.
    pub fn patterns(&self) -> Vec<Pattern> {
        let mut out: Vec<Pattern> = Vec::new();
        // A set, not a scan of `out`: a device may list a thousand ids.
        let mut seen = std::collections::HashSet::new();
        let mut push = |p: Pattern| {
            if seen.insert(p.text.clone()) {
                out.push(p);
            }
        };
        let hw = hardware_id(&self.id).to_ascii_uppercase();
        let generated = generate(&hw, self.class_code, self.subsys_known);
        let listed: Vec<Pattern> = self
            .hardware_ids
            .iter()
            .chain(&self.compatible_ids)
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .map(Pattern::exact)
            .collect();
        if self.compatible_ids.is_empty() {
            // No Windows-made list: ours, then any extra the user gave.
            for p in generated.into_iter().chain(listed) {
                push(p);
            }
        } else {
            // pnputil /ids: Windows' own order, then ours for anything missing.
            push(Pattern::exact(hw.clone()));
            for p in listed.into_iter().chain(generated) {
                push(p);
            }
        }
        out
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.id, self.kind)?;
        if let Some(d) = &self.description {
            write!(f, " {d}")?;
        }
        Ok(())
    }
}

/// An id to match, possibly with unknown hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Pattern {
    /// Uppercase; when `wildcard`, each `?` is one unknown character.
    pub text: String,
    pub wildcard: bool,
}

impl Pattern {
    fn exact(text: String) -> Pattern {
        Pattern {
            text,
            wildcard: false,
        }
    }

    fn wild(text: String) -> Pattern {
        Pattern {
            text,
            wildcard: true,
        }
    }

    /// The text before the first wildcard.
    pub fn literal_prefix(&self) -> &str {
        if self.wildcard {
            self.text.split('?').next().unwrap_or_default()
        } else {
            &self.text
        }
    }

    /// Whether `id` (uppercase) matches.
    pub fn matches(&self, id: &str) -> bool {
        if !self.wildcard {
            return self.text == id;
        }
        self.text.len() == id.len()
            && self
                .text
                .bytes()
                .zip(id.bytes())
                .all(|(p, c)| p == c || (p == b'?' && c.is_ascii_hexdigit()))
    }
}

fn hardware_id(id: &str) -> String {
    let id = id.trim();
    if id.matches('\\').count() >= 2 {
        if let Some((hw, _instance)) = id.rsplit_once('\\') {
            return hw.to_owned();
        }
    }
    id.to_owned()
}

/// The parts of `PCI\VEN_v&DEV_d&SUBSYS_s&REV_r&CC_c`, uppercase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PciParts {
    ven: Option<String>,
    dev: Option<String>,
    subsys: Option<String>,
    rev: Option<String>,
    cc: Option<ClassCode>,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn parse_class(cc: &str) -> Option<ClassCode> {
    let byte = |i: usize| {
        cc.get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
    };
    match cc.len() {
        4 | 6 if cc.bytes().all(|b| b.is_ascii_hexdigit()) => Some(ClassCode {
            class: byte(0)?,
            subclass: byte(2)?,
            prog_if: if cc.len() == 6 { byte(4) } else { None },
        }),
        _ => None,
    }
}

fn pci_parts(hw: &str) -> Option<PciParts> {
    let upper = hw.to_ascii_uppercase();
    let rest = upper.strip_prefix("PCI\\")?;
    let mut p = PciParts::default();
    for part in rest.split('&') {
        let (k, v) = part.split_once('_')?;
        match k {
            "VEN" if is_hex(v, 4) => p.ven = Some(v.to_owned()),
            "DEV" if is_hex(v, 4) => p.dev = Some(v.to_owned()),
            "SUBSYS" if is_hex(v, 8) => p.subsys = Some(v.to_owned()),
            "REV" if is_hex(v, 2) => p.rev = Some(v.to_owned()),
            "CC" => p.cc = Some(parse_class(v)?),
            _ => return None,
        }
    }
    Some(p)
}

/// The ids Windows' PCI and USB bus drivers report for a hardware id,
/// most specific first.
fn generate(hw: &str, class: Option<ClassCode>, subsys_known: bool) -> Vec<Pattern> {
    let mut out = vec![Pattern::exact(hw.to_owned())];
    if let Some(p) = pci_parts(hw) {
        if let (Some(ven), Some(dev)) = (&p.ven, &p.dev) {
            let cc = p.cc.or(class);
            let base = format!("PCI\\VEN_{ven}&DEV_{dev}");
            // Hardware ids.
            match (&p.subsys, subsys_known) {
                (Some(s), _) => {
                    if let Some(r) = &p.rev {
                        out.push(Pattern::exact(format!("{base}&SUBSYS_{s}&REV_{r}")));
                    }
                    out.push(Pattern::exact(format!("{base}&SUBSYS_{s}")));
                }
                (None, false) => {
                    if let Some(r) = &p.rev {
                        out.push(Pattern::wild(format!("{base}&SUBSYS_????????&REV_{r}")));
                    }
                    out.push(Pattern::wild(format!("{base}&SUBSYS_????????")));
                }
                (None, true) => {}
            }
            let class_ids = |prefix: &str, out: &mut Vec<Pattern>| {
                if let Some(c) = cc {
                    let ccss = format!("{prefix}CC_{:02X}{:02X}", c.class, c.subclass);
                    match c.prog_if {
                        Some(pi) => out.push(Pattern::exact(format!("{ccss}{pi:02X}"))),
                        None => out.push(Pattern::wild(format!("{ccss}??"))),
                    }
                    out.push(Pattern::exact(ccss));
                }
            };
            class_ids(&format!("{base}&"), &mut out);
            // Compatible ids.
            if let Some(r) = &p.rev {
                out.push(Pattern::exact(format!("{base}&REV_{r}")));
            }
            out.push(Pattern::exact(base.clone()));
            class_ids(&format!("PCI\\VEN_{ven}&"), &mut out);
            out.push(Pattern::exact(format!("PCI\\VEN_{ven}")));
            class_ids("PCI\\", &mut out);
            if let Some(c) = cc {
                // As the project's facts list it (a class-only id).
                out.push(Pattern::exact(format!("PCI\\CC_{:02X}", c.class)));
            }
        }
    } else if let Some(rest) = hw.strip_prefix("USB\\") {
        // USB\VID_v&PID_p&REV_r[&MI_m]: also without REV.
        let parts: Vec<&str> = rest.split('&').collect();
        if parts.len() > 2 && parts.iter().any(|p| p.starts_with("REV_")) {
            let without: Vec<&str> = parts
                .iter()
                .copied()
                .filter(|p| !p.starts_with("REV_"))
                .collect();
            out.push(Pattern::exact(format!("USB\\{}", without.join("&"))));
        }
    }
    out
}

/// A parsed device list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceList {
    pub format: DeviceListFormat,
    pub encoding: TextEncoding,
    pub devices: Vec<Device>,
    /// Non-empty lines that held nothing the format reader understood.
    pub ignored_lines: usize,
}

/// Reads a device list, detecting its format and encoding.
pub fn parse_device_list(bytes: &[u8]) -> Result<DeviceList, DeviceListError> {
    parse_device_list_with(bytes, &DeviceListLimits::default())
}

pub fn parse_device_list_with(
    bytes: &[u8],
    limits: &DeviceListLimits,
) -> Result<DeviceList, DeviceListError> {
    if bytes.len() > limits.max_bytes {
        return Err(DeviceListError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let (text, encoding) = decode(bytes);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    if lines.len() > limits.max_lines {
        return Err(DeviceListError::Limit {
            what: "lines",
            limit: limits.max_lines,
            line: limits.max_lines + 1,
        });
    }
    let format = detect(&lines);
    let mut b = Builder {
        limits,
        devices: Vec::new(),
        ignored: 0,
    };
    match format {
        DeviceListFormat::Ids => parse_ids(&lines, &mut b)?,
        DeviceListFormat::Pnputil => parse_pnputil(&lines, &mut b)?,
        DeviceListFormat::Lspci => parse_lspci(&lines, &mut b)?,
        DeviceListFormat::LspciMachine => parse_lspci_machine(&lines, &mut b)?,
    }
    Ok(DeviceList {
        format,
        encoding,
        devices: b.devices,
        ignored_lines: b.ignored,
    })
}

fn detect(lines: &[&str]) -> DeviceListFormat {
    for l in lines {
        let t = l.trim();
        if t.is_empty() {
            continue;
        }
        if label_of(t).is_some_and(|(k, _)| k == "instance id") {
            return DeviceListFormat::Pnputil;
        }
        if label_of(t).is_some_and(|(k, v)| k == "slot" && slot(v).is_some()) {
            return DeviceListFormat::LspciMachine;
        }
        if !l.starts_with(char::is_whitespace) {
            if let Some((s, _)) = t.split_once(' ') {
                if slot(s).is_some() {
                    return DeviceListFormat::Lspci;
                }
            }
        }
    }
    DeviceListFormat::Ids
}

/// `[dddd:]bb:dd.f`.
fn slot(s: &str) -> Option<()> {
    let s = s.trim();
    let parts: Vec<&str> = s.split(':').collect();
    let (bus, devfn) = match parts.as_slice() {
        [d, b, df] if is_hex(d, 4) => (*b, *df),
        [b, df] => (*b, *df),
        _ => return None,
    };
    let (dev, func) = devfn.split_once('.')?;
    (is_hex(bus, 2)
        && is_hex(dev, 2)
        && func.len() == 1
        && func.bytes().all(|c| (b'0'..=b'7').contains(&c)))
    .then_some(())
}

/// `Label: value` with the label lowercased.
fn label_of(line: &str) -> Option<(String, &str)> {
    let (k, v) = line.split_once(':')?;
    let k = k.trim();
    if k.is_empty() || k.len() > 40 {
        return None;
    }
    Some((k.to_ascii_lowercase(), v.trim()))
}

struct Builder<'a> {
    limits: &'a DeviceListLimits,
    devices: Vec<Device>,
    ignored: usize,
}

impl Builder<'_> {
    fn check_id(&self, id: &str, line: usize) -> Result<(), DeviceListError> {
        if id.chars().count() > self.limits.max_id_chars {
            return Err(DeviceListError::Limit {
                what: "characters in one id",
                limit: self.limits.max_id_chars,
                line,
            });
        }
        Ok(())
    }

    fn push(&mut self, mut d: Device) -> Result<(), DeviceListError> {
        if self.devices.len() >= self.limits.max_devices {
            return Err(DeviceListError::Limit {
                what: "devices",
                limit: self.limits.max_devices,
                line: d.line,
            });
        }
        if d.class_code.is_none() {
            // pnputil /ids and Device Manager blocks carry the class code
            // in their CC_ ids; the one with a prog-if is the more precise.
            d.class_code = d
                .hardware_ids
                .iter()
                .chain(&d.compatible_ids)
                .filter_map(|id| pci_parts(id).and_then(|p| p.cc))
                .max_by_key(|c| c.prog_if.is_some());
        }
        d.kind = d.infer_kind();
        self.devices.push(d);
        Ok(())
    }

    /// Adds a listed hardware (or compatible) id to `d`.
    fn push_id(
        &self,
        d: &mut Device,
        compatible: bool,
        id: &str,
        line: usize,
    ) -> Result<(), DeviceListError> {
        self.check_id(id, line)?;
        if d.hardware_ids.len() + d.compatible_ids.len() >= self.limits.max_ids_per_device {
            return Err(DeviceListError::Limit {
                what: "ids for one device",
                limit: self.limits.max_ids_per_device,
                line,
            });
        }
        let list = if compatible {
            &mut d.compatible_ids
        } else {
            &mut d.hardware_ids
        };
        list.push(id.to_owned());
        Ok(())
    }
}

/// `ENUM\a_x&b_y` split into the enumerator and its `&` parts.
fn id_parts(hw: &str) -> Option<(String, Vec<String>)> {
    let upper = hw.to_ascii_uppercase();
    let (en, rest) = upper.split_once('\\')?;
    if rest.contains('\\') {
        return None;
    }
    Some((en.to_owned(), rest.split('&').map(str::to_owned).collect()))
}

/// Whether `next` (a hardware id line) only generalizes `cur`'s id: same
/// enumerator, every part of `next` is in `cur` except a class code.
fn generalizes(cur: &Device, next: &str) -> bool {
    let (Some((e1, p1)), Some((e2, p2))) = (id_parts(&cur.hardware_id()), id_parts(next)) else {
        return false;
    };
    let p1: std::collections::HashSet<&String> = p1.iter().collect();
    e1 == e2 && p2.iter().all(|p| p1.contains(p) || p.starts_with("CC_"))
}

fn parse_ids(lines: &[&str], b: &mut Builder<'_>) -> Result<(), DeviceListError> {
    let mut cur: Option<Device> = None;
    // Whether `cur` came from a bare hardware id (so a following block of
    // its generalizations belongs to it).
    for (i, raw) in lines.iter().enumerate() {
        let no = i + 1;
        let t = raw.trim();
        if t.is_empty() {
            continue;
        }
        if t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        let word = t.split_whitespace().next().unwrap_or_default();
        let word = word.trim_matches('"');
        let looks_like_id = (word.contains('\\') || word.starts_with('*'))
            && !word.starts_with('\\')
            && word.chars().all(|c| !c.is_control());
        if !looks_like_id {
            b.ignored += 1;
            continue;
        }
        b.check_id(word, no)?;
        let is_instance = word.matches('\\').count() >= 2;
        if let Some(c) = cur.as_mut() {
            let cur_is_instance = c.id.matches('\\').count() >= 2;
            if !is_instance && !cur_is_instance && generalizes(c, word) {
                if let Some(cc) = pci_parts(word).and_then(|p| p.cc) {
                    // The most specific class code wins (with a prog-if).
                    if c.class_code.is_none_or(|old| old.prog_if.is_none()) {
                        c.class_code = Some(cc);
                    }
                }
                b.push_id(c, false, word, no)?;
                continue;
            }
        }
        if let Some(done) = cur.take() {
            b.push(done)?;
        }
        let mut d = Device::from_id(word);
        d.line = no;
        cur = Some(d);
    }
    if let Some(done) = cur {
        b.push(done)?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    None,
    Hardware,
    Compatible,
}

fn parse_pnputil(lines: &[&str], b: &mut Builder<'_>) -> Result<(), DeviceListError> {
    const KNOWN: &[&str] = &[
        "device description",
        "class name",
        "class guid",
        "manufacturer name",
        "status",
        "driver name",
        "problem code",
        "problem status",
        "parent",
        "children",
        "extended configuration ids",
        "matching driver id",
        "driver rank",
        "driver date",
        "driver version",
        "signer name",
        "location path",
        "location paths",
        "bus type",
        "hardware ids",
        "compatible ids",
        "instance id",
    ];
    let mut cur: Option<Device> = None;
    let mut block = Block::None;
    for (i, raw) in lines.iter().enumerate() {
        let no = i + 1;
        let t = raw.trim();
        if t.is_empty() {
            block = Block::None;
            continue;
        }
        let label = label_of(t).filter(|(k, _)| KNOWN.contains(&k.as_str()));
        let Some((key, value)) = label else {
            if block != Block::None && raw.starts_with(char::is_whitespace) {
                if let Some(d) = cur.as_mut() {
                    b.push_id(d, block == Block::Compatible, t, no)?;
                    continue;
                }
            }
            b.ignored += 1;
            continue;
        };
        block = Block::None;
        match key.as_str() {
            "instance id" => {
                if let Some(done) = cur.take() {
                    b.push(done)?;
                }
                b.check_id(value, no)?;
                let mut d = Device::from_id(value);
                d.line = no;
                cur = Some(d);
            }
            _ => {
                let Some(d) = cur.as_mut() else {
                    continue;
                };
                let v = Some(value.to_owned()).filter(|v| !v.is_empty());
                match key.as_str() {
                    "device description" => d.description = v,
                    "class name" => d.class_name = v,
                    "class guid" => d.class_guid = v,
                    "hardware ids" | "compatible ids" => {
                        block = if key == "hardware ids" {
                            Block::Hardware
                        } else {
                            Block::Compatible
                        };
                        if let Some(v) = v {
                            b.push_id(d, block == Block::Compatible, &v, no)?;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(done) = cur {
        b.push(done)?;
    }
    Ok(())
}

/// One PCI function as lspci describes it.
#[derive(Debug, Default)]
struct PciFunction {
    line: usize,
    class: Option<(u8, u8)>,
    prog_if: Option<u8>,
    vendor: Option<String>,
    device: Option<String>,
    sub_vendor: Option<String>,
    sub_device: Option<String>,
    rev: Option<String>,
    description: Option<String>,
    /// lspci -v / -vmm show every field, so an absent one is zero.
    verbose: bool,
}

impl PciFunction {
    fn into_device(self) -> Result<Device, DeviceListError> {
        let (Some(ven), Some(dev)) = (self.vendor, self.device) else {
            return Err(DeviceListError::LspciWithoutIds { line: self.line });
        };
        let mut id = format!("PCI\\VEN_{ven}&DEV_{dev}");
        let subsys_known = match (&self.sub_vendor, &self.sub_device) {
            (Some(v), Some(d)) => {
                id.push_str(&format!("&SUBSYS_{d}{v}"));
                true
            }
            _ if self.verbose => {
                id.push_str("&SUBSYS_00000000");
                true
            }
            _ => false,
        };
        // lspci prints the revision only when it is not zero.
        id.push_str(&format!("&REV_{}", self.rev.as_deref().unwrap_or("00")));
        let class_code = self.class.map(|(class, subclass)| ClassCode {
            class,
            subclass,
            prog_if: self.prog_if.or(self.verbose.then_some(0)),
        });
        Ok(Device {
            id,
            line: self.line,
            description: self.description,
            class_name: None,
            class_guid: None,
            class_code,
            hardware_ids: Vec::new(),
            compatible_ids: Vec::new(),
            subsys_known,
            kind: DeviceKind::Unknown,
        })
    }
}

/// The last `[hhhh:hhhh]` (or, numeric, the first bare `hhhh:hhhh`) in `s`,
/// uppercase, and the text after it.
fn vendor_device(s: &str, numeric: bool) -> Option<(String, String, &str)> {
    let bytes = s.as_bytes();
    let found = if numeric {
        (0..bytes.len()).find(|&i| {
            s.get(i..i + 9)
                .is_some_and(|w| pair(w).is_some() && (i == 0 || bytes.get(i - 1) == Some(&b' ')))
        })
    } else {
        (0..bytes.len()).rev().find(|&i| {
            bytes.get(i) == Some(&b'[')
                && s.get(i + 1..i + 10).is_some_and(|w| pair(w).is_some())
                && bytes.get(i + 10) == Some(&b']')
        })
    }?;
    let start = if numeric { found } else { found + 1 };
    let (v, d) = pair(s.get(start..start + 9)?)?;
    let after = s.get(start + 9..).unwrap_or_default();
    Some((v, d, after))
}

/// `hhhh:hhhh` → both halves uppercase.
fn pair(w: &str) -> Option<(String, String)> {
    let (a, b) = w.split_once(':')?;
    (is_hex(a, 4) && is_hex(b, 4)).then(|| (a.to_ascii_uppercase(), b.to_ascii_uppercase()))
}

/// `(rev hh)` and `(prog-if hh` in a device line's tail.
fn rev_progif(tail: &str, f: &mut PciFunction) {
    if let Some(r) = tail.split("(rev ").nth(1) {
        let r = r.get(..2).unwrap_or_default();
        if is_hex(r, 2) {
            f.rev = Some(r.to_ascii_uppercase());
        }
    }
    if let Some(p) = tail.split("(prog-if ").nth(1) {
        if let Some(v) = p.get(..2).and_then(|h| u8::from_str_radix(h, 16).ok()) {
            f.prog_if = Some(v);
        }
    }
}

fn parse_lspci(lines: &[&str], b: &mut Builder<'_>) -> Result<(), DeviceListError> {
    let mut cur: Option<PciFunction> = None;
    for (i, raw) in lines.iter().enumerate() {
        let no = i + 1;
        let t = raw.trim();
        if t.is_empty() {
            continue;
        }
        if raw.starts_with(char::is_whitespace) {
            let Some(f) = cur.as_mut() else {
                b.ignored += 1;
                continue;
            };
            f.verbose = true;
            if let Some((k, v)) = label_of(t) {
                if k == "subsystem" {
                    let numeric = !v.contains('[');
                    if let Some((sv, sd, _)) = vendor_device(v, numeric) {
                        f.sub_vendor = Some(sv);
                        f.sub_device = Some(sd);
                    }
                }
            }
            continue;
        }
        let Some((s, rest)) = t.split_once(' ') else {
            b.ignored += 1;
            continue;
        };
        if slot(s).is_none() {
            b.ignored += 1;
            continue;
        }
        if let Some(done) = cur.take() {
            push_pci(b, done)?;
        }
        let mut f = PciFunction {
            line: no,
            ..Default::default()
        };
        // -nn: "Class name [cccc]: Vendor Device [vvvv:dddd] (rev rr)";
        // -n:  "cccc: vvvv:dddd (rev rr)".
        let (class_part, desc) = match rest.split_once(": ") {
            Some((c, d)) => (c, d),
            None => (rest, ""),
        };
        let numeric = is_hex(class_part.trim(), 4);
        let class_hex = if numeric {
            Some(class_part.trim())
        } else {
            class_part
                .rsplit_once('[')
                .and_then(|(_, h)| h.strip_suffix(']'))
                .filter(|h| is_hex(h, 4))
        };
        f.class = class_hex.and_then(|h| {
            Some((
                u8::from_str_radix(h.get(..2)?, 16).ok()?,
                u8::from_str_radix(h.get(2..)?, 16).ok()?,
            ))
        });
        if let Some((v, d, after)) = vendor_device(desc, numeric) {
            f.vendor = Some(v);
            f.device = Some(d);
            rev_progif(after, &mut f);
            if !numeric {
                let name = desc
                    .get(..desc.len().saturating_sub(after.len() + 11))
                    .unwrap_or_default();
                let name = name.trim();
                if !name.is_empty() {
                    f.description = Some(name.to_owned());
                }
            }
        }
        cur = Some(f);
    }
    if let Some(done) = cur {
        push_pci(b, done)?;
    }
    Ok(())
}

fn push_pci(b: &mut Builder<'_>, f: PciFunction) -> Result<(), DeviceListError> {
    let d = f.into_device()?;
    b.check_id(&d.id, d.line)?;
    b.push(d)
}

fn parse_lspci_machine(lines: &[&str], b: &mut Builder<'_>) -> Result<(), DeviceListError> {
    // Records of "Tag:\tvalue" lines separated by blank lines; with -nn a
    // value ends in "[hex]", with -n it is the hex.
    fn hex_of(v: &str, len: usize) -> Option<String> {
        let h = match v.rsplit_once('[') {
            Some((_, h)) => h.strip_suffix(']')?,
            None => v,
        };
        is_hex(h.trim(), len).then(|| h.trim().to_ascii_uppercase())
    }
    let mut cur: Option<PciFunction> = None;
    for (i, raw) in lines.iter().enumerate() {
        let no = i + 1;
        let t = raw.trim();
        if t.is_empty() {
            if let Some(done) = cur.take() {
                push_pci(b, done)?;
            }
            continue;
        }
        let Some((k, v)) = label_of(t) else {
            b.ignored += 1;
            continue;
        };
        if k == "slot" {
            if let Some(done) = cur.take() {
                push_pci(b, done)?;
            }
            cur = Some(PciFunction {
                line: no,
                verbose: true,
                ..Default::default()
            });
            continue;
        }
        let Some(f) = cur.as_mut() else {
            b.ignored += 1;
            continue;
        };
        match k.as_str() {
            "class" => {
                f.class = hex_of(v, 4).and_then(|h| {
                    Some((
                        u8::from_str_radix(h.get(..2)?, 16).ok()?,
                        u8::from_str_radix(h.get(2..)?, 16).ok()?,
                    ))
                })
            }
            "vendor" => f.vendor = hex_of(v, 4),
            "device" => {
                f.device = hex_of(v, 4);
                let name = v.rsplit_once('[').map_or("", |(n, _)| n).trim();
                if !name.is_empty() {
                    f.description = Some(name.to_owned());
                }
            }
            "svendor" => f.sub_vendor = hex_of(v, 4),
            "sdevice" => f.sub_device = hex_of(v, 4),
            "rev" => f.rev = hex_of(v, 2),
            "progif" => f.prog_if = hex_of(v, 2).and_then(|h| u8::from_str_radix(&h, 16).ok()),
            _ => {}
        }
    }
    if let Some(done) = cur {
        push_pci(b, done)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_ids_in_windows_order() {
        let d = Device::from_id("PCI\\VEN_8086&DEV_100E&SUBSYS_001E8086&REV_02\\3&267A616A&0&18");
        assert_eq!(d.kind, DeviceKind::Unknown);
        assert_eq!(
            d.match_ids(),
            vec![
                "PCI\\VEN_8086&DEV_100E&SUBSYS_001E8086&REV_02",
                "PCI\\VEN_8086&DEV_100E&SUBSYS_001E8086",
                "PCI\\VEN_8086&DEV_100E&REV_02",
                "PCI\\VEN_8086&DEV_100E",
                "PCI\\VEN_8086",
            ]
        );
        let mut d = Device::from_id("pci\\ven_8086&dev_100e&subsys_001e8086&rev_02");
        d.class_code = Some(ClassCode {
            class: 2,
            subclass: 0,
            prog_if: Some(0),
        });
        assert_eq!(
            d.match_ids(),
            vec![
                "PCI\\VEN_8086&DEV_100E&SUBSYS_001E8086&REV_02",
                "PCI\\VEN_8086&DEV_100E&SUBSYS_001E8086",
                "PCI\\VEN_8086&DEV_100E&CC_020000",
                "PCI\\VEN_8086&DEV_100E&CC_0200",
                "PCI\\VEN_8086&DEV_100E&REV_02",
                "PCI\\VEN_8086&DEV_100E",
                "PCI\\VEN_8086&CC_020000",
                "PCI\\VEN_8086&CC_0200",
                "PCI\\VEN_8086",
                "PCI\\CC_020000",
                "PCI\\CC_0200",
                "PCI\\CC_02",
            ]
        );
    }

    #[test]
    fn usb_and_generic_ids() {
        let d = Device::from_id("USB\\VID_0BDA&PID_8153&REV_3100\\000001");
        assert_eq!(
            d.match_ids(),
            vec!["USB\\VID_0BDA&PID_8153&REV_3100", "USB\\VID_0BDA&PID_8153"]
        );
        let d = Device::from_id("ACPI\\PNP0A03\\0");
        assert_eq!(d.match_ids(), vec!["ACPI\\PNP0A03"]);
        let d = Device::from_id("HID\\VID_045E&PID_0745&MI_00&Col01");
        assert_eq!(d.match_ids(), vec!["HID\\VID_045E&PID_0745&MI_00&COL01"]);
        let d = Device::from_id("*PNP0A03");
        assert_eq!(d.match_ids(), vec!["*PNP0A03"]);
    }

    #[test]
    fn wildcards_for_what_lspci_did_not_show() {
        let list = parse_device_list(
            b"00:1f.2 SATA controller [0106]: Intel Corporation 82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode] [8086:2922] (rev 02)\n",
        )
        .unwrap();
        assert_eq!(list.format, DeviceListFormat::Lspci);
        let d = &list.devices[0];
        assert_eq!(d.id, "PCI\\VEN_8086&DEV_2922&REV_02");
        assert_eq!(d.kind, DeviceKind::Storage);
        assert_eq!(
            d.description.as_deref(),
            Some(
                "Intel Corporation 82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode]"
            )
        );
        let p = d.patterns();
        let wild: Vec<&str> = p
            .iter()
            .filter(|p| p.wildcard)
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(
            wild,
            vec![
                "PCI\\VEN_8086&DEV_2922&SUBSYS_????????&REV_02",
                "PCI\\VEN_8086&DEV_2922&SUBSYS_????????",
                "PCI\\VEN_8086&DEV_2922&CC_0106??",
                "PCI\\VEN_8086&CC_0106??",
                "PCI\\CC_0106??",
            ]
        );
        let w = p.iter().find(|p| p.text == "PCI\\CC_0106??").unwrap();
        assert!(w.matches("PCI\\CC_010601"));
        assert!(!w.matches("PCI\\CC_0106"));
        assert!(!w.matches("PCI\\CC_01060"));
        assert!(!w.matches("PCI\\CC_0107 1"));
        assert_eq!(w.literal_prefix(), "PCI\\CC_0106");
    }

    #[test]
    fn slots() {
        assert!(slot("00:03.0").is_some());
        assert!(slot("0000:3b:00.1").is_some());
        assert!(slot("00:03.8").is_none());
        assert!(slot("0:03.0").is_none());
        assert!(slot("PCI\\VEN").is_none());
    }
}
