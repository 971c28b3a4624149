//! Sorted runs spilled to the staging area, and the k-way merge that reads them back.
//!
//! A run file is a sequence of fixed-size little-endian records `outer: u64, inner: u64, value`
//! (`V::BYTES` bytes; none for pattern), sorted by `(outer, inner)` with duplicates already combined.
//! Run files live in the builder's staging directory inside the output directory and are deleted as
//! soon as the merge is done (or the builder is dropped).

use super::Entry;
use crate::element::Element;
use crate::error::{Error, Result};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes of one record of a run of `V`.
pub(crate) fn record_bytes<V: Element>() -> usize {
    16 + V::BYTES
}

/// Writes one run file.
pub(crate) struct RunWriter {
    path: PathBuf,
    out: BufWriter<File>,
    record: Vec<u8>,
    pub(crate) entries: u64,
}

impl RunWriter {
    pub(crate) fn create(path: &Path) -> Result<RunWriter> {
        let file = File::create(path).map_err(|e| Error::io(path, "creating a sorted run in the staging area", e))?;
        Ok(RunWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(4 << 20, file),
            record: Vec::new(),
            entries: 0,
        })
    }

    #[inline]
    pub(crate) fn push<V: Element>(&mut self, e: Entry<V>) -> Result<()> {
        self.record.clear();
        self.record.extend_from_slice(&e.outer.to_le_bytes());
        self.record.extend_from_slice(&e.inner.to_le_bytes());
        V::extend_le_bytes(std::slice::from_ref(&e.value), &mut self.record);
        self.entries += 1;
        if self.entries % (1 << 16) == 0 {
            // Spills and cascade merges write runs entry by entry: check every 64 Ki records.
            crate::interrupt::check()?;
        }
        self.out.write_all(&self.record).map_err(|err| Error::io(&self.path, "writing a sorted run", err))
    }

    pub(crate) fn finish(self) -> Result<PathBuf> {
        self.out.into_inner().map_err(|e| Error::io(&self.path, "writing a sorted run", e.into_error()))?;
        Ok(self.path)
    }
}

/// Reads a run file back in order.
struct RunReader<V> {
    path: PathBuf,
    input: BufReader<File>,
    record: Vec<u8>,
    _v: std::marker::PhantomData<V>,
}

impl<V: Element> RunReader<V> {
    fn open(path: &Path, buffer: usize) -> Result<RunReader<V>> {
        let file = File::open(path).map_err(|e| Error::io(path, "opening a sorted run", e))?;
        let len = file.metadata().map_err(|e| Error::io(path, "reading a sorted run's size", e))?.len();
        if len % record_bytes::<V>() as u64 != 0 {
            return Err(Error::corrupt(path, "sorted run ends in the middle of a record"));
        }
        Ok(RunReader {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(buffer, file),
            record: vec![0; record_bytes::<V>()],
            _v: std::marker::PhantomData,
        })
    }

    fn next(&mut self) -> Result<Option<Entry<V>>> {
        match self.input.read_exact(&mut self.record) {
            Ok(()) => {
                let r = &self.record;
                Ok(Some(Entry {
                    outer: u64::from_le_bytes(r[0..8].try_into().expect("8 bytes")),
                    inner: u64::from_le_bytes(r[8..16].try_into().expect("8 bytes")),
                    value: V::from_le_slice(&r[16..]),
                }))
            }
            // The length was checked to be whole records at open: end of file is the end of the run.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(Error::io(&self.path, "reading a sorted run", e)),
        }
    }
}

/// Merges `runs` (in input order) by `(outer, inner)`, handing entries to `emit` in order. Equal keys
/// come out in run order, which is input order, so order-dependent duplicate policies see them as they
/// were read.
pub(crate) fn merge<V: Element>(
    runs: &[PathBuf],
    buffer_per_run: usize,
    emit: &mut dyn FnMut(Entry<V>) -> Result<()>,
) -> Result<()> {
    let mut sources: Vec<RunReader<V>> = Vec::with_capacity(runs.len());
    for path in runs {
        sources.push(RunReader::open(path, buffer_per_run)?);
    }
    // Heap of (outer, inner, source index): ties resolve to the older source.
    let mut heads: Vec<Option<Entry<V>>> = Vec::with_capacity(sources.len());
    let mut heap = BinaryHeap::with_capacity(sources.len());
    for (i, s) in sources.iter_mut().enumerate() {
        let head = s.next()?;
        if let Some(e) = &head {
            heap.push(Reverse((e.outer, e.inner, i)));
        }
        heads.push(head);
    }
    while let Some(Reverse((_, _, i))) = heap.pop() {
        let e = heads[i].take().expect("a source in the heap has a head");
        emit(e)?;
        if let Some(next) = sources[i].next()? {
            heap.push(Reverse((next.outer, next.inner, i)));
            heads[i] = Some(next);
        }
    }
    Ok(())
}
