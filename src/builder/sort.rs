//! The in-memory chunk, bucketed block by block as it fills, and its parallel, stable,
//! cache-friendly sort.
//!
//! A most-significant-digit radix sort whose first pass happens while the input is parsed:
//!
//! 1. **Bucket each block.** A block of consecutive input triplets (one parser text block, about
//!    230,000 entries, or up to 65,536 entries given to the builder) is counting-sorted by bucket,
//!    `outer >> shift` (at most [`MAX_BUCKETS`] buckets of consecutive outer indices), into one
//!    allocation, stably ([`Bucketer::bucket`]). An import does this in the parse workers, in
//!    parallel, so the single thread that takes blocks in file order only moves them into the chunk.
//!    Entries are stored in 16 bytes (`f64`) when both indices fit 32 bits, 24 otherwise. When the
//!    outer dimension is not known in advance (edge lists), each block takes the smallest shift its
//!    largest index allows; the chunk sorts at the largest shift of its blocks, and because every
//!    block has as many buckets as the chunk, a chunk bucket is a contiguous range of each block's
//!    buckets.
//! 2. **Sort each chunk bucket** in parallel, in order: a counting sort by outer index (the COO -> CSR
//!    conversion, as scipy's `coo_tocsr`) gathering the bucket's pieces from every block in input
//!    order into a per-worker scratch buffer, then each outer index's entries by inner index with a
//!    stable sort (insertion sort for short rows, std's merge sort for medium ones, an LSD radix sort
//!    for the long rows of power-law graphs); duplicates are combined, and the result encoded as the
//!    writer's bytes, in the same pass. A bucket whose outer range is far wider than its entry count
//!    (a few entries of a matrix with billions of rows) uses a stable comparison sort instead, so no
//!    histogram outgrows the data.
//! 3. **Emit in order**, a window of buckets at a time; the caller's sequential work on one window
//!    (writing the matrix or a run) overlaps the sorting of the next.
//!
//! Equal `(outer, inner)` entries stay in input order, which the `first` / `last` policies and an
//! order-exact `sum` rely on. No unsafe code: every thread owns what it writes.
//!
//! Where this differs from the earlier design (a pool of fixed-size blocks per bucket, reused from
//! chunk to chunk, filled one entry at a time by the hand-over thread): filling cost a sequential
//! 13% of an import's CPU on one thread, which now runs spread over the parse workers; the price is
//! fresh memory for each block (the kernel zeroes it), which the smaller entries more than repay.

use super::{Combine, Entry};
use crate::element::{Element, Triplet};
use crate::error::{Error, Result};
use crate::format::{IndexType, Layout};
use rayon::prelude::*;
use std::sync::Mutex;

/// Most buckets a chunk uses.
pub(crate) const MAX_BUCKETS: usize = 8192;

/// Target entries per bucket (about 192 KiB of sort scratch: well inside a core's L2 cache; 8 K buckets
/// sorted 15% faster than 2 K of 768 KiB on R-MAT scale 22).
const BUCKET_ENTRIES: usize = 1 << 13;

/// Most entries in one block made by [`TripletBuilder::push`](super::TripletBuilder::push) and
/// `push_triplets` (a parser's blocks are as large as its text blocks make them).
const PUSH_BLOCK: usize = 1 << 16;

/// How a sort hands its sorted buckets on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// As entries: [`SortedBucket::inners`] and [`SortedBucket::values`] (the sort's own tests).
    #[cfg(test)]
    Entries,
    /// As the writer stores them: inner indices of this type and values, little-endian, in
    /// [`SortedBucket::index_bytes`] and [`SortedBucket::value_bytes`].
    Writer(IndexType),
    /// As the records of a sorted run (see `run`), in [`SortedBucket::index_bytes`]: outer index plus
    /// `outer_offset`, inner index (both 8 bytes when `wide`, else 4) and value.
    Run { wide: bool, outer_offset: u64 },
}

