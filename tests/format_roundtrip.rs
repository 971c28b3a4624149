//! Property tests: random matrices written through the writer, reopened, and compared exactly with
//! the in-memory oracle; plus the writer's contract (ordering, bounds, cleanup, overwrite).

mod common;

use common::{entries_of, triplets, write, Triplets};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use sparsedisk::format::MANIFEST_FILE;
use sparsedisk::{Error, IndexType, Layout, Matrix, MatrixWriter, ValueType, WriterOptions};

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![Just(Layout::Csr), Just(Layout::Csc)]
}

fn check_equal(t: &Triplets, m: &Matrix, pattern: bool) -> Result<(), TestCaseError> {
    prop_assert_eq!(m.shape(), t.shape);
    prop_assert_eq!(m.nnz(), t.entries.len() as u64);
    let got = entries_of(m);
    let mut want: Vec<(u64, u64, f64)> =
        t.entries.iter().map(|&(r, c, v)| (r, c, if pattern { 1.0 } else { v as f64 })).collect();
    want.sort_by_key(|&(r, c, _)| (r, c));
    prop_assert_eq!(got, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn written_matrices_reopen_equal(
        t in triplets(15, 60),
        layout in layout(),
        segment_bytes in prop_oneof![1u64..64, Just(1u64 << 20)],
        by_rows in any::<bool>(),
        value_kind in 0u8..4,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        let m = match value_kind {
            0 => write::<f64>(&t, &dir, layout, segment_bytes, by_rows),
            1 => write::<f32>(&t, &dir, layout, segment_bytes, by_rows),
            2 => write::<i64>(&t, &dir, layout, segment_bytes, by_rows),
            _ => write::<()>(&t, &dir, layout, segment_bytes, by_rows),
        }.unwrap();
        let reopened = Matrix::open(&dir).unwrap();
        prop_assert_eq!(reopened.manifest(), m.manifest());
        let report = reopened.verify().unwrap();
        prop_assert_eq!(report.segments, reopened.segments().len());
        check_equal(&t, &reopened, value_kind == 3)?;
        prop_assert_eq!(reopened.layout(), layout);
        prop_assert_eq!(reopened.index_type(), IndexType::Uint32);

        // The segments tile the outer dimension, and no segment is far beyond the bound: at most one
        // outer index past it.
        let (outer, inner) = layout.outer_inner(t.shape);
        let mut next = 0;
        for seg in reopened.segments() {
            prop_assert_eq!(seg.start, next);
            next = seg.end;
        }
        prop_assert_eq!(next, outer);
        let per_outer_max = 8 + inner * (4 + reopened.value_type().bytes());
        for i in 0..reopened.segments().len() {
            let s = reopened.map_segment(i).unwrap();
            prop_assert!(s.payload_bytes() < segment_bytes.max(16) + per_outer_max + 8);
        }
    }

    #[test]
    fn segments_are_valid_sprs_views(t in triplets(15, 60), layout in layout(), segment_bytes in 1u64..200) {
        let tmp = tempfile::tempdir().unwrap();
        let m = write::<f64>(&t, &tmp.path().join("m"), layout, segment_bytes, true).unwrap();
        let mut seen = 0;
        for i in 0..m.segments().len() {
            let seg = m.map_segment(i).unwrap();
            let view = seg.sprs_view::<f64, u32>().unwrap();
            for (&v, (a, b)) in view.iter() {
                // Band-local coordinates back to global ones.
                let (r, c) = match layout {
                    Layout::Csr => (a as u64 + seg.start(), b as u64),
                    Layout::Csc => (a as u64, b as u64 + seg.start()),
                };
                prop_assert!(t.entries.contains(&(r, c, v as i64)));
                seen += 1;
            }
            // The wrong type is refused, not reinterpreted.
            prop_assert!(seg.sprs_view::<f32, u32>().is_err());
            prop_assert!(seg.sprs_view::<f64, u64>().is_err());
        }
        prop_assert_eq!(seen, t.entries.len());
    }
}

#[test]
fn pattern_segments_give_structure_views() {
    let t = Triplets { shape: (3, 5), entries: vec![(0, 1, 1), (0, 4, 1), (2, 0, 1)] };
    let tmp = tempfile::tempdir().unwrap();
    let m = write::<()>(&t, &tmp.path().join("p"), Layout::Csr, 1 << 20, true).unwrap();
    assert_eq!(m.value_type(), ValueType::Pattern);
    let seg = m.map_segment(0).unwrap();
    let view = seg.sprs_view::<(), u32>().unwrap();
    assert_eq!(view.nnz(), 3);
    assert_eq!(view.indices(), &[1, 4, 0]);
    assert!(m.segments()[0].values.is_none());
}

fn opts() -> WriterOptions {
    WriterOptions { segment_bytes: 32, durable: false, ..WriterOptions::default() }
}

#[test]
fn writer_rejects_out_of_order_duplicate_and_out_of_range_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = MatrixWriter::<f64>::create(tmp.path().join("m"), (3, 3), Layout::Csr, opts()).unwrap();
    w.push_entry(1, 1, 1.0).unwrap();
    assert!(matches!(w.push_entry(1, 1, 1.0), Err(Error::InvalidInput(_))), "duplicate");
    assert!(matches!(w.push_entry(1, 0, 1.0), Err(Error::InvalidInput(_))), "inner out of order");
    assert!(matches!(w.push_entry(0, 2, 1.0), Err(Error::InvalidInput(_))), "outer out of order");
    assert!(matches!(w.push_entry(1, 3, 1.0), Err(Error::OutOfBounds { row: 1, col: 3, .. })));
    assert!(matches!(w.push_entry(3, 0, 1.0), Err(Error::OutOfBounds { row: 3, col: 0, .. })));
    let mut w2 = MatrixWriter::<f64>::create(tmp.path().join("m2"), (2, 4), Layout::Csc, opts()).unwrap();
    assert!(matches!(w2.push_row(&[1, 1], &[1.0, 2.0]), Err(Error::InvalidInput(_))));
    assert!(matches!(w2.push_row(&[0, 2], &[1.0, 2.0]), Err(Error::OutOfBounds { row: 2, col: 0, .. })));
    assert!(matches!(w2.push_row(&[0], &[1.0, 2.0]), Err(Error::InvalidInput(_))));
}

