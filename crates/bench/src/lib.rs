//! The benchmark harness: `sparsedisk bench` ([`harness`]) and the building blocks it shares with the
//! library's `benches/` programs: spreads of repeated runs, the machine's description, its physical
//! limits (memory and disk bandwidth), memory caps (cgroups), the Python baselines, and the
//! report (JSON lines, Markdown, SVG plots). A client of the `sparsedisk` library like the command
//! line; the library itself knows nothing of benchmarks.
//!
//! # The record (`results.jsonl`)
//!
//! One JSON object per line, one line per measurement ([`Record`]):
//!
//! | field | meaning |
//! |---|---|
//! | `schema` | `1` |
//! | `suite` | `quick`, `full`, `scale`, `smoke` |
//! | `kernel` | `import`, `spmv`, `spmm`, `spgemm`, `pagerank`, `cg`, or `limit` (a physical limit); the scale suite adds `generate`, `verify`, `spmv_transpose`, `bfs`, `components`, `transpose`, `convert`, `export`, `crash` |
//! | `tool` | `sparsedisk`, `sprs`, `scipy`, `numpy.memmap+scipy`, `fast_matrix_market`, `memory-read`, `disk-read`, `disk-write` |
//! | `regime` | `in_core_warm` (files in the page cache) or `out_of_core_cold` (cache dropped first) |
//! | `matrix` | name, kind, rows, cols, nnz, bytes on disk (`null` for limits) |
//! | `params` | threads, repeat, k, tolerance, iterations, ... |
//! | `cap` | `null`, or the memory cap: requested bytes, whether it was applied and why not, peak usage |
//! | `min`, `median`, `max`, `samples` | seconds of each repeated run (all of them, in run order) |
//! | `figures` | `ns_per_nnz`, `gb_per_s` (bytes moved over the median), `seconds_per_op` |
//! | `limit` | the physical limit the figure is compared with, and the fraction of it reached |
//! | `ratios` | baseline median time over ours, per baseline (above 1: sparsedisk is faster) |
//! | `machine`, `versions` | [`Machine`], [`Versions`] |
//! | `note` | why a measurement is missing or qualified, if it is |
//!
//! A scale-suite record ([`scale`]) is one step, one child process: its `samples` hold the child's
//! wall time, `figures.bytes_moved` the data disk's bytes read and written during it, and its
//! `params` the rest: `step` (the plan's label), `wall_seconds`, `device` (`name`, `read_bytes`,
//! `written_bytes`; `null` with `device_note` saying why), `passes` (per-pass figures: `label`,
//! `count`, `seconds`, `bytes` of matrix, `fraction_of_disk_read`), `phases` of builds, `of_disk_read`,
//! `of_disk_write`, `output` (the child's `--json`), and per step what it found (iterations,
//! components, the crash-safety check's `pass` and `state`, ...).

pub mod cgroup;
pub mod harness;
pub mod limits;
pub mod machine;
pub mod python;
pub mod report;
pub mod scale;
pub mod ui;

pub use cgroup::{CapOutcome, MemoryCap};
pub use harness::{run, BenchArgs};
pub use limits::{disk_read_bandwidth, disk_write_bandwidth, memory_read_bandwidth};
pub use machine::{Machine, Versions};

use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Reads a number that may have been written as `null` (JSON has no NaN: serde_json writes NaN and
/// infinities as `null`) back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// As [`nan_if_null`], for each element of a list.
fn nans_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
}

/// Minimum, median and maximum of repeated measurements, with every sample kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Spread {
    /// Smallest sample.
    #[serde(deserialize_with = "nan_if_null")]
    pub min: f64,
    /// Median sample (the upper median for an even count).
    #[serde(deserialize_with = "nan_if_null")]
    pub median: f64,
    /// Largest sample.
    #[serde(deserialize_with = "nan_if_null")]
    pub max: f64,
    /// Every sample, in the order measured.
    #[serde(deserialize_with = "nans_if_null")]
    pub samples: Vec<f64>,
}

impl Spread {
    /// The spread of the finite values of `samples` (all of `samples` are kept; NaN figures when none
    /// is finite).
    pub fn of(samples: &[f64]) -> Spread {
        let mut s: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        s.sort_by(f64::total_cmp);
        let (min, median, max) = match s.len() {
            0 => (f64::NAN, f64::NAN, f64::NAN),
            n => (s[0], s[n / 2], s[n - 1]),
        };
        Spread { min, median, max, samples: samples.to_vec() }
    }

    /// The spread of `f(x)` over the samples (e.g. a rate from seconds): min and max swap places when
    /// `f` is decreasing.
    pub fn map(&self, f: impl Fn(f64) -> f64) -> Spread {
        Spread::of(&self.samples.iter().map(|&x| f(x)).collect::<Vec<_>>())
    }
}

