//! SpGEMM, transpose, convert and add against exact oracles (dense loops over integer-valued data, so
//! results compare exactly whatever the summation order): random shapes from 0x0 up, every value type,
//! both layouts for each operand, tiny segments (many segment boundaries), forced accumulators, and
//! tiny caps on the right operand's block and on the sort chunk so that the out-of-core paths (blocked
//! products merged from partials, spilled runs) run. Then errors (shape mismatches, corrupt indices:
//! an `Err`, never a panic, and nothing left behind), the command line, and equality with scipy on
//! real matrices (`SPARSEDISK_REAL_DATASETS`). The product held in memory (`spgemm_in_memory`) is
//! checked against the same oracle and, bit for bit on float data, against the product on disk.

mod common;

use common::{entries_of, fails, ok, p, triplets, write, Triplets};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use sparsedisk::ops::{
    add, convert, spgemm, spgemm_in_memory, transpose, Accumulator, AddOptions, OpOptions, Semiring, SpgemmOptions,
};
use sparsedisk::{Element, Error, Layout, Matrix, StoredIndex, ValueType, WriterOptions};
use std::collections::BTreeMap;
use std::path::Path;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

fn op_options(segment_bytes: u64, chunk: Option<usize>) -> OpOptions {
    OpOptions {
        memory_budget: 64 << 20,
        writer: WriterOptions { segment_bytes, durable: false, ..WriterOptions::default() },
        max_chunk_entries: chunk,
    }
}

fn write_kind(t: &Triplets, dir: &Path, layout: Layout, kind: u8, seg: u64) -> Matrix {
    match kind {
        0 => write::<f64>(t, dir, layout, seg, true),
        1 => write::<f32>(t, dir, layout, seg, false),
        2 => write::<i64>(t, dir, layout, seg, true),
        _ => write::<()>(t, dir, layout, seg, false),
    }
    .unwrap()
}

fn value(kind: u8, v: i64) -> f64 {
    if kind == 3 {
        1.0
    } else {
        v as f64
    }
}

/// The product by the definition, with the structural semantics: an entry wherever some `A[i, k]`
/// and `B[k, j]` are both stored.
fn product_oracle(a: &Triplets, ka: u8, b: &Triplets, kb: u8, semiring: Semiring) -> Vec<(u64, u64, f64)> {
    let mut out: BTreeMap<(u64, u64), f64> = BTreeMap::new();
    for &(i, k, av) in &a.entries {
        for &(k2, j, bv) in &b.entries {
            if k2 != k {
                continue;
            }
            let (av, bv) = (value(ka, av), value(kb, bv));
            let (prod, combine): (f64, fn(f64, f64) -> f64) = match semiring {
                Semiring::PlusTimes => (av * bv, |x, y| x + y),
                Semiring::MinPlus => (av + bv, f64::min),
                Semiring::Pattern => (1.0, |_, _| 1.0),
            };
            out.entry((i, j)).and_modify(|v| *v = combine(*v, prod)).or_insert(prod);
        }
    }
    out.into_iter().map(|((i, j), v)| (i, j, v)).collect()
}

/// A random operand whose first dimension is `rows` and second `cols`.
fn sized(rows: u64, cols: u64, max_entries: usize) -> impl Strategy<Value = Triplets> {
    let max = ((rows * cols) as usize).min(max_entries);
    prop::collection::vec((0..rows.max(1), 0..cols.max(1), -3i64..=3), 0..=max).prop_map(move |raw| {
        let mut map = BTreeMap::new();
        if rows > 0 && cols > 0 {
            for (r, c, v) in raw {
                map.insert((r, c), v);
            }
        }
        Triplets { shape: (rows, cols), entries: map.into_iter().map(|((r, c), v)| (r, c, v)).collect() }
    })
}

fn operands() -> impl Strategy<Value = (Triplets, Triplets)> {
    (0u64..10, 0u64..10, 0u64..10).prop_flat_map(|(m, k, n)| (sized(m, k, 60), sized(k, n, 60)))
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![Just(Layout::Csr), Just(Layout::Csc)]
}

fn accumulator() -> impl Strategy<Value = Accumulator> {
    prop_oneof![
        Just(Accumulator::Auto),
        Just(Accumulator::Sort),
        Just(Accumulator::Hash),
        Just(Accumulator::Dense),
        Just(Accumulator::Window)
    ]
}

