//! Crash safety: `sparsedisk import`, `spgemm`, `transpose` and `add`, each killed with SIGKILL at
//! points spread over its run (driven by a seed), with `--force` over an existing, different matrix.
//! After every kill the output directory must hold exactly the previous matrix or exactly the new one
//! (same shape, same number of entries, every checksum and invariant verified), never a mix or a
//! half-written matrix; and running the command again to completion must succeed over the debris and
//! give the new matrix.
//!
//! `SPARSEDISK_CRASH_KILLS` sets the kill points per operation (default 60: 240 in all).

mod common;

use common::{copy_dir, ok, p, SplitMix};
use sparsedisk::Matrix;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Shape and nnz: what tells the previous matrix from the new one here.
fn fingerprint(dir: &Path) -> Option<((u64, u64), u64)> {
    let m = Matrix::open(dir).ok()?;
    m.verify().unwrap_or_else(|e| panic!("{} opened but does not verify: {e}", dir.display()));
    Some((m.shape(), m.nnz()))
}

/// Runs `args` once to completion; returns its duration.
fn timed(args: &[&str]) -> Duration {
    let t = Instant::now();
    ok(args);
    t.elapsed()
}

/// Kills `args` after `delay` (or lets it finish first).
fn run_and_kill(args: &[&str], delay: Duration) {
    let mut child = Command::new(common::bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sparsedisk");
    let start = Instant::now();
    while start.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let _ = child.kill(); // SIGKILL on Unix
    let _ = child.wait();
}

#[test]
fn killed_commands_leave_the_old_or_the_new_matrix() {
    let kills: u64 = std::env::var("SPARSEDISK_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let tmp = tempfile::tempdir().unwrap();
    let t = |name: &str| tmp.path().join(name);
    // Inputs: a graph as Matrix Market text, and two matrices on disk.
    ok(&["generate", "rmat", "--scale", "14", "--edge-factor", "8", "-o", p(&t("g"))]);
    ok(&["export", p(&t("g")), "-o", p(&t("g.mtx"))]);
    ok(&["generate", "laplace2d", "--n", "200", "-o", p(&t("lap"))]);
    // The "previous" matrix every operation replaces: a different shape from every new one.
    let previous = t("previous");
    ok(&["generate", "laplace2d", "--n", "7", "-o", p(&previous)]);
    let old_print = fingerprint(&previous).unwrap();

    let out = t("out");
    let (g, lap, g_mtx, gt) = (p(&t("g")).to_owned(), p(&t("lap")).to_owned(), p(&t("g.mtx")).to_owned(), t("gt"));
    ok(&["transpose", &g, "-o", p(&gt)]);
    let o = p(&out).to_owned();
    let seg = "--segment-size";
    let operations: Vec<(&str, Vec<&str>)> = vec![
        ("import", vec!["import", &g_mtx, "-o", &o, "--force", "--memory", "192M", seg, "256K"]),
        ("spgemm", vec!["spgemm", &lap, &lap, "-o", &o, "--force", seg, "256K"]),
        ("transpose", vec!["transpose", &g, "-o", &o, "--force", "--memory", "64M", seg, "256K"]),
        ("add", vec!["add", &g, p(&gt), "-o", &o, "--force", seg, "256K"]),
    ];
    let mut rng = SplitMix(2026);
    let (mut old_seen, mut new_seen, mut total) = (0, 0, 0);
    for (name, args) in &operations {
        // The new matrix, and how long making it takes.
        let _ = std::fs::remove_dir_all(&out);
        let duration = timed(args);
        let new_print = fingerprint(&out).unwrap();
        assert_ne!(new_print, old_print);
        for _ in 0..kills {
            let _ = std::fs::remove_dir_all(&out);
            copy_dir(&previous, &out);
            // Kill points spread over the run, a few past its end.
            let delay = duration.mul_f64(rng.below(1100) as f64 / 1000.0);
            run_and_kill(args, delay);
            match fingerprint(&out) {
                Some(print) if print == old_print => old_seen += 1,
                Some(print) if print == new_print => new_seen += 1,
                Some(print) => panic!("{name} killed after {delay:?}: a third matrix {print:?} is visible"),
                None => panic!("{name} killed after {delay:?}: the previous matrix is gone and no new one is whole"),
            }
            total += 1;
        }
        // Completing over the debris of the last kill gives the new matrix.
        ok(args);
        assert_eq!(fingerprint(&out), Some(new_print), "{name}: rerun over debris");
    }
    assert!(old_seen > 0 && new_seen > 0, "kill points did not span the runs: {old_seen} old, {new_seen} new");
    eprintln!("crash: {total} kill points: {old_seen} left the previous matrix, {new_seen} the new one, none a mix");
}
