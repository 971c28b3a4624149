//! `sparsedisk demo`: the README's first command. Generates a PDE matrix straight to disk, inspects
//! it, verifies it, exports it to Matrix Market, imports the text back out of core and checks it is
//! identical, solves it by conjugate gradients; builds a power-law graph out of core and ranks it by
//! PageRank; and prints what it did.

use crate::output::{emit, progress_bar};
use clap::{Args, ValueEnum};
use sparsedisk::algo::{cg, pagerank, CgOptions, PagerankOptions};
use sparsedisk::builder::BuildOptions;
use sparsedisk::builder::Duplicates;
use sparsedisk::generators::{generate_random, generate_with_progress, Generator, RandomMatrix};
use sparsedisk::import::{import, ImportOptions, LayoutChoice, ValueChoice};
use sparsedisk::io::export::export_matrix_market;
use sparsedisk::io::read::ReadOptions;
use sparsedisk::units::{format_bytes, peak_rss_bytes};
use sparsedisk::{Indices, Layout, Matrix, Result, Values, WriterOptions};
use std::path::PathBuf;
use std::time::Instant;

/// `sparsedisk demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Problem size: small (1 M unknowns, a graph of 1 M vertices), medium (9 M, 4 M), large (25 M,
    /// 16 M).
    #[arg(long, value_enum, default_value = "small")]
    pub size: DemoSize,
    /// Working directory (default: a fresh temporary directory, removed at the end).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Memory budget of the import step and of the graph build (small on purpose: both sort out of
    /// core; the import parses with as many threads as it holds).
    #[arg(long, value_name = "SIZE", value_parser = crate::args::parse_size_arg, default_value = "256M")]
    pub memory: u64,
}

/// Demo sizes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DemoSize {
    /// 1000 x 1000 grid; R-MAT scale 20 (16 M edges).
    Small,
    /// 3000 x 3000 grid; R-MAT scale 22 (67 M edges).
    Medium,
    /// 5000 x 5000 grid; R-MAT scale 24 (268 M edges).
    Large,
}

/// Compares two matrices written with the same segment bound from the same entries: their segments
/// must then match array for array. Streams, one pair of segments mapped at a time.
fn same_entries(a: &Matrix, b: &Matrix) -> Result<bool> {
    if a.segments().len() != b.segments().len() || a.value_type() != b.value_type() {
        return Ok(false);
    }
    for (sa, sb) in a.segments_mapped().zip(b.segments_mapped()) {
        let (sa, sb) = (sa?, sb?);
        let same_indices = match (sa.indices(), sb.indices()) {
            (Indices::U32(x), Indices::U32(y)) => x == y,
            (Indices::U64(x), Indices::U64(y)) => x == y,
            _ => false,
        };
        let same_values = match (sa.values(), sb.values()) {
            (Values::F64(x), Values::F64(y)) => x == y,
            (Values::F32(x), Values::F32(y)) => x == y,
            (Values::I64(x), Values::I64(y)) => x == y,
            (Values::Pattern, Values::Pattern) => true,
            _ => false,
        };
        if sa.start() != sb.start() || sa.indptr() != sb.indptr() || !same_indices || !same_values {
            return Ok(false);
        }
    }
    Ok(true)
}

struct Step {
    what: String,
    seconds: f64,
    detail: String,
}

pub fn run(args: DemoArgs, quiet: bool) -> Result<()> {
    let (n, scale) = match args.size {
        DemoSize::Small => (1000, 20),
        DemoSize::Medium => (3000, 22),
        DemoSize::Large => (5000, 24),
    };
    let (root, temporary) = match args.dir {
        Some(d) => (d, false),
        None => (std::env::temp_dir().join(format!("sparsedisk-demo-{}", std::process::id())), true),
    };
    std::fs::create_dir_all(&root).map_err(|e| sparsedisk::Error::io(&root, "creating the demo directory", e))?;
    let result = run_steps(n, scale, &root, args.memory, quiet);
    if temporary {
        let _ = std::fs::remove_dir_all(&root);
    }
    let steps = result?;
    let mut table = format!("{:<44} {:>9}  result\n", "step", "time");
    for s in steps {
        table.push_str(&format!("{:<44} {:>7.2} s  {}\n", s.what, s.seconds, s.detail));
    }
    table.push_str(&format!("peak memory (RSS): {}", peak_rss_bytes().map(format_bytes).unwrap_or_else(|| "?".into())));
    emit(&table)
}

