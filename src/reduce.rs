//! Reductions over a matrix on disk, each one sequential pass over its segments ([`scan`]):
//! the `k`-th diagonal ([`Matrix::diagonal`]), the sum of every row or column
//! ([`Matrix::line_sums`]) and the sum of all entries ([`Matrix::total`]).
//!
//! Only the result is held in memory (and the one segment being read: a segment with dense blocks
//! is read as its merged rows, see [`MappedSegment::indices`](crate::MappedSegment::indices)).
//! Integer matrices are summed exactly (in `i128`): an `int64` sum whose result leaves the `int64`
//! range is an error, not a wrapped or rounded result (partial sums may leave it); pattern matrices (every stored entry 1) give exact counts.
//! Floating-point sums accumulate in `f64` (`float32` values too) in the order of the stored entries.
//!
//! ```
//! use sparsedisk::{generators::{generate, Generator}, reduce::{Lines, Reduced}, Layout, WriterOptions};
//! # let tmp = tempfile::tempdir().unwrap();
//! # let dir = tmp.path().join("lap");
//! let m = generate::<f64>(&Generator::Laplace2d { n: 3 }, &dir, Layout::Csr, WriterOptions::default())?;
//! assert_eq!(m.diagonal(0)?, Reduced::F64(vec![4.0; 9]));
//! assert_eq!(m.diagonal(9)?, Reduced::F64(vec![])); // beyond the matrix: empty, as in scipy
//! let Reduced::F64(rows) = m.line_sums(Lines::Rows)? else { unreachable!() };
//! assert_eq!(rows[4], 0.0); // the centre of the grid: 4 - 1 - 1 - 1 - 1
//! # Ok::<(), sparsedisk::Error>(())
//! ```

use crate::element::{match_indices, Values};
use crate::error::{Error, Result};
use crate::format::{Layout, ValueType};
use crate::matrix::Matrix;
use crate::scan::scan;
use crate::segment::MappedSegment;

/// The values a reduction returns, in the type that holds them exactly.
#[derive(Debug, Clone, PartialEq)]
pub enum Reduced {
    /// `float64` values (and the diagonal of a pattern matrix: ones and zeros).
    F64(Vec<f64>),
    /// `float32` values (the diagonal of a `float32` matrix).
    F32(Vec<f32>),
    /// `int64` values (of an `int64` matrix; the sums of a pattern matrix: counts).
    I64(Vec<i64>),
}

impl Reduced {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Reduced::F64(v) => v.len(),
            Reduced::F32(v) => v.len(),
            Reduced::I64(v) => v.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A sum of all entries: `f64` for floating-point matrices, `i64` (exact) for `int64` and pattern
/// matrices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Total {
    /// The sum of a `float64` or `float32` matrix, accumulated in `f64`.
    F64(f64),
    /// The exact sum of an `int64` matrix, or the number of stored entries of a pattern matrix.
    I64(i64),
}

/// Which lines [`Matrix::line_sums`] sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// The sum of each row: `rows` values (scipy's `sum(axis=1)`).
    Rows,
    /// The sum of each column: `cols` values (scipy's `sum(axis=0)`).
    Columns,
}

/// Length of the `k`-th diagonal of a `rows x cols` matrix (0 when it lies outside): the entries
/// `(i + max(-k, 0), i + max(k, 0))`, as `numpy.diagonal` and scipy count them.
pub fn diagonal_len(rows: u64, cols: u64, k: i64) -> u64 {
    let (rows, cols, k) = (i128::from(rows), i128::from(cols), i128::from(k));
    let len = (rows + k.min(0)).min(cols - k.max(0));
    len.max(0) as u64
}

fn too_large() -> Error {
    Error::invalid("the result does not fit in memory on this platform")
}

fn len_usize(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| too_large())
}

/// A new vector of `n` zeros, or an error when `n` cannot be held.
fn zeros<T: Clone + Default>(n: u64) -> Result<Vec<T>> {
    let n = len_usize(n)?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| too_large())?;
    v.resize(n, T::default());
    Ok(v)
}

/// Runs `f` on each segment of `m` in order (row pointers checked), stopping at an interruption.
fn each_segment(m: &Matrix, mut f: impl FnMut(&MappedSegment) -> Result<()>) -> Result<()> {
    for seg in scan(m) {
        crate::interrupt::check()?;
        let seg = seg?;
        f(&seg)?;
    }
    Ok(())
}

/// The inner index `ix` of an entry of `seg`, checked against the inner dimension.
fn checked_inner(seg: &MappedSegment, ix: u64) -> Result<usize> {
    if ix >= seg.inner_len() {
        return Err(Error::corrupt(
            seg.path(),
            format!("inner index {ix} is outside the matrix (dimension {})", seg.inner_len()),
        ));
    }
    Ok(ix as usize)
}

fn overflow(what: &str) -> Error {
    Error::invalid(format!("{what} exceeds the int64 range: it cannot be computed exactly"))
}

