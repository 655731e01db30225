//! `capmedia capture`: the wizard's job, end to end.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use capmedia_content::{Arch, Capacity, PackageId};
use capmedia_dp::DpOptions;
use capmedia_driver::{resolve, CaptureReport, CaptureRequest};

use crate::ui::{install_ctrlc, Ui};

/// Exit code of a run the user interrupted (128 + SIGINT, as shells do).
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// Distribution point: a path to its SCCMContentLib (a mounted share or a
    /// copy) or an http(s):// URL of SMS_DP_SMSPKG$.
    #[arg(long, value_name = "PATH|URL")]
    dp: String,
    /// The boot image package id, e.g. PS100005.
    #[arg(long, value_name = "PKGID")]
    boot_image: PackageId,
    /// The sink: usb-raw, iso-set, vhd, or a third-party sink's name.
    #[arg(long, value_name = "usb-raw|iso-set|vhd|NAME")]
    sink: String,
    /// Output file (image, first ISO of the set, VHD) or device.
    #[arg(long, value_name = "FILE|DEVICE")]
    out: PathBuf,
    /// The computer the media is for: an x64 computer boots x86 or x64 boot
    /// images, an x86 computer only x86, an arm64 computer only arm64.
    #[arg(long, value_name = "x86|x64|arm64")]
    target_arch: Option<Arch>,
    /// Size of one medium: the disc presets cd, dvd, dvd-dl (for iso-set;
    /// 650MB, 4GB, 8GB are aliases), unlimited, or bytes with K/M/G (powers
    /// of 1024), e.g. a stick's 16G for usb-raw. For a device, its own size
    /// is used.
    #[arg(long, value_name = "SIZE", default_value = "unlimited")]
    media_size: Capacity,
    /// Media label: ISO volume name, FAT label (first 11 characters), MediaLabel.txt.
    #[arg(long, value_name = "TEXT", default_value = "Configuration Manager")]
    label: String,
    /// A Windows PE Media folder (bootmgr, boot/, efi/, etfsboot.com, efisys.bin).
    /// Without it, boot files come from the boot image package.
    #[arg(long, value_name = "DIR")]
    boot_files: Option<PathBuf>,
    /// Which CA signs the EFI boot managers taken from the boot image: 2011
    /// (Windows/Boot/EFI) or 2023 (the _EX files, for computers where the
    /// 2011 CA is revoked).
    #[arg(long, value_name = "2011|2023", default_value = "2011")]
    uefi_ca: capmedia_driver::UefiCa,
    /// The reference computer's devices: Windows hardware or instance ids
    /// one a line (pnputil /enum-devices, Device Manager), or `lspci -nn`
    /// output. Every network and mass-storage device must have a driver in
    /// the boot image, checked before anything is fetched or written.
    #[arg(long, value_name = "FILE")]
    target_hwids: Option<PathBuf>,
    /// A hardware id that must have a driver in the boot image
    /// (repeatable), e.g. 'PCI\VEN_8086&DEV_100E'.
    #[arg(long = "require-hwid", value_name = "ID")]
    require_hwids: Vec<String>,
    /// A folder copied as-is onto the medium (e.g. a site's SMS/ folder).
    #[arg(long, value_name = "DIR")]
    media_template: Option<PathBuf>,
    /// Write autorun.inf.
    #[arg(long)]
    autorun: bool,
    /// Where generated files are kept while building (removed afterwards)
    /// [default: a capmedia-staging-* folder in $TMPDIR, else /tmp].
    #[arg(long, value_name = "DIR")]
    staging: Option<PathBuf>,
    /// The content cache, reused across runs [default: $XDG_CACHE_HOME/capmedia,
    /// else ~/.cache/capmedia].
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Hash every cache entry again before using it. By default an entry
    /// whose sealed stamp (size, mtime, inode, the SHA-256 it was verified
    /// against) still matches is used without reading it; the medium's
    /// read-back still checks every byte.
    #[arg(long)]
    verify_cache: bool,
    /// Extra FileLib roots of a library that spans drives: folders for a
    /// path DP, smb://server/SCCMContentLibE$ URLs for an SMB DP (which
    /// also finds the SCCMContentLib<D..Z>$ shares by itself).
    #[arg(long, value_name = "DIR|URL")]
    dp_filelib: Vec<PathBuf>,
    #[command(flatten)]
    access: crate::access::DpAccess,
    /// Downloads at once from an HTTP or SMB DP: files, and the byte ranges
    /// of one large file over HTTP (at most 8 of those).
    #[arg(long, value_name = "N", default_value_t = 4)]
    dp_connections: usize,
    /// Partition table of usb-raw and vhd disks [default: the sink's, see
    /// `capmedia plugins`].
    #[arg(long, value_name = "mbr|gpt")]
    partition_scheme: Option<String>,
    /// VHD type (vhd sink) [default: fixed].
    #[arg(long, value_name = "fixed|dynamic")]
    vhd_type: Option<String>,
    /// Allow writing a device that is not a removable/USB disk. Dangerous.
    #[arg(long)]
    allow_fixed_disk: bool,
    /// Do not ask before writing to a device.
    #[arg(long)]
    yes: bool,
    /// Any sink option, KEY=VALUE (repeatable), for third-party sinks.
    #[arg(long = "sink-option", value_name = "KEY=VALUE")]
    sink_options: Vec<String>,
    /// Print the final report as one JSON document on stdout (schema:
    /// docs/schema/capture.json).
    #[arg(long)]
    json: bool,
    /// Print the plan and exit without fetching or writing anything.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    plugins: crate::PluginArgs,
}

