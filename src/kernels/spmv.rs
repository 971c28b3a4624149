//! SpMV, transposed SpMV and SpMM: the gather and scatter loops, generic over index and value types.

use crate::element::{Indices, Values};
use crate::error::{Error, Result};
use crate::format::Layout;
use crate::matrix::Matrix;
use crate::segment::{DenseBlock, DenseBlocks, MappedSegment};
use memmap2::Advice;
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Instantiates `body` for the segment's index and value types, with `ix` the indices and `vals` an
/// `Option<&[T]>` of values (`None` for pattern: every value is 1).
macro_rules! dispatch {
    ($seg:expr, |$ix:ident, $vals:ident| $body:expr) => {
        match ($seg.sparse_indices(), $seg.sparse_values()) {
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

/// Entries per block of rows whose indices the gather checks at once (a few KiB of indices: they stay
/// in L1 between the check and the products).
const GATHER_BLOCK: u64 = 2048;

/// How many entries ahead the gather prefetches `x` when it reads it at random. Measured on R-MAT
/// scale 22, one thread, alternating runs: 12 and 24 entries ahead were 3-6% slower than 48-96.
const PREFETCH_AHEAD: usize = 64;

/// The spread of a block's column indices (in elements of `x`, here 1 MiB) beyond which the gather
/// prefetches `x`: measured on one thread, prefetching made R-MAT scale 23 1.2x faster and a 2-D
/// Laplacian 1.2x slower.
const PREFETCH_SPAN: usize = 1 << 17;

/// Hints the processor to bring `x[i]` into cache.
#[inline(always)]
fn prefetch_read(x: &[f64], i: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults and never makes data visible to the program,
    // whatever the address (which here lies inside `x` anyway).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(x.as_ptr().wrapping_add(i).cast())
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (x, i);
}

/// Defines `$name`, which runs `$any` compiled for AVX2 (as `$avx`) when the processor has it, and as
/// compiled otherwise: the same code, vectorised on wider registers where it can be.
macro_rules! avx2_dispatch {
    ($(#[$doc:meta])* fn $name:ident / $avx:ident => $any:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        fn $name($($arg: $ty),*) -> bool {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the processor supports AVX2 (checked just above).
                return unsafe { $avx($($arg),*) };
            }
            $any($($arg),*)
        }

        /// The AVX2 build of the function above.
        ///
        /// # Safety
        ///
        /// The processor supports AVX2.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $avx($($arg: $ty),*) -> bool {
            $any($($arg),*)
        }
    };
}

/// How far ahead of a dense block row the gather prefetches its values.
const DENSE_PREFETCH_BYTES: usize = 8192;

/// Hints the processor to bring the cache line at `p` into cache. Never faults, whatever `p`.
#[inline(always)]
fn prefetch_ptr(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults and never makes data visible to the program,
    // whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The bytes a task's dense loop reads next, for prefetching ahead: its rows of the current block,
/// then its rows of the next block. Blocks lie one after another in the values array, but a task may
/// own only some rows of a block row (the rest belong to other tasks), so prefetching a fixed
/// distance ahead in the array would fetch other tasks' rows (on two threads, an arrow matrix's
/// dense rows ran 3x slower than on one that way), and stopping at the block's end would leave the
/// next block cold; this follows the task's own stream across the gap.
#[derive(Clone, Copy)]
struct Ahead {
    /// The task's values in the current block, and their length in bytes.
    current: (*const u8, usize),
    /// The task's values in the next block (null and 0 when there is none).
    next: (*const u8, usize),
    /// The size of one of the current block's values.
    value_bytes: usize,
}

impl Ahead {
    /// Prefetches the `len` bytes that the loop reads a distance ahead of the byte `at` of the
    /// stream. The distance is [`DENSE_PREFETCH_BYTES`], or the length of the current rows when that
    /// is shorter, so that it never overshoots the next block's rows.
    #[inline(always)]
    fn prefetch(self, at: usize, len: usize) {
        let ((current, current_len), (next, next_len)) = (self.current, self.next);
        let from = at + DENSE_PREFETCH_BYTES.min(current_len);
        for byte in (from..from + len).step_by(64) {
            if byte < current_len {
                prefetch_ptr(current.wrapping_add(byte));
            } else if byte - current_len < next_len {
                prefetch_ptr(next.wrapping_add(byte - current_len));
            }
        }
    }
}

/// Covers `k` columns with panels of 16, 8, 4, 2 and 1 columns, widest first: for each, binds the
/// panel's width to the constant `$w` (a loop whose width is known at compile time keeps its
/// accumulators in registers) and its first column to `$off`, and evaluates `$panel`, which returns
/// the width.
macro_rules! for_each_panel {
    ($k:expr, |$w:ident, $off:ident| $panel:expr) => {{
        let k: usize = $k;
        let mut $off = 0;
        while $off < k {
            $off += match k - $off {
                16.. => {
                    const $w: usize = 16;
                    $panel
                }
                8.. => {
                    const $w: usize = 8;
                    $panel
                }
                4.. => {
                    const $w: usize = 4;
                    $panel
                }
                2.. => {
                    const $w: usize = 2;
                    $panel
                }
                _ => {
                    const $w: usize = 1;
                    $panel
                }
            };
        }
    }};
}

/// Stored index types, widened for indexing.
trait Index:
    Copy
    + Ord
    + Send
    + Sync
    + std::ops::BitOr<Output = Self>
    + std::ops::BitAnd<Output = Self>
    + std::ops::BitXor<Output = Self>
{
    /// No bit set.
    const NONE: Self;
    /// Every bit set.
    const ALL: Self;
    fn at(self) -> usize;
}
impl Index for u32 {
    const NONE: u32 = 0;
    const ALL: u32 = u32::MAX;
    #[inline(always)]
    fn at(self) -> usize {
        self as usize
    }
}
impl Index for u64 {
    const NONE: u64 = 0;
    const ALL: u64 = u64::MAX;
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
    matrix: &'a Matrix,
    resident: Vec<MappedSegment>,
    policy: CachePolicy,
    /// Whether the streamed segments are dropped from the page cache after use.
    drop_streamed: bool,
    /// Set after a product found every segment resident and read it in: later products skip the
    /// reader thread.
    warm: AtomicBool,
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
        let stats = product_with_dot(self, false, 1.0, x, 0.0, y, 1, Some((w, &mut dot)))?;
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

fn vector_bytes(x: &[f64], y: &[f64]) -> u64 {
    ((x.len() + y.len()) * std::mem::size_of::<f64>()) as u64
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
    product_with_dot(op, transpose, alpha, x, beta, y, k, None)
}

/// [`product`], optionally also computing `w . y` into `dot` (`k == 1` only).
#[allow(clippy::too_many_arguments)]
fn product_with_dot(
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
        // y = beta y + alpha * (sum of the parts, in task order), clearing the parts as they are
        // read so that the next product finds them zero.
        const CHUNK: usize = 1 << 14;
        let mut by_chunk: Vec<Vec<&mut [f64]>> = (0..y.len().div_ceil(CHUNK)).map(|_| Vec::new()).collect();
        for part in scatter_parts.iter_mut() {
            for (c, piece) in part.chunks_mut(CHUNK).enumerate() {
                by_chunk[c].push(piece);
            }
        }
        y.par_chunks_mut(CHUNK).zip(by_chunk.into_par_iter()).for_each(|(chunk, mut pieces)| {
            for (i, v) in chunk.iter_mut().enumerate() {
                let mut s = 0.0;
                for p in pieces.iter_mut() {
                    s += std::mem::take(&mut p[i]);
                }
                *v = if beta == 0.0 { alpha * s } else { beta * *v + alpha * s };
            }
        });
        *op.scatter_parts.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = scatter_parts;
        if let Some((w, total)) = dot {
            // Chunks of a fixed size summed in order: the same result on any thread count.
            let partials: Vec<f64> = y
                .par_chunks(1 << 14)
                .zip(w.par_chunks(1 << 14))
                .map(|(a, b)| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>())
                .collect();
            *total = partials.iter().sum();
        }
    }
    Ok(stats)
}

/// Visits the segments in order. Resident segments are visited as they are; with the managed policy,
/// a reader thread reads each segment in (mapping the streamed ones) up to [`READ_AHEAD_SEGMENTS`]
/// ahead of the compute, and streamed segments are unmapped once computed and, when the matrix does not
/// fit the resident budget, dropped from the page cache.
fn stream(op: &Operator<'_>, mut visit: impl FnMut(&MappedSegment) -> Result<()>) -> Result<()> {
    let a = op.matrix;
    let n = a.segments().len();
    let first = op.resident.len();
    if op.policy == CachePolicy::Kernel || (first == n && op.warm.load(Ordering::Relaxed)) {
        return op.resident.iter().try_for_each(visit);
    }
    let resident = &op.resident;
    std::thread::scope(|scope| -> Result<()> {
        // The reader sends `None` for a resident segment it has read in, `Some` for a streamed one it
        // has mapped and read in. The channel's bound is the read-ahead window; when the compute stops
        // early (an error), the receiver is dropped and the reader's next send ends it.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Option<MappedSegment>>>(READ_AHEAD_SEGMENTS - 1);
        scope.spawn(move || {
            for i in 0..n {
                let item = if let Some(seg) = resident.get(i) {
                    seg.populate();
                    Ok(None)
                } else {
                    a.map_segment(i).map(|seg| {
                        seg.advise(Advice::Sequential);
                        seg.populate();
                        Some(seg)
                    })
                };
                let failed = item.is_err();
                if tx.send(item).is_err() || failed {
                    return;
                }
            }
        });
        // Computed segments are unmapped (and dropped from the page cache) on a third thread: for a
        // 64 MiB segment that takes longer than computing a banded one, and is not the compute's work.
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<MappedSegment>(1);
        let drop_streamed = op.drop_streamed;
        scope.spawn(move || {
            for seg in done_rx {
                let paths = seg.array_paths();
                // Unmapped first: the kernel does not drop pages that are still mapped.
                drop(seg);
                if drop_streamed {
                    paths.iter().for_each(|p| crate::storage::drop_clean_pages(p));
                }
            }
        });
        for i in 0..n {
            let item = rx.recv().map_err(|_| Error::invalid("the segment reader thread stopped unexpectedly"))?;
            match item? {
                None => visit(resident.get(i).expect("the reader sends None only for resident segments"))?,
                Some(seg) => {
                    seg.check_row_pointers()?;
                    visit(&seg)?;
                    // The releaser only stops when this sender is dropped, so the send cannot fail.
                    let _ = done_tx.send(seg);
                }
            }
        }
        Ok(())
    })?;
    if first == n {
        op.warm.store(true, Ordering::Relaxed);
    }
    Ok(())
}

fn corrupt(seg: &MappedSegment, what: &str) -> Error {
    Error::corrupt(seg.path(), format!("{what} (run `sparsedisk verify` on the matrix)"))
}

/// Entries below which splitting a segment's work costs more than it saves (waking a thread and
/// joining it takes microseconds: a small matrix's product would be dominated by it). Measured on CG
/// over a 3600-row Laplacian: 2.4x scipy's time per iteration with every segment split in 8 tasks,
/// 1.1x with this bound.
static MIN_TASK_ENTRIES: AtomicU64 = AtomicU64::new(32 << 10);

/// Sets the number of entries below which a segment is not split across threads (default 32 Ki).
/// For tests, which need the parallel paths on matrices of a few entries; results do not depend on
/// it except in the last bits of scatters, which depend on the number of tasks.
#[doc(hidden)]
pub fn set_min_task_entries(entries: u64) {
    MIN_TASK_ENTRIES.store(entries.max(1), Ordering::Relaxed);
}

/// How many tasks a segment of `nnz` entries is cut into: `wanted`, fewer for small segments.
fn task_count(nnz: u64, wanted: usize) -> usize {
    wanted.min((nnz / MIN_TASK_ENTRIES.load(Ordering::Relaxed)) as usize + 1)
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

/// Gathers one segment into its band of `y`; with `dot_with`, returns the band's `w . y` (summed per
/// task, in task order), else 0.
fn gather_segment(
    seg: &MappedSegment,
    alpha: f64,
    x: &[f64],
    beta: f64,
    y: &mut [f64],
    k: usize,
    dot_with: Option<&[f64]>,
) -> Result<f64> {
    let indptr = seg.sparse_indptr();
    let start = seg.start() as usize;
    let band = indptr.len() - 1;
    let y_band = &mut y[start * k..(start + band) * k];
    let blocks = seg.dense_blocks();
    let work = seg.dense_work_prefix();
    let tasks = pieces(work.unwrap_or(indptr), task_count(seg.nnz(), 4 * rayon::current_num_threads()));
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
    let results: Vec<(bool, f64)> = slices
        .into_par_iter()
        .map(|((a, b), out)| {
            let ok = gather_rows(seg, a, b, alpha, x, beta, out, k)
                && blocks.as_ref().map_or(true, |blocks| gather_dense(blocks, a, b, alpha, x, out, k));
            let partial = match dot_with {
                Some(w) if ok => out.iter().zip(&w[start + a..start + b]).map(|(u, v)| u * v).sum(),
                _ => 0.0,
            };
            (ok, partial)
        })
        .collect();
    if results.iter().any(|&(ok, _)| !ok) {
        return Err(corrupt(seg, "an index lies outside the matrix"));
    }
    Ok(results.iter().map(|&(_, p)| p).sum())
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
    let indptr = seg.sparse_indptr();
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor supports AVX2 (checked just above).
        return unsafe { gather_rows_avx2(seg, a, b, alpha, x, beta, out, k) };
    }
    dispatch!(seg, |ix, vals| gather_typed(indptr, ix, vals, a, b, alpha, x, beta, out, k))
}

/// [`gather_rows`] compiled for AVX2, chosen at run time: the index checks (an or, an and, a max of
/// unsigned integers) run on 8 lanes instead of 4 and without the SSE2 emulation of unsigned
/// compares. The arithmetic is the same sequence of separately rounded multiplies and adds (no FMA),
/// so results are bit for bit those of the portable path.
///
/// # Safety
///
/// The processor supports AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn gather_rows_avx2(
    seg: &MappedSegment,
    a: usize,
    b: usize,
    alpha: f64,
    x: &[f64],
    beta: f64,
    out: &mut [f64],
    k: usize,
) -> bool {
    let indptr = seg.sparse_indptr();
    dispatch!(seg, |ix, vals| gather_typed(indptr, ix, vals, a, b, alpha, x, beta, out, k))
}

/// The gather loop. Slices are taken per row so the inner loop runs on zipped iterators (no bounds
/// checks on the matrix arrays); for one column, `x` is read unchecked after a check per block of rows
/// (see [`GATHER_BLOCK`]), for several with a checked access per entry, amortised over the `k` columns.
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
    if k == 1 {
        // Indices are checked in chunks of about GATHER_BLOCK entries, just ahead of the rows that
        // use them: a vectorised max over indices that then stay in L1 for the dot products, which
        // can therefore read `x` without a check per entry (on a random-access matrix every
        // instruction saved per entry lets the core keep more reads of `x` in flight). The chunks
        // follow the entries, not the rows, so finding their ends costs nothing; `checked` is the end
        // of the entries checked so far.
        let end_entry = indptr[b] as usize;
        let mut checked = indptr[a] as usize;
        let mut prefetch = false;
        for (w, o) in indptr[a..=b].windows(2).zip(&mut out[..b - a]) {
            let (lo, hi) = (w[0] as usize, w[1] as usize);
            if hi > checked {
                // Prefetch `x` ahead of the dot products only where the chunk's reads of `x` spread
                // wider than the caches (a graph): there it hides the latency of the misses, while
                // on a banded matrix whose reads of `x` stream from cache it would only cost
                // instructions.
                match check_chunk(ix, &mut checked, hi, end_entry, x.len()) {
                    Some(wide) => prefetch = wide,
                    None => return false,
                }
            }
            if prefetch {
                let ahead = (lo + PREFETCH_AHEAD).min(end_entry)..(hi + PREFETCH_AHEAD).min(end_entry);
                ix[ahead].iter().for_each(|&c| prefetch_read(x, c.at()));
            }
            // SAFETY: the row's entries lo..hi lie in indptr[a]..checked (row pointers increase, and
            // `checked` was just moved past `hi`), whose every index was checked below x.len().
            let s = unsafe {
                match vals {
                    Some(v) => row_dot(&ix[lo..hi], &v[lo..hi], x),
                    None => row_sum(&ix[lo..hi], x),
                }
            };
            update(o, s);
        }
        true
    } else {
        // Several columns: a loop whose width is known at compile time keeps its accumulators in
        // registers, so the common widths have their own, and any other width is cut into panels of
        // 16, 8, 4, 2 and 1 columns inside each row (a 3-column product took six times as long as a
        // 4-column one with a loop of run-time width).
        match k {
            2 => gather_fixed::<I, V, 2>(indptr, ix, vals, a, b, alpha, x, beta, out),
            4 => gather_fixed::<I, V, 4>(indptr, ix, vals, a, b, alpha, x, beta, out),
            8 => gather_fixed::<I, V, 8>(indptr, ix, vals, a, b, alpha, x, beta, out),
            16 => gather_fixed::<I, V, 16>(indptr, ix, vals, a, b, alpha, x, beta, out),
            _ => gather_panels(indptr, ix, vals, a, b, alpha, x, beta, out, k),
        }
    }
}

