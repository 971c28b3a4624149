//! The segment chunk files of a [`MatrixWriter`](super::MatrixWriter): checksummed by the producer,
//! written by one I/O thread per writer with direct I/O from a small pool of page-aligned buffers.
//!
//! **Why direct I/O.** A matrix's arrays are written once and not read back by the writer. Written
//! with buffered `write()`, every byte is first copied into page-cache pages the kernel allocates for
//! the file; on the virtual machines this project is measured on, freshly allocated memory is
//! expensive to touch for the first time (the hypervisor backs it on demand), and that copy was the
//! largest single cost of an import: 1.7 CPU-seconds of about 7 for the 780 MiB output of R-MAT
//! scale 22, more than sorting it (docs/performance.md, import speed). With `O_DIRECT` the disk reads the
//! producer's buffers by DMA: no page-cache pages, no copy, a few percent of one core per GB/s. A
//! writable memory map of a preallocated file (`fallocate`, then `MADV_HUGEPAGE`) was measured too: it
//! still fills fresh page-cache pages, and cost as much as `write()`.
//!
//! **Protocol.** The producer copies bytes into a [`ChunkFile`]'s current buffer and hashes each full
//! buffer (xxh3 runs at several GB/s: cheaper than a hand-off), then queues it to the I/O thread and
//! takes an empty one from the pool, waiting when all are in flight (so memory stays at
//! [`POOL_BUFFERS`] x [`BUFFER_BYTES`] whatever the matrix). Full buffers are multiples of the page
//! size at page-aligned offsets, as direct I/O requires; the last, partial buffer of a file is written
//! through the page cache after clearing `O_DIRECT` on its descriptor. Files whose filesystem refuses
//! direct I/O (at `open`, or `EINVAL` on a write) are written through the page cache instead.
//!
//! **Durability and errors** are those of the buffered path: a durable writer's I/O thread fsyncs each
//! file after its last write; [`ChunkIo::finish`] returns once every queued write and fsync is done,
//! with the first failure (a full disk is `ENOSPC` from `write`, an error, never a signal). A failure
//! is also reported to the producer at its next buffer hand-off, so a large import stops early.

use crate::error::{Error, Result};
use memmap2::MmapMut;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex};
use xxhash_rust::xxh3::Xxh3;

/// Bytes per buffer: large enough that a direct write streams at the disk's speed (2-3 GB/s measured
/// with 1 MiB requests), a multiple of every page and logical block size in use.
pub(crate) const BUFFER_BYTES: usize = 2 << 20;

/// Buffers per writer: one being filled for each of a segment's three arrays, and five in flight.
pub(crate) const POOL_BUFFERS: usize = 8;

/// A page-aligned buffer (an anonymous map: aligned by construction, no unsafe allocation code).
struct Buffer(MmapMut);

impl Buffer {
    fn new() -> io::Result<Buffer> {
        MmapMut::map_anon(BUFFER_BYTES).map(Buffer)
    }
}

/// Buffers not in use, and how many exist.
struct Pool {
    state: Mutex<(Vec<Buffer>, usize)>,
    returned: Condvar,
    /// Set by the I/O thread at its first failure; the details come out of [`ChunkIo::finish`].
    failed: AtomicBool,
    /// What that first failure was (the file, the action, the OS error), so that the producer, which
    /// learns of it at its next hand-off and usually returns before `finish` is reached, reports the
    /// cause ("No space left on device" on a full disk) and not only that something failed.
    failure: Mutex<Option<Failure>>,
}

/// The first failure of the I/O thread, as the producer reports it.
struct Failure {
    path: PathBuf,
    action: &'static str,
    os_error: Option<i32>,
    message: String,
}

impl Failure {
    fn to_error(&self) -> Error {
        let source = match self.os_error {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::other(self.message.clone()),
        };
        Error::io(&self.path, self.action, source)
    }
}

impl Pool {
    /// An empty buffer: a recycled one, a new one while fewer than [`POOL_BUFFERS`] exist, else the
    /// next one the I/O thread returns.
    fn take(&self) -> io::Result<Buffer> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(b) = state.0.pop() {
                return Ok(b);
            }
            if state.1 < POOL_BUFFERS {
                state.1 += 1;
                drop(state);
                return Buffer::new();
            }
            state = self.returned.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn put(&self, b: Buffer) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).0.push(b);
        self.returned.notify_one();
    }
}

