//! `sparsedisk import` end to end: formats, options, bad input (line numbers, nothing left behind),
//! `--force`, gzip and standard input, both layouts, and `generate rmat|uniform`.

mod common;

use common::{entries_of, fails, ok, p};
use sparsedisk::Matrix;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/fixtures").join(name).to_str().unwrap().to_string()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap()
}

#[test]
fn matrix_market_imports_with_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m");
    let s = json(&ok(&["import", &fixture("general_real.mtx"), "-o", p(&out), "--json"]));
    assert_eq!((s["rows"].as_u64(), s["cols"].as_u64(), s["nnz"].as_u64()), (Some(4), Some(5), Some(6)));
    assert_eq!(s["value_type"], "float64");
    for field in ["seconds", "triplets_per_s", "mb_per_s", "peak_rss_bytes", "bytes_read", "runs"] {
        assert!(s.get(field).is_some_and(|v| !v.is_null()), "summary lacks {field}: {s}");
    }
    let m = Matrix::open(&out).unwrap();
    m.verify().unwrap();
    let e = entries_of(&m);
    assert_eq!(e.len(), 6);
    assert_eq!(e[0], (0, 0, 1.5));
    assert!(e.contains(&(1, 2, -2000.0)) && e.contains(&(2, 0, 0.0)) && e.contains(&(3, 4, 0.25)));
    assert!(e.iter().any(|&(r, c, v)| (r, c) == (0, 4) && v == f64::INFINITY));

    // The plain summary is one line on stdout.
    let out2 = tmp.path().join("m2");
    let line = ok(&["import", &fixture("general_real.mtx"), "-o", p(&out2)]);
    assert!(line.starts_with("imported ") && line.contains("4 x 5") && line.contains("6 nonzeros"), "{line}");
}

#[test]
fn symmetric_and_pattern_inputs_expand_and_keep_their_type() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p");
    let s = json(&ok(&["import", &fixture("symmetric_pattern.mtx"), "-o", p(&out), "--json"]));
    assert_eq!(s["value_type"], "pattern");
    assert_eq!(s["triplets"], 7);
    let m = Matrix::open(&out).unwrap();
    let e = entries_of(&m);
    for &(r, c, _) in &e {
        assert!(e.iter().any(|&(r2, c2, _)| (r2, c2) == (c, r)), "({r},{c}) has no mirror");
    }
    let out = tmp.path().join("skew");
    let s = json(&ok(&["import", &fixture("skew_integer.mtx"), "-o", p(&out), "--json"]));
    assert_eq!(s["value_type"], "int64");
    let e = entries_of(&Matrix::open(&out).unwrap());
    for &(r, c, v) in &e {
        assert!(e.contains(&(c, r, -v)), "skew mirror of ({r},{c},{v}) missing");
    }
    // --value-type overrides.
    let out = tmp.path().join("f32");
    let s = json(&ok(&["import", &fixture("skew_integer.mtx"), "-o", p(&out), "--json", "--value-type", "f32"]));
    assert_eq!(s["value_type"], "float32");
}

#[test]
fn bad_input_names_file_and_line_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    for (file, line) in [("bad_value.mtx", 5), ("bad_too_many.mtx", 6), ("bad_index.mtx", 4), ("bad_size_line.mtx", 3)]
    {
        let out = tmp.path().join(file);
        let err = fails(&["import", &fixture(file), "-o", p(&out)]);
        assert!(err.contains(&format!("{file}:{line}:")), "{file}: expected line {line} in: {err}");
        assert!(!out.exists(), "{file}: a failed import leaves no output directory");
    }
    let err = fails(&["import", &fixture("bad_complex.mtx"), "-o", p(&tmp.path().join("c"))]);
    assert!(err.contains("complex"), "{err}");
    let err = fails(&["import", p(&tmp.path().join("missing.mtx")), "-o", p(&tmp.path().join("x"))]);
    assert!(err.contains("missing.mtx"), "{err}");
}