/// Checks the next chunk of indices, `ix[checked..to]` with `to` about [`GATHER_BLOCK`] entries on
/// and at least `hi`, against `bound`, and moves `checked` to `to`. `None` when an index is `bound`
/// or more; else whether the chunk's indices spread wide (worth prefetching).
///
/// The bitwise or of the indices bounds their maximum from above (two instructions per vector of
/// indices, where an unsigned max takes five without SSE4.1): when it lies below `bound`, so does
/// every index; otherwise the exact maximum decides. The spread is judged by the highest bit in which
/// the indices differ: an over-estimate only for the few chunks that straddle a multiple of
/// `2 * PREFETCH_SPAN`.
#[inline(always)]
fn check_chunk<I: Index>(ix: &[I], checked: &mut usize, hi: usize, end_entry: usize, bound: usize) -> Option<bool> {
    let to = (*checked + GATHER_BLOCK as usize).max(hi).min(end_entry);
    let chunk = &ix[*checked..to];
    let (any, all) = chunk.iter().fold((I::NONE, I::ALL), |(o, n), &c| (o | c, n & c));
    if any.at() >= bound && chunk.iter().copied().max().is_some_and(|m| m.at() >= bound) {
        return None;
    }
    *checked = to;
    Some((any ^ all).at() >= 2 * PREFETCH_SPAN)
}