impl Matrix {
    /// The `k`-th diagonal: entries `(i + max(-k, 0), i + max(k, 0))` for `i` in
    /// `0..`[`diagonal_len`]`(rows, cols, k)` (empty when `k` lies outside the matrix, as in scipy),
    /// zero where nothing is stored. `k > 0` is above the main diagonal. One pass over the
    /// segments, each row searched by bisection (rows are sorted).
    ///
    /// The values are in the stored type: [`Reduced::F64`] for `float64` and pattern matrices
    /// (ones), [`Reduced::F32`], [`Reduced::I64`].
    ///
    /// # Errors
    ///
    /// As [`Matrix::map_segment`] and [`MappedSegment::check_row_pointers`];
    /// [`Error::Interrupted`] on an interruption; [`Error::InvalidInput`] when the result does not
    /// fit in memory.
    // `u64::from` widens the u32 indices; `match_indices!` instantiates it for u64 ones too.
    #[allow(clippy::useless_conversion)]
    pub fn diagonal(&self, k: i64) -> Result<Reduced> {
        let (rows, cols) = self.shape();
        let len = diagonal_len(rows, cols, k);
        // Entry i of the diagonal is at (i + row_off, i + col_off).
        let (row_off, col_off) = ((-i128::from(k)).max(0), i128::from(k).max(0));
        let (outer_off, inner_off) = match self.layout() {
            Layout::Csr => (row_off, col_off),
            Layout::Csc => (col_off, row_off),
        };
        let mut out: Reduced = match self.value_type() {
            ValueType::Float64 | ValueType::Pattern => Reduced::F64(zeros(len)?),
            ValueType::Float32 => Reduced::F32(zeros(len)?),
            ValueType::Int64 => Reduced::I64(zeros(len)?),
        };
        if len == 0 {
            return Ok(out);
        }
        each_segment(self, |seg| {
            // The band's outer indices whose diagonal entry exists: i = outer - outer_off in 0..len.
            let first = i128::from(seg.start()).max(outer_off);
            let last = i128::from(seg.end()).min(outer_off + i128::from(len));
            if first >= last {
                return Ok(());
            }
            let indptr = seg.indptr();
            let values = seg.values();
            match_indices!(seg.indices(), |ix| {
                for outer in first..last {
                    let local = (outer - i128::from(seg.start())) as usize;
                    let i = (outer - outer_off) as usize;
                    let target = (i as u128 + inner_off as u128) as u64;
                    let (a, b) = (indptr[local] as usize, indptr[local + 1] as usize);
                    let Some(row) = ix.get(a..b) else { continue };
                    let at = row.partition_point(|&c| u64::from(c) < target);
                    if at < row.len() && u64::from(row[at]) == target {
                        let k = a + at;
                        match (&mut out, values) {
                            (Reduced::F64(o), Values::F64(v)) => o[i] = v[k],
                            (Reduced::F64(o), Values::Pattern) => o[i] = 1.0,
                            (Reduced::F32(o), Values::F32(v)) => o[i] = v[k],
                            (Reduced::I64(o), Values::I64(v)) => o[i] = v[k],
                            _ => return Err(Error::corrupt(seg.path(), "values of another type than the manifest's")),
                        }
                    }
                }
                Ok(())
            })
        })?;
        Ok(out)
    }

