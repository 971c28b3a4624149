//! The B-block store: rows `k0..k1` of the right operand held in memory for one pass, either its
//! mapped segments read in place or a converted copy, every row checked once at load (sorted, inside
//! the inner dimension), and the plain-slice row view the kernels read.

use crate::element::Element;
use crate::element::Indices;
use crate::element::StoredIndex;
use crate::error::Result;
use crate::matrix::Matrix;
use crate::ops::corrupt_index;
use crate::segment::MappedSegment;
use memmap2::Advice;
use rayon::prelude::*;
use std::borrow::Cow;

/// Rows `k0..k1` of the right operand as the kernels read them: its mapped segments used in place
/// when they store the index and value types the product is computed in (no copy: the pages are
/// the page cache's), else a copy converted into memory. Either way every inner index is checked
/// once against the inner dimension here, so the kernels index their accumulators safely with no
/// further check.
pub(super) struct BlockStore<I, T> {
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
fn stored_cols<I: StoredIndex>(seg: &MappedSegment) -> Option<&[I]> {
    match seg.indices() {
        Indices::U32(ix) if std::mem::size_of::<I>() == 4 => bytemuck::try_cast_slice(ix).ok(),
        Indices::U64(ix) if std::mem::size_of::<I>() == 8 => bytemuck::try_cast_slice(ix).ok(),
        _ => None,
    }
}

impl<I: StoredIndex, T: Element> BlockStore<I, T> {
    /// Maps (or copies) rows `k0..k1` of `m`, checking the row pointers and every index against the
    /// inner dimension.
    pub(super) fn load(m: &Matrix, k0: u64, k1: u64) -> Result<Self> {
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
            seg.values().extend_into(lo..hi, &mut block.vals);
        }
        let fill = *block.indptr.last().unwrap_or(&0);
        block.indptr.resize((self.k1 - self.k0) as usize + 1, fill);
        Ok(block)
    }

    /// The view the kernels read.
    pub(super) fn view(&self) -> RightBlock<'_, I, T> {
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
fn rows_valid<I: StoredIndex>(indptr: &[u64], cols: &[I], inner_dim: u64) -> bool {
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
            (c.iter().fold(0usize, |m, &x| m.max(x.as_usize())), d)
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
pub(super) struct RightBlock<'b, I, T> {
    k0: u64,
    k1: u64,
    /// Row pointers over all parts: `k1 - k0 + 1` entries.
    ptr: Cow<'b, [u64]>,
    parts: Vec<Part<'b, I, T>>,
    /// The part holding each row of the block (empty when there is one part).
    part_of: Vec<u32>,
}

impl<I: StoredIndex, T: Element> RightBlock<'_, I, T> {
    /// The rows as plain slices, for the row loops.
    pub(super) fn rows(&self) -> Rows<'_, '_, I, T> {
        Rows { k0: self.k0, len: self.k1 - self.k0, ptr: &self.ptr, parts: &self.parts, part_of: &self.part_of }
    }
}

/// A [`RightBlock`]'s rows, borrowed as plain slices (no `Cow` to look through per row).
#[derive(Clone, Copy)]
pub(super) struct Rows<'a, 'b, I, T> {
    /// The block's first row.
    pub(super) k0: u64,
    /// The block's row count.
    pub(super) len: u64,
    pub(super) ptr: &'a [u64],
    parts: &'a [Part<'b, I, T>],
    part_of: &'a [u32],
}

impl<'a, I, T> Rows<'a, '_, I, T> {
    /// Block row `local`; empty rows may come from no part.
    #[inline(always)]
    pub(super) fn row(&self, local: usize) -> (&'a [I], &'a [T]) {
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
