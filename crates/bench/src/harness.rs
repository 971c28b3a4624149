//! `sparsedisk bench`: the benchmark harness (see docs/performance.md, "The benchmark harness", and
//! the [crate docs](crate) for the record format).
//!
//! A run is a plan of steps (generate or import an input, measure a limit, measure one kernel with one
//! tool on one input) executed in order under one progress bar. In-core measurements call the library
//! in process and time around the call, after one untimed warm-up run that brings the files into the
//! page cache; sprs runs in process on a copy in memory; the Python baselines run as child processes
//! of the project's script. Out-of-core measurements run the `sparsedisk` binary (`spmv --json`) and the
//! numpy.memmap baseline as children inside a memory cgroup, after dropping the files' page cache.

use crate::python::{run_json, run_json_within, samples, write_raw_csr, Python};
use crate::report::{markdown, plots, read_jsonl, tables, write_jsonl};
use crate::scale::ScaleSize;
use crate::ui::{emit, parse_size_arg, plan_bar};
use crate::{
    disk_read_bandwidth, figures, memory_read_bandwidth, time_runs, CapRecord, LimitRecord, Machine, MatrixDesc,
    MemoryCap, Record, Spread, Versions,
};
use clap::{Args, ValueEnum};
use sparsedisk::algo::{cg, pagerank, CgOptions, PagerankOptions};
use sparsedisk::builder::BuildOptions;
use sparsedisk::generators::{generate, generate_random, Generator, RandomMatrix};
use sparsedisk::import::{import, ImportOptions, LayoutChoice, ValueChoice};
use sparsedisk::io::read::ReadOptions;
use sparsedisk::kernels::{dense_vector, Operator};
use sparsedisk::ops::{spgemm, OpOptions, SpgemmOptions};
use sparsedisk::storage::evict_page_cache;
use sparsedisk::units::format_bytes;
use sparsedisk::{Error, Layout, Matrix, Result, WriterOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The suites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Suite {
    /// About two minutes on 2 cores: matrices of 0.2-7 M nonzeros in core, a 0.27 GB one under 128M
    /// and 256M caps.
    Quick,
    /// About 12 minutes on 2 cores: up to 65 M nonzeros in core, 0.6-1.3 GB matrices under 512M and 1G
    /// caps.
    Full,
    /// Half an hour or more and 53 GB of disk (see --dry-run): sparsedisk at the sizes it is for,
    /// every step a child process under a 4 GiB cap from a cold cache: R-MAT 26, a 10^9-nonzero 3-D
    /// Laplacian, a 20 GB Matrix Market import beside fast_matrix_market, kills of an import.
    Scale,
    /// Seconds: tiny matrices, for tests.
    #[value(hide = true)]
    Smoke,
}

impl Suite {
    fn name(self) -> &'static str {
        match self {
            Suite::Quick => "quick",
            Suite::Full => "full",
            Suite::Scale => "scale",
            Suite::Smoke => "smoke",
        }
    }
}

/// `sparsedisk bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which suite of generated matrices to run.
    #[arg(long, value_enum, default_value_t = Suite::Quick)]
    pub suite: Suite,
    /// Also measure these matrices: a sparsedisk matrix directory, or a Matrix Market / edge-list file
    /// (imported first, which is measured too). Repeatable.
    #[arg(long, value_name = "DIR|FILE")]
    pub matrix: Vec<PathBuf>,
    /// Memory caps for the out-of-core runs (default: quick 128M,256M; full 512M,1G; scale: one cap,
    /// 4G).
    #[arg(long, value_name = "SIZE,...", value_delimiter = ',', value_parser = parse_size_arg)]
    pub memory_caps: Vec<u64>,
    /// The report directory: results.jsonl, report.md, readme-fragment.md, *.svg (the scale suite:
    /// scale-fragment.md, no plots).
    #[arg(long, value_name = "DIR", default_value = "bench-report")]
    pub out: PathBuf,
    /// Where inputs are generated (default: OUT/data, removed at the end unless --keep-data). Its disk
    /// is the one whose bandwidth is measured.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Keep the generated inputs (a later run with the same --data reuses them; the scale suite keeps
    /// what its last steps leave: the text, its slice and the imported matrix).
    #[arg(long)]
    pub keep_data: bool,
    /// Runs per measurement (default: smoke 2, quick 3, full 5; scale: products per SpMV run, 5).
    #[arg(long, value_name = "N")]
    pub repeat: Option<usize>,
    /// Skip the Python baselines.
    #[arg(long)]
    pub no_python: bool,
    /// Only rewrite report.md, readme-fragment.md and the plots from OUT/results.jsonl.
    #[arg(long)]
    pub report_only: bool,
    /// Also put readme-fragment.md into FILE between the lines `<!-- bench:begin -->` and
    /// `<!-- bench:end -->` (the project's generated tables are in docs/performance.md); for the scale
    /// suite, scale-fragment.md between `<!-- bench-scale:begin -->` and `<!-- bench-scale:end -->`.
    #[arg(long, value_name = "FILE")]
    pub readme: Option<PathBuf>,
    /// Sizes of the scale suite: full (the default), small (a few minutes), tiny (seconds, for tests).
    #[arg(long, value_enum, default_value_t = ScaleSize::Full, hide = true)]
    pub scale_size: ScaleSize,
    /// Print the scale suite's plan and the disk space it needs at its peak, check that space, and run
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Take SIZE as the data disk's free space instead of asking statvfs (tests of the space check).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg, hide = true)]
    pub assume_free: Option<u64>,
}

