//! Dense blocks: finding them while a segment is written, and moving them out of its CSR arrays once
//! it is complete (see `docs/FORMAT.md`, "Dense blocks").
//!
//! **Finding candidates while writing** costs one pass over each row's indices, finding its *runs*:
//! consecutive entries in one block column (`inner / block_inner`). Runs of at least `threshold x
//! block_inner / 2` entries (22 for the defaults) are added to a count per block column for the
//! current group of rows (a block row). A block of `h x w` positions passing the threshold holds at
//! least `threshold x h x w` entries, of which its rows' short runs hold fewer than `long x h`; so
//! only a group where some block column's long runs reach the difference can hold one, and a group
//! where none does is never looked at again. Banded PDE matrices, graphs and products of graphs have
//! no long runs (a 2-D Laplacian's rows have runs of 1 to 3; a row of a graph's square with thousands
//! of scattered entries, runs of a few), so they pay only the scan.
//!
//! **Extracting**, once a segment with candidates is closed and its chunk files are on disk, reads the
//! segment back (memory-mapped), counts the entries of every block of the candidate groups, and, when
//! some block reaches the threshold, rewrites the segment: the CSR arrays without those entries (to
//! temporary names, then renamed over the originals) and the three dense arrays. Memory is bounded by
//! the counts of one group of rows and [`BLOCK_WINDOW`] blocks, whatever the width of the rows.

use super::chunk::{ChunkFile, ChunkIo};
use crate::error::{Error, Result};
use crate::format::{paths, IndexType};
use crate::storage::{cast_slice, MappedFile};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The default density threshold: blocks at least this full are stored dense. Chosen by `cargo bench
/// --bench dense -- --sweep` (docs/performance.md, "Dense blocks"): on block-diagonal matrices whose 64 x 64 blocks
/// are filled at random, 0.7 is the lowest density at which the dense form is both smaller on disk
/// (1.04x; at 0.6 it is 1.12x larger) and faster for SpMV on one and two threads (1.81x and 1.24x; at
/// 0.6 two threads were 0.95x).
pub const DEFAULT_DENSE_THRESHOLD: f64 = 0.7;

/// The default block extent: 64 x 64 (32 KiB of `f64`: a block and its slices of `x` and `y` stay in
/// L1/L2 while it is multiplied).
pub const DEFAULT_DENSE_BLOCK: [u64; 2] = [64, 64];

/// Blocks filled at once while extracting a group of rows: bounds memory (64 blocks of 64 x 64 `f64`
/// are 2 MiB) for groups of very wide dense rows.
const BLOCK_WINDOW: usize = 64;

/// How a writer stores dense blocks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DenseOptions {
    /// Store a block dense when at least this fraction of its positions (inside the matrix) hold
    /// entries: `0 < threshold <= 1`.
    pub threshold: f64,
    /// `[outer, inner]` extent of a block (each 1 to 4096).
    pub block_shape: [u64; 2],
}

impl Default for DenseOptions {
    fn default() -> Self {
        DenseOptions { threshold: DEFAULT_DENSE_THRESHOLD, block_shape: DEFAULT_DENSE_BLOCK }
    }
}

impl DenseOptions {
    /// Checks the options.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a threshold outside `(0, 1]` or a block extent outside 1..=4096.
    pub fn check(&self) -> Result<()> {
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(Error::invalid(format!(
                "the dense threshold must lie in (0, 1] (1 stores only full blocks), not {}",
                self.threshold
            )));
        }
        let max = crate::format::MAX_DENSE_BLOCK_EXTENT;
        if self.block_shape.iter().any(|&d| d == 0 || d > max) {
            return Err(Error::invalid(format!(
                "dense block extents must lie in 1..={max}, not {:?}",
                self.block_shape
            )));
        }
        Ok(())
    }

    fn block_area(&self) -> u64 {
        self.block_shape[0] * self.block_shape[1]
    }

    /// The smallest (clipped) block considered: a quarter of a whole one. Smaller dense corners gain
    /// nothing and would make tiny matrices all dense.
    fn min_area(&self) -> u64 {
        self.block_area().div_ceil(4)
    }

    /// Whether a block of `area` positions holding `count` entries is stored dense.
    fn is_dense(&self, area: u64, count: u64) -> bool {
        area >= self.min_area() && count as f64 >= self.threshold * area as f64
    }
}

