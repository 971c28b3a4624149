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
