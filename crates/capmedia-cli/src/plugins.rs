//! `capmedia plugins`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use capmedia_sink::host::{
    probe_report, search_path, PluginRegistry, PluginSink, ProbeCommand, DEFAULT_PROBE_TIMEOUT,
};
use capmedia_sink::MediaSink;

use crate::json::SinkRow as Row;

/// The hidden subcommand the host re-runs itself with to probe a library.
const PROBE_SUBCOMMAND: &str = "__probe-plugin";

/// Load the registry from the standard search path, each library probed in
/// a child process (`capmedia __probe-plugin <library>`) before it is loaded
/// here, so a crashing or hanging library only disables itself.
pub fn registry(dirs: &[PathBuf]) -> PluginRegistry {
    PluginRegistry::load_probed(
        &search_path(dirs),
        &ProbeCommand::current_exe(&[PROBE_SUBCOMMAND]),
        DEFAULT_PROBE_TIMEOUT,
    )
}

/// `capmedia __probe-plugin <library>`: the probe child. Prints one report
/// line; a library that crashes or hangs here is what the parent detects.
pub fn probe(library: &std::path::Path) -> ExitCode {
    println!("{}", probe_report(library));
    ExitCode::SUCCESS
}

/// The sink named `name`, or an error saying why there is none, including
/// every library that could not be used (a broken library cannot say its
/// name, so any of them may be the one wanted). Libraries refused for
/// declaring this very name are reported as warnings even when the sink
/// is found, so a shadowed sink is never silent.
pub fn sink<'a>(reg: &'a PluginRegistry, name: &str) -> anyhow::Result<&'a PluginSink> {
    if let Some(sink) = reg.get(name) {
        for e in reg.errors.iter().filter(|e| e.sink_name() == Some(name)) {
            eprintln!("capmedia: warning: {e}");
        }
        return Ok(sink);
    }
    let names: Vec<&str> = reg.sinks.iter().map(|s| s.info().name.as_str()).collect();
    let mut why = format!(
        "no sink named {name:?} (found: {}); `capmedia plugins` lists the folders searched",
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    );
    if !reg.errors.is_empty() {
        why.push_str("; these plugin libraries could not be used: ");
        let errs: Vec<String> = reg.errors.iter().map(ToString::to_string).collect();
        why.push_str(&errs.join("; "));
    }
    bail!(why)
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
