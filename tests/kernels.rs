//! SpMV, transposed SpMV and SpMM against a dense oracle: random matrices of every value type, both
//! layouts, many segments, 1 and 2 threads; integer-valued data so results compare exactly.

mod common;

use common::{triplets, write, Triplets};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use sparsedisk::kernels::{spmm, spmm_transpose, spmv, spmv_transpose, CachePolicy, Operator};
use sparsedisk::{Error, Layout, Matrix};

/// `alpha * op(A) * X + beta * Y` with dense loops; `X` is row-major `n x k`.
#[allow(clippy::too_many_arguments)]
fn oracle(
    t: &Triplets,
    pattern: bool,
    transpose: bool,
    alpha: f64,
    x: &[f64],
    beta: f64,
    y: &[f64],
    k: usize,
) -> Vec<f64> {
    let mut out: Vec<f64> = y.iter().map(|v| beta * v).collect();
    for &(r, c, v) in &t.entries {
        let v = if pattern { 1.0 } else { v as f64 };
        let (o, i) = if transpose { (c, r) } else { (r, c) };
        for j in 0..k {
            out[o as usize * k + j] += alpha * v * x[i as usize * k + j];
        }
    }
    out
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 150,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn products_equal_the_dense_oracle(
        t in triplets(12, 50),
        layout in prop_oneof![Just(Layout::Csr), Just(Layout::Csc)],
        value_kind in 0u8..4,
        segment_bytes in prop_oneof![1u64..48, Just(1u64 << 20)],
        k in prop::sample::select(vec![1usize, 2, 3, 4, 5, 8, 16, 21]),
        seed in any::<u64>(),
        threads in 1usize..=2,
        policy in 0u8..4,
        resident_share in 0u64..=100,
    ) {
        // Split segments of a few entries across threads too, so the parallel paths run.
        sparsedisk::kernels::set_min_task_entries(1);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        let m: Matrix = match value_kind {
            0 => write::<f64>(&t, &dir, layout, segment_bytes, true),
            1 => write::<f32>(&t, &dir, layout, segment_bytes, false),
            2 => write::<i64>(&t, &dir, layout, segment_bytes, true),
            _ => write::<()>(&t, &dir, layout, segment_bytes, false),
        }.unwrap();
        let pattern = value_kind == 3;
        let (rows, cols) = (t.shape.0 as usize, t.shape.1 as usize);
        let mut s = seed;
        let mut small = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); ((s >> 33) % 7) as f64 - 3.0 };
        let (alpha, beta) = (small(), small());
        let x_n: Vec<f64> = (0..cols * k).map(|_| small()).collect();
        let x_t: Vec<f64> = (0..rows * k).map(|_| small()).collect();
        let y_n: Vec<f64> = (0..rows * k).map(|_| small()).collect();
        let y_t: Vec<f64> = (0..cols * k).map(|_| small()).collect();
        // The free functions (default budget: everything resident), and operators that keep nothing,
        // a random share, or everything resident, or leave the page cache to the kernel.
        let payload: u64 = m.segments().iter().map(|s| s.payload_bytes()).sum();
        let op = match policy {
            0 => None,
            1 => Some(Operator::new(&m, 0).unwrap()),
            2 => Some(Operator::new(&m, payload * resident_share / 100).unwrap()),
            _ => Some(Operator::with_policy(&m, CachePolicy::Kernel).unwrap()),
        };
        pool(threads).install(|| {
            // SpMV (k = 1 uses the first column of each), twice through an operator (the second pass
            // finds the resident part warm).
            let x1: Vec<f64> = (0..cols).map(|i| x_n[i * k]).collect();
            let y1: Vec<f64> = (0..rows).map(|i| y_n[i * k]).collect();
            let expect = oracle(&t, pattern, false, alpha, &x1, beta, &y1, 1);
            for _ in 0..if op.is_some() { 2 } else { 1 } {
                let mut y = y1.clone();
                let stats = match &op {
                    Some(op) => op.spmv(alpha, &x1, beta, &mut y),
                    None => spmv(&m, alpha, &x1, beta, &mut y),
                }.unwrap();
                prop_assert_eq!(&y, &expect);
                prop_assert_eq!(stats.nnz, m.nnz());
                prop_assert_eq!(stats.segments, m.segments().len());
            }
            // Transposed SpMV.
            let xt1: Vec<f64> = (0..rows).map(|i| x_t[i * k]).collect();
            let yt1: Vec<f64> = (0..cols).map(|i| y_t[i * k]).collect();
            // An operator keeps a scatter's private outputs for its next product: repeated products
            // (and products of other widths in between) must find them clear.
            let expect_t = oracle(&t, pattern, true, alpha, &xt1, beta, &yt1, 1);
            let expect_k = oracle(&t, pattern, false, alpha, &x_n, beta, &y_n, k);
            let expect_tk = oracle(&t, pattern, true, alpha, &x_t, beta, &y_t, k);
            for _ in 0..if op.is_some() { 2 } else { 1 } {
                let mut y = yt1.clone();
                match &op {
                    Some(op) => op.spmv_transpose(alpha, &xt1, beta, &mut y),
                    None => spmv_transpose(&m, alpha, &xt1, beta, &mut y),
                }.unwrap();
                prop_assert_eq!(&y, &expect_t);
                // SpMM.
                let mut y = y_n.clone();
                match &op {
                    Some(op) => op.spmm(alpha, &x_n, beta, &mut y, k),
                    None => spmm(&m, alpha, &x_n, beta, &mut y, k),
                }.unwrap();
                prop_assert_eq!(&y, &expect_k);
                // Transposed SpMM.
                let mut y = y_t.clone();
                match &op {
                    Some(op) => op.spmm_transpose(alpha, &x_t, beta, &mut y, k),
                    None => spmm_transpose(&m, alpha, &x_t, beta, &mut y, k),
                }.unwrap();
                prop_assert_eq!(&y, &expect_tk);
            }
            Ok(())
        })?;
    }
}

