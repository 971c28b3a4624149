//! Making matrices from Python: `Builder` (triplets in any order, sorted out of core),
//! `import_file` (the CLI's `import`) and `write_csr` (canonical CSR/CSC arrays, for `from_scipy`).

use crate::arrays::{indices, slice_of};
use crate::compute_interruptible;
use crate::errors::{invalid, IntoPy};
use crate::matrix::PyMatrix;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sparsedisk::builder::{default_memory_budget, BuildStats, Duplicates};
use sparsedisk::import::{import, ImportOptions, LayoutChoice, ValueChoice};
use sparsedisk::io::read::{InputFormat, ReadOptions};
use sparsedisk::{
    BuildOptions, Element, Layout, Matrix, MatrixWriter, Triplet, TripletBuilder, ValueType, WriterOptions,
};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// "csr" or "csc".
pub fn parse_layout(layout: &str) -> PyResult<Layout> {
    match layout {
        "csr" => Ok(Layout::Csr),
        "csc" => Ok(Layout::Csc),
        other => Err(invalid(format!("unknown layout {other:?}: expected \"csr\" or \"csc\""))),
    }
}

/// "float64", "float32", "int64" or "pattern" (and numpy's short names f8, f4, i8).
pub fn parse_value_type(value_type: &str) -> PyResult<ValueType> {
    match value_type {
        "float64" | "f8" | "f64" => Ok(ValueType::Float64),
        "float32" | "f4" | "f32" => Ok(ValueType::Float32),
        "int64" | "i8" | "i64" => Ok(ValueType::Int64),
        "pattern" => Ok(ValueType::Pattern),
        other => Err(invalid(format!(
            "unknown value type {other:?}: expected \"float64\", \"float32\", \"int64\" or \"pattern\""
        ))),
    }
}

fn parse_duplicates(duplicates: &str) -> PyResult<Duplicates> {
    duplicates.parse().py()
}

fn writer_options(overwrite: bool) -> WriterOptions {
    WriterOptions { overwrite, ..WriterOptions::default() }
}

/// A value type the binding moves between numpy and the library.
trait PyValue: Element + numpy::Element + Copy {}
impl PyValue for f64 {}
impl PyValue for f32 {}
impl PyValue for i64 {}

/// `values` as a 1-D array of exactly `V`'s dtype, `n` long; borrowed when C-contiguous.
fn value_array<'py, V: PyValue>(
    values: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArray<'py, V, numpy::Ix1>> {
    let a = values.cast::<PyArray1<V>>().map_err(|_| {
        invalid(format!(
            "{name} must be a 1-D numpy array of {} (the matrix's value type), not {}",
            V::VALUE_TYPE,
            crate::arrays::describe(values)
        ))
    })?;
    a.try_readonly().map_err(|e| invalid(format!("{name} cannot be read: {e}")))
}

/// The library's builder, of the run-time value type.
enum AnyBuilder {
    F64(TripletBuilder<f64>),
    F32(TripletBuilder<f32>),
    I64(TripletBuilder<i64>),
    Pattern(TripletBuilder<()>),
}

/// Pushes `rows`, `cols`, `values` (all `n` long) as triplets, a block at a time.
fn push<V: Element>(
    b: &mut TripletBuilder<V>,
    rows: &[u64],
    cols: &[u64],
    values: impl Fn(usize) -> V,
) -> sparsedisk::Result<()> {
    const BLOCK: usize = 1 << 16;
    let mut triplets = Vec::with_capacity(BLOCK.min(rows.len()));
    let mut start = 0;
    while start < rows.len() {
        let end = (start + BLOCK).min(rows.len());
        triplets.clear();
        triplets.extend((start..end).map(|k| Triplet { row: rows[k], col: cols[k], value: values(k) }));
        b.push_triplets(&triplets)?;
        start = end;
    }
    Ok(())
}

