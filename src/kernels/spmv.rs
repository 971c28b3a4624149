//! SpMV, transposed SpMV and SpMM: the gather and scatter loops, generic over index and value types.

use crate::element::{Indices, Values};
use crate::error::{Error, Result};
use crate::format::Layout;
use crate::matrix::Matrix;
use crate::segment::MappedSegment;
use memmap2::Advice;
use rayon::prelude::*;

/// Instantiates `body` for the segment's index and value types, with `ix` the indices and `vals` an
/// `Option<&[T]>` of values (`None` for pattern: every value is 1).
macro_rules! dispatch {
    ($seg:expr, |$ix:ident, $vals:ident| $body:expr) => {
        match ($seg.indices(), $seg.values()) {
            (Indices::U32(i), Values::F64(v)) => {
                let ($ix, $vals) = (i, Some(v));
                $body
            }
            (Indices::U32(i), Values::F32(v)) => {
                let ($ix, $vals) = (i, Some(v));
                $body
            }
            (Indices::U32(i), Values::I64(v)) => {
                let ($ix, $vals) = (i, Some(v));
                $body
            }
            (Indices::U32(i), Values::Pattern) => {
                let ($ix, $vals): (&[u32], Option<&[f64]>) = (i, None);
                $body
            }
            (Indices::U64(i), Values::F64(v)) => {
                let ($ix, $vals) = (i, Some(v));
                $body
            }
            (Indices::U64(i), Values::F32(v)) => {
                let ($ix, $vals) = (i, Some(v));
                $body
            }
            (Indices::U64(i), Values::I64(v)) => {
                let ($ix, $vals) = (i, Some(v));
                $body
            }
            (Indices::U64(i), Values::Pattern) => {
                let ($ix, $vals): (&[u64], Option<&[f64]>) = (i, None);
                $body
            }
        }
    };
}

/// Stored index types, widened for indexing.
trait Index: Copy + Send + Sync {
    fn at(self) -> usize;
}
impl Index for u32 {
    #[inline(always)]
    fn at(self) -> usize {
        self as usize
    }
}
impl Index for u64 {
    #[inline(always)]
    fn at(self) -> usize {
        self as usize
    }
}

/// Stored value types, widened to `f64` for arithmetic.
trait Scalar: Copy + Send + Sync {
    fn f64(self) -> f64;
}
impl Scalar for f64 {
    #[inline(always)]
    fn f64(self) -> f64 {
        self
    }
}
impl Scalar for f32 {
    #[inline(always)]
    fn f64(self) -> f64 {
        self as f64
    }
}
impl Scalar for i64 {
    #[inline(always)]
    fn f64(self) -> f64 {
        self as f64
    }
}

/// What a product did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Product {
    /// Segments streamed.
    pub segments: usize,
    /// Bytes of matrix arrays read (row pointers, indices, values).
    pub bytes: u64,
    /// Stored entries multiplied.
    pub nnz: u64,
}

/// A matrix prepared for repeated products.
///
/// Repeated products over a matrix larger than memory are a cyclic scan, the worst case for the
/// kernel's LRU page cache: left alone, each pass evicts what the next pass needs first, and every
/// product reads the whole matrix from disk. An operator instead keeps the first segments, up to
/// `resident_bytes`, mapped (their pages stay resident) across products, and streams the rest: each
/// streamed segment is read ahead while the previous one is computed, then unmapped and its page
/// cache dropped, so it does not push the resident part out. A product then reads from disk only what
/// does not fit. With a budget covering the matrix, nothing is re-mapped between products.
#[derive(Debug)]
pub struct Operator<'a> {
    matrix: &'a Matrix,
    resident: Vec<MappedSegment>,
}