/// Band-local outer indices `a..b` whose inner indices are checked against `bound` in chunks as the
/// one-column loops check them (see [`check_chunk`]): yields `Some((i, lo..hi))` for the `i`-th
/// outer index once every index in `ix[lo..hi]` is known to be below `bound`, or `None` (and then
/// nothing more) at an index out of range. An iterator rather than a function taking a closure: the
/// loop body stays in the AVX2 build of its caller (a closure is compiled without the caller's
/// target features, which made SpMM with 8 vectors 1.6x slower).
struct CheckedRows<'a, I> {
    indptr: &'a [u64],
    ix: &'a [I],
    bound: usize,
    end_entry: usize,
    /// End of the entries checked so far.
    checked: usize,
    /// Position in `indptr` of the next outer index.
    at: usize,
    b: usize,
    a: usize,
}

impl<'a, I: Index> CheckedRows<'a, I> {
    #[inline(always)]
    fn new(indptr: &'a [u64], ix: &'a [I], a: usize, b: usize, bound: usize) -> Self {
        let (checked, end_entry) = (indptr[a] as usize, indptr[b] as usize);
        CheckedRows { indptr, ix, bound, end_entry, checked, at: a, b, a }
    }
}

impl<I: Index> Iterator for CheckedRows<'_, I> {
    type Item = Option<(usize, std::ops::Range<usize>)>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.b {
            return None;
        }
        let (lo, hi) = (self.indptr[self.at] as usize, self.indptr[self.at + 1] as usize);
        if hi > self.checked && check_chunk(self.ix, &mut self.checked, hi, self.end_entry, self.bound).is_none() {
            self.at = self.b;
            return Some(None);
        }
        self.at += 1;
        Some(Some((self.at - 1 - self.a, lo..hi)))
    }
}

