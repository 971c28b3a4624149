//! Storage: the one place that maps files, typed views of mapped bytes, and durable writes.
//!
//! * [`MappedFile`] wraps the crate's only `unsafe` block that creates a memory map. Published files are
//!   never modified (see the [format](crate::format) docs), which is what makes the map sound to read.
//!   What sparsedisk cannot prevent is another program truncating or rewriting a mapped file; that is
//!   outside its guarantees (reading a truncated map raises SIGBUS, and bytes changing under a live
//!   slice are undefined behaviour). For that reason mapping is crate-private: only files a manifest
//!   lists are ever mapped.
//! * [`cast_slice`] turns mapped bytes into `&[u64]`, `&[f64]`, ... through `bytemuck`, which checks
//!   size and alignment; no hand-written pointer casts.
//! * [`write_file_atomic`] and [`sync_dir`] implement the commit protocol's durable publish.

#[cfg(not(target_endian = "little"))]
compile_error!("sparsedisk maps little-endian files directly and supports little-endian targets only");

use crate::error::{Error, Result};
use memmap2::{Advice, Mmap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A read-only memory map of a whole file (or nothing, for an empty file).
#[derive(Debug)]
pub struct MappedFile {
    map: Option<Mmap>,
}

impl MappedFile {
    /// Maps `path`, checking that it holds exactly `expected_len` bytes.
    ///
    /// A zero-length file (or, when `expected_len` is 0, a missing one, as the format allows for empty
    /// chunks) maps to an empty slice without a system call.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be opened or mapped; [`Error::Corrupt`] when its length
    /// differs from `expected_len`.
    pub(crate) fn open(path: &Path, expected_len: u64) -> Result<MappedFile> {
        if expected_len == 0 {
            return match fs::metadata(path) {
                Ok(m) if m.len() != 0 => Err(Error::corrupt(path, format!("file has {} bytes, expected 0", m.len()))),
                _ => Ok(MappedFile { map: None }),
            };
        }
        let file = File::open(path).map_err(|e| Error::io(path, "opening a segment file", e))?;
        let len = file.metadata().map_err(|e| Error::io(path, "reading file metadata", e))?.len();
        if len != expected_len {
            return Err(Error::corrupt(path, format!("file has {len} bytes, the manifest lists {expected_len}")));
        }
        // SAFETY: the file is part of a published matrix, and published files are never written,
        // truncated or reopened for writing by sparsedisk (format module: "Commit protocol and
        // immutability"), so the mapped bytes do not change while the map lives. The length was checked
        // just above, so every byte of the map is backed by the file.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, "memory-mapping a segment file", e))?;
        // Segments are read in long sequential scans: with 2 MiB folios the kernel reads and maps them
        // with 512 times fewer page faults and page-cache insertions than with 4 KiB pages, which is
        // what limits a cold scan on a fast disk. A hint: kernels or filesystems without large folios
        // ignore it.
        #[cfg(target_os = "linux")]
        if expected_len >= 2 << 20 {
            let _ = map.advise(Advice::HugePage);
        }
        Ok(MappedFile { map: Some(map) })
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Tells the kernel how the map will be read (sequential scan, random access, will need, ...).
    /// Advice is a hint: failures are ignored.
    pub fn advise(&self, advice: Advice) {
        if let Some(map) = &self.map {
            let _ = map.advise(advice);
        }
    }

    /// Reads the whole file into the page cache and maps it into this process, blocking until done, so
    /// that later reads of the map neither wait for the disk nor take page faults: it touches one byte
    /// per 4 KiB page, front to back. With the huge-page advice given at `MappedFile::open`, the
    /// kernel reads and maps 2 MiB at each fault; measured under a memory cap from a cold cache, this
    /// reads a segment about 3x faster than `MADV_POPULATE_READ` on 4 KiB pages (docs/performance.md).
    pub fn populate(&self) {
        let bytes = self.bytes();
        let mut touched = 0u8;
        for i in (0..bytes.len()).step_by(4096) {
            touched ^= bytes[i];
        }
        std::hint::black_box(touched);
    }
}

/// Views `bytes` as a slice of `T`, checking length and alignment.
///
/// # Errors
///
/// [`Error::Corrupt`] naming `path` when the length is not a multiple of `T`'s size or the bytes are
/// not aligned for `T` (a mapped file always is).
pub fn cast_slice<'a, T: bytemuck::Pod>(bytes: &'a [u8], path: &Path) -> Result<&'a [T]> {
    bytemuck::try_cast_slice(bytes).map_err(|e| {
        Error::corrupt(path, format!("cannot view {} bytes as {}: {e:?}", bytes.len(), std::any::type_name::<T>()))
    })
}

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
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp-{}-{unique}", std::process::id()));
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
        // Committed files were renamed away; anything left is partial output.
        if self.tmp.exists() {
            crate::interrupt::remove_counted(&self.tmp);
        }
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

/// Drops the page cache of a file, or of every file below a directory, so that the next read comes
/// from the disk: the cold start of an out-of-core measurement. Dirty pages are written first.
///
/// # Errors
///
/// [`Error::Io`] when a file cannot be opened or advised.
pub fn evict_page_cache(path: &Path) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| Error::io(path, "reading metadata", e))?;
    if meta.is_dir() {
        let entries = fs::read_dir(path).map_err(|e| Error::io(path, "listing a directory", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(path, "listing a directory", e))?;
            evict_page_cache(&entry.path())?;
        }
        return Ok(());
    }
    let file = File::open(path).map_err(|e| Error::io(path, "opening to evict its cache", e))?;
    file.sync_data().map_err(|e| Error::io(path, "syncing before eviction", e))?;
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)
        .map_err(|e| Error::io(path, "dropping the page cache", io::Error::from(e)))
}