fn semiring() -> impl Strategy<Value = Semiring> {
    prop_oneof![Just(Semiring::PlusTimes), Just(Semiring::MinPlus), Just(Semiring::Pattern)]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn spgemm_equals_the_oracle(
        (ta, tb) in operands(),
        (la, lb) in (layout(), layout()),
        (ka, kb) in (0u8..4, 0u8..4),
        seg in prop_oneof![1u64..64, Just(1u64 << 20)],
        block in prop_oneof![Just(None), (1u64..200).prop_map(Some)],
        accumulator in accumulator(),
        semiring in semiring(),
        threads in 1usize..=2,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let a = write_kind(&ta, &tmp.path().join("a"), la, ka, seg);
        let b = write_kind(&tb, &tmp.path().join("b"), lb, kb, seg);
        let options = SpgemmOptions {
            op: op_options(seg, Some(3)),
            semiring,
            drop_zeros: false,
            max_block_bytes: block,
            accumulator,
            scratch_dir: None,
        };
        let out = tmp.path().join("c");
        let (c, stats) = pool(threads).install(|| spgemm(&a, &b, &out, &options, None)).unwrap();
        c.verify().unwrap();
        prop_assert_eq!(c.shape(), (ta.shape.0, tb.shape.1));
        prop_assert_eq!(c.layout(), la);
        let expected_type = match semiring {
            Semiring::Pattern => ValueType::Pattern,
            _ if matches!(ka, 2 | 3) && matches!(kb, 2 | 3) => ValueType::Int64,
            _ => ValueType::Float64,
        };
        prop_assert_eq!(c.value_type(), expected_type);
        prop_assert_eq!(entries_of(&c), product_oracle(&ta, ka, &tb, kb, semiring));
        prop_assert_eq!(stats.nnz, c.nnz());
        let flops: u64 = ta.entries.iter().map(|&(_, k, _)| tb.entries.iter().filter(|e| e.0 == k).count() as u64).sum();
        prop_assert_eq!(stats.flops, flops);
        // Nothing but the matrix (and its readers' and writers' lock files, see docs/FORMAT.md) is left in the output directory.
        let names: Vec<String> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        prop_assert!(names.iter().all(|n| n == "manifest.json" || n == "zarr.json" || n == ".writer.lock" || n.starts_with("seg_") || *n == format!(".readers-{}.lock", c.manifest().generation)), "{:?}", names);
    }

    #[test]
    fn transpose_and_convert_equal_the_oracle(
        t in triplets(14, 80),
        from in layout(),
        to in prop_oneof![Just(None), layout().prop_map(Some)],
        kind in 0u8..4,
        seg in prop_oneof![1u64..64, Just(1u64 << 20)],
        chunk in prop_oneof![Just(None), (1usize..8).prop_map(Some)],
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let a = write_kind(&t, &tmp.path().join("a"), from, kind, seg);
        let options = op_options(seg, chunk);
        let (at, stats) = transpose(&a, tmp.path().join("at"), to, &options, None).unwrap();
        at.verify().unwrap();
        prop_assert_eq!(at.shape(), (t.shape.1, t.shape.0));
        prop_assert_eq!(at.layout(), to.unwrap_or(from));
        prop_assert_eq!(at.value_type(), a.value_type());
        let mut expected: Vec<(u64, u64, f64)> = t.entries.iter().map(|&(r, c, v)| (c, r, value(kind, v))).collect();
        expected.sort_by_key(|e| (e.0, e.1));
        prop_assert_eq!(entries_of(&at), expected);
        prop_assert_eq!(stats.nnz, t.entries.len() as u64);
        let target = to.unwrap_or(match from { Layout::Csr => Layout::Csc, Layout::Csc => Layout::Csr });
        let (conv, _) = convert(&a, tmp.path().join("conv"), target, &options, None).unwrap();
        conv.verify().unwrap();
        prop_assert_eq!((conv.shape(), conv.layout()), (a.shape(), target));
        prop_assert_eq!(entries_of(&conv), entries_of(&a));
    }

    #[test]
    fn add_equals_the_oracle(
        (ta, tb) in (0u64..10, 0u64..10).prop_flat_map(|(m, n)| (sized(m, n, 60), sized(m, n, 60))),
        (la, lb) in (layout(), layout()),
        (ka, kb) in (0u8..4, 0u8..4),
        (alpha, beta) in (-3i64..=3, -3i64..=3),
        drop_zeros in any::<bool>(),
        seg in prop_oneof![1u64..64, Just(1u64 << 20)],
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let a = write_kind(&ta, &tmp.path().join("a"), la, ka, seg);
        let b = write_kind(&tb, &tmp.path().join("b"), lb, kb, seg);
        let options = AddOptions { op: op_options(seg, Some(2)), alpha: alpha as f64, beta: beta as f64, drop_zeros, value_type: None };
        let (c, _) = add(&a, &b, tmp.path().join("c"), &options, None).unwrap();
        c.verify().unwrap();
        prop_assert_eq!((c.shape(), c.layout()), (ta.shape, la));
        let integral = matches!(ka, 2 | 3) && matches!(kb, 2 | 3);
        prop_assert_eq!(c.value_type(), if integral { ValueType::Int64 } else { ValueType::Float64 });
        let mut sum: BTreeMap<(u64, u64), f64> = BTreeMap::new();
        for &(r, c, v) in &ta.entries {
            *sum.entry((r, c)).or_insert(0.0) += alpha as f64 * value(ka, v);
        }
        for &(r, c, v) in &tb.entries {
            *sum.entry((r, c)).or_insert(0.0) += beta as f64 * value(kb, v);
        }
        let expected: Vec<(u64, u64, f64)> =
            sum.into_iter().filter(|&(_, v)| !(drop_zeros && v == 0.0)).map(|((r, c), v)| (r, c, v)).collect();
        prop_assert_eq!(entries_of(&c), expected);
    }
}

