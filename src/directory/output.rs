//! Output directories: whether a path may receive a new matrix ([`check_output_dir`]) or a file
//! ([`refuse_inside_matrix`]), a writer's preparation of its directory (lock, generation, what to
//! remove after publishing), and the removal of older generations.

use super::lock::{try_lock_generation_exclusive, WriterLock};
use super::names::{reader_lock_name, EntryKind, STAGING_PREFIX, WRITER_LOCK_FILE};
use super::parent_dir;
use crate::error::{Error, Result};
use crate::format::{Manifest, MANIFEST_FILE};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// The generation of the matrix published in `dir`, if its manifest can be read.
pub(crate) fn published_generation(dir: &Path) -> Option<u64> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = fs::read(&path).ok()?;
    Manifest::from_json_bytes(&bytes, &path).ok().map(|m| m.generation)
}

/// What an output directory holds.
struct DirScan {
    exists: bool,
    /// Highest generation seen in a manifest or a segment name.
    generation: u64,
    /// Segment and staging directories present now: garbage once a new manifest is published.
    stale: Vec<PathBuf>,
}

/// Checks that `dir` can receive a new matrix: absent, empty, holding only sparsedisk's own files
/// (crash debris), or holding a matrix when `overwrite` is set. Used by producers to fail before doing
/// any work (an import of a 4 GB file should not parse it all to then refuse the output).
///
/// # Errors
///
/// [`Error::InvalidInput`] when `dir` holds a matrix and `overwrite` is off, or holds foreign files;
/// [`Error::Io`] when it cannot be listed.
pub fn check_output_dir(dir: &Path, overwrite: bool) -> Result<()> {
    if scan_output_dir(dir, overwrite)?.exists {
        WriterLock::check_free(dir)?;
    }
    Ok(())
}

fn scan_output_dir(dir: &Path, overwrite: bool) -> Result<DirScan> {
    if let Some(outer) = enclosing_matrix_dir(&parent_dir(dir)) {
        return Err(Error::invalid(format!(
            "{} is inside the matrix directory {}, which holds only its own files: choose a directory outside it",
            dir.display(),
            outer.display()
        )));
    }
    match fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(DirScan { exists: false, generation: 0, stale: Vec::new() })
        }
        Err(e) => return Err(Error::io(dir, "reading the output directory", e)),
        Ok(m) if !m.is_dir() => {
            return Err(Error::invalid(format!("{} exists and is not a directory", dir.display())));
        }
        Ok(_) => {}
    }
    let mut generation = 0u64;
    let mut stale = Vec::new();
    let mut has_manifest = false;
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, "listing the output directory", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, "listing the output directory", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        match EntryKind::of(&name) {
            EntryKind::Manifest => {
                has_manifest = true;
                if let Some(g) = published_generation(dir) {
                    generation = generation.max(g);
                }
            }
            // Readers' lock files: the live generation's stays, older ones go with their segments.
            EntryKind::Segment(g) | EntryKind::ReaderLock(g) => {
                generation = generation.max(g);
                stale.push(entry.path());
            }
            // Another running process's staging area (an import sorting before it takes the writer
            // lock) or atomic write in progress is its own; a dead process's is debris.
            kind @ (EntryKind::Staging(_) | EntryKind::Temporary(_)) => {
                if !kind.maker_alive() {
                    stale.push(entry.path());
                }
            }
            // Ours: the root group metadata, the writers' lock.
            EntryKind::RootMetadata | EntryKind::WriterLock => {}
            EntryKind::Foreign => {
                return Err(Error::invalid(format!(
                    "{} exists and holds {name:?}, which is not part of a sparsedisk matrix; choose an empty or new directory",
                    dir.display()
                )));
            }
        }
    }
    if has_manifest && !overwrite {
        return Err(Error::invalid(format!("{} already holds a matrix; pass --force to replace it", dir.display())));
    }
    Ok(DirScan { exists: true, generation, stale })
}

/// What [`prepare_dir`] found and took.
pub(crate) struct PreparedDir {
    /// Whether this call created the directory.
    pub(crate) created: bool,
    /// The generation the writer publishes.
    pub(crate) generation: u64,
    /// Segment directories, staging areas and reader locks present now: garbage once the new
    /// manifest is published (see [`remove_stale`]).
    pub(crate) stale: Vec<PathBuf>,
    /// The directory's writer lock, held until the writer is done.
    pub(crate) lock: Option<WriterLock>,
}

/// Checks what `dir` holds, takes its writer lock and decides the new generation.
///
/// The directory is scanned twice: once to refuse a foreign directory before creating anything in it
/// (not even the lock file), and again under the lock, since another writer may have published in
/// between.
pub(crate) fn prepare_dir(dir: &Path, overwrite: bool) -> Result<PreparedDir> {
    let mut created = false;
    if !scan_output_dir(dir, overwrite)?.exists {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, "creating the matrix directory", e))?;
        }
        // Created here only if this call made it: a writer racing this one may have made it first.
        match fs::create_dir(dir) {
            Ok(()) => created = true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(dir, "creating the matrix directory", e)),
        }
    }
    let cleanup = |e: Error| {
        if created {
            let _ = fs::remove_dir_all(dir);
        }
        e
    };
    // A busy lock is reported without cleaning up: the directory now belongs to its holder.
    let lock = WriterLock::acquire(dir).map_err(cleanup)??;
    let scan = scan_output_dir(dir, overwrite).map_err(cleanup)?;
    let generation = scan
        .generation
        .checked_add(1)
        .ok_or_else(|| Error::invalid(format!("{}: the generation counter is exhausted", dir.display())))?;
    Ok(PreparedDir { created, generation, stale: scan.stale, lock })
}

/// Deletes `stale` (segment directories of older generations, staging directories, reader lock
/// files) in `dir`, generation by generation, skipping any generation a reader still holds.
pub(crate) fn remove_stale(dir: &Path, stale: Vec<PathBuf>, live_generation: u64) {
    let mut by_generation: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    for path in stale {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match EntryKind::of(&name) {
            EntryKind::Segment(g) | EntryKind::ReaderLock(g) if g != live_generation => {
                by_generation.entry(g).or_default().push(path)
            }
            EntryKind::Segment(_) | EntryKind::ReaderLock(_) => {}
            // Staging directories: no reader ever opens them.
            _ => {
                let _ = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
            }
        }
    }
    for (generation, paths) in by_generation {
        let Ok(lock) = try_lock_generation_exclusive(dir, generation) else {
            continue; // a reader holds it
        };
        for path in paths.iter().filter(|p| p.is_dir()) {
            let _ = fs::remove_dir_all(path);
        }
        // The lock file last: a reader that locks it after this re-reads the manifest, sees a newer
        // generation and starts over.
        let _ = fs::remove_file(dir.join(reader_lock_name(generation)));
        drop(lock);
    }
}

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
        if dir.join(MANIFEST_FILE).is_file() || dir.join(WRITER_LOCK_FILE).is_file() {
            return (!through_staging).then(|| dir.to_path_buf());
        }
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        through_staging |= name.starts_with(STAGING_PREFIX);
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
