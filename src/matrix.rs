//! An opened matrix: the manifest, cheap accessors, segment mapping, the full `verify`, and conversion
//! to sprs for matrices that fit in memory.

use crate::element::match_indices;
use crate::error::{Error, Result};
use crate::format::{checksum_hex, FileEntry, IndexType, Layout, Manifest, SegmentEntry, ValueType, MANIFEST_FILE};
use crate::segment::MappedSegment;
use crate::storage::MappedFile;
use rayon::prelude::*;
use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};

/// A sparse matrix stored on disk. Cheap to open and to clone; holds no array data itself.
///
/// Segments are mapped on demand ([`map_segment`](Matrix::map_segment)) and unmapped when the
/// [`MappedSegment`] is dropped, so the caller decides how much of the matrix is mapped at once.
///
/// # Examples
///
/// ```
/// use sparsedisk::{generators, Matrix, WriterOptions, Layout};
/// # let tmp = tempfile::tempdir().unwrap();
/// # let dir = tmp.path().join("lap");
/// generators::generate::<f64>(&generators::Generator::Laplace2d { n: 10 }, &dir, Layout::Csr, WriterOptions::default())?;
/// let m = Matrix::open(&dir)?;
/// assert_eq!(m.shape(), (100, 100));
/// assert_eq!(m.nnz(), 460);
/// m.verify()?;
/// # Ok::<(), sparsedisk::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Matrix {
    dir: PathBuf,
    manifest: Manifest,
    /// The shared lock on this generation's reader lock file, held while any clone of the matrix
    /// lives, so that a writer replacing the matrix keeps this generation's files until it is
    /// dropped (see `docs/FORMAT.md`, "Concurrent readers"). `None` where locks are unavailable.
    _reader_lock: Option<std::sync::Arc<fs::File>>,
}

/// What [`Matrix::verify`] checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Segments checked.
    pub segments: usize,
    /// Files whose checksums matched.
    pub files: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// Entries whose structure was checked.
    pub nnz: u64,
}

/// A summary of a matrix, as `sparsedisk info` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatrixInfo {
    /// Directory of the matrix.
    pub path: String,
    /// Number of rows.
    pub rows: u64,
    /// Number of columns.
    pub cols: u64,
    /// Stored entries.
    pub nnz: u64,
    /// CSR or CSC.
    pub layout: Layout,
    /// Type of the values.
    pub value_type: ValueType,
    /// Type of the inner indices.
    pub index_type: IndexType,
    /// Format version.
    pub format_version: u64,
    /// Rewrite generation.
    pub generation: u64,
    /// Number of segments.
    pub segments: usize,
    /// Fewest entries in a segment.
    pub segment_nnz_min: u64,
    /// Most entries in a segment.
    pub segment_nnz_max: u64,
    /// Largest segment payload (indptr + indices + values) in bytes.
    pub segment_payload_max: u64,
    /// Bytes of the array chunks.
    pub payload_bytes: u64,
    /// Bytes of every file of the matrix (chunks, metadata, manifest).
    pub bytes_on_disk: u64,
    /// `bytes_on_disk / nnz` (0 for an empty matrix).
    pub bytes_per_nonzero: f64,
    /// `nnz / (rows * cols)`.
    pub density: f64,
    /// Dense blocks in all segments.
    pub dense_blocks: u64,
    /// Entries stored in dense blocks.
    pub dense_nnz: u64,
    /// `dense_nnz / nnz` (0 for an empty matrix).
    pub dense_nnz_share: f64,
}

impl Matrix {
    /// Opens the matrix in `dir`: reads and checks the manifest, and checks that every listed file
    /// exists with its listed size. Maps nothing, reads no array data. Never panics on bad bytes.
    ///
    /// # Errors
    ///
    /// [`Error::NotAMatrix`] when `dir` is missing or holds no manifest (the message points at the
    /// matrices inside a `--layout both` directory); [`Error::Io`] when the manifest cannot be read,
    /// [`Error::Corrupt`] /
    /// [`Error::ChecksumMismatch`] when it or a file's size is wrong, [`Error::UnsupportedVersion`]
    /// for a newer format.
    pub fn open(dir: impl AsRef<Path>) -> Result<Matrix> {
        let dir = dir.as_ref().to_path_buf();
        let manifest_path = dir.join(MANIFEST_FILE);
        let read_manifest = || {
            fs::read(&manifest_path).map_err(|e| match e.kind() {
                _ if !dir.is_dir() => not_a_matrix(&dir),
                std::io::ErrorKind::NotFound => not_a_matrix(&dir),
                _ => Error::io(&manifest_path, "reading the manifest", e),
            })
        };
        // Lock, then validate: the generation read first is locked, and the manifest read again; if a
        // writer published another generation in between (and may be deleting this one), start over.
        let mut bytes = read_manifest()?;
        let mut attempts = 0;
        let (manifest, lock) = loop {
            let manifest = Manifest::from_json_bytes(&bytes, &manifest_path)?;
            let lock = crate::directory::lock_generation_shared(&dir, manifest.generation);
            let again = read_manifest()?;
            attempts += 1;
            if again == bytes || lock.is_none() || attempts >= 100 {
                break (manifest, lock);
            }
            bytes = again;
        };
        for seg in &manifest.segments {
            for file in seg.files() {
                check_size(&dir, file)?;
            }
        }
        Ok(Matrix { dir, manifest, _reader_lock: lock.map(std::sync::Arc::new) })
    }