/// The gather for `K` columns known at compile time (the common widths of a block of vectors): one
/// [`row_panel`] per row.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gather_fixed<I: Index, V: Scalar, const K: usize>(
    indptr: &[u64],
    ix: &[I],
    vals: Option<&[V]>,
    a: usize,
    b: usize,
    alpha: f64,
    x: &[f64],
    beta: f64,
    out: &mut [f64],
) -> bool {
    for row in CheckedRows::new(indptr, ix, a, b, x.len() / K) {
        let Some((i, e)) = row else { return false };
        // SAFETY: every index of the row's entries is below x.len() / K (checked by the walk).
        unsafe {
            row_panel::<I, V, K>(
                &ix[e.clone()],
                vals.map(|v| &v[e]),
                x,
                K,
                0,
                alpha,
                beta,
                &mut out[i * K..(i + 1) * K],
            )
        };
    }
    true
}

/// The gather for any other number of columns `k`: each row's output cut into panels of 16, 8, 4,
/// 2 and 1 columns, each summed by [`row_panel`] with its accumulators in registers. The row's
/// entries and the rows of `X` they name are read once from memory and then from cache for the
/// following panels (a pass over the matrix per panel instead was 1.4x slower on a Laplacian with
/// 24 columns, where the traffic of `X` dominates).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gather_panels<I: Index, V: Scalar>(
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
    for row in CheckedRows::new(indptr, ix, a, b, x.len() / k) {
        let Some((i, e)) = row else { return false };
        let (row, vals, o) = (&ix[e.clone()], vals.map(|v| &v[e]), &mut out[i * k..(i + 1) * k]);
        // SAFETY: every index of the row is below x.len() / k (checked by the walk), and every
        // panel ends at or before column k.
        for_each_panel!(k, |W, off| unsafe { row_panel::<I, V, W>(row, vals, x, k, off, alpha, beta, o) });
    }
    true
}

