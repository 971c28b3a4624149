//! The command-line contract end to end, through the built binary.

mod common;

use common::{fails, ok, p, sparsedisk};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn generate_info_verify_export_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("lap");
    let out = ok(&["generate", "laplace2d", "--n", "30", "-o", p(&m), "--segment-size", "2K", "--json"]);
    let g: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(g["nnz"], 900 * 5 - 4 * 30);
    assert!(g["segments"].as_u64().unwrap() > 5);

    let info: serde_json::Value = serde_json::from_str(ok(&["info", p(&m), "--json"]).trim()).unwrap();
    assert_eq!(info["rows"], 900);
    assert_eq!(info["cols"], 900);
    assert_eq!(info["nnz"], 4380);
    assert_eq!(info["layout"], "csr");
    assert_eq!(info["value_type"], "float64");
    assert!(info["bytes_per_nonzero"].as_f64().unwrap() > 12.0);
    let text = ok(&["info", p(&m)]);
    assert!(text.contains("900 x 900") && text.contains("4380"), "{text}");

    assert!(ok(&["verify", p(&m)]).starts_with("ok:"));

    let mtx = tmp.path().join("lap.mtx");
    ok(&["export", p(&m), "-o", p(&mtx)]);
    let body = std::fs::read_to_string(&mtx).unwrap();
    let mut lines = body.lines().filter(|l| !l.starts_with('%'));
    assert_eq!(lines.next(), Some("900 900 4380"));
    let mut entries: Vec<(u64, u64, f64)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect();
    assert_eq!(entries.len(), 4380);
    entries.sort_by_key(|&(r, c, _)| (r, c));
    assert_eq!(entries[0], (1, 1, 4.0));
    assert_eq!(entries[1], (1, 2, -1.0));
    assert!(entries.iter().all(|&(r, c, v)| (r == c) == (v == 4.0) && (r == c || v == -1.0)));

    // CSC export of the same matrix holds the same entries (in column order).
    let mc = tmp.path().join("lapc");
    ok(&["generate", "laplace2d", "--n", "30", "-o", p(&mc), "--layout", "csc", "--segment-size", "1K"]);
    let mtx2 = tmp.path().join("lapc.mtx");
    ok(&["export", p(&mc), "-o", p(&mtx2)]);
    let mut e2: Vec<String> = std::fs::read_to_string(&mtx2).unwrap().lines().skip(3).map(String::from).collect();
    let mut e1: Vec<String> = body.lines().skip(3).map(String::from).collect();
    e1.sort();
    e2.sort();
    assert_eq!(e1, e2);

    // Existing outputs are not overwritten without --force.
    let err = fails(&["export", p(&m), "-o", p(&mtx)]);
    assert!(err.contains("--force"), "{err}");
    ok(&["export", p(&m), "-o", p(&mtx), "--force"]);
    let err = fails(&["generate", "laplace2d", "--n", "3", "-o", p(&m)]);
    assert!(err.contains("already holds a matrix"), "{err}");
    ok(&["generate", "laplace2d", "--n", "3", "-o", p(&m), "--force"]);
    assert!(ok(&["info", p(&m)]).contains("9 x 9"));
}

#[test]
fn value_types_and_generators() {
    let tmp = tempfile::tempdir().unwrap();
    for (vt, field) in [("f64", "real"), ("f32", "real"), ("i64", "integer"), ("pattern", "pattern")] {
        let m = tmp.path().join(vt);
        ok(&["generate", "banded", "--n", "50", "--lower", "2", "--upper", "3", "-o", p(&m), "--value-type", vt]);
        let info: serde_json::Value = serde_json::from_str(ok(&["info", p(&m), "--json"]).trim()).unwrap();
        assert_eq!(info["nnz"], 50 * 6 - 3 - 6);
        ok(&["verify", p(&m)]);
        let text = ok(&["export", p(&m), "-o", "-"]);
        assert!(text.starts_with(&format!("%%MatrixMarket matrix coordinate {field} general")), "{text}");
        let first = text.lines().nth(3).unwrap();
        let fields = first.split(' ').count();
        assert_eq!(fields, if vt == "pattern" { 2 } else { 3 }, "{first}");
    }
    let m3 = tmp.path().join("l3");
    let g: serde_json::Value =
        serde_json::from_str(ok(&["generate", "laplace3d", "--n", "5", "-o", p(&m3), "--json"]).trim()).unwrap();
    assert_eq!(g["nnz"], 125 + 6 * 4 * 25);
    // The 27-point stencil: (3n - 2)^3 nonzeros; 7 and 27 are the only stencils.
    let m27 = tmp.path().join("l27");
    let g: serde_json::Value = serde_json::from_str(
        ok(&["generate", "laplace3d", "--n", "5", "--stencil", "27", "-o", p(&m27), "--json"]).trim(),
    )
    .unwrap();
    assert_eq!((g["rows"].as_u64(), g["nnz"].as_u64()), (Some(125), Some(13 * 13 * 13)));
    ok(&["verify", p(&m27)]);
    let bad = tmp.path().join("l9");
    assert_eq!(
        sparsedisk(&["generate", "laplace3d", "--n", "5", "--stencil", "9", "-o", p(&bad)]).status.code(),
        Some(2)
    );
}

#[test]
fn verify_reports_corruption_with_exit_1_and_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    ok(&["generate", "laplace2d", "--n", "10", "-o", p(&m)]);
    let chunk = m.join("seg_1_000000/values/c/0");
    let mut bytes = std::fs::read(&chunk).unwrap();
    bytes[100] ^= 0x10;
    std::fs::write(&chunk, &bytes).unwrap();
    let err = fails(&["verify", p(&m)]);
    assert!(err.contains("seg_1_000000/values/c/0") && err.contains("checksum mismatch"), "{err}");
    // info only opens (cheap) and still works on a matrix whose bytes are damaged.
    ok(&["info", p(&m)]);
}

