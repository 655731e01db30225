//! Help examples, shell completions and man pages.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

pub const MAIN_HELP: &str = "\
Examples:
  capmedia dp list --dp /srv/SCCMContentLib
  capmedia capture --dp /srv/SCCMContentLib --boot-image PS100005 --sink iso-set --out media.iso --media-size dvd
  capmedia verify media.iso
  capmedia completions bash > /etc/bash_completion.d/capmedia

Exit codes: 0 ok, 1 failure (a refusal, an error, a failed read-back),
2 usage (bad arguments), 130 interrupted (Ctrl-C or SIGTERM).
With --json, every command prints one JSON document on stdout,
{\"capmedia\": 1, \"command\": ..., \"ok\": ..., ...}, errors included
(schemas in docs/schema/).";

pub const CAPTURE_HELP: &str = "\
Media sizes (--media-size): cd (a CD, 650MB), dvd (a single-layer DVD, 4GB),
dvd-dl (a dual-layer DVD, 8GB), unlimited, or bytes with K/M/G (powers of
1024). The disc presets are for iso-set; usb-raw and vhd take a size in bytes
(a stick's size), and for a drive its own size is used.

Examples:
  # An ISO set of DVD-sized volumes, checked first without writing:
  capmedia capture --dp /srv/SCCMContentLib --boot-image PS100005 \\
      --sink iso-set --out /srv/media/capture.iso --media-size dvd --dry-run
  # A USB drive from an HTTP DP, for x64 computers:
  capmedia capture --dp http://dp01/SMS_DP_SMSPKG$ --boot-image PS100005 \\
      --sink usb-raw --out /dev/sdb --target-arch x64
  # A 2 GiB dynamic VHD for a virtual machine, with a JSON report:
  capmedia capture --dp /srv/SCCMContentLib --boot-image PS100005 \\
      --sink vhd --vhd-type dynamic --media-size 2G --out capture.vhd --json";

pub const DP_LIST_HELP: &str = "\
Examples:
  capmedia dp list --dp /mnt/dp01/SCCMContentLib
  capmedia dp list --dp https://dp01/SMS_DP_SMSPKG$ --dp-ca-file ca.pem --json";

pub const INSPECT_HELP: &str = "\
Examples:
  capmedia inspect boot.PS100005.wim
  capmedia inspect efi/boot/bootx64.efi
  capmedia inspect --bcd capture.iso --json";

pub const VERIFY_HELP: &str = "\
Examples:
  capmedia verify capture.iso capture_2.iso
  capmedia verify /dev/sdb
  capmedia verify capture.vhd capture.img media-folder/ --json";

pub const DEVICES_HELP: &str = "\
Examples:
  capmedia devices
  capmedia devices --all --json";

pub const CACHE_HELP: &str = "\
Examples:
  capmedia cache list
  capmedia cache clean --older-than 30
  capmedia cache clean --cache /var/cache/capmedia";

pub const CACHE_LIST_HELP: &str = "\
Examples:
  capmedia cache list
  capmedia cache list --cache /var/cache/capmedia --json";

pub const CACHE_CLEAN_HELP: &str = "\
Examples:
  capmedia cache clean
  capmedia cache clean --older-than 30
  capmedia cache clean --cache /var/cache/capmedia";

pub const PLUGINS_HELP: &str = "\
Examples:
  capmedia plugins
  capmedia plugins --plugin-dir ./my-sinks --json";

pub const COMPLETIONS_HELP: &str = "\
Examples:
  capmedia completions bash > ~/.local/share/bash-completion/completions/capmedia
  capmedia completions zsh > ~/.zfunc/_capmedia
  capmedia completions fish > ~/.config/fish/completions/capmedia.fish
  capmedia completions powershell >> $PROFILE";

/// `capmedia completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut cmd = crate::cli_command();
    clap_complete::generate(shell, &mut cmd, "capmedia", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// One man page per command and subcommand (`capmedia.1`,
/// `capmedia-capture.1`, `capmedia-dp-list.1`, ...), hidden ones left out.
pub fn man_pages(dir: &Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut cmd = crate::cli_command();
    cmd.build();
    write_man(&cmd, "capmedia", dir)?;
    Ok(ExitCode::SUCCESS)
}

fn write_man(cmd: &clap::Command, name: &str, dir: &Path) -> anyhow::Result<()> {
    let page = cmd.clone().display_name(name.to_owned());
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out)?;
    let file = dir.join(format!("{name}.1"));
    std::fs::write(&file, out).with_context(|| format!("cannot write {}", file.display()))?;
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        write_man(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}
