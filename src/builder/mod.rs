//! The triplet builder: entries in any order in, a matrix on disk out, in bounded memory.
//!
//! An external sort (after webgraph-rs's `par_sort_pairs` and every database's sort operator):
//!
//! 1. **Chunks.** Triplets accumulate in a buffer sized from the memory budget, bucketed by outer
//!    index a block at a time (an import's parse workers bucket their blocks in parallel; see `sort`).
//! 2. **Sort.** A full buffer is sorted by `(outer, inner)` in parallel and stably (a counting sort by
//!    outer index, then each outer index's entries by inner index; see `sort`), and duplicates inside it
//!    are combined by the policy.
//! 3. **Spill.** If more input follows, the sorted chunk is written as a *run* to a staging directory
//!    inside the output directory (so it is on the same filesystem and is cleaned with it): packed
//!    records (16 bytes per `f64` entry when indices fit 32 bits), encoded in parallel by the sort and
//!    written with direct I/O (see `run`).
//! 4. **Merge.** At [`finish`](TripletBuilder::finish) the last chunk is spilled too, and the runs are
//!    merged into the [`MatrixWriter`] a window of keys at a time: each window, a chunk's worth of
//!    entries from every run, is read back and sorted again by the chunk sort, which combines
//!    duplicates across runs; windows whose runs follow each other (presorted input) are copied
//!    without a sort. More runs than one window can take a fence interval of (see `run`) are first
//!    merged in groups into fewer runs. When everything fits in one chunk, nothing touches the staging
//!    area: sort, then write.
//!
//! Memory is the budget whatever the input size: the chunk and its sort workspace take what the budget
//! allows (each entry is charged its stored size, 16 bytes for `f64` below 2^32 x 2^32, plus 16 for
//! the sort's scratch and output in flight) and are released before the merge, whose windows hold as
//! many entries as a chunk; reading runs and writing the matrix take buffers of a few MiB from the
//! reserve. Disk use is the runs (`8 + value bytes` per entry, `16 + value bytes` with 64-bit indices;
//! twice during a cascade pass) plus the output.
//!
//! **Duplicates** are combined in input order (the sort is stable and runs merge in input order), so
//! `sum` adds them in the order they were read, exactly like scipy's `sum_duplicates`, and `first` /
//! `last` mean first and last in the input. Explicit zeros are kept unless `drop_zeros` is set, which
//! drops entries whose *combined* value is zero.
//!
//! **Atomicity.** Nothing is published before the manifest at the end. A builder dropped without
//! `finish` (a parse error, an interrupted import) removes its staging area, and the output directory if
//! it created it; an existing matrix being replaced (`overwrite`) stays readable throughout.

mod run;
mod sort;

pub(crate) use sort::Block;

pub use crate::budget::{default_memory_budget, MIN_MEMORY_BUDGET};

use crate::budget::{builder_chunk_bytes, check_minimum};
use crate::directory::{check_output_dir, StagingArea};
use crate::element::{Element, Triplet};
use crate::error::{Error, Result};
use crate::format::Layout;
use crate::matrix::Matrix;
use crate::writer::chunk::ChunkIo;
use crate::writer::{check_pointer_space, MatrixWriter, WriterOptions};
use sort::Encoding;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// An entry in layout order: `(outer, inner)` is `(row, col)` for CSR, `(col, row)` for CSC.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Entry<V> {
    pub(crate) outer: u64,
    pub(crate) inner: u64,
    pub(crate) value: V,
}

/// What to do with entries that share a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Duplicates {
    /// Add them, in input order (scipy, GraphBLAS and Matrix Market convention).
    #[default]
    Sum,
    /// Keep the first in input order.
    First,
    /// Keep the last in input order.
    Last,
    /// Keep the smallest.
    Min,
    /// Keep the largest.
    Max,
    /// Refuse the input.
    Error,
}

impl std::str::FromStr for Duplicates {
    type Err = Error;
    fn from_str(s: &str) -> Result<Duplicates> {
        Ok(match s {
            "sum" => Duplicates::Sum,
            "first" => Duplicates::First,
            "last" => Duplicates::Last,
            "min" => Duplicates::Min,
            "max" => Duplicates::Max,
            "error" => Duplicates::Error,
            other => {
                return Err(Error::invalid(format!(
                    "unknown duplicate policy {other:?}: expected sum, first, last, min, max or error"
                )))
            }
        })
    }
}

