//! The manifest: its Rust form, its canonical checksum, and every check that needs no array data.

use super::canonical::to_canonical_string;
use super::{checksum_hex, IndexType, Layout, ValueType, FORMAT_VERSION};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Component, Path};

/// File name of the manifest inside a matrix directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Largest dimension accepted: indices must fit in an `i64` so that every consumer (numpy, Java,
/// Parquet) can hold them.
const MAX_DIM: u64 = i64::MAX as u64;

/// A file listed by the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the matrix directory.
    pub path: String,
    /// Exact size in bytes.
    pub bytes: u64,
    /// xxh3-64 of the contents, 16 lower-case hex digits.
    pub xxh3: String,
}

/// One segment as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// Directory name of the segment.
    pub name: String,
    /// First outer index (row for CSR, column for CSC) of the band.
    pub start: u64,
    /// One past the last outer index of the band.
    pub end: u64,
    /// Stored entries in the segment.
    pub nnz: u64,
    /// The row-pointer chunk (`end - start + 1` little-endian u64).
    pub indptr: FileEntry,
    /// The inner-index chunk (`nnz` indices of the manifest's `index_type`).
    pub indices: FileEntry,
    /// The value chunk (`nnz` values); `None` for pattern matrices.
    pub values: Option<FileEntry>,
    /// The segment's other files (Zarr metadata, the pattern iso value).
    pub metadata: Vec<FileEntry>,
    /// The segment's dense blocks, when it has any (format version 2; see `docs/FORMAT.md`, "Dense
    /// blocks"). `nnz` counts their entries too; the CSR arrays hold the other `nnz - dense.nnz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dense: Option<DenseEntry>,
}

/// The dense blocks of a segment, as the manifest lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenseEntry {
    /// `[outer, inner]` extent of every block (the last block of a band or of the inner dimension
    /// is clipped: its positions outside the matrix are zero and unmarked).
    pub block_shape: [u64; 2],
    /// Number of blocks.
    pub blocks: u64,
    /// Stored entries the blocks hold (set bits of the masks).
    pub nnz: u64,
    /// `blocks x 3` little-endian u64: each block's outer offset within the band, its inner offset,
    /// and its entry count.
    pub origins: FileEntry,
    /// `blocks x words` little-endian u64, `words = ceil(outer * inner / 64)`: bit `p % 64` of word
    /// `p / 64` is set when position `p = o * inner + i` of the block holds a stored entry.
    pub mask: FileEntry,
    /// `blocks x outer x inner` values of the manifest's `value_type`, row-major by outer index;
    /// zero where the mask is clear.
    pub values: FileEntry,
}

impl DenseEntry {
    /// 64-bit mask words per block.
    pub fn mask_words(&self) -> u64 {
        (self.block_shape[0] * self.block_shape[1]).div_ceil(64)
    }

    /// Positions per block.
    pub fn block_len(&self) -> u64 {
        self.block_shape[0] * self.block_shape[1]
    }
}

impl SegmentEntry {
    /// Every file of the segment: arrays first, then metadata.
    pub fn files(&self) -> impl Iterator<Item = &FileEntry> {
        [&self.indptr, &self.indices]
            .into_iter()
            .chain(self.values.as_ref())
            .chain(self.dense.iter().flat_map(|d| [&d.origins, &d.mask, &d.values]))
            .chain(self.metadata.iter())
    }

    /// Bytes of the segment's arrays (row pointers, indices, values, dense blocks): what a full pass
    /// reads.
    pub fn payload_bytes(&self) -> u64 {
        self.indptr.bytes
            + self.indices.bytes
            + self.values.as_ref().map_or(0, |v| v.bytes)
            + self.dense.as_ref().map_or(0, |d| d.origins.bytes + d.mask.bytes + d.values.bytes)
    }

    /// Entries stored in the CSR arrays (the segment's `nnz` less its dense blocks').
    pub fn sparse_nnz(&self) -> u64 {
        self.nnz - self.dense.as_ref().map_or(0, |d| d.nnz.min(self.nnz))
    }

    /// Number of outer indices (rows or columns) in the band.
    pub fn outer_len(&self) -> u64 {
        self.end - self.start
    }
}

/// The parsed `manifest.json` of a matrix directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `"sparsedisk"`.
    pub format: String,
    /// Format version.
    pub format_version: u64,
    /// Rewrite counter; segment names carry it.
    pub generation: u64,
    /// `[rows, cols]`.
    pub shape: [u64; 2],
    /// Stored entries.
    pub nnz: u64,
    /// CSR or CSC.
    pub layout: Layout,
    /// Type of the stored values.
    pub value_type: ValueType,
    /// Type of the stored inner indices.
    pub index_type: IndexType,
    /// The segments, in outer order.
    pub segments: Vec<SegmentEntry>,
}

