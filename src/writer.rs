//! The one streaming writer every producer of matrices uses.
//!
//! Contract:
//!
//! * Outer indices (rows of a CSR matrix, columns of a CSC matrix) go in in increasing order, each
//!   with its inner indices strictly increasing. [`push_row`](MatrixWriter::push_row) writes a whole
//!   outer index at once; [`push_entry`](MatrixWriter::push_entry) takes a sorted stream of entries
//!   (what a k-way merge produces). Outer indices never pushed are empty.
//! * Entries stream straight to the segment's chunk files through fixed buffers: memory is at most
//!   16 MiB (eight 2 MiB buffers) whatever the size of the matrix, of a segment, or of a single row.
//! * Chunk files larger than one buffer are written with direct I/O (`O_DIRECT`) by one I/O thread per
//!   writer, not through the page cache: copying freshly produced arrays into fresh page-cache pages
//!   was the largest cost of an import (see `chunk` for the measurements and the fallbacks). Nothing
//!   is written through a writable memory map, so a full disk is an error from `write`, never SIGBUS.
//!   A consequence: a matrix just written is not in the page cache; its first reader reads it from
//!   disk.
//! * A segment is closed at the first outer boundary at which its payload (indptr + indices + values)
//!   reaches [`WriterOptions::segment_bytes`]; so a segment exceeds the bound by at most one row.
//!   Exception: a boundary inside a group of rows that may hold dense blocks is skipped up to 4 times
//!   the bound, so that dense blocks are not cut in two (each part would be stored padded).
//! * Nothing is visible to readers until [`finish`](MatrixWriter::finish) publishes the manifest. A
//!   writer dropped without `finish` (an error, a panic, a cancelled job) removes every file it wrote,
//!   and the directory itself if it created it.

use crate::directory::{
    prepare_dir, remove_stale, sync_dir, write_file_atomic, AtomicFile, PreparedDir, Syncer, WriterLock,
};
use crate::element::Element;
use crate::error::{Error, Result};
use crate::format::{
    array_metadata, array_metadata_nd, checksum_hex, dense_group_metadata, format_checksum, paths, root_group_metadata,
    segment_group_metadata, segment_name, DenseEntry, FileEntry, IndexType, Layout, Manifest, SegmentEntry, ValueType,
    FORMAT_VERSION, FORMAT_VERSION_PLAIN, MANIFEST_FILE,
};
use crate::interrupt::remove_counted;
use crate::matrix::Matrix;
use chunk::{ChunkFile, ChunkIo};
use std::fs;
use std::io::Write;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

pub(crate) mod chunk;
mod dense;

pub use crate::directory::check_output_dir;
pub use dense::{DenseOptions, DEFAULT_DENSE_BLOCK, DEFAULT_DENSE_THRESHOLD};

/// Default bound on a segment's payload: 64 MiB. Large enough that per-segment costs (seven small
/// files, a map and unmap) vanish beside the data, small enough that a few mapped segments sit well
/// inside any memory budget and that a matrix of a few hundred MiB spreads over both cores.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// Options of a [`MatrixWriter`].
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Close a segment once its payload reaches this many bytes (at least one row per segment).
    pub segment_bytes: u64,
    /// Replace a matrix already in the directory. The old one stays readable until the new manifest
    /// is published; its segments are deleted afterwards.
    pub overwrite: bool,
    /// Fsync files and directories before publishing (the default). Turning it off trades crash
    /// safety for speed, for scratch matrices and tests.
    pub durable: bool,
    /// Store blocks whose density reaches the threshold as dense blocks (see `docs/FORMAT.md`, "Dense
    /// blocks"); `None` writes plain CSR/CSC segments. Ignored for pattern matrices. The default is
    /// [`DenseOptions::default`].
    pub dense: Option<DenseOptions>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            overwrite: false,
            durable: true,
            dense: Some(DenseOptions::default()),
        }
    }
}

/// The segment currently being written.
struct OpenSegment {
    name: String,
    dir: PathBuf,
    start: u64,
    nnz: u64,
    indptr: ChunkFile,
    indices: ChunkFile,
    values: Option<ChunkFile>,
    /// Finds groups of rows that may hold dense blocks (dense writers only).
    scan: Option<dense::DenseScan>,
}

/// A closed segment's array files: row pointers, indices, values (none for pattern).
struct SegmentFiles {
    indptr: FileEntry,
    indices: FileEntry,
    values: Option<FileEntry>,
}

/// Whether a segment of `nnz` entries over `band` outer indices may hold enough dense blocks to be
/// read back and rewritten (finishing its dense scan, if any).
fn has_dense_candidates(scan: Option<&mut dense::DenseScan>, band: u64, nnz: u64) -> bool {
    scan.is_some_and(|scan| {
        scan.finish(band);
        !scan.candidates.is_empty() && scan.estimated.saturating_mul(dense::MIN_DENSE_SHARE) >= nnz
    })
}

