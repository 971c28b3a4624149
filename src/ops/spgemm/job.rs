//! Running a product: the driver that loads each block of `B`, streams `A` past it band by band
//! (tasks of equal flops on the thread pool, the band writer overlapping), and merges the partial
//! products of a blocked product into `C`; and the row loop of a task, which gathers the rows of
//! `B` a row of `A` selects and hands them to the accumulator [`choose`] picks.

use super::accum::{dense_row, hash_row, sort_row, window_row, Acc};
use super::band::{compute_while_writing, write_band, TaskOut};
use super::block::{BlockStore, RightBlock};
use super::plan::{band_end, choose, row_flops, split_by_work, Kind, Plan};
use super::ring::Ring;
use super::{Accumulator, SpgemmOptions};
use crate::element::match_indices;
use crate::element::Element;
use crate::element::StoredIndex;
use crate::error::Result;
use crate::format::Layout;
use crate::matrix::Matrix;
use crate::ops::merge::merge_into;
use crate::ops::{corrupt_index, OpProgress, OpStats, ProgressFn, Scratch};
use crate::segment::MappedSegment;
use crate::writer::MatrixWriter;
use memmap2::Advice;
use rayon::prelude::*;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Everything a product needs to know.
pub(super) struct Job<'a> {
    pub(super) left: &'a Matrix,
    pub(super) right: &'a Matrix,
    pub(super) shape: (u64, u64),
    pub(super) layout: Layout,
    pub(super) options: &'a SpgemmOptions,
    pub(super) progress: Option<ProgressFn<'a>>,
}

/// What the row kernels share within one pass.
struct Pass<'b, I, T> {
    block: &'b RightBlock<'b, I, T>,
    inner_dim: u64,
    k_dim: u64,
    dense_ok: bool,
    drop_zeros: bool,
    accumulator: Accumulator,
}

