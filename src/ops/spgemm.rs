//! Sparse times sparse, `C = A B`, row by row (Gustavson 1978): row `i` of `C` combines the rows `k`
//! of `B` selected by the entries `A[i, k]`.
//!
//! **The right operand in memory, in row blocks.** `B`'s rows are copied into one contiguous CSR in
//! memory (indices narrowed to the output's index type and checked against its dimension once, values
//! converted to the type the product is computed in). When all of `B` fits in its share of the budget
//! (two fifths), this is one block and `A` is streamed once. Otherwise `B` is cut into row blocks
//! `B[k0..k1, :]` that fit, and each block is multiplied by the matching columns of `A`
//! (`A[:, k0..k1] B[k0..k1, :]`, one sequential pass over `A` per block); each block's product is a
//! sorted partial matrix written to a staging area, and the partials are merged row by row into `C`
//! (combining by the semiring's addition). So `B` is never read at random from disk: the cost is
//! `blocks` sequential passes over `A`, one write and one read of the partial products, one write of
//! `C` — predictable from the sizes.
//!
//! **Accumulators, chosen per row by its work** (`flops`: the sum of the lengths of the rows of `B` it
//! selects; after Nagasaka, Matsuoka, Azad & Buluc 2018, who choose per row group):
//! * at most 32 flops: products are collected and stably sorted (ESC: expand, sort, compress);
//! * at least `cols / 16` flops (when the budget allows a dense array per thread): a dense
//!   accumulator with a generation stamp per column, read back in column order by sorting the touched
//!   columns, or by scanning when more than 1/32 of the columns were touched;
//! * otherwise an open-addressing hash table sized to twice the flops, whose entries are sorted.
//!
//! Every accumulator combines a row's products in the same order (A's entries in order, each row of
//! `B` in order), so a result does not depend on which one ran, nor on the thread count.
//!
//! **Parallelism and memory.** Each segment of `A` is cut into bands whose flops bound the output held
//! in memory, and each band into `4 x threads` tasks of equal flops (a prefix sum of the per-row
//! flops, as in faer's SpGEMM, not an equal count of rows). A band's rows, sorted, are written by a
//! helper thread while the next band is computed. Memory: the block of `B`, the dense accumulators, two
//! bands of output, and two mapped segments of `A`.

use super::merge::{merge_into, Scalar};
use super::{corrupt_index, max_segment_payload, OpOptions, OpProgress, OpStats, ProgressFn, Scratch};
use crate::element::{Indices, Values};
use crate::error::{Error, Result};
use crate::format::{IndexType, Layout, ValueType};
use crate::matrix::Matrix;
use crate::segment::MappedSegment;
use crate::writer::MatrixWriter;
use memmap2::Advice;
use rayon::prelude::*;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The algebra a product is computed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Semiring {
    /// Ordinary arithmetic: `C[i, j] = sum_k A[i, k] * B[k, j]`.
    #[default]
    PlusTimes,
    /// Tropical: `C[i, j] = min_k (A[i, k] + B[k, j])` (shortest paths of two hops; pattern entries
    /// weigh 1).
    MinPlus,
    /// Structure only (boolean `or`/`and`): `C[i, j]` is stored when some `A[i, k]` and `B[k, j]`
    /// are. The output is a pattern matrix.
    Pattern,
}

impl Semiring {
    /// The name the command line uses.
    pub fn name(self) -> &'static str {
        match self {
            Semiring::PlusTimes => "plus-times",
            Semiring::MinPlus => "min-plus",
            Semiring::Pattern => "pattern",
        }
    }
}

impl std::str::FromStr for Semiring {
    type Err = Error;
    fn from_str(s: &str) -> Result<Semiring> {
        Ok(match s {
            "plus-times" | "numeric" => Semiring::PlusTimes,
            "min-plus" | "tropical" => Semiring::MinPlus,
            "pattern" | "boolean" | "structure" => Semiring::Pattern,
            other => {
                return Err(Error::invalid(format!(
                    "unknown semiring {other:?}: expected plus-times, min-plus or pattern (boolean)"
                )))
            }
        })
    }
}

/// Which accumulator the rows use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accumulator {
    /// Chosen per row by its work (see the [module docs](self)).
    #[default]
    Auto,
    /// Sort-based for every row.
    Sort,
    /// Hash table for every row.
    Hash,
    /// Dense array for every row (when the budget allows one per thread; hash otherwise).
    Dense,
}

