//! The dense blocks' loops: a segment's dense blocks multiplied as dense matrices, gathering or
//! scattering, with the values prefetched along each task's own rows.

use super::simd::prefetch_ptr;
use crate::element::{match_values, Element};
use crate::segment::{DenseBlock, DenseBlocks};

/// How far ahead of a dense block row the gather prefetches its values.
const DENSE_PREFETCH_BYTES: usize = 8192;

/// The bytes a task's dense loop reads next, for prefetching ahead: its rows of the current block,
/// then its rows of the next block. Blocks lie one after another in the values array, but a task may
/// own only some rows of a block row (the rest belong to other tasks), so prefetching a fixed
/// distance ahead in the array would fetch other tasks' rows, and stopping at the block's end would
/// leave the next block cold; this follows the task's own stream across the gap.
#[derive(Clone, Copy)]
struct Ahead {
    /// The task's values in the current block, and their length in bytes.
    current: (*const u8, usize),
    /// The task's values in the next block (null and 0 when there is none).
    next: (*const u8, usize),
    /// The size of one of the current block's values.
    value_bytes: usize,
}

impl Ahead {
    /// Prefetches the `len` bytes that the loop reads a distance ahead of the byte `at` of the
    /// stream. The distance is [`DENSE_PREFETCH_BYTES`], or the length of the current rows when that
    /// is shorter, so that it never overshoots the next block's rows.
    #[inline(always)]
    fn prefetch(self, at: usize, len: usize) {
        let ((current, current_len), (next, next_len)) = (self.current, self.next);
        let from = at + DENSE_PREFETCH_BYTES.min(current_len);
        for byte in (from..from + len).step_by(64) {
            if byte < current_len {
                prefetch_ptr(current.wrapping_add(byte));
            } else if byte - current_len < next_len {
                prefetch_ptr(next.wrapping_add(byte - current_len));
            }
        }
    }
}

/// Where rows `rows` of a block start in its values, the length in bytes of those rows' values, and
/// the size of a value (null, 0 and 0 for a pattern block). For prefetching only: the range may lie
/// outside a damaged block's values.
fn rows_span(blk: &DenseBlock<'_>, rows: &std::ops::Range<u64>) -> (*const u8, usize, usize) {
    let at = rows.start.saturating_sub(blk.outer) as usize * blk.stride as usize;
    let count = (rows.end.saturating_sub(rows.start).max(1) - 1) as usize * blk.stride as usize + blk.width as usize;
    fn element_at<T>(v: &[T], at: usize) -> (*const u8, usize) {
        (v.as_ptr().wrapping_add(at).cast(), std::mem::size_of::<T>())
    }
    let (start, size) = match_values!(blk.values, |v| element_at(v, at), (std::ptr::null(), 0));
    (start, count * size, size)
}

