//! The real matrices of `../shared/datasets/real/` for the tests that compare with scipy: the
//! environment, the catalogue, and importing a file with small segments.

use sparsedisk::builder::Duplicates;
use sparsedisk::import::{import, ImportOptions, ImportProgress, LayoutChoice, ValueChoice};
use sparsedisk::io::read::ReadOptions;
use sparsedisk::{Matrix, WriterOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The dataset directory (`SPARSEDISK_REAL_DATASETS`) and a Python with scipy and numpy
/// (`SPARSEDISK_PYTHON`, default `python3`); `None`, after a skip note naming `test`, when either is
/// missing, unless `SPARSEDISK_REQUIRE_DATASETS=1` / `SPARSEDISK_REQUIRE_PYTHON=1` make it a failure.
pub fn datasets_and_python(test: &str) -> Option<(PathBuf, String)> {
    let Some(datasets) = std::env::var_os("SPARSEDISK_REAL_DATASETS").filter(|v| !v.is_empty()) else {
        assert!(
            std::env::var("SPARSEDISK_REQUIRE_DATASETS").as_deref() != Ok("1"),
            "SPARSEDISK_REQUIRE_DATASETS=1 but SPARSEDISK_REAL_DATASETS is not set"
        );
        eprintln!("{test}: SKIPPED: SPARSEDISK_REAL_DATASETS is not set");
        return None;
    };
    let python = std::env::var("SPARSEDISK_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python).args(["-c", "import scipy, numpy"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("SPARSEDISK_REQUIRE_PYTHON").as_deref() != Ok("1"),
            "SPARSEDISK_REQUIRE_PYTHON=1 but `{python}` lacks scipy/numpy"
        );
        eprintln!("{test}: SKIPPED: `{python}` lacks scipy/numpy");
        return None;
    }
    Some((PathBuf::from(datasets), python))
}

/// A Matrix Market file of the catalogue.
pub struct CatalogueFile {
    pub path: PathBuf,
    /// The banner's symmetry (`general`, `symmetric`, ...).
    pub symmetry: String,
    /// The banner's field (`real`, `integer`, `pattern`, ...).
    pub field: String,
}

/// The catalogue's Matrix Market files of at most `max_bytes` that exist.
pub fn catalogue(dir: &Path, max_bytes: u64) -> Vec<CatalogueFile> {
    let text = std::fs::read_to_string(dir.join("CATALOG.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (path, format, size, symmetry, field) =
        (col("path"), col("format"), col("size_bytes"), col("symmetry"), col("field"));
    lines
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f.get(format) == Some(&"mtx"))
        .filter(|f| f.get(size).and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s <= max_bytes))
        .map(|f| CatalogueFile {
            path: dir.join(f[path]),
            symmetry: f.get(symmetry).unwrap_or(&"").to_string(),
            field: f.get(field).unwrap_or(&"").to_string(),
        })
        .filter(|c| c.path.is_file())
        .collect()
}

/// Imports `mtx` into `out` with 16 KiB segments (so most matrices span several), not durably.
pub fn import_as(mtx: &Path, out: &Path, values: ValueChoice, layout: LayoutChoice) -> sparsedisk::Result<Matrix> {
    let options = ImportOptions {
        read: ReadOptions::default(),
        memory_budget: 256 << 20,
        duplicates: Duplicates::Sum,
        drop_zeros: false,
        shape: None,
        square: None,
        values,
        layout,
        writer: WriterOptions { segment_bytes: 16 << 10, durable: false, ..WriterOptions::default() },
    };
    import(mtx, out, &options, |_: &ImportProgress| {})?;
    Matrix::open(out)
}