    /// The matrix directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (u64, u64) {
        (self.manifest.shape[0], self.manifest.shape[1])
    }

    /// Number of rows.
    pub fn rows(&self) -> u64 {
        self.manifest.shape[0]
    }

    /// Number of columns.
    pub fn cols(&self) -> u64 {
        self.manifest.shape[1]
    }

    /// Stored entries (explicit zeros included).
    pub fn nnz(&self) -> u64 {
        self.manifest.nnz
    }

    /// CSR or CSC.
    pub fn layout(&self) -> Layout {
        self.manifest.layout
    }

    /// Type of the stored values.
    pub fn value_type(&self) -> ValueType {
        self.manifest.value_type
    }

    /// Width of the stored inner indices.
    pub fn index_type(&self) -> IndexType {
        self.manifest.index_type
    }

    /// The segments as the manifest lists them, in outer order.
    pub fn segments(&self) -> &[SegmentEntry] {
        &self.manifest.segments
    }

    /// Maps segment `index`'s arrays.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::Corrupt`] when a file cannot be mapped or changed size since `open`.
    ///
    /// # Panics
    ///
    /// When `index >= self.segments().len()`.
    pub fn map_segment(&self, index: usize) -> Result<MappedSegment> {
        let m = &self.manifest;
        MappedSegment::map(&self.dir, &m.segments[index], m.layout, self.shape(), m.index_type, m.value_type)
    }

    /// Iterates the segments in order, mapping each as it is reached; each is unmapped when the
    /// caller drops it, so a sequential scan holds one segment at a time.
    pub fn segments_mapped(&self) -> impl Iterator<Item = Result<MappedSegment>> + '_ {
        (0..self.manifest.segments.len()).map(move |i| self.map_segment(i))
    }

    /// The full O(nnz) check: every file's checksum, and every segment's structure (see
    /// [`MappedSegment::check_structure`]). Segments are checked in parallel on the ambient rayon
    /// pool; the error reported is that of the first bad segment in order.
    ///
    /// # Errors
    ///
    /// [`Error::ChecksumMismatch`] or [`Error::Corrupt`] naming the file and what is wrong.
    pub fn verify(&self) -> Result<VerifyReport> {
        let per_segment: Vec<Result<(usize, u64)>> =
            (0..self.manifest.segments.len()).into_par_iter().map(|i| self.verify_segment(i)).collect();
        let mut report = VerifyReport { segments: 0, files: 0, bytes: 0, nnz: self.nnz() };
        for r in per_segment {
            let (files, bytes) = r?;
            report.segments += 1;
            report.files += files;
            report.bytes += bytes;
        }
        Ok(report)
    }

    fn verify_segment(&self, index: usize) -> Result<(usize, u64)> {
        let entry = &self.manifest.segments[index];
        let mut files = 0;
        let mut bytes = 0;
        for file in entry.files() {
            let path = self.dir.join(&file.path);
            let mapped = MappedFile::open(&path, file.bytes)?;
            mapped.advise(memmap2::Advice::Sequential);
            let actual = checksum_hex(mapped.bytes());
            if actual != file.xxh3 {
                return Err(Error::ChecksumMismatch { path, expected: file.xxh3.clone(), actual });
            }
            files += 1;
            bytes += file.bytes;
        }
        self.map_segment(index)?.check_structure()?;
        Ok((files, bytes))
    }

    /// Bytes of every file of the matrix: chunks, metadata, manifest and root group metadata.
    pub fn bytes_on_disk(&self) -> u64 {
        let listed: u64 = self.manifest.segments.iter().flat_map(|s| s.files()).map(|f| f.bytes).sum();
        let own = [MANIFEST_FILE, "zarr.json"]
            .iter()
            .filter_map(|f| fs::metadata(self.dir.join(f)).ok())
            .map(|m| m.len())
            .sum::<u64>();
        listed + own
    }

    /// A summary: shape, nnz, types, segments, bytes on disk, bytes per nonzero.
    pub fn info(&self) -> MatrixInfo {
        let segs = &self.manifest.segments;
        let bytes_on_disk = self.bytes_on_disk();
        let (rows, cols) = self.shape();
        let cells = rows as f64 * cols as f64;
        let dense_nnz: u64 = segs.iter().filter_map(|s| s.dense.as_ref()).map(|d| d.nnz).sum();
        MatrixInfo {
            path: self.dir.display().to_string(),
            rows,
            cols,
            nnz: self.nnz(),
            layout: self.layout(),
            value_type: self.value_type(),
            index_type: self.index_type(),
            format_version: self.manifest.format_version,
            generation: self.manifest.generation,
            segments: segs.len(),
            segment_nnz_min: segs.iter().map(|s| s.nnz).min().unwrap_or(0),
            segment_nnz_max: segs.iter().map(|s| s.nnz).max().unwrap_or(0),
            segment_payload_max: segs.iter().map(SegmentEntry::payload_bytes).max().unwrap_or(0),
            payload_bytes: segs.iter().map(SegmentEntry::payload_bytes).sum(),
            bytes_on_disk,
            bytes_per_nonzero: if self.nnz() == 0 { 0.0 } else { bytes_on_disk as f64 / self.nnz() as f64 },
            density: if cells == 0.0 { 0.0 } else { self.nnz() as f64 / cells },
            dense_blocks: segs.iter().filter_map(|s| s.dense.as_ref()).map(|d| d.blocks).sum(),
            dense_nnz,
            dense_nnz_share: if self.nnz() == 0 { 0.0 } else { dense_nnz as f64 / self.nnz() as f64 },
        }
    }

    /// Reads the whole matrix into an in-memory sprs matrix with `f64` values (pattern entries are
    /// 1), CSR or CSC as stored. For matrices that fit in memory. Checks each segment's structure
    /// while copying.
    ///
    /// # Errors
    ///
    /// As [`map_segment`](Matrix::map_segment) and [`MappedSegment::check_structure`];
    /// [`Error::InvalidInput`] when the matrix cannot be addressed with `usize` on this platform.
    pub fn to_sprs(&self) -> Result<sprs::CsMat<f64>> {
        let too_big = || Error::invalid("matrix too large to hold in memory on this platform");
        let (rows, cols) = self.shape();
        let (rows, cols) =
            (usize::try_from(rows).map_err(|_| too_big())?, usize::try_from(cols).map_err(|_| too_big())?);
        let nnz = usize::try_from(self.nnz()).map_err(|_| too_big())?;
        let (outer, _) = self.layout().outer_inner(self.shape());
        let mut indptr = Vec::with_capacity(outer as usize + 1);
        let mut indices = Vec::with_capacity(nnz);
        let mut data = Vec::with_capacity(nnz);
        indptr.push(0usize);
        for seg in crate::scan::scan(self) {
            let seg = seg?;
            seg.check_structure()?;
            let base = indices.len();
            indptr.extend(seg.indptr()[1..].iter().map(|&p| base + p as usize));
            match_indices!(seg.indices(), |ix| indices.extend(ix.iter().map(|&i| i as usize)));
            seg.values().extend_into(0..indices.len() - base, &mut data);
        }
        let built = match self.layout() {
            Layout::Csr => sprs::CsMat::try_new((rows, cols), indptr, indices, data),
            Layout::Csc => sprs::CsMat::try_new_csc((rows, cols), indptr, indices, data),
        };
        built.map_err(|(_, _, _, e)| Error::corrupt(&self.dir, format!("not a valid sparse matrix: {e}")))
    }
}