/// Options of [`spgemm`].
#[derive(Debug, Clone, Default)]
pub struct SpgemmOptions {
    /// Memory budget and output writer options.
    pub op: OpOptions,
    /// The algebra.
    pub semiring: Semiring,
    /// Drop entries whose value is zero (scipy's `A @ B` drops them; by default they are kept, as in
    /// GraphBLAS and sprs, since the structure of a product is what many uses need).
    pub drop_zeros: bool,
    /// Caps the bytes of `B` held in memory at once below what the budget allows: forces the blocked
    /// path, for tests and measurements. `None`: the budget decides.
    pub max_block_bytes: Option<u64>,
    /// Accumulator choice (for tests and measurements; `Auto` is the right choice otherwise).
    pub accumulator: Accumulator,
}

/// The value type of `A B` in `semiring`: pattern for the structural product; int64 when both
/// operands hold integers (int64 or pattern), else float64 (float32 operands are widened).
pub fn output_value_type(a: ValueType, b: ValueType, semiring: Semiring) -> ValueType {
    let integral = |v: ValueType| matches!(v, ValueType::Int64 | ValueType::Pattern);
    match semiring {
        Semiring::Pattern => ValueType::Pattern,
        _ if integral(a) && integral(b) => ValueType::Int64,
        _ => ValueType::Float64,
    }
}

/// `C = A B`, written to `out` (see the [module docs](self)). Returns the opened product and what
/// the operation did.
///
/// # Errors
///
/// [`Error::InvalidInput`] when `A`'s columns differ from `B`'s rows, the budget is below
/// [`MIN_OP_MEMORY`](super::MIN_OP_MEMORY), or `out` cannot receive a matrix; [`Error::Corrupt`] when
/// an input holds an index out of range; [`Error::Io`]. On error nothing is left in `out`.
///
/// # Examples
///
/// ```
/// use sparsedisk::{gen::{generate, Generator}, ops::{spgemm, SpgemmOptions}, Layout, WriterOptions};
/// # let tmp = tempfile::tempdir().unwrap();
/// let a = generate::<f64>(&Generator::Laplace2d { n: 4 }, &tmp.path().join("a"), Layout::Csr, WriterOptions::default())?;
/// let (c, stats) = spgemm(&a, &a, tmp.path().join("c"), &SpgemmOptions::default(), None)?;
/// assert_eq!(c.shape(), (16, 16));
/// assert_eq!(c.to_sprs()?.get(0, 0), Some(&18.0)); // 4 * 4 + (-1) * (-1) * 2
/// assert_eq!(stats.nnz, c.nnz());
/// # Ok::<(), sparsedisk::Error>(())
/// ```
pub fn spgemm(
    a: &Matrix,
    b: &Matrix,
    out: impl AsRef<Path>,
    options: &SpgemmOptions,
    progress: Option<ProgressFn<'_>>,
) -> Result<(Matrix, OpStats)> {
    let started = Instant::now();
    options.op.check()?;
    if a.cols() != b.rows() {
        return Err(Error::invalid(format!(
            "cannot multiply a {} x {} matrix by a {} x {} matrix: A has {} columns but B has {} rows",
            a.rows(),
            a.cols(),
            b.rows(),
            b.cols(),
            a.cols(),
            b.rows()
        )));
    }
    let out = out.as_ref();
    let mut scratch = Scratch::new(out, options.op.writer.overwrite)?;
    let mut stats = OpStats::default();
    let converted;
    let b = if b.layout() != a.layout() {
        let dir = scratch.path("B")?;
        converted = super::transpose::rewrite(b, &dir, a.layout(), options.op.memory_budget, progress)?;
        stats.conversions += 1;
        &converted
    } else {
        b
    };
    // In outer/inner terms the product of two CSC matrices is C^T = B^T A^T on the same arrays.
    let (left, right) = match a.layout() {
        Layout::Csr => (a, b),
        Layout::Csc => (b, a),
    };
    let shape = (a.rows(), b.cols());
    let job = Job { left, right, shape, layout: a.layout(), options, progress };
    let vt = output_value_type(a.value_type(), b.value_type(), options.semiring);
    let index = IndexType::for_inner_dim(a.layout().outer_inner(shape).1);
    let m = match (vt, options.semiring, index) {
        (ValueType::Pattern, _, IndexType::Uint32) => job.run::<u32, (), Structure>(&mut scratch, &mut stats)?,
        (ValueType::Pattern, _, IndexType::Uint64) => job.run::<u64, (), Structure>(&mut scratch, &mut stats)?,
        (ValueType::Int64, Semiring::MinPlus, IndexType::Uint32) => {
            job.run::<u32, i64, MinPlus>(&mut scratch, &mut stats)?
        }
        (ValueType::Int64, Semiring::MinPlus, IndexType::Uint64) => {
            job.run::<u64, i64, MinPlus>(&mut scratch, &mut stats)?
        }
        (ValueType::Int64, _, IndexType::Uint32) => job.run::<u32, i64, PlusTimes>(&mut scratch, &mut stats)?,
        (ValueType::Int64, _, IndexType::Uint64) => job.run::<u64, i64, PlusTimes>(&mut scratch, &mut stats)?,
        (_, Semiring::MinPlus, IndexType::Uint32) => job.run::<u32, f64, MinPlus>(&mut scratch, &mut stats)?,
        (_, Semiring::MinPlus, IndexType::Uint64) => job.run::<u64, f64, MinPlus>(&mut scratch, &mut stats)?,
        (_, _, IndexType::Uint32) => job.run::<u32, f64, PlusTimes>(&mut scratch, &mut stats)?,
        (_, _, IndexType::Uint64) => job.run::<u64, f64, PlusTimes>(&mut scratch, &mut stats)?,
    };
    scratch.published();
    stats.nnz = m.nnz();
    stats.seconds = started.elapsed().as_secs_f64();
    Ok((m, stats))
}

