//! `cargo xtask bench`: capmedia against the tools people would otherwise use.
//!
//! Each row times our command and one or more reference commands on the same
//! generated input, interleaved round by round (so drift in machine load hits
//! both alike), and prints median wall time, median peak RSS and the ratio
//! ours/reference. Peak RSS is measured per run: each command runs under a
//! fresh `xtask measure` process, whose only child is that command, so
//! `RUSAGE_CHILDREN` gives exactly its peak.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

pub mod rows;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Rows to run (default: all); `--list` shows them.
    rows: Vec<String>,
    /// List the rows and exit.
    #[arg(long)]
    list: bool,
    /// Rounds per row; medians are taken over them.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Content size in MiB for rows that generate content (each row has its own default).
    #[arg(long)]
    size_mib: Option<u64>,
    /// Compare two shell commands instead of the built-in rows.
    #[arg(long, num_args = 2, value_names = ["OURS", "REFERENCE"])]
    compare: Option<Vec<String>>,
    /// Where rows put their data (default: target/bench).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

/// A command of a row: label and a `sh -c` line.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub label: String,
    pub line: String,
}

impl Cmd {
    pub fn new(label: &str, line: impl Into<String>) -> Cmd {
        Cmd {
            label: label.to_owned(),
            line: line.into(),
        }
    }
}

/// One comparison, ready to run.
#[derive(Debug)]
pub struct Pair {
    pub ours: Cmd,
    pub references: Vec<Cmd>,
    /// Run (untimed) before every timed command, e.g. to remove outputs.
    pub before_each: Option<String>,
    /// Run once after the row, also when a command failed: stops what the
    /// setup started (a server), so no row leaves a process behind.
    pub teardown: Option<String>,
    /// Judges the medians after the row (e.g. that peak RSS stays flat as
    /// content grows); an error fails the bench with its message.
    pub check: Option<Check>,
    /// What the row's servers live in (capmedia-testdp's, killed on
    /// drop): dropped with the pair, after the teardown.
    pub keep: Vec<Box<dyn std::any::Any>>,
}

impl Pair {
    /// A pair with no hooks.
    pub fn new(ours: Cmd, references: Vec<Cmd>) -> Pair {
        Pair {
            ours,
            references,
            before_each: None,
            teardown: None,
            check: None,
            keep: Vec::new(),
        }
    }
}

/// A row's judgement of its medians.
pub type Check = fn(&[Measured]) -> Result<()>;

/// Medians of one command of a row.
#[derive(Debug, Clone)]
pub struct Measured {
    pub label: String,
    pub secs: f64,
    pub rss_mib: f64,
}

/// What a row's setup gets.
#[derive(Debug)]
pub struct Ctx {
    pub work: PathBuf,
    pub size_mib: Option<u64>,
    /// `dist/capmedia`, built before any row runs.
    pub capmedia: PathBuf,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    secs: f64,
    maxrss_kib: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub fn sh(line: &str) -> Result<()> {
    crate::run(Command::new("sh").arg("-c").arg(line))
}

fn timed(line: &str) -> Result<Sample> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args(["measure", "sh", "-c", line])
        .stderr(Stdio::inherit())
        .output()
        .context("running xtask measure")?;
    if !out.status.success() {
        bail!("benchmark command failed: {line}");
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(Sample {
        secs: v["secs"].as_f64().unwrap_or(f64::NAN),
        maxrss_kib: v["maxrss_kib"].as_u64().unwrap_or(0),
    })
}

/// `xtask measure ARGV...`: run ARGV with stdout discarded; print wall time
/// and peak RSS.
pub fn measure(argv: &[String]) -> Result<()> {
    let (prog, args) = argv.split_first().context("nothing to measure")?;
    let t = Instant::now();
    let st = Command::new(prog)
        .args(args)
        .stdout(Stdio::null())
        .status()?;
    let secs = t.elapsed().as_secs_f64();
    let ru = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)?;
    if !st.success() {
        bail!("{prog} failed ({st})");
    }
    println!(
        "{}",
        serde_json::json!({"secs": secs, "maxrss_kib": ru.max_rss()})
    );
    Ok(())
}

