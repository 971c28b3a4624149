//! Running a product: the driver that loads each block of `B`, streams `A` past it band by band
//! (tasks of equal flops on the thread pool, the band writer overlapping, or the bands appended to
//! arrays in memory), and merges the partial products of a blocked product into `C`; and the row
//! loop of a task, which gathers the rows of `B` a row of `A` selects and hands them to the
//! accumulator [`choose`] picks.

use super::accum::{dense_row, hash_row, sort_row, window_row, Acc};
use super::band::{compute_while_writing, write_band, Emit, MemoryOut, TaskOut};
use super::block::{BlockStore, RightBlock};
use super::plan::{band_end, choose, row_flops, split_by_work, Kind, Plan};
use super::ring::Ring;
use super::{Accumulator, SpgemmOptions};
use crate::element::match_indices;
use crate::element::Element;
use crate::element::StoredIndex;
use crate::error::{Error, Result};
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

/// A product's arrays held in memory: row pointers, inner indices, values.
pub(super) type Computed<I, T> = (Vec<usize>, Vec<I>, Vec<T>);

/// Where a pass's bands go.
enum Out<'w, I, T: Element> {
    /// Written by a helper thread while the next band is computed.
    Writer(&'w mut MatrixWriter<T>),
    /// Appended to arrays in memory by the pool, after each band.
    Memory(&'w mut MemoryOut<I, T>),
}

/// Most flops in one band of a product held in memory: its tasks' buffers (up to 12 bytes a flop)
/// stay in the caches until they are copied into the product's arrays.
const MEMORY_BAND_FLOPS: u64 = 256 << 10;

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
        let Plan { avail, blocks, dense_ok, band_flops, .. } =
            Plan::new::<I, T>(self.left, self.right, inner_dim, self.options)?;
        stats.blocks = blocks.len() as u64;
        let total_rows = outer_dim * blocks.len() as u64;
        let done_rows = AtomicU64::new(0);
        let mut pass = |block: &RightBlock<'_, I, T>, writer: &mut MatrixWriter<T>, drop_zeros: bool| -> Result<()> {
            let p = Pass { block, inner_dim, k_dim, dense_ok, drop_zeros, accumulator: self.options.accumulator };
            stats.flops +=
                self.multiply_pass::<I, T, R>(&p, Out::Writer(writer), band_flops, &done_rows, total_rows, Vec::new())?;
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

    /// The product held in memory: the same plan, block of `B` and row kernels as [`run`](Self::run),
    /// the bands appended to arrays instead of written. `B` must fit in one block; the arrays within
    /// what the budget leaves (else [`Error::InvalidInput`]).
    pub(super) fn run_in_memory<I: StoredIndex, T: Element, R: Ring<T>>(
        &self,
        stats: &mut OpStats,
    ) -> Result<Computed<I, T>> {
        let (outer_dim, inner_dim) = self.layout.outer_inner(self.shape);
        let k_dim = self.right.layout().outer_inner(self.right.shape()).0;
        let plan = Plan::new::<I, T>(self.left, self.right, inner_dim, self.options)?;
        let budget = self.options.op.memory_budget;
        if plan.blocks.len() > 1 {
            let need: u64 = plan.blocks.iter().map(|b| b.2).sum();
            return Err(Error::invalid(format!(
                "the right operand takes {} in memory, more than its share of the memory budget of {}: \
                 raise the budget, or write the product to disk (spgemm, which cuts it into blocks)",
                crate::units::format_bytes(need),
                crate::units::format_bytes(budget)
            )));
        }
        stats.blocks = 1;
        let band_flops = plan.band_flops.min(MEMORY_BAND_FLOPS);
        let entry = (std::mem::size_of::<I>() + std::mem::size_of::<T>()) as u64;
        // The row pointers, then the entries within what the plan leaves for output.
        let indptr_bytes = (outer_dim + 1) * 8;
        let limit = plan.out_budget.saturating_sub(indptr_bytes + 2 * band_flops * entry) / entry.max(1);
        if indptr_bytes > plan.out_budget {
            return Err(Error::invalid(format!(
                "the product's {} row pointers alone exceed what the memory budget of {} leaves for it: \
                 raise the budget, or write the product to disk (spgemm)",
                outer_dim,
                crate::units::format_bytes(budget)
            )));
        }
        let limit = if entry == 0 { usize::MAX } else { usize::try_from(limit).unwrap_or(usize::MAX) };
        let mut out = MemoryOut::new(outer_dim as usize, limit, budget);
        let store = BlockStore::<I, T>::load(self.right, 0, k_dim)?;
        let block = store.view();
        let p = Pass {
            block: &block,
            inner_dim,
            k_dim,
            dense_ok: plan.dense_ok,
            drop_zeros: self.options.drop_zeros,
            accumulator: self.options.accumulator,
        };
        // The flops of every row first: their sum bounds the product's entries, so that its arrays are
        // allocated once (growing them would copy them into fresh pages, faulted in 4 KiB at a time).
        let mut flops = Vec::with_capacity(self.left.segments().len());
        for si in 0..self.left.segments().len() {
            let seg = self.left.map_segment(si)?;
            seg.check_row_pointers()?;
            flops.push(row_flops(&seg, block.rows(), k_dim)?);
        }
        out.reserve(flops.iter().flatten().sum::<u64>())?;
        let done_rows = AtomicU64::new(0);
        stats.flops +=
            self.multiply_pass::<I, T, R>(&p, Out::Memory(&mut out), band_flops, &done_rows, outer_dim, flops)?;
        Ok((out.indptr, out.cols, out.vals))
    }

    /// One sequential pass over the left operand against one block of the right. Returns the flops.
    /// `flops`: the per-row flops of each segment when already computed (else empty).
    fn multiply_pass<I: StoredIndex, T: Element, R: Ring<T>>(
        &self,
        p: &Pass<'_, I, T>,
        mut out: Out<'_, I, T>,
        band_flops: u64,
        done_rows: &AtomicU64,
        total_rows: u64,
        flops: Vec<Vec<u64>>,
    ) -> Result<u64> {
        let mut flops = flops.into_iter();
        let pool: Mutex<Vec<Acc<I, T>>> = Mutex::new(Vec::new());
        let spare: Mutex<Vec<TaskOut<I, T>>> = Mutex::new(Vec::new());
        let mut pending: Option<Vec<TaskOut<I, T>>> = None;
        let mut flops_total = 0u64;
        let threads = rayon::current_num_threads();
        for si in 0..self.left.segments().len() {
            let seg = self.left.map_segment(si)?;
            seg.check_row_pointers()?;
            seg.advise(Advice::Sequential);
            let row_flops = match flops.next() {
                Some(f) => f,
                None => row_flops(&seg, p.block.rows(), p.k_dim)?,
            };
            let rows = row_flops.len();
            let mut r0 = 0;
            while r0 < rows {
                // Once per band (at most BAND_FLOPS of work).
                crate::interrupt::check()?;
                let (r1, f) = band_end(&row_flops, r0, band_flops);
                flops_total += f;
                let tasks = split_by_work(&row_flops[r0..r1], 4 * threads, r0);
                let compute = || {
                    tasks
                        .par_iter()
                        .map(|&(a, b)| run_task::<I, T, R>(&seg, a, b, &row_flops, p, &pool, &spare))
                        .collect::<Vec<_>>()
                };
                let outs = match &mut out {
                    Out::Writer(writer) => compute_while_writing(writer, pending.take(), &spare, compute)?,
                    Out::Memory(_) => compute(),
                };
                if outs.iter().any(|o| o.bad) {
                    return Err(corrupt_index(&seg, "an index lies outside the matrix"));
                }
                match &mut out {
                    Out::Writer(_) => pending = Some(outs),
                    Out::Memory(m) => m.append(outs, &spare)?,
                }
                let done = done_rows.fetch_add((r1 - r0) as u64, Ordering::Relaxed) + (r1 - r0) as u64;
                if let Some(progress) = self.progress {
                    progress(OpProgress { phase: "multiply", done, total: total_rows });
                }
                r0 = r1;
            }
        }
        if let (Some(band), Out::Writer(writer)) = (pending.take(), &mut out) {
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
    out.room(work as usize);
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
    let mut bad = false;
    let mut emit = Emit::new(&mut out.cols, &mut out.vals, out.len, p.drop_zeros);
    // The rows of B a row of A selects, with A's value: gathered once, so that the kernels below
    // loop over plain slices.
    let mut sel: Vec<(&[I], &[T], T)> = Vec::new();
    for (r, &flops) in row_flops.iter().enumerate() {
        let (s, e) = ((indptr[r] - base) as usize, (indptr[r + 1] - base) as usize);
        let before = emit.n;
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
                Kind::Sort => sort_row::<I, T, R>(&sel, acc, &mut emit),
                Kind::Hash => hash_row::<I, T, R>(&sel, flops, ncols, acc, &mut emit),
                Kind::Dense => dense_row::<I, T, R>(&sel, ncols, acc, &mut emit),
                Kind::Window => window_row::<I, T, R>(&sel, first, width, acc, &mut emit),
            }
        }
        out.counts.push((emit.n - before) as u64);
    }
    out.len = emit.n;
    !bad
}
