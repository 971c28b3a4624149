//! # sparsedisk
//!
//! Sparse matrices larger than memory. A matrix lives on disk as a directory of CSR (row bands) or CSC
//! (column bands) **segments**, each a standard Binsparse sparse matrix in a Zarr v3 group whose
//! `indptr`, `indices` and `values` arrays are raw little-endian files, memory-mapped on demand. A
//! manifest, replaced atomically, is the single commit point: a matrix is never seen half-written.
//!
//! * [`format`](mod@format): the on-disk format in code (its specification: `docs/FORMAT.md` in the
//!   repository).
//! * [`Matrix`]: open (cheap), [`verify`](Matrix::verify) (full), inspect, map segments, convert to
//!   sprs.
//! * [`scan`](mod@scan): the one sequential scan over a matrix's segments.
//! * [`MatrixWriter`]: the one streaming writer every producer of matrices uses.
//! * [`generators`]: deterministic generators (Laplacians, banded, block matrices, R-MAT, uniform) that
//!   stream into the writer or the builder.
//! * [`io`]: Matrix Market export.
//! * [`kernels`]: streaming SpMV, transposed SpMV and SpMM, in core and out of core.
//! * [`ops`]: SpGEMM, transpose / layout conversion and add, writing new matrices out of core.
//! * [`reduce`]: one-pass reductions: the `k`-th diagonal, row and column sums, the total (exact
//!   for integers).
//! * [`algo`]: PageRank, BFS, connected components and conjugate gradients over matrices on disk.
//! * [`budget`]: the memory budget's defaults, minimums, available memory and split rules.
//! * [`interrupt`]: cooperative cancellation (Ctrl-C): long calls stop, clean up and return
//!   [`Error::Interrupted`].
//! * [`directory`]: a matrix directory's files: output checks, locks, staging areas, atomic writes.
//! * [`debris`]: what interrupted or crashed writers left in a matrix directory, and its removal.
//!
//! ```
//! use sparsedisk::{generators::{generate, Generator}, io::export::write_matrix_market, Layout, Matrix, WriterOptions};
//! # let tmp = tempfile::tempdir().unwrap();
//! # let dir = tmp.path().join("lap");
//! // A 2-D Laplacian on a 3 x 3 grid: 9 rows, 33 nonzeros.
//! let m = generate::<f64>(&Generator::Laplace2d { n: 3 }, &dir, Layout::Csr, WriterOptions::default())?;
//! assert_eq!((m.shape(), m.nnz()), ((9, 9), 33));
//! let reopened = Matrix::open(&dir)?;
//! reopened.verify()?;
//! let csr = reopened.to_sprs()?; // an in-memory sprs::CsMat<f64>
//! assert_eq!(csr.get(4, 4), Some(&4.0));
//! let mut text = Vec::new();
//! write_matrix_market(&reopened, &mut text, "out.mtx".as_ref(), &mut |_| {})?;
//! assert!(text.starts_with(b"%%MatrixMarket matrix coordinate real general"));
//! # Ok::<(), sparsedisk::Error>(())
//! ```
//!
//! Parallel work runs on the ambient rayon pool; the library never builds a global pool.

#![warn(missing_docs)]

pub mod algo;
pub mod budget;
pub mod builder;
pub mod debris;
pub mod directory;
pub mod element;
pub mod error;
pub mod format;
pub mod generators;
pub mod import;
pub mod interrupt;
pub mod io;
pub mod kernels;
pub mod matrix;
pub mod ops;
pub mod reduce;
pub mod scan;
pub mod segment;
pub mod storage;
pub mod units;
pub mod writer;

// What a user of the crate reaches for first; the rest is under its module.
pub use builder::{BuildOptions, TripletBuilder};
pub use element::{Element, Indices, StoredIndex, Triplet, Values};
pub use error::{Error, Result};
pub use format::{IndexType, Layout, ValueType};
pub use import::{import, ImportOptions};
pub use kernels::{CachePolicy, Operator};
pub use matrix::{Matrix, MatrixInfo, VerifyReport};
pub use ops::{add, convert, spgemm, transpose, OpOptions, SpgemmOptions};
pub use segment::MappedSegment;
pub use writer::{
    DenseOptions, MatrixWriter, WriterOptions, DEFAULT_DENSE_BLOCK, DEFAULT_DENSE_THRESHOLD, DEFAULT_SEGMENT_BYTES,
};
