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
use crate::format::IndexType;
use crate::storage::advise_huge_pages;
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
///
/// Blocks live in large slabs (allocated once, backed by huge pages where the kernel allows, reused by
/// later chunks) rather than in one allocation each, and each bucket keeps a cursor into its current
/// block: filling a chunk costs a compare and a store per entry and almost no page faults.
pub(crate) struct Chunk<V> {
    /// `bucket = outer >> shift`.
    shift: u32,
    /// Block ids of each bucket, in arrival order; the last one is the bucket's current block.
    buckets: Vec<Vec<u32>>,
    /// Where each bucket's next entry goes: `(slab, position, end of the current block)`.
    cursors: Vec<Cursor>,
    /// Storage: block `id` starts at `slabs[id >> slab_shift][(id & slab_mask) * BLOCK]`.
    slabs: Vec<Vec<Entry<V>>>,
    slab_shift: u32,
    /// Entries in each block that is no longer a bucket's current one.
    lens: Vec<u32>,
    /// Ids of empty blocks.
    free: Vec<u32>,
    len: usize,
}

#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    slab: u32,
    pos: u32,
    end: u32,
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
        // Slabs of about 1/16 of the chunk (16 to 2048 blocks, a power of two): big enough for huge
        // pages, small enough not to overshoot a small budget.
        let slab_blocks = (capacity / BLOCK / 16).clamp(16, 2048).next_power_of_two().min(2048);
        Chunk {
            shift,
            buckets: vec![Vec::new(); nbuckets],
            cursors: vec![Cursor::default(); nbuckets],
            slabs: Vec::new(),
            slab_shift: slab_blocks.trailing_zeros(),
            lens: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
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
        if self.cursors[b].pos == self.cursors[b].end {
            self.next_block(b, e);
        }
        let c = &mut self.cursors[b];
        self.slabs[c.slab as usize][c.pos as usize] = e;
        c.pos += 1;
        self.len += 1;
    }

    /// Gives bucket `b` a new current block, closing the full one. `filler` initialises new slabs.
    #[cold]
    fn next_block(&mut self, b: usize, filler: Entry<V>) {
        self.close_current(b);
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                let id = self.lens.len();
                if id >> self.slab_shift >= self.slabs.len() {
                    let entries = (1 << self.slab_shift) * BLOCK;
                    let mut slab = Vec::with_capacity(entries);
                    advise_huge_pages(&mut slab);
                    slab.resize(entries, filler);
                    self.slabs.push(slab);
                }
                self.lens.push(0);
                id as u32
            }
        };
        self.buckets[b].push(id);
        let (slab, start) = self.locate(id);
        self.cursors[b] = Cursor { slab: slab as u32, pos: start as u32, end: (start + BLOCK) as u32 };
    }

    /// Records the length of bucket `b`'s current block.
    fn close_current(&mut self, b: usize) {
        if let Some(&id) = self.buckets[b].last() {
            let (_, start) = self.locate(id);
            self.lens[id as usize] = self.cursors[b].pos - start as u32;
        }
    }

    fn locate(&self, id: u32) -> (usize, usize) {
        ((id >> self.slab_shift) as usize, (id as usize & ((1 << self.slab_shift) - 1)) * BLOCK)
    }

    /// Doubles the bucket width until `outer` fits, merging neighbouring buckets.
    #[cold]
    fn widen(&mut self, outer: u64) {
        for b in 0..self.buckets.len() {
            self.close_current(b);
        }
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
        // A merged bucket's last block may be partly full: new entries continue in it.
        for b in 0..self.buckets.len() {
            self.cursors[b] = match self.buckets[b].last() {
                Some(&id) => {
                    let (slab, start) = self.locate(id);
                    let pos = start as u32 + self.lens[id as usize];
                    Cursor { slab: slab as u32, pos, end: (start + BLOCK) as u32 }
                }
                None => Cursor::default(),
            };
        }
    }

    /// Empties the chunk, keeping its slabs for reuse.
    fn clear(&mut self) {
        for (bucket, cursor) in self.buckets.iter_mut().zip(&mut self.cursors) {
            for id in bucket.drain(..) {
                self.lens[id as usize] = 0;
                self.free.push(id);
            }
            *cursor = Cursor::default();
        }
        self.len = 0;
    }

    /// The entries of block `id` of bucket `b`.
    fn block(&self, b: usize, id: u32) -> &[Entry<V>] {
        let (slab, start) = self.locate(id);
        let len = if self.buckets[b].last() == Some(&id) {
            self.cursors[b].pos as usize - start
        } else {
            self.lens[id as usize] as usize
        };
        &self.slabs[slab][start..start + len]
    }

    fn bucket_entries(&self, b: usize) -> impl Iterator<Item = &Entry<V>> + Clone + '_ {
        self.buckets[b].iter().flat_map(move |&id| self.block(b, id).iter())
    }

    fn bucket_len(&self, b: usize) -> usize {
        self.buckets[b].iter().map(|&id| self.block(b, id).len()).sum()
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
    /// With an encoding: the inner indices and values as the writer stores them (little-endian
    /// bytes), instead of `inners` and `values`, so that the sequential writer only copies bytes.
    pub(crate) index_bytes: Vec<u8>,
    pub(crate) value_bytes: Vec<u8>,
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
            index_bytes: Vec::new(),
            value_bytes: Vec::new(),
            combined: 0,
            zeros_dropped: 0,
        }
    }

    fn clear(&mut self) {
        self.outers.clear();
        self.counts.clear();
        self.inners.clear();
        self.values.clear();
        self.index_bytes.clear();
        self.value_bytes.clear();
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
    encode: Option<IndexType>,
    emit: &mut (dyn FnMut(&SortedBucket<V>) -> Result<()> + Send),
) -> Result<()> {
    let result = sort_buckets(chunk, combine, encode, emit);
    chunk.clear();
    result
}

