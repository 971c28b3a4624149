//! Storage: the one place that maps files, typed views of mapped bytes, and page-cache control.
//!
//! * [`MappedFile`] wraps the crate's only `unsafe` block that creates a memory map. Published files are
//!   never modified (see `docs/FORMAT.md`, "Commit protocol"), which is what makes the map sound to read.
//!   What sparsedisk cannot prevent is another program truncating or rewriting a mapped file; that is
//!   outside its guarantees (reading a truncated map raises SIGBUS, and bytes changing under a live
//!   slice are undefined behaviour). For that reason mapping is crate-private: only files a manifest
//!   lists are ever mapped.
//! * [`cast_slice`] turns mapped bytes into `&[u64]`, `&[f64]`, ... through `bytemuck`, which checks
//!   size and alignment; no hand-written pointer casts.
//! * [`evict_page_cache`], [`advise_huge_pages`] and [`free_space`]: what the kernel keeps in memory and
//!   how much the disk has left.
//!
//! Everything about a matrix directory's files (atomic writes, fsyncs, locks, staging areas) lives in
//! [`directory`](crate::directory); its durable-write items are re-exported here under their old
//! paths.

#[cfg(not(target_endian = "little"))]
compile_error!("sparsedisk maps little-endian files directly and supports little-endian targets only");

pub use crate::directory::{sync_dir, write_file_atomic, AtomicFile, Syncer};

use crate::error::{Error, Result};
use memmap2::{Advice, Mmap};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

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
        // truncated or reopened for writing by sparsedisk (docs/FORMAT.md: "Commit protocol and
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
