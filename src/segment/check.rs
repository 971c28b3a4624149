//! Structure and bounds checks of a segment: the row pointers alone (cheap, before every stream),
//! the whole structure (sorted indices inside the matrix, consistent dense blocks), and the
//! geometry of the dense blocks.

use super::{DenseBlocks, MappedSegment};
use crate::element::{match_indices, match_values, Values};
use crate::error::{Error, Result};
use crate::format::DenseEntry;
use std::path::Path;

impl MappedSegment {
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

    pub(super) fn check_sparse_pointers(&self) -> Result<()> {
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
        match_indices!(self.sparse_indices(), |ix| check_rows(indptr, ix, inner_dim, self.entry.start, &indices_path)?);
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
}

impl DenseBlocks<'_> {
    /// Checks the geometry of the blocks: sorted by (outer, inner) without repeats, each at a
    /// position of the block grid inside the band and the matrix. O(blocks).
    pub(super) fn check_origins(&self, path: &Path) -> Result<()> {
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

/// Whether value `k` is stored as all-zero bytes (or out of range: nothing stored).
fn is_zero_at(values: Values<'_>, k: usize) -> bool {
    match_values!(values, |v| v.get(k).map_or(true, |x| bytemuck::bytes_of(x).iter().all(|&b| b == 0)), true)
}
