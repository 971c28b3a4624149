//! The conjugate gradient method for symmetric positive definite systems.

use super::{chunked_sum, operator, require_square, Iteration, SquareAs, CHUNK};
use crate::element::{Indices, Values};
use crate::error::{Error, Result};
use crate::kernels::dense_vector;
use crate::matrix::Matrix;
use crate::segment::MappedSegment;
use rayon::prelude::*;
use std::time::Instant;

/// A preconditioner for [`cg`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preconditioner {
    /// None: plain CG.
    #[default]
    None,
    /// Jacobi: divides the residual by the matrix's diagonal (read in one extra pass). Every diagonal
    /// entry must be positive, as in any symmetric positive definite matrix.
    Jacobi,
}

/// Options of [`cg`].
#[derive(Debug, Clone, PartialEq)]
pub struct CgOptions {
    /// Stop when `||b - A x|| / ||b||` is at most this (checked on the true residual).
    pub tol: f64,
    /// Stop after this many iterations (`None`: `10 n`, as scipy).
    pub max_iter: Option<usize>,
    /// The preconditioner.
    pub preconditioner: Preconditioner,
    /// Matrix bytes kept resident across iterations (`None`: the operator's default budget).
    pub resident_bytes: Option<u64>,
}

impl Default for CgOptions {
    fn default() -> Self {
        CgOptions { tol: 1e-8, max_iter: None, preconditioner: Preconditioner::None, resident_bytes: None }
    }
}

/// What [`cg`] computed.
#[derive(Debug, Clone)]
pub struct CgResult {
    /// The solution.
    pub x: Vec<f64>,
    /// Iterations run (products with `A`, not counting the residual checks).
    pub iterations: usize,
    /// The true relative residual `||b - A x|| / ||b||` of `x` (0 for `b = 0`).
    pub residual: f64,
    /// Whether `residual <= tol`.
    pub converged: bool,
}

/// Solves `A x = b` for a symmetric positive definite `A` by conjugate gradients from `x = 0`.
///
/// Each iteration is one streamed product `q = A p` with `p . q` computed in the same pass
/// ([`Operator::spmv_dot`](crate::kernels::Operator::spmv_dot)), then one vector loop that updates `x`
/// and `r` and forms `r . r` (with Jacobi, one more forms `z = M^-1 r` and `r . z`), then
/// `p = z + beta p`. Vectors: `x`, `r`, `p`, `q` (and `z` with Jacobi) besides `b`. When the
/// recurrence's residual meets `tol`, the true residual `b - A x` is computed (one more product): if it
/// meets `tol` too the solve ends, otherwise CG restarts from it (rounding can make the two drift
/// apart). `progress` hears each iteration's recurrence residual.
///
/// # Errors
///
/// [`Error::InvalidInput`] for a matrix that is not square, a `b` of the wrong length, a breakdown
/// (`p . A p <= 0`, or not finite: the matrix is not positive definite, or not symmetric), a Jacobi
/// preconditioner on a matrix with a diagonal entry that is not positive, or no convergence within
/// the iteration limit (the message gives the residual reached). [`Error::Corrupt`], [`Error::Io`].
pub fn cg(matrix: &Matrix, b: &[f64], options: &CgOptions, progress: &mut dyn FnMut(&Iteration)) -> Result<CgResult> {
    let n = require_square(matrix, "CG", SquareAs::Operator, false)?;
    if b.len() != n {
        return Err(Error::invalid(format!("b has {} elements; the {n} x {n} matrix needs {n}", b.len())));
    }
    let op = operator(matrix, options.resident_bytes, 6)?;
    let max_iter = options.max_iter.unwrap_or(n.saturating_mul(10));
    let b_norm = chunked_sum(n, |r| b[r].iter().map(|v| v * v).sum()).sqrt();
    let mut x = dense_vector(n);
    if b_norm == 0.0 {
        return Ok(CgResult { x, iterations: 0, residual: 0.0, converged: true });
    }
    if !b_norm.is_finite() {
        return Err(Error::invalid("b holds a value that is not finite"));
    }
    let inv_diag = match options.preconditioner {
        Preconditioner::None => None,
        Preconditioner::Jacobi => Some(inverse_diagonal(&op, n)?),
    };
    let mut r = dense_vector(n);
    r.copy_from_slice(b);
    // Without a preconditioner z is r: no fifth vector (out of core, vectors compete with the
    // matrix's pages for the memory budget).
    let mut z = match &inv_diag {
        Some(_) => dense_vector(n),
        None => Vec::new(),
    };
    let mut rz = precondition(&r, &mut z, inv_diag.as_deref());
    let mut p = dense_vector(n);
    p.copy_from_slice(z_or_r(&z, &r, &inv_diag));
    let mut q = dense_vector(n);
    let mut iterations = 0;
    loop {
        if iterations >= max_iter {
            let residual = true_residual(&op, b, &x, &mut q)? / b_norm;
            if residual <= options.tol {
                return Ok(CgResult { x, iterations, residual, converged: true });
            }
            return Err(Error::invalid(format!(
                "CG did not converge in {max_iter} iterations: relative residual {residual:.3e} > tol {:.1e}",
                options.tol
            )));
        }
        let started = Instant::now();
        let (_, pq) = op.spmv_dot(&p, &mut q, &p)?;
        iterations += 1;
        if !(pq > 0.0 && pq.is_finite()) {
            return Err(Error::invalid(format!(
                "CG broke down at iteration {iterations}: p^T A p = {pq:e}; the matrix is not symmetric \
                 positive definite"
            )));
        }
        let alpha = rz / pq;
        // x += alpha p; r -= alpha q; r . r: one pass (then z = M^-1 r and r . z with Jacobi).
        let rr: f64 = x
            .par_chunks_mut(CHUNK)
            .zip(r.par_chunks_mut(CHUNK))
            .enumerate()
            .map(|(c, (xc, rc))| {
                let at = c * CHUNK;
                let mut rr = 0.0;
                for i in 0..xc.len() {
                    xc[i] += alpha * p[at + i];
                    rc[i] -= alpha * q[at + i];
                    rr += rc[i] * rc[i];
                }
                rr
            })
            .collect::<Vec<f64>>()
            .iter()
            .sum();
        let rz_next = match &inv_diag {
            Some(d) => precondition(&r, &mut z, Some(d)),
            None => rr,
        };
        let estimate = rr.sqrt() / b_norm;
        progress(&Iteration { iteration: iterations, figure: estimate, seconds: started.elapsed().as_secs_f64() });
        if estimate <= options.tol {
            let residual = true_residual(&op, b, &x, &mut q)? / b_norm;
            if residual <= options.tol {
                return Ok(CgResult { x, iterations, residual, converged: true });
            }
            // The recurrence drifted from the truth: restart from the true residual (left in q).
            r.copy_from_slice(&q);
            rz = precondition(&r, &mut z, inv_diag.as_deref());
            p.copy_from_slice(z_or_r(&z, &r, &inv_diag));
            continue;
        }
        let beta = rz_next / rz;
        rz = rz_next;
        p.par_chunks_mut(CHUNK).zip(z_or_r(&z, &r, &inv_diag).par_chunks(CHUNK)).for_each(|(pc, zc)| {
            pc.iter_mut().zip(zc).for_each(|(pv, &zv)| *pv = zv + beta * *pv);
        });
    }
}

