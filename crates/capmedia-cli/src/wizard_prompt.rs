//! The wizard's terminal I/O: one small [`Prompter`] trait with two faces,
//! `inquire`'s prompts on a real terminal and plain numbered line prompts
//! when `TERM=dumb` (serial consoles, Emacs shells, screen readers).
//!
//! Why `inquire` and not `dialoguer`: the wizard needs "back" on every
//! page, and inquire ends *every* prompt kind (text, select, confirm,
//! password) with a distinct result on Esc (`OperationCanceled`) and on
//! Ctrl-C (`OperationInterrupted`), so one key means "back" everywhere and
//! Ctrl-C always means "quit". dialoguer's text and confirm prompts cannot
//! be left with a key at all (only its selects have `interact_opt`), so
//! "back" would need a sentinel answer on half the pages. inquire is built
//! with its crossterm backend only (no fuzzy matcher, no date picker):
//! crossterm, unicode-width and a few small crates.

use std::io::{BufRead, Write};

/// How a prompt ended without an answer.
#[derive(Debug)]
pub enum Stop {
    /// Esc (or `<` on a plain prompt): the previous page.
    Back,
    /// Ctrl-C (or end of input): leave the wizard, nothing written.
    Cancel,
    /// The terminal failed.
    Failed(anyhow::Error),
}

pub type Answer<T> = Result<T, Stop>;

/// The prompts the pages use. Every prompt states its choices; a default is
/// shown in the prompt itself, never applied unseen.
pub trait Prompter {
    /// A page's heading.
    fn page(&mut self, title: &str, number: usize, of: usize);
    /// A line of text under the heading (an explanation, a warning, why an
    /// answer was refused).
    fn note(&mut self, text: &str);
    /// One of `options`, starting on `start`; returns its index.
    fn select(&mut self, question: &str, options: &[String], start: usize) -> Answer<usize>;
    /// A line of text; `default` is shown and taken on an empty answer.
    fn text(&mut self, question: &str, help: &str, default: Option<&str>) -> Answer<String>;
    /// Yes or no; the default is shown (`[y/N]`).
    fn confirm(&mut self, question: &str, default: bool) -> Answer<bool>;
    /// A password, not echoed.
    fn password(&mut self, question: &str) -> Answer<String>;
}

/// The help line every inquire prompt shows.
const KEYS: &str = "Enter: next · Esc: back · Ctrl-C: quit";

/// `inquire` on a terminal.
#[derive(Debug, Default)]
pub struct Fancy;

fn stop(e: inquire::InquireError) -> Stop {
    match e {
        inquire::InquireError::OperationCanceled => Stop::Back,
        inquire::InquireError::OperationInterrupted => Stop::Cancel,
        e => Stop::Failed(anyhow::anyhow!("the terminal: {e}")),
    }
}

impl Prompter for Fancy {
    fn page(&mut self, title: &str, number: usize, of: usize) {
        eprintln!();
        eprintln!("── {title} ({number} of {of}) ──");
    }

    fn note(&mut self, text: &str) {
        eprintln!("  {text}");
    }

    fn select(&mut self, question: &str, options: &[String], start: usize) -> Answer<usize> {
        inquire::Select::new(question, options.to_vec())
            .with_starting_cursor(start.min(options.len().saturating_sub(1)))
            .with_help_message("↑↓: move · type: filter · Enter: choose · Esc: back · Ctrl-C: quit")
            .with_page_size(12)
            .raw_prompt()
            .map(|o| o.index)
            .map_err(stop)
    }

    fn text(&mut self, question: &str, help: &str, default: Option<&str>) -> Answer<String> {
        let help = if help.is_empty() {
            KEYS.to_owned()
        } else {
            format!("{help} · {KEYS}")
        };
        let mut t = inquire::Text::new(question).with_help_message(&help);
        if let Some(d) = default {
            t = t.with_default(d);
        }
        t.prompt().map_err(stop)
    }

    fn confirm(&mut self, question: &str, default: bool) -> Answer<bool> {
        inquire::Confirm::new(question)
            .with_default(default)
            .with_help_message(KEYS)
            .prompt()
            .map_err(stop)
    }

    fn password(&mut self, question: &str) -> Answer<String> {
        inquire::Password::new(question)
            .without_confirmation()
            .with_display_mode(inquire::PasswordDisplayMode::Masked)
            .with_help_message(KEYS)
            .prompt()
            .map_err(stop)
    }
}

/// Numbered line prompts on stderr, answers from stdin, for `TERM=dumb`.
/// `<` goes back; end of input (Ctrl-D) quits; Ctrl-C ends the process as
/// any command's would (nothing has been written before "Create").
#[derive(Debug, Default)]
pub struct Plain;

impl Plain {
    fn line(&mut self, prompt: &str) -> Answer<String> {
        eprint!("{prompt}");
        std::io::stderr()
            .flush()
            .map_err(|e| Stop::Failed(e.into()))?;
        let mut s = String::new();
        let n = std::io::stdin()
            .lock()
            .read_line(&mut s)
            .map_err(|e| Stop::Failed(e.into()))?;
        if n == 0 {
            return Err(Stop::Cancel);
        }
        let s = s.trim_end_matches(['\r', '\n']).to_owned();
        if s.trim() == "<" {
            return Err(Stop::Back);
        }
        Ok(s)
    }
}

impl Prompter for Plain {
    fn page(&mut self, title: &str, number: usize, of: usize) {
        eprintln!();
        eprintln!("== {title} ({number} of {of}) ==  (< and Enter: back, Ctrl-D: quit)");
    }

    fn note(&mut self, text: &str) {
        eprintln!("  {text}");
    }

    fn select(&mut self, question: &str, options: &[String], start: usize) -> Answer<usize> {
        eprintln!("{question}");
        for (i, o) in options.iter().enumerate() {
            eprintln!("  {}) {o}", i + 1);
        }
        let start = start.min(options.len().saturating_sub(1)) + 1;
        loop {
            let a = self.line(&format!("choose 1-{} [{start}]: ", options.len()))?;
            let a = a.trim();
            if a.is_empty() {
                return Ok(start - 1);
            }
            match a.parse::<usize>() {
                Ok(n) if (1..=options.len()).contains(&n) => return Ok(n - 1),
                _ => eprintln!("  give a number from 1 to {}", options.len()),
            }
        }
    }

    fn text(&mut self, question: &str, help: &str, default: Option<&str>) -> Answer<String> {
        if !help.is_empty() {
            eprintln!("  ({help})");
        }
        let shown = default.map(|d| format!(" [{d}]")).unwrap_or_default();
        let a = self.line(&format!("{question}{shown} "))?;
        Ok(match default {
            Some(d) if a.trim().is_empty() => d.to_owned(),
            _ => a,
        })
    }

    fn confirm(&mut self, question: &str, default: bool) -> Answer<bool> {
        let yn = if default { "[Y/n]" } else { "[y/N]" };
        loop {
            let a = self.line(&format!("{question} {yn} "))?;
            match a.trim().to_ascii_lowercase().as_str() {
                "" => return Ok(default),
                "y" | "yes" => return Ok(true),
                "n" | "no" => return Ok(false),
                _ => eprintln!("  answer y or n"),
            }
        }
    }

    fn password(&mut self, question: &str) -> Answer<String> {
        let p = rpassword::prompt_password(format!("{question} (not shown) "))
            .map_err(|e| Stop::Failed(e.into()))?;
        if p == "<" {
            return Err(Stop::Back);
        }
        Ok(p)
    }
}