/// Builds a matrix from triplets `(row, col, value)` in any order, in bounded memory: chunks are
/// sorted in memory and, past the budget, spilled as sorted runs into the output directory and
/// merged at `finish` (the engine of `sparsedisk import`).
///
/// `Builder(path, shape, value_type="float64", layout="csr", memory=None, duplicates="sum",
/// threads=None, overwrite=False)`: `memory` is the budget in bytes (default: a quarter of physical
/// memory; at least 64 MiB), `duplicates` one of "sum", "first", "last", "min", "max", "error",
/// `overwrite` replaces a matrix already in `path` (it stays readable until `finish`). Nothing is
/// visible in `path` before `finish`; `abort` (or dropping the builder) removes everything it made.
#[pyclass(name = "Builder", module = "sparsedisk._native", frozen)]
pub struct PyBuilder {
    inner: Mutex<Option<AnyBuilder>>,
    value_type: ValueType,
    shape: (u64, u64),
    threads: Option<usize>,
    stats: Mutex<Option<BuildStats>>,
}

impl PyBuilder {
    fn closed() -> PyErr {
        invalid("the builder is finished or aborted")
    }
}

#[pymethods]
impl PyBuilder {
    #[new]
    #[pyo3(signature = (path, shape, value_type = "float64", layout = "csr", memory = None, duplicates = "sum", threads = None, overwrite = false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        shape: (u64, u64),
        value_type: &str,
        layout: &str,
        memory: Option<u64>,
        duplicates: &str,
        threads: Option<usize>,
        overwrite: bool,
    ) -> PyResult<PyBuilder> {
        let value_type = parse_value_type(value_type)?;
        let options = BuildOptions {
            memory_budget: memory.unwrap_or_else(default_memory_budget),
            duplicates: parse_duplicates(duplicates)?,
            layout: parse_layout(layout)?,
            shape: Some(shape),
            writer: writer_options(overwrite),
            ..BuildOptions::default()
        };
        crate::pool(threads)?;
        let builder = py
            .detach(|| -> sparsedisk::Result<AnyBuilder> {
                Ok(match value_type {
                    ValueType::Float64 => AnyBuilder::F64(TripletBuilder::new(&path, options)?),
                    ValueType::Float32 => AnyBuilder::F32(TripletBuilder::new(&path, options)?),
                    ValueType::Int64 => AnyBuilder::I64(TripletBuilder::new(&path, options)?),
                    ValueType::Pattern => AnyBuilder::Pattern(TripletBuilder::new(&path, options)?),
                })
            })
            .py()?;
        Ok(PyBuilder { inner: Mutex::new(Some(builder)), value_type, shape, threads, stats: Mutex::new(None) })
    }

    /// Adds the triplets `(rows[k], cols[k], values[k])`: `rows` and `cols` 1-D arrays of any
    /// integer dtype (no negative entries), `values` a 1-D array of the builder's value type of the
    /// same length, or None for a pattern builder. Sorting and spilling happen with the GIL released.
    ///
    /// Raises InvalidInputError for mismatched lengths or dtypes, a negative index, or an entry
    /// outside the shape (the message names it; the entries before it were added).
    #[pyo3(signature = (rows, cols, values = None))]
    fn add(
        &self,
        py: Python<'_>,
        rows: &Bound<'_, PyAny>,
        cols: &Bound<'_, PyAny>,
        values: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let r = indices(rows, "rows")?;
        let c = indices(cols, "cols")?;
        let (rs, cs) = (r.as_slice(), c.as_slice());
        if rs.len() != cs.len() {
            return Err(invalid(format!("rows has {} entries but cols has {}", rs.len(), cs.len())));
        }
        let n = rs.len();
        let check_len = |got: usize| {
            if got == n {
                Ok(())
            } else {
                Err(invalid(format!("values has {got} entries but rows and cols have {n}")))
            }
        };
        // Typed values, borrowed while the GIL is released.
        enum Vals<'a> {
            F64(Cow<'a, [f64]>),
            F32(Cow<'a, [f32]>),
            I64(Cow<'a, [i64]>),
            None,
        }
        let (a64, a32, ai64);
        let vals = match (self.value_type, values) {
            (ValueType::Pattern, None) => Vals::None,
            (ValueType::Pattern, Some(_)) => {
                return Err(invalid("values must be None for a pattern builder (its entries have no values)"))
            }
            (vt, None) => return Err(invalid(format!("values are required: the builder stores {vt}"))),
            (ValueType::Float64, Some(v)) => {
                a64 = value_array::<f64>(v, "values")?;
                Vals::F64(slice_of(&a64))
            }
            (ValueType::Float32, Some(v)) => {
                a32 = value_array::<f32>(v, "values")?;
                Vals::F32(slice_of(&a32))
            }
            (ValueType::Int64, Some(v)) => {
                ai64 = value_array::<i64>(v, "values")?;
                Vals::I64(slice_of(&ai64))
            }
        };
        match &vals {
            Vals::F64(v) => check_len(v.len())?,
            Vals::F32(v) => check_len(v.len())?,
            Vals::I64(v) => check_len(v.len())?,
            Vals::None => {}
        }
        let inner = &self.inner;
        compute_interruptible(py, self.threads, || {
            let mut guard = inner.lock().unwrap_or_else(|p| p.into_inner());
            let Some(b) = guard.as_mut() else {
                return Err(sparsedisk::Error::invalid("the builder is finished or aborted"));
            };
            match (b, &vals) {
                (AnyBuilder::F64(b), Vals::F64(v)) => push(b, &rs, &cs, |k| v[k]),
                (AnyBuilder::F32(b), Vals::F32(v)) => push(b, &rs, &cs, |k| v[k]),
                (AnyBuilder::I64(b), Vals::I64(v)) => push(b, &rs, &cs, |k| v[k]),
                (AnyBuilder::Pattern(b), Vals::None) => push(b, &rs, &cs, |_| ()),
                _ => Err(sparsedisk::Error::invalid("values do not match the builder's value type")),
            }
        })?;
        drop((r, c));
        Ok(())
    }

    /// Triplets added so far.
    #[getter]
    fn triplets(&self, py: Python<'_>) -> PyResult<u64> {
        let inner = &self.inner;
        py.detach(|| {
            let guard = inner.lock().unwrap_or_else(|p| p.into_inner());
            guard.as_ref().map(|b| match b {
                AnyBuilder::F64(b) => b.triplets(),
                AnyBuilder::F32(b) => b.triplets(),
                AnyBuilder::I64(b) => b.triplets(),
                AnyBuilder::Pattern(b) => b.triplets(),
            })
        })
        .ok_or_else(Self::closed)
    }

    /// The declared shape.
    #[getter]
    fn shape(&self) -> (u64, u64) {
        self.shape
    }

    /// The value type ("float64", "float32", "int64" or "pattern").
    #[getter]
    fn value_type(&self) -> &'static str {
        self.value_type.name()
    }

    /// What `finish` did (None before): triplets, runs, spilled_bytes, nnz, duplicates_combined,
    /// zeros_dropped, chunk_capacity, sort_seconds, spill_seconds, write_seconds.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let stats = *self.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.map(|s| build_stats(py, &s)).transpose()
    }

    /// Sorts what remains, merges the spilled runs into the matrix, publishes it and returns it
    /// opened. The builder cannot be used afterwards. On error nothing is published and everything
    /// the builder made is removed.
    fn finish(&self, py: Python<'_>) -> PyResult<PyMatrix> {
        let inner = &self.inner;
        let taken = py.detach(|| inner.lock().unwrap_or_else(|p| p.into_inner()).take()).ok_or_else(Self::closed)?;
        let (m, stats) = compute_interruptible(py, self.threads, move || match taken {
            AnyBuilder::F64(b) => b.finish(),
            AnyBuilder::F32(b) => b.finish(),
            AnyBuilder::I64(b) => b.finish(),
            AnyBuilder::Pattern(b) => b.finish(),
        })?;
        *self.stats.lock().unwrap_or_else(|p| p.into_inner()) = Some(stats);
        Ok(PyMatrix::new(m))
    }

    /// Abandons the build: removes the spilled runs, and the output directory if the builder created
    /// it (a matrix being replaced stays as it was). Does nothing after finish or abort.
    fn abort(&self, py: Python<'_>) {
        let inner = &self.inner;
        py.detach(|| drop(inner.lock().unwrap_or_else(|p| p.into_inner()).take()));
    }

    fn __repr__(&self) -> String {
        let open = self.inner.lock().map(|g| g.is_some()).unwrap_or(false);
        format!(
            "<sparsedisk._native.Builder {} x {} {}{}>",
            self.shape.0,
            self.shape.1,
            self.value_type,
            if open { "" } else { ", closed" }
        )
    }
}

