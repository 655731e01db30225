//! `capmedia wizard` driven as a person drives it: the real binary in a
//! pseudo-terminal (expectrl), keys typed, its screens rendered by a
//! terminal emulator (vt100), on the bundled sample DP, with the real sink
//! plugins (`cargo build --workspace` first). Outputs are checked by
//! `capmedia verify` and by tools nobody here wrote (xorriso, sfdisk,
//! vhdiinfo).
//!
//! Issue 17's acceptance: one run per media type to a finished, verified
//! output (USB image file, CD/DVD set, VHD); one that goes back a page
//! (the CD/DVD run, and the plain-prompt run); one cancelled mid-way
//! (nothing written, an existing output untouched); the printed (saved)
//! command, run on its own with SOURCE_DATE_EPOCH, builds byte-identical
//! media (the VHD run).
//!
//! The screens of `docs/wizard.md` come from these runs:
//! `CAPMEDIA_UPDATE_DOCS=1 cargo test -p capmedia-cli --test wizard`
//! rewrites them; without it each test checks that its pages are there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use expectrl::Session;
use expectrl::WaitStatus;

/// A fixed epoch, so outputs are comparable between runs.
const EPOCH: &str = "1700000000";
/// A bound for one prompt to appear, not a speed assertion.
const PROMPT_BOUND: Duration = Duration::from_secs(120);
/// A bound for the capture itself, not a speed assertion.
const RUN_BOUND: Duration = Duration::from_secs(900);
/// The pty's size: room for a page without scrolling.
const COLS: u16 = 110;
const ROWS: u16 = 60;

const ENTER: &str = "\r";
const ESC: &str = "\x1b";
const CTRL_C: &str = "\x03";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_capmedia"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Fail loudly (not skip) when the sink plugins were not built.
fn require_plugins() {
    for name in ["iso_set", "usb_raw", "vhd"] {
        let lib = bin_dir().join(format!(
            "{}capmedia_plugin_{name}.{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_EXTENSION
        ));
        assert!(
            lib.is_file(),
            "{} is missing: run `cargo build --workspace` before these tests",
            lib.display()
        );
    }
}

