//! What a newcomer meets in the first hour: outputs that never clobber a file or a matrix, edge lists
//! that import as graphs, and messages and options that say what is true.

mod common;

use common::{fails, ok, p, sparsedisk};
use std::path::Path;

/// A small square graph and matrix: `m` (CSR, several segments).
fn small_matrix(dir: &Path) -> std::path::PathBuf {
    let m = dir.join("m");
    ok(&["generate", "laplace2d", "--n", "12", "-o", p(&m), "--segment-size", "1K"]);
    m
}

/// Every file under `dir` with its bytes, sorted: to show nothing inside changed.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

/// The commands that write a vector, each with `-o` left for the caller to append: the products and
/// CG on the Laplacian `m`, the graph algorithms on a graph made next to it.
fn vector_commands(m: &Path) -> Vec<Vec<String>> {
    let g = m.with_file_name("graph");
    if !g.exists() {
        ok(&["generate", "rmat", "--scale", "6", "-o", p(&g), "--memory", "256M"]);
    }
    let (m, g) = (p(m).to_string(), p(&g).to_string());
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    vec![
        s(&["spmv", &m]),
        s(&["spmv", &m, "--transpose"]),
        s(&["spmm", &m, "--x", "ones:3"]),
        s(&["cg", &m, "--tol", "1e-6"]),
        s(&["pagerank", &g]),
        s(&["bfs", &g, "--source", "0"]),
        s(&["components", &g]),
    ]
}

fn run(args: &[String]) -> std::process::Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    sparsedisk(&refs)
}

#[test]
fn vector_outputs_refuse_an_existing_file_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let m = small_matrix(tmp.path());
    let victim = tmp.path().join("victim.txt");
    for cmd in vector_commands(&m) {
        std::fs::write(&victim, b"precious").unwrap();
        let mut args = cmd.clone();
        args.extend(["-o".to_string(), p(&victim).to_string()]);
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd:?} over an existing file: {err}");
        assert!(err.contains("exists; pass --force to replace it"), "{cmd:?}: {err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious", "{cmd:?} changed the file");

        args.push("--force".to_string());
        let out = run(&args);
        assert!(out.status.success(), "{cmd:?} --force: {}", String::from_utf8_lossy(&out.stderr));
        let written = std::fs::read(&victim).unwrap();
        assert!(written.starts_with(b"\x93NUMPY"), "{cmd:?} --force wrote a .npy file");
    }
    // export follows the same rule.
    std::fs::write(&victim, b"precious").unwrap();
    let err = fails(&["export", p(&m), "-o", p(&victim)]);
    assert!(err.contains("exists; pass --force"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    ok(&["export", p(&m), "-o", p(&victim), "--force"]);
    assert!(std::fs::read(&victim).unwrap().starts_with(b"%%MatrixMarket"));
}

#[test]
fn no_command_writes_inside_a_matrix_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let m = small_matrix(tmp.path());
    let segment = std::fs::read_dir(&m)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|path| path.file_name().unwrap().to_string_lossy().starts_with("seg_"))
        .unwrap();
    let before = snapshot(&m);
    // Symbolic links and `..` do not get around the rule.
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&m, &link).unwrap();
    let targets = [
        m.join("manifest.json"),
        m.join("zarr.json"),
        m.join("y.npy"),
        segment.join("zarr.json"),
        segment.join("new.npy"),
        m.clone(),
        link.join("manifest.json"),
        tmp.path().join("elsewhere/../m/manifest.json"),
    ];
    for target in &targets {
        for cmd in vector_commands(&m) {
            for force in [false, true] {
                let mut args = cmd.clone();
                args.extend(["-o".to_string(), p(target).to_string()]);
                if force {
                    args.push("--force".to_string());
                }
                let out = run(&args);
                let err = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
                assert!(err.contains("inside the matrix directory"), "{args:?}: {err}");
            }
        }
        let err = fails(&["export", p(&m), "-o", p(target), "--force"]);
        assert!(err.contains("inside the matrix directory"), "{err}");
    }
    // Writers of whole matrices do not nest one inside another.
    let err = fails(&["generate", "laplace2d", "--n", "3", "-o", p(&m.join("inner"))]);
    assert!(err.contains("inside the matrix directory"), "{err}");
    let err = fails(&["generate", "laplace2d", "--n", "3", "-o", p(&segment.join("inner")), "--force"]);
    assert!(err.contains("inside the matrix directory"), "{err}");
    let err = fails(&["import", "datasets/fixtures/general_real.mtx", "-o", p(&m.join("inner"))]);
    assert!(err.contains("inside the matrix directory"), "{err}");

    assert_eq!(snapshot(&m), before, "the matrix directory is unchanged");
    assert!(ok(&["verify", p(&m)]).starts_with("ok:"));
    // Next to the matrix is fine.
    ok(&["spmv", p(&m), "-o", p(&tmp.path().join("y.npy"))]);
}

