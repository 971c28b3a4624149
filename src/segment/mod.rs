//! A mapped segment: zero-copy typed views of one band's arrays, its structural check, and its sprs
//! view.

use crate::element::{Element, Indices, Values};
use crate::error::{Error, Result};
use crate::format::{DenseEntry, FileEntry, IndexType, Layout, SegmentEntry, ValueType};
use crate::storage::{cast_slice, MappedFile};
use memmap2::Advice;
use sprs::{CsMatViewI, SpIndex};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// An index type segments can store: `u32` or `u64`.
pub trait StoredIndex: bytemuck::Pod + SpIndex + Send + Sync + sealed::Sealed {
    /// The manifest's name for this type.
    const INDEX_TYPE: IndexType;
    /// Extracts a slice of this type, when `indices` has it.
    fn slice<'a>(indices: Indices<'a>) -> Option<&'a [Self]>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u32 {}
    impl Sealed for u64 {}
}

impl StoredIndex for u32 {
    const INDEX_TYPE: IndexType = IndexType::Uint32;
    fn slice<'a>(indices: Indices<'a>) -> Option<&'a [u32]> {
        match indices {
            Indices::U32(s) => Some(s),
            Indices::U64(_) => None,
        }
    }
}

impl StoredIndex for u64 {
    const INDEX_TYPE: IndexType = IndexType::Uint64;
    fn slice<'a>(indices: Indices<'a>) -> Option<&'a [u64]> {
        match indices {
            Indices::U64(s) => Some(s),
            Indices::U32(_) => None,
        }
    }
}

/// One segment with its arrays memory-mapped. Dropping it unmaps them.
///
/// Obtained from [`Matrix::map_segment`](crate::Matrix::map_segment) or
/// [`Matrix::segments_mapped`](crate::Matrix::segments_mapped). The sizes of the arrays were checked
/// against the manifest when mapping; their contents are checked only by [`check_structure`]
/// (or [`Matrix::verify`](crate::Matrix::verify)).
///
/// [`check_structure`]: MappedSegment::check_structure
#[derive(Debug)]
pub struct MappedSegment {
    dir: PathBuf,
    entry: SegmentEntry,
    layout: Layout,
    shape: (u64, u64),
    index_type: IndexType,
    value_type: ValueType,
    indptr: MappedFile,
    indices: MappedFile,
    values: Option<MappedFile>,
    /// The dense blocks' arrays: origins, masks, values.
    dense: Option<[MappedFile; 3]>,
    /// The band as plain CSR arrays, dense blocks merged in: built on first use by a consumer that
    /// needs rows ([`indptr`](Self::indptr) and friends) when the segment has dense blocks.
    merged: OnceLock<Merged>,
    /// Per-row cumulative work (CSR entries plus block positions) of a segment with dense blocks.
    work: OnceLock<Vec<u64>>,
    /// Zero-sized "values" of a pattern segment, so sprs structure views can borrow a `&[()]`.
    /// A `Vec<()>` never allocates.
    units: Vec<()>,
}

/// A segment's band with its dense blocks merged into CSR arrays.
#[derive(Debug)]
struct Merged {
    indptr: Vec<u64>,
    indices: MergedIndices,
    values: MergedValues,
}

impl Merged {
    /// An empty band, for a segment whose arrays could not be merged.
    fn empty(index_type: IndexType, value_type: ValueType) -> Merged {
        Merged {
            indptr: Vec::new(),
            indices: match index_type {
                IndexType::Uint32 => MergedIndices::U32(Vec::new()),
                IndexType::Uint64 => MergedIndices::U64(Vec::new()),
            },
            values: match value_type {
                ValueType::Float32 => MergedValues::F32(Vec::new()),
                ValueType::Int64 => MergedValues::I64(Vec::new()),
                _ => MergedValues::F64(Vec::new()),
            },
        }
    }
}

#[derive(Debug)]
enum MergedIndices {
    U32(Vec<u32>),
    U64(Vec<u64>),
}

