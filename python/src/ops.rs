//! Operations that write a new matrix: `spgemm`, `transpose`, `convert`, `add`. Each returns the
//! new matrix opened and its statistics (`nnz`, `flops`, `blocks`, `conversions`, `seconds`), runs
//! with the GIL released, and stops on Ctrl-C leaving nothing behind.

use crate::arrays::to_dict;
use crate::build::{parse_layout, parse_value_type};
use crate::compute_interruptible;
use crate::matrix::PyMatrix;
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sparsedisk::builder::default_memory_budget;
use sparsedisk::format::ValueType;
use sparsedisk::ops::{self, AddOptions, OpOptions, Semiring, SpgemmOptions};
use sparsedisk::{Matrix, WriterOptions};
use std::path::PathBuf;

fn op_options(memory: Option<u64>, overwrite: bool) -> OpOptions {
    OpOptions {
        memory_budget: memory.unwrap_or_else(default_memory_budget),
        writer: WriterOptions { overwrite, ..WriterOptions::default() },
        max_chunk_entries: None,
    }
}

type Made<'py> = (PyMatrix, Bound<'py, PyDict>);

fn made<'py>(py: Python<'py>, (m, stats): (Matrix, ops::OpStats)) -> PyResult<Made<'py>> {
    Ok((PyMatrix::new(m), to_dict(py, &stats)?))
}

/// `C = A @ B` written to `path`, out of core. `semiring`: "plus-times" (ordinary), "min-plus"
/// (shortest two-hop paths) or "pattern" (structure only; a pattern result). `memory`: budget in
/// bytes (default a quarter of physical memory); `drop_zeros`: drop entries whose value is zero (as
/// scipy does; kept by default); `overwrite`: replace a matrix already in `path`. The result has
/// A's layout (B is converted first when its layout differs).
///
/// Raises InvalidInputError when A's columns differ from B's rows.
#[pyfunction]
#[pyo3(signature = (a, b, path, *, semiring = "plus-times", memory = None, threads = None, drop_zeros = false, overwrite = false))]
#[allow(clippy::too_many_arguments)]
pub fn spgemm<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyMatrix>,
    b: &Bound<'py, PyMatrix>,
    path: PathBuf,
    semiring: &str,
    memory: Option<u64>,
    threads: Option<usize>,
    drop_zeros: bool,
    overwrite: bool,
) -> PyResult<Made<'py>> {
    let semiring: Semiring = semiring.parse().map_err(crate::errors::to_py_err)?;
    let options = SpgemmOptions { op: op_options(memory, overwrite), semiring, drop_zeros, ..SpgemmOptions::default() };
    let (a, b) = (a.get().matrix(), b.get().matrix());
    let result = compute_interruptible(py, threads, || ops::spgemm(a, b, &path, &options, None))?;
    made(py, result)
}

/// The arrays of an in-memory product: row pointers (column pointers for CSC), inner indices (u32
/// when the inner dimension is below 2^31, so that Python views them as scipy's int32; else u64),
/// and values (float64 or int64; None for a pattern product).
type InMemory<'py> = (Bound<'py, PyArray1<usize>>, Bound<'py, PyAny>, Option<Bound<'py, PyAny>>);

/// The product's arrays before they become numpy arrays.
enum Product {
    Narrow(Vec<usize>, Vec<u32>, Values),
    Wide(Vec<usize>, Vec<u64>, Values),
}

enum Values {
    F64(Vec<f64>),
    I64(Vec<i64>),
    Pattern,
}

