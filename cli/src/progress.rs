//! Progress on stderr for long work: a bar when stderr is a terminal;
//! otherwise nothing, so a script that reads stdout or stderr sees nothing
//! extra, or, for work that runs for minutes (`bench`), one line a step.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar, lines, or nothing.
pub struct Progress {
    bar: Option<ProgressBar>,
    lines: Option<Lines>,
}

/// Progress as one line on stderr a step, for a log.
struct Lines {
    /// What the lines begin with (the command).
    name: &'static str,
    steps: AtomicU64,
    done: AtomicU64,
    started: Instant,
}

impl Progress {
    /// A bar when stderr is a terminal; a line a step on stderr otherwise,
    /// each beginning with `name`.
    pub fn lines(name: &'static str) -> Self {
        let mut progress = Progress::new();
        if progress.bar.is_none() {
            progress.lines = Some(Lines {
                name,
                steps: AtomicU64::new(0),
                done: AtomicU64::new(0),
                started: Instant::now(),
            });
        }
        progress
    }

    /// A bar when stderr is a terminal.
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Progress { bar, lines: None }
    }

    /// A spinner for work whose length is unknown (verify, repair,
    /// compact): it ticks on its own until `finish`.
    pub fn spinner(message: &str) -> Self {
        let progress = Progress::new();
        if let Some(bar) = &progress.bar {
            if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}") {
                bar.set_style(style);
            }
            bar.set_message(message.to_string());
            bar.enable_steady_tick(std::time::Duration::from_millis(100));
        }
        progress
    }

    /// Sets the number of steps.
    pub fn start(&self, steps: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(steps);
            bar.set_position(0);
        }
        if let Some(lines) = &self.lines {
            lines.steps.store(steps, Ordering::Relaxed);
            lines.done.store(0, Ordering::Relaxed);
        }
    }

    /// Starts the next step.
    pub fn step(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
            bar.inc(1);
        }
        if let Some(lines) = &self.lines {
            let n = lines.done.fetch_add(1, Ordering::Relaxed) + 1;
            eprintln!(
                "{}: step {n} of {}, at {:.0} s: {message}",
                lines.name,
                lines.steps.load(Ordering::Relaxed),
                lines.started.elapsed().as_secs_f64()
            );
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