#[test]
fn beta_zero_ignores_nan_and_lengths_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let t = Triplets { shape: (2, 3), entries: vec![(0, 0, 2), (1, 2, -1)] };
    for layout in [Layout::Csr, Layout::Csc] {
        let m = write::<f64>(&t, &tmp.path().join(format!("{layout}")), layout, 1 << 20, true).unwrap();
        let mut y = vec![f64::NAN; 2];
        spmv(&m, 1.0, &[1.0, 1.0, 1.0], 0.0, &mut y).unwrap();
        assert_eq!(y, vec![2.0, -1.0]);
        let err = spmv(&m, 1.0, &[1.0, 1.0], 0.0, &mut y).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(ref s) if s.contains("x has 2 elements")), "{err}");
        let mut y3 = vec![0.0; 3];
        assert!(spmv(&m, 1.0, &[1.0, 1.0, 1.0], 0.0, &mut y3).is_err());
        assert!(spmm(&m, 1.0, &[1.0; 3], 0.0, &mut y, 0).is_err());
    }
}

#[test]
fn corrupt_indices_give_an_error_not_a_panic() {
    // A forged file whose checksum would fail `verify`: the kernels, run without verifying, must still
    // refuse it cleanly.
    let tmp = tempfile::tempdir().unwrap();
    let t = Triplets { shape: (3, 3), entries: vec![(0, 0, 1), (1, 1, 1), (2, 2, 1)] };
    for layout in [Layout::Csr, Layout::Csc] {
        let dir = tmp.path().join(format!("{layout}"));
        let m = write::<f64>(&t, &dir, layout, 1 << 20, true).unwrap();
        let indices = dir.join(&m.segments()[0].indices.path);
        let mut bytes = std::fs::read(&indices).unwrap();
        bytes[4..8].copy_from_slice(&9999u32.to_le_bytes());
        std::fs::write(&indices, &bytes).unwrap();
        let m = Matrix::open(&dir).unwrap();
        let mut y = vec![0.0; 3];
        let err = spmv(&m, 1.0, &[1.0; 3], 0.0, &mut y).unwrap_err();
        assert!(err.to_string().contains("outside the matrix"), "{err}");
        assert!(spmv_transpose(&m, 1.0, &[1.0; 3], 0.0, &mut y).is_err());
        // Row pointers out of order.
        let indptr = dir.join(&m.segments()[0].indptr.path);
        let mut p = std::fs::read(&indptr).unwrap();
        p[8..16].copy_from_slice(&77u64.to_le_bytes());
        std::fs::write(&indptr, &p).unwrap();
        let m = Matrix::open(&dir).unwrap();
        assert!(spmv(&m, 1.0, &[1.0; 3], 0.0, &mut y).unwrap_err().to_string().contains("row pointers"));
    }
}