/// `C = A @ B` held in memory (the library's `spgemm_in_memory`: the same computation as `spgemm`,
/// no file written), returned as CSR arrays in A's layout (CSC arrays for a CSC A). Options as
/// [`spgemm`]; `memory` bounds B's copy, the accumulators and the product, and a product that does not
/// fit raises InvalidInputError naming the sizes.
#[pyfunction]
#[pyo3(signature = (a, b, *, semiring = "plus-times", memory = None, threads = None, drop_zeros = false))]
pub fn spgemm_in_memory<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyMatrix>,
    b: &Bound<'py, PyMatrix>,
    semiring: &str,
    memory: Option<u64>,
    threads: Option<usize>,
    drop_zeros: bool,
) -> PyResult<InMemory<'py>> {
    let semiring: Semiring = semiring.parse().map_err(crate::errors::to_py_err)?;
    let options = SpgemmOptions { op: op_options(memory, false), semiring, drop_zeros, ..SpgemmOptions::default() };
    let (a, b) = (a.get().matrix(), b.get().matrix());
    let product = compute_interruptible(py, threads, || {
        let value_type = ops::spgemm::output_value_type(a.value_type(), b.value_type(), semiring);
        let (_, inner) = a.layout().outer_inner((a.rows(), b.cols()));
        let narrow = inner <= i32::MAX as u64;
        // One instantiation per (value type, index width); the arrays are moved out, not copied.
        macro_rules! run {
            ($t:ty, $i:ty, $wrap:expr) => {{
                let (c, _) = ops::spgemm_in_memory::<$t, $i>(a, b, &options, None)?;
                let (indptr, indices, data) = c.into_raw_storage();
                (indptr, indices, $wrap(data))
            }};
        }
        Ok(match (value_type, narrow) {
            (ValueType::Pattern, true) => {
                let (p, i, v) = run!((), u32, |_| Values::Pattern);
                Product::Narrow(p, i, v)
            }
            (ValueType::Pattern, false) => {
                let (p, i, v) = run!((), u64, |_| Values::Pattern);
                Product::Wide(p, i, v)
            }
            (ValueType::Int64, true) => {
                let (p, i, v) = run!(i64, u32, Values::I64);
                Product::Narrow(p, i, v)
            }
            (ValueType::Int64, false) => {
                let (p, i, v) = run!(i64, u64, Values::I64);
                Product::Wide(p, i, v)
            }
            (_, true) => {
                let (p, i, v) = run!(f64, u32, Values::F64);
                Product::Narrow(p, i, v)
            }
            (_, false) => {
                let (p, i, v) = run!(f64, u64, Values::F64);
                Product::Wide(p, i, v)
            }
        })
    })?;
    let values = |v: Values| match v {
        Values::F64(v) => Some(v.into_pyarray(py).into_any()),
        Values::I64(v) => Some(v.into_pyarray(py).into_any()),
        Values::Pattern => None,
    };
    Ok(match product {
        Product::Narrow(p, i, v) => (p.into_pyarray(py), i.into_pyarray(py).into_any(), values(v)),
        Product::Wide(p, i, v) => (p.into_pyarray(py), i.into_pyarray(py).into_any(), values(v)),
    })
}

/// `A.T` written to `path`, in `layout` ("csr" or "csc"; None: A's). With the other layout the
/// transpose is a copy of A's arrays; with the same layout the entries are re-sorted out of core.
#[pyfunction]
#[pyo3(signature = (a, path, *, layout = None, memory = None, threads = None, overwrite = false))]
pub fn transpose<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyMatrix>,
    path: PathBuf,
    layout: Option<&str>,
    memory: Option<u64>,
    threads: Option<usize>,
    overwrite: bool,
) -> PyResult<Made<'py>> {
    let layout = layout.map(parse_layout).transpose()?;
    let options = op_options(memory, overwrite);
    let a = a.get().matrix();
    let result = compute_interruptible(py, threads, || ops::transpose(a, &path, layout, &options, None))?;
    made(py, result)
}

/// A written to `path` in `layout` ("csr" or "csc"), out of core; the same layout copies it.
#[pyfunction]
#[pyo3(signature = (a, path, layout, *, memory = None, threads = None, overwrite = false))]
pub fn convert<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyMatrix>,
    path: PathBuf,
    layout: &str,
    memory: Option<u64>,
    threads: Option<usize>,
    overwrite: bool,
) -> PyResult<Made<'py>> {
    let layout = parse_layout(layout)?;
    let options = op_options(memory, overwrite);
    let a = a.get().matrix();
    let result = compute_interruptible(py, threads, || ops::convert(a, &path, layout, &options, None))?;
    made(py, result)
}

/// `C = alpha * A + beta * B` (same shape) written to `path` in A's layout. `value_type`: the
/// result's ("float64", "float32", "int64", "pattern": the union of the structures; None: int64 when
/// both inputs and coefficients are integers, else float64); `drop_zeros`: drop entries whose value
/// is zero (kept by default).
///
/// Raises InvalidInputError when the shapes differ or a coefficient is not finite.
#[pyfunction]
#[pyo3(signature = (a, b, path, *, alpha = 1.0, beta = 1.0, value_type = None, memory = None, threads = None, drop_zeros = false, overwrite = false))]
#[allow(clippy::too_many_arguments)]
pub fn add<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyMatrix>,
    b: &Bound<'py, PyMatrix>,
    path: PathBuf,
    alpha: f64,
    beta: f64,
    value_type: Option<&str>,
    memory: Option<u64>,
    threads: Option<usize>,
    drop_zeros: bool,
    overwrite: bool,
) -> PyResult<Made<'py>> {
    let options = AddOptions {
        op: op_options(memory, overwrite),
        alpha,
        beta,
        drop_zeros,
        value_type: value_type.map(parse_value_type).transpose()?,
    };
    let (a, b) = (a.get().matrix(), b.get().matrix());
    let result = compute_interruptible(py, threads, || ops::add(a, b, &path, &options, None))?;
    made(py, result)
}