/// Fail (not skip) when a checking tool is missing, naming the package.
fn tool(name: &str, package: &str) -> Command {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    assert!(
        found,
        "{name} is missing: apt-get update && apt-get install -y {package}"
    );
    Command::new(name)
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A folder to run in, holding the sample DP at `dp/SCCMContentLib`, so
/// that the paths typed and shown are short and the same on every machine.
fn workdir() -> tempfile::TempDir {
    require_plugins();
    let dir = tempfile::Builder::new()
        .prefix("wizard-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    capmedia_sample::write_sample_dp(&dir.path().join("dp")).unwrap();
    dir
}

/// Files under `dir`, relative, except the sample DP.
fn files_besides_dp(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "dp")
        .collect();
    out.sort();
    out
}

/// The wizard in a pseudo-terminal, with a terminal emulator fed with all
/// it prints.
struct Wizard {
    session: Session,
    /// What a prompt's drawing ends with.
    help_end: &'static str,
    screen: vt100::Parser,
    shots: Vec<(String, String)>,
}

impl Wizard {
    fn spawn(dir: &Path, term: &str) -> Wizard {
        Wizard::spawn_with(dir, term, &[])
    }

    /// [`Wizard::spawn`] with more environment (a Kerberos realm's).
    fn spawn_with(dir: &Path, term: &str, env: &[(&str, &Path)]) -> Wizard {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_capmedia"));
        cmd.envs(env.iter().copied());
        cmd.args(["wizard", "--cache", "cache"])
            .current_dir(dir)
            // The plugins through the environment, so that the command the
            // wizard prints is the one a user sees.
            .env("CAPMEDIA_PLUGIN_PATH", bin_dir())
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .env("TERM", term)
            .env("NO_COLOR", "1")
            .env_remove("CAPMEDIA_DP_PASSWORD");
        let mut session = Session::spawn(cmd).expect("spawning capmedia wizard in a pty");
        session
            .get_process_mut()
            .set_window_size(COLS, ROWS)
            .unwrap();
        session.set_expect_timeout(Some(PROMPT_BOUND));
        Wizard {
            session,
            help_end: if term == "dumb" {
                ": "
            } else {
                "Ctrl-C: quit]"
            },
            screen: vt100::Parser::new(ROWS, COLS, 0),
            shots: Vec::new(),
        }
    }

    /// Wait for `text`; everything printed up to it goes to the screen.
    fn wait(&mut self, text: &str) {
        match self.session.expect(text) {
            Ok(c) => self.screen.process(c.as_bytes()),
            Err(e) => panic!(
                "waiting for {text:?}: {e}\nscreen:\n{}",
                self.screen.screen().contents()
            ),
        }
    }

    /// Wait for the question `q` and for its prompt to be drawn in full
    /// (the key help is drawn last).
    fn ask(&mut self, q: &str) {
        self.wait(q);
        self.wait(self.help_end);
        // The prompt is drawn before the terminal is switched to raw mode
        // for reading; keys typed in between can be dropped by that switch
        // (a fresh-clone CI run lost "CD/DVD" on the first page). A short
        // settle makes the keys arrive once the prompt reads them.
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    fn keys(&mut self, k: &str) {
        self.session.send(k).unwrap();
    }

    /// The current page as the terminal shows it: from its heading down.
    fn page_text(&self, heading: &str) -> String {
        let contents = self.screen.screen().contents();
        let lines: Vec<&str> = contents.lines().collect();
        let start = lines
            .iter()
            .rposition(|l| l.contains(heading))
            .unwrap_or_else(|| panic!("no {heading:?} on the screen:\n{contents}"));
        // Up to the next page's heading, if the terminal shows one.
        let end = lines[start + 1..]
            .iter()
            .position(|l| l.starts_with("── "))
            .map_or(lines.len(), |n| start + 1 + n);
        let mut page: Vec<&str> = lines[start..end].iter().map(|l| l.trim_end()).collect();
        while page.last().is_some_and(|l| l.is_empty()) {
            page.pop();
        }
        page.join("\n")
    }

    /// Keep the current page's screen for docs/wizard.md.
    fn shot(&mut self, name: &str, heading: &str) -> String {
        let text = self.page_text(heading);
        self.shots.push((name.to_owned(), text.clone()));
        text
    }

    /// Wait for the end (bounded) and return the exit code and everything
    /// printed after the last wait.
    fn finish(mut self) -> (Option<i32>, String, Vec<(String, String)>) {
        self.session.set_expect_timeout(Some(RUN_BOUND));
        let rest = match self.session.expect(expectrl::Eof) {
            Ok(c) => String::from_utf8_lossy(c.as_bytes()).into_owned(),
            Err(e) => panic!(
                "waiting for the end: {e}\nscreen:\n{}",
                self.screen.screen().contents()
            ),
        };
        let code = match self.session.get_process().wait().unwrap() {
            WaitStatus::Exited(_, code) => Some(code),
            _ => None,
        };
        (code, rest, self.shots)
    }
}

/// docs/wizard.md: each screen between `<!-- screen:NAME -->` and
/// `<!-- /screen -->`. With CAPMEDIA_UPDATE_DOCS=1 the screens of a run are
/// written in; otherwise each must be there.
fn docs_screens(shots: &[(String, String)]) {
    static DOC: Mutex<()> = Mutex::new(());
    let _lock = DOC.lock().unwrap_or_else(|e| e.into_inner());
    let path = root().join("docs/wizard.md");
    let mut doc = fs::read_to_string(&path).unwrap();
    let update = std::env::var_os("CAPMEDIA_UPDATE_DOCS").is_some();
    for (name, text) in shots {
        let open = format!("<!-- screen:{name} -->\n");
        let close = "<!-- /screen -->";
        let start = doc
            .find(&open)
            .unwrap_or_else(|| panic!("docs/wizard.md has no {open:?} section"))
            + open.len();
        let end = start + doc[start..].find(close).unwrap();
        if update {
            doc.replace_range(start..end, &format!("```text\n{text}\n```\n"));
        } else {
            assert!(
                doc[start..end].contains("```text\n") && doc[start..end].len() > 20,
                "docs/wizard.md's {name} screen is empty: run CAPMEDIA_UPDATE_DOCS=1 cargo test -p capmedia-cli --test wizard"
            );
        }
    }
    if update {
        fs::write(&path, doc).unwrap();
    }
}

/// The pages every run shares after the medium: DP, boot image, target,
/// options; stops on the summary (its screen kept) and returns the command
/// it shows.
fn common_pages(w: &mut Wizard, shots: bool) -> String {
    w.ask("Distribution point");
    w.keys(&format!("dp/SCCMContentLib{ENTER}"));
    w.ask("Which boot image package?");
    if shots {
        w.shot("dp", "── Distribution point");
        w.shot("boot-image", "── Boot image package");
    }
    w.keys(&format!("PS100001{ENTER}"));
    w.ask("What is the reference computer's architecture?");
    // x86 is refused on the page for an x64 boot image, with the rule.
    w.keys(&format!("x86:{ENTER}"));
    w.wait("the boot image is x64 but the target computer is x86");
    w.ask("What is the reference computer's architecture?");
    if shots {
        w.shot("target", "── Target computer");
    }
    w.keys(&format!("x64:{ENTER}"));
    option_defaults(w);
    let summary = w.page_text("── Summary");
    if shots {
        w.shot("options", "── Options");
        w.shot("summary", "── Summary");
    }
    summary
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("capmedia capture "))
        .unwrap_or_else(|| panic!("no command on the summary:\n{summary}"))
        .to_owned()
}

/// The options page with every default taken, up to the summary's question.
fn option_defaults(w: &mut Wizard) {
    for q in [
        "Media label",
        "Write autorun.inf",
        "Media template folder",
        "Hardware id file",
    ] {
        w.ask(q);
        w.keys(ENTER);
    }
    w.ask("Create?");
}

fn verify(dir: &Path, out: &str) {
    let o = Command::new(env!("CARGO_BIN_EXE_capmedia"))
        .args(["verify", out, "--plugin-dir"])
        .arg(bin_dir())
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
}

#[test]
fn usb_image_file_to_a_verified_image() {
    let dir = workdir();
    let mut w = Wizard::spawn(dir.path(), "xterm");
    w.ask("Which media do you want to create?");
    w.shot("media-type", "── Media type");
    w.keys(&format!("USB flash{ENTER}"));
    w.ask("Which drive?");
    w.shot("usb", "── USB flash drive");
    w.keys(&format!("image file{ENTER}"));
    w.ask("Image file to write");
    w.keys(&format!("capture.img{ENTER}"));
    w.ask("Size of the stick?");
    w.shot("usb-image", "── USB flash drive: image file");
    w.keys(&format!("smallest{ENTER}"));
    let command = common_pages(&mut w, true);
    assert!(
        command.contains("--sink usb-raw --out capture.img --media-size unlimited"),
        "{command}"
    );
    w.keys(&format!("Create the media{ENTER}"));
    let (code, rest, shots) = w.finish();
    assert_eq!(code, Some(0), "{rest}");
    assert!(rest.contains("verified by"), "the capture's report: {rest}");
    verify(dir.path(), "capture.img");
    let o = tool("sfdisk", "fdisk")
        .args(["--dump", "capture.img"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("type=c"),
        "a FAT32 (LBA) partition: {}",
        show(&o)
    );
    docs_screens(&shots);
}

#[test]
fn cd_dvd_set_with_a_step_back() {
    let dir = workdir();
    // An existing output: the page warns that it is kept until the new set
    // is complete.
    fs::write(dir.path().join("old.iso"), b"the previous set").unwrap();
    let mut w = Wizard::spawn(dir.path(), "xterm");
    w.ask("Which media do you want to create?");
    w.keys(&format!("CD/DVD{ENTER}"));
    w.ask("Media size (one disc)?");
    w.keys(&format!("dvd:{ENTER}"));
    w.ask("Output file");
    w.keys(&format!("old.iso{ENTER}"));
    w.wait("It is kept, untouched, until the new set is complete and verified");
    w.ask("Replace it then?");
    w.shot("cd-dvd", "── CD/DVD set");
    w.keys(&format!("y{ENTER}"));
    w.ask("Distribution point");
    // Back a page: the CD/DVD page again, the answers given offered again.
    w.keys(ESC);
    w.wait("── CD/DVD set");
    w.ask("Media size (one disc)?");
    w.keys(&format!("cd:{ENTER}"));
    w.ask("Output file");
    // The previous answer is the default; a new one replaces it.
    w.keys(&format!("capture.iso{ENTER}"));
    let command = common_pages(&mut w, false);
    assert!(
        command.contains("--sink iso-set --out capture.iso --media-size cd"),
        "the answers after going back: {command}"
    );
    w.keys(&format!("Create the media{ENTER}"));
    let (code, rest, shots) = w.finish();
    assert_eq!(code, Some(0), "{rest}");
    assert!(rest.contains("verified by"), "{rest}");
    assert_eq!(
        fs::read(dir.path().join("old.iso")).unwrap(),
        b"the previous set",
        "the set first chosen was left when going back"
    );
    verify(dir.path(), "capture.iso");
    let o = tool("xorriso", "xorriso")
        .args(["-indev", "capture.iso", "-report_el_torito", "plain"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(
        report.contains("BIOS") && report.contains("UEFI"),
        "El Torito BIOS and UEFI entries: {}",
        show(&o)
    );
    docs_screens(&shots);
}

#[test]
fn vhd_and_its_saved_command_build_the_same_bytes() {
    let dir = workdir();
    let mut w = Wizard::spawn(dir.path(), "xterm");
    w.ask("Which media do you want to create?");
    w.keys(&format!("VHD ({ENTER}"));
    w.ask("VHD file to write");
    w.keys(&format!("capture.vhd{ENTER}"));
    w.ask("VHD type?");
    w.keys(&format!("dynamic:{ENTER}"));
    w.ask("Size of the virtual disk?");
    w.shot("vhd", "── Virtual hard disk");
    w.keys(&format!("smallest{ENTER}"));
    let command = common_pages(&mut w, false);
    assert!(
        command.contains("--sink vhd --out capture.vhd --media-size unlimited --vhd-type dynamic"),
        "{command}"
    );
    w.keys(&format!("Save the command{ENTER}"));
    w.ask("Save the command to");
    w.keys(&format!("capture.sh{ENTER}"));
    w.wait("saved to capture.sh");
    w.ask("Create?");
    w.keys(&format!("Create the media{ENTER}"));
    let (code, rest, shots) = w.finish();
    assert_eq!(code, Some(0), "{rest}");
    assert!(rest.contains("verified by"), "{rest}");
    verify(dir.path(), "capture.vhd");
    let o = tool("vhdiinfo", "libvhdi-utils")
        .arg("capture.vhd")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Dynamic"),
        "a dynamic VHD: {}",
        show(&o)
    );

    // The saved command, run on its own by a shell, builds the same bytes.
    let script = fs::read_to_string(dir.path().join("capture.sh")).unwrap();
    assert!(script.contains(&command), "{script}");
    fs::rename(
        dir.path().join("capture.vhd"),
        dir.path().join("wizard.vhd"),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new("sh")
        .arg("capture.sh")
        .current_dir(dir.path())
        .env("PATH", path)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("CAPMEDIA_PLUGIN_PATH", bin_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        fs::read(dir.path().join("capture.vhd")).unwrap()
            == fs::read(dir.path().join("wizard.vhd")).unwrap(),
        "the command's VHD differs from the wizard's"
    );
    docs_screens(&shots);
}

#[test]
fn ctrl_c_mid_way_writes_nothing() {
    let dir = workdir();
    fs::write(dir.path().join("capture.iso"), b"the previous set").unwrap();
    let before = files_besides_dp(dir.path());
    let mut w = Wizard::spawn(dir.path(), "xterm");
    w.ask("Which media do you want to create?");
    w.keys(&format!("CD/DVD{ENTER}"));
    w.ask("Media size (one disc)?");
    w.keys(&format!("dvd:{ENTER}"));
    w.ask("Output file");
    w.keys(&format!("capture.iso{ENTER}"));
    w.ask("Replace it then?");
    w.keys(&format!("y{ENTER}"));
    w.ask("Distribution point");
    w.keys(&format!("dp/SCCMContentLib{ENTER}"));
    w.ask("Which boot image package?");
    w.keys(&format!("PS100001{ENTER}"));
    w.ask("What is the reference computer's architecture?");
    w.keys(CTRL_C);
    let (code, rest, _) = w.finish();
    assert_eq!(code, Some(130), "{rest}");
    assert!(rest.contains("nothing was written"), "{rest}");
    assert_eq!(files_besides_dp(dir.path()), before);
    assert_eq!(
        fs::read(dir.path().join("capture.iso")).unwrap(),
        b"the previous set"
    );
}

/// Issue 15: an http(s):// DP and a `user@REALM` account whose ticket is
/// in the cache: the DP page asks no password, reads the DP with the
/// ticket (a Kerberos-only test DP), and the summary says the command
/// needs the ticket, not a password.
#[test]
fn kerberos_ticket_stands_in_for_the_password() {
    use capmedia_testdp::{Kdc, NtlmDp, KRB_REALM};
    let dir = workdir();
    let kdc = Kdc::start().unwrap_or_else(|e| panic!("{e}"));
    let alice = kdc.add_principal("alice").unwrap();
    let http = kdc.add_principal("HTTP/127.0.0.1").unwrap();
    let ccache = dir.path().join("cc");
    kdc.kinit("alice", &alice, &ccache).unwrap();
    let dp = NtlmDp::start_kerberos(&dir.path().join("dp/SCCMContentLib"), &kdc, &http)
        .unwrap_or_else(|e| panic!("{e}"));
    let conf = kdc.krb5_conf();
    let mut w = Wizard::spawn_with(
        dir.path(),
        "xterm",
        &[("KRB5_CONFIG", &conf), ("KRB5CCNAME", &ccache)],
    );
    w.ask("Which media do you want to create?");
    w.keys(&format!("CD/DVD{ENTER}"));
    w.ask("Media size (one disc)?");
    w.keys(&format!("dvd:{ENTER}"));
    w.ask("Output file");
    w.keys(&format!("capture.iso{ENTER}"));
    w.ask("Distribution point");
    w.keys(&format!("{}{ENTER}", dp.url()));
    w.ask("Windows account to read it as");
    w.keys(&format!("alice@{KRB_REALM}{ENTER}"));
    // Next comes this note, not a password prompt (that would stop here).
    w.wait("no password needed");
    w.ask("Which boot image package?");
    w.keys(&format!("PS100001{ENTER}"));
    w.ask("What is the reference computer's architecture?");
    w.keys(&format!("x64:{ENTER}"));
    option_defaults(&mut w);
    let summary = w.page_text("── Summary");
    assert!(
        summary.contains(&format!("--dp-user alice@{KRB_REALM}"))
            && summary.contains("logs on with its Kerberos ticket"),
        "{summary}"
    );
    w.keys(&format!("Cancel{ENTER}"));
    let (code, rest, _) = w.finish();
    assert_eq!(code, Some(130), "{rest}");
    assert!(
        dp.log()
            .contains(&format!("user=alice@{KRB_REALM} mech=kerberos")),
        "the DP was read with the ticket: {}",
        dp.log()
    );
}

#[test]
fn term_dumb_gives_plain_prompts_with_back_and_reasons() {
    let dir = workdir();
    let before = files_besides_dp(dir.path());
    let mut w = Wizard::spawn(dir.path(), "dumb");
    w.wait("Which media do you want to create?");
    w.wait("choose 1-4");
    w.keys(&format!("2{ENTER}"));
    w.wait("Media size (one disc)?");
    w.wait("choose 1-5");
    w.keys(&format!("2{ENTER}"));
    w.wait("Output file");
    w.keys(&format!("no-such-folder/x.iso{ENTER}"));
    w.wait("does not exist");
    w.wait("Output file");
    w.keys(&format!("x.iso{ENTER}"));
    w.wait("Distribution point");
    // A bad DP is asked again, with the reason.
    w.keys(&format!("nowhere{ENTER}"));
    w.wait("✗ ");
    w.wait("Distribution point");
    w.keys(&format!("<{ENTER}"));
    w.wait("== CD/DVD set");
    w.wait("choose 1-5");
    // End of input leaves the wizard.
    w.keys("\x04");
    let (code, rest, _) = w.finish();
    assert_eq!(code, Some(130), "{rest}");
    assert!(rest.contains("nothing was written"), "{rest}");
    assert_eq!(files_besides_dp(dir.path()), before);
}
