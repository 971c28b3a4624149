//! The scatter: each outer index's entries added into the output elements of their inner indices
//! (CSC times `x`, CSR transposed times `x`), into one private copy of `y` per task, summed in task
//! order at the end.

use super::checked::{walk_checked, IndexChecks, Rows};
use super::dense::scatter_dense;
use super::operator::corrupt;
use super::tasks::{pieces, task_count};
use crate::element::{Element, StoredIndex};
use crate::error::Result;
use crate::segment::MappedSegment;
use rayon::prelude::*;
use std::sync::atomic::AtomicU64;

pub(super) fn scatter_segment(
    seg: &MappedSegment,
    x: &[f64],
    y_len: usize,
    k: usize,
    parts: &mut Vec<Vec<f64>>,
) -> Result<()> {
    let indptr = seg.sparse_indptr();
    // One private copy of y per thread (not per task): the copies cost memory, balance comes from the
    // nonzero split.
    let blocks = seg.dense_blocks();
    let work = seg.dense_work_prefix();
    let tasks = pieces(work.unwrap_or(indptr), task_count(seg.nnz(), rayon::current_num_threads()));
    while parts.len() < tasks.len() {
        parts.push(super::dense_vector(y_len));
    }
    let start = seg.start() as usize;
    let wide = AtomicU64::new(0);
    let checks = IndexChecks::new(seg, y_len / k, &wide);
    let bad = parts
        .par_iter_mut()
        .zip(tasks.par_iter())
        .map(|(part, &(a, b))| {
            scatter_rows(seg, start, (a, b), x, part, k, checks)
                && blocks.as_ref().map_or(true, |blocks| scatter_dense(blocks, start, a, b, x, part, k))
        })
        .any(|ok| !ok);
    if bad {
        return Err(corrupt(seg, "an index lies outside the matrix"));
    }
    // The one-column walks checked every index: later products skip it.
    if k == 1 {
        checks.record(seg);
    }
    Ok(())
}

avx2_dispatch! {
    /// Scatters the band-local outer indices `task.0..task.1` into `part`; false when an index is out of range. The
    /// AVX2 build is chosen at run time, as for the gather's rows.
    fn scatter_rows / scatter_rows_avx2 => scatter_rows_any(
        seg: &MappedSegment, start: usize, task: (usize, usize), x: &[f64], part: &mut [f64], k: usize,
        checks: IndexChecks
    )
}

#[inline(always)]
fn scatter_rows_any(
    seg: &MappedSegment,
    start: usize,
    (a, b): (usize, usize),
    x: &[f64],
    part: &mut [f64],
    k: usize,
    checks: IndexChecks,
) -> bool {
    let (indptr, verified, wide) = (seg.sparse_indptr(), checks.verified, checks.wide_entries);
    // The outer indices' values of `x`, `k` each.
    let Some(xs) = x.get((start + a) * k..(start + b) * k) else { return false };
    dispatch!(seg, |ix, vals| scatter_typed(Rows { indptr, ix, vals, a, b, verified }, xs, part, k, wide))
}

/// `y = beta y + alpha * (sum of the parts, in task order)`, clearing the parts as they are read so
/// that the next product finds them zero.
pub(super) fn sum_parts(parts: &mut [Vec<f64>], alpha: f64, beta: f64, y: &mut [f64]) {
    const CHUNK: usize = 1 << 14;
    let mut by_chunk: Vec<Vec<&mut [f64]>> = (0..y.len().div_ceil(CHUNK)).map(|_| Vec::new()).collect();
    for part in parts.iter_mut() {
        for (c, piece) in part.chunks_mut(CHUNK).enumerate() {
            by_chunk[c].push(piece);
        }
    }
    y.par_chunks_mut(CHUNK).zip(by_chunk.into_par_iter()).for_each(|(chunk, mut pieces)| {
        for (i, v) in chunk.iter_mut().enumerate() {
            let mut s = 0.0;
            for p in pieces.iter_mut() {
                s += std::mem::take(&mut p[i]);
            }
            *v = if beta == 0.0 { alpha * s } else { beta * *v + alpha * s };
        }
    });
}

