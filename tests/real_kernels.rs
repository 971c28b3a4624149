//! SpMV, transposed SpMV and SpMM on the real matrices of `../shared/datasets/real/` equal scipy's.
//!
//! Every Matrix Market file of the catalogue up to [`MAX_FILE_BYTES`] that sparsedisk imports (the
//! invalid and complex ones are `tests/real_datasets.rs`'s business) is imported twice, as CSR and as
//! CSC, in small segments so that most span several, with the value type its banner implies (pattern,
//! int64 or float64: every value path of the kernels runs). For each layout, `y = A x`, `y = A^T x` and
//! `Y = A X` (k = 3) are computed on 1 and 2 threads and written as `.npy` files; one Python process
//! (`tests/python/check_spmv.py`) computes the same with scipy and compares within the rounding bound
//! of a sum (NaN where scipy has NaN: some files store NaN values). The two thread counts must agree
//! bit for bit for the gathers (each row is summed in order whatever the split).
//!
//! `SPARSEDISK_REAL_DATASETS` and `SPARSEDISK_PYTHON` as in `tests/real_datasets.rs`; unset or without
//! scipy the test prints a skip note and passes, unless `SPARSEDISK_REQUIRE_DATASETS=1` /
//! `SPARSEDISK_REQUIRE_PYTHON=1`.

mod common;

use common::real::{catalogue, datasets_and_python, import_as};
use sparsedisk::import::{LayoutChoice, ValueChoice};
use sparsedisk::io::npy::write_npy;
use sparsedisk::kernels::{spmm, spmv, spmv_transpose};
use sparsedisk::Layout;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Larger files are left out to bound the test's time (most of the catalogue is below it).
const MAX_FILE_BYTES: u64 = 8 << 20;

/// Columns of the SpMM operand (3: the general loop, not one of the fixed widths).
const K: usize = 3;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

/// Deterministic operands with varied signs and magnitudes.
fn operand(len: usize, salt: u64) -> Vec<f64> {
    let mut state = salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2001) as f64 / 1000.0 - 1.0
        })
        .collect()
}

#[test]
fn products_on_real_matrices_equal_scipy() {
    let Some((datasets, python)) = datasets_and_python("real_kernels") else { return };
    let files: Vec<PathBuf> = catalogue(&datasets, MAX_FILE_BYTES).into_iter().map(|c| c.path).collect();
    assert!(!files.is_empty(), "no Matrix Market files in the catalogue");
    let tmp = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    let mut rejected = 0;
    for (i, mtx) in files.iter().enumerate() {
        let case = tmp.path().join(format!("case{i}"));
        std::fs::create_dir_all(&case).unwrap();
        let Ok(csr) = import_as(mtx, &case.join("csr"), ValueChoice::Auto, LayoutChoice::Csr) else {
            rejected += 1;
            continue;
        };
        let csc = import_as(mtx, &case.join("csc"), ValueChoice::Auto, LayoutChoice::Csc).unwrap();
        assert_eq!(csc.layout(), Layout::Csc);
        let (rows, cols) = (csr.rows() as usize, csr.cols() as usize);
        let (x, xt, xk) = (operand(cols, 1), operand(rows, 2), operand(cols * K, 3));
        write_npy(&case.join("x.npy"), &x, cols, None).unwrap();
        write_npy(&case.join("xt.npy"), &xt, rows, None).unwrap();
        write_npy(&case.join("X.npy"), &xk, cols, Some(K)).unwrap();
        for (name, m) in [("csr", &csr), ("csc", &csc)] {
            let run = |threads: usize| {
                pool(threads).install(|| {
                    let mut y = vec![f64::NAN; rows];
                    spmv(m, 1.0, &x, 0.0, &mut y).unwrap();
                    let mut yt = vec![0.0; cols];
                    spmv_transpose(m, 1.0, &xt, 0.0, &mut yt).unwrap();
                    let mut yk = vec![0.0; rows * K];
                    spmm(m, 1.0, &xk, 0.0, &mut yk, K).unwrap();
                    (y, yt, yk)
                })
            };
            let (y, yt, yk) = run(2);
            let (y1, yt1, yk1) = run(1);
            // Gathers sum each output element in stored order whatever the thread count.
            if m.layout() == Layout::Csr {
                let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert!(
                    bits(&y) == bits(&y1) && bits(&yk) == bits(&yk1),
                    "{}: A x differs between 1 and 2 threads",
                    mtx.display()
                );
            } else {
                let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert!(bits(&yt) == bits(&yt1), "{}: A^T x differs between 1 and 2 threads", mtx.display());
            }
            write_npy(&case.join(format!("y_{name}.npy")), &y, rows, None).unwrap();
            write_npy(&case.join(format!("yt_{name}.npy")), &yt, cols, None).unwrap();
            write_npy(&case.join(format!("Y_{name}.npy")), &yk, rows, Some(K)).unwrap();
        }
        cases.push(serde_json::json!({"mtx": mtx, "dir": case}));
    }
    assert!(cases.len() >= 50, "only {} real matrices imported ({} rejected)", cases.len(), rejected);
    let list = tmp.path().join("cases.json");
    std::fs::write(&list, serde_json::to_vec(&cases).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_spmv.py");
    let out = Command::new(&python).arg(&script).arg(&list).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failures: Vec<&str> = stdout.lines().filter(|l| l.contains("\"ok\": false")).collect();
    assert!(
        out.status.success() && failures.is_empty(),
        "products differ from scipy's:\n{}\n{}",
        failures.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), cases.len(), "check_spmv.py did not report every case");
    // Files sparsedisk imports and scipy refuses are the exceptions of tests/real_invalid_lines.tsv.
    let skipped: Vec<&str> = stdout.lines().filter(|l| l.contains("\"skipped\"")).collect();
    assert!(skipped.len() <= 5, "scipy could not read {} files:\n{}", skipped.len(), skipped.join("\n"));
    eprintln!(
        "real_kernels: {} matrices x 2 layouts x (A x, A^T x, A X) equal scipy's; {} files rejected by the \
         import, {} that scipy cannot read",
        cases.len() - skipped.len(),
        rejected,
        skipped.len()
    );
}
