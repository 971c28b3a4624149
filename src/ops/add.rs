//! `C = alpha A + beta B`: a streaming merge of aligned outer indices.

use super::merge::merge_into;
use super::{OpOptions, OpStats, ProgressFn, Scratch};
use crate::element::{result_type, scalar_type, with_value_type, Element};
use crate::error::{Error, Result};
use crate::format::ValueType;
use crate::matrix::Matrix;
use crate::writer::MatrixWriter;
use std::path::Path;
use std::time::Instant;

/// Options of [`add`].
#[derive(Debug, Clone)]
pub struct AddOptions {
    /// Memory budget and output writer options.
    pub op: OpOptions,
    /// Coefficient of `A`.
    pub alpha: f64,
    /// Coefficient of `B`.
    pub beta: f64,
    /// Drop entries whose value is zero (scipy's `A + B` drops them; kept by default: the output's
    /// structure is the union of the inputs').
    pub drop_zeros: bool,
    /// Value type of the output; `None`: the [`result_type`] of the inputs' value types and the
    /// coefficients' ([`scalar_type`]): int64 when both inputs hold integers (int64 or pattern) and
    /// both coefficients are integers, float64 otherwise. `Pattern` gives the union of the
    /// structures; `Float32` computes in float32.
    pub value_type: Option<ValueType>,
}

impl Default for AddOptions {
    fn default() -> Self {
        AddOptions { op: OpOptions::default(), alpha: 1.0, beta: 1.0, drop_zeros: false, value_type: None }
    }
}

/// `C = alpha A + beta B` (same shape), written to `out` in `A`'s layout. The two matrices are read
/// outer index by outer index, one segment of each mapped at a time; `B` is first converted (out of
/// core) when its layout differs. `A + A^T`, the symmetrisation of a directed graph, is
/// `add(&a, &transpose_of_a, ..)`.
///
/// # Errors
///
/// [`Error::InvalidInput`] when the shapes differ, a coefficient is not finite, or `out` cannot receive
/// a matrix; [`Error::Corrupt`] for an index out of range; [`Error::Io`]. On error nothing is left in
/// `out`.
///
/// # Examples
///
/// ```
/// use sparsedisk::{generators::{generate, Generator}, ops::{add, AddOptions}, Layout, WriterOptions};
/// # let tmp = tempfile::tempdir().unwrap();
/// let a = generate::<f64>(&Generator::Laplace2d { n: 3 }, &tmp.path().join("a"), Layout::Csr, WriterOptions::default())?;
/// let options = AddOptions { alpha: 2.0, beta: -1.0, ..AddOptions::default() };
/// let (c, _) = add(&a, &a, tmp.path().join("c"), &options, None)?;
/// assert_eq!(c.to_sprs()?, a.to_sprs()?);
/// # Ok::<(), sparsedisk::Error>(())
/// ```
pub fn add(
    a: &Matrix,
    b: &Matrix,
    out: impl AsRef<Path>,
    options: &AddOptions,
    progress: Option<ProgressFn<'_>>,
) -> Result<(Matrix, OpStats)> {
    let started = Instant::now();
    options.op.check()?;
    if a.shape() != b.shape() {
        return Err(Error::invalid(format!(
            "cannot add a {} x {} matrix and a {} x {} matrix: the shapes differ",
            a.rows(),
            a.cols(),
            b.rows(),
            b.cols()
        )));
    }
    if !options.alpha.is_finite() || !options.beta.is_finite() {
        return Err(Error::invalid("the coefficients alpha and beta must be finite numbers"));
    }
    let mut scratch = Scratch::new(out.as_ref(), options.op.writer.overwrite)?;
    let mut stats = OpStats { blocks: 1, ..OpStats::default() };
    let mut converted = None;
    let b = super::spgemm::in_layout(b, a.layout(), &mut scratch, &options.op, progress, &mut stats, &mut converted)?;
    let coefficients = result_type(scalar_type(options.alpha), scalar_type(options.beta));
    let vt = options.value_type.unwrap_or(result_type(result_type(a.value_type(), b.value_type()), coefficients));
    let out = out.as_ref();
    let (m, read) = with_value_type!(vt, |V| add_typed::<V>(a, b, out, options, progress)?);
    scratch.published();
    stats.flops = read;
    stats.nnz = m.nnz();
    stats.seconds = started.elapsed().as_secs_f64();
    Ok((m, stats))
}

fn add_typed<T: Element>(
    a: &Matrix,
    b: &Matrix,
    out: &Path,
    options: &AddOptions,
    progress: Option<ProgressFn<'_>>,
) -> Result<(Matrix, u64)> {
    let mut w = MatrixWriter::<T>::create(out, a.shape(), a.layout(), options.op.writer.clone())?;
    let coef = [options.alpha, options.beta];
    let read = merge_into(&[a, b], |s, v: T| v.scale(coef[s]), T::sum, options.drop_zeros, &mut w, "add", progress)?;
    Ok((w.finish()?, read))
}
