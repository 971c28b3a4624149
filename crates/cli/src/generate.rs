//! `sparsedisk generate KIND ... -o DIR`.

use crate::args::{parse_size_arg, LayoutArg, ValueTypeArg};
use crate::output::{emit, emit_json, progress_bar};
use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use sparsedisk::builder::{default_memory_budget, BuildOptions, BuildStats};
use sparsedisk::generators::{generate_random, generate_with_progress, Generator, RandomMatrix};
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
    /// 3-D Laplacian on an N x N x N grid: 7-point (N^3 rows, ~7 N^3 nonzeros) or, with --stencil 27,
    /// 27-point (N^3 rows, (3N-2)^3 nonzeros).
    Laplace3d {
        /// Grid points per side.
        #[arg(long)]
        n: u64,
        /// The stencil: 7 (6 on the diagonal, -1 for the 6 face neighbours) or 27 (26 on the
        /// diagonal, -1 for every other point of the 3 x 3 x 3 box).
        #[arg(long, value_enum, default_value = "7")]
        stencil: Stencil,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// R-MAT power-law graph (Graph500 parameters): 2^SCALE vertices, EDGE_FACTOR * 2^SCALE edges,
    /// weights uniform in [0, 1), duplicates summed. Built out of core within --memory.
    Rmat {
        /// log2 of the number of vertices.
        #[arg(long)]
        scale: u32,
        /// Edges per vertex.
        #[arg(long, default_value_t = 16)]
        edge_factor: u64,
        #[command(flatten)]
        random: RandomArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// ROWS x COLS with NNZ_PER_ROW uniformly random columns per row, values uniform in [0, 1).
    Uniform {
        /// Rows.
        #[arg(long)]
        rows: u64,
        /// Columns.
        #[arg(long)]
        cols: u64,
        /// Entries drawn per row (repeats are summed).
        #[arg(long)]
        nnz_per_row: u64,
        #[command(flatten)]
        random: RandomArgs,
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
    /// N x N block-diagonal matrix of dense BLOCK x BLOCK blocks (FEM element blocks).
    Blockdiag {
        /// Order of the matrix.
        #[arg(long)]
        n: u64,
        /// Order of each diagonal block.
        #[arg(long, default_value_t = 64)]
        block: u64,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// N x N arrow matrix: the diagonal plus BORDER dense rows and BORDER dense columns.
    Arrow {
        /// Order of the matrix.
        #[arg(long)]
        n: u64,
        /// Dense rows and columns.
        #[arg(long, default_value_t = 64)]
        border: u64,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// The stencil of `generate laplace3d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stencil {
    /// The 7-point stencil: each point and its 6 face neighbours.
    #[value(name = "7")]
    Seven,
    /// The 27-point stencil: each point's 3 x 3 x 3 box.
    #[value(name = "27")]
    TwentySeven,
}

/// What the random generators share: the seed and the budget of the builder's sort.
#[derive(Debug, Args)]
pub struct RandomArgs {
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Memory budget of the out-of-core sort (e.g. 2G; default: a quarter of RAM, at most half of
    /// what is available).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub memory: Option<u64>,
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
    /// Store each 64 x 64 block holding at least this fraction of its positions (0 < FRACTION <= 1;
    /// 1: only full blocks) as a dense block; `off` writes plain CSR/CSC segments. The default 0.7
    /// comes from a measured sweep (docs/performance.md, "Dense blocks").
    #[arg(long, value_name = "FRACTION|off", value_parser = crate::args::parse_dense_threshold, default_value = "0.7")]
    pub dense_threshold: crate::args::DenseThreshold,
}

pub fn run(args: GenerateArgs, quiet: bool) -> Result<()> {
    let start = Instant::now();
    let (m, out, bar, stats) = match args.kind {
        Kind::Rmat { scale, edge_factor, random: r, out } => {
            random(RandomMatrix::Rmat { scale, edge_factor, seed: r.seed }, r.memory, out, quiet)?
        }
        Kind::Uniform { rows, cols, nnz_per_row, random: r, out } => {
            random(RandomMatrix::Uniform { rows, cols, nnz_per_row, seed: r.seed }, r.memory, out, quiet)?
        }
        Kind::Laplace2d { n, out } => formula(Generator::Laplace2d { n }, out, quiet)?,
        Kind::Laplace3d { n, stencil: Stencil::Seven, out } => formula(Generator::Laplace3d { n }, out, quiet)?,
        Kind::Laplace3d { n, stencil: Stencil::TwentySeven, out } => formula(Generator::Laplace3d27 { n }, out, quiet)?,
        Kind::Banded { n, lower, upper, out } => formula(Generator::Banded { n, lower, upper }, out, quiet)?,
        Kind::Blockdiag { n, block, out } => {
            if block == 0 {
                return Err(sparsedisk::Error::invalid("--block must be at least 1"));
            }
            formula(Generator::BlockDiag { n, block }, out, quiet)?
        }
        Kind::Arrow { n, border, out } => formula(Generator::Arrow { n, border }, out, quiet)?,
    };
    bar.finish_and_clear();
    let dir = &out.output;
    report(&m, &out, dir, start, stats.as_ref())
}

fn writer_options(out: &OutputArgs) -> WriterOptions {
    WriterOptions {
        segment_bytes: out.segment_size.max(1),
        overwrite: out.force,
        dense: out.dense_threshold.options(),
        ..WriterOptions::default()
    }
}

/// What a generator returns: the matrix, its output options, the progress bar to close, and the
/// out-of-core build's statistics (random matrices only; the formulas write in order, unsorted).
type Generated = (Matrix, OutputArgs, ProgressBar, Option<BuildStats>);

fn formula(generator: Generator, out: OutputArgs, quiet: bool) -> Result<Generated> {
    let layout: Layout = out.layout.into();
    let options = writer_options(&out);
    let (outer, _) = layout.outer_inner(generator.shape()?);
    let bar = progress_bar(outer, if layout == Layout::Csr { "rows" } else { "cols" }, quiet);
    bar.set_message("generate");
    let mut progress = |done: u64| bar.set_position(done);
    let dir = &out.output;
    let m: Matrix = match out.value_type {
        ValueTypeArg::F64 => generate_with_progress::<f64>(&generator, dir, layout, options, &mut progress)?,
        ValueTypeArg::F32 => generate_with_progress::<f32>(&generator, dir, layout, options, &mut progress)?,
        ValueTypeArg::I64 => generate_with_progress::<i64>(&generator, dir, layout, options, &mut progress)?,
        ValueTypeArg::Pattern => generate_with_progress::<()>(&generator, dir, layout, options, &mut progress)?,
    };
    Ok((m, out, bar, None))
}

fn random(matrix: RandomMatrix, memory: Option<u64>, out: OutputArgs, quiet: bool) -> Result<Generated> {
    let options = BuildOptions {
        memory_budget: memory.unwrap_or_else(default_memory_budget),
        layout: out.layout.into(),
        writer: writer_options(&out),
        ..BuildOptions::default()
    };
    let bar = progress_bar(matrix.triplets()?, "triplets", quiet);
    bar.set_message("generate");
    let mut progress = |done: u64| bar.set_position(done);
    let dir = &out.output;
    let (m, stats) = match out.value_type {
        ValueTypeArg::F64 => generate_random::<f64>(&matrix, dir, options, &mut progress)?,
        ValueTypeArg::F32 => generate_random::<f32>(&matrix, dir, options, &mut progress)?,
        ValueTypeArg::I64 => {
            return Err(sparsedisk::Error::invalid(
                "random matrices have fractional weights: use --value-type f64, f32 or pattern",
            ))
        }
        ValueTypeArg::Pattern => generate_random::<()>(&matrix, dir, options, &mut progress)?,
    };
    if !quiet && !out.json {
        // The phases as BuildStats times them: the matrix's arrays are written while the last chunk
        // is sorted or the runs are merged; "publish" is only the fsyncs and the manifest.
        eprintln!(
            "build: {} triplets, {} runs spilled ({}) in {:.2} s; sort or merge, and write: {:.2} s; publish: {:.2} s",
            stats.triplets,
            stats.runs,
            format_bytes(stats.spilled_bytes),
            stats.spill_seconds,
            stats.sort_seconds,
            stats.write_seconds
        );
    }
    Ok((m, out, bar, Some(stats)))
}

fn report(
    m: &Matrix,
    out: &OutputArgs,
    dir: &std::path::Path,
    start: Instant,
    stats: Option<&BuildStats>,
) -> Result<()> {
    let seconds = start.elapsed().as_secs_f64();
    let info = m.info();
    if out.json {
        let mut summary = serde_json::json!({
            "output": dir.display().to_string(),
            "rows": info.rows,
            "cols": info.cols,
            "nnz": info.nnz,
            "segments": info.segments,
            "bytes_on_disk": info.bytes_on_disk,
            "seconds": seconds,
            "nnz_per_s": info.nnz as f64 / seconds.max(1e-9),
            "peak_rss_bytes": peak_rss_bytes(),
        });
        // The out-of-core build's phases, under the names `import --json` gives them (the harness's
        // scale suite reports them).
        if let (Some(s), Some(map)) = (stats, summary.as_object_mut()) {
            for (key, value) in [
                ("triplets", serde_json::json!(s.triplets)),
                ("duplicates_combined", serde_json::json!(s.duplicates_combined)),
                ("runs", serde_json::json!(s.runs)),
                ("direct_chunks", serde_json::json!(s.direct_chunks)),
                ("spilled_bytes", serde_json::json!(s.spilled_bytes)),
                ("chunk_capacity", serde_json::json!(s.chunk_capacity)),
                ("spill_seconds", serde_json::json!(s.spill_seconds)),
                ("sort_write_seconds", serde_json::json!(s.sort_seconds)),
                ("publish_seconds", serde_json::json!(s.write_seconds)),
            ] {
                map.insert(key.to_string(), value);
            }
        }
        return emit_json(&summary);
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
