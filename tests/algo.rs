//! PageRank, BFS, connected components and CG against in-memory reference implementations written
//! here from their definitions: random graphs of every shape (empty rows, self loops, isolated
//! vertices, dangling vertices, negative and zero weights), both layouts, segments of a few bytes,
//! resident budgets from nothing to everything, 1 and 2 threads; then bad input, corrupt files, and
//! the commands end to end.

mod common;

use common::{fails, ok, p, write, SplitMix, Triplets};
use proptest::prelude::*;
use sparsedisk::algo::{bfs, cg, components, pagerank, CgOptions, PagerankOptions, Preconditioner};
use sparsedisk::{Error, Layout, Matrix};
use std::collections::{BTreeMap, VecDeque};

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

/// Random square graphs: `n` from 1 to `max_n - 1`, up to `max_edges` edges with weights in 1..=4
/// (`weighted`) or -3..=3.
fn graphs(max_n: u64, max_edges: usize, positive: bool) -> impl Strategy<Value = Triplets> {
    (1..max_n).prop_flat_map(move |n| {
        let w = if positive { 1i64..=4 } else { -3i64..=3 };
        prop::collection::vec((0..n, 0..n, w), 0..=max_edges).prop_map(move |raw| {
            let map: BTreeMap<(u64, u64), i64> = raw.into_iter().map(|(r, c, v)| ((r, c), v)).collect();
            Triplets { shape: (n, n), entries: map.into_iter().map(|((r, c), v)| (r, c, v)).collect() }
        })
    })
}

/// PageRank exactly as `anchors.py pagerank` defines it, on dense rows.
fn pagerank_reference(t: &Triplets, damping: f64, tol: f64, max_iter: usize) -> (Vec<f64>, usize) {
    let n = t.shape.0 as usize;
    let mut out = vec![0.0; n];
    for &(r, _, v) in &t.entries {
        out[r as usize] += v as f64;
    }
    let mut rank = vec![1.0 / n as f64; n];
    for it in 1..=max_iter {
        let mut next = vec![0.0; n];
        for &(r, c, v) in &t.entries {
            if out[r as usize] != 0.0 {
                next[c as usize] += v as f64 * rank[r as usize] / out[r as usize];
            }
        }
        let dangling: f64 = (0..n).filter(|&i| out[i] == 0.0).map(|i| rank[i]).sum();
        let mut change = 0.0;
        for i in 0..n {
            let r = damping * (next[i] + dangling / n as f64) + (1.0 - damping) / n as f64;
            change += (r - rank[i]).abs();
            rank[i] = r;
        }
        if change < tol {
            return (rank, it);
        }
    }
    (rank, max_iter)
}

/// Hop distances by a queue over adjacency lists.
fn bfs_reference(t: &Triplets, source: u64) -> Vec<i64> {
    let n = t.shape.0 as usize;
    let mut adj = vec![Vec::new(); n];
    for &(r, c, _) in &t.entries {
        adj[r as usize].push(c as usize);
    }
    let mut level = vec![-1i64; n];
    level[source as usize] = 0;
    let mut queue = VecDeque::from([source as usize]);
    while let Some(v) = queue.pop_front() {
        for &w in &adj[v] {
            if level[w] < 0 {
                level[w] = level[v] + 1;
                queue.push_back(w);
            }
        }
    }
    level
}

/// Weak components by flood fill over undirected adjacency, labelled by smallest member.
fn components_reference(t: &Triplets) -> Vec<u64> {
    let n = t.shape.0 as usize;
    let mut adj = vec![Vec::new(); n];
    for &(r, c, _) in &t.entries {
        adj[r as usize].push(c as usize);
        adj[c as usize].push(r as usize);
    }
    let mut label = vec![u64::MAX; n];
    for s in 0..n {
        if label[s] != u64::MAX {
            continue;
        }
        label[s] = s as u64;
        let mut stack = vec![s];
        while let Some(v) = stack.pop() {
            for &w in &adj[v] {
                if label[w] == u64::MAX {
                    label[w] = s as u64;
                    stack.push(w);
                }
            }
        }
    }
    label
}