fn run_steps(n: u64, scale: u32, root: &std::path::Path, memory: u64, quiet: bool) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    let dir = root.join(format!("laplace2d-{n}"));
    let generator = Generator::Laplace2d { n };
    let (rows, _) = generator.shape()?;
    let bar = progress_bar(rows, "rows", quiet);
    bar.set_message("generate");
    let t = Instant::now();
    let options = WriterOptions { overwrite: true, ..WriterOptions::default() };
    let m = generate_with_progress::<f64>(&generator, &dir, Layout::Csr, options, &mut |d| bar.set_position(d))?;
    bar.finish_and_clear();
    let info = m.info();
    steps.push(Step {
        what: format!("generate 2-D Laplacian n={n}"),
        seconds: t.elapsed().as_secs_f64(),
        detail: format!("{} x {}, {} nonzeros, {} segments", info.rows, info.cols, info.nnz, info.segments),
    });

    let t = Instant::now();
    let m = Matrix::open(&dir)?;
    let info = m.info();
    steps.push(Step {
        what: "open + info".into(),
        seconds: t.elapsed().as_secs_f64(),
        detail: format!("{} on disk, {:.2} bytes/nonzero", format_bytes(info.bytes_on_disk), info.bytes_per_nonzero),
    });

    let t = Instant::now();
    let report = m.verify()?;
    let s = t.elapsed().as_secs_f64();
    steps.push(Step {
        what: "verify (checksums + structure)".into(),
        seconds: s,
        detail: format!("{} files, {:.2} GB/s", report.files, report.bytes as f64 / s.max(1e-9) / 1e9),
    });

    let mtx = root.join(format!("laplace2d-{n}.mtx"));
    let bar = progress_bar(m.nnz(), "entries", quiet);
    bar.set_message("export");
    let t = Instant::now();
    let bytes = export_matrix_market(&m, &mtx, &mut |d| bar.set_position(d))?;
    bar.finish_and_clear();
    let s = t.elapsed().as_secs_f64();
    steps.push(Step {
        what: "export Matrix Market".into(),
        seconds: s,
        detail: format!("{} written, {:.0} MB/s", format_bytes(bytes), bytes as f64 / s.max(1e-9) / 1e6),
    });

    // Round trip: import the exported text back, out of core under a small budget, and compare.
    let back = root.join(format!("laplace2d-{n}-reimported"));
    let options = ImportOptions {
        read: ReadOptions::default(),
        memory_budget: memory,
        duplicates: Duplicates::Sum,
        drop_zeros: false,
        shape: None,
        square: None,
        values: ValueChoice::Auto,
        layout: LayoutChoice::Csr,
        writer: WriterOptions { overwrite: true, ..WriterOptions::default() },
    };
    let bar = progress_bar(bytes, "bytes", quiet);
    bar.set_message("import");
    let bar_in = bar.clone();
    let summary = import(&mtx, &back, &options, move |p| bar_in.set_position(p.bytes))?;
    bar.finish_and_clear();
    let reimported = Matrix::open(&back)?;
    reimported.verify()?;
    let same = reimported.shape() == m.shape() && reimported.nnz() == m.nnz() && same_entries(&m, &reimported)?;
    if !same {
        return Err(sparsedisk::Error::invalid("the re-imported matrix differs from the generated one"));
    }
    steps.push(Step {
        what: format!("import it back, --memory {}", format_bytes(memory)),
        seconds: summary.seconds,
        detail: format!(
            "{} runs spilled, {} parse threads, {:.0} MB/s, {:.1} M entries/s, identical",
            summary.build.runs,
            summary.parse_threads,
            summary.bytes as f64 / summary.seconds.max(1e-9) / 1e6,
            summary.triplets as f64 / summary.seconds.max(1e-9) / 1e6
        ),
    });

    // The PDE: solve A x = 1 on the re-imported Laplacian by conjugate gradients, streamed.
    let bar = progress_bar(0, "", quiet);
    let t = Instant::now();
    let b = vec![1.0; reimported.rows() as usize];
    let options = CgOptions { tol: 1e-6, ..CgOptions::default() };
    let solved = cg(&reimported, &b, &options, &mut |it| {
        bar.set_message(format!("cg iteration {}: residual {:.2e}", it.iteration, it.figure))
    })?;
    bar.finish_and_clear();
    let s = t.elapsed().as_secs_f64();
    let bytes = reimported.segments().iter().map(|e| e.payload_bytes()).sum::<u64>() as f64;
    steps.push(Step {
        what: "solve A x = 1 by CG (tol 1e-6)".into(),
        seconds: s,
        detail: format!(
            "{} iterations, residual {:.1e}, {:.2} ms/iteration, {:.1} GB/s of matrix",
            solved.iterations,
            solved.residual,
            s / solved.iterations.max(1) as f64 * 1e3,
            bytes * solved.iterations as f64 / s.max(1e-9) / 1e9
        ),
    });

    // The graph: a power-law R-MAT graph built out of core by the external sort, then PageRank.
    let graph_dir = root.join(format!("rmat-{scale}"));
    let graph = RandomMatrix::Rmat { scale, edge_factor: 16, seed: 1 };
    let bar = progress_bar(graph.triplets()?, "edges", quiet);
    bar.set_message("generate graph");
    let t = Instant::now();
    let build = BuildOptions {
        memory_budget: memory,
        layout: Layout::Csr,
        writer: WriterOptions { overwrite: true, ..WriterOptions::default() },
        ..BuildOptions::default()
    };
    let (g, stats) = generate_random::<f64>(&graph, &graph_dir, build, &mut |d| bar.set_position(d))?;
    bar.finish_and_clear();
    steps.push(Step {
        what: format!("R-MAT graph scale {scale}, --memory {}", format_bytes(memory)),
        seconds: t.elapsed().as_secs_f64(),
        detail: format!(
            "{} vertices, {} edges, {} on disk, {} runs spilled",
            g.rows(),
            g.nnz(),
            format_bytes(g.bytes_on_disk()),
            stats.runs
        ),
    });
    let bar = progress_bar(0, "", quiet);
    let t = Instant::now();
    let ranked = pagerank(&g, &PagerankOptions::default(), &mut |it| {
        bar.set_message(format!("pagerank iteration {}: change {:.2e}", it.iteration, it.figure))
    })?;
    bar.finish_and_clear();
    let s = t.elapsed().as_secs_f64();
    let top =
        ranked.ranks.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(v, r)| (v, *r)).unwrap_or((0, 0.0));
    steps.push(Step {
        what: "PageRank (damping 0.85, tol 1e-10)".into(),
        seconds: s,
        detail: format!(
            "{} iterations, {:.1} ms/iteration, top vertex {} (rank {:.2e})",
            ranked.iterations,
            s / ranked.iterations.max(1) as f64 * 1e3,
            top.0,
            top.1
        ),
    });
    Ok(steps)
}
