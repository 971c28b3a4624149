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
//! columns, it gives the columns back in order with no sort (much cheaper than a stamp per column
//! and a sort of the columns touched: see `docs/performance.md`, "SpGEMM design notes").
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
//!
//! **In memory.** [`spgemm_in_memory`] returns the product as a sprs matrix instead of writing it:
//! the same plan, block of `B`, task split and accumulators, each band's rows appended to growing
//! arrays (copied by the pool's threads, from task buffers still in cache) instead of handed to the
//! writer. `B` must fit in one block and the product in what the budget leaves, else an error says
//! so before memory runs out.
//!
//! **Files.** `plan` (budget split, blocks of `B`, bands and tasks, the accumulator of a row),
//! `block` (the B-block store), `accum` (the accumulators), `ring` (semirings and value
//! arithmetic), `band` (the band writer), `job` (the driver and a task's row loop).

mod accum;
mod band;
mod block;
mod job;
mod plan;
mod ring;

pub use ring::Semiring;

use super::{OpOptions, OpStats, ProgressFn, Scratch};
use crate::element::{result_type, with_index_type, Element, StoredIndex};
use crate::error::{Error, Result};
use crate::format::{IndexType, Layout, ValueType};
use crate::matrix::Matrix;
use job::Job;
use ring::{MinPlus, PlusTimes, Structure};
use std::any::Any;
use std::path::Path;
use std::time::Instant;

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
    /// The directory in which [`spgemm_in_memory`] converts `B` when its layout differs from `A`'s
    /// (in a directory of its own made there and removed afterwards). `None`: the system's temporary
    /// directory ([`std::env::temp_dir`]). [`spgemm`] converts next to its output instead.
    pub scratch_dir: Option<std::path::PathBuf>,
}

