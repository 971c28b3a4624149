//! `Matrix`: a matrix on disk, its properties and segments, and its products through one cached
//! `Operator`.

use crate::arrays::{describe, f64_array, to_dict};
use crate::errors::{invalid, IntoPy};
use crate::{compute, compute_interruptible};
use numpy::{IntoPyArray, PyArray, PyArray1, PyArrayMethods, PyReadwriteArray, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sparsedisk::{Indices, Matrix, Operator, Values};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// A sparse matrix stored on disk as CSR (row bands) or CSC (column bands) segments. Opening reads
/// only the manifest; the arrays are memory-mapped when a product or a segment needs them.
///
/// Products (`matvec`, `matmat`) run on the library's streaming kernels with the GIL released. The
/// first product prepares an operator that keeps the matrix mapped (up to three quarters of the
/// memory available; the rest streams from disk) for the next ones. A Matrix may be shared between
/// Python threads.
#[pyclass(name = "Matrix", module = "sparsedisk._native", frozen)]
pub struct PyMatrix {
    /// The products' operator, built on first use. Declared before `matrix` so that it is dropped
    /// first: it borrows the matrix that `matrix` keeps alive.
    op: OnceLock<Operator<'static>>,
    /// The matrix. An `Arc` keeps its address fixed while the `PyMatrix` moves.
    matrix: Arc<Matrix>,
}

impl PyMatrix {
    /// Wraps an opened matrix.
    pub fn new(matrix: Matrix) -> PyMatrix {
        PyMatrix { op: OnceLock::new(), matrix: Arc::new(matrix) }
    }

    /// The library's matrix.
    pub fn matrix(&self) -> &Matrix {
        &self.matrix
    }

    /// The operator, built on first use (racing threads may both build one; one is kept).
    pub(crate) fn operator(&self) -> sparsedisk::Result<&Operator<'_>> {
        if let Some(op) = self.op.get() {
            return Ok(op);
        }
        let m: &Matrix = &self.matrix;
        let vectors = (m.rows().saturating_add(m.cols())).saturating_mul(8);
        let op = Operator::new(m, Operator::default_resident_bytes(m, vectors))?;
        // SAFETY: the operator borrows the `Matrix` inside `self.matrix`, an `Arc` that `self` owns
        // and never replaces, so the matrix lives at a fixed address for as long as `self`; the field
        // order drops `op` before `matrix`. The `'static` lifetime never escapes: this method hands
        // out `&Operator<'_>` tied to `&self` (`Operator` is covariant in its lifetime).
        let op: Operator<'static> = unsafe { std::mem::transmute::<Operator<'_>, Operator<'static>>(op) };
        Ok(self.op.get_or_init(|| op))
    }

    fn check_segment(&self, i: usize) -> PyResult<()> {
        let n = self.matrix.segments().len();
        if i >= n {
            return Err(invalid(format!("segment {i} does not exist: the matrix has {n} segments")));
        }
        Ok(())
    }
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string()
}

#[pymethods]
impl PyMatrix {
    /// Opens the matrix in directory `path` (reads and checks the manifest; maps nothing).
    ///
    /// Raises NotFoundError when `path` is not a matrix directory, CorruptError when the manifest
    /// or a file's size is wrong, IoError when it cannot be read.
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<PyMatrix> {
        py.detach(|| Matrix::open(&path)).py().map(PyMatrix::new)
    }

    /// `(rows, cols)`.
    #[getter]
    fn shape(&self) -> (u64, u64) {
        self.matrix.shape()
    }