/// Replaces the text between the `<!-- MARKER:begin -->` and `<!-- MARKER:end -->` lines of `file`
/// with `fragment`.
fn splice_readme(file: &Path, fragment: &str, marker: &str) -> Result<()> {
    let (begin, end) = (format!("<!-- {marker}:begin -->\n"), format!("<!-- {marker}:end -->"));
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, "reading", e))?;
    let (Some(a), Some(b)) = (text.find(&begin), text.find(&end)) else {
        return Err(Error::invalid(format!(
            "{} has no `<!-- {marker}:begin -->` / `<!-- {marker}:end -->` lines to put the tables between",
            file.display()
        )));
    };
    if b < a {
        return Err(Error::invalid(format!("{}: `{marker}:end` comes before `{marker}:begin`", file.display())));
    }
    let spliced = format!("{}{begin}\n{}\n{}", &text[..a], fragment.trim_end(), &text[b..]);
    std::fs::write(file, spliced).map_err(|e| Error::io(file, "writing", e))
}

/// How an input is made.
#[derive(Debug, Clone)]
enum Source {
    Formula(Generator),
    Random(RandomMatrix),
    /// A user's matrix directory.
    Dir(PathBuf),
    /// A user's triplet file, imported.
    File(PathBuf),
}

/// The kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Import,
    Spmv,
    Spmm,
    Spgemm,
    Pagerank,
    Cg,
}

impl Kernel {
    fn name(self) -> &'static str {
        match self {
            Kernel::Import => "import",
            Kernel::Spmv => "spmv",
            Kernel::Spmm => "spmm",
            Kernel::Spgemm => "spgemm",
            Kernel::Pagerank => "pagerank",
            Kernel::Cg => "cg",
        }
    }
}

/// One input and what runs on it.
#[derive(Debug, Clone)]
struct Input {
    name: String,
    kind: String,
    source: Source,
    kernels: Vec<Kernel>,
    /// Out-of-core SpMV under every cap.
    out_of_core: bool,
    /// Tolerance of CG (PageRank uses 1e-8).
    cg_tol: f64,
}

fn formula(name: &str, g: Generator, kernels: &[Kernel], cg_tol: f64) -> Input {
    let kind = match g {
        Generator::Laplace2d { n } => format!("2-D Laplacian n={n}"),
        Generator::Laplace3d { n } => format!("3-D Laplacian n={n}"),
        Generator::Laplace3d27 { n } => format!("3-D Laplacian n={n}, 27-point"),
        Generator::Banded { n, lower, upper } => format!("banded n={n} ({lower}, {upper})"),
        Generator::BlockDiag { n, block } => format!("block-diagonal n={n}, dense {block} x {block} blocks"),
        Generator::Arrow { n, border } => format!("arrow n={n}, {border} dense rows and columns"),
    };
    Input { name: name.into(), kind, source: Source::Formula(g), kernels: kernels.to_vec(), out_of_core: false, cg_tol }
}

fn rmat(scale: u32, kernels: &[Kernel]) -> Input {
    Input {
        name: format!("rmat-{scale}"),
        kind: format!("R-MAT scale {scale}, edge factor 16"),
        source: Source::Random(RandomMatrix::Rmat { scale, edge_factor: 16, seed: 1 }),
        kernels: kernels.to_vec(),
        out_of_core: false,
        cg_tol: 0.0,
    }
}

fn ooc(mut input: Input) -> Input {
    input.out_of_core = true;
    input
}

/// The suite's inputs and default caps.
fn suite(s: Suite) -> (Vec<Input>, Vec<u64>) {
    use Kernel::*;
    let lap2 = |n| Generator::Laplace2d { n };
    let lap3 = |n| Generator::Laplace3d { n };
    match s {
        Suite::Smoke => (
            vec![
                formula("lap2d-40", lap2(40), &[Import, Spmv, Spmm, Spgemm, Cg], 1e-6),
                rmat(9, &[Spmv, Spgemm, Pagerank]),
                ooc(formula("lap2d-100", lap2(100), &[], 1e-6)),
            ],
            vec![64 << 20],
        ),
        Suite::Quick => (
            vec![
                formula("lap2d-500", lap2(500), &[Import, Spmv, Spmm, Spgemm, Cg], 1e-2),
                formula("lap2d-1000", lap2(1000), &[Spmv, Spmm, Spgemm], 1e-2),
                formula("lap3d-100", lap3(100), &[Spmv, Spmm, Cg], 1e-2),
                rmat(14, &[Import, Spmv, Spgemm, Pagerank]),
                rmat(16, &[Spmv, Spmm, Pagerank]),
                rmat(18, &[Spmv, Spmm, Pagerank]),
                ooc(formula("lap2d-2000", lap2(2000), &[], 1e-2)),
            ],
            vec![128 << 20, 256 << 20],
        ),
        // The scale suite has its own plan (crate::scale).
        Suite::Scale => (vec![], vec![]),
        Suite::Full => (
            vec![
                formula("lap2d-1000", lap2(1000), &[Import, Spmv, Spmm, Spgemm, Cg], 1e-2),
                formula("lap2d-2000", lap2(2000), &[Spmv, Spmm, Spgemm], 1e-2),
                ooc(formula("lap2d-3000", lap2(3000), &[Spmv, Spmm], 1e-2)),
                formula("lap3d-100", lap3(100), &[Spmv, Spmm, Spgemm, Cg], 1e-3),
                formula("lap3d-200", lap3(200), &[Spmv, Spmm, Cg], 1e-2),
                rmat(16, &[Spmv, Spmm, Spgemm, Pagerank]),
                rmat(18, &[Import, Spmv, Spmm, Pagerank]),
                rmat(20, &[Import, Spmv, Spmm, Pagerank]),
                ooc(rmat(22, &[Spmv, Spmm, Pagerank])),
                ooc(formula("lap2d-4500", lap2(4500), &[], 1e-2)),
            ],
            vec![512 << 20, 1 << 30],
        ),
    }
}

/// One step of the plan.
#[derive(Debug, Clone, Copy)]
enum Step {
    MemoryLimit(usize),
    DiskLimit,
    Prepare(usize),
    Measure(usize, Kernel),
    OutOfCore(usize, u64),
    Release(usize),
}