#[test]
fn wide_random_rows_take_the_prefetching_gather() {
    // Rows whose column indices spread over more than a megabyte of `x` take the gather path that
    // prefetches `x`; integer data keeps the comparison exact.
    let tmp = tempfile::tempdir().unwrap();
    let cols = 600_000u64;
    let mut rng = common::SplitMix(11);
    let entries: Vec<(u64, u64, i64)> =
        (0..40_000).map(|_| (rng.below(3_000), rng.below(cols), rng.below(7) as i64 - 3)).collect();
    let t = Triplets { shape: (3_000, cols), entries };
    let m = write::<f64>(&t, &tmp.path().join("wide"), Layout::Csr, 64 << 10, true).unwrap();
    let x: Vec<f64> = (0..cols).map(|i| (i % 5) as f64 - 2.0).collect();
    for threads in [1, 2] {
        for resident in [0, u64::MAX] {
            // Twice through one operator: the second product over a resident segment skips the index
            // checks the first one made (and prefetches from what they measured).
            let op = Operator::new(&m, resident).unwrap();
            for _ in 0..2 {
                let mut y = vec![0.0; 3_000];
                pool(threads).install(|| op.spmv(1.0, &x, 0.0, &mut y)).unwrap();
                assert_eq!(y, oracle(&t, false, false, 1.0, &x, 0.0, &[0.0; 3_000], 1));
            }
        }
    }
    // Blocks of vectors: the widths with a fixed-width loop (2, 4, 8, 16) and ones split into panels.
    let xk = |k: usize| -> Vec<f64> { (0..cols as usize * k).map(|i| (i % 7) as f64 - 3.0).collect() };
    for k in [2, 3, 4, 5, 8, 16, 21] {
        let x = xk(k);
        let mut y = vec![0.0; 3_000 * k];
        pool(2).install(|| spmm(&m, 1.0, &x, 0.0, &mut y, k)).unwrap();
        assert_eq!(y, oracle(&t, false, false, 1.0, &x, 0.0, &vec![0.0; 3_000 * k], k), "k = {k}");
    }
    // An index past the end of `x` in a wide block is still caught.
    let indices = tmp.path().join("wide").join(&m.segments()[0].indices.path);
    let mut bytes = std::fs::read(&indices).unwrap();
    bytes[40..44].copy_from_slice(&(cols as u32).to_le_bytes());
    std::fs::write(&indices, &bytes).unwrap();
    let m = Matrix::open(tmp.path().join("wide")).unwrap();
    let mut y = vec![0.0; 3_000];
    let err = Operator::new(&m, 0).unwrap().spmv(1.0, &x, 0.0, &mut y).unwrap_err();
    assert!(err.to_string().contains("outside the matrix"), "{err}");
    // A failed product records nothing: every later product through the same operator (the segment
    // resident) checks again and fails again, gathering or scattering, one column or several.
    let op = Operator::new(&m, u64::MAX).unwrap();
    for _ in 0..2 {
        let err = op.spmv(1.0, &x, 0.0, &mut y).unwrap_err();
        assert!(err.to_string().contains("outside the matrix"), "{err}");
        let err = op.spmv_transpose(1.0, &y, 0.0, &mut vec![0.0; cols as usize]).unwrap_err();
        assert!(err.to_string().contains("outside the matrix"), "{err}");
        let err = op.spmm(1.0, &xk(2), 0.0, &mut vec![0.0; 3_000 * 2], 2).unwrap_err();
        assert!(err.to_string().contains("outside the matrix"), "{err}");
    }
    for k in [2, 3, 4, 5, 8, 16, 21] {
        let mut y = vec![0.0; 3_000 * k];
        let err = spmm(&m, 1.0, &xk(k), 0.0, &mut y, k).unwrap_err();
        assert!(err.to_string().contains("outside the matrix"), "k = {k}: {err}");
    }
}

#[test]
fn plain_products_skip_empty_rows_exactly() {
    // Most rows empty, as in a power-law graph: from the second plain product (alpha 1, beta 0) over
    // a resident segment on, the gather visits only the rows with entries and zeroes the others.
    // Many small tasks, so that a task's rows start and end between listed rows; `y` starts as NaN,
    // which an empty row's output must not keep.
    sparsedisk::kernels::set_min_task_entries(1);
    let tmp = tempfile::tempdir().unwrap();
    let (rows, cols) = (5_000u64, 3_000u64);
    let mut rng = common::SplitMix(12);
    // One value per position (the writer takes each entry once), about 2 rows in 5 empty.
    let by_position: std::collections::BTreeMap<(u64, u64), i64> = (0..20_000)
        .map(|_| {
            let r = rng.below(rows);
            ((if r % 5 < 3 { r - r % 5 } else { r }, rng.below(cols)), rng.below(9) as i64 - 4)
        })
        .collect();
    let entries: Vec<(u64, u64, i64)> = by_position.into_iter().map(|((r, c), v)| (r, c, v)).collect();
    let t = Triplets { shape: (rows, cols), entries };
    let x: Vec<f64> = (0..cols).map(|i| (i % 7) as f64 - 3.0).collect();
    for layout in [Layout::Csr, Layout::Csc] {
        let dir = tmp.path().join(format!("{layout:?}"));
        let m = write::<f64>(&t, &dir, layout, 32 << 10, true).unwrap();
        let expect = oracle(&t, false, false, 1.0, &x, 0.0, &vec![0.0; rows as usize], 1);
        for threads in [1, 2] {
            let op = Operator::new(&m, u64::MAX).unwrap();
            for _ in 0..3 {
                let mut y = vec![f64::NAN; rows as usize];
                pool(threads).install(|| op.spmv(1.0, &x, 0.0, &mut y)).unwrap();
                assert_eq!(y, expect, "{layout:?}, {threads} threads");
            }
            // Other coefficients take the walk over every row.
            let mut y = vec![1.0; rows as usize];
            pool(threads).install(|| op.spmv(2.0, &x, -1.0, &mut y)).unwrap();
            assert_eq!(y, oracle(&t, false, false, 2.0, &x, -1.0, &vec![1.0; rows as usize], 1));
        }
    }
}
