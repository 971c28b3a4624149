//! The locks of a matrix directory: the writer lock (one writer at a time) and the reader lock of
//! each generation (a writer deletes a generation only when no reader holds it). See `docs/FORMAT.md`,
//! "Writers" and "Concurrent readers".

use super::names::{reader_lock_name, WRITER_LOCK_FILE};
use crate::error::{Error, Result};
use rustix::fs::FlockOperation;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

/// Opens (`create`: creating if needed) a lock file for reading and writing.
fn open_lock_file(path: &Path, create: bool) -> std::io::Result<File> {
    OpenOptions::new().read(true).write(true).create(create).truncate(false).open(path)
}

/// An exclusive `flock` on a matrix directory's [`WRITER_LOCK_FILE`], held from the moment a writer
/// chooses its generation until it has published (or given up) and removed the older generations.
/// Dropping it deletes the lock file, then releases the lock; the kernel releases it when the process
/// dies (leaving the file, which the next writer locks), so a crashed writer never blocks the next
/// one.
#[derive(Debug)]
pub(crate) struct WriterLock {
    path: PathBuf,
    _file: File,
}

impl WriterLock {
    /// Takes the lock on `dir` (which must exist), creating the lock file if needed: `Ok(Ok(Some))`;
    /// `Ok(Ok(None))` where the filesystem offers no `flock` (the writer then goes unlocked, as readers
    /// do there); `Ok(Err(busy))` when another writer holds it, `busy` being the error to report.
    ///
    /// A lock held by another writer is waited for briefly (about 0.1 s: long enough for a producer's
    /// quick check by [`check_free`](Self::check_free) to pass, far shorter than any write), then
    /// reported.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the lock file cannot be created.
    pub(crate) fn acquire(dir: &Path) -> Result<std::result::Result<Option<WriterLock>, Error>> {
        let path = dir.join(WRITER_LOCK_FILE);
        for _ in 0..20 {
            let file = open_lock_file(&path, true).map_err(|e| Error::io(&path, "creating the writer lock", e))?;
            match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {
                    // The writer that held it deletes the file before releasing it: a lock on a file
                    // no longer at the path would exclude nobody, so start over.
                    let same = match (rustix::fs::fstat(&file), rustix::fs::stat(&path)) {
                        (Ok(held), Ok(named)) => held.st_dev == named.st_dev && held.st_ino == named.st_ino,
                        _ => false,
                    };
                    if same {
                        return Ok(Ok(Some(WriterLock { path, _file: file })));
                    }
                }
                Err(rustix::io::Errno::WOULDBLOCK) => std::thread::sleep(std::time::Duration::from_millis(5)),
                Err(_) => return Ok(Ok(None)),
            }
        }
        Ok(Err(busy(dir)))
    }

    /// Fails when another writer holds `dir`'s lock now (a check before long work; the lock itself is
    /// taken later, by [`acquire`](Self::acquire)). Creates nothing; holds a shared lock for an
    /// instant.
    pub(crate) fn check_free(dir: &Path) -> Result<()> {
        let Ok(file) = OpenOptions::new().read(true).open(dir.join(WRITER_LOCK_FILE)) else { return Ok(()) };
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockShared) {
            Err(rustix::io::Errno::WOULDBLOCK) => Err(busy(dir)),
            _ => Ok(()),
        }
    }

    /// Whether a writer holds `dir`'s lock now.
    pub(crate) fn held(dir: &Path) -> bool {
        Self::check_free(dir).is_err()
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        // Deleted while still locked (see `acquire`); the directory may already be gone.
        let _ = fs::remove_file(&self.path);
    }
}

fn busy(dir: &Path) -> Error {
    Error::invalid(format!(
        "{} is being written by another process (it holds {}); wait for it to finish, or write elsewhere",
        dir.display(),
        dir.join(WRITER_LOCK_FILE).display()
    ))
}

/// Takes a shared lock on `generation`'s reader lock in `dir`, creating the file if needed. `None`
/// when the lock cannot be taken (a read-only directory, a filesystem without locks): readers then
/// run unprotected, as before locks existed.
pub(crate) fn lock_generation_shared(dir: &Path, generation: u64) -> Option<File> {
    let file = open_lock_file(&dir.join(reader_lock_name(generation)), true).ok()?;
    rustix::fs::flock(&file, FlockOperation::LockShared).ok()?;
    Some(file)
}

/// Whether `generation`'s files in `dir` may be deleted: no reader holds its lock. On success the
/// returned file holds the exclusive lock (delete the generation, then the lock file, then drop it);
/// `Ok(None)` when there is no lock file (no reader ever locked it).
pub(crate) fn try_lock_generation_exclusive(dir: &Path, generation: u64) -> std::result::Result<Option<File>, ()> {
    let file = match open_lock_file(&dir.join(reader_lock_name(generation)), false) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return Err(()),
    };
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(_) => Err(()),
    }
}

/// Whether a reader holds a shared lock on `generation` in `dir` now. Tests with a non-blocking
/// exclusive lock, released at once; a lock file that cannot be opened means no reader locked it.
pub(crate) fn reader_holds(dir: &Path, generation: u64) -> bool {
    let Ok(file) = File::open(dir.join(reader_lock_name(generation))) else { return false };
    rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_err()
}
