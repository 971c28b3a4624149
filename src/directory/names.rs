//! The names of the files sparsedisk keeps in a matrix directory besides the manifest and segments,
//! and what a directory entry is by its name.
//!
//! | name | what |
//! | --- | --- |
//! | `.writer.lock` | [`WRITER_LOCK_FILE`]: held by the writer at work |
//! | `.readers-{generation}.lock` | [`reader_lock_name`]: held shared by the readers of a generation |
//! | `.staging-{pid}-{n}`, `.staging-{pid}-op{n}` | [`StagingArea`](super::StagingArea)s of process `pid` |
//! | `.{file}.tmp-{pid}-{n}` | [`AtomicFile`](super::AtomicFile)s being written by process `pid` |

use crate::format::{parse_segment_name, paths, MANIFEST_FILE};

/// Name of the lock file a writer holds an exclusive lock on while it writes into a matrix directory
/// (see `docs/FORMAT.md`, "Writers").
pub(crate) const WRITER_LOCK_FILE: &str = ".writer.lock";

/// Prefix of the staging areas (a builder's sorted runs, an operation's intermediate matrices) inside
/// an output directory.
pub(crate) const STAGING_PREFIX: &str = ".staging-";

/// What the temporary files of interrupted atomic writes of the matrix's own metadata start with.
const METADATA_TEMP_PREFIXES: [&str; 2] = [".manifest.json.tmp", ".zarr.json.tmp"];

/// Name of the lock file readers of `generation` hold a shared lock on (see `docs/FORMAT.md`,
/// "Concurrent readers").
pub(crate) fn reader_lock_name(generation: u64) -> String {
    format!(".readers-{generation}.lock")
}

/// The generation a reader lock file name belongs to, if `name` is one.
pub(crate) fn parse_reader_lock_name(name: &str) -> Option<u64> {
    name.strip_prefix(".readers-")?.strip_suffix(".lock")?.parse().ok()
}

/// Name of a staging area of this process: `.staging-{pid}-{tag}{n}`.
pub(crate) fn staging_name(tag: &str, n: u64) -> String {
    format!("{STAGING_PREFIX}{}-{tag}{n}", std::process::id())
}

/// Name of this process's temporary file `n` for what will become `file`: `.{file}.tmp-{pid}-{n}`.
pub(crate) fn temp_name(file: &str, n: u64) -> String {
    format!(".{file}.tmp-{}-{n}", std::process::id())
}

/// The process id in the name of a staging area or temporary file ([`staging_name`],
/// [`temp_name`]), if `name` is one.
pub(crate) fn debris_pid(name: &str) -> Option<u32> {
    let rest = match name.find(".tmp-") {
        Some(at) if name.starts_with('.') => &name[at + ".tmp-".len()..],
        _ => name.strip_prefix(STAGING_PREFIX)?,
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

/// What an entry of a matrix directory is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// `manifest.json`.
    Manifest,
    /// The root group metadata `zarr.json`.
    RootMetadata,
    /// [`WRITER_LOCK_FILE`].
    WriterLock,
    /// A segment directory of this generation.
    Segment(u64),
    /// The reader lock file of this generation.
    ReaderLock(u64),
    /// A staging area, of the process named if its name says.
    Staging(Option<u32>),
    /// The temporary file of an atomic write of `manifest.json` or `zarr.json`, of the process
    /// named if its name says.
    Temporary(Option<u32>),
    /// Anything else: not sparsedisk's.
    Foreign,
}

impl EntryKind {
    /// Classifies the entry named `name`.
    pub(crate) fn of(name: &str) -> EntryKind {
        if name == MANIFEST_FILE {
            EntryKind::Manifest
        } else if name == paths::ZARR_JSON {
            EntryKind::RootMetadata
        } else if name == WRITER_LOCK_FILE {
            EntryKind::WriterLock
        } else if let Some(g) = parse_segment_name(name) {
            EntryKind::Segment(g)
        } else if let Some(g) = parse_reader_lock_name(name) {
            EntryKind::ReaderLock(g)
        } else if name.starts_with(STAGING_PREFIX) {
            EntryKind::Staging(debris_pid(name))
        } else if METADATA_TEMP_PREFIXES.iter().any(|p| name.starts_with(p)) {
            EntryKind::Temporary(debris_pid(name))
        } else {
            EntryKind::Foreign
        }
    }

    /// For staging areas and temporary files: whether the process that made it still runs (an entry
    /// whose name gives no process belongs to none).
    pub(crate) fn maker_alive(self) -> bool {
        match self {
            EntryKind::Staging(pid) | EntryKind::Temporary(pid) => pid.is_some_and(process_alive),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let me = std::process::id();
        assert_eq!(debris_pid(&staging_name("op", 3)), Some(me));
        assert_eq!(debris_pid(&staging_name("", 0)), Some(me));
        assert_eq!(debris_pid(&temp_name("manifest.json", 7)), Some(me));
        assert_eq!(parse_reader_lock_name(&reader_lock_name(12)), Some(12));
        assert_eq!(EntryKind::of(&temp_name("zarr.json", 1)), EntryKind::Temporary(Some(me)));
        assert_eq!(EntryKind::of(&temp_name("lap.mtx", 1)), EntryKind::Foreign);
        assert_eq!(EntryKind::of(&reader_lock_name(4)), EntryKind::ReaderLock(4));
        assert_eq!(EntryKind::of("seg_2_000001"), EntryKind::Segment(2));
        assert_eq!(EntryKind::of(".staging-x"), EntryKind::Staging(None));
        assert!(EntryKind::of(&staging_name("", 1)).maker_alive());
    }
}
