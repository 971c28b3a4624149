//! How a segment's work is cut into tasks for the rayon pool: by nonzeros, not rows.

use std::sync::atomic::{AtomicU64, Ordering};

/// Entries below which splitting a segment's work costs more than it saves (waking a thread and
/// joining it takes microseconds: a small matrix's product would be dominated by it; see
/// docs/performance.md, "Kernel design notes").
static MIN_TASK_ENTRIES: AtomicU64 = AtomicU64::new(32 << 10);

/// Sets the number of entries below which a segment is not split across threads (default 32 Ki).
/// For tests, which need the parallel paths on matrices of a few entries; results do not depend on
/// it except in the last bits of scatters, which depend on the number of tasks.
#[doc(hidden)]
pub fn set_min_task_entries(entries: u64) {
    MIN_TASK_ENTRIES.store(entries.max(1), Ordering::Relaxed);
}

/// How many tasks a segment of `nnz` entries is cut into: `wanted`, fewer for small segments.
pub(super) fn task_count(nnz: u64, wanted: usize) -> usize {
    wanted.min((nnz / MIN_TASK_ENTRIES.load(Ordering::Relaxed)) as usize + 1)
}

/// Band-local outer ranges `[a, b)` of about equal nonzeros, about four per thread.
pub(super) fn pieces(indptr: &[u64], parts: usize) -> Vec<(usize, usize)> {
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
