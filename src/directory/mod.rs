//! The matrix directory: everything about its files other than their contents.
//!
//! A matrix is a directory (see `docs/FORMAT.md`) holding a manifest, the segments
//! it lists and the root group metadata; besides them, the files that let writers and readers share
//! it safely. This module owns all of those, as tantivy's `directory` owns an index's files:
//!
//! * **Output directories** ([`check_output_dir`], [`enclosing_matrix_dir`],
//!   [`refuse_inside_matrix`]): whether a path may receive a new matrix or a file, the writer's
//!   preparation of its directory (the writer lock, the next generation, what to remove after
//!   publishing) and the removal of older generations no reader holds.
//! * **Locks**: the writer lock (one writer at a time) and each generation's reader lock.
//! * **Staging areas**: the one kind of private directory in which builders and operations keep
//!   what they write before their result.
//! * **Atomic files and syncing** ([`AtomicFile`], [`write_file_atomic`], [`sync_dir`], [`Syncer`]):
//!   the commit protocol's durable publish.
//! * **Names**: of lock files, staging areas and temporary files, and what an entry of a matrix
//!   directory is by its name, which is how [`debris`](crate::debris) and the writers tell their own
//!   leftovers from foreign files.
//!
//! Mapping published files into memory is [`storage`](crate::storage)'s.

mod atomic;
mod lock;
mod names;
mod output;
mod staging;

pub(crate) use atomic::parent_dir;
pub use atomic::{sync_dir, write_file_atomic, AtomicFile, Syncer};
pub(crate) use lock::{lock_generation_shared, reader_holds, WriterLock};
pub(crate) use names::{EntryKind, STAGING_PREFIX, WRITER_LOCK_FILE};
pub use output::{check_output_dir, enclosing_matrix_dir, refuse_inside_matrix};
pub(crate) use output::{prepare_dir, published_generation, remove_stale, PreparedDir};
pub(crate) use staging::StagingArea;
