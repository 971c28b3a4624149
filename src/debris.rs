//! Debris: what interrupted or crashed writers leave in a matrix directory, and its removal.
//!
//! Readers ignore every file the manifest does not list (see `docs/FORMAT.md`, "Writers",
//! in the repository), so leftovers never harm a matrix, but they can take a lot of space out of sight: a
//! builder's sorted runs are about as large as its input. [`scan`] lists them, with their size and
//! whether something still uses them; [`clean`] removes those nothing uses, under the directory's
//! writer lock. Neither is part of [`Matrix::open`](crate::Matrix::open), which stays cheap.
//!
//! What counts as debris:
//!
//! * staging areas `.staging-{pid}-{n}` (a builder's sorted runs, an operation's intermediate
//!   matrices): in use while process `pid` runs;
//! * interrupted atomic writes `.manifest.json.tmp-{pid}-{n}` and `.zarr.json.tmp-{pid}-{n}`: in use
//!   while process `pid` runs;
//! * segment directories the manifest does not list: of an older generation (in use while a reader
//!   holds that generation's lock), or of a newer, unpublished one, or every segment directory when
//!   there is no manifest (in use while a writer holds the directory's writer lock).

use crate::directory::{published_generation, reader_holds, remove_stale, EntryKind, WriterLock, WRITER_LOCK_FILE};
use crate::error::{Error, Result};
use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};

/// What a piece of debris is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DebrisKind {
    /// A staging area `.staging-{pid}-{n}`.
    Staging,
    /// An interrupted atomic write `.manifest.json.tmp-{pid}-{n}` or `.zarr.json.tmp-{pid}-{n}`.
    Temporary,
    /// A segment directory the manifest does not list.
    Unlisted,
}

/// One piece of debris: an entry of the matrix directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DebrisEntry {
    /// Its name in the directory.
    pub name: String,
    /// Its path.
    pub path: PathBuf,
    /// What it is.
    pub kind: DebrisKind,
    /// The process that made it, when its name says (staging areas and temporary files).
    pub pid: Option<u32>,
    /// Whether something still uses it: its process is running, or a reader holds its generation, or
    /// a writer is at work in the directory. [`clean`] leaves such entries alone.
    pub in_use: bool,
    /// Files it holds (1 for a file).
    pub files: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// The debris of one matrix directory, as [`scan`] found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Debris {
    /// The entries, in name order.
    pub entries: Vec<DebrisEntry>,
}

impl Debris {
    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total bytes of every entry.
    pub fn bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.bytes).sum()
    }

    /// The entries [`clean`] would remove now (nothing uses them).
    pub fn removable(&self) -> impl Iterator<Item = &DebrisEntry> {
        self.entries.iter().filter(|e| !e.in_use)
    }

    /// The entries something still uses.
    pub fn in_use(&self) -> impl Iterator<Item = &DebrisEntry> {
        self.entries.iter().filter(|e| e.in_use)
    }
}

/// Lists the debris in `dir` (which need not hold a published matrix), with sizes. Reads the
/// directory, the manifest and the sizes of the debris's files; takes no lock that a reader or writer
/// would wait for more than an instant, and creates nothing.
///
/// # Errors
///
/// [`Error::Io`] when `dir` cannot be listed.
pub fn scan(dir: &Path) -> Result<Debris> {
    scan_with(dir, WriterLock::held(dir))
}

fn scan_with(dir: &Path, writer_busy: bool) -> Result<Debris> {
    let published = published_generation(dir);
    let listing = fs::read_dir(dir).map_err(|e| Error::io(dir, "listing the matrix directory", e))?;
    let mut entries = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|e| Error::io(dir, "listing the matrix directory", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let found = EntryKind::of(&name);
        let (kind, pid, in_use) = match found {
            EntryKind::Staging(pid) => (DebrisKind::Staging, pid, found.maker_alive()),
            EntryKind::Temporary(pid) => (DebrisKind::Temporary, pid, found.maker_alive()),
            EntryKind::Segment(g) if Some(g) != published => {
                // Older generations are deleted by the writer that replaced them unless a reader held
                // them; newer ones (or all, without a manifest) belong to a writer at work or a dead one.
                let older = published.is_some_and(|p| g < p);
                (DebrisKind::Unlisted, None, writer_busy || (older && reader_holds(dir, g)))
            }
            _ => continue,
        };
        let path = entry.path();
        let (files, bytes) = crate::interrupt::tree_size(&path);
        entries.push(DebrisEntry { name, path, kind, pid, in_use, files, bytes });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Debris { entries })
}

/// What [`clean`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct CleanReport {
    /// The entries removed.
    pub removed: Vec<DebrisEntry>,
    /// The entries left because something uses them (or removing them failed).
    pub kept: Vec<DebrisEntry>,
}

impl CleanReport {
    /// Bytes removed.
    pub fn removed_bytes(&self) -> u64 {
        self.removed.iter().map(|e| e.bytes).sum()
    }

    /// Bytes kept.
    pub fn kept_bytes(&self) -> u64 {
        self.kept.iter().map(|e| e.bytes).sum()
    }
}

/// Removes the debris of `dir` that nothing uses: staging areas and temporary files of processes
/// that no longer run, and unlisted segment directories no reader holds. Holds the directory's
/// writer lock meanwhile, so it never races a writer; a running import's staging area (sorting
/// before it takes the lock) is left alone, as is a generation a reader holds.
///
/// # Errors
///
/// [`Error::InvalidInput`] when a writer is at work in `dir` (nothing is removed then);
/// [`Error::Io`] when `dir` cannot be listed or the lock file cannot be created.
pub fn clean(dir: &Path) -> Result<CleanReport> {
    let busy = || {
        Error::invalid(format!(
            "cannot clean {}: another process is writing it (it holds {}); run clean again once that writer has finished",
            dir.display(),
            dir.join(WRITER_LOCK_FILE).display()
        ))
    };
    if WriterLock::held(dir) {
        return Err(busy());
    }
    let before = scan_with(dir, false)?;
    if before.removable().next().is_none() {
        // Nothing to do: no lock file is created in a directory that may not even be a matrix's.
        return Ok(CleanReport { removed: Vec::new(), kept: before.entries });
    }
    let _lock = match WriterLock::acquire(dir)? {
        Ok(lock) => lock,
        Err(_) => return Err(busy()),
    };
    // Again under the lock: a writer may have published, or finished, in between.
    let debris = scan_with(dir, false)?;
    let published = published_generation(dir).unwrap_or(0);
    let (remove, mut kept): (Vec<DebrisEntry>, Vec<DebrisEntry>) = debris.entries.into_iter().partition(|e| !e.in_use);
    // The writers' own removal: generation by generation, each only if no reader locks it (one may
    // have since the scan), lock file last.
    remove_stale(dir, remove.iter().map(|e| e.path.clone()).collect(), published);
    let mut removed = Vec::new();
    for entry in remove {
        if fs::symlink_metadata(&entry.path).is_ok() {
            kept.push(entry);
        } else {
            removed.push(entry);
        }
    }
    kept.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(CleanReport { removed, kept })
}
