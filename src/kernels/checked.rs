//! Index checks ahead of unchecked reads: inner indices are checked in chunks that follow the
//! entries ([`check_chunk`]), then read without a check per entry. [`Rows`] names one task's rows;
//! [`walk_checked`] walks them that way for the one-column loops, with the prefetch ahead, and
//! [`CheckedRows`] for the loops of several columns.

use super::simd::prefetch_ptr;
use crate::element::StoredIndex;
use crate::segment::MappedSegment;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

/// One task's rows of a segment's sparse part: band-local outer indices `a..b` of the row pointers
/// `indptr`, inner indices `ix` and values `vals` (`None` for pattern: every value is 1). Rows of a
/// CSR segment, or columns of a CSC one.
pub(super) struct Rows<'a, I, V> {
    pub(super) indptr: &'a [u64],
    pub(super) ix: &'a [I],
    pub(super) vals: Option<&'a [V]>,
    pub(super) a: usize,
    pub(super) b: usize,
    /// `Some(wide)` when every index in `ix` is already known to be below the bound the walk is
    /// given (the segment's [`indices_checked`](MappedSegment::indices_checked)): the walks then
    /// skip their checks, and prefetch `x` when `wide`.
    pub(super) verified: Option<bool>,
}

// Not derived: a derive would ask `I: Copy, V: Copy`.
impl<I, V> Clone for Rows<'_, I, V> {
    #[inline(always)]
    fn clone(&self) -> Self {
        *self
    }
}
impl<I, V> Copy for Rows<'_, I, V> {}

impl<'a, I: StoredIndex, V> Rows<'a, I, V> {
    /// The indices and values of the entries `e` (one outer index's, as [`CheckedRows`] yields them).
    #[inline(always)]
    pub(super) fn entries(&self, e: Range<usize>) -> (&'a [I], Option<&'a [V]>) {
        (&self.ix[e.clone()], self.vals.map(|v| &v[e]))
    }

    /// The end of the task's entries, `indptr[b]`, when `ix` and the values hold that many; `None`
    /// for a corrupt segment. Every row read below that end lies within both arrays.
    #[inline(always)]
    pub(super) fn entries_end(&self) -> Option<usize> {
        let end = self.indptr[self.b] as usize;
        (end <= self.ix.len() && self.vals.map_or(true, |v| v.len() >= end)).then_some(end)
    }

    /// The rows walked with their indices checked against `bound` (see [`CheckedRows`]).
    #[inline(always)]
    pub(super) fn checked(&self, bound: usize) -> CheckedRows<'a, I> {
        CheckedRows::new(self.indptr, self.ix, self.a, self.b, bound, self.verified.is_some())
    }
}

