//! Cooperative cancellation: a process-wide flag that long-running work checks.
//!
//! A program that wants Ctrl-C to leave nothing behind sets the flag from its signal handler
//! ([`request`], or the handler stores `true` into [`flag`] directly: one atomic store, which is
//! async-signal-safe). The library's long loops (the triplet builder's ingest, spills and merges, an
//! import's parse loop, the matrix writer, the operations in [`ops`](crate::ops), the generators)
//! check it about every block or buffer, a few times per second at most per thread, and return
//! [`Error::Interrupted`]. That error takes the ordinary error path: staging areas, partial
//! outputs and output directories made by the call are removed, and a matrix being replaced stays
//! as it was. Nothing is deleted from the signal handler itself.
//!
//! Once published, a matrix is never taken back: a request that arrives after the manifest was
//! renamed into place lets the call return its result.
//!
//! The flag stays set once requested (a cancelled process is expected to exit); [`reset`] clears it
//! for programs that go on, such as a test harness or an interactive session.

use crate::error::{Error, Result};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static REMOVED_FILES: AtomicU64 = AtomicU64::new(0);
static REMOVED_BYTES: AtomicU64 = AtomicU64::new(0);

/// Asks every running library call in this process to stop at its next check and return
/// [`Error::Interrupted`].
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether cancellation was requested.
#[inline]
pub fn is_requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Clears a request, so that later calls run to completion again.
pub fn reset() {
    REQUESTED.store(false, Ordering::SeqCst);
}

/// The flag itself, for a signal handler that can only store into an atomic (e.g.
/// `signal_hook::flag::register(SIGINT, sparsedisk::interrupt::flag())`).
pub fn flag() -> &'static AtomicBool {
    &REQUESTED
}

/// `Err(Error::Interrupted)` when cancellation was requested: the check the long loops make.
///
/// # Errors
///
/// [`Error::Interrupted`].
#[inline]
pub fn check() -> Result<()> {
    if is_requested() {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

/// What the library's cleanup removed in this process so far: staging areas, partial outputs and
/// unpublished output directories of calls that failed or were interrupted (and staging areas of
/// calls that succeeded). A command-line tool reports it after an interruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Removed {
    /// Files removed.
    pub files: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// See [`Removed`].
pub fn removed() -> Removed {
    Removed { files: REMOVED_FILES.load(Ordering::Relaxed), bytes: REMOVED_BYTES.load(Ordering::Relaxed) }
}

/// Removes `path` (a file or a directory tree) as [`std::fs::remove_dir_all`] does, counting what it
/// held into [`removed`]. Errors are ignored: what cannot be removed stays as debris, which
/// [`debris::scan`](crate::debris::scan) reports.
pub(crate) fn remove_counted(path: &Path) {
    let (files, bytes) = tree_size(path);
    let gone = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).is_ok(),
        Ok(_) => std::fs::remove_file(path).is_ok(),
        Err(_) => false,
    };
    if gone {
        REMOVED_FILES.fetch_add(files, Ordering::Relaxed);
        REMOVED_BYTES.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Files and bytes under `path` (a file counts as one), not following symbolic links. Entries that
/// vanish meanwhile are skipped.
pub(crate) fn tree_size(path: &Path) -> (u64, u64) {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return (0, 0) };
    if !meta.is_dir() {
        return (1, meta.len());
    }
    let mut total = (0, 0);
    if let Ok(listing) = std::fs::read_dir(path) {
        for entry in listing.flatten() {
            let (f, b) = tree_size(&entry.path());
            total = (total.0 + f, total.1 + b);
        }
    }
    total
}