/// A prepared input.
struct Ready {
    matrix: Matrix,
    desc: MatrixDesc,
    /// Raw CSR arrays for the Python baselines, or why there are none.
    raw: std::result::Result<PathBuf, String>,
    /// The Matrix Market text import is measured on, if it has one.
    mtx: Option<PathBuf>,
}

/// The state of a run.
struct Ctx {
    suite: Suite,
    repeat: usize,
    threads: usize,
    data: PathBuf,
    machine: Machine,
    versions: Versions,
    python: std::result::Result<Python, String>,
    records: Vec<Record>,
    /// GB/s of the memory read on 1 thread and on all, and of the cold disk read.
    mem_gbs: BTreeMap<usize, f64>,
    disk_gbs: Option<f64>,
    exe: PathBuf,
}

impl Ctx {
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        kernel: &str,
        tool: &str,
        regime: &str,
        desc: Option<&MatrixDesc>,
        params: serde_json::Value,
        seconds: Spread,
        ops: f64,
        bytes_moved: u64,
        cap: Option<CapRecord>,
        note: Option<String>,
    ) {
        let nnz = desc.map_or(0, |d| d.nnz);
        let figures = figures(&seconds, ops, nnz, bytes_moved);
        let threads = params.get("threads").and_then(|v| v.as_u64()).unwrap_or(self.threads as u64) as usize;
        let limit = if kernel == "limit" || note.is_some() {
            None
        } else if regime == "out_of_core_cold" {
            self.disk_gbs.map(|g| ("disk cold read", g))
        } else {
            self.mem_gbs.get(&threads.min(self.threads)).or(self.mem_gbs.values().last()).map(|&g| ("memory read", g))
        }
        .map(|(name, g)| LimitRecord { name: name.into(), gb_per_s: g, fraction: figures.gb_per_s / g });
        self.records.push(Record {
            schema: 1,
            suite: self.suite.name().into(),
            kernel: kernel.into(),
            tool: tool.into(),
            regime: regime.into(),
            matrix: desc.cloned(),
            params,
            cap,
            seconds,
            figures,
            limit,
            ratios: BTreeMap::new(),
            machine: self.machine.clone(),
            versions: self.versions.clone(),
            note,
        });
    }

    /// A record saying why a measurement is missing.
    fn skipped(&mut self, kernel: Kernel, tool: &str, regime: &str, desc: &MatrixDesc, why: String) {
        let params = serde_json::json!({"repeat": self.repeat});
        self.record(kernel.name(), tool, regime, Some(desc), params, Spread::of(&[]), 1.0, 0, None, Some(why));
    }

    /// Runs the Python baseline `args` and records it (or why it failed or was skipped).
    #[allow(clippy::too_many_arguments)]
    fn python_baseline(
        &mut self,
        kernel: Kernel,
        tool: &str,
        desc: &MatrixDesc,
        input_ready: std::result::Result<(), &String>,
        args: &[String],
        threads: usize,
        bytes_moved: u64,
        extra: serde_json::Value,
    ) {
        let py = match (&self.python, input_ready) {
            (Ok(py), Ok(())) => py.clone(),
            (Err(why), _) | (_, Err(why)) => {
                let why = format!("skipped: {why}");
                return self.skipped(kernel, tool, "in_core_warm", desc, why);
            }
        };
        match run_json(&mut py.command(args), &format!("baselines.py {}", args[0])) {
            Ok(v) => {
                let ops = v["iterations"].as_f64().unwrap_or(1.0);
                let runs = samples(&v);
                let mut params = serde_json::json!({"threads": threads, "repeat": runs.len()});
                merge(&mut params, &extra);
                if v.get("iterations").is_some() {
                    params["iterations"] = v["iterations"].clone();
                }
                if let Some(r) = v.get("residual") {
                    params["residual"] = r.clone();
                }
                self.record(
                    kernel.name(),
                    tool,
                    "in_core_warm",
                    Some(desc),
                    params,
                    Spread::of(&runs),
                    ops,
                    bytes_moved,
                    None,
                    None,
                );
            }
            Err(e) => self.skipped(kernel, tool, "in_core_warm", desc, format!("failed: {e}")),
        }
    }
}

fn merge(into: &mut serde_json::Value, extra: &serde_json::Value) {
    if let (Some(a), Some(b)) = (into.as_object_mut(), extra.as_object()) {
        for (k, v) in b {
            a.insert(k.clone(), v.clone());
        }
    }
}

fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::invalid(format!("cannot start {threads} threads: {e}")))
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_bytes(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn import_options() -> ImportOptions {
    ImportOptions {
        read: ReadOptions::default(),
        memory_budget: sparsedisk::builder::default_memory_budget(),
        duplicates: sparsedisk::builder::Duplicates::Sum,
        drop_zeros: false,
        shape: None,
        square: None,
        values: ValueChoice::Auto,
        layout: LayoutChoice::Csr,
        writer: WriterOptions { overwrite: true, ..WriterOptions::default() },
    }
}

/// Generates or opens an input; writes the Matrix Market text (when import is measured on it) and
/// the raw arrays for Python.
fn prepare(ctx: &mut Ctx, input: &Input) -> Result<Ready> {
    let dir = ctx.data.join(&input.name);
    let writer = WriterOptions { overwrite: true, ..WriterOptions::default() };
    let matrix = match &input.source {
        Source::Dir(d) => Matrix::open(d)?,
        Source::File(f) => {
            // The import of a user's file is itself a measurement.
            let opts = import_options();
            let t = Instant::now();
            let summary = import(f, &dir, &opts, |_| {})?;
            let secs = t.elapsed().as_secs_f64();
            let m = Matrix::open(&dir)?;
            let desc = describe(&m, &input.name, &input.kind);
            let bytes = summary.bytes + m.bytes_on_disk();
            let params = serde_json::json!({"threads": ctx.threads, "repeat": 1, "file": f.display().to_string()});
            ctx.record(
                "import",
                "sparsedisk",
                "in_core_warm",
                Some(&desc),
                params,
                Spread::of(&[secs]),
                1.0,
                bytes,
                None,
                None,
            );
            m
        }
        _ if Matrix::open(&dir).is_ok_and(|m| m.verify().is_ok()) => Matrix::open(&dir)?,
        Source::Formula(g) => generate::<f64>(g, &dir, Layout::Csr, writer)?,
        Source::Random(r) => {
            let opts = BuildOptions { writer, layout: Layout::Csr, ..BuildOptions::default() };
            generate_random::<f64>(r, &dir, opts, &mut |_| {})?.0
        }
    };
    let desc = describe(&matrix, &input.name, &input.kind);
    let mtx = if input.kernels.contains(&Kernel::Import) && !matches!(input.source, Source::File(_)) {
        let path = ctx.data.join(format!("{}.mtx", input.name));
        if !path.exists() {
            let staged = path.with_extension("mtx.partial");
            let f = std::fs::File::create(&staged).map_err(|e| Error::io(&staged, "creating", e))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            sparsedisk::io::export::write_matrix_market(&matrix, &mut w, &staged, &mut |_| {})?;
            use std::io::Write;
            w.flush().map_err(|e| Error::io(&staged, "writing", e))?;
            std::fs::rename(&staged, &path).map_err(|e| Error::io(&path, "renaming", e))?;
        }
        Some(path)
    } else {
        None
    };
    let raw = match &ctx.python {
        Err(why) => Err(why.clone()),
        Ok(_) => {
            let raw = ctx.data.join(format!("{}.raw", input.name));
            if raw.join("shape.json").exists() {
                Ok(raw)
            } else {
                write_raw_csr(&matrix, &raw).map(|_| raw).map_err(|e| e.to_string())
            }
        }
    };
    Ok(Ready { matrix, desc, raw, mtx })
}

fn describe(m: &Matrix, name: &str, kind: &str) -> MatrixDesc {
    MatrixDesc {
        name: name.into(),
        kind: kind.into(),
        rows: m.rows(),
        cols: m.cols(),
        nnz: m.nnz(),
        bytes: m.bytes_on_disk(),
    }
}

/// Whether an in-memory copy (sprs) of the matrix fits comfortably.
fn fits_in_memory(ctx: &Ctx, m: &Matrix) -> bool {
    let copy = m.nnz() * 16 + m.rows() * 8;
    match ctx.machine.available_bytes {
        None => true,
        Some(available) => copy.saturating_mul(4) < available,
    }
}

fn measure(ctx: &mut Ctx, ready: &Ready, input: &Input, kernel: Kernel) -> Result<()> {
    let m = &ready.matrix;
    let repeat = ctx.repeat;
    let all = ctx.threads;
    let (rows, cols) = (m.rows() as usize, m.cols() as usize);
    let bytes = m.bytes_on_disk();
    let desc = ready.desc.clone();
    let warm = "in_core_warm";
    let raw_arg = ready.raw.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let rs = repeat.to_string();
    let raw_ok = ready.raw.as_ref().map(|_| ());
    // In core means the matrix stays in the page cache between runs: a matrix larger than half the
    // memory would be measured out of core under the in-core label.
    let resident = match ctx.machine.available_bytes {
        None => true,
        Some(available) => bytes.saturating_mul(2) < available,
    };
    if !resident && kernel != Kernel::Import {
        let why = "skipped: the matrix does not fit in memory (see the out-of-core runs)".to_string();
        ctx.skipped(kernel, "sparsedisk", warm, &desc, why);
        return Ok(());
    }
    match kernel {
        Kernel::Spmv | Kernel::Spmm => {
            let k = if kernel == Kernel::Spmv { 1 } else { 8 };
            let thread_counts: Vec<usize> = if kernel == Kernel::Spmv && all > 1 { vec![1, all] } else { vec![all] };
            let x = vec![1.0; cols * k];
            let mut y = dense_vector(rows * k);
            let op = Operator::new(m, bytes)?;
            for &t in &thread_counts {
                let p = pool(t)?;
                let (secs, product) = p.install(|| {
                    // Warm-up: maps the segments and brings their pages into the cache.
                    let run =
                        |y: &mut [f64]| if k == 1 { op.spmv(1.0, &x, 0.0, y) } else { op.spmm(1.0, &x, 0.0, y, k) };
                    run(&mut y)?;
                    time_runs(repeat, || Ok::<(), Error>(()), || run(&mut y))
                })?;
                let params = serde_json::json!({"threads": t, "repeat": repeat, "k": k});
                ctx.record(
                    kernel.name(),
                    "sparsedisk",
                    warm,
                    Some(&desc),
                    params,
                    Spread::of(&secs),
                    1.0,
                    product.bytes,
                    None,
                    None,
                );
            }
            if kernel == Kernel::Spmv {
                if m.layout() != Layout::Csr {
                    ctx.skipped(kernel, "sprs", warm, &desc, "skipped: sprs's product takes CSR; this is CSC".into());
                } else if fits_in_memory(ctx, m) {
                    let a = m.to_sprs()?;
                    let mut y = vec![0.0; rows];
                    // sprs accumulates (y += A x): the same work as ours with beta = 0, so y is not
                    // reset between runs.
                    let (secs, ()) = time_runs(
                        repeat,
                        || Ok::<(), Error>(()),
                        || {
                            sprs::prod::mul_acc_mat_vec_csr(a.view(), &x[..], &mut y[..]);
                            Ok(())
                        },
                    )?;
                    let params = serde_json::json!({"threads": 1, "repeat": repeat, "k": 1});
                    ctx.record("spmv", "sprs", warm, Some(&desc), params, Spread::of(&secs), 1.0, bytes, None, None);
                } else {
                    ctx.skipped(kernel, "sprs", warm, &desc, "skipped: an in-memory copy does not fit".into());
                }
                let args = vec!["spmv".into(), raw_arg, "--repeat".into(), rs];
                ctx.python_baseline(kernel, "scipy", &desc, raw_ok, &args, 1, bytes, serde_json::json!({"k": 1}));
            } else {
                let args = vec!["spmm".into(), raw_arg, "--k".into(), "8".into(), "--repeat".into(), rs];
                ctx.python_baseline(kernel, "scipy", &desc, raw_ok, &args, 1, bytes, serde_json::json!({"k": 8}));
            }
        }
        Kernel::Spgemm => {
            let out = ctx.data.join(format!("{}.spgemm-out", input.name));
            let opts = SpgemmOptions {
                op: OpOptions {
                    writer: WriterOptions { overwrite: true, ..WriterOptions::default() },
                    ..OpOptions::default()
                },
                ..SpgemmOptions::default()
            };
            let p = pool(all)?;
            let mut c_bytes = 0;
            let mut c_nnz = 0;
            let (secs, ()) = p.install(|| {
                time_runs(
                    repeat,
                    || {
                        let _ = std::fs::remove_dir_all(&out);
                        Ok::<(), Error>(())
                    },
                    || {
                        let (c, _) = spgemm(m, m, &out, &opts, None)?;
                        c_bytes = c.bytes_on_disk();
                        c_nnz = c.nnz();
                        Ok(())
                    },
                )
            })?;
            let _ = std::fs::remove_dir_all(&out);
            let params = serde_json::json!({"threads": all, "repeat": repeat, "nnz_c": c_nnz, "durable": true});
            ctx.record(
                "spgemm",
                "sparsedisk",
                warm,
                Some(&desc),
                params,
                Spread::of(&secs),
                1.0,
                bytes + c_bytes,
                None,
                None,
            );
            if fits_in_memory(ctx, m) && c_nnz < (1 << 28) {
                let a = m.to_sprs()?;
                sprs::smmp::set_thread_threading_strategy(sprs::smmp::ThreadingStrategy::Fixed(1));
                let (secs, ()) = time_runs(
                    repeat,
                    || Ok::<(), Error>(()),
                    || {
                        std::hint::black_box(&a * &a);
                        Ok(())
                    },
                )?;
                let params = serde_json::json!({"threads": 1, "repeat": repeat, "nnz_c": c_nnz});
                ctx.record(
                    "spgemm",
                    "sprs",
                    warm,
                    Some(&desc),
                    params,
                    Spread::of(&secs),
                    1.0,
                    bytes + c_bytes,
                    None,
                    None,
                );
            } else {
                ctx.skipped(
                    kernel,
                    "sprs",
                    warm,
                    &desc,
                    "skipped: the operand and product do not fit in memory".into(),
                );
            }
            let args = vec!["spgemm".into(), raw_arg, "--repeat".into(), rs];
            ctx.python_baseline(kernel, "scipy", &desc, raw_ok, &args, 1, bytes + c_bytes, serde_json::json!({}));
        }
        Kernel::Pagerank => {
            // Whole solves are long: at most three runs each.
            let repeat = repeat.min(3);
            let rs = repeat.to_string();
            let tol = 1e-8;
            let opts = PagerankOptions { tol, ..PagerankOptions::default() };
            let p = pool(all)?;
            let mut iterations = 0;
            p.install(|| pagerank(m, &opts, &mut |_| {}))?; // warm-up
            let (secs, ()) = p.install(|| {
                time_runs(
                    repeat,
                    || Ok::<(), Error>(()),
                    || {
                        iterations = pagerank(m, &opts, &mut |_| {})?.iterations;
                        Ok(())
                    },
                )
            })?;
            let params = serde_json::json!({"threads": all, "repeat": repeat, "tol": tol, "iterations": iterations});
            ctx.record(
                "pagerank",
                "sparsedisk",
                warm,
                Some(&desc),
                params,
                Spread::of(&secs),
                iterations as f64,
                bytes,
                None,
                None,
            );
            let args = vec!["pagerank".into(), raw_arg, "--tol".into(), tol.to_string(), "--repeat".into(), rs];
            ctx.python_baseline(kernel, "scipy", &desc, raw_ok, &args, 1, bytes, serde_json::json!({"tol": tol}));
        }
        Kernel::Cg => {
            let repeat = repeat.min(3);
            let rs = repeat.to_string();
            let tol = input.cg_tol;
            let opts = CgOptions { tol, max_iter: Some(100_000), ..CgOptions::default() };
            let b = vec![1.0; rows];
            let p = pool(all)?;
            let mut iterations = 0;
            let mut residual = 0.0;
            p.install(|| cg(m, &b, &opts, &mut |_| {}))?; // warm-up
            let (secs, ()) = p.install(|| {
                time_runs(
                    repeat,
                    || Ok::<(), Error>(()),
                    || {
                        let r = cg(m, &b, &opts, &mut |_| {})?;
                        (iterations, residual) = (r.iterations, r.residual);
                        Ok(())
                    },
                )
            })?;
            let params = serde_json::json!({"threads": all, "repeat": repeat, "tol": tol, "iterations": iterations, "residual": residual});
            ctx.record(
                "cg",
                "sparsedisk",
                warm,
                Some(&desc),
                params,
                Spread::of(&secs),
                iterations as f64,
                bytes,
                None,
                None,
            );
            let args = vec!["cg".into(), raw_arg, "--tol".into(), tol.to_string(), "--repeat".into(), rs];
            ctx.python_baseline(kernel, "scipy", &desc, raw_ok, &args, 1, bytes, serde_json::json!({"tol": tol}));
        }
        Kernel::Import => {
            let Some(mtx) = &ready.mtx else { return Ok(()) };
            let input_bytes = std::fs::metadata(mtx).map_err(|e| Error::io(mtx, "reading metadata", e))?.len();
            // Warm: both tools read the text from the page cache.
            std::fs::read(mtx).map_err(|e| Error::io(mtx, "reading", e))?;
            let out = ctx.data.join(format!("{}.import-out", input.name));
            let opts = import_options();
            let p = pool(all)?;
            let (secs, out_bytes) = p.install(|| {
                time_runs(
                    repeat,
                    || {
                        let _ = std::fs::remove_dir_all(&out);
                        Ok::<(), Error>(())
                    },
                    || {
                        let s = import(mtx, &out, &opts, |_| {})?;
                        Ok(s.outputs.iter().map(|o| dir_bytes(o)).sum::<u64>())
                    },
                )
            })?;
            let _ = std::fs::remove_dir_all(&out);
            let params =
                serde_json::json!({"threads": all, "repeat": repeat, "input_bytes": input_bytes, "fsync": true});
            ctx.record(
                "import",
                "sparsedisk",
                warm,
                Some(&desc),
                params,
                Spread::of(&secs),
                1.0,
                input_bytes + out_bytes,
                None,
                None,
            );
            let fmm = ctx.python.as_ref().map(|p| p.fast_matrix_market.is_some()).unwrap_or(false);
            if fmm {
                let args = vec!["read".into(), mtx.display().to_string(), "--repeat".into(), rs];
                let tool = "fast_matrix_market";
                ctx.python_baseline(kernel, tool, &desc, Ok(()), &args, all, input_bytes, serde_json::json!({}));
            } else {
                let why = match &ctx.python {
                    Ok(_) => "skipped: fast_matrix_market is not installed".to_string(),
                    Err(e) => format!("skipped: {e}"),
                };
                ctx.skipped(kernel, "fast_matrix_market", warm, &desc, why);
            }
        }
    }
    Ok(())
}

/// A child process measured out of core: who, what it reads, how to run it.
struct Child<'a> {
    tool: &'a str,
    /// The files to drop from the page cache before each run.
    evict: &'a Path,
    program: &'a std::ffi::OsStr,
    args: &'a [std::ffi::OsString],
    /// Bytes the product reads.
    data_bytes: u64,
}

