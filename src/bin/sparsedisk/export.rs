//! `sparsedisk export DIR -o FILE.mtx`.

use crate::cli::ExportArgs;
use crate::output::{emit_json, progress_bar};
use sparsedisk::io::mtx::export_matrix_market;
use sparsedisk::units::peak_rss_bytes;
use sparsedisk::{Error, Matrix, Result};
use std::time::Instant;

pub fn run(args: ExportArgs, quiet: bool) -> Result<()> {
    let start = Instant::now();
    let m = Matrix::open(&args.dir)?;
    let to_stdout = args.output.as_os_str() == "-";
    if !to_stdout && !args.force && args.output.exists() {
        return Err(Error::invalid(format!("{} exists; pass --force to replace it", args.output.display())));
    }
    let bar = progress_bar(m.nnz(), "entries", quiet || to_stdout);
    bar.set_message("export");
    let bytes = export_matrix_market(&m, &args.output, &mut |done| bar.set_position(done))?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    if args.json && !to_stdout {
        emit_json(&serde_json::json!({
            "output": args.output.display().to_string(),
            "nnz": m.nnz(),
            "bytes": bytes,
            "seconds": seconds,
            "mb_per_s": bytes as f64 / seconds.max(1e-9) / 1e6,
            "peak_rss_bytes": peak_rss_bytes(),
        }))?;
    }
    Ok(())
}