/// A semiring over the value type `T`.
trait Ring<T>: Send + Sync + 'static {
    fn mul(a: T, b: T) -> T;
    fn add(a: T, b: T) -> T;
}

struct PlusTimes;
struct MinPlus;
struct Structure;

impl Ring<f64> for PlusTimes {
    #[inline(always)]
    fn mul(a: f64, b: f64) -> f64 {
        a * b
    }
    #[inline(always)]
    fn add(a: f64, b: f64) -> f64 {
        a + b
    }
}
impl Ring<i64> for PlusTimes {
    #[inline(always)]
    fn mul(a: i64, b: i64) -> i64 {
        a.wrapping_mul(b)
    }
    #[inline(always)]
    fn add(a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }
}
impl Ring<f64> for MinPlus {
    #[inline(always)]
    fn mul(a: f64, b: f64) -> f64 {
        a + b
    }
    #[inline(always)]
    fn add(a: f64, b: f64) -> f64 {
        if b < a {
            b
        } else {
            a
        }
    }
}
impl Ring<i64> for MinPlus {
    #[inline(always)]
    fn mul(a: i64, b: i64) -> i64 {
        a.saturating_add(b)
    }
    #[inline(always)]
    fn add(a: i64, b: i64) -> i64 {
        a.min(b)
    }
}
impl Ring<()> for Structure {
    #[inline(always)]
    fn mul(_: (), _: ()) {}
    #[inline(always)]
    fn add(_: (), _: ()) {}
}

/// Column indices of the output: `u32` or `u64`.
trait Col: bytemuck::Pod + Ord + Send + Sync + 'static {
    /// A value no column takes (the output's inner dimension is at most `MAX`).
    const EMPTY: Self;
    fn from_u64(v: u64) -> Self;
    fn idx(self) -> usize;
}
impl Col for u32 {
    const EMPTY: u32 = u32::MAX;
    #[inline(always)]
    fn from_u64(v: u64) -> u32 {
        v as u32
    }
    #[inline(always)]
    fn idx(self) -> usize {
        self as usize
    }
}
impl Col for u64 {
    const EMPTY: u64 = u64::MAX;
    #[inline(always)]
    fn from_u64(v: u64) -> u64 {
        v
    }
    #[inline(always)]
    fn idx(self) -> usize {
        self as usize
    }
}

/// Rows `k0..k1` of the right operand, in memory.
struct RightBlock<I, T> {
    k0: u64,
    k1: u64,
    indptr: Vec<u64>,
    cols: Vec<I>,
    vals: Vec<T>,
}