enum Job {
    /// The file's first full buffer follows: switch it to direct I/O.
    Open {
        id: u64,
        path: PathBuf,
        file: File,
    },
    Write {
        id: u64,
        buf: Buffer,
        len: usize,
    },
    /// The file is complete: fsync it (durable writers) and close it.
    Close {
        id: u64,
        discard: bool,
    },
    /// A small file the producer wrote itself: fsync it and close it.
    Sync {
        path: PathBuf,
        file: File,
    },
    /// Every earlier job is done: reply whether all succeeded.
    Barrier(std::sync::mpsc::SyncSender<bool>),
}

/// What a writer's chunk files share: the buffers, and the I/O thread, started by the first file that
/// needs it (a matrix of small files, as tests make by the thousand, never starts one).
struct Shared {
    pool: Pool,
    durable: bool,
    thread: Mutex<Option<Running>>,
}

/// A running I/O thread: its queue and its handle.
type Running = (Sender<Job>, std::thread::JoinHandle<Result<()>>);

impl Shared {
    /// The I/O thread's queue, starting the thread if needed.
    fn jobs(self: &Arc<Self>) -> Result<Sender<Job>> {
        let mut thread = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((tx, _)) = thread.as_ref() {
            return Ok(tx.clone());
        }
        let (tx, rx) = channel::<Job>();
        let shared = Arc::clone(self);
        let handle = std::thread::Builder::new()
            .name("sparsedisk-write".into())
            .spawn(move || io_thread(rx, &shared.pool, shared.durable))
            .map_err(|e| Error::io("<write thread>", "starting the write thread", e))?;
        *thread = Some((tx.clone(), handle));
        Ok(tx)
    }
}

/// The I/O thread of one [`MatrixWriter`](super::MatrixWriter), and the buffers it shares with the
/// producer.
pub(crate) struct ChunkIo {
    shared: Arc<Shared>,
    next_id: u64,
}

impl ChunkIo {
    /// Prepares to write chunk files; `durable` writers fsync each file after its last write.
    pub(crate) fn new(durable: bool) -> ChunkIo {
        let pool = Pool {
            state: Mutex::new((Vec::new(), 0)),
            returned: Condvar::new(),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
        };
        ChunkIo { shared: Arc::new(Shared { pool, durable, thread: Mutex::new(None) }), next_id: 0 }
    }

    /// Creates (or truncates) `path`. It is switched to direct I/O when its first buffer is full, so
    /// that small files (most of a small matrix's) go through the page cache in one `write`.
    pub(crate) fn create(&mut self, path: &Path) -> Result<ChunkFile> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| Error::io(path, "creating a file", e))?;
        let id = self.next_id;
        self.next_id += 1;
        Ok(ChunkFile {
            id,
            path: path.to_path_buf(),
            file: Some(file),
            buf: None,
            filled: 0,
            bytes: 0,
            hasher: Box::new(Xxh3::new()),
            jobs: None,
            shared: Arc::clone(&self.shared),
        })
    }

    /// Waits until every job queued so far (writes, closes, fsyncs) is done, so that finished chunk
    /// files can be read back.
    ///
    /// # Errors
    ///
    /// When a write failed.
    pub(crate) fn barrier(&self) -> Result<()> {
        let tx = self.shared.thread.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|(tx, _)| tx.clone());
        let Some(tx) = tx else { return Ok(()) };
        let (reply_tx, reply_rx) = std::sync::mpsc::sync_channel(1);
        let ok = tx.send(Job::Barrier(reply_tx)).is_ok() && reply_rx.recv().unwrap_or(false);
        if ok {
            Ok(())
        } else {
            Err(Error::io("<write thread>", "writing", io::Error::other("an earlier write of this matrix failed")))
        }
    }

    /// Waits until every queued write (and, for durable writers, fsync) is done. Every [`ChunkFile`]
    /// must be finished or dropped first.
    ///
    /// # Errors
    ///
    /// The first write or fsync failure.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> Result<()> {
        let thread = self.shared.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        match thread {
            Some((tx, handle)) => {
                drop(tx);
                handle.join().unwrap_or_else(|_| Err(Error::invalid("the write thread panicked")))
            }
            None => Ok(()),
        }
    }
}

impl Drop for ChunkIo {
    fn drop(&mut self) {
        // Unfinished writers (an error elsewhere) still wait, so that no write lands after their owner
        // removed the files.
        let _ = self.stop();
    }
}

/// Sets (`on`) or clears `O_DIRECT` on `file`. `Ok(false)` when the filesystem refuses direct I/O
/// (`EINVAL`) or the platform has none.
pub(crate) fn set_direct(file: &File, on: bool) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
        let flags = fcntl_getfl(file)?;
        let wanted = if on { flags | OFlags::DIRECT } else { flags - OFlags::DIRECT };
        match fcntl_setfl(file, wanted) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::INVAL) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, on);
        Ok(false)
    }
}

