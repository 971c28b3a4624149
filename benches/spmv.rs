//! # `spmv`: SpMV and SpMM against scipy in memory, and against numpy.memmap + scipy out of core
//!
//! **In memory** (files in the page cache), for each matrix and in each of `--rounds` rounds:
//! `sparsedisk spmv` on 1 and 2 threads, `sparsedisk spmm --x ones:8` on 2 threads, then scipy's
//! `A @ x` and `A @ X` (`anchors.py spmv|spmm`, one thread) on the same matrix's Matrix Market file.
//! Every tool runs once per round, alternating, so a noisy neighbour on the shared machine hits all of
//! them alike. Each run reports the median of `--repeat` products; the bench prints, per tool, the
//! median, min and max over rounds, and the ratios of the medians (scipy's time over ours: above 1,
//! sparsedisk is faster).
//!
//! **Out of core** (`--ooc`), each matrix under a real memory cap (a memory cgroup, page cache
//! included: `sparsedisk_bench::MemoryCap`) from a cold cache (`evict_page_cache` before every run),
//! rounds alternating:
//! * `cat` of the segment files to `/dev/null`: the sequential read bandwidth of the same bytes under
//!   the same cap, the limit a streaming product can reach;
//! * `anchors.py memmap-spmv` (numpy.memmap + scipy's `A @ x` over raw CSR arrays of the same matrix);
//! * `sparsedisk spmv` with the managed cache policy (the default) and with `--cache kernel`.
//!
//! Each product command runs `--ooc-repeat` products (3): the first one is the cold product, the
//! median of the others is the steady state of repeated products (PageRank, CG), where the managed
//! policy keeps part of the matrix resident and the kernel's LRU re-reads everything. Peak memory is
//! the cgroup's peak (page cache included), and the process's peak RSS.
//!
//! ```text
//! cargo bench --bench spmv                               # in memory: Laplacian n = 3000 (45 M nnz), R-MAT scale 22
//! cargo bench --bench spmv -- --ooc                      # and out of core: the same two under 300M / 400M caps
//! cargo bench --bench spmv -- --pair DIR FILE.mtx [--pair ...] [--rounds 5] [--repeat 9]
//! cargo bench --bench spmv -- --ooc-only --ooc-pair DIR FILE.mtx CAP [--ooc-pair ...]
//! cargo test --bench spmv                                # smoke: a small Laplacian, one round
//! ```
//!
//! Full mode builds its inputs once under `target/bench-data/` (`sparsedisk generate` and `export`
//! for the Laplacian; `anchors.py gen rmat --shuffle` and `sparsedisk import` for R-MAT;
//! `anchors.py memmap-prepare` for the memmap baseline).

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn ensure_laplacian(data: &Path, n: &str) -> Result<(String, PathBuf, PathBuf), String> {
    let (dir, mtx) = generated(data, &format!("lap2d-{n}"), &["laplace2d", "--n", n])?;
    Ok((format!("laplace2d n={n}"), dir, mtx))
}

fn ensure_rmat(data: &Path, scale: &str) -> Result<(String, PathBuf, PathBuf), String> {
    let (dir, mtx) = rmat(data, scale)?;
    Ok((format!("rmat scale {scale}"), dir, mtx))
}

