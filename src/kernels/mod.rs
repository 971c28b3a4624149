//! Streaming kernels over matrices on disk: SpMV `y = alpha A x + beta y`, its transpose, and SpMM
//! `Y = alpha A X + beta Y` with a dense row-major `X` of `k` columns.
//!
//! **Two loop shapes cover every case.** A *gather* walks outer indices and reduces each one's entries
//! into one output element (`y[outer] = sum A[outer, inner] x[inner]`): CSR times `x`, and CSC
//! transposed times `x`. A *scatter* walks outer indices and adds each entry into the output element of
//! its inner index (`y[inner] += A[outer, inner] x[outer]`): CSC times `x`, and CSR transposed times `x`.
//!
//! **Streaming.** Segments are visited in order and never copied into heap memory. How their pages
//! reach memory is an [`Operator`]'s [`CachePolicy`]:
//! * `Managed` (the default): the leading segments that fit a resident budget stay mapped across
//!   products; the rest stream through three threads: a reader maps the next segments and reads them
//!   in whole (on 2 MiB folios, which read a cold file faster than 4 KiB faults) up to
//!   [`READ_AHEAD_SEGMENTS`] ahead, the rayon pool computes the current one, and a releaser unmaps each
//!   computed segment and drops its pages from the page cache, so that a matrix larger than memory is
//!   a cyclic scan that does not evict the resident part. At most `READ_AHEAD_SEGMENTS + 1` streamed
//!   segments are mapped at once.
//! * `Kernel`: everything is mapped with sequential advice and the kernel's LRU decides, as with
//!   `numpy.memmap`: the baseline the managed policy is measured against (docs/performance.md).
//!
//! **Parallelism.** Work inside a segment is split by nonzeros, not rows, on the ambient rayon pool, so
//! a power-law row does not stall one thread. Gathers give each thread a disjoint range of `y`. Scatters
//! accumulate into one private copy of `y` per task (as many tasks as threads, each owning a fixed
//! slice of every segment), summed in task order at the end; an [`Operator`] keeps the copies, cleared
//! as they are summed, for its next product. Results are therefore deterministic for a given thread
//! count (and a gather's are independent of it).
//!
//! **Several vectors.** SpMM loops keep each row's `k` accumulators (or, scattering, the row's `k`
//! values of `x`) in vector registers: widths 2, 4, 8 and 16 have loops of their own, and any other
//! width is cut into panels of 16, 8, 4, 2 and 1 columns inside each row, whose entries and rows of
//! `X` are then read from cache for the following panels.
//!
//! **Safety on unverified matrices.** The kernels do not trust the arrays: row pointers are checked
//! when a segment is mapped (O(rows)), and inner indices are checked before `x` or `y` is indexed by
//! them (the gather checks the largest index of each block of about 2048 entries, then reads `x`
//! unchecked inside the block; the scatter checks the same way before writing its private copy of
//! `y`); an index out of range makes the product fail with [`Error::Corrupt`](crate::Error::Corrupt)
//! naming the segment, never a panic or an out-of-bounds read. A mapped segment whose every index a
//! one-column product found in range remembers it, and later products over the same mapping (an
//! [`Operator`]'s resident segments: PageRank's and CG's iterations, repeated products from Python)
//! skip the checks, which cost a power-law graph's product about 8%: published files never change
//! while mapped.
//!
//! **Row sums.** A gather sums each row's products in four partial sums (the row's entries in turn),
//! combined pairwise: a single running sum chains every addition of a long row behind the previous
//! one. The order depends only on the row, so results do not depend on the thread count; they differ
//! from a sequential sum's (scipy's) in the last bits, as any two orders of summation do. Plain
//! products (`alpha` 1, `beta` 0) over a checked segment of which many rows are empty (a graph's)
//! visit only the rows with entries, from a list the segment keeps.
//!
//! **Where things are.** `operator` owns the public API and the product driver; `stream` the
//! read-ahead stream; `tasks` the split of a segment into tasks; `gather`, `scatter` and `dense`
//! the loops; `checked` the index checks they share; `simd` the type and AVX2 dispatch and the
//! panels of columns.

// First: its macros are used by the modules below.
#[macro_use]
mod simd;
mod checked;
mod dense;
mod gather;
mod operator;
mod scatter;
mod stream;
mod tasks;

/// A zero-filled vector of `len` elements for kernel operands (`x`, `y`), backed by transparent huge
/// pages where the system allows (`MADV_HUGEPAGE`; a hint, ignored elsewhere and below 8 MiB).
///
/// A gather reads `x` at random, at every column index of every row. On a graph with millions of
/// vertices nearly every such read misses the TLB when `x` lies on 4 KiB pages; on 2 MiB pages a
/// 64 MiB `x` needs 32 TLB entries. NumPy backs its large arrays the same way (measurements:
/// docs/performance.md).
pub fn dense_vector(len: usize) -> Vec<f64> {
    // Zeroed by the allocator (fresh pages from the kernel are zero, so nothing is written here),
    // then advised before anything touches it, so that the first touch faults in huge pages.
    let mut v = vec![0.0; len];
    crate::storage::advise_huge_pages(&mut v);
    v
}

pub use operator::{spmm, spmm_transpose, spmv, spmv_transpose, CachePolicy, Operator, Product, READ_AHEAD_SEGMENTS};
pub use tasks::set_min_task_entries;
