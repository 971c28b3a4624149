//! The top-level parser (global options, one variant per subcommand) and dispatch. It depends on
//! every subcommand module, each of which owns its `Args`; none of them depends on it (shared argument
//! types are in `args`).

use clap::{Parser, Subcommand};
use sparsedisk::{Error, Result};

/// Sparse matrices larger than memory: memory-mapped CSR/CSC segments on disk.
#[derive(Debug, Parser)]
#[command(name = "sparsedisk", version, about, long_about = None)]
pub struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub threads: Option<u64>,
    /// No progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// A tour in one command, out of core: a PDE matrix generated, verified, exported and imported
    /// back, solved by CG; a power-law graph built and ranked by PageRank.
    Demo(crate::demo::DemoArgs),
    /// Generate a matrix straight to disk: 2-D/3-D Laplacians, banded, block-diagonal and arrow
    /// matrices, R-MAT graphs and uniform random matrices (the random ones sorted out of core).
    Generate(crate::generate::GenerateArgs),
    /// Import triplets (Matrix Market, edge list, CSV; any order, any size) into a matrix on disk.
    Import(crate::import::ImportArgs),
    /// Sparse matrix times vector: y = A x (or A^T x), streamed over the segments.
    Spmv(crate::spmv::SpmvArgs),
    /// Sparse matrix times a dense block of vectors: Y = A X, one pass over the matrix.
    Spmm(crate::spmv::SpmmArgs),
    /// Sparse times sparse: C = A B (row-wise, out of core, bounded memory).
    Spgemm(crate::ops::SpgemmArgs),
    /// Write A^T (out of core, bounded memory).
    Transpose(crate::ops::TransposeArgs),
    /// Write A in the other layout (CSR <-> CSC), out of core.
    Convert(crate::ops::ConvertArgs),
    /// C = alpha A + beta B (same shape), streaming.
    Add(crate::ops::AddArgs),
    /// PageRank of a graph (entry (i, j): edge i -> j), by power iteration, out of core.
    Pagerank(crate::algo::PagerankArgs),
    /// Breadth-first search: hop distance of every vertex from a source.
    Bfs(crate::algo::BfsArgs),
    /// Weakly connected components (labels: smallest vertex of each component).
    Components(crate::algo::ComponentsArgs),
    /// Solve A x = b by conjugate gradients (A symmetric positive definite), out of core.
    Cg(crate::algo::CgArgs),
    /// Benchmark the kernels on generated and given matrices against the machine's limits and the
    /// baselines (sprs, scipy); write a report (JSON lines, Markdown, SVG plots).
    Bench(sparsedisk_bench::BenchArgs),
    /// Print a matrix's shape, nnz, types, segments and bytes on disk.
    Info(crate::info::InfoArgs),
    /// Check every checksum and every structural invariant of a matrix (O(nnz)).
    Verify(crate::verify::VerifyArgs),
    /// Write a matrix as Matrix Market coordinate text, streaming, in bounded memory.
    Export(crate::export::ExportArgs),
    /// Remove what interrupted or crashed writers left in a matrix directory (staging areas,
    /// temporary files, unlisted segments), except what a running process still uses.
    Clean(crate::clean::CleanArgs),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(usize::try_from(n).unwrap_or(usize::MAX))
            .build_global()
            .map_err(|e| Error::invalid(format!("cannot start {n} threads: {e}")))?;
    }
    let quiet = cli.quiet;
    match cli.command {
        Command::Demo(args) => crate::demo::run(args, quiet),
        Command::Generate(args) => crate::generate::run(args, quiet),
        Command::Import(args) => crate::import::run(args, quiet),
        Command::Info(args) => crate::info::run(args),
        Command::Spmv(args) => crate::spmv::run_spmv(args),
        Command::Spmm(args) => crate::spmv::run_spmm(args),
        Command::Spgemm(args) => crate::ops::run_spgemm(args, quiet),
        Command::Transpose(args) => crate::ops::run_transpose(args, quiet),
        Command::Convert(args) => crate::ops::run_convert(args, quiet),
        Command::Add(args) => crate::ops::run_add(args, quiet),
        Command::Pagerank(args) => crate::algo::run_pagerank(args, quiet),
        Command::Bfs(args) => crate::algo::run_bfs(args, quiet),
        Command::Components(args) => crate::algo::run_components(args, quiet),
        Command::Cg(args) => crate::algo::run_cg(args, quiet),
        Command::Bench(args) => sparsedisk_bench::run(args, quiet),
        Command::Verify(args) => crate::verify::run(args, quiet),
        Command::Export(args) => crate::export::run(args, quiet),
        Command::Clean(args) => crate::clean::run(args),
    }
}
