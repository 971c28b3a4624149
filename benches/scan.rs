//! # `scan`: how fast a full pass over a matrix's segments runs, next to a plain read of the same files
//!
//! A custom-harness benchmark (no criterion). It measures, in one run and on one matrix:
//!
//! * `scan_warm`: every segment in order is mapped with [`Matrix::map_segment`], every byte of its
//!   `indptr`, `indices` and `values` arrays is read (indptr and indices summed as wrapping `u64`,
//!   values summed as `f64`), and the segment is dropped (unmapped). The page cache holds the files:
//!   before the warm measurements it is dropped and refilled by one untimed sequential read, so the
//!   warm state does not depend on what touched the files last (pages left by the writer of a freshly
//!   generated matrix map markedly faster than pages brought in by read-ahead).
//! * `read_warm`: the same array files read sequentially with [`std::io::Read`] into one reused 8 MiB
//!   buffer, with a cheap checksum over a few bytes of each buffer. The page cache holds the files.
//! * `scan_warm_par`: `scan_warm` with the segments spread over the ambient rayon pool.
//! * `scan_cold` and `read_cold`: `scan_warm` and `read_warm` after dropping the matrix directory's
//!   page cache with [`sparsedisk::storage::evict_page_cache`] before each repetition (not timed).
//!
//! Each measurement is repeated `R` times. Bytes are the segments' payload (indptr + indices + values
//! files), so scan and read move the same bytes and their GB/s compare directly: `ratio_to_read` on a
//! scan line is its GB/s divided by the read GB/s of the same cache state from the same run.
//!
//! stdout carries exactly one JSON line per measurement, with the fields `bench` (`"scan"`), `name`,
//! `mode` (`smoke`/`full`), `matrix` (path), `nnz`, `bytes`, `repeat`, `seconds_min`,
//! `seconds_median`, `seconds_max`, `gb_per_s` (from the median), `threads` and, for scans,
//! `ratio_to_read`. Progress and the checksums go to stderr.
//!
//! # Running
//!
//! ```text
//! cargo bench --bench scan                      # full: Laplace2d n = 3000 (9 M rows, 45 M nonzeros, ~600 MB)
//! cargo bench --bench scan -- --matrix DIR      # full, on an existing matrix
//! cargo bench --bench scan -- --n 1000 --repeat 3
//! cargo test --bench scan                       # smoke: a tiny matrix, one repetition, checks the sums
//! ```
//!
//! Full mode (`--bench` in the arguments, which `cargo bench` passes) generates the Laplacian once into
//! `target/bench-data/laplace2d-n<N>/` (under `$CARGO_TARGET_DIR` when set) and reuses it on later runs
//! when it opens with the expected shape. Smoke mode (anything else, e.g. `cargo test`) generates a tiny
//! multi-segment matrix in a temporary directory and checks that every scan agrees with the sums of
//! [`Matrix::to_sprs`] and of the generator itself; a generated matrix is checked against the generator
//! in full mode too.
//!
//! Options: `--matrix DIR` scans an existing matrix instead of generating one; `--n N` sets the
//! generated Laplace2d grid size (full default 3000, smoke default 30); `--repeat R` sets the
//! repetitions (full default 5, smoke default 1). Unknown arguments are ignored with a note on stderr.

use rayon::prelude::*;
use serde::Serialize;
use sparsedisk::generators::{generate_with_progress, Generator};
use sparsedisk::storage::evict_page_cache;
use sparsedisk::{Indices, Layout, Matrix, ValueType, Values, WriterOptions};
use std::error::Error;
use std::fs::File;
use std::hint::black_box;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Errors of this program: library, I/O and argument errors alike, reported on stderr.
type BoxResult<T> = Result<T, Box<dyn Error>>;

/// Grid size of the generated Laplace2d matrix in full mode: 9 M rows, 45 M nonzeros, ~600 MB.
const FULL_N: u64 = 3000;
/// Grid size in smoke mode: 900 rows, 4380 nonzeros, ~60 KB.
const SMOKE_N: u64 = 30;
/// Segment size of the smoke matrix, small so that it has several segments.
const SMOKE_SEGMENT_BYTES: u64 = 8 << 10;
/// Repetitions in full mode.
const FULL_REPEAT: usize = 5;
/// Buffer of the plain sequential read.
const READ_BUFFER: usize = 8 << 20;
/// Largest matrix (in nonzeros) checked against [`Matrix::to_sprs`] in smoke mode.
const SPRS_CHECK_MAX_NNZ: u64 = 1 << 22;

