//! `capmedia wizard`: the console's *Create Task Sequence Media Wizard*
//! pages, in a terminal, ending in the exact `capmedia capture` command.
//!
//! Pages, in the console's order: media type → the medium (drive, or
//! image file; disc size and ISO file; VHD/VHDX file, type and size) → the
//! distribution point (read at once; a bad answer is asked again with the
//! reason) → the boot image package (from the DP's boot images, with
//! architecture and Windows PE version) → the target computer's
//! architecture (the rule explained, a mismatch refused on the page) →
//! options (label, autorun, media template, hardware ids) → summary (every
//! answer, the shell-quoted command, Create / Save command / Cancel).
//!
//! Rules the pages keep:
//! - Esc (`<` on plain prompts) goes back a page, from any page; answers
//!   given are offered again as defaults.
//! - Nothing is written before "Create" (the DP is only read), so Ctrl-C on
//!   any page leaves nothing; "Save command" writes only the file asked for.
//! - Every option a page needs is asked; the command spells all of them out.
//! - "Create" parses the printed arguments with the same clap definition as
//!   `capmedia capture` and calls [`crate::capture::run`]: the same stages,
//!   progress, confirmation before erasing a drive, and report.
//!
//! The terminal I/O is in `wizard_prompt.rs`; the answers → command logic
//! in `wizard_command.rs` (unit-tested).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use capmedia_content::{Arch, Capacity};
use capmedia_dp::{Account, Credentials, Dp, DpOptions, Secret};
use capmedia_driver::BootImageListing;

use crate::wizard_command::{
    check_output_file, parse_disc_size, parse_disk_size, size_human, Answers, DiskKind, Media,
};
use crate::wizard_prompt::{Answer, Fancy, Plain, Prompter, Stop};

/// `capmedia wizard --help` ends with this.
pub const WIZARD_HELP: &str = "\
Keys: Enter answers, Esc goes back a page, Ctrl-C leaves (nothing is written
before \"Create\"). With TERM=dumb the questions are plain numbered lines
(\"<\" goes back). The last page shows the `capmedia capture` command that does
the same, to script the next run; \"Create\" runs exactly that command.

Examples:
  # Answer the console wizard's questions in a terminal:
  capmedia wizard
  # With a plugin folder and a cache folder, passed on to the capture:
  capmedia wizard --plugin-dir ./dist/plugins --cache /var/cache/capmedia";

#[derive(Debug, clap::Args)]
pub struct WizardArgs {
    /// Extra folder to search for sink plugins (repeatable); passed on to
    /// the capture command the wizard builds.
    #[arg(long = "plugin-dir", value_name = "DIR")]
    plugin_dirs: Vec<PathBuf>,
    /// The content cache for the capture; passed on to its command.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
}

/// The pages. The medium's detail pages share the second place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    MediaType,
    Usb,
    UsbImage,
    CdDvd,
    VirtualDisk,
    Dp,
    BootImage,
    TargetArch,
    Options,
    Summary,
}

const PAGES: usize = 7;