/// Drops the cached pages of a file that holds no unwritten data (a published segment file) from the
/// page cache, without the sync [`evict_page_cache`] does first. A hint: failures are ignored, and
/// pages still mapped by some process stay.
pub(crate) fn drop_clean_pages(path: &Path) {
    if let Ok(file) = File::open(path) {
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
    }
}

/// Asks the kernel to back the allocation of `buf` (its whole capacity) with transparent huge pages
/// where it can. Large sort buffers are touched once, front to back: with 4 KiB pages that is one page
/// fault per 4 KiB (hundreds of thousands per GiB, expensive in a virtual machine); with 2 MiB pages,
/// 512 times fewer. A hint: failures and small buffers are ignored.
pub fn advise_huge_pages<T>(buf: &mut Vec<T>) {
    const PAGE: usize = 4096;
    let bytes = buf.capacity() * std::mem::size_of::<T>();
    if bytes < 8 << 20 {
        return;
    }
    let start = buf.as_mut_ptr() as usize;
    let aligned = start.next_multiple_of(PAGE);
    let len = (start + bytes - aligned) / PAGE * PAGE;
    // SAFETY: [aligned, aligned + len) lies inside `buf`'s allocation (capacity * size_of::<T>()
    // bytes from its pointer), which this function borrows mutably for the call. MADV_HUGEPAGE only
    // changes how the kernel backs those pages; it never changes their contents or their mapping.
    let _ = unsafe { rustix::mm::madvise(aligned as *mut std::ffi::c_void, len, rustix::mm::Advice::LinuxHugepage) };
}

/// Bytes free for unprivileged writes on the filesystem holding `path` (or its nearest existing
/// ancestor), when the platform tells. `None` also for filesystems that report no capacity at all
/// (ramfs, some FUSE filesystems: zero blocks in total), whose "0 bytes free" means "unknown", not
/// "full".
pub fn free_space(path: &Path) -> Option<u64> {
    let mut probe = path.to_path_buf();
    loop {
        if probe.exists() {
            break;
        }
        if !probe.pop() || probe.as_os_str().is_empty() {
            probe = PathBuf::from(".");
            break;
        }
    }
    let st = rustix::fs::statvfs(&probe).ok()?;
    if st.f_blocks == 0 {
        return None;
    }
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Name of the lock file readers of `generation` hold a shared lock on (see the format docs,
/// "Concurrent readers").
pub(crate) fn reader_lock_name(generation: u64) -> String {
    format!(".readers-{generation}.lock")
}

/// The generation a reader lock file name belongs to, if `name` is one.
pub(crate) fn parse_reader_lock_name(name: &str) -> Option<u64> {
    name.strip_prefix(".readers-")?.strip_suffix(".lock")?.parse().ok()
}

/// Name of the lock file a writer holds an exclusive lock on while it writes into a matrix directory
/// (see the format docs, "Writers").
pub(crate) const WRITER_LOCK_FILE: &str = ".writer.lock";

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
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| Error::io(&path, "creating the writer lock", e))?;
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
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
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
            Err(rustix::io::Errno::WOULDBLOCK) => Err(busy(dir)),
            _ => Ok(()),
        }
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

/// The process id in the name of a staging area or temporary file made by [`AtomicFile`] or a
/// builder (`.{name}.tmp-{pid}-{n}`, `.staging-{pid}-{n}`), if `name` is one.
pub(crate) fn debris_pid(name: &str) -> Option<u32> {
    let rest = match name.find(".tmp-") {
        Some(at) if name.starts_with('.') => &name[at + ".tmp-".len()..],
        _ => name.strip_prefix(".staging-")?,
    };
    rest.split('-').next()?.parse().ok()
}

/// Whether the process `pid` is running on this machine (in this process's pid namespace). A pid of
/// a process that exited may have been reused: then this says "running", which only delays a
/// cleanup.
pub(crate) fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let Some(pid) = rustix::process::Pid::from_raw(pid as i32) else { return false };
    // Signal 0 checks existence and permission only; EPERM means it exists (another user's).
    !matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH))
}

/// Takes a shared lock on `generation`'s reader lock in `dir`, creating the file if needed. `None`
/// when the lock cannot be taken (a read-only directory, a filesystem without locks): readers then
/// run unprotected, as before locks existed.
pub(crate) fn lock_generation_shared(dir: &Path, generation: u64) -> Option<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(reader_lock_name(generation)))
        .ok()?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockShared).ok()?;
    Some(file)
}

/// Whether `generation`'s files in `dir` may be deleted: no reader holds its lock. On success the
/// returned file holds the exclusive lock (delete the generation, then the lock file, then drop it);
/// `Ok(None)` when there is no lock file (no reader ever locked it).
pub(crate) fn try_lock_generation_exclusive(dir: &Path, generation: u64) -> std::result::Result<Option<File>, ()> {
    let file = match OpenOptions::new().read(true).write(true).open(dir.join(reader_lock_name(generation))) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return Err(()),
    };
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(_) => Err(()),
    }
}
