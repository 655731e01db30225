//! `capmedia plugins`.

use std::path::PathBuf;
use std::process::ExitCode;

use capmedia_sink::host::{search_path, PluginRegistry};
use capmedia_sink::MediaSink;

use crate::json::SinkRow as Row;

/// Load the registry from the standard search path.
pub fn registry(dirs: &[PathBuf]) -> PluginRegistry {
    PluginRegistry::load(&search_path(dirs))
}

pub fn run(dirs: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let reg = registry(dirs);
    let rows: Vec<Row> = reg
        .sinks
        .iter()
        .map(|s| {
            let info = s.describe();
            Row {
                name: info.name,
                version: info.version,
                abi: format!("{}.{}", s.abi().0, s.abi().1),
                sdk: s.sdk_version().to_owned(),
                path: s.path().to_path_buf(),
                description: info.description,
            }
        })
        .collect();
    if json {
        let errors: Vec<String> = reg.errors.iter().map(ToString::to_string).collect();
        crate::json::print(
            "plugins",
            errors.is_empty(),
            crate::json::PluginsBody {
                sinks: rows,
                errors,
                searched: reg.searched.clone(),
            },
        )?;
    } else if rows.is_empty() {
        println!("no sinks found; searched:");
        for d in &reg.searched {
            println!("  {}", d.display());
        }
    } else {
        let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
        println!("{:w$}  {:8}  {:5}  PATH", "SINK", "VERSION", "ABI");
        for r in &rows {
            println!(
                "{:w$}  {:8}  {:5}  {}",
                r.name,
                r.version,
                r.abi,
                r.path.display()
            );
        }
    }
    for e in &reg.errors {
        eprintln!("capmedia: {e}");
    }
    Ok(if reg.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
