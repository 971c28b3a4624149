//! Sorted runs spilled to the staging area, and the windowed merge that reads them back.
//!
//! **A run** is one sorted chunk: fixed-size little-endian records `outer, inner, value` sorted by
//! `(outer, inner)`, duplicates inside it already combined. Both indices take 4 bytes when every index
//! of the chunk fits 32 bits (16-byte records for `f64`), 8 otherwise. Runs are written by the
//! writer's chunk I/O thread with direct I/O and read back with direct I/O into one reused buffer: a
//! spilled byte never enters the page cache, which on a machine with little memory (a cgroup limit
//! counts the page cache) would only evict what the rest of the build needs. The builder keeps, per
//! run, the key of every `fence_every`-th record (its *fences*): a few KiB per run.
//!
//! **The merge** walks the key space in windows. A window `[lower, upper)` holds every run's records
//! with keys in that range, at most the capacity of one sort chunk in all; the fences bound how many
//! records of each run lie below a key without reading anything, so the planner takes the largest
//! fence key whose bound still fits, rounded down to the start of its outer index when that still
//! moves forward. Each run's exact end is then found by a binary search on the file. The window's
//! records are read piece by piece, decoded into blocks already bucketed by outer index (they are
//! sorted, so only bucket offsets are computed), and sorted by the same parallel, stable sort as an
//! in-memory chunk: runs come in input order, so equal keys meet in input order and duplicates
//! combine exactly as in memory. The sorted window goes out encoded for its consumer (the matrix
//! writer, or a new run when a cascade reduces the number of runs), while the sort of its next
//! buckets proceeds.
//!
//! Compared with a k-way heap merge, every entry is handled by the parallel sort's tight loops
//! instead of a heap operation and a function call on one thread; reading a window from each run is
//! one sequential read per run. A window may end inside an outer index with more entries than a
//! window holds: the writer then receives that row in parts.

use super::sort::{self, Block, Bucketer, Chunk, Encoding, Packed, SortedBucket};
use super::{Combine, Entry};
use crate::element::Element;
use crate::error::{Error, Result};
use crate::format::{IndexType, Layout};
use crate::writer::chunk::{is_einval, set_direct, ChunkFile, ChunkIo};
use memmap2::MmapMut;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes read from a run at a time: large enough that direct reads stream at the disk's speed, small
/// enough to stay inside the builder's reserve.
const PIECE_BYTES: usize = 4 << 20;

/// A binary search over a run reads single records until its range is this many records, then the
/// range at once.
const SEARCH_SPAN: u64 = 1024;

/// `(outer, inner)`.
type Key = (u64, u64);

/// Bytes of one record of a run of `V` with wide (8-byte) or narrow (4-byte) indices.
pub(crate) fn record_bytes<V: Element>(wide: bool) -> usize {
    if wide {
        16 + V::BYTES
    } else {
        8 + V::BYTES
    }
}

/// Appends one record: `outer` and `inner` in 8 bytes each when `wide`, else 4, then `value`, the
/// value's little-endian bytes. [`key_of`] reads it back.
#[inline]
pub(crate) fn put_record(out: &mut Vec<u8>, wide: bool, outer: u64, inner: u64, value: &[u8]) {
    if wide {
        out.extend_from_slice(&outer.to_le_bytes());
        out.extend_from_slice(&inner.to_le_bytes());
    } else {
        out.extend_from_slice(&(outer as u32).to_le_bytes());
        out.extend_from_slice(&(inner as u32).to_le_bytes());
    }
    out.extend_from_slice(value);
}

