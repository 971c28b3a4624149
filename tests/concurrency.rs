//! Concurrent readers while another process replaces the matrix with `--force`: every reader (threads
//! in this process, streaming products segment by segment with nothing kept mapped ahead; and
//! `sparsedisk verify` processes) sees the old or the new matrix, whole: never a mix, never a missing
//! file. `docs/FORMAT.md` ("Concurrent readers") describe the scheme: readers hold a shared lock on
//! their generation's lock file, and a writer deletes an old generation only when it can lock it
//! exclusively.

mod common;

use common::{ok, p};
use sparsedisk::kernels::Operator;
use sparsedisk::Matrix;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[test]
fn readers_see_whole_generations_while_a_writer_replaces_the_matrix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let d = p(&dir).to_owned();
    // Two matrices of the same shape whose products with ones differ; small segments, so a product
    // maps many segments one after another.
    let version_a = ["generate", "laplace2d", "--n", "60", "-o", &d, "--force", "--segment-size", "8K"];
    let version_b = [
        "generate",
        "banded",
        "--n",
        "3600",
        "--lower",
        "2",
        "--upper",
        "3",
        "-o",
        &d,
        "--force",
        "--segment-size",
        "8K",
    ];
    let mut expected = Vec::new();
    for version in [&version_b[..], &version_a[..]] {
        ok(version);
        let m = Matrix::open(&dir).unwrap();
        let mut y = vec![0.0; 3600];
        sparsedisk::kernels::spmv(&m, 1.0, &[1.0; 3600], 0.0, &mut y).unwrap();
        expected.push(y);
    }
    assert_ne!(expected[0], expected[1]);

    let stop = AtomicBool::new(false);
    let (products, verifies, rewrites) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        // The writer: another process, alternating the two versions.
        s.spawn(|| {
            let start = Instant::now();
            let mut i = 0;
            while start.elapsed() < Duration::from_secs(4) {
                ok(if i % 2 == 0 { &version_b[..] } else { &version_a[..] });
                rewrites.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            stop.store(true, Ordering::Relaxed);
        });
        // Reader threads: open, then stream a product with nothing resident (every segment mapped
        // when its turn comes, long after open).
        for _ in 0..3 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let m = Matrix::open(&dir).unwrap();
                    let op = Operator::new(&m, 0).unwrap();
                    let mut y = vec![0.0; 3600];
                    op.spmv(1.0, &[1.0; 3600], 0.0, &mut y).unwrap_or_else(|e| panic!("a reader failed: {e}"));
                    assert!(y == expected[0] || y == expected[1], "a reader saw a mix of two matrices");
                    products.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // Reader processes: `sparsedisk verify` reads and checks every file of the generation it opened.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let out = Command::new(common::bin()).args(["verify", &d]).output().unwrap();
                assert!(out.status.success(), "verify failed: {}", String::from_utf8_lossy(&out.stderr));
                verifies.fetch_add(1, Ordering::Relaxed);
            }
        });
    });
    let (products, verifies, rewrites) = (products.into_inner(), verifies.into_inner(), rewrites.into_inner());
    assert!(
        rewrites >= 4 && products >= 10 && verifies >= 2,
        "{rewrites} rewrites, {products} products, {verifies} verifies"
    );
    // With every reader gone, the next rewrite removes every old generation.
    ok(&version_a);
    let names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let live = Matrix::open(&dir).unwrap().manifest().generation;
    for name in &names {
        if let Some(rest) = name.strip_prefix("seg_") {
            assert!(rest.starts_with(&format!("{live}_")), "old segment {name} left after the readers finished");
        }
    }
    eprintln!("concurrency: {rewrites} rewrites, {products} streamed products and {verifies} verify runs, all whole");
}

/// Several processes replacing the same matrix at once (`--force`), in rounds: the writer lock lets
/// one write at a time, so every process either publishes a whole matrix or fails at once with a clear
/// "being written by another process" error, and what is published verifies and is one of the
/// writers' matrices, never a mix. (Without the lock, two writers chose the same generation and
/// published a manifest whose files the other had replaced or deleted.)
#[test]
fn concurrent_writers_never_publish_a_mix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let d = p(&dir).to_owned();
    let versions: Vec<Vec<String>> = [
        vec!["generate", "laplace2d", "--n", "700"],
        vec!["generate", "rmat", "--scale", "15", "--edge-factor", "8"],
        vec!["generate", "banded", "--n", "300000", "--lower", "1", "--upper", "1"],
    ]
    .iter()
    .map(|v| {
        v.iter()
            .map(|s| s.to_string())
            .chain(["-o", &d, "--force", "--segment-size", "256K", "--quiet"].map(String::from))
            .collect()
    })
    .collect();
    // What each version's matrix holds, written alone first.
    let mut prints = Vec::new();
    for v in &versions {
        ok(&v.iter().map(String::as_str).collect::<Vec<_>>());
        let m = Matrix::open(&dir).unwrap();
        prints.push((m.shape(), m.nnz()));
    }
    let (mut published, mut refused) = (0, 0);
    for round in 0..12 {
        let children: Vec<_> = (0..3)
            .map(|i| {
                Command::new(common::bin())
                    .args(&versions[(round + i) % versions.len()])
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                published += 1;
            } else {
                assert_eq!(out.status.code(), Some(1), "round {round}: {stderr}");
                assert!(stderr.contains("is being written by another process"), "round {round}: {stderr}");
                refused += 1;
            }
        }
        let m = Matrix::open(&dir).unwrap();
        m.verify().unwrap_or_else(|e| panic!("round {round}: the published matrix does not verify: {e}"));
        assert!(prints.contains(&(m.shape(), m.nnz())), "round {round}: {:?}", (m.shape(), m.nnz()));
    }
    eprintln!("concurrent writers: 12 rounds of 3, {published} published, {refused} refused, every result whole");
    assert!(published >= 12, "every round publishes at least once");
}

/// Debris of a writer that died (a staging area, an interrupted manifest or metadata write) is removed
/// by the next writer; a running process's is left alone.
#[test]
fn the_next_writer_removes_dead_writers_debris() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let d = p(&dir).to_owned();
    ok(&["generate", "laplace2d", "--n", "20", "-o", &d, "--quiet"]);
    // A pid that no longer runs: a child that has exited (and been reaped).
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let live = std::process::id();
    let debris = [
        format!(".manifest.json.tmp-{dead}-0"),
        format!(".zarr.json.tmp-{dead}-3"),
        format!(".staging-{dead}-1"),
        format!(".staging-{dead}-op2"),
    ];
    let kept = [format!(".manifest.json.tmp-{live}-0"), format!(".staging-{live}-5")];
    for name in debris.iter().chain(&kept) {
        if name.starts_with(".staging") {
            std::fs::create_dir(dir.join(name)).unwrap();
            std::fs::write(dir.join(name).join("run-0"), b"sorted run").unwrap();
        } else {
            std::fs::write(dir.join(name), b"{ half a manifest").unwrap();
        }
    }
    // Readers ignore all of it.
    Matrix::open(&dir).unwrap().verify().unwrap();
    ok(&["generate", "laplace2d", "--n", "30", "-o", &d, "--force", "--quiet"]);
    for name in &debris {
        assert!(!dir.join(name).exists(), "{name} was left");
    }
    for name in &kept {
        assert!(dir.join(name).exists(), "{name} (a running process's) was removed");
    }
    assert_eq!(Matrix::open(&dir).unwrap().shape(), (900, 900));
}
