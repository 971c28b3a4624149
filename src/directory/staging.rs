//! The staging area: a private directory inside an output directory for what a producer writes
//! before its result (a builder's sorted runs, an operation's intermediate matrices).

use super::names::staging_name;
use crate::error::{Error, Result};
use crate::format::MANIFEST_FILE;
use crate::interrupt::remove_counted;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A staging area `.staging-{pid}-{tag}{n}` inside an output directory: on the same filesystem as
/// the output, and named as debris of this process (see [`debris`](crate::debris)) should it be left
/// behind. Created on first use by [`dir`](Self::dir), together with the output directory if that
/// does not exist yet.
///
/// Dropping it removes the staging area, and the output directory too if it was created here and
/// holds no published matrix, unless [`published`](Self::published) said to keep it.
#[derive(Debug)]
pub(crate) struct StagingArea {
    out: PathBuf,
    tag: &'static str,
    dir: Option<PathBuf>,
    created_out: bool,
}

impl StagingArea {
    /// A staging area in `out`, not created yet; `tag` goes before its number in the name (`""` for
    /// builders, `"op"` for operations).
    pub(crate) fn new(out: &Path, tag: &'static str) -> StagingArea {
        StagingArea { out: out.to_path_buf(), tag, dir: None, created_out: false }
    }

    /// The staging directory, created (with the output directory, if absent) on first call.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a directory cannot be created.
    pub(crate) fn dir(&mut self) -> Result<PathBuf> {
        if let Some(s) = &self.dir {
            return Ok(s.clone());
        }
        if !self.out.exists() {
            fs::create_dir_all(&self.out).map_err(|e| Error::io(&self.out, "creating the output directory", e))?;
            self.created_out = true;
        }
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let staging = self.out.join(staging_name(self.tag, COUNTER.fetch_add(1, Ordering::Relaxed)));
        fs::create_dir(&staging).map_err(|e| Error::io(&staging, "creating the staging area", e))?;
        self.dir = Some(staging.clone());
        Ok(staging)
    }

    /// Removes the staging area now, if it was created (a later [`dir`](Self::dir) makes a new one).
    pub(crate) fn remove(&mut self) {
        if let Some(s) = self.dir.take() {
            remove_counted(&s);
        }
    }

    /// The output was published: keep the output directory when this is dropped.
    pub(crate) fn published(&mut self) {
        self.created_out = false;
    }
}

impl Drop for StagingArea {
    fn drop(&mut self) {
        self.remove();
        if self.created_out && !self.out.join(MANIFEST_FILE).exists() {
            // Created here (for the staging area) and nothing was published in it.
            remove_counted(&self.out);
        }
    }
}