impl<'a> Operator<'a> {
    /// Maps the leading segments whose payload fits in `resident_bytes` and keeps them mapped.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::Corrupt`] when a segment cannot be mapped.
    pub fn new(matrix: &'a Matrix, resident_bytes: u64) -> Result<Operator<'a>> {
        let mut resident = Vec::new();
        let mut used = 0u64;
        for i in 0..matrix.segments().len() {
            let bytes = matrix.segments()[i].payload_bytes();
            if used + bytes > resident_bytes {
                break;
            }
            used += bytes;
            let seg = matrix.map_segment(i)?;
            seg.check_row_pointers()?;
            resident.push(seg);
        }
        Ok(Operator { matrix, resident })
    }

    /// The matrix.
    pub fn matrix(&self) -> &Matrix {
        self.matrix
    }

    /// Segments kept resident.
    pub fn resident_segments(&self) -> usize {
        self.resident.len()
    }

    /// `y = alpha * A * x + beta * y`; see [`spmv`].
    ///
    /// # Errors
    ///
    /// As [`spmv`].
    pub fn spmv(&self, alpha: f64, x: &[f64], beta: f64, y: &mut [f64]) -> Result<Product> {
        product(self, false, alpha, x, beta, y, 1)
    }

    /// `y = alpha * A^T * x + beta * y`; see [`spmv_transpose`].
    ///
    /// # Errors
    ///
    /// As [`spmv`].
    pub fn spmv_transpose(&self, alpha: f64, x: &[f64], beta: f64, y: &mut [f64]) -> Result<Product> {
        product(self, true, alpha, x, beta, y, 1)
    }

    /// `Y = alpha * A * X + beta * Y`; see [`spmm`].
    ///
    /// # Errors
    ///
    /// As [`spmm`].
    pub fn spmm(&self, alpha: f64, x: &[f64], beta: f64, y: &mut [f64], k: usize) -> Result<Product> {
        product(self, false, alpha, x, beta, y, k)
    }
}

/// `y = alpha * A * x + beta * y`.
///
/// `x` has one element per column, `y` one per row. With `beta == 0`, `y`'s previous contents are
/// ignored (NaNs in it do not propagate), as in BLAS.
///
/// # Errors
///
/// [`Error::InvalidInput`] when the lengths do not match the shape; [`Error::Corrupt`] or
/// [`Error::Io`] when a segment cannot be read or holds an index out of range.
pub fn spmv(a: &Matrix, alpha: f64, x: &[f64], beta: f64, y: &mut [f64]) -> Result<Product> {
    Operator::new(a, 0)?.spmv(alpha, x, beta, y)
}

/// `y = alpha * A^T * x + beta * y`: `x` has one element per row, `y` one per column.
///
/// # Errors
///
/// As [`spmv`].
pub fn spmv_transpose(a: &Matrix, alpha: f64, x: &[f64], beta: f64, y: &mut [f64]) -> Result<Product> {
    Operator::new(a, 0)?.spmv_transpose(alpha, x, beta, y)
}

/// `Y = alpha * A * X + beta * Y` with `X` (`cols x k`) and `Y` (`rows x k`) dense and row-major, so
/// one pass over the matrix serves all `k` columns.
///
/// # Errors
///
/// As [`spmv`]; [`Error::InvalidInput`] for `k == 0`.
pub fn spmm(a: &Matrix, alpha: f64, x: &[f64], beta: f64, y: &mut [f64], k: usize) -> Result<Product> {
    Operator::new(a, 0)?.spmm(alpha, x, beta, y, k)
}

fn product(
    op: &Operator<'_>,
    transpose: bool,
    alpha: f64,
    x: &[f64],
    beta: f64,
    y: &mut [f64],
    k: usize,
) -> Result<Product> {
    if k == 0 {
        return Err(Error::invalid("a product needs at least one column (k >= 1)"));
    }
    let a = op.matrix;
    let (rows, cols) = a.shape();
    let (x_len, y_len) = if transpose { (rows, cols) } else { (cols, rows) };
    let expect = |n: u64, what: &str, got: usize| -> Result<()> {
        if n.checked_mul(k as u64) != Some(got as u64) {
            return Err(Error::invalid(format!(
                "{what} has {got} elements; the {rows} x {cols} matrix{} needs {n}{}",
                if transpose { " transposed" } else { "" },
                if k > 1 { format!(" x {k}") } else { String::new() }
            )));
        }
        Ok(())
    };
    expect(x_len, "x", x.len())?;
    expect(y_len, "y", y.len())?;
    // Gather when the output is indexed by the outer dimension.
    let gather = (a.layout() == Layout::Csr) != transpose;
    let mut stats = Product::default();
    let mut scatter_parts: Vec<Vec<f64>> = Vec::new();
    stream(op, |seg| {
        stats.segments += 1;
        stats.bytes += seg.payload_bytes();
        stats.nnz += seg.nnz();
        if gather {
            gather_segment(seg, alpha, x, beta, y, k)
        } else {
            scatter_segment(seg, x, y_len as usize * k, k, &mut scatter_parts)
        }
    })?;
    if !gather {
        // y = beta y + alpha * (sum of the parts, in task order).
        let parts = &scatter_parts;
        y.par_chunks_mut(1 << 14).enumerate().for_each(|(c, chunk)| {
            let base = c << 14;
            for (i, v) in chunk.iter_mut().enumerate() {
                let mut s = 0.0;
                for p in parts {
                    s += p[base + i];
                }
                *v = if beta == 0.0 { alpha * s } else { beta * *v + alpha * s };
            }
        });
    }
    Ok(stats)
}

/// Visits the segments in order: resident ones as they are; streamed ones mapped with the next read
/// ahead while the current one is computed, then unmapped and dropped from the page cache.
fn stream(op: &Operator<'_>, mut visit: impl FnMut(&MappedSegment) -> Result<()>) -> Result<()> {
    for seg in &op.resident {
        visit(seg)?;
    }
    let a = op.matrix;
    let n = a.segments().len();
    let first = op.resident.len();
    let out_of_core = first > 0 || n > 1;
    let mut next = if first < n { Some(a.map_segment(first)?) } else { None };
    for i in first..n {
        let current = next.take().expect("segment i was mapped");
        let upcoming = if i + 1 < n { Some(a.map_segment(i + 1)?) } else { None };
        current.advise(Advice::Sequential);
        current.check_row_pointers()?;
        // Read the next segment ahead on a helper thread while this one is computed: the readahead
        // request itself blocks until the I/O is queued (for a 64 MiB segment, most of its reading),
        // so issued inline it would serialise reading and computing.
        std::thread::scope(|scope| -> Result<()> {
            if let Some(up) = &upcoming {
                scope.spawn(move || up.advise(Advice::WillNeed));
            }
            visit(&current)
        })?;
        if out_of_core && !op.resident.is_empty() {
            // Streamed past a resident part: drop this segment's pages so that they, not the resident
            // segments, make room for the next ones.
            let e = current.entry();
            for f in [Some(&e.indptr), Some(&e.indices), e.values.as_ref()].into_iter().flatten() {
                let _ = crate::storage::evict_page_cache(&a.dir().join(&f.path));
            }
        }
        next = upcoming;
    }
    Ok(())
}

fn corrupt(seg: &MappedSegment, what: &str) -> Error {
    Error::corrupt(seg.path(), format!("{what} (run `sparsedisk verify` on the matrix)"))
}

/// Band-local outer ranges `[a, b)` of about equal nonzeros, about four per thread.
fn pieces(indptr: &[u64], parts: usize) -> Vec<(usize, usize)> {
    let outer = indptr.len() - 1;
    let nnz = indptr[outer];
    let parts = parts.max(1);
    let mut out = Vec::with_capacity(parts);
    let mut a = 0;
    for p in 1..=parts {
        let b = if p == parts {
            outer
        } else {
            let target = nnz * p as u64 / parts as u64;
            indptr.partition_point(|&v| v < target).clamp(a, outer)
        };
        if b > a || (p == parts && a < outer) {
            out.push((a, b.max(a)));
            a = b.max(a);
        }
    }
    if out.is_empty() && outer > 0 {
        out.push((0, outer));
    }
    out
}

fn gather_segment(seg: &MappedSegment, alpha: f64, x: &[f64], beta: f64, y: &mut [f64], k: usize) -> Result<()> {
    let indptr = seg.indptr();
    let start = seg.start() as usize;
    let band = indptr.len() - 1;
    let y_band = &mut y[start * k..(start + band) * k];
    let tasks = pieces(indptr, 4 * rayon::current_num_threads());
    // Split the band's output into the tasks' disjoint slices.
    let mut slices = Vec::with_capacity(tasks.len());
    let mut rest = y_band;
    let mut at = 0;
    for &(a, b) in &tasks {
        let (_, tail) = rest.split_at_mut((a - at) * k);
        let (mine, tail) = tail.split_at_mut((b - a) * k);
        slices.push(((a, b), mine));
        rest = tail;
        at = b;
    }
    let bad = slices.into_par_iter().map(|((a, b), out)| gather_rows(seg, a, b, alpha, x, beta, out, k)).any(|ok| !ok);
    if bad {
        return Err(corrupt(seg, "an index lies outside the matrix"));
    }
    Ok(())
}

/// Gathers band-local rows `a..b` into `out` (`out = alpha * rows + beta * out`); false when an index
/// is out of range.
#[allow(clippy::too_many_arguments)]
fn gather_rows(
    seg: &MappedSegment,
    a: usize,
    b: usize,
    alpha: f64,
    x: &[f64],
    beta: f64,
    out: &mut [f64],
    k: usize,
) -> bool {
    let indptr = seg.indptr();
    dispatch!(seg, |ix, vals| gather_typed(indptr, ix, vals, a, b, alpha, x, beta, out, k))
}

/// The gather loop. Slices are taken per row so the inner loop runs on zipped iterators (no bounds
/// checks on the matrix arrays); `x` is read with a checked access, whose branch is always predicted.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gather_typed<I: Index, V: Scalar>(
    indptr: &[u64],
    ix: &[I],
    vals: Option<&[V]>,
    a: usize,
    b: usize,
    alpha: f64,
    x: &[f64],
    beta: f64,
    out: &mut [f64],
    k: usize,
) -> bool {
    // One pass over `out`: with beta = 0 it is only written (its old contents, NaN or not, are
    // ignored, as in BLAS), which saves reading it.
    let update = |o: &mut f64, s: f64| *o = if beta == 0.0 { alpha * s } else { beta * *o + alpha * s };
    let mut ok = true;
    if k == 1 {
        for (r, o) in (a..b).zip(out.iter_mut()) {
            let (lo, hi) = (indptr[r] as usize, indptr[r + 1] as usize);
            let (s, row_ok) = match vals {
                Some(v) => row_dot(&ix[lo..hi], &v[lo..hi], x),
                None => row_sum(&ix[lo..hi], x),
            };
            ok &= row_ok;
            update(o, s);
        }
    } else {
        let mut acc = vec![0.0; k];
        for (r, o) in (a..b).zip(out.chunks_exact_mut(k)) {
            acc.iter_mut().for_each(|v| *v = 0.0);
            let (lo, hi) = (indptr[r] as usize, indptr[r + 1] as usize);
            for (j, &c) in (lo..hi).zip(&ix[lo..hi]) {
                let c = c.at();
                match x.get(c * k..c * k + k) {
                    Some(xr) => {
                        let w = vals.map_or(1.0, |v| v[j].f64());
                        acc.iter_mut().zip(xr).for_each(|(s, &xv)| *s += w * xv);
                    }
                    None => ok = false,
                }
            }
            o.iter_mut().zip(&acc).for_each(|(y, &s)| update(y, s));
        }
    }
    ok
}