#[test]
fn clear_errors_for_bad_arguments_and_missing_matrices() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let err = fails(&["info", p(&missing)]);
    assert!(err.contains("is not a sparsedisk matrix: no such directory"), "{err}");
    let err = fails(&["verify", p(tmp.path())]);
    assert!(err.contains("is not a sparsedisk matrix: it has no manifest.json"), "{err}");
    assert!(!err.contains("corrupt"), "a directory that is not a matrix is not a corrupt one: {err}");
    // Bad option values are usage errors (exit 2, from clap).
    let out = sparsedisk(&["generate", "laplace2d", "--n", "x", "-o", p(&missing)]);
    assert_eq!(out.status.code(), Some(2));
    let out = sparsedisk(&["generate", "laplace2d", "--n", "3", "-o", p(&missing), "--segment-size", "12Q"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("12Q"));
    let err = fails(&["generate", "laplace3d", "--n", "3000000000", "-o", p(&missing)]);
    assert!(err.contains("too large"), "{err}");
    assert!(!missing.exists(), "a failed command leaves nothing behind");
}

#[test]
fn every_command_has_help() {
    for cmd in [
        vec!["--help"],
        vec!["generate", "--help"],
        vec!["generate", "laplace2d", "--help"],
        vec!["generate", "laplace3d", "--help"],
        vec!["generate", "banded", "--help"],
        vec!["info", "--help"],
        vec!["verify", "--help"],
        vec!["export", "--help"],
    ] {
        let out = ok(&cmd);
        assert!(out.contains("Usage:"), "{cmd:?}: {out}");
    }
}

#[test]
fn broken_pipe_exits_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    ok(&["generate", "laplace2d", "--n", "400", "-o", p(&m)]);
    let mut child = Command::new(common::bin())
        .args(["export", p(&m), "-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("%%MatrixMarket"));
    // The reader is gone (stdout dropped): the writer must stop without an error or a panic.
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit {:?}, stderr: {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn spmv_and_spmm_commands() {
    use sparsedisk::io::npy::{read_npy, write_npy};
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("lap");
    ok(&["generate", "laplace2d", "--n", "20", "-o", p(&m), "--segment-size", "1K", "--layout", "csc"]);
    // A x with x = ones gives the row sums: 0 inside the grid, 1 on edges, 2 at corners.
    let y = tmp.path().join("y.npy");
    let s: serde_json::Value =
        serde_json::from_str(ok(&["spmv", p(&m), "--x", "ones", "-o", p(&y), "--repeat", "3", "--json"]).trim())
            .unwrap();
    for field in ["seconds", "all_seconds", "nnz", "gflops", "gb_per_s", "peak_rss_bytes"] {
        assert!(s.get(field).is_some_and(|v| !v.is_null()), "spmv --json lacks {field}: {s}");
    }
    assert_eq!(s["all_seconds"].as_array().unwrap().len(), 3);
    let y = read_npy(&y).unwrap();
    assert_eq!((y.rows, y.one_dimensional), (400, true));
    assert_eq!(y.data[0], 2.0);
    assert_eq!(y.data[1], 1.0);
    assert_eq!(y.data[21], 0.0);
    // Transpose of a symmetric matrix: the same.
    let yt = tmp.path().join("yt.npy");
    ok(&["spmv", p(&m), "--x", "random:3", "--transpose", "-o", p(&yt)]);
    let y2 = tmp.path().join("y2.npy");
    ok(&["spmv", p(&m), "--x", "random:3", "-o", p(&y2)]);
    let (a, b) = (read_npy(&yt).unwrap().data, read_npy(&y2).unwrap().data);
    assert!(a.iter().zip(&b).all(|(u, v)| (u - v).abs() < 1e-12));
    // SpMM with a .npy block: column j of Y is A times column j of X.
    let x = tmp.path().join("x.npy");
    let data: Vec<f64> = (0..400 * 3).map(|i| (i % 7) as f64).collect();
    write_npy(&x, &data, 400, Some(3)).unwrap();
    let yy = tmp.path().join("yy.npy");
    ok(&["spmm", p(&m), "--x", p(&x), "-o", p(&yy)]);
    let yy = read_npy(&yy).unwrap();
    assert_eq!((yy.rows, yy.cols), (400, 3));
    let col0: Vec<f64> = (0..400).map(|i| data[i * 3]).collect();
    let x0 = tmp.path().join("x0.npy");
    write_npy(&x0, &col0, 400, None).unwrap();
    let y0 = tmp.path().join("y0.npy");
    ok(&["spmv", p(&m), "--x", p(&x0), "-o", p(&y0)]);
    let y0 = read_npy(&y0).unwrap().data;
    assert!((0..400).all(|i| yy.data[i * 3] == y0[i]));
    // Clear errors: wrong length, wrong shape, not a .npy, missing file.
    let short = tmp.path().join("short.npy");
    write_npy(&short, &[1.0; 5], 5, None).unwrap();
    assert!(fails(&["spmv", p(&m), "--x", p(&short)]).contains("has 5 rows; the matrix needs 400"));
    assert!(fails(&["spmm", p(&m), "--x", p(&short)]).contains("expected a 2-D array"));
    std::fs::write(&short, b"not numpy").unwrap();
    assert!(fails(&["spmv", p(&m), "--x", p(&short)]).contains("not a NumPy"));
    assert!(fails(&["spmv", p(&m), "--x", p(&tmp.path().join("none.npy"))]).contains("none.npy"));
    assert!(fails(&["spmm", p(&m), "--x", "ones"]).contains("how many columns"));
}