impl<I: Col, T: Scalar> RightBlock<I, T> {
    /// Copies rows `k0..k1` of `m`, checking every index against the inner dimension.
    fn load(m: &Matrix, k0: u64, k1: u64) -> Result<Self> {
        let (_, inner_dim) = m.layout().outer_inner(m.shape());
        let mut block = RightBlock { k0, k1, indptr: vec![0], cols: Vec::new(), vals: Vec::new() };
        let overlapping = |e: &&crate::format::SegmentEntry| e.end > k0 && e.start < k1;
        let upper: u64 = m.segments().iter().filter(overlapping).map(|e| e.nnz).sum();
        block.indptr.reserve((k1 - k0) as usize);
        block.cols.reserve(upper as usize);
        block.vals.reserve(upper as usize);
        for (i, entry) in m.segments().iter().enumerate() {
            if entry.end <= k0 || entry.start >= k1 {
                continue;
            }
            let seg = m.map_segment(i)?;
            seg.check_row_pointers()?;
            seg.advise(Advice::Sequential);
            let indptr = seg.indptr();
            let (ra, rb) = ((k0.max(entry.start) - entry.start) as usize, (k1.min(entry.end) - entry.start) as usize);
            let (lo, hi) = (indptr[ra] as usize, indptr[rb] as usize);
            let base = block.cols.len() as u64 - lo as u64;
            block.indptr.extend(indptr[ra + 1..=rb].iter().map(|&p| p + base));
            let before = block.cols.len();
            let mut bad = false;
            match seg.indices() {
                Indices::U32(ix) => block.cols.extend(ix.get(lo..hi).unwrap_or(&[]).iter().map(|&c| {
                    bad |= c as u64 >= inner_dim;
                    I::from_u64(c as u64)
                })),
                Indices::U64(ix) => block.cols.extend(ix.get(lo..hi).unwrap_or(&[]).iter().map(|&c| {
                    bad |= c >= inner_dim;
                    I::from_u64(c)
                })),
            }
            if bad || block.cols.len() - before != hi - lo {
                return Err(corrupt_index(&seg, "an index lies outside the matrix"));
            }
            T::extend_from(seg.values(), lo, hi, &mut block.vals);
        }
        Ok(block)
    }

    #[inline(always)]
    fn row_len(&self, local: usize) -> u64 {
        self.indptr[local + 1] - self.indptr[local]
    }

    #[inline(always)]
    fn row(&self, local: usize) -> (&[I], &[T]) {
        let (lo, hi) = (self.indptr[local] as usize, self.indptr[local + 1] as usize);
        (&self.cols[lo..hi], &self.vals[lo..hi])
    }
}

/// One thread's accumulator state, reused across rows and tasks.
struct Acc<I, T> {
    dense_vals: Vec<T>,
    mark: Vec<u32>,
    stamp: u32,
    touched: Vec<I>,
    keys: Vec<I>,
    hvals: Vec<T>,
    slots: Vec<usize>,
    pairs: Vec<(I, T)>,
}

impl<I: Col, T: Scalar> Acc<I, T> {
    fn new() -> Self {
        Acc {
            dense_vals: Vec::new(),
            mark: Vec::new(),
            stamp: 1,
            touched: Vec::new(),
            keys: Vec::new(),
            hvals: Vec::new(),
            slots: Vec::new(),
            pairs: Vec::new(),
        }
    }
}

/// The rows a task computed.
struct TaskOut<I, T> {
    counts: Vec<u64>,
    cols: Vec<I>,
    vals: Vec<T>,
    bad: bool,
}

impl<I: Col, T: Scalar> TaskOut<I, T> {
    #[inline(always)]
    fn emit(&mut self, c: I, v: T, drop_zeros: bool) {
        if !(drop_zeros && v.is_zero()) {
            self.cols.push(c);
            self.vals.push(v);
        }
    }
}

/// Calls `f(k, a)` for the entries `lo..hi` of a segment of the left operand.
#[inline(always)]
fn for_each_a<T: Scalar>(ix: Indices<'_>, vals: Values<'_>, lo: usize, hi: usize, mut f: impl FnMut(u64, T)) -> bool {
    match ix {
        Indices::U32(i) => match i.get(lo..hi) {
            Some(s) => s.iter().zip(lo..).for_each(|(&k, j)| f(k as u64, T::at(vals, j))),
            None => return false,
        },
        Indices::U64(i) => match i.get(lo..hi) {
            Some(s) => s.iter().zip(lo..).for_each(|(&k, j)| f(k, T::at(vals, j))),
            None => return false,
        },
    }
    true
}

/// Rows up to this many flops use the sort-based accumulator.
const SMALL_ROW_FLOPS: u64 = 32;

/// Most flops in one band of output rows held in memory.
const BAND_FLOPS: u64 = 8 << 20;

/// Everything a product needs to know.
struct Job<'a> {
    left: &'a Matrix,
    right: &'a Matrix,
    shape: (u64, u64),
    layout: Layout,
    options: &'a SpgemmOptions,
    progress: Option<ProgressFn<'a>>,
}

/// What the row kernels share within one pass.
struct Pass<'b, I, T> {
    block: &'b RightBlock<I, T>,
    inner_dim: u64,
    k_dim: u64,
    dense_ok: bool,
    drop_zeros: bool,
    accumulator: Accumulator,
}