/// One row's product with columns `off..off + K` of the `k` columns of `X`, into the same columns of
/// the row's output `o` (`o = alpha * row X + beta * o`, `o` only written when `beta` is 0). The
/// accumulator is a fixed array the compiler keeps in vector registers. Every output is summed over
/// the row's entries in order, whatever the panels. Returns `K`.
///
/// # Safety
///
/// Every index in `row` is below `x.len() / k`, and `off + K <= k`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn row_panel<I: Index, V: Scalar, const K: usize>(
    row: &[I],
    vals: Option<&[V]>,
    x: &[f64],
    k: usize,
    off: usize,
    alpha: f64,
    beta: f64,
    o: &mut [f64],
) -> usize {
    let mut acc = [0.0f64; K];
    // SAFETY: c < x.len() / k and off + K <= k, so c * k + off + K <= x.len() (the caller's promise).
    let x_row = |c: I| unsafe { x.get_unchecked(c.at() * k + off..c.at() * k + off + K) };
    match vals {
        Some(v) => {
            for (&c, &w) in row.iter().zip(v) {
                let w = w.f64();
                acc.iter_mut().zip(x_row(c)).for_each(|(s, &xv)| *s += w * xv);
            }
        }
        None => {
            for &c in row {
                acc.iter_mut().zip(x_row(c)).for_each(|(s, &xv)| *s += 1.0 * xv);
            }
        }
    }
    for (y, &s) in o[off..off + K].iter_mut().zip(&acc) {
        *y = if beta == 0.0 { alpha * s } else { beta * *y + alpha * s };
    }
    K
}

fn scatter_segment(seg: &MappedSegment, x: &[f64], y_len: usize, k: usize, parts: &mut Vec<Vec<f64>>) -> Result<()> {
    let indptr = seg.sparse_indptr();
    // One private copy of y per thread (not per task): the copies cost memory, balance comes from the
    // nonzero split.
    let blocks = seg.dense_blocks();
    let work = seg.dense_work_prefix();
    let tasks = pieces(work.unwrap_or(indptr), task_count(seg.nnz(), rayon::current_num_threads()));
    while parts.len() < tasks.len() {
        parts.push(super::dense_vector(y_len));
    }
    let start = seg.start() as usize;
    let bad = parts
        .par_iter_mut()
        .zip(tasks.par_iter())
        .map(|(part, &(a, b))| {
            scatter_rows(seg, start, a, b, x, part, k)
                && blocks.as_ref().map_or(true, |blocks| scatter_dense(blocks, start, a, b, x, part, k))
        })
        .any(|ok| !ok);
    if bad {
        return Err(corrupt(seg, "an index lies outside the matrix"));
    }
    Ok(())
}

/// Scatters band-local outer indices `a..b` into `part`; false when an index is out of range.
fn scatter_rows(seg: &MappedSegment, start: usize, a: usize, b: usize, x: &[f64], part: &mut [f64], k: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor supports AVX2 (checked just above).
        return unsafe { scatter_rows_avx2(seg, start, a, b, x, part, k) };
    }
    let indptr = seg.sparse_indptr();
    dispatch!(seg, |ix, vals| scatter_typed(indptr, ix, vals, start, a, b, x, part, k))
}

/// [`scatter_rows`] compiled for AVX2, chosen at run time (see [`gather_rows_avx2`]).
///
/// # Safety
///
/// The processor supports AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scatter_rows_avx2(
    seg: &MappedSegment,
    start: usize,
    a: usize,
    b: usize,
    x: &[f64],
    part: &mut [f64],
    k: usize,
) -> bool {
    let indptr = seg.sparse_indptr();
    dispatch!(seg, |ix, vals| scatter_typed(indptr, ix, vals, start, a, b, x, part, k))
}