/// The in-memory comparison of one matrix (see the module docs).
fn in_memory(
    name: &str,
    dir: &Path,
    mtx: &Path,
    rounds: usize,
    repeat: &str,
    scipy: bool,
    mode: &str,
) -> Result<(), String> {
    let tools = ["sparsedisk.spmv t1", "sparsedisk.spmv t2", "sparsedisk.spmm k8 t2", "scipy.csr@x", "scipy.csr@X k8"];
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); tools.len()];
    let mut facts = json!({});
    for _ in 0..rounds {
        for threads in ["1", "2"] {
            let (j, _) = run_json(
                sparsedisk().args(["--threads", threads, "spmv"]).arg(dir).args(["--repeat", repeat, "--json"]),
                "sparsedisk spmv",
            )?;
            seconds[usize::from(threads == "2")].push(f(&j["seconds"]));
            facts = json!({"nnz": j["nnz"], "matrix_bytes": j["matrix_bytes"], "rows": j["rows"]});
        }
        let (j, _) = run_json(
            sparsedisk()
                .args(["--threads", "2", "spmm"])
                .arg(dir)
                .args(["--x", "ones:8", "--repeat", repeat, "--json"]),
            "sparsedisk spmm",
        )?;
        seconds[2].push(f(&j["seconds"]));
        if scipy {
            let (s, _) = run_json(
                Command::new(python()).arg(anchors()).arg("spmv").arg(mtx).args(["--repeat", repeat]),
                "anchors spmv",
            )?;
            seconds[3].push(f(&s["seconds"]));
            let (s, _) = run_json(
                Command::new(python()).arg(anchors()).arg("spmm").arg(mtx).args(["--k", "8", "--repeat", repeat]),
                "anchors spmm",
            )?;
            seconds[4].push(f(&s["seconds"]));
        }
    }
    let nnz = f(&facts["nnz"]);
    let bytes = f(&facts["matrix_bytes"]);
    let mut medians = Vec::new();
    for (tool, times) in tools.iter().zip(&seconds) {
        if times.is_empty() {
            medians.push(f64::NAN);
            continue;
        }
        let (med, min, max) = spread(times);
        medians.push(med);
        let k = if tool.contains("k8") { 8.0 } else { 1.0 };
        result_line!(
            "{}",
            json!({"bench": "spmv", "mode": mode, "regime": "in_memory", "matrix": name, "tool": tool,
                   "seconds": med, "min_seconds": min, "max_seconds": max, "round_seconds": times,
                   "nnz": nnz, "ns_per_nonzero": med * 1e9 / nnz, "gb_per_s": bytes / med / 1e9,
                   "gflops": 2.0 * k * nnz / med / 1e9})
        );
    }
    if scipy {
        result_line!(
            "{}",
            json!({"bench": "spmv", "mode": mode, "regime": "in_memory", "matrix": name,
                   "ratio_spmv_1_thread": medians[3] / medians[0],
                   "ratio_spmv_2_threads": medians[3] / medians[1],
                   "ratio_spmm_k8": medians[4] / medians[2]})
        );
    }
    Ok(())
}

/// Bytes and paths of the regular files under `dir`.
fn files_under(dir: &Path) -> Result<(Vec<PathBuf>, u64), String> {
    let mut files = Vec::new();
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let e = e.map_err(|e| e.to_string())?;
            let meta = e.metadata().map_err(|e| e.to_string())?;
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                bytes += meta.len();
                files.push(e.path());
            }
        }
    }
    files.sort();
    Ok((files, bytes))
}

/// `program args...` under a memory cap (see `common::capped`); returns the command's JSON (if
/// `json`), wall seconds, and the cgroup's peak bytes.
fn under_cap(cap: &str, argv: &[&std::ffi::OsStr], json: bool, what: &str) -> Result<(Value, f64, f64), String> {
    let (value, wall, peak, hits) = capped(cap, argv[0], &argv[1..], json, what)?;
    if hits > 0.0 {
        eprintln!("spmv bench: {what}: the cgroup hit its limit ({hits} times)");
    }
    Ok((value, wall, peak))
}