/// Options of a [`TripletBuilder`].
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Bytes the builder may use for its buffers (sort chunk, workspace, merge buffers).
    pub memory_budget: u64,
    /// Duplicate policy.
    pub duplicates: Duplicates,
    /// Drop entries whose combined value is zero.
    pub drop_zeros: bool,
    /// Layout of the output.
    pub layout: Layout,
    /// Shape of the matrix; `None` infers it as `(max row + 1, max col + 1)`, or see `square`.
    pub shape: Option<(u64, u64)>,
    /// When the shape is inferred, make it square: `n x n` with `n` the largest row or column index
    /// plus one, as a graph's vertex set (an edge list whose largest source and largest target differ
    /// is still one graph).
    pub square: bool,
    /// Options of the writer (segment size, overwrite, durability).
    pub writer: WriterOptions,
    /// Caps the triplets per in-memory chunk below what the budget allows: for tests that must
    /// exercise spilling and merging on small inputs, and for tuning. `None`: the budget decides.
    pub max_chunk_triplets: Option<usize>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            memory_budget: default_memory_budget(),
            duplicates: Duplicates::Sum,
            drop_zeros: false,
            layout: Layout::Csr,
            shape: None,
            square: false,
            writer: WriterOptions::default(),
            max_chunk_triplets: None,
        }
    }
}

/// The phase a build is in, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildPhase {
    /// Accepting triplets.
    Ingest,
    /// Sorting a full chunk.
    Sort,
    /// Writing a sorted run to the staging area.
    Spill,
    /// Merging runs into the matrix.
    Merge,
    /// Writing the matrix (single-chunk builds).
    Write,
}

impl BuildPhase {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            BuildPhase::Ingest => "parse",
            BuildPhase::Sort => "sort",
            BuildPhase::Spill => "spill",
            BuildPhase::Merge => "merge",
            BuildPhase::Write => "write",
        }
    }
}

/// A progress report.
#[derive(Debug, Clone, Copy)]
pub struct BuildProgress {
    /// Current phase.
    pub phase: BuildPhase,
    /// Triplets accepted so far.
    pub triplets: u64,
    /// Runs spilled so far.
    pub runs: usize,
    /// Entries written to the matrix so far.
    pub written: u64,
}

/// What a finished build did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuildStats {
    /// Triplets accepted.
    pub triplets: u64,
    /// Sorted runs spilled to disk (0: the build fit in memory, or its input came sorted).
    pub runs: usize,
    /// Full chunks written straight into the matrix because each followed the one before (input
    /// sorted in layout order, with a declared shape); if a later chunk did not, they were turned
    /// into one run, counted in `runs`.
    pub direct_chunks: usize,
    /// Bytes written to runs.
    pub spilled_bytes: u64,
    /// Entries in the matrix (after combining duplicates and dropping zeros).
    pub nnz: u64,
    /// Entries removed as duplicates.
    pub duplicates_combined: u64,
    /// Entries dropped as zeros.
    pub zeros_dropped: u64,
    /// Triplets per in-memory chunk the budget allowed.
    pub chunk_capacity: usize,
    /// Seconds spent sorting the last chunk and writing it (single-chunk builds), or sorting it and
    /// merging every run into the matrix.
    pub sort_seconds: f64,
    /// Seconds spent sorting chunks and writing them as runs to the staging area.
    pub spill_seconds: f64,
    /// Seconds spent closing the matrix: the last segment, fsyncs, and publishing the manifest.
    pub write_seconds: f64,
}

type ProgressFn = Box<dyn FnMut(&BuildProgress) + Send>;