fn small(tmp: &Path, name: &str, shape: (u64, u64), entries: Vec<(u64, u64, i64)>) -> Matrix {
    write::<f64>(&Triplets { shape, entries }, &tmp.join(name), Layout::Csr, 1 << 20, true).unwrap()
}

#[test]
fn shape_mismatches_are_clear_errors_and_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let a = small(tmp.path(), "a", (2, 3), vec![(0, 0, 1), (1, 2, 2)]);
    let b = small(tmp.path(), "b", (2, 3), vec![(1, 1, 1)]);
    let out = tmp.path().join("c");
    let e = spgemm(&a, &b, &out, &SpgemmOptions::default(), None).unwrap_err();
    assert!(e.to_string().contains("A has 3 columns but B has 2 rows"), "{e}");
    let e = add(&a, &small(tmp.path(), "d", (3, 3), vec![]), &out, &AddOptions::default(), None).unwrap_err();
    assert!(e.to_string().contains("the shapes differ"), "{e}");
    assert!(!out.exists());
}

/// Overwrites the first stored inner index of `m`'s first non-empty segment with `bad`.
fn corrupt_first_index(m: &Matrix, bad: u32) {
    let seg = m.segments().iter().find(|s| s.nnz > 0).unwrap();
    let path = m.dir().join(&seg.indices.path);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..4].copy_from_slice(&bad.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn corrupt_indices_are_errors_not_panics() {
    for which in 0..2 {
        let tmp = tempfile::tempdir().unwrap();
        let a = small(tmp.path(), "a", (3, 3), vec![(0, 0, 1), (1, 1, 2), (2, 2, 3)]);
        let b = small(tmp.path(), "b", (3, 3), vec![(0, 1, 1), (1, 2, 2), (2, 0, 3)]);
        corrupt_first_index(if which == 0 { &a } else { &b }, 77);
        let out = tmp.path().join("c");
        for options in
            [SpgemmOptions::default(), SpgemmOptions { max_block_bytes: Some(20), ..SpgemmOptions::default() }]
        {
            let e = spgemm(&a, &b, &out, &options, None).unwrap_err();
            assert!(matches!(e, Error::Corrupt { .. }), "{e}");
            assert!(!out.exists());
        }
        let bad = if which == 0 { &a } else { &b };
        let e = transpose(bad, &out, None, &OpOptions::default(), None).unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. }), "{e}");
        let e = add(&a, &b, &out, &AddOptions::default(), None).unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. }), "{e}");
        assert!(!out.exists());
    }
}

