//! Sparse times sparse, `C = A B`, row by row (Gustavson 1978): row `i` of `C` combines the rows `k`
//! of `B` selected by the entries `A[i, k]`.
//!
//! **The right operand in memory, in row blocks.** `B`'s rows are read in place from its mapped
//! segments when they store the index and value types the product is computed in (no copy: the
//! pages are the page cache's), else copied into one contiguous CSR in memory (indices narrowed,
//! values converted). Either way every row is checked once, before use, to be strictly increasing
//! and inside the inner dimension (a vectorised pass, a fraction of a copy). When all of `B` fits in
//! its share of the budget (two fifths), this is one block and `A` is streamed once. Otherwise `B`
//! is cut into row blocks `B[k0..k1, :]` that fit, and each block is multiplied by the matching
//! columns of `A` (`A[:, k0..k1] B[k0..k1, :]`, one sequential pass over `A` per block); each block's product is a
//! sorted partial matrix written to a staging area, and the partials are merged row by row into `C`
//! (combining by the semiring's addition). So `B` is never read at random from disk: the cost is
//! `blocks` sequential passes over `A`, one write and one read of the partial products, one write of
//! `C` — predictable from the sizes.
//!
//! **Accumulators, chosen per row by its work** (`flops`: the sum of the lengths of the rows of `B` it
//! selects; after Nagasaka, Matsuoka, Azad & Buluc 2018, who choose per row group):
//! * a dense array over the narrow range of columns the row's products span (at most 32 Ki
//!   columns, and not many more words of 64 columns than the work): rows of banded matrices (a
//!   2-D Laplacian's rows span 4n + 1 columns of n^2). Its bitmap has a second level, a bit per
//!   word, so that only the words touched are scanned (7 of the 63 a Laplacian's row spans);
//! * otherwise, at most 32 flops: products are collected and sorted stably by insertion (ESC:
//!   expand, sort, compress);
//! * at least `cols / 16` flops, or when a dense array of all columns fits in L2 (1 MiB) and its
//!   bitmap scan is not much longer than the work (when the budget allows a dense array per thread):
//!   a dense accumulator over every column;
//! * otherwise an open-addressing hash table sized to twice the flops, whose entries are sorted.
//!
//! Both dense accumulators add products branch-free into slots that hold the semiring's identity
//! (`-0.0` for float sums), and keep a bitmap of the columns touched: scanned a word per 64
//! columns, it gives the columns back in order with no sort (measured: R-MAT scale 16 squared went
//! from 3.3 s to 1.2 s on one thread against a stamp per column and a sort or scan of the touched).
//!
//! Every accumulator combines a row's products in the same order (A's entries in order, each row of
//! `B` in order), so a result does not depend on which one ran, nor on the thread count.
//!
//! **Parallelism and memory.** Each segment of `A` is cut into bands whose flops bound the output held
//! in memory, and each band into `4 x threads` tasks of equal flops (a prefix sum of the per-row
//! flops, as in faer's SpGEMM, not an equal count of rows). A band's rows, sorted, are written by a
//! helper thread, in a few large writes per task, while the next band is computed; bands are small
//! (2 M flops) so that little writing is left once the last is computed. Memory: the block of `B`,
//! the dense accumulators, two bands of output, and two mapped segments of `A`.

use super::merge::{merge_into, Scalar};
use super::{corrupt_index, max_segment_payload, OpOptions, OpProgress, OpStats, ProgressFn, Scratch};
use crate::element::Indices;
use crate::error::{Error, Result};
use crate::format::{IndexType, Layout, ValueType};
use crate::matrix::Matrix;
use crate::segment::MappedSegment;
use crate::writer::MatrixWriter;
use memmap2::Advice;
use rayon::prelude::*;
use std::borrow::Cow;
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
    /// Dense array over the columns a row's products span, when that span is narrow (hash
    /// otherwise).
    Window,
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
    /// `x` with `add(IDENTITY, x)` equal to `x`, bit for bit, for every `x` (NaN included): lets a
    /// dense accumulator start every slot from it instead of testing for a first product.
    const IDENTITY: Option<T>;
    fn mul(a: T, b: T) -> T;
    fn add(a: T, b: T) -> T;
}

struct PlusTimes;
struct MinPlus;
struct Structure;

