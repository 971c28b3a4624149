//! `sparsedisk spmv DIR --x ...` and `sparsedisk spmm DIR --x X.npy`: products with timing.

use crate::output::{emit, emit_json};
use clap::Args;
use sparsedisk::generators::SplitMix64;
use sparsedisk::io::check_output_file;
use sparsedisk::io::npy::{read_npy, write_npy};
use sparsedisk::kernels::{dense_vector, CachePolicy, Operator, Product};
use sparsedisk::units::peak_rss_bytes;
use sparsedisk::{Error, Matrix, Result};
use std::path::PathBuf;
use std::time::Instant;

/// The `--cache` policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CacheArg {
    /// sparsedisk keeps a resident part and streams the rest with read-ahead.
    Managed,
    /// The kernel's page cache decides.
    Kernel,
}

/// `sparsedisk spmv`.
#[derive(Debug, Args)]
pub struct SpmvArgs {
    /// Matrix bytes kept mapped and resident across repeated products (e.g. 8G); the rest streams
    /// through a bounded read-ahead window and is dropped from the page cache after use. Default: the
    /// whole matrix if it fits in three quarters of the memory available (cgroup limits included),
    /// else what is left of that after the vectors and the read-ahead window.
    #[arg(long, value_name = "SIZE", value_parser = crate::args::parse_size_arg)]
    pub resident: Option<u64>,
    /// Who manages the page cache: `managed` (resident part + streamed read-ahead, as above) or
    /// `kernel` (map everything and let the kernel's page cache decide, as numpy.memmap does; for
    /// comparison).
    #[arg(long, value_enum, default_value_t = CacheArg::Managed)]
    pub cache: CacheArg,
    /// Matrix directory.
    pub dir: PathBuf,
    /// The vector x: `ones`, `random[:SEED]` (uniform in [0, 1)), or a 1-D .npy file (float64,
    /// float32 or int64; converted to float64).
    #[arg(long, default_value = "ones")]
    pub x: String,
    /// Write y to this .npy file (float64).
    #[arg(short, long, value_name = "Y.npy")]
    pub output: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Multiply by the transpose: y = A^T x.
    #[arg(long)]
    pub transpose: bool,
    /// Repeat the product N times and report the median.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub repeat: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `sparsedisk spmm`.
#[derive(Debug, Args)]
pub struct SpmmArgs {
    /// Matrix bytes kept mapped and resident across repeated products (e.g. 8G); the rest streams
    /// through a bounded read-ahead window and is dropped from the page cache after use. Default: the
    /// whole matrix if it fits in three quarters of the memory available (cgroup limits included),
    /// else what is left of that after the vectors and the read-ahead window.
    #[arg(long, value_name = "SIZE", value_parser = crate::args::parse_size_arg)]
    pub resident: Option<u64>,
    /// Who manages the page cache: `managed` (resident part + streamed read-ahead, as above) or
    /// `kernel` (map everything and let the kernel's page cache decide, as numpy.memmap does; for
    /// comparison).
    #[arg(long, value_enum, default_value_t = CacheArg::Managed)]
    pub cache: CacheArg,
    /// Matrix directory.
    pub dir: PathBuf,
    /// X: `ones:K` / `random:K[:SEED]`, or a 2-D .npy file (float64, float32 or int64; C order) with
    /// one row per matrix column and K columns.
    #[arg(long)]
    pub x: String,
    /// Write Y to this .npy file (float64, rows x K).
    #[arg(short, long, value_name = "Y.npy")]
    pub output: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Repeat the product N times and report the median.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub repeat: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// A generated or loaded dense operand: `n x k`, row-major.
fn operand(spec: &str, n: usize, k_default: Option<usize>, name: &str) -> Result<(Vec<f64>, usize)> {
    let mut parts = spec.split(':');
    let head = parts.next().unwrap_or("");
    let number = |s: Option<&str>, what: &str| -> Result<Option<u64>> {
        s.map(|t| {
            t.parse::<u64>().map_err(|_| Error::invalid(format!("--{name} {spec:?}: {what} {t:?} is not a number")))
        })
        .transpose()
    };
    match head {
        "ones" | "random" => {
            let (k, seed) = match k_default {
                Some(k) => (k, number(parts.next(), "seed")?.unwrap_or(7)),
                None => {
                    let k = number(parts.next(), "column count")?.ok_or_else(|| {
                        Error::invalid(format!("--{name} {spec:?}: say how many columns, e.g. {head}:8"))
                    })?;
                    (k as usize, number(parts.next(), "seed")?.unwrap_or(7))
                }
            };
            let len = n.checked_mul(k).ok_or_else(|| Error::invalid("operand too large"))?;
            let mut v = dense_vector(len);
            if head == "ones" {
                v.fill(1.0);
            } else {
                let mut rng = SplitMix64(seed);
                v.iter_mut().for_each(|e| *e = rng.next_f64());
            }
            Ok((v, k))
        }
        _ => {
            let a = read_npy(&PathBuf::from(spec))?;
            match k_default {
                Some(_) if !a.one_dimensional => {
                    Err(Error::invalid(format!("--{name} {spec}: expected a 1-D array, found {} x {}", a.rows, a.cols)))
                }
                None if a.one_dimensional => {
                    Err(Error::invalid(format!("--{name} {spec}: expected a 2-D array (rows x k), found 1-D")))
                }
                _ if a.rows != n => {
                    Err(Error::invalid(format!("--{name} {spec} has {} rows; the matrix needs {n}", a.rows)))
                }
                _ => {
                    let mut v = dense_vector(a.data.len());
                    v.copy_from_slice(&a.data);
                    Ok((v, a.cols))
                }
            }
        }
    }
}

fn operator(m: &Matrix, cache: CacheArg, requested: Option<u64>, vector_bytes: u64) -> Result<Operator<'_>> {
    match cache {
        CacheArg::Kernel => Operator::with_policy(m, CachePolicy::Kernel),
        CacheArg::Managed => {
            Operator::new(m, requested.unwrap_or_else(|| Operator::default_resident_bytes(m, vector_bytes)))
        }
    }
}

fn timed(repeat: u64, mut f: impl FnMut() -> Result<Product>) -> Result<(Product, Vec<f64>)> {
    let mut times = Vec::with_capacity(repeat as usize);
    let mut stats = Product::default();
    for _ in 0..repeat {
        let t = Instant::now();
        stats = f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok((stats, times))
}

fn report(kind: &str, m: &Matrix, k: usize, stats: Product, times: Vec<f64>, json: bool) -> Result<()> {
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let gflops = 2.0 * stats.nnz as f64 * k as f64 / median.max(1e-12) / 1e9;
    let gb_per_s = stats.bytes as f64 / median.max(1e-12) / 1e9;
    if json {
        return emit_json(&serde_json::json!({
            "kernel": kind,
            "matrix": m.dir().display().to_string(),
            "rows": m.rows(),
            "cols": m.cols(),
            "nnz": stats.nnz,
            "k": k,
            "seconds": median,
            "all_seconds": times,
            "gflops": gflops,
            "gb_per_s": gb_per_s,
            "ns_per_nonzero": median * 1e9 / (stats.nnz.max(1) as f64),
            "matrix_bytes": stats.bytes,
            "segments": stats.segments,
            "threads": rayon::current_num_threads(),
            "peak_rss_bytes": peak_rss_bytes(),
        }));
    }
    emit(&format!(
        "{kind}: {} x {}, {} nonzeros, k = {k}: {:.4} s median of {} ({:.2} GFLOP/s, {:.2} GB/s of matrix)",
        m.rows(),
        m.cols(),
        stats.nnz,
        median,
        times.len(),
        gflops,
        gb_per_s
    ))
}

pub fn run_spmv(args: SpmvArgs) -> Result<()> {
    if let Some(out) = &args.output {
        check_output_file(out, args.force)?;
    }
    let m = Matrix::open(&args.dir)?;
    let (rows, cols) = (m.rows() as usize, m.cols() as usize);
    let (x_len, y_len) = if args.transpose { (rows, cols) } else { (cols, rows) };
    let (x, _) = operand(&args.x, x_len, Some(1), "x")?;
    let mut y = dense_vector(y_len);
    let op = operator(&m, args.cache, args.resident, 8 * (x_len + y_len) as u64)?;
    let (stats, times) = timed(args.repeat, || {
        if args.transpose {
            op.spmv_transpose(1.0, &x, 0.0, &mut y)
        } else {
            op.spmv(1.0, &x, 0.0, &mut y)
        }
    })?;
    if let Some(out) = &args.output {
        write_npy(out, &y, y_len, None)?;
    }
    report(if args.transpose { "spmv_transpose" } else { "spmv" }, &m, 1, stats, times, args.json)
}

pub fn run_spmm(args: SpmmArgs) -> Result<()> {
    if let Some(out) = &args.output {
        check_output_file(out, args.force)?;
    }
    let m = Matrix::open(&args.dir)?;
    let (rows, cols) = (m.rows() as usize, m.cols() as usize);
    let (x, k) = operand(&args.x, cols, None, "x")?;
    let mut y = dense_vector(rows * k);
    let op = operator(&m, args.cache, args.resident, 8 * ((cols + rows) * k) as u64)?;
    let (stats, times) = timed(args.repeat, || op.spmm(1.0, &x, 0.0, &mut y, k))?;
    if let Some(out) = &args.output {
        write_npy(out, &y, rows, Some(k))?;
    }
    report("spmm", &m, k, stats, times, args.json)
}
