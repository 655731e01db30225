//! `capmedia`: builds Windows PE capture media. This binary only parses the
//! command line, renders output and maps errors to exit codes; the work is
//! done by the library crates (see ARCHITECTURE.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod access;
mod cache;
mod capture;
mod devices;
mod dp;
mod firmware;
mod inspect;
mod json;
mod plugins;
mod shell;
mod ui;
mod verify;
mod wizard;
mod wizard_command;
mod wizard_prompt;

#[derive(Debug, Parser)]
#[command(
    name = "capmedia",
    version,
    about = "Build Windows PE capture media (USB, ISO set, VHD) from a Configuration Manager distribution point",
    after_help = shell::MAIN_HELP
)]
struct Cli {
    /// Print errors only: no progress, stage or note lines on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print more: each stage with its time, each file of the plan.
    #[arg(short, long, global = true)]
    verbose: bool,
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
    /// List the packages on a DP, with kind, version and size, and each
    /// boot image's architecture and Windows PE version (read from its
    /// WIM's header and XML by range reads).
    #[command(after_help = shell::DP_LIST_HELP)]
    List {
        /// A path to SCCMContentLib, or an http(s):// URL of SMS_DP_SMSPKG$.
        #[arg(long, value_name = "PATH|URL")]
        dp: String,
        #[command(flatten)]
        access: access::DpAccess,
        /// Print one JSON document on stdout (schema: docs/schema/dp-list.json).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CacheCommand {
    /// List the verified blobs the content cache holds, with the cache's
    /// place and total size.
    #[command(after_help = shell::CACHE_LIST_HELP)]
    List {
        /// Print one JSON document on stdout (schema:
        /// docs/schema/cache-list.json).
        #[arg(long)]
        json: bool,
    },
    /// Remove what dead (killed) runs left: partial downloads and staging
    /// folders. Never a live run's, never a verified blob.
    #[command(after_help = shell::CACHE_CLEAN_HELP)]
    Clean {
        /// Also remove the blobs not used (fetched or read) for DAYS days.
        #[arg(long, value_name = "DAYS")]
        older_than: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build capture media from a boot image package on a distribution point.
    #[command(after_help = shell::CAPTURE_HELP)]
    Capture(Box<capture::CaptureArgs>),
    /// The console's Create Task Sequence Media Wizard, in a terminal: its
    /// pages, then the capture (or the command that does it).
    #[command(after_help = wizard::WIZARD_HELP)]
    Wizard(wizard::WizardArgs),
    /// Distribution point commands.
    #[command(after_help = shell::DP_LIST_HELP)]
    Dp {
        #[command(subcommand)]
        command: DpCommand,
    },
    /// Show a WIM's images (index, name, architecture, boot image), a PE
    /// file's machine, or a BCD store as `bcdedit /enum all` does, read from
    /// the file itself.
    #[command(after_help = shell::INSPECT_HELP)]
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
        /// Print one JSON document on stdout (schema: docs/schema/inspect.json).
        #[arg(long)]
        json: bool,
    },
    /// Read media back (ISO volume, disk image, VHD, device or folder) and
    /// check every file against the capmedia.json manifest on it. Every
    /// output is checked and reported; the exit code is 1 if any fails.
    #[command(after_help = shell::VERIFY_HELP)]
    Verify {
        /// The outputs to check: ISO volumes, disk images, VHDs, drives or
        /// media folders (each volume of an ISO set is given on its own).
        #[arg(required = true, value_name = "OUTPUT")]
        outputs: Vec<PathBuf>,
        #[command(flatten)]
        plugins: PluginArgs,
        /// Print one JSON document on stdout (schema: docs/schema/verify.json).
        #[arg(long)]
        json: bool,
    },
    /// The content cache of fetched DP files.
    #[command(after_help = shell::CACHE_HELP)]
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
        /// The cache folder [default: $XDG_CACHE_HOME/capmedia, else
        /// ~/.cache/capmedia].
        #[arg(long, value_name = "DIR", global = true)]
        cache: Option<PathBuf>,
    },
    /// List the drives a USB medium can go to (removable and USB disks),
    /// with size, bus, mounts and why capmedia would refuse one.
    #[command(after_help = shell::DEVICES_HELP)]
    Devices {
        /// Also internal disks (marked as such).
        #[arg(long)]
        all: bool,
        /// Print one JSON document on stdout (schema: docs/schema/devices.json).
        #[arg(long)]
        json: bool,
    },
    /// List the sinks found, with ABI and version, and every plugin library
    /// that cannot be used, with why (then the exit code is 1).
    #[command(after_help = shell::PLUGINS_HELP)]
    Plugins {
        #[command(flatten)]
        plugins: PluginArgs,
        /// Print one JSON document on stdout (schema: docs/schema/plugins.json).
        #[arg(long)]
        json: bool,
    },
    /// Internal: load one plugin library in this (child) process and print
    /// what it says about itself, for the host's out-of-process probe.
    #[command(name = "__probe-plugin", hide = true)]
    ProbePlugin { library: PathBuf },
    /// Print a shell completion script on stdout.
    #[command(after_help = shell::COMPLETIONS_HELP)]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (capmedia.1, capmedia-capture.1, ...) into DIR;
    /// `cargo xtask dist` runs it.
    #[command(name = "__man", hide = true)]
    Man {
        /// The folder to write them into (created if missing).
        dir: PathBuf,
    },
    /// Write the JSON Schemas of every command's --json output into DIR
    /// (docs/schema in the repository).
    #[command(name = "__schemas", hide = true)]
    Schemas {
        /// The folder to write them into (created if missing).
        dir: PathBuf,
    },
}

