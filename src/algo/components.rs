//! Weakly connected components by union-find, in one pass over the stored entries.

use super::{operator, require_square, Iteration, SquareAs};
use crate::element::match_indices;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::segment::MappedSegment;
use std::time::Instant;

/// What [`components`] computed.
#[derive(Debug, Clone)]
pub struct ComponentsResult {
    /// The component of each vertex, named by its smallest vertex.
    pub labels: Vec<u64>,
    /// Number of components (isolated vertices count as one each).
    pub count: u64,
}

/// Weakly connected components of the graph whose stored entries `(i, j)` are edges (their direction
/// and values ignored); a vertex's label is the smallest vertex of its component.
///
/// One streamed pass over the matrix (under an [`Operator`](crate::kernels::Operator)'s cache policy
/// with `resident_bytes`, `None`: the default) joins the two ends of every entry in a union-find
/// forest held in memory (8 bytes per vertex). The forest links the larger root below the smaller, so
/// every root is its tree's smallest vertex and every vertex's parent is no larger than itself; one
/// final sweep in increasing order then labels each vertex by its parent's label. With path halving,
/// the pass costs about one random access to the forest per entry. `progress` hears once, at the end
/// of the pass (`figure`: the number of components).
///
/// # Errors
///
/// [`Error::InvalidInput`] for a matrix that is not square; [`Error::Corrupt`] for an index outside
/// the matrix; [`Error::Io`].
pub fn components(
    matrix: &Matrix,
    resident_bytes: Option<u64>,
    progress: &mut dyn FnMut(&Iteration),
) -> Result<ComponentsResult> {
    let started = Instant::now();
    let n = require_square(matrix, "connected components", SquareAs::Graph, false)?;
    let mut parent: Vec<u64> = (0..n as u64).collect();
    let op = operator(matrix, resident_bytes, 1)?;
    op.for_each_segment(|seg| join_segment(seg, &mut parent))?;
    // parent[v] <= v, so labels are final once every smaller vertex has its own.
    let mut count = 0;
    for v in 0..n {
        let p = parent[v] as usize;
        if p == v {
            count += 1;
        } else {
            parent[v] = parent[p];
        }
    }
    progress(&Iteration { iteration: 1, figure: count as f64, seconds: started.elapsed().as_secs_f64() });
    Ok(ComponentsResult { labels: parent, count })
}

fn join_segment(seg: &MappedSegment, parent: &mut [u64]) -> Result<()> {
    let joined = match_indices!(seg.indices(), |ix| join_rows(seg.indptr(), ix, seg.start(), parent));
    joined.ok_or_else(|| {
        Error::corrupt(seg.path(), "an index lies outside the matrix (run `sparsedisk verify` on the matrix)")
    })
}

/// Joins the ends of every entry of a segment's rows; `None` for an index outside the matrix.
fn join_rows<I: Copy + Into<u64>>(indptr: &[u64], ix: &[I], start: u64, parent: &mut [u64]) -> Option<()> {
    let n = parent.len() as u64;
    for (o, w) in indptr.windows(2).enumerate() {
        let a = start + o as u64;
        if a >= n {
            return None;
        }
        for &b in &ix[w[0] as usize..w[1] as usize] {
            let b: u64 = b.into();
            if b >= n {
                return None;
            }
            union(parent, a, b);
        }
    }
    Some(())
}

/// The root of `v`, halving the path on the way.
#[inline]
fn find(parent: &mut [u64], mut v: u64) -> u64 {
    loop {
        let p = parent[v as usize];
        if p == v {
            return v;
        }
        let g = parent[p as usize];
        parent[v as usize] = g;
        v = g;
    }
}

/// Joins the trees of `a` and `b`, the larger root below the smaller.
#[inline]
fn union(parent: &mut [u64], a: u64, b: u64) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra < rb {
        parent[rb as usize] = ra;
    } else if rb < ra {
        parent[ra as usize] = rb;
    }
}