/// The out-of-core comparison of one matrix (see the module docs).
fn out_of_core(name: &str, dir: &Path, mmdir: &Path, cap: &str, rounds: usize, repeat: &str) -> Result<(), String> {
    let (files, bytes) = files_under(dir)?;
    let mut cat: Vec<std::ffi::OsString> = vec!["cat".into()];
    cat.extend(files.iter().map(|p| p.as_os_str().to_owned()));
    // cat writes into /dev/null through a shell redirection inside the cap.
    let mut sh: Vec<std::ffi::OsString> =
        vec!["bash".into(), "-c".into(), "exec \"$@\" > /dev/null".into(), "cat".into()];
    sh.extend(cat);
    let sh_args: Vec<&std::ffi::OsStr> = sh.iter().map(|s| s.as_os_str()).collect();
    let anchors_path = anchors();
    let memmap_args: Vec<&std::ffi::OsStr> = vec![
        python_os(),
        anchors_path.as_os_str(),
        "memmap-spmv".as_ref(),
        mmdir.as_os_str(),
        "--repeat".as_ref(),
        repeat.as_ref(),
    ];
    let exe_path = common::bin();
    let exe = exe_path.as_path();
    let ours = |cache: &'static str| -> Vec<&std::ffi::OsStr> {
        vec![
            exe.as_os_str(),
            "spmv".as_ref(),
            dir.as_os_str(),
            "--cache".as_ref(),
            cache.as_ref(),
            "--repeat".as_ref(),
            repeat.as_ref(),
            "--json".as_ref(),
        ]
    };
    let tools = ["cat", "numpy.memmap+scipy", "sparsedisk managed", "sparsedisk kernel"];
    let mut first: Vec<Vec<f64>> = vec![Vec::new(); tools.len()];
    let mut steady: Vec<Vec<f64>> = vec![Vec::new(); tools.len()];
    let mut peaks: Vec<Vec<f64>> = vec![Vec::new(); tools.len()];
    let mut rss: Vec<Vec<f64>> = vec![Vec::new(); tools.len()];
    let mut nnz = f64::NAN;
    for _ in 0..rounds {
        evict(dir)?;
        let (_, wall, peak) = under_cap(cap, &sh_args, false, "cat")?;
        first[0].push(wall);
        peaks[0].push(peak);
        for (t, args) in [(1, memmap_args.clone()), (2, ours("managed")), (3, ours("kernel"))] {
            evict(if t == 1 { mmdir } else { dir })?;
            let (j, _, peak) = under_cap(cap, &args, true, tools[t])?;
            let all: Vec<f64> = j["all_seconds"].as_array().map(|a| a.iter().map(f).collect()).unwrap_or_default();
            first[t].push(all.first().copied().unwrap_or(f64::NAN));
            steady[t].push(spread(all.get(1..).unwrap_or(&[])).0);
            peaks[t].push(peak);
            rss[t].push(f(&j["peak_rss_bytes"]));
            if t == 2 {
                nnz = f(&j["nnz"]);
            }
        }
    }
    let mut cold = Vec::new();
    for t in 0..tools.len() {
        let (med, min, max) = spread(&first[t]);
        let (steady_med, steady_min, steady_max) = spread(&steady[t]);
        cold.push((med, steady_med));
        result_line!(
            "{}",
            json!({"bench": "spmv", "mode": "full", "regime": "out_of_core", "matrix": name, "cap": cap,
                   "matrix_file_bytes": bytes, "tool": tools[t],
                   "cold_seconds": med, "cold_min_seconds": min, "cold_max_seconds": max, "round_cold_seconds": first[t],
                   "cold_gb_per_s": bytes as f64 / med / 1e9,
                   "steady_seconds": steady_med, "steady_min_seconds": steady_min, "steady_max_seconds": steady_max,
                   "peak_bytes_max": spread(&peaks[t]).2, "peak_rss_bytes_max": spread(&rss[t]).2, "nnz": nnz})
        );
    }
    result_line!(
        "{}",
        json!({"bench": "spmv", "mode": "full", "regime": "out_of_core", "matrix": name, "cap": cap,
               "matrix_file_bytes": bytes,
               "ratio_cold_vs_memmap": cold[1].0 / cold[2].0,
               "fraction_of_cat_bandwidth": cold[0].0 / cold[2].0,
               "ratio_steady_vs_memmap": cold[1].1 / cold[2].1,
               "ratio_managed_vs_kernel_cold": cold[3].0 / cold[2].0,
               "ratio_managed_vs_kernel_steady": cold[3].1 / cold[2].1})
    );
    Ok(())
}

