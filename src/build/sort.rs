//! The in-memory chunk, bucketed as it fills, and its parallel, stable, cache-friendly sort.
//!
//! A most-significant-digit radix sort whose first pass happens while the chunk fills:
//!
//! 1. **Bucket on arrival.** [`Chunk::push`] appends each entry to the bucket of its outer index
//!    (`outer >> shift`; at most [`MAX_BUCKETS`] buckets of consecutive outer indices). A bucket is a list
//!    of fixed-size blocks taken from a pool that is reused from chunk to chunk, so filling a chunk costs
//!    no copy and, after the first chunk, no fresh memory. When the outer dimension is not known in
//!    advance (edge lists), `shift` starts at 0 and doubles whenever an index does not fit, merging
//!    neighbouring buckets by concatenating their block lists; entries of one outer index always share
//!    a bucket, so their input order survives.
//! 2. **Sort each bucket** in parallel, in order: a counting sort by outer index (the COO -> CSR
//!    conversion, as scipy's `coo_tocsr`) into a per-worker scratch buffer, then each outer index's
//!    entries by inner index with a stable sort (insertion sort for short rows); duplicates are combined
//!    on the way out. A bucket whose outer range is far wider than its entry count (a few entries of a
//!    matrix with billions of rows) uses a stable comparison sort instead, so no histogram outgrows the
//!    data.
//! 3. **Emit in order**, a window of buckets at a time; the caller's sequential work on one window
//!    (writing the matrix or a run) overlaps the sorting of the next.
//!
//! Equal `(outer, inner)` entries stay in input order, which the `first` / `last` policies and an
//! order-exact `sum` rely on. No unsafe code: every thread owns what it writes.

use super::{Combine, Entry};
use crate::element::Element;
use crate::error::Result;
use rayon::prelude::*;
use std::sync::Mutex;

/// Entries per block: 24 KiB for `f64` entries; small enough that the partly filled last block of
/// every bucket wastes little, large enough that block bookkeeping is negligible.
const BLOCK: usize = 1024;

/// Most buckets a chunk uses.
pub(crate) const MAX_BUCKETS: usize = 2048;

/// Target entries per bucket (about 768 KiB of `f64` entries: a core's L2 cache).
const BUCKET_ENTRIES: usize = 1 << 15;

/// Triplets waiting to be sorted, bucketed by outer index as they arrive.
pub(crate) struct Chunk<V> {
    /// `bucket = outer >> shift`.
    shift: u32,
    /// Block ids of each bucket, in arrival order.
    buckets: Vec<Vec<u32>>,
    /// Every block ever allocated.
    blocks: Vec<Vec<Entry<V>>>,
    /// Ids of empty blocks.
    free: Vec<u32>,
    len: usize,
}

impl<V: Element> Chunk<V> {
    /// A chunk for up to `capacity` entries of a matrix whose outer dimension is `outer_dim` (when
    /// known).
    pub(crate) fn new(capacity: usize, outer_dim: Option<u64>) -> Chunk<V> {
        let nbuckets = (capacity / BUCKET_ENTRIES).clamp(1, MAX_BUCKETS).next_power_of_two().min(MAX_BUCKETS);
        // Smallest shift that maps every outer index below outer_dim to a bucket.
        let shift = match outer_dim {
            Some(d) if d > 0 => {
                let per_bucket = d.div_ceil(nbuckets as u64);
                64 - (per_bucket.max(1) - 1).leading_zeros()
            }
            _ => 0,
        };
        Chunk { shift, buckets: vec![Vec::new(); nbuckets], blocks: Vec::new(), free: Vec::new(), len: 0 }
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends an entry to its bucket.
    #[inline]
    pub(crate) fn push(&mut self, e: Entry<V>) {
        let mut b = (e.outer >> self.shift) as usize;
        if b >= self.buckets.len() {
            self.widen(e.outer);
            b = (e.outer >> self.shift) as usize;
        }
        let bucket = &mut self.buckets[b];
        let id = match bucket.last() {
            Some(&id) if self.blocks[id as usize].len() < BLOCK => id,
            _ => {
                let id = match self.free.pop() {
                    Some(id) => id,
                    None => {
                        self.blocks.push(Vec::with_capacity(BLOCK));
                        (self.blocks.len() - 1) as u32
                    }
                };
                bucket.push(id);
                id
            }
        };
        self.blocks[id as usize].push(e);
        self.len += 1;
    }

    /// Doubles the bucket width until `outer` fits, merging neighbouring buckets.
    #[cold]
    fn widen(&mut self, outer: u64) {
        while (outer >> self.shift) as usize >= self.buckets.len() {
            let old = std::mem::take(&mut self.buckets);
            let n = old.len();
            let mut merged: Vec<Vec<u32>> = Vec::with_capacity(n);
            let mut it = old.into_iter();
            while let Some(mut a) = it.next() {
                if let Some(b) = it.next() {
                    a.extend(b);
                }
                merged.push(a);
            }
            merged.resize(n, Vec::new());
            self.buckets = merged;
            self.shift += 1;
        }
    }

    /// Empties the chunk, keeping its blocks for reuse.
    fn clear(&mut self) {
        for bucket in &mut self.buckets {
            for id in bucket.drain(..) {
                self.blocks[id as usize].clear();
                self.free.push(id);
            }
        }
        self.len = 0;
    }

    fn bucket_entries(&self, b: usize) -> impl Iterator<Item = &Entry<V>> + Clone + '_ {
        self.buckets[b].iter().flat_map(move |&id| self.blocks[id as usize].iter())
    }

