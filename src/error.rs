//! The library's one error type.
//!
//! Policy (after sprs): problems with data or I/O are `Err`, never panics; a contract violation by the
//! calling code (documented under `# Panics`) may panic. Every variant names the file it concerns, so a
//! message read in a log tells the user where to look and, where it can, what to do.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Shorthand for `std::result::Result<T, sparsedisk::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in sparsedisk.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error on `path` (missing file, permission, full disk, ...).
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// What the operation was doing, e.g. "reading the manifest".
        action: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// A file of a matrix does not hold what the format requires: bad JSON, wrong size, a broken
    /// structural invariant. The matrix should be regenerated or restored from a copy.
    Corrupt {
        /// The file at fault.
        path: PathBuf,
        /// The broken invariant, as a sentence fragment.
        what: String,
    },
    /// A file's checksum does not match the one the manifest recorded: its bytes changed after it was
    /// published (disk error, another program writing into the matrix directory).
    ChecksumMismatch {
        /// The file at fault.
        path: PathBuf,
        /// The checksum recorded in the manifest (xxh3-64, hex).
        expected: String,
        /// The checksum of the bytes on disk.
        actual: String,
    },
    /// The matrix was written by a newer (or unknown) version of the format.
    UnsupportedVersion {
        /// The manifest.
        path: PathBuf,
        /// The version found.
        found: u64,
        /// The newest version this build reads.
        supported: u64,
    },
    /// A text input (Matrix Market, edge list, CSV) could not be parsed.
    Parse {
        /// The input file (or `-` for standard input).
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What was expected and what was found.
        msg: String,
    },
    /// An entry lies outside the matrix.
    OutOfBounds {
        /// Row of the entry.
        row: u64,
        /// Column of the entry.
        col: u64,
        /// Shape of the matrix.
        shape: (u64, u64),
    },
    /// `path` is not a matrix directory: it does not exist, or holds no `manifest.json` (a directory of
    /// something else, the parent of `--layout both`'s `csr/` and `csc/`, or a write that never
    /// published).
    NotAMatrix {
        /// The directory given.
        path: PathBuf,
        /// What it is instead, and where the matrix may be, as a sentence.
        what: String,
    },
    /// The caller asked for something the library cannot do with these arguments (rows pushed out of
    /// order, a typed view of the wrong value type, an output directory that already exists, ...).
    InvalidInput(String),
    /// The call stopped because cancellation was requested ([`interrupt::request`](crate::interrupt),
    /// e.g. from a SIGINT handler). What it had made is removed and nothing was published: an
    /// output directory it created is gone, a matrix it was replacing is unchanged.
    Interrupted,
}

impl Error {
    /// Builds an [`Error::Io`] from an `io::Error`, naming the path and the action.
    pub fn io(path: impl AsRef<Path>, action: &'static str, source: io::Error) -> Error {
        Error::Io { path: path.as_ref().to_path_buf(), action, source }
    }

    /// Builds an [`Error::Corrupt`].
    pub fn corrupt(path: impl AsRef<Path>, what: impl Into<String>) -> Error {
        Error::Corrupt { path: path.as_ref().to_path_buf(), what: what.into() }
    }

    /// Builds an [`Error::InvalidInput`].
    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::InvalidInput(msg.into())
    }

    /// True for [`Error::Interrupted`].
    pub fn is_interrupted(&self) -> bool {
        matches!(self, Error::Interrupted)
    }

    /// True when this error comes from a closed pipe (e.g. `sparsedisk export M -o - | head`):
    /// command-line tools exit quietly in that case.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, action, source } => {
                write!(f, "{}: error {}: {}", path.display(), action, source)
            }
            Error::Corrupt { path, what } => write!(f, "{}: corrupt: {}", path.display(), what),
            Error::ChecksumMismatch { path, expected, actual } => write!(
                f,
                "{}: checksum mismatch (manifest records xxh3 {}, file has {}): the file changed after it was written",
                path.display(),
                expected,
                actual
            ),
            Error::UnsupportedVersion { path, found, supported } => write!(
                f,
                "{}: format version {} is not supported (this build reads versions up to {}); upgrade sparsedisk",
                path.display(),
                found,
                supported
            ),
            Error::Parse { path, line, msg } => write!(f, "{}:{}: {}", path.display(), line, msg),
            Error::OutOfBounds { row, col, shape } => {
                write!(f, "entry ({}, {}) lies outside the {} x {} matrix", row, col, shape.0, shape.1)
            }
            Error::NotAMatrix { path, what } => write!(f, "{} is not a sparsedisk matrix: {}", path.display(), what),
            Error::InvalidInput(msg) => f.write_str(msg),
            Error::Interrupted => f.write_str("interrupted: cancellation was requested; nothing was published"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
