//! Progress on stderr: bars with bytes, rate and ETA on a terminal; plain
//! lines otherwise (logs, CI).

use std::collections::HashSet;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use capmedia_driver::Events;
use indicatif::{ProgressBar, ProgressStyle};

/// How much goes to stderr: `-q` errors only, `-v` more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet = 0,
    Normal = 1,
    Verbose = 2,
}

static VERBOSITY: AtomicU8 = AtomicU8::new(Verbosity::Normal as u8);

/// Set once by `main` from `-q`/`-v`.
pub fn set_verbosity(v: Verbosity) {
    VERBOSITY.store(v as u8, Ordering::Relaxed);
}

pub fn verbosity() -> Verbosity {
    match VERBOSITY.load(Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        2 => Verbosity::Verbose,
        _ => Verbosity::Normal,
    }
}

/// A line for `-v` only.
pub fn verbose(line: &str) {
    if verbosity() == Verbosity::Verbose {
        eprintln!("capmedia: {line}");
    }
}

/// The bar's template: at most 80 columns with the widest values (see the
/// test below): 7 + 2 + 16 + 2 + 23 + 1 + 13 + 5 + 8.
const BAR_TEMPLATE: &str =
    "{prefix:>7} [{bar:16}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta_precise}";

#[derive(Debug)]
pub struct Ui {
    tty: bool,
    /// Messages already printed: notes are printed once even when a stage
    /// repeats them.
    seen: Mutex<HashSet<String>>,
    /// The current stage and when it began, for `-v`.
    stage: Mutex<Option<(String, Instant)>>,
    bar: Mutex<Option<(String, ProgressBar)>>,
    /// For plain output: the last tenth printed per phase.
    last_tenth: Mutex<(String, u64)>,
    cancelled: Arc<AtomicBool>,
}

impl Ui {
    pub fn new(cancelled: Arc<AtomicBool>) -> Ui {
        Ui {
            tty: std::io::stderr().is_terminal(),
            seen: Mutex::new(HashSet::new()),
            stage: Mutex::new(None),
            bar: Mutex::new(None),
            last_tenth: Mutex::new((String::new(), u64::MAX)),
            cancelled,
        }
    }

    pub fn finish(&self) {
        if let Ok(mut g) = self.bar.lock() {
            if let Some((_, b)) = g.take() {
                b.finish();
            }
        }
        self.end_stage();
    }

    /// `-v`: the stage that just ended, with its time.
    fn end_stage(&self) {
        if let Some((name, began)) = self.stage.lock().ok().and_then(|mut g| g.take()) {
            verbose(&format!(
                "{name} done in {:.2}s",
                began.elapsed().as_secs_f64()
            ));
        }
    }

    fn bar_for(&self, phase: &str, total: u64) -> Option<ProgressBar> {
        let mut g = self.bar.lock().ok()?;
        if g.as_ref().map(|(p, _)| p.as_str()) != Some(phase) {
            if let Some((_, old)) = g.take() {
                old.finish();
            }
            let style = ProgressStyle::with_template(BAR_TEMPLATE)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let b = ProgressBar::new(total)
                .with_style(style)
                .with_prefix(phase.to_owned());
            *g = Some((phase.to_owned(), b));
        }
        g.as_ref().map(|(_, b)| b.clone())
    }
}

/// Install the Ctrl-C handler: the first press asks the pipeline to stop
/// (it cleans up and exits 130); a second press exits at once.
pub fn install_ctrlc() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let _ = ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!(
            "\ncapmedia: interrupted: stopping before the new media are put in place, cleaning up (Ctrl-C again to quit at once; a later run removes what is left)"
        );
    });
    flag
}

impl Events for Ui {
    fn stage(&self, stage: &str) {
        self.end_stage();
        if let Ok(mut g) = self.stage.lock() {
            *g = Some((stage.to_owned(), Instant::now()));
        }
        if verbosity() == Verbosity::Verbose || (!self.tty && verbosity() == Verbosity::Normal) {
            eprintln!("capmedia: {stage}");
        }
    }

    fn progress(&self, phase: &str, done: u64, total: u64) {
        if verbosity() == Verbosity::Quiet {
            return;
        }
        if self.tty {
            if let Some(b) = self.bar_for(phase, total) {
                b.set_length(total);
                b.set_position(done);
            }
            return;
        }
        let tenth = done.saturating_mul(10).checked_div(total).unwrap_or(10);
        if let Ok(mut g) = self.last_tenth.lock() {
            // Downloads report from several threads: print each tenth once.
            if g.0 != phase || g.1 == u64::MAX || tenth > g.1 {
                *g = (phase.to_owned(), tenth);
                eprintln!(
                    "capmedia: {phase} {}% ({done} of {total} bytes)",
                    tenth * 10
                );
            }
        }
    }

    fn message(&self, text: &str) {
        if verbosity() == Verbosity::Quiet {
            return;
        }
        if let Ok(mut seen) = self.seen.lock() {
            if !seen.insert(text.to_owned()) {
                return;
            }
        }
        match self
            .bar
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|(_, b)| b.clone()))
        {
            Some(b) => b.println(text),
            None => eprintln!("capmedia: {text}"),
        }
    }

    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;
    use std::sync::{Arc, Mutex};

    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

    /// A terminal 200 columns wide that keeps what is drawn on it.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<Vec<String>>>);

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            200
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            if !s.is_empty() {
                self.0.lock().unwrap().push(s.to_owned());
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl fmt::Display for Screen {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0.lock().unwrap().join("\n"))
        }
    }

    /// The widest bar (the longest phase name, four-digit sizes, a rate,
    /// an ETA of hours) fits 80 columns on a terminal wider than that.
    #[test]
    fn progress_bars_fit_80_columns() {
        let screen = Screen::default();
        let total = 1023 * (1u64 << 30) + 1000 * (1 << 20);
        let bar = ProgressBar::with_draw_target(
            Some(total),
            ProgressDrawTarget::term_like(Box::new(screen.clone())),
        )
        .with_style(ProgressStyle::with_template(super::BAR_TEMPLATE).unwrap())
        .with_prefix("verify");
        bar.set_position(total / 3);
        std::thread::sleep(std::time::Duration::from_millis(50));
        bar.set_position(total / 2);
        bar.tick();
        bar.abandon();
        let lines = screen.0.lock().unwrap().clone();
        assert!(!lines.is_empty(), "nothing drawn");
        // What is drawn is padded with spaces to clear the old line.
        for l in lines.iter().map(|l| l.trim_end()) {
            assert!(
                l.chars().count() <= 80,
                "{} columns: {l:?}",
                l.chars().count()
            );
        }
        assert!(lines.iter().any(|l| l.contains("GiB/")), "{screen}");
    }
}

/// Bytes in binary units for people: `512 B`, `1.5 KiB`, `340.2 MiB`,
/// `1.21 GiB`. `--json` gives exact bytes instead.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    if v < 10.0 {
        format!("{v:.2} {unit}")
    } else {
        format!("{v:.1} {unit}")
    }
}

#[cfg(test)]
mod human_tests {
    #[test]
    fn human_bytes_uses_binary_units() {
        use super::human_bytes;
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(300 << 20), "300.0 MiB");
        assert_eq!(human_bytes(3 << 30), "3.00 GiB");
        assert_eq!(human_bytes(5 << 40), "5.00 TiB");
    }
}
