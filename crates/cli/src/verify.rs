//! `sparsedisk verify DIR [--json]`: exit 0 when sound, 1 with the first problem when not.

use crate::clean::{debris_json, debris_line};
use crate::output::{emit, emit_json};
use clap::Args;
use sparsedisk::units::format_bytes;
use sparsedisk::{debris, Matrix, Result};
use std::path::PathBuf;
use std::time::Instant;

/// `sparsedisk verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Matrix directory.
    pub dir: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: VerifyArgs, _quiet: bool) -> Result<()> {
    let start = Instant::now();
    let m = Matrix::open(&args.dir)?;
    let report = m.verify()?;
    let seconds = start.elapsed().as_secs_f64();
    // Debris does not make a matrix unsound: reported, still exit 0.
    let debris = debris::scan(&args.dir)?;
    if args.json {
        return emit_json(&serde_json::json!({
            "debris": debris_json(&args.dir, &debris),
            "ok": true,
            "path": args.dir.display().to_string(),
            "segments": report.segments,
            "files": report.files,
            "bytes": report.bytes,
            "nnz": report.nnz,
            "seconds": seconds,
            "gb_per_s": report.bytes as f64 / seconds.max(1e-9) / 1e9,
        }));
    }
    let debris_note = debris_line(&args.dir, &debris).map(|line| format!("\ndebris: {line}")).unwrap_or_default();
    emit(
        &(format!(
            "ok: {} segments, {} files, {} checked, {} entries, in {:.2} s ({:.2} GB/s)",
            report.segments,
            report.files,
            format_bytes(report.bytes),
            report.nnz,
            seconds,
            report.bytes as f64 / seconds.max(1e-9) / 1e9
        ) + &debris_note),
    )
}