#[derive(Debug)]
enum MergedValues {
    F64(Vec<f64>),
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// The dense blocks of a segment (see the format docs, "Dense blocks"): zero-copy views of the mapped
/// arrays. Obtained from [`MappedSegment::dense_blocks`]; only the origins' geometry is checked when
/// they are (by [`MappedSegment::check_row_pointers`]), so a consumer that trusts more (the masks'
/// counts, the zero padding) runs [`MappedSegment::check_structure`] first.
#[derive(Debug, Clone, Copy)]
pub struct DenseBlocks<'a> {
    entry: &'a DenseEntry,
    /// Global outer index of the band's first outer index.
    start: u64,
    band: u64,
    inner_dim: u64,
    origins: &'a [u64],
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
            Values::F64(v) => Values::F64(v.get(k * len..(k + 1) * len)?),
            Values::F32(v) => Values::F32(v.get(k * len..(k + 1) * len)?),
            Values::I64(v) => Values::I64(v.get(k * len..(k + 1) * len)?),
            Values::Pattern => return None,
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

    /// Checks the geometry of the blocks: sorted by (outer, inner) without repeats, each at a
    /// position of the block grid inside the band and the matrix. O(blocks).
    fn check_origins(&self, path: &Path) -> Result<()> {
        let [bo, bi] = self.entry.block_shape;
        let mut prev: Option<(u64, u64)> = None;
        for k in 0..self.len() {
            let (o, i) = (self.origins[3 * k], self.origins[3 * k + 1]);
            let bad = |what: String| Err(Error::corrupt(path, format!("dense block {k}: {what}")));
            if o >= self.band || (o != 0 && (self.start + o) % bo != 0) {
                return bad(format!("outer offset {o} is not a block row of the band of {} outer indices", self.band));
            }
            if i >= self.inner_dim || i % bi != 0 {
                return bad(format!("inner offset {i} is not a block column below {}", self.inner_dim));
            }
            if prev.is_some_and(|p| p >= (o, i)) {
                return bad("blocks are not in increasing (outer, inner) order".into());
            }
            prev = Some((o, i));
        }
        Ok(())
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
    pub(crate) fn map(
        dir: &Path,
        entry: &SegmentEntry,
        layout: Layout,
        shape: (u64, u64),
        index_type: IndexType,
        value_type: ValueType,
    ) -> Result<MappedSegment> {
        let map = |f: &FileEntry| MappedFile::open(&dir.join(&f.path), f.bytes);
        let indptr = map(&entry.indptr)?;
        let indices = map(&entry.indices)?;
        let values = entry.values.as_ref().map(map).transpose()?;
        let dense = match &entry.dense {
            Some(d) => Some([map(&d.origins)?, map(&d.mask)?, map(&d.values)?]),
            None => None,
        };
        let units = if value_type == ValueType::Pattern { vec![(); entry.nnz as usize] } else { Vec::new() };
        Ok(MappedSegment {
            dir: dir.to_path_buf(),
            entry: entry.clone(),
            layout,
            shape,
            index_type,
            value_type,
            indptr,
            indices,
            values,
            dense,
            merged: OnceLock::new(),
            work: OnceLock::new(),
            units,
        })
    }

    /// The segment's directory.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.entry.name)
    }

    /// The segment as the manifest lists it.
    pub fn entry(&self) -> &SegmentEntry {
        &self.entry
    }

    /// First outer index (row for CSR, column for CSC) of the band.
    pub fn start(&self) -> u64 {
        self.entry.start
    }

    /// One past the last outer index of the band.
    pub fn end(&self) -> u64 {
        self.entry.end
    }

    /// Stored entries in the segment.
    pub fn nnz(&self) -> u64 {
        self.entry.nnz
    }

    /// Layout of the matrix the segment belongs to.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Shape of the whole matrix.
    pub fn global_shape(&self) -> (u64, u64) {
        self.shape
    }

    /// Bytes of array data mapped (indptr + indices + values).
    pub fn payload_bytes(&self) -> u64 {
        self.entry.payload_bytes()
    }

    /// Row pointers local to the band: `end - start + 1` entries, the first 0, the last `nnz` (once
    /// verified). With dense blocks, the band's complete rows (see [`indices`](Self::indices)).
    pub fn indptr(&self) -> &[u64] {
        match self.merged() {
            Some(m) => &m.indptr,
            None => self.sparse_indptr(),
        }
    }

