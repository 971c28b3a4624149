//! Corruption: every truncation and a sample of bit flips of every file of a small matrix make `open`
//! or `verify` return an error naming the damaged file; nothing panics. Also hand-made hostile
//! manifests (paths escaping the directory, absurd sizes, overlapping bands).

mod common;

use common::{forge_manifest, random_triplets, write, SplitMix};
use sparsedisk::format::MANIFEST_FILE;
use sparsedisk::{Error, Layout, Matrix};
use std::fs;
use std::path::{Path, PathBuf};

/// Every file of a matrix directory that the manifest covers, plus the manifest.
fn matrix_files(dir: &Path) -> Vec<PathBuf> {
    let m = Matrix::open(dir).unwrap();
    let mut files: Vec<PathBuf> =
        m.segments().iter().flat_map(|s| s.files()).filter(|f| f.bytes > 0).map(|f| dir.join(&f.path)).collect();
    files.push(dir.join(MANIFEST_FILE));
    files
}

/// Open and verify; `Err` means the damage was caught.
fn check(dir: &Path) -> sparsedisk::Result<()> {
    Matrix::open(dir)?.verify().map(|_| ())
}

fn small_matrix(dir: &Path, layout: Layout, pattern: bool) {
    let mut rng = SplitMix(42);
    let t = random_triplets(&mut rng, 9, 7, 0.3);
    if pattern {
        write::<()>(&t, dir, layout, 40, true).unwrap();
    } else {
        write::<f64>(&t, dir, layout, 40, true).unwrap();
    }
    check(dir).unwrap();
}

#[test]
fn every_truncation_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let mut tried = 0;
    for (layout, pattern) in [(Layout::Csr, false), (Layout::Csc, true)] {
        let dir = tmp.path().join(format!("{layout}-{pattern}"));
        small_matrix(&dir, layout, pattern);
        for file in matrix_files(&dir) {
            let original = fs::read(&file).unwrap();
            for len in 0..original.len() {
                if original[len..].iter().all(u8::is_ascii_whitespace) {
                    // Dropping a JSON file's trailing newline changes no content.
                    continue;
                }
                fs::write(&file, &original[..len]).unwrap();
                let err =
                    check(&dir).expect_err(&format!("truncating {} to {len} bytes went unnoticed", file.display()));
                let msg = err.to_string();
                assert!(msg.contains(&*file.to_string_lossy()), "error does not name {}: {msg}", file.display());
                tried += 1;
            }
            // Removed entirely.
            fs::remove_file(&file).unwrap();
            assert!(check(&dir).is_err(), "removing {} went unnoticed", file.display());
            fs::write(&file, &original).unwrap();
            check(&dir).unwrap();
        }
    }
    assert!(tried > 1000, "only {tried} truncations tried");
    eprintln!("corruption: {tried} truncations (and every file removed), each reported naming the file");
}

#[test]
fn sampled_bit_flips_are_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = SplitMix(7);
    let mut tried = 0;
    for (layout, pattern) in [(Layout::Csr, false), (Layout::Csc, false), (Layout::Csr, true)] {
        let dir = tmp.path().join(format!("{layout}-{pattern}"));
        small_matrix(&dir, layout, pattern);
        for file in matrix_files(&dir) {
            let original = fs::read(&file).unwrap();
            // Every bit of small files, a sample of larger ones.
            let flips: Vec<(usize, u8)> = if original.len() <= 32 {
                (0..original.len()).flat_map(|i| (0..8).map(move |b| (i, b))).collect()
            } else {
                (0..48).map(|_| (rng.below(original.len() as u64) as usize, rng.below(8) as u8)).collect()
            };
            for (pos, bit) in flips {
                let mut damaged = original.clone();
                damaged[pos] ^= 1 << bit;
                fs::write(&file, &damaged).unwrap();
                let err = check(&dir)
                    .expect_err(&format!("flipping bit {bit} of byte {pos} of {} went unnoticed", file.display()));
                assert!(
                    err.to_string().contains(&*file.to_string_lossy()),
                    "error does not name {}: {err}",
                    file.display()
                );
                tried += 1;
            }
            fs::write(&file, &original).unwrap();
        }
        check(&dir).unwrap();
    }
    assert!(tried > 2000, "only {tried} flips tried");
    eprintln!("corruption: {tried} bit flips, each reported naming the file");
}

fn xxh3(bytes: &[u8]) -> u64 {
    // The documented checksum, computed independently of the library's helper.
    xxhash_rust::xxh3::xxh3_64(bytes)
}

#[test]
fn forged_manifests_with_valid_checksums_are_refused_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("escaping path", Box::new(|v| v["segments"][0]["indptr"]["path"] = "../../etc/passwd".into())),
        ("absolute path", Box::new(|v| v["segments"][0]["indices"]["path"] = "/etc/passwd".into())),
        ("absurd shape", Box::new(|v| v["shape"] = serde_json::json!([u64::MAX, 3]))),
        ("absurd nnz", Box::new(|v| v["segments"][0]["nnz"] = serde_json::json!(1_000_000_000_000_000u64))),
        ("overlapping bands", Box::new(|v| v["segments"][1]["start"] = serde_json::json!(0))),
        ("gap at the end", Box::new(|v| v["shape"][0] = serde_json::json!(10))),
        ("nnz sum", Box::new(|v| v["nnz"] = serde_json::json!(1))),
        ("future version", Box::new(|v| v["format_version"] = serde_json::json!(99))),
        ("u32 too narrow", Box::new(|v| v["shape"][1] = serde_json::json!(1u64 << 40))),
        ("pattern with values", Box::new(|v| v["value_type"] = "pattern".into())),
        ("bad checksum text", Box::new(|v| v["segments"][0]["indptr"]["xxh3"] = "zz".into())),
        ("wrong type", Box::new(|v| v["segments"] = "none".into())),
        ("unknown layout", Box::new(|v| v["layout"] = "coo".into())),
    ];
    for (what, edit) in cases {
        let dir = tmp.path().join(what.replace(' ', "_"));
        small_matrix(&dir, Layout::Csr, false);
        forge_manifest(&dir, edit);
        match Matrix::open(&dir) {
            Err(Error::Corrupt { path, .. }) | Err(Error::UnsupportedVersion { path, .. }) => {
                assert!(path.ends_with(MANIFEST_FILE), "{what}: names {}", path.display())
            }
            Err(e) => panic!("{what}: unexpected error kind {e:?}"),
            Ok(_) => panic!("{what}: forged manifest accepted"),
        }
    }
}

#[test]
fn forged_array_contents_with_valid_checksums_fail_verify_structurally() {
    // A writer bug (or forgery) that records checksums of bad arrays: verify's structural check is the
    // second line of defence, and map-time users get a Corrupt error, not a panic.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    small_matrix(&dir, Layout::Csr, false);
    let m = Matrix::open(&dir).unwrap();
    let seg = &m.segments()[0];
    let indices_path = dir.join(&seg.indices.path);
    let mut bytes = fs::read(&indices_path).unwrap();
    bytes[0..4].copy_from_slice(&1000u32.to_le_bytes()); // past the 7 columns
    fs::write(&indices_path, &bytes).unwrap();
    let sum = format!("{:016x}", xxh3(&bytes));
    forge_manifest(&dir, |v| v["segments"][0]["indices"]["xxh3"] = sum.into());
    let err = check(&dir).unwrap_err();
    assert!(matches!(&err, Error::Corrupt { path, what } if path == &indices_path && what.contains("1000")), "{err}");
    assert!(Matrix::open(&dir).unwrap().to_sprs().is_err());
}
