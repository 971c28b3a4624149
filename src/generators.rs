//! Deterministic matrix generators that stream straight into the [`MatrixWriter`].
//!
//! Each generator produces one outer index at a time from a formula, so generating a matrix of any
//! size needs memory for one row. The values are small integers (exact in every value type), and the
//! Laplacians are the same matrices as `../shared/tools/anchors/anchors.py gen lap2d|lap3d` builds with
//! scipy (Kronecker sums of the 1-D second difference), so results can be compared entry for entry
//! (scipy's `kron` keeps some explicit zeros for grids of 5 or fewer points per side; sparsedisk stores
//! none). The 27-point Laplacian ([`Generator::Laplace3d27`]) has no scipy counterpart there; the
//! tests check it against a brute-force loop over each grid point's 3 x 3 x 3 box.

use crate::builder::{BuildOptions, BuildStats, TripletBuilder};
use crate::element::{Element, Triplet};
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
    /// The 27-point Laplacian on an `n x n x n` grid (the 3 x 3 x 3 stencil of trilinear Q1 finite
    /// elements, up to scaling): `n^3` rows, 26 on the diagonal, -1 for each of the up to 26 grid
    /// points in the 3 x 3 x 3 box around a point (row `(k*n + j)*n + i` is grid point `(i, j, k)`).
    /// `(3n - 2)^3` nonzeros: about 27 per row, so it reaches a given nonzero count with a quarter
    /// of the rows of [`Laplace3d`](Self::Laplace3d). Symmetric, with zero row sums in the interior
    /// and positive ones on the boundary: irreducibly diagonally dominant with a positive diagonal,
    /// hence positive definite.
    Laplace3d27 {
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
    /// An `n x n` block-diagonal matrix of dense `block x block` blocks (the last one clipped): the
    /// element blocks of a finite-element or multiphysics matrix. Off-diagonal entries are
    /// `-(1 + ((7i + 13j) mod 5)) / block`, the diagonal is 6, so the matrix is strictly diagonally
    /// dominant and not symmetric.
    BlockDiag {
        /// Order of the matrix.
        n: u64,
        /// Order of each diagonal block.
        block: u64,
    },
    /// An `n x n` arrow matrix: the diagonal, plus `border` full rows and `border` full columns at
    /// the top and left (a bordered system, or an optimisation problem with dense coupling rows).
    /// Border entries are `1 / (1 + (i + j) mod 7)`, the diagonal is `n`.
    Arrow {
        /// Order of the matrix.
        n: u64,
        /// Number of dense rows and of dense columns.
        border: u64,
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
            Generator::Laplace3d { n } | Generator::Laplace3d27 { n } => {
                n.checked_mul(n).and_then(|x| x.checked_mul(n)).ok_or_else(overflow)?
            }
            Generator::Banded { n, .. } | Generator::BlockDiag { n, .. } | Generator::Arrow { n, .. } => n,
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
            // Along each axis a point has itself and up to 2 neighbours: n + 2 (n - 1) pairs per
            // axis, and the box is their product.
            Generator::Laplace3d27 { n } if n > 0 => (3 * n - 2)
                .checked_pow(3)
                .ok_or_else(|| Error::invalid(format!("{self:?} is too large: its nonzeros exceed 2^64 - 1")))?,
            Generator::Banded { n, lower, upper } if n > 0 => {
                let (l, u) = (lower.min(n - 1), upper.min(n - 1));
                n * (l + u + 1) - l * (l + 1) / 2 - u * (u + 1) / 2
            }
            Generator::BlockDiag { n, block } if n > 0 && block > 0 => {
                let (full, last) = (n / block, n % block);
                full * block * block + last * last
            }
            Generator::Arrow { n, border } if n > 0 => {
                let b = border.min(n);
                // b full rows; every other row has the b border columns and its diagonal.
                b * n + (n - b) * (b + 1)
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
            Generator::Laplace2d { n } => laplacian_row(n, 2, outer, put),
            Generator::Laplace3d { n } => laplacian_row(n, 3, outer, put),
            Generator::Laplace3d27 { n } => box27_row(n, outer, put),
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
            // Both patterns are symmetric, so a column holds the indices of the row of the same index.
            Generator::BlockDiag { n, block } => {
                let block = block.max(1);
                let first = outer / block * block;
                for inner in first..(first + block).min(n) {
                    let (i, j) = layout.row_col(outer, inner);
                    let v =
                        if i == j { 6.0 } else { -(1.0 + ((7 * (i % 5) + 13 * (j % 5)) % 5) as f64) / block as f64 };
                    put(inner, v);
                }
            }
            Generator::Arrow { n, border } => {
                let value = |inner: u64| {
                    let (i, j) = layout.row_col(outer, inner);
                    if i == j {
                        n as f64
                    } else {
                        1.0 / (1 + (i + j) % 7) as f64
                    }
                };
                if outer < border {
                    for inner in 0..n {
                        put(inner, value(inner));
                    }
                } else {
                    for inner in 0..border.min(n) {
                        put(inner, value(inner));
                    }
                    put(outer, value(outer));
                }
            }
        }
    }
}

