//! Helpers shared by the integration tests: random sparse matrices as sorted triplets, and writing
//! them through the library's writer.

#![allow(dead_code)]

use sparsedisk::{Element, Layout, Matrix, MatrixWriter, Result, WriterOptions};
use std::collections::BTreeMap;
use std::path::Path;

/// A matrix as the oracle knows it: shape and sorted, duplicate-free `(row, col, value)` triplets with
/// small integer values (exact in every value type, whatever the summation order).
#[derive(Debug, Clone)]
pub struct Triplets {
    pub shape: (u64, u64),
    pub entries: Vec<(u64, u64, i64)>,
}

impl Triplets {
    /// Entries sorted by `(outer, inner)` for `layout`.
    pub fn sorted_for(&self, layout: Layout) -> Vec<(u64, u64, i64)> {
        let mut e = self.entries.clone();
        match layout {
            Layout::Csr => e.sort_by_key(|&(r, c, _)| (r, c)),
            Layout::Csc => e.sort_by_key(|&(r, c, _)| (c, r)),
        }
        e
    }
}

/// Writes `t` with value type `V` either row by row (`by_rows`) or entry by entry.
pub fn write<V: Element>(
    t: &Triplets,
    dir: &Path,
    layout: Layout,
    segment_bytes: u64,
    by_rows: bool,
) -> Result<Matrix> {
    let options = WriterOptions { segment_bytes, durable: false, ..WriterOptions::default() };
    let mut w = MatrixWriter::<V>::create(dir, t.shape, layout, options)?;
    let sorted = t.sorted_for(layout);
    let outer_of = |&(r, c, _): &(u64, u64, i64)| if layout == Layout::Csr { (r, c) } else { (c, r) };
    if by_rows {
        let (outer_dim, _) = layout.outer_inner(t.shape);
        let mut k = 0;
        for outer in 0..outer_dim {
            let mut indices = Vec::new();
            let mut values = Vec::new();
            while k < sorted.len() && outer_of(&sorted[k]).0 == outer {
                indices.push(outer_of(&sorted[k]).1);
                values.push(V::from_f64(sorted[k].2 as f64));
                k += 1;
            }
            w.push_row(&indices, &values)?;
        }
    } else {
        for e in &sorted {
            let (o, i) = outer_of(e);
            w.push_entry(o, i, V::from_f64(e.2 as f64))?;
        }
    }
    w.finish()
}

/// Every stored entry of `m` as `(row, col, value)`, sorted by `(row, col)`, read through `to_sprs`.
pub fn entries_of(m: &Matrix) -> Vec<(u64, u64, f64)> {
    let s = m.to_sprs().expect("to_sprs");
    let mut out: Vec<(u64, u64, f64)> = s.iter().map(|(&v, (r, c))| (r as u64, c as u64, v)).collect();
    out.sort_by_key(|&(r, c, _)| (r, c));
    out
}

/// A small deterministic pseudo-random generator (splitmix64) for tests that need no proptest.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// A random matrix with about `density` of its cells stored, values in -3..=3 (zeros kept).
pub fn random_triplets(rng: &mut SplitMix, rows: u64, cols: u64, density: f64) -> Triplets {
    let mut entries = Vec::new();
    for r in 0..rows {
        for c in 0..cols {
            if (rng.next_u64() as f64 / u64::MAX as f64) < density {
                entries.push((r, c, rng.below(7) as i64 - 3));
            }
        }
    }
    Triplets { shape: (rows, cols), entries }
}

/// The `sparsedisk` command-line binary of this workspace (`crates/cli`). Tests of the library
/// cannot name another package's binary (`CARGO_BIN_EXE_*`), so it is found where Cargo puts it,
/// beside the test executable's `deps/` directory. `cargo test` at the workspace root builds it with
/// the tests (the CLI crate is a default member); `cargo test -p sparsedisk` alone does not.
pub fn bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join(format!("sparsedisk{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: build the command line with the tests (`cargo test` at the workspace root, or \
         `cargo build -p sparsedisk-cli` with the same profile)",
        bin.display()
    );
    bin
}

/// Runs the built `sparsedisk` binary.
pub fn sparsedisk(args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin()).args(args).output().expect("run sparsedisk")
}

/// Runs `sparsedisk`, which must succeed; returns its standard output.
pub fn ok(args: &[&str]) -> String {
    let out = sparsedisk(args);
    assert!(out.status.success(), "sparsedisk {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `sparsedisk`, which must fail with exit code 1 and one clear line on standard error; returns it.
pub fn fails(args: &[&str]) -> String {
    let out = sparsedisk(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "sparsedisk {args:?} should exit 1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one clear line, got: {err}");
    assert!(err.starts_with("sparsedisk: error: "), "{err}");
    err
}

/// A path as a command-line argument.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Random matrices from 0x0 up to `(max_dim - 1)` square (so 0xN, Nx0, 1xN, Nx1 all occur), with up
/// to `max_entries` entries (empty to full), values in -3..=3 (explicit zeros included), positions
/// unique (the writer takes unique sorted entries; the builder tests make their own duplicates).
pub fn triplets(max_dim: u64, max_entries: usize) -> impl proptest::strategy::Strategy<Value = Triplets> {
    use proptest::prelude::*;
    (0..max_dim, 0..max_dim).prop_flat_map(move |(rows, cols)| {
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
    })
}

/// Rewrites `dir`'s manifest with `edit` applied and a valid checksum, as a hostile or buggy writer
/// could. The checksum is computed from the documented canonical form (docs/FORMAT.md), independently of
/// the library's helper.
pub fn forge_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(sparsedisk::format::MANIFEST_FILE);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    if let Some(o) = v.as_object_mut() {
        o.remove("checksum");
    }
    edit(&mut v);
    let sum = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(canonical_json(&v).as_bytes()));
    if let Some(o) = v.as_object_mut() {
        o.insert("checksum".into(), sum.into());
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// The manifest's canonical form: compact, members sorted by key.
pub fn canonical_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<_> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", serde_json::Value::String((*k).clone()), canonical_json(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        serde_json::Value::Array(a) => format!("[{}]", a.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

pub mod real;

/// Copies the directory tree `from` to `to` (a matrix, to damage or rewrite the copy), leaving out the
/// readers' and writers' lock files: they belong to the original's readers and writers.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(".readers-") || name == ".writer.lock" {
            continue;
        }
        let target = to.join(name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
