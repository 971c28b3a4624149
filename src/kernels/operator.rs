//! The public face of the kernels: [`Operator`] (a matrix prepared for repeated products under a
//! [`CachePolicy`]), the one-shot [`spmv`], [`spmv_transpose`] and [`spmm`], and the product driver
//! that checks the operands and runs the gather or the scatter over the stream.

use super::gather::gather_segment;
use super::scatter::{dot_in_order, scatter_segment, sum_parts};
use super::stream::stream;
use crate::error::{Error, Result};
use crate::format::Layout;
use crate::matrix::Matrix;
use crate::segment::MappedSegment;
use memmap2::Advice;
use std::sync::atomic::AtomicBool;

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

/// How an [`Operator`] treats the page cache when it streams a matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    /// sparsedisk manages the page cache. The leading segments whose arrays fit in `resident_bytes`
    /// stay mapped across products; the others are streamed: a reader thread maps each one and reads
    /// it in whole (touching every page of a map advised onto 2 MiB folios, see
    /// [`MappedSegment::populate`]) while earlier ones are computed, up to
    /// [`READ_AHEAD_SEGMENTS`] ahead, and once computed it is unmapped and, when the matrix does not fit
    /// in `resident_bytes`, dropped from the page cache, so that it does not push the resident part
    /// out. A product then reads from disk only what does not fit, and reads it at the disk's pace
    /// while computing.
    Managed {
        /// Matrix bytes (row pointers, indices, values) kept resident across products.
        resident_bytes: u64,
    },
    /// The kernel's page cache decides, as with `numpy.memmap`: every segment stays mapped for the
    /// operator's lifetime with sequential-access advice, pages are read on first touch with the
    /// kernel's read-ahead, and nothing is dropped. Kept as the baseline the managed policy is measured
    /// against.
    Kernel,
}

/// How many streamed segments the reader thread of [`CachePolicy::Managed`] may have read before the
/// compute reaches them: one queued and one being read while a third is computed. Two keep the disk
/// busy across the compute of a segment with a short tail, and bound the memory in flight to three
/// segments (192 MiB at the default segment size).
pub const READ_AHEAD_SEGMENTS: usize = 2;

/// A matrix prepared for repeated products.
///
/// Repeated products over a matrix larger than memory are a cyclic scan, the worst case for the
/// kernel's LRU page cache: left alone, each pass evicts what the next pass needs first, and every
/// product reads the whole matrix from disk. An operator with the [`CachePolicy::Managed`] policy
/// instead keeps the first segments, up to `resident_bytes`, mapped (their pages stay resident) across
/// products, and streams the rest through a bounded read-ahead window, dropping each streamed segment
/// from the page cache once computed. See [`Operator::default_resident_bytes`] for a budget that
/// suits the memory available.
#[derive(Debug)]
pub struct Operator<'a> {
    pub(super) matrix: &'a Matrix,
    pub(super) resident: Vec<MappedSegment>,
    pub(super) policy: CachePolicy,
    /// Whether the streamed segments are dropped from the page cache after use.
    pub(super) drop_streamed: bool,
    /// Set after a product found every segment resident and read it in: later products skip the
    /// reader thread.
    pub(super) warm: AtomicBool,
    /// The scattering products' private outputs (one per thread), all zero between products and
    /// kept for the next one: reusing them saves allocating and zeroing them (page faults and a pass
    /// over memory per thread) in every iteration of an algorithm such as PageRank. Their memory is
    /// what one product needs anyway.
    scatter_parts: std::sync::Mutex<Vec<Vec<f64>>>,
}

