//! The on-disk format in code: a matrix is a directory holding a manifest (`manifest.json`, the
//! commit point) and segments, each a band of rows (CSR) or columns (CSC) stored as a Binsparse
//! matrix in a Zarr v3 group, with optional dense blocks (format version 2).
//!
//! The specification, for readers and writers in any language, is `docs/FORMAT.md` in the
//! repository: the manifest's members and checksum, the segment directories, the Zarr and Binsparse
//! metadata, arrays and types, dense blocks, versions, the commit protocol and locks, and what readers
//! must check. This module is its executable form: the manifest's types and the checks that need no
//! array data ([`Manifest::from_json_bytes`]), its canonical checksum, the version constants, the
//! names of segment directories, and the Zarr/Binsparse documents the writer writes.

mod canonical;
mod manifest;
mod zarr;

pub use manifest::{DenseEntry, FileEntry, Manifest, SegmentEntry, MANIFEST_FILE, MAX_DENSE_BLOCK_EXTENT};
pub(crate) use zarr::{
    array_metadata, array_metadata_nd, dense_group_metadata, root_group_metadata, segment_group_metadata,
};

use serde::{Deserialize, Serialize};
use std::fmt;

/// The newest format version this build writes and reads.
pub const FORMAT_VERSION: u64 = 2;

/// The version written for a matrix without dense blocks: such a matrix is exactly a version 1
/// matrix, so readers that know only version 1 still open it.
pub const FORMAT_VERSION_PLAIN: u64 = 1;

/// Name of the Binsparse descriptor's version written into every segment.
pub const BINSPARSE_VERSION: &str = "0.1.0";

/// Compute the xxh3-64 checksum of `bytes` as 16 lower-case hex digits, as the manifest records it.
pub fn checksum_hex(bytes: &[u8]) -> String {
    format_checksum(xxhash_rust::xxh3::xxh3_64(bytes))
}

/// Format a 64-bit checksum as the manifest records it.
pub fn format_checksum(hash: u64) -> String {
    format!("{hash:016x}")
}

/// How the matrix is cut into segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Compressed sparse rows: segments are bands of rows, indices are columns.
    Csr,
    /// Compressed sparse columns: segments are bands of columns, indices are rows.
    Csc,
}

impl Layout {
    /// `(outer, inner)` dimensions of a matrix of `shape` in this layout.
    pub fn outer_inner(self, shape: (u64, u64)) -> (u64, u64) {
        match self {
            Layout::Csr => (shape.0, shape.1),
            Layout::Csc => (shape.1, shape.0),
        }
    }

    /// `(row, col)` of the entry at `(outer, inner)`.
    pub fn row_col(self, outer: u64, inner: u64) -> (u64, u64) {
        match self {
            Layout::Csr => (outer, inner),
            Layout::Csc => (inner, outer),
        }
    }

    /// The Binsparse format name of a segment in this layout.
    pub fn binsparse_format(self) -> &'static str {
        match self {
            Layout::Csr => "CSR",
            Layout::Csc => "CSC",
        }
    }

    /// Lower-case name, as in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Csr => "csr",
            Layout::Csc => "csc",
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The type of the stored values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// IEEE-754 binary64.
    Float64,
    /// IEEE-754 binary32.
    Float32,
    /// Signed 64-bit integers.
    Int64,
    /// No values: every stored entry is 1 (a graph's adjacency structure).
    Pattern,
}

impl ValueType {
    /// Bytes per stored value (0 for pattern).
    pub fn bytes(self) -> u64 {
        match self {
            ValueType::Float64 | ValueType::Int64 => 8,
            ValueType::Float32 => 4,
            ValueType::Pattern => 0,
        }
    }

    /// The name used in the manifest, in Binsparse and in Zarr (`pattern` is Binsparse `iso[bint8]`).
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Float64 => "float64",
            ValueType::Float32 => "float32",
            ValueType::Int64 => "int64",
            ValueType::Pattern => "pattern",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Width of the stored inner indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexType {
    /// Unsigned 32-bit indices: inner dimension at most 2^32.
    Uint32,
    /// Unsigned 64-bit indices.
    Uint64,
}

impl IndexType {
    /// The type writers choose for an inner dimension: `uint32` when the dimension itself fits in a
    /// u32 (so that sprs views, which need the dimension in the index type, work), else `uint64`.
    pub fn for_inner_dim(inner_dim: u64) -> IndexType {
        if inner_dim <= u32::MAX as u64 {
            IndexType::Uint32
        } else {
            IndexType::Uint64
        }
    }

    /// Bytes per index.
    pub fn bytes(self) -> u64 {
        match self {
            IndexType::Uint32 => 4,
            IndexType::Uint64 => 8,
        }
    }

    /// The name used in the manifest, Binsparse and Zarr.
    pub fn name(self) -> &'static str {
        match self {
            IndexType::Uint32 => "uint32",
            IndexType::Uint64 => "uint64",
        }
    }
}

impl fmt::Display for IndexType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Name of the directory of segment `index` of `generation`.
pub fn segment_name(generation: u64, index: usize) -> String {
    format!("seg_{generation}_{index:06}")
}

/// The generation a segment directory name belongs to, if `name` is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("seg_")?;
    let (generation, index) = rest.split_once('_')?;
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    generation.parse().ok()
}

/// Relative paths of a segment's array chunks and metadata files, as the writer lays them out.
pub(crate) mod paths {
    /// The row-pointer array's name in Binsparse.
    pub const INDPTR: &str = "pointers_to_1";
    /// The inner-index array's name in Binsparse.
    pub const INDICES: &str = "indices_1";
    /// The value array's name in Binsparse.
    pub const VALUES: &str = "values";
    /// Zarr v3 metadata file name.
    pub const ZARR_JSON: &str = "zarr.json";
    /// The single chunk of a one-chunk 1-D array under the default chunk key encoding.
    pub const CHUNK: &str = "c/0";
    /// The Zarr group of a segment's dense blocks.
    pub const DENSE: &str = "dense";
    /// The dense blocks' origins array (2-D), inside [`DENSE`].
    pub const DENSE_ORIGINS: &str = "dense/origins";
    /// The dense blocks' mask array (2-D), inside [`DENSE`].
    pub const DENSE_MASK: &str = "dense/mask";
    /// The dense blocks' values array (3-D), inside [`DENSE`].
    pub const DENSE_VALUES: &str = "dense/values";
    /// The single chunk of a one-chunk 2-D array.
    pub const CHUNK_2D: &str = "c/0/0";
    /// The single chunk of a one-chunk 3-D array.
    pub const CHUNK_3D: &str = "c/0/0/0";
}
