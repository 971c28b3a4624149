//! `sparsedisk export DIR -o FILE.mtx`.

use crate::output::{emit, emit_json, progress_bar};
use clap::Args;
use sparsedisk::io::check_output_file;
use sparsedisk::io::export::export_matrix_market;
use sparsedisk::units::{format_bytes, peak_rss_bytes};
use sparsedisk::{Matrix, Result};
use std::path::PathBuf;
use std::time::Instant;

/// `sparsedisk export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Matrix directory.
    pub dir: PathBuf,
    /// Output file (`.mtx`), or `-` for standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Print a one-object JSON summary.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ExportArgs, quiet: bool) -> Result<()> {
    let start = Instant::now();
    let to_stdout = args.output.as_os_str() == "-";
    if !to_stdout {
        check_output_file(&args.output, args.force)?;
    }
    let m = Matrix::open(&args.dir)?;
    let bar = progress_bar(m.nnz(), "entries", quiet || to_stdout);
    bar.set_message("export");
    let bytes = export_matrix_market(&m, &args.output, &mut |done| bar.set_position(done))?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    if to_stdout {
        // Standard output carries the matrix itself; a summary there would corrupt it.
        return Ok(());
    }
    if args.json {
        emit_json(&serde_json::json!({
            "output": args.output.display().to_string(),
            "nnz": m.nnz(),
            "bytes": bytes,
            "seconds": seconds,
            "mb_per_s": bytes as f64 / seconds.max(1e-9) / 1e6,
            "peak_rss_bytes": peak_rss_bytes(),
        }))
    } else {
        emit(&format!(
            "exported {} -> {}: {} x {}, {} entries, {} in {:.2} s ({:.0} MB/s)",
            args.dir.display(),
            args.output.display(),
            m.rows(),
            m.cols(),
            m.nnz(),
            format_bytes(bytes),
            seconds,
            bytes as f64 / seconds.max(1e-9) / 1e6
        ))
    }
}