/// Builds a matrix from triplets in any order. See the [module docs](self).
///
/// # Examples
///
/// ```
/// use sparsedisk::builder::{BuildOptions, TripletBuilder};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let dir = tmp.path().join("m");
/// let mut b = TripletBuilder::<f64>::new(&dir, BuildOptions::default())?;
/// b.push(2, 0, 1.0)?;
/// b.push(0, 1, 2.0)?;
/// b.push(2, 0, 0.5)?; // a duplicate: summed
/// let (m, stats) = b.finish()?;
/// assert_eq!((m.shape(), m.nnz(), stats.duplicates_combined), ((3, 2), 2, 1));
/// # Ok::<(), sparsedisk::Error>(())
/// ```
pub struct TripletBuilder<V: Element> {
    dir: PathBuf,
    options: BuildOptions,
    /// Where runs are spilled; dropping it removes them, and the output directory if it was created
    /// for them and nothing was published.
    staging: StagingArea,
    chunk: sort::Chunk<V>,
    /// Most triplets in one chunk (from `max_chunk_triplets`, else unbounded but for `chunk_bytes`).
    capacity: usize,
    /// Most bytes one chunk holds (stored entries, charged with their share of the sort's scratch).
    chunk_bytes: usize,
    /// Sorted runs waiting to be merged, in input order.
    runs: Vec<run::Run>,
    /// The I/O thread writing runs (started at the first spill).
    run_io: Option<ChunkIo>,
    /// The matrix being written straight from full chunks while each follows the last (presorted
    /// input with a declared shape), and the last key written to it.
    direct: Option<MatrixWriter<V>>,
    direct_last: Option<(u64, u64)>,
    /// Chunks written straight into the matrix, and whether a chunk has overlapped (no more are).
    direct_chunks: usize,
    direct_off: bool,
    /// Runs spilled from chunks (a cascade merge later replaces groups of them).
    runs_spilled: usize,
    spilled_bytes: u64,
    triplets: u64,
    max_row: Option<u64>,
    max_col: Option<u64>,
    combined: u64,
    zeros_dropped: u64,
    progress: Option<ProgressFn>,
    sort_seconds: f64,
    spill_seconds: f64,
}

/// Bytes charged per chunk entry stored in `stored` bytes: the entry, plus the sort's share of a
/// bucket's scratch (a sorted copy of 24 bytes per entry of the largest buckets in flight, which a
/// power-law matrix makes a few percent of the chunk) and the sorted output waiting to be written.
const fn charge(stored: usize) -> usize {
    stored + 16
}

