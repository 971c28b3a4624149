//! # `algo`: PageRank and CG against scipy, in memory and out of core
//!
//! **In memory** (files in the page cache), `--rounds` rounds alternating the tools:
//! `sparsedisk pagerank` against `anchors.py pagerank` (scipy, the same definition) on a shuffled
//! R-MAT graph, and `sparsedisk cg` against `anchors.py cg` (`scipy.sparse.linalg.cg`) on a 3-D
//! Laplacian, both with the same tolerance. Reported per tool: the whole run (median, min, max over
//! rounds), iterations, and seconds per iteration. scipy's CG reports no iteration count; plain CG
//! from `x = 0` runs the same iterations in exact arithmetic, so its time per iteration is taken over
//! ours (the final residuals are printed to compare). Both totals include each tool's set-up (scipy:
//! the transpose PageRank needs; sparsedisk: the out-weights product, mapping the matrix).
//!
//! **Out of core** (`--ooc`): the same commands of sparsedisk in a memory cgroup (`common::capped`) with
//! a cap below the matrix's size, from a cold cache (`common::evict`), against scipy in memory
//! and uncapped (it cannot run under the cap: the matrix alone exceeds it).
//!
//! ```text
//! cargo bench --bench algo                  # in memory: PageRank on R-MAT 22, CG on a 3-D Laplacian n = 100
//! cargo bench --bench algo -- --ooc         # and out of core: PageRank on R-MAT 22 under 512M, CG on n = 200 under 600M
//! cargo test --bench algo                   # smoke: small matrices, one round
//! ```

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn anchors(args: &[&str], file: &Path) -> Command {
    let mut c = Command::new(python());
    c.arg(shared_tool("anchors/anchors.py")).arg(args[0]).arg(file).args(&args[1..]);
    c
}

/// One algorithm: ours (optionally under a cap, cold) against scipy's, `rounds` times alternating.
struct Case<'a> {
    name: &'a str,
    algorithm: &'a str,
    dir: PathBuf,
    mtx: PathBuf,
    /// Extra arguments, the same for ours (after `ALGO DIR -o OUT --json`) and anchors.py (after
    /// `ALGO FILE`): the tolerance.
    args: Vec<&'a str>,
    /// `Some(cap)`: ours runs under a memory cap from a cold cache.
    cap: Option<&'a str>,
}

fn run_case(case: &Case<'_>, rounds: usize, scipy: bool, mode: &str, out: &Path) -> Result<(), String> {
    let (mut ours_s, mut ours_it, mut theirs_s, mut peaks, mut rss) = (vec![], vec![], vec![], vec![], vec![]);
    let mut ours_figure = f64::NAN;
    let mut theirs_json = Value::Null;
    for _ in 0..rounds {
        let mut argv: Vec<std::ffi::OsString> = vec![case.algorithm.into(), case.dir.clone().into()];
        argv.extend(["-o".into(), out.as_os_str().to_owned(), "--json".into(), "--force".into()]);
        argv.extend(case.args.iter().map(|a| a.into()));
        let j = match case.cap {
            Some(cap) => {
                evict(&case.dir)?;
                let (j, _, peak, failures) = capped(cap, common::bin(), &argv, true, case.algorithm)?;
                peaks.push(peak);
                if failures > 0.0 {
                    eprintln!("algo bench: {}: the cgroup hit its limit ({failures} times)", case.name);
                }
                j
            }
            None => run_json(sparsedisk().args(&argv), case.algorithm)?.0,
        };
        ours_s.push(f(&j["seconds"]));
        ours_it.push(f(&j["iterations"]));
        ours_figure = f(&j[if case.algorithm == "cg" { "residual" } else { "delta" }]);
        rss.push(f(&j["peak_rss_bytes"]));
        if scipy {
            let args: Vec<&str> = std::iter::once(case.algorithm).chain(case.args.iter().copied()).collect();
            let (t, _) = run_json(&mut anchors(&args, &case.mtx), "anchors.py")?;
            theirs_s.push(f(&t["seconds"]));
            theirs_json = t;
        }
    }
    let (med, min, max) = spread(&ours_s);
    let iterations = spread(&ours_it).0;
    result_line!(
        "{}",
        json!({"bench": "algo", "mode": mode, "matrix": case.name, "algorithm": case.algorithm,
               "tool": "sparsedisk", "cap": case.cap, "seconds": med, "min_seconds": min, "max_seconds": max,
               "iterations": iterations, "seconds_per_iteration": med / iterations,
               "final_figure": ours_figure, "peak_bytes_max": spread(&peaks).2, "peak_rss_bytes_max": spread(&rss).2})
    );
    if scipy {
        let (t_med, t_min, t_max) = spread(&theirs_s);
        // scipy's PageRank reports its iterations; its CG does not (see the module docs).
        let t_iter = theirs_json.get("iterations").map(f).unwrap_or(iterations);
        result_line!(
            "{}",
            json!({"bench": "algo", "mode": mode, "matrix": case.name, "algorithm": case.algorithm,
                   "tool": "scipy (in memory, uncapped)", "seconds": t_med, "min_seconds": t_min,
                   "max_seconds": t_max, "iterations": t_iter, "seconds_per_iteration": t_med / t_iter,
                   "final_figure": theirs_json.get("relres").cloned().unwrap_or(Value::Null)})
        );
        result_line!(
            "{}",
            json!({"bench": "algo", "mode": mode, "matrix": case.name, "algorithm": case.algorithm, "cap": case.cap,
                   "time_per_iteration_ours_over_scipy": (med / iterations) / (t_med / t_iter),
                   "speedup": t_med / med})
        );
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let ooc = args.iter().any(|a| a == "--ooc");
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(if full { 3 } else { 1 }), |v| v.parse::<usize>())
        .map_err(|e| e.to_string())?;
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let out = data.join("algo-result.npy");
    let scipy = has_scipy();
    if !scipy {
        eprintln!("algo bench: python with scipy and fast_matrix_market not found: the anchors are skipped");
    }
    let mode = if full { "full" } else { "smoke" };
    let case = |name, algorithm, (dir, mtx): (PathBuf, PathBuf), args: &'static [&'static str], cap| Case {
        name,
        algorithm,
        dir,
        mtx,
        args: args.to_vec(),
        cap,
    };
    let mut cases = Vec::new();
    if full {
        if scipy {
            cases.push(case("rmat scale 22", "pagerank", rmat(&data, "22")?, &["--tol", "1e-8"], None));
        }
        let lap3d = generated(&data, "lap3d-100", &["laplace3d", "--n", "100"])?;
        cases.push(case("laplace3d n=100", "cg", lap3d, &["--tol", "1e-6"], None));
        if ooc {
            if scipy {
                cases.push(case("rmat scale 22", "pagerank", rmat(&data, "22")?, &["--tol", "1e-8"], Some("512M")));
            }
            let lap3d = generated(&data, "lap3d-200", &["laplace3d", "--n", "200"])?;
            cases.push(case("laplace3d n=200", "cg", lap3d, &["--tol", "1e-2"], Some("600M")));
        }
    } else {
        let lap = generated(&data, "lap2d-60", &["laplace2d", "--n", "60"])?;
        cases.push(case("laplace2d n=60", "cg", lap, &[], None));
        cases.push(case(
            "rmat scale 10",
            "pagerank",
            generated(&data, "rmat-10", &["rmat", "--scale", "10"])?,
            &[],
            None,
        ));
    }
    for case in &cases {
        run_case(case, rounds, scipy, mode, &out)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("algo bench: {e}");
            ExitCode::FAILURE
        }
    }
}
