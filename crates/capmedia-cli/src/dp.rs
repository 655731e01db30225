//! `capmedia dp list`.

use std::process::ExitCode;

use capmedia_content::PackageKind;
use capmedia_dp::{Dp, DpOptions, PackageInfo};

use crate::json::{BootImageRow, PackageRow};
use crate::ui::human_bytes;

pub fn list(
    dp_arg: &str,
    access: &crate::access::DpAccess,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let dp = Dp::open(dp_arg, access.options(dp_arg, DpOptions::default())?)?;
    // DP errors name the DP and what failed already.
    let pkgs = dp.list_packages()?;
    let rows = pkgs
        .iter()
        .map(|p| row(&dp, p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if json {
        crate::json::print(
            "dp list",
            true,
            crate::json::DpListBody {
                dp: dp_arg.to_owned(),
                packages: rows,
            },
        )?;
    } else {
        println!(
            "{:<10} {:<14} {:<15} {:>11} {:>6}  {:<6} {:<14}",
            "PACKAGE", "CONTENT", "KIND", "SIZE", "FILES", "ARCH", "WINPE"
        );
        for r in &rows {
            let (arch, winpe) = match &r.boot_image {
                Some(b) => (
                    b.arch.clone(),
                    b.winpe_version.clone().unwrap_or_else(|| "-".into()),
                ),
                None => ("-".into(), "-".into()),
            };
            let problem = r.problem.as_deref().or(r.boot_image_problem.as_deref());
            println!(
                "{:<10} {:<14} {:<15} {:>11} {:>6}  {:<6} {:<14}{}",
                r.package,
                r.content.as_deref().unwrap_or("-"),
                r.kind,
                human_bytes(r.size),
                r.files,
                arch,
                winpe,
                problem.map(|x| format!("  ({x})")).unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One package's row; a boot image package's WIM is read by range reads
/// (its header and XML), and a WIM that cannot be read is reported on the
/// row, not as the command's failure.
fn row(dp: &Dp, p: &PackageInfo) -> anyhow::Result<PackageRow> {
    let (boot_image, boot_image_problem) =
        if p.kind == PackageKind::BootImage && p.problem.is_none() {
            match boot_image_of(dp, p) {
                Ok(b) => (Some(b), None),
                Err(e) => (None, Some(crate::one_line(&e))),
            }
        } else {
            (None, None)
        };
    Ok(PackageRow {
        package: p.id.to_string(),
        content: p.content.as_ref().map(ToString::to_string),
        version: p.content.as_ref().map(|c| c.version),
        kind: serde_json::from_value(serde_json::to_value(p.kind)?)?,
        size: p.size,
        files: p.files as u64,
        problem: p.problem.clone(),
        boot_image,
        boot_image_problem,
    })
}

fn boot_image_of(dp: &Dp, p: &PackageInfo) -> anyhow::Result<BootImageRow> {
    let b = capmedia_driver::package_boot_image(dp, &p.id)?;
    Ok(BootImageRow {
        wim: b.wim,
        image_index: b.image_index,
        image_name: b.image_name,
        arch: b.arch.to_string(),
        winpe_version: b.winpe_version,
    })
}
