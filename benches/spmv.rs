//! # `spmv`: in-memory SpMV and SpMM against scipy, side by side
//!
//! For each matrix: `sparsedisk spmv` with 1 and 2 threads and `sparsedisk spmm --x ones:8` (files in
//! the page cache, the operator keeping the matrix mapped across repetitions), then scipy's `A @ x` and
//! `A @ X` through `anchors.py spmv|spmm` on the same matrix's Matrix Market file. Medians of repeated
//! products; ratios are scipy's median over ours (above 1: sparsedisk is faster).
//!
//! ```text
//! cargo bench --bench spmv                                   # 2-D Laplacian n = 3000 and R-MAT scale 22
//! cargo bench --bench spmv -- --pair DIR FILE.mtx [--pair ...] --repeat 9
//! cargo test --bench spmv                                    # smoke: a small Laplacian
//! ```
//!
//! Full mode builds its inputs once under `target/bench-data/` (`sparsedisk generate` and `export`
//! for the Laplacian; `anchors.py gen rmat --shuffle` and `sparsedisk import` for R-MAT).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn python() -> String {
    std::env::var("SPARSEDISK_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn anchors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/anchors/anchors.py")
}

fn has_scipy() -> bool {
    anchors().exists()
        && Command::new(python())
            .args(["-c", "import scipy, fast_matrix_market"])
            .output()
            .is_ok_and(|o| o.status.success())
}

fn run_json(cmd: &mut Command, what: &str) -> Result<serde_json::Value, String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().ok_or(format!("{what} printed nothing"))?;
    serde_json::from_str(line).map_err(|e| format!("{what}: {e}"))
}

fn sparsedisk() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sparsedisk"))
}

fn ensure_inputs(data: &Path, full: bool) -> Result<Vec<(String, PathBuf, PathBuf)>, String> {
    let n = if full { "3000" } else { "60" };
    let lap = data.join(format!("lap2d-{n}"));
    let lap_mtx = data.join(format!("lap2d-{n}.mtx"));
    if sparsedisk::Matrix::open(&lap).is_err() {
        run_json(
            sparsedisk().args(["generate", "laplace2d", "--n", n, "--force", "--json", "-o"]).arg(&lap),
            "generate",
        )?;
    }
    if !lap_mtx.exists() {
        let st = sparsedisk()
            .args(["export", "--force"])
            .arg(&lap)
            .arg("-o")
            .arg(&lap_mtx)
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("export failed".into());
        }
    }
    let mut inputs = vec![(format!("laplace2d n={n}"), lap, lap_mtx)];
    if full && has_scipy() {
        let rmat_mtx = data.join("rmat22-shuffled.mtx");
        let rmat = data.join("rmat22");
        if !rmat_mtx.exists() {
            run_json(
                Command::new(python()).arg(anchors()).args(["gen", "rmat"]).arg(&rmat_mtx).args([
                    "--scale",
                    "22",
                    "--edge-factor",
                    "16",
                    "--seed",
                    "1",
                    "--shuffle",
                ]),
                "anchors.py gen rmat",
            )?;
        }
        if sparsedisk::Matrix::open(&rmat).is_err() {
            run_json(
                sparsedisk().arg("import").arg(&rmat_mtx).arg("-o").arg(&rmat).args(["--force", "--json"]),
                "import",
            )?;
        }
        inputs.push(("rmat scale 22".into(), rmat, rmat_mtx));
    }
    Ok(inputs)
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let repeat = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(if full { 9 } else { 2 }), |r| r.parse::<usize>())
        .map_err(|e| e.to_string())?
        .to_string();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let mut inputs: Vec<(String, PathBuf, PathBuf)> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--pair" && i + 2 < args.len() {
            inputs.push((args[i + 1].clone(), PathBuf::from(&args[i + 1]), PathBuf::from(&args[i + 2])));
            i += 3;
        } else {
            i += 1;
        }
    }
    if inputs.is_empty() {
        inputs = ensure_inputs(&data, full)?;
    }
    let scipy = has_scipy();
    if !scipy {
        eprintln!("spmv bench: python with scipy and fast_matrix_market not found: the anchors are skipped");
    }
    let mode = if full { "full" } else { "smoke" };
    for (name, dir, mtx) in &inputs {
        let mut ours = serde_json::Map::new();
        for threads in ["1", "2"] {
            let j = run_json(
                sparsedisk().args(["--threads", threads, "spmv"]).arg(dir).args(["--repeat", &repeat, "--json"]),
                "sparsedisk spmv",
            )?;
            ours.insert(format!("spmv_t{threads}"), j["seconds"].clone());
            println!(
                "{}",
                serde_json::json!({"bench": "spmv", "mode": mode, "matrix": name, "tool": "sparsedisk.spmv", "threads": threads, "seconds": j["seconds"], "all_seconds": j["all_seconds"], "ns_per_nonzero": j["ns_per_nonzero"], "gb_per_s": j["gb_per_s"], "nnz": j["nnz"]})
            );
        }
        let j = run_json(
            sparsedisk().arg("spmm").arg(dir).args(["--x", "ones:8", "--repeat", &repeat, "--json"]),
            "sparsedisk spmm",
        )?;
        ours.insert("spmm".into(), j["seconds"].clone());
        println!(
            "{}",
            serde_json::json!({"bench": "spmv", "mode": mode, "matrix": name, "tool": "sparsedisk.spmm", "k": 8, "threads": j["threads"], "seconds": j["seconds"], "all_seconds": j["all_seconds"]})
        );
        if scipy {
            let s = run_json(
                Command::new(python()).arg(anchors()).arg("spmv").arg(mtx).args(["--repeat", &repeat]),
                "anchors spmv",
            )?;
            let sm = run_json(
                Command::new(python()).arg(anchors()).args(["spmm"]).arg(mtx).args(["--k", "8", "--repeat", &repeat]),
                "anchors spmm",
            )?;
            println!(
                "{}",
                serde_json::json!({"bench": "spmv", "mode": mode, "matrix": name, "tool": "scipy.csr@x", "seconds": s["seconds"], "all_seconds": s["all_seconds"]})
            );
            println!(
                "{}",
                serde_json::json!({"bench": "spmv", "mode": mode, "matrix": name, "tool": "scipy.csr@X", "k": 8, "seconds": sm["seconds"], "all_seconds": sm["all_seconds"]})
            );
            let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
            println!(
                "{}",
                serde_json::json!({
                    "bench": "spmv", "mode": mode, "matrix": name,
                    "ratio_spmv_1_thread": f(&s["seconds"]) / f(&ours["spmv_t1"]),
                    "ratio_spmv_2_threads": f(&s["seconds"]) / f(&ours["spmv_t2"]),
                    "ratio_spmm_k8": f(&sm["seconds"]) / f(&ours["spmm"]),
                })
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spmv bench: {e}");
            ExitCode::FAILURE
        }
    }
}