impl Page {
    fn title(self) -> &'static str {
        match self {
            Page::MediaType => "Media type",
            Page::Usb => "USB flash drive",
            Page::UsbImage => "USB flash drive: image file",
            Page::CdDvd => "CD/DVD set",
            Page::VirtualDisk => "Virtual hard disk",
            Page::Dp => "Distribution point",
            Page::BootImage => "Boot image package",
            Page::TargetArch => "Target computer",
            Page::Options => "Options",
            Page::Summary => "Summary",
        }
    }

    fn number(self) -> usize {
        match self {
            Page::MediaType => 1,
            Page::Usb | Page::UsbImage | Page::CdDvd | Page::VirtualDisk => 2,
            Page::Dp => 3,
            Page::BootImage => 4,
            Page::TargetArch => 5,
            Page::Options => 6,
            Page::Summary => 7,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Usb,
    CdDvd,
    Vhd,
    Vhdx,
}

const KINDS: [(Kind, &str); 4] = [
    (Kind::Usb, "USB flash drive"),
    (Kind::CdDvd, "CD/DVD set"),
    (
        Kind::Vhd,
        "VHD (a virtual machine's disk: Hyper-V generation 1, BIOS)",
    ),
    (
        Kind::Vhdx,
        "VHDX (a virtual machine's disk: Hyper-V generation 2, UEFI)",
    ),
];

/// The DP as answered and read.
#[derive(Debug)]
struct DpAnswer {
    location: String,
    user: Option<String>,
    /// Asked on the page, for the wizard's own run only.
    password: Option<Secret>,
    /// The account logs on with its Kerberos ticket (no password).
    kerberos: bool,
    images: Vec<BootImageListing>,
}

/// What a page leads to.
enum Go {
    To(Page),
    Create(Box<Answers>),
    /// Left on the summary page's Cancel.
    Cancelled,
}

#[derive(Debug, Default)]
struct Wizard {
    plugin_dirs: Vec<PathBuf>,
    cache: Option<PathBuf>,
    kind: Option<Kind>,
    show_internal: bool,
    media: Option<Media>,
    dp: Option<DpAnswer>,
    boot: Option<BootImageListing>,
    target: Option<Arch>,
    label: Option<String>,
    autorun: Option<bool>,
    template: Option<Option<PathBuf>>,
    hwids: Option<Option<PathBuf>>,
}

/// Exit code when the wizard is left without creating anything.
const EXIT_CANCELLED: u8 = crate::capture::EXIT_INTERRUPTED;

pub fn run(args: WizardArgs) -> anyhow::Result<ExitCode> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        anyhow::bail!(
            "capmedia wizard asks its questions on a terminal; in scripts use `capmedia capture` (the wizard prints the command)"
        );
    }
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    let mut prompter: Box<dyn Prompter> = if dumb {
        Box::new(Plain)
    } else {
        Box::new(Fancy)
    };
    let mut w = Wizard {
        plugin_dirs: args.plugin_dirs,
        cache: args.cache,
        ..Wizard::default()
    };
    match w.pages(prompter.as_mut())? {
        Some(answers) => create(&answers, w.dp.as_ref().and_then(|d| d.password.as_ref())),
        None => {
            eprintln!("capmedia: wizard cancelled: nothing was written");
            Ok(ExitCode::from(EXIT_CANCELLED))
        }
    }
}

/// The capture, from the very arguments the summary printed.
fn create(answers: &Answers, password: Option<&Secret>) -> anyhow::Result<ExitCode> {
    let argv = answers.capture_argv();
    eprintln!();
    eprintln!("running: {}", answers.command_line()?);
    if let Some(p) = password {
        // The capture reads the password where a scripted run would find
        // it; it stays in this process and its children never see argv.
        if std::env::var_os(crate::access::PASSWORD_ENV).is_none() {
            std::env::set_var(crate::access::PASSWORD_ENV, p.expose());
        }
    }
    let cli = <crate::Cli as clap::Parser>::try_parse_from(
        std::iter::once("capmedia".to_owned()).chain(argv),
    )
    .map_err(|e| anyhow::anyhow!("the wizard built a command capture refuses: {e}"))?;
    match cli.command {
        crate::Command::Capture(a) => crate::capture::run(*a),
        _ => anyhow::bail!("the wizard built something other than a capture command"),
    }
}

impl Wizard {
    /// Walk the pages; `None` when left without creating.
    fn pages(&mut self, p: &mut dyn Prompter) -> anyhow::Result<Option<Answers>> {
        let mut history: Vec<Page> = Vec::new();
        let mut page = Page::MediaType;
        loop {
            p.page(page.title(), page.number(), PAGES);
            match self.show(page, p) {
                Ok(Go::To(next)) => {
                    history.push(page);
                    page = next;
                }
                Ok(Go::Create(a)) => return Ok(Some(*a)),
                Ok(Go::Cancelled) | Err(Stop::Cancel) => return Ok(None),
                Err(Stop::Back) => match history.pop() {
                    Some(prev) => page = prev,
                    None => p.note("this is the first page: Ctrl-C leaves the wizard"),
                },
                Err(Stop::Failed(e)) => return Err(e),
            }
        }
    }