/// The walk of the one-column gather and scatter: calls `row(item, lo..hi)` for each outer index of
/// `rows` in turn, with `item` the next of `per_row` (the index's output element, or its value of
/// `x`) and `lo..hi` its entries; false, and no more calls, at an index out of range or row pointers
/// that do not increase. Before each call, `lo <= hi`, every index in `ix[lo..hi]` is below `bound`,
/// and `hi` is at most the length of `ix` and of the values: `row` may read them, and `target` at
/// them, unchecked.
///
/// Indices are checked in chunks of about [`GATHER_BLOCK`] entries, just ahead of the rows that use
/// them: a vectorised max over indices that then stay in L1 for the rows' loops, which can therefore
/// index without a check per entry (on a random-access matrix every instruction saved per entry lets
/// the core keep more reads of `x` in flight). The chunks follow the entries, not the rows, so finding
/// their ends costs nothing. Each row pointer is read once (a row's end is the next row's start), and
/// the per-row work is two predictable compares: a power-law graph's rows average a few entries, so
/// what a row costs besides its entries matters as much as the entries. Where a chunk's indices spread
/// wider than the caches (a graph), the elements of `target` (of `bound` elements: `x` for the
/// gather, the private `y` for the scatter) they name are prefetched [`PREFETCH_AHEAD`] entries
/// ahead, which hides the latency of the misses; on a banded matrix, whose accesses stream from
/// cache, the prefetch would only cost instructions. `target` is only prefetched, never read, so it
/// may be a vector that `row` writes.
///
/// When `rows.verified` is set, nothing is checked (a segment's indices are checked once, by the first
/// product over it, which adds to `wide_entries` the entries of its chunks that spread wide).
///
/// Callers mark `row` `#[inline(always)]`: a closure is compiled without the target features of the
/// AVX2 build that calls it, and left out of line it would run its loop on the narrower registers
/// (and pay a call per row).
#[inline(always)]
pub(super) fn walk_checked<I: StoredIndex, V, T>(
    rows: Rows<'_, I, V>,
    bound: usize,
    target: *const f64,
    per_row: impl IntoIterator<Item = T>,
    wide_entries: &AtomicU64,
    mut row: impl FnMut(T, Range<usize>),
) -> bool {
    let Some(end_entry) = rows.entries_end() else { return false };
    let Rows { indptr, ix, a, b, verified, .. } = rows;
    let pointers = &indptr[a..=b];
    let mut lo = pointers[0] as usize;
    // The end of the entries checked so far (all of them when verified).
    let mut checked = if verified.is_some() { end_entry } else { lo };
    let mut prefetch = verified.unwrap_or(false);
    let mut wide = 0;
    for (&hi, item) in pointers[1..].iter().zip(per_row) {
        let hi = hi as usize;
        if hi > checked {
            let from = checked;
            match check_chunk(ix, &mut checked, hi, end_entry, bound) {
                Some(spread) => prefetch = spread,
                None => return false,
            }
            if prefetch {
                wide += checked - from;
            }
        }
        // `checked` is at least `hi` now unless the pointers pass `end_entry` (check_chunk stops
        // there), and `lo <= hi` unless they decrease: both are corrupt segments.
        if hi > checked || hi < lo {
            return false;
        }
        if prefetch {
            let ahead = (lo + PREFETCH_AHEAD).min(end_entry)..(hi + PREFETCH_AHEAD).min(end_entry);
            ix[ahead].iter().for_each(|&c| prefetch_ptr(target.wrapping_add(c.as_usize()).cast()));
        }
        row(item, lo..hi);
        lo = hi;
    }
    wide_entries.fetch_add(wide as u64, Ordering::Relaxed);
    true
}

/// How one product treats a segment's inner indices: not checked when the segment's are already
/// known to be in range ([`MappedSegment::indices_checked`]), else checked by the walks, which count
/// the entries of chunks that spread wide into `wide_entries`.
#[derive(Clone, Copy)]
pub(super) struct IndexChecks<'a> {
    /// `Some(wide)` when the segment's indices are known to be below the walks' bound.
    pub(super) verified: Option<bool>,
    pub(super) wide_entries: &'a AtomicU64,
}

impl<'a> IndexChecks<'a> {
    /// The checks of a product over `seg` whose walks take `bound` (the fact recorded on a segment is
    /// about its inner dimension, so another bound gets the checks).
    pub(super) fn new(seg: &MappedSegment, bound: usize, wide_entries: &'a AtomicU64) -> Self {
        let verified = seg.indices_checked().filter(|_| bound as u64 == seg.inner_len());
        IndexChecks { verified, wide_entries }
    }

    /// After a product whose one-column walks covered every row of `seg` without finding an index
    /// out of range: records the segment's indices as checked, so that later products skip the
    /// checks, with the prefetch on when most entries lay in chunks that spread wide.
    pub(super) fn record(&self, seg: &MappedSegment) {
        if self.verified.is_none() {
            let entries = seg.sparse_indptr().last().copied().unwrap_or(0);
            seg.mark_indices_checked(2 * self.wide_entries.load(Ordering::Relaxed) > entries);
        }
    }
}