fn python_os() -> &'static std::ffi::OsStr {
    static PY: std::sync::OnceLock<std::ffi::OsString> = std::sync::OnceLock::new();
    PY.get_or_init(|| python().into())
}

fn ensure_memmap(mtx: &Path, data: &Path) -> Result<PathBuf, String> {
    let stem = mtx.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mmdir = data.join(format!("{stem}.memmap"));
    if !mmdir.join("shape.json").exists() {
        run_json(Command::new(python()).arg(anchors()).arg("memmap-prepare").arg(mtx).arg(&mmdir), "memmap-prepare")?;
    }
    Ok(mmdir)
}

fn value_after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).map(String::as_str)
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let parse = |flag: &str, default: usize| -> Result<usize, String> {
        value_after(&args, flag).map_or(Ok(default), |v| v.parse().map_err(|e| format!("{flag}: {e}")))
    };
    let repeat = parse("--repeat", if full { 9 } else { 2 })?.to_string();
    let rounds = parse("--rounds", if full { 5 } else { 1 })?;
    let ooc_rounds = parse("--ooc-rounds", 3)?;
    let ooc_repeat = parse("--ooc-repeat", 3)?.to_string();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let mut inputs: Vec<(String, PathBuf, PathBuf)> = Vec::new();
    let mut ooc_inputs: Vec<(String, PathBuf, PathBuf, String)> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--pair" && i + 2 < args.len() {
            inputs.push((args[i + 1].clone(), PathBuf::from(&args[i + 1]), PathBuf::from(&args[i + 2])));
            i += 3;
        } else if args[i] == "--ooc-pair" && i + 3 < args.len() {
            let dir = PathBuf::from(&args[i + 1]);
            ooc_inputs.push((args[i + 1].clone(), dir, PathBuf::from(&args[i + 2]), args[i + 3].clone()));
            i += 4;
        } else {
            i += 1;
        }
    }
    let scipy = has_scipy();
    if !scipy {
        eprintln!("spmv bench: python with scipy and fast_matrix_market not found: the anchors are skipped");
    }
    let ooc_only = args.iter().any(|a| a == "--ooc-only");
    if inputs.is_empty() && !ooc_only {
        if full {
            inputs.push(ensure_laplacian(&data, "3000")?);
            if scipy {
                inputs.push(ensure_rmat(&data, "22")?);
            }
        } else {
            inputs.push(ensure_laplacian(&data, "60")?);
        }
    }
    let mode = if full { "full" } else { "smoke" };
    for (name, dir, mtx) in &inputs {
        in_memory(name, dir, mtx, rounds, &repeat, scipy, mode)?;
    }
    if args.iter().any(|a| a == "--ooc") && ooc_inputs.is_empty() {
        if !scipy {
            return Err("--ooc needs python with scipy (the numpy.memmap baseline)".into());
        }
        for (input, cap) in [(ensure_laplacian(&data, "3000")?, "300M"), (ensure_rmat(&data, "22")?, "400M")] {
            let mmdir = ensure_memmap(&input.2, &data)?;
            ooc_inputs.push((input.0, input.1, mmdir, cap.into()));
        }
    } else {
        // --ooc-pair DIR FILE.mtx CAP: the memmap arrays are prepared from the Matrix Market file.
        for entry in &mut ooc_inputs {
            entry.2 = ensure_memmap(&entry.2, &data)?;
        }
    }
    for (name, dir, mmdir, cap) in &ooc_inputs {
        out_of_core(name, dir, mmdir, cap, ooc_rounds, &ooc_repeat)?;
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
