//! Text and array formats users bring and take away.
//!
//! * [`mtx`]: Matrix Market export (streaming, parallel formatting, bounded memory).
//! * [`npy`]: NumPy `.npy` vectors and dense blocks (SpMV / SpMM inputs and outputs).
//! * [`read`]: triplet input for import: Matrix Market, edge lists, CSV (streaming, parallel, gzip).
//!
//! Every output file goes through [`check_output_file`]: nothing but the matrix writer ever writes
//! inside a matrix directory, and an existing file is replaced only when the caller says so.

pub mod mtx;
pub mod npy;
pub mod read;

use crate::error::{Error, Result};
use crate::format::MANIFEST_FILE;
use std::path::{Component, Path, PathBuf};

/// The matrix directory that holds `path` (or is `path`), if any: the nearest of `path` and its
/// ancestors holding a `manifest.json`, or a directory a writer is creating (its `.writer.lock`).
/// Symbolic links in the existing part of the path are resolved first, so `link/../m/x` and a link to
/// a matrix directory are recognised. The staging areas writers keep inside an output directory
/// (`.staging-*`, where operations write intermediate matrices) are not matrix directories' contents
/// in this sense: a path through one is not inside the enclosing matrix.
pub fn enclosing_matrix_dir(path: &Path) -> Option<PathBuf> {
    let absolute = resolve_existing_prefix(path)?;
    let mut through_staging = false;
    for dir in absolute.ancestors() {
        if dir.join(MANIFEST_FILE).is_file() || dir.join(crate::storage::WRITER_LOCK_FILE).is_file() {
            return (!through_staging).then(|| dir.to_path_buf());
        }
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        through_staging |= name.starts_with(crate::writer::STAGING_PREFIX);
    }
    None
}

/// `path` made absolute with its longest existing prefix canonicalised (symbolic links and `..`
/// resolved there); the part that does not exist yet is appended as given, without `.` components.
fn resolve_existing_prefix(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let mut existing = absolute.as_path();
    let mut rest: Vec<Component<'_>> = Vec::new();
    loop {
        if let Ok(canonical) = existing.canonicalize() {
            let mut resolved = canonical;
            for part in rest.iter().rev() {
                match part {
                    Component::ParentDir => {
                        resolved.pop();
                    }
                    Component::CurDir => {}
                    other => resolved.push(other.as_os_str()),
                }
            }
            return Some(resolved);
        }
        rest.push(existing.components().next_back()?);
        existing = existing.parent()?;
    }
}

/// Checks that a command may write the file `path`: it is not inside a matrix directory (only the
/// matrix writer writes there; a stray file could overwrite a manifest or segment), not a directory,
/// and, unless `overwrite`, does not exist yet. Callers check before they compute, so that a long
/// computation does not end in a refusal; the writers of [`npy`] and [`mtx`] check the matrix rule
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

/// Refuses a file path inside a matrix directory (see [`enclosing_matrix_dir`]).
///
/// # Errors
///
/// [`Error::InvalidInput`] naming the matrix directory.
pub fn refuse_inside_matrix(path: &Path) -> Result<()> {
    match enclosing_matrix_dir(path) {
        Some(dir) => Err(Error::invalid(format!(
            "{} is inside the matrix directory {}; only sparsedisk's matrix writer writes there (it would \
             damage the matrix): write the file somewhere else",
            path.display(),
            dir.display()
        ))),
        None => Ok(()),
    }
}