fn check_size(dir: &Path, file: &FileEntry) -> Result<()> {
    let path = dir.join(&file.path);
    match fs::metadata(&path) {
        Ok(m) if m.len() == file.bytes => Ok(()),
        Ok(m) => Err(Error::corrupt(&path, format!("file has {} bytes, the manifest lists {}", m.len(), file.bytes))),
        // The format does not write empty chunks.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.bytes == 0 => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::corrupt(&path, "file listed in the manifest is missing"))
        }
        Err(e) => Err(Error::io(&path, "reading file metadata", e)),
    }
}

/// Why `dir`, which has no manifest, is not a matrix, and where the user may have meant.
fn not_a_matrix(dir: &Path) -> Error {
    let what = if !dir.exists() {
        "no such directory".to_string()
    } else if !dir.is_dir() {
        "it is a file, not a matrix directory".to_string()
    } else {
        let inner: Vec<String> = ["csr", "csc"]
            .iter()
            .filter(|name| dir.join(name).join(MANIFEST_FILE).is_file())
            .map(|name| dir.join(name).display().to_string())
            .collect();
        let debris = fs::read_dir(dir).map(|entries| {
            entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with(crate::directory::STAGING_PREFIX))
        });
        if !inner.is_empty() {
            format!(
                "it holds the {} matrices {} (import --layout both): open one of those",
                inner.len(),
                inner.join(" and ")
            )
        } else if debris.unwrap_or(false) {
            "it holds only the leftovers of a write that did not finish (no manifest.json)".to_string()
        } else {
            "it has no manifest.json".to_string()
        }
    };
    Error::NotAMatrix { path: dir.to_path_buf(), what }
}
