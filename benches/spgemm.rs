//! # `spgemm`: SpGEMM against scipy, in memory and out of core, side by side in one run
//!
//! In memory: `sparsedisk spgemm A A` with 1 and 2 threads (files in the page cache; the output
//! written durably, and with `--no-fsync`), against scipy's `A @ A` (`anchors.py spgemm`, the product
//! held in memory) on a 2-D Laplacian (n = 1000, 5 M nonzeros) and an R-MAT graph (scale 16, edge
//! factor 16: 164 M nonzeros in A*A). Medians; ratios are scipy's median over ours (above 1: faster).
//!
//! Beside them, the floor of writing the product's bytes: one file written in 1 MiB `write`s, then
//! fsynced, with no checksums and no directories.
//!
//! Out of core: R-MAT scale 18 squared (1.28 G nonzeros, 15 GB of output) under
//! a 1G memory cap (`common::capped`) with `--memory 768M`; a sample of rows checked against scipy
//! (`benches/check_rows.py`); scipy's `A @ A` under the same cap.
//!
//! Compute only (`--in-memory`): the library's `spgemm_in_memory` (the product returned as a sprs
//! matrix, timed in this process on pools of 1 and 2 threads, the result's drop included) against
//! scipy's `A @ A` (`anchors.py spgemm`, whose timing includes freeing the product) on the 2-D
//! Laplacian n = 1000, the 3-D Laplacian n = 100 and R-MAT scale 16. Rounds alternate the order
//! (ours 1 thread, ours 2 threads, scipy; then reversed); each round times `--repeat` products of
//! each. Per measurement: median, min and max over every run; ratios of medians (scipy's over
//! ours), and the range of the per-round ratios.
//!
//! ```text
//! cargo bench --bench spgemm                     # everything (builds inputs under target/bench-data/)
//! cargo bench --bench spgemm -- --no-out-of-core # the in-memory part only
//! cargo bench --bench spgemm -- --in-memory [--rounds 5] [--repeat 5] [--only lap2d,lap3d,rmat16]
//! cargo test --bench spgemm                      # smoke: a small Laplacian
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod common;

use common::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn median(v: Vec<f64>) -> f64 {
    spread(&v).0
}

/// An R-MAT graph from the anchors' generator, as Matrix Market and imported.
fn rmat(data: &Path, scale: u32) -> Result<(PathBuf, PathBuf), String> {
    let mtx = data.join(format!("rmat{scale}.mtx"));
    let dir = data.join(format!("rmat{scale}"));
    if !mtx.exists() {
        let s = scale.to_string();
        run_json(
            Command::new(python()).arg(anchors()).args(["gen", "rmat"]).arg(&mtx).args([
                "--scale",
                &s,
                "--edge-factor",
                "16",
                "--seed",
                "1",
            ]),
            "anchors.py gen rmat",
        )?;
    }
    if sparsedisk::Matrix::open(&dir).is_err() {
        run_json(sparsedisk().arg("import").arg(&mtx).arg("-o").arg(&dir).args(["--force", "--json"]), "import")?;
    }
    Ok((dir, mtx))
}

fn laplacian(data: &Path, n: &str) -> Result<(PathBuf, PathBuf), String> {
    generated(data, &format!("lap2d-{n}"), &["laplace2d", "--n", n])
}

/// Our product, `repeat` times from a fresh output directory: the median and every run's JSON.
fn ours(a: &Path, out: &Path, threads: &str, extra: &[&str], repeat: usize) -> Result<serde_json::Value, String> {
    let mut times = Vec::new();
    let mut last = serde_json::Value::Null;
    for _ in 0..repeat {
        let _ = std::fs::remove_dir_all(out);
        (last, _) = run_json(
            sparsedisk()
                .args(["--threads", threads, "spgemm"])
                .arg(a)
                .arg(a)
                .arg("-o")
                .arg(out)
                .arg("--json")
                .args(extra),
            "sparsedisk spgemm",
        )?;
        times.push(f(&last["seconds"]));
    }
    if let Ok((info, _)) = run_json(sparsedisk().arg("info").arg(out).arg("--json"), "info") {
        last["output_bytes"] = info["bytes_on_disk"].clone();
    }
    let _ = std::fs::remove_dir_all(out);
    last["all_seconds"] = serde_json::json!(times.clone());
    last["seconds"] = serde_json::json!(median(times));
    Ok(last)
}