#[test]
fn dropped_writer_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    {
        let mut w = MatrixWriter::<f64>::create(&dir, (100, 10), Layout::Csr, opts()).unwrap();
        for r in 0..50 {
            w.push_row(&[r % 10], &[1.0]).unwrap();
        }
        assert!(dir.join("seg_1_000000").exists());
    }
    assert!(!dir.exists(), "a writer that created the directory removes it");

    // In an existing empty directory, the directory stays but is empty again.
    std::fs::create_dir(&dir).unwrap();
    {
        let mut w = MatrixWriter::<f64>::create(&dir, (100, 10), Layout::Csr, opts()).unwrap();
        w.push_row(&[1], &[1.0]).unwrap();
        w.advance_to(60).unwrap();
    }
    let left: Vec<_> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(left.iter().all(|n| n == "zarr.json"), "left behind: {left:?}");
    assert!(matches!(Matrix::open(&dir), Err(Error::NotAMatrix { .. })), "no manifest, no matrix");
}

#[test]
fn existing_matrix_needs_overwrite_and_stays_readable_until_publish() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let old = Triplets { shape: (4, 4), entries: vec![(0, 0, 1), (3, 3, 2)] };
    write::<f64>(&old, &dir, Layout::Csr, 8, true).unwrap();
    let err = MatrixWriter::<f64>::create(&dir, (2, 2), Layout::Csr, opts()).err().unwrap();
    assert!(err.to_string().contains("already holds a matrix"), "{err}");

    let mut w =
        MatrixWriter::<f64>::create(&dir, (2, 2), Layout::Csr, WriterOptions { overwrite: true, ..opts() }).unwrap();
    w.push_row(&[1], &[5.0]).unwrap();
    // Before finish, readers still see the old matrix, whole.
    let before = Matrix::open(&dir).unwrap();
    before.verify().unwrap();
    assert_eq!(before.shape(), (4, 4));
    let new = w.finish().unwrap();
    assert_eq!(new.manifest().generation, 2);
    assert_eq!(entries_of(&Matrix::open(&dir).unwrap()), vec![(0, 1, 5.0)]);
    // A reader of the old generation still open keeps it whole: its files are kept.
    before.verify().unwrap();
    assert_eq!(entries_of(&before), vec![(0, 0, 1.0), (3, 3, 2.0)]);
    let names = || -> Vec<String> {
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
    };
    assert!(names().iter().any(|n| n.starts_with("seg_1_")), "generation 1 deleted under its reader");
    // Once no reader holds it, the next writer deletes it (and generation 2's, which it replaces).
    drop(before);
    drop(new);
    let mut w =
        MatrixWriter::<f64>::create(&dir, (2, 2), Layout::Csr, WriterOptions { overwrite: true, ..opts() }).unwrap();
    w.push_row(&[1], &[5.0]).unwrap();
    assert_eq!(w.finish().unwrap().manifest().generation, 3);
    for name in names() {
        assert!(!name.starts_with("seg_1_") && !name.starts_with("seg_2_"), "stale segment {name} left");
        assert!(!name.starts_with(".readers-1") && !name.starts_with(".readers-2"), "stale lock {name} left");
    }

    // An abandoned overwrite leaves the published matrix untouched.
    {
        let mut w = MatrixWriter::<f64>::create(&dir, (9, 9), Layout::Csr, WriterOptions { overwrite: true, ..opts() })
            .unwrap();
        w.push_row(&[0, 1, 2], &[1.0, 1.0, 1.0]).unwrap();
    }
    let after = Matrix::open(&dir).unwrap();
    after.verify().unwrap();
    assert_eq!(entries_of(&after), vec![(0, 1, 5.0)]);
}

