//! Deterministic matrix generators that stream straight into the [`MatrixWriter`].
//!
//! Each generator produces one outer index at a time from a formula, so generating a matrix of any
//! size needs memory for one row. The values are small integers (exact in every value type), and the
//! Laplacians are the same matrices as `../shared/tools/anchors/anchors.py gen lap2d|lap3d` builds with
//! scipy (Kronecker sums of the 1-D second difference), so results can be compared entry for entry
//! (scipy's `kron` keeps some explicit zeros for grids of 5 or fewer points per side; sparsedisk stores
//! none).

use crate::element::Element;
use crate::error::{Error, Result};
use crate::format::Layout;
use crate::matrix::Matrix;
use crate::writer::{MatrixWriter, WriterOptions};
use std::path::Path;

/// A matrix defined by a formula.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generator {
    /// The 5-point Laplacian on an `n x n` grid: `n^2` rows, 4 on the diagonal, -1 for each grid
    /// neighbour (row `i*n + j` is grid point `(i, j)`). Symmetric positive definite.
    Laplace2d {
        /// Grid points per side.
        n: u64,
    },
    /// The 7-point Laplacian on an `n x n x n` grid: `n^3` rows, 6 on the diagonal, -1 per neighbour.
    Laplace3d {
        /// Grid points per side.
        n: u64,
    },
    /// An `n x n` banded matrix with `lower` sub- and `upper` super-diagonals. Off-diagonal entries are
    /// `-1 - ((7i + 13j) mod 5)` (so the matrix is not symmetric); the diagonal is `5 (lower + upper) + 1`,
    /// which makes it strictly diagonally dominant.
    Banded {
        /// Order of the matrix.
        n: u64,
        /// Number of sub-diagonals.
        lower: u64,
        /// Number of super-diagonals.
        upper: u64,
    },
}

impl Generator {
    /// `(rows, cols)` of the generated matrix.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the size overflows 2^63 - 1.
    pub fn shape(&self) -> Result<(u64, u64)> {
        let overflow = || Error::invalid(format!("{self:?} is too large: its order exceeds 2^63 - 1"));
        let order = match *self {
            Generator::Laplace2d { n } => n.checked_mul(n).ok_or_else(overflow)?,
            Generator::Laplace3d { n } => n.checked_mul(n).and_then(|x| x.checked_mul(n)).ok_or_else(overflow)?,
            Generator::Banded { n, .. } => n,
        };
        if order > i64::MAX as u64 {
            return Err(overflow());
        }
        Ok((order, order))
    }

    /// Exact number of stored entries.
    ///
    /// # Errors
    ///
    /// As [`shape`](Self::shape).
    pub fn nnz(&self) -> Result<u64> {
        let (order, _) = self.shape()?;
        Ok(match *self {
            // Each of the d directions has n - 1 neighbour pairs per line, each giving 2 entries.
            Generator::Laplace2d { n } if n > 0 => order + 2 * 2 * (n - 1) * n,
            Generator::Laplace3d { n } if n > 0 => order + 3 * 2 * (n - 1) * n * n,
            Generator::Banded { n, lower, upper } if n > 0 => {
                let (l, u) = (lower.min(n - 1), upper.min(n - 1));
                n * (l + u + 1) - l * (l + 1) / 2 - u * (u + 1) / 2
            }
            _ => 0,
        })
    }

    /// Entries of outer index `outer` in `layout` (row for CSR, column for CSC), inner indices
    /// ascending, appended to the cleared `indices` and `values`.
    pub fn outer(&self, layout: Layout, outer: u64, indices: &mut Vec<u64>, values: &mut Vec<f64>) {
        indices.clear();
        values.clear();
        let mut put = |i: u64, v: f64| {
            indices.push(i);
            values.push(v);
        };
        match *self {
            // Symmetric: a column is the row of the same index.
            Generator::Laplace2d { n } => {
                let r = outer;
                let (i, j) = (r / n, r % n);
                if i > 0 {
                    put(r - n, -1.0);
                }
                if j > 0 {
                    put(r - 1, -1.0);
                }
                put(r, 4.0);
                if j + 1 < n {
                    put(r + 1, -1.0);
                }
                if i + 1 < n {
                    put(r + n, -1.0);
                }
            }
            Generator::Laplace3d { n } => {
                let r = outer;
                let nn = n * n;
                let (i, j, k) = (r / nn, (r / n) % n, r % n);
                if i > 0 {
                    put(r - nn, -1.0);
                }
                if j > 0 {
                    put(r - n, -1.0);
                }
                if k > 0 {
                    put(r - 1, -1.0);
                }
                put(r, 6.0);
                if k + 1 < n {
                    put(r + 1, -1.0);
                }
                if j + 1 < n {
                    put(r + n, -1.0);
                }
                if i + 1 < n {
                    put(r + nn, -1.0);
                }
            }
            Generator::Banded { n, lower, upper } => {
                // Row i holds columns i - lower ..= i + upper; column j holds rows j - upper ..= j + lower.
                let (before, after) = match layout {
                    Layout::Csr => (lower, upper),
                    Layout::Csc => (upper, lower),
                };
                let first = outer.saturating_sub(before);
                let last = outer.saturating_add(after).min(n - 1);
                for inner in first..=last {
                    let (i, j) = layout.row_col(outer, inner);
                    put(inner, banded_value(i, j, lower, upper));
                }
            }
        }
    }
}

fn banded_value(i: u64, j: u64, lower: u64, upper: u64) -> f64 {
    if i == j {
        (5 * (lower + upper) + 1) as f64
    } else {
        -1.0 - ((7 * (i % 5) + 13 * (j % 5)) % 5) as f64
    }
}

/// Generates `generator` into `dir` in `layout` with value type `V`, streaming through the writer.
/// `progress` is called now and then with the number of outer indices done.
///
/// # Errors
///
/// As [`MatrixWriter::create`] and [`MatrixWriter::finish`].
pub fn generate_with_progress<V: Element>(
    generator: &Generator,
    dir: &Path,
    layout: Layout,
    options: WriterOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Matrix> {
    let shape = generator.shape()?;
    let (outer_dim, _) = layout.outer_inner(shape);
    let mut writer = MatrixWriter::<V>::create(dir, shape, layout, options)?;
    let (mut indices, mut values_f64, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for outer in 0..outer_dim {
        generator.outer(layout, outer, &mut indices, &mut values_f64);
        values.clear();
        values.extend(values_f64.iter().map(|&v| V::from_f64(v)));
        writer.push_row(&indices, &values)?;
        if outer % (1 << 16) == 0 {
            progress(outer);
        }
    }
    progress(outer_dim);
    writer.finish()
}

/// [`generate_with_progress`] without progress reports.
///
/// # Errors
///
/// As [`generate_with_progress`].
pub fn generate<V: Element>(
    generator: &Generator,
    dir: &Path,
    layout: Layout,
    options: WriterOptions,
) -> Result<Matrix> {
    generate_with_progress::<V>(generator, dir, layout, options, &mut |_| {})
}
