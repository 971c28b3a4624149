//! The dense-block view of a segment: [`DenseBlocks`] over the mapped origins, masks and values,
//! one [`DenseBlock`] at a time, and the per-row work of a segment with blocks.

use super::{typed_values, MappedSegment};
use crate::element::Values;
use crate::format::DenseEntry;
use crate::storage::cast_slice;

/// The dense blocks of a segment (see the format docs, "Dense blocks"): zero-copy views of the mapped
/// arrays. Obtained from [`MappedSegment::dense_blocks`]; only the origins' geometry is checked when
/// they are (by [`MappedSegment::check_row_pointers`]), so a consumer that trusts more (the masks'
/// counts, the zero padding) runs [`MappedSegment::check_structure`] first.
#[derive(Debug, Clone, Copy)]
pub struct DenseBlocks<'a> {
    pub(super) entry: &'a DenseEntry,
    /// Global outer index of the band's first outer index.
    pub(super) start: u64,
    pub(super) band: u64,
    pub(super) inner_dim: u64,
    pub(super) origins: &'a [u64],
    masks: &'a [u64],
    values: Values<'a>,
}

/// One dense block: a `height x width` window of the band (clipped at the band's and the matrix's
/// edges) stored as a `block_shape` row-major array.
#[derive(Debug, Clone, Copy)]
pub struct DenseBlock<'a> {
    /// Band-local outer index of the block's first outer index.
    pub outer: u64,
    /// Inner index of the block's first inner index.
    pub inner: u64,
    /// Outer indices the block covers (at most `block_shape[0]`).
    pub height: u64,
    /// Inner indices the block covers (at most `block_shape[1]`).
    pub width: u64,
    /// Stored entries, as the origins record them.
    pub nnz: u64,
    /// `block_shape[0] * block_shape[1]` values, row-major by outer index with a stride of
    /// `block_shape[1]`; zero where the mask is clear.
    pub values: Values<'a>,
    /// The block's mask words: bit `p % 64` of word `p / 64` marks position `p = o * stride + i`.
    pub mask: &'a [u64],
    /// The row stride of `values` and of the mask: `block_shape[1]`.
    pub stride: u64,
}

impl<'a> DenseBlocks<'a> {
    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.origins.len() / 3
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `[outer, inner]` extent of a whole block.
    pub fn block_shape(&self) -> [u64; 2] {
        self.entry.block_shape
    }

    /// Entries the blocks hold, as the manifest records it.
    pub fn nnz(&self) -> u64 {
        self.entry.nnz
    }

    /// Band-local outer index where the block starting at band-local `outer` ends: the next multiple
    /// of the block's outer extent in the whole matrix, or the band's end.
    fn block_end(&self, outer: u64) -> u64 {
        let bo = self.entry.block_shape[0];
        let global = self.start.saturating_add(outer);
        (global / bo).saturating_add(1).saturating_mul(bo).saturating_sub(self.start).min(self.band)
    }