/// What the command line asked for.
#[derive(Debug, Default)]
struct Config {
    /// Full mode (`--bench` present) rather than smoke mode.
    full: bool,
    /// An existing matrix to scan instead of generating one.
    matrix: Option<PathBuf>,
    /// Grid size of the generated Laplace2d matrix.
    n: Option<u64>,
    /// Repetitions of each measurement.
    repeat: Option<usize>,
}

impl Config {
    /// Parses the process arguments (without the program name).
    fn parse(args: impl IntoIterator<Item = String>) -> BoxResult<Config> {
        let mut config = Config::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| -> BoxResult<String> {
                inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{name} needs a value").into())
            };
            match flag.as_str() {
                "--bench" => config.full = true,
                "--matrix" => config.matrix = Some(PathBuf::from(value("--matrix")?)),
                "--n" => {
                    let v = value("--n")?;
                    let n: u64 = v.parse().map_err(|_| format!("--n wants a positive integer, not {v:?}"))?;
                    if n == 0 {
                        return Err("--n must be at least 1".into());
                    }
                    config.n = Some(n);
                }
                "--repeat" => {
                    let v = value("--repeat")?;
                    let r: usize = v.parse().map_err(|_| format!("--repeat wants a positive integer, not {v:?}"))?;
                    if r == 0 {
                        return Err("--repeat must be at least 1".into());
                    }
                    config.repeat = Some(r);
                }
                _ => eprintln!("scan: ignoring argument {arg:?}"),
            }
        }
        Ok(config)
    }

    /// `"full"` or `"smoke"`, as the JSON lines say.
    fn mode(&self) -> &'static str {
        if self.full {
            "full"
        } else {
            "smoke"
        }
    }
}

/// What one scan of the whole matrix computed: sums that depend on every byte of every array.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct ScanSum {
    /// Segments scanned.
    segments: u64,
    /// Inner indices seen (the matrix's nnz after a full scan).
    entries: u64,
    /// Wrapping sum of every segment's local row pointers.
    indptr: u64,
    /// Wrapping sum of the inner indices.
    indices: u64,
    /// Sum of the values as `f64` (pattern entries count 1), folded segment by segment in order.
    values: f64,
}

impl ScanSum {
    /// `self` followed by `next`; folding per-segment sums in segment order gives the same bits
    /// whether the segments were scanned sequentially or in parallel.
    fn then(self, next: ScanSum) -> ScanSum {
        ScanSum {
            segments: self.segments + next.segments,
            entries: self.entries + next.entries,
            indptr: self.indptr.wrapping_add(next.indptr),
            indices: self.indices.wrapping_add(next.indices),
            values: self.values + next.values,
        }
    }
}

/// What one plain read of all the array files saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ReadSum {
    /// Bytes read.
    bytes: u64,
    /// A cheap fold over a few bytes of each buffer, so the reads cannot be optimised away.
    check: u64,
}

/// The sums a correct scan must produce, computed from another source.
#[derive(Debug, Clone, Copy, Default)]
struct Expected {
    /// Stored entries.
    entries: u64,
    /// Wrapping sum of every segment's local row pointers.
    indptr: u64,
    /// Wrapping sum of the inner indices.
    indices: u64,
    /// Sum of the values.
    values: f64,
    /// Sum of the absolute values, the scale of the rounding tolerance.
    abs_values: f64,
}

impl Expected {
    /// Adds the wrapping sum of each segment's local row pointers, given the global row pointers.
    fn add_local_indptr(&mut self, matrix: &Matrix, global: impl Fn(u64) -> u64) {
        for seg in matrix.segments() {
            let base = global(seg.start);
            for outer in seg.start..=seg.end {
                self.indptr = self.indptr.wrapping_add(global(outer) - base);
            }
        }
    }