/// Runs a child (this binary or Python) `rounds` times, each from a cold cache of `evict` and inside a
/// fresh cgroup of `cap` bytes; records the cold first products and the steady ones.
fn cold_runs(ctx: &mut Ctx, ready: &Ready, cap: u64, child: Child<'_>) -> Result<()> {
    let Child { tool, evict, program, args, data_bytes } = child;
    let rounds = match ctx.suite {
        Suite::Full => 3,
        _ => 2,
    };
    let (mut cold, mut steady, mut peaks, mut hits, mut ooms) = (vec![], vec![], vec![], vec![], vec![]);
    let mut cap_reason = None;
    for _ in 0..rounds {
        evict_page_cache(evict)?;
        let capped = MemoryCap::create(cap);
        let mut cmd = match &capped {
            Ok(c) => c.command(program, args),
            Err(why) => {
                cap_reason = Some(why.clone());
                let mut c = std::process::Command::new(program);
                c.args(args);
                c
            }
        };
        // A process thrashing under a cap can run for hours: stop it at 10 times the time its three
        // products would take at the disk's bandwidth, plus 30 s of start-up.
        let expected = 3.0 * data_bytes as f64 / (ctx.disk_gbs.unwrap_or(0.1) * 1e9);
        let limit = std::time::Duration::from_secs_f64(30.0 + 10.0 * expected);
        let result = run_json_within(&mut cmd, &format!("{tool} under a {} cap", format_bytes(cap)), Some(limit));
        if let Ok(c) = &capped {
            let o = c.outcome();
            peaks.extend(o.peak_bytes);
            hits.extend(o.limit_hits);
            ooms.extend(o.oom_kills);
        }
        let v = match result {
            Ok(v) => v,
            Err(e) => {
                let why = format!("failed: {e}");
                ctx.skipped(Kernel::Spmv, tool, "out_of_core_cold", &ready.desc, why);
                return Ok(());
            }
        };
        let all = if v.get("all_seconds").is_some() { v["all_seconds"].clone() } else { v["samples"].clone() };
        let all: Vec<f64> = all.as_array().map(|a| a.iter().filter_map(|x| x.as_f64()).collect()).unwrap_or_default();
        cold.push(all.first().copied().unwrap_or(f64::NAN));
        steady.extend(all.iter().skip(1));
    }
    let cap_record = CapRecord {
        requested_bytes: cap,
        applied: cap_reason.is_none(),
        reason: cap_reason.map(|r| format!("cap: not applied, {r}")),
        peak_bytes: peaks.iter().copied().max(),
        limit_hits: hits.iter().copied().max(),
        oom_kills: ooms.iter().copied().max(),
    };
    let params = serde_json::json!({
        "threads": if tool == "sparsedisk" { ctx.threads } else { 1 },
        "rounds": rounds, "products_per_round": 3, "k": 1,
        "steady_seconds": Spread::of(&steady).median, "steady_samples": steady,
    });
    ctx.record(
        "spmv",
        tool,
        "out_of_core_cold",
        Some(&ready.desc),
        params,
        Spread::of(&cold),
        1.0,
        data_bytes,
        Some(cap_record),
        None,
    );
    Ok(())
}

