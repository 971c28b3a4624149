//! The one sequential scan over a matrix's segments: every consumer that reads a matrix from its
//! first outer index to its last (transpose, add and merge, Matrix Market export, the kernels'
//! stream) maps its segments here.
//!
//! * [`map_sequential`]: one segment mapped with sequential-access advice, the step every scan
//!   (and the kernels' reader thread) starts from.
//! * [`scan`]: the segments in order, each with its row pointers checked, and the next one mapped
//!   and handed to the kernel's read-ahead (`MADV_WILLNEED`) while the current one is used. Reading
//!   ahead through the page cache keeps the scan's own memory at one segment's mapping, so it fits
//!   the memory budgets of the out-of-core operations; the kernels' [`Operator`](crate::kernels::Operator)
//!   instead reads whole segments in on a thread of its own, within its resident budget.
//! * [`row_indices`]: one outer index's inner indices, widened to `u64` and checked against the
//!   inner dimension: the per-row walk of the operations that copy entries.

use crate::element::Indices;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::segment::MappedSegment;
use memmap2::Advice;

/// Maps segment `index` of `m` and advises its arrays for sequential access. Row pointers are not
/// checked (see [`MappedSegment::check_row_pointers`]).
///
/// # Errors
///
/// As [`Matrix::map_segment`].
pub fn map_sequential(m: &Matrix, index: usize) -> Result<MappedSegment> {
    let seg = m.map_segment(index)?;
    seg.advise(Advice::Sequential);
    Ok(seg)
}

/// The segments of `m` in order, for one pass from start to end (see [`Scan`]).
pub fn scan(m: &Matrix) -> Scan<'_> {
    Scan { m, next: 0, ahead: None }
}

/// The segments of a matrix in order ([`scan`]): each mapped with sequential advice
/// ([`map_sequential`]) and its row pointers checked before it is yielded; while the caller uses a
/// segment, the next one is mapped and its pages read ahead by the kernel. Each segment is unmapped
/// when the caller drops it.
#[derive(Debug)]
pub struct Scan<'m> {
    m: &'m Matrix,
    /// Index of the next segment to yield.
    next: usize,
    /// That segment, mapped ahead with its read-ahead started (or the error mapping it gave).
    ahead: Option<Result<MappedSegment>>,
}

impl Iterator for Scan<'_> {
    type Item = Result<MappedSegment>;

    fn next(&mut self) -> Option<Result<MappedSegment>> {
        let n = self.m.segments().len();
        if self.next >= n {
            return None;
        }
        let current = self.ahead.take().unwrap_or_else(|| map_sequential(self.m, self.next));
        self.next += 1;
        if current.is_ok() && self.next < n {
            self.ahead = Some(map_sequential(self.m, self.next).inspect(|seg| seg.advise(Advice::WillNeed)));
        }
        Some(current.and_then(|seg| seg.check_row_pointers().map(|()| seg)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.m.segments().len().saturating_sub(self.next);
        (left, Some(left))
    }
}

/// Appends to `out` the inner indices of band-local outer index `r` of `seg` (entries `lo..hi`,
/// returned), widened to `u64`, and checks each against `inner_dim`. Uses the segment's merged
/// view (dense blocks included); its row pointers must have been checked.
///
/// # Errors
///
/// [`Error::Corrupt`] naming the segment when an index lies outside the matrix (or the indices
/// array ends early).
pub fn row_indices(seg: &MappedSegment, r: usize, inner_dim: u64, out: &mut Vec<u64>) -> Result<(usize, usize)> {
    let indptr = seg.indptr();
    let (lo, hi) = (indptr[r] as usize, indptr[r + 1] as usize);
    let start = out.len();
    match seg.indices() {
        Indices::U32(ix) => out.extend(ix.get(lo..hi).unwrap_or(&[]).iter().map(|&c| c as u64)),
        Indices::U64(ix) => out.extend_from_slice(ix.get(lo..hi).unwrap_or(&[])),
    }
    if out.len() - start != hi - lo || out[start..].iter().any(|&c| c >= inner_dim) {
        return Err(Error::corrupt(
            seg.path(),
            "an index lies outside the matrix (run `sparsedisk verify` on the matrix)",
        ));
    }
    Ok((lo, hi))
}
