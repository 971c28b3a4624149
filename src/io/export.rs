//! Matrix Market (`.mtx`) coordinate output.
//!
//! Export streams segment by segment: each segment is mapped, its entries are formatted in parallel
//! in blocks of [`BLOCK_ENTRIES`], a bounded window of blocks at a time, written in order, and the
//! segment is unmapped before the next is touched. Memory is one segment's map plus the window of text
//! blocks, whatever the matrix size. A CSC matrix is written column by column; Matrix Market readers
//! accept entries in any order.

use crate::element::{match_indices, with_value_type, Element};
use crate::error::{Error, Result};
use crate::format::ValueType;
use crate::matrix::Matrix;
use crate::segment::MappedSegment;
use crate::storage::AtomicFile;
use rayon::prelude::*;
use std::io::Write;
use std::path::Path;

/// Entries formatted per parallel task: about 5 MB of text.
pub const BLOCK_ENTRIES: usize = 1 << 18;

/// The Matrix Market field of a value type.
pub fn field_name(value_type: ValueType) -> &'static str {
    match value_type {
        ValueType::Float64 | ValueType::Float32 => "real",
        ValueType::Int64 => "integer",
        ValueType::Pattern => "pattern",
    }
}

/// Writes `matrix` as Matrix Market coordinate text (general symmetry, 1-based indices) to `out`.
/// Floats are written in the shortest form that reads back to the same value. `progress` is called
/// with the number of entries written so far. Returns the number of bytes written.
///
/// # Errors
///
/// [`Error::Io`] (naming `out_name`) when writing fails, including a closed pipe
/// ([`Error::is_broken_pipe`]); [`Error::Corrupt`] when a segment's structure is broken;
/// [`Error::Interrupted`] when [`interrupt`](crate::interrupt) cancellation was requested.
pub fn write_matrix_market(
    matrix: &Matrix,
    out: &mut dyn Write,
    out_name: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    let write_err = |e| Error::io(out_name, "writing Matrix Market output", e);
    let (rows, cols) = matrix.shape();
    let header = format!(
        "%%MatrixMarket matrix coordinate {} general\n% written by sparsedisk {} from a {} {} matrix\n{rows} {cols} {}\n",
        field_name(matrix.value_type()),
        env!("CARGO_PKG_VERSION"),
        matrix.layout(),
        matrix.value_type(),
        matrix.nnz()
    );
    out.write_all(header.as_bytes()).map_err(write_err)?;
    let mut bytes = header.len() as u64;
    let mut done = 0u64;
    let window = 2 * rayon::current_num_threads().max(1);
    for seg in crate::scan::scan(matrix) {
        let seg = seg?;
        // Formatting indexes the arrays through the row pointers and indices: check them all first so
        // a corrupt file gives an error, not a panic.
        seg.check_structure()?;
        let blocks = row_blocks(seg.indptr(), BLOCK_ENTRIES);
        for group in blocks.chunks(window) {
            crate::interrupt::check()?;
            let texts: Vec<Vec<u8>> = group.par_iter().map(|&(a, b)| format_rows(&seg, a, b)).collect();
            for text in texts {
                out.write_all(&text).map_err(write_err)?;
                bytes += text.len() as u64;
            }
            done += group.iter().map(|&(a, b)| seg.indptr()[b] - seg.indptr()[a]).sum::<u64>();
            progress(done);
        }
    }
    out.flush().map_err(write_err)?;
    Ok(bytes)
}

/// Exports `matrix` to the file `path` (`-` for standard output). The file appears complete or not at
/// all: it is written under a temporary name and renamed into place.
///
/// # Errors
///
/// As [`write_matrix_market`]; [`Error::InvalidInput`] when `path` is inside a matrix directory
/// ([`refuse_inside_matrix`](super::refuse_inside_matrix)).
pub fn export_matrix_market(matrix: &Matrix, path: &Path, progress: &mut dyn FnMut(u64)) -> Result<u64> {
    if path.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut lock = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        return write_matrix_market(matrix, &mut lock, Path::new("<stdout>"), progress);
    }
    super::refuse_inside_matrix(path)?;
    let mut file = AtomicFile::create(path)?;
    let bytes = write_matrix_market(matrix, file.writer(), path, progress)?;
    file.commit(true)?;
    Ok(bytes)
}

/// Splits the band's outer indices into `[a, b)` ranges of about `target` entries each (a range always
/// holds at least one outer index, so a huge row is one block).
fn row_blocks(indptr: &[u64], target: usize) -> Vec<(usize, usize)> {
    let outer = indptr.len().saturating_sub(1);
    let mut blocks = Vec::new();
    let mut a = 0;
    while a < outer {
        let limit = indptr[a] + target as u64;
        // First b > a with indptr[b] > limit, minus one: the largest range within the target.
        let b = a + 1 + indptr[a + 1..=outer].partition_point(|&p| p <= limit).saturating_sub(1);
        let b = b.max(a + 1).min(outer);
        blocks.push((a, b));
        a = b;
    }
    blocks
}

fn format_rows(seg: &MappedSegment, a: usize, b: usize) -> Vec<u8> {
    let values = seg.values();
    // A vector of `()` never allocates: pattern entries get a slice to index like the others.
    let units = vec![(); seg.nnz() as usize];
    with_value_type!(values.value_type(), |V| {
        let values = V::stored_slice(values, &units).unwrap_or(&[]);
        match_indices!(seg.indices(), |ix| format_rows_typed(seg, ix, values, a, b))
    })
}

/// Formats entries of band-local outer indices `a..b`. Monomorphised per index and value type so the
/// inner loop does no dispatch; the outer index's text is formatted once per row, not per entry.
fn format_rows_typed<I: Copy + Into<u64>, V: Element>(
    seg: &MappedSegment,
    indices: &[I],
    values: &[V],
    a: usize,
    b: usize,
) -> Vec<u8> {
    let indptr = seg.indptr();
    let csr = seg.layout() == crate::Layout::Csr;
    let entries = (indptr[b] - indptr[a]) as usize;
    let mut out = Vec::with_capacity(entries * 24);
    let mut outer_text = itoa::Buffer::new();
    let mut ints = itoa::Buffer::new();
    for local in a..b {
        let outer = outer_text.format(seg.start() + local as u64 + 1).as_bytes();
        for k in indptr[local] as usize..indptr[local + 1] as usize {
            let inner = ints.format(indices[k].into() + 1).as_bytes();
            let (first, second) = if csr { (outer, inner) } else { (inner, outer) };
            out.extend_from_slice(first);
            out.push(b' ');
            out.extend_from_slice(second);
            if V::BYTES > 0 {
                out.push(b' ');
                values[k].write_text(&mut out);
            }
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_blocks_cover_every_row_once() {
        let indptr = [0u64, 3, 3, 10, 11, 30, 31];
        for target in [1, 2, 5, 100] {
            let blocks = row_blocks(&indptr, target);
            let mut next = 0;
            for &(a, b) in &blocks {
                assert_eq!(a, next);
                assert!(b > a);
                next = b;
            }
            assert_eq!(next, 6);
        }
        assert!(row_blocks(&[0], 4).is_empty());
    }
}
