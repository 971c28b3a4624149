//! Index checks ahead of unchecked reads: inner indices are checked in chunks that follow the
//! entries ([`check_chunk`]), then read without a check per entry; [`CheckedRows`] walks outer
//! indices that way for the loops of several columns.

use crate::element::StoredIndex;

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
    pub(super) fn new(indptr: &'a [u64], ix: &'a [I], a: usize, b: usize, bound: usize) -> Self {
        let (checked, end_entry) = (indptr[a] as usize, indptr[b] as usize);
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