impl Manifest {
    /// Serialise to the bytes of `manifest.json`, with its checksum member.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let mut value = serde_json::to_value(self).expect("a manifest always serialises");
        let checksum = checksum_hex(to_canonical_string(&value).as_bytes());
        value
            .as_object_mut()
            .expect("a manifest serialises to an object")
            .insert("checksum".to_string(), serde_json::Value::String(checksum));
        let mut bytes = serde_json::to_vec_pretty(&value).expect("a JSON value always serialises");
        bytes.push(b'\n');
        bytes
    }

    /// Parse and check the bytes of `manifest.json` (read from `path`, which only names it in errors).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] when the JSON is malformed, the checksum does not match, or any invariant of
    /// the format that needs no array data is broken; [`Error::UnsupportedVersion`] for a newer format.
    pub fn from_json_bytes(bytes: &[u8], path: &Path) -> Result<Manifest> {
        let mut value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt(path, format!("manifest is not valid JSON: {e}")))?;
        let object = value.as_object_mut().ok_or_else(|| Error::corrupt(path, "manifest is not a JSON object"))?;
        if object.get("format").and_then(|f| f.as_str()) != Some("sparsedisk") {
            return Err(Error::corrupt(path, "not a sparsedisk manifest (member \"format\" is not \"sparsedisk\")"));
        }
        if let Some(version) = object.get("format_version").and_then(|v| v.as_u64()) {
            if version > FORMAT_VERSION {
                return Err(Error::UnsupportedVersion {
                    path: path.to_path_buf(),
                    found: version,
                    supported: FORMAT_VERSION,
                });
            }
        }
        let recorded = match object.remove("checksum") {
            Some(serde_json::Value::String(s)) => s,
            _ => return Err(Error::corrupt(path, "manifest has no \"checksum\" string")),
        };
        let actual = checksum_hex(to_canonical_string(&value).as_bytes());
        if recorded != actual {
            return Err(Error::ChecksumMismatch { path: path.to_path_buf(), expected: recorded, actual });
        }
        let manifest: Manifest = serde_json::from_value(value)
            .map_err(|e| Error::corrupt(path, format!("manifest does not follow the format: {e}")))?;
        manifest.check(path)?;
        Ok(manifest)
    }

    /// Check every invariant of the format that needs no array data.
    fn check(&self, path: &Path) -> Result<()> {
        let bad = |what: String| Err(Error::corrupt(path, what));
        if self.format_version == 0 {
            return bad("format_version 0 does not exist".into());
        }
        if self.generation == 0 {
            return bad("generation 0 does not exist (generations start at 1)".into());
        }
        let [rows, cols] = self.shape;
        if rows > MAX_DIM || cols > MAX_DIM {
            return bad(format!("shape {rows} x {cols} exceeds the largest supported dimension 2^63 - 1"));
        }
        let (outer, inner) = self.layout.outer_inner((rows, cols));
        if self.index_type == IndexType::Uint32 && inner > 1 << 32 {
            return bad(format!("uint32 indices cannot address an inner dimension of {inner}"));
        }
        let mut next_start = 0u64;
        let mut total_nnz = 0u64;
        for (i, seg) in self.segments.iter().enumerate() {
            let what = |msg: String| format!("segment {i} ({}): {msg}", seg.name);
            if seg.start != next_start {
                return bad(what(format!("starts at {} where the previous segment ended at {next_start}", seg.start)));
            }
            if seg.end <= seg.start || seg.end > outer {
                return bad(what(format!(
                    "band {}..{} is empty or exceeds the outer dimension {outer}",
                    seg.start, seg.end
                )));
            }
            next_start = seg.end;
            total_nnz = match total_nnz.checked_add(seg.nnz) {
                Some(n) => n,
                None => return bad(what("nnz overflows".into())),
            };
            // Expected array sizes follow from the band and nnz; checked arithmetic so hostile numbers
            // give an error rather than an overflow.
            if let Some(dense) = &seg.dense {
                check_dense(dense, seg, self, inner).map_err(|msg| Error::corrupt(path, what(msg)))?;
            }
            let sparse_nnz = seg.sparse_nnz();
            let sizes = (seg.end - seg.start)
                .checked_add(1)
                .and_then(|n| n.checked_mul(8))
                .zip(sparse_nnz.checked_mul(self.index_type.bytes()))
                .zip(sparse_nnz.checked_mul(self.value_type.bytes()));
            let ((indptr_bytes, indices_bytes), values_bytes) = match sizes {
                Some(s) => s,
                None => return bad(what("array sizes overflow".into())),
            };
            if seg.indptr.bytes != indptr_bytes {
                return bad(what(format!(
                    "indptr is listed with {} bytes, the band needs {indptr_bytes}",
                    seg.indptr.bytes
                )));
            }
            if seg.indices.bytes != indices_bytes {
                return bad(what(format!(
                    "indices are listed with {} bytes, {sparse_nnz} entries need {indices_bytes}",
                    seg.indices.bytes
                )));
            }
            match (&seg.values, self.value_type) {
                (None, ValueType::Pattern) => {}
                (Some(v), t) if t != ValueType::Pattern => {
                    if v.bytes != values_bytes {
                        return bad(what(format!(
                            "values are listed with {} bytes, {sparse_nnz} entries need {values_bytes}",
                            v.bytes
                        )));
                    }
                }
                (Some(_), _) => return bad(what("a pattern matrix lists a value array".into())),
                (None, _) => return bad(what("value array missing".into())),
            }
            for file in seg.files() {
                check_relative_path(&file.path).map_err(|msg| Error::corrupt(path, what(msg)))?;
                if file.xxh3.len() != 16 || !file.xxh3.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return bad(what(format!("{}: checksum {:?} is not 16 hex digits", file.path, file.xxh3)));
                }
            }
        }
        if next_start != outer {
            return bad(format!("segments cover outer indices 0..{next_start}, the matrix has {outer}"));
        }
        if total_nnz != self.nnz {
            return bad(format!("segments hold {total_nnz} entries, the manifest says nnz = {}", self.nnz));
        }
        Ok(())
    }
}