impl CaptureArgs {
    pub fn json(&self) -> bool {
        self.json
    }

    /// What a failure concerns: the DP, the package and the output.
    pub fn concerns(&self) -> (Option<&str>, Option<String>, Option<&std::path::Path>) {
        (
            Some(&self.dp),
            Some(self.boot_image.to_string()),
            Some(&self.out),
        )
    }
}

fn source_date_epoch() -> anyhow::Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds")),
        Err(_) => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)),
    }
}

pub fn run(a: CaptureArgs) -> anyhow::Result<ExitCode> {
    let reg = crate::plugins::registry(&a.plugins.plugin_dirs);
    let sink = crate::plugins::sink(&reg, &a.sink)?;
    let mut options = sink_options(&a, sink.info())?;
    if a.target_arch.is_none() && crate::ui::verbosity() > crate::ui::Verbosity::Quiet {
        eprintln!("capmedia: warning: {NO_TARGET_ARCH}");
    }
    if a.allow_fixed_disk {
        options.insert("allow-fixed-disk".into(), "true".into());
    }
    if a.yes {
        options.insert("yes".into(), "true".into());
    }
    let req = CaptureRequest {
        dp: a.dp.clone(),
        dp_options: a.access.options(
            &a.dp,
            DpOptions {
                extra_filelib_roots: a.dp_filelib.clone(),
                concurrency: a.dp_connections.max(1),
                verify_cache: a.verify_cache,
                ..DpOptions::default()
            },
        )?,
        boot_image: a.boot_image.clone(),
        out: a.out.clone(),
        target_arch: a.target_arch,
        capacity: a.media_size,
        label: a.label.clone(),
        boot_files: a.boot_files.clone(),
        media_template: a.media_template.clone(),
        autorun: a.autorun,
        staging: a.staging.clone(),
        cache_dir: a
            .cache
            .clone()
            .unwrap_or_else(capmedia_driver::default_cache_dir),
        options,
        source_date_epoch: source_date_epoch()?,
        dry_run: a.dry_run,
        system: capmedia_driver::SystemPaths::default(),
        uefi_ca: a.uefi_ca,
        target_hwids: a.target_hwids.clone(),
        require_hwids: a.require_hwids.clone(),
    };
    let cancelled = install_ctrlc();
    let ui = Ui::new(cancelled);
    let result = run_stages(&req, sink, &ui, a.json);
    ui.finish();
    match result {
        Ok(mut report) => {
            if let Some(n) = crate::firmware::note(sink.info(), &req.options) {
                report.notes.push(n);
            }
            if a.target_arch.is_none() && a.json {
                // Scripts read the document, not stderr.
                report.notes.push(NO_TARGET_ARCH.into());
            }
            if a.json {
                crate::json::print("capture", true, &report)?;
            } else {
                print_report(&report);
            }
            if report.interrupted_after_commit {
                eprintln!("capmedia: interrupted after the new media were in place: the run finished and they are complete and verified");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e)
            if e.downcast_ref::<capmedia_driver::CaptureError>()
                .is_some_and(|e| e.is_cancelled()) =>
        {
            eprintln!("capmedia: interrupted: existing outputs are untouched and temporary files were removed");
            if a.json {
                let (dp, package, out) = a.concerns();
                let error =
                    crate::json::ErrorInfo::from_error(&e).concerning(dp, package.as_deref(), out);
                crate::json::print("capture", false, crate::json::Failure { error })?;
            }
            Ok(ExitCode::from(EXIT_INTERRUPTED))
        }
        Err(e) => Err(e),
    }
}

/// What a capture without `--target-arch` could not check.
const NO_TARGET_ARCH: &str = "no --target-arch: the architecture rule (an x64 computer boots x86 \
     or x64 boot images, an x86 computer only x86, an arm64 computer only arm64) was not checked \
     against the computer this media is for";

/// The sink options of the command line, each checked against the options
/// the chosen sink says it reads, before anything is fetched or written:
/// an option a sink ignores would leave the user believing it applied
/// (`--vhd-type dynamic` with iso-set). `--yes` and `--allow-fixed-disk`
/// are the driver's too and always pass. A sink that declares no options
/// at all (an older third-party one) cannot be checked: a warning then.
fn sink_options(
    a: &CaptureArgs,
    info: &capmedia_sink::SinkInfo,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut given: Vec<(String, String, String)> = Vec::new();
    for kv in &a.sink_options {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--sink-option {kv:?} is not KEY=VALUE"))?;
        // The iso-set sink lists media-size among its options to say it
        // reads the plan's capacity; the capacity itself is one flag for
        // every sink, so a second spelling that could disagree is refused.
        if k == "media-size" {
            return Err(crate::UsageError(format!(
                "--sink-option media-size: the media size is capture's own option; use \
                 --media-size {v}; nothing was fetched or written"
            ))
            .into());
        }
        given.push((format!("--sink-option {k}"), k.to_owned(), v.to_owned()));
    }
    if let Some(v) = &a.partition_scheme {
        given.push((
            "--partition-scheme".into(),
            "partition-scheme".into(),
            v.clone(),
        ));
    }
    if let Some(v) = &a.vhd_type {
        given.push(("--vhd-type".into(), "vhd-type".into(), v.clone()));
    }
    let reads: Vec<&str> = info.options.iter().map(|o| o.name.as_str()).collect();
    let mut options = BTreeMap::new();
    for (flag, key, value) in given {
        if !reads.contains(&key.as_str()) {
            if reads.is_empty() {
                eprintln!(
                    "capmedia: warning: sink {} declares no options, so whether it reads {flag} \
                     cannot be checked",
                    info.name
                );
            } else {
                // The same option under the sink's own name (vhdx-type).
                let near = reads
                    .iter()
                    .find(|r| r.replace("vhdx", "vhd") == key)
                    .map(|r| format!("; for {}: --sink-option {r}={value}", info.name))
                    .unwrap_or_default();
                return Err(crate::UsageError(format!(
                    "sink {} does not read {flag} (it reads: {}){near}; nothing was fetched or \
                     written",
                    info.name,
                    reads.join(", ")
                ))
                .into());
            }
        }
        options.insert(key, value);
    }
    Ok(options)
}

/// The driver's stages, with the one question between "checked" and
/// "fetched": erasing a drive is confirmed by `--yes` or at the prompt.
fn run_stages(
    req: &CaptureRequest,
    sink: &dyn capmedia_sink::MediaSink,
    ui: &Ui,
    json: bool,
) -> anyhow::Result<CaptureReport> {
    let mut checked = resolve(req, sink, ui)?.validate()?.plan()?.check()?;
    if crate::ui::verbosity() == crate::ui::Verbosity::Verbose {
        for f in &checked.report().files {
            crate::ui::verbose(&format!(
                "file {} ({} bytes) from {}",
                f.path.as_str(),
                f.size,
                f.source
            ));
        }
    }
    if req.dry_run {
        return Ok(checked.into_report());
    }
    if let (Some(dev), false) = (checked.device(), checked.is_confirmed()) {
        // Without a terminal there is nobody to ask: the driver refuses.
        if std::io::stdin().is_terminal() && !json {
            let name = dev
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let line = capmedia_device::Drive::of(&req.system, &name)
                .map(|d| d.describe())
                .unwrap_or_else(|_| dev.info.describe());
            ui.finish();
            eprintln!("  {line}");
            eprint!(
                "capmedia: ALL DATA on {} will be erased. Write it? [y/N] ",
                dev.path.display()
            );
            std::io::stderr().flush()?;
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
                bail!("not confirmed; nothing was written");
            }
            checked.confirm();
        }
    }
    Ok(checked.fetch()?.write()?.verify()?)
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}

