//! What the harness shows while it runs: one progress bar over the plan's steps (on a terminal only),
//! and its closing summary on standard output.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sparsedisk::{Error, Result};
use std::io::Write;
use std::time::Duration;

/// Prints `text` and a newline to standard output; a closed pipe is an error, not a panic.
pub fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").and_then(|()| out.flush()).map_err(|e| Error::io("<stdout>", "writing output", e))
}

/// The plan's progress bar on standard error: hidden with `quiet` or when standard error is not a
/// terminal.
pub fn plan_bar(steps: u64, quiet: bool) -> ProgressBar {
    let target = if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
    let bar = ProgressBar::with_draw_target(Some(steps), target);
    let style = ProgressStyle::with_template("{spinner} bench [{bar:40}] step {pos}/{len}: {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Parses a size option such as `512M` for clap.
pub fn parse_size_arg(s: &str) -> std::result::Result<u64, String> {
    sparsedisk::units::parse_size(s).map_err(|e| e.to_string())
}
