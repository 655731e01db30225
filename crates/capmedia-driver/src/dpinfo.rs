//! What a boot image package on a DP boots, read without fetching it: the
//! booting image of `boot.<PKGID>.wim` (the same choice the capture's
//! validate stage makes), its architecture and Windows PE version, from the
//! WIM's header and XML by range reads. For `capmedia dp list` and the
//! wizard's package page.

use capmedia_arch::WimImage;
use capmedia_content::Arch;
use capmedia_dp::{Dp, PackageContent};
use serde::Serialize;

use crate::pipeline::booting_image;
use crate::CaptureError;

/// The image a boot image package boots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootImageSummary {
    /// `boot.<PKGID>.wim`.
    pub wim: String,
    /// The booting image's 1-based index.
    pub image_index: u32,
    pub image_name: Option<String>,
    /// `<WINDOWS><ARCH>` of that image.
    pub arch: Arch,
    /// Windows PE's version (`<WINDOWS><VERSION>`, e.g. `10.0.26100.1`),
    /// when the WIM's XML records it.
    pub winpe_version: Option<String>,
}

/// The booting image of `content`'s boot WIM, read by range reads (the
/// header and the XML: a few KiB, whatever the WIM's size).
pub fn boot_image_summary(
    dp: &Dp,
    content: &PackageContent,
) -> Result<BootImageSummary, CaptureError> {
    let wim_name = content.package.boot_wim_name();
    let wim = capmedia_dp::boot_wim(content).ok_or_else(|| CaptureError::NotBootImage {
        dp: dp.name().to_owned(),
        package: content.package.clone(),
        wim: wim_name.clone(),
    })?;
    let info = capmedia_arch::read_wim(&mut dp.remote_reader(content, wim)).map_err(|source| {
        CaptureError::Wim {
            dp: dp.name().to_owned(),
            package: content.package.clone(),
            wim: wim_name.clone(),
            source: Box::new(source),
        }
    })?;
    let image: &WimImage = booting_image(&info.images, info.boot_image()).ok_or_else(|| {
        CaptureError::NoBootImage {
            dp: dp.name().to_owned(),
            package: content.package.clone(),
            wim: wim_name.clone(),
            count: info.images.len(),
        }
    })?;
    Ok(BootImageSummary {
        wim: wim_name,
        image_index: image.index,
        image_name: image.name.clone(),
        arch: image.arch,
        winpe_version: image.version.clone(),
    })
}

/// [`boot_image_summary`] of the package `package` on `dp`, resolved from
/// PkgLib and DataLib only (FileLib is not checked: nothing is fetched).
/// One call for a package list such as `dp list` or the wizard's.
pub fn package_boot_image(
    dp: &Dp,
    package: &capmedia_content::PackageId,
) -> Result<BootImageSummary, CaptureError> {
    let content = dp
        .resolve_listed(package)
        .map_err(|e| CaptureError::Dp(Box::new(e)))?;
    boot_image_summary(dp, &content)
}
