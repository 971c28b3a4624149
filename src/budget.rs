//! The memory budget: how much memory sparsedisk's out-of-core work may use, its defaults and
//! minimums, and how a budget is split between the parts of one job.
//!
//! A *budget* counts heap buffers and the mapped parts of inputs; the page cache of files streamed
//! through is reclaimable and is not counted (see [`OpOptions`](crate::ops::OpOptions)). Every
//! producer takes one (`--memory` on the command line) and checks it against its minimum:
//!
//! | what | default | minimum |
//! | --- | --- | --- |
//! | triplet builder, generators | [`default_memory_budget`] | [`MIN_MEMORY_BUDGET`] |
//! | operations (SpGEMM, add, transpose) | [`default_memory_budget`] | [`MIN_OP_MEMORY`] |
//! | import (parser + builder) | [`default_memory_budget`] | [`min_import_budget`] |
//!
//! **Available memory.** [`memory_limit`] is what this process may use now: the system's available
//! memory, or its memory cgroup's limit (page cache included), whichever is smaller. The default
//! budget is derived from it, and so is the matrix an SpMV operator keeps resident
//! ([`Operator::default_resident_bytes`](crate::kernels::Operator::default_resident_bytes)).
//!
//! **Splits.** The builder keeps [`BUILDER_RESERVE`] for merge and writer buffers and sorts in the
//! rest (`builder_chunk_bytes`); its merge sorts windows of the runs of a chunk's size. An import
//! gives its parser [`parser_reserve`] and the builder the rest, at least half ([`plan_parsing`]).

use crate::error::{Error, Result};
use crate::units::format_bytes;

/// Smallest budget the triplet builder accepts: [`BUILDER_RESERVE`] plus a chunk worth sorting.
pub const MIN_MEMORY_BUDGET: u64 = 64 << 20;

/// Smallest memory budget the operations accept.
pub const MIN_OP_MEMORY: u64 = 64 << 20;

/// Bytes of a builder's budget kept out of its sort chunk, for merge buffers, writer buffers and
/// bookkeeping.
pub const BUILDER_RESERVE: u64 = 32 << 20;

/// The default budget is never below this (where the platform tells how much memory there is).
const DEFAULT_FLOOR: u64 = 256 << 20;

/// The default budget where the platform tells nothing about memory.
const DEFAULT_UNKNOWN: u64 = 1 << 30;

/// Default memory budget of the builder, the operations and import: a quarter of physical memory,
/// but no more than half of what this process may use now ([`memory_limit`]: available memory, or
/// its memory cgroup's limit, page cache included), and at least 256 MiB (1 GiB when the platform
/// does not say).
pub fn default_memory_budget() -> u64 {
    let total = meminfo("MemTotal:");
    let limit = memory_limit().map(|l| l / 2);
    match (total, limit) {
        (Some(t), Some(l)) => (t / 4).min(l).max(DEFAULT_FLOOR),
        (Some(t), None) => (t / 4).max(DEFAULT_FLOOR),
        (None, Some(l)) => l.max(DEFAULT_FLOOR),
        (None, None) => DEFAULT_UNKNOWN,
    }
}

/// Memory this process may use: the smaller of the system's available memory (`MemAvailable`) and
/// the limit of its memory cgroup (v2 `memory.max` or v1 `memory.limit_in_bytes`), when the platform
/// tells. A cgroup limit counts the page cache too, which is what matters for out-of-core work.
pub fn memory_limit() -> Option<u64> {
    match (meminfo("MemAvailable:"), cgroup_memory_limit()) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    }
}

/// A `/proc/meminfo` field (`key` with its colon), in bytes.
fn meminfo(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
}

/// The memory limit of this process's cgroup (v2 `memory.max`, v1 `memory.limit_in_bytes`), if it
/// has a numeric one.
fn cgroup_memory_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let file = if controllers.is_empty() {
            format!("/sys/fs/cgroup{path}/memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
        } else {
            return None;
        };
        std::fs::read_to_string(file).ok()?.trim().parse::<u64>().ok()
    })
}

/// Refuses a `budget` below `minimum` for `what` (e.g. "the builder").
///
/// # Errors
///
/// [`Error::InvalidInput`] naming both sizes.
pub(crate) fn check_minimum(budget: u64, minimum: u64, what: &str) -> Result<()> {
    if budget < minimum {
        return Err(Error::invalid(format!(
            "a memory budget of {} is too small: {what} needs at least {}",
            format_bytes(budget),
            format_bytes(minimum)
        )));
    }
    Ok(())
}

