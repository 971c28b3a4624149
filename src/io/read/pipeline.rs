//! The data pass: a reader thread cuts the text into blocks, batches of blocks are parsed in parallel,
//! and results are checked and handed on in file order.

use super::mtx::{self, ArrayCursor, MtxLayout};
use super::parsed::Parsed;
use super::source::{self, Block, Msg};
use super::{csv, edge, lex, Dialect, Element, ReadSummary, Symmetry, TripletReader};
use crate::element::Triplet;
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::path::Path;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};
use std::sync::Mutex;

/// A batch of blocks, what parsing (and preparing) them produced, and the reading failure that ended
/// it, if any.
type ParsedBatch<V, T> = (Vec<Block>, Vec<(Parsed<V>, Option<T>)>, Option<Msg>);

/// Work on a block's triplets done by the parse worker that parsed them, in parallel, before they are
/// handed on in file order (array files: in the ordered step, once their coordinates are known).
pub(crate) type Prepare<'a, V, T> = dyn Fn(&[Triplet<V>]) -> T + Sync + 'a;

/// Takes each block's triplets in file order, with what [`Prepare`] made of them.
pub(crate) type Sink<'a, V, T> = dyn FnMut(&[Triplet<V>], T) -> Result<()> + Send + 'a;

/// Parses one block of text, given a capacity hint for its output.
type BlockParser<'a, V> = dyn Fn(&[u8], usize, Vec<Triplet<V>>) -> Parsed<V> + Sync + 'a;

/// Running totals over the blocks handed on so far.
struct State {
    /// Line number of the first line of the next block.
    next_line: u64,
    bytes: u64,
    entries: u64,
    triplets: u64,
    max_row: Option<u64>,
    max_col: Option<u64>,
    /// The last byte of the text seen so far was `\n` (or there is no data).
    ends_with_newline: bool,
    /// Data bytes parsed and triplets (array: values) they gave, for sizing the next vectors.
    parsed_bytes: u64,
    parsed_items: u64,
}

impl State {
    /// A capacity for a block of `len` bytes: from the ratio seen so far, else a line of 24 bytes.
    fn capacity(&self, len: usize) -> usize {
        let estimate = if self.parsed_bytes > 0 {
            (len as u128 * self.parsed_items as u128 / self.parsed_bytes as u128) as usize
        } else {
            len / 24
        };
        estimate + estimate / 16 + 16
    }
}

pub(crate) fn run<V: Element, T: Send>(
    reader: TripletReader,
    prepare: &Prepare<'_, V, T>,
    sink: &mut Sink<'_, V, T>,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<ReadSummary> {
    let TripletReader { path, dialect, prefix, block_bytes, threads, .. } = reader;
    let rest = prefix.into_rest();
    let threads = threads.unwrap_or_else(rayon::current_num_threads).max(1);
    let parse: Box<BlockParser<'_, V>> = match &dialect {
        Dialect::Mtx(lay) if lay.array => Box::new(|b, cap, _| mtx::parse_array::<V>(b, cap)),
        Dialect::Mtx(lay) => Box::new(move |b, cap, buf| mtx::parse_coordinate::<V>(b, lay, cap, buf)),
        Dialect::Edge(lay) => Box::new(move |b, cap, buf| edge::parse_block::<V>(b, lay, cap, buf)),
        Dialect::Csv(lay) => Box::new(move |b, cap, buf| csv::parse_block::<V>(b, lay, cap, buf)),
    };
    let mtx_layout = match &dialect {
        Dialect::Mtx(lay) => Some(lay),
        _ => None,
    };
    let state = State {
        next_line: rest.lines + 1,
        bytes: rest.bytes,
        entries: 0,
        triplets: 0,
        max_row: None,
        max_col: None,
        ends_with_newline: true,
        parsed_bytes: 0,
        parsed_items: 0,
    };
    let head_lines = rest.lines;
    let action = rest.input.action;
    let stored = rest.input.stored;
    let input = rest.input.reader;
    let (carry, eof) = (rest.carry, rest.eof);
    std::thread::scope(|scope| {
        // One batch queued: reading is far faster than parsing, and each queued block is memory the
        // budget pays for (`import::parser_reserve`).
        let (tx, rx) = sync_channel(threads);
        let (recycle_tx, recycle_rx) = channel();
        scope.spawn(move || source::read_blocks(input, stored, carry, eof, block_bytes, tx, recycle_rx));
        let shown = source::shown(&path);
        let ordered = Ordered {
            path: &shown,
            mtx: mtx_layout,
            cursor: mtx_layout.filter(|l| l.array).map(ArrayCursor::new),
            state,
            recycle: recycle_tx,
        };
        // `rx` is dropped when `consume` returns, so on an early error the reader thread stops at its next send.
        ordered.consume(rx, threads, &*parse, prepare, action, head_lines, sink, progress)
    })
}