impl Job<'_> {
    fn run<I: Col, T: Scalar, R: Ring<T>>(&self, scratch: &mut Scratch, stats: &mut OpStats) -> Result<Matrix> {
        let (outer_dim, inner_dim) = self.layout.outer_inner(self.shape);
        let k_dim = self.right.layout().outer_inner(self.right.shape()).0;
        let budget = self.options.op.memory_budget;
        let threads = rayon::current_num_threads() as u64;
        let entry_bytes = (std::mem::size_of::<I>() + std::mem::size_of::<T>()) as u64;
        // Two mapped segments of A and their per-row flops, the writer's buffers and bookkeeping.
        let reserve = 3 * max_segment_payload(self.left) + (16 << 20);
        let avail = budget.saturating_sub(reserve).max(budget / 4);
        let block_cap = self.options.max_block_bytes.unwrap_or(avail / 5 * 2).max(1);
        let dense_bytes = threads * inner_dim * (std::mem::size_of::<T>() as u64 + 4);
        let dense_ok = self.options.accumulator != Accumulator::Sort
            && self.options.accumulator != Accumulator::Hash
            && dense_bytes <= avail / 5;
        let blocks = row_blocks(self.right, entry_bytes, block_cap)?;
        let block_bytes = blocks.iter().map(|b| b.2).max().unwrap_or(0);
        let out_budget = avail.saturating_sub(block_bytes).saturating_sub(if dense_ok { dense_bytes } else { 0 });
        // Two bands in flight, each band's vectors up to twice their contents.
        // ... and at most BAND_FLOPS, so that writing one band overlaps computing the next.
        let band_flops = (out_budget / (4 * entry_bytes)).clamp(1 << 16, BAND_FLOPS);
        stats.blocks = blocks.len() as u64;
        let total_rows = outer_dim * blocks.len() as u64;
        let done_rows = AtomicU64::new(0);
        let mut pass = |block: &RightBlock<I, T>, writer: &mut MatrixWriter<T>, drop_zeros: bool| -> Result<()> {
            let p = Pass { block, inner_dim, k_dim, dense_ok, drop_zeros, accumulator: self.options.accumulator };
            stats.flops += self.multiply_pass::<I, T, R>(&p, writer, band_flops, &done_rows, total_rows)?;
            Ok(())
        };
        let out_writer =
            |dir: &Path| MatrixWriter::<T>::create(dir, self.shape, self.layout, self.options.op.writer.clone());
        if blocks.len() == 1 {
            let block = RightBlock::<I, T>::load(self.right, 0, k_dim)?;
            let mut writer = out_writer(scratch_out(scratch))?;
            pass(&block, &mut writer, self.options.drop_zeros)?;
            return writer.finish();
        }
        // Out of core: one partial product per block of B's rows, then a merge.
        let seg_bytes = (avail / 4 / blocks.len().min(64) as u64).clamp(1 << 20, 64 << 20);
        let mut partials = Vec::with_capacity(blocks.len());
        for &(k0, k1, _) in &blocks {
            let block = RightBlock::<I, T>::load(self.right, k0, k1)?;
            let dir = scratch.path("partial")?;
            let mut writer =
                MatrixWriter::<T>::create(&dir, self.shape, self.layout, Scratch::writer_options(seg_bytes))?;
            pass(&block, &mut writer, false)?;
            partials.push(writer.finish()?);
        }
        // Cascade: at most 64 partials are read at once.
        while partials.len() > 64 {
            let mut next = Vec::new();
            for group in partials.chunks(64) {
                let dir = scratch.path("merged")?;
                let mut w =
                    MatrixWriter::<T>::create(&dir, self.shape, self.layout, Scratch::writer_options(seg_bytes))?;
                let refs: Vec<&Matrix> = group.iter().collect();
                merge_into(&refs, |_, v| v, R::add, false, &mut w, "merge", self.progress)?;
                next.push(w.finish()?);
                for m in group {
                    let _ = std::fs::remove_dir_all(m.dir());
                }
            }
            partials = next;
        }
        let mut writer = out_writer(scratch_out(scratch))?;
        let refs: Vec<&Matrix> = partials.iter().collect();
        merge_into(&refs, |_, v| v, R::add, self.options.drop_zeros, &mut writer, "merge", self.progress)?;
        writer.finish()
    }

    /// One sequential pass over the left operand against one block of the right. Returns the flops.
    fn multiply_pass<I: Col, T: Scalar, R: Ring<T>>(
        &self,
        p: &Pass<'_, I, T>,
        writer: &mut MatrixWriter<T>,
        band_flops: u64,
        done_rows: &AtomicU64,
        total_rows: u64,
    ) -> Result<u64> {
        let pool: Mutex<Vec<Acc<I, T>>> = Mutex::new(Vec::new());
        let spare: Mutex<Vec<TaskOut<I, T>>> = Mutex::new(Vec::new());
        let mut pending: Option<Vec<TaskOut<I, T>>> = None;
        let mut flops_total = 0u64;
        let threads = rayon::current_num_threads();
        for si in 0..self.left.segments().len() {
            let seg = self.left.map_segment(si)?;
            seg.check_row_pointers()?;
            seg.advise(Advice::Sequential);
            let row_flops = self.row_flops(&seg, p)?;
            let rows = row_flops.len();
            let mut r0 = 0;
            while r0 < rows {
                let mut r1 = r0;
                let mut f = 0u64;
                while r1 < rows && (r1 == r0 || f + row_flops[r1] <= band_flops) {
                    f += row_flops[r1];
                    r1 += 1;
                }
                flops_total += f;
                let tasks = split_by_work(&row_flops[r0..r1], 4 * threads, r0);
                let outs = std::thread::scope(|s| -> Result<Vec<TaskOut<I, T>>> {
                    let w = pending.take().map(|band| s.spawn(|| write_band(writer, band, &spare)));
                    let outs: Vec<TaskOut<I, T>> = tasks
                        .par_iter()
                        .map(|&(a, b)| run_task::<I, T, R>(&seg, a, b, &row_flops, p, &pool, &spare))
                        .collect();
                    if let Some(w) = w {
                        w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))?;
                    }
                    Ok(outs)
                })?;
                if outs.iter().any(|o| o.bad) {
                    return Err(corrupt_index(&seg, "an index lies outside the matrix"));
                }
                pending = Some(outs);
                let done = done_rows.fetch_add((r1 - r0) as u64, Ordering::Relaxed) + (r1 - r0) as u64;
                if let Some(progress) = self.progress {
                    progress(OpProgress { phase: "multiply", done, total: total_rows });
                }
                r0 = r1;
            }
        }
        if let Some(band) = pending.take() {
            write_band(writer, band, &spare)?;
        }
        Ok(flops_total)
    }

    /// The flops of every row of a segment of the left operand, against the block.
    fn row_flops<I: Col, T: Scalar>(&self, seg: &MappedSegment, p: &Pass<'_, I, T>) -> Result<Vec<u64>> {
        let indptr = seg.indptr();
        let rows = indptr.len() - 1;
        let mut flops = vec![0u64; rows];
        let (k0, k1) = (p.block.k0, p.block.k1);
        let ix = seg.indices();
        const CHUNK: usize = 4096;
        let bad = flops
            .par_chunks_mut(CHUNK)
            .enumerate()
            .map(|(c, chunk)| {
                let mut bad = false;
                for (i, f) in chunk.iter_mut().enumerate() {
                    let r = c * CHUNK + i;
                    let (lo, hi) = (indptr[r] as usize, indptr[r + 1] as usize);
                    let mut sum = 0u64;
                    let ok = for_each_k(ix, lo, hi, |k| {
                        if k >= k0 && k < k1 {
                            sum += p.block.row_len((k - k0) as usize);
                        } else if k >= p.k_dim {
                            bad = true;
                        }
                    });
                    bad |= !ok;
                    *f = sum;
                }
                bad
            })
            .reduce(|| false, |x, y| x | y);
        if bad {
            return Err(corrupt_index(seg, "an index lies outside the matrix"));
        }
        Ok(flops)
    }
}