/// `p` relative to the matrix directory `dir`, with `/` separators, as the manifest lists files.
fn relative(dir: &Path, p: &Path) -> String {
    p.strip_prefix(dir).unwrap_or(p).to_string_lossy().replace('\\', "/")
}

impl OpenSegment {
    fn payload(&self) -> u64 {
        self.indptr.len() + self.indices.len() + self.values.as_ref().map_or(0, |v| v.len())
    }
}

/// Streams a matrix into a directory, segment by segment. See the [module docs](self) for the contract.
///
/// # Examples
///
/// ```
/// use sparsedisk::{Layout, MatrixWriter, WriterOptions};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let dir = tmp.path().join("m");
/// let mut w = MatrixWriter::<f64>::create(&dir, (3, 4), Layout::Csr, WriterOptions::default())?;
/// w.push_row(&[0, 3], &[1.0, 2.0])?; // row 0
/// w.push_row(&[], &[])?; // row 1 is empty
/// w.push_entry(2, 1, 5.0)?; // row 2
/// let m = w.finish()?;
/// assert_eq!((m.shape(), m.nnz()), ((3, 4), 3));
/// # Ok::<(), sparsedisk::Error>(())
/// ```
pub struct MatrixWriter<V: Element> {
    dir: PathBuf,
    created_dir: bool,
    shape: (u64, u64),
    layout: Layout,
    index_type: IndexType,
    outer_dim: u64,
    inner_dim: u64,
    generation: u64,
    options: WriterOptions,
    /// Segment directories present before this writer started (a previous generation, or a crashed
    /// build's leftovers): removed once the new manifest is published.
    stale_segment_dirs: Vec<PathBuf>,
    /// Segment directories this writer created: removed if it is dropped unfinished.
    created_segment_dirs: Vec<PathBuf>,
    segments: Vec<SegmentEntry>,
    open: Option<OpenSegment>,
    /// The outer index now receiving entries; every smaller one is complete.
    cur_outer: u64,
    /// Last inner index pushed into `cur_outer`.
    cur_last_inner: Option<u64>,
    /// The current outer index has had parts appended by `extend_row_encoded`.
    row_in_parts: bool,
    total_nnz: u64,
    scratch: Vec<u8>,
    published: bool,
    /// Background fsyncs of closed segments' directories and metadata (durable writers only).
    syncer: Option<Syncer>,
    /// The thread writing (and, durable, fsyncing) the chunk files; taken by `finish`.
    chunk_io: Option<ChunkIo>,
    /// The directory's writer lock, held until this writer is done (published or dropped).
    _lock: Option<WriterLock>,
    _values: PhantomData<V>,
}

