//! Transposition and layout conversion, for matrices larger than memory.
//!
//! Both are one operation: write the entries of `M` (or of `M^T`) in a given layout. When the output's
//! outer index is the input's outer index (`A^T` in CSC from `A` in CSR, or a conversion to the layout
//! the matrix already has), the arrays are copied outer index by outer index, in one streaming pass.
//! Otherwise the entries must be re-sorted by their inner index: they are fed to the
//! [`TripletBuilder`], whose external sort spills sorted runs to a staging area inside the output
//! directory and merges them into the writer, in memory bounded by the budget (a bucket pass would
//! read the input several times; the sort reads it once and writes it twice, whatever the size).

use super::{corrupt_index, max_segment_payload, OpOptions, OpProgress, OpStats, ProgressFn, Scratch};
use crate::builder::{BuildOptions, Duplicates, TripletBuilder, MIN_MEMORY_BUDGET};
use crate::element::{with_value_type, Element};
use crate::error::{Error, Result};
use crate::format::Layout;
use crate::matrix::Matrix;
use crate::scan::row_indices;
use crate::writer::{MatrixWriter, WriterOptions};
use std::path::Path;
use std::time::Instant;

/// Writes `A^T` to `out`, in `layout` (default: `A`'s layout). With the other layout the transpose
/// is a copy of `A`'s arrays; with the same layout the entries are re-sorted out of core.
///
/// # Errors
///
/// [`Error::InvalidInput`] when `out` cannot receive a matrix or the budget is too small;
/// [`Error::Corrupt`] for an index out of range in `A`; [`Error::Io`]. On error nothing is left in `out`.
///
/// # Examples
///
/// ```
/// use sparsedisk::{generators::{generate, Generator}, ops::{transpose, OpOptions}, Layout, WriterOptions};
/// # let tmp = tempfile::tempdir().unwrap();
/// let a = generate::<f64>(&Generator::Banded { n: 5, lower: 0, upper: 2 }, &tmp.path().join("a"), Layout::Csr, WriterOptions::default())?;
/// let (at, _) = transpose(&a, tmp.path().join("at"), None, &OpOptions::default(), None)?;
/// assert_eq!(at.to_sprs()?, a.to_sprs()?.transpose_into().to_csr());
/// # Ok::<(), sparsedisk::Error>(())
/// ```
pub fn transpose(
    a: &Matrix,
    out: impl AsRef<Path>,
    layout: Option<Layout>,
    options: &OpOptions,
    progress: Option<ProgressFn<'_>>,
) -> Result<(Matrix, OpStats)> {
    run(a, out.as_ref(), true, layout.unwrap_or(a.layout()), options, progress)
}

/// Writes `A` to `out` in `layout` (CSR <-> CSC), out of core; the same layout copies it.
///
/// # Errors
///
/// As [`transpose`].
pub fn convert(
    a: &Matrix,
    out: impl AsRef<Path>,
    layout: Layout,
    options: &OpOptions,
    progress: Option<ProgressFn<'_>>,
) -> Result<(Matrix, OpStats)> {
    run(a, out.as_ref(), false, layout, options, progress)
}

fn run(
    a: &Matrix,
    out: &Path,
    transposed: bool,
    layout: Layout,
    options: &OpOptions,
    progress: Option<ProgressFn<'_>>,
) -> Result<(Matrix, OpStats)> {
    let started = Instant::now();
    options.check()?;
    let scratch = Scratch::new(out, options.writer.overwrite)?;
    let m = Rewrite { m: a, dir: out, transposed, layout, writer: options.writer.clone(), options, progress }.run()?;
    scratch.published();
    let stats =
        OpStats { nnz: m.nnz(), flops: a.nnz(), blocks: 1, conversions: 0, seconds: started.elapsed().as_secs_f64() };
    Ok((m, stats))
}

/// Writes `m` (or `m^T` when `transposed`) into `dir` in `layout`, within `budget`: the conversion
/// of an operand into a staging area.
pub(crate) fn rewrite(
    m: &Matrix,
    dir: &Path,
    layout: Layout,
    budget: u64,
    progress: Option<ProgressFn<'_>>,
) -> Result<Matrix> {
    let options = OpOptions { memory_budget: budget, ..OpOptions::default() };
    let writer = Scratch::writer_options(crate::DEFAULT_SEGMENT_BYTES);
    Rewrite { m, dir, transposed: false, layout, writer, options: &options, progress }.run()
}