#[test]
fn existing_output_is_refused_before_reading_and_replaced_with_force() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m");
    ok(&["import", &fixture("general_real.mtx"), "-o", p(&out)]);
    // Even a bad input is not read: the refusal comes first.
    let err = fails(&["import", &fixture("bad_value.mtx"), "-o", p(&out)]);
    assert!(err.contains("already holds a matrix") && err.contains("--force"), "{err}");
    // A failed --force import leaves the old matrix intact and readable.
    let err = fails(&["import", &fixture("bad_value.mtx"), "-o", p(&out), "--force"]);
    assert!(err.contains("bad_value.mtx:5:"), "{err}");
    let m = Matrix::open(&out).unwrap();
    m.verify().unwrap();
    assert_eq!(m.shape(), (4, 5));
    for entry in std::fs::read_dir(&out).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with(".staging"), "staging left behind: {name}");
    }
    ok(&["import", &fixture("symmetric_pattern.mtx"), "-o", p(&out), "--force"]);
    assert_eq!(Matrix::open(&out).unwrap().value_type(), sparsedisk::ValueType::Pattern);
}

#[test]
fn edge_lists_csv_gzip_and_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    // Edge list: 0-based, shape from the max id, symmetrize.
    let out = tmp.path().join("e");
    let s = json(&ok(&["import", &fixture("edges.txt"), "-o", p(&out), "--json", "--symmetrize"]));
    assert_eq!((s["rows"].as_u64(), s["value_type"].as_str()), (Some(3), Some("pattern")));
    let e = entries_of(&Matrix::open(&out).unwrap());
    assert_eq!(
        e.iter().map(|&(r, c, _)| (r, c)).collect::<Vec<_>>(),
        vec![(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]
    );
    // --shape pads; an index beyond it is an error.
    let out = tmp.path().join("e2");
    let s = json(&ok(&["import", &fixture("edges.txt"), "-o", p(&out), "--json", "--shape", "10,12"]));
    assert_eq!((s["rows"].as_u64(), s["cols"].as_u64()), (Some(10), Some(12)));
    fails(&["import", &fixture("edges.txt"), "-o", p(&tmp.path().join("e3")), "--shape", "2,2"]);

    // CSV with a header and named columns.
    let out = tmp.path().join("csv");
    let s = json(&ok(&["import", &fixture("with_header.csv"), "-o", p(&out), "--json", "--columns", "dst,src,weight"]));
    assert_eq!(s["nnz"], 3);
    let e = entries_of(&Matrix::open(&out).unwrap());
    assert_eq!(e, vec![(0, 2, -1.0), (1, 0, 0.5), (2, 1, 1.5)]);

    // gzip and standard input give the same matrix as the plain file.
    let text = std::fs::read(fixture("general_real.mtx")).unwrap();
    let gz = tmp.path().join("g.mtx.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::default());
    enc.write_all(&text).unwrap();
    enc.finish().unwrap();
    let from_gz = tmp.path().join("gz");
    ok(&["import", p(&gz), "-o", p(&from_gz)]);
    let from_stdin: PathBuf = tmp.path().join("stdin");
    let mut child = Command::new(common::bin())
        .args(["import", "-", "-o", p(&from_stdin), "--format", "mtx"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&text).unwrap();
    assert!(child.wait().unwrap().success());
    let plain = tmp.path().join("plain");
    ok(&["import", &fixture("general_real.mtx"), "-o", p(&plain)]);
    let want = entries_of(&Matrix::open(&plain).unwrap());
    assert_eq!(entries_of(&Matrix::open(&from_gz).unwrap()), want);
    assert_eq!(entries_of(&Matrix::open(&from_stdin).unwrap()), want);
}

#[test]
fn duplicate_policies_drop_zeros_and_both_layouts() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("dups.mtx");
    std::fs::write(
        &input,
        "%%MatrixMarket matrix coordinate real general\n3 3 6\n1 1 1\n2 2 5\n1 1 2\n3 1 -1\n1 1 4\n3 1 1\n",
    )
    .unwrap();
    let mut got = Vec::new();
    for policy in ["sum", "first", "last", "min", "max"] {
        let out = tmp.path().join(policy);
        ok(&["import", p(&input), "-o", p(&out), "--duplicates", policy]);
        got.push(entries_of(&Matrix::open(&out).unwrap()));
    }
    assert_eq!(got[0], vec![(0, 0, 7.0), (1, 1, 5.0), (2, 0, 0.0)]);
    assert_eq!(got[1], vec![(0, 0, 1.0), (1, 1, 5.0), (2, 0, -1.0)]);
    assert_eq!(got[2], vec![(0, 0, 4.0), (1, 1, 5.0), (2, 0, 1.0)]);
    assert_eq!(got[3], vec![(0, 0, 1.0), (1, 1, 5.0), (2, 0, -1.0)]);
    assert_eq!(got[4], vec![(0, 0, 4.0), (1, 1, 5.0), (2, 0, 1.0)]);
    let out = tmp.path().join("dz");
    ok(&["import", p(&input), "-o", p(&out), "--drop-zeros"]);
    assert_eq!(entries_of(&Matrix::open(&out).unwrap()), vec![(0, 0, 7.0), (1, 1, 5.0)]);
    let err = fails(&["import", p(&input), "-o", p(&tmp.path().join("err")), "--duplicates", "error"]);
    assert!(err.contains("(0, 0)") && err.contains("more than once"), "{err}");
    assert!(!tmp.path().join("err").exists());

    let out = tmp.path().join("both");
    let s = json(&ok(&["import", p(&input), "-o", p(&out), "--layout", "both", "--json"]));
    assert_eq!(s["outputs"].as_array().unwrap().len(), 2);
    let csr = Matrix::open(out.join("csr")).unwrap();
    let csc = Matrix::open(out.join("csc")).unwrap();
    assert_eq!((csr.layout(), csc.layout()), (sparsedisk::Layout::Csr, sparsedisk::Layout::Csc));
    csc.verify().unwrap();
    assert_eq!(entries_of(&csr), entries_of(&csc));
}

#[test]
fn random_generators_build_through_the_builder() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("rmat");
    let s =
        json(&ok(&["generate", "rmat", "--scale", "10", "--edge-factor", "8", "--seed", "3", "-o", p(&r), "--json"]));
    assert_eq!(s["rows"], 1024);
    let m = Matrix::open(&r).unwrap();
    m.verify().unwrap();
    assert!(m.nnz() > 4000 && m.nnz() <= 8192, "duplicates are summed: {}", m.nnz());
    // Deterministic: same seed, same matrix, whatever the thread count.
    let r2 = tmp.path().join("rmat2");
    ok(&["--threads", "1", "generate", "rmat", "--scale", "10", "--edge-factor", "8", "--seed", "3", "-o", p(&r2)]);
    assert_eq!(entries_of(&m), entries_of(&Matrix::open(&r2).unwrap()));
    let u = tmp.path().join("u");
    ok(&[
        "generate",
        "uniform",
        "--rows",
        "100",
        "--cols",
        "50",
        "--nnz-per-row",
        "3",
        "-o",
        p(&u),
        "--value-type",
        "pattern",
    ]);
    let m = Matrix::open(&u).unwrap();
    assert_eq!(m.shape(), (100, 50));
    assert!(m.nnz() <= 300 && m.nnz() > 250);
}

