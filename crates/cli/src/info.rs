//! `sparsedisk info DIR [--json]`.

use crate::clean::{debris_json, debris_line};
use crate::output::{emit, emit_json};
use clap::Args;
use sparsedisk::units::format_bytes;
use sparsedisk::{debris, Matrix, Result};
use std::path::PathBuf;

/// `sparsedisk info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Matrix directory.
    pub dir: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: InfoArgs) -> Result<()> {
    let m = match Matrix::open(&args.dir) {
        Ok(m) => m,
        Err(e) => {
            // No matrix (an interrupted first import, say) may still hide debris worth knowing of.
            if let Some(line) = debris::scan(&args.dir).ok().and_then(|d| debris_line(&args.dir, &d)) {
                eprintln!("sparsedisk: {} holds debris: {line}", args.dir.display());
            }
            return Err(e);
        }
    };
    let info = m.info();
    let debris = debris::scan(&args.dir)?;
    if args.json {
        let mut value = serde_json::to_value(&info).expect("MatrixInfo serialises");
        value["debris"] = debris_json(&args.dir, &debris);
        return emit_json(&value);
    }
    let mut text = format!(
        "matrix      {}\n\
         shape       {} x {}\n\
         nnz         {} (density {:.3e})\n\
         values      {}\n\
         layout      {} ({} indices, u64 row pointers)\n\
         segments    {} (nnz per segment {}..{}, largest payload {})\n\
         on disk     {} ({} of arrays, {:.2} bytes per nonzero)\n\
         dense       {}\n\
         format      version {}, generation {}",
        info.path,
        info.rows,
        info.cols,
        info.nnz,
        info.density,
        info.value_type,
        info.layout,
        info.index_type,
        info.segments,
        info.segment_nnz_min,
        info.segment_nnz_max,
        format_bytes(info.segment_payload_max),
        format_bytes(info.bytes_on_disk),
        format_bytes(info.payload_bytes),
        info.bytes_per_nonzero,
        if info.dense_blocks == 0 {
            "no dense blocks".to_string()
        } else {
            format!(
                "{} blocks holding {} entries ({:.1}% of nnz)",
                info.dense_blocks,
                info.dense_nnz,
                100.0 * info.dense_nnz_share
            )
        },
        info.format_version,
        info.generation,
    );
    if let Some(line) = debris_line(&args.dir, &debris) {
        text += &format!("\ndebris      {line}");
    }
    emit(&text)
}