/// One row's dot product with `x`. Kept small so the compiler holds everything in registers.
///
/// # Safety
///
/// Every index in `cols` is below `x.len()`.
#[inline(always)]
unsafe fn row_dot<I: Index, V: Scalar>(cols: &[I], vals: &[V], x: &[f64]) -> f64 {
    let mut s = 0.0;
    for (&c, &w) in cols.iter().zip(vals) {
        // SAFETY: the caller guarantees c < x.len().
        s += w.f64() * unsafe { *x.get_unchecked(c.at()) };
    }
    s
}

/// [`row_dot`] for pattern rows (every value 1).
///
/// # Safety
///
/// Every index in `cols` is below `x.len()`.
#[inline(always)]
unsafe fn row_sum<I: Index>(cols: &[I], x: &[f64]) -> f64 {
    let mut s = 0.0;
    for &c in cols {
        // SAFETY: the caller guarantees c < x.len().
        s += unsafe { *x.get_unchecked(c.at()) };
    }
    s
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
    if k == 1 {
        // As the gather: indices checked in chunks that follow the entries (a bitwise or bounds
        // them), then `part` written unchecked, with its lines prefetched ahead where a chunk's
        // indices spread wide (a graph's transposed product writes at random).
        let Some(xs) = x.get(start + a..start + b) else { return false };
        let end_entry = indptr[b] as usize;
        let mut checked = indptr[a] as usize;
        let mut prefetch = false;
        for (w, &xv) in indptr[a..=b].windows(2).zip(xs) {
            let (lo, hi) = (w[0] as usize, w[1] as usize);
            if hi > checked {
                match check_chunk(ix, &mut checked, hi, end_entry, part.len()) {
                    Some(wide) => prefetch = wide,
                    None => return false,
                }
            }
            if prefetch {
                let ahead = (lo + PREFETCH_AHEAD).min(end_entry)..(hi + PREFETCH_AHEAD).min(end_entry);
                ix[ahead].iter().for_each(|&c| prefetch_read(part, c.at()));
            }
            // SAFETY: the row's entries lie in indptr[a]..checked, whose every index was checked
            // below part.len().
            unsafe {
                match vals {
                    Some(v) => {
                        for (&c, &wv) in ix[lo..hi].iter().zip(&v[lo..hi]) {
                            *part.get_unchecked_mut(c.at()) += wv.f64() * xv;
                        }
                    }
                    None => {
                        for &c in &ix[lo..hi] {
                            *part.get_unchecked_mut(c.at()) += 1.0 * xv;
                        }
                    }
                }
            }
        }
        return true;
    }
    scatter_panels(indptr, ix, vals, start, a, b, x, part, k)
}

/// The scatter for `k` >= 2 columns: indices checked in chunks as in the one-column scatter, then
/// each outer index's entries added to their rows of `part` in panels of 16, 8, 4, 2 and 1 columns
/// whose `x` values stay in registers (a loop of run-time width with a checked slice per entry made
/// a CSC SpMM three times as slow as the CSR one). Every output is summed in the same order as
/// entry by entry.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn scatter_panels<I: Index, V: Scalar>(
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
    let Some(xs) = x.get((start + a) * k..(start + b) * k) else { return false };
    for row in CheckedRows::new(indptr, ix, a, b, part.len() / k) {
        let Some((i, e)) = row else { return false };
        let (inner, vals, xr) = (&ix[e.clone()], vals.map(|v| &v[e]), &xs[i * k..(i + 1) * k]);
        // SAFETY: every index of the entries is below part.len() / k (checked by the walk), and
        // every panel ends at or before column k.
        for_each_panel!(k, |W, off| unsafe { scatter_panel::<I, V, W>(inner, vals, xr, part, k, off) });
    }
    true
}

/// Adds `w * xr[off..off + K]` into columns `off..off + K` of the row of `part` named by each entry
/// of one outer index. Returns `K`.
///
/// # Safety
///
/// Every index in `inner` is below `part.len() / k`, and `off + K <= k`.
#[inline(always)]
unsafe fn scatter_panel<I: Index, V: Scalar, const K: usize>(
    inner: &[I],
    vals: Option<&[V]>,
    xr: &[f64],
    part: &mut [f64],
    k: usize,
    off: usize,
) -> usize {
    let xp: [f64; K] = std::array::from_fn(|l| xr[off + l]);
    let mut add = |c: I, w: f64| {
        // SAFETY: c < part.len() / k and off + K <= k (the caller's promise).
        let y = unsafe { part.get_unchecked_mut(c.at() * k + off..c.at() * k + off + K) };
        y.iter_mut().zip(&xp).for_each(|(y, &xv)| *y += w * xv);
    };
    match vals {
        Some(v) => inner.iter().zip(v).for_each(|(&c, &w)| add(c, w.f64())),
        None => inner.iter().for_each(|&c| add(c, 1.0)),
    }
    K
}

/// Where rows `rows` of a block start in its values, the length in bytes of those rows' values, and
/// the size of a value (null, 0 and 0 for a pattern block). For prefetching only: the range may lie
/// outside a damaged block's values.
fn rows_span(blk: &DenseBlock<'_>, rows: &std::ops::Range<u64>) -> (*const u8, usize, usize) {
    let at = rows.start.saturating_sub(blk.outer) as usize * blk.stride as usize;
    let count = (rows.end.saturating_sub(rows.start).max(1) - 1) as usize * blk.stride as usize + blk.width as usize;
    let (start, size) = match blk.values {
        Values::F64(v) => (v.as_ptr().wrapping_add(at).cast(), 8),
        Values::F32(v) => (v.as_ptr().wrapping_add(at).cast(), 4),
        Values::I64(v) => (v.as_ptr().wrapping_add(at).cast(), 8),
        Values::Pattern => (std::ptr::null(), 0),
    };
    (start, count * size, size)
}