#[test]
fn readers_ignore_leftovers_and_writers_reuse_a_crashed_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let t = Triplets { shape: (3, 3), entries: vec![(0, 0, 1), (1, 2, 2)] };
    write::<f64>(&t, &dir, Layout::Csr, 8, true).unwrap();
    // Debris of a crashed build: an unlisted segment and an interrupted manifest write.
    std::fs::create_dir_all(dir.join("seg_7_000000/indices_1/c")).unwrap();
    std::fs::write(dir.join("seg_7_000000/indices_1/c/0"), b"garbage").unwrap();
    std::fs::write(dir.join(".manifest.json.tmp-1-0"), b"{half").unwrap();
    let m = Matrix::open(&dir).unwrap();
    m.verify().unwrap();
    assert_eq!(entries_of(&m).len(), 2);

    // A crash before the first manifest: the directory has debris but no manifest.
    std::fs::remove_file(dir.join(MANIFEST_FILE)).unwrap();
    let m2 = write::<f64>(&t, &dir, Layout::Csr, 8, true).unwrap();
    assert_eq!(m2.manifest().generation, 8, "the new generation is above every name present");
    assert!(!dir.join("seg_7_000000").exists(), "debris is removed once the new matrix is published");

    // A directory holding foreign files is refused.
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), b"mine").unwrap();
    let err = MatrixWriter::<f64>::create(&foreign, (1, 1), Layout::Csr, opts()).err().unwrap();
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert!(foreign.join("notes.txt").exists());
}