fn print_report(r: &CaptureReport) {
    let b = &r.boot_image;
    println!(
        "boot image {} ({}, {}): {} image {}{}, {}",
        b.package,
        b.content,
        r.dp,
        b.wim,
        b.image_index,
        b.image_name
            .as_deref()
            .map(|n| format!(" \"{n}\""))
            .unwrap_or_default(),
        b.arch
    );
    if let Some(t) = r.target_arch {
        println!("target computer: {t}");
    }
    println!("boot files from {}", r.boot_files_from);
    let d = &r.drivers.summary;
    println!(
        "drivers in the boot image: {} network, {} mass-storage, {} other{}",
        d.net,
        d.storage,
        d.other,
        if d.unreadable.is_empty() {
            String::new()
        } else {
            format!(", {} unreadable INF(s)", d.unreadable.len())
        }
    );
    if let Some(c) = &r.drivers.coverage {
        for dev in &c.devices {
            let by = dev
                .drivers
                .first()
                .map(|m| format!("{} ({})", m.file, m.matched_id))
                .unwrap_or_else(|| "-".into());
            println!("  {} [{}]: {by}", dev.device.hardware_id(), dev.kind);
        }
    }
    println!(
        "Configuration Manager boot components: TsmBootstrap.exe {}, OsdCaptureCd.exe {}",
        if r.sms.tsm_bootstrap {
            "present"
        } else {
            "absent"
        },
        if r.sms.osd_capture {
            "present"
        } else {
            "absent"
        }
    );
    println!(
        "label: {}   set id: {}   sink: {}",
        r.label, r.set_id, r.sink
    );
    if r.dry_run {
        println!(
            "\nplan ({} files, {}):",
            r.files.len(),
            mib(r.content_bytes)
        );
        for f in &r.files {
            println!("  {:<44} {:>12}  {}", f.path.as_str(), f.size, f.source);
        }
        for v in &r.volumes {
            let free = match v.capacity.bytes() {
                Some(c) => format!("{} free of {}", mib(c.saturating_sub(v.used)), mib(c)),
                None => "no size limit".into(),
            };
            println!(
                "\nvolume {} of {}: {} ({} files, {} used, {free})",
                v.number,
                v.count,
                v.output.display(),
                v.entries.len(),
                mib(v.used)
            );
            for e in &v.entries {
                println!("  {e}");
            }
        }
        print_notes(r);
        println!("\ndry run: nothing was fetched or written");
        return;
    }
    for o in &r.outputs {
        println!(
            "wrote {} (volume {}, {} bytes, BLAKE3 {})",
            o.path.display(),
            o.volume,
            o.bytes,
            o.blake3.as_deref().unwrap_or("-")
        );
    }
    print_notes(r);
    println!(
        "verified by {}; fetch {:.1}s, write {:.1}s, verify {:.1}s, total {:.1}s",
        r.verified_by.as_deref().unwrap_or("-"),
        r.timings.fetch_s,
        r.timings.write_s,
        r.timings.verify_s,
        r.timings.total_s
    );
}

fn print_notes(r: &CaptureReport) {
    if !r.notes.is_empty() {
        println!("\nnotes:");
        for n in &r.notes {
            println!("  {n}");
        }
    }
}
