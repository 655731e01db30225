//! `capmedia`: builds Windows PE capture media. This binary only parses the
//! command line, renders output and maps errors to exit codes; the work is
//! done by the library crates (see ARCHITECTURE.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod inspect;
mod plugins;

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
enum Command {
    /// Show a WIM's images (index, name, architecture, boot image) or a PE
    /// file's machine, read from the file itself.
    Inspect {
        /// A .wim/.swm/.esd file, or a PE file such as bootmgr.efi.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the sinks found, with ABI and version.
    Plugins {
        #[command(flatten)]
        plugins: PluginArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plugins { plugins, json } => plugins::run(&plugins.plugin_dirs, json),
        Command::Inspect { file, json } => inspect::run(&file, json),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line: the reason, with its causes.
            eprintln!("capmedia: {e:#}");
            ExitCode::FAILURE
        }
    }
}
