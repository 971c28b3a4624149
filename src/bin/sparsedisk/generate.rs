//! `sparsedisk generate KIND ... -o DIR`.

use crate::cli::{parse_size_arg, LayoutArg, ValueTypeArg};
use crate::output::{emit, emit_json, progress_bar};
use clap::{Args, Subcommand};
use sparsedisk::gen::{generate_with_progress, Generator};
use sparsedisk::units::{format_bytes, peak_rss_bytes};
use sparsedisk::{Layout, Matrix, Result, WriterOptions};
use std::path::PathBuf;
use std::time::Instant;

/// `sparsedisk generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub kind: Kind,
}

/// What to generate.
#[derive(Debug, Subcommand)]
pub enum Kind {
    /// 5-point Laplacian on an N x N grid (N^2 rows, ~5 N^2 nonzeros).
    Laplace2d {
        /// Grid points per side.
        #[arg(long)]
        n: u64,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// 7-point Laplacian on an N x N x N grid (N^3 rows, ~7 N^3 nonzeros).
    Laplace3d {
        /// Grid points per side.
        #[arg(long)]
        n: u64,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// N x N banded matrix with LOWER sub- and UPPER super-diagonals.
    Banded {
        /// Order of the matrix.
        #[arg(long)]
        n: u64,
        /// Sub-diagonals.
        #[arg(long, default_value_t = 1)]
        lower: u64,
        /// Super-diagonals.
        #[arg(long, default_value_t = 1)]
        upper: u64,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// Where and how to write the generated matrix.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output matrix directory.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Storage layout.
    #[arg(long, value_enum, default_value = "csr")]
    pub layout: LayoutArg,
    /// Value type.
    #[arg(long, value_enum, default_value = "f64")]
    pub value_type: ValueTypeArg,
    /// Bound on each segment's payload (e.g. 64M).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg, default_value = "64M")]
    pub segment_size: u64,
    /// Replace a matrix already in DIR.
    #[arg(long)]
    pub force: bool,
    /// Print a one-object JSON summary instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: GenerateArgs, quiet: bool) -> Result<()> {
    let (generator, out) = match args.kind {
        Kind::Laplace2d { n, out } => (Generator::Laplace2d { n }, out),
        Kind::Laplace3d { n, out } => (Generator::Laplace3d { n }, out),
        Kind::Banded { n, lower, upper, out } => (Generator::Banded { n, lower, upper }, out),
    };
    let layout: Layout = out.layout.into();
    let options =
        WriterOptions { segment_bytes: out.segment_size.max(1), overwrite: out.force, ..WriterOptions::default() };
    let (outer, _) = layout.outer_inner(generator.shape()?);
    let bar = progress_bar(outer, if layout == Layout::Csr { "rows" } else { "cols" }, quiet);
    bar.set_message("generate");
    let start = Instant::now();
    let mut progress = |done: u64| bar.set_position(done);
    let dir = &out.output;
    let m: Matrix = match out.value_type {
        ValueTypeArg::F64 => generate_with_progress::<f64>(&generator, dir, layout, options, &mut progress)?,
        ValueTypeArg::F32 => generate_with_progress::<f32>(&generator, dir, layout, options, &mut progress)?,
        ValueTypeArg::I64 => generate_with_progress::<i64>(&generator, dir, layout, options, &mut progress)?,
        ValueTypeArg::Pattern => generate_with_progress::<()>(&generator, dir, layout, options, &mut progress)?,
    };
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let info = m.info();
    if out.json {
        return emit_json(&serde_json::json!({
            "output": dir.display().to_string(),
            "rows": info.rows,
            "cols": info.cols,
            "nnz": info.nnz,
            "segments": info.segments,
            "bytes_on_disk": info.bytes_on_disk,
            "seconds": seconds,
            "nnz_per_s": info.nnz as f64 / seconds.max(1e-9),
            "peak_rss_bytes": peak_rss_bytes(),
        }));
    }
    emit(&format!(
        "wrote {}: {} x {}, {} nonzeros, {} segments, {} on disk, in {:.2} s",
        dir.display(),
        info.rows,
        info.cols,
        info.nnz,
        info.segments,
        format_bytes(info.bytes_on_disk),
        seconds
    ))
}