/// An entry stored in 16 bytes (`f64`) instead of 24: both indices fit 32 bits, which is almost every
/// matrix (the outer index is the bucket's, and the row or column count is below 2^32).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Packed<V> {
    pub(crate) outer: u32,
    pub(crate) inner: u32,
    pub(crate) value: V,
}

/// A block's entries: packed when every index fits 32 bits, else full width.
#[derive(Debug)]
enum Store<V> {
    Packed(Vec<Packed<V>>),
    Wide(Vec<Entry<V>>),
}

/// A piece of a block: entries in input order.
#[derive(Clone, Copy)]
enum Slice<'a, V> {
    Packed(&'a [Packed<V>]),
    Wide(&'a [Entry<V>]),
}

impl<V: Copy> Slice<'_, V> {
    #[inline(always)]
    fn for_each(self, mut f: impl FnMut(Entry<V>)) {
        match self {
            Slice::Packed(s) => {
                for e in s {
                    f(Entry { outer: e.outer as u64, inner: e.inner as u64, value: e.value });
                }
            }
            Slice::Wide(s) => {
                for e in s {
                    f(*e);
                }
            }
        }
    }

    fn len(self) -> usize {
        match self {
            Slice::Packed(s) => s.len(),
            Slice::Wide(s) => s.len(),
        }
    }

    fn first(self) -> Option<Entry<V>> {
        match self {
            Slice::Packed(s) => {
                s.first().map(|e| Entry { outer: e.outer as u64, inner: e.inner as u64, value: e.value })
            }
            Slice::Wide(s) => s.first().copied(),
        }
    }

    #[inline(always)]
    fn for_each_outer(self, mut f: impl FnMut(u64)) {
        match self {
            Slice::Packed(s) => s.iter().for_each(|e| f(e.outer as u64)),
            Slice::Wide(s) => s.iter().for_each(|e| f(e.outer)),
        }
    }
}

/// A run of consecutive input entries, bucketed by outer index: a counting sort by `outer >> shift`
/// (stable, so each bucket keeps input order). Parse workers make these in parallel
/// ([`Bucketer::bucket`]), so the single thread that collects them in file order only moves vectors.
#[derive(Debug)]
pub(crate) struct Block<V> {
    store: Store<V>,
    /// Bucket `j` (outer indices `j << shift .. (j + 1) << shift`) is `store[offsets[j]..offsets[j + 1]]`.
    offsets: Vec<u32>,
    shift: u32,
    max_row: u64,
    max_col: u64,
}

impl<V: Element> Block<V> {
    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        *self.offsets.last().unwrap_or(&0) as usize
    }

    /// Memory held, in bytes.
    pub(crate) fn bytes(&self) -> usize {
        let entries = match &self.store {
            Store::Packed(v) => v.capacity() * std::mem::size_of::<Packed<V>>(),
            Store::Wide(v) => v.capacity() * std::mem::size_of::<Entry<V>>(),
        };
        entries + self.offsets.capacity() * 4
    }

    /// Largest row and column index (0 when empty).
    pub(crate) fn max_row_col(&self) -> (u64, u64) {
        (self.max_row, self.max_col)
    }

    /// A block of entries already sorted by outer index (a piece of a sorted run), bucketed as
    /// `bucketer` buckets: only the bucket offsets are computed, nothing moves.
    pub(crate) fn from_sorted_packed(entries: Vec<Packed<V>>, bucketer: &Bucketer) -> Block<V> {
        let outers = entries.iter().map(|e| e.outer as u64);
        let (offsets, shift) = bucketer.sorted_offsets(outers, entries.len());
        let max_outer = entries.last().map_or(0, |e| e.outer as u64);
        let max_inner = entries.iter().map(|e| e.inner as u64).max().unwrap_or(0);
        let (max_row, max_col) = bucketer.layout.row_col(max_outer, max_inner);
        Block { store: Store::Packed(entries), offsets, shift, max_row, max_col }
    }

    /// As [`from_sorted_packed`](Self::from_sorted_packed), for entries with wide indices.
    pub(crate) fn from_sorted_wide(entries: Vec<Entry<V>>, bucketer: &Bucketer) -> Block<V> {
        let outers = entries.iter().map(|e| e.outer);
        let (offsets, shift) = bucketer.sorted_offsets(outers, entries.len());
        let max_outer = entries.last().map_or(0, |e| e.outer);
        let max_inner = entries.iter().map(|e| e.inner).max().unwrap_or(0);
        let (max_row, max_col) = bucketer.layout.row_col(max_outer, max_inner);
        Block { store: Store::Wide(entries), offsets, shift, max_row, max_col }
    }

    /// The entries of this block's buckets `from..to`.
    fn slice(&self, from: usize, to: usize) -> Slice<'_, V> {
        let nb = self.offsets.len() - 1;
        let (from, to) = (from.min(nb), to.min(nb));
        let (a, b) = (self.offsets[from] as usize, self.offsets[to] as usize);
        match &self.store {
            Store::Packed(v) => Slice::Packed(&v[a..b]),
            Store::Wide(v) => Slice::Wide(&v[a..b]),
        }
    }
}

