//! Concurrent readers while another process replaces the matrix with `--force`: every reader (threads
//! in this process, streaming products segment by segment with nothing kept mapped ahead; and
//! `sparsedisk verify` processes) sees the old or the new matrix, whole: never a mix, never a missing
//! file. The format docs ("Concurrent readers") describe the scheme: readers hold a shared lock on
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
                let out = Command::new(env!("CARGO_BIN_EXE_sparsedisk")).args(["verify", &d]).output().unwrap();
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
