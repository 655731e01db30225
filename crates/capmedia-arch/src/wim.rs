//! Reading a WIM's header and XML data without decompressing anything.
//!
//! The boot image's architecture lives in the WIM's XML data resource, which
//! is always stored uncompressed. So the header (208 bytes) and the XML (a few
//! KiB) are all we read, whatever the WIM's size or compression. The WIM
//! format itself (header layout, pipable trailer, XML resource checks) is
//! capmedia-wim's, the workspace's one WIM parser; this module keeps the
//! architecture rules: which `<ARCH>` each image has.

use std::collections::BTreeSet;
use std::io::{Read, Seek};

use capmedia_content::Arch;
use serde::Serialize;

pub use capmedia_wim::header::{
    decode_utf16_xml, read_up_to, ResourceHeader, WimHeader, PIPABLE_WIM_MAGIC, SOLID_VERSION,
    WIM_HEADER_SIZE, WIM_MAGIC,
};
pub use capmedia_wim::DEFAULT_MAX_XML_SIZE;

use crate::ArchError;

/// One image described in the WIM's XML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WimImage {
    /// 1-based image index.
    pub index: u32,
    /// `<NAME>`, if the image has one.
    pub name: Option<String>,
    /// `<WINDOWS><ARCH>`.
    pub arch: Arch,
    /// Whether the header's boot index names this image.
    pub is_boot: bool,
    /// `<WINDOWS><VERSION>` as MAJOR.MINOR.BUILD.SPBUILD (e.g.
    /// `10.0.26100.1`: Windows PE's version for a boot image), when the XML
    /// gives at least MAJOR.MINOR.BUILD as numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Everything capmedia reads from a WIM (or one part of a split WIM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WimInfo {
    /// Part n ...
    pub part: u16,
    /// ... of m.
    pub total_parts: u16,
    /// Written by `wimlib-imagex capture --pipable`.
    pub pipable: bool,
    /// Version 0xE00: solid (LZMS) resources, as in ESD files.
    pub solid: bool,
    /// The header's version field.
    pub version: u32,
    /// "none", "xpress", "lzx", "lzms" or "unknown".
    pub compression: &'static str,
    /// The bootable image's index, 0 for none.
    pub boot_index: u32,
    /// Images in index order.
    pub images: Vec<WimImage>,
}

impl WimInfo {
    /// The image the boot index names, if any.
    pub fn boot_image(&self) -> Option<&WimImage> {
        self.images.iter().find(|i| i.is_boot)
    }

    /// The image with this 1-based index.
    pub fn image(&self, index: u32) -> Option<&WimImage> {
        self.images.iter().find(|i| i.index == index)
    }
}

/// Reads a WIM's header and XML with the default XML size limit.
pub fn read_wim<R: Read + Seek>(r: &mut R) -> Result<WimInfo, ArchError> {
    read_wim_with_limit(r, DEFAULT_MAX_XML_SIZE)
}

/// Reads a WIM's header and XML, refusing XML larger than `max_xml` bytes.
///
/// Reads at most two headers and the XML resource; never decompresses.
pub fn read_wim_with_limit<R: Read + Seek>(r: &mut R, max_xml: u64) -> Result<WimInfo, ArchError> {
    let (header, file_len) = capmedia_wim::read_header(r)?;
    let text = capmedia_wim::read_xml(r, &header.xml, file_len, max_xml)?;
    let images = parse_xml(&text, header.boot_index)?;
    let count = u32::try_from(images.len()).unwrap_or(u32::MAX);
    if count != header.image_count {
        return Err(ArchError::ImageCountMismatch {
            header: header.image_count,
            xml: count,
        });
    }
    if header.boot_index > count {
        return Err(ArchError::BadBootIndex {
            boot_index: header.boot_index,
            image_count: count,
        });
    }
    Ok(WimInfo {
        part: header.part,
        total_parts: header.total_parts,
        pipable: header.pipable,
        solid: header.version == SOLID_VERSION,
        version: header.version,
        compression: header.compression(),
        boot_index: header.boot_index,
        images,
    })
}