fn layout_of(csc: bool) -> Layout {
    if csc {
        Layout::Csc
    } else {
        Layout::Csr
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn graph_algorithms_equal_the_references(
        t in graphs(40, 120, true),
        csc in any::<bool>(),
        pattern in any::<bool>(),
        segment_bytes in prop_oneof![1u64..64, Just(1u64 << 20)],
        resident in prop_oneof![Just(0u64), Just(u64::MAX), 0u64..2048],
        threads in 1usize..=2,
        source_pick in any::<u64>(),
    ) {
        // Split segments of a few entries across threads too, so the parallel paths run.
        sparsedisk::kernels::set_min_task_entries(1);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("g");
        let m = if pattern {
            let t1 = Triplets { shape: t.shape, entries: t.entries.iter().map(|&(r, c, _)| (r, c, 1)).collect() };
            write::<()>(&t1, &dir, layout_of(csc), segment_bytes, true).unwrap()
        } else {
            write::<f64>(&t, &dir, layout_of(csc), segment_bytes, true).unwrap()
        };
        let t = if pattern {
            Triplets { shape: t.shape, entries: t.entries.iter().map(|&(r, c, _)| (r, c, 1)).collect() }
        } else {
            t
        };
        let n = t.shape.0;
        pool(threads).install(|| {
            let options = PagerankOptions { tol: 1e-13, resident_bytes: Some(resident), ..PagerankOptions::default() };
            let got = pagerank(&m, &options, &mut |_| {}).unwrap();
            let (want, iterations) = pagerank_reference(&t, 0.85, 1e-13, 1000);
            let l1: f64 = got.ranks.iter().zip(&want).map(|(a, b)| (a - b).abs()).sum();
            prop_assert!(l1 < 1e-12, "PageRank L1 distance {l1}");
            prop_assert!(got.iterations.abs_diff(iterations) <= 1, "{} vs {iterations} iterations", got.iterations);
            let total: f64 = got.ranks.iter().sum();
            prop_assert!((total - 1.0).abs() < 1e-12, "ranks sum to {total}");

            let source = source_pick % n;
            let levels = bfs(&m, source, Some(resident), &mut |_| {}).unwrap();
            let want = bfs_reference(&t, source);
            prop_assert_eq!(&levels.levels, &want);
            prop_assert_eq!(levels.reached, want.iter().filter(|&&l| l >= 0).count() as u64);
            prop_assert_eq!(levels.depth as i64, *want.iter().max().unwrap());

            let comps = components(&m, Some(resident), &mut |_| {}).unwrap();
            let want = components_reference(&t);
            prop_assert_eq!(&comps.labels, &want);
            prop_assert_eq!(comps.count, want.iter().enumerate().filter(|&(v, &l)| v as u64 == l).count() as u64);
            Ok(())
        })?;
    }

    #[test]
    fn cg_solves_spd_systems(
        n in 1usize..30,
        fill in prop::collection::vec((0usize..30, 0usize..30, -3i64..=3), 0..80),
        csc in any::<bool>(),
        jacobi in any::<bool>(),
        segment_bytes in prop_oneof![1u64..64, Just(1u64 << 20)],
        threads in 1usize..=2,
        seed in any::<u64>(),
    ) {
        sparsedisk::kernels::set_min_task_entries(1);
        // A = B + B^T + (row sums of |B + B^T| + 1) I: symmetric and strictly diagonally dominant
        // with a positive diagonal, hence positive definite.
        let mut dense = vec![vec![0i64; n]; n];
        for (r, c, v) in fill {
            let (r, c) = (r % n, c % n);
            dense[r][c] += v;
            dense[c][r] += v;
        }
        for (i, row) in dense.iter_mut().enumerate() {
            let off: i64 = row.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, v)| v.abs()).sum();
            row[i] = off + 1 + row[i].abs();
        }
        let entries: Vec<(u64, u64, i64)> = (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .filter(|&(i, j)| dense[i][j] != 0)
            .map(|(i, j)| (i as u64, j as u64, dense[i][j]))
            .collect();
        let t = Triplets { shape: (n as u64, n as u64), entries };
        let tmp = tempfile::tempdir().unwrap();
        let m = write::<f64>(&t, &tmp.path().join("a"), layout_of(csc), segment_bytes, true).unwrap();
        let mut rng = SplitMix(seed);
        let b: Vec<f64> = (0..n).map(|_| rng.below(2001) as f64 / 1000.0 - 1.0).collect();
        let options = CgOptions {
            tol: 1e-10,
            preconditioner: if jacobi { Preconditioner::Jacobi } else { Preconditioner::None },
            ..CgOptions::default()
        };
        let got = pool(threads).install(|| cg(&m, &b, &options, &mut |_| {})).unwrap();
        prop_assert!(got.converged);
        // The true residual, recomputed here in exact-ish arithmetic.
        let b_norm = b.iter().map(|v| v * v).sum::<f64>().sqrt();
        let res: f64 = (0..n)
            .map(|i| {
                let ax: f64 = (0..n).map(|j| dense[i][j] as f64 * got.x[j]).sum();
                (b[i] - ax).powi(2)
            })
            .sum::<f64>()
            .sqrt();
        if b_norm > 0.0 {
            prop_assert!(res / b_norm <= 1e-9, "true residual {} (reported {})", res / b_norm, got.residual);
            prop_assert!((res / b_norm - got.residual).abs() <= 1e-12 + 1e-6 * got.residual);
        } else {
            prop_assert!(got.x.iter().all(|&v| v == 0.0));
        }
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let rect = Triplets { shape: (3, 4), entries: vec![(0, 1, 1), (2, 3, 2)] };
    let m = write::<f64>(&rect, &tmp.path().join("rect"), Layout::Csr, 1 << 20, true).unwrap();
    let msg = |e: Error| e.to_string();
    assert!(msg(pagerank(&m, &PagerankOptions::default(), &mut |_| {}).unwrap_err()).contains("square"));
    assert!(msg(bfs(&m, 0, None, &mut |_| {}).unwrap_err()).contains("square"));
    assert!(msg(components(&m, None, &mut |_| {}).unwrap_err()).contains("square"));
    assert!(msg(cg(&m, &[1.0; 3], &CgOptions::default(), &mut |_| {}).unwrap_err()).contains("square"));

    let sq = Triplets { shape: (3, 3), entries: vec![(0, 0, -2), (1, 1, -2), (2, 2, -2), (0, 1, 1), (1, 0, 1)] };
    let m = write::<f64>(&sq, &tmp.path().join("neg"), Layout::Csr, 1 << 20, true).unwrap();
    assert!(msg(bfs(&m, 3, None, &mut |_| {}).unwrap_err()).contains("outside"));
    let bad_damping = PagerankOptions { damping: 1.5, ..PagerankOptions::default() };
    assert!(msg(pagerank(&m, &bad_damping, &mut |_| {}).unwrap_err()).contains("damping"));
    assert!(msg(cg(&m, &[1.0; 2], &CgOptions::default(), &mut |_| {}).unwrap_err()).contains("b has 2"));
    // Negative definite: CG breaks down at once; Jacobi refuses the negative diagonal.
    let e = msg(cg(&m, &[1.0; 3], &CgOptions::default(), &mut |_| {}).unwrap_err());
    assert!(e.contains("broke down") && e.contains("positive definite"), "{e}");
    let jacobi = CgOptions { preconditioner: Preconditioner::Jacobi, ..CgOptions::default() };
    assert!(msg(cg(&m, &[1.0; 3], &jacobi, &mut |_| {}).unwrap_err()).contains("positive diagonal"));
    // Too few iterations: an error naming the residual, not a silent answer.
    let spd = Triplets {
        shape: (3, 3),
        entries: vec![(0, 0, 4), (0, 1, 1), (1, 0, 1), (1, 1, 3), (1, 2, 1), (2, 1, 1), (2, 2, 2)],
    };
    let m = write::<f64>(&spd, &tmp.path().join("spd"), Layout::Csr, 1 << 20, true).unwrap();
    let short = CgOptions { max_iter: Some(1), tol: 1e-14, ..CgOptions::default() };
    assert!(msg(cg(&m, &[1.0, 2.0, 3.0], &short, &mut |_| {}).unwrap_err()).contains("did not converge"));
    let zero = cg(&m, &[0.0; 3], &CgOptions::default(), &mut |_| {}).unwrap();
    assert!(zero.converged && zero.iterations == 0 && zero.x == vec![0.0; 3]);
}

#[test]
fn corrupt_indices_are_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SplitMix(5);
    let entries: BTreeMap<(u64, u64), i64> = (0..400).map(|_| ((rng.below(100), rng.below(100)), 1)).collect();
    let t = Triplets { shape: (100, 100), entries: entries.into_iter().map(|((r, c), v)| (r, c, v)).collect() };
    for layout in [Layout::Csr, Layout::Csc] {
        let dir = tmp.path().join(format!("{layout:?}"));
        let m = write::<f64>(&t, &dir, layout, 1 << 20, true).unwrap();
        let indices = dir.join(&m.segments()[0].indices.path);
        let mut bytes = std::fs::read(&indices).unwrap();
        // Every index past the matrix: whatever a traversal reads first is caught.
        for chunk in bytes.chunks_mut(4) {
            chunk.copy_from_slice(&1000u32.to_le_bytes());
        }
        std::fs::write(&indices, &bytes).unwrap();
        let m = Matrix::open(&dir).unwrap();
        for (what, r) in [
            ("components", components(&m, Some(0), &mut |_| {}).map(|_| ())),
            ("bfs", bfs(&m, t.entries[0].0, Some(0), &mut |_| {}).map(|_| ())),
            ("pagerank", pagerank(&m, &PagerankOptions::default(), &mut |_| {}).map(|_| ())),
        ] {
            let e = r.unwrap_err();
            assert!(matches!(e, Error::Corrupt { .. }), "{what} on {layout:?}: {e}");
        }
    }
}

