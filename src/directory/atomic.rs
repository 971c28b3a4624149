//! Durable, atomic writes: files written under a temporary name and renamed into place
//! ([`AtomicFile`], [`write_file_atomic`]), and fsyncs of files and directories ([`sync_dir`], and
//! [`Syncer`] on a background thread). Together they implement the commit protocol's durable publish
//! (see `docs/FORMAT.md`).

use super::names::temp_name;
use crate::error::{Error, Result};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Buffer size of [`AtomicFile`]'s writer.
const WRITE_BUFFER: usize = 1 << 20;

/// Fsyncs files and directories on a background thread, so that a writer producing a large matrix
/// overlaps the disk's flush of one segment with computing the next. [`wait`](Syncer::wait) blocks
/// until everything handed over is durable and reports the first failure; a writer calls it before
/// publishing its manifest.
pub struct Syncer {
    jobs: Option<std::sync::mpsc::SyncSender<SyncJob>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

/// What the fsync thread is asked to sync: a file or directory, by path.
struct SyncJob(PathBuf);

impl Syncer {
    /// Starts the background thread.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the thread cannot be started.
    pub fn new() -> Result<Syncer> {
        // Bounded: if the disk falls behind, the producer waits instead of piling up open files.
        let (tx, rx) = std::sync::mpsc::sync_channel::<SyncJob>(256);
        let thread = std::thread::Builder::new()
            .name("sparsedisk-sync".into())
            .spawn(move || {
                let mut first_error = None;
                for job in rx {
                    let SyncJob(path) = job;
                    let result = File::open(&path)
                        .and_then(|f| f.sync_all())
                        .map_err(|e| Error::io(&path, "syncing to disk", e));
                    if let (Err(e), None) = (result, &first_error) {
                        first_error = Some(e);
                    }
                }
                first_error.map_or(Ok(()), Err)
            })
            .map_err(|e| Error::io("<fsync thread>", "starting the fsync thread", e))?;
        Ok(Syncer { jobs: Some(tx), thread: Some(thread) })
    }

    /// Queues a file or directory, by path, for fsync.
    pub fn sync_path(&self, path: &Path) {
        if let Some(tx) = &self.jobs {
            let _ = tx.send(SyncJob(path.to_path_buf()));
        }
    }

    /// Waits until everything queued is synced.
    ///
    /// # Errors
    ///
    /// The first fsync failure.
    pub fn wait(mut self) -> Result<()> {
        self.finish_thread()
    }

    fn finish_thread(&mut self) -> Result<()> {
        self.jobs = None;
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| Err(Error::invalid("the fsync thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        let _ = self.finish_thread();
    }
}

/// A file written under a temporary name in its final directory and renamed into place by
/// [`commit`](AtomicFile::commit): readers see the old file or the complete new one, never a part.
/// Dropped without `commit`, it removes the temporary file: no partial output.
pub struct AtomicFile {
    tmp: PathBuf,
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing what will become `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the temporary file cannot be created.
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let dir = parent_dir(path);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // Unique per process and per call, so concurrent writers never share a temporary file.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let tmp = dir.join(temp_name(&name, COUNTER.fetch_add(1, Ordering::Relaxed)));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, "creating a temporary file", e))?;
        Ok(AtomicFile { tmp, path: path.to_path_buf(), out: Some(BufWriter::with_capacity(WRITE_BUFFER, file)) })
    }

    /// The buffered writer of the temporary file.
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        self.out.as_mut().expect("an uncommitted AtomicFile has a writer")
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, optionally fsyncs, and renames the file into place (then fsyncs the directory).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] on failure; the temporary file is removed and `path` is untouched.
    pub fn commit(self, durable: bool) -> Result<()> {
        let path = self.path.clone();
        self.rename_into_place(durable)?;
        if durable {
            sync_dir(&parent_dir(&path))?;
        }
        Ok(())
    }

    /// The first half of [`commit`](Self::commit): flush, optionally fsync the file, rename it into
    /// place. Once this returns `Ok` the new contents are visible; the caller syncs the directory.
    /// (A writer publishing a manifest must know the moment its files became live: after it, nothing
    /// may be cleaned up, even if the directory sync then fails.)
    ///
    /// # Errors
    ///
    /// [`Error::Io`]; the temporary file is removed and `path` is untouched.
    pub fn rename_into_place(mut self, durable: bool) -> Result<()> {
        let out = self.out.take().expect("an uncommitted AtomicFile has a writer");
        let file = out.into_inner().map_err(|e| Error::io(&self.tmp, "writing", e.into_error()))?;
        if durable {
            file.sync_all().map_err(|e| Error::io(&self.tmp, "syncing to disk", e))?;
        }
        drop(file);
        fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, "renaming into place", e))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Committed files were renamed away (removing a missing path is a no-op); anything left is
        // partial output.
        crate::interrupt::remove_counted(&self.tmp);
    }
}

/// Writes `contents` to `path` atomically and durably (see [`AtomicFile`]).
///
/// # Errors
///
/// [`Error::Io`] on any failure; the temporary file is removed.
pub fn write_file_atomic(path: &Path, contents: &[u8], durable: bool) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.writer().write_all(contents).map_err(|e| Error::io(path, "writing", e))?;
    file.commit(durable)
}

/// Fsyncs a directory, making the creation, rename or removal of its entries durable.
///
/// # Errors
///
/// [`Error::Io`] when the directory cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| Error::io(dir, "opening a directory to sync it", e))?;
    d.sync_all().map_err(|e| Error::io(dir, "syncing a directory", e))
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