impl Ring<f64> for PlusTimes {
    // -0.0, not 0.0: 0.0 + -0.0 is 0.0.
    const IDENTITY: Option<f64> = Some(-0.0);
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
    const IDENTITY: Option<i64> = Some(0);
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
    // None: min(inf, NaN) as computed here is inf, where a first product NaN stays NaN.
    const IDENTITY: Option<f64> = None;
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
    const IDENTITY: Option<i64> = Some(i64::MAX);
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
    const IDENTITY: Option<()> = Some(());
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

/// Rows `k0..k1` of the right operand as the kernels read them: its mapped segments used in place
/// when they store the index and value types the product is computed in (no copy: the pages are
/// the page cache's), else a copy converted into memory. Either way every inner index is checked
/// once against the inner dimension here, so the kernels index their accumulators safely with no
/// further check.
struct BlockStore<I, T> {
    k0: u64,
    k1: u64,
    mapped: Vec<MappedSegment>,
    copied: Option<Copied<I, T>>,
    /// Pattern products (`T = ()`): a zero-sized value per entry, so rows zip cols with values
    /// whatever the stored values are. Allocates nothing.
    units: Vec<T>,
}

/// A block converted into memory: one CSR.
struct Copied<I, T> {
    indptr: Vec<u64>,
    cols: Vec<I>,
    vals: Vec<T>,
}

/// The inner indices of a segment as `I`, when it stores them in that width.
fn stored_cols<I: Col>(seg: &MappedSegment) -> Option<&[I]> {
    match seg.indices() {
        Indices::U32(ix) if std::mem::size_of::<I>() == 4 => bytemuck::try_cast_slice(ix).ok(),
        Indices::U64(ix) if std::mem::size_of::<I>() == 8 => bytemuck::try_cast_slice(ix).ok(),
        _ => None,
    }
}

impl<I: Col, T: Scalar> BlockStore<I, T> {
    /// Maps (or copies) rows `k0..k1` of `m`, checking the row pointers and every index against the
    /// inner dimension.
    fn load(m: &Matrix, k0: u64, k1: u64) -> Result<Self> {
        let (_, inner_dim) = m.layout().outer_inner(m.shape());
        let mut mapped = Vec::new();
        for (i, entry) in m.segments().iter().enumerate() {
            if entry.end > k0 && entry.start < k1 && entry.nnz > 0 {
                let seg = m.map_segment(i)?;
                seg.check_row_pointers()?;
                mapped.push(seg);
            }
        }
        let zst = std::mem::size_of::<T>() == 0;
        let most = mapped.iter().map(|s| s.nnz()).max().unwrap_or(0) as usize;
        let units = if zst { vec![T::default(); most] } else { Vec::new() };
        let mut store = BlockStore { k0, k1, mapped, copied: None, units };
        let in_place = store.mapped.iter().all(|seg| {
            let n = seg.nnz() as usize;
            stored_cols::<I>(seg).is_some_and(|c| c.len() >= n) && store.stored_vals(seg).is_some_and(|v| v.len() >= n)
        });
        if in_place {
            for seg in &store.mapped {
                let (ra, rb) = store.row_range(seg);
                if !rows_valid(&seg.indptr()[ra..=rb], stored_cols::<I>(seg).unwrap_or(&[]), inner_dim) {
                    return Err(corrupt_index(seg, "an index lies outside the matrix or a row is not sorted"));
                }
            }
            return Ok(store);
        }
        let copied = store.copy(inner_dim)?;
        if !rows_valid(&copied.indptr, &copied.cols, inner_dim) {
            let seg = &store.mapped[0];
            return Err(corrupt_index(seg, "a row of indices is not sorted"));
        }
        store.copied = Some(copied);
        store.mapped.clear();
        Ok(store)
    }

    /// The values of a mapped segment as `T`, when stored as such.
    fn stored_vals<'a>(&'a self, seg: &'a MappedSegment) -> Option<&'a [T]> {
        if std::mem::size_of::<T>() == 0 {
            return self.units.get(..seg.nnz() as usize);
        }
        T::stored(seg.values())
    }

    /// The segment-local rows of `seg` inside the block.
    fn row_range(&self, seg: &MappedSegment) -> (usize, usize) {
        ((self.k0.max(seg.start()) - seg.start()) as usize, (self.k1.min(seg.end()) - seg.start()) as usize)
    }

    /// Copies the block's rows into memory, converting indices and values.
    fn copy(&self, inner_dim: u64) -> Result<Copied<I, T>> {
        let upper: u64 = self.mapped.iter().map(|s| s.nnz()).sum();
        let mut block = Copied { indptr: vec![0], cols: Vec::new(), vals: Vec::new() };
        block.indptr.reserve((self.k1 - self.k0) as usize);
        block.cols.reserve(upper as usize);
        block.vals.reserve(upper as usize);
        for seg in &self.mapped {
            seg.advise(Advice::Sequential);
            let indptr = seg.indptr();
            let (ra, rb) = self.row_range(seg);
            // Rows of the block before this segment (segments without entries were skipped).
            let first = seg.start().max(self.k0) - self.k0;
            let fill = *block.indptr.last().unwrap_or(&0);
            block.indptr.resize(first as usize + 1, fill);
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
                return Err(corrupt_index(seg, "an index lies outside the matrix"));
            }
            T::extend_from(seg.values(), lo, hi, &mut block.vals);
        }
        let fill = *block.indptr.last().unwrap_or(&0);
        block.indptr.resize((self.k1 - self.k0) as usize + 1, fill);
        Ok(block)
    }