fn run_pair(name: &str, pair: &Pair, rounds: usize) -> Result<Vec<Measured>> {
    let mut cmds = vec![pair.ours.clone()];
    cmds.extend(pair.references.iter().cloned());
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); cmds.len()];
    for round in 0..rounds {
        // Rotate the start so no command always runs first (warm caches).
        for k in 0..cmds.len() {
            let i = (round + k) % cmds.len();
            if let Some(b) = &pair.before_each {
                sh(b)?;
            }
            // Flush every dirty page first (untimed): otherwise a command
            // pays for the writeback of the one before it, which on a
            // small VM swamps the differences being measured.
            sh("sync")?;
            samples[i].push(timed(&cmds[i].line)?);
        }
    }
    let med: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| {
            (
                median(s.iter().map(|x| x.secs).collect()),
                median(s.iter().map(|x| x.maxrss_kib as f64 / 1024.0).collect()),
            )
        })
        .collect();
    println!("\n== {name} ({rounds} rounds, interleaved)");
    println!(
        "{:<28} {:>10} {:>12} {:>14}",
        "command", "median s", "peak RSS MiB", "ours / this"
    );
    for (c, (secs, rss)) in cmds.iter().zip(&med) {
        println!(
            "{:<28} {:>10.3} {:>12.1} {:>14.2}",
            c.label,
            secs,
            rss,
            med[0].0 / secs
        );
    }
    // Every run, not only the medians: the machine is shared and noisy.
    for (c, s) in cmds.iter().zip(&samples) {
        let runs: Vec<String> = s
            .iter()
            .map(|x| format!("{:.3}s/{:.0}MiB", x.secs, x.maxrss_kib as f64 / 1024.0))
            .collect();
        println!("  runs of {}: {}", c.label, runs.join(" "));
    }
    Ok(cmds
        .iter()
        .zip(med)
        .map(|(c, (secs, rss_mib))| Measured {
            label: c.label.clone(),
            secs,
            rss_mib,
        })
        .collect())
}

pub fn bench(a: &BenchArgs) -> Result<()> {
    let all = rows::rows();
    if a.list {
        for r in &all {
            println!("{:<12} {}", r.name, r.about);
        }
        return Ok(());
    }
    let rounds = a.rounds.max(1);
    if let Some(c) = &a.compare {
        let pair = Pair::new(
            Cmd::new("A", c[0].clone()),
            vec![Cmd::new("B", c[1].clone())],
        );
        return run_pair("compare", &pair, rounds).map(drop);
    }
    for name in &a.rows {
        if !all.iter().any(|r| r.name == name) {
            bail!("no bench row {name:?}; `cargo xtask bench --list` shows them");
        }
    }
    let dist = crate::dist::dist()?;
    let work = a
        .work_dir
        .clone()
        .unwrap_or_else(|| crate::root().join("target/bench"));
    std::fs::create_dir_all(&work)?;
    // Rows put absolute paths into shell lines and server configs.
    let work = work.canonicalize()?;
    for r in all
        .iter()
        .filter(|r| a.rows.is_empty() || a.rows.iter().any(|n| n == r.name))
    {
        let ctx = Ctx {
            work: work.join(r.name),
            size_mib: a.size_mib,
            capmedia: dist.join("capmedia"),
        };
        std::fs::create_dir_all(&ctx.work)?;
        let pair = (r.setup)(&ctx).with_context(|| format!("setting up bench row {}", r.name))?;
        let measured = run_pair(r.name, &pair, rounds);
        if let Some(t) = &pair.teardown {
            sh(t).with_context(|| format!("tearing down bench row {}", r.name))?;
        }
        if let Some(check) = pair.check {
            check(&measured?).with_context(|| format!("bench row {}", r.name))?;
        } else {
            measured?;
        }
    }
    Ok(())
}

/// Write `mib` MiB of incompressible, deterministic bytes to `path`
/// (unless it already has that size), streaming.
pub fn make_file(path: &Path, mib: u64) -> Result<()> {
    make_file_seeded(path, mib, 0)
}

/// As [`make_file`], with different bytes for each `seed`: files of one
/// size would otherwise be identical, and a content library stores
/// identical files once.
pub fn make_file_seeded(path: &Path, mib: u64, seed: u64) -> Result<()> {
    use std::io::Write;
    if path.metadata().map(|m| m.len()).ok() == Some(mib << 20) {
        return Ok(());
    }
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    // xorshift: cheap, deterministic, and defeats compression.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ mib ^ seed.rotate_left(32);
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for chunk in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&buf)?;
    }
    f.flush()?;
    Ok(())
}