impl Job<'_> {
    pub(super) fn run<I: StoredIndex, T: Element, R: Ring<T>>(
        &self,
        scratch: &mut Scratch,
        stats: &mut OpStats,
    ) -> Result<Matrix> {
        let (outer_dim, inner_dim) = self.layout.outer_inner(self.shape);
        let k_dim = self.right.layout().outer_inner(self.right.shape()).0;
        let Plan { avail, blocks, dense_ok, band_flops } =
            Plan::new::<I, T>(self.left, self.right, inner_dim, self.options)?;
        stats.blocks = blocks.len() as u64;
        let total_rows = outer_dim * blocks.len() as u64;
        let done_rows = AtomicU64::new(0);
        let mut pass = |block: &RightBlock<'_, I, T>, writer: &mut MatrixWriter<T>, drop_zeros: bool| -> Result<()> {
            let p = Pass { block, inner_dim, k_dim, dense_ok, drop_zeros, accumulator: self.options.accumulator };
            stats.flops += self.multiply_pass::<I, T, R>(&p, writer, band_flops, &done_rows, total_rows)?;
            Ok(())
        };
        let out_writer =
            |dir: &Path| MatrixWriter::<T>::create(dir, self.shape, self.layout, self.options.op.writer.clone());
        if blocks.len() == 1 {
            let store = BlockStore::<I, T>::load(self.right, 0, k_dim)?;
            let block = store.view();
            let mut writer = out_writer(scratch_out(scratch))?;
            pass(&block, &mut writer, self.options.drop_zeros)?;
            return writer.finish();
        }
        // Out of core: one partial product per block of B's rows, then a merge.
        let seg_bytes = (avail / 4 / blocks.len().min(64) as u64).clamp(1 << 20, 64 << 20);
        let mut partials = Vec::with_capacity(blocks.len());
        for &(k0, k1, _) in &blocks {
            let store = BlockStore::<I, T>::load(self.right, k0, k1)?;
            let block = store.view();
            let dir = scratch.path("partial")?;
            let mut writer =
                MatrixWriter::<T>::create(&dir, self.shape, self.layout, Scratch::writer_options(seg_bytes))?;
            pass(&block, &mut writer, false)?;
            partials.push(writer.finish()?);
        }
        // Cascade: at most 64 partials are read at once.
        while partials.len() > 64 {
            let mut next = Vec::new();
            for group in partials.chunks(64) {
                let dir = scratch.path("merged")?;
                let mut w =
                    MatrixWriter::<T>::create(&dir, self.shape, self.layout, Scratch::writer_options(seg_bytes))?;
                let refs: Vec<&Matrix> = group.iter().collect();
                merge_into(&refs, |_, v| v, R::add, false, &mut w, "merge", self.progress)?;
                next.push(w.finish()?);
                for m in group {
                    let _ = std::fs::remove_dir_all(m.dir());
                }
            }
            partials = next;
        }
        let mut writer = out_writer(scratch_out(scratch))?;
        let refs: Vec<&Matrix> = partials.iter().collect();
        merge_into(&refs, |_, v| v, R::add, self.options.drop_zeros, &mut writer, "merge", self.progress)?;
        writer.finish()
    }

    /// One sequential pass over the left operand against one block of the right. Returns the flops.
    fn multiply_pass<I: StoredIndex, T: Element, R: Ring<T>>(
        &self,
        p: &Pass<'_, I, T>,
        writer: &mut MatrixWriter<T>,
        band_flops: u64,
        done_rows: &AtomicU64,
        total_rows: u64,
    ) -> Result<u64> {
        let pool: Mutex<Vec<Acc<I, T>>> = Mutex::new(Vec::new());
        let spare: Mutex<Vec<TaskOut<I, T>>> = Mutex::new(Vec::new());
        let mut pending: Option<Vec<TaskOut<I, T>>> = None;
        let mut flops_total = 0u64;
        let threads = rayon::current_num_threads();
        for si in 0..self.left.segments().len() {
            let seg = self.left.map_segment(si)?;
            seg.check_row_pointers()?;
            seg.advise(Advice::Sequential);
            let row_flops = row_flops(&seg, p.block.rows(), p.k_dim)?;
            let rows = row_flops.len();
            let mut r0 = 0;
            while r0 < rows {
                // Once per band (at most BAND_FLOPS of work).
                crate::interrupt::check()?;
                let (r1, f) = band_end(&row_flops, r0, band_flops);
                flops_total += f;
                let tasks = split_by_work(&row_flops[r0..r1], 4 * threads, r0);
                let outs = compute_while_writing(writer, pending.take(), &spare, || {
                    tasks
                        .par_iter()
                        .map(|&(a, b)| run_task::<I, T, R>(&seg, a, b, &row_flops, p, &pool, &spare))
                        .collect()
                })?;
                if outs.iter().any(|o| o.bad) {
                    return Err(corrupt_index(&seg, "an index lies outside the matrix"));
                }
                pending = Some(outs);
                let done = done_rows.fetch_add((r1 - r0) as u64, Ordering::Relaxed) + (r1 - r0) as u64;
                if let Some(progress) = self.progress {
                    progress(OpProgress { phase: "multiply", done, total: total_rows });
                }
                r0 = r1;
            }
        }
        if let Some(band) = pending.take() {
            write_band(writer, band, &spare)?;
        }
        Ok(flops_total)
    }
}

/// The output directory (the scratch area is only for intermediates).
fn scratch_out(scratch: &Scratch) -> &Path {
    &scratch.out
}

