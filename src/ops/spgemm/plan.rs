//! Planning a product: how the memory budget is split (the block of `B`, the dense accumulators,
//! the bands of output in flight), where `B` is cut into row blocks, the per-row work (flops) of
//! `A`'s rows, how a segment of `A` is cut into bands and a band into tasks of equal work, and
//! which accumulator a row uses.

use super::accum::WINDOW;
use super::block::Rows;
use super::{Accumulator, SpgemmOptions};
use crate::element::match_indices;
use crate::error::Result;
use crate::matrix::Matrix;
use crate::ops::{corrupt_index, max_segment_payload};
use crate::segment::MappedSegment;
use rayon::prelude::*;

/// Rows up to this many flops use the sort-based accumulator (unless their products span a narrow
/// window of columns).
pub(super) const SMALL_ROW_FLOPS: u64 = 32;

/// Bytes of dense values per thread that stay in a core's L2 cache: below this, the dense
/// accumulator also serves rows of modest work, as long as its bitmap scan is not much longer.
const CACHED: usize = 1 << 20;

/// Most flops in one band of output rows held in memory.
const BAND_FLOPS: u64 = 2 << 20;

/// How a product spends its memory budget.
pub(super) struct Plan {
    /// Bytes for the product once two mapped segments of `A`, their per-row flops, the writer's
    /// buffers and bookkeeping are set aside.
    pub(super) avail: u64,
    /// Row blocks of `B`, `(k0, k1, bytes)`: one when it fits in its share (two fifths).
    pub(super) blocks: Vec<(u64, u64, u64)>,
    /// Whether a dense accumulator over every column fits, one per thread (a fifth).
    pub(super) dense_ok: bool,
    /// Most flops in one band of output rows held in memory.
    pub(super) band_flops: u64,
    /// Bytes left for the output once the block of `B` and the dense accumulators are counted.
    pub(super) out_budget: u64,
}

impl Plan {
    /// Splits the budget of `options` for `left right`, with `inner_dim` output columns, in column
    /// type `I` and value type `T`.
    pub(super) fn new<I, T>(left: &Matrix, right: &Matrix, inner_dim: u64, options: &SpgemmOptions) -> Result<Plan> {
        let budget = options.op.memory_budget;
        let threads = rayon::current_num_threads() as u64;
        let entry_bytes = (std::mem::size_of::<I>() + std::mem::size_of::<T>()) as u64;
        // Two mapped segments of A and their per-row flops, the writer's buffers and bookkeeping.
        let reserve = 3 * max_segment_payload(left) + (16 << 20);
        let avail = budget.saturating_sub(reserve).max(budget / 4);
        let block_cap = options.max_block_bytes.unwrap_or(avail / 5 * 2).max(1);
        let dense_bytes = threads * inner_dim * (std::mem::size_of::<T>() as u64 + 4);
        let dense_ok = options.accumulator != Accumulator::Sort
            && options.accumulator != Accumulator::Hash
            && dense_bytes <= avail / 5;
        let blocks = row_blocks(right, entry_bytes, block_cap)?;
        let block_bytes = blocks.iter().map(|b| b.2).max().unwrap_or(0);
        let out_budget = avail.saturating_sub(block_bytes).saturating_sub(if dense_ok { dense_bytes } else { 0 });
        // Two bands in flight, each band's vectors up to twice their contents.
        // ... and at most BAND_FLOPS, so that writing one band overlaps computing the next.
        let band_flops = (out_budget / (4 * entry_bytes)).clamp(1 << 16, BAND_FLOPS);
        Ok(Plan { avail, blocks, dense_ok, band_flops, out_budget })
    }
}

/// The band starting at row `r0`: rows `r0..r1` whose flops sum to at most `band_flops` (at least
/// one row). Returns `r1` and the band's flops.
pub(super) fn band_end(row_flops: &[u64], r0: usize, band_flops: u64) -> (usize, u64) {
    let rows = row_flops.len();
    let mut r1 = r0;
    let mut f = 0u64;
    while r1 < rows && (r1 == r0 || f + row_flops[r1] <= band_flops) {
        f += row_flops[r1];
        r1 += 1;
    }
    (r1, f)
}

/// The flops of every row of a segment of the left operand, against the block's `rows`.
pub(super) fn row_flops<I, T>(seg: &MappedSegment, rows: Rows<'_, '_, I, T>, k_dim: u64) -> Result<Vec<u64>>
where
    I: Sync,
    T: Sync,
{
    let indptr = seg.indptr();
    let flops = match_indices!(seg.indices(), |ix| flops_of(ix, indptr, rows, k_dim));
    flops.ok_or_else(|| corrupt_index(seg, "an index lies outside the matrix"))
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

/// Cuts rows (weights `work[r] + 1`) into at most `parts` ranges of about equal weight, offset by
/// `base`.
pub(super) fn split_by_work(work: &[u64], parts: usize, base: usize) -> Vec<(usize, usize)> {
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

/// The accumulator a row uses (see [`choose`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Sort,
    Hash,
    Dense,
    Window,
}

/// The accumulator for a row of `flops` products spanning `width` columns, of `ncols` in all,
/// under the `accumulator` option (`dense_ok`: a dense array per thread fits the budget).
#[inline(always)]
pub(super) fn choose<T>(accumulator: Accumulator, dense_ok: bool, flops: u64, width: usize, ncols: usize) -> Kind {
    match accumulator {
        Accumulator::Sort => Kind::Sort,
        Accumulator::Hash => Kind::Hash,
        Accumulator::Dense if dense_ok => Kind::Dense,
        Accumulator::Dense => Kind::Hash,
        Accumulator::Window if width <= WINDOW => Kind::Window,
        Accumulator::Window => Kind::Hash,
        Accumulator::Auto => {
            // Narrow: the window's dense array is not much wider than the work, so the row's
            // products land on few cache lines (banded rows). Wider windows lose to sorting and
            // hashing on R-MAT (random accesses over up to 256 KiB; see docs/performance.md).
            let narrow = width <= WINDOW && width / 64 <= 4 * flops as usize + 16;
            if narrow && flops <= SMALL_ROW_FLOPS {
                Kind::Window
            } else if flops <= SMALL_ROW_FLOPS {
                Kind::Sort
            } else if dense_ok
                && (flops * 16 >= ncols as u64
                    || (ncols * std::mem::size_of::<T>() <= CACHED && ncols / 64 <= 4 * flops as usize))
            {
                Kind::Dense
            } else if narrow {
                Kind::Window
            } else {
                Kind::Hash
            }
        }
    }
}