#[test]
fn review_regressions_both_layouts_force_cleanup_and_huge_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let small = tmp.path().join("small.mtx");
    std::fs::write(&small, "%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1\n2 2 2\n").unwrap();
    let dup = tmp.path().join("dup.mtx");
    std::fs::write(&dup, "%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1\n1 1 2\n").unwrap();
    // --layout both can be replaced with --force, and is refused without it.
    let both = tmp.path().join("both");
    ok(&["import", p(&small), "-o", p(&both), "--layout", "both"]);
    assert!(fails(&["import", p(&small), "-o", p(&both), "--layout", "both"]).contains("already holds a matrix"));
    ok(&["import", p(&small), "-o", p(&both), "--layout", "both", "--force"]);
    Matrix::open(both.join("csc")).unwrap().verify().unwrap();
    // A failed --layout both leaves no directory behind.
    let gone = tmp.path().join("gone");
    fails(&["import", p(&dup), "-o", p(&gone), "--layout", "both", "--duplicates", "error"]);
    assert!(!gone.exists());
    // A failed import into an existing empty directory leaves it empty.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    fails(&["import", p(&dup), "-o", p(&empty), "--duplicates", "error"]);
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "nothing left in an existing directory");
    // One huge id would need exabytes of row pointers: refused at once, nothing written.
    let ids = tmp.path().join("ids.txt");
    std::fs::write(&ids, "1 2\n9223372036854775806 0\n").unwrap();
    let out = tmp.path().join("ids");
    let err = fails(&["import", p(&ids), "-o", p(&out)]);
    assert!(err.contains("row pointers alone") && err.contains("free"), "{err}");
    assert!(!out.exists());
    // A budget too small to work in is a clear error.
    let err = fails(&["import", p(&small), "-o", p(&tmp.path().join("tiny")), "--memory", "32M"]);
    assert!(err.contains("too small"), "{err}");
}

