//! The on-disk format: a matrix is a directory.
//!
//! This module is the specification. Everything a reader needs to open a sparsedisk matrix, in any
//! language, is written here; the Rust types below are its executable form. Version 2: version 1
//! plus optional dense blocks in segments (see "Dense blocks"); a matrix without dense blocks is
//! written as version 1.
//!
//! # Overview
//!
//! ```text
//! MATRIX_DIR/
//! ├── manifest.json                  the single commit point: what the matrix is and which files make it
//! ├── zarr.json                      Zarr v3 group metadata of the directory itself (constant content)
//! ├── seg_1_000000/                  segment 0 of generation 1: a Binsparse CSR (or CSC) Zarr v3 group
//! │   ├── zarr.json                  group metadata: {"binsparse": descriptor, "sparsedisk": placement}
//! │   ├── pointers_to_1/zarr.json    Zarr array metadata (uint64, one chunk)
//! │   ├── pointers_to_1/c/0          the chunk: raw little-endian u64 row pointers, offset 0
//! │   ├── indices_1/zarr.json        Zarr array metadata (uint32 or uint64, one chunk)
//! │   ├── indices_1/c/0              raw little-endian column (CSR) or row (CSC) indices
//! │   ├── values/zarr.json           Zarr array metadata (float64, float32, int64; bool for pattern)
//! │   ├── values/c/0                 raw little-endian values (pattern: a single byte 0x01, see below)
//! │   └── dense/                     only if the segment has dense blocks (format version 2):
//! │       ├── zarr.json              Zarr group describing them
//! │       ├── origins/c/0/0          blocks x 3 u64: outer offset in the band, inner offset, entry count
//! │       ├── mask/c/0/0             blocks x words u64: which positions of each block are stored
//! │       └── values/c/0/0/0         blocks x 64 x 64 values, each block dense and row-major
//! ├── seg_1_000001/ ...
//! ├── .readers-1.lock                readers of generation 1 hold a shared lock on it (see "Concurrent readers")
//! ├── .writer.lock                   while a writer works: it holds an exclusive lock on it (see "Writers")
//! └── (anything else: ignored by readers, e.g. a crashed build's leftovers)
//! ```
//!
//! A **segment** holds a contiguous band of *outer* indices: rows of a CSR matrix, columns of a CSC
//! matrix. The *inner* index is the other one (columns for CSR, rows for CSC). Every segment is a
//! standard, self-describing sparse matrix: Python's `binsparse` and `zarr` packages open it
//! (`BinsparseTensor.parse(ZarrBinsparseContainer(zarr.open_group(SEGMENT_DIR)))`, or
//! `binsparse.load_binsparse` through a path ending in `.zarr`), and `numpy.memmap` maps each chunk file
//! directly, since each holds exactly the raw little-endian array from offset 0. **Binsparse describes
//! only the segment's CSR (or CSC) arrays**: entries a writer stored in dense blocks (format version 2)
//! are not in them, so a reader that knows only Binsparse gets the band with fewer entries, or none,
//! and no error. See "Dense blocks" and "Reading with Binsparse alone".
//!
//! # Byte order, integer widths
//!
//! All arrays are little-endian. No `usize` is ever written. Row pointers (`indptr`) are always u64.
//! Writers store inner indices as u32 when the inner dimension is below 2^32, otherwise as u64; the
//! manifest's `index_type` says which, for the whole matrix (readers accept u32 up to a dimension of
//! 2^32, where every index still fits). Values are IEEE-754 binary64
//! (`float64`), binary32 (`float32`), two's-complement `int64`, or absent (`pattern`).
//!
//! # The manifest (`manifest.json`)
//!
//! A UTF-8 JSON object. Unknown members are ignored (forward compatibility within a format version).
//!
//! | member | type | meaning |
//! |---|---|---|
//! | `format` | string | always `"sparsedisk"` |
//! | `format_version` | integer | `1`, or `2` when some segment has dense blocks; a reader refuses versions it does not know |
//! | `generation` | integer ≥ 1 | increases each time the directory is rewritten; segment names carry it |
//! | `shape` | `[rows, cols]` | the matrix shape, each < 2^63 |
//! | `nnz` | integer | number of stored entries (explicit zeros count) |
//! | `layout` | `"csr"` or `"csc"` | CSR: segments are row bands; CSC: column bands |
//! | `value_type` | string | `"float64"`, `"float32"`, `"int64"` or `"pattern"` |
//! | `index_type` | string | `"uint32"` or `"uint64"`: the type of the inner indices |
//! | `segments` | array | the segments in order, see below |
//! | `checksum` | string | xxh3-64 of the manifest's canonical form, 16 lower-case hex digits |
//!
//! Each element of `segments`:
//!
//! | member | type | meaning |
//! |---|---|---|
//! | `name` | string | the segment's directory, `seg_{generation}_{index:06}` |
//! | `start`, `end` | integers | the band of outer indices `start..end` (end exclusive, `start < end`) |
//! | `nnz` | integer | entries in the segment |
//! | `indptr` | file | the `pointers_to_1` chunk: `end - start + 1` u64, the first 0, the last `nnz` |
//! | `indices` | file | the `indices_1` chunk: `nnz` inner indices of `index_type` |
//! | `values` | file or `null` | the `values` chunk: `nnz` values of `value_type`; `null` for pattern |
//! | `metadata` | array of files | every other file of the segment (the `zarr.json` files, the pattern value byte) |
//! | `dense` | object, optional | the segment's dense blocks (version 2), see "Dense blocks"; absent otherwise |
//!
//! A *file* is `{"path": P, "bytes": B, "xxh3": H}`: `P` relative to the matrix directory, made of
//! plain components (no `..`, not absolute); `B` its exact size in bytes; `H` the xxh3-64 (seed 0) of
//! its bytes as 16 lower-case hex digits. A chunk of zero bytes (an empty segment's indices and values)
//! is not written, as Zarr prescribes for a chunk outside an empty array; its entry has `bytes: 0`.
//!
//! The segments tile the outer dimension exactly: the first starts at 0, each starts where the previous
//! ended, the last ends at the outer dimension, and their `nnz` add up to the manifest's `nnz`. A matrix
//! whose outer dimension is 0 has no segments.
//!
//! **Canonical form and checksum.** The checksum is the xxh3-64 of the manifest object *without* its
//! `checksum` member, serialised as compact JSON (no whitespace) with the members of every object
//! sorted by key (byte order) and numbers written as integers. Python:
//! `xxhash.xxh3_64_hexdigest(json.dumps(body, sort_keys=True, separators=(",", ":")))`. It catches any
//! change to a value in the manifest, which its own size and parse could not.
//!
//! # Segment groups (Binsparse in Zarr v3)
//!
//! Each segment directory is a Zarr v3 group. Its attributes hold the Binsparse JSON descriptor under
//! the attribute `binsparse` (the descriptor is itself an object whose one member is `binsparse`, as the
//! Binsparse specification writes it and as the reference Python package reads it), and the segment's
//! place in the whole matrix under `sparsedisk`:
//!
//! ```json
//! {
//!   "binsparse": {
//!     "binsparse": {
//!       "version": "0.1.0", "format": "CSR", "shape": [band_rows, cols],
//!       "number_of_stored_values": nnz,
//!       "data_types": {"pointers_to_1": "uint64", "indices_1": "uint32", "values": "float64"}
//!     }
//!   },
//!   "sparsedisk": {"row_offset": start, "global_shape": [rows, cols]}
//! }
//! ```
//!
//! For a CSC segment: `"format": "CSC"`, `"shape": [rows, band_cols]`, and `"col_offset"` instead of
//! `"row_offset"`. For a pattern matrix the values are Binsparse's iso form, `"values": "iso[bint8]"`:
//! a one-element `bool` array holding `true` (every stored entry is 1). Each array is a Zarr v3 array
//! with one chunk the size of the array (`chunk_shape` 1 for an empty array), the `bytes` codec with
//! little endian, no compression, and the default chunk key encoding (`c/0`).
//!
//! The matrix directory's own `zarr.json` is a Zarr v3 group with attributes
//! `{"sparsedisk": {"format_version": 1, "manifest": "manifest.json"}}`. Zarr tools list the segment
//! groups from it, but only the manifest says which of them are live.
//!
//! # Dense blocks
//!
//! Real matrices hold dense blocks (finite-element element blocks, the border rows and columns of an
//! arrow matrix, dense cores of graphs). Stored as CSR a block costs 12 bytes per entry (a u32 index
//! and an f64) and an indirect loop; stored dense it costs 8 and a contiguous, vectorised loop. A
//! segment may therefore keep some of its entries in **dense blocks** instead of its CSR arrays:
//!
//! * The blocks lie on a grid of `block_shape = [bo, bi]` (outer x inner; writers use 64 x 64): a
//!   block's inner offset is a multiple of `bi`, and its outer offset within the band is 0 or such
//!   that `start + offset` is a multiple of `bo`. A block covers outer indices `offset ..
//!   min(next multiple of bo in the matrix, band end)` and inner indices `inner .. min(inner + bi,
//!   inner dimension)`: its **window**. The last block row of a band and the last block column of
//!   the matrix may be clipped; a block's array always has the full `bo x bi` positions, those outside
//!   the window zero and unmarked.
//! * Every entry of the segment is stored exactly once: either in the CSR arrays or, when it lies in
//!   a block's window, in that block. The block stores its value at position `p = o * bi + i`
//!   (block-local outer `o`, inner `i`) and sets bit `p % 64` of mask word `p / 64`; unmarked
//!   positions hold zero. Explicit zeros stay stored entries (their bit is set), so a matrix reads back
//!   exactly as written whatever its blocks. The segment's `nnz` counts both; its CSR arrays hold
//!   `nnz - dense.nnz` entries, and their row pointers end there.
//! * The manifest's `dense` member of the segment: `{"block_shape": [bo, bi], "blocks": n, "nnz":
//!   entries in blocks, "origins": file, "mask": file, "values": file}`. `origins` holds `n x 3`
//!   little-endian u64 (band-local outer offset, inner offset, entries of the block), the blocks sorted
//!   by (outer, inner) offset without repeats; `mask` holds `n x ceil(bo * bi / 64)` u64; `values`
//!   holds `n x bo x bi` values of the matrix's value type. Each extent lies in 1..=4096. Pattern
//!   matrices have no dense blocks (a block stores values).
//! * In Zarr, the three arrays are `dense/origins` (uint64, shape `[n, 3]`), `dense/mask` (uint64,
//!   `[n, words]`) and `dense/values` (`[n, bo, bi]`, the value type), each one chunk (`c/0/0`,
//!   `c/0/0/0`), under the group `dense` whose attributes describe them; `values[k]` is block `k` as a
//!   Binsparse-style dense row-major (`DMATR`) matrix. The segment group's `sparsedisk` attribute then
//!   has `"dense_blocks": {"group": "dense", "blocks": n, "number_of_stored_values": entries}`. The
//!   segment's Binsparse descriptor describes its CSR arrays only: **a reader that knows Binsparse but
//!   not this section sees the band without its dense blocks' entries**. The manifest's version 2 makes
//!   older sparsedisk readers refuse such a matrix; Python readers add the blocks themselves (the
//!   positions of `values[k][:h, :w]`, `h, w` the window, whose mask bit is set) or read a matrix
//!   written with `--dense-threshold off`.
//! * **Binsparse readers miss these entries.** See "Reading with Binsparse alone" below.
//! * **Writers** choose blocks whose density (stored entries over window positions) reaches a
//!   threshold (default 0.7, `--dense-threshold`) and whose window has at least a quarter of a block's
//!   positions; see [`DenseOptions`](crate::DenseOptions).
//! * **Readers** check at open that the listed sizes match `blocks` and `block_shape`; before using
//!   blocks ([`MappedSegment::check_row_pointers`](crate::MappedSegment::check_row_pointers)), that each
//!   origin is a grid position inside the band and the matrix, in order; and in `verify`, that each
//!   block's mask count equals its recorded count and the total the manifest's, that no bit is set and
//!   no nonzero value stored outside a window or where the mask is clear, and that no CSR entry lies
//!   inside a window. Kernels read block windows through checked slices, so a block that passed the
//!   open-time checks can give wrong numbers if its bytes are damaged, never an out-of-bounds access.
//!
//! # Reading with Binsparse alone
//!
//! A reader that follows only the Binsparse descriptor of a segment reads its CSR (or CSC) arrays,
//! which hold the segment's entries **outside** dense blocks. On a matrix with dense blocks that band
//! is silently incomplete: a block-diagonal matrix's bands read as empty (nnz 0) although the manifest
//! lists millions of entries. Nothing in the Binsparse descriptor says so (its
//! `number_of_stored_values` counts the CSR arrays only). A reader must therefore check, before
//! trusting a band, any one of:
//!
//! * the manifest's `format_version` is 1 (no segment has dense blocks);
//! * the segment's manifest entry has no `dense` member;
//! * the segment group has no `dense` child group (in zarr-python: `"dense" not in group`), and its
//!   `sparsedisk` attribute no `dense_blocks` member;
//! * the band's entry count equals the segment's `nnz` in the manifest.
//!
//! Otherwise it must add the blocks' entries (each marked position of `dense/values[k]` in block
//! `k`'s window, as above; `tests/python/read_dense.py` does it with zarr and numpy alone), refuse the
//! segment, or be given a matrix written with `--dense-threshold off`, whose segments are plain
//! Binsparse. The README's Python example refuses.
//!
//! # Commit protocol and immutability
//!
//! A writer creates the segment files of a new generation beside whatever is there, writes them
//! sequentially (never through a writable map, so a full disk is an error and not a SIGBUS), fsyncs each
//! file and directory, and then publishes by writing `manifest.json` atomically: a temporary file in
//! the same directory, fsync, rename over `manifest.json`, fsync of the directory. Until that rename
//! nothing new is visible; after it, the previous generation's segments are deleted. A reader trusts
//! only the manifest: files it does not list are ignored. Published files are never modified or
//! reopened for writing; a rewrite (`--force`) makes a new generation with new file names.
//!
//! # Concurrent readers
//!
//! A matrix may be read by any number of threads and processes while another process replaces it
//! (`--force`); each reader sees one generation, whole, for as long as it holds the matrix open:
//!
//! * [`Matrix::open`](crate::Matrix::open) reads the manifest, takes a **shared** `flock` on the file
//!   `.readers-{generation}.lock` in the matrix directory (creating it if needed), then reads the
//!   manifest again: if it changed meanwhile, it releases the lock and starts over. The lock is held
//!   until the last clone of the opened matrix is dropped; segments mapped later (streamed products)
//!   still find their files.
//! * A writer, after publishing generation `g`, deletes each older generation only if it can take an
//!   **exclusive** `flock` on that generation's lock file without waiting (or the file does not
//!   exist): the segment directories first, the lock file last. A generation still held by a reader
//!   is left as unlisted files (which readers ignore) and deleted by a later writer once free.
//! * Where the lock file cannot be created or locked (a read-only directory, a filesystem without
//!   `flock`), readers go unlocked: they still never see a mix of generations (the manifest names
//!   each generation's own files), but a reader that outlives a rewrite may find its segment files
//!   deleted and fail with an I/O error naming the file.
//!
//! Lock files are the only files a reader creates. Not guarded: another program modifying or
//! truncating a published file (a mapped file that shrinks can fault the reader: published files
//! must be treated as read-only).
//!
//! # Writers
//!
//! One writer at a time per directory:
//!
//! * A writer takes an exclusive, non-blocking `flock` on `.writer.lock` in the matrix directory
//!   (creating it if needed) before it chooses its generation, and holds it until it has published and
//!   deleted the older generations, or given up and deleted what it wrote. A second writer fails at
//!   once with an error saying that the directory is being written by another process. Producers
//!   also check the lock before long work (an import, before it parses its input), and take it only
//!   when they start writing the matrix itself.
//! * A writer deletes the lock file, then releases the lock, so the file exists only while a writer
//!   works (or after a crash: the kernel releases the lock of a dead process, and the next writer
//!   locks the file it left). A writer that locks a file checks that it is still the one at that path
//!   (device and inode), and starts over if it was deleted meanwhile.
//! * Without the lock, two writers replacing the same matrix chose the same generation and published
//!   a manifest whose files the other had overwritten or deleted.
//! * **Debris.** After publishing, the writer also deletes staging areas (`.staging-{pid}-{n}`) and
//!   interrupted atomic writes (`.manifest.json.tmp-{pid}-{n}`, `.zarr.json.tmp-{pid}-{n}`) whose
//!   process `pid` no longer runs on this machine. A running process's are left alone: an import
//!   sorts its runs in its staging area before it takes the lock.
//! * **Interruption.** A writer stopped by a cancellation request (SIGINT or SIGTERM to the
//!   command-line tool, [`interrupt::request`](crate::interrupt::request) in the library) before it
//!   publishes removes its staging area, its segments and the directory if it created it, exactly as
//!   on any error; a matrix it was replacing is untouched. Only a process killed outright (SIGKILL, a
//!   second Ctrl-C, a crash) leaves debris. [`debris::scan`](crate::debris::scan) lists it (staging
//!   areas, temporary files, segment directories the manifest does not list) with its size and
//!   whether a running process, reader or writer still uses it; `sparsedisk info` and `verify` report
//!   it, and [`debris::clean`](crate::debris::clean) (`sparsedisk clean DIR`) removes what nothing
//!   uses, holding the writer lock (it refuses while a writer works).
//! * Where the lock file cannot be locked (a filesystem without `flock`), writers go unlocked, and
//!   must not write the same directory at once.
//!
//! # What readers check
//!
//! [`Matrix::open`](crate::Matrix::open) is cheap: it parses the manifest, checks its checksum and every
//! invariant above that needs no array data, and checks that each listed file exists with its listed
//! size. [`Matrix::verify`](crate::Matrix::verify) is the full O(nnz) check: every file's checksum, and
//! every segment's structure (the indptr starts at 0, never decreases, ends at `nnz`; the indices of each
//! row are strictly increasing and below the inner dimension).
//!
//! Between the two, the kernels do not trust array contents that `open` did not check: rather than
//! validate every array when opening (a pass over the data before each product), they are written so
//! that bad indices are caught where they are used, and a corrupt file gives
//! [`Error::Corrupt`](crate::Error::Corrupt) naming the segment, never a panic or an out-of-bounds
//! access:
//!
//! * Every segment a kernel, operation, algorithm or export maps has its row pointers checked first
//!   ([`check_row_pointers`](crate::MappedSegment::check_row_pointers), O(rows): from 0, never
//!   decreasing, ending at the segment's `nnz`, which `open` tied to the sizes of the index and value
//!   files), so every row's slice of indices and values is in bounds.
//! * Every inner index is checked against what it addresses before it is used. The one-column SpMV
//!   gather and transposed-SpMV scatter check indices in chunks of about 2,000 entries just ahead of
//!   the rows that use them, then read `x` (or write `y`) without a bounds check per entry: the crate's
//!   only unchecked indexing, each justified by that check. SpMM with several columns, SpGEMM (each
//!   block of `B` is checked in range and row-sorted when loaded), transpose, convert, add, BFS and
//!   connected components check each index as they read it; PageRank and CG go through SpMV; export
//!   and `to_sprs` run the full structure check of each segment first.
//! * Not checked outside `verify`: checksums, the order and uniqueness of a row's indices where no
//!   algorithm depends on it, and values (any bit pattern is a number; NaN and infinities propagate).
//!   A damaged file that keeps every index in range therefore gives a wrong result, not an error:
//!   run `verify` on a matrix from an untrusted source or after a disk error (`tests/fuzz.rs` runs
//!   every kernel on damaged matrices: errors or results, never a panic).

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
