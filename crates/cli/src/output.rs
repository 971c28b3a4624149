//! Printing results and progress.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sparsedisk::{Error, Result};
use std::io::Write;
use std::time::Duration;

/// Prints `text` and a newline to standard output, reporting a closed pipe as an error the caller
/// turns into a quiet exit (`println!` would panic instead).
pub fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").and_then(|()| out.flush()).map_err(|e| Error::io("<stdout>", "writing output", e))
}

/// Prints `value` as one line of JSON.
pub fn emit_json(value: &serde_json::Value) -> Result<()> {
    emit(&value.to_string())
}

/// A progress bar on standard error, drawn only when it is a terminal and `--quiet` is off.
pub fn progress_bar(total: u64, unit: &str, quiet: bool) -> ProgressBar {
    let target = if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    let template =
        format!("{{spinner}} {{msg}} [{{bar:40}}] {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, eta {{eta}})");
    bar.set_style(
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