impl<'a> Operator<'a> {
    /// An operator with the [`CachePolicy::Managed`] policy keeping up to `resident_bytes` resident.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::Corrupt`] when a segment cannot be mapped.
    pub fn new(matrix: &'a Matrix, resident_bytes: u64) -> Result<Operator<'a>> {
        Operator::with_policy(matrix, CachePolicy::Managed { resident_bytes })
    }

    /// An operator with the given page-cache policy. Maps the segments kept resident (all of them for
    /// [`CachePolicy::Kernel`]) and checks their row pointers once.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::Corrupt`] when a segment cannot be mapped.
    pub fn with_policy(matrix: &'a Matrix, policy: CachePolicy) -> Result<Operator<'a>> {
        let budget = match policy {
            CachePolicy::Managed { resident_bytes } => resident_bytes,
            CachePolicy::Kernel => u64::MAX,
        };
        let mut resident = Vec::new();
        let mut used = 0u64;
        for i in 0..matrix.segments().len() {
            let bytes = matrix.segments()[i].payload_bytes();
            if used.saturating_add(bytes) > budget {
                break;
            }
            used += bytes;
            let seg = matrix.map_segment(i)?;
            seg.check_row_pointers()?;
            if policy == CachePolicy::Kernel {
                seg.advise(Advice::Sequential);
            }
            resident.push(seg);
        }
        let drop_streamed = resident.len() < matrix.segments().len();
        Ok(Operator {
            matrix,
            resident,
            policy,
            drop_streamed,
            warm: AtomicBool::new(false),
            scatter_parts: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// A resident budget for an operator over `matrix` that also holds `vector_bytes` of vectors: the
    /// whole matrix when it fits, else what is left of three quarters of the memory available
    /// ([`memory_limit`](crate::budget::memory_limit), cgroup limits and the page cache included) after
    /// the vectors and the read-ahead window. The last quarter is slack for the rest of the process and
    /// the kernel.
    pub fn default_resident_bytes(matrix: &Matrix, vector_bytes: u64) -> u64 {
        let payload: u64 = matrix.segments().iter().map(|s| s.payload_bytes()).sum();
        let Some(limit) = crate::budget::memory_limit() else { return payload };
        let largest = matrix.segments().iter().map(|s| s.payload_bytes()).max().unwrap_or(0);
        let window = largest * (READ_AHEAD_SEGMENTS as u64 + 1);
        let usable = (limit / 4 * 3).saturating_sub(vector_bytes);
        if payload <= usable {
            payload
        } else {
            usable.saturating_sub(window)
        }
    }

    /// The page-cache policy.
    pub fn policy(&self) -> CachePolicy {
        self.policy
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
        product(self, false, alpha, x, beta, y, 1, None)
    }

    /// `y = alpha * A^T * x + beta * y`; see [`spmv_transpose`].
    ///
    /// # Errors
    ///
    /// As [`spmv`].
    pub fn spmv_transpose(&self, alpha: f64, x: &[f64], beta: f64, y: &mut [f64]) -> Result<Product> {
        product(self, true, alpha, x, beta, y, 1, None)
    }

    /// `Y = alpha * A * X + beta * Y`; see [`spmm`].
    ///
    /// # Errors
    ///
    /// As [`spmm`].
    pub fn spmm(&self, alpha: f64, x: &[f64], beta: f64, y: &mut [f64], k: usize) -> Result<Product> {
        product(self, false, alpha, x, beta, y, k, None)
    }

    /// `Y = alpha * A^T * X + beta * Y`, with `X` (`rows x k`) and `Y` (`cols x k`) dense and
    /// row-major: one pass over the matrix for all `k` columns, as [`spmm`](Self::spmm).
    ///
    /// # Errors
    ///
    /// As [`spmm`].
    pub fn spmm_transpose(&self, alpha: f64, x: &[f64], beta: f64, y: &mut [f64], k: usize) -> Result<Product> {
        product(self, true, alpha, x, beta, y, k, None)
    }

    /// `y = A x` and the dot product `w . y`, computed in the same pass: for a CSR matrix each task
    /// multiplies its slice of `y` by `w` while the slice is still in cache (CG's `p . Ap` costs no
    /// second pass over two vectors). The partial sums are added in task order, so the result is
    /// deterministic for a given thread count.
    ///
    /// # Errors
    ///
    /// As [`spmv`]; [`Error::InvalidInput`] when `w` and `y` differ in length.
    pub fn spmv_dot(&self, x: &[f64], y: &mut [f64], w: &[f64]) -> Result<(Product, f64)> {
        if w.len() != y.len() {
            return Err(Error::invalid(format!("w has {} elements, y {}", w.len(), y.len())));
        }
        let mut dot = 0.0;
        let stats = product(self, false, 1.0, x, 0.0, y, 1, Some((w, &mut dot)))?;
        Ok((stats, dot))
    }

    /// Visits every segment in order under the operator's cache policy, as the products do
    /// (resident segments as they are, the others read ahead by a reader thread and released after
    /// the visit). Row pointers are checked before a segment is visited; inner indices are not: the
    /// visitor must check them before using them as positions. For algorithms that need a pass over
    /// the stored entries other than a product (graph traversals, connected components).
    ///
    /// # Errors
    ///
    /// What `visit` returns; [`Error::Io`] or [`Error::Corrupt`] when a segment cannot be mapped.
    pub fn for_each_segment(&self, visit: impl FnMut(&MappedSegment) -> Result<()>) -> Result<()> {
        stream(self, visit)
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
    Operator::new(a, Operator::default_resident_bytes(a, vector_bytes(x, y)))?.spmv(alpha, x, beta, y)
}

/// `y = alpha * A^T * x + beta * y`: `x` has one element per row, `y` one per column.
///
/// # Errors
///
/// As [`spmv`].
pub fn spmv_transpose(a: &Matrix, alpha: f64, x: &[f64], beta: f64, y: &mut [f64]) -> Result<Product> {
    Operator::new(a, Operator::default_resident_bytes(a, vector_bytes(x, y)))?.spmv_transpose(alpha, x, beta, y)
}

/// `Y = alpha * A * X + beta * Y` with `X` (`cols x k`) and `Y` (`rows x k`) dense and row-major, so
/// one pass over the matrix serves all `k` columns.
///
/// # Errors
///
/// As [`spmv`]; [`Error::InvalidInput`] for `k == 0`.
pub fn spmm(a: &Matrix, alpha: f64, x: &[f64], beta: f64, y: &mut [f64], k: usize) -> Result<Product> {
    Operator::new(a, Operator::default_resident_bytes(a, vector_bytes(x, y)))?.spmm(alpha, x, beta, y, k)
}

/// `Y = alpha * A^T * X + beta * Y` with `X` (`rows x k`) and `Y` (`cols x k`) dense and row-major:
/// one pass over the matrix for all `k` columns.
///
/// # Errors
///
/// As [`spmm`].
pub fn spmm_transpose(a: &Matrix, alpha: f64, x: &[f64], beta: f64, y: &mut [f64], k: usize) -> Result<Product> {
    Operator::new(a, Operator::default_resident_bytes(a, vector_bytes(x, y)))?.spmm_transpose(alpha, x, beta, y, k)
}

fn vector_bytes(x: &[f64], y: &[f64]) -> u64 {
    ((x.len() + y.len()) * std::mem::size_of::<f64>()) as u64
}

/// The product `y = alpha * op(A) * x + beta * y` (`op(A)` being `A^T` when `transpose`), `k` columns,
/// optionally also computing `w . y` into `dot` (`k == 1` only).
#[allow(clippy::too_many_arguments)]
fn product(
    op: &Operator<'_>,
    transpose: bool,
    alpha: f64,
    x: &[f64],
    beta: f64,
    y: &mut [f64],
    k: usize,
    mut dot: Option<(&[f64], &mut f64)>,
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
    // The operator's zeroed private outputs, when they have this product's length (a product that
    // fails leaves its parts dirty, and they are dropped).
    let mut scatter_parts: Vec<Vec<f64>> = Vec::new();
    if !gather {
        let mut kept = op.scatter_parts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept.first().is_some_and(|p| p.len() == y_len as usize * k) {
            scatter_parts = std::mem::take(&mut *kept);
        }
    }
    stream(op, |seg| {
        stats.segments += 1;
        stats.bytes += seg.payload_bytes();
        stats.nnz += seg.nnz();
        if gather {
            let partial = gather_segment(seg, alpha, x, beta, y, k, dot.as_ref().map(|(w, _)| *w))?;
            if let Some((_, total)) = dot.as_mut() {
                **total += partial;
            }
            Ok(())
        } else {
            scatter_segment(seg, x, y_len as usize * k, k, &mut scatter_parts)
        }
    })?;
    if !gather {
        sum_parts(&mut scatter_parts, alpha, beta, y);
        *op.scatter_parts.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = scatter_parts;
        if let Some((w, total)) = dot {
            *total = dot_in_order(y, w);
        }
    }
    Ok(stats)
}

pub(super) fn corrupt(seg: &MappedSegment, what: &str) -> Error {
    Error::corrupt(seg.path(), format!("{what} (run `sparsedisk verify` on the matrix)"))
}
