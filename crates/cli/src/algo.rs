//! `sparsedisk pagerank | bfs | components | cg`: the graph and PDE algorithms, results as `.npy`.

use crate::output::{emit, emit_json, styled_bar};
use clap::{Args, ValueEnum};
use sparsedisk::algo::{self, CgOptions, Iteration, PagerankOptions, Preconditioner};
use sparsedisk::io::check_output_file;
use sparsedisk::io::npy::{read_npy, write_npy, write_npy_i64};
use sparsedisk::units::peak_rss_bytes;
use sparsedisk::{Error, Matrix, Result};
use std::path::PathBuf;
use std::time::Instant;

/// Options every algorithm command shares.
#[derive(Debug, Args)]
pub struct Common {
    /// Matrix bytes kept resident across iterations (e.g. 8G); the rest streams through a bounded
    /// read-ahead window. Default: as `spmv`.
    #[arg(long, value_name = "SIZE", value_parser = crate::args::parse_size_arg)]
    pub resident: Option<u64>,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `sparsedisk pagerank`.
#[derive(Debug, Args)]
pub struct PagerankArgs {
    /// Matrix directory (square; entry (i, j) is an edge i -> j weighted by its value).
    pub dir: PathBuf,
    /// Write the ranks to this .npy file (float64).
    #[arg(short, long, value_name = "R.npy")]
    pub output: PathBuf,
    /// Probability of following an edge.
    #[arg(long, default_value_t = 0.85)]
    pub damping: f64,
    /// Stop when the L1 change of the ranks is below this.
    #[arg(long, default_value = "1e-10")]
    pub tol: f64,
    /// Iteration limit (reaching it is an error unless the change is below tol).
    #[arg(long, default_value_t = 1000)]
    pub max_iter: usize,
    #[command(flatten)]
    pub common: Common,
}

/// `sparsedisk bfs`.
#[derive(Debug, Args)]
pub struct BfsArgs {
    /// Matrix directory (square; entry (i, j) is an edge i -> j).
    pub dir: PathBuf,
    /// The source vertex (0-based).
    #[arg(long)]
    pub source: u64,
    /// Write the levels to this .npy file (int64; -1 where unreachable).
    #[arg(short, long, value_name = "LEVELS.npy")]
    pub output: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

/// `sparsedisk components`.
#[derive(Debug, Args)]
pub struct ComponentsArgs {
    /// Matrix directory (square; edge directions are ignored).
    pub dir: PathBuf,
    /// Write the labels to this .npy file (int64: each vertex's smallest component member).
    #[arg(short, long, value_name = "LABELS.npy")]
    pub output: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

/// The `--precond` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecondArg {
    /// Plain CG.
    None,
    /// Divide by the diagonal.
    Jacobi,
}

/// `sparsedisk cg`.
#[derive(Debug, Args)]
pub struct CgArgs {
    /// Matrix directory (symmetric positive definite).
    pub dir: PathBuf,
    /// Right-hand side: `ones` or a 1-D .npy file (float64, float32 or int64; converted to float64).
    #[arg(long, default_value = "ones")]
    pub b: String,
    /// Write the solution to this .npy file.
    #[arg(short, long, value_name = "X.npy")]
    pub output: PathBuf,
    /// Stop when ||b - A x|| / ||b|| is at most this.
    #[arg(long, default_value = "1e-8")]
    pub tol: f64,
    /// Iteration limit (default 10 n; reaching it without convergence is an error).
    #[arg(long)]
    pub max_iter: Option<usize>,
    /// Preconditioner.
    #[arg(long, value_enum, default_value_t = PrecondArg::None)]
    pub precond: PrecondArg,
    #[command(flatten)]
    pub common: Common,
}

/// Runs `algorithm` with a spinner on standard error showing its last iteration (drawn only on a
/// terminal, not with `--quiet`); returns its result and the seconds it took.
fn with_progress<T>(
    quiet: bool,
    figure: &'static str,
    algorithm: impl FnOnce(&mut dyn FnMut(&Iteration)) -> Result<T>,
) -> Result<(T, f64)> {
    let bar = styled_bar(None, "{spinner} {msg} ({elapsed})", quiet);
    let started = Instant::now();
    let result = algorithm(&mut |it: &Iteration| {
        bar.set_message(format!(
            "iteration {}: {figure} {:.3e}, {:.3} s per iteration",
            it.iteration, it.figure, it.seconds
        ))
    });
    bar.finish_and_clear();
    Ok((result?, started.elapsed().as_secs_f64()))
}

fn summary(json: bool, value: serde_json::Value, text: String) -> Result<()> {
    if json {
        emit_json(&value)
    } else {
        emit(&text)
    }
}

/// `sparsedisk pagerank`.
pub fn run_pagerank(args: PagerankArgs, quiet: bool) -> Result<()> {
    check_output_file(&args.output, args.common.force)?;
    let m = Matrix::open(&args.dir)?;
    let options = PagerankOptions {
        damping: args.damping,
        tol: args.tol,
        max_iter: args.max_iter,
        resident_bytes: args.common.resident,
    };
    let (result, seconds) = with_progress(quiet, "L1 change", |progress| algo::pagerank(&m, &options, progress))?;
    if !result.converged {
        return Err(Error::invalid(format!(
            "PageRank did not converge in {} iterations: L1 change {:.3e} >= tol {:.1e} (raise --max-iter)",
            result.iterations, result.delta, args.tol
        )));
    }
    write_npy(&args.output, &result.ranks, result.ranks.len(), None)?;
    summary(
        args.common.json,
        serde_json::json!({
            "algorithm": "pagerank", "matrix": m.dir().display().to_string(), "n": m.rows(), "nnz": m.nnz(),
            "seconds": seconds, "iterations": result.iterations, "delta": result.delta,
            "seconds_per_iteration": seconds / result.iterations.max(1) as f64,
            "damping": args.damping, "tol": args.tol, "threads": rayon::current_num_threads(),
            "peak_rss_bytes": peak_rss_bytes(),
        }),
        format!(
            "pagerank: {} vertices, {} edges: {} iterations, L1 change {:.3e}, {:.3} s ({:.4} s per iteration) -> {}",
            m.rows(),
            m.nnz(),
            result.iterations,
            result.delta,
            seconds,
            seconds / result.iterations.max(1) as f64,
            args.output.display()
        ),
    )
}

/// `sparsedisk bfs`.
pub fn run_bfs(args: BfsArgs, quiet: bool) -> Result<()> {
    check_output_file(&args.output, args.common.force)?;
    let m = Matrix::open(&args.dir)?;
    let (result, seconds) =
        with_progress(quiet, "frontier", |progress| algo::bfs(&m, args.source, args.common.resident, progress))?;
    write_npy_i64(&args.output, &result.levels)?;
    summary(
        args.common.json,
        serde_json::json!({
            "algorithm": "bfs", "matrix": m.dir().display().to_string(), "n": m.rows(), "nnz": m.nnz(),
            "source": args.source, "seconds": seconds, "iterations": result.depth, "depth": result.depth,
            "reached": result.reached, "threads": rayon::current_num_threads(), "peak_rss_bytes": peak_rss_bytes(),
        }),
        format!(
            "bfs from {}: reached {} of {} vertices in {} levels, {:.3} s -> {}",
            args.source,
            result.reached,
            m.rows(),
            result.depth,
            seconds,
            args.output.display()
        ),
    )
}

/// `sparsedisk components`.
pub fn run_components(args: ComponentsArgs, quiet: bool) -> Result<()> {
    check_output_file(&args.output, args.common.force)?;
    let m = Matrix::open(&args.dir)?;
    let (result, seconds) =
        with_progress(quiet, "components", |progress| algo::components(&m, args.common.resident, progress))?;
    let labels: Vec<i64> = result.labels.iter().map(|&l| l as i64).collect();
    write_npy_i64(&args.output, &labels)?;
    summary(
        args.common.json,
        serde_json::json!({
            "algorithm": "components", "matrix": m.dir().display().to_string(), "n": m.rows(), "nnz": m.nnz(),
            "seconds": seconds, "iterations": 1, "components": result.count,
            "peak_rss_bytes": peak_rss_bytes(),
        }),
        format!(
            "components: {} weakly connected components among {} vertices, {:.3} s -> {}",
            result.count,
            m.rows(),
            seconds,
            args.output.display()
        ),
    )
}

/// `sparsedisk cg`.
pub fn run_cg(args: CgArgs, quiet: bool) -> Result<()> {
    check_output_file(&args.output, args.common.force)?;
    let m = Matrix::open(&args.dir)?;
    let n = m.rows() as usize;
    let b = match args.b.as_str() {
        "ones" => vec![1.0; n],
        file => {
            let a = read_npy(&PathBuf::from(file))?;
            if !a.one_dimensional {
                return Err(Error::invalid(format!("--b {file}: expected a 1-D array, found {} x {}", a.rows, a.cols)));
            }
            a.data
        }
    };
    let options = CgOptions {
        tol: args.tol,
        max_iter: args.max_iter,
        preconditioner: match args.precond {
            PrecondArg::None => Preconditioner::None,
            PrecondArg::Jacobi => Preconditioner::Jacobi,
        },
        resident_bytes: args.common.resident,
    };
    let (result, seconds) = with_progress(quiet, "relative residual", |progress| algo::cg(&m, &b, &options, progress))?;
    write_npy(&args.output, &result.x, n, None)?;
    summary(
        args.common.json,
        serde_json::json!({
            "algorithm": "cg", "matrix": m.dir().display().to_string(), "n": m.rows(), "nnz": m.nnz(),
            "seconds": seconds, "iterations": result.iterations, "residual": result.residual,
            "seconds_per_iteration": seconds / result.iterations.max(1) as f64,
            "tol": args.tol, "preconditioner": format!("{:?}", args.precond).to_lowercase(),
            "threads": rayon::current_num_threads(), "peak_rss_bytes": peak_rss_bytes(),
        }),
        format!(
            "cg: {} unknowns, {} nonzeros: {} iterations, relative residual {:.3e}, {:.3} s ({:.4} s per iteration) -> {}",
            n,
            m.nnz(),
            result.iterations,
            result.residual,
            seconds,
            seconds / result.iterations.max(1) as f64,
            args.output.display()
        ),
    )
}