/// The key of the record at the start of `bytes`.
fn key_of(bytes: &[u8], wide: bool) -> Key {
    if wide {
        (
            u64::from_le_bytes(bytes[0..8].try_into().expect("8 bytes")),
            u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")),
        )
    } else {
        (
            u64::from(u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"))),
            u64::from(u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"))),
        )
    }
}

/// One sorted run on disk, and what the merge needs to find its way in it.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) path: PathBuf,
    wide: bool,
    entries: u64,
    fence_every: u64,
    /// The key of record `k * fence_every`, for every `k`.
    fences: Vec<Key>,
}

impl Run {
    /// Whether the run's records hold 8-byte indices.
    pub(crate) fn wide(&self) -> bool {
        self.wide
    }
}

/// Writes one run, bucket by sorted bucket.
pub(crate) struct RunWriter {
    path: PathBuf,
    file: ChunkFile,
    wide: bool,
    record: usize,
    entries: u64,
    fence_every: u64,
    fences: Vec<Key>,
}

impl RunWriter {
    /// Creates the run file `path` for records of `V`, written through `io`.
    pub(crate) fn create<V: Element>(io: &mut ChunkIo, path: &Path, wide: bool, fence_every: u64) -> Result<RunWriter> {
        Ok(RunWriter {
            path: path.to_path_buf(),
            file: io.create(path)?,
            wide,
            record: record_bytes::<V>(wide),
            entries: 0,
            fence_every: fence_every.max(1),
            fences: Vec::new(),
        })
    }

    /// Appends a bucket sorted with [`Encoding::Run`] of this run's width (after everything before it).
    pub(crate) fn push<V: Element>(&mut self, bucket: &SortedBucket<V>) -> Result<()> {
        self.push_bytes(&bucket.index_bytes)
    }

    /// Appends whole records of this run's width, sorted, after everything before them.
    pub(crate) fn push_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let n = (bytes.len() / self.record) as u64;
        let mut fence = self.entries.next_multiple_of(self.fence_every);
        while fence < self.entries + n {
            let at = (fence - self.entries) as usize * self.record;
            self.fences.push(key_of(&bytes[at..], self.wide));
            fence += self.fence_every;
        }
        self.entries += n;
        self.file.write(bytes)
    }

    /// Bytes written so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.file.len()
    }

    /// Queues the run's last bytes; it can be read once its [`ChunkIo`] has passed a barrier.
    pub(crate) fn finish(self) -> Result<Run> {
        self.file.finish_with(false)?;
        Ok(Run {
            path: self.path,
            wide: self.wide,
            entries: self.entries,
            fence_every: self.fence_every,
            fences: self.fences,
        })
    }
}

/// A run opened for reading.
struct RunFile {
    file: File,
    direct: bool,
    path: PathBuf,
    wide: bool,
    record: usize,
}

/// Reads runs with direct I/O through one page-aligned buffer.
struct Reader {
    files: Vec<RunFile>,
    buf: Option<MmapMut>,
}

impl Reader {
    fn open<V: Element>(runs: &[Run]) -> Result<Reader> {
        let mut files = Vec::with_capacity(runs.len());
        for run in runs {
            let file = File::open(&run.path).map_err(|e| Error::io(&run.path, "opening a sorted run", e))?;
            let len = file.metadata().map_err(|e| Error::io(&run.path, "reading a sorted run's size", e))?.len();
            let record = record_bytes::<V>(run.wide);
            if len != run.entries * record as u64 {
                return Err(Error::corrupt(
                    &run.path,
                    format!("sorted run holds {len} bytes, {} expected", run.entries * record as u64),
                ));
            }
            // A filesystem without direct I/O is read through the page cache.
            let direct = set_direct(&file, true).unwrap_or(false);
            files.push(RunFile { file, direct, path: run.path.clone(), wide: run.wide, record });
        }
        Ok(Reader { files, buf: None })
    }

    /// Records `first..first + count` of run `r`, as bytes.
    fn records(&mut self, r: usize, first: u64, count: u64) -> Result<&[u8]> {
        let f = &mut self.files[r];
        let (from, to) = (first * f.record as u64, (first + count) * f.record as u64);
        let aligned = from & !4095;
        let span = ((to - aligned).next_multiple_of(4096)) as usize;
        if self.buf.as_ref().map_or(true, |b| b.len() < span) {
            let size = span.max(PIECE_BYTES + 2 * 4096);
            self.buf = Some(MmapMut::map_anon(size).map_err(|e| Error::io(&f.path, "allocating a read buffer", e))?);
        }
        let buf = self.buf.as_mut().expect("allocated above");
        let mut got = 0usize;
        while aligned + (got as u64) < to {
            match f.file.read_at(&mut buf[got..span], aligned + got as u64) {
                Ok(0) => return Err(Error::corrupt(&f.path, "sorted run ends early")),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if f.direct && is_einval(&e) => {
                    // Direct I/O refused (alignment after a short read, or the filesystem): buffered.
                    set_direct(&f.file, false).map_err(|e| Error::io(&f.path, "reading a sorted run", e))?;
                    f.direct = false;
                }
                Err(e) => return Err(Error::io(&f.path, "reading a sorted run", e)),
            }
        }
        let skip = (from - aligned) as usize;
        Ok(&buf[skip..skip + (to - from) as usize])
    }