fn out_of_core(ctx: &mut Ctx, ready: &Ready, cap: u64) -> Result<()> {
    let exe = ctx.exe.clone().into_os_string();
    let threads = ctx.threads.to_string();
    let args: Vec<std::ffi::OsString> = vec![
        "--threads".into(),
        threads.into(),
        "spmv".into(),
        ready.matrix.dir().as_os_str().to_owned(),
        "--repeat".into(),
        "3".into(),
        "--json".into(),
    ];
    let bytes = ready.desc.bytes;
    let child = Child { tool: "sparsedisk", evict: ready.matrix.dir(), program: &exe, args: &args, data_bytes: bytes };
    cold_runs(ctx, ready, cap, child)?;
    match (&ctx.python, &ready.raw) {
        (Ok(py), Ok(raw)) => {
            let (program, mut args) = py.argv();
            args.extend(["memmap-spmv".into(), raw.clone().into_os_string(), "--repeat".into(), "3".into()]);
            let raw = raw.clone();
            let raw_bytes = dir_bytes(&raw);
            let tool = "numpy.memmap+scipy";
            let child = Child { tool, evict: &raw, program: program.as_ref(), args: &args, data_bytes: raw_bytes };
            cold_runs(ctx, ready, cap, child)?;
        }
        (Err(why), _) | (_, Err(why)) => {
            let why = format!("skipped: {why}");
            ctx.skipped(Kernel::Spmv, "numpy.memmap+scipy", "out_of_core_cold", &ready.desc, why);
        }
    }
    Ok(())
}