/// Largest extent of a dense block in either dimension: blocks are cache-sized tiles, and a bound keeps
/// hostile manifests from declaring blocks whose size computations overflow.
pub const MAX_DENSE_BLOCK_EXTENT: u64 = 4096;

/// The checks of a segment's dense blocks that need no array data.
fn check_dense(dense: &DenseEntry, seg: &SegmentEntry, m: &Manifest, inner: u64) -> std::result::Result<(), String> {
    if m.format_version < 2 {
        return Err(format!("dense blocks need format version 2, the manifest says {}", m.format_version));
    }
    if m.value_type == ValueType::Pattern {
        return Err("a pattern matrix cannot have dense blocks (they store values)".into());
    }
    let [bo, bi] = dense.block_shape;
    if !(1..=MAX_DENSE_BLOCK_EXTENT).contains(&bo) || !(1..=MAX_DENSE_BLOCK_EXTENT).contains(&bi) {
        return Err(format!("dense block shape {bo} x {bi} is outside 1..={MAX_DENSE_BLOCK_EXTENT}"));
    }
    if dense.nnz > seg.nnz {
        return Err(format!("dense blocks hold {} entries, more than the segment's {}", dense.nnz, seg.nnz));
    }
    // Every block lies at its own grid position inside the band and the inner dimension.
    let grid = seg.outer_len().div_ceil(bo).checked_add(1).and_then(|r| r.checked_mul(inner.div_ceil(bi)));
    if grid.is_some_and(|g| dense.blocks > g) {
        return Err(format!("{} dense blocks do not fit in the band", dense.blocks));
    }
    if dense.nnz > dense.blocks.saturating_mul(dense.block_len()) {
        return Err(format!("{} dense blocks cannot hold {} entries", dense.blocks, dense.nnz));
    }
    let expect = |f: &FileEntry, what: &str, per_block: u64| -> std::result::Result<(), String> {
        match dense.blocks.checked_mul(per_block) {
            Some(b) if b == f.bytes => Ok(()),
            _ => Err(format!(
                "dense {what} are listed with {} bytes, {} blocks need {} each",
                f.bytes, dense.blocks, per_block
            )),
        }
    };
    expect(&dense.origins, "origins", 24)?;
    expect(&dense.mask, "masks", dense.mask_words() * 8)?;
    expect(&dense.values, "values", dense.block_len() * m.value_type.bytes())
}

/// A listed path must stay inside the matrix directory: relative, plain components only.
fn check_relative_path(p: &str) -> std::result::Result<(), String> {
    let path = Path::new(p);
    if p.is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(format!("file path {p:?} is not a plain relative path inside the matrix directory"));
    }
    Ok(())
}