/// The blocks meeting band-local rows `a..b` ([`DenseBlocks::meeting`]), each with the [`Ahead`]
/// stream of the task's rows of it and of the next block: the one walk of the dense gather and
/// scatter.
fn meeting_ahead<'a, 's>(
    blocks: &'s DenseBlocks<'a>,
    a: usize,
    b: usize,
) -> impl Iterator<Item = (DenseBlock<'a>, std::ops::Range<u64>, Ahead)> + 's {
    let mut meeting = blocks.meeting(a as u64, b as u64).peekable();
    std::iter::from_fn(move || {
        let (blk, rows) = meeting.next()?;
        let (current, current_len, value_bytes) = rows_span(&blk, &rows);
        let next = meeting.peek().map_or((std::ptr::null(), 0), |(next, rows)| {
            let (start, len, _) = rows_span(next, rows);
            (start, len)
        });
        let ahead = Ahead { current: (current, current_len), next, value_bytes };
        Some((blk, rows, ahead))
    })
}

avx2_dispatch! {
    /// Adds `alpha` times the dense blocks' products for band-local rows `a..b` into `out` (the rows'
    /// slice of `y`, `k` values per row); false when a block's window lies outside `x`.
    fn gather_dense / gather_dense_avx2 => gather_dense_any(
        blocks: &DenseBlocks<'_>, a: usize, b: usize, alpha: f64, x: &[f64], out: &mut [f64], k: usize
    )
}

#[inline(always)]
fn gather_dense_any(
    blocks: &DenseBlocks<'_>,
    a: usize,
    b: usize,
    alpha: f64,
    x: &[f64],
    out: &mut [f64],
    k: usize,
) -> bool {
    for (blk, rows, ahead) in meeting_ahead(blocks, a, b) {
        let (c0, w) = (blk.inner as usize, blk.width as usize);
        let Some(xs) = x.get(c0 * k..(c0 + w) * k) else { return false };
        let (r0, r1) = (rows.start as usize, rows.end as usize);
        let first = (r0 - blk.outer as usize) * blk.stride as usize;
        let Some(ys) = out.get_mut((r0 - a) * k..(r1 - a) * k) else { return false };
        let stride = blk.stride as usize;
        let ok = match blk.values {
            Values::F64(v) => gather_block(v.get(first..), stride, w, xs, alpha, ys, k, ahead),
            Values::F32(v) => gather_block(v.get(first..), stride, w, xs, alpha, ys, k, ahead),
            Values::I64(v) => gather_block(v.get(first..), stride, w, xs, alpha, ys, k, ahead),
            Values::Pattern => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// `y += alpha * B X` for the rows of one block: `vals` starts at the first row's values (rows
/// `stride` apart, `w` used), `ys` holds `k` outputs per row and `xs` is `w x k`. False
/// when the block's values end early. `ahead` locates the task's rows of this block and the next, for
/// the prefetch ahead.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gather_block<V: Scalar>(
    vals: Option<&[V]>,
    stride: usize,
    w: usize,
    xs: &[f64],
    alpha: f64,
    ys: &mut [f64],
    k: usize,
    ahead: Ahead,
) -> bool {
    let Some(vals) = vals else { return false };
    let rows = ys.len() / k;
    if rows == 0 || vals.len() < (rows - 1) * stride + w {
        return false;
    }
    let size = std::mem::size_of::<V>();
    if k == 1 {
        // Each row summed in sixteen lanes (four AVX2 vectors: independent chains) over steps of
        // sixteen positions, the lanes then added in a fixed tree, then the tail: a fixed order, so
        // results do not depend on how tasks split the band.
        let main = w / 16 * 16;
        for (r, y) in ys.iter_mut().enumerate() {
            let row = &vals[r * stride..r * stride + w];
            // The values stream through one row at a time, a single sequential stream that the
            // hardware prefetcher follows only within a 4 KiB page: fetch the lines a few KiB ahead.
            ahead.prefetch(r * stride * size, w * size);
            let mut lanes = [0.0f64; 16];
            for (r16, x16) in row[..main].chunks_exact(16).zip(xs[..main].chunks_exact(16)) {
                for l in 0..16 {
                    lanes[l] += r16[l].f64() * x16[l];
                }
            }
            let mut quad = [0.0f64; 4];
            for l in 0..4 {
                quad[l] = (lanes[l] + lanes[l + 4]) + (lanes[l + 8] + lanes[l + 12]);
            }
            let mut s = (quad[0] + quad[2]) + (quad[1] + quad[3]);
            for (&v, &x) in row[main..].iter().zip(&xs[main..w]) {
                s += v.f64() * x;
            }
            *y += alpha * s;
        }
    } else {
        // Panels of columns, as in the CSR gather; 16 columns take 2 rows at a time (32
        // accumulators), narrower panels 4.
        for_each_panel!(k, |W, off| gather_block_fixed::<
            V,
            W,
            {
                if W == 16 {
                    2
                } else {
                    4
                }
            },
        >(vals, stride, w, xs, alpha, ys, k, off, ahead));
    }
    true
}

/// [`gather_block`] for a panel of `K` columns known at compile time, columns `off..off + K` of `k`,
/// `R` rows at a time: each row of `X` is loaded once for `R` rows, and the `R` accumulators are
/// independent chains the processor overlaps. Each output is summed in the same order as one row at
/// a time. The caller has checked that `vals` holds every row's `w` values. Returns `K`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gather_block_fixed<V: Scalar, const K: usize, const R: usize>(
    vals: &[V],
    stride: usize,
    w: usize,
    xs: &[f64],
    alpha: f64,
    ys: &mut [f64],
    k: usize,
    off: usize,
    ahead: Ahead,
) -> usize {
    let rows = ys.len() / k;
    // Whole groups of R rows first, then the rest one at a time: with both counts known at compile
    // time the accumulators stay in vector registers (a run-time count of rows left them in memory,
    // a load and a store around every multiply-add, and made this loop slower than the CSR one).
    let whole = rows / R * R;
    for r in (0..whole).step_by(R) {
        gather_rows_fixed::<V, K, R>(vals, r, stride, w, xs, alpha, ys, k, off, ahead);
    }
    for r in whole..rows {
        gather_rows_fixed::<V, K, 1>(vals, r, stride, w, xs, alpha, ys, k, off, ahead);
    }
    K
}

/// Rows `r..r + R` of one block for [`gather_block_fixed`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gather_rows_fixed<V: Scalar, const K: usize, const R: usize>(
    vals: &[V],
    r: usize,
    stride: usize,
    w: usize,
    xs: &[f64],
    alpha: f64,
    ys: &mut [f64],
    k: usize,
    off: usize,
    ahead: Ahead,
) {
    let starts: [usize; R] = std::array::from_fn(|q| (r + q) * stride);
    assert!(starts[R - 1] + w <= vals.len() && off + K <= k && xs.len() >= w * k && ys.len() >= (r + R) * k);
    // As in the one-vector loop: the values are one sequential stream, which the hardware
    // prefetcher follows only within a page, so fetch the lines a few KiB ahead of these rows.
    let size = std::mem::size_of::<V>();
    ahead.prefetch(starts[0] * size, R * stride * size);
    let mut acc = [[0.0f64; K]; R];
    for j in 0..w {
        // SAFETY: j < w and off + K <= k, so j * k + off + K <= w * k <= xs.len() (asserted above).
        let xr = unsafe { xs.get_unchecked(j * k + off..j * k + off + K) };
        for q in 0..R {
            // SAFETY: starts[q] + j < starts[R - 1] + w <= vals.len(), asserted above.
            let v = unsafe { vals.get_unchecked(starts[q] + j) }.f64();
            for l in 0..K {
                acc[q][l] += v * xr[l];
            }
        }
    }
    for (q, a) in acc.iter().enumerate() {
        let y = &mut ys[(r + q) * k + off..(r + q) * k + off + K];
        y.iter_mut().zip(a).for_each(|(o, &s)| *o += alpha * s);
    }
}

avx2_dispatch! {
    /// Scatters the dense blocks' rows `a..b` of the band starting at global outer index `start` into
    /// `part` (`part[inner] += value * x[outer]`); false when a block's window lies outside `part` or
    /// a row outside `x`.
    fn scatter_dense / scatter_dense_avx2 => scatter_dense_any(
        blocks: &DenseBlocks<'_>, start: usize, a: usize, b: usize, x: &[f64], part: &mut [f64], k: usize
    )
}

#[inline(always)]
fn scatter_dense_any(
    blocks: &DenseBlocks<'_>,
    start: usize,
    a: usize,
    b: usize,
    x: &[f64],
    part: &mut [f64],
    k: usize,
) -> bool {
    for (blk, rows, ahead) in meeting_ahead(blocks, a, b) {
        let (c0, w) = (blk.inner as usize, blk.width as usize);
        let Some(ys) = part.get_mut(c0 * k..(c0 + w) * k) else { return false };
        // Prefetched ahead along the task's own rows, as in the gather.
        let (stride, size) = (blk.stride as usize, ahead.value_bytes);
        for r in rows.start as usize..rows.end as usize {
            ahead.prefetch((r - rows.start as usize) * stride * size, w * size);
            let at = (r - blk.outer as usize) * stride;
            let o = start + r;
            let Some(xr) = x.get(o * k..o * k + k) else { return false };
            let ok = match blk.values {
                Values::F64(v) => axpy_row(v.get(at..at + w), xr, ys),
                Values::F32(v) => axpy_row(v.get(at..at + w), xr, ys),
                Values::I64(v) => axpy_row(v.get(at..at + w), xr, ys),
                Values::Pattern => false,
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

/// `ys[j] += row[j] * xr` for one row of a block (`k = xr.len()` values per position).
#[inline(always)]
fn axpy_row<V: Scalar>(row: Option<&[V]>, xr: &[f64], ys: &mut [f64]) -> bool {
    let Some(row) = row else { return false };
    if xr.len() == 1 {
        let xv = xr[0];
        ys.iter_mut().zip(row).for_each(|(y, &v)| *y += v.f64() * xv);
    } else {
        for (&v, yr) in row.iter().zip(ys.chunks_exact_mut(xr.len())) {
            let v = v.f64();
            yr.iter_mut().zip(xr).for_each(|(y, &xv)| *y += v * xv);
        }
    }
    true
}
