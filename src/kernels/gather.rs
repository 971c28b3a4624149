//! The gather: each outer index's entries reduced into its own output element (CSR times `x`, CSC
//! transposed times `x`), one disjoint slice of `y` per task.

use super::checked::{walk_checked, IndexChecks, Rows};
use super::dense::gather_dense;
use super::operator::corrupt;
use super::tasks::{pieces, task_count};
use crate::element::{Element, StoredIndex};
use crate::error::Result;
use crate::segment::MappedSegment;
use rayon::prelude::*;
use std::ops::Range;
use std::sync::atomic::AtomicU64;

/// Gathers one segment into its band of `y`; with `dot_with`, returns the band's `w . y` (summed per
/// task, in task order), else 0.
pub(super) fn gather_segment(
    seg: &MappedSegment,
    alpha: f64,
    x: &[f64],
    beta: f64,
    y: &mut [f64],
    k: usize,
    dot_with: Option<&[f64]>,
) -> Result<f64> {
    let indptr = seg.sparse_indptr();
    let start = seg.start() as usize;
    let band = indptr.len() - 1;
    let y_band = &mut y[start * k..(start + band) * k];
    let blocks = seg.dense_blocks();
    let work = seg.dense_work_prefix();
    let tasks = pieces(work.unwrap_or(indptr), task_count(seg.nnz(), 4 * rayon::current_num_threads()));
    // Split the band's output into the tasks' disjoint slices.
    let mut slices = Vec::with_capacity(tasks.len());
    let mut rest = y_band;
    let mut at = 0;
    for &(a, b) in &tasks {
        let (_, tail) = rest.split_at_mut((a - at) * k);
        let (mine, tail) = tail.split_at_mut((b - a) * k);
        slices.push(((a, b), mine));
        rest = tail;
        at = b;
    }
    let wide = AtomicU64::new(0);
    let checks = IndexChecks::new(seg, x.len() / k, &wide);
    let results: Vec<(bool, f64)> = slices
        .into_par_iter()
        .map(|((a, b), out)| {
            let ok = gather_rows(seg, (a, b), Scale { alpha, beta }, x, out, k, checks)
                && blocks.as_ref().map_or(true, |blocks| gather_dense(blocks, a, b, alpha, x, out, k));
            let partial = match dot_with {
                Some(w) if ok => out.iter().zip(&w[start + a..start + b]).map(|(u, v)| u * v).sum(),
                _ => 0.0,
            };
            (ok, partial)
        })
        .collect();
    if results.iter().any(|&(ok, _)| !ok) {
        return Err(corrupt(seg, "an index lies outside the matrix"));
    }
    // The one-column walks checked every index (and measured their spread): later products skip it.
    if k == 1 {
        checks.record(seg);
    }
    Ok(results.iter().map(|&(_, p)| p).sum())
}

/// The coefficients of a product `out = alpha * A x + beta * out`.
#[derive(Clone, Copy)]
pub(super) struct Scale {
    pub(super) alpha: f64,
    pub(super) beta: f64,
}

impl Scale {
    /// `o = alpha * s + beta * o`, in one pass: with beta = 0, `o` is only written (its old contents,
    /// NaN or not, are ignored, as in BLAS), which saves reading it.
    #[inline(always)]
    pub(super) fn update(self, o: &mut f64, s: f64) {
        *o = if self.beta == 0.0 { self.alpha * s } else { self.beta * *o + self.alpha * s };
    }
}

avx2_dispatch! {
    /// Gathers the band-local rows `task.0..task.1` into `out` (`out = alpha * rows + beta * out`);
    /// false when an index is out of range. In the AVX2 build, chosen at run time, the index checks (an or, an and,
    /// a max of unsigned integers) run on 8 lanes instead of 4 and without the SSE2 emulation of
    /// unsigned compares. The arithmetic is the same sequence of separately rounded multiplies and
    /// adds (no FMA), so results are bit for bit those of the portable path.
    fn gather_rows / gather_rows_avx2 => gather_rows_any(
        seg: &MappedSegment, task: (usize, usize), scale: Scale, x: &[f64], out: &mut [f64], k: usize,
        checks: IndexChecks
    )
}

#[inline(always)]
fn gather_rows_any(
    seg: &MappedSegment,
    (a, b): (usize, usize),
    scale: Scale,
    x: &[f64],
    out: &mut [f64],
    k: usize,
    checks: IndexChecks,
) -> bool {
    let (indptr, verified, wide) = (seg.sparse_indptr(), checks.verified, checks.wide_entries);
    // Verified segments with many empty rows: the plain one-column product visits only the others.
    if k == 1 && verified.is_some() && scale.alpha == 1.0 && scale.beta == 0.0 {
        if let Some(nonempty) = seg.nonempty_rows() {
            return dispatch!(seg, |ix, vals| gather_nonempty(
                Rows { indptr, ix, vals, a, b, verified },
                nonempty,
                x,
                out
            ));
        }
    }
    dispatch!(seg, |ix, vals| gather_typed(Rows { indptr, ix, vals, a, b, verified }, scale, x, out, k, wide))
}

