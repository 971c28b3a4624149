//! `sparsedisk bench --suite scale`: sparsedisk at the sizes it exists for, on this machine, under a
//! memory cap far below the data (issue #17).
//!
//! The plan (`--scale-size full`, the default; `--dry-run` prints it with its disk use):
//!
//! 1. the disk's cold sequential read bandwidth and its sequential write bandwidth (write + `fsync`),
//!    on the data directory, in the same run;
//! 2. an R-MAT graph of scale 26, edge factor 16 (`generate rmat`, sorted out of core), then on it
//!    `verify`, SpMV (the first product cold, the next ones steady), transposed SpMV, PageRank to
//!    1e-8, BFS from vertex 0, connected components, `transpose` and `convert --layout csc` (each
//!    output removed right after it is measured), and the graph removed;
//! 3. the smallest 27-point 3-D Laplacian with at least 10^9 nonzeros (n = 334: (3 n - 2)^3 =
//!    10^9 exactly, 37.3 M rows), then `verify`, SpMV, transposed SpMV and 100 CG iterations, and the
//!    Laplacian removed (27-point because the 7-point one of 10^9 nonzeros has 143.9 M rows, and
//!    CG's vectors alone would not fit in the 4 GiB cap);
//! 4. an R-MAT graph of scale 25 exported to Matrix Market text (edge factor 18: with 16 the text
//!    is about 18.4 GB, 34-35 bytes per entry as measured at scales 22-23, below the 20 GB asked
//!    for), the matrix removed, the text imported (measured), a slice of the text's first entries
//!    (about 1 GB, with its own size line) imported by sparsedisk and read by fast_matrix_market's
//!    `read_coo`, so that the MB/s of text compare on the same bytes;
//! 5. crash safety: the same import run again with `--force` onto its own output and killed
//!    (SIGKILL) at 10%, 50% and 90% of the measured import's time, in its merge and in its publish
//!    (when they fall, as the measured import's phases place them), and once into a new directory;
//!    after each kill the output must still be the previous matrix (it opens, verifies, same nnz)
//!    or, for the new directory, hold no matrix; the debris a kill leaves is removed (`clean`) so
//!    the disk does not fill; a final `import --force` must succeed and verify.
//!
//! Every measured step is a child process of this binary (`std::env::current_exe`), or of the
//! project's Python for fast_matrix_market, started after its inputs' pages were dropped from the
//! page cache ([`evict_page_cache`]) in a fresh memory cgroup ([`MemoryCap`]: page cache included)
//! whose peak usage and limit hits are read after it exits; around it the harness reads the I/O
//! counters of the data directory's block device (`/proc/diskstats`: sectors read and written,
//! device-wide, so other processes' I/O on the same disk counts too). A failed step is recorded with
//! its reason and the suite goes on with what does not depend on it.
//!
//! **Disk space.** Before it starts, the suite adds up what each step leaves on the disk and what it
//! needs only while it runs (sorted runs of 24 bytes per triplet, an output removed right after), with
//! upper bounds (R-MAT's triplets for its nonzeros, 36 bytes of text per entry), and refuses to start
//! when `statvfs` of the data directory says the peak does not fit; before each step it checks again
//! with the real free space, and skips the step (recorded) rather than fill the disk.
//!
//! The records go to the harness's `results.jsonl` (suite `scale`, regime `out_of_core_cold`; the
//! step's figures are in `params`), the tables to `report.md`, and the README's "At scale" table to
//! `scale-fragment.md` ([`fragment`]).

use crate::cgroup::MemoryCap;
use crate::harness::BenchArgs;
use crate::python::{last_json, Python};
use crate::report::{limits_table, num, secs};
use crate::ui::{emit, plan_bar};
use crate::{disk_read_bandwidth, disk_write_bandwidth, figures, CapRecord, LimitRecord, Machine, MatrixDesc, Record};
use crate::{Spread, Versions};
use clap::ValueEnum;
use serde_json::{json, Value};
use sparsedisk::storage::{evict_page_cache, free_space};
use sparsedisk::units::format_bytes;
use sparsedisk::{Error, Matrix, Result};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufRead, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The sizes of the scale suite (`--scale-size`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScaleSize {
    /// Seconds: R-MAT 12, a 27-point 3-D Laplacian of about 100 K nonzeros, under a 256 MiB cap (tests).
    Tiny,
    /// A few minutes: R-MAT 20, a 27-point 3-D Laplacian of about 30 M nonzeros, under a 512 MiB cap.
    Small,
    /// About half an hour to 40 minutes (estimated from the small size) and 53 GB of disk at the peak:
    /// R-MAT 26, a 27-point 3-D Laplacian of 10^9 nonzeros, a 20 GB Matrix Market import, under a 4 GiB cap.
    Full,
}

impl ScaleSize {
    fn name(self) -> &'static str {
        match self {
            ScaleSize::Tiny => "tiny",
            ScaleSize::Small => "small",
            ScaleSize::Full => "full",
        }
    }
}

/// CG runs exactly this many iterations (`--tol 0`: it never converges, so it stops at the limit).
const CG_ITERATIONS: usize = 100;

/// PageRank's tolerance (L1 change of the ranks).
const PAGERANK_TOL: &str = "1e-8";

/// Bytes per triplet of the out-of-core sort's runs: two `u64` indices and an `f64` value.
const SPILL_BYTES_PER_TRIPLET: u64 = 24;

/// Upper bound of the Matrix Market text per R-MAT entry up to scale 25 (measured: 31.9 bytes at
/// scale 20, 33.4 at 22, 33.8 at 23; two indices, a shortest round-trip `f64`, separators).
const TEXT_BYTES_PER_ENTRY: u64 = 36;

/// Kept free beyond the estimated peak: the estimates are upper bounds, but files the suite does not
/// know of (the report, the Python script, other processes) share the disk.
const SPACE_MARGIN: u64 = 2 << 30;

/// The sizes of one run.
#[derive(Debug, Clone)]
struct Profile {
    size: ScaleSize,
    /// The memory cap of every child, page cache included.
    cap: u64,
    /// Grid points per side of the 27-point 3-D Laplacian.
    lap_n: u64,
    /// Scale and edge factor of the R-MAT graph the graph steps run on.
    graph: (u32, u64),
    /// Scale and edge factor of the R-MAT graph whose text is imported.
    text: (u32, u64),
    /// Products per SpMV run: the first cold, the others steady.
    products: usize,
    /// Bytes of entries in fast_matrix_market's slice of the text.
    slice_bytes: u64,
    /// Bytes of the disk bandwidth probes.
    probe_bytes: u64,
}

/// Nonzeros of the 27-point Laplacian on an `n x n x n` grid (`n >= 1`): the 3 x 3 x 3 box of each
/// point, clipped at the faces, `(3 n - 2)^3` ([`Generator::Laplace3d27`]).
///
/// The suite uses the 27-point Laplacian rather than the 7-point one because at 10^9 nonzeros the
/// 7-point one has 143.9 M rows (n = 524), and CG's vectors alone (the library counts 6 of them:
/// 6.9 GB) exceed the full size's 4 GiB cap; the 27-point one has 37.3 M rows (n = 334, 1.8 GB).
///
/// [`Generator::Laplace3d27`]: sparsedisk::generators::Generator::Laplace3d27
fn laplace3d_nnz(n: u64) -> u64 {
    (3 * n - 2).pow(3)
}

/// The smallest `n` whose 27-point 3-D Laplacian has at least `nnz` nonzeros.
fn laplace3d_n(nnz: u64) -> u64 {
    let mut n = ((nnz as f64).cbrt() as u64 / 3).max(1);
    while n > 1 && laplace3d_nnz(n - 1) >= nnz {
        n -= 1;
    }
    while laplace3d_nnz(n) < nnz {
        n += 1;
    }
    n
}

impl Profile {
    fn new(size: ScaleSize, cap: Option<u64>, products: Option<usize>) -> Profile {
        let (default_cap, lap_nnz, graph, text, k, slice_bytes, probe_bytes) = match size {
            ScaleSize::Tiny => (256u64 << 20, 100_000, (12, 16), (11, 16), 3, 256 << 10, 16 << 20),
            ScaleSize::Small => (512 << 20, 30_000_000, (20, 16), (19, 16), 4, 32 << 20, 256 << 20),
            ScaleSize::Full => (4 << 30, 1_000_000_000, (26, 16), (25, 18), 5, 1_000_000_000, 4 << 30),
        };
        Profile {
            size,
            cap: cap.unwrap_or(default_cap),
            lap_n: laplace3d_n(lap_nnz),
            graph,
            text,
            products: products.unwrap_or(k).max(2),
            slice_bytes,
            probe_bytes,
        }
    }
}

/// The matrices of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Which {
    /// The R-MAT graph of the graph steps.
    Graph,
    /// The 3-D Laplacian.
    Laplacian,
    /// The R-MAT graph exported as text.
    Text,
    /// The text imported.
    Imported,
}

/// The steps of the plan, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    DiskRead,
    DiskWrite,
    Generate(Which),
    Verify(Which),
    /// SpMV, transposed when `true`.
    Spmv(Which, bool),
    Pagerank,
    Bfs,
    Components,
    Cg,
    Transpose,
    Convert,
    Export,
    Remove(Which),
    Slice,
    Import,
    ImportSlice,
    Fmm,
    Crash,
}

fn plan() -> Vec<Task> {
    use Task::*;
    use Which::*;
    vec![
        DiskRead,
        DiskWrite,
        Generate(Graph),
        Verify(Graph),
        Spmv(Graph, false),
        Spmv(Graph, true),
        Pagerank,
        Bfs,
        Components,
        Transpose,
        Convert,
        Remove(Graph),
        Generate(Laplacian),
        Verify(Laplacian),
        Spmv(Laplacian, false),
        Spmv(Laplacian, true),
        Cg,
        Remove(Laplacian),
        Generate(Text),
        Export,
        Remove(Text),
        Slice,
        Import,
        ImportSlice,
        Fmm,
        Crash,
    ]
}

/// What occupies the disk between steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    Matrix(Which),
    Text,
    Slice,
}

impl Profile {
    fn rmat_name(scale: u32, edge_factor: u64) -> String {
        if edge_factor == 16 {
            format!("rmat-{scale}")
        } else {
            format!("rmat-{scale}-ef{edge_factor}")
        }
    }