    /// The key of record `k` of run `r`.
    fn key_at(&mut self, r: usize, k: u64) -> Result<Key> {
        let wide = self.files[r].wide;
        Ok(key_of(self.records(r, k, 1)?, wide))
    }

    /// The first record of run `r` in `lo..hi` whose key is not below `key` (`hi` if none).
    fn lower_bound(&mut self, r: usize, mut lo: u64, mut hi: u64, key: Key) -> Result<u64> {
        while hi - lo > SEARCH_SPAN {
            let mid = lo + (hi - lo) / 2;
            if self.key_at(r, mid)? < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let (wide, record) = (self.files[r].wide, self.files[r].record);
        let bytes = self.records(r, lo, hi - lo)?;
        let below = bytes.chunks_exact(record).take_while(|rec| key_of(rec, wide) < key).count();
        Ok(lo + below as u64)
    }
}

/// Where a window's sorted buckets belong: their outer indices are relative to `outer_offset`, and
/// when the window ends inside an outer index, `split` is that index (its entries continue in the
/// next window).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) outer_offset: u64,
    pub(crate) split: Option<u64>,
}

/// Most runs [`merge`] reads at once with windows of `capacity` entries and fences every
/// `fence_every` records: each run may add up to `fence_every` records to a window beyond what the
/// planner counts, so they must take at most a quarter of it.
pub(crate) fn max_fan_in(capacity: usize, fence_every: u64) -> usize {
    ((capacity as u64 / (4 * fence_every.max(1))) as usize).clamp(2, 256)
}

/// Records between fences for windows of `capacity` entries: about a thousand fences per full run.
pub(crate) fn fence_interval(capacity: usize) -> u64 {
    ((capacity / 1024).max(1) as u64).next_power_of_two().min(1 << 16)
}