    fn bucket_len(&self, b: usize) -> usize {
        self.buckets[b].iter().map(|&id| self.blocks[id as usize].len()).sum()
    }
}

/// The sorted, combined entries of a band of outer indices: for each outer index with entries, its
/// index and count; the inner indices and values of all of them in order.
#[derive(Debug)]
pub(crate) struct SortedBucket<V> {
    pub(crate) outers: Vec<u64>,
    pub(crate) counts: Vec<usize>,
    pub(crate) inners: Vec<u64>,
    pub(crate) values: Vec<V>,
    /// Entries folded into another by the duplicate policy.
    pub(crate) combined: u64,
    /// Entries dropped because their combined value was zero.
    pub(crate) zeros_dropped: u64,
}

impl<V: Element> SortedBucket<V> {
    fn empty() -> Self {
        SortedBucket {
            outers: Vec::new(),
            counts: Vec::new(),
            inners: Vec::new(),
            values: Vec::new(),
            combined: 0,
            zeros_dropped: 0,
        }
    }

    fn clear(&mut self) {
        self.outers.clear();
        self.counts.clear();
        self.inners.clear();
        self.values.clear();
        self.combined = 0;
        self.zeros_dropped = 0;
    }

    /// Iterates the entries in order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Entry<V>> + '_ {
        let mut k = 0;
        self.outers.iter().zip(&self.counts).flat_map(move |(&outer, &count)| {
            let start = k;
            k += count;
            (start..start + count).map(move |j| Entry { outer, inner: self.inners[j], value: self.values[j] })
        })
    }
}

/// Sorts `chunk` stably by `(outer, inner)`, combines duplicates by `combine`, hands the sorted buckets
/// to `emit` in order, and empties the chunk (keeping its memory).
///
/// # Errors
///
/// A duplicate under the `error` policy, or whatever `emit` returns.
pub(crate) fn sort_chunk<V: Element>(
    chunk: &mut Chunk<V>,
    combine: Combine,
    emit: &mut (dyn FnMut(&SortedBucket<V>) -> Result<()> + Send),
) -> Result<()> {
    let result = sort_buckets(chunk, combine, emit);
    chunk.clear();
    result
}

fn sort_buckets<V: Element>(
    chunk: &Chunk<V>,
    combine: Combine,
    emit: &mut (dyn FnMut(&SortedBucket<V>) -> Result<()> + Send),
) -> Result<()> {
    let nbuckets = chunk.buckets.len();
    let width = 1u64 << chunk.shift;
    let window = 4 * rayon::current_num_threads().max(1);
    // Output buffers recycled between windows: no fresh memory per bucket.
    let pool: Mutex<Vec<SortedBucket<V>>> = Mutex::new(Vec::new());
    let sort_window = |from: usize| -> Vec<Result<SortedBucket<V>>> {
        (from..(from + window).min(nbuckets))
            .into_par_iter()
            .map_init(Vec::new, |scratch, b| {
                let mut out = pool.lock().ok().and_then(|mut p| p.pop()).unwrap_or_else(SortedBucket::empty);
                out.clear();
                sort_bucket(chunk, b, b as u64 * width, width, scratch, combine, &mut out).map(|()| out)
            })
            .collect()
    };
    let mut current = sort_window(0);
    let mut next_start = window;
    loop {
        let mut emit_all = |buckets: Vec<Result<SortedBucket<V>>>| -> Result<()> {
            for s in buckets {
                let s = s?;
                emit(&s)?;
                if let Ok(mut p) = pool.lock() {
                    p.push(s);
                }
            }
            Ok(())
        };
        if next_start >= nbuckets {
            return emit_all(current);
        }
        let (emitted, next) = rayon::join(|| emit_all(current), || sort_window(next_start));
        emitted?;
        current = next;
        next_start += window;
    }
}