/// Fills each sparsedisk record's ratios: every baseline's time per operation over ours, for the same
/// kernel, matrix, regime (and cap).
fn ratios(records: &mut [Record]) {
    let key = |r: &Record| {
        (
            r.kernel.clone(),
            r.matrix.as_ref().map(|m| m.name.clone()),
            r.regime.clone(),
            r.cap.as_ref().map(|c| c.requested_bytes),
        )
    };
    let baselines: Vec<_> = records
        .iter()
        .filter(|r| r.tool != "sparsedisk" && r.note.is_none() && r.kernel != "limit")
        .map(|r| (key(r), r.tool.clone(), r.figures.seconds_per_op))
        .collect();
    for r in records.iter_mut().filter(|r| r.tool == "sparsedisk" && r.note.is_none()) {
        let k = key(r);
        for (bk, tool, t) in &baselines {
            if *bk == k && t.is_finite() && r.figures.seconds_per_op > 0.0 {
                r.ratios.insert(tool.clone(), t / r.figures.seconds_per_op);
            }
        }
    }
}

/// Writes results.jsonl, report.md, readme-fragment.md and the plots.
fn write_report(out: &Path, records: &[Record], command: &str, wall: f64, readme: Option<&Path>) -> Result<()> {
    write_jsonl(&out.join("results.jsonl"), records)?;
    rewrite_views(out, records, command, wall, readme)
}

/// Ends a run: the report (as [`write_report`]) and `run.json` (its command and wall time, which
/// `--report-only` keeps).
pub(crate) fn finish_run(
    out: &Path,
    records: &[Record],
    command: &str,
    started: Instant,
    readme: Option<&Path>,
) -> Result<()> {
    let wall = started.elapsed().as_secs_f64();
    write_report(out, records, command, wall, readme)?;
    let run = serde_json::json!({"command": command, "wall_seconds": wall});
    let run_file = out.join("run.json");
    std::fs::write(&run_file, run.to_string()).map_err(|e| Error::io(&run_file, "writing", e))
}

/// This binary's versions, with Python's when the baselines can run.
pub(crate) fn versions_with(python: &std::result::Result<Python, String>) -> Versions {
    let mut versions = Versions::detect();
    if let Ok(p) = python {
        versions.python = Some(p.python.clone());
        versions.numpy = Some(p.numpy.clone());
        versions.scipy = Some(p.scipy.clone());
        versions.fast_matrix_market = p.fast_matrix_market.clone();
    }
    versions
}

/// Writes report.md, readme-fragment.md (and splices it into `readme`) and the plots; for the scale
/// suite, report.md and scale-fragment.md (spliced into `readme`), and no plots.
fn rewrite_views(out: &Path, records: &[Record], command: &str, wall: f64, readme: Option<&Path>) -> Result<()> {
    let md = markdown(records, command, wall);
    std::fs::write(out.join("report.md"), md).map_err(|e| Error::io(out, "writing report.md", e))?;
    if records.iter().any(|r| r.suite == Suite::Scale.name()) {
        let fragment = crate::scale::fragment(records, command, wall);
        let file = out.join("scale-fragment.md");
        std::fs::write(&file, &fragment).map_err(|e| Error::io(&file, "writing", e))?;
        return match readme {
            Some(readme) => splice_readme(readme, &fragment, "bench-scale"),
            None => Ok(()),
        };
    }
    let machine = records.first().map(|r| r.machine.summary()).unwrap_or_default();
    let fragment = format!(
        "Generated by `{command}` ({} measurements, {:.0} s) on {machine}.\n\n{}",
        records.len(),
        wall,
        tables(records, "####")
    );
    std::fs::write(out.join("readme-fragment.md"), &fragment).map_err(|e| Error::io(out, "writing", e))?;
    if let Some(file) = readme {
        splice_readme(file, &fragment, "bench")?;
    }
    plots(records, out)
}

/// The command and wall time of the run that wrote `out` (its `run.json`).
fn read_run_header(out: &Path) -> Option<(String, f64)> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).ok()?).ok()?;
    Some((v["command"].as_str()?.to_string(), v["wall_seconds"].as_f64()?))
}