/// Merges `runs` (in input order, written with the same fence interval) in windows of at most
/// `capacity` entries: each window is sorted with `combine` and handed to `emit` bucket by bucket,
/// encoded by `encode` (given the window's outer offset), in key order.
///
/// # Errors
///
/// A run that is not what its writer wrote, an I/O error, a duplicate under the `error` policy, or
/// whatever `emit` returns.
pub(crate) fn merge<V: Element>(
    runs: &[Run],
    capacity: usize,
    layout: Layout,
    combine: Combine,
    encode: &dyn Fn(u64) -> Encoding,
    emit: &mut (dyn FnMut(Window, &SortedBucket<V>) -> Result<()> + Send),
) -> Result<()> {
    if runs.is_empty() {
        return Ok(());
    }
    let every = runs[0].fence_every;
    // A window can always hold one fence interval of every run, which guarantees progress; the
    // builder's fan-in keeps that within `capacity` except for the tiny chunks of tests.
    let cap = (capacity as u64).max(runs.len() as u64 * every);
    let sizes: Vec<u64> = runs.iter().map(|r| r.entries).collect();
    let mut candidates: Vec<(Key, usize, u64)> = runs
        .iter()
        .enumerate()
        .flat_map(|(r, run)| run.fences.iter().enumerate().map(move |(m, &k)| (k, r, m as u64)))
        .collect();
    candidates.sort_unstable();
    let wide = runs.iter().any(|r| r.wide);
    let mut reader = Reader::open::<V>(runs)?;
    // One chunk for every window, so that its entry buffers are reused.
    let mut chunk = Chunk::<V>::recycling(Bucketer::new(1, layout, None));
    // Per run: fences passed (their keys are below the next boundary considered), and the first
    // record not yet merged.
    let mut passed = vec![0u64; runs.len()];
    let mut start = vec![0u64; runs.len()];
    let mut next = 0usize;
    let mut lower: Option<Key> = None;
    // Records of run `r` below a key that `p` fences lie below, at most, not yet merged.
    let bound = |r: usize, p: u64, start: &[u64]| (p * every).min(sizes[r]).saturating_sub(start[r]);
    while start.iter().zip(&sizes).any(|(s, n)| s < n) {
        crate::interrupt::check()?;
        // The largest candidate boundary whose bound fits, walking on a copy of the counts.
        let mut trial = passed.clone();
        let mut need: u64 = (0..runs.len()).map(|r| bound(r, trial[r], &start)).sum();
        let mut j = next;
        let mut best: Option<(Option<Key>, usize)> = None;
        loop {
            if j == candidates.len() {
                if need <= cap {
                    best = Some((None, j));
                }
                break;
            }
            let key = candidates[j].0;
            if above(lower, key) {
                if need > cap {
                    break;
                }
                best = Some((Some(key), j));
            }
            while j < candidates.len() && candidates[j].0 == key {
                let (_, r, m) = candidates[j];
                need -= bound(r, trial[r], &start);
                trial[r] = m + 1;
                need += bound(r, trial[r], &start);
                j += 1;
            }
        }
        let Some((upper, stop)) = best else {
            return Err(Error::invalid(format!(
                "merging {} sorted runs: no window of at most {capacity} entries fits (the builder's \
                 fan-in is too large for its chunk)",
                runs.len()
            )));
        };
        for &(_, r, m) in &candidates[next..stop] {
            passed[r] = m + 1;
        }
        next = stop;
        // Round down to the start of the boundary's outer index, if the window still moves forward.
        let upper = upper.map(|(o, i)| if i > 0 && above(lower, (o, 0)) { (o, 0) } else { (o, i) });
        let mut end = sizes.clone();
        if let Some(key) = upper {
            for r in 0..runs.len() {
                let hi = (passed[r] * every).min(sizes[r]).max(start[r]);
                end[r] = reader.lower_bound(r, start[r], hi, key)?;
            }
        }
        let offset = lower.map_or(0, |k| k.0);
        let last_outer = match upper {
            Some((o, _)) => o,
            None => {
                let mut last = offset;
                for r in 0..runs.len() {
                    if end[r] > start[r] {
                        last = last.max(reader.key_at(r, end[r] - 1)?.0);
                    }
                }
                last
            }
        };
        let entries: u64 = (0..runs.len()).map(|r| end[r] - start[r]).sum();
        let split = upper.filter(|k| k.1 > 0).map(|k| k.0);
        let parts: Vec<usize> = (0..runs.len()).filter(|&r| end[r] > start[r]).collect();
        let window = Window { outer_offset: offset, split };
        if parts.len() == 1 || (parts.len() > 1 && disjoint(&mut reader, &parts, &start, &end)?) {
            // Already in order (one run, or runs that follow each other: presorted input): no sort.
            let drop_zeros = combine.drop_zeros;
            concatenate(&mut reader, &parts, &start, &end, offset, encode(offset), drop_zeros, &mut |b| {
                emit(window, b)
            })?;
        } else if entries > 0 {
            let outer_dim = last_outer - offset + 1;
            let packed = !wide && outer_dim <= 1 << 32;
            let shape = layout.row_col(outer_dim, 1);
            let bucketer = Bucketer::new(entries as usize, layout, Some(shape));
            chunk.set_bucketer(bucketer);
            for r in 0..runs.len() {
                let (record, run_wide) = (reader.files[r].record, reader.files[r].wide);
                let per_piece = (PIECE_BYTES / record) as u64;
                let mut at = start[r];
                while at < end[r] {
                    let n = per_piece.min(end[r] - at);
                    let bytes = reader.records(r, at, n)?;
                    let block = if packed {
                        let mut entries = chunk.packed_buffer();
                        decode_packed(bytes, run_wide, offset, &mut entries);
                        Block::from_sorted_packed(entries, &bucketer)
                    } else {
                        let mut entries = chunk.wide_buffer();
                        decode_wide(bytes, run_wide, offset, &mut entries);
                        Block::from_sorted_wide(entries, &bucketer)
                    };
                    chunk.push_block(block);
                    at += n;
                }
            }
            sort::sort_chunk(&mut chunk, combine, encode(offset), &mut |bucket| emit(window, bucket))?;
        }
        start = end;
        lower = upper.or(lower);
        if upper.is_none() {
            break;
        }
    }
    Ok(())
}

