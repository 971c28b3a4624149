//! Dense blocks against exact oracles: random matrices whose blocks range from empty to full (values
//! small integers, explicit zeros included, so every product is exact whatever the summation order),
//! small block shapes so that they occur in small matrices, the dense path forced on and off, both
//! layouts, every valued type, tiny segments (blocks cut by segment boundaries), one and two threads
//! with every segment split across tasks. Every kernel and operation must give the oracle's result,
//! the same with the path on and off; then the command line, and corrupt dense arrays.

mod common;

use common::{copy_dir, entries_of, ok, p, SplitMix, Triplets};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use sparsedisk::kernels::{spmm, spmv, spmv_transpose};
use sparsedisk::ops::{add, spgemm, transpose, AddOptions, OpOptions, SpgemmOptions};
use sparsedisk::{DenseOptions, Element, Layout, Matrix, MatrixWriter, WriterOptions};
use std::collections::BTreeMap;
use std::path::Path;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

/// A matrix whose `block`-sized regions each get their own density among empty, sparse, half, dense
/// and full, values in -3..=3 (zeros kept as explicit entries).
fn blocky(rng: &mut SplitMix, rows: u64, cols: u64, block: [u64; 2]) -> Triplets {
    let densities = [0.0, 0.1, 0.5, 0.8, 1.0];
    let mut region: BTreeMap<(u64, u64), f64> = BTreeMap::new();
    let mut entries = Vec::new();
    for r in 0..rows {
        for c in 0..cols {
            let d = *region
                .entry((r / block[0], c / block[1]))
                .or_insert_with(|| densities[rng.below(densities.len() as u64) as usize]);
            if (rng.next_u64() as f64 / u64::MAX as f64) < d {
                entries.push((r, c, rng.below(7) as i64 - 3));
            }
        }
    }
    Triplets { shape: (rows, cols), entries }
}

fn write<V: Element>(
    t: &Triplets,
    dir: &Path,
    layout: Layout,
    segment_bytes: u64,
    dense: Option<DenseOptions>,
) -> Matrix {
    let options = WriterOptions { segment_bytes, durable: false, dense, ..WriterOptions::default() };
    let mut w = MatrixWriter::<V>::create(dir, t.shape, layout, options).unwrap();
    for (r, c, v) in t.sorted_for(layout) {
        let (o, i) = if layout == Layout::Csr { (r, c) } else { (c, r) };
        w.push_entry(o, i, V::from_f64(v as f64)).unwrap();
    }
    w.finish().unwrap()
}

fn write_kind(t: &Triplets, dir: &Path, layout: Layout, kind: u8, seg: u64, dense: Option<DenseOptions>) -> Matrix {
    match kind {
        0 => write::<f64>(t, dir, layout, seg, dense),
        1 => write::<f32>(t, dir, layout, seg, dense),
        _ => write::<i64>(t, dir, layout, seg, dense),
    }
}

fn oracle_entries(t: &Triplets) -> Vec<(u64, u64, f64)> {
    let mut e: Vec<(u64, u64, f64)> = t.entries.iter().map(|&(r, c, v)| (r, c, v as f64)).collect();
    e.sort_by_key(|&(r, c, _)| (r, c));
    e
}

/// `alpha A X + beta Y0` by the definition (`X` is `cols x k`, row-major).
fn product_oracle(t: &Triplets, x: &[f64], k: usize, transpose: bool, alpha: f64, beta: f64, y0: &[f64]) -> Vec<f64> {
    let mut y: Vec<f64> = y0.iter().map(|v| beta * v).collect();
    for &(r, c, v) in &t.entries {
        let (o, i) = if transpose { (c, r) } else { (r, c) };
        for j in 0..k {
            y[o as usize * k + j] += alpha * v as f64 * x[i as usize * k + j];
        }
    }
    y
}

