//! Text and array formats users bring and take away.
//!
//! * [`export`]: Matrix Market export (streaming, parallel formatting, bounded memory).
//! * [`npy`]: NumPy `.npy` vectors and dense blocks (SpMV / SpMM inputs and outputs).
//! * [`read`]: triplet input for import: Matrix Market, edge lists, CSV (streaming, parallel, gzip).
//!
//! Every output file goes through [`check_output_file`]: nothing but the matrix writer ever writes
//! inside a matrix directory, and an existing file is replaced only when the caller says so.

pub mod export;
pub mod npy;
pub mod read;

pub use crate::directory::{enclosing_matrix_dir, refuse_inside_matrix};

use crate::error::{Error, Result};
use std::path::Path;

/// Checks that a command may write the file `path`: it is not inside a matrix directory (only the
/// matrix writer writes there; a stray file could overwrite a manifest or segment), not a directory,
/// and, unless `overwrite`, does not exist yet. Callers check before they compute, so that a long
/// computation does not end in a refusal; the writers of [`npy`] and [`export`] check the matrix rule
/// again themselves.
///
/// # Errors
///
/// [`Error::InvalidInput`] saying which rule the path breaks and what to do.
pub fn check_output_file(path: &Path, overwrite: bool) -> Result<()> {
    refuse_inside_matrix(path)?;
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            Err(Error::invalid(format!("{} is a directory; name the file to write", path.display())))
        }
        Ok(_) if !overwrite => Err(Error::invalid(format!("{} exists; pass --force to replace it", path.display()))),
        _ => Ok(()),
    }
}