    fn show(&mut self, page: Page, p: &mut dyn Prompter) -> Answer<Go> {
        match page {
            Page::MediaType => self.media_type(p),
            Page::Usb => self.usb(p),
            Page::UsbImage => self.usb_image(p),
            Page::CdDvd => self.cd_dvd(p),
            Page::VirtualDisk => self.virtual_disk(p),
            Page::Dp => self.dp(p),
            Page::BootImage => self.boot_image(p),
            Page::TargetArch => self.target_arch(p),
            Page::Options => self.options(p),
            Page::Summary => self.summary(p),
        }
    }

    fn media_type(&mut self, p: &mut dyn Prompter) -> Answer<Go> {
        let options: Vec<String> = KINDS.iter().map(|(_, n)| (*n).to_owned()).collect();
        let start = KINDS
            .iter()
            .position(|(k, _)| Some(*k) == self.kind)
            .unwrap_or(0);
        let i = p.select("Which media do you want to create?", &options, start)?;
        let kind = KINDS.get(i).map_or(Kind::Usb, |(k, _)| *k);
        if self.kind != Some(kind) {
            self.media = None;
        }
        self.kind = Some(kind);
        Ok(Go::To(match kind {
            Kind::Usb => Page::Usb,
            Kind::CdDvd => Page::CdDvd,
            Kind::Vhd | Kind::Vhdx => Page::VirtualDisk,
        }))
    }

    fn usb(&mut self, p: &mut dyn Prompter) -> Answer<Go> {
        loop {
            let sys = capmedia_device::SystemPaths::default();
            let drives = match capmedia_device::list_drives(&sys, self.show_internal) {
                Ok(d) => d,
                Err(e) => {
                    p.note(&format!("the drive list cannot be read: {e}"));
                    Vec::new()
                }
            };
            if drives.is_empty() {
                p.note(if self.show_internal {
                    "no drives found"
                } else {
                    "no removable or USB drives found: plug one in and refresh, or write an image file"
                });
            } else {
                p.note(
                    "The drive is erased (after a last confirmation when the media is created).",
                );
            }
            let mut options: Vec<String> = drives
                .iter()
                .map(|d| {
                    let mut s = d.describe();
                    if let Some(r) = d.refusals.first() {
                        s.push_str(&format!("  [refused: {r}]"));
                    }
                    s
                })
                .collect();
            let image = options.len();
            options.push("An image file instead (usb-raw: write it to a stick later)".into());
            options.push("Refresh the drive list".into());
            options.push(if self.show_internal {
                "Hide internal disks".into()
            } else {
                "Show internal disks too".into()
            });
            let start = match &self.media {
                Some(Media::UsbImage { .. }) => image,
                Some(Media::UsbDrive { device, .. }) => {
                    drives.iter().position(|d| &d.path == device).unwrap_or(0)
                }
                _ => 0,
            };
            let i = p.select("Which drive?", &options, start)?;
            match i.checked_sub(image) {
                Some(0) => return Ok(Go::To(Page::UsbImage)),
                Some(1) => continue,
                Some(_) => {
                    self.show_internal = !self.show_internal;
                    continue;
                }
                None => {}
            }
            let Some(d) = drives.get(i) else { continue };
            if !d.refusals.is_empty() {
                p.note(&format!(
                    "✗ {} cannot be written: {}",
                    d.path.display(),
                    d.refusals.join("; ")
                ));
                continue;
            }
            self.media = Some(Media::UsbDrive {
                device: d.path.clone(),
                describe: d.describe(),
            });
            return Ok(Go::To(Page::Dp));
        }
    }

    /// An output file, asked until it is acceptable; an existing one is
    /// kept until the new media are complete and verified.
    fn output_file(
        &mut self,
        p: &mut dyn Prompter,
        question: &str,
        help: &str,
        default: Option<String>,
        what: &str,
    ) -> Answer<PathBuf> {
        let mut default = default;
        loop {
            let a = p.text(question, help, default.as_deref())?;
            let path = PathBuf::from(a.trim());
            match check_output_file(&path) {
                Err(why) => p.note(&format!("✗ {why}")),
                Ok(false) => return Ok(path),
                Ok(true) => {
                    p.note(&format!(
                        "⚠ {} exists. It is kept, untouched, until the new {what} is complete and verified; only then is it replaced.",
                        path.display()
                    ));
                    if p.confirm("Replace it then?", false)? {
                        return Ok(path);
                    }
                }
            }
            default = Some(a);
        }
    }