fn small_ints(rng: &mut SplitMix, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.below(9) as f64 - 4.0).collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 100,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    })]

    /// Storage, export and every product: the dense path on gives exactly the oracle's result.
    #[test]
    fn dense_blocks_give_the_oracles_results(
        seed in any::<u64>(),
        rows in 0u64..30,
        cols in 0u64..30,
        bo in 1u64..6,
        bi in 1u64..6,
        threshold in prop::sample::select(vec![0.2, 0.5, 0.75, 1.0]),
        kind in 0u8..3,
        csc in any::<bool>(),
        seg in prop::sample::select(vec![1u64, 96, 700, 1 << 20]),
        threads in 1usize..3,
    ) {
        let mut rng = SplitMix(seed);
        let t = blocky(&mut rng, rows, cols, [bo, bi]);
        let layout = if csc { Layout::Csc } else { Layout::Csr };
        let tmp = tempfile::tempdir().unwrap();
        let options = DenseOptions { threshold, block_shape: [bo, bi] };
        let on = write_kind(&t, &tmp.path().join("on"), layout, kind, seg, Some(options));
        let off = write_kind(&t, &tmp.path().join("off"), layout, kind, seg, None);
        on.verify().unwrap();
        prop_assert_eq!(on.nnz(), t.entries.len() as u64);
        prop_assert_eq!(off.info().dense_blocks, 0);
        // Lossless: the same entries, explicit zeros included.
        let want = oracle_entries(&t);
        prop_assert_eq!(&entries_of(&on), &want);
        prop_assert_eq!(&entries_of(&off), &want);

        sparsedisk::kernels::set_min_task_entries(1);
        pool(threads).install(|| -> Result<(), TestCaseError> {
            for k in [1usize, 3, 8, 21] {
                for transpose in [false, true] {
                    let (xn, yn) = if transpose { (rows, cols) } else { (cols, rows) };
                    let x = small_ints(&mut rng, xn as usize * k);
                    let y0 = small_ints(&mut rng, yn as usize * k);
                    let (alpha, beta) = (2.0, if k == 3 { 0.0 } else { -1.0 });
                    let want = product_oracle(&t, &x, k, transpose, alpha, beta, &y0);
                    for m in [&on, &off] {
                        let mut y = y0.clone();
                        match (k, transpose) {
                            (1, false) => spmv(m, alpha, &x, beta, &mut y).map(|_| ()),
                            (1, true) => spmv_transpose(m, alpha, &x, beta, &mut y).map(|_| ()),
                            (_, false) => spmm(m, alpha, &x, beta, &mut y, k).map(|_| ()),
                            (_, true) => {
                                // A^T X, column by column of X through the transposed SpMV.
                                let mut out = vec![0.0; yn as usize * k];
                                for j in 0..k {
                                    let xj: Vec<f64> = (0..xn as usize).map(|i| x[i * k + j]).collect();
                                    let mut yj: Vec<f64> = (0..yn as usize).map(|i| y0[i * k + j]).collect();
                                    spmv_transpose(m, alpha, &xj, beta, &mut yj).unwrap();
                                    for i in 0..yn as usize {
                                        out[i * k + j] = yj[i];
                                    }
                                }
                                y = out;
                                Ok(())
                            }
                        }
                        .unwrap();
                        prop_assert_eq!(&y, &want, "k = {}, transpose = {}", k, transpose);
                    }
                }
            }
            Ok(())
        })?;
    }

}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 30,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    })]

    /// Operations read dense blocks through merged rows and write them again through the writer:
    /// transpose, A + A^T and A A^T agree with the same operations on the all-sparse matrix.
    #[test]
    fn operations_agree_with_the_dense_path_on_and_off(
        seed in any::<u64>(),
        n in 0u64..24,
        m in 0u64..24,
        bo in 1u64..5,
        bi in 1u64..5,
        kind in 0u8..3,
        csc in any::<bool>(),
        seg in prop::sample::select(vec![1u64, 200, 1 << 20]),
    ) {
        let mut rng = SplitMix(seed);
        let t = blocky(&mut rng, n, m, [bo, bi]);
        let layout = if csc { Layout::Csc } else { Layout::Csr };
        let tmp = tempfile::tempdir().unwrap();
        let dense = Some(DenseOptions { threshold: 0.5, block_shape: [bo, bi] });
        let mut results = Vec::new();
        for (name, d) in [("on", dense), ("off", None)] {
            let dir = tmp.path().join(name);
            let a = write_kind(&t, &dir.join("a"), layout, kind, seg, d);
            let op = OpOptions {
                memory_budget: 64 << 20,
                writer: WriterOptions { segment_bytes: seg, durable: false, dense: d, ..WriterOptions::default() },
                max_chunk_entries: Some(7),
            };
            let (at, _) = transpose(&a, dir.join("at"), None, &op, None).unwrap();
            at.verify().unwrap();
            let (sym, _) = add(&a, &a, dir.join("twice"), &AddOptions { op: op.clone(), ..AddOptions::default() }, None).unwrap();
            sym.verify().unwrap();
            let (aat, _) = spgemm(&a, &at, dir.join("aat"), &SpgemmOptions { op, ..SpgemmOptions::default() }, None).unwrap();
            aat.verify().unwrap();
            results.push((entries_of(&at), entries_of(&sym), entries_of(&aat)));
        }
        prop_assert_eq!(&results[0], &results[1]);
        let mut want_t: Vec<(u64, u64, f64)> = t.entries.iter().map(|&(r, c, v)| (c, r, v as f64)).collect();
        want_t.sort_by_key(|&(r, c, _)| (r, c));
        prop_assert_eq!(&results[0].0, &want_t);
    }
}