/// The blocks meeting band-local rows `a..b` ([`DenseBlocks::meeting`]), each with the [`Ahead`]
/// stream of the task's rows of it and of the next block: the one walk of the dense gather and
/// scatter.
fn meeting_ahead<'a, 's>(
    blocks: &'s DenseBlocks<'a>,
    a: usize,
    b: usize,
) -> impl Iterator<Item = (DenseBlock<'a>, std::ops::Range<u64>, Ahead)> + 's {
    let mut meeting = blocks.meeting(a as u64, b as u64).peekable();
    std::iter::from_fn(move || {
        let (blk, rows) = meeting.next()?;
        let (current, current_len, value_bytes) = rows_span(&blk, &rows);
        let next = meeting.peek().map_or((std::ptr::null(), 0), |(next, rows)| {
            let (start, len, _) = rows_span(next, rows);
            (start, len)
        });
        let ahead = Ahead { current: (current, current_len), next, value_bytes };
        Some((blk, rows, ahead))
    })
}

avx2_dispatch! {
    /// Adds `alpha` times the dense blocks' products for band-local rows `a..b` into `out` (the rows'
    /// slice of `y`, `k` values per row); false when a block's window lies outside `x`.
    pub(super) fn gather_dense / gather_dense_avx2 => gather_dense_any(
        blocks: &DenseBlocks<'_>, a: usize, b: usize, alpha: f64, x: &[f64], out: &mut [f64], k: usize
    )
}

#[inline(always)]
fn gather_dense_any(
    blocks: &DenseBlocks<'_>,
    a: usize,
    b: usize,
    alpha: f64,
    x: &[f64],
    out: &mut [f64],
    k: usize,
) -> bool {
    for (blk, rows, ahead) in meeting_ahead(blocks, a, b) {
        let (c0, w) = (blk.inner as usize, blk.width as usize);
        let Some(xs) = x.get(c0 * k..(c0 + w) * k) else { return false };
        let (r0, r1) = (rows.start as usize, rows.end as usize);
        let first = (r0 - blk.outer as usize) * blk.stride as usize;
        let Some(ys) = out.get_mut((r0 - a) * k..(r1 - a) * k) else { return false };
        let stride = blk.stride as usize;
        let ok = match_values!(blk.values, |v| gather_block(v.get(first..), stride, w, xs, alpha, ys, k, ahead), false);
        if !ok {
            return false;
        }
    }
    true
}

/// `y += alpha * B X` for the rows of one block: `vals` starts at the first row's values (rows
/// `stride` apart, `w` used), `ys` holds `k` outputs per row and `xs` is `w x k`. False
/// when the block's values end early. `ahead` locates the task's rows of this block and the next, for
/// the prefetch ahead.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gather_block<V: Element>(
    vals: Option<&[V]>,
    stride: usize,
    w: usize,
    xs: &[f64],
    alpha: f64,
    ys: &mut [f64],
    k: usize,
    ahead: Ahead,
) -> bool {
    let Some(vals) = vals else { return false };
    let rows = ys.len() / k;
    if rows == 0 || vals.len() < (rows - 1) * stride + w {
        return false;
    }
    let size = std::mem::size_of::<V>();
    if k == 1 {
        // Each row summed in sixteen lanes (four AVX2 vectors: independent chains) over steps of
        // sixteen positions, the lanes then added in a fixed tree, then the tail: a fixed order, so
        // results do not depend on how tasks split the band.
        let main = w / 16 * 16;
        for (r, y) in ys.iter_mut().enumerate() {
            let row = &vals[r * stride..r * stride + w];
            // The values stream through one row at a time, a single sequential stream that the
            // hardware prefetcher follows only within a 4 KiB page: fetch the lines a few KiB ahead.
            ahead.prefetch(r * stride * size, w * size);
            let mut lanes = [0.0f64; 16];
            for (r16, x16) in row[..main].chunks_exact(16).zip(xs[..main].chunks_exact(16)) {
                for l in 0..16 {
                    lanes[l] += r16[l].to_f64() * x16[l];
                }
            }
            let mut quad = [0.0f64; 4];
            for l in 0..4 {
                quad[l] = (lanes[l] + lanes[l + 4]) + (lanes[l + 8] + lanes[l + 12]);
            }
            let mut s = (quad[0] + quad[2]) + (quad[1] + quad[3]);
            for (&v, &x) in row[main..].iter().zip(&xs[main..w]) {
                s += v.to_f64() * x;
            }
            *y += alpha * s;
        }
    } else {
        // Panels of columns, as in the CSR gather; 16 columns take 2 rows at a time (32
        // accumulators), narrower panels 4.
        for_each_panel!(k, |W, off| gather_block_fixed::<
            V,
            W,
            {
                if W == 16 {
                    2
                } else {
                    4
                }
            },
        >(vals, stride, w, xs, alpha, ys, k, off, ahead));
    }
    true
}

/// [`gather_block`] for a panel of `K` columns known at compile time, columns `off..off + K` of `k`,
/// `R` rows at a time: each row of `X` is loaded once for `R` rows, and the `R` accumulators are
/// independent chains the processor overlaps. Each output is summed in the same order as one row at
/// a time. The caller has checked that `vals` holds every row's `w` values. Returns `K`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gather_block_fixed<V: Element, const K: usize, const R: usize>(
    vals: &[V],
    stride: usize,
    w: usize,
    xs: &[f64],
    alpha: f64,
    ys: &mut [f64],
    k: usize,
    off: usize,
    ahead: Ahead,
) -> usize {
    let rows = ys.len() / k;
    // Whole groups of R rows first, then the rest one at a time: with both counts known at compile
    // time the accumulators stay in vector registers (with a run-time count of rows they live in
    // memory, a load and a store around every multiply-add).
    let whole = rows / R * R;
    for r in (0..whole).step_by(R) {
        gather_rows_fixed::<V, K, R>(vals, r, stride, w, xs, alpha, ys, k, off, ahead);
    }
    for r in whole..rows {
        gather_rows_fixed::<V, K, 1>(vals, r, stride, w, xs, alpha, ys, k, off, ahead);
    }
    K
}

