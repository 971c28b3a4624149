//! Text and array formats users bring and take away.
//!
//! * [`mtx`]: Matrix Market export (streaming, parallel formatting, bounded memory).
//! * [`npy`]: NumPy `.npy` vectors and dense blocks (SpMV / SpMM inputs and outputs).
//! * [`read`]: triplet input for import: Matrix Market, edge lists, CSV (streaming, parallel, gzip).

pub mod mtx;
pub mod npy;
pub mod read;