/// Candidate detection while rows are written: see the [module docs](self).
#[derive(Debug)]
pub(super) struct DenseScan {
    options: DenseOptions,
    inner_dim: u64,
    /// Runs (consecutive entries of a row in one block column) at least this long are counted.
    long_run: u64,
    /// First band-local outer index of the current group.
    group_start: u64,
    /// Global outer index where the current group ends (a multiple of the block's outer extent).
    group_end: u64,
    /// Entries in long runs, per block column, in the current group.
    counts: HashMap<u64, u64>,
    /// The run being counted in the current row: its block column and length.
    run_block: u64,
    run: u64,
    /// Band-local `[start, end)` of the candidate groups, in order.
    pub(super) candidates: Vec<(u64, u64)>,
    /// Entries of the candidate groups' qualifying block columns found in long runs: a lower bound
    /// of what extraction would move into dense blocks.
    pub(super) estimated: u64,
}

/// Extraction rewrites the whole segment: it runs only when the candidates' long runs alone hold at
/// least this fraction of the segment's entries (1/4). Below that the gain (a third of the bytes of
/// those entries, a faster product over them) does not pay for reading the segment back and writing it
/// again: the square of an R-MAT scale-16 graph has real dense blocks in its hub rows holding 2.6% of its
/// entries, and extracting them made the product 2.5 times slower.
pub(super) const MIN_DENSE_SHARE: u64 = 4;

impl DenseScan {
    /// A scan for a segment starting at global outer index `start`.
    pub(super) fn new(options: DenseOptions, start: u64, inner_dim: u64) -> DenseScan {
        let bo = options.block_shape[0];
        let long_run = ((options.threshold * options.block_shape[1] as f64) / 2.0).floor().max(1.0) as u64;
        DenseScan {
            options,
            inner_dim,
            long_run,
            group_start: 0,
            group_end: (start / bo + 1) * bo,
            counts: HashMap::new(),
            run_block: u64::MAX,
            run: 0,
            candidates: Vec::new(),
            estimated: 0,
        }
    }

    /// Ends the current run, counting it if long.
    #[inline]
    fn end_run(&mut self) {
        if self.run >= self.long_run {
            *self.counts.entry(self.run_block).or_default() += self.run;
        }
        self.run = 0;
        self.run_block = u64::MAX;
    }

    /// One more entry of the current row (entries come in increasing inner order).
    #[inline]
    pub(super) fn entry(&mut self, inner: u64) {
        let block = inner / self.options.block_shape[1];
        if block == self.run_block {
            self.run += 1;
        } else {
            self.end_run();
            self.run_block = block;
            self.run = 1;
        }
    }

