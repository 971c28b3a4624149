//! Property tests of the triplet builder against an exact oracle: any order, any chunking (so any
//! number of spilled runs), any duplicate policy, zeros kept or dropped, both layouts.

mod common;

use common::entries_of;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use sparsedisk::builder::{BuildOptions, Duplicates, TripletBuilder};
use sparsedisk::{Error, Layout, Matrix, Triplet, WriterOptions};
use std::collections::BTreeMap;

fn policy() -> impl Strategy<Value = Duplicates> {
    prop_oneof![
        Just(Duplicates::Sum),
        Just(Duplicates::First),
        Just(Duplicates::Last),
        Just(Duplicates::Min),
        Just(Duplicates::Max),
        Just(Duplicates::Error),
    ]
}

/// The oracle: group by position in input order, combine, drop zeros if asked.
fn expected(triplets: &[(u64, u64, i64)], policy: Duplicates, drop_zeros: bool) -> Option<Vec<(u64, u64, f64)>> {
    let mut groups: BTreeMap<(u64, u64), Vec<i64>> = BTreeMap::new();
    for &(r, c, v) in triplets {
        groups.entry((r, c)).or_default().push(v);
    }
    let mut out = Vec::new();
    for ((r, c), vs) in groups {
        let v = match policy {
            Duplicates::Sum => vs.iter().sum(),
            Duplicates::First => vs[0],
            Duplicates::Last => *vs.last().unwrap(),
            Duplicates::Min => *vs.iter().min().unwrap(),
            Duplicates::Max => *vs.iter().max().unwrap(),
            Duplicates::Error => {
                if vs.len() > 1 {
                    return None;
                }
                vs[0]
            }
        };
        if !(drop_zeros && v == 0) {
            out.push((r, c, v as f64));
        }
    }
    Some(out)
}