    /// A disk size: the smallest that fits, or one typed.
    fn disk_size(
        &mut self,
        p: &mut dyn Prompter,
        what: &str,
        previous: Option<Capacity>,
    ) -> Answer<Capacity> {
        let options = vec![
            "The smallest that fits the content".to_owned(),
            format!("A size I give (the {what}'s size, e.g. 16G)"),
        ];
        let start = usize::from(matches!(previous, Some(Capacity::Bytes(_))));
        if p.select(&format!("Size of the {what}?"), &options, start)? == 0 {
            return Ok(Capacity::Unlimited);
        }
        let default = match previous {
            Some(c @ Capacity::Bytes(_)) => Some(crate::wizard_command::size_arg(c)),
            _ => None,
        };
        loop {
            let a = p.text(
                "Size",
                "bytes with K, M, G or T (powers of 1024)",
                default.as_deref(),
            )?;
            match parse_disk_size(&a) {
                Ok(c) => return Ok(c),
                Err(why) => p.note(&format!("✗ {why}")),
            }
        }
    }

    fn usb_image(&mut self, p: &mut dyn Prompter) -> Answer<Go> {
        let (file, size) = match &self.media {
            Some(Media::UsbImage { file, size }) => (Some(file.display().to_string()), Some(*size)),
            _ => (None, None),
        };
        let file = self.output_file(p, "Image file to write", "e.g. capture.img", file, "image")?;
        let size = self.disk_size(p, "stick", size)?;
        self.media = Some(Media::UsbImage { file, size });
        Ok(Go::To(Page::Dp))
    }

    fn cd_dvd(&mut self, p: &mut dyn Prompter) -> Answer<Go> {
        let (file, size) = match &self.media {
            Some(Media::CdDvd { file, size }) => (Some(file.display().to_string()), Some(*size)),
            _ => (None, None),
        };
        p.note("When the content does not fit one disc, more ISO files are written, numbered.");
        let presets: [(&str, &str); 4] = [
            ("cd", "CD-R, 650 MB (681,984,000 bytes)"),
            ("dvd", "DVD±R, 4.7 GB (4,700,372,992 bytes)"),
            ("dvd-dl", "DVD+R DL, 8.5 GB (8,547,991,552 bytes)"),
            ("unlimited", "one ISO of any size"),
        ];
        let mut options: Vec<String> = presets.iter().map(|(n, d)| format!("{n}: {d}")).collect();
        options.push("a size I give".into());
        let start = match size {
            Some(Capacity::Unlimited) => 3,
            Some(c) => match c.disc_preset() {
                Some("cd") => 0,
                Some("dvd") => 1,
                Some("dvd-dl") => 2,
                _ => 4,
            },
            None => 1,
        };
        let i = p.select("Media size (one disc)?", &options, start)?;
        let size = match presets.get(i) {
            Some((name, _)) => {
                parse_disc_size(name).map_err(|e| Stop::Failed(anyhow::anyhow!(e)))?
            }
            None => loop {
                let a = p.text("Size of one disc", "bytes with K, M, G or T", None)?;
                match parse_disc_size(&a) {
                    Ok(c) => break c,
                    Err(why) => p.note(&format!("✗ {why}")),
                }
            },
        };
        let file = self.output_file(
            p,
            "Output file (the first ISO of the set)",
            "e.g. /srv/media/capture.iso",
            file,
            "set",
        )?;
        self.media = Some(Media::CdDvd { file, size });
        Ok(Go::To(Page::Dp))
    }

