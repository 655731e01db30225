//! The wizard's answers and what they become: the `capmedia capture`
//! arguments, the shell-quoted command line the summary page prints, and the
//! summary's rows. No terminal I/O here, so all of it is unit-tested; the
//! run itself parses these very arguments with clap (see
//! [`Answers::capture_argv`]), so the printed command and the run can not
//! drift apart.

use std::path::{Path, PathBuf};

use capmedia_content::{Arch, Capacity, PackageId};

/// Where the media goes, as the media pages answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    /// A removable drive (`/dev/sdX`), erased after the capture's own
    /// confirmation.
    UsbDrive { device: PathBuf, describe: String },
    /// The USB stick's disk image written into a file (`usb-raw`).
    UsbImage { file: PathBuf, size: Capacity },
    /// An ISO set (`iso-set`): first volume's file and the size of one disc.
    CdDvd { file: PathBuf, size: Capacity },
    /// A VHD (`vhd`), fixed or dynamic.
    Vhd {
        file: PathBuf,
        kind: DiskKind,
        size: Capacity,
    },
    /// A VHDX (`vhdx`), fixed or dynamic.
    Vhdx {
        file: PathBuf,
        kind: DiskKind,
        size: Capacity,
    },
}

/// Fixed or dynamic virtual disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskKind {
    Fixed,
    Dynamic,
}

impl DiskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiskKind::Fixed => "fixed",
            DiskKind::Dynamic => "dynamic",
        }
    }
}

impl Media {
    /// The sink that writes it.
    pub fn sink(&self) -> &'static str {
        match self {
            Media::UsbDrive { .. } | Media::UsbImage { .. } => "usb-raw",
            Media::CdDvd { .. } => "iso-set",
            Media::Vhd { .. } => "vhd",
            Media::Vhdx { .. } => "vhdx",
        }
    }

    /// The `--out` path.
    pub fn out(&self) -> &Path {
        match self {
            Media::UsbDrive { device, .. } => device,
            Media::UsbImage { file, .. }
            | Media::CdDvd { file, .. }
            | Media::Vhd { file, .. }
            | Media::Vhdx { file, .. } => file,
        }
    }

    /// The media type as the first page names it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Media::UsbDrive { .. } => "USB flash drive",
            Media::UsbImage { .. } => "USB flash drive (an image file)",
            Media::CdDvd { .. } => "CD/DVD set",
            Media::Vhd { .. } => "VHD",
            Media::Vhdx { .. } => "VHDX",
        }
    }

    fn size(&self) -> Option<Capacity> {
        match self {
            Media::UsbDrive { .. } => None,
            Media::UsbImage { size, .. }
            | Media::CdDvd { size, .. }
            | Media::Vhd { size, .. }
            | Media::Vhdx { size, .. } => Some(*size),
        }
    }
}

/// A capacity as `--media-size` takes it: a preset name when it is one,
/// else exact bytes (which parse back to the same capacity).
pub fn size_arg(c: Capacity) -> String {
    match c {
        Capacity::Unlimited => "unlimited".into(),
        Capacity::Bytes(b) => c.disc_preset().map_or_else(|| b.to_string(), str::to_owned),
    }
}

/// A capacity for people: the preset and its bytes, or MiB/GiB.
pub fn size_human(c: Capacity) -> String {
    match c {
        Capacity::Unlimited => "smallest that fits the content (unlimited)".into(),
        Capacity::Bytes(b) => {
            let human = if b >= 1 << 30 {
                format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
            } else if b < 1 << 20 {
                format!("{:.1} KiB", b as f64 / 1024.0)
            } else {
                format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
            };
            match c.disc_preset() {
                Some(p) => format!("{p} ({b} bytes, {human})"),
                None => format!("{b} bytes ({human})"),
            }
        }
    }
}

/// Everything the pages asked, ready to become a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    pub media: Media,
    /// A path or URL, as typed.
    pub dp: String,
    /// The Windows account for the DP (its password is never an argument).
    pub dp_user: Option<String>,
    /// `dp_user` logs on with its Kerberos ticket, not a password.
    pub dp_kerberos: bool,
    pub boot_image: PackageId,
    /// The boot image's architecture as read from its WIM (for the summary).
    pub image_arch: Arch,
    pub target_arch: Arch,
    pub label: String,
    pub autorun: bool,
    pub media_template: Option<PathBuf>,
    pub target_hwids: Option<PathBuf>,
    /// Passed through from `capmedia wizard`'s own options.
    pub plugin_dirs: Vec<PathBuf>,
    pub cache: Option<PathBuf>,
}

fn path_arg(p: &Path) -> String {
    // Paths come from text prompts, so they are UTF-8.
    p.to_string_lossy().into_owned()
}

