//! PageRank by power iteration, exactly as `anchors.py pagerank` (and NetworkX) define it.

use super::{operator, require_square, Iteration, SquareAs, CHUNK};
use crate::error::{Error, Result};
use crate::kernels::dense_vector;
use crate::matrix::Matrix;
use rayon::prelude::*;
use std::time::Instant;

/// Options of [`pagerank`].
#[derive(Debug, Clone, PartialEq)]
pub struct PagerankOptions {
    /// Probability of following an edge (the rest teleports uniformly). In `[0, 1]`.
    pub damping: f64,
    /// Stop when the L1 change of the rank vector falls below this.
    pub tol: f64,
    /// Stop after this many iterations, converged or not ([`PagerankResult::converged`] tells).
    pub max_iter: usize,
    /// Matrix bytes kept resident across iterations (`None`: [`Operator::default_resident_bytes`]).
    ///
    /// [`Operator::default_resident_bytes`]: crate::kernels::Operator::default_resident_bytes
    pub resident_bytes: Option<u64>,
}

impl Default for PagerankOptions {
    fn default() -> Self {
        PagerankOptions { damping: 0.85, tol: 1e-10, max_iter: 1000, resident_bytes: None }
    }
}

/// What [`pagerank`] computed.
#[derive(Debug, Clone)]
pub struct PagerankResult {
    /// The rank of each vertex (they sum to 1).
    pub ranks: Vec<f64>,
    /// Iterations run.
    pub iterations: usize,
    /// L1 change of the last iteration.
    pub delta: f64,
    /// Whether `delta < tol`.
    pub converged: bool,
}

/// PageRank of the graph whose stored entry `(i, j)` is an edge `i -> j` weighted by its value
/// (pattern matrices: weight 1).
///
/// Each row is normalised by its sum (the vertex's out-weight); vertices with no out-weight
/// (dangling) spread their rank uniformly; teleport is uniform; iteration `k` computes
/// `r' = d (A^T (r / out) + dangling_mass / n) + (1 - d) / n` from `r_0 = 1 / n` and stops when
/// `|r' - r|_1 < tol`. One product per iteration (`A^T x`: a gather on CSC, a scatter on CSR) plus one
/// pass over the rank vectors that forms `r'`, its change, the next dangling mass and the next
/// product's operand together. A first product computes the out-weights (`A 1`).
///
/// # Errors
///
/// [`Error::InvalidInput`] for a matrix that is not square or has no rows, a damping outside
/// `[0, 1]`, or ranks that stop being finite (possible only with negative weights); errors of the product ([`Error::Corrupt`], [`Error::Io`]).
pub fn pagerank(
    matrix: &Matrix,
    options: &PagerankOptions,
    progress: &mut dyn FnMut(&Iteration),
) -> Result<PagerankResult> {
    let n = require_square(matrix, "PageRank", SquareAs::Graph, true)?;
    let d = options.damping;
    if !(0.0..=1.0).contains(&d) {
        return Err(Error::invalid(format!("the damping factor must lie in [0, 1], not {d}")));
    }
    let op = operator(matrix, options.resident_bytes, 5)?;
    // Out-weights: A 1.
    let ones = vec![1.0; n];
    let mut inv_out = dense_vector(n);
    op.spmv(1.0, &ones, 0.0, &mut inv_out)?;
    drop(ones);
    let dangling: Vec<bool> = inv_out.par_iter().map(|&w| w == 0.0).collect();
    inv_out.par_iter_mut().for_each(|w| *w = if *w == 0.0 { 0.0 } else { 1.0 / *w });

    let nf = n as f64;
    let mut rank = vec![1.0 / nf; n];
    let mut next = dense_vector(n);
    let mut scaled = dense_vector(n); // r / out, the product's operand
    scaled.par_iter_mut().zip(&inv_out).for_each(|(s, &w)| *s = w / nf);
    let mut dangling_mass = dangling.iter().filter(|&&x| x).count() as f64 / nf;
    let mut delta = f64::INFINITY;
    let mut iterations = 0;
    while iterations < options.max_iter {
        let started = Instant::now();
        op.spmv_transpose(1.0, &scaled, 0.0, &mut next)?;
        let base = d * dangling_mass / nf + (1.0 - d) / nf;
        // r' = d * next + base; its L1 change; the next operand and dangling mass: one pass.
        let partials: Vec<(f64, f64)> = next
            .par_chunks_mut(CHUNK)
            .zip(rank.par_chunks_mut(CHUNK))
            .zip(scaled.par_chunks_mut(CHUNK))
            .enumerate()
            .map(|(c, ((new, old), op_in))| {
                let at = c * CHUNK;
                let (mut change, mut mass) = (0.0, 0.0);
                for i in 0..new.len() {
                    let r = d * new[i] + base;
                    change += (r - old[i]).abs();
                    if dangling[at + i] {
                        mass += r;
                    }
                    old[i] = r;
                    op_in[i] = r * inv_out[at + i];
                }
                (change, mass)
            })
            .collect();
        delta = partials.iter().map(|p| p.0).sum();
        dangling_mass = partials.iter().map(|p| p.1).sum();
        iterations += 1;
        progress(&Iteration { iteration: iterations, figure: delta, seconds: started.elapsed().as_secs_f64() });
        if !delta.is_finite() {
            return Err(Error::invalid(format!(
                "PageRank diverged at iteration {iterations}: the ranks are no longer finite (negative \
                 edge weights, or rows whose weights sum to nearly zero, make the iteration unstable)"
            )));
        }
        if delta < options.tol {
            break;
        }
    }
    Ok(PagerankResult { ranks: rank, iterations, delta, converged: delta < options.tol })
}