    fn virtual_disk(&mut self, p: &mut dyn Prompter) -> Answer<Go> {
        let vhdx = self.kind == Some(Kind::Vhdx);
        let (file, kind, size) = match &self.media {
            Some(Media::Vhd { file, kind, size }) | Some(Media::Vhdx { file, kind, size }) => {
                (Some(file.display().to_string()), Some(*kind), Some(*size))
            }
            _ => (None, None, None),
        };
        let (ext, name) = if vhdx {
            ("vhdx", "VHDX")
        } else {
            ("vhd", "VHD")
        };
        let file = self.output_file(
            p,
            &format!("{name} file to write"),
            &format!("e.g. capture.{ext}"),
            file,
            "disk",
        )?;
        let options = vec![
            "fixed: the file is as big as the disk (fastest, what Azure wants)".to_owned(),
            "dynamic: the file grows with what is written".to_owned(),
        ];
        let start = usize::from(
            kind.unwrap_or(if vhdx {
                DiskKind::Dynamic
            } else {
                DiskKind::Fixed
            }) == DiskKind::Dynamic,
        );
        let kind = if p.select(&format!("{name} type?"), &options, start)? == 0 {
            DiskKind::Fixed
        } else {
            DiskKind::Dynamic
        };
        let size = self.disk_size(p, "virtual disk", size)?;
        self.media = Some(if vhdx {
            Media::Vhdx { file, kind, size }
        } else {
            Media::Vhd { file, kind, size }
        });
        Ok(Go::To(Page::Dp))
    }

    fn dp(&mut self, p: &mut dyn Prompter) -> Answer<Go> {
        p.note("The wizard reads the boot image from the DP's content library (Read access is enough).");
        let mut location = self.dp.as_ref().map(|d| d.location.clone());
        let mut user = self.dp.as_ref().and_then(|d| d.user.clone());
        loop {
            let a = p.text(
                "Distribution point",
                "a path to SCCMContentLib, smb://server/SCCMContentLib$ or http(s)://server/SMS_DP_SMSPKG$/",
                location.as_deref(),
            )?;
            let loc = a.trim().to_owned();
            location = Some(loc.clone());
            if loc.is_empty() {
                p.note("✗ give a path or URL");
                continue;
            }
            let remote = loc.contains("://") || loc.starts_with("\\\\");
            let mut opts = DpOptions::default();
            let mut password = None;
            let mut kerberos = false;
            user = if remote {
                let u = p.text(
                    "Windows account to read it as",
                    "DOMAIN\\user, user@REALM or user; empty: anonymous, or the Kerberos ticket in the cache",
                    Some(user.as_deref().unwrap_or("")),
                )?;
                let u = u.trim().to_owned();
                (!u.is_empty()).then_some(u)
            } else {
                None
            };
            if let Some(u) = &user {
                let account = match Account::parse(u) {
                    Ok(a) => a,
                    Err(e) => {
                        p.note(&format!("✗ {e}"));
                        continue;
                    }
                };
                if let Some(principal) = crate::access::kerberos_ticket(&loc, &account) {
                    p.note(&format!(
                        "✓ the ticket cache holds a Kerberos ticket of {principal}: no password needed"
                    ));
                    opts.kerberos_principal = Some(principal);
                    kerberos = true;
                } else {
                    let secret = match std::env::var(crate::access::PASSWORD_ENV) {
                        Ok(s) => {
                            p.note(&format!(
                                "the password comes from {}",
                                crate::access::PASSWORD_ENV
                            ));
                            Secret::new(s)
                        }
                        Err(_) => Secret::new(p.password(&format!("Password of {account}"))?),
                    };
                    opts.credentials = Some(Arc::new(Credentials {
                        account,
                        password: Secret::new(secret.expose().to_owned()),
                    }));
                    password = Some(secret);
                }
            }
            p.note(&format!("reading {loc} ..."));
            let images = Dp::open(&loc, opts)
                .map_err(Box::new)
                .and_then(|dp| capmedia_driver::boot_image_summaries(&dp));
            match images {
                Err(e) => p.note(&format!("✗ {}", crate::one_line(&anyhow::Error::new(e)))),
                Ok(images) if images.is_empty() => {
                    p.note(&format!("✗ {loc} holds no boot image packages"));
                }
                Ok(images) => {
                    p.note(&format!("✓ {} boot image package(s)", images.len()));
                    if self.dp.as_ref().map(|d| &d.location) != Some(&loc) {
                        self.boot = None;
                    }
                    self.dp = Some(DpAnswer {
                        location: loc,
                        user,
                        password,
                        kerberos,
                        images,
                    });
                    return Ok(Go::To(Page::BootImage));
                }
            }
        }
    }