/// How a chunk buckets entries: shared, by value, with the parse workers that bucket blocks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucketer {
    nbuckets: usize,
    /// Smallest `shift` (from the declared outer dimension; 0 when unknown).
    min_shift: u32,
    layout: Layout,
    shape: Option<(u64, u64)>,
}

impl Bucketer {
    /// Buckets for a chunk of up to `capacity` entries of a matrix whose outer dimension is `outer_dim`
    /// (when known).
    pub(crate) fn new(capacity: usize, layout: Layout, shape: Option<(u64, u64)>) -> Bucketer {
        let nbuckets = (capacity / BUCKET_ENTRIES).clamp(1, MAX_BUCKETS).next_power_of_two().min(MAX_BUCKETS);
        // Smallest shift that maps every outer index below outer_dim to a bucket.
        let min_shift = match shape.map(|s| layout.outer_inner(s).0) {
            Some(d) if d > 0 => {
                let per_bucket = d.div_ceil(nbuckets as u64);
                64 - (per_bucket.max(1) - 1).leading_zeros()
            }
            _ => 0,
        };
        Bucketer { nbuckets, min_shift, layout, shape }
    }

    /// The bucket offsets and shift of `len` entries whose outer indices, `outers`, are sorted.
    fn sorted_offsets(&self, outers: impl Iterator<Item = u64> + Clone, len: usize) -> (Vec<u32>, u32) {
        let max_outer = outers.clone().last().unwrap_or(0);
        let nb = self.nbuckets;
        let mut shift = self.min_shift;
        while (max_outer >> shift) as usize >= nb {
            shift += 1;
        }
        let mut offsets = vec![0u32; nb + 1];
        for o in outers {
            offsets[(o >> shift) as usize + 1] += 1;
        }
        for j in 0..nb {
            offsets[j + 1] += offsets[j];
        }
        debug_assert_eq!(offsets[nb] as usize, len);
        (offsets, shift)
    }