#[test]
fn wide_matrices_use_u64_indices() {
    let tmp = tempfile::tempdir().unwrap();
    let cols = (1u64 << 32) + 5;
    let mut w = MatrixWriter::<f64>::create(tmp.path().join("w"), (2, cols), Layout::Csr, opts()).unwrap();
    w.push_row(&[0, cols - 1], &[1.0, 2.0]).unwrap();
    let m = w.finish().unwrap();
    assert_eq!(m.index_type(), IndexType::Uint64);
    m.verify().unwrap();
    let seg = m.map_segment(0).unwrap();
    assert_eq!(seg.indices().get(1), cols - 1);
    // 2^32 - 1 columns use u32 indices; exactly 2^32 use u64, so that sprs views (which need the
    // dimension itself in the index type) work.
    let mut w = MatrixWriter::<f64>::create(tmp.path().join("n"), (1, u32::MAX as u64), Layout::Csr, opts()).unwrap();
    w.push_row(&[u32::MAX as u64 - 1], &[1.0]).unwrap();
    let m = w.finish().unwrap();
    assert_eq!(m.index_type(), IndexType::Uint32);
    assert!(m.map_segment(0).unwrap().sprs_view::<f64, u32>().is_ok());
    let mut w = MatrixWriter::<f64>::create(tmp.path().join("e"), (1, 1 << 32), Layout::Csr, opts()).unwrap();
    w.push_row(&[(1 << 32) - 1], &[1.0]).unwrap();
    let m = w.finish().unwrap();
    assert_eq!(m.index_type(), IndexType::Uint64);
    assert!(m.map_segment(0).unwrap().sprs_view::<f64, u64>().is_ok());
}

#[test]
fn laplacians_match_their_definition() {
    use sparsedisk::generators::{generate, Generator};
    let tmp = tempfile::tempdir().unwrap();
    for (g, dense_check) in [
        (Generator::Laplace2d { n: 4 }, 4.0),
        (Generator::Laplace3d { n: 3 }, 6.0),
        (Generator::Laplace3d27 { n: 3 }, 26.0),
        (Generator::Banded { n: 7, lower: 2, upper: 1 }, 16.0),
    ] {
        for layout in [Layout::Csr, Layout::Csc] {
            let dir = tmp.path().join(format!("{g:?}-{layout}"));
            let m = generate::<f64>(&g, &dir, layout, opts()).unwrap();
            m.verify().unwrap();
            assert_eq!(m.nnz(), g.nnz().unwrap(), "{g:?}");
            let e = entries_of(&m);
            let n = m.rows();
            let mut dense = vec![vec![0.0; n as usize]; n as usize];
            for &(r, c, v) in &e {
                dense[r as usize][c as usize] = v;
            }
            for (i, row) in dense.iter().enumerate() {
                assert_eq!(row[i], dense_check, "{g:?} diagonal");
                if let Generator::Banded { lower, upper, .. } = g {
                    for (j, &v) in row.iter().enumerate() {
                        let in_band = j + lower as usize >= i && j <= i + upper as usize;
                        assert_eq!(v != 0.0, in_band, "{g:?} ({i},{j})");
                    }
                } else {
                    // Laplacians: symmetric, zero row sums in the interior, -1 off the diagonal.
                    for (j, &v) in row.iter().enumerate() {
                        assert_eq!(v, dense[j][i]);
                        assert!(i == j || v == 0.0 || v == -1.0);
                    }
                }
            }
        }
    }
}