/// The value type of `A B` in `semiring`: pattern for the structural product, else the
/// [`result_type`] of the operands' (int64 when both hold integers, int64 or pattern; else float64,
/// float32 operands widened).
pub fn output_value_type(a: ValueType, b: ValueType, semiring: Semiring) -> ValueType {
    match semiring {
        Semiring::Pattern => ValueType::Pattern,
        _ => result_type(a, b),
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
/// use sparsedisk::{generators::{generate, Generator}, ops::{spgemm, SpgemmOptions}, Layout, WriterOptions};
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
    check_shapes(a, b)?;
    let out = out.as_ref();
    let mut scratch = Scratch::new(out, options.op.writer.overwrite)?;
    let mut stats = OpStats::default();
    let mut converted = None;
    let b = in_layout(b, a.layout(), &mut scratch, &options.op, progress, &mut stats, &mut converted)?;
    // In outer/inner terms the product of two CSC matrices is C^T = B^T A^T on the same arrays.
    let (left, right) = match a.layout() {
        Layout::Csr => (a, b),
        Layout::Csc => (b, a),
    };
    let shape = (a.rows(), b.cols());
    let job = Job { left, right, shape, layout: a.layout(), options, progress };
    let vt = output_value_type(a.value_type(), b.value_type(), options.semiring);
    let index = IndexType::for_inner_dim(a.layout().outer_inner(shape).1);
    // The rings are defined for the types the output can have: (), i64 and f64.
    let m = with_index_type!(index, |I| match (vt, options.semiring) {
        (ValueType::Pattern, _) => job.run::<I, (), Structure>(&mut scratch, &mut stats)?,
        (ValueType::Int64, Semiring::MinPlus) => job.run::<I, i64, MinPlus>(&mut scratch, &mut stats)?,
        (ValueType::Int64, _) => job.run::<I, i64, PlusTimes>(&mut scratch, &mut stats)?,
        (_, Semiring::MinPlus) => job.run::<I, f64, MinPlus>(&mut scratch, &mut stats)?,
        (_, _) => job.run::<I, f64, PlusTimes>(&mut scratch, &mut stats)?,
    });
    scratch.published();
    stats.nnz = m.nnz();
    stats.seconds = started.elapsed().as_secs_f64();
    Ok((m, stats))
}

/// `C = A B` held in memory, as a sprs matrix in `A`'s layout (CSR or CSC) with column (CSC: row)
/// indices of type `I` and values of type `T`: the product [`spgemm`] writes, entry for entry and
/// bit for bit, computed the same way (see the [module docs](self)) without writing it.
///
/// `T` must be the product's value type, [`output_value_type`] of the operands' (`f64` when either
/// holds floats, `i64` for two integer or pattern operands, `()` for [`Semiring::Pattern`]). `I` is
/// `u32` (scipy's int32 indices, and a third less memory than `u64`) when the output's inner
/// dimension allows it, else `u64`. Row pointers are `usize`.
///
/// Entries are kept wherever some `A[i, k]` and `B[k, j]` are both stored, even when their sum is
/// zero (the GraphBLAS and sprs convention; scipy's `A @ B` drops computed zeros): set
/// [`SpgemmOptions::drop_zeros`] to drop them. Every row's columns are sorted.
///
/// Memory: [`OpOptions::memory_budget`](super::OpOptions::memory_budget) bounds `B`'s copy (when it
/// is not read in place), the accumulators and the product's arrays; `B` must fit in its share (two
/// fifths) and the product in the rest, else the call fails with [`Error::InvalidInput`] (before
/// the arrays outgrow the budget, not by running out of memory). `A` is streamed from its mapped
/// segments. When `B`'s layout differs from `A`'s, it is first converted out of core into a
/// temporary directory under [`SpgemmOptions::scratch_dir`], removed afterwards. The writer options are
/// not used.
///
/// # Errors
///
/// [`Error::InvalidInput`] when `A`'s columns differ from `B`'s rows, `T` is not the product's value
/// type, `I` cannot hold the output's inner indices, the budget is below
/// [`MIN_OP_MEMORY`](super::MIN_OP_MEMORY) or the product does not fit in it; [`Error::Corrupt`]
/// when an input holds an index out of range or an unsorted row; [`Error::Io`].
///
/// # Examples
///
/// ```
/// use sparsedisk::{generators::{generate, Generator}, ops::{spgemm_in_memory, SpgemmOptions}, Layout, WriterOptions};
/// # let tmp = tempfile::tempdir().unwrap();
/// let a = generate::<f64>(&Generator::Laplace2d { n: 4 }, &tmp.path().join("a"), Layout::Csr, WriterOptions::default())?;
/// let (c, stats) = spgemm_in_memory::<f64, u32>(&a, &a, &SpgemmOptions::default(), None)?;
/// assert_eq!(c.shape(), (16, 16));
/// assert_eq!(c.get(0, 0), Some(&18.0)); // 4 * 4 + (-1) * (-1) * 2
/// assert_eq!(stats.nnz, c.nnz() as u64);
/// # Ok::<(), sparsedisk::Error>(())
/// ```
pub fn spgemm_in_memory<T: Element, I: StoredIndex>(
    a: &Matrix,
    b: &Matrix,
    options: &SpgemmOptions,
    progress: Option<ProgressFn<'_>>,
) -> Result<(sprs::CsMatI<T, I, usize>, OpStats)> {
    let started = Instant::now();
    options.op.check()?;
    check_shapes(a, b)?;
    let vt = output_value_type(a.value_type(), b.value_type(), options.semiring);
    if T::VALUE_TYPE != vt {
        return Err(Error::invalid(format!(
            "the product of {} by {} in {} has {} values, not {}: ask for {}",
            a.value_type().name(),
            b.value_type().name(),
            options.semiring.name(),
            vt.name(),
            T::VALUE_TYPE.name(),
            match vt {
                ValueType::Pattern => "()",
                ValueType::Int64 => "i64",
                _ => "f64",
            }
        )));
    }
    let shape = (a.rows(), b.cols());
    let (outer_dim, inner_dim) = a.layout().outer_inner(shape);
    let too_big = |what: &str| {
        Error::invalid(format!("a {} x {} product cannot be held in memory here: {what}", shape.0, shape.1))
    };
    if IndexType::for_inner_dim(inner_dim) == IndexType::Uint64 && I::INDEX_TYPE == IndexType::Uint32 {
        return Err(too_big("its inner indices do not fit u32: ask for u64"));
    }
    let rows = usize::try_from(shape.0).map_err(|_| too_big("too many rows for this platform"))?;
    let cols = usize::try_from(shape.1).map_err(|_| too_big("too many columns for this platform"))?;
    usize::try_from(outer_dim + 1).map_err(|_| too_big("too many rows for this platform"))?;
    let mut stats = OpStats::default();
    // Only used when B must change layout: a scratch directory that is never published, so that
    // dropping it removes everything made in it.
    let mut scratch = None;
    let mut converted = None;
    let b = if b.layout() == a.layout() {
        b
    } else {
        let base = options.scratch_dir.clone().unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!(
            "sparsedisk-spgemm-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
        ));
        let scratch = scratch.insert(Scratch::new(&dir, false)?);
        in_layout(b, a.layout(), scratch, &options.op, progress, &mut stats, &mut converted)?
    };
    let (left, right) = match a.layout() {
        Layout::Csr => (a, b),
        Layout::Csc => (b, a),
    };
    let job = Job { left, right, shape, layout: a.layout(), options, progress };
    let (indptr, indices, data) = match (vt, options.semiring) {
        (ValueType::Pattern, _) => typed(job.run_in_memory::<I, (), Structure>(&mut stats)?)?,
        (ValueType::Int64, Semiring::MinPlus) => typed(job.run_in_memory::<I, i64, MinPlus>(&mut stats)?)?,
        (ValueType::Int64, _) => typed(job.run_in_memory::<I, i64, PlusTimes>(&mut stats)?)?,
        (_, Semiring::MinPlus) => typed(job.run_in_memory::<I, f64, MinPlus>(&mut stats)?)?,
        (_, _) => typed(job.run_in_memory::<I, f64, PlusTimes>(&mut stats)?)?,
    };
    drop(scratch);
    let storage = match a.layout() {
        Layout::Csr => sprs::CompressedStorage::CSR,
        Layout::Csc => sprs::CompressedStorage::CSC,
    };
    stats.nnz = indices.len() as u64;
    // The cheap half of sprs's checks (the rest is O(nnz), and holds by construction).
    if indptr.len() as u64 != outer_dim + 1 || indptr.last() != Some(&indices.len()) || data.len() != indices.len() {
        return Err(Error::invalid("internal: the product's arrays do not match its shape"));
    }
    // SAFETY: sprs's structure holds: `indptr` has a pointer per outer index and one more (checked
    // above), from 0 and non-decreasing up to the entries' count (each band appends its rows'
    // counts); every row's inner indices are strictly increasing and below the inner dimension (the
    // accumulators emit them in order, from rows of B checked to be sorted and in range when loaded).
    let c = unsafe { sprs::CsMatI::new_unchecked(storage, (rows, cols), indptr, indices, data) };
    stats.seconds = started.elapsed().as_secs_f64();
    Ok((c, stats))
}

