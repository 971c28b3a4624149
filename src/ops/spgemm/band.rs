//! Where a band's rows go: the rows a task computed ([`TaskOut`]); the helper thread that writes one
//! band of the product, in order and in a few large writes per task, while the next band is
//! computed; or the growing arrays of a product held in memory ([`MemoryOut`]). Written buffers go
//! back to a spare list for the next band's tasks.

use crate::element::Element;
use crate::element::StoredIndex;
use crate::error::{Error, Result};
use crate::units::format_bytes;
use crate::writer::MatrixWriter;
use rayon::prelude::*;
use std::mem::MaybeUninit;
use std::sync::Mutex;

/// The rows a task computed: `counts` entries per row, their columns and values in
/// `cols[..len]` and `vals[..len]`. The arrays keep their length (initialised) from task to task, so
/// that the kernels write entries by index with no capacity check per entry.
pub(super) struct TaskOut<I, T> {
    pub(super) counts: Vec<u64>,
    pub(super) cols: Vec<I>,
    pub(super) vals: Vec<T>,
    pub(super) len: usize,
    pub(super) bad: bool,
}

impl<I: StoredIndex, T: Element> TaskOut<I, T> {
    /// A recycled buffer from `spare` (its pages already mapped), else a new one.
    pub(super) fn reuse(spare: &Mutex<Vec<TaskOut<I, T>>>) -> Self {
        spare.lock().map(|mut v| v.pop()).unwrap_or(None).unwrap_or_else(|| TaskOut {
            counts: Vec::new(),
            cols: Vec::new(),
            vals: Vec::new(),
            len: 0,
            bad: false,
        })
    }

    /// Room for `entries` more entries.
    pub(super) fn room(&mut self, entries: usize) {
        let need = self.len + entries;
        if self.cols.len() < need {
            self.cols.resize(need, I::ZERO);
            self.vals.resize(need, T::default());
        }
    }

    /// The entries written.
    pub(super) fn entries(&self) -> (&[I], &[T]) {
        (&self.cols[..self.len], &self.vals[..self.len])
    }
}

/// Writes a task's entries by index into its arrays: the count stays in a register through a row's
/// kernel (a `Vec::push` stores its length back to memory at every entry).
pub(super) struct Emit<'a, I, T> {
    cols: &'a mut [I],
    vals: &'a mut [T],
    pub(super) n: usize,
    drop_zeros: bool,
}

impl<'a, I: StoredIndex, T: Element> Emit<'a, I, T> {
    /// Writes from entry `n` of `cols` and `vals`, which have room for every entry to come.
    pub(super) fn new(cols: &'a mut [I], vals: &'a mut [T], n: usize, drop_zeros: bool) -> Self {
        Emit { cols, vals, n, drop_zeros }
    }

    /// Appends an entry; a zero is written but not counted when zeros are dropped. The test is a
    /// branch taken the same way for the whole product, so that keeping zeros costs no comparison.
    #[inline(always)]
    pub(super) fn emit(&mut self, c: I, v: T) {
        self.cols[self.n] = c;
        self.vals[self.n] = v;
        if !self.drop_zeros {
            self.n += 1;
        } else {
            self.n += !v.is_zero() as usize;
        }
    }
}

/// Runs `compute` (the next band) on this thread while a helper thread writes `pending` (the band
/// before, if any); returns what `compute` made once both are done.
pub(super) fn compute_while_writing<I: StoredIndex, T: Element>(
    writer: &mut MatrixWriter<T>,
    pending: Option<Vec<TaskOut<I, T>>>,
    spare: &Mutex<Vec<TaskOut<I, T>>>,
    compute: impl FnOnce() -> Vec<TaskOut<I, T>>,
) -> Result<Vec<TaskOut<I, T>>> {
    std::thread::scope(|s| -> Result<Vec<TaskOut<I, T>>> {
        let w = pending.map(|band| s.spawn(|| write_band(writer, band, spare)));
        let outs = compute();
        if let Some(w) = w {
            w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))?;
        }
        Ok(outs)
    })
}

/// Writes a band's rows, in order.
pub(super) fn write_band<I: StoredIndex, T: Element>(
    writer: &mut MatrixWriter<T>,
    band: Vec<TaskOut<I, T>>,
    spare: &Mutex<Vec<TaskOut<I, T>>>,
) -> Result<()> {
    for task in &band {
        let (cols, vals) = task.entries();
        writer.push_rows_encoded(&task.counts, bytemuck::cast_slice::<I, u8>(cols), T::le_bytes(vals))?;
    }
    recycle(band, spare);
    Ok(())
}

