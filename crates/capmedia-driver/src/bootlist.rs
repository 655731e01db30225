//! The boot images a DP holds, each with its architecture and Windows PE
//! version read from the boot WIM's header and XML by range reads (a few
//! KiB per package, nothing fetched), for pickers such as the wizard's
//! boot image page.
//!
//! The rule the capture applies (which image of the WIM boots) is the one
//! [`crate::resolve`] applies, so what a picker shows is what a capture
//! would check.

use capmedia_content::{Arch, ContentId, PackageId, PackageKind};
use capmedia_dp::{Dp, DpError, PackageInfo};

/// One boot image package as a picker shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BootImageSummary {
    pub package: PackageId,
    /// The content version on the DP.
    pub content: Option<ContentId>,
    /// The package's size (sum of its files).
    pub size: u64,
    /// The booting image's architecture, from the WIM's XML.
    pub arch: Option<Arch>,
    /// The booting image's `<NAME>`.
    pub image_name: Option<String>,
    /// The booting image's Windows version (`10.0.22621.1`), when the XML
    /// has one (`<WINDOWS><VERSION>`).
    pub winpe_version: Option<String>,
    /// Why the package cannot be used (not readable, no boot WIM, no
    /// architecture...), for a list that goes on with the others.
    pub problem: Option<String>,
}

impl BootImageSummary {
    /// Whether a capture of it could start (no problem and an architecture).
    pub fn usable(&self) -> bool {
        self.problem.is_none() && self.arch.is_some()
    }
}

/// The boot image packages on `dp` with their architecture and version.
/// A package that cannot be read is listed with its `problem`; access
/// errors on the DP itself fail the call (boxed: a `DpError` is big, and
/// this is no hot path).
pub fn boot_image_summaries(dp: &Dp) -> Result<Vec<BootImageSummary>, Box<DpError>> {
    let packages = dp.list_packages().map_err(Box::new)?;
    Ok(packages
        .into_iter()
        .filter(|p| p.kind == PackageKind::BootImage)
        .map(|p| summarize(dp, p))
        .collect())
}

fn summarize(dp: &Dp, p: PackageInfo) -> BootImageSummary {
    let mut s = BootImageSummary {
        package: p.id.clone(),
        content: p.content.clone(),
        size: p.size,
        arch: None,
        image_name: None,
        winpe_version: None,
        problem: p.problem.clone(),
    };
    if s.problem.is_some() {
        return s;
    }
    if let Err(problem) = read_wim(dp, &p.id, &mut s) {
        s.problem = Some(problem);
    }
    s
}

fn read_wim(dp: &Dp, package: &PackageId, s: &mut BootImageSummary) -> Result<(), String> {
    let content = dp.resolve(package).map_err(|e| e.to_string())?;
    let wim = capmedia_dp::boot_wim(&content)
        .ok_or_else(|| format!("no {} in the package", package.boot_wim_name()))?;
    let mut r = dp.remote_reader(&content, wim);
    let (header, file_len) = capmedia_wim::read_header(&mut r).map_err(|e| e.to_string())?;
    let xml = capmedia_wim::read_xml(
        &mut r,
        &header.xml,
        file_len,
        capmedia_wim::DEFAULT_MAX_XML_SIZE,
    )
    .map_err(|e| e.to_string())?;
    let images =
        capmedia_arch::wim::parse_xml(&xml, header.boot_index).map_err(|e| e.to_string())?;
    let boot = images.iter().find(|i| i.is_boot).or_else(|| {
        let first = images.first()?;
        images.iter().all(|i| i.arch == first.arch).then_some(first)
    });
    let Some(image) = boot else {
        return Err(format!(
            "{} has {} images and no boot index",
            package.boot_wim_name(),
            images.len()
        ));
    };
    s.arch = Some(image.arch);
    s.image_name = image.name.clone();
    s.winpe_version = windows_version(&xml, image.index);
    Ok(())
}

/// `MAJOR.MINOR.BUILD.SPBUILD` of image `index` in a WIM's XML.
fn windows_version(xml: &str, index: u32) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let image = doc.root_element().children().find(|n| {
        n.has_tag_name("IMAGE") && n.attribute("INDEX").and_then(|v| v.parse().ok()) == Some(index)
    })?;
    let version = image
        .children()
        .find(|n| n.has_tag_name("WINDOWS"))?
        .children()
        .find(|n| n.has_tag_name("VERSION"))?;
    let part = |tag: &str| {
        version
            .children()
            .find(|n| n.has_tag_name(tag))
            .and_then(|n| n.text())
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
    };
    let mut v = format!("{}.{}", part("MAJOR")?, part("MINOR")?);
    for tag in ["BUILD", "SPBUILD"] {
        match part(tag) {
            Some(p) => {
                v.push('.');
                v.push_str(p);
            }
            None => break,
        }
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_of_the_named_image() {
        let xml = "<WIM><IMAGE INDEX=\"1\"><WINDOWS><ARCH>9</ARCH><VERSION><MAJOR>10</MAJOR>\
            <MINOR>0</MINOR><BUILD>26100</BUILD><SPBUILD>1</SPBUILD></VERSION></WINDOWS></IMAGE>\
            <IMAGE INDEX=\"2\"><WINDOWS><ARCH>9</ARCH><VERSION><MAJOR>6</MAJOR><MINOR>3</MINOR>\
            </VERSION></WINDOWS></IMAGE></WIM>";
        assert_eq!(windows_version(xml, 1).as_deref(), Some("10.0.26100.1"));
        assert_eq!(windows_version(xml, 2).as_deref(), Some("6.3"));
        assert_eq!(windows_version(xml, 3), None);
        assert_eq!(windows_version("<WIM><IMAGE INDEX=\"1\"/></WIM>", 1), None);
        assert_eq!(windows_version("<WIM><IMAGE INDEX=\"1\"><WINDOWS><VERSION><MAJOR>x</MAJOR><MINOR>0</MINOR></VERSION></WINDOWS></IMAGE></WIM>", 1), None);
    }

    #[test]
    fn the_sample_dp_lists_both_boot_images_with_their_architecture() {
        let dir = tempfile::tempdir().unwrap();
        let sample = capmedia_sample::write_sample_dp(dir.path()).unwrap();
        let dp = Dp::open_path(&sample.content_lib, capmedia_dp::DpOptions::default()).unwrap();
        let list = boot_image_summaries(&dp).unwrap();
        let got: Vec<(String, Option<Arch>)> = list
            .iter()
            .map(|s| (s.package.to_string(), s.arch))
            .collect();
        assert_eq!(
            got,
            vec![
                (capmedia_sample::X64_PACKAGE.to_owned(), Some(Arch::X64)),
                (capmedia_sample::X86_PACKAGE.to_owned(), Some(Arch::X86)),
            ]
        );
        assert!(list.iter().all(BootImageSummary::usable), "{list:#?}");
        assert_eq!(
            list[0].image_name.as_deref(),
            Some("Microsoft Windows PE (x64)")
        );
    }
}