/// The preconditioned residual: `z` with a preconditioner, `r` itself without one.
fn z_or_r<'a>(z: &'a [f64], r: &'a [f64], inv_diag: &Option<Vec<f64>>) -> &'a [f64] {
    if inv_diag.is_some() {
        z
    } else {
        r
    }
}

/// `z = M^-1 r` (nothing without a preconditioner: `z` is `r`); returns `r . z`.
fn precondition(r: &[f64], z: &mut [f64], inv_diag: Option<&[f64]>) -> f64 {
    match inv_diag {
        None => chunked_sum(r.len(), |range| r[range].iter().map(|a| a * a).sum()),
        Some(d) => {
            z.par_iter_mut().zip(r.par_iter().zip(d)).for_each(|(zv, (rv, dv))| *zv = rv * dv);
            chunked_sum(r.len(), |range| r[range.clone()].iter().zip(&z[range]).map(|(a, b)| a * b).sum())
        }
    }
}

/// `||b - A x||`, leaving `b - A x` in `scratch`.
fn true_residual(op: &crate::kernels::Operator<'_>, b: &[f64], x: &[f64], scratch: &mut [f64]) -> Result<f64> {
    scratch.copy_from_slice(b);
    op.spmv(-1.0, x, 1.0, scratch)?;
    Ok(chunked_sum(b.len(), |r| scratch[r].iter().map(|v| v * v).sum()).sqrt())
}

/// `1 / A[i, i]` for every `i`, in one streamed pass; every diagonal entry must be positive.
fn inverse_diagonal(op: &crate::kernels::Operator<'_>, n: usize) -> Result<Vec<f64>> {
    let mut diag = vec![0.0; n];
    op.for_each_segment(|seg| diagonal_of(seg, &mut diag))?;
    if let Some((i, d)) = diag.iter().enumerate().find(|(_, d)| !(**d > 0.0 && d.is_finite())) {
        return Err(Error::invalid(format!(
            "the Jacobi preconditioner needs a positive diagonal; A[{i}, {i}] = {d}: the matrix is not \
             symmetric positive definite"
        )));
    }
    Ok(diag.iter().map(|d| 1.0 / d).collect())
}

fn diagonal_of(seg: &MappedSegment, diag: &mut [f64]) -> Result<()> {
    let indptr = seg.indptr();
    let values = seg.values();
    let indices = seg.indices();
    for (o, w) in indptr.windows(2).enumerate() {
        let outer = seg.start() + o as u64;
        let Some(slot) = diag.get_mut(outer as usize) else {
            return Err(Error::corrupt(seg.path(), "a segment lies outside the matrix"));
        };
        let (lo, hi) = (w[0] as usize, w[1] as usize);
        // Rows are sorted by inner index: a binary search finds the diagonal.
        let found = match indices {
            Indices::U32(ix) => u32::try_from(outer).ok().and_then(|t| ix[lo..hi].binary_search(&t).ok()),
            Indices::U64(ix) => ix[lo..hi].binary_search(&outer).ok(),
        };
        if let Some(k) = found {
            *slot = match values {
                Values::Pattern => 1.0,
                _ => values.get_f64(lo + k),
            };
        }
    }
    Ok(())
}