/// Runs `f` `repeat` times (at least once), each after `before` (not timed); returns the seconds of
/// each run and the last run's value.
///
/// # Errors
///
/// The first error of `before` or `f`.
pub fn time_runs<T, E>(
    repeat: usize,
    mut before: impl FnMut() -> Result<(), E>,
    mut f: impl FnMut() -> Result<T, E>,
) -> Result<(Vec<f64>, T), E> {
    let mut seconds = Vec::with_capacity(repeat.max(1));
    let mut last = None;
    for _ in 0..repeat.max(1) {
        before()?;
        let t = Instant::now();
        let value = f()?;
        seconds.push(t.elapsed().as_secs_f64());
        last = Some(value);
    }
    // At least one run happened, so `last` is set.
    Ok((seconds, last.expect("one run at least")))
}

/// The matrix a measurement ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixDesc {
    /// Short name (unique within a run), e.g. `lap2d-1000`.
    pub name: String,
    /// What it is, e.g. `2-D Laplacian n=1000`, or the user's path.
    pub kind: String,
    /// Rows.
    pub rows: u64,
    /// Columns.
    pub cols: u64,
    /// Stored entries.
    pub nnz: u64,
    /// Bytes of its files on disk.
    pub bytes: u64,
}

/// A memory cap as recorded: what was asked, and whether it held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapRecord {
    /// The cap asked for, in bytes.
    pub requested_bytes: u64,
    /// Whether the measured process ran inside a memory cgroup with that limit.
    pub applied: bool,
    /// Why the cap was not applied (`None` when it was).
    pub reason: Option<String>,
    /// Peak memory of the cgroup (anonymous memory and page cache), when applied.
    pub peak_bytes: Option<u64>,
    /// Times the cgroup hit its limit (reclaim was forced), when applied and the kernel counts them
    /// (see [`CapOutcome::limit_hits`]).
    pub limit_hits: Option<u64>,
    /// Processes of the cgroup the OOM killer ended, when applied and the kernel tells (absent in
    /// records written before it was recorded).
    #[serde(default)]
    pub oom_kills: Option<u64>,
}

/// The physical limit a figure is compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitRecord {
    /// `memory read` or `disk cold read`.
    pub name: String,
    /// The limit's median bandwidth, GB/s.
    #[serde(deserialize_with = "nan_if_null")]
    pub gb_per_s: f64,
    /// The figure's median bandwidth (bytes moved over the median time) as a fraction of the limit.
    #[serde(deserialize_with = "nan_if_null")]
    pub fraction: f64,
}

/// Figures derived from a measurement's median.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Figures {
    /// Seconds per operation (a product, or an iteration of an algorithm).
    #[serde(deserialize_with = "nan_if_null")]
    pub seconds_per_op: f64,
    /// Nanoseconds per stored entry per operation.
    #[serde(deserialize_with = "nan_if_null")]
    pub ns_per_nnz: f64,
    /// Bytes moved per operation over the seconds per operation, in GB/s.
    #[serde(deserialize_with = "nan_if_null")]
    pub gb_per_s: f64,
    /// Bytes moved per operation (the matrix's arrays for a product; input and output for import and
    /// SpGEMM).
    pub bytes_moved: u64,
}

/// One measurement: one line of `results.jsonl` (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Format version of the record: 1.
    pub schema: u32,
    /// The suite that ran.
    pub suite: String,
    /// What was measured.
    pub kernel: String,
    /// Who computed it.
    pub tool: String,
    /// `in_core_warm` or `out_of_core_cold`.
    pub regime: String,
    /// The input (`None` for limits).
    pub matrix: Option<MatrixDesc>,
    /// Parameters (threads, repeat, k, tolerance, iterations, ...).
    pub params: serde_json::Value,
    /// The memory cap, if the measurement ran under one.
    pub cap: Option<CapRecord>,
    /// Seconds of each run: min, median, max and all samples.
    #[serde(flatten)]
    pub seconds: Spread,
    /// Figures derived from the median.
    pub figures: Figures,
    /// The physical limit and the fraction of it reached.
    pub limit: Option<LimitRecord>,
    /// Baseline median time over ours, per baseline name.
    pub ratios: std::collections::BTreeMap<String, f64>,
    /// The machine.
    pub machine: Machine,
    /// Versions of the tools.
    pub versions: Versions,
    /// Why the measurement is missing or qualified.
    pub note: Option<String>,
}

/// Fills `figures` from a spread of seconds: `ops` operations per run (iterations), `nnz` entries and
/// `bytes` moved per operation.
pub fn figures(seconds: &Spread, ops: f64, nnz: u64, bytes: u64) -> Figures {
    let per_op = seconds.median / ops.max(1.0);
    Figures {
        seconds_per_op: per_op,
        ns_per_nnz: per_op * 1e9 / (nnz.max(1) as f64),
        gb_per_s: bytes as f64 / per_op / 1e9,
        bytes_moved: bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_keeps_samples_and_ignores_nan_for_order_statistics() {
        let s = Spread::of(&[3.0, f64::NAN, 1.0, 2.0]);
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        assert_eq!(s.samples.len(), 4);
        let r = Spread::of(&[1.0, 2.0, 4.0]).map(|x| 1.0 / x);
        assert_eq!((r.min, r.median, r.max), (0.25, 0.5, 1.0));
        assert!(Spread::of(&[]).median.is_nan());
    }
}
