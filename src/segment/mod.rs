//! A mapped segment: zero-copy typed views of one band's arrays, its structural check, and its sprs
//! view. The mapped view is here; `dense` has the dense-block view, `check` the structure and bounds
//! checks, `merge` the dense blocks merged into CSR rows (built once, on first use).

mod check;
mod dense;
mod merge;

pub use dense::{DenseBlock, DenseBlocks};

use crate::element::{Element, Indices, StoredIndex, Values};
use crate::error::{Error, Result};
use crate::format::{FileEntry, IndexType, Layout, SegmentEntry, ValueType};
use crate::storage::{cast_slice, MappedFile};
use memmap2::Advice;
use merge::{Merged, MergedIndices};
use sprs::CsMatViewI;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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
    /// Set once every inner index of the CSR arrays has been found below the inner dimension (by a
    /// product's chunked checks, see `kernels`): later products skip the checks. The value says
    /// whether most entries lie in chunks whose indices spread wide (where the gather prefetches `x`).
    /// Sound because published files never change while mapped (docs/FORMAT.md).
    indices_checked: OnceLock<bool>,
    /// The band-local rows that hold entries, when a fair share of the band's rows are empty (see
    /// [`nonempty_rows`](Self::nonempty_rows)); built on first use.
    nonempty_rows: OnceLock<Option<Vec<u32>>>,
    /// Zero-sized "values" of a pattern segment, so sprs structure views can borrow a `&[()]`.
    /// A `Vec<()>` never allocates.
    units: Vec<()>,
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
            indices_checked: OnceLock::new(),
            nonempty_rows: OnceLock::new(),
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

    /// The length of the inner dimension (columns for CSR, rows for CSC): every stored inner index
    /// lies below it.
    pub fn inner_len(&self) -> u64 {
        match self.layout {
            Layout::Csr => self.shape.1,
            Layout::Csc => self.shape.0,
        }
    }

    /// `Some(wide)` once every inner index of the CSR arrays is known to lie below
    /// [`inner_len`](Self::inner_len) (see [`mark_indices_checked`](Self::mark_indices_checked)).
    pub(crate) fn indices_checked(&self) -> Option<bool> {
        self.indices_checked.get().copied()
    }

    /// Records that every inner index of the CSR arrays was checked below
    /// [`inner_len`](Self::inner_len), and whether they spread wide. Only a pass that checked every
    /// one may call it.
    pub(crate) fn mark_indices_checked(&self, wide: bool) {
        let _ = self.indices_checked.set(wide);
    }

    /// The band-local outer indices whose rows (columns for CSC) hold entries in the CSR arrays, in
    /// order, when at least an eighth of the band's are empty (a power-law graph's); `None` otherwise
    /// or for bands of 2^32 rows or more. Built by one pass over the row pointers on first use and
    /// kept: products skip the empty rows, whose random interleaving with the others costs a
    /// mispredicted branch each (docs/performance.md, "SpMV in memory, issue #18").
    pub(crate) fn nonempty_rows(&self) -> Option<&[u32]> {
        self.nonempty_rows
            .get_or_init(|| {
                let indptr = self.sparse_indptr();
                let band = indptr.len().checked_sub(1)?;
                u32::try_from(band).ok()?;
                let rows: Vec<u32> =
                    indptr.windows(2).enumerate().filter(|(_, w)| w[1] > w[0]).map(|(r, _)| r as u32).collect();
                (band - rows.len() >= band / 8 && band > 0).then_some(rows)
            })
            .as_deref()
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
            Some(m) => m.values.as_values(),
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
        let (Some(map), Some(_)) = (&self.values, &self.entry.values) else {
            return Values::Pattern;
        };
        typed_values(self.value_type, map.bytes())
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

/// Views mapped bytes as values of `value_type`. Mapping checked their size and a map is page
/// aligned, so the fallback (an empty view: `from_bytes` of no bytes never fails) is never reached;
/// it is there so that nothing can panic.
fn typed_values(value_type: ValueType, bytes: &[u8]) -> Values<'_> {
    Values::from_bytes(value_type, bytes).or_else(|| Values::from_bytes(value_type, &[])).unwrap_or(Values::Pattern)
}