/// The output directory (the scratch area is only for intermediates).
fn scratch_out(scratch: &Scratch) -> &Path {
    &scratch.out
}

/// Calls `f(k)` for the indices `lo..hi`; false when they are out of the array.
#[inline(always)]
fn for_each_k(ix: Indices<'_>, lo: usize, hi: usize, mut f: impl FnMut(u64)) -> bool {
    match ix {
        Indices::U32(i) => match i.get(lo..hi) {
            Some(s) => s.iter().for_each(|&k| f(k as u64)),
            None => return false,
        },
        Indices::U64(i) => match i.get(lo..hi) {
            Some(s) => s.iter().for_each(|&k| f(k)),
            None => return false,
        },
    }
    true
}

/// Cuts rows (weights `work[r] + 1`) into at most `parts` ranges of about equal weight, offset by
/// `base`.
fn split_by_work(work: &[u64], parts: usize, base: usize) -> Vec<(usize, usize)> {
    let total: u64 = work.iter().map(|&w| w + 1).sum();
    let parts = parts.max(1) as u64;
    let mut out = Vec::with_capacity(parts as usize);
    let (mut a, mut acc, mut next) = (0usize, 0u64, 1u64);
    for (r, &w) in work.iter().enumerate() {
        acc += w + 1;
        if acc * parts >= next * total && next < parts {
            out.push((base + a, base + r + 1));
            a = r + 1;
            while acc * parts >= next * total && next < parts {
                next += 1;
            }
        }
    }
    if a < work.len() {
        out.push((base + a, base + work.len()));
    }
    out
}

