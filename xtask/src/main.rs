//! `cargo xtask`: the project's tasks, in Rust so they run wherever cargo does.
//!
//! - `dist`: release binary + every sink plugin into `dist/` (relocatable).
//! - `test`: everything CI runs (Debian tools, fmt, clippy, the whole test suite).
//! - `bench`: side-by-side timings of capmedia against reference tools.
//! - `demo`: the bundled sample DP turned into capture media with every sink.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

mod bench;
mod demo;
mod deps;
mod dist;
mod sample;
mod trials;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Build `dist/capmedia` and its sink plugins in `dist/plugins/` (release).
    Dist,
    /// Build everything, write the sample DP, and build verified capture
    /// media from it with every sink into ./out/.
    Demo,
    /// Run everything CI runs: install/check Debian tools, fmt, clippy, tests.
    Test {
        /// Only check that the Debian tools are there; never install.
        #[arg(long)]
        no_install: bool,
        /// Extra arguments for `cargo test` (after `--`).
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Time capmedia against reference tools, interleaved, several rounds.
    Bench(bench::BenchArgs),
    /// Regenerate the sample DP's boot images (crates/capmedia-sample/data).
    SampleWims,
    /// SIGINT and SIGKILL at random moments of a 512 MiB rebuild, per sink.
    Trials(trials::TrialArgs),
    /// Internal: run a command and print its wall time and peak RSS as JSON.
    #[command(hide = true)]
    Measure {
        #[arg(trailing_var_arg = true, required = true)]
        argv: Vec<String>,
    },
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Run a command, failing with its command line if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let st = cmd.status().with_context(|| format!("starting {shown}"))?;
    if !st.success() {
        bail!("{shown} failed ({st})");
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.task {
        Task::Dist => dist::dist().map(|d| {
            println!("dist: {}", d.display());
        }),
        Task::Demo => demo::demo(),
        Task::Test {
            no_install,
            cargo_args,
        } => test(no_install, &cargo_args),
        Task::Bench(a) => bench::bench(&a),
        Task::Measure { argv } => bench::measure(&argv),
        Task::Trials(a) => trials::trials(&a),
        Task::SampleWims => sample::sample_wims(),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn test(no_install: bool, cargo_args: &[String]) -> Result<()> {
    deps::ensure(!no_install)?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))
        .context("formatting differs: run `cargo fmt --all`")?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--quiet",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Build every member first: the CLI tests load the cdylib plugins from
    // target/debug, and `cargo test` alone does not refresh them.
    run(cargo().args(["build", "--workspace", "--quiet"]))?;
    run(cargo()
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(cargo_args))
}