impl<V: Element> TripletBuilder<V> {
    /// Prepares a build into `dir`. Fails at once (before any input is read) when `dir` holds a matrix
    /// and `options.writer.overwrite` is off, or holds foreign files.
    ///
    /// # Errors
    ///
    /// As [`check_output_dir`]; [`Error::InvalidInput`] for a budget below [`MIN_MEMORY_BUDGET`].
    pub fn new(dir: impl AsRef<Path>, options: BuildOptions) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        check_minimum(options.memory_budget, MIN_MEMORY_BUDGET, "the builder")?;
        if let Some((r, c)) = options.shape {
            if r > i64::MAX as u64 || c > i64::MAX as u64 {
                return Err(Error::invalid(format!(
                    "shape {r} x {c} exceeds the largest supported dimension 2^63 - 1"
                )));
            }
        }
        check_output_dir(&dir, options.writer.overwrite)?;
        if let Some(shape) = options.shape {
            // An absurd declared shape is refused before any input is read, not after.
            check_pointer_space(&dir, shape, options.layout)?;
        }
        // The chunk's stored entries (see `charge`) within the budget less the reserve.
        let chunk_bytes = builder_chunk_bytes(options.memory_budget);
        let capacity = options.max_chunk_triplets.map_or(usize::MAX, |cap| cap.max(1));
        let typical = (chunk_bytes / charge(std::mem::size_of::<sort::Packed<V>>())).max(1024);
        let bucketer = sort::Bucketer::new(typical.min(capacity), options.layout, options.shape);
        Ok(TripletBuilder {
            staging: StagingArea::new(&dir, ""),
            dir,
            options,
            chunk: sort::Chunk::new(bucketer),
            capacity,
            chunk_bytes,
            runs: Vec::new(),
            run_io: None,
            direct: None,
            direct_last: None,
            direct_chunks: 0,
            direct_off: false,
            runs_spilled: 0,
            spilled_bytes: 0,
            triplets: 0,
            max_row: None,
            max_col: None,
            combined: 0,
            zeros_dropped: 0,
            progress: None,
            sort_seconds: 0.0,
            spill_seconds: 0.0,
        })
    }

    /// Calls `f` with a progress report at every phase change and now and then while merging.
    pub fn on_progress(&mut self, f: impl FnMut(&BuildProgress) + Send + 'static) {
        self.progress = Some(Box::new(f));
    }

    /// Triplets the budget lets one in-memory chunk hold when both indices fit 32 bits (entries of
    /// 16 bytes for `f64`; wider ones, 24 bytes, fit fewer).
    pub fn chunk_capacity(&self) -> usize {
        (self.chunk_bytes / charge(std::mem::size_of::<sort::Packed<V>>())).min(self.capacity)
    }

    /// Whether the chunk is full.
    fn chunk_full(&self) -> bool {
        self.chunk.len() >= self.capacity || self.charged() >= self.chunk_bytes
    }

    /// The chunk's bytes with the sort's share (see [`charge`]).
    fn charged(&self) -> usize {
        self.chunk.bytes() + self.chunk.len() * charge(0)
    }

    /// What the parse workers need to bucket blocks for this builder
    /// ([`push_block`](Self::push_block)).
    pub(crate) fn bucketer(&self) -> sort::Bucketer {
        self.chunk.bucketer()
    }

    /// Triplets accepted so far.
    pub fn triplets(&self) -> u64 {
        self.triplets
    }

    /// Adds one entry.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] outside a declared shape; I/O errors of a spill.
    #[inline]
    pub fn push(&mut self, row: u64, col: u64, value: V) -> Result<()> {
        sort::check_bounds(row, col, self.options.shape)?;
        self.max_row = Some(self.max_row.map_or(row, |m| m.max(row)));
        self.max_col = Some(self.max_col.map_or(col, |m| m.max(col)));
        self.chunk.push(Triplet { row, col, value });
        self.triplets += 1;
        if self.chunk_full() {
            self.spill()?;
        }
        Ok(())
    }

    /// Adds a slice of entries, in order: the same as [`push`](Self::push) for each, but bucketed a
    /// block at a time.
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push) (entries before an out-of-bounds one are added).
    pub fn push_triplets(&mut self, mut triplets: &[Triplet<V>]) -> Result<()> {
        while !triplets.is_empty() {
            // As many as fit before the chunk is full: under `max_chunk_triplets` spills fall exactly
            // where `push` puts them; by bytes, a little earlier (entries charged as unbucketed).
            let per_entry = charge(std::mem::size_of::<Triplet<V>>());
            let room_bytes = self.chunk_bytes.saturating_sub(self.charged()).div_ceil(per_entry);
            let room = (self.capacity - self.chunk.len()).min(room_bytes).clamp(1, 1 << 16);
            let (now, rest) = triplets.split_at(room.min(triplets.len()));
            let block = match self.chunk.bucketer().bucket(now) {
                Ok(block) => block,
                Err(e) => {
                    // Add those before the bad one, as `push` would have, then fail.
                    for t in now {
                        self.push(t.row, t.col, t.value)?;
                    }
                    return Err(e);
                }
            };
            self.add_block(block)?;
            triplets = rest;
        }
        Ok(())
    }

    /// Adds a block that a parse worker bucketed from `triplets` (the same entries, in order) with
    /// [`bucketer`](Self::bucketer): the fast path of an import, where the only sequential work per
    /// block is moving it into the chunk.
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push).
    pub(crate) fn push_block(&mut self, triplets: &[Triplet<V>], block: sort::Block<V>) -> Result<()> {
        let fits_empty = block.len() <= self.capacity && block.bytes() + block.len() * charge(0) <= self.chunk_bytes;
        let fits_now = self.chunk.len() + block.len() <= self.capacity
            && self.charged() + block.bytes() + block.len() * charge(0) <= self.chunk_bytes;
        if !fits_empty {
            // Too large for any chunk: split where `push` would spill.
            return self.push_triplets(triplets);
        }
        if !fits_now {
            // Spill a little early rather than split a block: the runs still hold the input in order.
            self.spill()?;
        }
        self.add_block(block)
    }

    fn add_block(&mut self, block: sort::Block<V>) -> Result<()> {
        // Once per block (an import's parse loop hands blocks of up to 8 MiB of text).
        crate::interrupt::check()?;
        if block.len() == 0 {
            return Ok(());
        }
        let (r, c) = block.max_row_col();
        self.max_row = Some(self.max_row.map_or(r, |m| m.max(r)));
        self.max_col = Some(self.max_col.map_or(c, |m| m.max(c)));
        self.triplets += block.len() as u64;
        self.chunk.push_block(block);
        if self.chunk_full() {
            self.spill()?;
        }
        Ok(())
    }

    fn report(&mut self, phase: BuildPhase, written: u64) {
        let p = BuildProgress { phase, triplets: self.triplets, runs: self.runs_spilled, written };
        if let Some(f) = self.progress.as_mut() {
            f(&p);
        }
    }

    fn combine(&self, drop_zeros: bool) -> Combine {
        Combine { policy: self.options.duplicates, drop_zeros, layout: self.options.layout }
    }

    /// Sorts the buffer and writes it as a run, or straight into the matrix when it follows what was
    /// written before.
    fn spill(&mut self) -> Result<()> {
        crate::interrupt::check()?;
        self.report(BuildPhase::Sort, 0);
        if self.write_direct()? {
            self.report(BuildPhase::Ingest, 0);
            return Ok(());
        }
        let staging = self.staging.dir()?;
        let path = staging.join(format!("run-{:06}", self.runs_spilled));
        // Narrow records unless an index seen so far needs 64 bits.
        let (max_outer, max_inner) = match self.options.layout {
            Layout::Csr => (self.max_row, self.max_col),
            Layout::Csc => (self.max_col, self.max_row),
        };
        let wide = max_outer.unwrap_or(0) > u32::MAX as u64 || max_inner.unwrap_or(0) > u32::MAX as u64;
        let every = self.fence_interval();
        let io = self.run_io.get_or_insert_with(|| ChunkIo::new(false));
        let mut writer = run::RunWriter::create::<V>(io, &path, wide, every)?;
        let t = Instant::now();
        let mut combined = 0;
        // Zeros are dropped only after combining across runs: a zero here may meet a later entry.
        let combine = self.combine(false);
        sort::sort_chunk(&mut self.chunk, combine, Encoding::Run { wide, outer_offset: 0 }, &mut |bucket| {
            combined += bucket.combined;
            writer.push(bucket)
        })?;
        self.combined += combined;
        self.spilled_bytes += writer.bytes();
        self.runs.push(writer.finish()?);
        self.runs_spilled += 1;
        // Sorting and writing the run are interleaved; attribute the time to both phases' sum.
        self.spill_seconds += t.elapsed().as_secs_f64();
        self.report(BuildPhase::Ingest, 0);
        Ok(())
    }

    /// Writes the full chunk straight into the matrix if it came in sorted and every key in it lies
    /// above the last key written so far (input sorted in layout order, as a file exported row by row:
    /// no run, no merge), the shape being declared and nothing spilled as a run yet. A chunk that does not follow turns
    /// what was written so far into a run (read back from the unpublished segments) and ends direct
    /// writing for this build. Returns whether the chunk was written.
    fn write_direct(&mut self) -> Result<bool> {
        let Some(shape) = self.options.shape else { return Ok(false) };
        if self.direct_off || !self.runs.is_empty() {
            return Ok(false);
        }
        // Unsorted input never starts writing straight through (which a later chunk would undo).
        let follows = self.chunk.sorted_range().filter(|&(first, _)| self.direct_last.map_or(true, |w| first > w));
        let Some((_, last)) = follows else {
            self.direct_off = true;
            if let Some(writer) = self.direct.take() {
                self.direct_into_run(writer)?;
            }
            return Ok(false);
        };
        let t = Instant::now();
        let combine = self.combine(self.options.drop_zeros);
        if self.direct.is_none() {
            // The output directory is the staging area's (made now): the writer must not think it
            // its own, or dropping it (when a later chunk does not follow) would remove the runs too.
            self.staging.dir()?;
            self.direct =
                Some(MatrixWriter::<V>::create(&self.dir, shape, self.options.layout, self.options.writer.clone())?);
        }
        let writer = self.direct.as_mut().expect("created above");
        let index_type = writer.index_type();
        let (mut combined, mut zeros_dropped) = (0, 0);
        let mut counts = Vec::new();
        // The chunk's last row may go on in the next chunk: it stays open.
        sort::sort_chunk(&mut self.chunk, combine, Encoding::Writer(index_type), &mut |bucket| {
            combined += bucket.combined;
            zeros_dropped += bucket.zeros_dropped;
            write_rows(writer, bucket, 0, Some(last.0), &mut counts).map(|_| ())
        })?;
        self.combined += combined;
        self.zeros_dropped += zeros_dropped;
        self.direct_last = Some(last);
        self.direct_chunks += 1;
        self.spill_seconds += t.elapsed().as_secs_f64();
        Ok(true)
    }

    /// Turns the matrix written so far by [`write_direct`](Self::write_direct) into the first run:
    /// its segments, read back in order, become a run's records; the writer is then dropped, which
    /// removes them.
    fn direct_into_run(&mut self, mut writer: MatrixWriter<V>) -> Result<()> {
        let t = Instant::now();
        let segments = writer.segments_so_far()?;
        let (shape, layout) = (self.options.shape.unwrap_or_default(), self.options.layout);
        let (index_type, value_type) = (writer.index_type(), V::VALUE_TYPE);
        let (outer_dim, inner_dim) = layout.outer_inner(shape);
        let wide = outer_dim > 1 << 32 || inner_dim > 1 << 32;
        let staging = self.staging.dir()?;
        let path = staging.join(format!("run-{:06}", self.runs_spilled));
        let every = self.fence_interval();
        let io = self.run_io.get_or_insert_with(|| ChunkIo::new(false));
        let mut run = run::RunWriter::create::<V>(io, &path, wide, every)?;
        let mut records = Vec::new();
        for entry in &segments {
            let seg = crate::segment::MappedSegment::map(&self.dir, entry, layout, shape, index_type, value_type)?;
            seg.check_row_pointers()?;
            let (indptr, indices, values) = (seg.indptr(), seg.indices(), seg.values());
            let value_bytes: &[u8] = match &values {
                crate::element::Values::F64(v) => bytemuck::cast_slice(v),
                crate::element::Values::F32(v) => bytemuck::cast_slice(v),
                crate::element::Values::I64(v) => bytemuck::cast_slice(v),
                crate::element::Values::Pattern => &[],
            };
            for (local, bounds) in indptr.windows(2).enumerate() {
                let outer = seg.start() + local as u64;
                for k in bounds[0] as usize..bounds[1] as usize {
                    let value = &value_bytes[k * V::BYTES..(k + 1) * V::BYTES];
                    run::put_record(&mut records, wide, outer, indices.get(k), value);
                }
                if records.len() >= 4 << 20 {
                    run.push_bytes(&records)?;
                    records.clear();
                }
            }
        }
        run.push_bytes(&records)?;
        self.spilled_bytes += run.bytes();
        self.runs.push(run.finish()?);
        self.runs_spilled += 1;
        drop(writer);
        self.spill_seconds += t.elapsed().as_secs_f64();
        Ok(())
    }

    /// Entries one merge window holds: a chunk's worth (fewer when runs hold wide entries, which
    /// take more memory decoded).
    fn window_capacity(&self) -> usize {
        let wide = self.runs.iter().any(|r| r.wide());
        let entry = if wide { std::mem::size_of::<Entry<V>>() } else { std::mem::size_of::<sort::Packed<V>>() };
        (self.chunk_bytes / charge(entry)).min(self.capacity).max(1)
    }

    /// Records between a run's fences (see `run`).
    fn fence_interval(&self) -> u64 {
        run::fence_interval(self.chunk_capacity())
    }

    /// Waits until every run written so far can be read back.
    fn runs_on_disk(&mut self) -> Result<()> {
        match self.run_io.take() {
            Some(io) => io.finish(),
            None => Ok(()),
        }
    }

    /// Merges consecutive groups of runs into single runs until one merge can read them all (a
    /// cascade, for inputs many times the budget): see [`run::max_fan_in`]. Groups are consecutive in
    /// input order, so duplicates are still combined in input order.
    fn reduce_runs(&mut self) -> Result<()> {
        let capacity = self.window_capacity();
        let fan_in = run::max_fan_in(capacity, self.fence_interval());
        let mut pass = 0;
        while self.runs.len() > fan_in {
            pass += 1;
            self.runs_on_disk()?;
            let staging = self.staging.dir()?;
            let old = std::mem::take(&mut self.runs);
            let mut old = old.into_iter().peekable();
            let mut g = 0;
            while old.peek().is_some() {
                let group: Vec<run::Run> = old.by_ref().take(fan_in).collect();
                if group.len() == 1 {
                    self.runs.extend(group);
                    continue;
                }
                let wide = group.iter().any(|r| r.wide());
                let path = staging.join(format!("merge-{pass}-{g:06}"));
                g += 1;
                let every = self.fence_interval();
                let io = self.run_io.get_or_insert_with(|| ChunkIo::new(false));
                let mut writer = run::RunWriter::create::<V>(io, &path, wide, every)?;
                let mut combined = 0;
                let combine = self.combine(false);
                let encode = |offset| Encoding::Run { wide, outer_offset: offset };
                run::merge::<V>(&group, capacity, self.options.layout, combine, &encode, &mut |_, bucket| {
                    combined += bucket.combined;
                    writer.push(bucket)
                })?;
                self.combined += combined;
                self.runs.push(writer.finish()?);
                for done in &group {
                    let _ = fs::remove_file(&done.path);
                }
            }
        }
        self.runs_on_disk()
    }

    /// Sorts what remains, merges it with the spilled runs into the matrix, and publishes it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a duplicate under the `error` policy; I/O errors. On error nothing
    /// is published and the staging area is removed.
    pub fn finish(mut self) -> Result<(Matrix, BuildStats)> {
        let shape = self.options.shape.unwrap_or_else(|| {
            let (rows, cols) = (self.max_row.map_or(0, |r| r + 1), self.max_col.map_or(0, |c| c + 1));
            if self.options.square {
                (rows.max(cols), rows.max(cols))
            } else {
                (rows, cols)
            }
        });
        if (!self.runs.is_empty() || self.direct.is_some()) && self.chunk.len() > 0 {
            // Out of core: the last chunk becomes a run too, so the merge holds no chunk in memory (or
            // it goes straight into the matrix, like the chunks before it).
            self.spill()?;
        }
        let mut writer = match self.direct.take() {
            Some(writer) => writer,
            None => MatrixWriter::<V>::create(&self.dir, shape, self.options.layout, self.options.writer.clone())?,
        };
        let t = Instant::now();
        let mut zeros_dropped = 0;
        let mut combined = 0;
        if self.runs.is_empty() {
            // Everything fits in one chunk: sort and write, bucket by bucket, rows in bulk.
            self.report(BuildPhase::Write, 0);
            let combine = self.combine(self.options.drop_zeros);
            let (index_width, value_width) = (writer.index_type().bytes() as usize, V::BYTES);
            sort::sort_chunk(&mut self.chunk, combine, Encoding::Writer(writer.index_type()), &mut |bucket| {
                combined += bucket.combined;
                zeros_dropped += bucket.zeros_dropped;
                let (mut ki, mut kv) = (0, 0);
                for (&outer, &count) in bucket.outers.iter().zip(&bucket.counts) {
                    writer.advance_to(outer)?;
                    let (ni, nv) = (count * index_width, count * value_width);
                    writer.push_row_encoded(
                        count as u64,
                        &bucket.index_bytes[ki..ki + ni],
                        &bucket.value_bytes[kv..kv + nv],
                    )?;
                    ki += ni;
                    kv += nv;
                }
                Ok(())
            })?;
            self.sort_seconds += t.elapsed().as_secs_f64();
        } else {
            self.report(BuildPhase::Merge, 0);
            // The chunk's memory is not needed any more: give it back before the merge reads windows.
            self.chunk = sort::Chunk::new(self.chunk.bucketer());
            self.reduce_runs()?;
            let capacity = self.window_capacity();
            let mut progress = self.progress.take();
            let (triplets, nruns) = (self.triplets, self.runs_spilled);
            let combine = self.combine(self.options.drop_zeros);
            let index_type = writer.index_type();
            let mut written = 0u64;
            let mut reported = 0u64;
            let encode = |_| Encoding::Writer(index_type);
            let mut counts: Vec<u64> = Vec::new();
            run::merge::<V>(&self.runs, capacity, self.options.layout, combine, &encode, &mut |window, bucket| {
                combined += bucket.combined;
                zeros_dropped += bucket.zeros_dropped;
                written += write_rows(&mut writer, bucket, window.outer_offset, window.split, &mut counts)?;
                if written - reported >= 1 << 22 {
                    reported = written;
                    if let Some(f) = progress.as_mut() {
                        f(&BuildProgress { phase: BuildPhase::Merge, triplets, runs: nruns, written });
                    }
                }
                Ok(())
            })?;
            self.progress = progress;
            self.sort_seconds += t.elapsed().as_secs_f64();
        }
        self.combined += combined;
        self.zeros_dropped += zeros_dropped;
        self.staging.remove();
        let write_start = Instant::now();
        let matrix = writer.finish()?;
        self.staging.published();
        let stats = BuildStats {
            triplets: self.triplets,
            runs: self.runs_spilled,
            direct_chunks: self.direct_chunks,
            spilled_bytes: self.spilled_bytes,
            nnz: matrix.nnz(),
            duplicates_combined: self.combined,
            zeros_dropped: self.zeros_dropped,
            chunk_capacity: self.chunk_capacity(),
            sort_seconds: self.sort_seconds,
            spill_seconds: self.spill_seconds,
            write_seconds: write_start.elapsed().as_secs_f64(),
        };
        self.report(BuildPhase::Write, matrix.nnz());
        Ok((matrix, stats))
    }
}