impl Answers {
    /// The arguments after `capmedia`: `capture --dp ... --boot-image ...`.
    /// Every option a page asked for is spelled out, defaults included, so
    /// the command says all it does.
    pub fn capture_argv(&self) -> Vec<String> {
        let mut a: Vec<String> = vec!["capture".into()];
        let mut opt = |k: &str, v: String| {
            a.push(k.into());
            a.push(v);
        };
        opt("--dp", self.dp.clone());
        if let Some(u) = &self.dp_user {
            opt("--dp-user", u.clone());
        }
        opt("--boot-image", self.boot_image.to_string());
        opt("--target-arch", self.target_arch.to_string());
        opt("--sink", self.media.sink().into());
        opt("--out", path_arg(self.media.out()));
        if let Some(size) = self.media.size() {
            opt("--media-size", size_arg(size));
        }
        match &self.media {
            Media::Vhd { kind, .. } => opt("--vhd-type", kind.as_str().into()),
            Media::Vhdx { kind, .. } => {
                opt("--sink-option", format!("vhdx-type={}", kind.as_str()))
            }
            _ => {}
        }
        opt("--label", self.label.clone());
        if let Some(t) = &self.media_template {
            opt("--media-template", path_arg(t));
        }
        if let Some(h) = &self.target_hwids {
            opt("--target-hwids", path_arg(h));
        }
        if let Some(c) = &self.cache {
            opt("--cache", path_arg(c));
        }
        for d in &self.plugin_dirs {
            opt("--plugin-dir", path_arg(d));
        }
        if self.autorun {
            a.push("--autorun".into());
        }
        a
    }

    /// `capmedia capture ...`, quoted for a POSIX shell.
    pub fn command_line(&self) -> anyhow::Result<String> {
        let mut words = vec!["capmedia".to_owned()];
        words.extend(self.capture_argv());
        shlex::try_join(words.iter().map(String::as_str))
            .map_err(|e| anyhow::anyhow!("the command cannot be quoted for a shell: {e}"))
    }

    /// What the password note under the command says, when the DP needs one.
    pub fn password_note(&self) -> Option<String> {
        self.dp_user.as_ref().map(|u| {
            if self.dp_kerberos {
                return format!(
                    "{u} logs on with its Kerberos ticket: run kinit {u} first when the ticket has expired"
                );
            }
            format!(
                "the password of {u} is not in the command: set {} or add --dp-password-file FILE when you run it",
                crate::access::PASSWORD_ENV
            )
        })
    }

    /// The summary page's rows: (what, the answer).
    pub fn summary(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![("media type", self.media.type_name().to_owned())];
        match &self.media {
            Media::UsbDrive { describe, .. } => rows.push(("drive", describe.clone())),
            m => rows.push(("output file", path_arg(m.out()))),
        }
        if let Some(size) = self.media.size() {
            rows.push(("media size", size_human(size)));
        }
        match &self.media {
            Media::Vhd { kind, .. } | Media::Vhdx { kind, .. } => {
                rows.push(("disk type", kind.as_str().to_owned()));
            }
            _ => {}
        }
        rows.push(("distribution point", self.dp.clone()));
        rows.push((
            "DP account",
            self.dp_user
                .clone()
                .unwrap_or_else(|| "none (anonymous, or the mount's)".into()),
        ));
        rows.push((
            "boot image",
            format!("{} ({})", self.boot_image, self.image_arch),
        ));
        rows.push(("target computer", self.target_arch.to_string()));
        rows.push(("label", self.label.clone()));
        rows.push((
            "autorun.inf",
            if self.autorun { "yes" } else { "no" }.into(),
        ));
        rows.push((
            "media template",
            self.media_template
                .as_deref()
                .map_or_else(|| "none".into(), path_arg),
        ));
        rows.push((
            "hardware ids",
            self.target_hwids
                .as_deref()
                .map_or_else(|| "none (no driver check)".into(), path_arg),
        ));
        rows
    }
}

/// Why a path typed for an output file cannot be one, or `Ok(exists)`.
/// The wizard creates nothing: the folder must exist already, as the
/// console's wizard requires for its output folder.
pub fn check_output_file(p: &Path) -> Result<bool, String> {
    let shown = p.display();
    if p.as_os_str().is_empty() {
        return Err("give a file name".into());
    }
    if p.starts_with("/dev") {
        return Err(format!(
            "{shown} is under /dev: a drive is chosen from the drive list (USB flash drive)"
        ));
    }
    if p.is_dir() {
        return Err(format!("{shown} is a folder: give a file name in it"));
    }
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(format!(
            "the folder {} does not exist (the wizard creates none: make it first)",
            parent.display()
        ));
    }
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_file() => Ok(true),
        Ok(m) if m.file_type().is_symlink() => match std::fs::metadata(p) {
            Ok(t) if t.is_file() => Ok(true),
            _ => Err(format!("{shown} is a link to something that is not a file")),
        },
        Ok(_) => Err(format!("{shown} exists and is not a regular file")),
        Err(_) => Ok(false),
    }
}

/// A size typed for a USB image or a virtual disk: bytes with K/M/G/T, or
/// `unlimited`; disc presets are refused (they are disc sizes).
pub fn parse_disk_size(s: &str) -> Result<Capacity, String> {
    let c: Capacity = s.trim().parse().map_err(|e| format!("{e}"))?;
    if let Some(p) = c.disc_preset() {
        return Err(format!(
            "{p} is a disc size: give the stick's or disk's size, e.g. 16G"
        ));
    }
    Ok(c)
}

