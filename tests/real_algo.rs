//! PageRank, BFS, components and CG on the real matrices of `../shared/datasets/real/`.
//!
//! * Graphs: every square Matrix Market file of the catalogue up to [`MAX_FILE_BYTES`] that the import
//!   accepts is imported as a pattern (every stored entry an edge of weight 1), in CSR and in CSC with
//!   small segments; PageRank, BFS from vertex 0 and weakly connected components must agree between the
//!   two layouts (levels and labels exactly, ranks within 1e-12), and with scipy through
//!   `tests/python/check_algo.py` (PageRank as `anchors.py` defines it, within 1e-8 in L1; levels and
//!   labels exactly).
//! * CG: every symmetric real or integer file is imported as float64 and solved for `b = 1` with the
//!   Jacobi preconditioner. Either it converges and the true residual, recomputed here from the sprs
//!   view, meets the tolerance, or it fails with a clear error (not positive definite, no convergence);
//!   the known SPD matrices in [`SPD`] must converge.
//!
//! Environment as in `tests/real_kernels.rs`.

use sparsedisk::algo::{bfs, cg, components, pagerank, CgOptions, PagerankOptions, Preconditioner};
mod common;

use common::real::{catalogue, datasets_and_python, import_as};
use sparsedisk::import::{LayoutChoice, ValueChoice};
use sparsedisk::io::npy::{write_npy, write_npy_i64};
use sparsedisk::ValueType;
use std::path::Path;
use std::process::Command;

const MAX_FILE_BYTES: u64 = 8 << 20;

/// Symmetric positive definite matrices of the catalogue: CG must converge on these.
const SPD: &[&str] = &[
    "derived/suitesparse/bcsstk16.mtx",
    "ginkgo/matrices/test/1138_bus.mtx",
    "ginkgo/matrices/test/isai_spd.mtx",
    "lagraph/data/LFAT5.mtx",
];

#[test]
fn graph_algorithms_on_real_graphs_equal_scipy() {
    let Some((datasets, python)) = datasets_and_python("real_algo") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    for (i, file) in catalogue(&datasets, MAX_FILE_BYTES).iter().enumerate() {
        let mtx = &file.path;
        let case = tmp.path().join(format!("case{i}"));
        std::fs::create_dir_all(&case).unwrap();
        let Ok(csr) = import_as(mtx, &case.join("csr"), ValueChoice::Fixed(ValueType::Pattern), LayoutChoice::Csr)
        else {
            continue;
        };
        if csr.rows() != csr.cols() || csr.rows() == 0 {
            continue;
        }
        let csc = import_as(mtx, &case.join("csc"), ValueChoice::Fixed(ValueType::Pattern), LayoutChoice::Csc).unwrap();
        let options = PagerankOptions { tol: 1e-10, ..PagerankOptions::default() };
        let pr = pagerank(&csr, &options, &mut |_| {}).unwrap();
        let pr_csc = pagerank(&csc, &options, &mut |_| {}).unwrap();
        let l1: f64 = pr.ranks.iter().zip(&pr_csc.ranks).map(|(a, b)| (a - b).abs()).sum();
        assert!(l1 < 1e-12, "{}: CSR and CSC PageRank differ by {l1}", mtx.display());
        let levels = bfs(&csr, 0, None, &mut |_| {}).unwrap();
        assert_eq!(levels.levels, bfs(&csc, 0, None, &mut |_| {}).unwrap().levels, "{}", mtx.display());
        let labels = components(&csr, None, &mut |_| {}).unwrap();
        assert_eq!(labels.labels, components(&csc, None, &mut |_| {}).unwrap().labels, "{}", mtx.display());
        let n = csr.rows() as usize;
        write_npy(&case.join("pagerank.npy"), &pr.ranks, n, None).unwrap();
        write_npy_i64(&case.join("levels.npy"), &levels.levels).unwrap();
        let labels: Vec<i64> = labels.labels.iter().map(|&l| l as i64).collect();
        write_npy_i64(&case.join("labels.npy"), &labels).unwrap();
        cases.push(serde_json::json!({"mtx": mtx, "dir": case, "source": 0}));
    }
    assert!(cases.len() >= 50, "only {} square real matrices imported", cases.len());
    let list = tmp.path().join("cases.json");
    std::fs::write(&list, serde_json::to_vec(&cases).unwrap()).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&python)
        .arg(root.join("tests/python/check_algo.py"))
        .arg(root.join("../shared/tools/anchors/anchors.py"))
        .arg(&list)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failures: Vec<&str> = stdout.lines().filter(|l| l.contains("\"ok\": false")).collect();
    assert!(
        out.status.success() && failures.is_empty(),
        "results differ from scipy's:\n{}\n{}",
        failures.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), cases.len());
    let skipped = stdout.lines().filter(|l| l.contains("\"skipped\"")).count();
    assert!(skipped <= 5, "scipy could not read {skipped} files");
    eprintln!("real_algo: PageRank, BFS and components of {} real graphs equal scipy's", cases.len() - skipped);
}

#[test]
fn cg_on_real_symmetric_matrices() {
    let Some((datasets, _)) = datasets_and_python("real_algo") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (mut solved, mut refused) = (Vec::new(), 0);
    for (i, file) in catalogue(&datasets, MAX_FILE_BYTES).iter().enumerate() {
        let mtx = &file.path;
        if file.symmetry != "symmetric" || !(file.field == "real" || file.field == "integer") {
            continue;
        }
        let Ok(m) = import_as(
            mtx,
            &tmp.path().join(format!("m{i}")),
            ValueChoice::Fixed(ValueType::Float64),
            LayoutChoice::Csr,
        ) else {
            continue;
        };
        if m.rows() != m.cols() || m.rows() == 0 {
            continue;
        }
        let n = m.rows() as usize;
        let b = vec![1.0; n];
        let options = CgOptions {
            tol: 1e-8,
            max_iter: Some(20 * n + 100),
            preconditioner: Preconditioner::Jacobi,
            ..CgOptions::default()
        };
        let relative = mtx.strip_prefix(&datasets).unwrap().to_string_lossy().into_owned();
        match cg(&m, &b, &options, &mut |_| {}) {
            Ok(result) => {
                // The true residual, from the sprs view and not through the kernels.
                let a = m.to_sprs().unwrap();
                let mut ax = vec![0.0; n];
                for (v, (r, c)) in a.iter() {
                    ax[r] += v * result.x[c];
                }
                let res = b.iter().zip(&ax).map(|(bi, ai)| (bi - ai).powi(2)).sum::<f64>().sqrt() / (n as f64).sqrt();
                assert!(res <= 1e-8 * 1.01, "{relative}: true relative residual {res}, reported {}", result.residual);
                solved.push(relative);
            }
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains("positive definite") || text.contains("did not converge"),
                    "{relative}: unexpected error {text}"
                );
                assert!(!SPD.contains(&relative.as_str()), "{relative} is SPD but CG failed: {text}");
                refused += 1;
            }
        }
    }
    for spd in SPD {
        assert!(solved.iter().any(|s| s == spd), "{spd} was not solved (missing from the catalogue?)");
    }
    eprintln!(
        "real_algo: CG solved {} real symmetric matrices, refused {refused} (not SPD or no convergence)",
        solved.len()
    );
}
