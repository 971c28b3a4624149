//! Hostile input, fuzzed for a bounded time: the text parsers (Matrix Market, edge lists, CSV, and
//! gzip around them) and the whole import behind them, the `.npy` reader, and `Matrix::open` followed
//! by every kernel on an opened-but-unverified matrix whose files were mutated. Every input must give
//! `Ok` or a clean `Err`, never a panic (and, the crate being safe Rust around its one map, never
//! undefined behaviour); `Ok` results are checked against what they promise (indices inside the
//! declared shape, imported matrices that verify).
//!
//! Inputs are structured and then mutated: valid-looking files drawn from a grammar (banners of every
//! kind, huge or negative or zero sizes and indices, NaN, infinities, duplicates, CRLF, comments,
//! truncated lines), then a few byte-level mutations (flips, insertions of interesting tokens, line
//! duplication, truncation), and some plain random bytes. Matrix files are mutated in place (array
//! words set to interesting values, bit flips, random bytes, resized files) and their manifest is
//! edited structurally and re-signed with a valid checksum, so that the damage reaches the kernels
//! instead of stopping at the manifest's checksum.
//!
//! This is property-based fuzzing, not coverage-guided: cargo-fuzz needs a nightly compiler and
//! libFuzzer, which this project's stable toolchain does not have.
//!
//! Each target runs for `SPARSEDISK_FUZZ_SECONDS` (default 20) from the seed `SPARSEDISK_FUZZ_SEED`
//! (default fixed, so a CI failure reproduces), and prints how many inputs it ran. A panic is caught
//! and reported with the seed, the input number and the input itself.

mod common;

use common::{copy_dir, forge_manifest, random_triplets, write, SplitMix};
use sparsedisk::algo::{bfs, cg, components, pagerank, CgOptions, PagerankOptions, Preconditioner};
use sparsedisk::import::{import, ImportOptions, LayoutChoice, ValueChoice};
use sparsedisk::io::export::export_matrix_market;
use sparsedisk::io::npy::parse_npy;
use sparsedisk::io::read::{ColumnSpec, InputFormat, ReadOptions, TripletReader};
use sparsedisk::kernels::{spmm, spmv, spmv_transpose, Operator};
use sparsedisk::ops::{add, convert, spgemm, transpose, Accumulator, AddOptions, OpOptions, Semiring, SpgemmOptions};
use sparsedisk::{Layout, Matrix, StoredIndex, ValueType, WriterOptions};
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn budget() -> Duration {
    let secs = std::env::var("SPARSEDISK_FUZZ_SECONDS").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(20.0);
    Duration::from_secs_f64(secs)
}

/// A scratch directory in memory (`/dev/shm`) where there is one: the targets create and delete
/// thousands of small files, which costs milliseconds each on a busy disk.
fn scratch_dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).unwrap()
}

fn seed() -> u64 {
    std::env::var("SPARSEDISK_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5EED_2026)
}

/// Runs `one(rng, case)` on fresh inputs until the time budget is spent; a panic fails the test with
/// the seed, the case number and `describe` of what the case was given. Returns the inputs run.
fn fuzz_loop(target: &str, mut one: impl FnMut(&mut SplitMix, u64, &mut String) -> Outcome) -> u64 {
    let (limit, base) = (budget(), seed());
    let start = Instant::now();
    let mut counts = [0u64; 3];
    let mut case = 0u64;
    while case == 0 || start.elapsed() < limit {
        let mut rng = SplitMix(base ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut input = String::new();
        match catch_unwind(AssertUnwindSafe(|| one(&mut rng, case, &mut input))) {
            Ok(outcome) => counts[outcome as usize] += 1,
            Err(_) => panic!(
                "{target}: input {case} of seed {base:#x} panicked (rerun with SPARSEDISK_FUZZ_SEED={base}); input: {input}"
            ),
        }
        case += 1;
    }
    eprintln!(
        "fuzz: {target}: {case} inputs in {:.1} s ({} accepted, {} refused early, {} refused later), seed {base:#x}, no panic",
        start.elapsed().as_secs_f64(),
        counts[0],
        counts[1],
        counts[2],
    );
    case
}

/// What an input led to.
#[derive(Clone, Copy)]
enum Outcome {
    /// Read, imported or computed on.
    Accepted = 0,
    /// Refused by the first step (the header, `open`).
    RefusedEarly = 1,
    /// Refused later (a line, a kernel's check).
    RefusedLater = 2,
}

fn pick<'a, T>(rng: &mut SplitMix, items: &'a [T]) -> &'a T {
    &items[rng.below(items.len() as u64) as usize]
}

fn chance(rng: &mut SplitMix, percent: u64) -> bool {
    rng.below(100) < percent
}

// ------------------------------------------------------------------------------------ text inputs