/// The plain product (`out = rows x`) of a verified segment, visiting only the rows listed in
/// `nonempty` (band-local, increasing): the others' outputs are zeroed first. False when the row
/// pointers are inconsistent with the entries.
#[inline(always)]
fn gather_nonempty<I: StoredIndex, V: Element>(
    rows: Rows<'_, I, V>,
    nonempty: &[u32],
    x: &[f64],
    out: &mut [f64],
) -> bool {
    let Some(end_entry) = rows.entries_end() else { return false };
    let Rows { indptr, ix, vals, a, b, .. } = rows;
    let out = &mut out[..b - a];
    out.fill(0.0);
    let first = nonempty.partition_point(|&r| (r as usize) < a);
    let last = nonempty.partition_point(|&r| (r as usize) < b);
    for &r in &nonempty[first..last] {
        let r = r as usize;
        let (lo, hi) = (indptr[r] as usize, indptr[r + 1] as usize);
        if lo > hi || hi > end_entry {
            return false;
        }
        // SAFETY: lo..hi lies within `ix` and the values (checked just above), and every index of a
        // verified segment is below x.len() (`Rows::verified`; the caller only comes here then).
        out[r - a] = unsafe { row_product(ix, vals, lo..hi, x) };
    }
    true
}

/// The gather loop. Slices are taken per row so the inner loop runs on zipped iterators (no bounds
/// checks on the matrix arrays); for one column, `x` is read unchecked after a check per chunk of
/// entries (see [`walk_checked`]), for several with a check per chunk as well (see
/// [`CheckedRows`](super::checked::CheckedRows)).
#[inline(always)]
fn gather_typed<I: StoredIndex, V: Element>(
    rows: Rows<'_, I, V>,
    scale: Scale,
    x: &[f64],
    out: &mut [f64],
    k: usize,
    wide: &AtomicU64,
) -> bool {
    if k == 1 {
        // The plain product (alpha 1, beta 0: what SpMV, PageRank and CG ask for) has a loop of its
        // own that only stores each row's sum.
        if scale.alpha == 1.0 && scale.beta == 0.0 {
            gather_one(rows, x, out, wide, |o, s| *o = s)
        } else {
            gather_one(rows, x, out, wide, |o, s| scale.update(o, s))
        }
    } else {
        // Several columns: a loop whose width is known at compile time keeps its accumulators in
        // registers, so the common widths have their own, and any other width is cut into panels of
        // 16, 8, 4, 2 and 1 columns inside each row (a loop of run-time width keeps them in memory).
        match k {
            2 => gather_fixed::<I, V, 2>(rows, scale, x, out),
            4 => gather_fixed::<I, V, 4>(rows, scale, x, out),
            8 => gather_fixed::<I, V, 8>(rows, scale, x, out),
            16 => gather_fixed::<I, V, 16>(rows, scale, x, out),
            _ => gather_panels(rows, scale, x, out, k),
        }
    }
}

/// The one-column gather: each row's dot product with `x`, handed to `store` with the row's output
/// element.
#[inline(always)]
fn gather_one<I: StoredIndex, V: Element>(
    rows: Rows<'_, I, V>,
    x: &[f64],
    out: &mut [f64],
    wide: &AtomicU64,
    store: impl Fn(&mut f64, f64),
) -> bool {
    let (ix, vals) = (rows.ix, rows.vals);
    walk_checked(
        rows,
        x.len(),
        x.as_ptr(),
        &mut out[..rows.b - rows.a],
        wide,
        #[inline(always)]
        |o, e| {
            // SAFETY: `e` lies within `ix` and the values, and its every index is below x.len() (the
            // walk's promise).
            store(o, unsafe { row_product(ix, vals, e, x) });
        },
    )
}

/// The gather for `K` columns known at compile time (the common widths of a block of vectors): one
/// [`row_panel`] per row.
#[inline(always)]
fn gather_fixed<I: StoredIndex, V: Element, const K: usize>(
    rows: Rows<'_, I, V>,
    scale: Scale,
    x: &[f64],
    out: &mut [f64],
) -> bool {
    for row in rows.checked(x.len() / K) {
        let Some((i, e)) = row else { return false };
        let (cols, vals) = rows.entries(e);
        // SAFETY: every index of the row's entries is below x.len() / K (checked by the walk).
        unsafe { row_panel::<I, V, K>(cols, vals, x, K, 0, scale, &mut out[i * K..(i + 1) * K]) };
    }
    true
}

/// The gather for any other number of columns `k`: each row's output cut into panels of 16, 8, 4,
/// 2 and 1 columns, each summed by [`row_panel`] with its accumulators in registers. The row's
/// entries and the rows of `X` they name are read once from memory and then from cache for the
/// following panels (rather than a pass over the matrix per panel: the traffic of `X` dominates).
#[inline(always)]
fn gather_panels<I: StoredIndex, V: Element>(
    rows: Rows<'_, I, V>,
    scale: Scale,
    x: &[f64],
    out: &mut [f64],
    k: usize,
) -> bool {
    for row in rows.checked(x.len() / k) {
        let Some((i, e)) = row else { return false };
        let ((cols, vals), o) = (rows.entries(e), &mut out[i * k..(i + 1) * k]);
        // SAFETY: every index of the row is below x.len() / k (checked by the walk), and every
        // panel ends at or before column k.
        for_each_panel!(k, |W, off| unsafe { row_panel::<I, V, W>(cols, vals, x, k, off, scale, o) });
    }
    true
}

