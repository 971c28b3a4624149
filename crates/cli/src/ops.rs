//! `sparsedisk spgemm | transpose | convert | add`: operations that write a new matrix.

use crate::args::{parse_size_arg, LayoutArg};
use crate::output::{emit, emit_json, progress_bar};
use clap::{Args, ValueEnum};
use sparsedisk::builder::default_memory_budget;
use sparsedisk::ops::{self, Accumulator, AddOptions, OpOptions, OpProgress, OpStats, Semiring, SpgemmOptions};
use sparsedisk::units::{format_bytes, peak_rss_bytes};
use sparsedisk::{Matrix, Result, ValueType, WriterOptions};
use std::path::{Path, PathBuf};

/// Options every operation takes.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output matrix directory.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Memory budget (e.g. 2G). Default: a quarter of physical memory, at most half of what is available.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub memory: Option<u64>,
    /// Bound on each output segment's payload.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg, default_value = "64M")]
    pub segment_size: u64,
    /// Replace a matrix already in DIR (it stays readable until the new one is published).
    #[arg(long)]
    pub force: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Skip the fsyncs before publishing (faster; a crash may then lose the output): for scratch results.
    #[arg(long)]
    pub no_fsync: bool,
    /// Store each 64 x 64 block holding at least this fraction of its positions (0 < FRACTION <= 1;
    /// 1: only full blocks) as a dense block; `off` writes plain CSR/CSC segments. The default 0.7
    /// comes from a measured sweep (docs/performance.md, "Dense blocks").
    #[arg(long, value_name = "FRACTION|off", value_parser = crate::args::parse_dense_threshold, default_value = "0.7")]
    pub dense_threshold: crate::args::DenseThreshold,
}

impl OutputArgs {
    fn op_options(&self) -> OpOptions {
        OpOptions {
            memory_budget: self.memory.unwrap_or_else(default_memory_budget),
            writer: WriterOptions {
                segment_bytes: self.segment_size,
                overwrite: self.force,
                durable: !self.no_fsync,
                dense: self.dense_threshold.options(),
            },
            max_chunk_entries: None,
        }
    }
}

/// `sparsedisk spgemm`.
#[derive(Debug, Args)]
pub struct SpgemmArgs {
    /// Left operand A.
    pub a: PathBuf,
    /// Right operand B.
    pub b: PathBuf,
    #[command(flatten)]
    pub out: OutputArgs,
    /// The algebra: plus-times (numeric), min-plus (shortest two-hop paths), pattern (boolean structure).
    #[arg(long, value_enum, default_value = "plus-times")]
    pub semiring: SemiringArg,
    /// Drop entries whose value is zero (as scipy does); kept by default.
    #[arg(long)]
    pub drop_zeros: bool,
    /// Accumulator for every row (default auto: chosen per row by its work); for measurements.
    #[arg(long, value_enum, default_value = "auto")]
    pub accumulator: AccumulatorArg,
}

/// Accumulators.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AccumulatorArg {
    /// Per row, by its work.
    Auto,
    /// Sort-based.
    Sort,
    /// Hash table.
    Hash,
    /// Dense array.
    Dense,
    /// Dense array over the narrow column span of a row (hash when wide).
    Window,
}

/// Semirings.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SemiringArg {
    /// (+, *).
    PlusTimes,
    /// (min, +).
    MinPlus,
    /// Structure only (or, and); a pattern output.
    Pattern,
}

/// `sparsedisk transpose`.
#[derive(Debug, Args)]
pub struct TransposeArgs {
    /// Matrix A.
    pub a: PathBuf,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Layout of A^T (default: A's; the other layout is a plain copy of A's arrays).
    #[arg(long, value_enum)]
    pub layout: Option<LayoutArg>,
}

/// `sparsedisk convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Matrix A.
    pub a: PathBuf,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Layout to write.
    #[arg(long, value_enum)]
    pub layout: LayoutArg,
}

/// `sparsedisk add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Matrix A.
    pub a: PathBuf,
    /// Matrix B (same shape).
    pub b: PathBuf,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Coefficient of A.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub alpha: f64,
    /// Coefficient of B.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub beta: f64,
    /// Drop entries whose value is zero; kept by default.
    #[arg(long)]
    pub drop_zeros: bool,
    /// Output value type (default: int64 for integer inputs and coefficients, else f64; pattern: the union of the structures).
    #[arg(long, value_enum)]
    pub value_type: Option<AddValueType>,
}

/// Output value types of `add`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AddValueType {
    /// 64-bit floats.
    F64,
    /// 64-bit integers.
    I64,
    /// Structure only.
    Pattern,
}

