//! Whole-matrix operations that write a new matrix: sparse times sparse ([`spgemm()`], or held in memory
//! as a sprs matrix by [`spgemm_in_memory`]), transposition and
//! layout conversion ([`transpose`], [`convert`]), and the linear combination `alpha A + beta B`
//! ([`add`]). Every one streams its inputs segment by segment and its output through the
//! [`MatrixWriter`](crate::MatrixWriter), in memory bounded by [`OpOptions::memory_budget`], so inputs
//! and outputs may both be larger than memory.
//!
//! * **SpGEMM** is row-wise (Gustavson 1978): row `i` of `C` is the combination of the rows of `B`
//!   selected by row `i` of `A`. See [`spgemm`](mod@spgemm) for the accumulators, the flop-balanced
//!   parallel split and the blocking used when `B` does not fit in the budget.
//! * **Transpose / convert** re-sort the entries by their inner index through the out-of-core
//!   [`TripletBuilder`](crate::builder::TripletBuilder) (sorted runs spilled to disk, k-way merge), or
//!   copy the arrays as they are when only the label changes (`A^T` in CSC holds the arrays of `A` in
//!   CSR).
//! * **Add** merges aligned outer indices of the two operands, one pair of segments mapped at a time.
//!
//! **Layouts.** Operations work in outer/inner terms, so CSC inputs need no conversion when they
//! agree: `C = A B` with both CSC is computed as `C^T = B^T A^T` on the same arrays and written as CSC.
//! An operand whose layout differs from the first operand's is converted first into a staging area
//! inside the output directory (out of core, bounded by the same budget).
//!
//! **Atomicity.** As for `import`: nothing is visible before the output's manifest is published; on
//! an error, every file made (staging areas, partial products, the output directory if it was
//! created) is removed, and a matrix being replaced (`overwrite`) stays readable until the end.
//!
//! **Unverified inputs.** Matrices are opened, not verified: row pointers are checked per segment and
//! every index is checked before it is used, so a corrupt input gives [`Error::Corrupt`] naming the
//! segment, never a panic.

mod add;
mod merge;
pub mod spgemm;
mod transpose;

pub use add::{add, AddOptions};
pub use spgemm::{spgemm, spgemm_in_memory, Accumulator, Semiring, SpgemmOptions};
pub use transpose::{convert, transpose};

pub use crate::budget::MIN_OP_MEMORY;

use crate::directory::{check_output_dir, StagingArea};
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::segment::MappedSegment;
use crate::writer::WriterOptions;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Options shared by the operations.
#[derive(Debug, Clone)]
pub struct OpOptions {
    /// Bytes the operation may use: heap buffers and the mapped parts of its inputs. The page cache of
    /// the files it streams through is reclaimable and is not counted, except for the operand of a
    /// product that is held in memory.
    pub memory_budget: u64,
    /// Options of the output's writer (segment size, overwrite, durability).
    pub writer: WriterOptions,
    /// Caps the entries an external sort (transpose, conversion) holds in memory below what the
    /// budget allows: for tests that must exercise spilling on small inputs. `None`: the budget
    /// decides.
    pub max_chunk_entries: Option<usize>,
}

impl Default for OpOptions {
    fn default() -> Self {
        OpOptions {
            memory_budget: crate::budget::default_memory_budget(),
            writer: WriterOptions::default(),
            max_chunk_entries: None,
        }
    }
}

impl OpOptions {
    fn check(&self) -> Result<()> {
        crate::budget::check_minimum(self.memory_budget, MIN_OP_MEMORY, "the operations")
    }
}

/// A progress report: the phase, and units of work done out of a total (entries or rows, as the
/// phase says).
#[derive(Debug, Clone, Copy)]
pub struct OpProgress {
    /// What is being done now, e.g. `"multiply"`, `"merge"`, `"convert B"`.
    pub phase: &'static str,
    /// Units done in this phase.
    pub done: u64,
    /// Units in this phase.
    pub total: u64,
}

/// A progress callback.
pub type ProgressFn<'a> = &'a (dyn Fn(OpProgress) + Sync);

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct OpStats {
    /// Entries of the output.
    pub nnz: u64,
    /// Multiply-adds (SpGEMM: the sum over the entries `A[i, k]` of the length of row `k` of `B`);
    /// for add and transpose, the entries read.
    pub flops: u64,
    /// Passes over the first operand (SpGEMM: the number of row blocks of `B`).
    pub blocks: u64,
    /// Operands converted to the other layout first.
    pub conversions: u64,
    /// Seconds of the whole operation, publication included.
    pub seconds: f64,
}

/// Scratch space for an operation's intermediate matrices: a [`StagingArea`] inside the output
/// directory (same filesystem, cleaned with it), created on first use. Dropping it removes the
/// staging directory, and the output directory too if it was created here and never published.
pub(crate) struct Scratch {
    /// The output directory.
    out: PathBuf,
    staging: StagingArea,
    counter: u64,
}

impl Scratch {
    /// Checks that `out` can receive the result (before any work is done).
    pub(crate) fn new(out: &Path, overwrite: bool) -> Result<Scratch> {
        check_output_dir(out, overwrite)?;
        Ok(Scratch { out: out.to_path_buf(), staging: StagingArea::new(out, "op"), counter: 0 })
    }

    /// A fresh path inside the staging area for an intermediate matrix named `what`.
    pub(crate) fn path(&mut self, what: &str) -> Result<PathBuf> {
        let staging = self.staging.dir()?;
        self.counter += 1;
        Ok(staging.join(format!("{what}-{}", self.counter)))
    }

    /// Options for an intermediate matrix: not durable (it never outlives the operation).
    pub(crate) fn writer_options(segment_bytes: u64) -> WriterOptions {
        WriterOptions { segment_bytes, overwrite: false, durable: false, dense: None }
    }

    /// The output was published: keep the output directory, remove only the staging area.
    pub(crate) fn published(mut self) {
        self.staging.published();
    }
}

/// An error for a segment holding an index out of range, naming it.
pub(crate) fn corrupt_index(seg: &MappedSegment, what: &str) -> Error {
    Error::corrupt(seg.path(), format!("{what} (run `sparsedisk verify` on the matrix)"))
}

/// The largest payload of `m`'s segments: what mapping one segment costs.
pub(crate) fn max_segment_payload(m: &Matrix) -> u64 {
    m.segments().iter().map(|s| s.payload_bytes()).max().unwrap_or(0)
}