    fn boot_image(&mut self, p: &mut dyn Prompter) -> Answer<Go> {
        let Some(dp) = &self.dp else {
            return Ok(Go::To(Page::Dp));
        };
        let options: Vec<String> = dp
            .images
            .iter()
            .map(|b| match (&b.problem, b.arch) {
                (Some(why), _) => format!("{}  cannot be used: {why}", b.package),
                (None, None) => format!("{}  no architecture in its WIM", b.package),
                (None, Some(arch)) => format!(
                    "{}  {:<5} WinPE {:<12} {:>10}  {}",
                    b.package,
                    arch.to_string(),
                    b.winpe_version.as_deref().unwrap_or("-"),
                    size_human_short(b.size),
                    b.image_name.as_deref().unwrap_or("")
                ),
            })
            .collect();
        let start = self
            .boot
            .as_ref()
            .and_then(|c| dp.images.iter().position(|b| b.package == c.package))
            .unwrap_or(0);
        loop {
            let i = p.select("Which boot image package?", &options, start)?;
            let Some(b) = dp.images.get(i) else { continue };
            if !b.usable() {
                p.note(&format!(
                    "✗ {} cannot be used: {}",
                    b.package,
                    b.problem
                        .as_deref()
                        .unwrap_or("its WIM names no architecture")
                ));
                continue;
            }
            self.boot = Some(b.clone());
            return Ok(Go::To(Page::TargetArch));
        }
    }

    fn target_arch(&mut self, p: &mut dyn Prompter) -> Answer<Go> {
        let Some(image) = self.boot.as_ref().and_then(|b| b.arch.map(|a| (b, a))) else {
            return Ok(Go::To(Page::BootImage));
        };
        let (boot, arch) = image;
        p.note(
            "The boot image must suit the computer it will start: an x64 computer boots x86 or x64",
        );
        p.note("boot images; an x86 computer boots only x86; an arm64 computer only arm64.");
        p.note(&format!("{} is {arch} (read from its WIM).", boot.package));
        let archs = [Arch::X64, Arch::X86, Arch::Arm64];
        let options: Vec<String> = archs
            .iter()
            .map(|a| format!("{a}: {}", capmedia_arch::target_rule(*a)))
            .collect();
        let start = self
            .target
            .and_then(|t| archs.iter().position(|a| *a == t))
            .unwrap_or(0);
        loop {
            let i = p.select(
                "What is the reference computer's architecture?",
                &options,
                start,
            )?;
            let target = archs.get(i).copied().unwrap_or(Arch::X64);
            match capmedia_arch::image_suits_target(target, arch) {
                Ok(()) => {
                    self.target = Some(target);
                    return Ok(Go::To(Page::Options));
                }
                Err(e) => p.note(&format!(
                    "✗ {e}: choose another computer, or Esc for another boot image"
                )),
            }
        }
    }

    fn options(&mut self, p: &mut dyn Prompter) -> Answer<Go> {
        let label = loop {
            let a = p.text(
                "Media label",
                "the ISO volume name; its first 11 characters the FAT label",
                Some(self.label.as_deref().unwrap_or("Configuration Manager")),
            )?;
            match capmedia_driver::check_label(&a) {
                Ok(()) => break a,
                Err(why) => p.note(&format!("✗ {why}")),
            }
        };
        let autorun = p.confirm(
            "Write autorun.inf (Windows offers to start the capture when the medium is inserted)?",
            self.autorun.unwrap_or(false),
        )?;
        let template = optional_path(
            p,
            "Media template folder, copied as-is onto the medium",
            "e.g. the site's SMS folder; empty: none",
            self.template.clone().flatten(),
            |path| path.is_dir(),
            "is not a folder",
        )?;
        let hwids = optional_path(
            p,
            "Hardware id file of the reference computer, for the driver check",
            "pnputil /enum-devices or lspci -nn output; empty: no check",
            self.hwids.clone().flatten(),
            |path| path.is_file(),
            "is not a file",
        )?;
        self.label = Some(label);
        self.autorun = Some(autorun);
        self.template = Some(template);
        self.hwids = Some(hwids);
        Ok(Go::To(Page::Summary))
    }

