//! The pieces the operations share: reading a matrix outer index by outer index, and the n-way merge
//! of aligned outer indices (used by `add` and by the merge of an out-of-core product's partial
//! results).

use super::{OpProgress, ProgressFn};
use crate::element::Element;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::scan::{row_indices, scan, Scan};
use crate::segment::MappedSegment;
use crate::writer::MatrixWriter;

/// Reads a matrix one outer index at a time, mapping one segment at a time (row pointers checked
/// when it is mapped, every inner index checked against the inner dimension).
pub(crate) struct RowStream<'m> {
    m: &'m Matrix,
    segments: Scan<'m>,
    next_segment: usize,
    seg: Option<MappedSegment>,
    outer: u64,
    inner_dim: u64,
}

impl<'m> RowStream<'m> {
    pub(crate) fn new(m: &'m Matrix) -> RowStream<'m> {
        let (_, inner_dim) = m.layout().outer_inner(m.shape());
        RowStream { m, segments: scan(m), next_segment: 0, seg: None, outer: 0, inner_dim }
    }

    /// Appends the entries of the next outer index to `cols` and `vals`.
    pub(crate) fn next_into<T: Element>(&mut self, cols: &mut Vec<u64>, vals: &mut Vec<T>) -> Result<()> {
        let need_segment = match &self.seg {
            Some(s) => self.outer >= s.end(),
            None => true,
        };
        if need_segment {
            self.seg = None;
            let (Some(entry), Some(seg)) = (self.m.segments().get(self.next_segment), self.segments.next()) else {
                return Err(Error::invalid("RowStream read past the last outer index"));
            };
            if entry.start != self.outer {
                return Err(Error::corrupt(self.m.dir(), "segments do not tile the outer dimension"));
            }
            self.seg = Some(seg?);
            self.next_segment += 1;
        }
        let seg = self.seg.as_ref().expect("a segment was mapped above");
        let r = (self.outer - seg.start()) as usize;
        let (lo, hi) = row_indices(seg, r, self.inner_dim, cols)?;
        seg.values().extend_into(lo..hi, vals);
        self.outer += 1;
        Ok(())
    }
}

/// Merges `inputs` (same shape and layout) outer index by outer index into `writer`: the entries of
/// input `s` are mapped by `map(s, value)`, entries at the same position are combined in input order
/// by `combine`, and combined zeros are dropped when `drop_zeros`. Returns the entries read.
pub(crate) fn merge_into<T: Element>(
    inputs: &[&Matrix],
    map: impl Fn(usize, T) -> T,
    combine: impl Fn(T, T) -> T,
    drop_zeros: bool,
    writer: &mut MatrixWriter<T>,
    phase: &'static str,
    progress: Option<ProgressFn<'_>>,
) -> Result<u64> {
    let Some(first) = inputs.first() else { return Ok(0) };
    let (outer_dim, _) = first.layout().outer_inner(first.shape());
    let mut streams: Vec<RowStream<'_>> = inputs.iter().map(|m| RowStream::new(m)).collect();
    let (mut cols, mut vals) = (Vec::<u64>::new(), Vec::<T>::new());
    let mut entries: Vec<(u64, T)> = Vec::new();
    let (mut out_cols, mut out_vals) = (Vec::<u64>::new(), Vec::<T>::new());
    let total: u64 = inputs.iter().map(|m| m.nnz()).sum();
    let mut read = 0u64;
    let mut reported = 0u64;
    for _ in 0..outer_dim {
        entries.clear();
        for (s, stream) in streams.iter_mut().enumerate() {
            cols.clear();
            vals.clear();
            stream.next_into(&mut cols, &mut vals)?;
            entries.extend(cols.iter().zip(&vals).map(|(&c, &v)| (c, map(s, v))));
        }
        read += entries.len() as u64;
        // Stable: equal positions stay in input order. Each input's row is a sorted run, which the
        // standard library's merge sort detects, so this is a k-way merge in O(n log k).
        entries.sort_by_key(|e| e.0);
        out_cols.clear();
        out_vals.clear();
        let mut i = 0;
        while i < entries.len() {
            let (c, mut v) = entries[i];
            i += 1;
            while i < entries.len() && entries[i].0 == c {
                v = combine(v, entries[i].1);
                i += 1;
            }
            if !(drop_zeros && v.is_zero()) {
                out_cols.push(c);
                out_vals.push(v);
            }
        }
        writer.push_row(&out_cols, &out_vals)?;
        if let Some(p) = progress {
            if read - reported >= 1 << 20 {
                reported = read;
                p(OpProgress { phase, done: read, total });
            }
        }
    }
    Ok(read)
}