/// Computes rows `a..b` (segment-local) of the product.
fn run_task<I: StoredIndex, T: Element, R: Ring<T>>(
    seg: &MappedSegment,
    a: usize,
    b: usize,
    row_flops: &[u64],
    p: &Pass<'_, I, T>,
    pool: &Mutex<Vec<Acc<I, T>>>,
    spare: &Mutex<Vec<TaskOut<I, T>>>,
) -> TaskOut<I, T> {
    let mut acc = pool.lock().map(|mut v| v.pop()).unwrap_or(None).unwrap_or_else(Acc::new);
    let work: u64 = row_flops[a..b].iter().sum();
    // Recycled buffers (their pages are already mapped), sized for the worst case: no column repeats.
    let mut out = TaskOut::reuse(spare);
    out.counts.reserve(b - a);
    out.cols.reserve(work as usize);
    out.vals.reserve(work as usize);
    let indptr = &seg.indptr()[a..=b];
    let (lo, hi) = (indptr[0] as usize, indptr[b - a] as usize);
    // A's values as `T`, read in place when stored so, else converted once per task (not per entry).
    let converted;
    let avals: &[T] = match T::stored(seg.values()).and_then(|v| v.get(lo..hi)) {
        Some(v) => v,
        None => {
            let vals = seg.values();
            converted = (lo..hi).map(|k| vals.get::<T>(k)).collect::<Vec<T>>();
            &converted
        }
    };
    // One dispatch on A's index width per task, so that the row loop reads a plain slice.
    let ok = match_indices!(seg.indices(), |ix| ix.get(lo..hi).map(|ix| task_rows::<_, I, T, R>(
        ix,
        avals,
        indptr,
        p,
        &row_flops[a..b],
        &mut acc,
        &mut out
    )));
    out.bad |= ok != Some(true);
    if let Ok(mut v) = pool.lock() {
        v.push(acc);
    }
    out
}

/// The rows of a task: `ix` and `avals` hold A's entries from `indptr[0]` on. False when an index
/// lies outside the matrix.
#[inline(always)]
fn task_rows<K: Copy + Into<u64>, I: StoredIndex, T: Element, R: Ring<T>>(
    ix: &[K],
    avals: &[T],
    indptr: &[u64],
    p: &Pass<'_, I, T>,
    row_flops: &[u64],
    acc: &mut Acc<I, T>,
    out: &mut TaskOut<I, T>,
) -> bool {
    let rows = p.block.rows();
    let base = indptr[0];
    let ncols = p.inner_dim as usize;
    let drop_zeros = p.drop_zeros;
    let mut bad = false;
    // The rows of B a row of A selects, with A's value: gathered once, so that the kernels below
    // loop over plain slices.
    let mut sel: Vec<(&[I], &[T], T)> = Vec::new();
    for (r, &flops) in row_flops.iter().enumerate() {
        let (s, e) = ((indptr[r] - base) as usize, (indptr[r + 1] - base) as usize);
        let before = out.cols.len();
        sel.clear();
        // The columns the row's products span: B's rows are sorted (checked at load).
        let (mut first, mut last) = (usize::MAX, 0usize);
        for (&k, &av) in ix[s..e].iter().zip(&avals[s..e]) {
            let local = k.into().wrapping_sub(rows.k0);
            if local < rows.len {
                let (bc, bv) = rows.row(local as usize);
                if let (Some(f), Some(l)) = (bc.first(), bc.last()) {
                    first = first.min(f.as_usize());
                    last = last.max(l.as_usize());
                    sel.push((bc, bv, av));
                }
            } else {
                bad |= k.into() >= p.k_dim;
            }
        }
        let width = (last + 1).saturating_sub(first);
        if !sel.is_empty() {
            match choose::<T>(p.accumulator, p.dense_ok, flops, width, ncols) {
                Kind::Sort => sort_row::<I, T, R>(&sel, acc, out, drop_zeros),
                Kind::Hash => hash_row::<I, T, R>(&sel, flops, ncols, acc, out, drop_zeros),
                Kind::Dense => dense_row::<I, T, R>(&sel, ncols, acc, out, drop_zeros),
                Kind::Window => window_row::<I, T, R>(&sel, first, width, acc, out, drop_zeros),
            }
        }
        out.counts.push((out.cols.len() - before) as u64);
    }
    !bad
}
