//! # `dense`: the dense-block path against the same matrices stored all-sparse, and against scipy
//!
//! **Cases** (in memory, files in the page cache). Each matrix is written twice, with the dense path
//! (the default `--dense-threshold`) and with `--dense-threshold off`, and exported once as Matrix
//! Market text for scipy:
//! * a block-diagonal matrix of dense 64 x 64 blocks (`generate blockdiag`);
//! * an arrow matrix: the diagonal plus 64 dense rows and 64 dense columns (`generate arrow`);
//! * a 2-D Laplacian, which has no dense block: the control (same bytes, same time expected).
//!
//! For each case: bytes on disk of both forms; then, in each of `--rounds` rounds, alternating, SpMV
//! on 1 and 2 threads and SpMM with 8 vectors on 2 threads of both forms, and scipy's `A @ x` and
//! `A @ X` (`anchors.py`). Every run reports the median of `--repeat` products; the bench prints per
//! tool the median, min and max over rounds, and the ratios of medians.
//!
//! **Threshold sweep** (`--sweep`): block-diagonal matrices of 64 x 64 blocks whose positions are
//! filled at random with density `d` (0.3 to 1), each written with the dense path forced (threshold
//! just below `d`) and off; bytes and SpMV time (1 and 2 threads) of both. The default threshold is the
//! lowest density at which the dense form is both smaller and faster.
//!
//! ```text
//! cargo bench --bench dense                 # the three cases (about 2 minutes)
//! cargo bench --bench dense -- --sweep      # and the threshold sweep
//! cargo test --bench dense                  # smoke: small matrices, one round
//! ```

mod common;

use common::*;
use serde_json::json;
use sparsedisk::{DenseOptions, Layout, MatrixWriter, WriterOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// `sparsedisk generate ARGS` into `data/NAME` with the dense path on (default threshold) and off,
/// and the Matrix Market export of one of them; made once.
fn pair(data: &Path, name: &str, args: &[&str]) -> Result<(PathBuf, PathBuf, PathBuf), String> {
    let dense = data.join(format!("{name}-dense"));
    let sparse = data.join(format!("{name}-sparse"));
    for (dir, extra) in [(&dense, None), (&sparse, Some("off"))] {
        if sparsedisk::Matrix::open(dir).is_err() {
            let mut cmd = sparsedisk();
            cmd.arg("generate").args(args).args(["--force", "--json", "-o"]).arg(dir);
            if let Some(t) = extra {
                cmd.args(["--dense-threshold", t]);
            }
            run_json(&mut cmd, "generate")?;
        }
    }
    let mtx = data.join(format!("{name}.mtx"));
    if !mtx.exists() {
        let st = sparsedisk()
            .arg("export")
            .arg(&sparse)
            .arg("-o")
            .arg(&mtx)
            .arg("-q")
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("export failed".into());
        }
    }
    Ok((dense, sparse, mtx))
}

fn bytes_on_disk(dir: &Path) -> Result<f64, String> {
    let (j, _) = run_json(sparsedisk().arg("info").arg(dir).arg("--json"), "info")?;
    Ok(f(&j["bytes_on_disk"]))
}

fn spmv(dir: &Path, threads: &str, k: usize, repeat: &str, transpose: bool) -> Result<f64, String> {
    let mut cmd = sparsedisk();
    cmd.args(["--threads", threads]);
    if k == 1 {
        cmd.arg("spmv").arg(dir).args(["--x", "random:7"]);
        if transpose {
            cmd.arg("--transpose");
        }
    } else {
        cmd.arg("spmm").arg(dir).args(["--x", &format!("ones:{k}")]);
    }
    let (j, _) = run_json(cmd.args(["--repeat", repeat, "--json"]), "sparsedisk spmv")?;
    Ok(f(&j["seconds"]))
}

/// One case: see the module docs.
fn case(
    name: &str,
    args: &[&str],
    data: &Path,
    rounds: usize,
    repeat: &str,
    scipy: bool,
    mode: &str,
) -> Result<(), String> {
    let (dense, sparse, mtx) = pair(data, name, args)?;
    let (bytes_dense, bytes_sparse) = (bytes_on_disk(&dense)?, bytes_on_disk(&sparse)?);
    let (info, _) = run_json(sparsedisk().arg("info").arg(&dense).arg("--json"), "info")?;
    result_line!(
        "{}",
        json!({"bench": "dense", "mode": mode, "matrix": name, "nnz": info["nnz"],
               "dense_blocks": info["dense_blocks"], "dense_nnz_share": info["dense_nnz_share"],
               "bytes_dense": bytes_dense, "bytes_sparse": bytes_sparse,
               "disk_ratio": bytes_sparse / bytes_dense})
    );
    let tools = [
        "dense spmv t1",
        "sparse spmv t1",
        "dense spmv t2",
        "sparse spmv t2",
        "dense spmv^T t2",
        "sparse spmv^T t2",
        "dense spmm k8 t2",
        "sparse spmm k8 t2",
        "scipy A@x",
        "scipy A@X k8",
    ];
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); tools.len()];
    for _ in 0..rounds {
        seconds[0].push(spmv(&dense, "1", 1, repeat, false)?);
        seconds[1].push(spmv(&sparse, "1", 1, repeat, false)?);
        seconds[2].push(spmv(&dense, "2", 1, repeat, false)?);
        seconds[3].push(spmv(&sparse, "2", 1, repeat, false)?);
        seconds[4].push(spmv(&dense, "2", 1, repeat, true)?);
        seconds[5].push(spmv(&sparse, "2", 1, repeat, true)?);
        seconds[6].push(spmv(&dense, "2", 8, repeat, false)?);
        seconds[7].push(spmv(&sparse, "2", 8, repeat, false)?);
        if scipy {
            let (s, _) = run_json(
                Command::new(python()).arg(anchors()).arg("spmv").arg(&mtx).args(["--repeat", repeat]),
                "anchors spmv",
            )?;
            seconds[8].push(f(&s["seconds"]));
            let (s, _) = run_json(
                Command::new(python()).arg(anchors()).arg("spmm").arg(&mtx).args(["--k", "8", "--repeat", repeat]),
                "anchors spmm",
            )?;
            seconds[9].push(f(&s["seconds"]));
        }
    }
    let mut med = Vec::new();
    for (tool, times) in tools.iter().zip(&seconds) {
        let (m, lo, hi) = spread(times);
        med.push(m);
        if !times.is_empty() {
            result_line!(
                "{}",
                json!({"bench": "dense", "mode": mode, "matrix": name, "tool": tool, "seconds": m,
                       "min_seconds": lo, "max_seconds": hi, "round_seconds": times})
            );
        }
    }
    result_line!(
        "{}",
        json!({"bench": "dense", "mode": mode, "matrix": name,
               "speedup_spmv_t1": med[1] / med[0], "speedup_spmv_t2": med[3] / med[2],
               "speedup_spmv_transpose_t2": med[5] / med[4], "speedup_spmm_k8": med[7] / med[6],
               "vs_scipy_spmv_t1": med[8] / med[0], "vs_scipy_spmv_t2": med[8] / med[2],
               "vs_scipy_spmm_k8": med[9] / med[6]})
    );
    Ok(())
}