/// The in-memory path (one chunk, no run) and the out-of-core path (the smallest budget: runs spilled,
/// blocks that do not fit spill the chunk early) give byte-identical matrices under every duplicate
/// policy, in both layouts, for a symmetric file and an edge list (shape inferred as it grows).
#[test]
fn in_memory_and_spilled_imports_are_identical() {
    let tmp = tempfile::tempdir().unwrap();
    // 1.2 M entries (more than the smallest budget's chunk) over 1500 x 1700 positions: many duplicates.
    let (rows, cols, n) = (1500u64, 1700u64, 1_200_000u64);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mtx = tmp.path().join("dups.mtx");
    let edges = tmp.path().join("dups.txt");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&mtx).unwrap());
        let mut g = std::io::BufWriter::new(std::fs::File::create(&edges).unwrap());
        writeln!(f, "%%MatrixMarket matrix coordinate integer general\n{rows} {cols} {n}").unwrap();
        for _ in 0..n {
            let r = next();
            let (i, j, v) = (r % rows, (r >> 20) % cols, (r >> 40) as i64 % 7 - 3);
            writeln!(f, "{} {} {v}", i + 1, j + 1).unwrap();
            writeln!(g, "{i} {j} {v}").unwrap();
        }
    }
    let manifest = |dir: &Path| -> serde_json::Value {
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        m["segments"].clone()
    };
    // The builder's minimum, 64 MiB, beside one parse thread of 8 MiB blocks (56 + 8 MiB).
    let smallest = "128M";
    for (input, policy, layout) in [
        (&mtx, "sum", "csr"),
        (&mtx, "first", "csc"),
        (&mtx, "last", "csr"),
        (&mtx, "min", "csc"),
        (&edges, "max", "csr"),
        (&edges, "last", "csc"),
    ] {
        let big = tmp.path().join(format!("big-{policy}-{layout}"));
        let small = tmp.path().join(format!("small-{policy}-{layout}"));
        let common = ["--duplicates", policy, "--layout", layout, "--json", "--threads", "2"];
        let a = json(&ok(&[&["import", p(input), "-o", p(&big)][..], &common].concat()));
        let b = json(&ok(&[&["import", p(input), "-o", p(&small), "--memory", smallest][..], &common].concat()));
        assert_eq!(a["runs"], 0, "{a}");
        assert!(b["runs"].as_u64().unwrap() >= 2, "{b}");
        assert_eq!(a["duplicates_combined"], b["duplicates_combined"]);
        assert!(a["duplicates_combined"].as_u64().unwrap() > 0);
        assert_eq!(manifest(&big), manifest(&small), "{policy} {layout} {}", input.display());
        Matrix::open(&small).unwrap().verify().unwrap();
    }
}

/// Absurd headers: a declared 10^18 x 10^18 matrix, a declared nnz of 10^15, an array of more than
/// 2^64 values, a dimension above 2^63. Each gives one clear line and exit code 1 (an allocation sized
/// by the header would abort the process instead), leaves nothing behind, and the shape is refused
/// before the data is read (the bad line after the header is never reached).
#[test]
fn absurd_headers_get_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let banner = "%%MatrixMarket matrix coordinate real general\n";
    let cases = [
        (format!("{banner}1000000000000000000 1000000000000000000 1\n1 1 1\nbad line\n"), "row pointers alone"),
        (format!("{banner}1000000000000000000 1000000000000000000 1000000000000000\nbad line\n"), "row pointers alone"),
        (format!("{banner}10 10 1000000000000000\n1 1 1\n"), "declares 1000000000000000"),
        (
            "%%MatrixMarket matrix array real general\n1000000000000000000 1000000000000000000\n1\n".to_string(),
            "more than 2^64",
        ),
        (format!("{banner}10000000000000000000 10 1\nbad line\n"), "exceeds the largest supported dimension"),
    ];
    for (k, (text, expected)) in cases.iter().enumerate() {
        let input = tmp.path().join(format!("absurd{k}.mtx"));
        std::fs::write(&input, text).unwrap();
        let out = tmp.path().join(format!("out{k}"));
        let err = fails(&["import", p(&input), "-o", p(&out)]);
        assert!(err.contains(expected) && !err.contains("bad line"), "case {k}: {err}");
        assert!(!out.exists(), "case {k}: left {}", out.display());
    }
}