/// Row `r` of the `dims`-dimensional Laplacian on an `n^dims` grid (a symmetric matrix, so also its
/// column): `-1` for each neighbour along each axis, `2 dims` on the diagonal, in increasing column
/// order (the far neighbours first, the nearest next to the diagonal).
fn laplacian_row(n: u64, dims: u32, r: u64, mut put: impl FnMut(u64, f64)) {
    for axis in (0..dims).rev() {
        let stride = n.pow(axis);
        if (r / stride) % n > 0 {
            put(r - stride, -1.0);
        }
    }
    put(r, 2.0 * dims as f64);
    for axis in 0..dims {
        let stride = n.pow(axis);
        if (r / stride) % n + 1 < n {
            put(r + stride, -1.0);
        }
    }
}

/// Row `r` of the 27-point Laplacian on an `n^3` grid (symmetric, so also its column): `-1` for each
/// grid point of the 3 x 3 x 3 box around point `r` other than itself, `26` on the diagonal, in
/// increasing column order (the box's planes, then its lines, then its points, all ascending).
fn box27_row(n: u64, r: u64, mut put: impl FnMut(u64, f64)) {
    let (i, j, k) = (r % n, (r / n) % n, r / n / n);
    let (i0, i1) = (i.saturating_sub(1), (i + 1).min(n - 1));
    for kk in k.saturating_sub(1)..=(k + 1).min(n - 1) {
        for jj in j.saturating_sub(1)..=(j + 1).min(n - 1) {
            let line = (kk * n + jj) * n;
            for c in line + i0..=line + i1 {
                put(c, if c == r { 26.0 } else { -1.0 });
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
            crate::interrupt::check()?;
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

/// SplitMix64 (Steele, Lea and Flood 2014): a tiny, well-studied generator whose output is fixed by
/// its definition, so generated matrices are identical across versions and platforms.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `[0, n)` (Lemire's multiply-shift; `n > 0`).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// Random graphs and matrices built through the triplet builder (their entries come in random order
/// and may repeat; repeats are combined by the build options' duplicate policy, summed by default).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RandomMatrix {
    /// R-MAT power-law graph (Chakrabarti, Zhan and Faloutsos 2004) with the Graph500 parameters
    /// a = 0.57, b = 0.19, c = 0.19 (quantised to 1/65536): `2^scale` vertices, `edge_factor * 2^scale` edges, each edge's
    /// weight uniform in `[0, 1)`.
    Rmat {
        /// log2 of the number of vertices.
        scale: u32,
        /// Edges per vertex.
        edge_factor: u64,
        /// Seed.
        seed: u64,
    },
    /// `rows x cols` with `nnz_per_row` uniformly random columns in every row, values uniform in `[0, 1)`.
    Uniform {
        /// Rows.
        rows: u64,
        /// Columns.
        cols: u64,
        /// Entries drawn per row.
        nnz_per_row: u64,
        /// Seed.
        seed: u64,
    },
}

/// The quadrant choices of four R-MAT levels from the four 16-bit lanes of `bits` (lane `k`, bits
/// `16k..16k + 16`, decides level `k`): the row bit of level `k` in bit `k` of the first result, the
/// column bit in the second. Probabilities are quantised to 1/65536 (a: 37356, b: 12452, c: 12452,
/// d: 3276): lane value `u` picks the lower row half below 49808, and the right column half in
/// `37356..49808` (b) or from 62260 (d).
///
/// Branch-free and four lanes at a time (SWAR): lanes 0 and 2, then 1 and 3, sit in the low 16 bits
/// of the two 32-bit halves of a word, and `u >= t` is the carry out of `u + (65536 - t)` into bit 16
/// of each half. A quadrant choice is a coin flip no branch predictor can learn, and R-MAT spends
/// most of its time here (26 levels per edge at scale 26).
#[inline(always)]
fn rmat_quadrants(bits: u64) -> (u64, u64) {
    const LANES: u64 = 0x0000_FFFF_0000_FFFF;
    const ONES: u64 = 0x0000_0001_0000_0001;
    #[inline(always)]
    fn at_least(x: u64, t: u64) -> u64 {
        ((x + (0x1_0000 - t) * ONES) >> 16) & ONES
    }
    #[inline(always)]
    fn nibble(even: u64, odd: u64) -> u64 {
        (even & 1) | ((odd & 1) << 1) | ((even >> 32) << 2) | ((odd >> 32) << 3)
    }
    let (even, odd) = (bits & LANES, (bits >> 16) & LANES);
    let (row_e, row_o) = (at_least(even, 49808), at_least(odd, 49808));
    let col_e = (at_least(even, 37356) ^ row_e) | at_least(even, 62260);
    let col_o = (at_least(odd, 37356) ^ row_o) | at_least(odd, 62260);
    (nibble(row_e, row_o), nibble(col_e, col_o))
}

/// Triplets generated per parallel block: each block has its own seed, so the output depends on the
/// seed only, not on the number of threads.
const RANDOM_BLOCK: u64 = 1 << 16;

impl RandomMatrix {
    /// `(rows, cols)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a scale above 62 or empty dimensions.
    pub fn shape(&self) -> Result<(u64, u64)> {
        match *self {
            RandomMatrix::Rmat { scale, .. } if scale <= 62 => Ok((1 << scale, 1 << scale)),
            RandomMatrix::Rmat { scale, .. } => Err(Error::invalid(format!("R-MAT scale {scale} is above 62"))),
            RandomMatrix::Uniform { rows, cols, .. } if cols > 0 || rows == 0 => Ok((rows, cols)),
            RandomMatrix::Uniform { .. } => Err(Error::invalid("a uniform matrix with rows needs at least one column")),
        }
    }

    /// Triplets generated (before duplicates are combined).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the count overflows.
    pub fn triplets(&self) -> Result<u64> {
        let n = match *self {
            RandomMatrix::Rmat { edge_factor, .. } => self.shape()?.0.checked_mul(edge_factor),
            RandomMatrix::Uniform { rows, nnz_per_row, .. } => rows.checked_mul(nnz_per_row),
        };
        n.ok_or_else(|| Error::invalid(format!("{self:?} has too many entries")))
    }

    /// Fills `out` with the triplets of block `block` (of [`RANDOM_BLOCK`] triplets).
    fn block(&self, block: u64, out: &mut Vec<Triplet<f64>>) {
        out.clear();
        let total = self.triplets().unwrap_or(0);
        let first = block * RANDOM_BLOCK;
        let last = (first + RANDOM_BLOCK).min(total);
        match *self {
            RandomMatrix::Rmat { scale, seed, .. } => {
                let mut rng = SplitMix64(seed ^ block.wrapping_mul(0xD1B5_4A32_D192_ED03));
                out.reserve((last - first) as usize);
                let (groups, rest) = (scale / 4, scale % 4);
                for _ in first..last {
                    let (mut r, mut c) = (0u64, 0u64);
                    // Four levels per draw (16 random bits each), decided together.
                    for g in 0..groups {
                        let (dr, dc) = rmat_quadrants(rng.next_u64());
                        r |= dr << (4 * g);
                        c |= dc << (4 * g);
                    }
                    if rest > 0 {
                        let (dr, dc) = rmat_quadrants(rng.next_u64());
                        let mask = (1 << rest) - 1;
                        r |= (dr & mask) << (4 * groups);
                        c |= (dc & mask) << (4 * groups);
                    }
                    out.push(Triplet { row: r, col: c, value: rng.next_f64() });
                }
            }
            RandomMatrix::Uniform { cols, nnz_per_row, seed, .. } => {
                let mut rng = SplitMix64(seed ^ block.wrapping_mul(0xD1B5_4A32_D192_ED03));
                for k in first..last {
                    out.push(Triplet { row: k / nnz_per_row.max(1), col: rng.below(cols), value: rng.next_f64() });
                }
            }
        }
    }
}

/// A generated block of triplets and its bucketed copy for the builder.
type Bucketed<V> = (Vec<Triplet<V>>, crate::builder::Block<V>);

/// Generates `matrix` into `dir` through the triplet builder (generation runs in parallel blocks;
/// the blocks waiting for the builder and the builder's out-of-core sort share
/// `options.memory_budget`, whatever the thread count). `progress` gets the triplets generated.
///
/// # Errors
///
/// As [`TripletBuilder::new`] and [`TripletBuilder::finish`].
pub fn generate_random<V: Element>(
    matrix: &RandomMatrix,
    dir: &Path,
    mut options: BuildOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<(Matrix, BuildStats)> {
    use rayon::prelude::*;
    options.shape = Some(matrix.shape()?);
    let total = matrix.triplets()?;
    let blocks = total.div_ceil(RANDOM_BLOCK);
    // The generated blocks waiting for the builder come out of the budget too: four per thread (enough
    // to keep every thread busy), but no more than an eighth of the budget, nor what would leave the
    // builder less than its minimum (at the minimum budget, one block goes beyond it). A block is
    // held twice: as generated and bucketed for the builder.
    let entry_bytes = std::mem::size_of::<Triplet<V>>() + std::mem::size_of::<Triplet<f64>>();
    let block_bytes = RANDOM_BLOCK * entry_bytes as u64;
    let room = (options.memory_budget / 8).min(options.memory_budget.saturating_sub(crate::budget::MIN_MEMORY_BUDGET));
    let batch = (4 * rayon::current_num_threads() as u64).min(room / block_bytes).max(1);
    if options.memory_budget >= crate::budget::MIN_MEMORY_BUDGET {
        options.memory_budget = (options.memory_budget - batch * block_bytes).max(crate::budget::MIN_MEMORY_BUDGET);
    }
    let mut builder = TripletBuilder::<V>::new(dir, options)?;
    let bucketer = builder.bucketer();
    let mut start = 0;
    while start < blocks {
        crate::interrupt::check()?;
        let end = (start + batch).min(blocks);
        // Generated and bucketed in parallel: the builder's own thread only moves blocks into its
        // chunk (and sorts a full chunk, in parallel too).
        let ready: Vec<Result<Bucketed<V>>> = (start..end)
            .into_par_iter()
            .map(|b| {
                let mut generated = Vec::with_capacity(RANDOM_BLOCK as usize);
                matrix.block(b, &mut generated);
                let triplets: Vec<Triplet<V>> = generated
                    .into_iter()
                    .map(|t| Triplet { row: t.row, col: t.col, value: V::from_f64(t.value) })
                    .collect();
                let block = bucketer.bucket(&triplets)?;
                Ok((triplets, block))
            })
            .collect();
        for r in ready {
            let (triplets, block) = r?;
            builder.push_block(&triplets, block)?;
        }
        start = end;
        progress((end * RANDOM_BLOCK).min(total));
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The four-lane quadrant choice equals deciding each level on its own, at the thresholds and
    /// between them.
    #[test]
    fn rmat_quadrants_match_the_levels_one_by_one() {
        let mut rng = SplitMix64(3);
        let edges = [0u64, 37355, 37356, 49807, 49808, 62259, 62260, 65535];
        let mut words: Vec<u64> = (0..20_000).map(|_| rng.next_u64()).collect();
        for (k, &a) in edges.iter().enumerate() {
            for &b in &edges[k..] {
                words.push(a | b << 16 | a << 32 | b << 48);
                words.push(b | a << 16 | b << 32 | a << 48);
            }
        }
        for bits in words {
            let (mut dr, mut dc) = (0, 0);
            for level in 0..4 {
                let u = (bits >> (16 * level)) & 0xFFFF;
                dr |= u64::from(u >= 49808) << level;
                dc |= u64::from((37356..49808).contains(&u) || u >= 62260) << level;
            }
            assert_eq!(rmat_quadrants(bits), (dr, dc), "{bits:#x}");
        }
    }
}