impl<V: Element> MatrixWriter<V> {
    /// Prepares to write a `shape` matrix in `layout` into `dir`.
    ///
    /// `dir` may be absent (it is created), empty, hold a crashed build's leftovers, or (with
    /// `options.overwrite`) hold a matrix to replace.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when `dir` holds a matrix and `overwrite` is off, holds files that are
    /// not sparsedisk's, or a dimension exceeds 2^63 - 1; [`Error::Io`] when it cannot be created.
    pub fn create(dir: impl AsRef<Path>, shape: (u64, u64), layout: Layout, options: WriterOptions) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        if shape.0 > i64::MAX as u64 || shape.1 > i64::MAX as u64 {
            return Err(Error::invalid(format!(
                "shape {} x {} exceeds the largest supported dimension 2^63 - 1",
                shape.0, shape.1
            )));
        }
        if let Some(d) = &options.dense {
            d.check()?;
        }
        let (outer_dim, inner_dim) = layout.outer_inner(shape);
        check_pointer_space(&dir, shape, layout)?;
        let PreparedDir { created: created_dir, generation, stale: stale_segment_dirs, lock } =
            prepare_dir(&dir, options.overwrite)?;
        let mut writer = MatrixWriter {
            dir,
            created_dir,
            shape,
            layout,
            index_type: IndexType::for_inner_dim(inner_dim),
            outer_dim,
            inner_dim,
            generation,
            options,
            stale_segment_dirs,
            created_segment_dirs: Vec::new(),
            segments: Vec::new(),
            open: None,
            cur_outer: 0,
            cur_last_inner: None,
            row_in_parts: false,
            total_nnz: 0,
            scratch: Vec::new(),
            published: false,
            syncer: None,
            chunk_io: None,
            _lock: lock,
            _values: PhantomData,
        };
        write_file_atomic(
            &writer.dir.join(paths::ZARR_JSON),
            root_group_metadata().as_bytes(),
            writer.options.durable,
        )?;
        if writer.options.durable {
            writer.syncer = Some(Syncer::new()?);
        }
        writer.chunk_io = Some(ChunkIo::new(writer.options.durable));
        Ok(writer)
    }

    /// The matrix shape.
    pub fn shape(&self) -> (u64, u64) {
        self.shape
    }

    /// The outer index now receiving entries (all smaller ones are complete).
    pub fn current_outer(&self) -> u64 {
        self.cur_outer
    }

    /// Entries written so far.
    pub fn nnz(&self) -> u64 {
        self.total_nnz
    }

    /// Appends the entries of the next outer index (row for CSR, column for CSC) and completes it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the lengths differ, the indices are not strictly increasing, or
    /// all outer indices are already complete; [`Error::OutOfBounds`] for an index past the inner
    /// dimension; [`Error::Io`] on write failures.
    pub fn push_row(&mut self, indices: &[u64], values: &[V]) -> Result<()> {
        if indices.len() != values.len() {
            return Err(Error::invalid(format!("push_row got {} indices and {} values", indices.len(), values.len())));
        }
        if self.cur_last_inner.is_some() {
            return Err(Error::invalid("push_row after push_entry on the same outer index"));
        }
        if self.cur_outer >= self.outer_dim {
            return Err(Error::invalid(format!("all {} outer indices are already complete", self.outer_dim)));
        }
        if !indices.is_empty() {
            self.check_sorted_in_range(indices)?;
            self.ensure_segment()?;
            self.scratch.clear();
            match self.index_type {
                IndexType::Uint32 => {
                    for &i in indices {
                        self.scratch.extend_from_slice(&(i as u32).to_le_bytes());
                    }
                }
                IndexType::Uint64 => {
                    for &i in indices {
                        self.scratch.extend_from_slice(&i.to_le_bytes());
                    }
                }
            }
            let seg = self.open.as_mut().expect("ensure_segment opened a segment");
            if let Some(scan) = seg.scan.as_mut() {
                scan.row(indices);
            }
            seg.indices.write(&self.scratch)?;
            if let Some(vw) = seg.values.as_mut() {
                self.scratch.clear();
                V::extend_le_bytes(values, &mut self.scratch);
                vw.write(&self.scratch)?;
            }
            seg.nnz += indices.len() as u64;
            self.total_nnz += indices.len() as u64;
        }
        self.close_outer()
    }

    /// The width the writer stores inner indices in (chosen from the inner dimension).
    pub fn index_type(&self) -> IndexType {
        self.index_type
    }

    /// Appends the next outer index from already encoded arrays: `count` inner indices as
    /// little-endian bytes of [`index_type`](Self::index_type) and their values as little-endian
    /// bytes. For producers that encode rows in parallel (the triplet builder) and whose indices are
    /// sorted, unique and in range by construction; only the sizes are checked here, so a producer bug
    /// shows up in `verify`, never as memory unsafety.
    pub(crate) fn push_row_encoded(&mut self, count: u64, index_bytes: &[u8], value_bytes: &[u8]) -> Result<()> {
        self.append_encoded(count, index_bytes, value_bytes, "push_row_encoded")?;
        self.row_in_parts = false;
        self.close_outer()
    }

    /// Completes the outer index being written in parts (if any) and the open segment, waits until
    /// every chunk written so far is on disk, and returns the segments written so far, for a producer
    /// that reads them back instead of publishing them (the builder, when input it wrote straight
    /// through turns out not to be sorted). Nothing is published; dropping the writer removes them.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a write failed.
    pub(crate) fn segments_so_far(&mut self) -> Result<Vec<SegmentEntry>> {
        if self.row_in_parts {
            self.close_outer()?;
        }
        self.close_segment()?;
        if let Some(io) = &self.chunk_io {
            io.barrier()?;
        }
        Ok(self.segments.clone())
    }

    /// Whether the current outer index has parts appended by
    /// [`extend_row_encoded`](Self::extend_row_encoded) (its next part must come row by row).
    pub(crate) fn row_in_parts(&self) -> bool {
        self.row_in_parts
    }

    /// Appends encoded entries to the current outer index without completing it, as
    /// [`push_row_encoded`](Self::push_row_encoded) does for the last part: for a producer that
    /// delivers a row longer than its buffers in parts (the builder's merge, whose windows may end
    /// inside a row).
    pub(crate) fn extend_row_encoded(&mut self, count: u64, index_bytes: &[u8], value_bytes: &[u8]) -> Result<()> {
        self.append_encoded(count, index_bytes, value_bytes, "extend_row_encoded")?;
        self.row_in_parts = true;
        Ok(())
    }

    fn append_encoded(&mut self, count: u64, index_bytes: &[u8], value_bytes: &[u8], what: &str) -> Result<()> {
        if self.cur_last_inner.is_some() || self.cur_outer >= self.outer_dim {
            return Err(Error::invalid(format!("{what} out of order")));
        }
        if index_bytes.len() as u64 != count * self.index_type.bytes()
            || value_bytes.len() as u64 != count * V::VALUE_TYPE.bytes()
        {
            return Err(Error::invalid(format!("{what}: array sizes do not match the count")));
        }
        if count > 0 {
            self.ensure_segment()?;
            let seg = self.open.as_mut().expect("ensure_segment opened a segment");
            if let Some(scan) = seg.scan.as_mut() {
                if self.row_in_parts {
                    // A continued row: its runs may go on from the previous part, however short this one.
                    scan.part_bytes(self.index_type, index_bytes);
                } else {
                    scan.row_bytes(self.index_type, index_bytes);
                }
            }
            seg.indices.write(index_bytes)?;
            if let Some(vw) = seg.values.as_mut() {
                vw.write(value_bytes)?;
            }
            seg.nnz += count;
            self.total_nnz += count;
        }
        Ok(())
    }

    /// Appends one entry. Entries must come in increasing `(outer, inner)` order without duplicates;
    /// outer indices skipped over are empty. (For unsorted input, use the triplet builder.)
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for an entry out of order or repeated; [`Error::OutOfBounds`] outside
    /// the matrix; [`Error::Io`] on write failures.
    #[inline]
    pub fn push_entry(&mut self, outer: u64, inner: u64, value: V) -> Result<()> {
        if outer >= self.outer_dim || inner >= self.inner_dim {
            let (row, col) = self.layout.row_col(outer, inner);
            return Err(Error::OutOfBounds { row, col, shape: self.shape });
        }
        if outer < self.cur_outer || (outer == self.cur_outer && self.cur_last_inner.is_some_and(|l| l >= inner)) {
            let (row, col) = self.layout.row_col(outer, inner);
            return Err(Error::invalid(format!(
                "entry ({row}, {col}) arrives out of order or repeated: the writer needs entries sorted by {} without duplicates",
                if self.layout == Layout::Csr { "(row, column)" } else { "(column, row)" }
            )));
        }
        self.advance_to(outer)?;
        self.ensure_segment()?;
        let seg = self.open.as_mut().expect("ensure_segment opened a segment");
        if let Some(scan) = seg.scan.as_mut() {
            scan.entry(inner);
        }
        match self.index_type {
            IndexType::Uint32 => seg.indices.write_u32(inner as u32)?,
            IndexType::Uint64 => seg.indices.write_u64(inner)?,
        }
        if let Some(vw) = seg.values.as_mut() {
            self.scratch.clear();
            V::extend_le_bytes(std::slice::from_ref(&value), &mut self.scratch);
            vw.write(&self.scratch)?;
        }
        seg.nnz += 1;
        self.total_nnz += 1;
        self.cur_last_inner = Some(inner);
        Ok(())
    }

    /// Completes every outer index below `outer` (those not pushed stay empty).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when `outer` exceeds the outer dimension; [`Error::Io`] on write
    /// failures.
    pub fn advance_to(&mut self, outer: u64) -> Result<()> {
        if outer > self.outer_dim {
            return Err(Error::invalid(format!("cannot advance to outer index {outer} of {}", self.outer_dim)));
        }
        while self.cur_outer < outer {
            self.close_outer()?;
        }
        Ok(())
    }

    /// Completes the remaining outer indices, closes the last segment and publishes the manifest
    /// atomically; then removes the previous generation's segments. Returns the opened matrix.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] on write failures, in which case nothing is published and every file this
    /// writer made is removed.
    pub fn finish(mut self) -> Result<Matrix> {
        self.advance_to(self.outer_dim)?;
        self.close_segment()?;
        if let Some(io) = self.chunk_io.take() {
            // Every chunk written (and, durable, fsynced) before anything is published.
            io.finish()?;
        }
        if let Some(s) = self.syncer.take() {
            // Every chunk, metadata file and directory of the new generation is durable before the
            // manifest that makes them visible.
            s.wait()?;
        }
        if self.options.durable {
            sync_dir(&self.dir)?;
        }
        // The last moment a cancellation can stop this writer: after the rename the matrix is live.
        crate::interrupt::check()?;
        let manifest = Manifest {
            format: "sparsedisk".to_string(),
            // Version 1 when nothing needs version 2, so that older readers still open the matrix.
            format_version: if self.segments.iter().any(|s| s.dense.is_some()) {
                FORMAT_VERSION
            } else {
                FORMAT_VERSION_PLAIN
            },
            generation: self.generation,
            shape: [self.shape.0, self.shape.1],
            nnz: self.total_nnz,
            layout: self.layout,
            value_type: V::VALUE_TYPE,
            index_type: self.index_type,
            segments: std::mem::take(&mut self.segments),
        };
        let mut file = AtomicFile::create(&self.dir.join(MANIFEST_FILE))?;
        file.writer()
            .write_all(&manifest.to_json_bytes())
            .map_err(|e| Error::io(self.dir.join(MANIFEST_FILE), "writing the manifest", e))?;
        file.rename_into_place(self.options.durable)?;
        // Live from here on: whatever happens next, nothing this writer made may be removed.
        self.published = true;
        if self.options.durable {
            // If this fails the new matrix is visible but its publication may not survive a power
            // loss; keep the old generation's files until a sync succeeds.
            sync_dir(&self.dir)?;
        }
        // The new generation is durable; what the old ones held is garbage, deleted unless a reader
        // still holds it (a shared lock on its reader lock file: see docs/FORMAT.md, "Concurrent
        // readers"); kept files are deleted by a later writer. Removal failures leave unlisted files
        // that readers ignore, so they are not errors.
        remove_stale(&self.dir, std::mem::take(&mut self.stale_segment_dirs), self.generation);
        if self.options.durable {
            let _ = sync_dir(&self.dir);
        }
        Matrix::open(&self.dir)
    }

    fn check_sorted_in_range(&self, indices: &[u64]) -> Result<()> {
        let mut prev: Option<u64> = None;
        for &i in indices {
            if i >= self.inner_dim {
                let (row, col) = self.layout.row_col(self.cur_outer, i);
                return Err(Error::OutOfBounds { row, col, shape: self.shape });
            }
            if prev.is_some_and(|p| p >= i) {
                return Err(Error::invalid(format!(
                    "indices of outer index {} are not strictly increasing ({} then {i})",
                    self.cur_outer,
                    prev.unwrap_or(0)
                )));
            }
            prev = Some(i);
        }
        Ok(())
    }

    /// Writes the row pointer that completes `cur_outer`, and closes the segment at the size bound.
    fn close_outer(&mut self) -> Result<()> {
        self.ensure_segment()?;
        let seg = self.open.as_mut().expect("ensure_segment opened a segment");
        seg.indptr.write_u64(seg.nnz)?;
        if let Some(scan) = seg.scan.as_mut() {
            scan.end_row(self.cur_outer, self.cur_outer - seg.start);
        }
        self.cur_outer += 1;
        self.cur_last_inner = None;
        self.row_in_parts = false;
        if segment_full(seg, self.options.segment_bytes, seg.payload()) {
            self.close_segment()?;
        }
        Ok(())
    }

    fn ensure_segment(&mut self) -> Result<()> {
        if self.open.is_some() {
            return Ok(());
        }
        let name = segment_name(self.generation, self.segments.len());
        let seg_dir = self.dir.join(&name);
        fs::create_dir(&seg_dir).map_err(|e| Error::io(&seg_dir, "creating a segment directory", e))?;
        self.created_segment_dirs.push(seg_dir.clone());
        let io = self.chunk_io.as_mut().ok_or_else(|| Error::invalid("the writer's write thread has stopped"))?;
        let mut chunk = |array: &str| -> Result<ChunkFile> {
            let array_dir = seg_dir.join(array).join("c");
            fs::create_dir_all(&array_dir).map_err(|e| Error::io(&array_dir, "creating a segment directory", e))?;
            io.create(&seg_dir.join(array).join(paths::CHUNK))
        };
        let mut indptr = chunk(paths::INDPTR)?;
        indptr.write_u64(0)?;
        let indices = chunk(paths::INDICES)?;
        let values = if V::VALUE_TYPE == ValueType::Pattern { None } else { Some(chunk(paths::VALUES)?) };
        let scan = match self.options.dense {
            Some(d) if V::VALUE_TYPE != ValueType::Pattern => {
                Some(dense::DenseScan::new(d, self.cur_outer, self.inner_dim))
            }
            _ => None,
        };
        self.open =
            Some(OpenSegment { name, dir: seg_dir, start: self.cur_outer, nnz: 0, indptr, indices, values, scan });
        Ok(())
    }

    /// Finishes the open segment's chunks, writes its Zarr/Binsparse metadata, and records it.
    fn close_segment(&mut self) -> Result<()> {
        let Some(seg) = self.open.take() else { return Ok(()) };
        let OpenSegment { name, dir, start, nnz, indptr, indices, values, mut scan } = seg;
        let end = self.cur_outer;
        let band = end - start;
        // A segment that may hold dense blocks is read back and most likely rewritten: its chunks are
        // not fsynced now (if they stay, they are below).
        let candidates = has_dense_candidates(scan.as_mut(), band, nnz);
        let mut files = SegmentFiles {
            indptr: self.finish_chunk(indptr, !candidates)?,
            indices: self.finish_chunk(indices, !candidates)?,
            values: values.map(|v| self.finish_chunk(v, !candidates)).transpose()?,
        };
        let dense = match &scan {
            Some(scan) if candidates => self.rewrite_dense(&dir, band, nnz, scan, &mut files)?,
            _ => None,
        };
        let sparse_nnz = nnz - dense.as_ref().map_or(0, |d: &DenseEntry| d.nnz);
        let mut metadata = Vec::new();
        self.write_array_metadata(&dir, band, sparse_nnz, &mut metadata)?;
        if let Some(d) = &dense {
            self.write_dense_metadata(&dir, d, &mut metadata)?;
        }
        let group = segment_group_metadata(
            self.layout,
            self.shape,
            start,
            end,
            sparse_nnz,
            self.index_type,
            V::VALUE_TYPE,
            dense.as_ref(),
        );
        self.put_metadata(&dir, paths::ZARR_JSON, group.as_bytes(), &mut metadata)?;
        self.sync_segment_dirs(&dir, dense.is_some());
        let SegmentFiles { indptr, indices, values } = files;
        self.segments.push(SegmentEntry { name, start, end, nnz, indptr, indices, values, metadata, dense });
        Ok(())
    }

    /// Finishes a chunk of the open segment (the write thread fsyncs it after its last write when
    /// `fsync` and the writer is durable) and describes it; an empty chunk is removed (Zarr: an
    /// empty array has no chunk).
    fn finish_chunk(&self, w: ChunkFile, fsync: bool) -> Result<FileEntry> {
        let path = w.path().to_path_buf();
        let (bytes, hash) = w.finish_with(fsync)?;
        if bytes == 0 {
            fs::remove_file(&path).map_err(|e| Error::io(&path, "removing an empty chunk", e))?;
        }
        Ok(FileEntry { path: relative(&self.dir, &path), bytes, xxh3: format_checksum(hash) })
    }

    /// Reads a segment with dense-block candidates back and, when blocks pay, rewrites it as CSR
    /// arrays plus dense blocks: `files` then describe the new arrays, and the blocks' entry is
    /// returned. Otherwise the chunks stay as written and get the fsyncs [`finish_chunk`] skipped.
    ///
    /// [`finish_chunk`]: Self::finish_chunk
    fn rewrite_dense(
        &mut self,
        seg_dir: &Path,
        band: u64,
        nnz: u64,
        scan: &dense::DenseScan,
        files: &mut SegmentFiles,
    ) -> Result<Option<DenseEntry>> {
        let (Some(options), Some(v)) = (&self.options.dense, &files.values) else { return Ok(None) };
        // The chunks must be on disk before they are read back.
        if let Some(io) = &self.chunk_io {
            io.barrier()?;
        }
        let (ip, xp, vp) =
            (self.dir.join(&files.indptr.path), self.dir.join(&files.indices.path), self.dir.join(&v.path));
        let arrays = dense::SegmentArrays {
            dir: seg_dir,
            band,
            inner_dim: self.inner_dim,
            index_type: self.index_type,
            value_bytes: V::VALUE_TYPE.bytes() as usize,
            nnz,
            indptr: (&ip, files.indptr.bytes),
            indices: (&xp, files.indices.bytes),
            values: (&vp, v.bytes),
        };
        let io = self.chunk_io.as_mut().ok_or_else(|| Error::invalid("the writer's write thread has stopped"))?;
        let Some(x) = dense::extract(&arrays, &scan.candidates, options, io)? else {
            if let (true, Some(s)) = (self.options.durable, &self.syncer) {
                // Kept as written: the fsyncs skipped above.
                for f in [&ip, &xp, &vp] {
                    if f.exists() {
                        s.sync_path(f);
                    }
                }
            }
            return Ok(None);
        };
        let entry = |w: &dense::Written| FileEntry {
            path: relative(&self.dir, &w.path),
            bytes: w.bytes,
            xxh3: format_checksum(w.hash),
        };
        files.indptr = entry(&x.indptr);
        files.indices = entry(&x.indices);
        files.values = Some(entry(&x.values));
        Ok(Some(DenseEntry {
            block_shape: options.block_shape,
            blocks: x.blocks,
            nnz: x.dense_nnz,
            origins: entry(&x.origins),
            mask: entry(&x.mask),
            values: entry(&x.dense_values),
        }))
    }

    /// Writes the Zarr metadata of the CSR arrays (and a pattern matrix's one `true` value).
    fn write_array_metadata(
        &self,
        dir: &Path,
        band: u64,
        sparse_nnz: u64,
        metadata: &mut Vec<FileEntry>,
    ) -> Result<()> {
        let mut put = |name: &str, contents: &[u8]| self.put_metadata(dir, name, contents, metadata);
        put(&format!("{}/{}", paths::INDPTR, paths::ZARR_JSON), array_metadata(band + 1, "uint64").as_bytes())?;
        put(
            &format!("{}/{}", paths::INDICES, paths::ZARR_JSON),
            array_metadata(sparse_nnz, self.index_type.name()).as_bytes(),
        )?;
        if V::VALUE_TYPE == ValueType::Pattern {
            // Binsparse iso[bint8]: one `true` stands for every stored entry.
            fs::create_dir_all(dir.join(paths::VALUES).join("c"))
                .map_err(|e| Error::io(dir, "creating a segment directory", e))?;
            put(&format!("{}/{}", paths::VALUES, paths::ZARR_JSON), array_metadata(1, "bool").as_bytes())?;
            put(&format!("{}/{}", paths::VALUES, paths::CHUNK), &[1u8])?;
        } else {
            put(
                &format!("{}/{}", paths::VALUES, paths::ZARR_JSON),
                array_metadata(sparse_nnz, V::VALUE_TYPE.name()).as_bytes(),
            )?;
        }
        Ok(())
    }

    /// Writes the Zarr metadata of the dense blocks' group and arrays.
    fn write_dense_metadata(&self, dir: &Path, d: &DenseEntry, metadata: &mut Vec<FileEntry>) -> Result<()> {
        let mut put = |name: &str, contents: &[u8]| self.put_metadata(dir, name, contents, metadata);
        let [bo, bi] = d.block_shape;
        put(
            &format!("{}/{}", paths::DENSE, paths::ZARR_JSON),
            dense_group_metadata(self.layout, d.block_shape, d.blocks, d.nnz).as_bytes(),
        )?;
        put(
            &format!("{}/{}", paths::DENSE_ORIGINS, paths::ZARR_JSON),
            array_metadata_nd(&[d.blocks, 3], "uint64").as_bytes(),
        )?;
        put(
            &format!("{}/{}", paths::DENSE_MASK, paths::ZARR_JSON),
            array_metadata_nd(&[d.blocks, d.mask_words()], "uint64").as_bytes(),
        )?;
        put(
            &format!("{}/{}", paths::DENSE_VALUES, paths::ZARR_JSON),
            array_metadata_nd(&[d.blocks, bo, bi], V::VALUE_TYPE.name()).as_bytes(),
        )
    }

    /// Writes one metadata file of a segment (`name`, relative to its directory), queues its fsync on
    /// the fsync thread (durable writers: `finish` waits for it before publishing), and lists it
    /// with its checksum in `metadata`.
    fn put_metadata(&self, dir: &Path, name: &str, contents: &[u8], metadata: &mut Vec<FileEntry>) -> Result<()> {
        let path = dir.join(name);
        fs::write(&path, contents).map_err(|e| Error::io(&path, "writing segment metadata", e))?;
        if let (true, Some(s)) = (self.options.durable, &self.syncer) {
            s.sync_path(&path);
        }
        metadata.push(FileEntry {
            path: relative(&self.dir, &path),
            bytes: contents.len() as u64,
            xxh3: checksum_hex(contents),
        });
        Ok(())
    }

    /// Queues the fsyncs of a segment's directories (durable writers): each array's and its chunk
    /// directories, the dense group's, the segment's.
    fn sync_segment_dirs(&self, dir: &Path, has_dense: bool) {
        let (true, Some(s)) = (self.options.durable, &self.syncer) else { return };
        for array in [paths::INDPTR, paths::INDICES, paths::VALUES] {
            s.sync_path(&dir.join(array).join("c"));
            s.sync_path(&dir.join(array));
        }
        if has_dense {
            for array in [paths::DENSE_ORIGINS, paths::DENSE_MASK, paths::DENSE_VALUES] {
                let mut d = dir.join(array);
                s.sync_path(&d);
                // The chunk's directories: c, c/0 and (values) c/0/0.
                d.push("c");
                s.sync_path(&d);
                d.push("0");
                s.sync_path(&d);
                if array == paths::DENSE_VALUES {
                    d.push("0");
                    s.sync_path(&d);
                }
            }
            s.sync_path(&dir.join(paths::DENSE));
        }
        s.sync_path(dir);
    }

    /// Appends `counts.len()` outer indices at once from already encoded arrays: outer index `r`
    /// takes the next `counts[r]` inner indices of `index_bytes` (little-endian, of
    /// [`index_type`](Self::index_type)) and values of `value_bytes`. The same matrix, segment
    /// boundaries included, as [`push_row_encoded`](Self::push_row_encoded) row by row, but in a few
    /// large writes: for producers that compute many short rows (a banded product has millions of
    /// rows of a dozen entries, where per-row bookkeeping would cost as much as the bytes). Only
    /// sizes are checked, as there.
    pub(crate) fn push_rows_encoded(&mut self, counts: &[u64], index_bytes: &[u8], value_bytes: &[u8]) -> Result<()> {
        let (iw, vw) = (self.index_type.bytes(), V::VALUE_TYPE.bytes());
        let total: u64 = counts.iter().sum();
        if self.cur_last_inner.is_some() || self.cur_outer + counts.len() as u64 > self.outer_dim {
            return Err(Error::invalid("push_rows_encoded out of order"));
        }
        if index_bytes.len() as u64 != total * iw || value_bytes.len() as u64 != total * vw {
            return Err(Error::invalid("push_rows_encoded: array sizes do not match the counts"));
        }
        let mut pointers = std::mem::take(&mut self.scratch);
        let (mut r, mut at) = (0usize, 0u64);
        while r < counts.len() {
            self.ensure_segment()?;
            let seg = self.open.as_mut().expect("ensure_segment opened a segment");
            // Rows up to the one whose row pointer brings the payload to the bound, as close_outer
            // decides it row by row.
            let (first, from) = (r, at);
            let mut payload = seg.payload();
            let mut full = false;
            pointers.clear();
            while r < counts.len() && !full {
                if let Some(scan) = seg.scan.as_mut() {
                    scan.row_bytes(self.index_type, &index_bytes[(at * iw) as usize..((at + counts[r]) * iw) as usize]);
                    let outer = self.cur_outer + (r - first) as u64;
                    scan.end_row(outer, outer - seg.start);
                }
                at += counts[r];
                payload += 8 + counts[r] * (iw + vw);
                pointers.extend_from_slice(&(seg.nnz + at - from).to_le_bytes());
                full = segment_full(seg, self.options.segment_bytes, payload);
                r += 1;
            }
            seg.indices.write(&index_bytes[(from * iw) as usize..(at * iw) as usize])?;
            if let Some(values) = seg.values.as_mut() {
                values.write(&value_bytes[(from * vw) as usize..(at * vw) as usize])?;
            }
            seg.indptr.write(&pointers)?;
            seg.nnz += at - from;
            self.total_nnz += at - from;
            self.cur_outer += (r - first) as u64;
            if full {
                self.close_segment()?;
            }
        }
        self.scratch = pointers;
        Ok(())
    }
}