/// Rows `r..r + R` of one block for [`gather_block_fixed`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gather_rows_fixed<V: Element, const K: usize, const R: usize>(
    vals: &[V],
    r: usize,
    stride: usize,
    w: usize,
    xs: &[f64],
    alpha: f64,
    ys: &mut [f64],
    k: usize,
    off: usize,
    ahead: Ahead,
) {
    let starts: [usize; R] = std::array::from_fn(|q| (r + q) * stride);
    assert!(starts[R - 1] + w <= vals.len() && off + K <= k && xs.len() >= w * k && ys.len() >= (r + R) * k);
    // As in the one-vector loop: the values are one sequential stream, which the hardware
    // prefetcher follows only within a page, so fetch the lines a few KiB ahead of these rows.
    let size = std::mem::size_of::<V>();
    ahead.prefetch(starts[0] * size, R * stride * size);
    let mut acc = [[0.0f64; K]; R];
    for j in 0..w {
        // SAFETY: j < w and off + K <= k, so j * k + off + K <= w * k <= xs.len() (asserted above).
        let xr = unsafe { xs.get_unchecked(j * k + off..j * k + off + K) };
        for q in 0..R {
            // SAFETY: starts[q] + j < starts[R - 1] + w <= vals.len(), asserted above.
            let v = unsafe { vals.get_unchecked(starts[q] + j) }.to_f64();
            for l in 0..K {
                acc[q][l] += v * xr[l];
            }
        }
    }
    for (q, a) in acc.iter().enumerate() {
        let y = &mut ys[(r + q) * k + off..(r + q) * k + off + K];
        y.iter_mut().zip(a).for_each(|(o, &s)| *o += alpha * s);
    }
}

avx2_dispatch! {
    /// Scatters the dense blocks' rows `a..b` of the band starting at global outer index `start` into
    /// `part` (`part[inner] += value * x[outer]`); false when a block's window lies outside `part` or
    /// a row outside `x`.
    pub(super) fn scatter_dense / scatter_dense_avx2 => scatter_dense_any(
        blocks: &DenseBlocks<'_>, start: usize, a: usize, b: usize, x: &[f64], part: &mut [f64], k: usize
    )
}

#[inline(always)]
fn scatter_dense_any(
    blocks: &DenseBlocks<'_>,
    start: usize,
    a: usize,
    b: usize,
    x: &[f64],
    part: &mut [f64],
    k: usize,
) -> bool {
    for (blk, rows, ahead) in meeting_ahead(blocks, a, b) {
        let (c0, w) = (blk.inner as usize, blk.width as usize);
        let Some(ys) = part.get_mut(c0 * k..(c0 + w) * k) else { return false };
        // Prefetched ahead along the task's own rows, as in the gather.
        let (stride, size) = (blk.stride as usize, ahead.value_bytes);
        for r in rows.start as usize..rows.end as usize {
            ahead.prefetch((r - rows.start as usize) * stride * size, w * size);
            let at = (r - blk.outer as usize) * stride;
            let o = start + r;
            let Some(xr) = x.get(o * k..o * k + k) else { return false };
            let ok = match_values!(blk.values, |v| axpy_row(v.get(at..at + w), xr, ys), false);
            if !ok {
                return false;
            }
        }
    }
    true
}

/// `ys[j] += row[j] * xr` for one row of a block (`k = xr.len()` values per position).
#[inline(always)]
fn axpy_row<V: Element>(row: Option<&[V]>, xr: &[f64], ys: &mut [f64]) -> bool {
    let Some(row) = row else { return false };
    if xr.len() == 1 {
        let xv = xr[0];
        ys.iter_mut().zip(row).for_each(|(y, &v)| *y += v.to_f64() * xv);
    } else {
        for (&v, yr) in row.iter().zip(ys.chunks_exact_mut(xr.len())) {
            let v = v.to_f64();
            yr.iter_mut().zip(xr).for_each(|(y, &xv)| *y += v * xv);
        }
    }
    true
}
