//! The `sparsedisk` command: a thin layer over the library's public API.

mod algo;
mod args;
mod clean;
mod cli;
mod demo;
mod export;
mod generate;
mod import;
mod info;
mod ops;
mod output;
mod spmv;
mod verify;

use clap::{ArgMatches, CommandFactory, FromArgMatches};
use sparsedisk::interrupt;
use sparsedisk::units::format_bytes;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The signal that asked for cancellation (SIGINT or SIGTERM), for the exit code.
static SIGNAL: AtomicUsize = AtomicUsize::new(0);

fn main() -> ExitCode {
    let matches = cli::Cli::command().get_matches();
    let args = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Commands that write matrices, and export (whose partial file can be as large as the matrix),
    // stop cooperatively on SIGINT/SIGTERM and clean up; the others write a vector at the very end
    // (atomically), so the default action, dying at once, suits them.
    let writes = matches!(
        args.command,
        cli::Command::Import(_)
            | cli::Command::Generate(_)
            | cli::Command::Spgemm(_)
            | cli::Command::Transpose(_)
            | cli::Command::Convert(_)
            | cli::Command::Add(_)
    );
    let output = writes.then(|| output_dir(&matches)).flatten().map(|dir| (manifests(&dir), dir));
    if writes || matches!(args.command, cli::Command::Export(_)) {
        install_handlers();
    }
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`sparsedisk export M -o - | head`) is the reader's choice, not an error.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        // The error an interruption caused may be another one (a worker that stopped): either way
        // the library's error path has cleaned up.
        Err(e) if e.is_interrupted() || interrupt::is_requested() => {
            eprintln!("sparsedisk: {}", interrupted_message(output.as_ref()));
            let signal = match SIGNAL.load(Ordering::SeqCst) {
                0 => signal_hook::consts::SIGINT as usize,
                s => s,
            };
            ExitCode::from(128 + signal as u8)
        }
        Err(e) => {
            eprintln!("sparsedisk: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT and SIGTERM set the library's cancellation flag (the work in progress stops at its next
/// check and cleans up); a second one, of either kind, exits at once with 128 + its number.
fn install_handlers() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for signal in [SIGINT, SIGTERM] {
        // The exit goes first: it must see the flag as the earlier signal left it.
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, interrupt::flag());
        let _ = signal_hook::flag::register_usize(signal, &SIGNAL, signal as usize);
        let _ = signal_hook::flag::register(signal, interrupt::flag());
    }
}

/// The `--output` directory of a command (nested subcommands included), if it has one.
fn output_dir(matches: &ArgMatches) -> Option<PathBuf> {
    let (_, sub) = matches.subcommand()?;
    match sub.try_get_one::<PathBuf>("output") {
        Ok(Some(dir)) => Some(dir.clone()),
        _ => output_dir(sub),
    }
}

/// What [`manifests`] read: `None` for a directory that does not exist.
type Snapshot = Option<Vec<Option<Vec<u8>>>>;

/// The manifests in `dir` (and in `dir/csr`, `dir/csc` for `import --layout both`), to tell
/// afterwards whether an interrupted command left the directory as it was; `None` when it does not
/// exist.
fn manifests(dir: &Path) -> Snapshot {
    dir.exists().then(|| {
        [dir.to_path_buf(), dir.join("csr"), dir.join("csc")]
            .iter()
            .map(|d| std::fs::read(d.join(sparsedisk::format::MANIFEST_FILE)).ok())
            .collect()
    })
}

/// E.g. `interrupted; removed 3 staging and partial files (1.10 GiB); out unchanged`.
fn interrupted_message(output: Option<&(Snapshot, PathBuf)>) -> String {
    let removed = interrupt::removed();
    let mut text = if removed.files == 0 {
        "interrupted; nothing to remove".to_string()
    } else {
        format!(
            "interrupted; removed {} staging and partial file{} ({})",
            removed.files,
            if removed.files == 1 { "" } else { "s" },
            format_bytes(removed.bytes)
        )
    };
    if let Some((before, dir)) = output {
        let after = manifests(dir);
        let state = match (before, &after) {
            (None, None) => "not created",
            (Some(_), Some(_)) if *before == after => "unchanged",
            _ => "changed before the interruption",
        };
        text += &format!("; {} {state}", dir.display());
        if let Some(line) = sparsedisk::debris::scan(dir).ok().and_then(|d| clean::debris_line(dir, &d)) {
            text += &format!(" (it holds debris: {line})");
        }
    }
    text
}
