//! The real Matrix Market files of `../shared/datasets/real/` against fast_matrix_market and scipy.
//!
//! Every file its `CATALOG.tsv` lists with format `mtx` or `mtx-noheader` (and any `.mtx.gz`) is
//! imported with [`sparsedisk::import::import`] and:
//!
//! * when fast_matrix_market reads it (the oracle, `tests/python/reference_read.py`, one Python process
//!   for all files), the import must succeed and equal that reading exactly: same shape, same stored
//!   entries (explicit zeros kept, duplicates summed in file order), values bit for bit (int64 values
//!   as int64), through the mapped segments and through [`Matrix::to_sprs`]; the value type chosen by
//!   `ValueChoice::Auto` must follow the banner's field (pattern, int64, float64). A second import as
//!   float64 in CSC layout must equal it too. The oracle also checks fast_matrix_market's own symmetric
//!   expansion plus scipy's `tocsr()` against its reading (same structure, same values);
//! * when it does not (or the file is complex, which sparsedisk does not support), the import must fail
//!   with an [`Error::Parse`] whose line is the one `tests/real_invalid_lines.tsv` gives. That table
//!   was written by reading each file, not by copying what sparsedisk prints. Files where sparsedisk and
//!   fast_matrix_market disagree about validity are listed there as `exception:` rows, each with the
//!   reason.
//!
//! The directory comes from `SPARSEDISK_REAL_DATASETS` (`.ci/test` sets it when
//! `../shared/datasets/real` exists). Unset: the test prints a skip note and passes, unless
//! `SPARSEDISK_REQUIRE_DATASETS=1`. Python as in `tests/python_interop.rs`: `SPARSEDISK_PYTHON`
//! (default `python3`) with `fast_matrix_market`, `scipy` and `numpy`, else a skip note unless
//! `SPARSEDISK_REQUIRE_PYTHON=1`.

use serde_json::Value;
use sparsedisk::builder::Duplicates;
use sparsedisk::import::{import, ImportOptions, ImportProgress, LayoutChoice, ValueChoice};
use sparsedisk::io::read::ReadOptions;
use sparsedisk::{Error, Layout, Matrix, ValueType, Values, WriterOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Files larger than this are skipped (counted and named in the summary) to bound the test's time.
const MAX_FILE_BYTES: u64 = 50 << 20;

/// Small segments so that every matrix beyond a few thousand entries spans several of them.
const SEGMENT_BYTES: u64 = 64 << 10;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

// ---------------------------------------------------------------- the dataset directory and its catalog

/// The dataset directory, or `None` (after a skip note) when `SPARSEDISK_REAL_DATASETS` is unset.
fn datasets_or_skip() -> Option<PathBuf> {
    match std::env::var_os("SPARSEDISK_REAL_DATASETS").filter(|v| !v.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(dir.join("CATALOG.tsv").is_file(), "SPARSEDISK_REAL_DATASETS={} has no CATALOG.tsv", dir.display());
            Some(dir)
        }
        None if env_flag("SPARSEDISK_REQUIRE_DATASETS") => {
            panic!("SPARSEDISK_REQUIRE_DATASETS=1 but SPARSEDISK_REAL_DATASETS is not set")
        }
        None => {
            eprintln!(
                "real_datasets: SKIPPED: SPARSEDISK_REAL_DATASETS is not set (.ci/test sets it to \
                 ../shared/datasets/real when that directory exists)"
            );
            None
        }
    }
}

/// One file the catalog lists as Matrix Market.
#[derive(Debug, Clone)]
struct CatalogFile {
    /// Path relative to the dataset directory, as in the catalog.
    rel: String,
    /// The catalog's `format` column.
    format: String,
}

