//! Import: a triplet file (Matrix Market, edge list, CSV; plain, gzipped or on standard input) to a
//! matrix on disk, out of core, in one pass over the input.
//!
//! The parser ([`io::read`](crate::io::read)) reads blocks in parallel and hands triplets, in file
//! order, to the [`TripletBuilder`], which sorts them in chunks sized by the memory budget, spills
//! sorted runs when the input outgrows it, and merges them into the writer. Memory: the budget, of
//! which [`parser_reserve`] goes to the parser's blocks in flight; [`plan_parsing`] chooses how many
//! threads parse (and, for tight budgets, how large their blocks are) so that both fit. Both are
//! defined with the other budget rules in [`budget`](crate::budget).

pub use crate::budget::{parser_reserve, plan_parsing, ParsePlan};

use crate::budget::min_import_budget;
use crate::builder::{BuildOptions, BuildPhase, BuildProgress, BuildStats, Duplicates, TripletBuilder};
use crate::element::{with_value_type, Element};
use crate::error::{Error, Result};
use crate::format::{Layout, ValueType};
use crate::io::read::{Field, InputFormat, ReadOptions, TripletReader};
use crate::matrix::Matrix;
use crate::writer::WriterOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The smallest memory budget [`import`] accepts with `read`: the builder's minimum
/// ([`MIN_MEMORY_BUDGET`](crate::budget::MIN_MEMORY_BUDGET)) plus one parse thread with blocks of
/// 1 MiB (or `read.block_bytes`, if smaller); see [`min_import_budget`].
pub fn min_memory_budget(read: &ReadOptions) -> u64 {
    min_import_budget(read.block_bytes)
}

/// Which layouts to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutChoice {
    /// One CSR matrix in the output directory.
    Csr,
    /// One CSC matrix in the output directory.
    Csc,
    /// Both: `DIR/csr` and `DIR/csc`, each a matrix (the CSC one built from the CSR one, so the input
    /// is parsed once).
    Both,
}

/// What the import stores as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueChoice {
    /// From the input: pattern files and edge lists without weights as `pattern`, integer Matrix
    /// Market files as `int64`, everything else `float64`.
    #[default]
    Auto,
    /// A fixed type.
    Fixed(ValueType),
}

/// Options of [`import`].
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Parser options (format, index base, symmetrize, CSV columns, ...).
    pub read: ReadOptions,
    /// Total memory budget (parser + builder; see [`plan_parsing`] for how it is split), at least
    /// [`min_memory_budget`]. `read.threads` bounds the parse threads (`None`: the rayon pool's).
    pub memory_budget: u64,
    /// Duplicate policy.
    pub duplicates: Duplicates,
    /// Drop entries whose combined value is zero.
    pub drop_zeros: bool,
    /// Shape to use instead of the input's.
    pub shape: Option<(u64, u64)>,
    /// Without a shape (given or declared): whether to make it square, `n x n` with `n` the largest
    /// index plus one (a graph's vertices), or `(max row + 1, max col + 1)`. `None`: square for edge
    /// lists, which are graphs, separate for CSV.
    pub square: Option<bool>,
    /// Value type.
    pub values: ValueChoice,
    /// Layouts to build.
    pub layout: LayoutChoice,
    /// Writer options (segment size, overwrite, durability).
    pub writer: WriterOptions,
}

/// A progress report of an import.
#[derive(Debug, Clone, Copy)]
pub struct ImportProgress {
    /// Input bytes consumed.
    pub bytes: u64,
    /// The builder's report.
    pub build: BuildProgress,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    /// The matrices written (one, or CSR then CSC for [`LayoutChoice::Both`]).
    pub outputs: Vec<PathBuf>,
    /// Shape of the matrix.
    pub shape: (u64, u64),
    /// Stored entries.
    pub nnz: u64,
    /// Value type stored.
    pub value_type: ValueType,
    /// Input bytes read (after decompression).
    pub bytes: u64,
    /// Lines of input.
    pub lines: u64,
    /// Triplets produced (after symmetric expansion).
    pub triplets: u64,
    /// The builder's statistics (of the first layout built).
    pub build: BuildStats,
    /// Seconds from start to end.
    pub seconds: f64,
    /// Seconds spent reading and parsing (overlapping with chunk sorts and spills).
    pub parse_seconds: f64,
    /// Blocks parsed at once: the machine's threads (or [`ReadOptions::threads`]), fewer when the
    /// memory budget does not hold their blocks (see [`plan_parsing`]).
    pub parse_threads: usize,
    /// Size of the text blocks parsed (smaller than [`ReadOptions::block_bytes`] only when the budget
    /// does not hold one thread's blocks of that size).
    pub parse_block_bytes: usize,
}

