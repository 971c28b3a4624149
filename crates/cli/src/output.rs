//! Printing results and progress: the benchmark harness's [`emit`] and progress bars (one copy for
//! both crates), and the command line's own JSON line and bar style. A leaf: it uses no other module
//! of the command line.

pub use sparsedisk_bench::ui::emit;
/// `styled_bar(total, template, quiet)`: a bar (a spinner without `total`) in any indicatif template.
pub use sparsedisk_bench::ui::progress_bar as styled_bar;

use indicatif::ProgressBar;

/// Prints `value` as one line of JSON.
pub fn emit_json(value: &serde_json::Value) -> sparsedisk::Result<()> {
    emit(&value.to_string())
}

/// A progress bar of `total` `unit`s on standard error, drawn only when it is a terminal and
/// `--quiet` is off.
pub fn progress_bar(total: u64, unit: &str, quiet: bool) -> ProgressBar {
    let template =
        format!("{{spinner}} {{msg}} [{{bar:40}}] {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, eta {{eta}})");
    styled_bar(Some(total), &template, quiet)
}