    fn name(&self, w: Which) -> String {
        match w {
            Which::Graph => Profile::rmat_name(self.graph.0, self.graph.1),
            Which::Laplacian => format!("lap3d27-{}", self.lap_n),
            Which::Text => Profile::rmat_name(self.text.0, self.text.1),
            Which::Imported => format!("{}-imported", self.name(Which::Text)),
        }
    }

    fn kind(&self, w: Which) -> String {
        match w {
            Which::Graph => format!("R-MAT scale {}, edge factor {}", self.graph.0, self.graph.1),
            Which::Laplacian => format!("3-D Laplacian, 27-point, n={}", self.lap_n),
            Which::Text => format!("R-MAT scale {}, edge factor {}", self.text.0, self.text.1),
            Which::Imported => format!("{}.mtx imported", self.name(Which::Text)),
        }
    }

    /// Rows and an upper bound of the nonzeros (R-MAT: its triplets, before duplicates combine).
    fn shape(&self, w: Which) -> (u64, u64) {
        match w {
            Which::Graph => (1 << self.graph.0, self.graph.1 << self.graph.0),
            Which::Laplacian => (self.lap_n.pow(3), laplace3d_nnz(self.lap_n)),
            Which::Text | Which::Imported => (1 << self.text.0, self.text.1 << self.text.0),
        }
    }

    /// Bytes on disk, at most: a 4-byte index and an 8-byte value per nonzero, an 8-byte pointer per
    /// row, 1% for metadata and segment boundaries.
    fn matrix_bytes(&self, w: Which) -> u64 {
        let (rows, nnz) = self.shape(w);
        (12 * nnz + 8 * (rows + 1)) / 100 * 101
    }

    /// Bytes of sorted runs while it is built (the formula generators write in order, unsorted).
    fn spill_bytes(&self, w: Which) -> u64 {
        match w {
            Which::Laplacian => 0,
            _ => SPILL_BYTES_PER_TRIPLET * self.shape(w).1,
        }
    }

    fn text_bytes(&self) -> u64 {
        TEXT_BYTES_PER_ENTRY * self.shape(Which::Text).1
    }

    fn label(&self, task: Task) -> String {
        let name = |w| self.name(w);
        match task {
            Task::DiskRead => format!("disk cold sequential read ({} probe)", format_bytes(self.probe_bytes)),
            Task::DiskWrite => format!("disk sequential write + fsync ({} probe)", format_bytes(self.probe_bytes)),
            Task::Generate(w) => format!("generate {}", name(w)),
            Task::Verify(w) => format!("verify {}", name(w)),
            Task::Spmv(w, false) => format!("spmv {} x{}", name(w), self.products),
            Task::Spmv(w, true) => format!("spmv --transpose {} x{}", name(w), self.products),
            Task::Pagerank => format!("pagerank {} (tol {PAGERANK_TOL})", name(Which::Graph)),
            Task::Bfs => format!("bfs {} from vertex 0", name(Which::Graph)),
            Task::Components => format!("components {}", name(Which::Graph)),
            Task::Cg => format!("cg {}, {CG_ITERATIONS} iterations", name(Which::Laplacian)),
            Task::Transpose => format!("transpose {}", name(Which::Graph)),
            Task::Convert => format!("convert {} --layout csc", name(Which::Graph)),
            Task::Export => format!("export {} to {}.mtx", name(Which::Text), name(Which::Text)),
            Task::Remove(w) => format!("remove {}", name(w)),
            Task::Slice => {
                format!("slice the first {} of {}.mtx", format_bytes(self.slice_bytes), name(Which::Text))
            }
            Task::Import => format!("import {}.mtx", name(Which::Text)),
            Task::ImportSlice => "import the slice".to_string(),
            Task::Fmm => "fast_matrix_market read_coo of the slice".to_string(),
            Task::Crash => "crash safety: imports killed (SIGKILL), then one let finish".to_string(),
        }
    }

    /// What `task` does to the disk, estimated: bytes it needs only while it runs (sorted runs, an
    /// output removed right after), what it leaves, what it removes.
    fn disk_effect(&self, task: Task) -> (u64, Vec<(Item, u64)>, Vec<Item>) {
        let vector = |w| 8 * self.shape(w).0;
        match task {
            Task::DiskRead | Task::DiskWrite => (self.probe_bytes, vec![], vec![]),
            Task::Generate(w) => (self.spill_bytes(w), vec![(Item::Matrix(w), self.matrix_bytes(w))], vec![]),
            Task::Verify(_) | Task::Spmv(..) | Task::Fmm => (0, vec![], vec![]),
            Task::Pagerank | Task::Bfs | Task::Components => (vector(Which::Graph), vec![], vec![]),
            Task::Cg => (vector(Which::Laplacian), vec![], vec![]),
            Task::Transpose | Task::Convert => {
                (self.spill_bytes(Which::Graph) + self.matrix_bytes(Which::Graph), vec![], vec![])
            }
            Task::Export => (0, vec![(Item::Text, self.text_bytes())], vec![]),
            Task::Remove(w) => (0, vec![], vec![Item::Matrix(w)]),
            Task::Slice => (0, vec![(Item::Slice, self.slice_bytes + (1 << 20))], vec![]),
            Task::Import => (
                self.spill_bytes(Which::Text),
                vec![(Item::Matrix(Which::Imported), self.matrix_bytes(Which::Text))],
                vec![],
            ),
            // A slice's lines are at least 16 bytes: its runs and matrix, 24 + 12 bytes per entry.
            Task::ImportSlice => (3 * self.slice_bytes, vec![], vec![]),
            // A second copy of the imported matrix and its runs beside the first; the debris of each
            // kill is removed before the next run.
            Task::Crash => (self.spill_bytes(Which::Text) + self.matrix_bytes(Which::Text), vec![], vec![]),
        }
    }

    /// Per step, the estimated bytes in use on the disk while it runs; and the peak, with its step.
    fn ledger(&self) -> (Vec<(Task, u64)>, u64, Task) {
        let mut held: BTreeMap<Item, u64> = BTreeMap::new();
        let mut rows = Vec::new();
        let (mut peak, mut at) = (0, Task::DiskRead);
        for task in plan() {
            let (transient, adds, removes) = self.disk_effect(task);
            let during = held.values().sum::<u64>() + transient + adds.iter().map(|a| a.1).sum::<u64>();
            if during > peak {
                (peak, at) = (during, task);
            }
            rows.push((task, during));
            held.extend(adds);
            for r in removes {
                held.remove(&r);
            }
        }
        (rows, peak, at)
    }

    /// The dense vectors a step holds, as the library counts them when it sizes its resident matrix
    /// (`algo::operator`): count and bytes.
    fn vectors(&self, task: Task) -> Option<(u64, u64)> {
        let (count, w) = match task {
            Task::Spmv(w, _) => (2, w),
            Task::Pagerank => (5, Which::Graph),
            Task::Bfs | Task::Components => (1, Which::Graph),
            Task::Cg => (6, Which::Laplacian),
            _ => return None,
        };
        Some((count, count * 8 * self.shape(w).0))
    }

    /// The steps whose dense vectors alone do not fit under the cap, as sentences.
    fn memory_warnings(&self) -> Vec<String> {
        plan()
            .into_iter()
            .filter_map(|task| {
                let (count, bytes) = self.vectors(task)?;
                (bytes > self.cap).then(|| {
                    format!(
                        "{}: its {count} dense vectors take {}, more than the {} cap: expect the cgroup to kill it \
                         (the report shows it failed, with its limit hits)",
                        self.label(task),
                        format_bytes(bytes),
                        format_bytes(self.cap)
                    )
                })
            })
            .collect()
    }

    /// Generous bytes of I/O a step does, for its time limit.
    fn expected_io(&self, task: Task) -> u64 {
        let m = |w| self.matrix_bytes(w);
        match task {
            Task::Generate(w) => 2 * self.spill_bytes(w) + m(w),
            Task::Verify(w) => m(w),
            Task::Spmv(w, _) => self.products as u64 * m(w),
            // PageRank to 1e-8 took 21 iterations on R-MAT 20; BFS levels read part of the matrix each.
            Task::Pagerank => 100 * m(Which::Graph),
            Task::Bfs => 20 * m(Which::Graph),
            Task::Components => m(Which::Graph),
            Task::Cg => (CG_ITERATIONS as u64 + 1) * m(Which::Laplacian),
            Task::Transpose | Task::Convert => 2 * self.spill_bytes(Which::Graph) + 2 * m(Which::Graph),
            Task::Export => m(Which::Text) + self.text_bytes(),
            Task::Import | Task::Crash => self.text_bytes() + 2 * self.spill_bytes(Which::Text) + m(Which::Text),
            Task::ImportSlice | Task::Fmm => 4 * self.slice_bytes,
            _ => 0,
        }
    }
}

/// The block device holding the data directory, whose I/O counters frame each step.
#[derive(Debug, Clone)]
struct Device {
    major: u64,
    minor: u64,
    name: String,
}

impl Device {
    /// The device of `path`, as `/proc/diskstats` lists it.
    fn of(path: &Path) -> std::result::Result<Device, String> {
        let dev = device_number(path)?;
        // Linux's encoding of dev_t (glibc's gnu_dev_major / gnu_dev_minor).
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xffff_f000);
        let minor = (dev & 0xff) | ((dev >> 12) & 0xffff_ff00);
        let probe = Device { major, minor, name: String::new() };
        let (name, _, _) = probe.line()?.ok_or_else(|| {
            format!(
                "{} is on device {major}:{minor}, which /proc/diskstats does not list (a filesystem without a \
                 block device of its own: tmpfs, overlayfs, a btrfs subvolume, ...)",
                path.display()
            )
        })?;
        Ok(Device { major, minor, name })
    }

    /// The device's line of `/proc/diskstats`: name, bytes read, bytes written (sectors of 512
    /// bytes, whatever the device's own sector size).
    fn line(&self) -> std::result::Result<Option<(String, u64, u64)>, String> {
        let text =
            std::fs::read_to_string("/proc/diskstats").map_err(|e| format!("cannot read /proc/diskstats: {e}"))?;
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[0].parse() != Ok(self.major) || f[1].parse() != Ok(self.minor) {
                continue;
            }
            let sectors = |i: usize| f[i].parse::<u64>().map_err(|_| format!("/proc/diskstats: cannot read {line:?}"));
            return Ok(Some((f[2].to_string(), 512 * sectors(5)?, 512 * sectors(9)?)));
        }
        Ok(None)
    }

    /// Bytes read and written so far.
    fn counters(&self) -> std::result::Result<(u64, u64), String> {
        let (_, read, written) = self.line()?.ok_or_else(|| format!("{} left /proc/diskstats", self.name))?;
        Ok((read, written))
    }
}