/// Runs `f` with a progress callback drawing a bar (when standard error is a terminal).
fn with_progress<T>(quiet: bool, f: impl FnOnce(&(dyn Fn(OpProgress) + Sync)) -> Result<T>) -> Result<T> {
    let bar = progress_bar(0, "", quiet);
    let cb = |p: OpProgress| {
        if bar.length() != Some(p.total) {
            bar.set_length(p.total);
        }
        bar.set_message(p.phase);
        bar.set_position(p.done);
    };
    let result = f(&cb);
    bar.finish_and_clear();
    result
}

fn report(kind: &str, inputs: &[&Path], m: &Matrix, stats: &OpStats, options: &OpOptions, json: bool) -> Result<()> {
    if json {
        return emit_json(&serde_json::json!({
            "operation": kind,
            "inputs": inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "output": m.dir().display().to_string(),
            "rows": m.rows(),
            "cols": m.cols(),
            "nnz": stats.nnz,
            "flops": stats.flops,
            "layout": m.layout().name(),
            "value_type": m.value_type().name(),
            "segments": m.segments().len(),
            "blocks": stats.blocks,
            "conversions": stats.conversions,
            "seconds": stats.seconds,
            "memory_budget": options.memory_budget,
            "threads": rayon::current_num_threads(),
            "peak_rss_bytes": peak_rss_bytes(),
        }));
    }
    emit(&format!(
        "{kind} -> {}: {} x {} {} {}, {} nonzeros, {} flops{} in {:.2} s (peak RSS {})",
        m.dir().display(),
        m.rows(),
        m.cols(),
        m.layout(),
        m.value_type(),
        stats.nnz,
        stats.flops,
        if stats.blocks > 1 { format!(", {} blocks of B", stats.blocks) } else { String::new() },
        stats.seconds,
        peak_rss_bytes().map_or("unknown".into(), format_bytes),
    ))
}

pub fn run_spgemm(args: SpgemmArgs, quiet: bool) -> Result<()> {
    let (a, b) = (Matrix::open(&args.a)?, Matrix::open(&args.b)?);
    let options = SpgemmOptions {
        op: args.out.op_options(),
        semiring: match args.semiring {
            SemiringArg::PlusTimes => Semiring::PlusTimes,
            SemiringArg::MinPlus => Semiring::MinPlus,
            SemiringArg::Pattern => Semiring::Pattern,
        },
        drop_zeros: args.drop_zeros,
        accumulator: match args.accumulator {
            AccumulatorArg::Auto => Accumulator::Auto,
            AccumulatorArg::Sort => Accumulator::Sort,
            AccumulatorArg::Hash => Accumulator::Hash,
            AccumulatorArg::Dense => Accumulator::Dense,
            AccumulatorArg::Window => Accumulator::Window,
        },
        ..SpgemmOptions::default()
    };
    let (m, stats) = with_progress(quiet, |p| ops::spgemm(&a, &b, &args.out.output, &options, Some(p)))?;
    report("spgemm", &[&args.a, &args.b], &m, &stats, &options.op, args.out.json)
}

pub fn run_transpose(args: TransposeArgs, quiet: bool) -> Result<()> {
    let a = Matrix::open(&args.a)?;
    let options = args.out.op_options();
    let layout = args.layout.map(Into::into);
    let (m, stats) = with_progress(quiet, |p| ops::transpose(&a, &args.out.output, layout, &options, Some(p)))?;
    report("transpose", &[&args.a], &m, &stats, &options, args.out.json)
}

pub fn run_convert(args: ConvertArgs, quiet: bool) -> Result<()> {
    let a = Matrix::open(&args.a)?;
    let options = args.out.op_options();
    let (m, stats) =
        with_progress(quiet, |p| ops::convert(&a, &args.out.output, args.layout.into(), &options, Some(p)))?;
    report("convert", &[&args.a], &m, &stats, &options, args.out.json)
}

pub fn run_add(args: AddArgs, quiet: bool) -> Result<()> {
    let (a, b) = (Matrix::open(&args.a)?, Matrix::open(&args.b)?);
    let options = AddOptions {
        op: args.out.op_options(),
        alpha: args.alpha,
        beta: args.beta,
        drop_zeros: args.drop_zeros,
        value_type: args.value_type.map(|v| match v {
            AddValueType::F64 => ValueType::Float64,
            AddValueType::I64 => ValueType::Int64,
            AddValueType::Pattern => ValueType::Pattern,
        }),
    };
    let (m, stats) = with_progress(quiet, |p| ops::add(&a, &b, &args.out.output, &options, Some(p)))?;
    report("add", &[&args.a, &args.b], &m, &stats, &options.op, args.out.json)
}