/// The 27-point Laplacian against its definition, built by brute force over each grid point's
/// 3 x 3 x 3 box: exact nonzero count `(3n - 2)^3`, same entries in both layouts, ascending inner
/// indices, symmetric, row sums 0 in the interior and positive on the boundary, and CG converges on it.
#[test]
fn laplacian_27_point_matches_a_brute_force_oracle() {
    use sparsedisk::algo::{cg, CgOptions};
    use sparsedisk::generators::{generate, Generator};
    let tmp = tempfile::tempdir().unwrap();
    for n in 1u64..=5 {
        let g = Generator::Laplace3d27 { n };
        assert_eq!(g.shape().unwrap(), (n * n * n, n * n * n));
        let expected_nnz = (3 * n - 2).pow(3);
        assert_eq!(g.nnz().unwrap(), expected_nnz, "n = {n}");
        // The oracle: every pair of grid points at Chebyshev distance <= 1.
        let index = |i: u64, j: u64, k: u64| (k * n + j) * n + i;
        let mut oracle = Vec::new();
        for (k, j, i) in (0..n).flat_map(|k| (0..n).flat_map(move |j| (0..n).map(move |i| (k, j, i)))) {
            let r = index(i, j, k);
            for dk in -1i64..=1 {
                for dj in -1i64..=1 {
                    for di in -1i64..=1 {
                        let (ii, jj, kk) = (i as i64 + di, j as i64 + dj, k as i64 + dk);
                        let inside = |c: i64| (0..n as i64).contains(&c);
                        if inside(ii) && inside(jj) && inside(kk) {
                            let c = index(ii as u64, jj as u64, kk as u64);
                            oracle.push((r, c, if c == r { 26.0 } else { -1.0 }));
                        }
                    }
                }
            }
        }
        oracle.sort_by_key(|&(r, c, _)| (r, c));
        assert_eq!(oracle.len() as u64, expected_nnz, "n = {n}");
        // Each outer index's inner indices strictly ascend.
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        for r in 0..n * n * n {
            g.outer(Layout::Csr, r, &mut indices, &mut values);
            assert!(indices.windows(2).all(|w| w[0] < w[1]), "n = {n}, row {r}: {indices:?}");
        }
        for layout in [Layout::Csr, Layout::Csc] {
            let m = generate::<f64>(&g, &tmp.path().join(format!("{n}-{layout}")), layout, opts()).unwrap();
            m.verify().unwrap();
            assert_eq!(m.nnz(), expected_nnz, "n = {n}");
            let e = entries_of(&m);
            assert_eq!(e, oracle, "n = {n} {layout}");
            let mut transposed: Vec<_> = e.iter().map(|&(r, c, v)| (c, r, v)).collect();
            transposed.sort_by_key(|&(r, c, _)| (r, c));
            assert_eq!(transposed, e, "n = {n}: not symmetric");
            let mut sums = vec![0.0; (n * n * n) as usize];
            for &(r, _, v) in &e {
                sums[r as usize] += v;
            }
            for (k, j, i) in (0..n).flat_map(|k| (0..n).flat_map(move |j| (0..n).map(move |i| (k, j, i)))) {
                let sum = sums[index(i, j, k) as usize];
                let interior = [i, j, k].iter().all(|&c| c > 0 && c + 1 < n);
                if interior {
                    assert_eq!(sum, 0.0, "n = {n} ({i}, {j}, {k})");
                } else {
                    assert!(sum > 0.0, "n = {n} ({i}, {j}, {k}): {sum}");
                }
            }
        }
    }
    // Positive definite: CG converges on n = 8 with b = ones.
    let m = generate::<f64>(&Generator::Laplace3d27 { n: 8 }, &tmp.path().join("cg"), Layout::Csr, opts()).unwrap();
    let b = vec![1.0; 512];
    let options = CgOptions { tol: 1e-10, max_iter: Some(1000), ..CgOptions::default() };
    let got = cg(&m, &b, &options, &mut |_| {}).unwrap();
    assert!(got.converged && got.residual <= 1e-10, "{} iterations, residual {}", got.iterations, got.residual);
    // A x = b, checked against the oracle's entries.
    let mut ax = vec![0.0; 512];
    for (r, c, v) in entries_of(&m) {
        ax[r as usize] += v * got.x[c as usize];
    }
    let err = ax.iter().map(|y| (y - 1.0).powi(2)).sum::<f64>().sqrt() / (512f64).sqrt();
    assert!(err < 1e-8, "{err}");
}