#[cfg(unix)]
fn device_number(path: &Path) -> std::result::Result<u64, String> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path).map_err(|e| format!("cannot read the metadata of {}: {e}", path.display()))?.dev())
}

#[cfg(not(unix))]
fn device_number(_: &Path) -> std::result::Result<u64, String> {
    Err("block device counters are read from Linux's /proc/diskstats".into())
}

/// The signal that ended a process, if one did.
#[cfg(unix)]
fn signal_of(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

#[cfg(not(unix))]
fn signal_of(_: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// Writes every dirty page to the disks (`sync`), so that a step's buffered writes count in its own
/// device counters and not the next step's. Untimed; a missing `sync` only blurs the counters.
fn sync_disks() {
    let _ = Command::new("sync").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// A child process to measure.
#[derive(Debug, Clone)]
struct Child {
    /// The record's kernel: `generate`, `spmv`, ...
    kernel: &'static str,
    /// The record's tool: `sparsedisk` or `fast_matrix_market`.
    tool: &'static str,
    /// The plan's label of the step.
    label: String,
    /// The matrix the step runs on (or builds), by name.
    matrix: String,
    program: OsString,
    args: Vec<OsString>,
    /// Files or directories whose pages are dropped before it starts.
    evict: Vec<PathBuf>,
    /// SIGKILL it this many seconds after it starts (the crash-safety runs).
    kill_after: Option<f64>,
    /// Stop it after this many seconds: a process thrashing under its cap can run for hours.
    limit: f64,
}

/// How a child ended.
#[derive(Debug, Clone, PartialEq)]
enum Exit {
    Success,
    /// Exit status or signal, and the last lines of its standard error.
    Failed(String),
    /// Killed by the harness, as asked, this many seconds after it started.
    Killed(f64),
    /// Stopped by the harness at its time limit.
    TimedOut(f64),
}

/// What a child did.
#[derive(Debug, Clone)]
struct Ran {
    wall: f64,
    exit: Exit,
    /// Its last line of standard output, as JSON.
    json: Option<Value>,
    stderr: String,
    cap: CapRecord,
    /// Bytes read and written on the data's device while it ran, or why they are unknown.
    io: std::result::Result<(u64, u64), String>,
}

impl Ran {
    /// The JSON a successful child printed.
    fn output(&self) -> Option<&Value> {
        self.json.as_ref().filter(|_| self.exit == Exit::Success)
    }
}

/// A per-pass figure of a step: `count` passes (products, iterations, levels) of `seconds` each,
/// reading `bytes` of matrix each (`None` when a pass reads only part of it, as a BFS level does).
struct Pass {
    label: &'static str,
    count: u64,
    seconds: f64,
    bytes: Option<u64>,
}

/// A matrix built in this run.
#[derive(Debug, Clone)]
struct Built {
    dir: PathBuf,
    desc: MatrixDesc,
}

/// A Matrix Market file written in this run.
#[derive(Debug, Clone)]
struct TextFile {
    path: PathBuf,
    bytes: u64,
    entries: u64,
    rows: u64,
    cols: u64,
}

/// The state of a run.
struct Scale {
    profile: Profile,
    /// The suite's own directory inside the data directory, removed first.
    work: PathBuf,
    exe: PathBuf,
    device: std::result::Result<Device, String>,
    python: std::result::Result<Python, String>,
    machine: Machine,
    versions: Versions,
    records: Vec<Record>,
    read_gbs: Option<f64>,
    write_gbs: Option<f64>,
    built: BTreeMap<Which, Built>,
    text: Option<TextFile>,
    slice: Option<TextFile>,
    /// The measured import: its wall time and its `--json`.
    import: Option<(f64, Value)>,
}

/// The last lines of a child's standard error, joined.
fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

fn dir_bytes(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            std::fs::read_dir(path).map(|entries| entries.flatten().map(|e| dir_bytes(&e.path())).sum()).unwrap_or(0)
        }
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

fn remove_path(path: &Path) -> Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        _ => std::fs::remove_file(path),
    };
    result.map_err(|e| Error::io(path, "removing", e))
}

fn seconds_of(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

/// The relative residual in CG's "did not converge" message: `... relative residual 1.234e-3 > tol`.
fn residual_in(stderr: &str) -> Option<f64> {
    let after = stderr.split("relative residual ").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

/// Writes the first entries of the Matrix Market file `mtx` to `out`: its banner, a size line with
/// their count, and whole entry lines until at least `bytes` bytes of them (or all). Streams: two
/// passes over the slice's part of the file, no copy in memory.
fn write_slice(mtx: &Path, out: &Path, bytes: u64) -> Result<TextFile> {
    let file = std::fs::File::open(mtx).map_err(|e| Error::io(mtx, "opening", e))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let next = |reader: &mut std::io::BufReader<std::fs::File>, line: &mut Vec<u8>| -> Result<u64> {
        line.clear();
        let n = reader.read_until(b'\n', line).map_err(|e| Error::io(mtx, "reading", e))?;
        Ok(n as u64)
    };
    let mut offset = next(&mut reader, &mut line)?;
    if !line.starts_with(b"%%MatrixMarket") {
        return Err(Error::invalid(format!("{} does not start with a Matrix Market banner", mtx.display())));
    }
    let banner = line.clone();
    let (rows, cols) = loop {
        let n = next(&mut reader, &mut line)?;
        if n == 0 {
            return Err(Error::invalid(format!("{} has no size line", mtx.display())));
        }
        offset += n;
        let text = String::from_utf8_lossy(&line);
        if text.starts_with('%') || text.trim().is_empty() {
            continue;
        }
        let fields: Vec<u64> = text.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        match fields[..] {
            [rows, cols, _] => break (rows, cols),
            _ => return Err(Error::invalid(format!("{}: cannot read the size line {:?}", mtx.display(), text.trim()))),
        }
    };
    let start = offset;
    let mut entries = 0u64;
    while offset - start < bytes {
        let n = next(&mut reader, &mut line)?;
        if n == 0 {
            break;
        }
        offset += n;
        entries += 1;
    }
    let length = offset - start;
    let mut source = reader.into_inner();
    source.seek(std::io::SeekFrom::Start(start)).map_err(|e| Error::io(mtx, "seeking", e))?;
    let f = std::fs::File::create(out).map_err(|e| Error::io(out, "creating", e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    w.write_all(&banner)
        .and_then(|()| writeln!(w, "{rows} {cols} {entries}"))
        .and_then(|()| std::io::copy(&mut source.take(length), &mut w).map(drop))
        .map_err(|e| Error::io(out, "writing", e))?;
    let f = w.into_inner().map_err(|e| Error::io(out, "writing", e.into_error()))?;
    f.sync_all().map_err(|e| Error::io(out, "syncing", e))?;
    let written = f.metadata().map_err(|e| Error::io(out, "reading metadata", e))?.len();
    Ok(TextFile { path: out.to_path_buf(), bytes: written, entries, rows, cols })
}

impl Scale {
    /// A `sparsedisk ARGS...` child for `task`, with no input to evict yet.
    fn sparsedisk(&self, kernel: &'static str, task: Task, matrix: &str, args: &[&dyn Arg]) -> Child {
        // Ten times the step's I/O at the disk's read bandwidth, plus five minutes: a guard against a
        // child thrashing under its cap, never reached by one that works.
        let limit = 300.0 + 10.0 * self.profile.expected_io(task) as f64 / (self.read_gbs.unwrap_or(0.1) * 1e9);
        Child {
            kernel,
            tool: "sparsedisk",
            label: self.profile.label(task),
            matrix: matrix.to_string(),
            program: self.exe.clone().into_os_string(),
            // The harness's thread count (`sparsedisk --threads N bench`, else all cores) for every step.
            args: ["--threads".into(), rayon::current_num_threads().to_string().into()]
                .into_iter()
                .chain(args.iter().map(|a| a.os()))
                .collect(),
            evict: Vec::new(),
            kill_after: None,
            limit,
        }
    }

    /// Runs `c` from a cold cache of its inputs, in a fresh memory cgroup, between two readings of the
    /// device's counters.
    fn run(&self, c: &Child) -> Result<Ran> {
        for p in &c.evict {
            evict_page_cache(p)?;
        }
        sync_disks();
        let capped = MemoryCap::create(self.profile.cap);
        let mut cmd = match &capped {
            Ok(cap) => cap.command(&c.program, &c.args),
            Err(_) => {
                let mut cmd = Command::new(&c.program);
                cmd.args(&c.args);
                cmd
            }
        };
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let before = self.device.as_ref().map_err(Clone::clone).and_then(Device::counters);
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::invalid(format!("{}: cannot run {}: {e}", c.label, Path::new(&c.program).display())))?;
        let (stdout, stderr) = crate::python::drain_pipes(&mut child);
        let waited = |e: std::io::Error| Error::invalid(format!("{}: cannot wait for the child: {e}", c.label));
        let exit = loop {
            if let Some(status) = child.try_wait().map_err(waited)? {
                break if status.success() { Exit::Success } else { Exit::Failed(status.to_string()) };
            }
            let t = started.elapsed().as_secs_f64();
            let kill = c.kill_after.is_some_and(|k| t >= k);
            if kill || t > c.limit {
                let _ = child.kill();
                let status = child.wait().map_err(waited)?;
                // It may have finished between the last look and the signal.
                break match (status.success(), signal_of(&status)) {
                    (true, _) => Exit::Success,
                    (false, Some(9)) if kill => Exit::Killed(t),
                    (false, Some(9)) => Exit::TimedOut(t),
                    (false, _) => Exit::Failed(status.to_string()),
                };
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let wall = match exit {
            Exit::Killed(t) | Exit::TimedOut(t) => t,
            _ => started.elapsed().as_secs_f64(),
        };
        let stdout = stdout.join().unwrap_or_default();
        let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
        sync_disks();
        let after = self.device.as_ref().map_err(Clone::clone).and_then(Device::counters);
        let io = match (before, after) {
            (Ok(b), Ok(a)) => Ok((a.0.saturating_sub(b.0), a.1.saturating_sub(b.1))),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let cap = match &capped {
            Ok(cap) => {
                let o = cap.outcome();
                CapRecord {
                    requested_bytes: self.profile.cap,
                    applied: true,
                    reason: None,
                    peak_bytes: o.peak_bytes,
                    limit_hits: o.limit_hits,
                    oom_kills: o.oom_kills,
                }
            }
            Err(why) => CapRecord {
                requested_bytes: self.profile.cap,
                applied: false,
                reason: Some(format!("cap: not applied, {why}")),
                peak_bytes: None,
                limit_hits: None,
                oom_kills: None,
            },
        };
        drop(capped);
        let exit = match exit {
            Exit::Failed(status) => {
                let why = if cap.oom_kills.is_some_and(|k| k > 0) {
                    " (the cgroup's OOM killer: out of memory under the cap)"
                } else {
                    ""
                };
                Exit::Failed(format!("{status}{why}: {}", tail(&stderr)))
            }
            other => other,
        };
        Ok(Ran { wall, exit, json: last_json(&stdout), stderr, cap, io })
    }

    /// Records a step: its wall time, device I/O, cap outcome and per-pass figures.
    fn record(
        &mut self,
        c: &Child,
        ran: &Ran,
        desc: Option<MatrixDesc>,
        passes: &[Pass],
        extra: Value,
        note: Option<String>,
    ) {
        let read_bw = self.read_gbs.unwrap_or(f64::NAN) * 1e9;
        let write_bw = self.write_gbs.unwrap_or(f64::NAN) * 1e9;
        let (read, written) = ran.io.as_ref().map_or((None, None), |&(r, w)| (Some(r), Some(w)));
        let pass_values: Vec<Value> = passes
            .iter()
            .map(|p| {
                let fraction = p.bytes.map(|b| b as f64 / p.seconds / read_bw);
                json!({"label": p.label, "count": p.count, "seconds": p.seconds, "bytes": p.bytes,
                       "fraction_of_disk_read": fraction})
            })
            .collect();
        // Streaming steps: the matrix's bytes per pass over the time per pass; the others: what the
        // device read over the wall time.
        let of_read = passes
            .iter()
            .find_map(|p| p.bytes.map(|b| b as f64 / p.seconds / read_bw))
            .or(read.map(|r| r as f64 / ran.wall / read_bw))
            .filter(|f| f.is_finite());
        let of_write = written.map(|w| w as f64 / ran.wall / write_bw).filter(|f| f.is_finite());
        let mut params = json!({
            "step": c.label,
            "matrix_name": c.matrix,
            "args": c.args.iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>(),
            "wall_seconds": ran.wall,
            "device": match &ran.io {
                Ok((r, w)) => json!({"name": self.device.as_ref().map(|d| d.name.clone()).unwrap_or_default(),
                                     "read_bytes": r, "written_bytes": w}),
                Err(_) => Value::Null,
            },
            "device_note": ran.io.as_ref().err(),
            "of_disk_read": of_read,
            "of_disk_write": of_write,
            "passes": pass_values,
            "threads": ran.json.as_ref().and_then(|j| j.get("threads")).cloned().unwrap_or(Value::Null),
            "output": ran.json.clone().unwrap_or(Value::Null),
        });
        if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        let seconds = Spread::of(&[ran.wall]);
        let nnz = desc.as_ref().map_or(0, |d| d.nnz);
        let moved = read.unwrap_or(0) + written.unwrap_or(0);
        self.records.push(Record {
            schema: 1,
            suite: "scale".into(),
            kernel: c.kernel.into(),
            tool: c.tool.into(),
            regime: "out_of_core_cold".into(),
            matrix: desc,
            params,
            cap: Some(ran.cap.clone()),
            figures: figures(&seconds, 1.0, nnz, moved),
            seconds,
            limit: of_read.zip(self.read_gbs).map(|(fraction, g)| LimitRecord {
                name: "disk cold read".into(),
                gb_per_s: g,
                fraction,
            }),
            ratios: BTreeMap::new(),
            machine: self.machine.clone(),
            versions: self.versions.clone(),
            note,
        });
    }

    /// Records a step that did not run, and why.
    fn skipped(&mut self, task: Task, kernel: &'static str, matrix: &str, why: String) {
        let params = json!({"step": self.profile.label(task), "matrix_name": matrix, "passes": []});
        self.records.push(Record {
            schema: 1,
            suite: "scale".into(),
            kernel: kernel.into(),
            tool: if task == Task::Fmm { "fast_matrix_market" } else { "sparsedisk" }.into(),
            regime: "out_of_core_cold".into(),
            matrix: None,
            params,
            cap: None,
            seconds: Spread::of(&[]),
            figures: figures(&Spread::of(&[]), 1.0, 0, 0),
            limit: None,
            ratios: BTreeMap::new(),
            machine: self.machine.clone(),
            versions: self.versions.clone(),
            note: Some(format!("skipped: {why}")),
        });
    }

    /// Why `task` should not start now: the disk lacks the room its estimate needs.
    fn lacks_room(&self, task: Task) -> Option<String> {
        let (transient, adds, _) = self.profile.disk_effect(task);
        let need = transient + adds.iter().map(|a| a.1).sum::<u64>();
        let free = free_space(&self.work)?;
        (need > 0 && free < need + (256 << 20)).then(|| {
            format!("it needs about {} free on the disk and {} is free", format_bytes(need), format_bytes(free))
        })
    }

    fn kernel_of(task: Task) -> &'static str {
        match task {
            Task::DiskRead | Task::DiskWrite => "limit",
            Task::Generate(_) => "generate",
            Task::Verify(_) => "verify",
            Task::Spmv(_, false) => "spmv",
            Task::Spmv(_, true) => "spmv_transpose",
            Task::Pagerank => "pagerank",
            Task::Bfs => "bfs",
            Task::Components => "components",
            Task::Cg => "cg",
            Task::Transpose => "transpose",
            Task::Convert => "convert",
            Task::Export => "export",
            Task::Remove(_) | Task::Slice => "prepare",
            Task::Import | Task::ImportSlice | Task::Fmm => "import",
            Task::Crash => "crash",
        }
    }

    fn step(&mut self, task: Task) -> Result<()> {
        let kernel = Scale::kernel_of(task);
        if let Task::Remove(w) = task {
            if let Some(b) = self.built.remove(&w) {
                remove_path(&b.dir)?;
            }
            return Ok(());
        }
        let needs = match task {
            Task::Verify(w) | Task::Spmv(w, _) => Some(w),
            Task::Pagerank | Task::Bfs | Task::Components | Task::Transpose | Task::Convert => Some(Which::Graph),
            Task::Cg => Some(Which::Laplacian),
            Task::Export => Some(Which::Text),
            _ => None,
        };
        let name = needs.map(|w| self.profile.name(w)).unwrap_or_default();
        let input = match needs.map(|w| self.built.get(&w).cloned()) {
            Some(None) => {
                self.skipped(task, kernel, &name, format!("{name} was not built (see its step)"));
                return Ok(());
            }
            Some(b) => b,
            None => None,
        };
        if let Some(why) = self.lacks_room(task) {
            self.skipped(task, kernel, &name, why);
            return Ok(());
        }
        match input {
            Some(b) => self.on_matrix(task, kernel, b),
            None => self.standalone(task, kernel),
        }
    }

    /// The steps that make their own inputs.
    fn standalone(&mut self, task: Task, kernel: &'static str) -> Result<()> {
        match task {
            Task::DiskRead => {
                let (secs, bytes) = disk_read_bandwidth(&self.work, self.profile.probe_bytes, 3)?;
                self.read_gbs = Some(bytes as f64 / secs.median / 1e9);
                let params = json!({"threads": 1, "repeat": 3, "read_size": 8 << 20});
                self.limit("disk-read", params, secs, bytes);
            }
            Task::DiskWrite => {
                let (secs, bytes) = disk_write_bandwidth(&self.work, self.profile.probe_bytes, 3)?;
                self.write_gbs = Some(bytes as f64 / secs.median / 1e9);
                let params = json!({"threads": 1, "repeat": 3, "write_size": 8 << 20, "fsync": true});
                self.limit("disk-write", params, secs, bytes);
            }
            Task::Generate(w) => self.generate(task, w)?,
            Task::Slice => match &self.text {
                None => self.skipped(task, kernel, "", "the text was not written (see the export)".into()),
                Some(text) => {
                    let out = self.work.join(format!("{}-slice.mtx", self.profile.name(Which::Text)));
                    self.slice = Some(write_slice(&text.path, &out, self.profile.slice_bytes)?);
                }
            },
            Task::Import => self.import()?,
            Task::ImportSlice => self.import_slice()?,
            Task::Fmm => self.fmm()?,
            Task::Crash => self.crash()?,
            _ => {}
        }
        Ok(())
    }

    /// The steps that run on a matrix built earlier.
    fn on_matrix(&mut self, task: Task, kernel: &'static str, b: Built) -> Result<()> {
        match task {
            Task::Verify(_) => {
                let mut c = self.sparsedisk(kernel, task, &b.desc.name, &[&"verify", &b.dir, &"--json"]);
                c.evict.push(b.dir.clone());
                let ran = self.run(&c)?;
                let passes = match ran.output() {
                    Some(v) => {
                        vec![Pass {
                            label: "pass",
                            count: 1,
                            seconds: seconds_of(v, "seconds"),
                            bytes: v["bytes"].as_u64(),
                        }]
                    }
                    None => vec![],
                };
                let note = failure(&ran);
                self.record(&c, &ran, Some(b.desc), &passes, json!({}), note);
            }
            Task::Spmv(_, transpose) => {
                let k = self.profile.products.to_string();
                let mut args: Vec<&dyn Arg> = vec![&"spmv", &b.dir, &"--repeat", &k, &"--json"];
                if transpose {
                    args.push(&"--transpose");
                }
                let mut c = self.sparsedisk(kernel, task, &b.desc.name, &args);
                c.evict.push(b.dir.clone());
                let ran = self.run(&c)?;
                let mut passes = vec![];
                if let Some(v) = ran.output() {
                    let all: Vec<f64> = v["all_seconds"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_f64).collect())
                        .unwrap_or_default();
                    let bytes = v["matrix_bytes"].as_u64();
                    if let Some(&cold) = all.first() {
                        passes.push(Pass { label: "cold", count: 1, seconds: cold, bytes });
                    }
                    if all.len() > 1 {
                        let steady = Spread::of(&all[1..]).median;
                        passes.push(Pass { label: "steady", count: all.len() as u64 - 1, seconds: steady, bytes });
                    }
                }
                let note = failure(&ran);
                self.record(&c, &ran, Some(b.desc), &passes, json!({"products": self.profile.products}), note);
            }
            Task::Pagerank | Task::Bfs | Task::Components | Task::Cg => self.algorithm(task, kernel, &b)?,
            Task::Transpose | Task::Convert => {
                let out = self.work.join(format!("{}.{kernel}", b.desc.name));
                remove_path(&out)?;
                let mut args: Vec<&dyn Arg> = vec![&kernel, &b.dir, &"-o", &out, &"--json"];
                if task == Task::Convert {
                    args.extend([&"--layout" as &dyn Arg, &"csc"]);
                }
                let mut c = self.sparsedisk(kernel, task, &b.desc.name, &args);
                c.evict.push(b.dir.clone());
                let ran = self.run(&c)?;
                let out_bytes = dir_bytes(&out);
                // Outputs go as soon as they are measured: the disk holds one at a time.
                remove_path(&out)?;
                let note = failure(&ran);
                self.record(&c, &ran, Some(b.desc), &[], json!({"output_bytes": out_bytes}), note);
            }
            Task::Export => {
                let mtx = self.work.join(format!("{}.mtx", b.desc.name));
                remove_path(&mtx)?;
                let mut c = self.sparsedisk(kernel, task, &b.desc.name, &[&"export", &b.dir, &"-o", &mtx, &"--json"]);
                c.evict.push(b.dir.clone());
                let ran = self.run(&c)?;
                let mut extra = json!({});
                if let Some(v) = ran.output() {
                    let bytes = v["bytes"].as_u64().unwrap_or(0);
                    extra = json!({"text_bytes": bytes, "text_mb_per_s": v["mb_per_s"]});
                    self.text = Some(TextFile {
                        path: mtx,
                        bytes,
                        entries: v["nnz"].as_u64().unwrap_or(0),
                        rows: b.desc.rows,
                        cols: b.desc.cols,
                    });
                }
                let note = failure(&ran);
                self.record(&c, &ran, Some(b.desc), &[], extra, note);
            }
            _ => {}
        }
        Ok(())
    }

    fn limit(&mut self, tool: &str, params: Value, secs: Spread, bytes: u64) {
        self.records.push(Record {
            schema: 1,
            suite: "scale".into(),
            kernel: "limit".into(),
            tool: tool.into(),
            regime: "out_of_core_cold".into(),
            matrix: None,
            params,
            cap: None,
            figures: figures(&secs, 1.0, 0, bytes),
            seconds: secs,
            limit: None,
            ratios: BTreeMap::new(),
            machine: self.machine.clone(),
            versions: self.versions.clone(),
            note: None,
        });
    }

    fn generate(&mut self, task: Task, w: Which) -> Result<()> {
        let p = &self.profile;
        let dir = self.work.join(p.name(w));
        remove_path(&dir)?;
        let (scale, edge_factor) = if w == Which::Graph { p.graph } else { p.text };
        let (s, e, n) = (scale.to_string(), edge_factor.to_string(), p.lap_n.to_string());
        let args: Vec<&dyn Arg> = match w {
            Which::Laplacian => {
                vec![&"generate", &"laplace3d", &"--n", &n, &"--stencil", &"27", &"-o", &dir, &"--json"]
            }
            _ => vec![&"generate", &"rmat", &"--scale", &s, &"--edge-factor", &e, &"-o", &dir, &"--json"],
        };
        let name = p.name(w);
        let kind = p.kind(w);
        let c = self.sparsedisk("generate", task, &name, &args);
        let ran = self.run(&c)?;
        let mut desc = None;
        let mut extra = json!({});
        if let Some(v) = ran.output() {
            let d = MatrixDesc {
                name: name.clone(),
                kind,
                rows: v["rows"].as_u64().unwrap_or(0),
                cols: v["cols"].as_u64().unwrap_or(0),
                nnz: v["nnz"].as_u64().unwrap_or(0),
                bytes: v["bytes_on_disk"].as_u64().unwrap_or(0),
            };
            self.built.insert(w, Built { dir: dir.clone(), desc: d.clone() });
            desc = Some(d);
            // The out-of-core build's phases (R-MAT): generation and spills overlap, then the last
            // sort and the merge, then the fsyncs and the manifest.
            if v.get("spill_seconds").is_some() {
                let total = seconds_of(v, "seconds");
                let (spill, merge, publish) = (
                    seconds_of(v, "spill_seconds"),
                    seconds_of(v, "sort_write_seconds"),
                    seconds_of(v, "publish_seconds"),
                );
                extra = json!({
                    "phases": [["generate", total - merge - publish], ["spill (within generate)", spill],
                               ["merge", merge], ["publish", publish]],
                    "runs": v["runs"], "spilled_bytes": v["spilled_bytes"],
                });
            }
        }
        let note = failure(&ran);
        self.record(&c, &ran, desc, &[], extra, note);
        Ok(())
    }

    fn algorithm(&mut self, task: Task, kernel: &'static str, b: &Built) -> Result<()> {
        let out = self.work.join(format!("{}.{kernel}.npy", b.desc.name));
        remove_path(&out)?;
        let its = CG_ITERATIONS.to_string();
        let args: Vec<&dyn Arg> = match task {
            Task::Pagerank => vec![&"pagerank", &b.dir, &"-o", &out, &"--tol", &PAGERANK_TOL, &"--json"],
            Task::Bfs => vec![&"bfs", &b.dir, &"--source", &"0", &"-o", &out, &"--json"],
            Task::Components => vec![&"components", &b.dir, &"-o", &out, &"--json"],
            // `cg` has no fixed-iteration mode: with tolerance 0 it never converges and stops at
            // --max-iter with "did not converge", which is the expected end here.
            _ => vec![&"cg", &b.dir, &"-o", &out, &"--tol", &"0", &"--max-iter", &its, &"--json"],
        };
        let mut c = self.sparsedisk(kernel, task, &b.desc.name, &args);
        c.evict.push(b.dir.clone());
        let mut ran = self.run(&c)?;
        remove_path(&out)?;
        let matrix = Some(b.desc.bytes);
        let mut extra = json!({});
        let mut passes = vec![];
        if task == Task::Cg && ran.stderr.contains(&format!("did not converge in {CG_ITERATIONS} iterations")) {
            let residual = residual_in(&ran.stderr);
            ran.exit = Exit::Success;
            ran.json = Some(json!({"iterations": CG_ITERATIONS, "residual": residual, "seconds": ran.wall}));
        }
        if let Some(v) = ran.output() {
            let seconds = seconds_of(v, "seconds");
            match task {
                Task::Pagerank => {
                    let it = v["iterations"].as_u64().unwrap_or(0);
                    passes.push(Pass {
                        label: "iteration",
                        count: it,
                        seconds: seconds_of(v, "seconds_per_iteration"),
                        bytes: matrix,
                    });
                    extra = json!({"iterations": it, "delta": v["delta"], "tol": PAGERANK_TOL});
                }
                Task::Bfs => {
                    let depth = v["depth"].as_u64().unwrap_or(0);
                    passes.push(Pass {
                        label: "level",
                        count: depth,
                        seconds: seconds / depth.max(1) as f64,
                        bytes: None,
                    });
                    extra = json!({"depth": depth, "reached": v["reached"]});
                }
                Task::Components => {
                    passes.push(Pass { label: "pass", count: 1, seconds, bytes: matrix });
                    extra = json!({"components": v["components"]});
                }
                _ => {
                    // The wall time over the iterations: it also holds the start-up and the final
                    // true-residual product (one more pass), so the figure errs slow.
                    let it = v["iterations"].as_u64().unwrap_or(0);
                    passes.push(Pass {
                        label: "iteration",
                        count: it,
                        seconds: seconds / it.max(1) as f64,
                        bytes: matrix,
                    });
                    extra = json!({"iterations": it, "residual": v["residual"], "tol": 0,
                                   "iterations_fixed_by": "--tol 0 --max-iter: the 'did not converge' exit ends the run"});
                }
            }
        }
        let note = failure(&ran);
        self.record(&c, &ran, Some(b.desc.clone()), &passes, extra, note);
        Ok(())
    }

    /// The phases of an import's `--json` and its MB/s of text.
    fn import_extra(v: &Value) -> Value {
        let (parse, spill) = (seconds_of(v, "parse_seconds"), seconds_of(v, "spill_seconds"));
        let (merge, publish) = (seconds_of(v, "sort_write_seconds"), seconds_of(v, "publish_seconds"));
        json!({
            "phases": [["parse", parse], ["spill (within parse)", spill], ["merge", merge], ["publish", publish]],
            "runs": v["runs"], "spilled_bytes": v["spilled_bytes"], "memory_budget": v["memory_budget"],
            "text_bytes": v["bytes_read"], "text_mb_per_s": v["mb_per_s"],
        })
    }

    fn import(&mut self) -> Result<()> {
        let task = Task::Import;
        let Some(text) = self.text.clone() else {
            self.skipped(task, "import", "", "the text was not written (see the export)".into());
            return Ok(());
        };
        let name = self.profile.name(Which::Imported);
        let out = self.work.join(&name);
        remove_path(&out)?;
        let mut c = self.sparsedisk("import", task, &name, &[&"import", &text.path, &"-o", &out, &"--json"]);
        c.evict.push(text.path.clone());
        let ran = self.run(&c)?;
        let mut desc = None;
        let mut extra = json!({});
        let mut note = failure(&ran);
        if let Some(v) = ran.output() {
            let d = MatrixDesc {
                name: name.clone(),
                kind: self.profile.kind(Which::Imported),
                rows: v["rows"].as_u64().unwrap_or(0),
                cols: v["cols"].as_u64().unwrap_or(0),
                nnz: v["nnz"].as_u64().unwrap_or(0),
                bytes: dir_bytes(&out),
            };
            extra = Scale::import_extra(v);
            // The text came from a matrix of known size: the import must give it back.
            if d.nnz != text.entries {
                note = Some(format!("failed: imported {} nonzeros from a text of {} entries", d.nnz, text.entries));
            } else {
                self.built.insert(Which::Imported, Built { dir: out, desc: d.clone() });
                self.import = Some((ran.wall, v.clone()));
            }
            desc = Some(d);
        }
        self.record(&c, &ran, desc, &[], extra, note);
        Ok(())
    }

    fn slice_desc(&self, s: &TextFile) -> MatrixDesc {
        let text = self.profile.name(Which::Text);
        MatrixDesc {
            name: format!("{text}-slice"),
            kind: format!("the first {} entries of {text}.mtx", s.entries),
            rows: s.rows,
            cols: s.cols,
            nnz: s.entries,
            bytes: s.bytes,
        }
    }

    fn import_slice(&mut self) -> Result<()> {
        let task = Task::ImportSlice;
        let Some(slice) = self.slice.clone() else {
            self.skipped(task, "import", "", "the slice was not written".into());
            return Ok(());
        };
        let desc = self.slice_desc(&slice);
        let out = self.work.join(format!("{}.imported", desc.name));
        remove_path(&out)?;
        let mut c = self.sparsedisk("import", task, &desc.name, &[&"import", &slice.path, &"-o", &out, &"--json"]);
        c.evict.push(slice.path.clone());
        let ran = self.run(&c)?;
        remove_path(&out)?;
        let extra = ran.output().map_or(json!({}), Scale::import_extra);
        let note = failure(&ran);
        self.record(&c, &ran, Some(desc), &[], extra, note);
        Ok(())
    }

    fn fmm(&mut self) -> Result<()> {
        let task = Task::Fmm;
        let Some(slice) = self.slice.clone() else {
            self.skipped(task, "import", "", "the slice was not written".into());
            return Ok(());
        };
        let desc = self.slice_desc(&slice);
        let py = match &self.python {
            Ok(py) if py.fast_matrix_market.is_some() => py.clone(),
            Ok(_) => {
                self.skipped(task, "import", &desc.name, "fast_matrix_market is not installed".into());
                return Ok(());
            }
            Err(why) => {
                let why = why.clone();
                self.skipped(task, "import", &desc.name, why);
                return Ok(());
            }
        };
        let (program, mut args) = py.argv();
        args.extend(["read".into(), slice.path.clone().into_os_string(), "--repeat".into(), "1".into()]);
        let mut c = self.sparsedisk("import", task, &desc.name, &[]);
        c.tool = "fast_matrix_market";
        c.program = program.into();
        c.args = args;
        c.evict.push(slice.path.clone());
        let ran = self.run(&c)?;
        let mut passes = vec![];
        let mut extra = json!({});
        if let Some(v) = ran.output() {
            let read = v["samples"].as_array().and_then(|s| s.first()).and_then(Value::as_f64).unwrap_or(f64::NAN);
            passes.push(Pass { label: "read_coo", count: 1, seconds: read, bytes: Some(slice.bytes) });
            extra = json!({"text_bytes": slice.bytes, "text_mb_per_s": slice.bytes as f64 / read / 1e6,
                           "read_seconds": read, "nnz_read": v["nnz"]});
            if v["nnz"].as_u64() != Some(slice.entries) {
                let why = format!("failed: read {} entries of the slice's {}", v["nnz"], slice.entries);
                self.record(&c, &ran, Some(desc), &passes, extra, Some(why));
                return Ok(());
            }
        }
        let note = failure(&ran);
        self.record(&c, &ran, Some(desc), &passes, extra, note);
        Ok(())
    }

    /// Checks the output directory after a killed import and removes the debris the kill left.
    /// Returns whether it passed and what the directory held.
    fn check_after_kill(dir: &Path, expected: Option<(u64, &[u8])>, finished: bool) -> (bool, String, u64) {
        let manifest = std::fs::read(dir.join(sparsedisk::format::MANIFEST_FILE)).ok();
        let verified = Matrix::open(dir).and_then(|m| m.verify().map(|r| r.nnz));
        let debris = sparsedisk::debris::scan(dir).map(|d| d.bytes()).unwrap_or(0);
        let (pass, state) = match (expected, verified) {
            // A kill into a new directory: nothing may be published, unless the import finished.
            (None, Err(_)) if manifest.is_none() && !finished => (true, "no matrix published".to_string()),
            (None, Err(e)) => (false, format!("a partial matrix: {e}")),
            (None, Ok(nnz)) => (finished, format!("a complete matrix of {nnz} nonzeros")),
            (Some(_), Err(e)) => (false, format!("the matrix is broken: {e}")),
            (Some((n, _)), Ok(nnz)) if nnz != n => (false, format!("{nnz} nonzeros instead of {n}")),
            (Some((_, before)), Ok(_)) if manifest.as_deref() == Some(before) => {
                (true, "the previous matrix, intact (opens, verifies, same nnz)".to_string())
            }
            (Some(_), Ok(_)) => (true, "the new matrix, published before the kill (verifies, same nnz)".to_string()),
        };
        (pass, state, debris)
    }

    fn crash(&mut self) -> Result<()> {
        let task = Task::Crash;
        let (Some(text), Some(imported), Some((t, v))) =
            (self.text.clone(), self.built.get(&Which::Imported).cloned(), self.import.clone())
        else {
            self.skipped(task, "crash", "", "the measured import did not succeed".into());
            return Ok(());
        };
        let (merge, publish) = (seconds_of(&v, "sort_write_seconds"), seconds_of(&v, "publish_seconds"));
        let mut kills: Vec<(String, f64, &str)> = [0.1, 0.5, 0.9]
            .iter()
            .map(|f| (format!("at {:.0}% of the import's time", f * 100.0), f * t, "time"))
            .collect();
        // The phases end the import: its merge, then its publish (fsyncs, the manifest's rename).
        if v["runs"].as_u64().unwrap_or(0) > 0 && merge.is_finite() && publish.is_finite() {
            kills.push((
                "in the merge".into(),
                t - publish - merge / 2.0,
                "merge (estimated from the measured import's phases)",
            ));
        }
        if publish.is_finite() {
            kills.push((
                "in the publish".into(),
                t - publish / 2.0,
                "publish (estimated from the measured import's phases)",
            ));
        }
        let out = imported.dir.clone();
        let fresh = self.work.join(format!("{}.crash-new", imported.desc.name));
        let runs: Vec<(String, f64, &str, bool)> = kills
            .into_iter()
            .map(|(l, at, phase)| (l, at, phase, false))
            .chain(std::iter::once(("into a new directory, at 50%".to_string(), 0.5 * t, "time", true)))
            .collect();
        for (what, at, phase, new_dir) in runs {
            let target = if new_dir { &fresh } else { &out };
            let before = std::fs::read(out.join(sparsedisk::format::MANIFEST_FILE)).unwrap_or_default();
            let mut args: Vec<&dyn Arg> = vec![&"import", &text.path, &"-o", target, &"--json"];
            if !new_dir {
                args.push(&"--force");
            }
            let mut c = self.sparsedisk("crash", task, &imported.desc.name, &args);
            c.label = format!("import --force killed {what}");
            if new_dir {
                c.label = format!("import killed {what}");
            }
            c.evict.push(text.path.clone());
            c.kill_after = Some(at.max(0.0));
            let ran = self.run(&c)?;
            let killed = matches!(ran.exit, Exit::Killed(_));
            let finished = ran.exit == Exit::Success;
            let expected = (!new_dir).then_some((imported.desc.nnz, before.as_slice()));
            let (mut pass, mut state, debris) = Scale::check_after_kill(target, expected, finished);
            if let Some(why) = failure(&ran).filter(|_| !killed && !finished) {
                (pass, state) = (false, format!("the import ended on its own before the kill ({why}); {state}"));
            }
            // The kill's debris (sorted runs, unpublished segments) would fill the disk by the next run.
            let cleaned = if new_dir {
                let bytes = dir_bytes(&fresh);
                remove_path(&fresh)?;
                bytes
            } else {
                sparsedisk::debris::clean(&out).map(|r| r.removed_bytes()).unwrap_or(0)
            };
            let extra = json!({
                "kill": what, "kill_after_seconds": at, "of_import_time": at / t, "aimed_at": phase,
                "killed": killed, "finished_first": finished, "state": state, "pass": pass,
                "debris_bytes": debris, "removed_bytes": cleaned, "new_directory": new_dir,
                "import_seconds": t,
            });
            let note = (!pass).then(|| format!("crash-safety check failed: {state}"));
            self.record(&c, &ran, Some(imported.desc.clone()), &[], extra, note);
        }
        // The last word: an import that is let finish replaces the matrix whole.
        let mut c = self.sparsedisk(
            "crash",
            task,
            &imported.desc.name,
            &[&"import", &text.path, &"-o", &out, &"--force", &"--json"],
        );
        c.label = "import --force, not killed".into();
        c.evict.push(text.path.clone());
        let ran = self.run(&c)?;
        let verified = Matrix::open(&out).and_then(|m| m.verify().map(|r| r.nnz));
        let (pass, state) = match (&ran.exit, verified) {
            (Exit::Success, Ok(n)) if n == imported.desc.nnz => {
                (true, "the new matrix (verifies, same nnz)".to_string())
            }
            (Exit::Success, Ok(n)) => (false, format!("{n} nonzeros instead of {}", imported.desc.nnz)),
            (Exit::Success, Err(e)) => (false, format!("the new matrix does not verify: {e}")),
            (_, _) => (false, format!("the import did not succeed: {}", failure(&ran).unwrap_or_default())),
        };
        let extra = json!({"kill": "none", "killed": false, "state": state, "pass": pass, "final": true,
                           "import_seconds": t});
        let note = (!pass).then(|| format!("crash-safety check failed: {state}"));
        self.record(&c, &ran, Some(imported.desc.clone()), &[], extra, note);
        Ok(())
    }
}

/// An argument of a child's command line: lists mix words and paths.
trait Arg {
    fn os(&self) -> OsString;
}

impl Arg for &str {
    fn os(&self) -> OsString {
        (*self).into()
    }
}

impl Arg for String {
    fn os(&self) -> OsString {
        self.into()
    }
}

impl Arg for PathBuf {
    fn os(&self) -> OsString {
        self.clone().into_os_string()
    }
}

/// The note of a step that did not succeed.
fn failure(ran: &Ran) -> Option<String> {
    match &ran.exit {
        Exit::Success => None,
        Exit::Failed(why) => Some(format!("failed: {why}")),
        Exit::Killed(t) => Some(format!("failed: killed after {t:.1} s")),
        Exit::TimedOut(t) => Some(format!("failed: stopped after {t:.0} s (its time limit)")),
    }
}

/// Prints the plan: each step and the disk space in use while it runs (estimated), the peak and the
/// space needed.
fn print_plan(profile: &Profile, work: &Path, free: Option<u64>) -> Result<()> {
    let (rows, peak, at) = profile.ledger();
    let width = rows.iter().map(|(t, _)| profile.label(*t).len()).max().unwrap_or(0) + 2;
    let mut text = format!(
        "scale suite ({}): every step a child process under a {} memory cap (page cache included), from a \
         cold page cache; data in {}\n\n  #  {:width$}disk in use (estimated)\n",
        profile.size.name(),
        format_bytes(profile.cap),
        work.display(),
        "step"
    );
    for (i, (task, during)) in rows.iter().enumerate() {
        let _ = writeln!(text, "{:>3}  {:width$}{}", i + 1, profile.label(*task), format_bytes(*during));
    }
    let _ = write!(
        text,
        "\npeak: {} ({}); needed with a {} margin: {}; free: {}",
        format_bytes(peak),
        profile.label(at),
        format_bytes(SPACE_MARGIN),
        format_bytes(peak + SPACE_MARGIN),
        free.map_or("unknown (statvfs says nothing)".into(), format_bytes)
    );
    for warning in profile.memory_warnings() {
        let _ = write!(text, "\nwarning: {warning}");
    }
    emit(&text)
}

/// Runs `sparsedisk bench --suite scale` (see the [module docs](self)): `command` and `started` are
/// the run's, for the report.
///
/// # Errors
///
/// [`Error::InvalidInput`] for options the suite does not take, or when the data directory's disk
/// lacks the space the plan needs at its peak; errors of the report and of preparing inputs
/// ([`Error::Io`]). A step that fails is recorded, not returned.
pub fn run(args: &BenchArgs, quiet: bool, command: &str, started: Instant) -> Result<()> {
    if !args.matrix.is_empty() {
        return Err(Error::invalid(
            "--matrix is for the quick and full suites: the scale suite makes its own matrices",
        ));
    }
    if args.memory_caps.len() > 1 {
        return Err(Error::invalid("the scale suite runs under one memory cap: give one --memory-caps SIZE"));
    }
    let profile = Profile::new(args.scale_size, args.memory_caps.first().copied(), args.repeat);
    let data = args.data.clone().unwrap_or_else(|| args.out.join("data"));
    let work = data.join("sparsedisk-bench-scale");
    // What an earlier run kept there is removed before this one starts: it counts as free.
    let free = args.assume_free.or_else(|| free_space(&data).map(|f| f + dir_bytes(&work)));
    let (_, peak, at) = profile.ledger();
    let need = peak + SPACE_MARGIN;
    if args.dry_run {
        print_plan(&profile, &work, free)?;
    }
    match free {
        Some(free) if free < need => {
            return Err(Error::invalid(format!(
                "the scale suite ({}) needs about {} free on the disk of {} at its peak ({}, {} margin \
                 included), and statvfs says {} is free: free some space, or give --data a directory on a \
                 larger disk (--dry-run prints the plan)",
                profile.size.name(),
                format_bytes(need),
                data.display(),
                profile.label(at),
                format_bytes(SPACE_MARGIN),
                format_bytes(free)
            )))
        }
        None if !quiet => eprintln!(
            "bench: the free space of {} is unknown; the scale suite needs about {} at its peak",
            data.display(),
            format_bytes(need)
        ),
        _ => {}
    }
    if args.dry_run {
        return Ok(());
    }
    if !quiet {
        for warning in profile.memory_warnings() {
            eprintln!("bench: warning: {warning}");
        }
    }
    std::fs::create_dir_all(&data).map_err(|e| Error::io(&data, "creating the data directory", e))?;
    remove_path(&work)?;
    std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, "creating the data directory", e))?;
    let python = if args.no_python { Err("--no-python was given".to_string()) } else { Python::detect(&work) };
    if let (Err(why), false) = (&python, quiet) {
        eprintln!("bench: fast_matrix_market is skipped: {why}");
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("<current exe>", "finding this program", e))?;
    let mut s = Scale {
        versions: crate::harness::versions_with(&python),
        machine: Machine::describe(&work),
        device: Device::of(&work),
        profile,
        work: work.clone(),
        exe,
        python,
        records: Vec::new(),
        read_gbs: None,
        write_gbs: None,
        built: BTreeMap::new(),
        text: None,
        slice: None,
        import: None,
    };
    let tasks = plan();
    let bar = plan_bar(tasks.len() as u64, quiet);
    let results = args.out.join("results.jsonl");
    let outcome = tasks.into_iter().try_for_each(|task| {
        bar.set_message(s.profile.label(task));
        s.step(task)?;
        bar.inc(1);
        // The records so far, so that an interrupted run leaves its measurements.
        crate::report::write_jsonl(&results, &s.records)
    });
    bar.finish_and_clear();
    // Tens of gigabytes: removed even when a step aborted the run, unless asked to keep them.
    if !args.keep_data {
        remove_path(&work)?;
        if args.data.is_none() {
            let _ = std::fs::remove_dir(&data);
        }
    }
    outcome?;
    crate::harness::finish_run(&args.out, &s.records, command, started, args.readme.as_deref())?;
    let failed = s.records.iter().filter(|r| r.note.as_deref().is_some_and(|n| !n.starts_with("skipped"))).count();
    emit(&format!(
        "bench: scale suite ({}): {} records ({failed} failed) in {:.0} s; report in {}",
        s.profile.size.name(),
        s.records.len(),
        started.elapsed().as_secs_f64(),
        args.out.join("report.md").display()
    ))
}

/// `1.03 G`, `537 M`, `96 K`, `512`.
fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2} G", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.0} M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.0} K", n as f64 / 1e3),
        n => n.to_string(),
    }
}

