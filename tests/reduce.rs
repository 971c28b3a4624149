//! The one-pass reductions (`Matrix::diagonal`, `line_sums`, `total`) against oracles computed from
//! the triplets by their definitions: every value type, both layouts, tiny segments (many per
//! matrix, empty rows and columns), dense blocks on and off, every diagonal from below the matrix to
//! beyond it; and `int64` sums that leave the range, which are refused rather than wrapped.

mod common;

use common::{SplitMix, Triplets};
use sparsedisk::reduce::{diagonal_len, Lines, Reduced, Total};
use sparsedisk::{DenseOptions, Element, Layout, Matrix, MatrixWriter, ValueType, WriterOptions};
use std::path::Path;

fn write<V: Element>(t: &Triplets, dir: &Path, layout: Layout, seg: u64, dense: Option<DenseOptions>) -> Matrix {
    let options = WriterOptions { segment_bytes: seg, durable: false, dense, ..WriterOptions::default() };
    let mut w = MatrixWriter::<V>::create(dir, t.shape, layout, options).unwrap();
    for (r, c, v) in t.sorted_for(layout) {
        let (o, i) = if layout == Layout::Csr { (r, c) } else { (c, r) };
        w.push_entry(o, i, V::from_f64(v as f64)).unwrap();
    }
    w.finish().unwrap()
}

/// Random entries with some rows and columns left empty and a full 4 x 4 block (stored dense when
/// the dense path is on).
fn triplets(rng: &mut SplitMix, rows: u64, cols: u64) -> Triplets {
    let mut entries = Vec::new();
    for r in 0..rows {
        for c in 0..cols {
            let block = r < 4 && (4..8).contains(&c);
            if !block && (r % 5 == 3 || c % 7 == 2) {
                continue; // empty lines
            }
            if block || rng.below(100) < 20 {
                entries.push((r, c, rng.below(7) as i64 - 3));
            }
        }
    }
    Triplets { shape: (rows, cols), entries }
}

/// The values as f64 (exact: small integers).
fn as_f64(r: &Reduced) -> Vec<f64> {
    match r {
        Reduced::F64(v) => v.clone(),
        Reduced::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        Reduced::I64(v) => v.iter().map(|&x| x as f64).collect(),
    }
}

fn check(m: &Matrix, t: &Triplets, pattern: bool, what: &str) {
    let (rows, cols) = t.shape;
    let value = |v: i64| if pattern { 1.0 } else { v as f64 };
    for k in -(rows as i64) - 2..=cols as i64 + 2 {
        let got = m.diagonal(k).unwrap();
        let len = diagonal_len(rows, cols, k) as usize;
        let mut want = vec![0.0; len];
        for &(r, c, v) in &t.entries {
            if c as i64 - r as i64 == k {
                want[r.min(c) as usize] = value(v);
            }
        }
        assert_eq!(as_f64(&got), want, "{what}: diagonal {k}");
        let expected_type = match m.value_type() {
            ValueType::Float32 => matches!(got, Reduced::F32(_)),
            ValueType::Int64 => matches!(got, Reduced::I64(_)),
            _ => matches!(got, Reduced::F64(_)),
        };
        assert!(expected_type, "{what}: diagonal {k} in the wrong type: {got:?}");
    }
    let mut row_sums = vec![0.0; rows as usize];
    let mut col_sums = vec![0.0; cols as usize];
    for &(r, c, v) in &t.entries {
        row_sums[r as usize] += value(v);
        col_sums[c as usize] += value(v);
    }
    let integer = matches!(m.value_type(), ValueType::Int64 | ValueType::Pattern);
    for (lines, want) in [(Lines::Rows, &row_sums), (Lines::Columns, &col_sums)] {
        let got = m.line_sums(lines).unwrap();
        assert_eq!(integer, matches!(got, Reduced::I64(_)), "{what}: {lines:?} type");
        assert_eq!(&as_f64(&got), want, "{what}: {lines:?}");
    }
    let total: f64 = row_sums.iter().sum();
    match m.total().unwrap() {
        Total::I64(s) => assert!(integer && s as f64 == total, "{what}: total {s}, expected {total}"),
        Total::F64(s) => assert!(!integer && s == total, "{what}: total {s}, expected {total}"),
    }
}

#[test]
fn reductions_match_the_oracle() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SplitMix(7);
    let mut n = 0;
    for (rows, cols) in [(23, 17), (17, 23), (12, 12), (1, 9), (0, 5)] {
        let t = triplets(&mut rng, rows, cols);
        for layout in [Layout::Csr, Layout::Csc] {
            for dense in [None, Some(DenseOptions { threshold: 0.9, block_shape: [4, 4] })] {
                for kind in 0..4 {
                    // 64-byte segments: a few rows each.
                    let dir = tmp.path().join(format!("m{n}"));
                    n += 1;
                    let m = match kind {
                        0 => write::<f64>(&t, &dir, layout, 64, dense),
                        1 => write::<f32>(&t, &dir, layout, 64, dense),
                        2 => write::<i64>(&t, &dir, layout, 64, dense),
                        _ => write::<()>(&t, &dir, layout, 64, dense),
                    };
                    if dense.is_some() && rows >= 4 && cols >= 8 {
                        assert!(
                            kind == 3 || m.info().dense_blocks > 0,
                            "a dense block: {rows}x{cols} {layout:?} {kind}"
                        );
                    }
                    if rows > 1 {
                        assert!(m.segments().len() > 1, "several segments");
                    }
                    let what = format!("{rows}x{cols} {layout:?} {:?} dense {}", m.value_type(), dense.is_some());
                    check(&m, &t, kind == 3, &what);
                }
            }
        }
    }
}

#[test]
fn int64_sums_out_of_range_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let options = WriterOptions { durable: false, ..WriterOptions::default() };
    let mut w = MatrixWriter::<i64>::create(tmp.path().join("big"), (2, 2), Layout::Csr, options.clone()).unwrap();
    w.push_entry(0, 0, i64::MAX).unwrap();
    w.push_entry(0, 1, 1).unwrap();
    w.push_entry(1, 0, -9).unwrap();
    w.push_entry(1, 1, -5).unwrap();
    let m = w.finish().unwrap();
    let err = m.line_sums(Lines::Rows).unwrap_err().to_string();
    assert!(err.contains("row 0") && err.contains("int64"), "{err}");
    // The total and the column sums pass beyond int64 on the way (MAX + 1), but end inside: exact.
    assert_eq!(m.total().unwrap(), Total::I64(i64::MAX - 13));
    assert_eq!(m.line_sums(Lines::Columns).unwrap(), Reduced::I64(vec![i64::MAX - 9, -4]));
    let mut w = MatrixWriter::<i64>::create(tmp.path().join("over"), (2, 1), Layout::Csr, options).unwrap();
    w.push_entry(0, 0, i64::MAX).unwrap();
    w.push_entry(1, 0, 1).unwrap();
    let over = w.finish().unwrap();
    let err = over.total().unwrap_err().to_string();
    assert!(err.contains("int64"), "{err}");
    let err = over.line_sums(Lines::Columns).unwrap_err().to_string();
    assert!(err.contains("column 0") && err.contains("int64"), "{err}");
    assert_eq!(over.line_sums(Lines::Rows).unwrap(), Reduced::I64(vec![i64::MAX, 1]));
    assert_eq!(m.diagonal(0).unwrap(), Reduced::I64(vec![i64::MAX, -5]));
    assert_eq!(m.diagonal(i64::MIN).unwrap(), Reduced::I64(vec![]));
    assert_eq!(m.diagonal(i64::MAX).unwrap(), Reduced::I64(vec![]));
}