/// The floor of writing a product of `bytes` bytes: one new file in `dir` written in 1 MiB
/// `write`s (as the segment writer does), then fsynced. Medians of `repeat` runs of (write, write +
/// fsync) seconds. No checksums, no directories: what the kernel and the disk alone cost.
fn write_floor(dir: &Path, bytes: u64, repeat: usize) -> Result<(f64, f64), String> {
    use std::io::Write;
    let path = dir.join("write-floor.tmp");
    let buf = vec![0x5au8; 1 << 20];
    let (mut written, mut synced) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        let _ = std::fs::remove_file(&path);
        let t = std::time::Instant::now();
        let mut file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
        let mut left = bytes;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            file.write_all(&buf[..n]).map_err(|e| e.to_string())?;
            left -= n as u64;
        }
        written.push(t.elapsed().as_secs_f64());
        file.sync_all().map_err(|e| e.to_string())?;
        synced.push(t.elapsed().as_secs_f64());
    }
    let _ = std::fs::remove_file(&path);
    Ok((median(written), median(synced)))
}

/// The value of option `name` (`--name value`), if given.
fn arg_value(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// One in-memory product of `a` by itself on `pool`, in the product's value type; the seconds,
/// dropping the result included (as scipy's timing frees its product), and the product's nnz.
fn in_memory_once(pool: &rayon::ThreadPool, a: &sparsedisk::Matrix) -> Result<(f64, u64), String> {
    use sparsedisk::ops::{spgemm::output_value_type, spgemm_in_memory, Semiring, SpgemmOptions};
    use sparsedisk::ValueType;
    let options = SpgemmOptions::default();
    let t = std::time::Instant::now();
    let nnz = pool.install(|| -> sparsedisk::Result<usize> {
        Ok(match output_value_type(a.value_type(), a.value_type(), Semiring::PlusTimes) {
            ValueType::Int64 => spgemm_in_memory::<i64, u32>(a, a, &options, None)?.0.nnz(),
            _ => spgemm_in_memory::<f64, u32>(a, a, &options, None)?.0.nnz(),
        })
    });
    let seconds = t.elapsed().as_secs_f64();
    Ok((seconds, nnz.map_err(|e| e.to_string())? as u64))
}

/// `--in-memory`: our compute against scipy's, alternating (see the module docs).
fn in_memory_comparison(args: &[String], data: &Path, full: bool, scipy: bool) -> Result<(), String> {
    let rounds: usize = arg_value(args, "--rounds").and_then(|v| v.parse().ok()).unwrap_or(if full { 5 } else { 1 });
    let repeat: usize = arg_value(args, "--repeat").and_then(|v| v.parse().ok()).unwrap_or(if full { 5 } else { 1 });
    let only = arg_value(args, "--only").unwrap_or_else(|| "lap2d,lap3d,rmat16".into());
    let mut inputs = Vec::new();
    for name in only.split(',') {
        match (name, full) {
            ("lap2d", true) => inputs.push(("laplace2d n=1000", laplacian(data, "1000")?)),
            ("lap2d", false) => inputs.push(("laplace2d n=60", laplacian(data, "60")?)),
            ("lap3d", true) => {
                inputs.push(("laplace3d n=100", generated(data, "lap3d-100", &["laplace3d", "--n", "100"])?))
            }
            ("rmat16", true) if scipy => inputs.push(("rmat scale 16", rmat(data, 16)?)),
            _ => {}
        }
    }
    let mode = if full { "full" } else { "smoke" };
    let pools: Vec<rayon::ThreadPool> = [1, 2]
        .iter()
        .map(|&n| rayon::ThreadPoolBuilder::new().num_threads(n).build().map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    for (name, (dir, mtx)) in &inputs {
        let a = sparsedisk::Matrix::open(dir).map_err(|e| e.to_string())?;
        // Warm-up: maps the matrix and faults its pages in, for ours and for the allocator.
        let (_, nnz) = in_memory_once(&pools[1], &a)?;
        let mut times: [Vec<f64>; 3] = Default::default();
        let mut round_medians: [Vec<f64>; 3] = Default::default();
        let mut scipy_nnz = serde_json::Value::Null;
        for round in 0..rounds {
            let order: [usize; 3] = if round % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
            for which in order {
                let mut these = Vec::new();
                if which < 2 {
                    for _ in 0..repeat {
                        these.push(in_memory_once(&pools[which], &a)?.0);
                    }
                } else if scipy {
                    let (s, _) = run_json(
                        Command::new(python())
                            .arg(anchors())
                            .arg("spgemm")
                            .arg(mtx)
                            .args(["--repeat", &repeat.to_string()]),
                        "anchors spgemm",
                    )?;
                    scipy_nnz = s["nnz_c"].clone();
                    these.extend(s["all_seconds"].as_array().into_iter().flatten().map(f));
                }
                if !these.is_empty() {
                    round_medians[which].push(spread(&these).0);
                }
                times[which].extend(these);
            }
        }
        let stat = |v: &[f64]| {
            let (m, lo, hi) = spread(v);
            serde_json::json!({"median": m, "min": lo, "max": hi, "runs": v.len()})
        };
        let ratio = |w: usize| spread(&times[2]).0 / spread(&times[w]).0;
        let round_ratios =
            |w: usize| -> Vec<f64> { round_medians[2].iter().zip(&round_medians[w]).map(|(s, o)| s / o).collect() };
        let (r1, r2) = (round_ratios(0), round_ratios(1));
        result_line!(
            "{}",
            serde_json::json!({"bench": "spgemm_in_memory", "mode": mode, "matrix": name, "rounds": rounds, "repeat": repeat,
                "nnz_c": nnz, "scipy_nnz_c": scipy_nnz,
                "ours_1_thread": stat(&times[0]), "ours_2_threads": stat(&times[1]), "scipy": stat(&times[2]),
                "ratio_1_thread": ratio(0), "ratio_2_threads": ratio(1),
                "round_ratios_1_thread": [spread(&r1).1, spread(&r1).2], "round_ratios_2_threads": [spread(&r2).1, spread(&r2).2]})
        );
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let out_of_core = full && !args.iter().any(|a| a == "--no-out-of-core");
    let repeat = if full { 5 } else { 1 };
    let mode = if full { "full" } else { "smoke" };
    let data = root().join("target/bench-data");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let scipy = has_scipy();
    if !scipy {
        eprintln!("spgemm bench: python with scipy and fast_matrix_market not found: the anchors are skipped");
    }
    // The smoke run (`cargo test`) runs both parts; `--in-memory` alone runs the compute comparison.
    let only_in_memory = args.iter().any(|a| a == "--in-memory");
    in_memory_comparison(&args, &data, full, scipy)?;
    if only_in_memory {
        return Ok(());
    }
    let mut inputs = vec![("laplace2d", laplacian(&data, if full { "1000" } else { "60" })?)];
    if full && scipy {
        inputs.push(("rmat scale 16", rmat(&data, 16)?));
    }
    let out = data.join("spgemm-out");
    for (name, (dir, mtx)) in &inputs {
        let mut seconds = serde_json::Map::new();
        let mut output_bytes = 0;
        for threads in ["1", "2"] {
            for (label, extra) in [("durable", &[][..]), ("no_fsync", &["--no-fsync"][..])] {
                let j = ours(dir, &out, threads, extra, repeat)?;
                seconds.insert(format!("t{threads}_{label}"), j["seconds"].clone());
                output_bytes = j["output_bytes"].as_u64().unwrap_or(output_bytes);
                result_line!(
                    "{}",
                    serde_json::json!({"bench": "spgemm", "mode": mode, "matrix": name, "tool": "sparsedisk.spgemm",
                        "threads": threads, "output": label, "seconds": j["seconds"], "all_seconds": j["all_seconds"],
                        "nnz_c": j["nnz"], "flops": j["flops"], "peak_rss_bytes": j["peak_rss_bytes"]})
                );
            }
        }
        let (write, write_fsync) = write_floor(&data, output_bytes, repeat)?;
        result_line!(
            "{}",
            serde_json::json!({"bench": "spgemm", "mode": mode, "matrix": name, "tool": "write floor (1 MiB writes, fsync)",
                "bytes": output_bytes, "write_seconds": write, "write_fsync_seconds": write_fsync})
        );
        if scipy {
            let (s, _) = run_json(
                Command::new(python()).arg(anchors()).arg("spgemm").arg(mtx).args(["--repeat", &repeat.to_string()]),
                "anchors spgemm",
            )?;
            result_line!(
                "{}",
                serde_json::json!({"bench": "spgemm", "mode": mode, "matrix": name, "tool": "scipy.csr@csr",
                    "seconds": s["seconds"], "all_seconds": s["all_seconds"], "nnz_c": s["nnz_c"], "peak_rss_bytes": s["peak_rss_bytes"]})
            );
            let ratio = |k: &str| f(&s["seconds"]) / f(&seconds[k]);
            result_line!(
                "{}",
                serde_json::json!({"bench": "spgemm", "mode": mode, "matrix": name,
                    "ratio_1_thread": ratio("t1_durable"), "ratio_2_threads": ratio("t2_durable"),
                    "ratio_1_thread_no_fsync": ratio("t1_no_fsync"), "ratio_2_threads_no_fsync": ratio("t2_no_fsync")})
            );
        }
    }
    if out_of_core && scipy {
        let (dir, mtx) = rmat(&data, 18)?;
        let c = data.join("rmat18-squared");
        let _ = std::fs::remove_dir_all(&c);
        let mut argv: Vec<std::ffi::OsString> = vec!["spgemm".into(), dir.clone().into(), dir.clone().into()];
        argv.extend([
            "-o".into(),
            c.clone().into(),
            "--memory".into(),
            "768M".into(),
            "--json".into(),
            "--quiet".into(),
        ]);
        let (j, _, _, _) = capped("1G", common::bin(), &argv, true, "sparsedisk spgemm under a 1G cap")?;
        let (info, _) = run_json(sparsedisk().arg("info").arg(&c).arg("--json"), "info")?;
        let (check, _) = run_json(
            Command::new(python())
                .arg(root().join("benches/check_rows.py"))
                .arg(&mtx)
                .arg(&c)
                .args(["--samples", "300"]),
            "check_rows",
        )?;
        // Expected to fail: the product does not fit under the cap.
        let scipy_capped =
            capped("1G", python(), [anchors().into_os_string(), "spgemm".into(), mtx.clone().into()], false, "scipy");
        result_line!(
            "{}",
            serde_json::json!({"bench": "spgemm", "mode": "out_of_core", "matrix": "rmat scale 18 squared", "cap": "1G",
                "tool": "sparsedisk.spgemm", "seconds": j["seconds"], "nnz_c": j["nnz"], "flops": j["flops"],
                "output_bytes": info["bytes_on_disk"], "peak_rss_bytes": j["peak_rss_bytes"],
                "nnz_per_s": f(&j["nnz"]) / f(&j["seconds"]), "sample_check": check,
                "scipy_under_cap_succeeded": scipy_capped.is_ok()})
        );
        let _ = std::fs::remove_dir_all(&c);
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spgemm bench: {e}");
            ExitCode::FAILURE
        }
    }
}
