//! `sparsedisk._native`: the Rust half of the `sparsedisk` Python package (PyO3, abi3).
//!
//! The pure-Python layer (`python/sparsedisk/__init__.py`) builds the scipy-like API on these
//! classes and functions; their signatures are in `python/sparsedisk/_native.pyi`.
//!
//! * `errors`: the exception classes and the mapping from the library's errors.
//! * `matrix`: `Matrix` (open, inspect, segments, products with a cached `Operator`, the
//!   reductions `diagonal`, `line_sums`, `total`, and the `fingerprint` pickles check).
//! * `build`: `Builder` (triplets), `import_file`, `write_csr`.
//! * `ops`: `spgemm` (to a path, or `spgemm_in_memory`), `transpose`, `convert`, `add`.
//! * `algo`: `pagerank`, `bfs`, `components`, `cg`.
//! * `arrays`: numpy arguments: checks, conversions, and the messages that say what was expected.
//!
//! **The GIL** is released while Rust computes. Short calls (products) run on the calling thread
//! (`compute`); long ones (`compute_interruptible`) run on a worker thread while the calling
//! thread waits with the GIL released and checks for signals every 50 ms, so that Ctrl-C stops them:
//! the library's cancellation is requested, the call cleans up (nothing is published) and the
//! `KeyboardInterrupt` is raised.
//!
//! **Threads**: `threads=None` uses rayon's global pool (one thread per core); `threads=n` runs the
//! call inside a pool of `n` threads, built once per `n` and kept for the life of the process (the
//! global pool itself when it has `n` threads).

mod algo;
mod arrays;
mod build;
mod errors;
mod matrix;
mod ops;

use errors::{invalid, IntoPy};
use pyo3::prelude::*;
use rayon::ThreadPool;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The rayon pool of `threads` threads (cached), or `None` for the global pool.
fn pool(threads: Option<usize>) -> PyResult<Option<Arc<ThreadPool>>> {
    static POOLS: Mutex<Vec<(usize, Arc<ThreadPool>)>> = Mutex::new(Vec::new());
    let Some(n) = threads else { return Ok(None) };
    if n == 0 {
        return Err(invalid("threads must be at least 1 (or None for one per core)"));
    }
    // The global pool already has n threads: running there saves a hand-off to another pool (tens
    // of microseconds, which matter for small matrices).
    if n == rayon::current_num_threads() {
        return Ok(None);
    }
    let mut pools = POOLS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, p)) = pools.iter().find(|(k, _)| *k == n) {
        return Ok(Some(p.clone()));
    }
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("sparsedisk-{i}"))
        .build()
        .map_err(|e| errors::to_py_err(sparsedisk::Error::invalid(format!("cannot start {n} threads: {e}"))))?;
    let built = Arc::new(built);
    pools.push((n, built.clone()));
    Ok(Some(built))
}

/// Runs `f` inside `pool` (or on the calling thread, over the global pool).
fn in_pool<T: Send>(pool: Option<&ThreadPool>, f: impl FnOnce() -> T + Send) -> T {
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
}

/// Runs `f` with the GIL released on `threads` threads: for short calls (a product). A panic in `f`
/// (a bug) becomes a `sparsedisk.Error` saying so, not PyO3's `PanicException`, which escapes
/// `except Exception`.
pub(crate) fn compute<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    f: impl FnOnce() -> sparsedisk::Result<T> + Send,
) -> PyResult<T> {
    let pool = pool(threads)?;
    let pool = pool.as_deref();
    match py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| in_pool(pool, f)))) {
        Ok(result) => result.py(),
        Err(panic) => Err(errors::internal(panic)),
    }
}

/// Runs `f` with the GIL released on `threads` threads, on a worker thread, while this thread
/// checks for signals: a `KeyboardInterrupt` (or any exception a signal handler raises) requests the
/// library's cancellation, waits for `f` to stop and clean up, and is raised. A panic in `f` (a bug)
/// becomes a `sparsedisk.Error` saying so, as in [`compute`].
pub(crate) fn compute_interruptible<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    f: impl FnOnce() -> sparsedisk::Result<T> + Send,
) -> PyResult<T> {
    let pool = pool(threads)?;
    let pool = pool.as_deref();
    std::thread::scope(|s| {
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let worker = s.spawn(move || {
            let result = in_pool(pool, f);
            let _ = done_tx.send(());
            result
        });
        let mut signal: Option<PyErr> = None;
        let mut done_rx = done_rx;
        loop {
            // The receiver moves in and out: it is `Send` but not `Sync`.
            let (rx, received) = py.detach(move || {
                let received = done_rx.recv_timeout(Duration::from_millis(50));
                (done_rx, received)
            });
            done_rx = rx;
            match received {
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if signal.is_none() {
                        if let Err(e) = py.check_signals() {
                            signal = Some(e);
                            sparsedisk::interrupt::request();
                        }
                    }
                }
                // Finished, or the worker panicked (the sender was dropped).
                _ => break,
            }
        }
        let joined = py.detach(|| worker.join());
        if signal.is_some() {
            sparsedisk::interrupt::reset();
        }
        let result = match joined {
            Ok(result) => result,
            Err(panic) => return Err(errors::internal(panic)),
        };
        match signal {
            Some(e) => Err(e),
            None => result.py(),
        }
    })
}

/// Reads a size such as "64M", "1.5G" or "4096" as bytes (units K, M, G, T are powers of 1024), as
/// the command line reads `--memory`.
///
/// Raises InvalidInputError for text that is not a size.
#[pyfunction]
fn parse_size(text: &str) -> PyResult<u64> {
    sparsedisk::units::parse_size(text).py()
}

/// The Rust engine of sparsedisk: matrices on disk, products, builders, operations and algorithms.
/// Use the `sparsedisk` package; this module is its native half.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<matrix::PyMatrix>()?;
    m.add_class::<build::PyBuilder>()?;
    m.add_function(wrap_pyfunction!(parse_size, m)?)?;
    m.add_function(wrap_pyfunction!(build::import_file, m)?)?;
    m.add_function(wrap_pyfunction!(build::write_csr, m)?)?;
    m.add_function(wrap_pyfunction!(ops::spgemm, m)?)?;
    m.add_function(wrap_pyfunction!(ops::spgemm_in_memory, m)?)?;
    m.add_function(wrap_pyfunction!(ops::transpose, m)?)?;
    m.add_function(wrap_pyfunction!(ops::convert, m)?)?;
    m.add_function(wrap_pyfunction!(ops::add, m)?)?;
    m.add_function(wrap_pyfunction!(algo::pagerank, m)?)?;
    m.add_function(wrap_pyfunction!(algo::bfs, m)?)?;
    m.add_function(wrap_pyfunction!(algo::components, m)?)?;
    m.add_function(wrap_pyfunction!(algo::cg, m)?)?;
    Ok(())
}