/// One rewrite of a matrix's entries into `dir`, transposed or not, in `layout`.
struct Rewrite<'a> {
    m: &'a Matrix,
    dir: &'a Path,
    transposed: bool,
    layout: Layout,
    writer: WriterOptions,
    options: &'a OpOptions,
    progress: Option<ProgressFn<'a>>,
}

impl Rewrite<'_> {
    fn run(self) -> Result<Matrix> {
        with_value_type!(self.m.value_type(), |V| self.run_typed::<V>())
    }

    fn run_typed<V: Element>(self) -> Result<Matrix> {
        let Rewrite { m, dir, transposed, layout, writer, options, progress } = self;
        let shape = if transposed { (m.cols(), m.rows()) } else { m.shape() };
        // The output's outer index is the input's row when its layout is CSR and it is not transposed,
        // or CSC and transposed; a plain copy when that is also the input's outer index.
        let out_outer_is_row = (layout == Layout::Csr) != transposed;
        let copy = out_outer_is_row == (m.layout() == Layout::Csr);
        let (_, inner_dim) = m.layout().outer_inner(m.shape());
        let phase = if transposed { "transpose" } else { "convert" };
        let report = |done: u64| {
            if let Some(p) = progress {
                p(OpProgress { phase, done, total: m.nnz() });
            }
        };
        if copy {
            let mut w = MatrixWriter::<V>::create(dir, shape, layout, writer)?;
            let mut cols = Vec::new();
            let mut done = 0u64;
            for_each_outer::<V>(m, inner_dim, |_, ix, vals| {
                cols.clear();
                cols.extend_from_slice(ix);
                done += ix.len() as u64;
                w.push_row(&cols, vals)
            })?;
            report(done);
            return w.finish();
        }
        let budget = options.memory_budget.saturating_sub(max_segment_payload(m)).max(MIN_MEMORY_BUDGET);
        let build = BuildOptions {
            memory_budget: budget,
            duplicates: Duplicates::Sum,
            drop_zeros: false,
            layout,
            shape: Some(shape),
            square: false,
            writer,
            max_chunk_triplets: options.max_chunk_entries,
        };
        let mut builder = TripletBuilder::<V>::new(dir, build)?;
        let in_layout = m.layout();
        let mut done = 0u64;
        for_each_outer::<V>(m, inner_dim, |outer, ix, vals| {
            for (&inner, &v) in ix.iter().zip(vals) {
                let (r, c) = in_layout.row_col(outer, inner);
                let (r, c) = if transposed { (c, r) } else { (r, c) };
                builder.push(r, c, v)?;
            }
            done += ix.len() as u64;
            if done & ((1 << 22) - 1) < ix.len() as u64 {
                report(done);
            }
            Ok(())
        })?;
        report(done);
        Ok(builder.finish()?.0)
    }
}

/// Calls `f(outer, inner indices, values)` for every outer index of `m`, one segment mapped at a
/// time, every index checked against the inner dimension.
fn for_each_outer<V: Element>(
    m: &Matrix,
    inner_dim: u64,
    mut f: impl FnMut(u64, &[u64], &[V]) -> Result<()>,
) -> Result<()> {
    let mut ix = Vec::new();
    for seg in crate::scan::scan(m) {
        crate::interrupt::check()?;
        let seg = seg?;
        let units = vec![(); seg.nnz() as usize];
        let values = V::stored_slice(seg.values(), &units).ok_or_else(|| {
            Error::invalid(format!("{} does not hold {} values", seg.path().display(), V::VALUE_TYPE))
        })?;
        for r in 0..seg.indptr().len() - 1 {
            ix.clear();
            let (lo, hi) = row_indices(&seg, r, inner_dim, &mut ix)?;
            let Some(vals) = values.get(lo..hi) else {
                return Err(corrupt_index(&seg, "an index lies outside the matrix"));
            };
            f(seg.start() + r as u64, &ix, vals)?;
        }
    }
    Ok(())
}