    /// Checks `triplets` against the shape and buckets them into a [`Block`] (in layout order: outer is
    /// the row for CSR, the column for CSC).
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] for the first triplet outside a declared shape; [`Error::InvalidInput`]
    /// for an index of 2^63 - 1 or more.
    pub(crate) fn bucket<V: Element>(&self, triplets: &[Triplet<V>]) -> Result<Block<V>> {
        let (mut max_row, mut max_col) = (0u64, 0u64);
        for t in triplets {
            max_row = max_row.max(t.row);
            max_col = max_col.max(t.col);
        }
        let bad = |t: &&Triplet<V>| match self.shape {
            Some((r, c)) => t.row >= r || t.col >= c,
            None => t.row > i64::MAX as u64 - 1 || t.col > i64::MAX as u64 - 1,
        };
        // Compared as `max >= dim`, not `max > dim - 1`: a dimension may be 0.
        let out_of_bounds = match self.shape {
            Some((r, c)) => max_row >= r || max_col >= c,
            None => max_row > i64::MAX as u64 - 1 || max_col > i64::MAX as u64 - 1,
        };
        if !triplets.is_empty() && out_of_bounds {
            let t = triplets.iter().find(bad).expect("some triplet is out of bounds");
            return Err(check_bounds(t.row, t.col, self.shape).expect_err("the triplet is out of bounds"));
        }
        let (max_outer, max_inner) = match self.layout {
            Layout::Csr => (max_row, max_col),
            Layout::Csc => (max_col, max_row),
        };
        let nb = self.nbuckets;
        let mut shift = self.min_shift;
        while (max_outer >> shift) as usize >= nb {
            shift += 1;
        }
        let mut offsets = vec![0u32; nb + 1];
        let csr = self.layout == Layout::Csr;
        let oi = |t: &Triplet<V>| if csr { (t.row, t.col) } else { (t.col, t.row) };
        for t in triplets {
            offsets[(oi(t).0 >> shift) as usize + 1] += 1;
        }
        for j in 0..nb {
            offsets[j + 1] += offsets[j];
        }
        let mut cursor = offsets.clone();
        let store = match triplets.first() {
            None => Store::Packed(Vec::new()),
            Some(first) if max_outer <= u32::MAX as u64 && max_inner <= u32::MAX as u64 => {
                let mut v = vec![Packed { outer: 0, inner: 0, value: first.value }; triplets.len()];
                for t in triplets {
                    let (o, i) = oi(t);
                    let slot = &mut cursor[(o >> shift) as usize];
                    v[*slot as usize] = Packed { outer: o as u32, inner: i as u32, value: t.value };
                    *slot += 1;
                }
                Store::Packed(v)
            }
            Some(first) => {
                let mut v = vec![Entry { outer: 0, inner: 0, value: first.value }; triplets.len()];
                for t in triplets {
                    let (outer, inner) = oi(t);
                    let slot = &mut cursor[(outer >> shift) as usize];
                    v[*slot as usize] = Entry { outer, inner, value: t.value };
                    *slot += 1;
                }
                Store::Wide(v)
            }
        };
        Ok(Block { store, offsets, shift, max_row, max_col })
    }
}

/// `Ok` when `(row, col)` lies inside `shape` (or, without a shape, below 2^63 - 1).
pub(crate) fn check_bounds(row: u64, col: u64, shape: Option<(u64, u64)>) -> Result<()> {
    match shape {
        Some((r, c)) if row >= r || col >= c => Err(Error::OutOfBounds { row, col, shape: (r, c) }),
        None if row > i64::MAX as u64 - 1 || col > i64::MAX as u64 - 1 => {
            Err(Error::invalid(format!("entry ({row}, {col}): indices must be below 2^63 - 1")))
        }
        _ => Ok(()),
    }
}

/// Triplets waiting to be sorted: blocks in input order, each bucketed by outer index, plus the
/// entries pushed one at a time since the last block.
///
/// Bucket `b` of the chunk (outer indices `b << shift ..`, `shift` the largest of its blocks') is
/// the concatenation, in block order, of the buckets of each block that fall in its range: block
/// buckets nest in chunk buckets because both count the same number of buckets and a block's shift
/// is never larger. So a chunk is an MSD radix sort's first pass, done block by block as the input
/// arrives (in parallel, in the parse workers).
pub(crate) struct Chunk<V> {
    bucketer: Bucketer,
    blocks: Vec<Block<V>>,
    pending: Vec<Triplet<V>>,
    len: usize,
    bytes: usize,
    /// Entry buffers of sorted blocks, kept for reuse when [`recycling`](Chunk::recycling): fresh
    /// memory costs more to fault in than the copy into it (a builder's merge decodes every entry).
    spare_packed: Vec<Vec<Packed<V>>>,
    spare_wide: Vec<Vec<Entry<V>>>,
    recycle: bool,
}