/// Entries per block of rows whose indices the gather checks at once (a few KiB of indices: they stay
/// in L1 between the check and the products).
pub(super) const GATHER_BLOCK: u64 = 2048;

/// How many entries ahead the gather prefetches `x` when it reads it at random: far enough to cover a
/// miss's latency (docs/performance.md, "Kernel design notes").
pub(super) const PREFETCH_AHEAD: usize = 64;

/// The spread of a block's column indices (in elements of `x`, here 1 MiB) beyond which the gather
/// prefetches `x`: prefetching pays on a graph's random reads and costs on a banded matrix's reads
/// from cache (docs/performance.md, "Kernel design notes").
pub(super) const PREFETCH_SPAN: usize = 1 << 17;

/// Checks the next chunk of indices, `ix[checked..to]` with `to` about [`GATHER_BLOCK`] entries on
/// and at least `hi`, against `bound`, and moves `checked` to `to`. `None` when an index is `bound`
/// or more; else whether the chunk's indices spread wide (worth prefetching).
///
/// The bitwise or of the indices bounds their maximum from above (two instructions per vector of
/// indices, where an unsigned max takes five without SSE4.1): when it lies below `bound`, so does
/// every index; otherwise the exact maximum decides. The spread is judged by the highest bit in which
/// the indices differ: an over-estimate only for the few chunks that straddle a multiple of
/// `2 * PREFETCH_SPAN`.
#[inline(always)]
pub(super) fn check_chunk<I: StoredIndex>(
    ix: &[I],
    checked: &mut usize,
    hi: usize,
    end_entry: usize,
    bound: usize,
) -> Option<bool> {
    let to = (*checked + GATHER_BLOCK as usize).max(hi).min(end_entry);
    let chunk = &ix[*checked..to];
    let (any, all) = chunk.iter().fold((I::ZERO, I::MAX), |(o, n), &c| (o | c, n & c));
    if any.as_usize() >= bound && chunk.iter().copied().max().is_some_and(|m| m.as_usize() >= bound) {
        return None;
    }
    *checked = to;
    Some((any ^ all).as_usize() >= 2 * PREFETCH_SPAN)
}

/// Band-local outer indices `a..b` whose inner indices are checked against `bound` in chunks as the
/// one-column loops check them (see [`check_chunk`]): yields `Some((i, lo..hi))` for the `i`-th
/// outer index once every index in `ix[lo..hi]` is known to be below `bound`, or `None` (and then
/// nothing more) at an index out of range. An iterator rather than a function taking a closure: the
/// loop body stays in the AVX2 build of its caller (a closure is compiled without the caller's
/// target features).
pub(super) struct CheckedRows<'a, I> {
    indptr: &'a [u64],
    ix: &'a [I],
    bound: usize,
    end_entry: usize,
    /// End of the entries checked so far.
    checked: usize,
    /// Position in `indptr` of the next outer index.
    at: usize,
    b: usize,
    a: usize,
}

impl<'a, I: StoredIndex> CheckedRows<'a, I> {
    #[inline(always)]
    pub(super) fn new(indptr: &'a [u64], ix: &'a [I], a: usize, b: usize, bound: usize, verified: bool) -> Self {
        let end_entry = indptr[b] as usize;
        // Verified: every index is already known below `bound`, so nothing is left to check.
        let checked = if verified { end_entry } else { indptr[a] as usize };
        CheckedRows { indptr, ix, bound, end_entry, checked, at: a, b, a }
    }
}

impl<I: StoredIndex> Iterator for CheckedRows<'_, I> {
    type Item = Option<(usize, std::ops::Range<usize>)>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.b {
            return None;
        }
        let (lo, hi) = (self.indptr[self.at] as usize, self.indptr[self.at + 1] as usize);
        if hi > self.checked && check_chunk(self.ix, &mut self.checked, hi, self.end_entry, self.bound).is_none() {
            self.at = self.b;
            return Some(None);
        }
        self.at += 1;
        Some(Some((self.at - 1 - self.a, lo..hi)))
    }
}