    /// A whole row's entries, as little-endian indices of `index_type`.
    pub(super) fn row_bytes(&mut self, index_type: IndexType, bytes: &[u8]) {
        if (bytes.len() as u64) < self.long_run * index_type.bytes() {
            // Too short for a long run (a PDE's or a sparse graph's row): nothing to count.
            return;
        }
        match index_type {
            IndexType::Uint32 => self.row_iter(
                bytes.chunks_exact(4).map(|c| u64::from(u32::from_le_bytes(c.try_into().expect("chunks of 4 bytes")))),
            ),
            IndexType::Uint64 => self
                .row_iter(bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8 bytes")))),
        }
    }

    /// Part of a row's entries, continuing the runs of the parts before it.
    pub(super) fn part_bytes(&mut self, index_type: IndexType, bytes: &[u8]) {
        match index_type {
            IndexType::Uint32 => self.row_iter(
                bytes.chunks_exact(4).map(|c| u64::from(u32::from_le_bytes(c.try_into().expect("chunks of 4 bytes")))),
            ),
            IndexType::Uint64 => self
                .row_iter(bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8 bytes")))),
        }
    }

    /// A whole row's entries.
    pub(super) fn row(&mut self, indices: &[u64]) {
        if (indices.len() as u64) < self.long_run {
            return;
        }
        self.row_iter(indices.iter().copied());
    }

    #[inline]
    fn row_iter(&mut self, indices: impl Iterator<Item = u64>) {
        let bi = self.options.block_shape[1];
        // Runs are found in locals; only long ones reach the map.
        let (mut block, mut run) = (self.run_block, self.run);
        for i in indices {
            let b = i / bi;
            if b == block {
                run += 1;
            } else {
                if run >= self.long_run {
                    *self.counts.entry(block).or_default() += run;
                }
                block = b;
                run = 1;
            }
        }
        self.run_block = block;
        self.run = run;
    }

    /// The row at global outer index `outer` (band-local `local`) is complete.
    #[inline]
    pub(super) fn end_row(&mut self, outer: u64, local: u64) {
        self.end_run();
        if outer + 1 == self.group_end {
            self.close_group(local + 1);
            self.group_end += self.options.block_shape[0];
        }
    }

    /// Whether the group of rows being written may hold a dense block: the writer then keeps it in one
    /// segment (a block cut by a segment boundary would be stored as two padded blocks).
    pub(super) fn holds_candidate(&self) -> bool {
        !self.counts.is_empty()
    }

    /// The segment closes after band-local outer index `end - 1`.
    pub(super) fn finish(&mut self, end: u64) {
        if end > self.group_start {
            self.close_group(end);
        }
    }

    fn close_group(&mut self, end: u64) {
        // A block of height h and width w passing the threshold holds at least threshold x h x w
        // entries; its rows' runs shorter than `long_run` hold fewer than long_run x h of them, so its
        // long runs hold more than the difference.
        let height = end - self.group_start;
        let bi = self.options.block_shape[1];
        let mut found = 0u64;
        for (&block, &count) in &self.counts {
            let width = bi.min(self.inner_dim.saturating_sub(block * bi));
            let area = height * width;
            let need = self.options.threshold * area as f64 - (self.long_run * height) as f64;
            if area >= self.options.min_area() && count as f64 >= need {
                found += count;
            }
        }
        if found > 0 {
            self.candidates.push((self.group_start, end));
            self.estimated += found;
        }
        self.group_start = end;
        self.counts.clear();
    }
}

/// A rewritten array: its final path, size and checksum.
pub(super) struct Written {
    pub(super) path: PathBuf,
    pub(super) bytes: u64,
    pub(super) hash: u64,
}

/// What [`extract`] made of a segment.
pub(super) struct Extracted {
    pub(super) indptr: Written,
    pub(super) indices: Written,
    pub(super) values: Written,
    pub(super) origins: Written,
    pub(super) mask: Written,
    pub(super) dense_values: Written,
    pub(super) blocks: u64,
    pub(super) dense_nnz: u64,
}

/// The segment being extracted: its geometry and its arrays as written.
pub(super) struct SegmentArrays<'a> {
    /// Segment directory.
    pub(super) dir: &'a Path,
    /// Rows in the band.
    pub(super) band: u64,
    pub(super) inner_dim: u64,
    pub(super) index_type: IndexType,
    /// Bytes per value.
    pub(super) value_bytes: usize,
    /// Entries in the CSR arrays as written.
    pub(super) nnz: u64,
    /// `(path, bytes)` of the row pointers, indices and values as written.
    pub(super) indptr: (&'a Path, u64),
    pub(super) indices: (&'a Path, u64),
    pub(super) values: (&'a Path, u64),
}

/// Moves the dense blocks of `seg`'s candidate groups out of its CSR arrays; `None` when no block
/// passes the threshold (the segment is left as written). The chunk files must be complete on disk.
///
/// # Errors
///
/// [`Error::Io`] on read or write failures; [`Error::Corrupt`] if the written arrays are inconsistent
/// (a writer bug, reported rather than trusted).
pub(super) fn extract(
    seg: &SegmentArrays<'_>,
    candidates: &[(u64, u64)],
    options: &DenseOptions,
    io: &mut ChunkIo,
) -> Result<Option<Extracted>> {
    let ptr_map = MappedFile::open(seg.indptr.0, seg.indptr.1)?;
    let ix_map = MappedFile::open(seg.indices.0, seg.indices.1)?;
    let val_map = MappedFile::open(seg.values.0, seg.values.1)?;
    let ptr: &[u64] = cast_slice(ptr_map.bytes(), seg.indptr.0)?;
    let inconsistent = |what: &str| Error::corrupt(seg.dir, format!("segment as written: {what}"));
    if ptr.len() as u64 != seg.band + 1
        || ptr.first() != Some(&0)
        || ptr.last() != Some(&seg.nnz)
        || ptr.windows(2).any(|w| w[1] < w[0])
    {
        return Err(inconsistent("row pointers"));
    }
    let iw = seg.index_type.bytes() as usize;
    let vb = seg.value_bytes;
    let ix_bytes = ix_map.bytes();
    let val_bytes = val_map.bytes();
    if ix_bytes.len() as u64 != seg.nnz * iw as u64 || val_bytes.len() as u64 != seg.nnz * vb as u64 {
        return Err(inconsistent("array sizes"));
    }
    let index = |k: usize| -> u64 {
        match seg.index_type {
            IndexType::Uint32 => u64::from(u32::from_le_bytes(ix_bytes[k * 4..k * 4 + 4].try_into().expect("4 bytes"))),
            IndexType::Uint64 => u64::from_le_bytes(ix_bytes[k * 8..k * 8 + 8].try_into().expect("8 bytes")),
        }
    };
    let bi = options.block_shape[1];
    // Which blocks of each candidate group pass: decided before anything is written.
    let mut plan: Vec<(u64, u64, Vec<u64>)> = Vec::new();
    for &(g0, g1) in candidates {
        if g1 > seg.band || g0 >= g1 {
            return Err(inconsistent("candidate group outside the band"));
        }
        let mut counts: HashMap<u64, u64> = HashMap::new();
        for r in g0..g1 {
            let (lo, hi) = (ptr[r as usize] as usize, ptr[r as usize + 1] as usize);
            let mut k = lo;
            while k < hi {
                let block = index(k) / bi;
                let run_start = k;
                k += 1;
                while k < hi && index(k) / bi == block {
                    k += 1;
                }
                *counts.entry(block).or_default() += (k - run_start) as u64;
            }
        }
        let height = g1 - g0;
        let mut dense: Vec<u64> = counts
            .into_iter()
            .filter(|&(block, count)| {
                let width = bi.min(seg.inner_dim.saturating_sub(block * bi));
                options.is_dense(height * width, count)
            })
            .map(|(block, _)| block)
            .collect();
        if !dense.is_empty() {
            dense.sort_unstable();
            plan.push((g0, g1, dense));
        }
    }
    if plan.is_empty() {
        return Ok(None);
    }

    let tmp = |p: &Path| -> PathBuf {
        let mut s = p.as_os_str().to_owned();
        s.push(".dense-tmp");
        PathBuf::from(s)
    };
    // The same direct-I/O chunk files as the writer's own (no page-cache copy), checksummed on the way.
    let mut out_ptr = io.create(&tmp(seg.indptr.0))?;
    let mut out_ix = io.create(&tmp(seg.indices.0))?;
    let mut out_val = io.create(&tmp(seg.values.0))?;
    let mut dense_file = |array: &str, chunk: &str| -> Result<ChunkFile> {
        let path = seg.dir.join(array).join(chunk);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, "creating a segment directory", e))?;
        }
        io.create(&path)
    };
    let mut origins = dense_file(paths::DENSE_ORIGINS, paths::CHUNK_2D)?;
    let mut masks = dense_file(paths::DENSE_MASK, paths::CHUNK_2D)?;
    let mut dense_vals = dense_file(paths::DENSE_VALUES, paths::CHUNK_3D)?;

    let block_len = (options.block_area()) as usize;
    let words = block_len.div_ceil(64);
    let mut removed = 0u64;
    let mut blocks = 0u64;
    let mut pointers: Vec<u8> = Vec::with_capacity(1 << 16);
    pointers.extend_from_slice(&0u64.to_le_bytes());
    // Copies rows [from, to) unchanged (their entries shift by what earlier groups removed).
    let copy_rows = |from: u64,
                     to: u64,
                     removed: u64,
                     pointers: &mut Vec<u8>,
                     out_ix: &mut ChunkFile,
                     out_val: &mut ChunkFile|
     -> Result<()> {
        if from >= to {
            return Ok(());
        }
        let (lo, hi) = (ptr[from as usize] as usize, ptr[to as usize] as usize);
        out_ix.write(&ix_bytes[lo * iw..hi * iw])?;
        out_val.write(&val_bytes[lo * vb..hi * vb])?;
        for r in from + 1..=to {
            pointers.extend_from_slice(&(ptr[r as usize] - removed).to_le_bytes());
        }
        Ok(())
    };
    let mut next = 0u64;
    let mut block_vals = vec![0u8; BLOCK_WINDOW * block_len * vb];
    let mut block_mask = vec![0u64; BLOCK_WINDOW * words];
    for (g0, g1, dense) in &plan {
        let (g0, g1) = (*g0, *g1);
        copy_rows(next, g0, removed, &mut pointers, &mut out_ix, &mut out_val)?;
        // The rows of the group without the entries of its dense blocks.
        for r in g0..g1 {
            let (lo, hi) = (ptr[r as usize] as usize, ptr[r as usize + 1] as usize);
            let mut k = lo;
            while k < hi {
                // A run of kept entries, written at once.
                let keep_from = k;
                while k < hi && dense.binary_search(&(index(k) / bi)).is_err() {
                    k += 1;
                }
                out_ix.write(&ix_bytes[keep_from * iw..k * iw])?;
                out_val.write(&val_bytes[keep_from * vb..k * vb])?;
                while k < hi && dense.binary_search(&(index(k) / bi)).is_ok() {
                    k += 1;
                    removed += 1;
                }
            }
            pointers.extend_from_slice(&(ptr[r as usize + 1] - removed).to_le_bytes());
        }
        // The blocks, a window at a time.
        for window in dense.chunks(BLOCK_WINDOW) {
            let used_vals = window.len() * block_len * vb;
            block_vals[..used_vals].iter_mut().for_each(|b| *b = 0);
            block_mask[..window.len() * words].iter_mut().for_each(|w| *w = 0);
            let mut counts = vec![0u64; window.len()];
            let (first_col, end_col) = (window[0] * bi, (window[window.len() - 1] + 1) * bi);
            for r in g0..g1 {
                let o = (r - g0) as usize;
                let (lo, hi) = (ptr[r as usize] as usize, ptr[r as usize + 1] as usize);
                // First entry at or past the window's first column.
                let (mut a, mut b) = (lo, hi);
                while a < b {
                    let m = a + (b - a) / 2;
                    if index(m) < first_col {
                        a = m + 1;
                    } else {
                        b = m;
                    }
                }
                let mut w = 0usize;
                let mut k = a;
                while k < hi {
                    let col = index(k);
                    if col >= end_col {
                        break;
                    }
                    let block = col / bi;
                    while w < window.len() && window[w] < block {
                        w += 1;
                    }
                    if w < window.len() && window[w] == block {
                        // A run of consecutive columns inside the block: its values move in one copy.
                        let block_end = (block + 1) * bi;
                        let mut e = k + 1;
                        while e < hi && index(e) == col + (e - k) as u64 && col + ((e - k) as u64) < block_end {
                            e += 1;
                        }
                        let p = o * bi as usize + (col - block * bi) as usize;
                        let at = (w * block_len + p) * vb;
                        let run = e - k;
                        block_vals[at..at + run * vb].copy_from_slice(&val_bytes[k * vb..e * vb]);
                        for q in p..p + run {
                            block_mask[w * words + q / 64] |= 1u64 << (q % 64);
                        }
                        counts[w] += run as u64;
                        k = e;
                        continue;
                    }
                    k += 1;
                }
            }
            for (w, &block) in window.iter().enumerate() {
                for v in [g0, block * bi, counts[w]] {
                    origins.write(&v.to_le_bytes())?;
                }
                // Little-endian words: the crate builds for little-endian targets only (storage).
                masks.write(bytemuck::cast_slice(&block_mask[w * words..(w + 1) * words]))?;
                dense_vals.write(&block_vals[w * block_len * vb..(w + 1) * block_len * vb])?;
                blocks += 1;
            }
        }
        next = g1;
    }
    copy_rows(next, seg.band, removed, &mut pointers, &mut out_ix, &mut out_val)?;
    out_ptr.write(&pointers)?;

    // Renamed while the write thread may still be writing them: it writes through its descriptors, and
    // nothing is published before the writer's final barrier.
    let finish_array = |file: ChunkFile, final_path: &Path| -> Result<Written> {
        let tmp_path = file.path().to_path_buf();
        let (bytes, hash) = file.finish()?;
        if bytes == 0 {
            // Zarr: an empty array has no chunk.
            fs::remove_file(&tmp_path).map_err(|e| Error::io(&tmp_path, "removing an empty chunk", e))?;
            let _ = fs::remove_file(final_path);
        } else {
            fs::rename(&tmp_path, final_path).map_err(|e| Error::io(final_path, "replacing a chunk", e))?;
        }
        Ok(Written { path: final_path.to_path_buf(), bytes, hash })
    };
    let indptr = finish_array(out_ptr, seg.indptr.0)?;
    let indices = finish_array(out_ix, seg.indices.0)?;
    let values = finish_array(out_val, seg.values.0)?;
    let finish_dense = |file: ChunkFile| -> Result<Written> {
        let path = file.path().to_path_buf();
        let (bytes, hash) = file.finish()?;
        Ok(Written { path, bytes, hash })
    };
    Ok(Some(Extracted {
        indptr,
        indices,
        values,
        origins: finish_dense(origins)?,
        mask: finish_dense(masks)?,
        dense_values: finish_dense(dense_vals)?,
        blocks,
        dense_nnz: removed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_groups_with_long_runs_in_one_block_column_are_candidates() {
        let options = DenseOptions { threshold: 0.5, block_shape: [4, 8] };
        let mut scan = DenseScan::new(options, 0, 64);
        // Rows 0..4: columns 8..16 full (one block column, runs of 8): a candidate.
        for r in 0..4 {
            scan.row(&(8..16).collect::<Vec<_>>());
            scan.end_row(r, r);
        }
        // Rows 4..8: 8 entries each, spread over block columns (runs of 1): not one.
        for r in 4..8 {
            scan.row(&(0..8).map(|i| i * 8).collect::<Vec<_>>());
            scan.end_row(r, r);
        }
        // Rows 8..12, entry by entry: columns 0..4 of block column 0, a half-full block.
        for r in 8..12 {
            (0..4).for_each(|c| scan.entry(c));
            scan.end_row(r, r);
        }
        scan.finish(12);
        assert_eq!(scan.candidates, vec![(0, 4), (8, 12)]);
    }

    #[test]
    fn options_are_checked() {
        assert!(DenseOptions::default().check().is_ok());
        assert!(DenseOptions { threshold: 0.0, ..Default::default() }.check().is_err());
        assert!(DenseOptions { threshold: 1.5, ..Default::default() }.check().is_err());
        assert!(DenseOptions { threshold: f64::NAN, ..Default::default() }.check().is_err());
        assert!(DenseOptions { block_shape: [0, 64], ..Default::default() }.check().is_err());
        assert!(DenseOptions { block_shape: [64, 5000], ..Default::default() }.check().is_err());
    }
}
