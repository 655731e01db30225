//! Progress on stderr: bars with bytes, rate and ETA on a terminal; plain
//! lines otherwise (logs, CI).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use capmedia_driver::Events;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug)]
pub struct Ui {
    tty: bool,
    bar: Mutex<Option<(String, ProgressBar)>>,
    /// For plain output: the last tenth printed per phase.
    last_tenth: Mutex<(String, u64)>,
    cancelled: Arc<AtomicBool>,
}

impl Ui {
    pub fn new(cancelled: Arc<AtomicBool>) -> Ui {
        Ui {
            tty: std::io::stderr().is_terminal(),
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
    }

    fn bar_for(&self, phase: &str, total: u64) -> Option<ProgressBar> {
        let mut g = self.bar.lock().ok()?;
        if g.as_ref().map(|(p, _)| p.as_str()) != Some(phase) {
            if let Some((_, old)) = g.take() {
                old.finish();
            }
            let style = ProgressStyle::with_template(
                "{prefix:>7} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
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
        if !self.tty {
            eprintln!("capmedia: {stage}");
        }
    }

    fn progress(&self, phase: &str, done: u64, total: u64) {
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