pub(crate) fn is_einval(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error())
}

struct OpenChunk {
    path: PathBuf,
    file: File,
    direct: bool,
}

impl OpenChunk {
    fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        if self.direct && data.len() % 4096 != 0 {
            // The tail of the file: direct I/O wants whole blocks.
            set_direct(&self.file, false)?;
            self.direct = false;
        }
        // `write_all` by hand: a direct write may be short (a disk filling up), and what remains must
        // be written from where it stopped, not from the start of the buffer.
        while !data.is_empty() {
            match self.file.write(data) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.direct && is_einval(&e) => {
                    // The filesystem refused this request (a block size above 4 KiB, or the rest of
                    // a short write no longer aligned): the failed call wrote nothing; go on through
                    // the page cache.
                    set_direct(&self.file, false)?;
                    self.direct = false;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn io_thread(jobs: std::sync::mpsc::Receiver<Job>, pool: &Pool, durable: bool) -> Result<()> {
    let mut files: HashMap<u64, OpenChunk> = HashMap::new();
    let mut first_error: Option<Error> = None;
    let fail = |e: Error, first_error: &mut Option<Error>| {
        if first_error.is_none() {
            if let Error::Io { path, action, source } = &e {
                let failure = Failure {
                    path: path.clone(),
                    action,
                    os_error: source.raw_os_error(),
                    message: source.to_string(),
                };
                *pool.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(failure);
            }
            *first_error = Some(e);
            pool.failed.store(true, Ordering::Release);
        }
    };
    for job in jobs {
        match job {
            Job::Open { id, path, file } => match set_direct(&file, true) {
                Ok(direct) => {
                    files.insert(id, OpenChunk { path, file, direct });
                }
                Err(e) => fail(Error::io(&path, "switching to direct I/O", e), &mut first_error),
            },
            Job::Write { id, buf, len } => {
                if first_error.is_none() {
                    if let Some(f) = files.get_mut(&id) {
                        if let Err(e) = f.write(&buf.0[..len]) {
                            let err = Error::io(&f.path, "writing", e);
                            fail(err, &mut first_error);
                        }
                    }
                }
                pool.put(buf);
            }
            Job::Close { id, discard } => {
                if let Some(f) = files.remove(&id) {
                    if durable && !discard && first_error.is_none() {
                        if let Err(e) = f.file.sync_all() {
                            fail(Error::io(&f.path, "syncing to disk", e), &mut first_error);
                        }
                    }
                }
            }
            Job::Barrier(reply) => {
                let _ = reply.send(first_error.is_none());
            }
            Job::Sync { path, file } => {
                if first_error.is_none() {
                    if let Err(e) = file.sync_all() {
                        fail(Error::io(&path, "syncing to disk", e), &mut first_error);
                    }
                }
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// One chunk file being written; see the [module docs](self).
pub(crate) struct ChunkFile {
    id: u64,
    path: PathBuf,
    buf: Option<Buffer>,
    filled: usize,
    bytes: u64,
    hasher: Box<Xxh3>,
    /// The file until its first full buffer; then the I/O thread owns it.
    file: Option<File>,
    /// The I/O thread's queue, from the first full buffer on.
    jobs: Option<Sender<Job>>,
    shared: Arc<Shared>,
}

impl ChunkFile {
    /// Appends `data`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when an earlier write of this writer failed (a full disk, say).
    #[inline]
    pub(crate) fn write(&mut self, mut data: &[u8]) -> Result<()> {
        self.bytes += data.len() as u64;
        loop {
            let buf = match &mut self.buf {
                Some(b) => b,
                None => self
                    .buf
                    .insert(self.shared.pool.take().map_err(|e| Error::io(&self.path, "allocating a buffer", e))?),
            };
            let room = BUFFER_BYTES - self.filled;
            if data.len() < room {
                buf.0[self.filled..self.filled + data.len()].copy_from_slice(data);
                self.filled += data.len();
                return Ok(());
            }
            let (now, rest) = data.split_at(room);
            buf.0[self.filled..].copy_from_slice(now);
            self.filled = BUFFER_BYTES;
            data = rest;
            self.hand_off()?;
        }
    }

    /// Appends one little-endian u64.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    #[inline]
    pub(crate) fn write_u64(&mut self, value: u64) -> Result<()> {
        self.write(&value.to_le_bytes())
    }

    /// Appends one little-endian u32.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    #[inline]
    pub(crate) fn write_u32(&mut self, value: u32) -> Result<()> {
        self.write(&value.to_le_bytes())
    }

    /// Hashes the current (full) buffer and queues it for writing.
    #[cold]
    fn hand_off(&mut self) -> Result<()> {
        // Every 2 MiB of output: frequent enough to honour a cancellation within a fraction of a
        // second, rare enough to cost nothing.
        crate::interrupt::check()?;
        if self.shared.pool.failed.load(Ordering::Acquire) {
            // The I/O thread's first failure, with its cause and the file it was writing (which may
            // be another of this writer's files).
            let failure = self.shared.pool.failure.lock().unwrap_or_else(|p| p.into_inner());
            return Err(failure.as_ref().map_or_else(
                || Error::io(&self.path, "writing", io::Error::other("an earlier write of this matrix failed")),
                Failure::to_error,
            ));
        }
        let jobs = match &self.jobs {
            Some(jobs) => jobs,
            None => {
                let jobs = self.shared.jobs()?;
                let file = self.file.take().expect("a file not yet handed over is held");
                let _ = jobs.send(Job::Open { id: self.id, path: self.path.clone(), file });
                self.jobs.insert(jobs)
            }
        };
        if let Some(buf) = self.buf.take() {
            let len = std::mem::take(&mut self.filled);
            self.hasher.update(&buf.0[..len]);
            if jobs.send(Job::Write { id: self.id, buf, len }).is_err() {
                return Err(Error::invalid(format!("the write thread of {} stopped", self.path.display())));
            }
        }
        Ok(())
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> u64 {
        self.bytes
    }

    /// The file being written.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Queues the last bytes and the file's close (and fsync, for durable writers); returns
    /// `(bytes, xxh3)`. A file that never filled a buffer is written here, in one `write`. An empty
    /// file is left empty (the caller removes it). Failures of queued writes come out of
    /// [`ChunkIo::finish`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when writing a small file or an earlier write of this writer failed.
    pub(crate) fn finish(self) -> Result<(u64, u64)> {
        self.finish_with(true)
    }

    /// As [`finish`](Self::finish), without the fsync when `sync` is false: for a file that may be
    /// replaced before publication (the caller fsyncs it otherwise).
    pub(crate) fn finish_with(mut self, sync: bool) -> Result<(u64, u64)> {
        if self.jobs.is_some() {
            if self.filled > 0 {
                self.hand_off()?;
            }
            if let Some(jobs) = &self.jobs {
                let _ = jobs.send(Job::Close { id: self.id, discard: !sync });
            }
        } else if let Some(mut file) = self.file.take() {
            if let Some(buf) = &self.buf {
                let data = &buf.0[..self.filled];
                self.hasher.update(data);
                file.write_all(data).map_err(|e| Error::io(&self.path, "writing", e))?;
            }
            if sync && self.shared.durable && self.bytes > 0 {
                let _ = self.shared.jobs()?.send(Job::Sync { path: self.path.clone(), file });
            }
        }
        Ok((self.bytes, self.hasher.digest()))
    }
}

impl Drop for ChunkFile {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.shared.pool.put(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files of every size class (empty, one partial buffer, whole buffers, whole buffers and a tail)
    /// read back byte for byte with the checksum of their contents, durable or not.
    #[test]
    fn files_read_back_whatever_their_size() {
        let tmp = tempfile::tempdir().unwrap();
        for durable in [false, true] {
            let mut io = ChunkIo::new(durable);
            let sizes = [0, 1, 4095, BUFFER_BYTES, 2 * BUFFER_BYTES, 2 * BUFFER_BYTES + 123, 5 * BUFFER_BYTES - 8];
            let mut expected = Vec::new();
            for (k, &n) in sizes.iter().enumerate() {
                let path = tmp.path().join(format!("f{durable}{k}"));
                let mut f = io.create(&path).unwrap();
                let data: Vec<u8> = (0..n).map(|i| (i * 7 + k) as u8).collect();
                // Uneven pieces, so that buffer boundaries fall inside writes.
                for piece in data.chunks(1000 + 3 * k) {
                    f.write(piece).unwrap();
                }
                let (bytes, hash) = f.finish().unwrap();
                assert_eq!((bytes, hash), (n as u64, xxhash_rust::xxh3::xxh3_64(&data)));
                expected.push((path, data));
            }
            io.finish().unwrap();
            for (path, data) in expected {
                assert_eq!(std::fs::read(&path).unwrap(), data, "{}", path.display());
            }
        }
    }
}