/// Imports `input` (`-` for standard input) into `dir`.
///
/// # Errors
///
/// Parse errors with file and line ([`Error::Parse`], also for an empty input); [`Error::InvalidInput`]
/// for bad options, a budget below [`min_memory_budget`] (before the input is opened), an output directory that holds a matrix without `overwrite`, or duplicates under the `error` policy;
/// I/O errors. On any error nothing is published and no staging file is left.
pub fn import(
    input: &Path,
    dir: &Path,
    options: &ImportOptions,
    progress: impl FnMut(&ImportProgress) + Send + Clone + 'static,
) -> Result<ImportSummary> {
    let start = Instant::now();
    let max_threads = options.read.threads.unwrap_or_else(rayon::current_num_threads);
    let plan = plan_parsing(options.memory_budget, max_threads, options.read.block_bytes)?;
    let read = ReadOptions { threads: Some(plan.threads), block_bytes: plan.block_bytes, ..options.read.clone() };
    let reader = TripletReader::open(input, read)?;
    let header = reader.header().clone();
    let value_type = match options.values {
        ValueChoice::Fixed(t) => t,
        ValueChoice::Auto => match header.field {
            Field::Pattern => ValueType::Pattern,
            Field::Integer => ValueType::Int64,
            Field::Real => ValueType::Float64,
        },
    };
    let dir_existed = dir.exists();
    let result =
        with_value_type!(value_type, |V| run::<V>(reader, input, dir, options, plan, value_type, start, progress));
    if result.is_err() && !dir_existed && options.layout == LayoutChoice::Both {
        // The parent of DIR/csr and DIR/csc was made for this call: nothing of it may remain.
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn run<V: Element>(
    reader: TripletReader,
    input: &Path,
    dir: &Path,
    options: &ImportOptions,
    plan: ParsePlan,
    value_type: ValueType,
    start: Instant,
    progress: impl FnMut(&ImportProgress) + Send + Clone + 'static,
) -> Result<ImportSummary> {
    let shape = options.shape.or(reader.header().shape);
    if let (Some(given), Some(declared)) = (options.shape, reader.header().shape) {
        if given != declared {
            return Err(Error::invalid(format!(
                "--shape {}x{} differs from the {}x{} that {} declares",
                given.0,
                given.1,
                declared.0,
                declared.1,
                input.display()
            )));
        }
    }
    let (first_dir, first_layout) = match options.layout {
        LayoutChoice::Csr => (dir.to_path_buf(), Layout::Csr),
        LayoutChoice::Csc => (dir.to_path_buf(), Layout::Csc),
        LayoutChoice::Both => {
            check_both_dir(dir, options.writer.overwrite)?;
            (dir.join("csr"), Layout::Csr)
        }
    };
    // What to remove if the second layout fails after the first was published.
    let dir_existed = dir.exists();
    let csr_existed = dir.join("csr").join(crate::format::MANIFEST_FILE).exists();
    let build_options = BuildOptions {
        memory_budget: plan.builder_budget,
        duplicates: options.duplicates,
        drop_zeros: options.drop_zeros,
        layout: first_layout,
        shape,
        square: options.square.unwrap_or(matches!(reader.header().format, InputFormat::EdgeList)),
        writer: options.writer.clone(),
        max_chunk_triplets: None,
    };
    let mut builder = TripletBuilder::<V>::new(&first_dir, build_options.clone())?;
    let bytes_seen = std::sync::Arc::new(AtomicU64::new(0));
    {
        let bytes_seen = bytes_seen.clone();
        let mut p = progress.clone();
        builder.on_progress(move |b| p(&ImportProgress { bytes: bytes_seen.load(Ordering::Relaxed), build: *b }));
    }
    let mut p = progress.clone();
    let parse_start = Instant::now();
    let triplets = AtomicU64::new(0);
    // The parse workers bucket each block for the builder as they parse it, in parallel: the ordered
    // hand-over only moves blocks into the builder's chunk.
    let bucketer = builder.bucketer();
    let summary = reader.read_all_prepared::<V, Result<crate::builder::Block<V>>>(
        &|chunk| bucketer.bucket(chunk),
        &mut |chunk, block| {
            triplets.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            builder.push_block(chunk, block?)
        },
        &mut |bytes| {
            bytes_seen.store(bytes, Ordering::Relaxed);
            let build = BuildProgress {
                phase: BuildPhase::Ingest,
                triplets: triplets.load(Ordering::Relaxed),
                runs: 0,
                written: 0,
            };
            p(&ImportProgress { bytes, build });
        },
    )?;
    let parse_seconds = parse_start.elapsed().as_secs_f64();
    let (matrix, stats) = builder.finish()?;
    let mut outputs = vec![first_dir.clone()];
    if options.layout == LayoutChoice::Both {
        let csc_dir = dir.join("csc");
        let csc_options = BuildOptions { layout: Layout::Csc, shape: Some(matrix.shape()), ..build_options };
        if let Err(e) = rebuild::<V>(&matrix, &csc_dir, csc_options) {
            // Both or neither: take back the CSR matrix this call published (a replaced one is gone
            // either way, as with any failed --force).
            if !dir_existed {
                let _ = std::fs::remove_dir_all(dir);
            } else if !csr_existed {
                let _ = std::fs::remove_dir_all(&first_dir);
            }
            return Err(e);
        }
        outputs.push(csc_dir);
    }
    Ok(ImportSummary {
        outputs,
        shape: matrix.shape(),
        nnz: matrix.nnz(),
        value_type,
        bytes: summary.bytes,
        lines: summary.lines,
        triplets: summary.triplets,
        build: stats,
        seconds: start.elapsed().as_secs_f64(),
        parse_seconds,
        parse_threads: plan.threads,
        parse_block_bytes: plan.block_bytes,
    })
}

/// `--layout both` writes `DIR/csr` and `DIR/csc`: `DIR` may be absent or hold only those two.
fn check_both_dir(dir: &Path, overwrite: bool) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, "listing the output directory", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "csr" && name != "csc" {
            return Err(Error::invalid(format!(
                "{} holds {name:?}; with --layout both it may hold only the csr and csc matrices",
                dir.display()
            )));
        }
        crate::directory::check_output_dir(&entry.path(), overwrite)?;
    }
    Ok(())
}

/// Streams every entry of `matrix` (of value type `V`) into a new build: a layout conversion in
/// bounded memory.
fn rebuild<V: Element>(matrix: &Matrix, dir: &Path, options: BuildOptions) -> Result<(Matrix, BuildStats)> {
    let mut builder = TripletBuilder::<V>::new(dir, options)?;
    let layout = matrix.layout();
    for seg in matrix.segments_mapped() {
        crate::interrupt::check()?;
        let seg = seg?;
        seg.check_structure()?;
        let indptr = seg.indptr();
        let indices = seg.indices();
        let units = vec![(); seg.nnz() as usize];
        let values = V::stored_slice(seg.values(), &units)
            .ok_or_else(|| Error::invalid("the matrix's value type changed while converting"))?;
        for local in 0..indptr.len() - 1 {
            let outer = seg.start() + local as u64;
            let (a, b) = (indptr[local] as usize, indptr[local + 1] as usize);
            for (k, &value) in (a..b).zip(&values[a..b]) {
                let (row, col) = layout.row_col(outer, indices.get(k));
                builder.push(row, col, value)?;
            }
        }
    }
    builder.finish()
}
