//! The algorithms: `pagerank`, `bfs`, `components`, `cg`. Each streams the matrix from disk under
//! the library's cache policy with the GIL released, and stops on Ctrl-C.

use crate::arrays::f64_array;
use crate::compute_interruptible;
use crate::errors::invalid;
use crate::matrix::PyMatrix;
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sparsedisk::algo::{self, CgOptions, PagerankOptions, Preconditioner};

/// PageRank of the graph whose stored entry `(i, j)` is an edge `i -> j` weighted by its value
/// (pattern: weight 1), by power iteration from the uniform vector, as NetworkX defines it
/// (dangling vertices spread their rank uniformly). Stops when the L1 change falls below `tol`, or
/// after `max_iter` iterations. Returns `(ranks, {"iterations", "delta", "converged"})`: not
/// converging is not an error here (the command line makes it one); check `converged`.
///
/// Raises InvalidInputError for a matrix that is not square, or a damping outside [0, 1].
#[pyfunction]
#[pyo3(signature = (a, *, damping = 0.85, tol = 1e-10, max_iter = 1000, threads = None))]
pub fn pagerank<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyMatrix>,
    damping: f64,
    tol: f64,
    max_iter: usize,
    threads: Option<usize>,
) -> PyResult<(Bound<'py, PyArray1<f64>>, Bound<'py, PyDict>)> {
    let m = a.get().matrix();
    let options = PagerankOptions { damping, tol, max_iter, resident_bytes: None };
    let r = compute_interruptible(py, threads, || algo::pagerank(m, &options, &mut |_| {}))?;
    let stats = PyDict::new(py);
    stats.set_item("iterations", r.iterations)?;
    stats.set_item("delta", r.delta)?;
    stats.set_item("converged", r.converged)?;
    Ok((r.ranks.into_pyarray(py), stats))
}

/// Breadth-first search from vertex `source` along the edges `i -> j` of the stored entries
/// `(i, j)`. Returns the hop distance of every vertex as an int64 array, -1 where unreachable.
///
/// Raises InvalidInputError for a matrix that is not square or a source outside it.
#[pyfunction]
#[pyo3(signature = (a, source, *, threads = None))]
pub fn bfs<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyMatrix>,
    source: u64,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let m = a.get().matrix();
    let r = compute_interruptible(py, threads, || algo::bfs(m, source, None, &mut |_| {}))?;
    Ok(r.levels.into_pyarray(py))
}

/// Weakly connected components (edge directions ignored). Returns each vertex's label, the smallest
/// vertex of its component, as an int64 array (`len(numpy.unique(labels))` components).
///
/// Raises InvalidInputError for a matrix that is not square.
#[pyfunction]
#[pyo3(signature = (a, *, threads = None))]
pub fn components<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyMatrix>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let m = a.get().matrix();
    let labels = compute_interruptible(py, threads, || {
        let r = algo::components(m, None, &mut |_| {})?;
        // Labels are vertices, below 2^63 (the largest dimension).
        Ok(r.labels.into_iter().map(|l| l as i64).collect::<Vec<i64>>())
    })?;
    Ok(labels.into_pyarray(py))
}

/// Solves `A x = b` for a symmetric positive definite `A` by conjugate gradients. `b` (and `x0`,
/// the starting point, default 0) are C-contiguous float64 arrays of `n` elements; `tol` bounds the
/// relative residual `||b - A x|| / ||b||`; `max_iter` defaults to `10 n`; `preconditioner` is
/// "none" or "jacobi". Returns `(x, {"iterations", "residual", "converged"})`.
///
/// Raises InvalidInputError for a matrix that is not square, a `b` of the wrong length, a breakdown
/// (not positive definite, or not symmetric), or no convergence within `max_iter` iterations (the
/// message gives the residual reached).
#[pyfunction]
#[pyo3(signature = (a, b, *, tol = 1e-8, max_iter = None, preconditioner = "none", x0 = None, threads = None))]
#[allow(clippy::too_many_arguments)]
pub fn cg<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyMatrix>,
    b: &Bound<'py, PyAny>,
    tol: f64,
    max_iter: Option<usize>,
    preconditioner: &str,
    x0: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
) -> PyResult<(Bound<'py, PyArray1<f64>>, Bound<'py, PyDict>)> {
    let pm = a.get();
    let m = pm.matrix();
    let n = m.rows();
    let expected = format!("a C-contiguous 1-D float64 array of {n} elements");
    let b = f64_array::<numpy::Ix1>(b, "b", &expected)?;
    let bs = b.as_slice().map_err(|e| invalid(format!("b: {e}")))?;
    let x0 = x0.map(|x| f64_array::<numpy::Ix1>(x, "x0", &expected)).transpose()?;
    let x0s = x0.as_ref().map(|x| x.as_slice().map_err(|e| invalid(format!("x0: {e}")))).transpose()?;
    if let Some(x) = x0s {
        if x.len() as u64 != n || bs.len() as u64 != n {
            return Err(invalid(format!("b and x0 must be {expected}; they have {} and {}", bs.len(), x.len())));
        }
    }
    let preconditioner = match preconditioner {
        "none" => Preconditioner::None,
        "jacobi" => Preconditioner::Jacobi,
        other => return Err(invalid(format!("unknown preconditioner {other:?}: expected \"none\" or \"jacobi\""))),
    };
    let options = CgOptions { tol, max_iter, preconditioner, resident_bytes: None };
    let r = compute_interruptible(py, threads, || {
        let Some(x0) = x0s else {
            return algo::cg(m, bs, &options, &mut |_| {});
        };
        // From x0: solve A d = b - A x0 with the tolerance scaled to ||b||, then x = x0 + d.
        let b_norm = algo::dot(bs, bs).sqrt();
        let mut r0 = bs.to_vec();
        pm.operator()?.spmv(-1.0, x0, 1.0, &mut r0)?;
        let r0_norm = algo::dot(&r0, &r0).sqrt();
        if b_norm == 0.0 || r0_norm == 0.0 {
            let x = if b_norm == 0.0 { vec![0.0; x0.len()] } else { x0.to_vec() };
            return Ok(algo::CgResult { x, iterations: 0, residual: 0.0, converged: true });
        }
        let scaled = CgOptions { tol: tol * b_norm / r0_norm, ..options.clone() };
        let mut d = algo::cg(m, &r0, &scaled, &mut |_| {})?;
        d.x.iter_mut().zip(x0).for_each(|(d, &x)| *d += x);
        d.residual *= r0_norm / b_norm;
        Ok(d)
    })?;
    let stats = PyDict::new(py);
    stats.set_item("iterations", r.iterations)?;
    stats.set_item("residual", r.residual)?;
    stats.set_item("converged", r.converged)?;
    Ok((r.x.into_pyarray(py), stats))
}