    /// Type of the stored values: "float64", "float32", "int64" or "pattern" (no values: every
    /// stored entry is 1).
    #[getter]
    fn value_type(&self) -> &'static str {
        self.matrix.value_type().name()
    }

    /// Type of the stored inner indices: "uint32" or "uint64".
    #[getter]
    fn index_type(&self) -> &'static str {
        self.matrix.index_type().name()
    }

    /// Stored entries (explicit zeros included).
    #[getter]
    fn nnz(&self) -> u64 {
        self.matrix.nnz()
    }

    /// "csr" (row bands) or "csc" (column bands).
    #[getter]
    fn layout(&self) -> &'static str {
        self.matrix.layout().name()
    }

    /// Bytes of the arrays on disk (row pointers, indices, values, dense blocks of every segment).
    #[getter]
    fn nbytes(&self) -> u64 {
        self.matrix.segments().iter().map(|s| s.payload_bytes()).sum()
    }

    /// The matrix directory, as given to open.
    #[getter]
    fn path(&self) -> String {
        self.matrix.dir().display().to_string()
    }

    /// Number of segments.
    #[getter]
    fn segment_count(&self) -> usize {
        self.matrix.segments().len()
    }

    /// The segments in outer order, one dict each: `start`, `end` (the band of outer indices: rows
    /// for CSR, columns for CSC), `nnz`, `sparse_nnz` (entries in the CSR/CSC files), `dense`
    /// (whether the segment also has dense blocks: then the files do not hold every entry; use
    /// `segment_arrays`), `indptr`, `indices`, `values` (absolute paths of the raw little-endian
    /// array files; `values` is None for pattern matrices), `indptr_dtype` ("uint64"), `index_dtype`
    /// ("uint32" or "uint64") and `value_dtype` (None for pattern).
    fn segments<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let m = &self.matrix;
        let vt = m.value_type();
        m.segments()
            .iter()
            .map(|s| {
                let d = PyDict::new(py);
                d.set_item("start", s.start)?;
                d.set_item("end", s.end)?;
                d.set_item("nnz", s.nnz)?;
                d.set_item("sparse_nnz", s.sparse_nnz())?;
                d.set_item("dense", s.dense.is_some())?;
                d.set_item("indptr", absolute(&m.dir().join(&s.indptr.path)))?;
                d.set_item("indices", absolute(&m.dir().join(&s.indices.path)))?;
                d.set_item("values", s.values.as_ref().map(|v| absolute(&m.dir().join(&v.path))))?;
                d.set_item("indptr_dtype", "uint64")?;
                d.set_item("index_dtype", m.index_type().name())?;
                d.set_item("value_dtype", (vt != sparsedisk::ValueType::Pattern).then(|| vt.name()))?;
                Ok(d)
            })
            .collect()
    }

    /// The CSR (or CSC) arrays of segment `i`, dense blocks merged in, as new numpy arrays
    /// `(indptr, indices, data)`: `indptr` int64 local to the band (`end - start + 1` entries from
    /// 0), `indices` int64, `data` in the stored dtype (float64 ones for pattern matrices).
    ///
    /// Raises InvalidInputError for a segment that does not exist, CorruptError when its structure
    /// is broken (row pointers, indices out of range or unsorted): the arrays are checked, so that
    /// scipy never sees an index outside the matrix.
    #[allow(clippy::type_complexity)]
    fn segment_arrays<'py>(
        &self,
        py: Python<'py>,
        i: usize,
    ) -> PyResult<(Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>, Bound<'py, PyAny>)> {
        self.check_segment(i)?;
        let m = &self.matrix;
        let (indptr, indices, data) = compute(py, None, || {
            let seg = m.map_segment(i)?;
            // The arrays go to scipy, which trusts them (an index out of range there is a crash):
            // the full O(nnz) check, on data that is read for the copy anyway.
            seg.check_structure()?;
            let indptr: Vec<i64> = seg.indptr().iter().map(|&p| p as i64).collect();
            let indices: Vec<i64> = match seg.indices() {
                Indices::U32(v) => v.iter().map(|&x| x as i64).collect(),
                Indices::U64(v) => v.iter().map(|&x| x as i64).collect(),
            };
            let n = indices.len();
            let data = match seg.values() {
                Values::F64(v) => Data::F64(v.to_vec()),
                Values::F32(v) => Data::F32(v.to_vec()),
                Values::I64(v) => Data::I64(v.to_vec()),
                Values::Pattern => Data::F64(vec![1.0; n]),
            };
            Ok((indptr, indices, data))
        })?;
        let data = match data {
            Data::F64(v) => v.into_pyarray(py).into_any(),
            Data::F32(v) => v.into_pyarray(py).into_any(),
            Data::I64(v) => v.into_pyarray(py).into_any(),
        };
        Ok((indptr.into_pyarray(py), indices.into_pyarray(py), data))
    }

    /// `A @ x` (or `A.T @ x` when `transposed`) for a C-contiguous float64 1-D `x` of `cols` (`rows`
    /// when transposed) elements. Runs with the GIL released, on `threads` threads (None: one per
    /// core). Returns a new float64 array, or writes into `out` (a writable C-contiguous float64 1-D
    /// array of `rows` elements, `cols` when transposed; its contents are ignored) and returns it, so
    /// that a loop of products allocates nothing.
    ///
    /// Raises InvalidInputError for an `x` or `out` of another dtype, shape or layout (the message
    /// says what was expected), a read-only `out`, or an `out` that shares memory with `x`.
    #[pyo3(signature = (x, transposed = false, threads = None, out = None))]
    fn matvec<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        transposed: bool,
        threads: Option<usize>,
        out: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (rows, cols) = self.matrix.shape();
        let (x_len, y_len) = if transposed { (rows, cols) } else { (cols, rows) };
        let x = f64_array::<numpy::Ix1>(x, "x", &format!("a C-contiguous 1-D float64 array of {x_len} elements"))?;
        let y_len = usize::try_from(y_len).map_err(|_| invalid("the result does not fit in memory"))?;
        let xs = x.as_slice().map_err(|e| invalid(format!("x: {e}")))?;
        let product = |y: &mut [f64]| {
            let op = self.operator()?;
            if transposed {
                op.spmv_transpose(1.0, xs, 0.0, y)
            } else {
                op.spmv(1.0, xs, 0.0, y)
            }
        };
        let expected = format!("a writable C-contiguous 1-D float64 array of {y_len} elements");
        product_into(py, out, &[y_len], &expected, threads, product)
    }

    /// `A @ X` (or `A.T @ X` when `transposed`) for a C-contiguous float64 2-D `X` of shape
    /// `(cols, k)` (`(rows, k)` when transposed). One pass over the matrix serves all `k` columns,
    /// transposed or not. GIL released; `threads` as for matvec. Returns a new float64 array of shape
    /// `(rows, k)` (`(cols, k)`), or writes into `out` (a writable C-contiguous float64 array of that
    /// shape) and returns it.
    ///
    /// Raises InvalidInputError for an `X` or `out` of another dtype, shape or layout, a read-only
    /// `out`, or an `out` that shares memory with `X`.
    #[pyo3(signature = (x, transposed = false, threads = None, out = None))]
    fn matmat<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        transposed: bool,
        threads: Option<usize>,
        out: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (rows, cols) = self.matrix.shape();
        let (x_len, y_len) = if transposed { (rows, cols) } else { (cols, rows) };
        let expected = format!("a C-contiguous 2-D float64 array of shape ({x_len}, k)");
        let x = f64_array::<numpy::Ix2>(x, "x", &expected)?;
        let (n, k) = (x.shape()[0], x.shape()[1]);
        if n as u64 != x_len || k == 0 {
            return Err(invalid(format!(
                "x must be {expected} with k >= 1, not an array of shape ({n}, {k}): the matrix is {rows} x {cols}{}",
                if transposed { ", transposed" } else { "" }
            )));
        }
        let y_len = usize::try_from(y_len).map_err(|_| invalid("the result does not fit in memory"))?;
        if y_len.checked_mul(k).is_none() {
            return Err(invalid("the result does not fit in memory"));
        }
        let xs = x.as_slice().map_err(|e| invalid(format!("x: {e}")))?;
        let product = |y: &mut [f64]| {
            let op = self.operator()?;
            if transposed {
                op.spmm_transpose(1.0, xs, 0.0, y, k)
            } else {
                op.spmm(1.0, xs, 0.0, y, k)
            }
        };
        let expected = format!("a writable C-contiguous 2-D float64 array of shape ({y_len}, {k})");
        product_into(py, out, &[y_len, k], &expected, threads, product)
    }

    /// The full check: every file's checksum and every segment's structure, in parallel with the GIL
    /// released. Returns `{"segments", "files", "bytes", "nnz"}`.
    ///
    /// Raises CorruptError naming the file and what is wrong.
    #[pyo3(signature = (threads = None))]
    fn verify<'py>(&self, py: Python<'py>, threads: Option<usize>) -> PyResult<Bound<'py, PyDict>> {
        let m = &self.matrix;
        let report = compute_interruptible(py, threads, || m.verify())?;
        to_dict(py, &report)
    }

    /// A summary, as `sparsedisk info --json` prints it: path, rows, cols, nnz, layout, value_type,
    /// index_type, format_version, generation, segments, segment_nnz_min, segment_nnz_max,
    /// segment_payload_max, payload_bytes, bytes_on_disk, bytes_per_nonzero, density, dense_blocks,
    /// dense_nnz, dense_nnz_share.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = &self.matrix;
        let info = py.detach(|| m.info());
        to_dict(py, &info)
    }

    /// The `k`-th diagonal (`k > 0` above the main one) as a new numpy array in the stored dtype
    /// (float64 ones for a pattern matrix), of scipy's length: empty when `k` lies outside the
    /// matrix. One pass over the segments with the GIL released (Ctrl-C stops it).
    #[pyo3(signature = (k = 0))]
    fn diagonal<'py>(&self, py: Python<'py>, k: i64) -> PyResult<Bound<'py, PyAny>> {
        let m = &self.matrix;
        let d = compute_interruptible(py, None, || m.diagonal(k))?;
        Ok(reduced(py, d))
    }

    /// The sum of each row (`rows=True`: `rows` values, scipy's axis 1) or of each column, in one
    /// pass with the GIL released: float64 for float matrices (float32 summed in float64), int64 for
    /// int64 matrices (exact) and pattern matrices (counts).
    ///
    /// Raises InvalidInputError when an int64 sum leaves the int64 range.
    fn line_sums<'py>(&self, py: Python<'py>, rows: bool) -> PyResult<Bound<'py, PyAny>> {
        let m = &self.matrix;
        let lines = if rows { sparsedisk::reduce::Lines::Rows } else { sparsedisk::reduce::Lines::Columns };
        let d = compute_interruptible(py, None, || m.line_sums(lines))?;
        Ok(reduced(py, d))
    }

    /// The sum of all entries, in one pass with the GIL released: a float for float matrices, an
    /// exact int for int64 matrices, the number of stored entries for pattern matrices.
    ///
    /// Raises InvalidInputError when an int64 sum leaves the int64 range.
    fn total<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = &self.matrix;
        let t = compute_interruptible(py, None, || m.total())?;
        Ok(match t {
            sparsedisk::reduce::Total::F64(v) => v.into_pyobject(py)?.into_any(),
            sparsedisk::reduce::Total::I64(v) => v.into_pyobject(py)?.into_any(),
        })
    }

    /// A hex digest of what the manifest records (shape, layout, types, generation and every file's
    /// checksum): two opens of a path give the same fingerprint only if they hold the same matrix.
    #[getter]
    fn fingerprint(&self) -> String {
        let m = &self.matrix;
        let mut text = format!(
            "{} {} {} {} {} {}",
            m.rows(),
            m.cols(),
            m.layout(),
            m.value_type(),
            m.index_type(),
            m.manifest().generation
        );
        for file in m.segments().iter().flat_map(|s| s.files()) {
            text.push(' ');
            text.push_str(&file.xxh3);
        }
        sparsedisk::format::checksum_hex(text.as_bytes())
    }

    fn __repr__(&self) -> String {
        let m = &self.matrix;
        format!(
            "<sparsedisk._native.Matrix {} x {} {} {}, {} stored entries, at {}>",
            m.rows(),
            m.cols(),
            m.layout(),
            m.value_type(),
            m.nnz(),
            m.dir().display()
        )
    }
}