/// Whether the window's records of runs `parts` (in run order) follow each other: each run's last
/// key below the next one's first.
fn disjoint(reader: &mut Reader, parts: &[usize], start: &[u64], end: &[u64]) -> Result<bool> {
    for pair in parts.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if reader.key_at(a, end[a] - 1)? >= reader.key_at(b, start[b])? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Entries per bucket handed on by [`concatenate`] (at the first row boundary past it).
const CONCAT_BUCKET: usize = 1 << 18;

/// Hands on the window's records of runs `parts`, which are in order already, as sorted buckets
/// encoded by `encode` (outer indices relative to `offset`), dropping zeros if asked: the merge of
/// presorted input without a sort. A bucket ends at a row boundary only.
#[allow(clippy::too_many_arguments)]
fn concatenate<V: Element>(
    reader: &mut Reader,
    parts: &[usize],
    start: &[u64],
    end: &[u64],
    offset: u64,
    encode: Encoding,
    drop_zeros: bool,
    emit: &mut dyn FnMut(&SortedBucket<V>) -> Result<()>,
) -> Result<()> {
    let mut bucket = SortedBucket::<V>::empty();
    let mut held = 0usize;
    for &r in parts {
        let (record, wide) = (reader.files[r].record, reader.files[r].wide);
        let value_at = if wide { 16 } else { 8 };
        let per_piece = (PIECE_BYTES / record) as u64;
        let mut at = start[r];
        while at < end[r] {
            crate::interrupt::check()?;
            let n = per_piece.min(end[r] - at);
            for rec in reader.records(r, at, n)?.chunks_exact(record) {
                let (outer, inner) = key_of(rec, wide);
                let value = V::from_le_slice(&rec[value_at..]);
                if drop_zeros && value.is_zero() {
                    bucket.zeros_dropped += 1;
                    continue;
                }
                let relative = outer - offset;
                if bucket.outers.last() != Some(&relative) {
                    if held >= CONCAT_BUCKET {
                        emit(&bucket)?;
                        bucket.clear();
                        held = 0;
                    }
                    bucket.outers.push(relative);
                    bucket.counts.push(0);
                }
                *bucket.counts.last_mut().expect("a row was just opened") += 1;
                held += 1;
                let value_bytes = &rec[value_at..value_at + V::BYTES];
                match encode {
                    Encoding::Writer(IndexType::Uint32) => {
                        bucket.index_bytes.extend_from_slice(&(inner as u32).to_le_bytes());
                        bucket.value_bytes.extend_from_slice(value_bytes);
                    }
                    Encoding::Writer(IndexType::Uint64) => {
                        bucket.index_bytes.extend_from_slice(&inner.to_le_bytes());
                        bucket.value_bytes.extend_from_slice(value_bytes);
                    }
                    Encoding::Run { wide, outer_offset } => {
                        put_record(&mut bucket.index_bytes, wide, relative + outer_offset, inner, value_bytes)
                    }
                    #[cfg(test)]
                    Encoding::Entries => {
                        bucket.inners.push(inner);
                        bucket.values.push(value);
                    }
                }
            }
            at += n;
        }
    }
    if !bucket.outers.is_empty() || bucket.zeros_dropped > 0 {
        emit(&bucket)?;
    }
    Ok(())
}

/// Decodes sorted records into `out`, outer indices made relative to `offset` (the window's relative
/// outer indices and every inner index fit 32 bits).
fn decode_packed<V: Element>(bytes: &[u8], wide: bool, offset: u64, out: &mut Vec<Packed<V>>) {
    let record = record_bytes::<V>(wide);
    let value_at = if wide { 16 } else { 8 };
    out.extend(bytes.chunks_exact(record).map(|rec| {
        let (outer, inner) = key_of(rec, wide);
        Packed { outer: (outer - offset) as u32, inner: inner as u32, value: V::from_le_slice(&rec[value_at..]) }
    }));
}

/// As [`decode_packed`], into full-width entries.
fn decode_wide<V: Element>(bytes: &[u8], wide: bool, offset: u64, out: &mut Vec<Entry<V>>) {
    let record = record_bytes::<V>(wide);
    let value_at = if wide { 16 } else { 8 };
    out.extend(bytes.chunks_exact(record).map(|rec| {
        let (outer, inner) = key_of(rec, wide);
        Entry { outer: outer - offset, inner, value: V::from_le_slice(&rec[value_at..]) }
    }));
}

/// Whether `key` lies above a window's lower bound (`None`: no bound yet).
fn above(lower: Option<Key>, key: Key) -> bool {
    lower.map_or(true, |l| l < key)
}