impl<V: Element> Chunk<V> {
    /// An empty chunk bucketing by `bucketer`.
    pub(crate) fn new(bucketer: Bucketer) -> Chunk<V> {
        Chunk {
            bucketer,
            blocks: Vec::new(),
            pending: Vec::new(),
            len: 0,
            bytes: 0,
            spare_packed: Vec::new(),
            spare_wide: Vec::new(),
            recycle: false,
        }
    }

    /// An empty chunk that keeps its blocks' entry buffers when emptied, for
    /// [`packed_buffer`](Self::packed_buffer) and [`wide_buffer`](Self::wide_buffer).
    pub(crate) fn recycling(bucketer: Bucketer) -> Chunk<V> {
        Chunk { recycle: true, ..Chunk::new(bucketer) }
    }

    /// Buckets the next blocks by `bucketer` (the chunk must be empty).
    pub(crate) fn set_bucketer(&mut self, bucketer: Bucketer) {
        debug_assert_eq!(self.len, 0);
        self.bucketer = bucketer;
    }

    /// An empty buffer for a block of packed entries: a recycled one if any.
    pub(crate) fn packed_buffer(&mut self) -> Vec<Packed<V>> {
        self.spare_packed.pop().unwrap_or_default()
    }

    /// An empty buffer for a block of wide entries: a recycled one if any.
    pub(crate) fn wide_buffer(&mut self) -> Vec<Entry<V>> {
        self.spare_wide.pop().unwrap_or_default()
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// How this chunk buckets its blocks.
    pub(crate) fn bucketer(&self) -> Bucketer {
        self.bucketer
    }

    /// Bytes held (blocks and pending entries, as stored).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Appends one entry (already checked against the shape), in `(row, col)` order.
    #[inline]
    pub(crate) fn push(&mut self, t: Triplet<V>) {
        self.pending.push(t);
        self.len += 1;
        self.bytes += std::mem::size_of::<Triplet<V>>();
        if self.pending.len() >= PUSH_BLOCK {
            self.seal();
        }
    }

    /// Appends a block (input order: after everything held).
    pub(crate) fn push_block(&mut self, block: Block<V>) {
        self.seal();
        self.len += block.len();
        self.bytes += block.bytes();
        self.blocks.push(block);
    }

    /// Buckets the pending entries into a block.
    fn seal(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let block = self.bucketer.bucket(&self.pending).expect("pushed entries were checked");
        self.bytes -= self.pending.len() * std::mem::size_of::<Triplet<V>>();
        self.len -= self.pending.len();
        self.pending.clear();
        self.push_block(block);
    }

    /// Empties the chunk.
    fn clear(&mut self) {
        if self.recycle {
            for block in self.blocks.drain(..) {
                match block.store {
                    Store::Packed(mut v) => {
                        v.clear();
                        self.spare_packed.push(v);
                    }
                    Store::Wide(mut v) => {
                        v.clear();
                        self.spare_wide.push(v);
                    }
                }
            }
        }
        self.blocks.clear();
        self.pending.clear();
        self.len = 0;
        self.bytes = 0;
    }

    /// The first and the last `(outer, inner)` held, if the entries came in sorted by key (equal keys
    /// allowed) and there are any: every block, read bucket by bucket (bucketing is stable, so a sorted
    /// block stays in order), is in order, and each block starts no lower than the one before ended.
    /// One pass over the entries.
    pub(crate) fn sorted_range(&mut self) -> Option<((u64, u64), (u64, u64))> {
        self.seal();
        let mut first: Option<(u64, u64)> = None;
        let mut previous: Option<(u64, u64)> = None;
        for block in &self.blocks {
            let mut in_order = true;
            block.slice(0, usize::MAX).for_each(|e| {
                let key = (e.outer, e.inner);
                in_order &= previous.map_or(true, |p| p <= key);
                first.get_or_insert(key);
                previous = Some(key);
            });
            if !in_order {
                return None;
            }
        }
        first.zip(previous)
    }

    /// The chunk's shift: the largest of its blocks'.
    fn shift(&self) -> u32 {
        self.blocks.iter().map(|b| b.shift).max().unwrap_or(self.bucketer.min_shift)
    }

    /// The pieces of chunk bucket `b` (at `shift`), in input order.
    fn bucket_slices(&self, b: usize, shift: u32) -> impl Iterator<Item = Slice<'_, V>> + Clone + '_ {
        self.blocks.iter().map(move |blk| {
            // Block buckets `b << d .. (b + 1) << d` (clipped to the block's) make chunk bucket `b`.
            let (d, nb) = (shift - blk.shift, blk.offsets.len() - 1);
            let lo = if b == 0 {
                0
            } else if d >= 32 {
                nb
            } else {
                b << d
            };
            let hi = if d >= 32 { nb } else { (b + 1) << d };
            blk.slice(lo, hi)
        })
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
    pub(crate) fn empty() -> Self {
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

    pub(crate) fn clear(&mut self) {
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
    #[cfg(test)]
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
/// to `emit` in order (with `encode`, as the writer's bytes), and empties the chunk.
///
/// # Errors
///
/// A duplicate under the `error` policy, or whatever `emit` returns.
pub(crate) fn sort_chunk<V: Element>(
    chunk: &mut Chunk<V>,
    combine: Combine,
    encode: Encoding,
    emit: &mut (dyn FnMut(&SortedBucket<V>) -> Result<()> + Send),
) -> Result<()> {
    chunk.seal();
    let result = sort_buckets(chunk, combine, encode, emit);
    chunk.clear();
    result
}

/// A sort worker's buffers, kept across the buckets it sorts.
struct Scratch<V> {
    sorted: Vec<Entry<V>>,
    long: Vec<Entry<V>>,
    keys: Vec<u64>,
    start: Vec<usize>,
    cursor: Vec<usize>,
}

fn sort_buckets<V: Element>(
    chunk: &Chunk<V>,
    combine: Combine,
    encode: Encoding,
    emit: &mut (dyn FnMut(&SortedBucket<V>) -> Result<()> + Send),
) -> Result<()> {
    let nbuckets = chunk.bucketer.nbuckets;
    let shift = chunk.shift();
    // Buckets sorted per step: enough that a step's work dwarfs its synchronisation (8 K buckets of a few
    // thousand entries), few enough that the sorted output waiting to be written stays small. Two windows
    // are in flight (one sorted, one being emitted): at most half the chunk's buckets whatever the thread
    // count, so their output stays within what `charge` sets aside per entry.
    let window = (32 * rayon::current_num_threads().max(1)).min(nbuckets / 4).max(1);
    // Output buffers recycled between windows: no fresh memory per bucket.
    let pool: Mutex<Vec<SortedBucket<V>>> = Mutex::new(Vec::new());
    let sort_window = |from: usize| -> Vec<Result<SortedBucket<V>>> {
        (from..(from + window).min(nbuckets))
            .into_par_iter()
            .map_init(
                || Scratch {
                    sorted: Vec::new(),
                    long: Vec::new(),
                    keys: Vec::new(),
                    start: Vec::new(),
                    cursor: Vec::new(),
                },
                |scratch, b| {
                    let mut out = pool.lock().ok().and_then(|mut p| p.pop()).unwrap_or_else(SortedBucket::empty);
                    out.clear();
                    sort_bucket(chunk, b, shift, scratch, combine, encode, &mut out)?;
                    Ok(out)
                },
            )
            .collect()
    };
    let mut current = sort_window(0);
    let mut next_start = window;
    loop {
        crate::interrupt::check()?;
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

/// Sorts chunk bucket `b` (outer indices from `b << shift`, `1 << shift` of them) into `out`.
fn sort_bucket<V: Element>(
    chunk: &Chunk<V>,
    b: usize,
    shift: u32,
    scratch: &mut Scratch<V>,
    combine: Combine,
    encode: Encoding,
    out: &mut SortedBucket<V>,
) -> Result<()> {
    let slices = chunk.bucket_slices(b, shift);
    let n: usize = slices.clone().map(|s| s.len()).sum();
    if n == 0 {
        return Ok(());
    }
    // The bucket holds an index below 2^63, so neither shift overflows.
    let (first, width) = ((b as u64) << shift, 1u64 << shift);
    let sorted = &mut scratch.sorted;
    if width > 4 * n as u64 + 64 {
        // Sparse band: a histogram would dwarf the data.
        sorted.clear();
        for s in slices {
            s.for_each(|e| sorted.push(e));
        }
        sorted.sort_by_key(|e| (e.outer, e.inner)); // stable
        return combine_sorted(sorted, combine, encode, out);
    }
    // A counting sort by outer index (scipy's coo_tocsr), then each outer index's entries by inner.
    let w = width as usize;
    let start = &mut scratch.start;
    start.clear();
    start.resize(w + 1, 0);
    for s in slices.clone() {
        s.for_each_outer(|o| start[(o - first) as usize + 1] += 1);
    }
    for r in 0..w {
        start[r + 1] += start[r];
    }
    let cursor = &mut scratch.cursor;
    cursor.clear();
    cursor.extend_from_slice(&start[..w]);
    if sorted.len() < n {
        let seed = slices.clone().find_map(|s| s.first()).expect("the bucket is not empty");
        sorted.resize(n, seed);
    }
    let sorted = &mut sorted[..n];
    for s in slices {
        s.for_each(|e| {
            let slot = &mut cursor[(e.outer - first) as usize];
            sorted[*slot] = e;
            *slot += 1;
        });
    }
    for r in 0..w {
        let row = &mut sorted[start[r]..start[r + 1]];
        // Insertion sort for the few entries most rows hold, radix for the power-law rows with
        // thousands (its 2 x 2048-counter passes pay off there), a key sort between.
        if row.len() > 1024 {
            sort_long_row(row, &mut scratch.long);
        } else if row.len() > 24 {
            sort_medium_row(row, &mut scratch.keys, &mut scratch.long);
        } else if row.len() > 1 {
            insertion_sort_by_inner(row);
        }
    }
    combine_sorted(sorted, combine, encode, out)
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

/// Sorts a row of up to 1024 entries by inner index, stably: an unstable sort of 8-byte keys
/// `inner << 10 | position` (distinct, so the order is the stable one) and a gather, several times
/// cheaper than a stable sort moving 24-byte entries. Rows whose inner indices need more than 54 bits
/// take std's stable sort.
fn sort_medium_row<V: Copy>(row: &mut [Entry<V>], keys: &mut Vec<u64>, scratch: &mut Vec<Entry<V>>) {
    debug_assert!(row.len() <= 1 << 10);
    if row.iter().any(|e| e.inner >= 1 << 54) {
        row.sort_by_key(|e| e.inner);
        return;
    }
    keys.clear();
    keys.extend(row.iter().enumerate().map(|(k, e)| e.inner << 10 | k as u64));
    keys.sort_unstable();
    scratch.clear();
    scratch.extend(keys.iter().map(|&key| row[(key & 1023) as usize]));
    row.copy_from_slice(scratch);
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

/// Combines equal neighbours of a sorted run of entries into `out`, encoded as `encode` says
/// (combining and encoding fused in one pass).
fn combine_sorted<V: Element>(
    sorted: &[Entry<V>],
    combine: Combine,
    encode: Encoding,
    out: &mut SortedBucket<V>,
) -> Result<()> {
    match encode {
        #[cfg(test)]
        Encoding::Entries => combine_into(sorted, combine, out, |out, e, v| {
            out.inners.push(e.inner);
            out.values.push(v);
        })?,
        Encoding::Writer(IndexType::Uint32) => {
            out.index_bytes.reserve(sorted.len() * 4);
            combine_into(sorted, combine, out, |out, e, v| {
                out.index_bytes.extend_from_slice(&(e.inner as u32).to_le_bytes());
                out.values.push(v);
            })?
        }
        Encoding::Writer(IndexType::Uint64) => {
            out.index_bytes.reserve(sorted.len() * 8);
            combine_into(sorted, combine, out, |out, e, v| {
                out.index_bytes.extend_from_slice(&e.inner.to_le_bytes());
                out.values.push(v);
            })?
        }
        Encoding::Run { wide, outer_offset } => {
            out.index_bytes.reserve(sorted.len() * super::run::record_bytes::<V>(wide));
            combine_into(sorted, combine, out, |out, e, v| {
                let value = V::le_bytes(std::slice::from_ref(&v));
                super::run::put_record(&mut out.index_bytes, wide, e.outer + outer_offset, e.inner, value);
            })?
        }
    }
    if let Encoding::Writer(_) = encode {
        V::extend_le_bytes(&out.values, &mut out.value_bytes);
        out.values.clear();
    }
    Ok(())
}

#[inline(always)]
fn combine_into<V: Element>(
    sorted: &[Entry<V>],
    combine: Combine,
    out: &mut SortedBucket<V>,
    mut put: impl FnMut(&mut SortedBucket<V>, &Entry<V>, V),
) -> Result<()> {
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
            put(out, &e, value);
        }
        i = j;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::Duplicates;
    use crate::format::Layout;

    fn check(entries: Vec<Entry<f64>>, outer_dim: Option<u64>, capacity: usize) {
        // Oracle: std's stable sort, then keep the last of equal keys.
        let mut want = entries.clone();
        want.sort_by_key(|e| (e.outer, e.inner));
        want.reverse();
        want.dedup_by_key(|e| (e.outer, e.inner));
        want.reverse();
        let combine = Combine { policy: Duplicates::Last, drop_zeros: false, layout: Layout::Csr };
        let shape = outer_dim.map(|d| (d, u64::MAX >> 2));
        let bucketer = Bucketer::new(capacity, Layout::Csr, shape);
        let triplets: Vec<Triplet<f64>> =
            entries.iter().map(|e| Triplet { row: e.outer, col: e.inner, value: e.value }).collect();
        let mut chunk = Chunk::new(bucketer);
        for round in 0..3 {
            // One entry at a time, then in blocks of various sizes (as parse workers make them).
            match round {
                0 => triplets.iter().for_each(|t| chunk.push(*t)),
                _ => {
                    for piece in triplets.chunks(if round == 1 { 7 } else { 100_000 }) {
                        chunk.push_block(bucketer.bucket(piece).unwrap());
                    }
                }
            }
            assert_eq!(chunk.len(), entries.len());
            let mut got = Vec::new();
            sort_chunk(&mut chunk, combine, Encoding::Entries, &mut |b| {
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
        for (n, rows) in
            [(0, 1), (1, 1), (1000, 10), (1000, 1), (5000, 2), (5000, 400), (300, 1_000_000_000), (200_000, 3000)]
        {
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
        // Inner indices beyond 32 bits: blocks stored full width.
        let wide: Vec<Entry<f64>> =
            (0..3000).map(|i| Entry { outer: next() % 50, inner: (next() % 7) << 33, value: i as f64 }).collect();
        check(wide.clone(), None, 1 << 20);
        check(wide, Some(50), 1 << 26);
    }

    #[test]
    fn empty_dimensions_refuse_every_entry() {
        for shape in [(0, 5), (5, 0), (0, 0)] {
            let bucketer = Bucketer::new(1 << 20, Layout::Csr, Some(shape));
            let err = bucketer.bucket(&[Triplet { row: 0, col: 0, value: 1.0 }]).unwrap_err();
            assert!(matches!(err, Error::OutOfBounds { row: 0, col: 0, .. }), "{shape:?}: {err}");
            assert!(bucketer.bucket::<f64>(&[]).is_ok());
        }
    }
}
