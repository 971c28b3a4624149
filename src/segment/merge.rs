//! Dense blocks merged into CSR rows: the [`Merged`] band a segment with dense blocks builds once,
//! on first use, for consumers that read rows.

use super::{DenseBlocks, MappedSegment};
use crate::element::{with_value_type, Element, Indices, ValueVec, Values};
use crate::error::{Error, Result};
use crate::format::{IndexType, ValueType};

/// A segment's band with its dense blocks merged into CSR arrays.
#[derive(Debug)]
pub(super) struct Merged {
    pub(super) indptr: Vec<u64>,
    pub(super) indices: MergedIndices,
    pub(super) values: ValueVec,
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
            values: ValueVec::new(value_type),
        }
    }
}

#[derive(Debug)]
pub(super) enum MergedIndices {
    U32(Vec<u32>),
    U64(Vec<u64>),
}

impl MappedSegment {
    /// The merged rows of a segment with dense blocks (`None` without blocks). When its arrays are
    /// inconsistent, an empty band: [`check_row_pointers`](Self::check_row_pointers) says why.
    pub(super) fn merged(&self) -> Option<&Merged> {
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
}

/// Merges the CSR arrays and the dense blocks of a band into complete rows, in the stored value
/// type (a pattern band has no dense blocks: it merges into empty rows).
fn merge_values<I: bytemuck::Pod + Into<u64> + TryFrom<u64>>(
    indptr: &[u64],
    ix: &[I],
    vals: Values<'_>,
    blocks: &DenseBlocks<'_>,
) -> (Vec<u64>, Vec<I>, ValueVec) {
    with_value_type!(vals.value_type(), |V| match V::stored(vals) {
        Some(v) => {
            let (p, i, v) = merge_rows(indptr, ix, v, blocks, |b| V::stored(b).unwrap_or(&[]));
            (p, i, V::into_value_vec(v))
        }
        None => (vec![0; indptr.len()], Vec::new(), ValueVec::Pattern),
    })
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