    /// Panics, naming `source`, unless `got` has these sums (values within rounding).
    fn check(&self, got: &ScanSum, source: &str) {
        assert_eq!(got.entries, self.entries, "scan saw {} entries, {source} has {}", got.entries, self.entries);
        assert_eq!(got.indptr, self.indptr, "indptr sum differs from {source}");
        assert_eq!(got.indices, self.indices, "indices sum differs from {source}");
        let tolerance = 1e-9 * self.abs_values.max(1.0);
        assert!(
            (got.values - self.values).abs() <= tolerance,
            "values sum {} differs from {source}'s {}",
            got.values,
            self.values
        );
    }
}

/// The sums of the matrix as [`Matrix::to_sprs`] reads it into memory.
fn expected_from_sprs(matrix: &Matrix) -> BoxResult<Expected> {
    let m = matrix.to_sprs()?;
    let indptr = m.indptr().to_proper().into_owned();
    let mut e = Expected { entries: m.indices().len() as u64, ..Expected::default() };
    e.indices = m.indices().iter().fold(0u64, |a, &i| a.wrapping_add(i as u64));
    e.values = m.data().iter().sum();
    e.abs_values = m.data().iter().map(|v| v.abs()).sum();
    e.add_local_indptr(matrix, |outer| indptr[outer as usize] as u64);
    Ok(e)
}

/// The sums of the matrix `generator` produces in `layout`, streamed from the formula.
fn expected_from_generator(matrix: &Matrix, generator: &Generator, layout: Layout) -> BoxResult<Expected> {
    let (outer_dim, _) = layout.outer_inner(generator.shape()?);
    let mut indptr = Vec::with_capacity(outer_dim as usize + 1);
    indptr.push(0u64);
    let (mut indices, mut values) = (Vec::new(), Vec::new());
    let mut e = Expected::default();
    for outer in 0..outer_dim {
        generator.outer(layout, outer, &mut indices, &mut values);
        e.indices = indices.iter().fold(e.indices, |a, &i| a.wrapping_add(i));
        e.values += values.iter().sum::<f64>();
        e.abs_values += values.iter().map(|v| v.abs()).sum::<f64>();
        e.entries += indices.len() as u64;
        indptr.push(e.entries);
    }
    e.add_local_indptr(matrix, |outer| indptr[outer as usize]);
    Ok(e)
}