/// A product held in memory: CSR (or CSC) arrays that grow band by band, within a bound on their
/// bytes.
pub(super) struct MemoryOut<I, T> {
    pub(super) indptr: Vec<usize>,
    pub(super) cols: Vec<I>,
    pub(super) vals: Vec<T>,
    /// Most entries the budget allows.
    limit: usize,
    /// The budget, for the error message.
    budget: u64,
}

impl<I: StoredIndex, T: Element> MemoryOut<I, T> {
    /// Empty arrays for `outer_dim` rows, at most `limit` entries (`budget`: the caller's budget).
    pub(super) fn new(outer_dim: usize, limit: usize, budget: u64) -> Self {
        let mut indptr = Vec::with_capacity(outer_dim + 1);
        crate::storage::advise_huge_pages(&mut indptr);
        indptr.push(0);
        MemoryOut { indptr, cols: Vec::new(), vals: Vec::new(), limit, budget }
    }

    /// Allocates room for `entries` (at most the limit), once.
    pub(super) fn reserve(&mut self, entries: u64) -> Result<()> {
        let n = usize::try_from(entries).unwrap_or(usize::MAX).min(self.limit);
        let failed = |_| Error::invalid(format!("cannot allocate room for {n} entries of the product"));
        self.cols.try_reserve_exact(n).map_err(failed)?;
        self.vals.try_reserve_exact(n).map_err(failed)?;
        crate::storage::advise_huge_pages(&mut self.cols);
        crate::storage::advise_huge_pages(&mut self.vals);
        Ok(())
    }

    /// Appends a band's rows, in order: the entries are copied by the pool's threads, each task's
    /// into its own part of the arrays. Fails, before copying anything, when the product would
    /// outgrow the budget.
    pub(super) fn append(&mut self, band: Vec<TaskOut<I, T>>, spare: &Mutex<Vec<TaskOut<I, T>>>) -> Result<()> {
        let add: usize = band.iter().map(|t| t.len).sum();
        let len = self.cols.len();
        if len + add > self.limit {
            let entry = (std::mem::size_of::<I>() + std::mem::size_of::<T>()) as u64;
            return Err(Error::invalid(format!(
                "the product has more than {} entries ({} in memory), more than the memory budget of {} \
                 allows: raise the budget, or write the product to disk (spgemm)",
                len + add,
                format_bytes((len + add) as u64 * entry),
                format_bytes(self.budget)
            )));
        }
        if len + add > self.cols.capacity() {
            // Doubling, within the limit: growing a large allocation remaps its pages (no copy).
            let target = (2 * self.cols.capacity()).max(len + add).max(1 << 16).min(self.limit);
            self.cols.reserve_exact(target - len);
            self.vals.reserve_exact(target - len);
            crate::storage::advise_huge_pages(&mut self.cols);
            crate::storage::advise_huge_pages(&mut self.vals);
        }
        let mut end = *self.indptr.last().unwrap_or(&0);
        for task in &band {
            self.indptr.extend(task.counts.iter().map(|&c| {
                end += c as usize;
                end
            }));
        }
        // Each task's part of the spare capacity, written by one thread.
        let mut parts = Vec::with_capacity(band.len());
        let (mut cols, mut vals) =
            (&mut self.cols.spare_capacity_mut()[..add], &mut self.vals.spare_capacity_mut()[..add]);
        for task in &band {
            let n = task.len;
            let (c, rest_c) = std::mem::take(&mut cols).split_at_mut(n);
            let (v, rest_v) = std::mem::take(&mut vals).split_at_mut(n);
            (cols, vals) = (rest_c, rest_v);
            parts.push((c, v, task));
        }
        parts.into_par_iter().for_each(|(c, v, task)| {
            let (cols, vals) = task.entries();
            copy_into(c, cols);
            copy_into(v, vals);
        });
        // SAFETY: the parts above split `..add` of both arrays' spare capacity exactly (their lengths
        // sum to `add`), and every part was written in full by `copy_into`.
        unsafe {
            self.cols.set_len(len + add);
            self.vals.set_len(len + add);
        }
        recycle(band, spare);
        Ok(())
    }
}

/// Copies `src` into the uninitialised `dst` of the same length.
fn copy_into<E: Copy>(dst: &mut [MaybeUninit<E>], src: &[E]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(s);
    }
}

/// Clears a band's buffers and puts them back on the spare list.
fn recycle<I, T>(band: Vec<TaskOut<I, T>>, spare: &Mutex<Vec<TaskOut<I, T>>>) {
    for mut task in band {
        task.counts.clear();
        task.len = 0;
        task.bad = false;
        if let Ok(mut v) = spare.lock() {
            v.push(task);
        }
    }
}