#[test]
fn commands_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let lap = tmp.path().join("lap");
    ok(&["generate", "laplace2d", "--n", "30", "-o", p(&lap)]);
    let x = tmp.path().join("x.npy");
    let j: serde_json::Value = serde_json::from_str(ok(&["cg", p(&lap), "-o", p(&x), "--json"]).trim()).unwrap();
    for field in ["seconds", "iterations", "residual"] {
        assert!(j.get(field).is_some_and(|v| !v.is_null()), "cg --json lacks {field}: {j}");
    }
    assert!(j["residual"].as_f64().unwrap() <= 1e-8);
    let solution = sparsedisk::io::npy::read_npy(&x).unwrap();
    assert_eq!(solution.rows, 900);
    let jac: serde_json::Value =
        serde_json::from_str(ok(&["cg", p(&lap), "-o", p(&x), "--precond", "jacobi", "--json", "--force"]).trim())
            .unwrap();
    assert!(jac["residual"].as_f64().unwrap() <= 1e-8);
    assert!(fails(&["cg", p(&lap), "-o", p(&x), "--max-iter", "2", "--force"]).contains("did not converge"));

    let r = tmp.path().join("r.npy");
    // A Laplacian's weights are negative off the diagonal: PageRank's iteration blows up, and says so.
    assert!(fails(&["pagerank", p(&lap), "-o", p(&r)]).contains("diverged"));
    assert!(!r.exists());
    let g = tmp.path().join("g");
    ok(&["generate", "rmat", "--scale", "10", "-o", p(&g)]);
    let j: serde_json::Value = serde_json::from_str(ok(&["pagerank", p(&g), "-o", p(&r), "--json"]).trim()).unwrap();
    for field in ["seconds", "iterations", "delta"] {
        assert!(j.get(field).is_some_and(|v| !v.is_null()), "pagerank --json lacks {field}: {j}");
    }
    let ranks = sparsedisk::io::npy::read_npy(&r).unwrap();
    assert!((ranks.data.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    let l = tmp.path().join("l.npy");
    let j: serde_json::Value =
        serde_json::from_str(ok(&["bfs", p(&lap), "--source", "0", "-o", p(&l), "--json"]).trim()).unwrap();
    // On a 30 x 30 grid the farthest vertex is 58 hops from a corner.
    assert_eq!((j["depth"].as_u64(), j["reached"].as_u64()), (Some(58), Some(900)));
    let c = tmp.path().join("c.npy");
    let j: serde_json::Value =
        serde_json::from_str(ok(&["components", p(&lap), "-o", p(&c), "--json"]).trim()).unwrap();
    assert_eq!(j["components"].as_u64(), Some(1));
    assert!(fails(&["bfs", p(&lap), "--source", "900", "-o", p(&l), "--force"]).contains("outside"));
    assert!(fails(&["pagerank", p(&tmp.path().join("missing")), "-o", p(&r), "--force"]).contains("missing"));
}

#[test]
fn demo_runs_every_step() {
    let tmp = tempfile::tempdir().unwrap();
    // More threads than the default budget held parse threads before the budget chose them.
    let out = ok(&["--threads", "8", "demo", "--dir", p(tmp.path())]);
    for step in ["generate 2-D Laplacian", "identical", "solve A x = 1 by CG", "R-MAT graph", "PageRank", "peak memory"]
    {
        assert!(out.contains(step), "demo output lacks {step:?}:\n{out}");
    }
}