fn build_stats<'py>(py: Python<'py>, s: &BuildStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("triplets", s.triplets)?;
    d.set_item("runs", s.runs)?;
    d.set_item("spilled_bytes", s.spilled_bytes)?;
    d.set_item("nnz", s.nnz)?;
    d.set_item("duplicates_combined", s.duplicates_combined)?;
    d.set_item("zeros_dropped", s.zeros_dropped)?;
    d.set_item("chunk_capacity", s.chunk_capacity)?;
    d.set_item("sort_seconds", s.sort_seconds)?;
    d.set_item("spill_seconds", s.spill_seconds)?;
    d.set_item("write_seconds", s.write_seconds)?;
    Ok(d)
}

/// Imports a Matrix Market (.mtx), edge-list or CSV file (plain or .gz) into a matrix in `path`, out
/// of core, as `sparsedisk import` does, and returns it opened.
///
/// `format`: "mtx", "edges", "csv" or None (detect); `value_type`: "float64", "float32", "int64",
/// "pattern" or None (pattern for inputs without values, int64 for integer Matrix Market, else
/// float64); `layout`: "csr", "csc" or "both" (`path/csr` and `path/csc`; the CSR one is returned);
/// `memory`: budget in bytes (default a quarter of physical memory; at least 72 MiB); `threads`:
/// parse and sort threads; `duplicates`: "sum", "first", "last", "min", "max", "error";
/// `index_base`: 0 or 1 for edge lists and CSV (None: detect); `square`: without a declared shape,
/// make it square (None: square for edge lists, separate for CSV); `shape`: the shape to use;
/// `symmetrize`: edge lists and CSV, add (col, row) for every (row, col); `drop_zeros`: drop entries
/// whose combined value is zero; `overwrite`: replace a matrix already in `path`.
///
/// Raises ParseError with file and line, NotFoundError for a missing input, InvalidInputError for
/// bad options; nothing is left in `path` on error.
#[pyfunction]
#[pyo3(signature = (input, path, *, format = None, value_type = None, layout = "csr", memory = None, threads = None, duplicates = "sum", index_base = None, square = None, shape = None, symmetrize = false, drop_zeros = false, overwrite = false))]
#[allow(clippy::too_many_arguments)]
pub fn import_file(
    py: Python<'_>,
    input: PathBuf,
    path: PathBuf,
    format: Option<&str>,
    value_type: Option<&str>,
    layout: &str,
    memory: Option<u64>,
    threads: Option<usize>,
    duplicates: &str,
    index_base: Option<u64>,
    square: Option<bool>,
    shape: Option<(u64, u64)>,
    symmetrize: bool,
    drop_zeros: bool,
    overwrite: bool,
) -> PyResult<PyMatrix> {
    let format = match format {
        None | Some("auto") => InputFormat::Auto,
        Some("mtx") => InputFormat::MatrixMarket,
        Some("edges") => InputFormat::EdgeList,
        Some("csv") => InputFormat::Csv,
        Some(other) => {
            return Err(invalid(format!("unknown format {other:?}: expected \"mtx\", \"edges\", \"csv\" or None")))
        }
    };
    if let Some(b) = index_base {
        if b > 1 {
            return Err(invalid(format!("index_base must be 0 or 1, not {b}")));
        }
    }
    let options = ImportOptions {
        read: ReadOptions { format, index_base, symmetrize, threads, ..ReadOptions::default() },
        memory_budget: memory.unwrap_or_else(default_memory_budget),
        duplicates: parse_duplicates(duplicates)?,
        drop_zeros,
        shape,
        square,
        values: match value_type {
            None | Some("auto") => ValueChoice::Auto,
            Some(v) => ValueChoice::Fixed(parse_value_type(v)?),
        },
        layout: match layout {
            "csr" => LayoutChoice::Csr,
            "csc" => LayoutChoice::Csc,
            "both" => LayoutChoice::Both,
            other => return Err(invalid(format!("unknown layout {other:?}: expected \"csr\", \"csc\" or \"both\""))),
        },
        writer: writer_options(overwrite),
    };
    let m = compute_interruptible(py, threads, || {
        let summary = import(&input, &path, &options, |_| {})?;
        let first = summary.outputs.first().cloned().unwrap_or_else(|| path.clone());
        Matrix::open(first)
    })?;
    Ok(PyMatrix::new(m))
}