/// Numbers that break parsers: zero, negatives, limits and their neighbours, huge declared sizes.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "-1",
    "-0",
    "+3",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "1000000000000000",
    "1000000000000000000",
    "99999999999999999999999999",
    "1e3",
    "1.5",
    "0x10",
    "",
];

const VALUES: &[&str] = &[
    "1",
    "-2.5",
    "0",
    "-0.0",
    "1e308",
    "1e309",
    "-1e309",
    "4.9e-324",
    "1e-400",
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-inf",
    "Infinity",
    "1.7976931348623157e308",
    "1.",
    ".5",
    "1e",
    "e5",
    "--1",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "0x1p3",
    "1_000",
    "abc",
    "",
];

const TOKENS: &[&str] = &[
    " ",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "%",
    "#",
    ",",
    "\"",
    "\"\"",
    "%%MatrixMarket",
    "\0",
    "\u{feff}",
    "é",
    "\u{ff}",
    "-",
    "+",
    ".",
    "e",
    "1",
    "0",
    "99999999999999999999",
    "nan",
    "inf",
    "coordinate",
    "array",
    "pattern",
    "symmetric",
    "complex",
];

/// Percent of numbers and values drawn from the hostile lists, per file (most files are mostly
/// valid, so that parsing gets deep).
static HOSTILITY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn hostile(rng: &mut SplitMix) -> bool {
    chance(rng, HOSTILITY.load(std::sync::atomic::Ordering::Relaxed))
}

fn number(rng: &mut SplitMix, max: u64) -> String {
    if !hostile(rng) {
        (rng.below(max) + 1).to_string()
    } else {
        pick(rng, NUMBERS).to_string()
    }
}

fn value(rng: &mut SplitMix) -> String {
    if !hostile(rng) {
        format!("{}", rng.below(9) as i64 - 4)
    } else {
        pick(rng, VALUES).to_string()
    }
}

/// A Matrix Market file from the grammar, with the odd invalid part.
fn matrix_market(rng: &mut SplitMix) -> (String, &'static str) {
    // Mostly valid banners; every invalid word now and then.
    let odd = chance(rng, 15);
    let object = if !odd || chance(rng, 75) { "matrix" } else { "vector" };
    let format = if odd {
        *pick(rng, &["COORDINATE", "Array", "sparse"])
    } else {
        *pick(rng, &["coordinate", "coordinate", "array"])
    };
    let field = if odd {
        *pick(rng, &["double", "complex", "REAL", "unsigned-integer"])
    } else {
        *pick(rng, &["real", "integer", "pattern"])
    };
    let symmetry = if odd {
        *pick(rng, &["hermitian", "Symmetric", "lower"])
    } else {
        *pick(rng, &["general", "general", "symmetric", "skew-symmetric"])
    };
    let nl = if chance(rng, 20) { "\r\n" } else { "\n" };
    let mut text = format!("%%MatrixMarket {object} {format} {field} {symmetry}{nl}");
    for _ in 0..rng.below(3) {
        text.push_str(&format!("% comment {}{nl}", rng.below(100)));
    }
    let (rows, mut cols) = (rng.below(12) + 1, rng.below(12) + 1);
    if symmetry != "general" && chance(rng, 90) {
        cols = rows;
    }
    let entries = rng.below(16);
    let (r, c) = (
        if chance(rng, 90) { rows.to_string() } else { number(rng, 50) },
        if chance(rng, 90) { cols.to_string() } else { number(rng, 50) },
    );
    let array = format.eq_ignore_ascii_case("array");
    if array {
        text.push_str(&format!("{r} {c}{nl}"));
    } else {
        let n = if chance(rng, 85) { entries.to_string() } else { number(rng, 30) };
        text.push_str(&format!("{r} {c} {n}{nl}"));
    }
    let lines = if array { rows * cols } else { entries };
    for _ in 0..lines.min(40) + rng.below(2) {
        if chance(rng, 5) {
            text.push_str(nl);
        }
        if array {
            text.push_str(&value(rng));
        } else {
            text.push_str(&format!("{} {}", number(rng, rows), number(rng, cols)));
            if field != "pattern" || chance(rng, 5) {
                text.push(' ');
                text.push_str(&value(rng));
                if field == "complex" {
                    text.push(' ');
                    text.push_str(&value(rng));
                }
            }
        }
        text.push_str(nl);
    }
    (text, if chance(rng, 80) { "m.mtx" } else { "m.txt" })
}

/// An edge list: `src dst [weight]`, comments, blank lines.
fn edge_list(rng: &mut SplitMix) -> (String, &'static str) {
    let weighted = chance(rng, 50);
    let mut text = String::new();
    if chance(rng, 50) {
        text.push_str("# edges\n");
    }
    for _ in 0..rng.below(30) {
        let sep = *pick(rng, &[" ", "\t", "  ", " \t"]);
        text.push_str(&format!("{}{sep}{}", number(rng, 20), number(rng, 20)));
        if weighted || chance(rng, 5) {
            text.push_str(sep);
            text.push_str(&value(rng));
        }
        if chance(rng, 5) {
            text.push_str(" extra columns");
        }
        text.push_str(if chance(rng, 10) { "\r\n" } else { "\n" });
    }
    (text, *pick(rng, &["g.txt", "g.edges", "g.el"]))
}