#[test]
fn edge_lists_import_as_square_graphs() {
    let tmp = tempfile::tempdir().unwrap();
    // Largest source 3, largest target 5: a graph of 6 vertices.
    let edges = tmp.path().join("g.txt");
    std::fs::write(&edges, "0 1\n1 2\n3 5\n2 0\n").unwrap();
    let g = tmp.path().join("g");
    let out = ok(&["import", p(&edges), "-o", p(&g), "--json"]);
    let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((summary["rows"].as_u64(), summary["cols"].as_u64()), (Some(6), Some(6)), "{summary}");
    ok(&["pagerank", p(&g), "-o", p(&tmp.path().join("r.npy"))]);

    // --rectangular sizes the sides separately; the graph algorithms then say how to fix it.
    let rect = tmp.path().join("rect");
    ok(&["import", p(&edges), "-o", p(&rect), "--rectangular"]);
    let info: serde_json::Value = serde_json::from_str(ok(&["info", p(&rect), "--json"]).trim()).unwrap();
    assert_eq!((info["rows"].as_u64(), info["cols"].as_u64()), (Some(4), Some(6)));
    for cmd in [&["pagerank"][..], &["bfs", "--source", "0"], &["components"]] {
        let mut args = cmd.to_vec();
        let out_file = tmp.path().join(format!("{}.npy", cmd[0]));
        args.extend([p(&rect), "-o", p(&out_file)]);
        let err = fails(&args);
        assert!(err.contains("is 4 x 6") && err.contains("--square") && err.contains("--shape 6,6"), "{err}");
        assert!(!out_file.exists());
    }

    // CSV keeps separate sides unless asked; --square makes a graph of it.
    let csv = tmp.path().join("e.csv");
    std::fs::write(&csv, "src,dst\n0,1\n1,4\n").unwrap();
    let c = tmp.path().join("c");
    ok(&["import", p(&csv), "-o", p(&c)]);
    let info: serde_json::Value = serde_json::from_str(ok(&["info", p(&c), "--json"]).trim()).unwrap();
    assert_eq!((info["rows"].as_u64(), info["cols"].as_u64()), (Some(2), Some(5)));
    let c2 = tmp.path().join("c2");
    ok(&["import", p(&csv), "-o", p(&c2), "--square"]);
    let info: serde_json::Value = serde_json::from_str(ok(&["info", p(&c2), "--json"]).trim()).unwrap();
    assert_eq!((info["rows"].as_u64(), info["cols"].as_u64()), (Some(5), Some(5)));
    // A given shape wins, and may not be combined with --square.
    let c3 = tmp.path().join("c3");
    ok(&["import", p(&edges), "-o", p(&c3), "--shape", "7,9"]);
    let info: serde_json::Value = serde_json::from_str(ok(&["info", p(&c3), "--json"]).trim()).unwrap();
    assert_eq!((info["rows"].as_u64(), info["cols"].as_u64()), (Some(7), Some(9)));
    let out = sparsedisk(&["import", p(&edges), "-o", p(&tmp.path().join("c4")), "--shape", "7,7", "--square"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_directory_that_is_not_a_matrix_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let both = tmp.path().join("both");
    ok(&["import", "datasets/fixtures/general_real.mtx", "-o", p(&both), "--layout", "both"]);
    let err = fails(&["info", p(&both)]);
    assert!(err.contains("is not a sparsedisk matrix"), "{err}");
    assert!(err.contains(&format!("{}/csr", both.display())) && err.contains("csc"), "{err}");
    assert!(!err.contains("corrupt"), "{err}");
    ok(&["info", p(&both.join("csc"))]);

    let plain = tmp.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let err = fails(&["spmv", p(&plain)]);
    assert!(err.contains("is not a sparsedisk matrix: it has no manifest.json"), "{err}");
    let file = tmp.path().join("file.txt");
    std::fs::write(&file, "x").unwrap();
    let err = fails(&["verify", p(&file)]);
    assert!(err.contains("is not a sparsedisk matrix: it is a file"), "{err}");
}

#[test]
fn usage_errors_exit_2_and_help_says_what_is_true() {
    let tmp = tempfile::tempdir().unwrap();
    let m = small_matrix(tmp.path());
    for args in [
        &["--threads", "0", "info", p(&m)][..],
        &["spmv", p(&m), "--repeat", "0"],
        &["spmm", p(&m), "--x", "ones:2", "--repeat", "0"],
        &["generate", "laplace2d", "--n", "3", "-o", p(&tmp.path().join("x")), "--dense-threshold", "0"],
        &["generate", "laplace2d", "--n", "3", "-o", p(&tmp.path().join("x")), "--dense-threshold", "1.5"],
    ] {
        let out = sparsedisk(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // --dense-threshold 1 stores only full blocks (as the library defines it), not "off".
    let full = tmp.path().join("full");
    ok(&["generate", "blockdiag", "--n", "256", "--block", "64", "-o", p(&full), "--dense-threshold", "1"]);
    let info: serde_json::Value = serde_json::from_str(ok(&["info", p(&full), "--json"]).trim()).unwrap();
    assert_eq!(info["dense_blocks"], 4, "{info}");
    let off = tmp.path().join("off");
    ok(&["generate", "blockdiag", "--n", "256", "--block", "64", "-o", p(&off), "--dense-threshold", "off"]);
    let info: serde_json::Value = serde_json::from_str(ok(&["info", p(&off), "--json"]).trim()).unwrap();
    assert_eq!(info["dense_blocks"], 0, "{info}");

    let help = |args: &[&str]| ok(args);
    let pagerank = help(&["pagerank", "--help"]);
    assert!(pagerank.contains("[default: 1e-10]"), "tolerances print as written: {pagerank}");
    assert!(help(&["cg", "--help"]).contains("[default: 1e-8]"));
    for cmd in ["spmv", "spmm", "cg", "pagerank", "bfs", "components", "export"] {
        assert!(help(&[cmd, "--help"]).contains("--force"), "{cmd} --help lists --force");
    }
    let spmv = help(&["spmv", "--help"]);
    assert!(spmv.contains("float32") && spmv.contains("int64"), "{spmv}");
    let threshold = help(&["generate", "laplace2d", "--help"]);
    assert!(!threshold.contains("cargo bench") && threshold.contains("(0 < FRACTION <="), "{threshold}");
    let top = help(&["--help"]);
    assert!(top.contains("R-MAT") && top.contains("CG") && top.contains("PageRank"), "{top}");

    // Errors speak the command line's language.
    let err = fails(&["generate", "laplace2d", "--n", "3", "-o", p(&m)]);
    assert!(err.contains("pass --force to replace it") && !err.contains("WriterOptions"), "{err}");
}

#[test]
fn export_and_generate_summaries_say_what_happened() {
    let tmp = tempfile::tempdir().unwrap();
    let m = small_matrix(tmp.path());
    let mtx = tmp.path().join("m.mtx");
    let out = ok(&["export", p(&m), "-o", p(&mtx)]);
    assert!(out.starts_with("exported ") && out.contains("144 x 144") && out.contains("entries"), "{out}");
    // To standard output, the matrix is the whole output.
    let text = ok(&["export", p(&m), "-o", "-"]);
    assert!(text.starts_with("%%MatrixMarket") && !text.contains("exported"));

    let g = tmp.path().join("g");
    let out = sparsedisk(&["generate", "rmat", "--scale", "10", "-o", p(&g), "--memory", "256M"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("publish") && !err.contains(", write 0.00 s"), "{err}");
}
