//! What the harness shows while it runs: one progress bar over the plan's steps (on a terminal only),
//! and its closing summary on standard output. The command line prints and draws its bars through
//! the same functions ([`emit`], [`progress_bar`]) and reads sizes with [`parse_size_arg`].

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

/// A progress bar of `total` steps (a spinner when `total` is `None`) on standard error, drawn with
/// indicatif's `template` and ticking every 200 ms: hidden with `quiet` or when standard error is not
/// a terminal.
pub fn progress_bar(total: Option<u64>, template: &str, quiet: bool) -> ProgressBar {
    let target = if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
    let bar = ProgressBar::with_draw_target(total, target);
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The plan's progress bar on standard error: hidden with `quiet` or when standard error is not a
/// terminal.
pub fn plan_bar(steps: u64, quiet: bool) -> ProgressBar {
    progress_bar(Some(steps), "{spinner} bench [{bar:40}] step {pos}/{len}: {msg} ({elapsed})", quiet)
}

/// Parses a size option such as `512M` for clap: [`sparsedisk::units::parse_size`], its error as
/// text.
pub fn parse_size_arg(s: &str) -> std::result::Result<u64, String> {
    sparsedisk::units::parse_size(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_arguments_read_as_the_library_reads_them() {
        assert_eq!(parse_size_arg("512M"), Ok(512 << 20));
        assert!(parse_size_arg("12Q").unwrap_err().contains("cannot read \"12Q\" as a size"));
    }
}
