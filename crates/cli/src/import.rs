//! `sparsedisk import INPUT -o DIR [...]`: triplets in any order to a matrix on disk, out of core.

use crate::args::parse_size_arg;
use crate::output::{emit, emit_json, styled_bar};
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use sparsedisk::builder::{default_memory_budget, Duplicates};
use sparsedisk::import::{import, ImportOptions, ImportProgress, LayoutChoice, ValueChoice};
use sparsedisk::io::read::{ColumnSpec, InputFormat, ReadOptions};
use sparsedisk::units::{format_bytes, peak_rss_bytes};
use sparsedisk::{Result, ValueType, WriterOptions};
use std::path::PathBuf;

/// `sparsedisk import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Input file: Matrix Market (.mtx), edge list, or CSV; `.gz` is decompressed; `-` reads standard input.
    pub input: PathBuf,
    /// Output matrix directory.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Input format (auto: a Matrix Market banner, else by extension: .mtx/.mm, .csv, anything else an edge list).
    #[arg(long, value_enum, default_value = "auto")]
    pub format: FormatArg,
    /// Memory budget for parsing and sorting (e.g. 2G; at least 72M). Parsing takes at most half of
    /// it and leaves sorting at least 64M: 56M per parse thread plus 8M, so it parses with as many
    /// threads as fit, at most --threads (--json reports parse_threads), and below 128M with one
    /// thread and blocks smaller than 8M. Sorting gets the rest; larger inputs are sorted out of
    /// core. Default: a quarter of physical memory.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    pub memory: Option<u64>,
    /// What to do with repeated (row, col) entries.
    #[arg(long, value_enum, default_value = "sum")]
    pub duplicates: DuplicatesArg,
    /// Drop entries whose (combined) value is zero; explicit zeros are kept otherwise.
    #[arg(long)]
    pub drop_zeros: bool,
    /// Edge lists and CSV: add (col, row) for every (row, col), making the graph undirected.
    #[arg(long)]
    pub symmetrize: bool,
    /// Edge lists and CSV: whether indices start at 0 or 1.
    #[arg(long, value_name = "0|1", value_parser = clap::value_parser!(u64).range(0..=1))]
    pub index_base: Option<u64>,
    /// Shape ROWS,COLS. Otherwise Matrix Market's size line; edge lists are square graphs (largest
    /// vertex id + 1 on both sides); CSV gives max row + 1 by max column + 1.
    #[arg(long, value_name = "R,C", value_parser = parse_shape)]
    pub shape: Option<(u64, u64)>,
    /// Without --shape: make the matrix square (largest row or column index + 1 on both sides), as
    /// for a graph. The default for edge lists.
    #[arg(long, conflicts_with_all = ["shape", "rectangular"])]
    pub square: bool,
    /// Without --shape: rows and columns sized separately (max row + 1 by max column + 1), e.g. for a
    /// bipartite edge list. The default for CSV.
    #[arg(long, conflicts_with = "shape")]
    pub rectangular: bool,
    /// Stored value type (auto: pattern for inputs without values, int64 for integer Matrix Market, else f64).
    #[arg(long, value_enum, default_value = "auto")]
    pub value_type: ValueTypeChoice,
    /// Layout: csr, csc, or both (DIR/csr and DIR/csc).
    #[arg(long, value_enum, default_value = "csr")]
    pub layout: LayoutChoiceArg,
    /// Bound on each segment's payload.
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg, default_value = "64M")]
    pub segment_size: u64,
    /// Store each 64 x 64 block holding at least this fraction of its positions (0 < FRACTION <= 1;
    /// 1: only full blocks) as a dense block; `off` writes plain CSR/CSC segments. The default 0.7
    /// comes from a measured sweep (docs/performance.md, "Dense blocks").
    #[arg(long, value_name = "FRACTION|off", value_parser = crate::args::parse_dense_threshold, default_value = "0.7")]
    pub dense_threshold: crate::args::DenseThreshold,
    /// CSV: field delimiter (one character; `\t` for tab).
    #[arg(long, value_name = "C", value_parser = parse_delimiter)]
    pub delimiter: Option<u8>,
    /// CSV: the row, column and optional value columns, by 0-based index or header name (e.g. `src,dst,w`).
    #[arg(long, value_name = "R,C[,V]", value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// CSV: the first line is a header (default: detected).
    #[arg(long, conflicts_with = "no_header")]
    pub header: bool,
    /// CSV: the first line is data.
    #[arg(long)]
    pub no_header: bool,
    /// Replace a matrix already in DIR (it stays readable until the new one is published).
    #[arg(long)]
    pub force: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Input formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// Detect.
    Auto,
    /// Matrix Market.
    Mtx,
    /// Whitespace-separated edge list.
    Edges,
    /// Comma (or --delimiter) separated values.
    Csv,
}