fn options(
    layout: Layout,
    policy: Duplicates,
    drop_zeros: bool,
    chunk: usize,
    shape: Option<(u64, u64)>,
) -> BuildOptions {
    BuildOptions {
        memory_budget: 64 << 20,
        duplicates: policy,
        drop_zeros,
        layout,
        shape,
        square: false,
        writer: WriterOptions { segment_bytes: 96, durable: false, ..WriterOptions::default() },
        max_chunk_triplets: Some(chunk),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn builds_equal_the_oracle(
        rows in 1u64..30,
        cols in 1u64..30,
        raw in prop::collection::vec((0u64..1000, 0u64..1000, -2i64..=2), 0..300),
        layout in prop_oneof![Just(Layout::Csr), Just(Layout::Csc)],
        policy in policy(),
        drop_zeros in any::<bool>(),
        chunk in prop_oneof![1usize..8, 8usize..64, Just(100_000usize)],
        declare_shape in any::<bool>(),
    ) {
        let triplets: Vec<(u64, u64, i64)> = raw.into_iter().map(|(r, c, v)| (r % rows, c % cols, v)).collect();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        let shape = declare_shape.then_some((rows, cols));
        let mut b = TripletBuilder::<f64>::new(&dir, options(layout, policy, drop_zeros, chunk, shape)).unwrap();
        let mut pushed = Ok(());
        for &(r, c, v) in &triplets {
            pushed = b.push(r, c, v as f64);
            if pushed.is_err() {
                break;
            }
        }
        // Under the error policy a duplicate may already be found while spilling a run.
        let result = match pushed {
            Ok(()) => b.finish(),
            Err(e) => {
                drop(b);
                Err(e)
            }
        };
        match expected(&triplets, policy, drop_zeros) {
            None => {
                let err = result.expect_err("duplicates under the error policy must fail");
                prop_assert!(err.to_string().contains("more than once"), "{}", err);
                prop_assert!(!dir.exists(), "a failed build leaves nothing behind");
            }
            Some(want) => {
                let (m, stats) = result.unwrap();
                let m2 = Matrix::open(&dir).unwrap();
                m2.verify().unwrap();
                prop_assert_eq!(m.layout(), layout);
                let inferred = (
                    triplets.iter().map(|t| t.0 + 1).max().unwrap_or(0),
                    triplets.iter().map(|t| t.1 + 1).max().unwrap_or(0),
                );
                prop_assert_eq!(m.shape(), shape.unwrap_or(inferred));
                prop_assert_eq!(entries_of(&m2), want);
                prop_assert_eq!(stats.triplets, triplets.len() as u64);
                prop_assert_eq!(stats.nnz + stats.duplicates_combined + stats.zeros_dropped, triplets.len() as u64);
                // A run is spilled each time the chunk fills, and, once any run exists, for the rest;
                // chunks that came sorted, each above the one before, go straight into the matrix
                // (and become one run if a later chunk does not follow).
                let n = triplets.len();
                let chunks = if n >= chunk { n.div_ceil(chunk) } else { 0 };
                if stats.direct_chunks == 0 {
                    prop_assert_eq!(stats.runs, chunks);
                } else {
                    prop_assert!(shape.is_some());
                    let counted = stats.runs + stats.direct_chunks;
                    prop_assert!(counted == chunks || counted == chunks + 1, "{:?}, {} chunks", stats, chunks);
                }
                // No staging area survives.
                for e in std::fs::read_dir(&dir).unwrap() {
                    let name = e.unwrap().file_name().into_string().unwrap();
                    prop_assert!(!name.starts_with(".staging"), "{}", name);
                }
            }
        }
    }

    #[test]
    fn pattern_and_integer_builds(
        raw in prop::collection::vec((0u64..12, 0u64..9, -5i64..=5), 0..120),
        chunk in 1usize..40,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let mut b = TripletBuilder::<()>::new(tmp.path().join("p"), options(Layout::Csr, Duplicates::Sum, false, chunk, None)).unwrap();
        let mut i = TripletBuilder::<i64>::new(tmp.path().join("i"), options(Layout::Csc, Duplicates::Max, true, chunk, None)).unwrap();
        for &(r, c, v) in &raw {
            b.push(r, c, ()).unwrap();
            i.push(r, c, v).unwrap();
        }
        let (p, _) = b.finish().unwrap();
        let (m, _) = i.finish().unwrap();
        let want_p: Vec<(u64, u64, f64)> = expected(&raw, Duplicates::First, false).unwrap().into_iter().map(|(r, c, _)| (r, c, 1.0)).collect();
        prop_assert_eq!(entries_of(&p), want_p);
        prop_assert_eq!(entries_of(&m), expected(&raw, Duplicates::Max, true).unwrap());
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 120,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    /// `push_triplets` buckets whole slices into blocks (the path an import's parse workers take);
    /// it must give the same matrix, statistics and spills as pushing one entry at a time, whatever
    /// the slicing, the policy and the chunk size.
    #[test]
    fn blocks_equal_single_pushes(
        rows in 1u64..40,
        cols in 1u64..40,
        raw in prop::collection::vec((0u64..1000, 0u64..1000, -2i64..=2), 0..400),
        cuts in prop::collection::vec(1usize..90, 1..12),
        layout in prop_oneof![Just(Layout::Csr), Just(Layout::Csc)],
        policy in policy(),
        drop_zeros in any::<bool>(),
        chunk in prop_oneof![1usize..8, 8usize..64, Just(100_000usize)],
        declare_shape in any::<bool>(),
    ) {
        let triplets: Vec<(u64, u64, i64)> = raw.into_iter().map(|(r, c, v)| (r % rows, c % cols, v)).collect();
        let tmp = tempfile::tempdir().unwrap();
        let shape = declare_shape.then_some((rows, cols));
        let one = tmp.path().join("one");
        let mut b = TripletBuilder::<f64>::new(&one, options(layout, policy, drop_zeros, chunk, shape)).unwrap();
        let single = triplets.iter().try_for_each(|&(r, c, v)| b.push(r, c, v as f64)).and_then(|()| b.finish());
        let blocks = tmp.path().join("blocks");
        let mut b = TripletBuilder::<f64>::new(&blocks, options(layout, policy, drop_zeros, chunk, shape)).unwrap();
        let as_triplets: Vec<Triplet<f64>> =
            triplets.iter().map(|&(row, col, v)| Triplet { row, col, value: v as f64 }).collect();
        let mut rest = &as_triplets[..];
        let mut k = 0;
        let mut pushed = Ok(());
        while !rest.is_empty() && pushed.is_ok() {
            let (now, later) = rest.split_at(cuts[k % cuts.len()].min(rest.len()));
            pushed = b.push_triplets(now);
            rest = later;
            k += 1;
        }
        let sliced = pushed.and_then(|()| b.finish());
        match (single, sliced) {
            (Ok((m1, s1)), Ok((m2, s2))) => {
                prop_assert_eq!(entries_of(&m1), entries_of(&m2));
                prop_assert_eq!(m1.shape(), m2.shape());
                prop_assert_eq!(
                    (s1.runs, s1.nnz, s1.duplicates_combined, s1.zeros_dropped, s1.triplets),
                    (s2.runs, s2.nnz, s2.duplicates_combined, s2.zeros_dropped, s2.triplets)
                );
            }
            (Err(e1), Err(e2)) => {
                prop_assert_eq!(e1.to_string(), e2.to_string());
                prop_assert!(!blocks.exists(), "a failed build leaves nothing behind");
            }
            (a, b) => prop_assert!(false, "one path failed, the other did not: {:?} / {:?}", a.err(), b.err()),
        }
    }
}

#[test]
fn out_of_bounds_and_existing_output_fail_early() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let mut b =
        TripletBuilder::<f64>::new(&dir, options(Layout::Csr, Duplicates::Sum, false, 4, Some((3, 3)))).unwrap();
    assert!(matches!(b.push(3, 0, 1.0), Err(Error::OutOfBounds { row: 3, col: 0, shape: (3, 3) })));
    let slice = [(0, 0), (1, 2), (1, 3), (5, 0)].map(|(row, col)| Triplet { row, col, value: 1.0 });
    assert!(matches!(b.push_triplets(&slice), Err(Error::OutOfBounds { row: 1, col: 3, shape: (3, 3) })));
    for k in 0..10 {
        b.push(k % 3, k % 2, 1.0).unwrap();
    }
    drop(b);
    assert!(!dir.exists(), "a dropped builder that spilled leaves nothing");

    let mut b = TripletBuilder::<f64>::new(&dir, options(Layout::Csr, Duplicates::Sum, false, 4, None)).unwrap();
    b.push(0, 0, 1.0).unwrap();
    b.finish().unwrap();
    let err = TripletBuilder::<f64>::new(&dir, options(Layout::Csr, Duplicates::Sum, false, 4, None)).err().unwrap();
    assert!(err.to_string().contains("already holds a matrix"), "{err}");

    // Overwrite: the old matrix stays readable while the new one is built (through spills).
    let mut o = options(Layout::Csr, Duplicates::Sum, false, 3, None);
    o.writer.overwrite = true;
    let mut b = TripletBuilder::<f64>::new(&dir, o).unwrap();
    for k in 0..20 {
        b.push(k, k, 2.0).unwrap();
    }
    assert_eq!(entries_of(&Matrix::open(&dir).unwrap()), vec![(0, 0, 1.0)]);
    let (m, stats) = b.finish().unwrap();
    assert!(stats.runs >= 5);
    assert_eq!(m.nnz(), 20);
    assert_eq!(m.manifest().generation, 2);
}

#[test]
fn budget_too_small_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let o = BuildOptions { memory_budget: 1 << 20, ..BuildOptions::default() };
    let err = TripletBuilder::<f64>::new(tmp.path().join("m"), o).err().unwrap();
    assert!(err.to_string().contains("too small"), "{err}");
}