/// A full matrix is all dense blocks, a half-full one (every other column) only above the threshold,
/// and blocks are found however the segments cut the rows.
#[test]
fn detection_follows_the_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let full = Triplets { shape: (40, 40), entries: (0..40).flat_map(|r| (0..40).map(move |c| (r, c, 1))).collect() };
    let half = Triplets {
        shape: (40, 40),
        entries: (0..40).flat_map(|r| (0..40).filter(|c| c % 2 == 0).map(move |c| (r, c, 1))).collect(),
    };
    let opts = |threshold| Some(DenseOptions { threshold, block_shape: [8, 8] });
    for seg in [1u64 << 20, 500] {
        let m = write::<f64>(&full, &tmp.path().join(format!("full-{seg}")), Layout::Csr, seg, opts(0.9));
        let info = m.info();
        assert_eq!(info.dense_nnz, 1600, "segment bound {seg}");
        assert_eq!(m.manifest().format_version, 2);
        m.verify().unwrap();
        let m = write::<f64>(&half, &tmp.path().join(format!("half-lo-{seg}")), Layout::Csr, seg, opts(0.5));
        assert_eq!(m.info().dense_nnz, 800);
        let m = write::<f64>(&half, &tmp.path().join(format!("half-hi-{seg}")), Layout::Csr, seg, opts(0.6));
        assert_eq!(m.info().dense_nnz, 0);
        assert_eq!(m.manifest().format_version, 1, "no dense block: a version 1 matrix");
    }
    // Pattern matrices never get dense blocks (they would store values).
    let m = common::write::<()>(&full, &tmp.path().join("pattern"), Layout::Csr, 1 << 20, true).unwrap();
    assert_eq!(m.info().dense_blocks, 0);
}

