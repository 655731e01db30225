//! The Debian tools the tests check media with. `cargo xtask test` installs
//! them when missing (as root), or stops naming the exact `apt-get` line: a
//! test is never skipped because a tool is absent.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

/// (command or file the tests use, Debian package providing it)
pub const TOOLS: &[(&str, &str)] = &[
    ("xorriso", "xorriso"),
    ("osirrox", "xorriso"),
    ("isoinfo", "genisoimage"),
    ("mdir", "mtools"),
    ("mcopy", "mtools"),
    ("fsck.fat", "dosfstools"),
    ("mkfs.fat", "dosfstools"),
    ("sgdisk", "gdisk"),
    ("sfdisk", "fdisk"),
    ("wimlib-imagex", "wimtools"),
    ("qemu-img", "qemu-utils"),
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("/usr/share/ovmf/OVMF.fd", "ovmf"),
    ("/usr/sbin/nginx", "nginx-light"),
    ("curl", "curl"),
    ("losetup", "mount"),
    ("objdump", "binutils"),
    ("openssl", "openssl"),
    ("mkfs.ext2", "e2fsprogs"),
    ("setpriv", "util-linux"),
    ("blockdev", "util-linux"),
    ("file", "file"),
    ("hivexregedit", "libwin-hivex-perl"),
    ("hivexml", "libhivex-bin"),
    ("hivexsh", "libhivex-bin"),
    ("reged", "chntpw"),
    ("lspci", "pciutils"),
    (
        "/usr/share/doc/qemu-system-data/qemupciserial.inf",
        "qemu-system-data",
    ),
    ("vhdiinfo", "libvhdi-utils"),
    // The BLAKE3 disk sinks report for their image files.
    ("b3sum", "b3sum"),
    ("man", "man-db"),
    // The NTLM test DP (capmedia-testdp python/ntlm_dp.py); it also needs
    // pyspnego from PyPI, which `ensure` installs with pip (see `pyspnego`).
    ("python3", "python3"),
    ("pip3", "python3-pip"),
    ("groff", "groff-base"),
    ("/usr/sbin/smbd", "samba"),
    ("smbpasswd", "samba-common-bin"),
    ("smbclient", "smbclient"),
    // The Kerberos tests: an MIT KDC made in a temp folder (capmedia-testdp
    // `Kdc`), kinit into a temp ticket cache, and the test DP's acceptor in
    // Debian's Python (python3-gssapi). capmedia itself opens
    // libgssapi_krb5.so.2 (libgssapi-krb5-2, which krb5-user pulls in).
    ("/usr/sbin/krb5kdc", "krb5-kdc"),
    ("/usr/sbin/kdb5_util", "krb5-kdc"),
    ("/usr/sbin/kadmin.local", "krb5-admin-server"),
    ("kinit", "krb5-user"),
    (
        "/usr/lib/python3/dist-packages/gssapi/__init__.py",
        "python3-gssapi",
    ),
];

fn present(tool: &str) -> bool {
    if tool.starts_with('/') {
        return Path::new(tool).exists();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(tool).is_file())
}

/// The packages whose tools are missing, deduplicated, in table order.
pub fn missing() -> Vec<&'static str> {
    missing_of(TOOLS)
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// What capmedia itself needs at run time: wimlib's decompressors
/// (`libwim.so.15`, Debian `libwim15`, which `wimtools` pulls in) to read
/// inside compressed boot images such as the sample's.
pub const RUNTIME: &[(&str, &str)] = &[("wimlib-imagex", "wimtools")];

/// The packages of `table` whose tools are missing, deduplicated.
fn missing_of(table: &[(&str, &'static str)]) -> Vec<&'static str> {
    let mut pkgs: Vec<&str> = Vec::new();
    for (tool, pkg) in table {
        if !present(tool) && !pkgs.contains(pkg) {
            pkgs.push(pkg);
        }
    }
    pkgs
}

/// Install (as root) or name what `cargo xtask demo` needs.
pub fn ensure_runtime() -> Result<()> {
    install(missing_of(RUNTIME), true, "capmedia needs")
}

pub fn ensure(install_them: bool) -> Result<()> {
    install(missing(), install_them, "the tests need")?;
    pyspnego(install_them)
}

/// The NTLM test DP's acceptor, pyspnego, is on PyPI only (not in Debian):
/// installed with pip when missing, as root, so `cargo xtask test` works on a
/// fresh machine as README says.
fn pyspnego(install: bool) -> Result<()> {
    let have = || {
        Command::new("python3")
            .args(["-c", "import spnego"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if have() {
        return Ok(());
    }
    let line = "python3 -m pip install pyspnego";
    if !install || !is_root() {
        bail!("the tests need the Python package pyspnego; run as root:\n  {line}");
    }
    eprintln!("xtask: installing pyspnego (pip)");
    // Debian marks its Python "externally managed": pip then needs
    // --break-system-packages, which older pips do not know.
    let plain = Command::new("python3")
        .args(["-m", "pip", "install", "-q", "pyspnego"])
        .status()
        .is_ok_and(|s| s.success());
    if !plain {
        crate::run(Command::new("python3").args([
            "-m",
            "pip",
            "install",
            "-q",
            "--break-system-packages",
            "pyspnego",
        ]))?;
    }
    if !have() {
        bail!("pyspnego still missing after installing it; run:\n  {line}");
    }
    Ok(())
}

fn install(pkgs: Vec<&'static str>, install: bool, who: &str) -> Result<()> {
    if pkgs.is_empty() {
        return Ok(());
    }
    let line = format!("apt-get update && apt-get install -y {}", pkgs.join(" "));
    if !install || !is_root() {
        bail!("{who} Debian packages that are missing; run as root:\n  {line}");
    }
    eprintln!("xtask: installing {}", pkgs.join(" "));
    crate::run(Command::new("apt-get").arg("update").arg("-qq"))?;
    crate::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&pkgs)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    let now_missing = [missing(), missing_of(RUNTIME)].concat();
    let still: Vec<&str> = pkgs
        .iter()
        .copied()
        .filter(|p| now_missing.contains(p))
        .collect();
    if !still.is_empty() {
        bail!(
            "still missing after installing: {}; run:\n  {line}",
            still.join(" ")
        );
    }
    Ok(())
}
