//! The `sparsedisk` command: a thin layer over the library's public API.

mod algo;
mod bench;
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

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`sparsedisk export M -o - | head`) is the reader's choice, not an error.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sparsedisk: error: {e}");
            ExitCode::FAILURE
        }
    }
}