/// Writes canonical CSR (or CSC, per `layout`) arrays as a matrix in `path` and returns it opened:
/// `indptr` (outer + 1 entries from 0), `indices` (sorted and unique within each row/column), both
/// of any integer dtype, and `data` of `value_type` ("float64", "float32", "int64"), or None for
/// "pattern". For `from_scipy`: call `sum_duplicates()` / `sort_indices()` first.
///
/// Raises InvalidInputError when the arrays are inconsistent, indices are unsorted or repeated, or
/// an index lies outside the shape; nothing is left in `path` on error.
#[pyfunction]
#[pyo3(signature = (path, shape, layout, indptr, indices, data, value_type, overwrite = false))]
#[allow(clippy::too_many_arguments)]
pub fn write_csr(
    py: Python<'_>,
    path: PathBuf,
    shape: (u64, u64),
    layout: &str,
    indptr: &Bound<'_, PyAny>,
    indices: &Bound<'_, PyAny>,
    data: Option<&Bound<'_, PyAny>>,
    value_type: &str,
    overwrite: bool,
) -> PyResult<PyMatrix> {
    let layout = parse_layout(layout)?;
    let vt = parse_value_type(value_type)?;
    let p = crate::arrays::indices(indptr, "indptr")?;
    let ix = crate::arrays::indices(indices, "indices")?;
    let (ps, is) = (p.as_slice(), ix.as_slice());
    let (outer, _) = layout.outer_inner(shape);
    if ps.len() as u64 != outer.saturating_add(1) {
        return Err(invalid(format!(
            "indptr has {} entries; a {} x {} {layout} matrix needs {}",
            ps.len(),
            shape.0,
            shape.1,
            outer.saturating_add(1)
        )));
    }
    let nnz = is.len() as u64;
    if ps.first() != Some(&0) || ps.last() != Some(&nnz) || ps.windows(2).any(|w| w[0] > w[1]) {
        return Err(invalid(format!(
            "indptr must rise from 0 to len(indices) = {nnz} without decreasing (first {:?}, last {:?})",
            ps.first(),
            ps.last()
        )));
    }
    let threads = None;
    let m = match (vt, data) {
        (ValueType::Pattern, None) => compute_interruptible(py, threads, || {
            // A `Vec<()>` holds no memory.
            let units = vec![(); is.len()];
            write_slices(&path, shape, layout, &ps, &is, &units, overwrite)
        })?,
        (ValueType::Pattern, Some(_)) => return Err(invalid("data must be None for a pattern matrix")),
        (vt, None) => return Err(invalid(format!("data is required for a {vt} matrix"))),
        (ValueType::Float64, Some(d)) => {
            let a = value_array::<f64>(d, "data")?;
            let v = slice_of(&a);
            check_data_len(v.len(), nnz)?;
            compute_interruptible(py, threads, || write_slices(&path, shape, layout, &ps, &is, &v, overwrite))?
        }
        (ValueType::Float32, Some(d)) => {
            let a = value_array::<f32>(d, "data")?;
            let v = slice_of(&a);
            check_data_len(v.len(), nnz)?;
            compute_interruptible(py, threads, || write_slices(&path, shape, layout, &ps, &is, &v, overwrite))?
        }
        (ValueType::Int64, Some(d)) => {
            let a = value_array::<i64>(d, "data")?;
            let v = slice_of(&a);
            check_data_len(v.len(), nnz)?;
            compute_interruptible(py, threads, || write_slices(&path, shape, layout, &ps, &is, &v, overwrite))?
        }
    };
    drop((p, ix));
    Ok(PyMatrix::new(m))
}

fn check_data_len(len: usize, nnz: u64) -> PyResult<()> {
    if len as u64 != nnz {
        return Err(invalid(format!("data has {len} entries but indices has {nnz}")));
    }
    Ok(())
}

fn write_slices<V: Element>(
    path: &Path,
    shape: (u64, u64),
    layout: Layout,
    ps: &[u64],
    is: &[u64],
    values: &[V],
    overwrite: bool,
) -> sparsedisk::Result<Matrix> {
    let mut w = MatrixWriter::<V>::create(path, shape, layout, writer_options(overwrite))?;
    for pair in ps.windows(2) {
        let (a, b) = (pair[0] as usize, pair[1] as usize);
        w.push_row(&is[a..b], &values[a..b])?;
    }
    w.finish()
}