/// Builds `triplets` twice, in one chunk and spilled in chunks of `chunk` entries, with dense blocks
/// found as by default, and checks both against the oracle (summed duplicates) and against each other,
/// dense blocks included.
fn spilled_equals_in_memory(triplets: &[(u64, u64, i64)], shape: Option<(u64, u64)>, chunk: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let want = expected(triplets, Duplicates::Sum, false).unwrap();
    let mut built = Vec::new();
    for (name, cap) in [("in-memory", 1 << 20), ("spilled", chunk)] {
        let dir = tmp.path().join(name);
        let mut options = options(Layout::Csr, Duplicates::Sum, false, cap, shape);
        options.writer = WriterOptions { durable: false, ..WriterOptions::default() };
        let mut b = TripletBuilder::<f64>::new(&dir, options).unwrap();
        for &(r, c, v) in triplets {
            b.push(r, c, v as f64).unwrap();
        }
        let (m, stats) = b.finish().unwrap();
        assert_eq!(stats.runs + stats.direct_chunks > 0, name == "spilled");
        m.verify().unwrap();
        assert_eq!(entries_of(&m), want, "{name}");
        built.push(m.info());
    }
    assert_eq!(built[0].dense_nnz, built[1].dense_nnz, "dense blocks found either way");
    assert_eq!(built[0].segments, built[1].segments);
}