/// A row of `B` whose indices are in range but out of order is corrupt (the writer never makes
/// one): every accumulator refuses it, whether `B` is read in place or copied (int64 into a float64
/// product), instead of reading a window it miscomputed.
#[test]
fn unsorted_rows_of_b_are_corrupt() {
    for int_b in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let a = small(tmp.path(), "a", (2, 3), vec![(0, 0, 1), (1, 1, 2)]);
        let entries = vec![(0, 0, 1), (0, 2, 2), (1, 1, 3)];
        let b = match int_b {
            false => small(tmp.path(), "b", (3, 3), entries),
            true => {
                write::<i64>(&Triplets { shape: (3, 3), entries }, &tmp.path().join("b"), Layout::Csr, 1 << 20, true)
                    .unwrap()
            }
        };
        // Row 0 of B: columns (0, 2) become (2, 0).
        let seg = b.segments().iter().find(|s| s.nnz > 0).unwrap();
        let path = b.dir().join(&seg.indices.path);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[..8].copy_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
        std::fs::write(&path, bytes).unwrap();
        let out = tmp.path().join("c");
        for accumulator in
            [Accumulator::Auto, Accumulator::Sort, Accumulator::Hash, Accumulator::Dense, Accumulator::Window]
        {
            for max_block_bytes in [None, Some(20)] {
                let options = SpgemmOptions { accumulator, max_block_bytes, ..SpgemmOptions::default() };
                let e = spgemm(&a, &b, &out, &options, None).unwrap_err();
                assert!(matches!(e, Error::Corrupt { .. }), "{e}");
                assert!(!out.exists());
            }
        }
    }
}

#[test]
fn existing_outputs_need_force() {
    let tmp = tempfile::tempdir().unwrap();
    let a = small(tmp.path(), "a", (2, 2), vec![(0, 1, 1), (1, 0, 2)]);
    let e = transpose(&a, a.dir(), None, &OpOptions::default(), None).unwrap_err();
    assert!(e.to_string().contains("--force"), "{e}");
    let mut options = OpOptions::default();
    options.writer.overwrite = true;
    let other = tmp.path().join("b");
    transpose(&a, &other, None, &options, None).unwrap();
    let (again, _) = transpose(&a, &other, None, &options, None).unwrap();
    assert_eq!(entries_of(&again), vec![(0, 1, 2.0), (1, 0, 1.0)]);
}

#[test]
fn the_commands_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let lap = t.join("lap");
    ok(&["generate", "laplace2d", "--n", "20", "-o", p(&lap)]);
    let c = t.join("c");
    let out = ok(&["spgemm", p(&lap), p(&lap), "-o", p(&c), "--json", "--memory", "64M"]);
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["rows"], 400);
    assert_eq!(j["flops"], 9288);
    for key in ["seconds", "nnz", "flops", "peak_rss_bytes"] {
        assert!(j.get(key).is_some(), "--json lacks {key}: {j}");
    }
    let expected = entries_of(&Matrix::open(&c).unwrap());
    let sq = {
        let a = Matrix::open(&lap).unwrap().to_sprs().unwrap();
        &a * &a
    };
    assert_eq!(expected.len(), sq.nnz());
    // The other semirings and layouts.
    ok(&["spgemm", p(&lap), p(&lap), "-o", p(&t.join("mp")), "--semiring", "min-plus", "--quiet"]);
    let pat = t.join("pat");
    ok(&["spgemm", p(&lap), p(&lap), "-o", p(&pat), "--semiring", "pattern"]);
    assert_eq!(Matrix::open(&pat).unwrap().value_type(), ValueType::Pattern);
    let csc = t.join("csc");
    ok(&["convert", p(&lap), "--layout", "csc", "-o", p(&csc), "--json"]);
    let back = t.join("back");
    ok(&["transpose", p(&csc), "-o", p(&back), "--layout", "csr"]);
    assert_eq!(entries_of(&Matrix::open(&back).unwrap()), entries_of(&Matrix::open(&lap).unwrap()));
    let zero = t.join("zero");
    ok(&["add", p(&lap), p(&back), "-o", p(&zero), "--alpha", "1", "--beta", "-1", "--drop-zeros"]);
    assert_eq!(Matrix::open(&zero).unwrap().nnz(), 0);
    // Errors: one line, exit 1, nothing left.
    let rect = t.join("rect");
    ok(&["generate", "uniform", "--rows", "7", "--cols", "5", "--nnz-per-row", "2", "-o", p(&rect)]);
    let bad = t.join("bad");
    let e = fails(&["spgemm", p(&rect), p(&rect), "-o", p(&bad)]);
    assert!(e.contains("cannot multiply a 7 x 5 matrix by a 7 x 5 matrix"), "{e}");
    let e = fails(&["add", p(&rect), p(&lap), "-o", p(&bad)]);
    assert!(e.contains("shapes differ"), "{e}");
    assert!(!bad.exists());
    let e = fails(&["transpose", p(&lap), "-o", p(&c)]);
    assert!(e.contains("--force"), "{e}");
    ok(&["transpose", p(&lap), "-o", p(&c), "--force"]);
}