/// Sorts bucket `b` (outer indices `first .. first + width`) into `out`, using `sorted` as scratch.
fn sort_bucket<V: Element>(
    chunk: &Chunk<V>,
    b: usize,
    first: u64,
    width: u64,
    sorted: &mut Vec<Entry<V>>,
    combine: Combine,
    out: &mut SortedBucket<V>,
) -> Result<()> {
    sorted.clear();
    let n = chunk.bucket_len(b);
    if n == 0 {
        return Ok(());
    }
    let entries = chunk.bucket_entries(b);
    if width > 4 * n as u64 + 64 {
        // Sparse band: a histogram would dwarf the data.
        sorted.extend(entries.copied());
        sorted.sort_by_key(|e| (e.outer, e.inner)); // stable
    } else {
        let w = width as usize;
        let mut start = vec![0usize; w + 1];
        for e in entries.clone() {
            start[(e.outer - first) as usize + 1] += 1;
        }
        for r in 0..w {
            start[r + 1] += start[r];
        }
        let mut cursor = start.clone();
        let seed = *entries.clone().next().expect("the bucket is not empty");
        sorted.resize(n, seed);
        for e in entries {
            let slot = &mut cursor[(e.outer - first) as usize];
            sorted[*slot] = *e;
            *slot += 1;
        }
        for r in 0..w {
            let row = &mut sorted[start[r]..start[r + 1]];
            if row.len() > 32 {
                sort_long_row(row, first + r as u64);
            } else if row.len() > 1 {
                insertion_sort_by_inner(row);
            }
        }
    }
    combine_sorted(sorted, combine, out)
}

/// Sorts a long row (all entries share outer index `outer`) by inner index, stably: the entries'
/// positions are stored in their (redundant) outer field so that an unstable sort on `(inner,
/// position)` gives the stable order, faster than a stable sort of the same entries; then the outer
/// index is restored.
fn sort_long_row<V: Copy>(row: &mut [Entry<V>], outer: u64) {
    for (pos, e) in row.iter_mut().enumerate() {
        e.outer = pos as u64;
    }
    row.sort_unstable_by_key(|e| (e.inner, e.outer));
    for e in row.iter_mut() {
        e.outer = outer;
    }
}

/// Stable insertion sort by inner index: the fastest sort for the handful of entries most rows hold.
#[inline]
fn insertion_sort_by_inner<V: Copy>(row: &mut [Entry<V>]) {
    for i in 1..row.len() {
        let e = row[i];
        let mut j = i;
        while j > 0 && row[j - 1].inner > e.inner {
            row[j] = row[j - 1];
            j -= 1;
        }
        row[j] = e;
    }
}

/// Combines equal neighbours of a sorted run of entries into `out`.
fn combine_sorted<V: Element>(sorted: &[Entry<V>], combine: Combine, out: &mut SortedBucket<V>) -> Result<()> {
    out.inners.reserve(sorted.len());
    out.values.reserve(sorted.len());
    let mut i = 0;
    while i < sorted.len() {
        let e = sorted[i];
        let mut value = e.value;
        let mut j = i + 1;
        while j < sorted.len() && sorted[j].outer == e.outer && sorted[j].inner == e.inner {
            value = combine.apply(value, sorted[j].value, e.outer, e.inner)?;
            j += 1;
        }
        out.combined += (j - i - 1) as u64;
        if combine.drop_zeros && value.is_zero() {
            out.zeros_dropped += 1;
        } else {
            if out.outers.last() != Some(&e.outer) {
                out.outers.push(e.outer);
                out.counts.push(0);
            }
            *out.counts.last_mut().expect("a row was just opened") += 1;
            out.inners.push(e.inner);
            out.values.push(value);
        }
        i = j;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::Duplicates;
    use crate::format::Layout;

    fn check(entries: Vec<Entry<f64>>, outer_dim: Option<u64>, capacity: usize) {
        // Oracle: std's stable sort, then keep the last of equal keys.
        let mut want = entries.clone();
        want.sort_by_key(|e| (e.outer, e.inner));
        want.reverse();
        want.dedup_by_key(|e| (e.outer, e.inner));
        want.reverse();
        let combine = Combine { policy: Duplicates::Last, drop_zeros: false, layout: Layout::Csr };
        let mut chunk = Chunk::new(capacity, outer_dim);
        for round in 0..2 {
            // Twice: the second round reuses the first round's blocks.
            for e in &entries {
                chunk.push(*e);
            }
            assert_eq!(chunk.len(), entries.len());
            let mut got = Vec::new();
            sort_chunk(&mut chunk, combine, &mut |b| {
                got.extend(b.entries());
                Ok(())
            })
            .unwrap();
            assert_eq!(got, want, "round {round}");
            assert_eq!(chunk.len(), 0);
        }
    }

    #[test]
    fn sorts_stably_whatever_the_spread() {
        let mut x = 12345u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for (n, rows) in [(0, 1), (1, 1), (1000, 10), (1000, 1), (5000, 400), (300, 1_000_000_000), (200_000, 3000)] {
            let entries: Vec<Entry<f64>> =
                (0..n).map(|i| Entry { outer: next() % rows + 7, inner: next() % 5, value: i as f64 }).collect();
            for (dim, cap) in [(None, 1 << 20), (Some(rows + 7), 1 << 20), (None, 1 << 26), (Some(rows + 7), 1 << 26)] {
                check(entries.clone(), dim, cap);
            }
        }
    }
}