impl Command {
    /// The name `--json` documents carry, when JSON was asked for.
    fn json_name(&self) -> Option<&'static str> {
        match self {
            Command::Capture(a) => a.json().then_some("capture"),
            Command::Dp {
                command: DpCommand::List { json, .. },
            } => json.then_some("dp list"),
            Command::Inspect { json, .. } => json.then_some("inspect"),
            Command::Verify { json, .. } => json.then_some("verify"),
            Command::Devices { json, .. } => json.then_some("devices"),
            Command::Plugins { json, .. } => json.then_some("plugins"),
            Command::Cache {
                command: CacheCommand::List { json },
                ..
            } => json.then_some("cache list"),
            _ => None,
        }
    }

    /// What a failure concerns, from the arguments: (DP, package, file).
    fn concerns(&self) -> (Option<&str>, Option<String>, Option<&std::path::Path>) {
        match self {
            Command::Capture(a) => a.concerns(),
            Command::Dp {
                command: DpCommand::List { dp, .. },
            } => (Some(dp.as_str()), None, None),
            Command::Inspect { file, .. } => (None, None, Some(file.as_path())),
            _ => (None, None, None),
        }
    }
}

/// The clap command, for completions and man pages.
pub(crate) fn cli_command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ui::set_verbosity(if cli.quiet {
        ui::Verbosity::Quiet
    } else if cli.verbose {
        ui::Verbosity::Verbose
    } else {
        ui::Verbosity::Normal
    });
    let json_name = cli.command.json_name();
    let (dp, package, file) = cli.command.concerns();
    let (dp, file) = (
        dp.map(str::to_owned),
        file.map(std::path::Path::to_path_buf),
    );
    let result = match cli.command {
        Command::Capture(a) => capture::run(*a),
        Command::Wizard(a) => wizard::run(a),
        Command::Dp {
            command: DpCommand::List { dp, access, json },
        } => dp::list(&dp, &access, json),
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
                CacheCommand::Clean { older_than } => cache::clean(&dir, older_than),
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
        Command::Completions { shell } => shell::completions(shell),
        Command::Man { dir } => shell::man_pages(&dir),
        Command::Schemas { dir } => json::write_schemas(&dir).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let hint = hint(&e);
            match &hint {
                Some(h) => eprintln!("capmedia: {}; {h}", one_line(&e)),
                None => eprintln!("capmedia: {}", one_line(&e)),
            }
            if let Some(command) = json_name {
                let mut error = json::ErrorInfo::from_error(&e).concerning(
                    dp.as_deref(),
                    package.as_deref(),
                    file.as_deref(),
                );
                error.hint = hint;
                let _ = json::print(command, false, json::Failure { error });
            }
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Exit code of a command line that cannot be honoured, as clap's own usage
/// errors.
const EXIT_USAGE: u8 = 2;

/// A command line clap accepts but the command cannot honour (e.g. an option
/// the chosen sink does not read): exit code 2, JSON kind `usage`, found
/// before anything is fetched or written.
#[derive(Debug)]
pub(crate) struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// What to do next, for failures where the message alone leaves the user
/// guessing.
fn hint(e: &anyhow::Error) -> Option<String> {
    use capmedia_dp::DpError;
    e.chain().find_map(|cause| {
        let dp = cause.downcast_ref::<DpError>().or_else(|| match cause
            .downcast_ref::<capmedia_driver::CaptureError>(
        ) {
            Some(capmedia_driver::CaptureError::Dp(d)) => Some(&**d),
            _ => None,
        })?;
        match dp {
            DpError::NotDistributed { dp, .. } => Some(format!(
                "`capmedia dp list --dp {}` lists the packages this DP has",
                shell_word(dp)
            )),
            _ => None,
        }
    })
}

/// `s` as one shell word: quoted when it holds anything but plain
/// characters (a DP URL's `$`, a path's spaces).
fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-:@%+=,".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
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

    /// Every visible command has examples in its --help, and every
    /// argument and flag a description.
    #[test]
    fn every_command_has_examples_and_every_argument_a_description() {
        fn walk(cmd: &clap::Command, path: &str, found: &mut Vec<String>) {
            if !cmd.is_hide_set() {
                let examples = cmd
                    .get_after_help()
                    .is_some_and(|h| h.to_string().contains("Examples:"));
                if !examples {
                    found.push(format!("{path}: no examples in --help"));
                }
                for a in cmd.get_arguments() {
                    if a.is_hide_set() || ["help", "version"].contains(&a.get_id().as_str()) {
                        continue;
                    }
                    if a.get_help().is_none() && a.get_long_help().is_none() {
                        found.push(format!("{path}: {} has no description", a.get_id()));
                    }
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &format!("{path} {}", sub.get_name()), found);
                }
            }
        }
        let mut cmd = super::cli_command();
        cmd.build();
        let mut found = Vec::new();
        walk(&cmd, "capmedia", &mut found);
        assert!(found.is_empty(), "{found:#?}");
        // The check walks something: the commands and the arguments exist.
        let capture = cmd.find_subcommand("capture").unwrap();
        assert!(capture.get_arguments().any(|a| a.get_id() == "media_size"));
        let verify = cmd.find_subcommand("verify").unwrap();
        assert!(verify.get_arguments().any(|a| a.get_id() == "outputs"));
    }

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
