//! Graph and PDE algorithms over matrices on disk: [`pagerank()`], breadth-first search ([`bfs()`]),
//! weakly connected components ([`components()`]) and the conjugate gradient method ([`cg()`]).
//!
//! Each streams the matrix through an [`Operator`], so it runs out of core
//! under the same page-cache policy as the products: a resident part kept across iterations, the rest
//! read ahead and released. Vectors (ranks, levels, labels, the CG vectors) are held in memory: `n`
//! elements each, small beside the matrix for the matrices this library is for.
//!
//! **One pass over the matrix per iteration**, and what can be fused into it is: PageRank's
//! normalisation, dangling mass and convergence test ride on the single vector loop that follows
//! its product; CG's `p . Ap` is computed while each band of `Ap` is still in cache
//! ([`Operator::spmv_dot`](crate::kernels::Operator::spmv_dot)), and its updates of `x` and `r` and
//! the residual norm share one loop. Connected components take one pass in all
//! (union-find); a BFS level reads only the rows of its frontier (CSR) or makes one pass (CSC).
//!
//! **Determinism.** Reductions over vectors use chunks of a fixed size ([`CHUNK`]) summed in order, so
//! the vector parts do not depend on the thread count; products do as the kernels document (gathers
//! do not, scatters depend on the thread count). BFS levels and component labels are exact.
//!
//! Every algorithm reports each iteration to a callback (`&mut dyn FnMut(&Iteration)`), which the
//! command line turns into a progress line.

mod bfs;
mod cg;
mod components;
mod pagerank;

pub use bfs::{bfs, BfsResult};
pub use cg::{cg, CgOptions, CgResult, Preconditioner};
pub use components::{components, ComponentsResult};
pub use pagerank::{pagerank, PagerankOptions, PagerankResult};

use crate::error::{Error, Result};
use crate::kernels::Operator;
use crate::matrix::Matrix;
use rayon::prelude::*;

/// Elements per chunk of the vector loops: reductions add per-chunk partial sums in chunk order, so
/// they are the same on any number of threads.
pub const CHUNK: usize = 1 << 14;

/// What one iteration did, as reported to the progress callback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Iteration {
    /// 1-based iteration number (BFS: the level just reached).
    pub iteration: usize,
    /// The convergence figure after it: PageRank's L1 change, CG's relative residual, the size of a
    /// BFS frontier.
    pub figure: f64,
    /// Seconds the iteration took.
    pub seconds: f64,
}

/// The operator an algorithm streams `matrix` through: `resident_bytes`, or the default budget for
/// `vectors` vectors of `n` doubles ([`Operator::default_resident_bytes`]).
pub(crate) fn operator<'a>(matrix: &'a Matrix, resident_bytes: Option<u64>, vectors: u64) -> Result<Operator<'a>> {
    let vector_bytes = vectors * 8 * matrix.rows().max(matrix.cols());
    Operator::new(matrix, resident_bytes.unwrap_or_else(|| Operator::default_resident_bytes(matrix, vector_bytes)))
}

/// What an algorithm reads its square matrix as: the advice for a non-square one differs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SquareAs {
    /// A linear system's operator (CG).
    Operator,
    /// A graph's adjacency matrix, whose rows and columns are both the vertices.
    Graph,
}

/// Fails unless `matrix` is square (and, with `nonempty`, has at least one row).
pub(crate) fn require_square(matrix: &Matrix, what: &str, read_as: SquareAs, nonempty: bool) -> Result<usize> {
    let (rows, cols) = matrix.shape();
    if rows != cols {
        let n = rows.max(cols);
        let advice = match read_as {
            SquareAs::Operator => String::new(),
            // The usual cause: a graph imported with rows and columns sized separately (a CSV, or
            // an edge list imported with --rectangular), so one side misses the largest vertex.
            SquareAs::Graph => format!(
                ": a graph's vertices index both its rows and its columns; re-import it with --square \
                 (or --shape {n},{n})"
            ),
        };
        return Err(Error::invalid(format!(
            "{what} needs a square matrix; {} is {rows} x {cols}{advice}",
            matrix.dir().display()
        )));
    }
    if nonempty && rows == 0 {
        return Err(Error::invalid(format!("{what} needs at least one row; the matrix is 0 x 0")));
    }
    usize::try_from(rows).map_err(|_| Error::invalid(format!("{rows} rows do not fit this platform's memory")))
}

/// `sum_i f(chunk)` over fixed-size chunks of `0..n`, in chunk order (see [`CHUNK`]).
pub(crate) fn chunked_sum(n: usize, f: impl Fn(std::ops::Range<usize>) -> f64 + Sync) -> f64 {
    let chunks = n.div_ceil(CHUNK);
    let partials: Vec<f64> = (0..chunks).into_par_iter().map(|c| f(c * CHUNK..((c + 1) * CHUNK).min(n))).collect();
    partials.iter().sum()
}

/// `x . y`, deterministic for any thread count.
pub fn dot(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len(), "dot of vectors of different lengths");
    chunked_sum(x.len(), |r| x[r.clone()].iter().zip(&y[r]).map(|(a, b)| a * b).sum())
}