/// A CSV file: header or not, quoting, a chosen delimiter.
fn csv(rng: &mut SplitMix) -> (String, &'static str, u8) {
    let d = if chance(rng, 70) { "," } else { *pick(rng, &[";", "\t", "|"]) };
    let mut text = String::new();
    if chance(rng, 60) {
        text.push_str(&format!("from{d}\"to\"{d}weight\n"));
    }
    for _ in 0..rng.below(30) {
        let q = chance(rng, 10);
        let f = |s: String| if q { format!("\"{s}\"") } else { s };
        text.push_str(&format!("{}{d}{}", f(number(rng, 20)), f(number(rng, 20))));
        if chance(rng, 70) {
            text.push_str(d);
            text.push_str(&f(value(rng)));
        }
        text.push_str(if chance(rng, 10) { "\r\n" } else { "\n" });
    }
    (text, "g.csv", d.as_bytes()[0])
}

/// Byte-level mutations of `bytes`.
fn mutate(rng: &mut SplitMix, bytes: &mut Vec<u8>) {
    for _ in 0..rng.below(4) {
        let at = rng.below(bytes.len() as u64 + 1) as usize;
        match rng.below(7) {
            0 if !bytes.is_empty() => {
                let i = at.min(bytes.len() - 1);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => {
                let token = pick(rng, TOKENS).as_bytes().to_vec();
                bytes.splice(at..at, token);
            }
            2 => {
                let end = (at + rng.below(8) as usize).min(bytes.len());
                bytes.drain(at..end);
            }
            3 => bytes.truncate(at),
            4 => {
                // Duplicate the line around `at` (a repeated entry).
                let s = bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                let e = bytes[at..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| at + i + 1);
                let line = bytes[s..e].to_vec();
                bytes.splice(e..e, line);
            }
            5 => {
                let digits = pick(rng, NUMBERS).as_bytes().to_vec();
                bytes.splice(at..at, digits);
            }
            _ => {
                let b = rng.below(256) as u8;
                bytes.insert(at, b);
            }
        }
    }
}

/// A text input, its file name, and the CSV delimiter it was made with (`,` for other formats).
fn text_input(rng: &mut SplitMix) -> (Vec<u8>, String, u8) {
    HOSTILITY.store(*pick(rng, &[0, 0, 1, 3, 10, 30]), std::sync::atomic::Ordering::Relaxed);
    let (text, name, delimiter) = match rng.below(10) {
        0..=4 => {
            let (text, name) = matrix_market(rng);
            (text, name, b',')
        }
        5..=6 => {
            let (text, name) = edge_list(rng);
            (text, name, b',')
        }
        7..=8 => csv(rng),
        _ => {
            let n = rng.below(200);
            let bytes: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
            return (bytes, pick(rng, &["r.mtx", "r.txt", "r.csv"]).to_string(), b',');
        }
    };
    let mut bytes = text.into_bytes();
    if chance(rng, 40) {
        mutate(rng, &mut bytes);
    }
    if chance(rng, 5) {
        // Gzip, sometimes damaged.
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        bytes = gz.finish().unwrap();
        if chance(rng, 50) {
            let i = rng.below(bytes.len() as u64) as usize;
            bytes[i] ^= 1 << rng.below(8);
        }
        return (bytes, format!("{name}.gz"), delimiter);
    }
    (bytes, name.to_string(), delimiter)
}

/// Half the time the options the input was made for, else any.
fn read_options(rng: &mut SplitMix, delimiter: u8) -> ReadOptions {
    if chance(rng, 50) {
        return ReadOptions {
            block_bytes: *pick(rng, &[1, 7, 64, 8 << 20]),
            delimiter: (delimiter != b',').then_some(delimiter),
            ..ReadOptions::default()
        };
    }
    let columns = match rng.below(8) {
        0 => Some(vec![ColumnSpec::Index(1), ColumnSpec::Index(0)]),
        1 => Some(vec![ColumnSpec::Name("from".into()), ColumnSpec::Name("to".into()), ColumnSpec::Index(2)]),
        2 => Some(vec![ColumnSpec::Index(0), ColumnSpec::Index(7)]),
        _ => None,
    };
    ReadOptions {
        format: *pick(
            rng,
            &[InputFormat::Auto, InputFormat::Auto, InputFormat::MatrixMarket, InputFormat::EdgeList, InputFormat::Csv],
        ),
        index_base: *pick(rng, &[None, Some(0), Some(1)]),
        symmetrize: chance(rng, 20),
        delimiter: *pick(rng, &[None, None, Some(b';'), Some(b'\t'), Some(b'|')]),
        columns,
        has_header: *pick(rng, &[None, Some(true), Some(false)]),
        block_bytes: *pick(rng, &[1, 2, 7, 64, 8 << 20]),
        threads: None,
    }
}

/// Reads `path` with value type `V`; checks what an `Ok` promises. `Some(max (row, col))` on success.
fn read_checked<V: sparsedisk::Element>(path: &Path, options: &ReadOptions) -> Result<Option<(u64, u64)>, bool> {
    let reader = TripletReader::open(path, options.clone()).map_err(|_| true)?;
    let shape = reader.header().shape;
    let mut max: Option<(u64, u64)> = None;
    let mut count = 0u64;
    let summary = reader
        .read_all::<V>(
            &mut |chunk| {
                for t in chunk {
                    if let Some((r, c)) = shape {
                        assert!(
                            t.row < r && t.col < c,
                            "triplet ({}, {}) outside the declared {r} x {c}",
                            t.row,
                            t.col
                        );
                    }
                    let m = max.get_or_insert((0, 0));
                    *m = (m.0.max(t.row), m.1.max(t.col));
                }
                count += chunk.len() as u64;
                Ok(())
            },
            &mut |_| {},
        )
        .map_err(|_| false)?;
    assert_eq!(summary.triplets, count, "the summary counts the triplets handed on");
    Ok(max)
}

#[test]
fn fuzz_text_parsers_and_import() {
    let tmp = scratch_dir();
    let mut imports = 0u64;
    fuzz_loop("text parsers + import", |rng, case, described| {
        let (bytes, name, delimiter) = text_input(rng);
        let options = read_options(rng, delimiter);
        *described = format!("file {name:?} {:?} with {options:?}", String::from_utf8_lossy(&bytes));
        let path = tmp.path().join(&name);
        fs::write(&path, &bytes).unwrap();
        let read = match rng.below(4) {
            0 => read_checked::<i64>(&path, &options),
            1 => read_checked::<()>(&path, &options),
            2 => read_checked::<f32>(&path, &options),
            _ => read_checked::<f64>(&path, &options),
        };
        let max = match read {
            Err(early) => return if early { Outcome::RefusedEarly } else { Outcome::RefusedLater },
            Ok(max) => max,
        };
        // The whole import, on inputs small enough to write: a declared shape's row pointers are
        // written in full, so huge declared or inferred shapes get a small given shape instead (and
        // then an error), and Matrix Market files with huge declared shapes are only parsed.
        let header = TripletReader::open(&path, options.clone()).unwrap().header().clone();
        let small = |(r, c): (u64, u64)| r <= 100_000 && c <= 100_000;
        let shape = match header.shape {
            Some(s) if !small(s) => return Outcome::Accepted,
            Some(_) => None,
            None if max.map_or(true, |(r, c)| small((r + 1, c + 1))) => None,
            None => Some((50, 50)),
        };
        // One segment per row (or per few) only for a few rows.
        let rows = header.shape.or(shape).or(max.map(|(r, c)| (r + 1, c + 1))).map_or(0, |(r, c)| r.max(c));
        let segment_bytes = if rows <= 64 { *pick(rng, &[1, 64, 1 << 20]) } else { 1 << 20 };
        let out = tmp.path().join(format!("imported-{case}"));
        let memory_budget = sparsedisk::import::min_memory_budget(&options);
        let import_options = ImportOptions {
            read: options,
            memory_budget,
            duplicates: *pick(
                rng,
                &[
                    sparsedisk::builder::Duplicates::Sum,
                    sparsedisk::builder::Duplicates::Error,
                    sparsedisk::builder::Duplicates::Last,
                ],
            ),
            drop_zeros: chance(rng, 30),
            shape,
            square: None,
            values: *pick(
                rng,
                &[
                    ValueChoice::Auto,
                    ValueChoice::Fixed(ValueType::Float32),
                    ValueChoice::Fixed(ValueType::Int64),
                    ValueChoice::Fixed(ValueType::Pattern),
                ],
            ),
            layout: *pick(rng, &[LayoutChoice::Csr, LayoutChoice::Csc, LayoutChoice::Both]),
            writer: WriterOptions { segment_bytes, durable: false, overwrite: false, dense: None },
        };
        imports += 1;
        let outcome = match import(&path, &out, &import_options, |_| {}) {
            Ok(summary) => {
                for dir in &summary.outputs {
                    Matrix::open(dir)
                        .unwrap()
                        .verify()
                        .unwrap_or_else(|e| panic!("an imported matrix does not verify: {e}"));
                }
                Outcome::Accepted
            }
            Err(_) => {
                assert!(!out.exists(), "a failed import left {}", out.display());
                Outcome::RefusedLater
            }
        };
        let _ = fs::remove_dir_all(&out);
        outcome
    });
    eprintln!("fuzz: text parsers + import: {imports} inputs went through the whole import");
}

// ------------------------------------------------------------------------------------------- .npy

fn npy_input(rng: &mut SplitMix) -> Vec<u8> {
    if chance(rng, 10) {
        let n = rng.below(120);
        return (0..n).map(|_| rng.below(256) as u8).collect();
    }
    // Mostly what numpy writes, so that parsing gets past the header; the rest is refused.
    let descr = if chance(rng, 75) {
        *pick(rng, &["<f8", "<f4", "<i8", "<i4"])
    } else {
        *pick(rng, &["|u1", ">f8", "<c16", "|O", "<f2", "f8", "<f8'"])
    };
    let fortran = if chance(rng, 90) { *pick(rng, &["False", "True"]) } else { *pick(rng, &["0", "", "Tru"]) };
    let (rows, cols) = (rng.below(6), rng.below(4));
    let (shape, count) = match rng.below(8) {
        0 => ("()".to_string(), 1),
        1 => (format!("({rows}, {cols}, 2)"), rows * cols * 2),
        2 => (format!("({}, {})", pick(rng, NUMBERS), pick(rng, NUMBERS)), rows),
        3 => (format!("({rows},)"), rows),
        4 => (format!("({}, 3)", u64::MAX), 3),
        _ => (format!("({rows}, {cols})"), rows * cols),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
    if chance(rng, 10) {
        header = header.replace(' ', "");
    }
    while (header.len() + 11) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let version = *pick(rng, &[1u8, 1, 2, 3, 0, 9]);
    let mut bytes = b"\x93NUMPY".to_vec();
    bytes.push(version);
    bytes.push(0);
    if version == 1 {
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    bytes.extend_from_slice(header.as_bytes());
    let width = descr.get(2..).and_then(|w| w.parse::<u64>().ok()).unwrap_or(8);
    let mut data_len = count * width;
    if chance(rng, 20) {
        data_len = rng.below(100);
    }
    bytes.extend((0..data_len).map(|_| rng.below(256) as u8));
    if chance(rng, 40) {
        for _ in 0..rng.below(4) + 1 {
            let i = rng.below(bytes.len() as u64) as usize;
            match rng.below(3) {
                0 => bytes[i] ^= 1 << rng.below(8),
                1 => bytes.truncate(i),
                _ => bytes[i] = *pick(rng, &[0, 0xff, b'(', b')', b',', b'\'', b':']),
            }
            if bytes.is_empty() {
                break;
            }
        }
    }
    bytes
}

#[test]
fn fuzz_npy_reader() {
    fuzz_loop(".npy reader", |rng, _, described| {
        let bytes = npy_input(rng);
        *described = format!("{bytes:?}");
        match parse_npy(&bytes, Path::new("x.npy")) {
            Ok(a) => {
                assert_eq!(a.data.len(), a.rows * a.cols, "data and shape agree");
                Outcome::Accepted
            }
            Err(_) => Outcome::RefusedLater,
        }
    });
}

// ------------------------------------------------------------------------------ matrix files

/// Interesting values for an array word: the limits around what readers index with.
fn interesting_word(rng: &mut SplitMix, old: u64, dims: u64) -> u64 {
    let random = rng.next_u64();
    *pick(
        rng,
        &[
            0,
            1,
            old.wrapping_add(1),
            old.wrapping_sub(1),
            old.wrapping_mul(2),
            dims,
            dims + 1,
            dims.wrapping_sub(1),
            u32::MAX as u64,
            1 << 32,
            i64::MAX as u64,
            u64::MAX,
            random,
        ],
    )
}

/// Damages one file of the matrix in `dir` (or its manifest, structurally, keeping a valid checksum).
/// Returns what was done.
fn damage(rng: &mut SplitMix, dir: &Path) -> String {
    let m = Matrix::open(dir).unwrap();
    let dims = m.rows().max(m.cols());
    let seg_count = m.segments().len();
    drop(m);
    if chance(rng, 35) || seg_count == 0 {
        return damage_manifest(rng, dir, dims);
    }
    let m = Matrix::open(dir).unwrap();
    let s = rng.below(seg_count as u64) as usize;
    let seg = &m.segments()[s];
    let files: Vec<_> = seg.files().filter(|f| f.bytes > 0).cloned().collect();
    let entry = pick(rng, &files).clone();
    let index_width = m.index_type().bytes() as usize;
    drop(m);
    let path = dir.join(&entry.path);
    let mut bytes = fs::read(&path).unwrap();
    let what;
    match rng.below(5) {
        0 | 1 => {
            // An aligned word set to an interesting value: u64 row pointers, u32/u64 indices.
            let width = if entry.path.contains("pointers_to_1") {
                8
            } else if entry.path.contains("indices_1") {
                index_width
            } else {
                8
            };
            let words = bytes.len() / width;
            if words == 0 {
                bytes[0] ^= 1;
                return format!("flipped a bit of {}", entry.path);
            }
            let k = rng.below(words as u64) as usize;
            let at = k * width;
            let old = if width == 8 {
                u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
            } else {
                u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as u64
            };
            let new = interesting_word(rng, old, dims);
            if width == 8 {
                bytes[at..at + 8].copy_from_slice(&new.to_le_bytes());
            } else {
                bytes[at..at + 4].copy_from_slice(&(new as u32).to_le_bytes());
            }
            what = format!("word {k} of {} from {old} to {new}", entry.path);
        }
        2 => {
            let n = rng.below(3) + 1;
            for _ in 0..n {
                let i = rng.below(bytes.len() as u64) as usize;
                bytes[i] ^= 1 << rng.below(8);
            }
            what = format!("{n} bit flips in {}", entry.path);
        }
        3 => {
            for b in bytes.iter_mut() {
                *b = rng.below(256) as u8;
            }
            what = format!("random bytes in {}", entry.path);
        }
        _ => {
            // Resize the file and record the new size (and, sometimes, a matching nnz) in a re-signed
            // manifest: open's size check passes, the contents do not agree.
            let new_len = rng.below(bytes.len() as u64 * 2 + 16) as usize;
            bytes.resize(new_len, rng.below(256) as u8);
            let set_nnz = chance(rng, 50);
            let rel = entry.path.clone();
            fs::write(&path, &bytes).unwrap();
            forge_manifest(dir, |v| {
                let seg = &mut v["segments"][s];
                for key in ["indptr", "indices", "values"] {
                    if seg[key]["path"] == rel.as_str() {
                        seg[key]["bytes"] = (new_len as u64).into();
                        if set_nnz && key != "indptr" {
                            let width = if key == "indices" { index_width } else { 8 };
                            let nnz = (new_len / width) as u64;
                            let old = seg["nnz"].as_u64().unwrap_or(0);
                            seg["nnz"] = nnz.into();
                            let total = v["nnz"].as_u64().unwrap_or(0).wrapping_sub(old).wrapping_add(nnz);
                            v["nnz"] = total.into();
                            return;
                        }
                    }
                }
                for file in seg["metadata"].as_array_mut().into_iter().flatten() {
                    if file["path"] == rel.as_str() {
                        file["bytes"] = (new_len as u64).into();
                    }
                }
            });
            return format!("resized {rel} to {new_len} bytes (nnz too: {set_nnz})");
        }
    }
    fs::write(&path, &bytes).unwrap();
    what
}

/// Edits the manifest: a number, a type name, a segment removed or repeated; re-signed or not.
fn damage_manifest(rng: &mut SplitMix, dir: &Path, dims: u64) -> String {
    let path = dir.join(sparsedisk::format::MANIFEST_FILE);
    if chance(rng, 15) {
        let mut bytes = fs::read(&path).unwrap();
        mutate(rng, &mut bytes);
        fs::write(&path, &bytes).unwrap();
        return "manifest bytes mutated (checksum not updated)".into();
    }
    let mut what = String::new();
    let choice = rng.below(6);
    let near = rng.below(dims + 2);
    let word = interesting_word(rng, near, dims);
    let pick_seg = rng.below(4) as usize;
    let type_name = *pick(rng, &["float64", "float32", "int64", "pattern", "uint32", "uint64", "csr", "csc", "bogus"]);
    forge_manifest(dir, |v| {
        let segs = v["segments"].as_array().map_or(0, Vec::len);
        let s = if segs > 0 { pick_seg % segs } else { 0 };
        match choice {
            0 => {
                let key = ["start", "end", "nnz"][pick_seg % 3];
                if segs > 0 {
                    v["segments"][s][key] = word.into();
                }
                what = format!("segment {s} {key} = {word}");
            }
            1 => {
                let i = pick_seg % 2;
                v["shape"][i] = word.into();
                what = format!("shape[{i}] = {word}");
            }
            2 => {
                v["nnz"] = word.into();
                what = format!("nnz = {word}");
            }
            3 => {
                let key = ["value_type", "index_type", "layout"][pick_seg % 3];
                v[key] = type_name.into();
                what = format!("{key} = {type_name}");
            }
            4 => {
                if let Some(a) = v["segments"].as_array_mut() {
                    if !a.is_empty() {
                        let seg = a.remove(s);
                        if pick_seg % 2 == 0 {
                            a.push(seg);
                        }
                    }
                }
                what = format!("segment {s} removed or moved last");
            }
            _ => {
                // The shape and the last segment's end together (the tiling stays consistent).
                let layout_csr = v["layout"] == "csr";
                let i = if layout_csr { 0 } else { 1 };
                let grown = word % 4096;
                v["shape"][i] = grown.into();
                if segs > 0 {
                    v["segments"][segs - 1]["end"] = grown.into();
                }
                what = format!("outer dimension and last end = {grown}");
            }
        }
    });
    what
}

/// Every kernel and operation on an opened (not verified) matrix, then `verify`: each gives `Ok` or
/// `Err`. True when every kernel gave `Ok` (a damaged value or an index still in range gives a wrong
/// result, which only `verify` can tell).
fn exercise(m: &Matrix, scratch: &Path, rng: &mut SplitMix) -> bool {
    let mut all_ok = true;
    let mut note = |ok: bool| all_ok &= ok;
    let (rows, cols) = m.shape();
    let small = rows <= 1 << 16 && cols <= 1 << 16;
    let _ = m.info();
    for seg in m.segments_mapped() {
        match seg {
            Ok(seg) => {
                let _ = seg.check_structure();
                match m.index_type() {
                    sparsedisk::IndexType::Uint32 => note(view::<u32>(&seg)),
                    sparsedisk::IndexType::Uint64 => note(view::<u64>(&seg)),
                }
            }
            Err(_) => note(false),
        }
    }
    if small {
        let (r, c) = (rows as usize, cols as usize);
        let x: Vec<f64> = (0..c).map(|i| (i % 7) as f64 - 3.0).collect();
        let mut y = vec![0.0; r];
        note(spmv(m, 1.0, &x, 0.5, &mut y).is_ok());
        let xt: Vec<f64> = (0..r).map(|i| (i % 5) as f64).collect();
        let mut yt = vec![0.0; c];
        note(spmv_transpose(m, 2.0, &xt, 0.0, &mut yt).is_ok());
        let k = 1 + rng.below(3) as usize;
        let xs = vec![1.0; c * k];
        let mut ys = vec![0.0; r * k];
        note(spmm(m, 1.0, &xs, 0.0, &mut ys, k).is_ok());
        if let Ok(op) = Operator::new(m, *pick(rng, &[0, 1 << 20])) {
            let mut y2 = vec![0.0; r];
            note(op.spmv(1.0, &x, 0.0, &mut y2).is_ok());
            if r == c {
                let mut y3 = vec![0.0; r];
                note(op.spmv_dot(&x, &mut y3, &x).is_ok());
            }
        }
        note(m.to_sprs().is_ok());
        if rows == cols && rows > 0 {
            note(bfs(m, rng.below(rows), None, &mut |_| {}).is_ok());
            note(components(m, None, &mut |_| {}).is_ok());
            let pr = PagerankOptions { max_iter: 5, ..PagerankOptions::default() };
            note(pagerank(m, &pr, &mut |_| {}).is_ok());
            let b = vec![1.0; r];
            let precond = *pick(rng, &[Preconditioner::None, Preconditioner::Jacobi]);
            let cg_options = CgOptions { max_iter: Some(5), preconditioner: precond, ..CgOptions::default() };
            note(cg(m, &b, &cg_options, &mut |_| {}).is_ok());
        }
        // One segment per row only for a few rows: thousands of rows (a damaged shape) would make
        // thousands of segment directories.
        let segment_bytes = if rows.max(cols) <= 64 { *pick(rng, &[1, 128, 1 << 20]) } else { 1 << 20 };
        let op = OpOptions {
            memory_budget: 64 << 20,
            writer: WriterOptions { segment_bytes, durable: false, overwrite: false, dense: None },
            max_chunk_entries: *pick(rng, &[None, Some(3)]),
        };
        let out = |name: &str| scratch.join(name);
        note(transpose(m, out("t"), None, &op, None).is_ok());
        let other = if m.layout() == Layout::Csr { Layout::Csc } else { Layout::Csr };
        note(convert(m, out("c"), other, &op, None).is_ok());
        note(add(m, m, out("a"), &AddOptions { op: op.clone(), beta: -0.5, ..AddOptions::default() }, None).is_ok());
        let sp = SpgemmOptions {
            op: op.clone(),
            semiring: *pick(rng, &[Semiring::PlusTimes, Semiring::MinPlus, Semiring::Pattern]),
            accumulator: *pick(
                rng,
                &[Accumulator::Auto, Accumulator::Sort, Accumulator::Hash, Accumulator::Dense, Accumulator::Window],
            ),
            max_block_bytes: *pick(rng, &[None, Some(1)]),
            ..SpgemmOptions::default()
        };
        if rows == cols {
            note(spgemm(m, m, out("p"), &sp, None).is_ok());
        }
        for name in ["t", "c", "a", "p"] {
            let dir = out(name);
            if dir.exists() {
                // An operation that succeeded wrote a matrix that verifies.
                Matrix::open(&dir).unwrap().verify().unwrap_or_else(|e| panic!("{name}: output does not verify: {e}"));
                fs::remove_dir_all(&dir).unwrap();
            }
        }
    }
    // Export streams entries and needs no vector: also for the 2^33-column matrix.
    let mtx = scratch.join("e.mtx");
    note(export_matrix_market(m, &mtx, &mut |_| {}).is_ok());
    let _ = fs::remove_file(mtx);
    // Not noted: verify refuses nearly every damaged matrix (its checksums), which is its job; the
    // question here is whether anything panics, and which kernels refuse.
    let _ = m.verify();
    all_ok
}

/// A zero-copy sprs view of the segment, under every value type (one is the stored type).
fn view<I: StoredIndex>(seg: &sparsedisk::MappedSegment) -> bool {
    let f = seg.sprs_view::<f64, I>().is_ok();
    let p = seg.sprs_view::<(), I>().is_ok();
    let i = seg.sprs_view::<i64, I>().is_ok();
    let h = seg.sprs_view::<f32, I>().is_ok();
    f || p || i || h
}

/// The small valid matrices every damaged copy starts from: several segments each, both layouts,
/// all four value types, and 64-bit indices (an inner dimension above 2^32).
fn originals(root: &Path) -> Vec<PathBuf> {
    let mut rng = SplitMix(11);
    let mut dirs = Vec::new();
    let square = random_triplets(&mut rng, 9, 9, 0.3);
    let wide = random_triplets(&mut rng, 6, 8, 0.4);
    for (k, (t, layout, vt)) in [
        (&square, Layout::Csr, ValueType::Float64),
        (&square, Layout::Csc, ValueType::Pattern),
        (&wide, Layout::Csr, ValueType::Int64),
        (&square, Layout::Csc, ValueType::Float32),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = root.join(format!("orig-{k}"));
        match vt {
            ValueType::Float64 => write::<f64>(t, &dir, layout, 48, true),
            ValueType::Float32 => write::<f32>(t, &dir, layout, 48, false),
            ValueType::Int64 => write::<i64>(t, &dir, layout, 48, true),
            ValueType::Pattern => write::<()>(t, &dir, layout, 48, false),
        }
        .unwrap();
        dirs.push(dir);
    }
    // u64 indices: 3 rows, 2^33 columns (kernels that need a vector of the columns are skipped).
    let dir = root.join("orig-wide64");
    let mut w = sparsedisk::MatrixWriter::<f64>::create(
        &dir,
        (3, 1 << 33),
        Layout::Csr,
        WriterOptions { segment_bytes: 24, durable: false, overwrite: false, dense: None },
    )
    .unwrap();
    w.push_row(&[0, 5, (1 << 33) - 1], &[1.0, 2.0, 3.0]).unwrap();
    w.push_row(&[], &[]).unwrap();
    w.push_row(&[1 << 32], &[4.0]).unwrap();
    w.finish().unwrap();
    dirs.push(dir);
    // Dense blocks (4 x 4, clipped at the edges and cut by segment boundaries) beside CSR entries.
    let dir = root.join("orig-dense");
    let dense = sparsedisk::DenseOptions { threshold: 0.5, block_shape: [4, 4] };
    let options = WriterOptions { segment_bytes: 300, durable: false, overwrite: false, dense: Some(dense) };
    let mut w = sparsedisk::MatrixWriter::<f64>::create(&dir, (18, 18), Layout::Csr, options).unwrap();
    for r in 0..18u64 {
        let cols: Vec<u64> = (0..18u64).filter(|c| c / 4 == r / 4 || (c + 2 * r) % 7 == 0).collect();
        let vals: Vec<f64> = cols.iter().map(|&c| (r * 18 + c) as f64 - 100.0).collect();
        w.push_row(&cols, &vals).unwrap();
    }
    assert!(w.finish().unwrap().info().dense_blocks > 0);
    dirs.push(dir);
    for d in &dirs {
        Matrix::open(d).unwrap().verify().unwrap();
    }
    dirs
}

#[test]
fn fuzz_damaged_matrices_through_open_and_every_kernel() {
    let tmp = scratch_dir();
    let originals = originals(tmp.path());
    let scratch = tmp.path().join("scratch");
    fs::create_dir_all(&scratch).unwrap();
    fuzz_loop("damaged matrix files -> open -> kernels", |rng, case, described| {
        let original = pick(rng, &originals).clone();
        let dir = tmp.path().join(format!("damaged-{case}"));
        copy_dir(&original, &dir);
        let mut damages = Vec::new();
        for _ in 0..1 + rng.below(2) {
            damages.push(damage(rng, &dir));
            if Matrix::open(&dir).is_err() {
                break;
            }
        }
        *described = format!("{} with {damages:?}", original.display());
        let outcome = match Matrix::open(&dir) {
            Err(_) => Outcome::RefusedEarly,
            Ok(m) => {
                if exercise(&m, &scratch, rng) {
                    Outcome::Accepted
                } else {
                    Outcome::RefusedLater
                }
            }
        };
        fs::remove_dir_all(&dir).unwrap();
        outcome
    });
}