/// The catalog's Matrix Market files, in catalog order.
fn catalog_mtx_files(dir: &Path) -> Vec<CatalogFile> {
    let path = dir.join("CATALOG.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("CATALOG.tsv is empty").split('\t').collect();
    let column = |name: &str| {
        header.iter().position(|&h| h == name).unwrap_or_else(|| panic!("CATALOG.tsv has no '{name}' column"))
    };
    let (path_col, format_col) = (column("path"), column("format"));
    let mut files = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let (rel, format) = (fields[path_col], fields.get(format_col).copied().unwrap_or(""));
        if matches!(format, "mtx" | "mtx-noheader") || rel.ends_with(".mtx.gz") {
            files.push(CatalogFile { rel: rel.to_string(), format: format.to_string() });
        }
    }
    files
}

// ---------------------------------------------------------------- the table of invalid files

/// Why a file is in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    /// fast_matrix_market rejects the file too.
    Invalid,
    /// A complex file: fast_matrix_market reads it, sparsedisk does not support complex values.
    Complex,
    /// fast_matrix_market reads it but sparsedisk rejects it, for the reason the comment gives.
    Exception,
}

/// One row of `tests/real_invalid_lines.tsv`.
#[derive(Debug, Clone)]
struct Expected {
    /// The line of the error; `None` for an exception sparsedisk reads.
    line: Option<u64>,
    fragment: String,
    category: Category,
    comment: String,
}