    /// The view the kernels read.
    fn view(&self) -> RightBlock<'_, I, T> {
        let (k0, k1) = (self.k0, self.k1);
        if let Some(c) = &self.copied {
            let part = Part { base: 0, cols: &c.cols, vals: &c.vals };
            return RightBlock { k0, k1, ptr: Cow::Borrowed(&c.indptr), parts: vec![part], part_of: Vec::new() };
        }
        // Row pointers across the segments, as if their entries were concatenated; each part knows
        // where its entries start in that numbering.
        let rows = (k1 - k0) as usize;
        let mut ptr = Vec::with_capacity(rows + 1);
        ptr.push(0u64);
        let mut parts = Vec::with_capacity(self.mapped.len());
        let mut part_of = if self.mapped.len() > 1 { vec![0u32; rows] } else { Vec::new() };
        for seg in &self.mapped {
            let (ra, rb) = self.row_range(seg);
            let at = (seg.start() + ra as u64 - k0) as usize;
            let end = *ptr.last().unwrap_or(&0);
            // Rows before this segment that no segment with entries covers.
            ptr.resize(at + 1, end);
            let indptr = seg.indptr();
            let base = end - indptr[ra];
            ptr.extend(indptr[ra + 1..=rb].iter().map(|&q| q + base));
            if !part_of.is_empty() {
                part_of[at..at + (rb - ra)].fill(parts.len() as u32);
            }
            parts.push(Part {
                base,
                cols: stored_cols::<I>(seg).unwrap_or(&[]),
                vals: self.stored_vals(seg).unwrap_or(&[]),
            });
        }
        let end = *ptr.last().unwrap_or(&0);
        ptr.resize(rows + 1, end);
        RightBlock { k0, k1, ptr: Cow::Owned(ptr), parts, part_of }
    }
}

/// Whether every row (`indptr` into `cols`, offsets in bounds) is strictly increasing and below
/// `inner_dim`: the windowed accumulator relies on the first and last index of a row being its
/// smallest and largest. Vectorisable: the descents of the whole array are counted, and must all
/// fall on row boundaries.
fn rows_valid<I: Col>(indptr: &[u64], cols: &[I], inner_dim: u64) -> bool {
    let (Some(&lo), Some(&hi)) = (indptr.first(), indptr.last()) else { return true };
    let flat = &cols[lo as usize..hi as usize];
    const CHUNK: usize = 1 << 16;
    let (top, descents) = flat
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(i, c)| {
            // Each chunk also compares its last entry with the next chunk's first.
            let next = &flat[i * CHUNK + 1..((i + 1) * CHUNK + 1).min(flat.len())];
            let d = c.iter().zip(next).fold(0usize, |n, (x, y)| n + (x >= y) as usize);
            (c.iter().fold(0usize, |m, &x| m.max(x.idx())), d)
        })
        .reduce(|| (0, 0), |a, b| (a.0.max(b.0), a.1 + b.1));
    if !flat.is_empty() && top as u64 >= inner_dim {
        return false;
    }
    // Every distinct boundary inside the range ends a non-empty row.
    let at_boundaries = indptr
        .windows(2)
        .filter(|w| w[1] > w[0] && w[1] < hi && cols[w[1] as usize - 1] >= cols[w[1] as usize])
        .count();
    descents == at_boundaries
}

/// Consecutive rows of the right operand stored together: the entries of a row at `ptr[r]..ptr[r +
/// 1]` are at `[ptr[r] - base, ptr[r + 1] - base)` of `cols` and `vals`.
struct Part<'b, I, T> {
    base: u64,
    cols: &'b [I],
    vals: &'b [T],
}

/// Rows `k0..k1` of the right operand (see [`BlockStore`]).
struct RightBlock<'b, I, T> {
    k0: u64,
    k1: u64,
    /// Row pointers over all parts: `k1 - k0 + 1` entries.
    ptr: Cow<'b, [u64]>,
    parts: Vec<Part<'b, I, T>>,
    /// The part holding each row of the block (empty when there is one part).
    part_of: Vec<u32>,
}

impl<I: Col, T: Scalar> RightBlock<'_, I, T> {
    /// The rows as plain slices, for the row loops.
    fn rows(&self) -> Rows<'_, '_, I, T> {
        Rows { k0: self.k0, len: self.k1 - self.k0, ptr: &self.ptr, parts: &self.parts, part_of: &self.part_of }
    }
}

