//! `sparsedisk bench` end to end on its hidden smoke suite (tiny matrices, seconds): the report files
//! exist and parse, every record has the documented fields, the figures are consistent with the
//! samples, and the Python baselines either ran or say why not. Performance itself is measured by
//! running the harness, never asserted here.

mod common;

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn bench(out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(common::bin())
        .args(["bench", "--suite", "smoke", "--quiet", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn records(out: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn check_files(out: &Path) {
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for heading in ["# sparsedisk benchmark report", "## Physical limits", "## In core", "## Out of core"] {
        assert!(md.contains(heading), "report.md lacks {heading:?}:\n{md}");
    }
    let fragment = std::fs::read_to_string(out.join("readme-fragment.md")).unwrap();
    assert!(fragment.contains("#### In core"), "{fragment}");
    for svg in ["throughput_vs_cap.svg", "ns_per_nnz.svg", "baselines.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(text.starts_with("<svg"), "{svg} is not SVG");
        assert!(text.trim_end().ends_with("</svg>"), "{svg} is truncated");
        assert!(md.contains(svg), "report.md does not show {svg}");
    }
}

#[test]
fn smoke_suite_writes_a_complete_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let run = bench(&out, &[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    check_files(&out);
    let recs = records(&out);
    let fields = [
        "schema", "suite", "kernel", "tool", "regime", "matrix", "params", "cap", "min", "median", "max", "samples",
        "figures", "limit", "ratios", "machine", "versions", "note",
    ];
    for r in &recs {
        for f in fields {
            assert!(r.get(f).is_some(), "record lacks {f}: {r}");
        }
        assert_eq!(r["suite"], "smoke");
        assert!(r["machine"]["cores"].as_u64().unwrap() >= 1);
        assert!(r["versions"]["sparsedisk"].is_string());
        if r["note"].is_null() {
            // The order statistics come from the samples.
            let s: Vec<f64> = r["samples"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            assert!(!s.is_empty(), "{r}");
            let (min, max) = (s.iter().copied().fold(f64::MAX, f64::min), s.iter().copied().fold(0.0, f64::max));
            assert_eq!(r["min"].as_f64().unwrap(), min);
            assert_eq!(r["max"].as_f64().unwrap(), max);
            let med = r["median"].as_f64().unwrap();
            assert!(min <= med && med <= max && min > 0.0, "{r}");
        }
    }
    for r in recs.iter().filter(|r| r["tool"] == "sparsedisk") {
        assert!(r["note"].is_null(), "sparsedisk failed on a generated matrix: {r}");
    }
    let has = |kernel: &str, tool: &str, regime: &str| {
        recs.iter().any(|r| r["kernel"] == kernel && r["tool"] == tool && r["regime"] == regime && r["note"].is_null())
    };
    for kernel in ["import", "spmv", "spmm", "spgemm", "pagerank", "cg"] {
        assert!(has(kernel, "sparsedisk", "in_core_warm"), "no sparsedisk {kernel}");
    }
    assert!(has("limit", "memory-read", "in_core_warm") && has("limit", "disk-read", "out_of_core_cold"));
    assert!(has("spmv", "sprs", "in_core_warm") && has("spgemm", "sprs", "in_core_warm"));
    assert!(has("spmv", "sparsedisk", "out_of_core_cold"));
    // Every in-core figure of ours carries its limit; sprs's ratio sits beside it.
    for r in recs.iter().filter(|r| r["tool"] == "sparsedisk" && r["note"].is_null()) {
        let fraction = r["limit"]["fraction"].as_f64().unwrap();
        assert!(fraction > 0.0, "{r}");
    }
    let spmv = recs.iter().find(|r| r["kernel"] == "spmv" && r["tool"] == "sparsedisk").unwrap();
    assert!(spmv["ratios"]["sprs"].as_f64().unwrap() > 0.0, "{spmv}");
    // The cap: applied with a peak, or not applied with the reason; never silent.
    for r in recs.iter().filter(|r| r["regime"] == "out_of_core_cold" && r["kernel"] == "spmv") {
        let cap = &r["cap"];
        if !r["note"].is_null() {
            continue;
        }
        if cap["applied"] == true {
            assert!(cap["peak_bytes"].as_u64().unwrap() > 0, "{r}");
        } else {
            assert!(cap["reason"].as_str().unwrap().starts_with("cap: not applied"), "{r}");
        }
    }
    // Python: the baselines ran (required in CI), or each says why it was skipped.
    let python_required = std::env::var("SPARSEDISK_REQUIRE_PYTHON").is_ok_and(|v| v == "1");
    let scipy: Vec<&Value> = recs.iter().filter(|r| r["tool"] == "scipy").collect();
    assert!(!scipy.is_empty());
    for r in &scipy {
        if python_required {
            assert!(r["note"].is_null(), "{r}");
        } else if !r["note"].is_null() {
            assert!(r["note"].as_str().unwrap().starts_with("skipped"), "{r}");
        }
    }
    if python_required {
        assert!(has("spmv", "numpy.memmap+scipy", "out_of_core_cold"));
        assert!(spmv["ratios"]["scipy"].as_f64().unwrap() > 0.0);
    }

    // The views regenerate from results.jsonl alone.
    std::fs::remove_file(out.join("report.md")).unwrap();
    let again = Command::new(common::bin()).args(["bench", "--report-only", "--out"]).arg(&out).output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    check_files(&out);

    // The fragment goes between the markers of a README, twice over without growing; a README
    // without markers is an error.
    let readme = tmp.path().join("README.md");
    std::fs::write(&readme, "# T\n\nbefore\n<!-- bench:begin -->\nold tables\n<!-- bench:end -->\nafter\n").unwrap();
    for _ in 0..2 {
        let run = Command::new(common::bin())
            .args(["bench", "--report-only", "--out"])
            .arg(&out)
            .arg("--readme")
            .arg(&readme)
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    }
    let text = std::fs::read_to_string(&readme).unwrap();
    let fragment = std::fs::read_to_string(out.join("readme-fragment.md")).unwrap();
    assert!(!text.contains("old tables") && text.contains(fragment.trim_end()), "{text}");
    assert!(text.starts_with("# T\n\nbefore\n<!-- bench:begin -->\n") && text.ends_with("<!-- bench:end -->\nafter\n"));
    assert_eq!(text.matches("#### In core").count(), 1);
    std::fs::write(&readme, "no markers\n").unwrap();
    let bad = Command::new(common::bin())
        .args(["bench", "--report-only", "--out"])
        .arg(&out)
        .arg("--readme")
        .arg(&readme)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bench:begin"));
}

#[test]
fn without_python_and_with_a_user_matrix() {
    let tmp = tempfile::tempdir().unwrap();
    let mtx = tmp.path().join("tiny.mtx");
    std::fs::write(&mtx, "%%MatrixMarket matrix coordinate real general\n3 3 4\n1 1 2.0\n2 2 3.0\n3 1 1.5\n3 3 1.0\n")
        .unwrap();
    // A CSC matrix directory too: sprs's mat-vec takes CSR only, so it is skipped with the reason.
    let csc = tmp.path().join("csc");
    let gen = Command::new(common::bin())
        .args(["generate", "laplace2d", "--n", "12", "--layout", "csc", "--quiet", "-o"])
        .arg(&csc)
        .output()
        .unwrap();
    assert!(gen.status.success());
    let out = tmp.path().join("report");
    let (m1, m2) = (mtx.to_str().unwrap(), csc.to_str().unwrap());
    let run = bench(&out, &["--no-python", "--matrix", m1, "--matrix", m2, "--memory-caps", "96M"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let recs = records(&out);
    let on_csc: Vec<&Value> = recs.iter().filter(|r| r["matrix"]["kind"].as_str() == Some(m2)).collect();
    assert!(on_csc.iter().any(|r| r["kernel"] == "spmv" && r["tool"] == "sparsedisk" && r["note"].is_null()));
    // PageRank diverges on a Laplacian (rows summing to zero): recorded, and the run goes on.
    let pagerank = on_csc.iter().find(|r| r["kernel"] == "pagerank" && r["tool"] == "sparsedisk").unwrap();
    assert!(pagerank["note"].as_str().unwrap().starts_with("failed: PageRank diverged"), "{pagerank}");
    assert!(on_csc.iter().any(|r| r["tool"] == "sprs" && r["note"].as_str().unwrap().contains("CSC")));
    let user: Vec<&Value> = recs.iter().filter(|r| r["matrix"]["kind"].as_str() == mtx.to_str()).collect();
    assert!(user.iter().any(|r| r["kernel"] == "import" && r["note"].is_null()));
    assert!(user.iter().any(|r| r["kernel"] == "spmv" && r["regime"] == "out_of_core_cold"));
    assert!(user.iter().all(|r| r["matrix"]["nnz"] == 4));
    for r in recs.iter().filter(|r| r["tool"] == "scipy") {
        assert!(r["note"].as_str().unwrap().contains("--no-python"), "{r}");
    }
    assert!(recs.iter().any(|r| r["cap"]["requested_bytes"] == 96u64 << 20));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Notes") && md.contains("--no-python"), "{md}");

    // A missing input is an error message, not a panic.
    let bad = bench(&tmp.path().join("r2"), &["--no-python", "--matrix", "/nonexistent/m.mtx"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).starts_with("sparsedisk: error:"));
}

/// The scale suite's plan at full size, without running it: the steps the issue asks for, the disk
/// space it needs, and a refusal (exit 1, before anything is written) when the disk lacks it.
#[test]
fn scale_suite_plans_its_disk_space_and_refuses_without_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let dry = |free: &str| {
        Command::new(common::bin())
            .args(["bench", "--suite", "scale", "--dry-run", "--assume-free", free, "--out"])
            .arg(&out)
            .output()
            .unwrap()
    };
    let plan = dry("1T");
    assert!(plan.status.success(), "{}", String::from_utf8_lossy(&plan.stderr));
    let text = String::from_utf8_lossy(&plan.stdout);
    for step in [
        "generate rmat-26",
        "spmv rmat-26 x5",
        "spmv --transpose rmat-26 x5",
        "pagerank rmat-26 (tol 1e-8)",
        "bfs rmat-26",
        "components rmat-26",
        "transpose rmat-26",
        "convert rmat-26 --layout csc",
        "generate lap3d27-334",
        "cg lap3d27-334, 100 iterations",
        "export rmat-25-ef18",
        "import rmat-25-ef18.mtx",
        "fast_matrix_market",
        "crash safety",
        "peak:",
        "4.00 GiB memory cap",
    ] {
        assert!(text.contains(step), "the plan lacks {step:?}:\n{text}");
    }
    // The 27-point Laplacian of 10^9 nonzeros (37.3 M rows) keeps CG's vectors under the cap: no
    // step is expected to run out of memory.
    assert!(!text.contains("warning:"), "the plan warns:\n{text}");
    // Transposing R-MAT 26 holds it, its sorted runs and the output: the peak, under 60 GB.
    let peak = text.lines().find(|l| l.starts_with("peak:")).unwrap();
    assert!(peak.contains("(transpose rmat-26)"), "{peak}");
    let refused = dry("10G");
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("needs about") && err.contains("10.00 GiB is free"), "{err}");
    assert!(!out.join("data").exists(), "a refused run wrote data");
    // The other suites have no plan to print.
    let other = Command::new(common::bin()).args(["bench", "--dry-run", "--out"]).arg(&out).output().unwrap();
    assert_eq!(other.status.code(), Some(1));
}

/// The scale suite end to end at its tiny size (seconds): every step is recorded with its wall time,
/// device counters (or why there are none), cap outcome (or why it was not applied) and per-pass
/// figures; the crash-safety checks pass; the report, its tables and the README fragment exist; the
/// data is removed. Timings are not asserted.
#[test]
fn scale_suite_tiny_runs_every_step() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, data) = (tmp.path().join("report"), tmp.path().join("data"));
    let run = Command::new(common::bin())
        .args(["bench", "--suite", "scale", "--scale-size", "tiny", "--quiet", "--out"])
        .arg(&out)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let recs = records(&out);
    assert!(recs.iter().all(|r| r["suite"] == "scale"));
    let of = |kernel: &str| recs.iter().filter(|r| r["kernel"] == kernel).collect::<Vec<_>>();
    for tool in ["disk-read", "disk-write"] {
        let limit = of("limit").into_iter().find(|r| r["tool"] == tool).unwrap_or_else(|| panic!("no {tool}"));
        assert!(limit["figures"]["gb_per_s"].as_f64().unwrap() > 0.0, "{limit}");
    }
    let counts = [
        ("generate", 3),
        ("verify", 2),
        ("spmv", 2),
        ("spmv_transpose", 2),
        ("pagerank", 1),
        ("bfs", 1),
        ("components", 1),
        ("cg", 1),
        ("transpose", 1),
        ("convert", 1),
        ("export", 1),
    ];
    for (kernel, n) in counts {
        let found = of(kernel);
        assert_eq!(found.len(), n, "{kernel}: {found:?}");
        for r in found {
            assert!(r["note"].is_null(), "{r}");
        }
    }
    for r in recs.iter().filter(|r| r["kernel"] != "limit" && r["note"].is_null()) {
        let p = &r["params"];
        assert!(p["wall_seconds"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["matrix"]["nnz"].as_u64().unwrap() > 0, "{r}");
        // The cap: applied with a peak, or not applied with the reason; never silent.
        let cap = &r["cap"];
        if cap["applied"] == true {
            assert!(cap["peak_bytes"].as_u64().is_some() && cap["requested_bytes"] == 256u64 << 20, "{r}");
        } else {
            assert!(cap["reason"].as_str().unwrap().starts_with("cap: not applied"), "{r}");
        }
        // Device counters, or why there are none.
        if p["device"].is_null() {
            assert!(!p["device_note"].as_str().unwrap().is_empty(), "{r}");
        } else {
            assert!(p["device"]["read_bytes"].is_u64() && p["device"]["written_bytes"].is_u64(), "{r}");
        }
    }
    // Streaming steps carry per-pass figures against the disk's read bandwidth.
    for kernel in ["verify", "spmv", "spmv_transpose", "pagerank", "components", "cg"] {
        for r in of(kernel) {
            let passes = r["params"]["passes"].as_array().unwrap();
            assert!(!passes.is_empty(), "{r}");
            for p in passes {
                assert!(
                    p["seconds"].as_f64().unwrap() > 0.0 && p["fraction_of_disk_read"].as_f64().unwrap() > 0.0,
                    "{r}"
                );
            }
        }
    }
    let spmv = &of("spmv")[0]["params"]["passes"];
    assert_eq!((spmv[0]["label"].as_str(), spmv[0]["count"].as_u64()), (Some("cold"), Some(1)));
    assert_eq!((spmv[1]["label"].as_str(), spmv[1]["count"].as_u64()), (Some("steady"), Some(2)));
    assert_eq!(of("cg")[0]["params"]["iterations"], 100);
    assert!(of("pagerank")[0]["params"]["iterations"].as_u64().unwrap() > 0);
    assert!(of("bfs")[0]["params"]["depth"].as_u64().unwrap() > 0);
    // The R-MAT builds and the imports report their phases; the import gives back the exported text.
    let graph = of("generate").into_iter().find(|r| r["matrix"]["name"] == "rmat-12").unwrap();
    assert!(graph["params"]["phases"].as_array().unwrap().len() >= 3, "{graph}");
    let imports = of("import");
    let whole = imports.iter().find(|r| r["matrix"]["name"] == "rmat-11-imported").unwrap();
    let text = of("generate").into_iter().find(|r| r["matrix"]["name"] == "rmat-11").unwrap();
    assert!(whole["note"].is_null(), "{whole}");
    assert_eq!(whole["matrix"]["nnz"], text["matrix"]["nnz"]);
    assert!(whole["params"]["text_mb_per_s"].as_f64().unwrap() > 0.0);
    let slice: Vec<&&Value> = imports.iter().filter(|r| r["params"]["matrix_name"] == "rmat-11-slice").collect();
    assert_eq!(slice.len(), 2, "sparsedisk and fast_matrix_market on the slice: {slice:?}");
    let fmm = slice.iter().find(|r| r["tool"] == "fast_matrix_market").unwrap();
    if std::env::var("SPARSEDISK_REQUIRE_PYTHON").is_ok_and(|v| v == "1") {
        assert!(fmm["note"].is_null(), "{fmm}");
    }
    if fmm["note"].is_null() {
        assert!(fmm["params"]["text_mb_per_s"].as_f64().unwrap() > 0.0, "{fmm}");
    } else {
        assert!(fmm["note"].as_str().unwrap().starts_with("skipped"), "{fmm}");
    }
    // Crash safety: several kills (one into a new directory), then a final import; all pass.
    let crashes = of("crash");
    assert!(crashes.len() >= 5, "{crashes:?}");
    for r in &crashes {
        assert_eq!(r["params"]["pass"], true, "{r}");
        assert!(r["note"].is_null(), "{r}");
    }
    assert!(crashes.iter().any(|r| r["params"]["new_directory"] == true));
    assert_eq!(crashes.last().unwrap()["params"]["final"], true);
    // The report and the README fragment.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for heading in ["## Physical limits", "## At scale", "## Crash safety", "| step | matrix | time | per pass |"] {
        assert!(md.contains(heading), "report.md lacks {heading:?}:\n{md}");
    }
    assert!(md.contains("| verify rmat-12 |") && md.contains("| cg lap3d27-17, 100 iterations |"), "{md}");
    let fragment = std::fs::read_to_string(out.join("scale-fragment.md")).unwrap();
    assert!(fragment.contains("| step | matrix |") && fragment.contains("Crash safety: "), "{fragment}");
    assert!(!data.join("sparsedisk-bench-scale").exists(), "the suite left its data behind");
    // The views regenerate from results.jsonl alone, and the fragment goes into a README.
    std::fs::remove_file(out.join("report.md")).unwrap();
    let readme = tmp.path().join("README.md");
    std::fs::write(&readme, "# T\n<!-- bench-scale:begin -->\nold\n<!-- bench-scale:end -->\n").unwrap();
    let again = Command::new(common::bin())
        .args(["bench", "--report-only", "--out"])
        .arg(&out)
        .arg("--readme")
        .arg(&readme)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("## At scale"));
    let spliced = std::fs::read_to_string(&readme).unwrap();
    assert!(!spliced.contains("\nold\n") && spliced.contains(fragment.trim_end()), "{spliced}");
}