/// A block-diagonal `n x n` matrix of 64 x 64 blocks whose positions hold an entry with probability
/// `density` (a fixed hash of the position), written with `options`.
fn random_blocks(dir: &Path, n: u64, density: f64, options: WriterOptions) -> Result<(), String> {
    let mut w = MatrixWriter::<f64>::create(dir, (n, n), Layout::Csr, options).map_err(|e| e.to_string())?;
    let (mut ix, mut vals) = (Vec::new(), Vec::new());
    for r in 0..n {
        ix.clear();
        vals.clear();
        let first = r / 64 * 64;
        for c in first..(first + 64).min(n) {
            let h = (r.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ c.wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
                .rotate_left(29)
                .wrapping_mul(0x1656_67B1_9E37_79F9);
            if c == r || ((h >> 11) as f64 / (1u64 << 53) as f64) < density {
                ix.push(c);
                vals.push(1.0 + (c % 7) as f64);
            }
        }
        w.push_row(&ix, &vals).map_err(|e| e.to_string())?;
    }
    w.finish().map_err(|e| e.to_string())?;
    Ok(())
}

fn sweep(data: &Path, n: u64, rounds: usize, repeat: &str, mode: &str) -> Result<(), String> {
    for density in [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0] {
        let dense = data.join(format!("sweep-{n}-{density}-dense"));
        let sparse = data.join(format!("sweep-{n}-{density}-sparse"));
        let forced = DenseOptions { threshold: density * 0.9, ..DenseOptions::default() };
        for (dir, opt) in [(&dense, Some(forced)), (&sparse, None)] {
            if sparsedisk::Matrix::open(dir).is_err() {
                let options = WriterOptions { overwrite: true, durable: false, dense: opt, ..WriterOptions::default() };
                random_blocks(dir, n, density, options)?;
            }
        }
        let (bd, bs) = (bytes_on_disk(&dense)?, bytes_on_disk(&sparse)?);
        let mut t = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..rounds {
            t[0].push(spmv(&dense, "1", 1, repeat, false)?);
            t[1].push(spmv(&sparse, "1", 1, repeat, false)?);
            t[2].push(spmv(&dense, "2", 1, repeat, false)?);
            t[3].push(spmv(&sparse, "2", 1, repeat, false)?);
        }
        let m: Vec<f64> = t.iter().map(|v| spread(v).0).collect();
        result_line!(
            "{}",
            json!({"bench": "dense", "mode": mode, "sweep_density": density, "n": n,
                   "bytes_dense": bd, "bytes_sparse": bs, "disk_ratio": bs / bd,
                   "seconds_dense_t1": m[0], "seconds_sparse_t1": m[1], "speedup_t1": m[1] / m[0],
                   "seconds_dense_t2": m[2], "seconds_sparse_t2": m[3], "speedup_t2": m[3] / m[2]})
        );
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let rounds: usize =
        value("--rounds").map_or(Ok(if full { 5 } else { 1 }), |v| v.parse()).map_err(|e| format!("{e}"))?;
    let repeat = value("--repeat").unwrap_or_else(|| if full { "15" } else { "2" }.into());
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/dense");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let scipy = has_scipy();
    if !scipy {
        eprintln!("dense bench: python with scipy not found: the scipy anchors are skipped");
    }
    let mode = if full { "full" } else { "smoke" };
    let (n_bd, n_arrow, n_lap) = if full { ("262144", "200000", "2000") } else { ("1000", "1000", "40") };
    let cases: [(String, Vec<&str>); 3] = [
        (format!("blockdiag n={n_bd} block=64"), vec!["blockdiag", "--n", n_bd, "--block", "64"]),
        (format!("arrow n={n_arrow} border=64"), vec!["arrow", "--n", n_arrow, "--border", "64"]),
        (format!("laplace2d n={n_lap}"), vec!["laplace2d", "--n", n_lap]),
    ];
    for (name, generate) in &cases {
        case(name, generate, &data, rounds, &repeat, scipy, mode)?;
    }
    if args.iter().any(|a| a == "--sweep") || !full {
        sweep(&data, if full { 262144 } else { 640 }, rounds, &repeat, mode)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dense bench: {e}");
            ExitCode::FAILURE
        }
    }
}