/// A [`RightBlock`]'s rows, borrowed as plain slices (no `Cow` to look through per row).
#[derive(Clone, Copy)]
struct Rows<'a, 'b, I, T> {
    /// The block's first row.
    k0: u64,
    /// The block's row count.
    len: u64,
    ptr: &'a [u64],
    parts: &'a [Part<'b, I, T>],
    part_of: &'a [u32],
}

impl<'a, I, T> Rows<'a, '_, I, T> {
    /// Block row `local`; empty rows may come from no part.
    #[inline(always)]
    fn row(&self, local: usize) -> (&'a [I], &'a [T]) {
        let (lo, hi) = (self.ptr[local], self.ptr[local + 1]);
        if lo == hi {
            return (&[], &[]);
        }
        let part = match self.part_of.is_empty() {
            true => &self.parts[0],
            false => &self.parts[self.part_of[local] as usize],
        };
        let (lo, hi) = ((lo - part.base) as usize, (hi - part.base) as usize);
        (&part.cols[lo..hi], &part.vals[lo..hi])
    }
}

/// One thread's accumulator state, reused across rows and tasks.
struct Acc<I, T> {
    dense_vals: Vec<T>,
    dbits: Vec<u64>,
    keys: Vec<I>,
    hvals: Vec<T>,
    slots: Vec<usize>,
    pairs: Vec<(I, T)>,
    wbits: Vec<u64>,
    wvals: Vec<T>,
}