    /// Block `k` (blocks are ordered by outer, then inner offset). Geometry comes from the origins
    /// with the widths and heights clipped to the band and the matrix, so the ranges it describes
    /// are inside the band whatever the bytes; `None` past the end.
    pub fn get(&self, k: usize) -> Option<DenseBlock<'a>> {
        let o = self.origins.get(3 * k..3 * k + 3)?;
        let [bo, bi] = self.entry.block_shape;
        let (outer, inner, nnz) = (o[0], o[1], o[2]);
        let height = if outer < self.band { self.block_end(outer) - outer } else { 0 };
        let width = bi.min(self.inner_dim.saturating_sub(inner));
        let len = (bo * bi) as usize;
        let words = self.entry.mask_words() as usize;
        let values = match self.values {
            Values::Pattern => return None,
            stored => stored.slice(k * len..(k + 1) * len)?,
        };
        let mask = self.masks.get(k * words..(k + 1) * words)?;
        Some(DenseBlock { outer, inner, height, width, nnz, values, mask, stride: bi })
    }

    /// The blocks in order.
    pub fn iter(&self) -> impl Iterator<Item = DenseBlock<'a>> + '_ {
        (0..self.len()).map_while(|k| self.get(k))
    }

    /// Index of the first block whose outer offset is at least `outer`.
    pub fn first_at_or_after(&self, outer: u64) -> usize {
        let n = self.len();
        let (mut a, mut b) = (0, n);
        while a < b {
            let m = a + (b - a) / 2;
            if self.origins[3 * m] < outer {
                a = m + 1;
            } else {
                b = m;
            }
        }
        a
    }

    /// The blocks whose windows meet band-local outer indices `a..b`, each with the part of its
    /// window's outer range inside `a..b` (never empty), in order.
    pub fn meeting(&self, a: u64, b: u64) -> impl Iterator<Item = (DenseBlock<'a>, std::ops::Range<u64>)> + '_ {
        // The blocks of the group that contains `a` start before it.
        let k = self.first_at_or_after(a);
        let first = match k.checked_sub(1).and_then(|p| self.get(p)) {
            Some(prev) if prev.outer + prev.height > a => self.first_at_or_after(prev.outer),
            _ => k,
        };
        (first..self.len()).map_while(move |k| self.get(k).filter(|blk| blk.outer < b)).filter_map(move |blk| {
            let rows = blk.outer.max(a)..(blk.outer + blk.height).min(b);
            (rows.start < rows.end).then_some((blk, rows))
        })
    }
}

impl DenseBlock<'_> {
    /// Whether position (`o`, `i`) of the block (block-local) holds a stored entry.
    #[inline]
    pub fn is_set(&self, o: u64, i: u64) -> bool {
        let p = (o * self.stride + i) as usize;
        self.mask.get(p / 64).is_some_and(|w| w >> (p % 64) & 1 == 1)
    }
}

impl MappedSegment {
    /// The segment's dense blocks, if it has any.
    pub fn dense_blocks(&self) -> Option<DenseBlocks<'_>> {
        let (Some(entry), Some([origins, masks, values])) = (&self.entry.dense, &self.dense) else {
            return None;
        };
        let (_, inner_dim) = self.layout.outer_inner(self.shape);
        Some(DenseBlocks {
            entry,
            start: self.entry.start,
            band: self.entry.outer_len(),
            inner_dim,
            origins: cast_slice(origins.bytes(), &self.file_path(&entry.origins)).unwrap_or(&[]),
            masks: cast_slice(masks.bytes(), &self.file_path(&entry.mask)).unwrap_or(&[]),
            values: typed_values(self.value_type, values.bytes()),
        })
    }

    /// For a segment with dense blocks, the cumulative work of its rows (CSR entries plus the
    /// positions of the block windows each row crosses, `band + 1` values from 0), computed once: the
    /// kernels split bands into tasks of equal work by it. `None` without dense blocks (the row
    /// pointers are the work). Call after [`check_row_pointers`](Self::check_row_pointers).
    pub fn dense_work_prefix(&self) -> Option<&[u64]> {
        let blocks = self.dense_blocks()?;
        Some(self.work.get_or_init(|| {
            let indptr = self.sparse_indptr();
            let band = indptr.len().saturating_sub(1);
            let mut dense_width = vec![0u64; band];
            for b in blocks.iter() {
                let (o, h) = (b.outer as usize, b.height as usize);
                if let Some(rows) = dense_width.get_mut(o.min(band)..o.saturating_add(h).min(band)) {
                    rows.iter_mut().for_each(|w| *w += b.width);
                }
            }
            let mut acc = 0u64;
            let mut work = Vec::with_capacity(band + 1);
            work.push(0);
            for r in 0..band {
                acc += dense_width[r];
                work.push(indptr[r + 1] + acc);
            }
            work
        }))
    }
}