fn percent(x: Option<f64>) -> String {
    x.filter(|x| x.is_finite()).map_or("-".into(), |x| format!("{:.0}%", x * 100.0))
}

fn matrix_cell(r: &Record) -> String {
    match &r.matrix {
        Some(m) => format!("{} ({} nnz, {})", m.name, count(m.nnz), format_bytes(m.bytes)),
        None => r.params["matrix_name"].as_str().filter(|s| !s.is_empty()).unwrap_or("-").to_string(),
    }
}

fn time_cell(r: &Record) -> String {
    let t = r.params["wall_seconds"].as_f64().unwrap_or(f64::NAN);
    match r.note.as_deref() {
        Some(n) if n.starts_with("skipped") => "skipped".into(),
        Some(_) if r.kernel != "crash" => format!("{} (**failed**)", secs(t)),
        _ => secs(t),
    }
}

/// The per-pass figures (`cold: 4.10 s, steady: 3.95 s (x4)`), the phases of a build
/// (`parse 95.2 s, merge 60.3 s, ...`) and the MB/s of text of an import.
fn pass_cell(r: &Record) -> String {
    let mut parts: Vec<String> = Vec::new();
    for p in r.params["passes"].as_array().into_iter().flatten() {
        let count = p["count"].as_u64().unwrap_or(1);
        let times = if count > 1 { format!(" (x{count})") } else { String::new() };
        parts.push(format!(
            "{}: {}{times}",
            p["label"].as_str().unwrap_or("pass"),
            secs(p["seconds"].as_f64().unwrap_or(f64::NAN))
        ));
    }
    for phase in r.params["phases"].as_array().into_iter().flatten() {
        // A build that fit in memory spilled nothing: no spill phase to show.
        if let (Some(name), Some(t)) = (phase[0].as_str(), phase[1].as_f64().filter(|&t| t > 0.0)) {
            parts.push(format!("{name} {}", secs(t)));
        }
    }
    if let Some(mb) = r.params["text_mb_per_s"].as_f64() {
        parts.push(format!("{mb:.0} MB/s of text"));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// The fraction of the disk's read bandwidth: per pass for streaming steps (`cold 93%, steady 95%`),
/// else the device's bytes read over the wall time.
fn read_cell(r: &Record) -> String {
    let per_pass: Vec<String> = r.params["passes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let f = p["fraction_of_disk_read"].as_f64()?;
            Some(format!("{} {}", p["label"].as_str().unwrap_or("pass"), percent(Some(f))))
        })
        .collect();
    match per_pass.len() {
        0 => percent(r.params["of_disk_read"].as_f64()),
        1 => percent(r.params["of_disk_read"].as_f64()),
        _ => per_pass.join(", "),
    }
}

fn device_cell(r: &Record, key: &str) -> String {
    r.params["device"][key].as_u64().map_or("-".into(), |b| match b as f64 / 1e9 {
        gb if gb >= 10.0 => format!("{gb:.1}"),
        gb if gb >= 0.1 => format!("{gb:.2}"),
        gb => format!("{gb:.3}"),
    })
}

/// The step's label, with its tool when it is not ours and the label does not say it.
fn step_cell(r: &Record) -> String {
    let step = r.params["step"].as_str().unwrap_or(&r.kernel);
    if r.tool == "sparsedisk" || step.contains(&r.tool) {
        step.to_string()
    } else {
        format!("{step} ({})", r.tool)
    }
}

fn peak_cell(r: &Record) -> String {
    match &r.cap {
        None => "-".into(),
        Some(c) if !c.applied => "not capped".into(),
        Some(c) => c.peak_bytes.map_or("-".into(), format_bytes),
    }
}

/// Whether the cgroup's peak reached its limit (within a megabyte: the kernel charges in batches).
fn at_cap(c: &CapRecord) -> bool {
    c.applied && c.peak_bytes.is_some_and(|p| p + (1 << 20) >= c.requested_bytes)
}

/// Limit hits, in bold when the cgroup hit its limit (the kernel reclaimed or killed under the cap):
/// the kernel's count, flagged "peak at cap" when the peak reached the limit (a kernel may leave its
/// count at 0, see [`CapOutcome::limit_hits`](crate::CapOutcome::limit_hits)), and OOM kills.
fn hits_cell(r: &Record) -> String {
    let Some(c) = r.cap.as_ref().filter(|c| c.applied) else { return "-".into() };
    let mut text = match c.limit_hits {
        None => "-".to_string(),
        Some(0) => "0".into(),
        Some(n) => format!("**{n}**"),
    };
    if at_cap(c) {
        text += ", **peak at cap**";
    }
    if let Some(k) = c.oom_kills.filter(|&k| k > 0) {
        text += &format!(", **{k} OOM kill{}**", if k == 1 { "" } else { "s" });
    }
    text
}

fn gb_per_s_cell(r: &Record) -> String {
    if r.params["device"].is_null() || r.note.as_deref().is_some_and(|n| n.starts_with("skipped")) {
        "-".into()
    } else {
        num(r.figures.gb_per_s, 2)
    }
}

/// The scale suite's tables (limits, steps, crash safety, notes), headings at `level` (`"##"`).
pub fn tables(records: &[Record], level: &str) -> String {
    let mut md = limits_table(records, level);
    let cap = records.iter().find_map(|r| r.cap.as_ref()).map_or("-".into(), |c| format_bytes(c.requested_bytes));
    let _ = writeln!(md, "\n{level} At scale (each step a child process under a {cap} memory cap, cold cache)\n");
    let _ = writeln!(
        md,
        "Each step is one command of this binary (or fast_matrix_market's `read_coo` in Python), run in a \
         fresh memory cgroup (page cache included) after its inputs were dropped from the page cache. Time: \
         the child's wall time. GB read / written: the data disk's counters (`/proc/diskstats`, device-wide: \
         other processes' I/O counts too) around the child; GB/s: both over the time. Per pass: a product, \
         an iteration, a BFS level; for builds, the phases the command reports. Of disk read: for streaming \
         steps the matrix's bytes per pass over the time per pass, for the others the bytes read from the \
         device over the time, as a fraction of the disk's cold sequential read bandwidth; of disk write: \
         the bytes written over the time, against the sequential write bandwidth. Limit hits: the cgroup's \
         `failcnt` (times it hit its limit and had to reclaim), in bold when not 0.\n"
    );
    let _ = writeln!(
        md,
        "| step | matrix | time | per pass | GB read | GB written | GB/s | of disk read | of disk write | peak memory | limit hits |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    for r in records.iter().filter(|r| r.kernel != "limit" && r.kernel != "crash") {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            step_cell(r),
            matrix_cell(r),
            time_cell(r),
            pass_cell(r),
            device_cell(r, "read_bytes"),
            device_cell(r, "written_bytes"),
            gb_per_s_cell(r),
            read_cell(r),
            percent(r.params["of_disk_write"].as_f64()),
            peak_cell(r),
            hits_cell(r),
        );
    }
    let crashes: Vec<&Record> = records.iter().filter(|r| r.kernel == "crash").collect();
    if !crashes.is_empty() {
        let _ = writeln!(md, "\n{level} Crash safety (import killed with SIGKILL)\n");
        let _ = writeln!(
            md,
            "The import of the text run again with `--force` onto its own output and killed at the times \
             shown (after its start; the merge and publish times are estimated from the measured import's \
             phases), once into a new directory, then once more without a kill. After each kill the output \
             must hold the previous matrix (it opens, verifies, same nnz), or no matrix in a new directory; \
             the debris the kill left is then removed (`clean`).\n"
        );
        let _ = writeln!(md, "| run | killed at | of import time | killed | output after | debris left | result |");
        let _ = writeln!(md, "|---|---|---|---|---|---|---|");
        for r in crashes {
            let p = &r.params;
            let killed = match (p["killed"].as_bool(), p["final"].as_bool()) {
                (_, Some(true)) => "not killed".to_string(),
                (Some(true), _) => "yes".into(),
                _ if p["finished_first"].as_bool() == Some(true) => "no: it finished first".into(),
                _ => "no".into(),
            };
            let result = if p["pass"].as_bool() == Some(true) { "pass" } else { "**FAIL**" };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {killed} | {} | {} | {result} |",
                p["step"].as_str().unwrap_or("-"),
                p["kill_after_seconds"].as_f64().map_or("-".into(), secs),
                percent(p["of_import_time"].as_f64()),
                p["state"].as_str().unwrap_or("-"),
                p["debris_bytes"].as_u64().map_or("-".into(), format_bytes),
            );
        }
    }
    let mut notes: Vec<String> = Vec::new();
    for r in records {
        if let Some(n) = &r.note {
            notes.push(format!("{}: {n}", r.params["step"].as_str().unwrap_or(&r.kernel)));
        }
        if let Some(reason) = r.cap.as_ref().and_then(|c| c.reason.clone()) {
            notes.push(format!("memory {reason}"));
        }
        if let Some(d) = r.params["device_note"].as_str() {
            notes.push(format!("no device counters: {d}"));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    notes.retain(|n| seen.insert(n.clone()));
    if !notes.is_empty() {
        let _ = writeln!(md, "\n{level} Notes\n");
        for n in notes {
            let _ = writeln!(md, "- {n}");
        }
    }
    md
}

/// The body of the README's "At scale" section (`scale-fragment.md`): the run's context, the steps'
/// table, the import against fast_matrix_market and the crash-safety result.
pub fn fragment(records: &[Record], command: &str, wall: f64) -> String {
    let mut md = String::new();
    let bandwidth = |tool: &str| {
        records
            .iter()
            .find(|r| r.kernel == "limit" && r.tool == tool)
            .map_or("-".into(), |r| num(r.figures.gb_per_s, 2))
    };
    let cap = records.iter().find_map(|r| r.cap.as_ref());
    let machine = records.first().map(|r| r.machine.summary()).unwrap_or_default();
    let _ = writeln!(
        md,
        "Generated by `{command}` ({}) on {machine}. Each step is one `sparsedisk` command run as a child \
         process in a {} memory cgroup (page cache included{}), from a cold page cache. The disk reads {} GB/s \
         cold and sequentially, and writes {} GB/s (with fsync), measured in the same run. Per pass: one \
         product, iteration or BFS level; of disk read: the matrix's bytes per pass over the time per pass \
         (builds: the bytes the disk read over the time), as a fraction of the disk's read bandwidth.\n",
        if wall >= 120.0 { format!("{:.0} min", wall / 60.0) } else { format!("{wall:.0} s") },
        cap.map_or("-".into(), |c| format_bytes(c.requested_bytes)),
        if cap.is_some_and(|c| !c.applied) { "; not applied on this machine, see the report" } else { "" },
        bandwidth("disk-read"),
        bandwidth("disk-write"),
    );
    let _ = writeln!(md, "| step | matrix | time | per pass | of disk read | peak memory | limit hits |");
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for r in records.iter().filter(|r| r.kernel != "limit" && r.kernel != "crash") {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            step_cell(r),
            matrix_cell(r),
            time_cell(r),
            pass_cell(r),
            read_cell(r),
            peak_cell(r),
            hits_cell(r)
        );
    }
    let rate = |pred: &dyn Fn(&Record) -> bool| {
        records.iter().find(|r| pred(r) && r.note.is_none()).and_then(|r| r.params["text_mb_per_s"].as_f64())
    };
    let whole = records.iter().find(|r| {
        r.kernel == "import" && r.tool == "sparsedisk" && r.params["step"].as_str().is_some_and(|s| s.ends_with(".mtx"))
    });
    let on_slice = |r: &Record| r.matrix.as_ref().is_some_and(|m| m.name.ends_with("-slice"));
    let slice_bytes = records.iter().find(|r| on_slice(r)).and_then(|r| r.matrix.as_ref()).map(|m| m.bytes);
    if let Some(w) = whole.filter(|r| r.note.is_none()) {
        let _ = writeln!(
            md,
            "\nImport of Matrix Market text: {} MB/s over {} (out of core, written durably){}{}.",
            num(w.params["text_mb_per_s"].as_f64().unwrap_or(f64::NAN), 0),
            format_bytes(w.params["text_bytes"].as_u64().unwrap_or(0)),
            match (slice_bytes, rate(&|r| on_slice(r) && r.tool == "sparsedisk")) {
                (Some(b), Some(x)) => format!("; on the first {} of the same file, {x:.0} MB/s", format_bytes(b)),
                _ => String::new(),
            },
            match rate(&|r| on_slice(r) && r.tool == "fast_matrix_market") {
                Some(x) => format!(", and fast_matrix_market's `read_coo` (into memory) {x:.0} MB/s"),
                None => String::new(),
            }
        );
    }
    let crashes: Vec<&Record> = records.iter().filter(|r| r.kernel == "crash").collect();
    if !crashes.is_empty() {
        let passed = crashes.iter().filter(|r| r.params["pass"].as_bool() == Some(true)).count();
        let killed = crashes.iter().filter(|r| r.params["killed"].as_bool() == Some(true)).count();
        let _ = writeln!(
            md,
            "\nCrash safety: the import was killed with SIGKILL {killed} times while it ran (over a previous \
             matrix at 10/50/90% of its time, in its merge and in its publish; once into a new directory), then \
             run to the end: {passed} of {} checks passed (the output held the previous matrix, verified, or \
             no matrix; the final import verified).",
            crashes.len()
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laplacian_sizes_are_the_smallest_27_point_grids_with_enough_nonzeros() {
        for (size, n, nnz) in
            [(ScaleSize::Tiny, 17, 117_649), (ScaleSize::Small, 105, 30_664_297), (ScaleSize::Full, 334, 1_000_000_000)]
        {
            let p = Profile::new(size, None, None);
            assert_eq!((p.lap_n, laplace3d_nnz(p.lap_n)), (n, nnz), "{size:?}");
            assert_eq!(
                laplace3d_nnz(n),
                sparsedisk::generators::Generator::Laplace3d27 { n }.nnz().unwrap(),
                "{size:?}"
            );
        }
        assert_eq!(laplace3d_n(1_000_000_001), 335);
        assert_eq!(laplace3d_n(1), 1);
        // At full size CG's vectors fit under the cap: no step warns.
        assert!(Profile::new(ScaleSize::Full, None, None).memory_warnings().is_empty());
    }
}