/// The in-order half of the pipeline.
struct Ordered<'a> {
    path: &'a Path,
    mtx: Option<&'a MtxLayout>,
    cursor: Option<ArrayCursor>,
    state: State,
    recycle: Sender<Vec<u8>>,
}

impl Ordered<'_> {
    fn error(&self, line: u64, msg: String) -> Error {
        Error::Parse { path: self.path.to_path_buf(), line, msg }
    }

    #[allow(clippy::too_many_arguments)]
    fn consume<V: Element, T: Send>(
        mut self,
        rx: Receiver<Msg>,
        threads: usize,
        parse: &BlockParser<'_, V>,
        prepare: &Prepare<'_, V, T>,
        action: &'static str,
        head_lines: u64,
        sink: &mut Sink<'_, V, T>,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<ReadSummary> {
        // Two stages overlap: while batch k is checked and handed to `sink` (the caller's sequential
        // work, e.g. the builder filling its chunk), batch k + 1 is parsed on the other threads.
        let mut pending: Option<ParsedBatch<V, T>> = None;
        let array = self.cursor.is_some();
        // Triplet buffers handed back after `sink`, for the next blocks to parse into.
        let spare: Mutex<Vec<Vec<Triplet<V>>>> = Mutex::new(Vec::new());
        let mut done = false;
        loop {
            let mut batch: Vec<Block> = Vec::with_capacity(threads);
            let mut failure = None;
            while !done && batch.len() < threads {
                match rx.recv() {
                    Ok(Msg::Block(block)) => batch.push(block),
                    Ok(other) => {
                        failure = Some(other);
                        break;
                    }
                    Err(_) => {
                        done = true;
                        break;
                    }
                }
            }
            let capacities: Vec<usize> = batch.iter().map(|b| self.state.capacity(b.text().len())).collect();
            let parse_batch = || -> Vec<(Parsed<V>, Option<T>)> {
                batch
                    .par_iter()
                    .zip(capacities)
                    .map(|(block, cap)| {
                        let buffer = spare.lock().ok().and_then(|mut s| s.pop()).unwrap_or_default();
                        let parsed = parse(block.text(), cap, buffer);
                        let prepared = (!array && parsed.error.is_none()).then(|| prepare(&parsed.triplets));
                        (parsed, prepared)
                    })
                    .collect()
            };
            let (handed, parsed) = match pending.take() {
                Some(previous) => {
                    rayon::join(|| self.hand_on_batch(previous, action, prepare, sink, progress, &spare), parse_batch)
                }
                None => (Ok(()), parse_batch()),
            };
            handed?;
            let stop = failure.is_some() || batch.is_empty();
            pending = Some((batch, parsed, failure));
            if stop {
                if let Some(last) = pending.take() {
                    self.hand_on_batch(last, action, prepare, sink, progress, &spare)?;
                }
                break;
            }
        }
        let st = &self.state;
        let data_lines = st.next_line - 1 - head_lines;
        let lines = head_lines + data_lines + u64::from(!st.ends_with_newline);
        if let Some(lay) = self.mtx {
            if st.entries < lay.declared {
                let msg = if lay.array {
                    format!(
                        "the file ended at line {lines} after {} values, but the size line (line {}) declares a {} x {} \
                         {} array of {} values",
                        st.entries, lay.header_line, lay.rows, lay.cols, lay.symmetry, lay.declared
                    )
                } else {
                    format!(
                        "the file ended at line {lines} after {} entries, but the size line (line {}) declares {}",
                        st.entries, lay.header_line, lay.declared
                    )
                };
                return Err(self.error(lines, msg));
            }
        }
        Ok(ReadSummary {
            lines,
            entries_in_file: st.entries,
            triplets: st.triplets,
            bytes: st.bytes,
            max_row: st.max_row,
            max_col: st.max_col,
        })
    }

    /// Hands on a parsed batch in order, recycles its buffers, and reports a reading failure that
    /// ended it.
    fn hand_on_batch<V: Element, T: Send>(
        &mut self,
        (batch, parsed, failure): ParsedBatch<V, T>,
        action: &'static str,
        prepare: &Prepare<'_, V, T>,
        sink: &mut Sink<'_, V, T>,
        progress: &mut (dyn FnMut(u64) + Send),
        spare: &Mutex<Vec<Vec<Triplet<V>>>>,
    ) -> Result<()> {
        let mut stored = None;
        for (block, (out, prepared)) in batch.into_iter().zip(parsed) {
            self.hand_on(block.text(), out, prepared, prepare, sink, spare)?;
            stored = Some(block.stored);
            let _ = self.recycle.send(block.data);
        }
        match failure {
            Some(Msg::Failed(e)) => return Err(Error::io(self.path, action, e)),
            Some(Msg::LongLine) => return Err(self.error(self.state.next_line, source::long_line_message())),
            _ => {}
        }
        if let Some(stored) = stored {
            progress(stored);
        }
        Ok(())
    }

    /// Checks one parsed block in file order (declared count, errors), gives array values their
    /// coordinates, updates the totals and calls `sink` (with `prepared`, or, for array values, what
    /// `prepare` makes of them now).
    fn hand_on<V: Element, T>(
        &mut self,
        data: &[u8],
        out: Parsed<V>,
        prepared: Option<T>,
        prepare: &Prepare<'_, V, T>,
        sink: &mut Sink<'_, V, T>,
        spare: &Mutex<Vec<Vec<Triplet<V>>>>,
    ) -> Result<()> {
        let first_line = self.state.next_line;
        if let Some(lay) = self.mtx {
            let remaining = lay.declared - self.state.entries;
            if out.entries > remaining {
                let (local, text) = mtx::nth_data_line(data, remaining);
                let what = if lay.array { "values" } else { "entries" };
                return Err(self.error(
                    first_line + local,
                    format!(
                        "expected the end of the data after the {} {what} declared on line {}, found another: {}",
                        lay.declared,
                        lay.header_line,
                        lex::quote(text)
                    ),
                ));
            }
        }
        if let Some((local, msg)) = out.error {
            return Err(self.error(first_line + local, msg));
        }
        let (triplets, max_row, max_col) = match self.cursor.as_mut() {
            Some(cursor) => {
                let lay = self.mtx.expect("array cursors exist for Matrix Market only");
                let mirror = lay.symmetry != Symmetry::General;
                let skew = lay.symmetry == Symmetry::SkewSymmetric;
                let mut triplets = Vec::with_capacity(out.values.len() * if mirror { 2 } else { 1 });
                let (mut max_row, mut max_col) = (0, 0);
                for (k, value) in out.values.into_iter().enumerate() {
                    let (row, col) = cursor.next_position();
                    max_row = max_row.max(row);
                    max_col = max_col.max(col);
                    triplets.push(Triplet { row, col, value });
                    if mirror && row != col {
                        let mirrored = if skew {
                            match value.checked_neg() {
                                Some(v) => v,
                                None => {
                                    let (local, _) = mtx::nth_data_line(data, k as u64);
                                    return Err(self.error(first_line + local, mtx::negate_error(&value)));
                                }
                            }
                        } else {
                            value
                        };
                        max_row = max_row.max(col);
                        max_col = max_col.max(row);
                        triplets.push(Triplet { row: col, col: row, value: mirrored });
                    }
                }
                (triplets, max_row, max_col)
            }
            None => (out.triplets, out.max_row, out.max_col),
        };
        let st = &mut self.state;
        st.next_line += out.newlines;
        st.bytes += data.len() as u64;
        st.entries += out.entries;
        st.triplets += triplets.len() as u64;
        st.parsed_bytes += data.len() as u64;
        st.parsed_items += if self.cursor.is_some() { out.entries } else { triplets.len() as u64 };
        if let Some(&last) = data.last() {
            st.ends_with_newline = last == b'\n';
        }
        if !triplets.is_empty() {
            st.max_row = Some(st.max_row.map_or(max_row, |m| m.max(max_row)));
            st.max_col = Some(st.max_col.map_or(max_col, |m| m.max(max_col)));
            let prepared = prepared.unwrap_or_else(|| prepare(&triplets));
            sink(&triplets, prepared)?;
        }
        // Recycle the allocation: a fresh one per block would cost the kernel a zeroed page for every
        // 4 KiB of triplets, on every block.
        if let Ok(mut spare) = spare.lock() {
            spare.push(triplets);
        }
        Ok(())
    }
}