/// Duplicate policies.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DuplicatesArg {
    /// Add them (scipy, GraphBLAS).
    Sum,
    /// Keep the first in the file.
    First,
    /// Keep the last in the file.
    Last,
    /// Keep the smallest.
    Min,
    /// Keep the largest.
    Max,
    /// Refuse the input.
    Error,
}

/// Value types.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ValueTypeChoice {
    /// From the input.
    Auto,
    /// 64-bit floats.
    F64,
    /// 32-bit floats.
    F32,
    /// 64-bit integers.
    I64,
    /// Structure only.
    Pattern,
}

/// Layouts.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LayoutChoiceArg {
    /// Row bands.
    Csr,
    /// Column bands.
    Csc,
    /// Both, as DIR/csr and DIR/csc.
    Both,
}

fn parse_shape(s: &str) -> std::result::Result<(u64, u64), String> {
    let bad = || format!("cannot read {s:?} as a shape: expected ROWS,COLS (e.g. 1000,1000)");
    let (r, c) = s.split_once([',', 'x']).ok_or_else(bad)?;
    Ok((r.trim().parse().map_err(|_| bad())?, c.trim().parse().map_err(|_| bad())?))
}

fn parse_delimiter(s: &str) -> std::result::Result<u8, String> {
    match s {
        "\\t" | "tab" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        _ => Err(format!("the delimiter must be one ASCII character (or \\t), not {s:?}")),
    }
}