/// `obj` as a writable C-contiguous float64 array of exactly `shape`, borrowed for writing, or an
/// `InvalidInputError` saying `expected`. The borrow fails (and the array is refused) when `obj` is
/// read-only or shares memory with an array already borrowed, such as the operand `x`.
/// Runs `product` (which writes every element: beta = 0) into `out`, checked to be `expected` of
/// `shape`, or into a new array of `shape`, and returns that array.
fn product_into<'py>(
    py: Python<'py>,
    out: Option<&Bound<'py, PyAny>>,
    shape: &[usize],
    expected: &str,
    threads: Option<usize>,
    product: impl FnOnce(&mut [f64]) -> sparsedisk::Result<sparsedisk::kernels::Product> + Send,
) -> PyResult<Bound<'py, PyAny>> {
    let out = match out {
        Some(out) => out.clone(),
        // SAFETY: the array is left uninitialized; the product (beta = 0) writes every element
        // before Python can see it, and an error drops it unseen. Unlike a zeroed vector, numpy's
        // allocator hands back the memory of the previous result with neither a memset nor page
        // faults (a 32 MB y cost 6% of a 20 M-nonzero product when zeroed).
        None => unsafe { numpy::PyArrayDyn::<f64>::new(py, shape, false) }.into_any(),
    };
    let mut y = out_array::<numpy::IxDyn>(&out, shape, expected)?;
    let ys = y.as_slice_mut().map_err(|e| invalid(format!("out: {e}")))?;
    compute(py, threads, || product(ys))?;
    drop(y);
    Ok(out)
}

