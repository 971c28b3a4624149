//! Breadth-first search: hop distances from a source along the stored edges.

use super::{operator, require_square, Iteration, SquareAs};
use crate::element::match_indices;
use crate::error::{Error, Result};
use crate::format::Layout;
use crate::matrix::Matrix;
use crate::segment::MappedSegment;
use rayon::prelude::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

/// What [`bfs`] computed.
#[derive(Debug, Clone)]
pub struct BfsResult {
    /// Hop distance of each vertex from the source; -1 where it cannot be reached.
    pub levels: Vec<i64>,
    /// The largest level reached (0 when only the source is).
    pub depth: usize,
    /// Vertices reached, the source included.
    pub reached: u64,
}

/// Level-synchronous breadth-first search from `source` along the edges `i -> j` of the stored
/// entries `(i, j)` (values are ignored).
///
/// On a CSR matrix each level reads only the rows of its frontier ("push"), segment by segment in
/// order, in parallel over the frontier; on a CSC matrix each level makes one streamed pass over the
/// columns not yet reached and looks for a parent in the frontier ("pull"), under the cache policy of
/// an [`Operator`](crate::kernels::Operator) with `resident_bytes` (`None`: the default budget).
/// Levels are exact whatever the thread count.
///
/// # Errors
///
/// [`Error::InvalidInput`] for a matrix that is not square or a source outside it;
/// [`Error::Corrupt`] for an index outside the matrix; [`Error::Io`].
pub fn bfs(
    matrix: &Matrix,
    source: u64,
    resident_bytes: Option<u64>,
    progress: &mut dyn FnMut(&Iteration),
) -> Result<BfsResult> {
    let n = require_square(matrix, "BFS", SquareAs::Graph, false)?;
    if source >= n as u64 {
        return Err(Error::invalid(format!("the source {source} lies outside the {n} x {n} matrix")));
    }
    let levels: Vec<AtomicI64> = (0..n).map(|_| AtomicI64::new(-1)).collect();
    levels[source as usize].store(0, Ordering::Relaxed);
    let mut frontier = vec![source];
    let mut reached = 1u64;
    let mut depth = 0usize;
    let op = if matrix.layout() == Layout::Csc { Some(operator(matrix, resident_bytes, 1)?) } else { None };
    while !frontier.is_empty() {
        let started = Instant::now();
        let next_level = depth as i64 + 1;
        let mut next = match &op {
            None => push_level(matrix, &frontier, &levels, next_level)?,
            Some(op) => {
                let mut found = Vec::new();
                op.for_each_segment(|seg| pull_segment(seg, &levels, next_level, &mut found))?;
                found
            }
        };
        next.par_sort_unstable();
        if next.is_empty() {
            break;
        }
        depth += 1;
        reached += next.len() as u64;
        progress(&Iteration { iteration: depth, figure: next.len() as f64, seconds: started.elapsed().as_secs_f64() });
        frontier = next;
    }
    Ok(BfsResult { levels: levels.into_iter().map(AtomicI64::into_inner).collect(), depth, reached })
}

fn corrupt_index(seg: &MappedSegment) -> Error {
    Error::corrupt(seg.path(), "an index lies outside the matrix (run `sparsedisk verify` on the matrix)")
}

/// One push level over a CSR matrix: the unreached targets of the frontier's rows (sorted frontier).
fn push_level(matrix: &Matrix, frontier: &[u64], levels: &[AtomicI64], level: i64) -> Result<Vec<u64>> {
    let mut next = Vec::new();
    let mut at = 0;
    for (s, entry) in matrix.segments().iter().enumerate() {
        let from = at + frontier[at..].partition_point(|&v| v < entry.start);
        let to = from + frontier[from..].partition_point(|&v| v < entry.end);
        at = to;
        if from == to {
            continue;
        }
        let seg = matrix.map_segment(s)?;
        seg.check_row_pointers()?;
        let rows = &frontier[from..to];
        let found = match_indices!(seg.indices(), |ix| push_rows(seg.indptr(), ix, entry.start, rows, levels, level));
        next.append(&mut found.ok_or_else(|| corrupt_index(&seg))?);
    }
    Ok(next)
}

/// The unreached targets of `rows` (global, inside the band starting at `start`), in parallel over
/// the rows; `None` for an index outside the matrix.
fn push_rows<I: Copy + Into<u64> + Sync>(
    indptr: &[u64],
    ix: &[I],
    start: u64,
    rows: &[u64],
    levels: &[AtomicI64],
    level: i64,
) -> Option<Vec<u64>> {
    let found: Option<Vec<Vec<u64>>> = rows
        .par_chunks(256)
        .map(|rows| {
            let mut mine = Vec::new();
            for &v in rows {
                let r = (v - start) as usize;
                for &j in &ix[indptr[r] as usize..indptr[r + 1] as usize] {
                    let j: u64 = j.into();
                    if levels.get(j as usize)?.compare_exchange(-1, level, Ordering::Relaxed, Ordering::Relaxed).is_ok()
                    {
                        mine.push(j);
                    }
                }
            }
            Some(mine)
        })
        .collect();
    Some(found?.concat())
}

/// One pull level over a band of columns: each unreached column with a stored row in the frontier
/// (level `level - 1`) gets `level`.
fn pull_segment(seg: &MappedSegment, levels: &[AtomicI64], level: i64, found: &mut Vec<u64>) -> Result<()> {
    let pulled = match_indices!(seg.indices(), |ix| pull_columns(seg.indptr(), ix, seg.start(), levels, level));
    found.append(&mut pulled.ok_or_else(|| corrupt_index(seg))?);
    Ok(())
}

/// The columns of a band (starting at `start`) reached at `level`, in parallel over blocks of
/// columns; `None` for an index outside the matrix.
fn pull_columns<I: Copy + Into<u64> + Sync>(
    indptr: &[u64],
    ix: &[I],
    start: u64,
    levels: &[AtomicI64],
    level: i64,
) -> Option<Vec<u64>> {
    let band = indptr.len() - 1;
    let chunks: Option<Vec<Vec<u64>>> = (0..band.div_ceil(1024))
        .into_par_iter()
        .map(|c| {
            let mut mine = Vec::new();
            for col in c * 1024..((c + 1) * 1024).min(band) {
                let j = start + col as u64;
                let target = levels.get(j as usize)?;
                if target.load(Ordering::Relaxed) != -1 {
                    continue;
                }
                // A parent in the frontier; every index looked at is checked, the rest not needed.
                let mut parent = false;
                for &i in &ix[indptr[col] as usize..indptr[col + 1] as usize] {
                    if levels.get(Into::<u64>::into(i) as usize)?.load(Ordering::Relaxed) == level - 1 {
                        parent = true;
                        break;
                    }
                }
                if parent {
                    target.store(level, Ordering::Relaxed);
                    mine.push(j);
                }
            }
            Some(mine)
        })
        .collect();
    Some(chunks?.concat())
}