/// Sums `xs` converted to `f64` with eight independent accumulators, so the loop vectorises and is
/// not bound by the latency of one chain of additions.
#[inline]
fn lane_sum<T: Copy>(xs: &[T], to_f64: impl Fn(T) -> f64) -> f64 {
    const LANES: usize = 8;
    let mut acc = [0.0f64; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(0.0, |a, &x| a + to_f64(x));
    for chunk in chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a += to_f64(x);
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Wrapping sum of `xs` widened to `u64`.
#[inline]
fn wrapping_sum<T: Copy + Into<u64>>(xs: &[T]) -> u64 {
    xs.iter().fold(0u64, |a, &x| a.wrapping_add(x.into()))
}

/// Maps segment `index`, reads every byte of its three arrays, and unmaps it.
fn scan_segment(matrix: &Matrix, index: usize) -> sparsedisk::Result<ScanSum> {
    let seg = matrix.map_segment(index)?;
    let indptr = wrapping_sum(seg.indptr());
    let (indices, entries) = match seg.indices() {
        Indices::U32(ix) => (wrapping_sum(ix), ix.len()),
        Indices::U64(ix) => (wrapping_sum(ix), ix.len()),
    };
    let values = match seg.values() {
        Values::F64(v) => lane_sum(v, |x| x),
        Values::F32(v) => lane_sum(v, f64::from),
        Values::I64(v) => lane_sum(v, |x| x as f64),
        Values::Pattern => entries as f64,
    };
    Ok(ScanSum { segments: 1, entries: entries as u64, indptr, indices, values })
}

/// Scans every segment in order, one mapped at a time.
fn scan(matrix: &Matrix) -> sparsedisk::Result<ScanSum> {
    let mut total = ScanSum::default();
    for i in 0..matrix.segments().len() {
        total = total.then(scan_segment(matrix, i)?);
    }
    Ok(total)
}

/// Scans the segments on the ambient rayon pool, then folds their sums in segment order.
fn scan_par(matrix: &Matrix) -> sparsedisk::Result<ScanSum> {
    let parts: Vec<ScanSum> =
        (0..matrix.segments().len()).into_par_iter().map(|i| scan_segment(matrix, i)).collect::<Result<_, _>>()?;
    Ok(parts.into_iter().fold(ScanSum::default(), ScanSum::then))
}

/// Reads `files` front to back with `std::io::Read` into `buf`.
fn read_files(files: &[PathBuf], buf: &mut [u8]) -> std::io::Result<ReadSum> {
    let mut sum = ReadSum::default();
    for path in files {
        let mut file = File::open(path)?;
        loop {
            let n = match file.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let probe = u64::from(buf[0]) | u64::from(buf[n / 2]) << 8 | u64::from(buf[n - 1]) << 16;
            sum.check = sum.check.rotate_left(7) ^ probe;
            sum.bytes += n as u64;
        }
    }
    Ok(black_box(sum))
}

/// Seconds of each repetition, and what each returned.
struct Timings<T> {
    /// Wall-clock seconds per repetition, in run order.
    seconds: Vec<f64>,
    /// Result of each repetition.
    results: Vec<T>,
}

impl<T> Timings<T> {
    /// `(min, median, max)` seconds; the median of an even count is the mean of the middle two.
    fn stats(&self) -> (f64, f64, f64) {
        let mut s = self.seconds.clone();
        s.sort_by(f64::total_cmp);
        let mid = s.len() / 2;
        let median = if s.len() % 2 == 1 { s[mid] } else { (s[mid - 1] + s[mid]) / 2.0 };
        (s[0], median, s[s.len() - 1])
    }
}

/// Runs `run` `repeat` times, calling `before` (untimed) ahead of each repetition.
fn measure<T>(
    name: &str,
    repeat: usize,
    mut before: impl FnMut() -> BoxResult<()>,
    mut run: impl FnMut() -> BoxResult<T>,
) -> BoxResult<Timings<T>> {
    let mut timings = Timings { seconds: Vec::with_capacity(repeat), results: Vec::with_capacity(repeat) };
    for rep in 0..repeat {
        before()?;
        let start = Instant::now();
        let result = black_box(run()?);
        let secs = start.elapsed().as_secs_f64();
        eprintln!("scan: {name} {}/{repeat}: {secs:.4} s", rep + 1);
        timings.seconds.push(secs);
        timings.results.push(result);
    }
    Ok(timings)
}

/// One line of output.
#[derive(Debug, Serialize)]
struct Line<'a> {
    /// Always `"scan"`.
    bench: &'static str,
    /// The measurement: `scan_warm`, `read_warm`, `scan_warm_par`, `scan_cold` or `read_cold`.
    name: &'static str,
    /// `smoke` or `full`.
    mode: &'static str,
    /// Directory of the matrix.
    matrix: &'a str,
    /// Stored entries of the matrix.
    nnz: u64,
    /// Payload bytes moved per repetition (indptr + indices + values files).
    bytes: u64,
    /// Repetitions.
    repeat: usize,
    /// Fastest repetition.
    seconds_min: f64,
    /// Median repetition.
    seconds_median: f64,
    /// Slowest repetition.
    seconds_max: f64,
    /// `bytes / seconds_median`, in 10^9 bytes per second.
    gb_per_s: f64,
    /// Threads doing the work.
    threads: usize,
    /// Scan lines only: `gb_per_s` over the read's `gb_per_s` in the same cache state.
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio_to_read: Option<f64>,
}

/// The matrix being measured and what the JSON lines say about it.
struct Bench<'a> {
    /// The opened matrix.
    matrix: &'a Matrix,
    /// Its directory, as printed.
    path: String,
    /// Payload bytes per pass.
    bytes: u64,
    /// `smoke` or `full`.
    mode: &'static str,
    /// Repetitions.
    repeat: usize,
}