/// Bytes a builder with `budget` may fill with its sort chunk: the budget less [`BUILDER_RESERVE`].
pub(crate) fn builder_chunk_bytes(budget: u64) -> usize {
    budget.saturating_sub(BUILDER_RESERVE) as usize
}

/// Bytes of text blocks one parse thread holds in flight, in blocks of text: one queued in the
/// reader's channel, one being parsed and one waiting to be handed on (3), plus the triplets parsed
/// from the latter two and their bucketed copies for the builder (2 x (1 + 2/3), with a triplet taking
/// about as many bytes as its line of text: 24 bytes for `f64`, 16 for a pattern), rounded up.
const BLOCKS_PER_THREAD: u64 = 7;

/// The budget shrinks an import's text blocks down to this (or the configured size, if smaller)
/// before it refuses to import: 1 MiB blocks still amortise the per-block work of parsing.
const MIN_BLOCK_BYTES: usize = 1 << 20;

/// Memory an import's parser holds in flight with `threads` parse threads and text blocks of
/// `block_bytes`: per thread, 7 blocks (text queued, being parsed and being handed on, and the
/// triplets of the last two with their bucketed copies), plus the block the reader thread is filling.
/// Files with more triplets per byte of text (a symmetric file, whose entries are expanded, or very
/// short lines) hold more.
pub fn parser_reserve(threads: usize, block_bytes: usize) -> u64 {
    (BLOCKS_PER_THREAD * threads.max(1) as u64 + 1) * block_bytes as u64
}

/// The part of an import's budget kept for the builder: half (its chunk decides how many runs are
/// spilled and merged, so it is not starved for parse threads), and at least [`MIN_MEMORY_BUDGET`].
fn builder_share(budget: u64) -> u64 {
    (budget / 2).max(MIN_MEMORY_BUDGET)
}

/// The smallest parse block an import with configured blocks of `block_bytes` may shrink to.
fn block_floor(block_bytes: usize) -> usize {
    MIN_BLOCK_BYTES.min(block_bytes.max(1))
}

/// The smallest memory budget an import with text blocks of `block_bytes` accepts: the builder's
/// minimum ([`MIN_MEMORY_BUDGET`]) plus one parse thread with blocks of 1 MiB (or `block_bytes`, if
/// smaller).
pub fn min_import_budget(block_bytes: usize) -> u64 {
    MIN_MEMORY_BUDGET + parser_reserve(1, block_floor(block_bytes))
}

/// How an import parses within its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsePlan {
    /// Blocks parsed at once.
    pub threads: usize,
    /// Size of the text blocks.
    pub block_bytes: usize,
    /// What the builder gets: the budget less [`parser_reserve`] of the two above.
    pub builder_budget: u64,
}

/// Splits an import's `budget` between the parser and the builder: as many parse threads as
/// `max_threads` (at least one) with blocks of `block_bytes`, but no more than fit beside the
/// builder's share (half the budget, at least [`MIN_MEMORY_BUDGET`]); when not even one thread
/// fits, one thread with smaller blocks, down to 1 MiB.
///
/// # Errors
///
/// [`Error::InvalidInput`] when the budget is below [`min_import_budget`], naming that minimum.
pub fn plan_parsing(budget: u64, max_threads: usize, block_bytes: usize) -> Result<ParsePlan> {
    let block_bytes = block_bytes.max(1);
    let floor = block_floor(block_bytes);
    let minimum = min_import_budget(block_bytes);
    if budget < minimum {
        return Err(Error::invalid(format!(
            "a memory budget of {} is too small: import needs at least {} ({} for sorting, {} for one parse thread)",
            format_bytes(budget),
            format_bytes(minimum),
            format_bytes(MIN_MEMORY_BUDGET),
            format_bytes(parser_reserve(1, floor)),
        )));
    }
    let share = budget - builder_share(budget);
    let fit = (share / block_bytes as u64).saturating_sub(1) / BLOCKS_PER_THREAD;
    let (threads, block_bytes) = if fit >= 1 {
        (max_threads.max(1).min(usize::try_from(fit).unwrap_or(usize::MAX)), block_bytes)
    } else {
        // The share fits one thread with the blocks it allows (at least `floor`, as checked above),
        // or the builder's minimum leaves room for one at `floor`.
        let blocks = usize::try_from(share / (BLOCKS_PER_THREAD + 1)).unwrap_or(usize::MAX);
        (1, blocks.clamp(floor, block_bytes))
    };
    Ok(ParsePlan { threads, block_bytes, builder_budget: budget - parser_reserve(threads, block_bytes) })
}