fn sort_buckets<V: Element>(
    chunk: &Chunk<V>,
    combine: Combine,
    encode: Option<IndexType>,
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
            .map_init(
                || (Vec::new(), Vec::new()),
                |(scratch, long_scratch), b| {
                    let mut out = pool.lock().ok().and_then(|mut p| p.pop()).unwrap_or_else(SortedBucket::empty);
                    out.clear();
                    sort_bucket(chunk, b, b as u64 * width, width, scratch, long_scratch, combine, &mut out)?;
                    if let Some(index_type) = encode {
                        encode_bucket(&mut out, index_type);
                    }
                    Ok(out)
                },
            )
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

/// Sorts bucket `b` (outer indices `first .. first + width`) into `out`, using `sorted` and
/// `long_scratch` as scratch.
#[allow(clippy::too_many_arguments)]
fn sort_bucket<V: Element>(
    chunk: &Chunk<V>,
    b: usize,
    first: u64,
    width: u64,
    sorted: &mut Vec<Entry<V>>,
    long_scratch: &mut Vec<Entry<V>>,
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
            if row.len() > 64 {
                sort_long_row(row, long_scratch);
            } else if row.len() > 1 {
                insertion_sort_by_inner(row);
            }
        }
    }
    combine_sorted(sorted, combine, out)
}

/// Sorts a long row by inner index, stably: an LSD radix sort on 11-bit digits, as many passes as the
/// row's largest inner index needs (two for up to 4 M columns). Linear, and several times faster than
/// a comparison sort on the power-law rows (hundreds of thousands of entries) of real graphs.
fn sort_long_row<V: Copy>(row: &mut [Entry<V>], scratch: &mut Vec<Entry<V>>) {
    const DIGIT: u32 = 11;
    const RADIX: usize = 1 << DIGIT;
    let max = row.iter().map(|e| e.inner).max().unwrap_or(0);
    let passes = (64 - max.leading_zeros()).div_ceil(DIGIT);
    scratch.clear();
    scratch.extend_from_slice(row);
    let (mut src, mut dst): (&mut [Entry<V>], &mut [Entry<V>]) = (row, scratch.as_mut_slice());
    let mut in_row = true;
    for pass in 0..passes {
        let shift = pass * DIGIT;
        let mut count = [0usize; RADIX];
        for e in src.iter() {
            count[((e.inner >> shift) as usize) & (RADIX - 1)] += 1;
        }
        let mut sum = 0;
        for c in count.iter_mut() {
            let n = *c;
            *c = sum;
            sum += n;
        }
        for e in src.iter() {
            let d = ((e.inner >> shift) as usize) & (RADIX - 1);
            dst[count[d]] = *e;
            count[d] += 1;
        }
        std::mem::swap(&mut src, &mut dst);
        in_row = !in_row;
    }
    if !in_row {
        // The sorted data ended in the scratch buffer (`src` now points there): copy it back.
        dst.copy_from_slice(src);
    }
}

/// Moves a bucket's inner indices and values into the writer's byte encoding.
fn encode_bucket<V: Element>(out: &mut SortedBucket<V>, index_type: IndexType) {
    match index_type {
        IndexType::Uint32 => {
            out.index_bytes.reserve(out.inners.len() * 4);
            for &i in &out.inners {
                out.index_bytes.extend_from_slice(&(i as u32).to_le_bytes());
            }
        }
        IndexType::Uint64 => {
            out.index_bytes.reserve(out.inners.len() * 8);
            for &i in &out.inners {
                out.index_bytes.extend_from_slice(&i.to_le_bytes());
            }
        }
    }
    V::extend_le_bytes(&out.values, &mut out.value_bytes);
    out.inners.clear();
    out.values.clear();
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
            sort_chunk(&mut chunk, combine, None, &mut |b| {
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
            let entries: Vec<Entry<f64>> = (0..n)
                .map(|i| Entry {
                    outer: next() % rows + 7,
                    inner: next() % if rows < 20 { 3_000_000 } else { 5 },
                    value: i as f64,
                })
                .collect();
            for (dim, cap) in [(None, 1 << 20), (Some(rows + 7), 1 << 20), (None, 1 << 26), (Some(rows + 7), 1 << 26)] {
                check(entries.clone(), dim, cap);
            }
        }
    }
}