impl Bench<'_> {
    /// Prints one JSON line for `timings` and returns its GB/s.
    fn report<T>(
        &self,
        name: &'static str,
        timings: &Timings<T>,
        threads: usize,
        read_gb_per_s: Option<f64>,
    ) -> BoxResult<f64> {
        let (min, median, max) = timings.stats();
        let gb_per_s = if median > 0.0 { self.bytes as f64 / 1e9 / median } else { 0.0 };
        let line = Line {
            bench: "scan",
            name,
            mode: self.mode,
            matrix: &self.path,
            nnz: self.matrix.nnz(),
            bytes: self.bytes,
            repeat: self.repeat,
            seconds_min: min,
            seconds_median: median,
            seconds_max: max,
            gb_per_s,
            threads,
            ratio_to_read: read_gb_per_s.map(|r| if r > 0.0 { gb_per_s / r } else { 0.0 }),
        };
        let json = serde_json::to_string(&line)?;
        // Under `cargo test` (smoke mode) the line is made but not printed: test output stays readable.
        if self.mode != "smoke" {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{json}")?;
            out.flush()?;
        }
        Ok(gb_per_s)
    }
}

/// Where full mode keeps its generated matrices: `<target>/bench-data`.
fn bench_data_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-data")
}

/// Opens the matrix `generator` describes in `dir`, generating it first (CSR, `f64`) unless a matrix
/// with the expected shape, nnz and value type is already there.
fn open_or_generate(generator: &Generator, dir: &Path, options: WriterOptions) -> BoxResult<Matrix> {
    let (shape, nnz) = (generator.shape()?, generator.nnz()?);
    match Matrix::open(dir) {
        Ok(m) if m.shape() == shape && m.nnz() == nnz && m.value_type() == ValueType::Float64 => {
            eprintln!("scan: reusing {}", dir.display());
            return Ok(m);
        }
        Ok(_) => eprintln!("scan: {} holds another matrix; regenerating", dir.display()),
        Err(e) if dir.exists() => eprintln!("scan: {} does not open ({e}); regenerating", dir.display()),
        Err(_) => {}
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    eprintln!("scan: generating {generator:?} ({} rows, {nnz} nonzeros) into {}", shape.0, dir.display());
    let start = Instant::now();
    let mut next_report = 0;
    let matrix = generate_with_progress::<f64>(generator, dir, Layout::Csr, options, &mut |done| {
        if done >= next_report {
            eprintln!("scan:   {done} / {} rows", shape.0);
            next_report = done + shape.0 / 10;
        }
    })?;
    eprintln!("scan: generated in {:.1} s", start.elapsed().as_secs_f64());
    Ok(matrix)
}

/// Runs the benchmark.
fn run() -> BoxResult<()> {
    let config = Config::parse(std::env::args().skip(1))?;
    let repeat = config.repeat.unwrap_or(if config.full { FULL_REPEAT } else { 1 });
    // Holds the smoke matrix's temporary directory until the end of the run.
    let mut _scratch = None;
    let (matrix, generator) = match &config.matrix {
        Some(dir) => (Matrix::open(dir)?, None),
        None => {
            let n = config.n.unwrap_or(if config.full { FULL_N } else { SMOKE_N });
            let generator = Generator::Laplace2d { n };
            let matrix = if config.full {
                open_or_generate(
                    &generator,
                    &bench_data_dir().join(format!("laplace2d-n{n}")),
                    WriterOptions::default(),
                )?
            } else {
                let tmp = tempfile::tempdir()?;
                let options =
                    WriterOptions { segment_bytes: SMOKE_SEGMENT_BYTES, durable: false, ..WriterOptions::default() };
                let m = open_or_generate(&generator, &tmp.path().join("laplace2d"), options)?;
                _scratch = Some(tmp);
                m
            };
            (matrix, Some(generator))
        }
    };
    let dir = matrix.dir().to_path_buf();
    let files: Vec<PathBuf> = matrix
        .segments()
        .iter()
        .flat_map(|s| [Some(&s.indptr), Some(&s.indices), s.values.as_ref()])
        .flatten()
        .filter(|f| f.bytes > 0)
        .map(|f| dir.join(&f.path))
        .collect();
    let bytes: u64 = matrix
        .segments()
        .iter()
        .map(|s| s.indptr.bytes + s.indices.bytes + s.values.as_ref().map_or(0, |v| v.bytes))
        .sum();
    let threads = rayon::current_num_threads();
    eprintln!(
        "scan: {} mode, {} ({} x {}, {} nonzeros, {} segments, {} payload), {repeat} repetition(s), {threads} rayon threads",
        config.mode(),
        dir.display(),
        matrix.rows(),
        matrix.cols(),
        matrix.nnz(),
        matrix.segments().len(),
        sparsedisk::units::format_bytes(bytes),
    );

    // Checks before measuring, so a wrong scan fails fast: against the generator (cheap, any size) and,
    // in smoke mode, against the in-memory sprs copy.
    let mut expected = Vec::new();
    if let Some(g) = &generator {
        expected.push(("the generator", expected_from_generator(&matrix, g, matrix.layout())?));
    }
    if !config.full && matrix.nnz() <= SPRS_CHECK_MAX_NNZ {
        expected.push(("to_sprs", expected_from_sprs(&matrix)?));
    }

    let bench = Bench { matrix: &matrix, path: dir.display().to_string(), bytes, mode: config.mode(), repeat };
    let mut buf = vec![0u8; READ_BUFFER];
    let no_prep = || Ok(());
    let evict = || -> BoxResult<()> { Ok(evict_page_cache(&dir)?) };

    // Warm: the cache is dropped and refilled by one untimed sequential read, so the warm state is the
    // same on every run. How the cache was filled matters: pages left by the writer (a freshly generated
    // matrix) can sit in larger folios than read-ahead builds, and map with fewer faults.
    evict()?;
    read_files(&files, &mut buf)?;
    let read_warm = measure("read_warm", repeat, no_prep, || Ok(read_files(&files, &mut buf)?))?;
    let read_warm_gbs = bench.report("read_warm", &read_warm, 1, None)?;
    let scan_warm = measure("scan_warm", repeat, no_prep, || Ok(scan(&matrix)?))?;
    bench.report("scan_warm", &scan_warm, 1, Some(read_warm_gbs))?;
    let scan_warm_par = measure("scan_warm_par", repeat, no_prep, || Ok(scan_par(&matrix)?))?;
    bench.report("scan_warm_par", &scan_warm_par, threads, Some(read_warm_gbs))?;

    // Cold: the matrix directory's page cache is dropped before every repetition.
    let read_cold = measure("read_cold", repeat, evict, || Ok(read_files(&files, &mut buf)?))?;
    let read_cold_gbs = bench.report("read_cold", &read_cold, 1, None)?;
    let scan_cold = measure("scan_cold", repeat, evict, || Ok(scan(&matrix)?))?;
    bench.report("scan_cold", &scan_cold, 1, Some(read_cold_gbs))?;

    // Every scan must agree bit for bit, every read must see every byte, and the sums must match the
    // independent sources.
    let reference = scan_warm.results[0];
    eprintln!(
        "scan: scan sums: {} segments, {} entries, indptr {}, indices {}, values {}",
        reference.segments, reference.entries, reference.indptr, reference.indices, reference.values
    );
    for (name, t) in [("scan_warm", &scan_warm), ("scan_warm_par", &scan_warm_par), ("scan_cold", &scan_cold)] {
        for r in &t.results {
            assert_eq!(*r, reference, "{name} disagrees with the first scan_warm");
        }
    }
    assert_eq!(reference.segments, matrix.segments().len() as u64);
    assert_eq!(reference.entries, matrix.nnz());
    for (name, t) in [("read_warm", &read_warm), ("read_cold", &read_cold)] {
        for r in &t.results {
            assert_eq!(r.bytes, bytes, "{name} read {} bytes, the payload is {bytes}", r.bytes);
        }
    }
    eprintln!("scan: read check {:#x}", read_warm.results[0].check);
    for (source, e) in &expected {
        e.check(&reference, source);
        eprintln!("scan: sums agree with {source}");
    }
    Ok(())
}

/// Runs the benchmark; errors go to stderr and fail the process.
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scan: error: {e}");
            ExitCode::FAILURE
        }
    }
}
