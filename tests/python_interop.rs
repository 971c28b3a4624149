//! Interop with the Python ecosystem: segments written by sparsedisk open with `zarr` (3.x) and
//! `binsparse` (0.1.4), map with `numpy.memmap`, and equal the scipy matrix built from the same
//! entries. Each test writes a matrix with the library API, writes its entries to a text file, and
//! runs `tests/python/check_segments.py` on both (see that script for the list of checks).
//!
//! Python is found through `SPARSEDISK_PYTHON` (default `python3`). Without `binsparse`, `zarr` and
//! `scipy` the tests print a skip note and pass, unless `SPARSEDISK_REQUIRE_PYTHON=1`, when they fail.
//! `pip install -r tests/python/requirements.txt` installs what they need. When
//! `../shared/tools/anchors/anchors.py` exists, the Laplacian is also compared with its `lap2d`.
//!
//! Values are small integers (or halves) stored as floats, so every comparison is exact.

use serde_json::Value;
use sparsedisk::generators::{generate, Generator};
use sparsedisk::{Element, IndexType, Layout, Matrix, MatrixWriter, ValueType, WriterOptions};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

// ---------------------------------------------------------------- running the checker

/// The Python interpreter to use, or `None` (after a skip note) when it lacks the packages.
fn python_or_skip(test: &str) -> Option<String> {
    let python = std::env::var("SPARSEDISK_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let required = std::env::var("SPARSEDISK_REQUIRE_PYTHON").is_ok_and(|v| v == "1");
    let probe = Command::new(&python).args(["-c", "import binsparse, zarr, scipy, numpy"]).output();
    let problem = match probe {
        Ok(out) if out.status.success() => return Some(python),
        Ok(out) => format!("`{python} -c 'import binsparse, zarr, scipy, numpy'` failed:\n{}", stderr_of(&out.stderr)),
        Err(e) => format!("cannot run `{python}`: {e}"),
    };
    let help = "install them with `pip install -r tests/python/requirements.txt`, or point SPARSEDISK_PYTHON at \
                an interpreter that has them";
    if required {
        panic!("{test}: SPARSEDISK_REQUIRE_PYTHON=1 but {problem}\n{help}");
    }
    eprintln!("{test}: SKIPPED (Python interop): {problem}\n{help}");
    None
}

fn stderr_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/tools/anchors/anchors.py`, when it is there.
fn anchors_script() -> Option<PathBuf> {
    let path = manifest_dir().join("../shared/tools/anchors/anchors.py");
    path.is_file().then_some(path)
}

/// Runs the checker on `matrix_dir` against `entries`; panics with its output on failure. Returns its
/// JSON report.
fn run_check(python: &str, matrix_dir: &Path, entries: &Path, extra: &[String]) -> Value {
    let script = manifest_dir().join("tests/python/check_segments.py");
    let mut cmd = Command::new(python);
    cmd.arg(&script).arg(matrix_dir).arg(entries).args(extra);
    if let Some(anchors) = anchors_script() {
        cmd.env("SPARSEDISK_ANCHORS", anchors);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {python} {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = stderr_of(&out.stderr);
    assert!(
        out.status.success(),
        "check_segments.py failed ({}) on {}\n--- stderr ---\n{stderr}\n--- stdout ---\n{stdout}",
        out.status,
        matrix_dir.display()
    );
    if !stderr.trim().is_empty() {
        eprintln!("{}", stderr.trim_end());
    }
    let line = stdout.lines().last().unwrap_or_default();
    println!("{line}");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("check_segments.py printed no JSON line ({e}):\n{stdout}"))
}

/// Checks that the report describes `m` and that every chunk with bytes was memory-mapped.
fn assert_report_matches(report: &Value, m: &Matrix) {
    assert_eq!(report["nnz"], m.nnz(), "{report}");
    assert_eq!(report["segments"], m.segments().len() as u64, "{report}");
    assert_eq!(report["layout"], m.layout().name(), "{report}");
    assert_eq!(report["value_type"], m.value_type().name(), "{report}");
    assert_eq!(report["index_type"], m.index_type().name(), "{report}");
    let empty = m.segments().iter().filter(|s| s.nnz == 0).count() as u64;
    assert_eq!(report["empty_segments"], empty, "{report}");
    // Chunk files that exist, and so were mapped: the indptr always, the indices when the segment
    // has entries, the values likewise (pattern: always, the one iso byte).
    let pattern = m.value_type() == ValueType::Pattern;
    let chunks: u64 = m
        .segments()
        .iter()
        .map(|s| {
            let stored = u64::from(s.nnz > 0);
            1 + stored + if pattern { 1 } else { stored }
        })
        .sum();
    assert_eq!(report["memmapped_chunks"], chunks, "{report}");
}

// ---------------------------------------------------------------- writing matrices and entries

/// splitmix64 (Steele, Lea & Flood 2014): a tiny deterministic generator, no dependency needed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// How a value is written in the entries file (`None`: pattern, no value column).
trait EntryValue: Element {
    fn random(rng: &mut SplitMix64) -> Self;
    fn text(self) -> Option<String>;
}

impl EntryValue for f64 {
    fn random(rng: &mut SplitMix64) -> Self {
        // Halves in -8 ..= 8, zero included: explicit zeros are stored entries too.
        (rng.below(33) as f64 - 16.0) / 2.0
    }
    fn text(self) -> Option<String> {
        Some(self.to_string())
    }
}

impl EntryValue for f32 {
    fn random(rng: &mut SplitMix64) -> Self {
        (rng.below(33) as f32 - 16.0) / 2.0
    }
    fn text(self) -> Option<String> {
        Some(self.to_string())
    }
}

impl EntryValue for i64 {
    fn random(rng: &mut SplitMix64) -> Self {
        // Mostly small; one in eight near +-2^62, which a float64 round trip would not keep exact.
        let small = rng.below(41) as i64 - 20;
        if rng.below(8) == 0 {
            let big = (1i64 << 62) + rng.below(1 << 20) as i64;
            if small < 0 {
                -big
            } else {
                big
            }
        } else {
            small
        }
    }
    fn text(self) -> Option<String> {
        Some(self.to_string())
    }
}

impl EntryValue for () {
    fn random(_rng: &mut SplitMix64) -> Self {}
    fn text(self) -> Option<String> {
        None
    }
}

/// A matrix as entries `(outer, inner, value)` sorted by `(outer, inner)`, without duplicates.
struct Entries<V> {
    shape: (u64, u64),
    layout: Layout,
    entries: Vec<(u64, u64, V)>,
}

impl<V: EntryValue> Entries<V> {
    /// Random rows: each outer index is empty with probability `empty_pct`%, else holds 1..=max_per
    /// distinct inner indices; outer indices in `blank` are empty.
    fn random(
        shape: (u64, u64),
        layout: Layout,
        seed: u64,
        empty_pct: u64,
        max_per: u64,
        blank: impl Fn(u64) -> bool,
    ) -> Self {
        let mut rng = SplitMix64(seed);
        let (outer_dim, inner_dim) = layout.outer_inner(shape);
        let mut entries = Vec::new();
        for outer in 0..outer_dim {
            if blank(outer) || inner_dim == 0 || rng.below(100) < empty_pct {
                continue;
            }
            let k = 1 + rng.below(max_per.min(inner_dim));
            let mut inner = BTreeSet::new();
            while (inner.len() as u64) < k {
                inner.insert(rng.below(inner_dim));
            }
            entries.extend(inner.into_iter().map(|i| (outer, i, V::random(&mut rng))));
        }
        Entries { shape, layout, entries }
    }

    fn nnz(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Writes the matrix with the three ways of feeding the writer, by outer index: `push_row`
    /// (empty rows included), `push_entry`, and `push_row` of non-empty rows only, leaving the
    /// writer to complete the empty ones.
    fn write(&self, dir: &Path, segment_bytes: u64) -> Matrix {
        let options = WriterOptions { segment_bytes, durable: false, ..Default::default() };
        let mut w = MatrixWriter::<V>::create(dir, self.shape, self.layout, options).expect("create the writer");
        let (outer_dim, _) = self.layout.outer_inner(self.shape);
        let mut at = 0;
        for outer in 0..outer_dim {
            let len = self.entries[at..].iter().take_while(|e| e.0 == outer).count();
            let row = &self.entries[at..at + len];
            at += len;
            let indices: Vec<u64> = row.iter().map(|e| e.1).collect();
            let values: Vec<V> = row.iter().map(|e| e.2).collect();
            match outer % 3 {
                0 => {
                    w.advance_to(outer).unwrap();
                    w.push_row(&indices, &values).unwrap();
                }
                1 => {
                    for &(o, i, v) in row {
                        w.push_entry(o, i, v).unwrap();
                    }
                }
                _ if !row.is_empty() => {
                    w.advance_to(outer).unwrap();
                    w.push_row(&indices, &values).unwrap();
                }
                _ => {}
            }
        }
        assert_eq!(at, self.entries.len(), "entries past the outer dimension");
        let m = w.finish().expect("finish");
        m.verify().expect("the written matrix verifies");
        assert_eq!((m.shape(), m.nnz(), m.layout()), (self.shape, self.nnz(), self.layout));
        m
    }

    /// Writes the entries file: `rows cols value_type layout`, then `row col [value]` lines.
    fn write_file(&self, path: &Path) {
        let mut text = format!("{} {} {} {}\n", self.shape.0, self.shape.1, V::VALUE_TYPE.name(), self.layout.name());
        for &(outer, inner, v) in &self.entries {
            let (r, c) = self.layout.row_col(outer, inner);
            match v.text() {
                Some(value) => writeln!(text, "{r} {c} {value}").unwrap(),
                None => writeln!(text, "{r} {c}").unwrap(),
            }
        }
        std::fs::write(path, text).expect("write the entries file");
    }
}

/// Writes `entries` into a fresh directory with `segment_bytes`, runs the checker, and returns the
/// matrix and report.
fn write_and_check<V: EntryValue>(
    python: &str,
    name: &str,
    entries: &Entries<V>,
    segment_bytes: u64,
    extra: &[String],
) -> (Matrix, Value) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    let m = entries.write(&dir, segment_bytes);
    let file = tmp.path().join(format!("{name}.entries"));
    entries.write_file(&file);
    let report = run_check(python, &dir, &file, extra);
    assert_report_matches(&report, &m);
    (m, report)
}

// ---------------------------------------------------------------- the cases

#[test]
fn f64_csr_random_with_empty_rows_and_trailing_empty_band() {
    let Some(python) = python_or_skip("f64_csr_random") else { return };
    // Rows 0..4 and 20..27 are empty, and so is the band 240..300 at the end; about a fifth of the
    // others too.
    let e = Entries::<f64>::random((300, 97), Layout::Csr, 1, 20, 9, |r| r < 4 || (20..27).contains(&r) || r >= 240);
    let (m, _) = write_and_check(&python, "f64_csr", &e, 512, &[]);
    let segs = m.segments();
    assert!(segs.len() > 5, "expected many segments, got {}", segs.len());
    let last = segs.last().unwrap();
    assert!(last.start >= 240 && last.nnz == 0, "expected a trailing empty band, last segment is {last:?}");
}

#[test]
fn f64_csc_random() {
    let Some(python) = python_or_skip("f64_csc_random") else { return };
    let e = Entries::<f64>::random((80, 150), Layout::Csc, 2, 25, 7, |c| c >= 140);
    let (m, _) = write_and_check(&python, "f64_csc", &e, 400, &[]);
    assert!(m.segments().len() > 3);
}

#[test]
fn f32_csr_random() {
    let Some(python) = python_or_skip("f32_csr_random") else { return };
    let e = Entries::<f32>::random((120, 64), Layout::Csr, 3, 15, 12, |_| false);
    write_and_check(&python, "f32_csr", &e, 700, &[]);
}

#[test]
fn i64_csr_and_csc_random() {
    let Some(python) = python_or_skip("i64_random") else { return };
    let e = Entries::<i64>::random((90, 70), Layout::Csr, 4, 20, 10, |_| false);
    assert!(e.entries.iter().any(|x| x.2.unsigned_abs() > 1 << 53), "the sample should hold values beyond 2^53");
    write_and_check(&python, "i64_csr", &e, 600, &[]);
    let e = Entries::<i64>::random((70, 90), Layout::Csc, 5, 20, 10, |_| false);
    write_and_check(&python, "i64_csc", &e, 600, &[]);
}

#[test]
fn pattern_csr_and_csc() {
    let Some(python) = python_or_skip("pattern") else { return };
    let e = Entries::<()>::random((150, 60), Layout::Csr, 6, 20, 8, |r| r >= 130);
    write_and_check(&python, "pattern_csr", &e, 300, &[]);
    let e = Entries::<()>::random((60, 150), Layout::Csc, 7, 20, 8, |c| c < 3);
    write_and_check(&python, "pattern_csc", &e, 300, &[]);
}

#[test]
fn tiny_segment_bound_gives_one_segment_per_outer_index() {
    let Some(python) = python_or_skip("tiny_segments") else { return };
    // A bound of one byte closes a segment after every outer index, empty ones included.
    let e = Entries::<f64>::random((40, 30), Layout::Csr, 8, 30, 5, |_| false);
    let (m, _) = write_and_check(&python, "tiny_csr", &e, 1, &[]);
    assert_eq!(m.segments().len(), 40);
    let e = Entries::<f32>::random((25, 33), Layout::Csc, 9, 30, 5, |_| false);
    let (m, _) = write_and_check(&python, "tiny_csc", &e, 1, &[]);
    assert_eq!(m.segments().len(), 33);
}

#[test]
fn wide_matrix_with_u64_indices() {
    let Some(python) = python_or_skip("u64_indices") else { return };
    // More than 2^32 columns: the inner indices are stored as uint64.
    let cols = (1u64 << 32) + 7;
    let mut e = Entries::<f64>::random((30, cols), Layout::Csr, 10, 30, 4, |_| false);
    // Rows 5 and 17 get columns past 2^32.
    e.entries.retain(|x| x.0 != 5 && x.0 != 17);
    e.entries.insert(e.entries.partition_point(|x| x.0 < 5), (5, cols - 1, 3.0));
    let at = e.entries.partition_point(|x| x.0 < 17);
    e.entries.splice(at..at, [(17, 2, 1.0), (17, (1 << 32) + 1, -2.0)]);
    let (m, _) = write_and_check(&python, "u64_csr", &e, 256, &[]);
    assert_eq!(m.index_type(), IndexType::Uint64);
}

#[test]
fn zero_nnz_matrices() {
    let Some(python) = python_or_skip("zero_nnz") else { return };
    // Every segment empty: no indices or values chunk anywhere.
    let e = Entries::<f64> { shape: (6, 5), layout: Layout::Csr, entries: Vec::new() };
    let (m, _) = write_and_check(&python, "zero_csr", &e, 16, &[]);
    assert!(m.segments().len() > 1 && m.segments().iter().all(|s| s.nnz == 0));
    let e = Entries::<()> { shape: (7, 4), layout: Layout::Csc, entries: Vec::new() };
    write_and_check(&python, "zero_pattern_csc", &e, 1 << 20, &[]);
    // No outer indices at all: no segments.
    let e = Entries::<f64> { shape: (0, 3), layout: Layout::Csr, entries: Vec::new() };
    let (m, _) = write_and_check(&python, "no_rows", &e, 1 << 20, &[]);
    assert!(m.segments().is_empty());
    // No inner indices: rows, but nothing can be stored in them.
    let e = Entries::<i64> { shape: (4, 0), layout: Layout::Csr, entries: Vec::new() };
    write_and_check(&python, "no_cols", &e, 24, &[]);
}

/// The 5-point Laplacian on an `n x n` grid, written here from its stencil so that the entries do not
/// come from the generator under test.
fn laplace2d_entries(n: u64, layout: Layout) -> Entries<f64> {
    let mut entries = Vec::new();
    for r in 0..n * n {
        let (i, j) = (r / n, r % n);
        let mut put = |c: u64, v: f64| entries.push((r, c, v));
        if i > 0 {
            put(r - n, -1.0);
        }
        if j > 0 {
            put(r - 1, -1.0);
        }
        put(r, 4.0);
        if j + 1 < n {
            put(r + 1, -1.0);
        }
        if i + 1 < n {
            put(r + n, -1.0);
        }
    }
    // Symmetric: the CSC entries (column, row) are the CSR ones.
    Entries { shape: (n * n, n * n), layout, entries }
}

#[test]
fn laplace2d_generator_against_scipy_and_anchors() {
    let Some(python) = python_or_skip("laplace2d") else { return };
    let anchors = anchors_script();
    if anchors.is_none() {
        eprintln!("laplace2d: ../shared/tools/anchors/anchors.py not found: comparing with the stencil only");
    }
    for (n, layout) in [(12, Layout::Csr), (4, Layout::Csr), (9, Layout::Csc)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("lap");
        let options = WriterOptions { segment_bytes: 1024, durable: false, ..Default::default() };
        let m = generate::<f64>(&Generator::Laplace2d { n }, &dir, layout, options).expect("generate");
        let e = laplace2d_entries(n, layout);
        assert_eq!(m.nnz(), e.nnz());
        let file = tmp.path().join("lap.entries");
        e.write_file(&file);
        let extra = if anchors.is_some() { vec!["--lap2d".to_string(), n.to_string()] } else { Vec::new() };
        let report = run_check(&python, &dir, &file, &extra);
        assert_report_matches(&report, &m);
        if anchors.is_some() {
            assert_eq!(report["anchors"]["lap2d"], n, "{report}");
        }
        assert!(m.segments().len() > 1 || n < 6, "n = {n}: expected several segments");
    }
}

/// The checker itself fails for the right reasons: a value changed in a chunk file, or in the entries.
#[test]
fn checker_rejects_a_changed_value() {
    let Some(python) = python_or_skip("checker_rejects") else { return };
    let script = manifest_dir().join("tests/python/check_segments.py");
    let e = Entries::<f64>::random((30, 20), Layout::Csr, 11, 10, 6, |_| false);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let m = e.write(&dir, 1 << 20);
    let file = tmp.path().join("m.entries");
    e.write_file(&file);
    let fails = |why: &str| {
        let out = Command::new(&python).arg(&script).arg(&dir).arg(&file).output().unwrap();
        let stderr = stderr_of(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{why}: the checker should report a mismatch\n{stderr}");
        assert!(stderr.contains("MISMATCH"), "{why}: {stderr}");
        eprintln!("{why}: rejected as expected: {}", stderr.lines().last().unwrap_or_default());
    };

    // The last value of the first segment, plus 1 (little-endian f64 bytes).
    let chunk = dir.join(m.segments()[0].values.as_ref().unwrap().path.as_str());
    let original = std::fs::read(&chunk).unwrap();
    let mut bytes = original.clone();
    let at = bytes.len() - 8;
    let v = f64::from_le_bytes(bytes[at..].try_into().unwrap()) + 1.0;
    bytes[at..].copy_from_slice(&v.to_le_bytes());
    std::fs::write(&chunk, &bytes).unwrap();
    fails("a value changed in values/c/0");
    std::fs::write(&chunk, &original).unwrap();

    let mut changed = Entries { shape: e.shape, layout: e.layout, entries: e.entries.clone() };
    changed.entries[0].2 += 1.0;
    changed.write_file(&file);
    fails("a value changed in the entries file");
}