fn scatter_segment(seg: &MappedSegment, x: &[f64], y_len: usize, k: usize, parts: &mut Vec<Vec<f64>>) -> Result<()> {
    let indptr = seg.indptr();
    // One private copy of y per thread (not per task): the copies cost memory, balance comes from the
    // nonzero split.
    let tasks = pieces(indptr, rayon::current_num_threads());
    while parts.len() < tasks.len() {
        parts.push(vec![0.0; y_len]);
    }
    let start = seg.start() as usize;
    let bad = parts
        .par_iter_mut()
        .zip(tasks.par_iter())
        .map(|(part, &(a, b))| scatter_rows(seg, start, a, b, x, part, k))
        .any(|ok| !ok);
    if bad {
        return Err(corrupt(seg, "an index lies outside the matrix"));
    }
    Ok(())
}

/// Scatters band-local outer indices `a..b` into `part`; false when an index is out of range.
fn scatter_rows(seg: &MappedSegment, start: usize, a: usize, b: usize, x: &[f64], part: &mut [f64], k: usize) -> bool {
    let indptr = seg.indptr();
    dispatch!(seg, |ix, vals| scatter_typed(indptr, ix, vals, start, a, b, x, part, k))
}

/// One row's dot product with `x`, and whether every index was in range. Kept small so the compiler
/// holds everything in registers.
#[inline(always)]
fn row_dot<I: Index, V: Scalar>(cols: &[I], vals: &[V], x: &[f64]) -> (f64, bool) {
    let mut s = 0.0;
    let mut ok = true;
    for (&c, &w) in cols.iter().zip(vals) {
        match x.get(c.at()) {
            Some(&xv) => s += w.f64() * xv,
            None => ok = false,
        }
    }
    (s, ok)
}

