//! Progress on stderr for long work, only when stderr is a terminal: a
//! script that reads stdout or stderr sees nothing extra.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar, or nothing when stderr is not a terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
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
        Progress { bar }
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
    }

    /// Starts the next step.
    pub fn step(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
            bar.inc(1);
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