pub fn run(args: ImportArgs, quiet: bool) -> Result<()> {
    let read = ReadOptions {
        format: match args.format {
            FormatArg::Auto => InputFormat::Auto,
            FormatArg::Mtx => InputFormat::MatrixMarket,
            FormatArg::Edges => InputFormat::EdgeList,
            FormatArg::Csv => InputFormat::Csv,
        },
        index_base: args.index_base,
        symmetrize: args.symmetrize,
        delimiter: args.delimiter,
        columns: args.columns.as_ref().map(|cols| {
            cols.iter()
                .map(|c| {
                    c.trim()
                        .parse::<usize>()
                        .map(ColumnSpec::Index)
                        .unwrap_or_else(|_| ColumnSpec::Name(c.trim().to_string()))
                })
                .collect()
        }),
        has_header: if args.header {
            Some(true)
        } else if args.no_header {
            Some(false)
        } else {
            None
        },
        ..ReadOptions::default()
    };
    let options = ImportOptions {
        read,
        memory_budget: args.memory.unwrap_or_else(default_memory_budget),
        duplicates: match args.duplicates {
            DuplicatesArg::Sum => Duplicates::Sum,
            DuplicatesArg::First => Duplicates::First,
            DuplicatesArg::Last => Duplicates::Last,
            DuplicatesArg::Min => Duplicates::Min,
            DuplicatesArg::Max => Duplicates::Max,
            DuplicatesArg::Error => Duplicates::Error,
        },
        drop_zeros: args.drop_zeros,
        shape: args.shape,
        square: match (args.square, args.rectangular) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        values: match args.value_type {
            ValueTypeChoice::Auto => ValueChoice::Auto,
            ValueTypeChoice::F64 => ValueChoice::Fixed(ValueType::Float64),
            ValueTypeChoice::F32 => ValueChoice::Fixed(ValueType::Float32),
            ValueTypeChoice::I64 => ValueChoice::Fixed(ValueType::Int64),
            ValueTypeChoice::Pattern => ValueChoice::Fixed(ValueType::Pattern),
        },
        layout: match args.layout {
            LayoutChoiceArg::Csr => LayoutChoice::Csr,
            LayoutChoiceArg::Csc => LayoutChoice::Csc,
            LayoutChoiceArg::Both => LayoutChoice::Both,
        },
        writer: WriterOptions {
            segment_bytes: args.segment_size.max(1),
            overwrite: args.force,
            dense: args.dense_threshold.options(),
            ..WriterOptions::default()
        },
    };
    let input_size =
        if args.input.as_os_str() == "-" { None } else { std::fs::metadata(&args.input).ok().map(|m| m.len()) };
    let bar = import_bar(input_size, quiet || args.json);
    let bar_in = bar.clone();
    let summary = import(&args.input, &args.output, &options, move |p: &ImportProgress| {
        bar_in.set_position(p.bytes);
        bar_in.set_message(format!(
            "{}: {} triplets{}",
            p.build.phase.name(),
            p.build.triplets,
            if p.build.runs > 0 { format!(", {} runs", p.build.runs) } else { String::new() }
        ));
    })?;
    bar.finish_and_clear();
    let peak = peak_rss_bytes();
    let mb_per_s = summary.bytes as f64 / summary.seconds.max(1e-9) / 1e6;
    let triplets_per_s = summary.triplets as f64 / summary.seconds.max(1e-9);
    if args.json {
        return emit_json(&serde_json::json!({
            "input": args.input.display().to_string(),
            "outputs": summary.outputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "rows": summary.shape.0,
            "cols": summary.shape.1,
            "nnz": summary.nnz,
            "value_type": summary.value_type.name(),
            "lines": summary.lines,
            "triplets": summary.triplets,
            "duplicates_combined": summary.build.duplicates_combined,
            "zeros_dropped": summary.build.zeros_dropped,
            "runs": summary.build.runs,
            "direct_chunks": summary.build.direct_chunks,
            "spilled_bytes": summary.build.spilled_bytes,
            "chunk_capacity": summary.build.chunk_capacity,
            "bytes_read": summary.bytes,
            "seconds": summary.seconds,
            "parse_seconds": summary.parse_seconds,
            "sort_write_seconds": summary.build.sort_seconds,
            "spill_seconds": summary.build.spill_seconds,
            "publish_seconds": summary.build.write_seconds,
            "triplets_per_s": triplets_per_s,
            "mb_per_s": mb_per_s,
            "memory_budget": options.memory_budget,
            "parse_threads": summary.parse_threads,
            "parse_block_bytes": summary.parse_block_bytes,
            "peak_rss_bytes": peak,
        }));
    }
    if quiet {
        return Ok(());
    }
    emit(&format!(
        "imported {} -> {}: {} x {}, {} nonzeros ({} {} triplets, {} duplicates combined{}) in {:.2} s: {:.1} M triplets/s, {:.0} MB/s, peak memory {}, {} parse thread{}",
        args.input.display(),
        summary.outputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" + "),
        summary.shape.0,
        summary.shape.1,
        summary.nnz,
        summary.triplets,
        summary.value_type,
        summary.build.duplicates_combined,
        if summary.build.runs > 0 { format!(", {} runs spilled", summary.build.runs) } else { String::new() },
        summary.seconds,
        triplets_per_s / 1e6,
        mb_per_s,
        peak.map(format_bytes).unwrap_or_else(|| "?".into()),
        summary.parse_threads,
        if summary.parse_threads == 1 { "" } else { "s" },
    ))
}

fn import_bar(total: Option<u64>, hidden: bool) -> ProgressBar {
    let template = if total.is_some() {
        "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})"
    } else {
        "{spinner} {msg} {bytes} ({bytes_per_sec})"
    };
    styled_bar(total, template, hidden)
}