/// A*A, A*A^T and A + A^T of real matrices equal scipy's (through `tests/python/check_product.py`).
#[test]
fn real_matrices_equal_scipy() {
    let Some(dir) = std::env::var_os("SPARSEDISK_REAL_DATASETS").filter(|v| !v.is_empty()) else {
        eprintln!("real_matrices_equal_scipy: SKIPPED: SPARSEDISK_REAL_DATASETS is not set");
        return;
    };
    let python = std::env::var("SPARSEDISK_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = std::process::Command::new(&python).args(["-c", "import scipy"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("SPARSEDISK_REQUIRE_PYTHON").is_err(),
            "SPARSEDISK_REQUIRE_PYTHON=1 but scipy is missing"
        );
        eprintln!("real_matrices_equal_scipy: SKIPPED: no scipy");
        return;
    }
    let dir = Path::new(&dir);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_product.py");
    let tmp = tempfile::tempdir().unwrap();
    for (i, file) in [
        "derived/suitesparse/bcsstk16.mtx",
        "suitesparse/ParU/Matrix/bayer10.mtx",
        "ginkgo/matrices/test/ani4.mtx",
        "derived/pypi_pyamg/bar.mtx",
    ]
    .iter()
    .enumerate()
    {
        let mtx = dir.join(file);
        assert!(mtx.is_file(), "{} is missing", mtx.display());
        let a = tmp.path().join(format!("a{i}"));
        ok(&["import", p(&mtx), "-o", p(&a), "--value-type", "f64", "--segment-size", "64K"]);
        let at = tmp.path().join(format!("at{i}"));
        ok(&["transpose", p(&a), "-o", p(&at), "--memory", "64M"]);
        for (op, b, cmd) in [("AA", &a, "spgemm"), ("AAT", &at, "spgemm"), ("ApAT", &at, "add")] {
            let c = tmp.path().join(format!("{op}{i}"));
            ok(&[cmd, p(&a), p(b), "-o", p(&c), "--segment-size", "64K"]);
            let c_mtx = tmp.path().join(format!("{op}{i}.mtx"));
            ok(&["export", p(&c), "-o", p(&c_mtx)]);
            let out = std::process::Command::new(&python).arg(&script).arg(&mtx).arg(op).arg(&c_mtx).output().unwrap();
            assert!(
                out.status.success(),
                "{file} {op}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// The entries of an in-memory product as `(row, col, value)` sorted by `(row, col)`, after checking
/// its structure the way sprs's checked constructor does (sorted, in-range inner indices).
fn memory_entries<T: Element, I: StoredIndex>(c: sprs::CsMatI<T, I, usize>) -> Vec<(u64, u64, f64)> {
    let shape = c.shape();
    let csr = c.is_csr();
    let (indptr, indices, data) = c.into_raw_storage();
    let c = match csr {
        true => sprs::CsMatI::try_new(shape, indptr, indices, data),
        false => sprs::CsMatI::try_new_csc(shape, indptr, indices, data),
    }
    .map_err(|e| e.3)
    .expect("a valid sparse matrix");
    let mut out: Vec<(u64, u64, f64)> =
        c.iter().map(|(v, (r, col))| (r.index() as u64, col.index() as u64, v.to_f64())).collect();
    out.sort_by_key(|&(r, c, _)| (r, c));
    out
}

/// `A B` in memory with the value type the product has and the index type `wide` picks.
fn in_memory(a: &Matrix, b: &Matrix, options: &SpgemmOptions, wide: bool) -> sparsedisk::Result<Vec<(u64, u64, f64)>> {
    let vt = sparsedisk::ops::spgemm::output_value_type(a.value_type(), b.value_type(), options.semiring);
    Ok(match (vt, wide) {
        (ValueType::Float64, false) => memory_entries(spgemm_in_memory::<f64, u32>(a, b, options, None)?.0),
        (ValueType::Float64, true) => memory_entries(spgemm_in_memory::<f64, u64>(a, b, options, None)?.0),
        (ValueType::Int64, false) => memory_entries(spgemm_in_memory::<i64, u32>(a, b, options, None)?.0),
        (ValueType::Int64, true) => memory_entries(spgemm_in_memory::<i64, u64>(a, b, options, None)?.0),
        (_, false) => memory_entries(spgemm_in_memory::<(), u32>(a, b, options, None)?.0),
        (_, true) => memory_entries(spgemm_in_memory::<(), u64>(a, b, options, None)?.0),
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    /// The product held in memory equals the oracle and the product on disk: random shapes (empty
    /// rows and dimensions included), both layouts for each operand (B converted when they differ),
    /// every value type, many segments, every accumulator and semiring, one or two threads.
    #[test]
    fn spgemm_in_memory_equals_the_oracle_and_the_disk(
        (ta, tb) in operands(),
        (la, lb) in (layout(), layout()),
        (ka, kb) in (0u8..4, 0u8..4),
        seg in prop_oneof![1u64..64, Just(1u64 << 20)],
        accumulator in accumulator(),
        semiring in semiring(),
        drop_zeros in any::<bool>(),
        threads in 1usize..=2,
        wide in any::<bool>(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let a = write_kind(&ta, &tmp.path().join("a"), la, ka, seg);
        let b = write_kind(&tb, &tmp.path().join("b"), lb, kb, seg);
        let options = SpgemmOptions {
            op: op_options(seg, Some(3)),
            semiring,
            drop_zeros,
            max_block_bytes: None,
            accumulator,
            scratch_dir: None,
        };
        let got = pool(threads).install(|| in_memory(&a, &b, &options, wide)).unwrap();
        let mut expected = product_oracle(&ta, ka, &tb, kb, semiring);
        if drop_zeros {
            expected.retain(|e| e.2 != 0.0);
        }
        prop_assert_eq!(&got, &expected);
        let (c, _) = pool(threads).install(|| spgemm(&a, &b, tmp.path().join("c"), &options, None)).unwrap();
        prop_assert_eq!(got, entries_of(&c));
    }
}

/// Float data, where the order of the additions shows in the bits: the product in memory equals the
/// product on disk bit for bit, for every accumulator and thread count, on a 2-D Laplacian with
/// irrational-looking values (short banded rows) and a random matrix with long rows.
#[test]
fn spgemm_in_memory_is_bit_for_bit_the_disk_product() {
    use sparsedisk::MatrixWriter;
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = common::SplitMix(7);
    let float = |rng: &mut common::SplitMix| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 0.7;
    let n = 60u64;
    let options = WriterOptions { segment_bytes: 16 << 10, durable: false, ..WriterOptions::default() };
    let mut w =
        MatrixWriter::<f64>::create(tmp.path().join("lap"), (n * n, n * n), Layout::Csr, options.clone()).unwrap();
    for i in 0..n * n {
        let cols: Vec<u64> = [i.checked_sub(n), i.checked_sub(1), Some(i), Some(i + 1), Some(i + n)]
            .into_iter()
            .flatten()
            .filter(|&c| c < n * n)
            .collect();
        let vals: Vec<f64> = cols.iter().map(|_| float(&mut rng)).collect();
        w.push_row(&cols, &vals).unwrap();
    }
    let lap = w.finish().unwrap();
    let mut w = MatrixWriter::<f64>::create(tmp.path().join("rand"), (300, 300), Layout::Csr, options).unwrap();
    for _ in 0..300 {
        let mut cols: Vec<u64> = (0..rng.below(80)).map(|_| rng.below(300)).collect();
        cols.sort_unstable();
        cols.dedup();
        let vals: Vec<f64> = cols.iter().map(|_| float(&mut rng)).collect();
        w.push_row(&cols, &vals).unwrap();
    }
    let random = w.finish().unwrap();
    for m in [&lap, &random] {
        for accumulator in
            [Accumulator::Auto, Accumulator::Sort, Accumulator::Hash, Accumulator::Dense, Accumulator::Window]
        {
            let options = SpgemmOptions { accumulator, ..SpgemmOptions::default() };
            let out = tmp.path().join("c");
            let (c, _) = spgemm(m, m, &out, &options, None).unwrap();
            let disk = c.to_sprs().unwrap();
            for threads in [1, 2] {
                let (mem, stats) =
                    pool(threads).install(|| spgemm_in_memory::<f64, u32>(m, m, &options, None)).unwrap();
                assert_eq!(stats.nnz, c.nnz());
                assert_eq!(mem.indptr().raw_storage(), disk.indptr().raw_storage());
                assert!(mem.indices().iter().zip(disk.indices()).all(|(&x, &y)| x as usize == y));
                let same = mem.data().iter().zip(disk.data()).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same && mem.nnz() == disk.nnz(), "{accumulator:?} {threads}");
            }
            std::fs::remove_dir_all(&out).unwrap();
        }
    }
}

/// Bad inputs are clear errors: shapes that do not chain, a value type that is not the product's,
/// a budget below the minimum, a product or a right operand larger than the budget allows, a corrupt
/// operand; and a layout conversion leaves nothing in the temporary directory.
#[test]
fn spgemm_in_memory_refuses_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let a = small(tmp.path(), "a", (2, 3), vec![(0, 0, 1), (1, 2, 2)]);
    let b = small(tmp.path(), "b", (2, 3), vec![(1, 1, 1)]);
    let options = SpgemmOptions::default();
    let e = spgemm_in_memory::<f64, u32>(&a, &b, &options, None).unwrap_err();
    assert!(e.to_string().contains("A has 3 columns but B has 2 rows"), "{e}");
    let e = spgemm_in_memory::<i64, u32>(&a, &a.clone(), &options, None).unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    let a3 = small(tmp.path(), "a3", (3, 3), vec![(0, 0, 1), (1, 2, 2)]);
    let e = spgemm_in_memory::<i64, u32>(&a3, &a3, &options, None).unwrap_err();
    assert!(e.to_string().contains("ask for f64"), "{e}");
    let tiny = SpgemmOptions { op: OpOptions { memory_budget: 1 << 10, ..OpOptions::default() }, ..options.clone() };
    assert!(matches!(spgemm_in_memory::<f64, u32>(&a3, &a3, &tiny, None), Err(Error::InvalidInput(_))));
    // A column of ones times a row of ones: 9 M entries (108 MB) from 6,000, beyond what the minimum
    // budget leaves for the product.
    let n = 3000u64;
    let col = small(tmp.path(), "col", (n, 1), (0..n).map(|r| (r, 0, 1)).collect());
    let row = small(tmp.path(), "row", (1, n), (0..n).map(|c| (0, c, 1)).collect());
    let min = SpgemmOptions {
        op: OpOptions { memory_budget: sparsedisk::ops::MIN_OP_MEMORY, ..OpOptions::default() },
        ..options.clone()
    };
    let e = spgemm_in_memory::<f64, u32>(&col, &row, &min, None).map(|r| r.1).unwrap_err();
    assert!(e.to_string().contains("memory budget"), "{e}");
    let (c, _) = spgemm_in_memory::<f64, u32>(&col, &row, &options, None).unwrap();
    assert_eq!(c.nnz(), (n * n) as usize);
    let blocked = SpgemmOptions { max_block_bytes: Some(64), ..options.clone() };
    let e = spgemm_in_memory::<f64, u32>(&row, &col, &blocked, None).map(|r| r.1).unwrap_err();
    assert!(e.to_string().contains("right operand"), "{e}");
    // B in the other layout: converted in a directory made in the scratch directory, and removed.
    let (at, _) = convert(&a3, tmp.path().join("a3c"), Layout::Csc, &OpOptions::default(), None).unwrap();
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let in_scratch = SpgemmOptions { scratch_dir: Some(scratch.clone()), ..options.clone() };
    let (c, stats) = spgemm_in_memory::<f64, u32>(&a3, &at, &in_scratch, None).unwrap();
    assert_eq!((c.nnz(), stats.conversions), (1, 1));
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0, "the conversion's directory is left behind");
    for which in 0..2 {
        let a = small(tmp.path(), &format!("ca{which}"), (3, 3), vec![(0, 0, 1), (1, 1, 2), (2, 2, 3)]);
        let b = small(tmp.path(), &format!("cb{which}"), (3, 3), vec![(0, 1, 1), (1, 2, 2), (2, 0, 3)]);
        corrupt_first_index(if which == 0 { &a } else { &b }, 77);
        let e = spgemm_in_memory::<f64, u32>(&a, &b, &options, None).unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    }
}