fn out_array<'py, D: numpy::ndarray::Dimension>(
    obj: &Bound<'py, PyAny>,
    shape: &[usize],
    expected: &str,
) -> PyResult<PyReadwriteArray<'py, f64, D>> {
    let refuse = || invalid(format!("out must be {expected}, not {}", describe(obj)));
    let untyped = obj.cast::<PyUntypedArray>().map_err(|_| refuse())?;
    if !untyped.is_c_contiguous() || untyped.shape() != shape {
        return Err(refuse());
    }
    let typed = obj.cast::<PyArray<f64, D>>().map_err(|_| refuse())?;
    typed.try_readwrite().map_err(|e| {
        invalid(format!("out cannot be written ({e}): it must be {expected} that shares no memory with x"))
    })
}

/// A reduction's values as a new numpy array of their type.
fn reduced(py: Python<'_>, r: sparsedisk::reduce::Reduced) -> Bound<'_, PyAny> {
    match r {
        sparsedisk::reduce::Reduced::F64(v) => v.into_pyarray(py).into_any(),
        sparsedisk::reduce::Reduced::F32(v) => v.into_pyarray(py).into_any(),
        sparsedisk::reduce::Reduced::I64(v) => v.into_pyarray(py).into_any(),
    }
}

enum Data {
    F64(Vec<f64>),
    F32(Vec<f32>),
    I64(Vec<i64>),
}
