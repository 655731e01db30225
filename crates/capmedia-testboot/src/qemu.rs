//! Booting a medium under qemu and waiting for a marker on the serial console.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Where Debian's `ovmf` package puts the x64 UEFI firmware.
pub const OVMF_PATH: &str = "/usr/share/ovmf/OVMF.fd";
/// The emulator [`qemu_boot`] runs (Debian package `qemu-system-x86`).
pub const QEMU_PROGRAM: &str = "qemu-system-x86_64";

/// Why a qemu boot did not show the marker.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// A program is not installed.
    #[error("{program} not found (looked in PATH, /usr/sbin, /sbin): install the Debian package {package}")]
    ToolMissing { program: String, package: String },
    /// The firmware named with `-bios` does not exist.
    #[error("firmware {} not found: install the Debian package ovmf", path.display())]
    FirmwareMissing { path: PathBuf },
    /// qemu could not be started or its output not read.
    #[error("cannot run {QEMU_PROGRAM}: {0}")]
    Io(#[from] std::io::Error),
    /// The marker did not appear before the deadline; qemu was killed.
    #[error("marker {marker:?} not seen within {timeout:?}; serial output:\n{output}\nqemu stderr:\n{stderr}")]
    Timeout {
        marker: String,
        timeout: Duration,
        output: String,
        stderr: String,
    },
    /// qemu ended by itself before printing the marker.
    #[error("{QEMU_PROGRAM} exited ({status}) without printing marker {marker:?}; serial output:\n{output}\nqemu stderr:\n{stderr}")]
    Exited {
        marker: String,
        status: String,
        output: String,
        stderr: String,
    },
}

impl QemuError {
    /// The serial output captured before the failure, if qemu ran at all.
    pub fn output(&self) -> Option<&str> {
        match self {
            QemuError::Timeout { output, .. } | QemuError::Exited { output, .. } => Some(output),
            _ => None,
        }
    }
}

/// Finds `program` on PATH (plus /usr/sbin and /sbin, where dosfstools puts
/// `mkfs.fat` and which non-root PATHs often lack), or fails naming the Debian
/// `package` to install. Tests use it so a missing tool fails loudly.
pub fn require_tool(program: &str, package: &str) -> Result<PathBuf, QemuError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs =
        std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")]);
    for dir in dirs {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(QemuError::ToolMissing {
        program: program.to_owned(),
        package: package.to_owned(),
    })
}

/// Kills the qemu run when dropped, so a panicking caller leaves nothing behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.0.try_wait() {
            return;
        }
        // The child is `timeout`, which passes SIGTERM on to qemu and exits;
        // SIGKILL would kill only `timeout` and orphan qemu.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// qemu runs at once in this process. Firmware under TCG measures its
/// device timeouts in host time: with every test of a binary booting at once
/// on a small, busy machine a guest can starve long enough for SeaBIOS to
/// give up on a disk (a CI run saw a boot that works alone fail so). Two
/// at a time keeps the cores busy without starving anyone;
/// `CAPMEDIA_QEMU_JOBS` overrides it.
fn qemu_jobs() -> usize {
    std::env::var("CAPMEDIA_QEMU_JOBS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(2)
}

static RUNNING: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// A qemu slot, given back when dropped.
struct Slot;

impl Slot {
    fn take() -> Slot {
        let limit = qemu_jobs();
        let mut n = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        while *n >= limit {
            n = FREED.wait(n).unwrap_or_else(|p| p.into_inner());
        }
        *n += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut n = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        FREED.notify_one();
    }
}

fn has(args: &[&str], flag: &str) -> bool {
    args.contains(&flag)
}

/// Boot qemu-system-x86_64 with `args` (e.g. `["-cdrom", x]` or
/// `["-bios", OVMF_PATH, "-drive", ...]`) plus, unless `args` already say
/// otherwise, `-nographic -serial stdio -monitor none -no-reboot -m 256`; read
/// the serial output until `marker` appears or `timeout` passes, then stop qemu.
/// Ok(output) when the marker was seen, Err (carrying the output) otherwise.
///
/// qemu runs under coreutils `timeout` (timeout + 30 s) as a second bound, so
/// it cannot outlive a crashed caller for long. Missing qemu or a missing
/// `-bios` file is an error naming the Debian package (qemu-system-x86 / ovmf).
pub fn qemu_boot(args: &[&str], marker: &str, timeout: Duration) -> Result<String, QemuError> {
    let qemu = require_tool(QEMU_PROGRAM, "qemu-system-x86")?;
    let timeout_prog = require_tool("timeout", "coreutils")?;
    for pair in args.windows(2) {
        if pair[0] == "-bios" && !Path::new(pair[1]).is_file() {
            return Err(QemuError::FirmwareMissing {
                path: PathBuf::from(pair[1]),
            });
        }
    }

    let mut full: Vec<&str> = args.to_vec();
    if !has(args, "-nographic") && !has(args, "-display") {
        full.push("-nographic");
    }
    for (flag, value) in [("-serial", "stdio"), ("-monitor", "none"), ("-m", "256")] {
        if !has(args, flag) {
            full.extend([flag, value]);
        }
    }
    if !has(args, "-no-reboot") {
        full.push("-no-reboot");
    }

    // Declared before the child so it is given back after qemu is stopped.
    let _slot = Slot::take();
    let hard_bound = timeout.as_secs().saturating_add(30);
    let mut child = Command::new(timeout_prog)
        .args(["--kill-after=5", &hard_bound.to_string()])
        .arg(qemu)
        .args(&full)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut running = Running(child);

    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    if let Some(mut out) = stdout {
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
    }
    let err_thread = stderr.map(|mut err| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = err.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    });
    let collect_stderr = |t: Option<std::thread::JoinHandle<String>>| {
        t.and_then(|t| t.join().ok()).unwrap_or_default()
    };

    let deadline = Instant::now() + timeout;
    let needle = marker.as_bytes();
    let mut output = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => {
                output.extend_from_slice(&chunk);
                if !needle.is_empty() && output.windows(needle.len()).any(|w| w == needle) {
                    drop(running);
                    return Ok(String::from_utf8_lossy(&output).into_owned());
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                drop(running);
                return Err(QemuError::Timeout {
                    marker: marker.to_owned(),
                    timeout,
                    output: String::from_utf8_lossy(&output).into_owned(),
                    stderr: collect_stderr(err_thread),
                });
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = running.0.wait()?;
                return Err(QemuError::Exited {
                    marker: marker.to_owned(),
                    status: status.to_string(),
                    output: String::from_utf8_lossy(&output).into_owned(),
                    stderr: collect_stderr(err_thread),
                });
            }
        }
    }
}