/// Rows `k0..k1` blocks of the right operand whose in-memory copy (`entry_bytes` per entry, 8 per row)
/// stays within `cap`: `(k0, k1, bytes)`.
fn row_blocks(m: &Matrix, entry_bytes: u64, cap: u64) -> Result<Vec<(u64, u64, u64)>> {
    let (outer, _) = m.layout().outer_inner(m.shape());
    let whole = m.nnz() * entry_bytes + (outer + 1) * 8;
    if whole <= cap {
        return Ok(vec![(0, outer, whole)]);
    }
    let mut blocks = Vec::new();
    let (mut start, mut bytes) = (0u64, 8u64);
    for i in 0..m.segments().len() {
        let seg = m.map_segment(i)?;
        seg.check_row_pointers()?;
        let indptr = seg.indptr();
        for (r, w) in indptr.windows(2).enumerate() {
            let row = (w[1] - w[0]) * entry_bytes + 8;
            let k = seg.start() + r as u64;
            if bytes + row > cap && k > start {
                blocks.push((start, k, bytes));
                start = k;
                bytes = 8;
            }
            bytes += row;
        }
    }
    blocks.push((start, outer, bytes));
    Ok(blocks)
}

/// Computes rows `a..b` (segment-local) of the product.
fn run_task<I: Col, T: Scalar, R: Ring<T>>(
    seg: &MappedSegment,
    a: usize,
    b: usize,
    row_flops: &[u64],
    p: &Pass<'_, I, T>,
    pool: &Mutex<Vec<Acc<I, T>>>,
    spare: &Mutex<Vec<TaskOut<I, T>>>,
) -> TaskOut<I, T> {
    let mut acc = pool.lock().map(|mut v| v.pop()).unwrap_or(None).unwrap_or_else(Acc::new);
    let work: u64 = row_flops[a..b].iter().sum();
    // Recycled buffers (their pages are already mapped), sized for the worst case: no column repeats.
    let mut out = spare.lock().map(|mut v| v.pop()).unwrap_or(None).unwrap_or_else(|| TaskOut {
        counts: Vec::new(),
        cols: Vec::new(),
        vals: Vec::new(),
        bad: false,
    });
    out.counts.reserve(b - a);
    out.cols.reserve(work as usize);
    out.vals.reserve(work as usize);
    let indptr = seg.indptr();
    let (ix, vals) = (seg.indices(), seg.values());
    let (k0, k1) = (p.block.k0, p.block.k1);
    let ncols = p.inner_dim as usize;
    for r in a..b {
        let (lo, hi) = (indptr[r] as usize, indptr[r + 1] as usize);
        let flops = row_flops[r];
        let before = out.cols.len();
        let kind = match p.accumulator {
            Accumulator::Sort => Accumulator::Sort,
            Accumulator::Hash => Accumulator::Hash,
            Accumulator::Dense if p.dense_ok => Accumulator::Dense,
            Accumulator::Dense => Accumulator::Hash,
            Accumulator::Auto if flops <= SMALL_ROW_FLOPS => Accumulator::Sort,
            Accumulator::Auto if p.dense_ok && flops * 16 >= ncols as u64 => Accumulator::Dense,
            Accumulator::Auto => Accumulator::Hash,
        };
        let mut bad = false;
        let mut in_block = |k: u64| -> Option<usize> {
            if k >= k0 && k < k1 {
                Some((k - k0) as usize)
            } else {
                bad |= k >= p.k_dim;
                None
            }
        };
        let ok = match kind {
            Accumulator::Dense => {
                if acc.mark.len() != ncols {
                    acc.mark = vec![0; ncols];
                    acc.dense_vals = vec![T::default(); ncols];
                    acc.stamp = 1;
                }
                let stamp = acc.stamp;
                let Acc { mark, dense_vals, touched, .. } = &mut acc;
                touched.clear();
                let ok = for_each_a(ix, vals, lo, hi, |k, av: T| {
                    let Some(local) = in_block(k) else { return };
                    let (bc, bv) = p.block.row(local);
                    for (&c, &bvv) in bc.iter().zip(bv) {
                        let j = c.idx();
                        let prod = R::mul(av, bvv);
                        if mark[j] != stamp {
                            mark[j] = stamp;
                            dense_vals[j] = prod;
                            touched.push(c);
                        } else {
                            dense_vals[j] = R::add(dense_vals[j], prod);
                        }
                    }
                });
                if touched.len() * 32 > ncols {
                    for (j, (&m, &v)) in mark.iter().zip(dense_vals.iter()).enumerate() {
                        if m == stamp {
                            out.emit(I::from_u64(j as u64), v, p.drop_zeros);
                        }
                    }
                } else {
                    touched.sort_unstable();
                    for &c in touched.iter() {
                        out.emit(c, dense_vals[c.idx()], p.drop_zeros);
                    }
                }
                acc.stamp += 1;
                if acc.stamp == u32::MAX {
                    acc.mark.iter_mut().for_each(|m| *m = 0);
                    acc.stamp = 1;
                }
                ok
            }
            Accumulator::Hash => {
                let size = (2 * flops.min(ncols as u64)).next_power_of_two().max(16) as usize;
                if acc.keys.len() < size {
                    acc.keys.resize(size, I::EMPTY);
                    acc.hvals.resize(size, T::default());
                }
                let mask = size - 1;
                let Acc { keys, hvals, slots, pairs, .. } = &mut acc;
                slots.clear();
                let ok = for_each_a(ix, vals, lo, hi, |k, av: T| {
                    let Some(local) = in_block(k) else { return };
                    let (bc, bv) = p.block.row(local);
                    for (&c, &bvv) in bc.iter().zip(bv) {
                        let prod = R::mul(av, bvv);
                        let mut h = ((c.idx() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask;
                        loop {
                            let key = keys[h];
                            if key == c {
                                hvals[h] = R::add(hvals[h], prod);
                                break;
                            }
                            if key == I::EMPTY {
                                keys[h] = c;
                                hvals[h] = prod;
                                slots.push(h);
                                break;
                            }
                            h = (h + 1) & mask;
                        }
                    }
                });
                pairs.clear();
                for &h in slots.iter() {
                    pairs.push((keys[h], hvals[h]));
                    keys[h] = I::EMPTY;
                }
                pairs.sort_unstable_by_key(|e| e.0);
                for &(c, v) in pairs.iter() {
                    out.emit(c, v, p.drop_zeros);
                }
                ok
            }
            _ => {
                let Acc { pairs, .. } = &mut acc;
                pairs.clear();
                let ok = for_each_a(ix, vals, lo, hi, |k, av: T| {
                    let Some(local) = in_block(k) else { return };
                    let (bc, bv) = p.block.row(local);
                    pairs.extend(bc.iter().zip(bv).map(|(&c, &bvv)| (c, R::mul(av, bvv))));
                });
                // Stable, so equal columns combine in the order the others accumulate them.
                pairs.sort_by_key(|e| e.0);
                let mut i = 0;
                while i < pairs.len() {
                    let (c, mut v) = pairs[i];
                    i += 1;
                    while i < pairs.len() && pairs[i].0 == c {
                        v = R::add(v, pairs[i].1);
                        i += 1;
                    }
                    out.emit(c, v, p.drop_zeros);
                }
                ok
            }
        };
        out.bad |= bad || !ok;
        out.counts.push((out.cols.len() - before) as u64);
    }
    if let Ok(mut v) = pool.lock() {
        v.push(acc);
    }
    out
}

/// Writes a band's rows, in order.
fn write_band<I: Col, T: Scalar>(
    writer: &mut MatrixWriter<T>,
    band: Vec<TaskOut<I, T>>,
    spare: &Mutex<Vec<TaskOut<I, T>>>,
) -> Result<()> {
    for mut task in band {
        let (mut at, cols, vals) = (0usize, bytemuck::cast_slice::<I, u8>(&task.cols), T::le_bytes(&task.vals));
        let (iw, vw) = (std::mem::size_of::<I>(), std::mem::size_of::<T>());
        for &n in &task.counts {
            let n = n as usize;
            writer.push_row_encoded(n as u64, &cols[at * iw..(at + n) * iw], &vals[at * vw..(at + n) * vw])?;
            at += n;
        }
        task.counts.clear();
        task.cols.clear();
        task.vals.clear();
        task.bad = false;
        if let Ok(mut v) = spare.lock() {
            v.push(task);
        }
    }
    Ok(())
}