impl<V: Element> Drop for MatrixWriter<V> {
    fn drop(&mut self) {
        if self.published {
            return;
        }
        // Unfinished: leave nothing behind. Close file handles and stop writing first.
        self.open = None;
        self.chunk_io = None;
        if self.created_dir {
            remove_counted(&self.dir);
        } else {
            for dir in &self.created_segment_dirs {
                remove_counted(dir);
            }
            // The root group metadata this writer wrote belongs to no matrix if there is no manifest.
            if !self.dir.join(MANIFEST_FILE).exists() {
                remove_counted(&self.dir.join(paths::ZARR_JSON));
            }
        }
    }
}

/// Whether a segment of `payload` bytes closes at the current outer boundary: at the bound, unless the
/// boundary would cut a group of rows that may hold dense blocks (kept whole up to 4 times the bound).
fn segment_full(seg: &OpenSegment, bound: u64, payload: u64) -> bool {
    payload >= bound && (payload >= bound.saturating_mul(4) || !seg.scan.as_ref().is_some_and(|s| s.holds_candidate()))
}

/// Refuses a matrix whose row pointers alone would not fit in the free space of the filesystem that
/// is to hold `dir`: they take 8 bytes per outer index, whatever the entries, so a matrix whose outer
/// dimension comes from one stray huge id (hashed node ids in an edge list) or an absurd header would
/// fill the disk before failing. Producers that know the shape early (an import with a Matrix Market
/// size line) call it before reading any input.
///
/// # Errors
///
/// [`Error::InvalidInput`] saying how much the row pointers need and how much is free.
pub(crate) fn check_pointer_space(dir: &Path, shape: (u64, u64), layout: Layout) -> Result<()> {
    let (outer_dim, _) = layout.outer_inner(shape);
    let pointer_bytes = outer_dim.saturating_add(1).saturating_mul(8);
    if let Some(free) = crate::storage::free_space(dir) {
        if pointer_bytes > free {
            return Err(Error::invalid(format!(
                "a {} x {} {} matrix needs {} for its row pointers alone, but the filesystem holding {} has {} free; \
                 if the indices are sparse ids (hashed vertex ids), relabel them densely; or store the other layout",
                shape.0,
                shape.1,
                layout,
                crate::units::format_bytes(pointer_bytes),
                dir.display(),
                crate::units::format_bytes(free)
            )));
        }
    }
    Ok(())
}
