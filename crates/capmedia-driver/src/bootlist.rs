//! The boot images a DP holds, each with its architecture and Windows PE
//! version ([`crate::package_boot_image`]: the boot WIM's header and XML by
//! range reads, a few KiB per package, nothing fetched), listed with the
//! packages that cannot be used and why, for pickers such as the wizard's
//! boot image page.
//!
//! The rule the capture applies (which image of the WIM boots) is the one
//! [`crate::resolve`] applies, so what a picker shows is what a capture
//! would check.

use capmedia_content::{Arch, ContentId, PackageId, PackageKind};
use capmedia_dp::{Dp, DpError, PackageInfo};

/// One boot image package as a picker shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BootImageListing {
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

impl BootImageListing {
    /// Whether a capture of it could start (no problem and an architecture).
    pub fn usable(&self) -> bool {
        self.problem.is_none() && self.arch.is_some()
    }
}

/// The boot image packages on `dp` with their architecture and version.
/// A package that cannot be read is listed with its `problem`; access
/// errors on the DP itself fail the call (boxed: a `DpError` is big, and
/// this is no hot path).
pub fn boot_image_summaries(dp: &Dp) -> Result<Vec<BootImageListing>, Box<DpError>> {
    let packages = dp.list_packages().map_err(Box::new)?;
    Ok(packages
        .into_iter()
        .filter(|p| p.kind == PackageKind::BootImage)
        .map(|p| summarize(dp, p))
        .collect())
}

fn summarize(dp: &Dp, p: PackageInfo) -> BootImageListing {
    let mut s = BootImageListing {
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
    // The same reading `dp list` does: one place decides what a package boots.
    match crate::dpinfo::package_boot_image(dp, &p.id) {
        Ok(b) => {
            s.arch = Some(b.arch);
            s.image_name = b.image_name;
            s.winpe_version = b.winpe_version;
        }
        Err(e) => s.problem = Some(e.to_string()),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(list.iter().all(BootImageListing::usable), "{list:#?}");
        assert_eq!(
            list[0].image_name.as_deref(),
            Some("Microsoft Windows PE (x64)")
        );
    }
}