/// [`row_dot`] for pattern rows (every value 1).
#[inline(always)]
fn row_sum<I: Index>(cols: &[I], x: &[f64]) -> (f64, bool) {
    let mut s = 0.0;
    let mut ok = true;
    for &c in cols {
        match x.get(c.at()) {
            Some(&xv) => s += xv,
            None => ok = false,
        }
    }
    (s, ok)
}

/// The scatter loop.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn scatter_typed<I: Index, V: Scalar>(
    indptr: &[u64],
    ix: &[I],
    vals: Option<&[V]>,
    start: usize,
    a: usize,
    b: usize,
    x: &[f64],
    part: &mut [f64],
    k: usize,
) -> bool {
    let mut ok = true;
    for r in a..b {
        let o = start + r;
        let Some(xr) = x.get(o * k..o * k + k) else { return false };
        let (lo, hi) = (indptr[r] as usize, indptr[r + 1] as usize);
        if k == 1 {
            let xv = xr[0];
            for (j, &c) in (lo..hi).zip(&ix[lo..hi]) {
                let w = vals.map_or(1.0, |v| v[j].f64());
                match part.get_mut(c.at()) {
                    Some(y) => *y += w * xv,
                    None => ok = false,
                }
            }
        } else {
            for (j, &c) in (lo..hi).zip(&ix[lo..hi]) {
                let i = c.at();
                let w = vals.map_or(1.0, |v| v[j].f64());
                match part.get_mut(i * k..i * k + k) {
                    Some(yr) => yr.iter_mut().zip(xr).for_each(|(y, &xv)| *y += w * xv),
                    None => ok = false,
                }
            }
        }
    }
    ok
}
