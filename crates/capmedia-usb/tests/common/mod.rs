#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use capmedia_content::{EntryRole, EntrySource, MediaPath, MediaPlan, PlanBuilder, PlanEntry};
use capmedia_sink::{Cancel, Progress};

/// Runs a tool; a missing tool fails the test naming its Debian package.
pub fn run(tool: &str, package: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(tool)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {tool} ({e}): install the Debian package {package}")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The BLAKE3 of a file by the `b3sum` tool.
pub fn b3sum(file: &Path) -> String {
    let (ok, text) = run("b3sum", "b3sum", &["--no-names", file.to_str().unwrap()]);
    assert!(ok, "{text}");
    text.trim().to_owned()
}

pub fn source_tree(dir: &Path) {
    let files: &[(&str, usize)] = &[
        ("bootmgr", 4097),
        ("efi/boot/bootx64.efi", 12345),
        ("efi/microsoft/boot/bcd", 8192),
        ("sources/boot.wim", (2 << 20) + 3),
        ("SMS/data/TsmBootstrap.ini", 30),
        (
            "A long folder name/another long folder name/a long file name.txt",
            999,
        ),
    ];
    for (i, (p, n)) in files.iter().enumerate() {
        let host = dir.join(p);
        fs::create_dir_all(host.parent().unwrap()).unwrap();
        fs::write(
            &host,
            (0..*n).map(|k| (k * 7 + i) as u8).collect::<Vec<u8>>(),
        )
        .unwrap();
    }
}

pub fn plan(src: &Path, output: &Path, options: &[(&str, &str)]) -> MediaPlan {
    let mut b = PlanBuilder::new("Configuration Manager", "usb-raw", output);
    b.add_tree("", src, EntryRole::Template, "template")
        .unwrap();
    b.add_bytes(
        "MediaLabel.txt",
        b"label=Configuration Manager".to_vec(),
        EntryRole::Generated,
        "boot",
    )
    .unwrap();
    let mut b = b.source_date_epoch(1_700_000_000);
    for (k, v) in options {
        b = b.option(k, v);
    }
    b.build().unwrap()
}

pub fn fake_entry(path: &str, size: u64) -> PlanEntry {
    PlanEntry {
        path: MediaPath::new(path).unwrap(),
        source: EntrySource::File(PathBuf::from("/nonexistent")),
        size,
        blake3: String::new(),
        role: EntryRole::Package,
        group: "g".into(),
    }
}

/// Temporaries the sink left in `dir`.
pub fn temps(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("capmedia-tmp"))
        .collect()
}

#[derive(Debug, Default)]
pub struct Recorder {
    pub writes: AtomicU64,
    pub verifies: AtomicU64,
    pub messages: std::sync::Mutex<Vec<String>>,
}

impl Progress for Recorder {
    fn update(&self, phase: &str, _: u64, _: u64) {
        match phase {
            "write" => self.writes.fetch_add(1, Ordering::Relaxed),
            _ => self.verifies.fetch_add(1, Ordering::Relaxed),
        };
    }
    fn message(&self, text: &str) {
        self.messages.lock().unwrap().push(text.to_owned());
    }
}

/// Cancels after `after` questions.
#[derive(Debug)]
pub struct CancelAfter {
    pub after: u64,
    pub asked: AtomicU64,
    pub fired: AtomicBool,
}

impl Cancel for CancelAfter {
    fn is_cancelled(&self) -> bool {
        let n = self.asked.fetch_add(1, Ordering::Relaxed);
        let c = n >= self.after;
        if c {
            self.fired.store(true, Ordering::Relaxed);
        }
        c
    }
}
