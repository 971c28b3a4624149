//! A mapped segment: zero-copy typed views of one band's arrays, its structural check, and its sprs
//! view.

use crate::element::{Element, Indices, Values};
use crate::error::{Error, Result};
use crate::format::{FileEntry, IndexType, Layout, SegmentEntry, ValueType};
use crate::storage::{cast_slice, MappedFile};
use memmap2::Advice;
use sprs::{CsMatViewI, SpIndex};
use std::path::{Path, PathBuf};

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
    /// verified).
    pub fn indptr(&self) -> &[u64] {
        // The size was checked against the manifest when mapping, and a map is page aligned, so the
        // cast cannot fail; fall back to an empty slice rather than panic if it ever did.
        cast_slice(self.indptr.bytes(), &self.file_path(&self.entry.indptr)).unwrap_or(&[])
    }

    /// Inner indices (columns for CSR, rows for CSC) in their stored width.
    pub fn indices(&self) -> Indices<'_> {
        let path = self.file_path(&self.entry.indices);
        match self.index_type {
            IndexType::Uint32 => Indices::U32(cast_slice(self.indices.bytes(), &path).unwrap_or(&[])),
            IndexType::Uint64 => Indices::U64(cast_slice(self.indices.bytes(), &path).unwrap_or(&[])),
        }
    }

    /// Values in their stored type.
    pub fn values(&self) -> Values<'_> {
        let (Some(map), Some(entry)) = (&self.values, &self.entry.values) else {
            return Values::Pattern;
        };
        let path = self.file_path(entry);
        match self.value_type {
            ValueType::Float64 => Values::F64(cast_slice(map.bytes(), &path).unwrap_or(&[])),
            ValueType::Float32 => Values::F32(cast_slice(map.bytes(), &path).unwrap_or(&[])),
            ValueType::Int64 => Values::I64(cast_slice(map.bytes(), &path).unwrap_or(&[])),
            ValueType::Pattern => Values::Pattern,
        }
    }

    /// Tells the kernel how the segment's arrays will be read; a hint, failures ignored.
    pub fn advise(&self, advice: Advice) {
        self.indptr.advise(advice);
        self.indices.advise(advice);
        if let Some(v) = &self.values {
            v.advise(advice);
        }
    }

    /// Reads every array of the segment into memory and maps it (see [`MappedFile::populate`]),
    /// blocking until done.
    pub fn populate(&self) {
        self.indptr.populate();
        self.indices.populate();
        if let Some(v) = &self.values {
            v.populate();
        }
    }

    /// The paths of the segment's array files (row pointers, indices, and values unless pattern).
    pub fn array_paths(&self) -> Vec<PathBuf> {
        let e = &self.entry;
        [Some(&e.indptr), Some(&e.indices), e.values.as_ref()]
            .into_iter()
            .flatten()
            .map(|f| self.file_path(f))
            .collect()
    }

    /// Checks the row pointers alone: as many as the band needs, starting at 0, never decreasing,
    /// ending at `nnz`. Then every slice of indices and values a row takes is in bounds. O(rows): the
    /// kernels run it on every segment they stream, so that a corrupt file gives an error, not a panic.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] naming the row-pointer file and the broken invariant.
    pub fn check_row_pointers(&self) -> Result<()> {
        let indptr = self.indptr();
        let indptr_path = self.file_path(&self.entry.indptr);
        let nnz = self.entry.nnz;
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
                    "the last of the row pointers is {}, must equal the segment's nnz {nnz}",
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
    /// end at `nnz`; within each outer index the inner indices strictly increase and stay below the
    /// inner dimension. O(nnz).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] naming the array file and the first broken invariant.
    pub fn check_structure(&self) -> Result<()> {
        self.check_row_pointers()?;
        let indptr = self.indptr();
        let (_, inner_dim) = self.layout.outer_inner(self.shape);
        let indices_path = self.file_path(&self.entry.indices);
        match self.indices() {
            Indices::U32(ix) => check_rows(indptr, ix, inner_dim, self.entry.start, &indices_path),
            Indices::U64(ix) => check_rows(indptr, ix, inner_dim, self.entry.start, &indices_path),
        }
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