    /// The sum of each row ([`Lines::Rows`]: `rows` values) or of each column ([`Lines::Columns`]:
    /// `cols` values), in one pass over the segments.
    ///
    /// [`Reduced::F64`] for floating-point matrices (`float32` values are summed in `f64`);
    /// [`Reduced::I64`] for `int64` matrices, exact, and for pattern matrices, the number of stored
    /// entries in each line.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when an `int64` sum leaves the `int64` range (naming the line) or
    /// the result does not fit in memory; [`Error::Corrupt`] for an inner index outside the
    /// matrix; as [`Matrix::map_segment`]; [`Error::Interrupted`] on an interruption.
    #[allow(clippy::useless_conversion)] // as in `diagonal`
    pub fn line_sums(&self, lines: Lines) -> Result<Reduced> {
        let (rows, cols) = self.shape();
        let n = match lines {
            Lines::Rows => rows,
            Lines::Columns => cols,
        };
        // Summing along the outer dimension: one value per stored line; else scattered by index.
        let outer = matches!((lines, self.layout()), (Lines::Rows, Layout::Csr) | (Lines::Columns, Layout::Csc));
        let name = match lines {
            Lines::Rows => "row",
            Lines::Columns => "column",
        };
        let mut out = match self.value_type() {
            ValueType::Float64 | ValueType::Float32 => Reduced::F64(zeros(n)?),
            ValueType::Int64 | ValueType::Pattern => Reduced::I64(zeros(n)?),
        };
        // Scattered int64 sums accumulate in i128 (no intermediate sum can overflow it: fewer than
        // 2^64 terms), so that only a final sum outside int64 is an error, whatever the order.
        let mut wide: Vec<i128> = if !outer && self.value_type() == ValueType::Int64 { zeros(n)? } else { Vec::new() };
        each_segment(self, |seg| {
            let indptr = seg.indptr();
            let values = seg.values();
            let start = seg.start() as usize;
            match_indices!(seg.indices(), |ix| {
                for local in 0..indptr.len().saturating_sub(1) {
                    let (a, b) = (indptr[local] as usize, indptr[local + 1] as usize);
                    let line = start + local;
                    let Some(idx) = ix.get(a..b) else { continue };
                    if outer {
                        match (&mut out, values) {
                            (Reduced::F64(o), Values::F64(v)) => o[line] = v[a..b].iter().sum(),
                            (Reduced::F64(o), Values::F32(v)) => o[line] = v[a..b].iter().map(|&x| f64::from(x)).sum(),
                            (Reduced::I64(o), Values::I64(v)) => {
                                let sum: i128 = v[a..b].iter().map(|&x| i128::from(x)).sum();
                                o[line] =
                                    i64::try_from(sum).map_err(|_| overflow(&format!("the sum of {name} {line}")))?
                            }
                            (Reduced::I64(o), Values::Pattern) => o[line] = idx.len() as i64,
                            _ => return Err(Error::corrupt(seg.path(), "values of another type than the manifest's")),
                        }
                    } else {
                        for (k, &c) in (a..b).zip(idx) {
                            let c = checked_inner(seg, u64::from(c))?;
                            match (&mut out, values) {
                                (Reduced::F64(o), Values::F64(v)) => o[c] += v[k],
                                (Reduced::F64(o), Values::F32(v)) => o[c] += f64::from(v[k]),
                                (Reduced::I64(_), Values::I64(v)) => wide[c] += i128::from(v[k]),
                                (Reduced::I64(o), Values::Pattern) => o[c] += 1,
                                _ => {
                                    return Err(Error::corrupt(
                                        seg.path(),
                                        "values of another type than the manifest's",
                                    ))
                                }
                            }
                        }
                    }
                }
                Ok(())
            })
        })?;
        if let Reduced::I64(o) = &mut out {
            for (c, (o, &w)) in o.iter_mut().zip(&wide).enumerate() {
                *o = i64::try_from(w).map_err(|_| overflow(&format!("the sum of {name} {c}")))?;
            }
        }
        Ok(out)
    }

    /// The sum of all entries, in one pass over the segments: [`Total::F64`] for floating-point
    /// matrices (accumulated in `f64`), [`Total::I64`] for `int64` matrices (exact) and pattern
    /// matrices (the number of stored entries).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when an `int64` sum leaves the `int64` range; as
    /// [`Matrix::map_segment`]; [`Error::Interrupted`] on an interruption.
    pub fn total(&self) -> Result<Total> {
        match self.value_type() {
            ValueType::Pattern => {
                i64::try_from(self.nnz()).map(Total::I64).map_err(|_| overflow("the number of entries"))
            }
            ValueType::Int64 => {
                // In i128, as line_sums: only the final sum must fit in int64.
                let mut sum = 0i128;
                each_segment(self, |seg| {
                    let n = seg.indptr().last().copied().unwrap_or(0) as usize;
                    if let Values::I64(v) = seg.values() {
                        let part = v.get(..n).ok_or_else(|| Error::corrupt(seg.path(), "fewer values than entries"))?;
                        sum += part.iter().map(|&x| i128::from(x)).sum::<i128>();
                    }
                    Ok(())
                })?;
                i64::try_from(sum).map(Total::I64).map_err(|_| overflow("the sum of the matrix"))
            }
            ValueType::Float64 | ValueType::Float32 => {
                let mut sum = 0f64;
                each_segment(self, |seg| {
                    let n = seg.indptr().last().copied().unwrap_or(0) as usize;
                    let part = seg
                        .values()
                        .slice(0..n)
                        .ok_or_else(|| Error::corrupt(seg.path(), "fewer values than entries"))?;
                    match part {
                        Values::F64(v) => sum += v.iter().sum::<f64>(),
                        Values::F32(v) => sum += v.iter().map(|&x| f64::from(x)).sum::<f64>(),
                        _ => {}
                    }
                    Ok(())
                })?;
                Ok(Total::F64(sum))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagonal_lengths_follow_numpy() {
        assert_eq!(diagonal_len(3, 5, 0), 3);
        assert_eq!(diagonal_len(3, 5, 2), 3);
        assert_eq!(diagonal_len(3, 5, 3), 2);
        assert_eq!(diagonal_len(3, 5, 4), 1);
        assert_eq!(diagonal_len(3, 5, 5), 0);
        assert_eq!(diagonal_len(3, 5, -1), 2);
        assert_eq!(diagonal_len(3, 5, -3), 0);
        assert_eq!(diagonal_len(0, 5, 0), 0);
        assert_eq!(diagonal_len(u64::MAX, u64::MAX, i64::MIN), u64::MAX - (1u64 << 63));
    }
}