/// `y . w` in chunks of a fixed size summed in order: the same result on any thread count.
pub(super) fn dot_in_order(y: &[f64], w: &[f64]) -> f64 {
    let partials: Vec<f64> = y
        .par_chunks(1 << 14)
        .zip(w.par_chunks(1 << 14))
        .map(|(a, b)| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>())
        .collect();
    partials.iter().sum()
}

/// The scatter loop: `xs` holds the outer indices' `k` values of `x` each.
#[inline(always)]
fn scatter_typed<I: StoredIndex, V: Element>(
    rows: Rows<'_, I, V>,
    xs: &[f64],
    part: &mut [f64],
    k: usize,
    wide: &AtomicU64,
) -> bool {
    if k > 1 {
        return scatter_panels(rows, xs, part, k);
    }
    // As the gather: indices checked in chunks that follow the entries, then `part` written
    // unchecked, with its lines prefetched ahead where a chunk's indices spread wide (a graph's
    // transposed product writes at random).
    let (ix, vals) = (rows.ix, rows.vals);
    walk_checked(
        rows,
        part.len(),
        part.as_ptr(),
        xs,
        wide,
        #[inline(always)]
        |&xv, e| {
            // SAFETY: every index of the entries `e` is below part.len() (the walk's promise).
            unsafe {
                match vals {
                    Some(v) => {
                        for (&c, &wv) in ix[e.clone()].iter().zip(&v[e]) {
                            *part.get_unchecked_mut(c.as_usize()) += wv.to_f64() * xv;
                        }
                    }
                    None => {
                        for &c in &ix[e] {
                            *part.get_unchecked_mut(c.as_usize()) += 1.0 * xv;
                        }
                    }
                }
            }
        },
    )
}

/// The scatter for `k` >= 2 columns: indices checked in chunks as in the one-column scatter, then
/// each outer index's entries added to their rows of `part` in panels of 16, 8, 4, 2 and 1 columns
/// whose `x` values stay in registers (not a loop of run-time width with a checked slice per entry).
/// Every output is summed in the same order as entry by entry.
#[inline(always)]
fn scatter_panels<I: StoredIndex, V: Element>(rows: Rows<'_, I, V>, xs: &[f64], part: &mut [f64], k: usize) -> bool {
    for row in rows.checked(part.len() / k) {
        let Some((i, e)) = row else { return false };
        let ((inner, vals), xr) = (rows.entries(e), &xs[i * k..(i + 1) * k]);
        // SAFETY: every index of the entries is below part.len() / k (checked by the walk), and
        // every panel ends at or before column k.
        for_each_panel!(k, |W, off| unsafe { scatter_panel::<I, V, W>(inner, vals, xr, part, k, off) });
    }
    true
}

/// Adds `w * xr[off..off + K]` into columns `off..off + K` of the row of `part` named by each entry
/// of one outer index. Returns `K`.
///
/// # Safety
///
/// Every index in `inner` is below `part.len() / k`, and `off + K <= k`.
#[inline(always)]
unsafe fn scatter_panel<I: StoredIndex, V: Element, const K: usize>(
    inner: &[I],
    vals: Option<&[V]>,
    xr: &[f64],
    part: &mut [f64],
    k: usize,
    off: usize,
) -> usize {
    let xp: [f64; K] = std::array::from_fn(|l| xr[off + l]);
    let mut add = |c: I, w: f64| {
        // SAFETY: c < part.len() / k and off + K <= k (the caller's promise).
        let y = unsafe { part.get_unchecked_mut(c.as_usize() * k + off..c.as_usize() * k + off + K) };
        y.iter_mut().zip(&xp).for_each(|(y, &xv)| *y += w * xv);
    };
    match vals {
        Some(v) => inner.iter().zip(v).for_each(|(&c, &w)| add(c, w.to_f64())),
        None => inner.iter().for_each(|&c| add(c, 1.0)),
    }
    K
}
