//! The progress bar: drawn on stderr only when stderr is a terminal.

use box_upload_driver::UploadOptions;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// A progress bar on stderr, or nothing when stderr is not a terminal.
pub(crate) struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    /// A bar of `total` bytes when stderr is a terminal; otherwise a bar that draws nothing.
    pub(crate) fn for_stderr(total: u64, label: &str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(10));
        let style = ProgressStyle::with_template(
            "{msg} [{wide_bar}] {percent:>3}% {bytes}/{total_bytes} {binary_bytes_per_sec} {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Self { bar: Some(bar) }
    }

    /// `options` with a progress callback that moves the bar (unchanged when nothing is drawn).
    pub(crate) fn watch(&self, options: UploadOptions) -> UploadOptions {
        let Some(bar) = self.bar.clone() else {
            return options;
        };
        options.on_progress(move |p| {
            if bar.length() != Some(p.total_bytes) {
                bar.set_length(p.total_bytes);
            }
            bar.set_position(p.bytes_acknowledged);
        })
    }

    /// Leaves the bar drawn, full.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            if let Some(len) = bar.length() {
                bar.set_position(len);
            }
            bar.finish();
            // The bar's line is left without a newline: end it before anything else prints.
            eprintln!();
        }
    }

    /// Leaves the bar drawn where it stopped.
    pub(crate) fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
            eprintln!();
        }
    }
}