/// One row's product with columns `off..off + K` of the `k` columns of `X`, into the same columns of
/// the row's output `o` (`o = alpha * row X + beta * o`, `o` only written when `beta` is 0). The
/// accumulator is a fixed array the compiler keeps in vector registers. Every output is summed over
/// the row's entries in order, whatever the panels. Returns `K`.
///
/// # Safety
///
/// Every index in `row` is below `x.len() / k`, and `off + K <= k`.
#[inline(always)]
unsafe fn row_panel<I: StoredIndex, V: Element, const K: usize>(
    row: &[I],
    vals: Option<&[V]>,
    x: &[f64],
    k: usize,
    off: usize,
    scale: Scale,
    o: &mut [f64],
) -> usize {
    let mut acc = [0.0f64; K];
    // SAFETY: c < x.len() / k and off + K <= k, so c * k + off + K <= x.len() (the caller's promise).
    let x_row = |c: I| unsafe { x.get_unchecked(c.as_usize() * k + off..c.as_usize() * k + off + K) };
    match vals {
        Some(v) => {
            for (&c, &w) in row.iter().zip(v) {
                let w = w.to_f64();
                acc.iter_mut().zip(x_row(c)).for_each(|(s, &xv)| *s += w * xv);
            }
        }
        None => {
            for &c in row {
                acc.iter_mut().zip(x_row(c)).for_each(|(s, &xv)| *s += 1.0 * xv);
            }
        }
    }
    for (y, &s) in o[off..off + K].iter_mut().zip(&acc) {
        scale.update(y, s);
    }
    K
}

/// One row's product with `x`: [`row_dot`], or [`row_sum`] for pattern rows (`vals` is `None`).
///
/// # Safety
///
/// As [`row_dot`].
#[inline(always)]
unsafe fn row_product<I: StoredIndex, V: Element>(cols: &[I], vals: Option<&[V]>, e: Range<usize>, x: &[f64]) -> f64 {
    // SAFETY: the caller's promise.
    unsafe {
        match vals {
            Some(v) => row_dot(cols, v, e, x),
            None => row_sum(cols, e, x),
        }
    }
}

/// One row's dot product with `x` over the entries `e` of `cols` and `vals`. The products are summed
/// in four partial sums, the entry at position `p` of the row into sum `p % 4`, combined as
/// `(s0 + s1) + (s2 + s3)`: a single running sum would chain every addition of a long row behind the
/// previous one (four cycles each), and the core could not overlap the row's reads of `x` with the
/// next rows'. The order is fixed by the row alone, so results stay independent of the thread count;
/// they differ from a sequential sum (scipy's) in the last bits, as any two summation orders do.
///
/// # Safety
///
/// `e` lies within `cols` and `vals`, and every index in `cols[e]` is below `x.len()`.
#[inline(always)]
unsafe fn row_dot<I: StoredIndex, V: Element>(cols: &[I], vals: &[V], e: Range<usize>, x: &[f64]) -> f64 {
    // SAFETY: the caller's promise.
    let term =
        |j: usize| unsafe { vals.get_unchecked(j).to_f64() * *x.get_unchecked(cols.get_unchecked(j).as_usize()) };
    sum_by_four(e, term)
}

/// [`row_dot`] for pattern rows (every value 1).
///
/// # Safety
///
/// `e` lies within `cols`, and every index in `cols[e]` is below `x.len()`.
#[inline(always)]
unsafe fn row_sum<I: StoredIndex>(cols: &[I], e: Range<usize>, x: &[f64]) -> f64 {
    // SAFETY: the caller's promise.
    sum_by_four(e, |j| unsafe { *x.get_unchecked(cols.get_unchecked(j).as_usize()) })
}

/// `term(j)` summed over `e` in four partial sums (position `p` of the range into sum `p % 4`),
/// combined as `(s0 + s1) + (s2 + s3)`.
#[inline(always)]
fn sum_by_four(e: Range<usize>, term: impl Fn(usize) -> f64) -> f64 {
    let mut s = [0.0f64; 4];
    let mut j = e.start;
    while e.end - j >= 4 {
        s[0] += term(j);
        s[1] += term(j + 1);
        s[2] += term(j + 2);
        s[3] += term(j + 3);
        j += 4;
    }
    let rest = e.end - j;
    if rest > 0 {
        s[0] += term(j);
    }
    if rest > 1 {
        s[1] += term(j + 1);
    }
    if rest > 2 {
        s[2] += term(j + 2);
    }
    (s[0] + s[1]) + (s[2] + s[3])
}