/// A size typed for one disc of a CD/DVD set.
pub fn parse_disc_size(s: &str) -> Result<Capacity, String> {
    s.trim().parse().map_err(|e| format!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(media: Media) -> Answers {
        Answers {
            media,
            dp: "/srv/dp lib/SCCMContentLib".into(),
            dp_user: None,
            dp_kerberos: false,
            boot_image: "PS100001".parse().unwrap(),
            image_arch: Arch::X64,
            target_arch: Arch::X64,
            label: "Configuration Manager".into(),
            autorun: false,
            media_template: None,
            target_hwids: None,
            plugin_dirs: vec![],
            cache: None,
        }
    }

    #[test]
    fn a_cd_dvd_set_spells_out_every_answer() {
        let a = answers(Media::CdDvd {
            file: "/out/cap.iso".into(),
            size: "dvd".parse().unwrap(),
        });
        assert_eq!(
            a.capture_argv(),
            [
                "capture",
                "--dp",
                "/srv/dp lib/SCCMContentLib",
                "--boot-image",
                "PS100001",
                "--target-arch",
                "x64",
                "--sink",
                "iso-set",
                "--out",
                "/out/cap.iso",
                "--media-size",
                "dvd",
                "--label",
                "Configuration Manager",
            ]
        );
        assert_eq!(
            a.command_line().unwrap(),
            "capmedia capture --dp '/srv/dp lib/SCCMContentLib' --boot-image PS100001 \
             --target-arch x64 --sink iso-set --out /out/cap.iso --media-size dvd \
             --label 'Configuration Manager'"
        );
    }

    #[test]
    fn virtual_disks_usb_and_options() {
        let mut a = answers(Media::Vhdx {
            file: "d.vhdx".into(),
            kind: DiskKind::Fixed,
            size: Capacity::Unlimited,
        });
        a.dp_user = Some("CORP\\cm-read".into());
        a.autorun = true;
        a.media_template = Some("/site/SMS tmpl".into());
        a.target_hwids = Some("ids.txt".into());
        a.plugin_dirs = vec!["/p".into()];
        let line = a.command_line().unwrap();
        assert!(
            line.contains(r#"--dp-user "CORP\\cm-read""#)
                && line.contains("--sink vhdx")
                && line.contains("--sink-option 'vhdx-type=fixed'")
                && line.contains("--media-size unlimited")
                && line.contains("--media-template '/site/SMS tmpl'")
                && line.contains("--target-hwids ids.txt")
                && line.contains("--plugin-dir /p")
                && line.ends_with("--autorun"),
            "{line}"
        );
        assert!(!line.to_lowercase().contains("password"), "{line}");
        assert!(a.password_note().unwrap().contains("CAPMEDIA_DP_PASSWORD"));
        // The quoted line splits back into the same words.
        let words = shlex::split(&line).unwrap();
        assert_eq!(&words[1..], a.capture_argv().as_slice());

        let v = answers(Media::Vhd {
            file: "d.vhd".into(),
            kind: DiskKind::Dynamic,
            size: Capacity::Bytes(1 << 30),
        });
        let argv = v.capture_argv();
        let at = |k: &str| argv[argv.iter().position(|x| x == k).unwrap() + 1].clone();
        assert_eq!(at("--vhd-type"), "dynamic");
        assert_eq!(at("--media-size"), "1073741824");
        assert_eq!(at("--sink"), "vhd");

        let u = answers(Media::UsbDrive {
            device: "/dev/sdz".into(),
            describe: "x".into(),
        });
        let argv = u.capture_argv();
        assert!(!argv.contains(&"--media-size".to_owned()), "{argv:?}");
        assert!(!argv.contains(&"--yes".to_owned()), "{argv:?}");
        assert_eq!(u.media.sink(), "usb-raw");
    }

    #[test]
    fn sizes_parse_back_to_themselves() {
        for s in ["cd", "dvd", "dvd-dl", "unlimited", "16G", "123456"] {
            let c: Capacity = s.parse().unwrap();
            assert_eq!(size_arg(c).parse::<Capacity>().unwrap(), c, "{s}");
        }
        assert!(parse_disk_size("dvd").unwrap_err().contains("disc size"));
        assert_eq!(parse_disk_size("1G").unwrap(), Capacity::Bytes(1 << 30));
        assert!(parse_disk_size("lots").is_err());
        assert_eq!(parse_disc_size("cd").unwrap().disc_preset(), Some("cd"));
    }

    #[test]
    fn output_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.iso");
        assert_eq!(check_output_file(&f), Ok(false));
        std::fs::write(&f, b"x").unwrap();
        assert_eq!(check_output_file(&f), Ok(true));
        assert!(check_output_file(dir.path())
            .unwrap_err()
            .contains("is a folder"));
        assert!(check_output_file(&dir.path().join("no/a.iso"))
            .unwrap_err()
            .contains("does not exist"));
        assert!(check_output_file(Path::new("/dev/sda"))
            .unwrap_err()
            .contains("drive list"));
        assert!(check_output_file(Path::new("")).is_err());
    }
}