/// Runs `sparsedisk bench`.
pub fn run(args: BenchArgs, quiet: bool) -> Result<()> {
    let started = Instant::now();
    let command =
        std::iter::once("sparsedisk".to_string()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" ");
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, "creating the report directory", e))?;
    if args.report_only {
        let records = read_jsonl(&args.out.join("results.jsonl"))?;
        // The header keeps the command and wall time of the run that measured.
        let (cmd, wall) = read_run_header(&args.out).unwrap_or((command, 0.0));
        return rewrite_views(&args.out, &records, &cmd, wall, args.readme.as_deref());
    }
    if args.suite == Suite::Scale {
        return crate::scale::run(&args, quiet, &command, started);
    }
    if args.dry_run {
        return Err(Error::invalid("--dry-run prints the plan of --suite scale; the other suites take minutes"));
    }
    let data = args.data.clone().unwrap_or_else(|| args.out.join("data"));
    std::fs::create_dir_all(&data).map_err(|e| Error::io(&data, "creating the data directory", e))?;
    let (mut inputs, default_caps) = suite(args.suite);
    let caps = if args.memory_caps.is_empty() { default_caps } else { args.memory_caps.clone() };
    for (i, path) in args.matrix.iter().enumerate() {
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| format!("m{i}"));
        let source = if path.is_dir() { Source::Dir(path.clone()) } else { Source::File(path.clone()) };
        let mut kernels = vec![Kernel::Spmv, Kernel::Spmm];
        // PageRank needs a square matrix; known only once opened, so it is checked there.
        kernels.push(Kernel::Pagerank);
        inputs.push(Input {
            name: format!("user-{i}-{stem}"),
            kind: path.display().to_string(),
            source,
            kernels,
            out_of_core: true,
            cg_tol: 0.0,
        });
    }
    let threads = rayon::current_num_threads();
    let python = if args.no_python { Err("--no-python was given".to_string()) } else { Python::detect(&data) };
    let versions = versions_with(&python);
    if let (Err(why), false) = (&python, quiet) {
        eprintln!("bench: the Python baselines are skipped: {why}");
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("<current exe>", "finding this program", e))?;
    let mut ctx = Ctx {
        suite: args.suite,
        repeat: args.repeat.unwrap_or(match args.suite {
            Suite::Smoke => 2,
            Suite::Quick => 3,
            Suite::Full | Suite::Scale => 5,
        }),
        threads,
        machine: Machine::describe(&data),
        data: data.clone(),
        versions,
        python,
        records: Vec::new(),
        mem_gbs: BTreeMap::new(),
        disk_gbs: None,
        exe,
    };
    let mut plan = vec![Step::MemoryLimit(1)];
    if threads > 1 {
        plan.push(Step::MemoryLimit(threads));
    }
    plan.push(Step::DiskLimit);
    for (i, input) in inputs.iter().enumerate() {
        plan.push(Step::Prepare(i));
        plan.extend(input.kernels.iter().map(|&k| Step::Measure(i, k)));
        if input.out_of_core {
            plan.extend(caps.iter().map(|&c| Step::OutOfCore(i, c)));
        }
        plan.push(Step::Release(i));
    }
    let bar = plan_bar(plan.len() as u64, quiet);
    let (mem_bytes, disk_bytes) = match args.suite {
        Suite::Smoke => (16 << 20, 16 << 20),
        Suite::Quick => (512 << 20, 1 << 30),
        Suite::Full | Suite::Scale => (1 << 30, 2 << 30),
    };
    let mut ready: BTreeMap<usize, Ready> = BTreeMap::new();
    for step in plan {
        bar.set_message(match step {
            Step::MemoryLimit(t) => format!("memory read bandwidth, {t} threads"),
            Step::DiskLimit => "disk cold read bandwidth".into(),
            Step::Prepare(i) => format!("prepare {}", inputs[i].name),
            Step::Measure(i, k) => format!("{} on {}", k.name(), inputs[i].name),
            Step::OutOfCore(i, c) => format!("spmv on {} under {}", inputs[i].name, format_bytes(c)),
            Step::Release(i) => format!("done with {}", inputs[i].name),
        });
        match step {
            Step::MemoryLimit(t) => {
                let (secs, bytes) = memory_read_bandwidth(mem_bytes, t, ctx.repeat.max(3))?;
                ctx.mem_gbs.insert(t, bytes as f64 / secs.median / 1e9);
                let params = serde_json::json!({"threads": t, "repeat": secs.samples.len()});
                ctx.record("limit", "memory-read", "in_core_warm", None, params, secs, 1.0, bytes, None, None);
            }
            Step::DiskLimit => {
                let (secs, bytes) = disk_read_bandwidth(&data, disk_bytes, 3)?;
                ctx.disk_gbs = Some(bytes as f64 / secs.median / 1e9);
                let params = serde_json::json!({"threads": 1, "repeat": 3, "read_size": 8 << 20});
                ctx.record("limit", "disk-read", "out_of_core_cold", None, params, secs, 1.0, bytes, None, None);
            }
            Step::Prepare(i) => {
                let r = prepare(&mut ctx, &inputs[i])?;
                if r.matrix.rows() != r.matrix.cols() {
                    inputs[i].kernels.retain(|k| !matches!(k, Kernel::Pagerank | Kernel::Cg | Kernel::Spgemm));
                }
                ready.insert(i, r);
            }
            Step::Measure(i, k) => {
                if !inputs[i].kernels.contains(&k) {
                    bar.inc(1);
                    continue;
                }
                if let Some(r) = ready.get(&i) {
                    // One kernel failing on one input (PageRank diverging on negative weights, say) is
                    // a finding for the report, not a reason to lose the rest of the run.
                    if let Err(e) = measure(&mut ctx, r, &inputs[i], k) {
                        let desc = r.desc.clone();
                        ctx.skipped(k, "sparsedisk", "in_core_warm", &desc, format!("failed: {e}"));
                    }
                }
            }
            Step::OutOfCore(i, cap) => {
                if let Some(r) = ready.get(&i) {
                    out_of_core(&mut ctx, r, cap)?;
                }
            }
            Step::Release(i) => {
                ready.remove(&i);
            }
        }
        bar.inc(1);
        // The records so far, so that an interrupted run leaves its measurements.
        write_jsonl(&args.out.join("results.jsonl"), &ctx.records)?;
    }
    bar.finish_and_clear();
    ratios(&mut ctx.records);
    finish_run(&args.out, &ctx.records, &command, started, args.readme.as_deref())?;
    let wall = started.elapsed().as_secs_f64();
    if args.data.is_none() && !args.keep_data {
        let _ = std::fs::remove_dir_all(&data);
    }
    emit(&format!(
        "bench: {} measurements in {:.0} s; report in {}",
        ctx.records.len(),
        wall,
        args.out.join("report.md").display()
    ))
}