/// The command line: `generate blockdiag` and `arrow` store their dense structure dense by default,
/// `--dense-threshold off` does not, `info` reports it, `verify` passes, and both export the same text.
#[test]
fn command_line_generates_dense_structure() {
    let tmp = tempfile::tempdir().unwrap();
    for (kind, args) in [("blockdiag", ["--n", "300", "--block", "64"]), ("arrow", ["--n", "300", "--border", "64"])] {
        let on = tmp.path().join(format!("{kind}-on"));
        let off = tmp.path().join(format!("{kind}-off"));
        ok(&[&["generate", kind][..], &args, &["-q", "-o", p(&on)]].concat());
        ok(&[&["generate", kind][..], &args, &["-q", "--dense-threshold", "off", "-o", p(&off)]].concat());
        let info: serde_json::Value = serde_json::from_str(&ok(&["info", p(&on), "--json"])).unwrap();
        assert!(info["dense_blocks"].as_u64().unwrap() > 0, "{kind}: {info}");
        assert!(info["dense_nnz_share"].as_f64().unwrap() > 0.5, "{kind}: {info}");
        let info_off: serde_json::Value = serde_json::from_str(&ok(&["info", p(&off), "--json"])).unwrap();
        assert_eq!(info_off["dense_blocks"], 0);
        assert_eq!(info["nnz"], info_off["nnz"]);
        assert!(info["bytes_on_disk"].as_u64() < info_off["bytes_on_disk"].as_u64(), "{kind}: dense is smaller");
        ok(&["verify", p(&on)]);
        let (e1, e2) = (tmp.path().join(format!("{kind}-on.mtx")), tmp.path().join(format!("{kind}-off.mtx")));
        ok(&["export", p(&on), "-o", p(&e1), "-q"]);
        ok(&["export", p(&off), "-o", p(&e2), "-q"]);
        assert_eq!(std::fs::read(&e1).unwrap(), std::fs::read(&e2).unwrap(), "{kind}");
    }
    // A usage error (clap's exit code 2), naming the option.
    let out = common::sparsedisk(&[
        "generate",
        "blockdiag",
        "--n",
        "10",
        "--dense-threshold",
        "1.5",
        "-o",
        p(&tmp.path().join("x")),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--dense-threshold") && err.contains("not a fraction"), "{err}");
    assert!(!tmp.path().join("x").exists());
}

/// Damaged dense arrays: `verify` names the file, and every kernel run on the opened but unverified
/// matrix returns an error or a result, never a panic.
#[test]
fn corrupt_dense_arrays_are_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SplitMix(7);
    let t = blocky(&mut rng, 40, 40, [8, 8]);
    let src = tmp.path().join("src");
    let m = write::<f64>(&t, &src, Layout::Csr, 400, Some(DenseOptions { threshold: 0.5, block_shape: [8, 8] }));
    assert!(m.info().dense_blocks > 0);
    let dense_files: Vec<String> = m
        .segments()
        .iter()
        .filter_map(|s| s.dense.as_ref())
        .flat_map(|d| [d.origins.path.clone(), d.mask.path.clone(), d.values.path.clone()])
        .collect();
    drop(m);
    let mut tried = 0;
    for file in &dense_files {
        let len = std::fs::metadata(src.join(file)).unwrap().len();
        for pos in (0..len).step_by((len / 7).max(1) as usize) {
            for bit in [0u8, 6] {
                let dir = tmp.path().join(format!("bad-{tried}"));
                copy_dir(&src, &dir);
                let path = dir.join(file);
                let mut bytes = std::fs::read(&path).unwrap();
                bytes[pos as usize] ^= 1 << bit;
                std::fs::write(&path, &bytes).unwrap();
                let m = Matrix::open(&dir).unwrap();
                let err = m.verify().unwrap_err().to_string();
                assert!(err.contains(file.as_str()), "{err}");
                // Unverified: results or errors, never a panic.
                let x = vec![1.0; 40 * 2];
                let mut y = vec![0.0; 40 * 2];
                let _ = spmv(&m, 1.0, &x[..40], 0.0, &mut y[..40]);
                let _ = spmv_transpose(&m, 1.0, &x[..40], 0.0, &mut y[..40]);
                let _ = spmm(&m, 1.0, &x, 0.0, &mut y, 2);
                let _ = m.to_sprs();
                if tried % 4 == 0 {
                    let op = OpOptions {
                        writer: WriterOptions { durable: false, ..WriterOptions::default() },
                        ..OpOptions::default()
                    };
                    let _ = transpose(&m, dir.join("t"), None, &op, None);
                }
                tried += 1;
                std::fs::remove_dir_all(&dir).unwrap();
            }
        }
    }
    assert!(tried >= 30, "{tried} damaged copies");
}

/// Python reads dense segments through `zarr` alone, as `docs/FORMAT.md` describes them
/// (`tests/python/read_dense.py`), and gets exactly the exported matrix: CSR and CSC, f64 and f32,
/// blocks clipped at band and matrix edges.
#[test]
fn python_reads_dense_blocks_through_zarr() {
    let python = std::env::var("SPARSEDISK_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = std::process::Command::new(&python).args(["-c", "import zarr, scipy, fast_matrix_market"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("SPARSEDISK_REQUIRE_PYTHON").map_or(true, |v| v != "1"),
            "SPARSEDISK_REQUIRE_PYTHON=1 but {python} lacks zarr, scipy or fast_matrix_market"
        );
        eprintln!("python_reads_dense_blocks_through_zarr: SKIPPED: {python} lacks zarr, scipy or fast_matrix_market");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/read_dense.py");
    let cases: [&[&str]; 3] = [
        &["arrow", "--n", "700", "--border", "70", "--segment-size", "100K"],
        &["blockdiag", "--n", "500", "--block", "64", "--layout", "csc", "--value-type", "f32"],
        &["blockdiag", "--n", "333", "--block", "100", "--segment-size", "50K"],
    ];
    for (k, args) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("m{k}"));
        let mtx = tmp.path().join(format!("m{k}.mtx"));
        ok(&[&["generate"][..], args, &["-q", "-o", p(&dir)]].concat());
        ok(&["export", p(&dir), "-o", p(&mtx), "-q"]);
        let out = std::process::Command::new(&python).arg(&script).arg(&dir).arg(&mtx).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["equal"], true, "{args:?}: {report}");
        assert!(report["dense_blocks"].as_u64().unwrap() > 0, "{args:?}: {report}");
    }
}