    /// Inner indices (columns for CSR, rows for CSC) in their stored width.
    ///
    /// With dense blocks, these are the band's complete rows: the CSR arrays and the blocks' entries
    /// merged, built in memory on first use (as large as the band would be stored all-sparse) and
    /// kept while the segment is mapped. Products use [`sparse_indices`](Self::sparse_indices) and
    /// [`dense_blocks`](Self::dense_blocks) instead and build nothing. If the segment's arrays are
    /// inconsistent, the merged rows are empty and [`check_row_pointers`](Self::check_row_pointers)
    /// says why.
    pub fn indices(&self) -> Indices<'_> {
        match self.merged() {
            Some(m) => match &m.indices {
                MergedIndices::U32(v) => Indices::U32(v),
                MergedIndices::U64(v) => Indices::U64(v),
            },
            None => self.sparse_indices(),
        }
    }

    /// Values in their stored type; with dense blocks, those of the complete rows (see
    /// [`indices`](Self::indices)).
    pub fn values(&self) -> Values<'_> {
        match self.merged() {
            Some(m) => match &m.values {
                MergedValues::F64(v) => Values::F64(v),
                MergedValues::F32(v) => Values::F32(v),
                MergedValues::I64(v) => Values::I64(v),
            },
            None => self.sparse_values(),
        }
    }

    /// The stored row pointers of the CSR arrays (without the dense blocks' entries).
    pub fn sparse_indptr(&self) -> &[u64] {
        // The size was checked against the manifest when mapping, and a map is page aligned, so the
        // cast cannot fail; fall back to an empty slice rather than panic if it ever did.
        cast_slice(self.indptr.bytes(), &self.file_path(&self.entry.indptr)).unwrap_or(&[])
    }

    /// The stored inner indices of the CSR arrays (without the dense blocks' entries).
    pub fn sparse_indices(&self) -> Indices<'_> {
        let path = self.file_path(&self.entry.indices);
        match self.index_type {
            IndexType::Uint32 => Indices::U32(cast_slice(self.indices.bytes(), &path).unwrap_or(&[])),
            IndexType::Uint64 => Indices::U64(cast_slice(self.indices.bytes(), &path).unwrap_or(&[])),
        }
    }

    /// The stored values of the CSR arrays (without the dense blocks' entries).
    pub fn sparse_values(&self) -> Values<'_> {
        let (Some(map), Some(entry)) = (&self.values, &self.entry.values) else {
            return Values::Pattern;
        };
        let path = self.file_path(entry);
        typed_values(self.value_type, map.bytes(), &path)
    }

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
            values: typed_values(self.value_type, values.bytes(), &self.file_path(&entry.values)),
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

    /// The merged rows of a segment with dense blocks (`None` without blocks). When its arrays are
    /// inconsistent, an empty band: [`check_row_pointers`](Self::check_row_pointers) says why.
    fn merged(&self) -> Option<&Merged> {
        self.entry.dense.as_ref()?;
        Some(
            self.merged
                .get_or_init(|| self.merge().unwrap_or_else(|_| Merged::empty(self.index_type, self.value_type))),
        )
    }

    fn merge(&self) -> Result<Merged> {
        self.check_sparse_pointers()?;
        let blocks = self.dense_blocks().ok_or_else(|| Error::corrupt(self.path(), "dense blocks missing"))?;
        blocks.check_origins(&self.path())?;
        let indptr = self.sparse_indptr();
        Ok(match (self.sparse_indices(), self.sparse_values()) {
            (Indices::U32(ix), vals) => {
                let (p, i, v) = merge_values(indptr, ix, vals, &blocks);
                Merged { indptr: p, indices: MergedIndices::U32(i), values: v }
            }
            (Indices::U64(ix), vals) => {
                let (p, i, v) = merge_values(indptr, ix, vals, &blocks);
                Merged { indptr: p, indices: MergedIndices::U64(i), values: v }
            }
        })
    }

    /// Tells the kernel how the segment's arrays will be read; a hint, failures ignored.
    pub fn advise(&self, advice: Advice) {
        self.indptr.advise(advice);
        self.indices.advise(advice);
        if let Some(v) = &self.values {
            v.advise(advice);
        }
        self.dense.iter().flatten().for_each(|m| m.advise(advice));
    }

    /// Reads every array of the segment into memory and maps it (see [`MappedFile::populate`]),
    /// blocking until done.
    pub fn populate(&self) {
        self.indptr.populate();
        self.indices.populate();
        if let Some(v) = &self.values {
            v.populate();
        }
        self.dense.iter().flatten().for_each(|m| m.populate());
    }

    /// The paths of the segment's array files (row pointers, indices, and values unless pattern).
    pub fn array_paths(&self) -> Vec<PathBuf> {
        let e = &self.entry;
        [Some(&e.indptr), Some(&e.indices), e.values.as_ref()]
            .into_iter()
            .flatten()
            .chain(e.dense.iter().flat_map(|d| [&d.origins, &d.mask, &d.values]))
            .map(|f| self.file_path(f))
            .collect()
    }

    /// Checks the row pointers alone: as many as the band needs, starting at 0, never decreasing,
    /// ending at the CSR arrays' entry count. Then every slice of indices and values a row takes is in
    /// bounds. With dense blocks, also their geometry (each at its own grid position inside the band
    /// and the matrix), so that every block's window of `x` and `y` is in bounds. O(rows + blocks):
    /// the kernels run it on every segment they stream, so that a corrupt file gives an error, not a
    /// panic.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] naming the file and the broken invariant.
    pub fn check_row_pointers(&self) -> Result<()> {
        self.check_sparse_pointers()?;
        if let (Some(blocks), Some(d)) = (self.dense_blocks(), &self.entry.dense) {
            blocks.check_origins(&self.file_path(&d.origins))?;
        }
        Ok(())
    }

    fn check_sparse_pointers(&self) -> Result<()> {
        let indptr = self.sparse_indptr();
        let indptr_path = self.file_path(&self.entry.indptr);
        let nnz = self.entry.sparse_nnz();
        if indptr.len() as u64 != self.entry.outer_len() + 1 {
            return Err(Error::corrupt(
                &indptr_path,
                format!("has {} row pointers, the band needs {}", indptr.len(), self.entry.outer_len() + 1),
            ));
        }
        if indptr[0] != 0 {
            return Err(Error::corrupt(
                &indptr_path,
                format!("the first of the row pointers is {}, must be 0", indptr[0]),
            ));
        }
        if indptr[indptr.len() - 1] != nnz {
            return Err(Error::corrupt(
                &indptr_path,
                format!(
                    "the last of the row pointers is {}, must equal the {nnz} entries of the CSR arrays",
                    indptr[indptr.len() - 1]
                ),
            ));
        }
        if let Some(pos) = indptr.windows(2).position(|w| w[1] < w[0]) {
            return Err(Error::corrupt(
                &indptr_path,
                format!("row pointers decrease at outer index {}", self.entry.start + pos as u64),
            ));
        }
        Ok(())
    }

    /// Checks the structural invariants of the band: the row pointers start at 0, never decrease and
    /// end at the CSR arrays' entry count; within each outer index the inner indices strictly
    /// increase and stay below the inner dimension. Dense blocks: their geometry, each block's mask
    /// count equal to its recorded count and theirs to the manifest's, no mask bit and no nonzero
    /// value outside the block's window or where the mask is clear, and no entry of the CSR arrays
    /// inside a block's window. O(nnz + blocks x block size).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] naming the array file and the first broken invariant.
    pub fn check_structure(&self) -> Result<()> {
        self.check_row_pointers()?;
        let indptr = self.sparse_indptr();
        let (_, inner_dim) = self.layout.outer_inner(self.shape);
        let indices_path = self.file_path(&self.entry.indices);
        match self.sparse_indices() {
            Indices::U32(ix) => check_rows(indptr, ix, inner_dim, self.entry.start, &indices_path)?,
            Indices::U64(ix) => check_rows(indptr, ix, inner_dim, self.entry.start, &indices_path)?,
        }
        if let (Some(blocks), Some(d)) = (self.dense_blocks(), &self.entry.dense) {
            self.check_dense(&blocks, d)?;
        }
        Ok(())
    }

    fn check_dense(&self, blocks: &DenseBlocks<'_>, d: &DenseEntry) -> Result<()> {
        let mask_path = self.file_path(&d.mask);
        let values_path = self.file_path(&d.values);
        let [bo, bi] = d.block_shape;
        let mut total = 0u64;
        for (k, b) in blocks.iter().enumerate() {
            let mut count = 0u64;
            for o in 0..bo {
                for i in 0..bi {
                    let set = b.is_set(o, i);
                    if set && (o >= b.height || i >= b.width) {
                        return Err(Error::corrupt(
                            &mask_path,
                            format!(
                                "dense block {k} marks position ({o}, {i}) outside its {} x {} window",
                                b.height, b.width
                            ),
                        ));
                    }
                    if !set && !is_zero_at(b.values, (o * bi + i) as usize) {
                        return Err(Error::corrupt(
                            &values_path,
                            format!("dense block {k} holds a nonzero value at unmarked position ({o}, {i})"),
                        ));
                    }
                    count += u64::from(set);
                }
            }
            if count != b.nnz {
                return Err(Error::corrupt(
                    &mask_path,
                    format!("dense block {k} marks {count} entries, its origin records {}", b.nnz),
                ));
            }
            total += count;
        }
        if total != d.nnz {
            return Err(Error::corrupt(
                &mask_path,
                format!("dense blocks mark {total} entries, the manifest records {}", d.nnz),
            ));
        }
        // No entry of the CSR arrays inside a block's window (it would be stored twice).
        let indptr = self.sparse_indptr();
        let indices = self.sparse_indices();
        let mut k = 0;
        for r in 0..self.entry.outer_len() {
            while k < blocks.len() {
                match blocks.get(k) {
                    Some(b) if b.outer + b.height <= r => k += 1,
                    _ => break,
                }
            }
            let mut j = k;
            let (lo, hi) = (indptr[r as usize] as usize, indptr[r as usize + 1] as usize);
            for e in lo..hi {
                let col = indices.get(e);
                while let Some(b) = blocks.get(j) {
                    if b.outer > r || b.inner + b.width > col {
                        break;
                    }
                    j += 1;
                }
                if let Some(b) = blocks.get(j) {
                    if b.outer <= r && r < b.outer + b.height && b.inner <= col && col < b.inner + b.width {
                        return Err(Error::corrupt(
                            self.file_path(&self.entry.indices),
                            format!(
                                "entry ({}, {col}) of the CSR arrays lies inside dense block {j}",
                                self.entry.start + r
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// A zero-copy sprs view of the band: a `band x cols` CSR matrix (or `rows x band` CSC) over the
    /// mapped arrays. sprs checks the structure when building it (O(nnz)).
    ///
    /// `N` must be the stored value type (`()` for pattern) and `I` the stored index type.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when `N` or `I` is not the stored type; [`Error::Corrupt`] when sprs
    /// rejects the structure.
    pub fn sprs_view<N: Element, I: StoredIndex>(&self) -> Result<CsMatViewI<'_, N, I, u64>> {
        if N::VALUE_TYPE != self.value_type || I::INDEX_TYPE != self.index_type {
            return Err(Error::invalid(format!(
                "segment stores {} values with {} indices; a view of {} with {} was asked for",
                self.value_type,
                self.index_type,
                N::VALUE_TYPE,
                I::INDEX_TYPE
            )));
        }
        let indices = I::slice(self.indices()).unwrap_or(&[]);
        let data = N::stored_slice(self.values(), &self.units).unwrap_or(&[]);
        let band = self.entry.outer_len() as usize;
        let (rows, cols) = (self.shape.0 as usize, self.shape.1 as usize);
        let built = match self.layout {
            Layout::Csr => CsMatViewI::try_new((band, cols), self.indptr(), indices, data),
            Layout::Csc => CsMatViewI::try_new_csc((rows, band), self.indptr(), indices, data),
        };
        built.map_err(|(_, _, _, e)| {
            Error::corrupt(self.dir.join(&self.entry.name), format!("not a valid sparse band: {e}"))
        })
    }

    fn file_path(&self, f: &FileEntry) -> PathBuf {
        self.dir.join(&f.path)
    }
}

fn check_rows<I: Copy + Into<u64>>(
    indptr: &[u64],
    indices: &[I],
    inner_dim: u64,
    start: u64,
    path: &Path,
) -> Result<()> {
    for (r, w) in indptr.windows(2).enumerate() {
        let row = &indices[w[0] as usize..w[1] as usize];
        let mut prev: Option<u64> = None;
        for &i in row {
            let i: u64 = i.into();
            if i >= inner_dim {
                return Err(Error::corrupt(
                    path,
                    format!(
                        "index {i} at outer index {} is not below the inner dimension {inner_dim}",
                        start + r as u64
                    ),
                ));
            }
            if prev.is_some_and(|p| p >= i) {
                return Err(Error::corrupt(
                    path,
                    format!(
                        "indices at outer index {} are not strictly increasing ({} then {i})",
                        start + r as u64,
                        prev.unwrap_or(0)
                    ),
                ));
            }
            prev = Some(i);
        }
    }
    Ok(())
}

/// Views mapped bytes as values of `value_type` (empty if the bytes cannot be, which mapping rules out).
fn typed_values<'a>(value_type: ValueType, bytes: &'a [u8], path: &Path) -> Values<'a> {
    match value_type {
        ValueType::Float64 => Values::F64(cast_slice(bytes, path).unwrap_or(&[])),
        ValueType::Float32 => Values::F32(cast_slice(bytes, path).unwrap_or(&[])),
        ValueType::Int64 => Values::I64(cast_slice(bytes, path).unwrap_or(&[])),
        ValueType::Pattern => Values::Pattern,
    }
}

/// Whether value `k` is stored as all-zero bytes (or out of range: nothing stored).
fn is_zero_at(values: Values<'_>, k: usize) -> bool {
    match values {
        Values::F64(v) => v.get(k).map_or(true, |x| x.to_bits() == 0),
        Values::F32(v) => v.get(k).map_or(true, |x| x.to_bits() == 0),
        Values::I64(v) => v.get(k).map_or(true, |x| *x == 0),
        Values::Pattern => true,
    }
}

/// Merges the CSR arrays and the dense blocks of a band into complete rows, dispatching on the value
/// type.
fn merge_values<I: bytemuck::Pod + Into<u64> + TryFrom<u64>>(
    indptr: &[u64],
    ix: &[I],
    vals: Values<'_>,
    blocks: &DenseBlocks<'_>,
) -> (Vec<u64>, Vec<I>, MergedValues) {
    match vals {
        Values::F64(v) => {
            let (p, i, v) = merge_rows(indptr, ix, v, blocks, |b| match b {
                Values::F64(s) => s,
                _ => &[],
            });
            (p, i, MergedValues::F64(v))
        }
        Values::F32(v) => {
            let (p, i, v) = merge_rows(indptr, ix, v, blocks, |b| match b {
                Values::F32(s) => s,
                _ => &[],
            });
            (p, i, MergedValues::F32(v))
        }
        Values::I64(v) => {
            let (p, i, v) = merge_rows(indptr, ix, v, blocks, |b| match b {
                Values::I64(s) => s,
                _ => &[],
            });
            (p, i, MergedValues::I64(v))
        }
        Values::Pattern => (vec![0; indptr.len()], Vec::new(), MergedValues::F64(Vec::new())),
    }
}

/// The merge: each row's CSR entries and its blocks' marked positions, in increasing inner order
/// (blocks come in increasing inner order, and a verified band has no CSR entry inside a block).
/// Indices and slices are taken with checks, so inconsistent arrays give a wrong band, never a panic.
fn merge_rows<I: bytemuck::Pod + Into<u64> + TryFrom<u64>, V: Copy>(
    indptr: &[u64],
    ix: &[I],
    vals: &[V],
    blocks: &DenseBlocks<'_>,
    block_values: impl for<'b> Fn(Values<'b>) -> &'b [V],
) -> (Vec<u64>, Vec<I>, Vec<V>) {
    let band = indptr.len().saturating_sub(1);
    let extra = blocks.nnz() as usize;
    let mut out_ptr = Vec::with_capacity(band + 1);
    let mut out_ix: Vec<I> = Vec::with_capacity(ix.len() + extra);
    let mut out_val: Vec<V> = Vec::with_capacity(ix.len() + extra);
    out_ptr.push(0u64);
    let mut first = 0usize;
    for r in 0..band as u64 {
        // Blocks covering row r: a run of equal outer offsets, ordered by inner offset.
        while let Some(b) = blocks.get(first) {
            if b.outer + b.height <= r {
                first += 1;
            } else {
                break;
            }
        }
        let (lo, hi) = (indptr[r as usize] as usize, indptr[r as usize + 1] as usize);
        let (row_ix, row_val) = match (ix.get(lo..hi), vals.get(lo..hi)) {
            (Some(i), Some(v)) => (i, v),
            _ => (&[][..], &[][..]),
        };
        let mut e = 0usize;
        let mut k = first;
        while let Some(b) = blocks.get(k) {
            if b.outer > r {
                break;
            }
            // CSR entries before the block.
            while e < row_ix.len() && row_ix[e].into() < b.inner {
                out_ix.push(row_ix[e]);
                out_val.push(row_val[e]);
                e += 1;
            }
            let o = r - b.outer;
            let bv = block_values(b.values);
            for i in 0..b.width {
                if b.is_set(o, i) {
                    if let (Ok(col), Some(&v)) = (I::try_from(b.inner + i), bv.get((o * b.stride + i) as usize)) {
                        out_ix.push(col);
                        out_val.push(v);
                    }
                }
            }
            k += 1;
        }
        out_ix.extend_from_slice(&row_ix[e..]);
        out_val.extend_from_slice(&row_val[e..]);
        out_ptr.push(out_ix.len() as u64);
    }
    (out_ptr, out_ix, out_val)
}
