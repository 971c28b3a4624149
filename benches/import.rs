//! # `import`: `sparsedisk import` against fast_matrix_market's `read_coo`, side by side
//!
//! The issue's bar: end-to-end import (parse + sort + write CSR, fsync included) of a shuffled Matrix
//! Market file takes no longer than fast_matrix_market reading the same file into memory (COO arrays,
//! no sort, nothing written). Each repetition runs both, alternating, on the same file in the same
//! state of the page cache (warm: the file is read once before timing), and the medians are compared.
//!
//! ```text
//! cargo bench --bench import                              # R-MAT scale 22 (67 M entries, 2.3 GB), shuffled
//! cargo bench --bench import -- --file F.mtx --repeat 5   # any Matrix Market file
//! cargo bench --bench import -- --threads 1               # both tools on one core
//! cargo test --bench import                               # smoke: a small generated file, one round
//! ```
//!
//! Full mode generates the input once with `anchors.py gen rmat ... --shuffle` into
//! `target/bench-data/`. Each line of stdout is one JSON object: one per tool (`sparsedisk.import`,
//! `fast_matrix_market.read_coo`) with `seconds_min/median/max`, `mb_per_s` and `nnz_per_s` (from the
//! median), and a final `ratio` line (`fmm_seconds / import_seconds`: above 1 means import is faster).
//! The anchor is skipped, with a note on stderr, when Python with fast_matrix_market is not available.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn arg_value(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn has_fmm() -> bool {
    has_scipy()
}

fn json_of(out: &std::process::Output, what: &str) -> Result<serde_json::Value, String> {
    if !out.status.success() {
        return Err(format!("{what} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    sparsedisk_bench::python::last_json(&out.stdout).ok_or(format!("{what} printed no JSON"))
}

/// (min, median, max).
fn median(v: Vec<f64>) -> (f64, f64, f64) {
    let (med, min, max) = spread(&v);
    (min, med, max)
}

/// A small shuffled Matrix Market file for smoke mode, written directly.
fn write_smoke_input(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let n = 2000u64;
    let m = 20_000u64;
    writeln!(f, "%%MatrixMarket matrix coordinate real general")?;
    writeln!(f, "{n} {n} {m}")?;
    let mut x = 88172645463325252u64;
    for _ in 0..m {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        writeln!(f, "{} {} {}", x % n + 1, (x >> 20) % n + 1, (x >> 40) as f64 / 1e6)?;
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let repeat: usize = arg_value(&args, "--repeat")
        .map_or(Ok(if full { 3 } else { 1 }), |r| r.parse())
        .map_err(|e| format!("--repeat: {e}"))?;
    let threads = arg_value(&args, "--threads");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let tmp = tempfile::tempdir_in(&data).map_err(|e| e.to_string())?;
    let file = match arg_value(&args, "--file") {
        Some(f) => PathBuf::from(f),
        None if full => {
            let f = data.join("rmat22-shuffled.mtx");
            if !f.exists() {
                eprintln!("import bench: generating {} with anchors.py (once)", f.display());
                let out = Command::new(python())
                    .arg(anchors())
                    .args(["gen", "rmat"])
                    .arg(&f)
                    .args(["--scale", "22", "--edge-factor", "16", "--seed", "1", "--shuffle"])
                    .output()
                    .map_err(|e| format!("cannot run python: {e}"))?;
                json_of(&out, "anchors.py gen")?;
            }
            f
        }
        None => {
            let f = tmp.path().join("smoke.mtx");
            write_smoke_input(&f).map_err(|e| e.to_string())?;
            f
        }
    };
    let bytes = std::fs::metadata(&file).map_err(|e| format!("{}: {e}", file.display()))?.len();
    // Warm the page cache so both tools start from the same state.
    std::fs::read(&file).map_err(|e| e.to_string())?;
    let fmm = has_fmm();
    if !fmm {
        eprintln!("import bench: python with fast_matrix_market not found: the anchor is skipped");
    }
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut nnz = 0u64;
    for round in 0..repeat {
        let out_dir = tmp.path().join(format!("m{round}"));
        let mut cmd = Command::new(common::bin());
        if let Some(t) = &threads {
            cmd.args(["--threads", t]);
        }
        let out =
            cmd.arg("import").arg(&file).arg("-o").arg(&out_dir).arg("--json").output().map_err(|e| e.to_string())?;
        let j = json_of(&out, "sparsedisk import")?;
        ours.push(j["seconds"].as_f64().ok_or("no seconds")?);
        nnz = j["nnz"].as_u64().unwrap_or(0);
        let _ = std::fs::remove_dir_all(&out_dir);
        if fmm {
            let mut cmd = Command::new(python());
            cmd.arg(anchors()).arg("read").arg(&file);
            if let Some(t) = &threads {
                cmd.args(["--parallelism", t]);
            }
            let out = cmd.output().map_err(|e| e.to_string())?;
            theirs.push(json_of(&out, "anchors.py read")?["seconds"].as_f64().ok_or("no seconds")?);
        }
    }
    let mode = if full { "full" } else { "smoke" };
    let threads_used =
        threads.clone().unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()).to_string());
    let line = |tool: &str, s: &[f64]| {
        let (min, med, max) = median(s.to_vec());
        serde_json::json!({
            "bench": "import", "tool": tool, "mode": mode, "file": file.display().to_string(), "bytes": bytes,
            "nnz": nnz, "repeat": s.len(), "threads": threads_used, "seconds_min": min, "seconds_median": med,
            "seconds_max": max, "mb_per_s": bytes as f64 / med / 1e6, "nnz_per_s": nnz as f64 / med,
        })
    };
    result_line!("{}", line("sparsedisk.import", &ours));
    if fmm {
        result_line!("{}", line("fast_matrix_market.read_coo", &theirs));
        let ratio = median(theirs).1 / median(ours.clone()).1;
        result_line!(
            "{}",
            serde_json::json!({"bench": "import", "mode": mode, "ratio_fmm_over_import": ratio, "import_no_slower": ratio >= 1.0})
        );
    }
    if !full && nnz == 0 {
        return Err("smoke import produced no entries".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("import bench: {e}");
            ExitCode::FAILURE
        }
    }
}