    fn answers(&self) -> Option<Answers> {
        let dp = self.dp.as_ref()?;
        let boot = self.boot.as_ref()?;
        Some(Answers {
            media: self.media.clone()?,
            dp: dp.location.clone(),
            dp_user: dp.user.clone(),
            dp_kerberos: dp.kerberos,
            boot_image: boot.package.clone(),
            image_arch: boot.arch?,
            target_arch: self.target?,
            label: self.label.clone()?,
            autorun: self.autorun?,
            media_template: self.template.clone()?,
            target_hwids: self.hwids.clone()?,
            plugin_dirs: self.plugin_dirs.clone(),
            cache: self.cache.clone(),
        })
    }

    fn summary(&mut self, p: &mut dyn Prompter) -> Answer<Go> {
        let Some(answers) = self.answers() else {
            // Unreachable by the page order; start over rather than guess.
            return Ok(Go::To(Page::MediaType));
        };
        let command = answers.command_line().map_err(Stop::Failed)?;
        for (what, answer) in answers.summary() {
            p.note(&format!("{what:<19} {answer}"));
        }
        p.note("");
        p.note("The command that does this (to script the next run):");
        p.note(&format!("  {command}"));
        if let Some(n) = answers.password_note() {
            p.note(&format!("  ({n})"));
        }
        let options = vec![
            "Create the media now".to_owned(),
            "Save the command to a file".to_owned(),
            "Cancel (nothing is written)".to_owned(),
        ];
        loop {
            match p.select("Create?", &options, 0)? {
                0 => return Ok(Go::Create(Box::new(answers))),
                1 => save_command(p, &command, answers.password_note().as_deref())?,
                _ => return Ok(Go::Cancelled),
            }
        }
    }
}

fn size_human_short(b: u64) -> String {
    size_human(Capacity::Bytes(b))
        .split_once('(')
        .and_then(|(_, h)| h.split(", ").last())
        .map(|h| h.trim_end_matches(')').to_owned())
        .unwrap_or_else(|| format!("{b} bytes"))
}

/// A path that may be left empty, asked until empty or acceptable.
fn optional_path(
    p: &mut dyn Prompter,
    question: &str,
    help: &str,
    previous: Option<PathBuf>,
    ok: impl Fn(&std::path::Path) -> bool,
    not_ok: &str,
) -> Answer<Option<PathBuf>> {
    let previous = previous.map(|d| d.display().to_string());
    loop {
        let a = p.text(question, help, Some(previous.as_deref().unwrap_or("")))?;
        let a = a.trim();
        if a.is_empty() {
            return Ok(None);
        }
        let path = PathBuf::from(a);
        if ok(&path) {
            return Ok(Some(path));
        }
        p.note(&format!("✗ {a} {not_ok}"));
    }
}

/// Write the command into a file the user names, as a shell script.
fn save_command(p: &mut dyn Prompter, command: &str, note: Option<&str>) -> Answer<()> {
    loop {
        let a = p.text("Save the command to", "e.g. capture.sh", None)?;
        let path = PathBuf::from(a.trim());
        match check_output_file(&path) {
            Err(why) => {
                p.note(&format!("✗ {why}"));
                continue;
            }
            Ok(true) => {
                if !p.confirm(&format!("{} exists. Overwrite it?", path.display()), false)? {
                    continue;
                }
            }
            Ok(false) => {}
        }
        let mut text = String::from("#!/bin/sh\n# Written by capmedia wizard.\n");
        if let Some(n) = note {
            text.push_str(&format!("# {n}\n"));
        }
        text.push_str(command);
        text.push('\n');
        match std::fs::write(&path, text) {
            Ok(()) => {
                p.note(&format!("✓ saved to {}", path.display()));
                return Ok(());
            }
            Err(e) => p.note(&format!("✗ {}: {e}", path.display())),
        }
    }
}