/// Parses the decoded XML into images, sorted by index.
pub fn parse_xml(text: &str, boot_index: u32) -> Result<Vec<WimImage>, ArchError> {
    let doc = roxmltree::Document::parse(text).map_err(|e| ArchError::XmlSyntax(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "WIM" {
        return Err(ArchError::XmlNotWim {
            found: root.tag_name().name().to_owned(),
        });
    }
    let image_nodes: Vec<_> = root
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "IMAGE")
        .collect();
    let image_count = u32::try_from(image_nodes.len()).unwrap_or(u32::MAX);
    let mut seen = BTreeSet::new();
    let mut images = Vec::with_capacity(image_nodes.len());
    for node in image_nodes {
        let raw = node.attribute("INDEX");
        let index = raw
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|i| (1..=image_count).contains(i) && seen.insert(*i))
            .ok_or_else(|| ArchError::BadImageIndex {
                value: raw.map(str::to_owned),
                image_count,
            })?;
        let name = child(node, "NAME").map(|n| n.text().unwrap_or("").to_owned());
        let arch_node = child(node, "WINDOWS")
            .and_then(|w| child(w, "ARCH"))
            .ok_or(ArchError::MissingArch { index })?;
        let value = arch_node.text().unwrap_or("").trim();
        let arch = value
            .parse::<u32>()
            .ok()
            .and_then(arch_from_wim_value)
            .ok_or_else(|| ArchError::UnknownArch {
                index,
                value: value.to_owned(),
            })?;
        let version = child(node, "WINDOWS")
            .and_then(|w| child(w, "VERSION"))
            .and_then(windows_version);
        images.push(WimImage {
            index,
            name,
            arch,
            is_boot: boot_index == index,
            version,
        });
    }
    images.sort_by_key(|i| i.index);
    Ok(images)
}

/// `<VERSION><MAJOR>10</MAJOR><MINOR>0</MINOR><BUILD>26100</BUILD>
/// <SPBUILD>1</SPBUILD></VERSION>` as `10.0.26100.1` (SPBUILD left out when
/// absent). Parts are parsed as numbers, so whatever the XML holds prints
/// as digits only.
fn windows_version(v: roxmltree::Node<'_, '_>) -> Option<String> {
    let part = |name: &str| {
        child(v, name)
            .and_then(|n| n.text())
            .and_then(|t| t.trim().parse::<u32>().ok())
    };
    let (major, minor, build) = (part("MAJOR")?, part("MINOR")?, part("BUILD")?);
    Some(match part("SPBUILD") {
        Some(sp) => format!("{major}.{minor}.{build}.{sp}"),
        None => format!("{major}.{minor}.{build}"),
    })
}

/// Maps the XML's `<ARCH>` (Windows' PROCESSOR_ARCHITECTURE_*) to [`Arch`].
pub fn arch_from_wim_value(v: u32) -> Option<Arch> {
    match v {
        0 => Some(Arch::X86),
        5 => Some(Arch::Arm),
        6 => Some(Arch::Ia64),
        9 => Some(Arch::X64),
        12 => Some(Arch::Arm64),
        _ => None,
    }
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

pub(crate) fn le_u16(b: &[u8]) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[..2]);
    u16::from_le_bytes(a)
}

pub(crate) fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::parse_xml;

    fn xml(version: &str) -> String {
        format!(
            "<WIM><IMAGE INDEX=\"1\"><NAME>PE</NAME><WINDOWS><ARCH>9</ARCH>{version}</WINDOWS>\
             </IMAGE></WIM>"
        )
    }

    #[test]
    fn windows_version_is_read_as_numbers() {
        let v = |x: &str| parse_xml(&xml(x), 1).unwrap()[0].version.clone();
        assert_eq!(
            v(
                "<VERSION><MAJOR>10</MAJOR><MINOR>0</MINOR><BUILD>26100</BUILD>\
               <SPBUILD>1</SPBUILD></VERSION>"
            )
            .as_deref(),
            Some("10.0.26100.1")
        );
        assert_eq!(
            v("<VERSION><MAJOR>6</MAJOR><MINOR>3</MINOR><BUILD>9600</BUILD></VERSION>").as_deref(),
            Some("6.3.9600")
        );
        // Absent, partial, or not numbers: no version, and no error.
        assert_eq!(v(""), None);
        assert_eq!(v("<VERSION><MAJOR>10</MAJOR></VERSION>"), None);
        assert_eq!(
            v("<VERSION><MAJOR>10</MAJOR><MINOR>x</MINOR><BUILD>1</BUILD></VERSION>"),
            None
        );
    }
}