/// How entries at the same position are combined, and whether zero results are dropped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Combine {
    pub(crate) policy: Duplicates,
    pub(crate) drop_zeros: bool,
    pub(crate) layout: Layout,
}

impl Combine {
    /// Combines `earlier` with `later` (in input order) at `(outer, inner)`.
    #[inline]
    pub(crate) fn apply<V: Element>(&self, earlier: V, later: V, outer: u64, inner: u64) -> Result<V> {
        Ok(match self.policy {
            Duplicates::Sum => earlier.sum(later),
            Duplicates::First => earlier,
            Duplicates::Last => later,
            Duplicates::Min => earlier.minimum(later),
            Duplicates::Max => earlier.maximum(later),
            Duplicates::Error => {
                let (row, col) = self.layout.row_col(outer, inner);
                return Err(Error::invalid(format!(
                    "entry ({row}, {col}) (0-based) appears more than once and the duplicate policy is \"error\"; \
                     choose --duplicates sum|first|last|min|max to combine duplicates"
                )));
            }
        })
    }
}

/// Writes a sorted bucket (encoded for `writer`, outer indices relative to `offset`) as rows: in
/// batches of consecutive rows, but row by row where a row comes in parts (`split`, a row that may
/// continue after this bucket, and the writer's current row if it is in parts) or where the bucket's
/// few rows are spread over a range whose counts would outgrow its entries. `counts` is scratch.
/// Returns the entries written.
fn write_rows<V: Element>(
    writer: &mut MatrixWriter<V>,
    bucket: &sort::SortedBucket<V>,
    offset: u64,
    split: Option<u64>,
    counts: &mut Vec<u64>,
) -> Result<u64> {
    let (index_width, value_width) = (writer.index_type().bytes() as usize, V::BYTES);
    let rows = bucket.outers.len();
    let (mut k, mut ki, mut kv) = (0, 0, 0);
    let mut written = 0u64;
    while k < rows {
        let outer = bucket.outers[k] + offset;
        let spread = bucket.outers[rows - 1] - bucket.outers[k] > 4 * (rows - k) as u64 + 1024;
        if split == Some(outer) || writer.row_in_parts() || spread {
            let count = bucket.counts[k];
            let (ni, nv) = (count * index_width, count * value_width);
            let (indices, values) = (&bucket.index_bytes[ki..ki + ni], &bucket.value_bytes[kv..kv + nv]);
            writer.advance_to(outer)?;
            if split == Some(outer) {
                writer.extend_row_encoded(count as u64, indices, values)?;
            } else {
                writer.push_row_encoded(count as u64, indices, values)?;
            }
            (k, ki, kv) = (k + 1, ki + ni, kv + nv);
            written += count as u64;
            continue;
        }
        // The rest of the bucket, but for a split row (always the last).
        let split_last = split.is_some_and(|s| bucket.outers[rows - 1] + offset == s);
        let end = if split_last { rows - 1 } else { rows };
        let last = bucket.outers[end - 1] + offset;
        counts.clear();
        counts.resize((last - outer + 1) as usize, 0);
        let mut entries = 0;
        for j in k..end {
            counts[(bucket.outers[j] + offset - outer) as usize] = bucket.counts[j] as u64;
            entries += bucket.counts[j];
        }
        let (ni, nv) = (entries * index_width, entries * value_width);
        writer.advance_to(outer)?;
        writer.push_rows_encoded(counts, &bucket.index_bytes[ki..ki + ni], &bucket.value_bytes[kv..kv + nv])?;
        (k, ki, kv) = (end, ki + ni, kv + nv);
        written += entries as u64;
    }
    Ok(written)
}