/// A row far longer than a merge window (and a dense block inside it) reaches the writer in parts;
/// duplicates of its entries fall in different runs.
#[test]
fn rows_longer_than_a_window_are_written_in_parts() {
    let mut rng = common::SplitMix(7);
    let mut triplets = Vec::new();
    for _ in 0..2 {
        for c in 0..20_000u64 {
            triplets.push((3, c * 3 % 50_000, 1 + (rng.next_u64() % 5) as i64));
        }
    }
    for r in 0..128u64 {
        for c in 1000..1064u64 {
            triplets.push((r, c, 2));
        }
    }
    for _ in 0..5000 {
        triplets.push((rng.below(200), rng.below(50_000), 1));
    }
    // Shuffled, so each run holds pieces of the long row.
    for i in (1..triplets.len()).rev() {
        triplets.swap(i, rng.below(i as u64 + 1) as usize);
    }
    spilled_equals_in_memory(&triplets, None, 3000);
}

/// Column indices beyond 32 bits take wide run records and windows.
#[test]
fn indices_beyond_32_bits_spill_and_merge() {
    let mut rng = common::SplitMix(11);
    let big = 1u64 << 40;
    let triplets: Vec<(u64, u64, i64)> = (0..20_000)
        .map(|k| {
            let c = if k % 3 == 0 { big + rng.below(50) } else { rng.below(100) };
            (rng.below(300), c, 1 + (k % 4) as i64)
        })
        .collect();
    spilled_equals_in_memory(&triplets, None, 1500);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Input sorted by row (as exported files are), with duplicates, zeros and an unsorted tail: the
    /// merge concatenates runs that follow each other and sorts where they overlap; either way the
    /// oracle's matrix.
    #[test]
    fn presorted_input_equals_the_oracle(
        raw in prop::collection::vec((0u64..40, 0u64..40, -2i64..=2), 0..400),
        tail in prop::collection::vec((0u64..40, 0u64..40, -2i64..=2), 0..20),
        chunk in 1usize..60,
        drop_zeros in any::<bool>(),
        layout in prop_oneof![Just(Layout::Csr), Just(Layout::Csc)],
    ) {
        let mut triplets = raw;
        triplets.sort_by_key(|&(r, c, _)| match layout { Layout::Csr => (r, c), Layout::Csc => (c, r) });
        triplets.extend(tail);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        let mut b = TripletBuilder::<f64>::new(&dir, options(layout, Duplicates::Sum, drop_zeros, chunk, Some((40, 40)))).unwrap();
        for &(r, c, v) in &triplets {
            b.push(r, c, v as f64).unwrap();
        }
        let (m, _) = b.finish().unwrap();
        m.verify().unwrap();
        prop_assert_eq!(entries_of(&m), expected(&triplets, Duplicates::Sum, drop_zeros).unwrap());
    }
}

/// Sorted input with a declared shape goes straight into the matrix, dense blocks included; an
/// unsorted tail then turns what was written into a run (read back from the unpublished segments,
/// dense blocks and all) and the merge takes over.
#[test]
fn sorted_input_written_straight_then_undone() {
    let mut rng = common::SplitMix(5);
    let mut triplets = Vec::new();
    for r in 0..300u64 {
        for c in 0..64u64 {
            if r < 128 || rng.below(10) == 0 {
                triplets.push((r, (c * 7 + r) % 64 + 1000 * (r % 3), 1 + (c % 3) as i64));
            }
        }
    }
    triplets.sort_by_key(|&(r, c, _)| (r, c));
    spilled_equals_in_memory(&triplets, Some((300, 3000)), 2000);
    let tail: Vec<(u64, u64, i64)> = (0..500).map(|_| (rng.below(300), rng.below(3000), 1)).collect();
    triplets.extend(tail);
    spilled_equals_in_memory(&triplets, Some((300, 3000)), 2000);
}