impl<I: Col, T: Scalar> Acc<I, T> {
    fn new() -> Self {
        Acc {
            dense_vals: Vec::new(),
            dbits: Vec::new(),
            keys: Vec::new(),
            hvals: Vec::new(),
            slots: Vec::new(),
            pairs: Vec::new(),
            wbits: Vec::new(),
            wvals: Vec::new(),
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

/// Rows up to this many flops use the sort-based accumulator (unless their products span a narrow
/// window of columns).
const SMALL_ROW_FLOPS: u64 = 32;

/// Columns of the windowed dense accumulator: 32 Ki, 384 KiB of stamps and float64 values per
/// thread, within a core's L2 cache.
const WINDOW: usize = 1 << 15;

/// Bytes of dense values per thread that stay in a core's L2 cache: below this, the dense
/// accumulator also serves rows of modest work, as long as its bitmap scan is not much longer.
const CACHED: usize = 1 << 20;

/// Most flops in one band of output rows held in memory.
const BAND_FLOPS: u64 = 2 << 20;

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
    block: &'b RightBlock<'b, I, T>,
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
        let mut pass = |block: &RightBlock<'_, I, T>, writer: &mut MatrixWriter<T>, drop_zeros: bool| -> Result<()> {
            let p = Pass { block, inner_dim, k_dim, dense_ok, drop_zeros, accumulator: self.options.accumulator };
            stats.flops += self.multiply_pass::<I, T, R>(&p, writer, band_flops, &done_rows, total_rows)?;
            Ok(())
        };
        let out_writer =
            |dir: &Path| MatrixWriter::<T>::create(dir, self.shape, self.layout, self.options.op.writer.clone());
        if blocks.len() == 1 {
            let store = BlockStore::<I, T>::load(self.right, 0, k_dim)?;
            let block = store.view();
            let mut writer = out_writer(scratch_out(scratch))?;
            pass(&block, &mut writer, self.options.drop_zeros)?;
            return writer.finish();
        }
        // Out of core: one partial product per block of B's rows, then a merge.
        let seg_bytes = (avail / 4 / blocks.len().min(64) as u64).clamp(1 << 20, 64 << 20);
        let mut partials = Vec::with_capacity(blocks.len());
        for &(k0, k1, _) in &blocks {
            let store = BlockStore::<I, T>::load(self.right, k0, k1)?;
            let block = store.view();
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
                // Once per band (at most BAND_FLOPS of work).
                crate::interrupt::check()?;
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
        let rows = p.block.rows();
        let flops = match seg.indices() {
            Indices::U32(ix) => flops_of(ix, indptr, rows, p.k_dim),
            Indices::U64(ix) => flops_of(ix, indptr, rows, p.k_dim),
        };
        flops.ok_or_else(|| corrupt_index(seg, "an index lies outside the matrix"))
    }
}

/// The flops of every row (`indptr` into `ix`) against the block's `rows`; `None` when an index is
/// out of the array or not below `k_dim`.
fn flops_of<K: Copy + Into<u64> + Sync, I: Sync, T: Sync>(
    ix: &[K],
    indptr: &[u64],
    rows: Rows<'_, '_, I, T>,
    k_dim: u64,
) -> Option<Vec<u64>> {
    let mut flops = vec![0u64; indptr.len() - 1];
    const CHUNK: usize = 4096;
    let bad = flops
        .par_chunks_mut(CHUNK)
        .enumerate()
        .map(|(c, chunk)| {
            let mut bad = false;
            for (i, f) in chunk.iter_mut().enumerate() {
                let r = c * CHUNK + i;
                let Some(ks) = ix.get(indptr[r] as usize..indptr[r + 1] as usize) else { return true };
                let mut sum = 0u64;
                for &k in ks {
                    let local = k.into().wrapping_sub(rows.k0);
                    if local < rows.len {
                        sum += rows.ptr[local as usize + 1] - rows.ptr[local as usize];
                    } else {
                        bad |= k.into() >= k_dim;
                    }
                }
                *f = sum;
            }
            bad
        })
        .reduce(|| false, |x, y| x | y);
    (!bad).then_some(flops)
}

/// The output directory (the scratch area is only for intermediates).
fn scratch_out(scratch: &Scratch) -> &Path {
    &scratch.out
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
    let indptr = &seg.indptr()[a..=b];
    let (lo, hi) = (indptr[0] as usize, indptr[b - a] as usize);
    // A's values as `T`, read in place when stored so, else converted once per task (not per entry).
    let converted;
    let avals: &[T] = match T::stored(seg.values()).and_then(|v| v.get(lo..hi)) {
        Some(v) => v,
        None => {
            let vals = seg.values();
            converted = (lo..hi).map(|k| T::at(vals, k)).collect::<Vec<T>>();
            &converted
        }
    };
    // One dispatch on A's index width per task, so that the row loop reads a plain slice.
    let ok = match seg.indices() {
        Indices::U32(ix) => ix
            .get(lo..hi)
            .map(|ix| task_rows::<u32, I, T, R>(ix, avals, indptr, p, &row_flops[a..b], &mut acc, &mut out)),
        Indices::U64(ix) => ix
            .get(lo..hi)
            .map(|ix| task_rows::<u64, I, T, R>(ix, avals, indptr, p, &row_flops[a..b], &mut acc, &mut out)),
    };
    out.bad |= ok != Some(true);
    if let Ok(mut v) = pool.lock() {
        v.push(acc);
    }
    out
}

/// The rows of a task: `ix` and `avals` hold A's entries from `indptr[0]` on. False when an index
/// lies outside the matrix.
#[inline(always)]
fn task_rows<K: Copy + Into<u64>, I: Col, T: Scalar, R: Ring<T>>(
    ix: &[K],
    avals: &[T],
    indptr: &[u64],
    p: &Pass<'_, I, T>,
    row_flops: &[u64],
    acc: &mut Acc<I, T>,
    out: &mut TaskOut<I, T>,
) -> bool {
    let rows = p.block.rows();
    let base = indptr[0];
    let ncols = p.inner_dim as usize;
    let drop_zeros = p.drop_zeros;
    let mut bad = false;
    // The rows of B a row of A selects, with A's value: gathered once, so that the kernels below
    // loop over plain slices.
    let mut sel: Vec<(&[I], &[T], T)> = Vec::new();
    for (r, &flops) in row_flops.iter().enumerate() {
        let (s, e) = ((indptr[r] - base) as usize, (indptr[r + 1] - base) as usize);
        let before = out.cols.len();
        sel.clear();
        // The columns the row's products span: B's rows are sorted (checked at load).
        let (mut first, mut last) = (usize::MAX, 0usize);
        for (&k, &av) in ix[s..e].iter().zip(&avals[s..e]) {
            let local = k.into().wrapping_sub(rows.k0);
            if local < rows.len {
                let (bc, bv) = rows.row(local as usize);
                if let (Some(f), Some(l)) = (bc.first(), bc.last()) {
                    first = first.min(f.idx());
                    last = last.max(l.idx());
                    sel.push((bc, bv, av));
                }
            } else {
                bad |= k.into() >= p.k_dim;
            }
        }
        let width = (last + 1).saturating_sub(first);
        match p.accumulator {
            _ if sel.is_empty() => {}
            Accumulator::Sort => sort_row::<I, T, R>(&sel, acc, out, drop_zeros),
            Accumulator::Hash => hash_row::<I, T, R>(&sel, flops, ncols, acc, out, drop_zeros),
            Accumulator::Dense if p.dense_ok => dense_row::<I, T, R>(&sel, ncols, acc, out, drop_zeros),
            Accumulator::Dense => hash_row::<I, T, R>(&sel, flops, ncols, acc, out, drop_zeros),
            Accumulator::Window if width <= WINDOW => window_row::<I, T, R>(&sel, first, width, acc, out, drop_zeros),
            Accumulator::Window => hash_row::<I, T, R>(&sel, flops, ncols, acc, out, drop_zeros),
            Accumulator::Auto => {
                // Narrow: the window's dense array is not much wider than the work, so the row's
                // products land on few cache lines (banded rows). Measured on R-MAT: wider windows,
                // though scanned through the summary, lose to sorting and hashing (random accesses
                // over up to 256 KiB).
                let narrow = width <= WINDOW && width / 64 <= 4 * flops as usize + 16;
                if narrow && flops <= SMALL_ROW_FLOPS {
                    window_row::<I, T, R>(&sel, first, width, acc, out, drop_zeros)
                } else if flops <= SMALL_ROW_FLOPS {
                    sort_row::<I, T, R>(&sel, acc, out, drop_zeros)
                } else if p.dense_ok
                    && (flops * 16 >= ncols as u64
                        || (ncols * std::mem::size_of::<T>() <= CACHED && ncols / 64 <= 4 * flops as usize))
                {
                    dense_row::<I, T, R>(&sel, ncols, acc, out, drop_zeros)
                } else if narrow {
                    window_row::<I, T, R>(&sel, first, width, acc, out, drop_zeros)
                } else {
                    hash_row::<I, T, R>(&sel, flops, ncols, acc, out, drop_zeros)
                }
            }
        }
        out.counts.push((out.cols.len() - before) as u64);
    }
    !bad
}

/// Sorts a short slice by insertion: stable, and faster than a general sort below a few dozen
/// elements (it needs no buffer).
#[inline]
fn insertion_sort_by_key<E: Copy, K: Ord>(v: &mut [E], key: impl Fn(&E) -> K) {
    for i in 1..v.len() {
        let e = v[i];
        let mut j = i;
        while j > 0 && key(&v[j - 1]) > key(&e) {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = e;
    }
}

/// Expand, sort, compress: the row's products sorted stably by column, so that equal columns
/// combine in the order the other accumulators combine them.
fn sort_row<I: Col, T: Scalar, R: Ring<T>>(
    sel: &[(&[I], &[T], T)],
    acc: &mut Acc<I, T>,
    out: &mut TaskOut<I, T>,
    drop_zeros: bool,
) {
    let pairs = &mut acc.pairs;
    pairs.clear();
    for &(bc, bv, av) in sel {
        pairs.extend(bc.iter().zip(bv).map(|(&c, &b)| (c, R::mul(av, b))));
    }
    if pairs.len() <= SMALL_ROW_FLOPS as usize {
        insertion_sort_by_key(pairs, |e| e.0);
    } else {
        pairs.sort_by_key(|e| e.0);
    }
    let mut i = 0;
    while i < pairs.len() {
        let (c, mut v) = pairs[i];
        i += 1;
        while i < pairs.len() && pairs[i].0 == c {
            v = R::add(v, pairs[i].1);
            i += 1;
        }
        out.emit(c, v, drop_zeros);
    }
}

/// A dense array over the columns `first..first + width` the row's products span (at most
/// [`WINDOW`]): rows of a banded matrix touch a narrow range of columns, so this is a dense
/// accumulator whose footprint stays in cache whatever the matrix's width.
fn window_row<I: Col, T: Scalar, R: Ring<T>>(
    sel: &[(&[I], &[T], T)],
    first: usize,
    width: usize,
    acc: &mut Acc<I, T>,
    out: &mut TaskOut<I, T>,
    drop_zeros: bool,
) {
    if acc.wbits.len() != WINDOW / 64 {
        acc.wbits = vec![0; WINDOW / 64];
        acc.wvals = vec![R::IDENTITY.unwrap_or_default(); WINDOW];
    }
    // One summary word (in a register) covers the 4096 columns of a 2-D Laplacian's row up to n = 1023.
    if width <= SUMMARY_COLS {
        summary_row::<I, T, R, 1>(sel, first, &mut acc.wbits, &mut acc.wvals, out, drop_zeros)
    } else {
        summary_row::<I, T, R, { WINDOW / SUMMARY_COLS }>(sel, first, &mut acc.wbits, &mut acc.wvals, out, drop_zeros)
    }
}

/// Columns one word of a two-level bitmap's summary covers: 64 words of 64 columns.
const SUMMARY_COLS: usize = 64 * 64;

/// [`bitmap_row`] over `S` x [`SUMMARY_COLS`] columns from `first`, with a second level: a bit per
/// word of the bitmap, set as products arrive, so that only the words touched are scanned (a
/// Laplacian's row touches about 7 words of the 63 its products span). The cost follows the work,
/// not the width.
#[inline(always)]
fn summary_row<I: Col, T: Scalar, R: Ring<T>, const S: usize>(
    sel: &[(&[I], &[T], T)],
    first: usize,
    bits: &mut [u64],
    dense: &mut [T],
    out: &mut TaskOut<I, T>,
    drop_zeros: bool,
) {
    let bits = &mut bits[..S * 64];
    let dense = &mut dense[..S * SUMMARY_COLS];
    let mut summary = [0u64; S];
    let start = R::IDENTITY.unwrap_or_default();
    for &(bc, bv, av) in sel {
        for (&c, &b) in bc.iter().zip(bv) {
            // Below the caller's width; the mask only spares the compiler's bounds checks.
            let j = (c.idx() - first) & (S * SUMMARY_COLS - 1);
            summary[j / 64 / 64] |= 1u64 << (j / 64 % 64);
            accumulate::<T, R>(bits, dense, j, av, b);
        }
    }
    for (s, &y) in summary.iter().enumerate() {
        let mut y = y;
        while y != 0 {
            let w = s * 64 + y.trailing_zeros() as usize;
            y &= y - 1;
            emit_word(&mut bits[w], w, first, dense, start, out, drop_zeros);
        }
    }
}

/// Adds `av * b` into slot `j` of a bitmap accumulator, marking it in `bits` (see [`bitmap_row`]).
#[inline(always)]
fn accumulate<T: Scalar, R: Ring<T>>(bits: &mut [u64], dense: &mut [T], j: usize, av: T, b: T) {
    let (w, m) = (j / 64, 1u64 << (j % 64));
    match R::IDENTITY {
        Some(_) => {
            bits[w] |= m;
            dense[j] = R::add(dense[j], R::mul(av, b));
        }
        None => {
            let prod = R::mul(av, b);
            let fresh = bits[w] & m == 0;
            bits[w] |= m;
            let old = dense[j];
            dense[j] = if fresh { prod } else { R::add(old, prod) };
        }
    }
}

/// Emits, in column order, the slots marked in word `w` of a bitmap accumulator whose slot 0 is
/// column `first`, putting each slot back to `start` and clearing the word.
#[inline(always)]
fn emit_word<I: Col, T: Scalar>(
    word: &mut u64,
    w: usize,
    first: usize,
    dense: &mut [T],
    start: T,
    out: &mut TaskOut<I, T>,
    drop_zeros: bool,
) {
    let mut x = std::mem::take(word);
    while x != 0 {
        let j = w * 64 + x.trailing_zeros() as usize;
        out.emit(I::from_u64((first + j) as u64), std::mem::replace(&mut dense[j], start), drop_zeros);
        x &= x - 1;
    }
}

/// A dense array over every column (rows whose flops are a fair fraction of the columns).
fn dense_row<I: Col, T: Scalar, R: Ring<T>>(
    sel: &[(&[I], &[T], T)],
    ncols: usize,
    acc: &mut Acc<I, T>,
    out: &mut TaskOut<I, T>,
    drop_zeros: bool,
) {
    let words = ncols.div_ceil(64);
    if acc.dbits.len() != words {
        acc.dbits = vec![0; words];
        acc.dense_vals = vec![R::IDENTITY.unwrap_or_default(); words * 64];
    }
    bitmap_row::<I, T, R>(sel, 0, &mut acc.dbits, &mut acc.dense_vals, out, drop_zeros);
}

/// Accumulates the row's products in `dense[column - first]`, marking the columns touched in
/// `bits`, then emits them in column order by scanning `bits` a word at a time (a word per 64
/// columns, no sort: the callers choose this when that scan is not much longer than the work). Every
/// product is accumulated without a data-dependent branch (whether a column is new is a coin toss
/// the branch predictor loses): slots hold the ring's identity when it has one, and are put back to
/// it as they are read, so that accumulating is an add; else the first product is selected. `bits`
/// is left all clear.
#[inline(always)]
fn bitmap_row<I: Col, T: Scalar, R: Ring<T>>(
    sel: &[(&[I], &[T], T)],
    first: usize,
    bits: &mut [u64],
    dense: &mut [T],
    out: &mut TaskOut<I, T>,
    drop_zeros: bool,
) {
    let start = R::IDENTITY.unwrap_or_default();
    for &(bc, bv, av) in sel {
        for (&c, &b) in bc.iter().zip(bv) {
            accumulate::<T, R>(bits, dense, c.idx() - first, av, b);
        }
    }
    for (w, word) in bits.iter_mut().enumerate() {
        emit_word(word, w, first, dense, start, out, drop_zeros);
    }
}

/// An open-addressing hash table sized to twice the row's flops; its entries sorted at the end.
fn hash_row<I: Col, T: Scalar, R: Ring<T>>(
    sel: &[(&[I], &[T], T)],
    flops: u64,
    ncols: usize,
    acc: &mut Acc<I, T>,
    out: &mut TaskOut<I, T>,
    drop_zeros: bool,
) {
    let size = (2 * flops.min(ncols as u64)).next_power_of_two().max(16) as usize;
    if acc.keys.len() < size {
        acc.keys.resize(size, I::EMPTY);
        acc.hvals.resize(size, T::default());
    }
    let mask = size - 1;
    let Acc { keys, hvals, slots, pairs, .. } = acc;
    slots.clear();
    for &(bc, bv, av) in sel {
        for (&c, &b) in bc.iter().zip(bv) {
            let prod = R::mul(av, b);
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
    }
    pairs.clear();
    for &h in slots.iter() {
        pairs.push((keys[h], hvals[h]));
        keys[h] = I::EMPTY;
    }
    pairs.sort_unstable_by_key(|e| e.0);
    for &(c, v) in pairs.iter() {
        out.emit(c, v, drop_zeros);
    }
}

/// Writes a band's rows, in order.
fn write_band<I: Col, T: Scalar>(
    writer: &mut MatrixWriter<T>,
    band: Vec<TaskOut<I, T>>,
    spare: &Mutex<Vec<TaskOut<I, T>>>,
) -> Result<()> {
    for mut task in band {
        writer.push_rows_encoded(&task.counts, bytemuck::cast_slice::<I, u8>(&task.cols), T::le_bytes(&task.vals))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::WriterOptions;
    use std::collections::BTreeMap;

    /// xorshift64: deterministic operands with no extra crate.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Writes `rows` (sorted, distinct columns per row) as a CSR matrix with small segments, so
    /// that `B` is read from several parts.
    fn write(dir: &Path, shape: (u64, u64), rows: &[BTreeMap<u64, f64>]) -> Matrix {
        let options = WriterOptions { segment_bytes: 64 << 10, durable: false, ..WriterOptions::default() };
        let mut w = MatrixWriter::<f64>::create(dir, shape, Layout::Csr, options).unwrap();
        for row in rows {
            let (c, v): (Vec<u64>, Vec<f64>) = row.iter().map(|(&c, &v)| (c, v)).unzip();
            w.push_row(&c, &v).unwrap();
        }
        w.finish().unwrap()
    }

    /// Rows of `A` whose products span under 4096 columns, under 32 Ki and more, with under and
    /// over 32 flops: both summary sizes of the window, its fallbacks and every other accumulator
    /// run, in every semiring, against a product computed from the definition (small integers:
    /// exact whatever the order).
    #[test]
    fn narrow_and_wide_spans_equal_the_definition() {
        let tmp = tempfile::tempdir().unwrap();
        let n = 70_000u64;
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let val = |s: &mut u64| (next(s) % 7) as f64 - 3.0;
        let b_rows: Vec<BTreeMap<u64, f64>> = (0..n)
            .map(|k| {
                let len = next(&mut s) % 7;
                (0..len).map(|_| ((k + next(&mut s) % 41).saturating_sub(20).min(n - 1), val(&mut s))).collect()
            })
            .collect();
        let a_rows: Vec<BTreeMap<u64, f64>> = (0..3000u64)
            .map(|i| {
                let reach = [1000, 8000, 30_000][i as usize % 3];
                let base = next(&mut s) % (n - 2 * reach) + reach;
                let len = 1 + next(&mut s) % 12;
                (0..len).map(|_| (base + next(&mut s) % (2 * reach) - reach, val(&mut s))).collect()
            })
            .collect();
        let a = write(&tmp.path().join("a"), (a_rows.len() as u64, n), &a_rows);
        let b = write(&tmp.path().join("b"), (n, n), &b_rows);
        assert!(b.segments().len() > 1);
        for semiring in [Semiring::PlusTimes, Semiring::MinPlus, Semiring::Pattern] {
            let mut expected = BTreeMap::new();
            for (i, row) in a_rows.iter().enumerate() {
                for (&k, &av) in row {
                    for (&j, &bv) in &b_rows[k as usize] {
                        let (prod, add): (f64, fn(f64, f64) -> f64) = match semiring {
                            Semiring::PlusTimes => (av * bv, |x, y| x + y),
                            Semiring::MinPlus => (av + bv, f64::min),
                            Semiring::Pattern => (1.0, |_, _| 1.0),
                        };
                        expected.entry((i, j as usize)).and_modify(|v| *v = add(*v, prod)).or_insert(prod);
                    }
                }
            }
            for accumulator in
                [Accumulator::Auto, Accumulator::Window, Accumulator::Sort, Accumulator::Hash, Accumulator::Dense]
            {
                let options = SpgemmOptions { semiring, accumulator, ..SpgemmOptions::default() };
                let out = tmp.path().join("c");
                let (c, _) = spgemm(&a, &b, &out, &options, None).unwrap();
                let got: BTreeMap<(usize, usize), f64> =
                    c.to_sprs().unwrap().iter().map(|(&v, (i, j))| ((i, j), v)).collect();
                assert!(got == expected, "{semiring:?} {accumulator:?}");
                std::fs::remove_dir_all(&out).unwrap();
            }
        }
    }
}
