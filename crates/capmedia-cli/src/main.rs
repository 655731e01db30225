//! `capmedia`: builds Windows PE capture media. This binary only parses the
//! command line, renders output and maps errors to exit codes; the work is
//! done by the library crates (see ARCHITECTURE.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cache;
mod capture;
mod devices;
mod dp;
mod inspect;
mod plugins;
mod ui;
mod verify;

#[derive(Debug, Parser)]
#[command(
    name = "capmedia",
    version,
    about = "Build Windows PE capture media (USB, ISO set, VHD) from a Configuration Manager distribution point"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every command that loads sinks shares.
#[derive(Debug, clap::Args)]
struct PluginArgs {
    /// Extra folder to search for sink plugins (repeatable; searched before
    /// CAPMEDIA_PLUGIN_PATH and plugins/ beside the executable).
    #[arg(long = "plugin-dir", value_name = "DIR")]
    plugin_dirs: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum DpCommand {
    /// List the packages on a DP, with kind, version and size.
    List {
        /// A path to SCCMContentLib, or an http(s):// URL of SMS_DP_SMSPKG$.
        #[arg(long, value_name = "PATH|URL")]
        dp: String,
        /// CA certificate file (PEM) for an https:// DP.
        #[arg(long, value_name = "FILE")]
        dp_ca_file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CacheCommand {
    /// List the verified blobs the content cache holds.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove what dead (killed) runs left: partial downloads and staging
    /// folders. Never a live run's, never a verified blob.
    Clean,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build capture media from a boot image package on a distribution point.
    Capture(Box<capture::CaptureArgs>),
    /// Distribution point commands.
    Dp {
        #[command(subcommand)]
        command: DpCommand,
    },
    /// Show a WIM's images (index, name, architecture, boot image), a PE
    /// file's machine, or a BCD store as `bcdedit /enum all` does, read from
    /// the file itself.
    Inspect {
        /// A .wim/.swm/.esd file, a PE file such as bootmgr.efi, or a BCD
        /// store (e.g. boot/bcd); with --bcd, a medium (ISO, disk image,
        /// drive, VHD or media folder).
        file: PathBuf,
        /// Print the medium's BCD stores (/boot/bcd, /efi/microsoft/boot/bcd).
        #[arg(long, conflicts_with = "drivers")]
        bcd: bool,
        /// List the boot image's drivers (class, provider, version, hardware
        /// ids for its architecture) and Configuration Manager components.
        #[arg(long)]
        drivers: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Read media back (ISO volume, disk image, VHD, device or folder) and
    /// check every file against the capmedia.json manifest on it.
    Verify {
        #[arg(required = true, value_name = "OUTPUT")]
        outputs: Vec<PathBuf>,
        #[command(flatten)]
        plugins: PluginArgs,
        #[arg(long)]
        json: bool,
    },
    /// The content cache of fetched DP files.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
        /// The cache folder.
        #[arg(long, value_name = "DIR", global = true)]
        cache: Option<PathBuf>,
    },
    /// List the drives a USB medium can go to (removable and USB disks),
    /// with size, bus, mounts and why capmedia would refuse one.
    Devices {
        /// Also internal disks (marked as such).
        #[arg(long)]
        all: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the sinks found, with ABI and version, and every plugin library
    /// that cannot be used, with why (then the exit code is 1).
    Plugins {
        #[command(flatten)]
        plugins: PluginArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Internal: load one plugin library in this (child) process and print
    /// what it says about itself, for the host's out-of-process probe.
    #[command(name = "__probe-plugin", hide = true)]
    ProbePlugin { library: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Capture(a) => capture::run(*a),
        Command::Dp {
            command:
                DpCommand::List {
                    dp,
                    dp_ca_file,
                    json,
                },
        } => dp::list(&dp, dp_ca_file, json),
        Command::Verify {
            outputs,
            plugins,
            json,
        } => verify::run(&outputs, &plugins.plugin_dirs, json),
        Command::Devices { all, json } => devices::run(all, json),
        Command::Cache { command, cache } => {
            let dir = cache.unwrap_or_else(capmedia_driver::default_cache_dir);
            match command {
                CacheCommand::List { json } => cache::list(&dir, json),
                CacheCommand::Clean => cache::clean(&dir),
            }
        }
        Command::Plugins { plugins, json } => plugins::run(&plugins.plugin_dirs, json),
        Command::Inspect {
            file,
            bcd,
            drivers,
            json,
        } => inspect::run(&file, bcd, drivers, json),
        Command::ProbePlugin { library } => Ok(plugins::probe(&library)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("capmedia: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// One line: the reason, with its causes. Many library errors already quote
/// their source in their own message (`"{what}: {source}"`) *and* chain it,
/// so a cause whose text is already on the line is not repeated; and a
/// cause that already says everything the line says (e.g. names the same
/// file) replaces it.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if c.contains(&line) {
            line = c;
        } else if !line.contains(&c) {
            line.push_str(": ");
            line.push_str(&c);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn causes_are_not_repeated() {
        let e = anyhow::anyhow!("x.vhd: footer checksum is wrong").context("x.vhd");
        assert_eq!(one_line(&e), "x.vhd: footer checksum is wrong");
        let e = anyhow::anyhow!("no such file").context("cannot open x: no such file");
        assert_eq!(one_line(&e), "cannot open x: no such file");
        let e = anyhow::anyhow!("denied").context("reading the DP");
        assert_eq!(one_line(&e), "reading the DP: denied");
    }
}