fn invalid_table() -> BTreeMap<String, Expected> {
    let path = manifest_dir().join("tests/real_invalid_lines.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut table = BTreeMap::new();
    for (k, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{}:{}", path.display(), k + 1);
        let fields: Vec<&str> = line.split('\t').collect();
        let [rel, expected_line, fragment, comment] = fields[..] else {
            panic!(
                "{at}: expected 4 tab-separated columns (path, line, message fragment, comment), found {}",
                fields.len()
            )
        };
        if rel == "path" {
            continue; // the column names
        }
        let line = match expected_line {
            "-" => None,
            l => Some(l.parse::<u64>().unwrap_or_else(|_| panic!("{at}: line '{l}' is neither a number nor '-'"))),
        };
        let category = match comment.split_once(':').map(|(tag, _)| tag) {
            Some("invalid") => Category::Invalid,
            Some("complex") => Category::Complex,
            Some("exception") => Category::Exception,
            _ => panic!("{at}: the comment must start with 'invalid:', 'complex:' or 'exception:'"),
        };
        assert!(!fragment.is_empty(), "{at}: empty message fragment");
        assert!(
            line.is_some() || (category == Category::Exception && fragment == "-"),
            "{at}: a file sparsedisk reads (line '-') is an exception, with fragment '-'"
        );
        let row = Expected { line, fragment: fragment.to_string(), category, comment: comment.to_string() };
        assert!(table.insert(rel.to_string(), row).is_none(), "{at}: {rel} is listed twice");
    }
    table
}

// ---------------------------------------------------------------- the Python oracle

/// The Python interpreter to use, or `None` (after a skip note) when it lacks the packages.
fn python_or_skip() -> Option<String> {
    let python = std::env::var("SPARSEDISK_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let probe = Command::new(&python).args(["-c", "import fast_matrix_market, scipy, numpy"]).output();
    let problem = match probe {
        Ok(out) if out.status.success() => return Some(python),
        Ok(out) => format!(
            "`{python} -c 'import fast_matrix_market, scipy, numpy'` failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => format!("cannot run `{python}`: {e}"),
    };
    let help = "install them with `pip install -r tests/python/requirements.txt`, or point SPARSEDISK_PYTHON at \
                an interpreter that has them";
    if env_flag("SPARSEDISK_REQUIRE_PYTHON") {
        panic!("real_datasets: SPARSEDISK_REQUIRE_PYTHON=1 but {problem}\n{help}");
    }
    eprintln!("real_datasets: SKIPPED (Python): {problem}\n{help}");
    None
}

/// Runs `reference_read.py` once on every file; returns its JSON record per file, in order.
fn run_oracle(python: &str, files: &[PathBuf], work: &Path) -> Vec<Value> {
    let list = work.join("files.txt");
    let mut text = String::new();
    for f in files {
        let s = f.to_str().expect("dataset paths are UTF-8");
        assert!(!s.contains('\n'), "a path with a newline: {s:?}");
        writeln!(text, "{s}").unwrap();
    }
    std::fs::write(&list, text).unwrap();
    let out_dir = work.join("oracle");
    std::fs::create_dir_all(&out_dir).unwrap();
    let script = manifest_dir().join("tests/python/reference_read.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(&list)
        .arg(&out_dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "reference_read.py failed ({})\n--- stderr ---\n{}\n--- stdout ---\n{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("reference_read.py printed a bad line ({e}): {l}")))
        .collect();
    assert_eq!(records.len(), files.len(), "reference_read.py printed one line per file");
    for (k, r) in records.iter().enumerate() {
        assert_eq!(r["index"], k as u64, "records in order");
        if let Some(tb) = r["traceback"].as_str() {
            panic!("reference_read.py failed unexpectedly on {}:\n{tb}", files[k].display());
        }
    }
    records
}

/// Values of a reference matrix, in the type the file's field gives.
#[derive(Debug)]
enum RefValues {
    Real(Vec<f64>),
    Integer(Vec<i64>),
    Pattern,
}

/// The oracle's matrix: entries sorted by (row, col), duplicates summed, 0-based.
#[derive(Debug)]
struct Reference {
    shape: (u64, u64),
    rows: Vec<u64>,
    cols: Vec<u64>,
    values: RefValues,
}

impl Reference {
    fn load(record: &Value, bin: &Path) -> Reference {
        let shape = (record["shape"][0].as_u64().unwrap(), record["shape"][1].as_u64().unwrap());
        let nnz = record["nnz"].as_u64().unwrap() as usize;
        let bytes = std::fs::read(bin).unwrap_or_else(|e| panic!("reading {}: {e}", bin.display()));
        assert_eq!(bytes.len() % 8, 0, "{}: not a whole number of words", bin.display());
        let words: Vec<[u8; 8]> = bytes.chunks_exact(8).map(|c| c.try_into().unwrap()).collect();
        let kind = record["kind"].as_str().unwrap();
        let expected_words = if kind == "pattern" { 2 * nnz } else { 3 * nnz };
        assert_eq!(words.len(), expected_words, "{}: {kind} with {nnz} entries", bin.display());
        let index = |w: &[u8; 8]| u64::try_from(i64::from_le_bytes(*w)).expect("a negative index from the oracle");
        let rows = words[..nnz].iter().map(index).collect();
        let cols = words[nnz..2 * nnz].iter().map(index).collect();
        let values = match kind {
            "real" => RefValues::Real(words[2 * nnz..].iter().map(|w| f64::from_le_bytes(*w)).collect()),
            "integer" => RefValues::Integer(words[2 * nnz..].iter().map(|w| i64::from_le_bytes(*w)).collect()),
            "pattern" => RefValues::Pattern,
            other => panic!("unknown kind {other}"),
        };
        Reference { shape, rows, cols, values }
    }

    fn value_type(&self) -> ValueType {
        match self.values {
            RefValues::Real(_) => ValueType::Float64,
            RefValues::Integer(_) => ValueType::Int64,
            RefValues::Pattern => ValueType::Pattern,
        }
    }

    /// Value `k` as `f64` (pattern: 1), as [`Matrix::to_sprs`] converts stored values.
    fn f64_at(&self, k: usize) -> f64 {
        match &self.values {
            RefValues::Real(v) => v[k],
            RefValues::Integer(v) => v[k] as f64,
            RefValues::Pattern => 1.0,
        }
    }
}

// ---------------------------------------------------------------- what sparsedisk stored

/// A stored value, exactly.
#[derive(Debug, Clone, Copy)]
enum Stored {
    F64(f64),
    I64(i64),
    One,
}

/// Same value: f64 bit for bit (any NaN equals any NaN), i64 equal.
fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Every entry of a CSR matrix through its mapped segments, in storage order, values as stored.
fn mapped_entries(m: &Matrix) -> Result<Vec<(u64, u64, Stored)>, String> {
    assert_eq!(m.layout(), Layout::Csr);
    let mut out = Vec::with_capacity(m.nnz() as usize);
    for seg in m.segments_mapped() {
        let seg = seg.map_err(|e| format!("mapping a segment: {e}"))?;
        let indptr = seg.indptr();
        let indices = seg.indices();
        let values = seg.values();
        for local in 0..indptr.len().saturating_sub(1) {
            let row = seg.start() + local as u64;
            for k in indptr[local] as usize..indptr[local + 1] as usize {
                let v = match values {
                    Values::F64(v) => Stored::F64(v[k]),
                    Values::I64(v) => Stored::I64(v[k]),
                    Values::Pattern => Stored::One,
                    Values::F32(v) => Stored::F64(v[k] as f64),
                };
                out.push((row, indices.get(k), v));
            }
        }
    }
    Ok(out)
}

/// Compares entries, sorted by (row, col), with the reference: values of the reference's own type
/// exactly (f64 bit for bit, i64 equal), others as `f64`.
fn compare_entries(what: &str, got: &[(u64, u64, Stored)], reference: &Reference) -> Result<(), String> {
    if got.len() != reference.rows.len() {
        return Err(format!("{what}: {} entries, fast_matrix_market has {}", got.len(), reference.rows.len()));
    }
    for (k, &(r, c, v)) in got.iter().enumerate() {
        let (er, ec) = (reference.rows[k], reference.cols[k]);
        if (r, c) != (er, ec) {
            return Err(format!("{what}: entry {k} is ({r}, {c}) (0-based), fast_matrix_market has ({er}, {ec})"));
        }
        let ok = match (v, &reference.values) {
            (Stored::F64(x), RefValues::Real(e)) => same_f64(x, e[k]),
            (Stored::I64(x), RefValues::Integer(e)) => x == e[k],
            (Stored::One, RefValues::Pattern) => true,
            // An integer file read as float64: compared numerically, since the mirror of a skew-symmetric
            // 0 is -0.0 in floating point (IEEE negation) but 0 in int64.
            (Stored::F64(x), RefValues::Integer(e)) => x == e[k] as f64,
            (Stored::F64(x), _) => same_f64(x, reference.f64_at(k)),
            (Stored::I64(x), _) => same_f64(x as f64, reference.f64_at(k)),
            (Stored::One, _) => same_f64(1.0, reference.f64_at(k)),
        };
        if !ok {
            let expected = match &reference.values {
                RefValues::Real(e) => format!("{:?} (bits {:#018x})", e[k], e[k].to_bits()),
                RefValues::Integer(e) => e[k].to_string(),
                RefValues::Pattern => "1 (pattern)".to_string(),
            };
            let got = match v {
                Stored::F64(x) => format!("{x:?} (bits {:#018x})", x.to_bits()),
                Stored::I64(x) => x.to_string(),
                Stored::One => "1 (pattern)".to_string(),
            };
            return Err(format!("{what}: value at ({r}, {c}) (0-based) is {got}, fast_matrix_market has {expected}"));
        }
    }
    Ok(())
}

/// Entries of an sprs matrix (CSR or CSC), sorted by (row, col), as f64.
fn sprs_entries(m: &sprs::CsMat<f64>) -> Vec<(u64, u64, Stored)> {
    let mut out: Vec<(u64, u64, Stored)> = m.iter().map(|(&v, (r, c))| (r as u64, c as u64, Stored::F64(v))).collect();
    // A stable sort: a CSR matrix is already in order; CSC entries of one cell cannot repeat.
    out.sort_by_key(|&(r, c, _)| (r, c));
    out
}

// ---------------------------------------------------------------- importing

fn options(values: ValueChoice, layout: LayoutChoice) -> ImportOptions {
    ImportOptions {
        read: ReadOptions::default(),
        memory_budget: 512 << 20,
        duplicates: Duplicates::Sum,
        drop_zeros: false,
        shape: None,
        square: None,
        values,
        layout,
        writer: WriterOptions { segment_bytes: SEGMENT_BYTES, durable: false, ..WriterOptions::default() },
    }
}

fn run_import(input: &Path, out: &Path, values: ValueChoice, layout: LayoutChoice) -> sparsedisk::Result<u64> {
    import(input, out, &options(values, layout), |_: &ImportProgress| {}).map(|s| {
        assert_eq!(s.outputs, vec![out.to_path_buf()]);
        s.nnz
    })
}

/// Imports a file fast_matrix_market reads and compares every way; returns the segment count.
fn check_readable(input: &Path, out: &Path, reference: &Reference, header_field: &str) -> Result<usize, String> {
    // 1. Auto: the value type follows the banner; values compared in their own type.
    let auto = out.join("auto");
    run_import(input, &auto, ValueChoice::Auto, LayoutChoice::Csr).map_err(|e| format!("import failed: {e}"))?;
    let m = Matrix::open(&auto).map_err(|e| format!("opening the import: {e}"))?;
    m.verify().map_err(|e| format!("verify: {e}"))?;
    if m.value_type() != reference.value_type() {
        return Err(format!(
            "value type {} for a '{header_field}' file, expected {}",
            m.value_type().name(),
            reference.value_type().name()
        ));
    }
    if m.shape() != reference.shape {
        return Err(format!("shape {:?}, fast_matrix_market has {:?}", m.shape(), reference.shape));
    }
    compare_entries("mapped segments (auto)", &mapped_entries(&m)?, reference)?;
    let csr = m.to_sprs().map_err(|e| format!("to_sprs: {e}"))?;
    if (csr.rows() as u64, csr.cols() as u64) != reference.shape || !csr.is_csr() {
        return Err(format!("to_sprs: a {}x{} matrix, csr={}", csr.rows(), csr.cols(), csr.is_csr()));
    }
    compare_entries("to_sprs (auto)", &sprs_entries(&csr), reference)?;
    let segments = m.segments().len();

    // 2. float64 in CSC layout. Integer files: exact while the values (and so, in these files, their
    // sums) stay below 2^53.
    let exact_in_f64 = match &reference.values {
        RefValues::Integer(v) => v.iter().all(|x| x.unsigned_abs() <= 1 << 53),
        _ => true,
    };
    if exact_in_f64 {
        let f64_dir = out.join("f64-csc");
        run_import(input, &f64_dir, ValueChoice::Fixed(ValueType::Float64), LayoutChoice::Csc)
            .map_err(|e| format!("import as float64 (CSC) failed: {e}"))?;
        let m = Matrix::open(&f64_dir).map_err(|e| format!("opening the float64 import: {e}"))?;
        m.verify().map_err(|e| format!("verify (float64, CSC): {e}"))?;
        if m.value_type() != ValueType::Float64 || m.layout() != Layout::Csc || m.shape() != reference.shape {
            return Err(format!("float64 CSC import: {:?} {:?} {:?}", m.value_type(), m.layout(), m.shape()));
        }
        let csc = m.to_sprs().map_err(|e| format!("to_sprs (float64, CSC): {e}"))?;
        compare_entries("to_sprs (float64, CSC)", &sprs_entries(&csc), reference)?;
    }
    Ok(segments)
}

/// A copy of a Matrix Market file for fast_matrix_market, for a file sparsedisk reads and it does not:
/// the banner's words lowercased (`%%MatrixMarket` as fast_matrix_market wants it) with `coord` spelled
/// `coordinate`, comment and blank lines dropped. Each
/// change is one sparsedisk documents as meaning nothing.
fn normalized_copy(src: &Path, dst: &Path) {
    let text = std::fs::read(src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
    let text = String::from_utf8_lossy(&text);
    let mut lines = text.lines();
    let banner: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .enumerate()
        .map(|(i, w)| match w.to_ascii_lowercase().as_str() {
            _ if i == 0 => "%%MatrixMarket".to_string(),
            "coord" => "coordinate".to_string(),
            w => w.to_string(),
        })
        .collect();
    let mut out = banner.join(" ") + "\n";
    for line in lines.filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('%')) {
        out.push_str(line.trim_end_matches('\r'));
        out.push('\n');
    }
    std::fs::write(dst, out).unwrap();
}

/// Checks that importing an invalid file fails where the table says.
fn check_invalid(input: &Path, out: &Path, expected: &Expected) -> Result<(), String> {
    let expected_line = expected.line.expect("an error is expected");
    let err = match run_import(input, out, ValueChoice::Auto, LayoutChoice::Csr) {
        Ok(nnz) => return Err(format!("imported ({nnz} entries), expected an error at line {expected_line}")),
        Err(e) => e,
    };
    if out.join("manifest.json").exists() {
        return Err(format!("the import failed ({err}) but published a matrix"));
    }
    match &err {
        Error::Parse { path, line, msg } => {
            if path != input {
                return Err(format!("error names {} instead of the input: {err}", path.display()));
            }
            if *line != expected_line {
                return Err(format!("error at line {line}, expected line {expected_line}: {err}"));
            }
            if !msg.contains(&expected.fragment) {
                return Err(format!("the message does not contain '{}': {err}", expected.fragment));
            }
            Ok(())
        }
        other => Err(format!("expected a parse error at line {expected_line}, got: {other} ({other:?})")),
    }
}

// ---------------------------------------------------------------- the test

#[test]
fn real_matrix_market_files_match_fast_matrix_market() {
    let Some(dir) = datasets_or_skip() else { return };
    let Some(python) = python_or_skip() else { return };
    let start = Instant::now();
    let files = catalog_mtx_files(&dir);
    let table = invalid_table();
    let selected: BTreeSet<&str> = files.iter().map(|f| f.rel.as_str()).collect();
    for rel in table.keys() {
        assert!(
            selected.contains(rel.as_str()),
            "tests/real_invalid_lines.tsv lists {rel}, which the catalog does not"
        );
    }

    let tmp = tempfile::tempdir().unwrap();
    let mut skipped: Vec<String> = Vec::new();
    let mut work: Vec<(usize, PathBuf)> = Vec::new(); // (index in files, absolute path)
    for (k, f) in files.iter().enumerate() {
        let path = dir.join(&f.rel);
        match std::fs::metadata(&path) {
            Ok(m) if m.len() > MAX_FILE_BYTES => {
                skipped.push(format!("{} ({} MB > {} MB)", f.rel, m.len() >> 20, MAX_FILE_BYTES >> 20))
            }
            Ok(_) => work.push((k, path)),
            Err(e) => skipped.push(format!("{} (missing: {e})", f.rel)),
        }
    }
    // Files sparsedisk reads and fast_matrix_market does not: the oracle reads a normalized copy.
    let normalized_dir = tmp.path().join("normalized");
    std::fs::create_dir_all(&normalized_dir).unwrap();
    let mut normalized: BTreeMap<usize, usize> = BTreeMap::new(); // index in work -> index in the oracle's list
    let mut paths: Vec<PathBuf> = work.iter().map(|(_, p)| p.clone()).collect();
    for (n, (k, path)) in work.iter().enumerate() {
        if table.get(&files[*k].rel).is_some_and(|e| e.line.is_none()) {
            let copy = normalized_dir.join(format!("{n}.mtx"));
            normalized_copy(path, &copy);
            normalized.insert(n, paths.len());
            paths.push(copy);
        }
    }
    let oracle_start = Instant::now();
    let records = run_oracle(&python, &paths, tmp.path());
    let oracle_seconds = oracle_start.elapsed().as_secs_f64();
    let reference_of = |index: usize| {
        let record = &records[index];
        Reference::load(record, &tmp.path().join("oracle").join(format!("{index}.bin")))
    };

    let mut failures: Vec<String> = Vec::new();
    let (mut matched, mut multi_segment, mut entries) = (0usize, 0usize, 0u64);
    let mut rejected = [0usize; 3]; // by Category as usize
    let mut exceptions: Vec<String> = Vec::new();
    for (n, (k, path)) in work.iter().enumerate() {
        let rel = &files[*k].rel;
        let record = &records[n];
        let out = tmp.path().join(format!("m{n}"));
        let status = record["status"].as_str().unwrap_or_default();
        let fmm_says = match status {
            "ok" => format!(
                "fast_matrix_market reads it ({} {} {} {})",
                record["object"], record["format"], record["field"], record["symmetry"]
            ),
            "complex" => "fast_matrix_market reads it (complex)".to_string(),
            _ => format!("fast_matrix_market: {}", record["error"].as_str().unwrap_or("?")),
        };
        let mut readable = |index: usize| -> Result<(), String> {
            let record = &records[index];
            let scipy_agrees = record["scipy_structure_equal"].as_bool() == Some(true)
                && record["scipy_values_equal"].as_bool() == Some(true);
            let field = record["field"].as_str().unwrap_or_default();
            let segments = check_readable(path, &out, &reference_of(index), field)?;
            if !scipy_agrees {
                return Err(format!(
                    "sparsedisk equals the file-order reading, but fmm.mmread().tocsr() differs from it: {record}"
                ));
            }
            matched += 1;
            entries += record["nnz"].as_u64().unwrap_or(0);
            multi_segment += usize::from(segments > 1);
            Ok(())
        };
        let result = match (table.get(rel), status) {
            (None, "ok") => readable(n),
            (None, _) => Err(format!(
                "{fmm_says}, but tests/real_invalid_lines.tsv has no row for it: read the file, find the line at \
                 fault and add it (sparsedisk says: {})",
                match run_import(path, &out.join("probe"), ValueChoice::Auto, LayoutChoice::Csr) {
                    Ok(nnz) => format!("imported, {nnz} entries"),
                    Err(e) => e.to_string(),
                }
            )),
            (Some(expected), _) => {
                let consistent = match (expected.category, expected.line) {
                    (Category::Invalid, _) => status == "error",
                    (Category::Complex, _) => status == "complex",
                    (Category::Exception, Some(_)) => status == "ok",
                    (Category::Exception, None) => status == "error",
                };
                let r = if !consistent {
                    Err(format!("the table says {:?} ({}), but {fmm_says}", expected.category, expected.comment))
                } else if expected.line.is_none() {
                    let index = normalized[&n];
                    match records[index]["status"].as_str() {
                        Some("ok") => readable(index),
                        _ => Err(format!(
                            "fast_matrix_market cannot read the normalized copy either: {}",
                            records[index]
                        )),
                    }
                } else {
                    check_invalid(path, &out, expected)
                };
                if r.is_ok() {
                    rejected[expected.category as usize] += usize::from(expected.line.is_some());
                    if expected.category == Category::Exception {
                        let line = expected.line.map_or("reads".to_string(), |l| format!("line {l}"));
                        exceptions.push(format!("{rel}: {line}: {}", expected.comment));
                    }
                }
                r
            }
        };
        if let Err(e) = result {
            failures.push(format!("{rel} [{}]: {e}", files[*k].format));
        }
    }

    let invalid_ok: usize = rejected.iter().sum();
    println!(
        "real_datasets: {} Matrix Market files in the catalog: {matched} imported and equal to fast_matrix_market \
         ({entries} entries, {multi_segment} spanning several segments, {} through a normalized copy); {invalid_ok} rejected at the expected line \
         ({} invalid, {} complex, {} exceptions); {} skipped{}; {} failed. Oracle {oracle_seconds:.1} s, total {:.1} s.",
        files.len(),
        normalized.len(),
        rejected[Category::Invalid as usize],
        rejected[Category::Complex as usize],
        rejected[Category::Exception as usize],
        skipped.len(),
        if skipped.is_empty() { String::new() } else { format!(" ({})", skipped.join(", ")) },
        failures.len(),
        start.elapsed().as_secs_f64()
    );
    for e in &exceptions {
        println!("real_datasets: exception: {e}");
    }
    assert!(failures.is_empty(), "{} of {} files failed:\n{}", failures.len(), work.len(), failures.join("\n"));
    assert!(matched > 0 && invalid_ok > 0, "nothing was checked");
}