/// The arrays of a product computed in value type `U`, as the caller's `T` (the same type: checked
/// against the product's value type before computing).
fn typed<I: StoredIndex, U: 'static, T: 'static>(out: job::Computed<I, U>) -> Result<(Vec<usize>, Vec<I>, Vec<T>)> {
    let (indptr, indices, vals) = out;
    let vals = (Box::new(vals) as Box<dyn Any>)
        .downcast::<Vec<T>>()
        .map_err(|_| Error::invalid("internal: the product's value type does not match the one asked for"))?;
    Ok((indptr, indices, *vals))
}

/// The error for `A B` when `A`'s columns differ from `B`'s rows.
fn check_shapes(a: &Matrix, b: &Matrix) -> Result<()> {
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
    Ok(())
}

/// `b` in `layout`: itself when stored so, else converted into `scratch` (out of core, within
/// `op`'s budget) and held in `converted`, counted in `stats`. Shared by the binary operations.
pub(super) fn in_layout<'m>(
    b: &'m Matrix,
    layout: Layout,
    scratch: &mut Scratch,
    op: &OpOptions,
    progress: Option<ProgressFn<'_>>,
    stats: &mut OpStats,
    converted: &'m mut Option<Matrix>,
) -> Result<&'m Matrix> {
    if b.layout() == layout {
        return Ok(b);
    }
    let dir = scratch.path("B")?;
    let m = super::transpose::rewrite(b, &dir, layout, op.memory_budget, progress)?;
    stats.conversions += 1;
    Ok(converted.insert(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::MatrixWriter;
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
