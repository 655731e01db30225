//! `capmedia dp list`.

use std::process::ExitCode;

use capmedia_dp::{Dp, DpOptions};

pub fn list(
    dp_arg: &str,
    access: &crate::access::DpAccess,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let dp = Dp::open(dp_arg, access.options(DpOptions::default())?)?;
    // DP errors name the DP and what failed already.
    let pkgs = dp.list_packages()?;
    if json {
        let packages = pkgs
            .iter()
            .map(|p| {
                Ok(crate::json::PackageRow {
                    package: p.id.to_string(),
                    content: p.content.as_ref().map(ToString::to_string),
                    version: p.content.as_ref().map(|c| c.version),
                    kind: serde_json::from_value(serde_json::to_value(p.kind)?)?,
                    size: p.size,
                    files: p.files as u64,
                    problem: p.problem.clone(),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        crate::json::print(
            "dp list",
            true,
            crate::json::DpListBody {
                dp: dp_arg.to_owned(),
                packages,
            },
        )?;
    } else {
        println!(
            "{:<10} {:<14} {:<15} {:>14} {:>6}",
            "PACKAGE", "CONTENT", "KIND", "SIZE", "FILES"
        );
        for p in &pkgs {
            println!(
                "{:<10} {:<14} {:<15} {:>14} {:>6}{}",
                p.id.as_str(),
                p.content
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "-".into()),
                p.kind.as_str(),
                p.size,
                p.files,
                p.problem
                    .as_deref()
                    .map(|x| format!("  ({x})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
