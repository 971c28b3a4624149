//! The triplet input parsers (`sparsedisk::io::read`): every format feature, every error with its exact
//! line, block boundaries (tiny blocks give the same triplets and the same error lines as one big
//! block), gzip, the fixtures in `datasets/fixtures/`, and, when `SPARSEDISK_REAL_DATASETS` is set, the
//! real Matrix Market files of its catalog.

use flate2::write::GzEncoder;
use flate2::Compression;
use proptest::prelude::*;
use sparsedisk::io::read::{
    ColumnSpec, Field, InputFormat, InputHeader, ReadOptions, ReadSummary, Symmetry, TripletReader,
};
use sparsedisk::{Element, Error, Result, Triplet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Block sizes every small input is read with: one byte, a few lines, and the default.
const BLOCKS: [usize; 5] = [1, 7, 13, 64, 8 << 20];

struct Read<V> {
    header: InputHeader,
    triplets: Vec<Triplet<V>>,
    summary: ReadSummary,
    chunks: usize,
}

fn read_path<V: Element>(path: &Path, options: &ReadOptions) -> Result<Read<V>> {
    let reader = TripletReader::open(path, options.clone())?;
    let header = reader.header().clone();
    let mut triplets = Vec::new();
    let mut chunks = 0;
    let summary = reader.read_all::<V>(
        &mut |chunk| {
            assert!(!chunk.is_empty(), "empty chunks are not handed on");
            chunks += 1;
            triplets.extend(chunk);
            Ok(())
        },
        &mut |_| {},
    )?;
    assert_eq!(summary.triplets, triplets.len() as u64);
    Ok(Read { header, triplets, summary, chunks })
}

/// Reads `path` with every block size in [`BLOCKS`]; all must agree (same triplets, same summary, or
/// the same error with the same line); returns the result of the default block size.
fn read_all_blocks<V: Element>(path: &Path, options: &ReadOptions) -> Result<Read<V>> {
    let reference = read_path::<V>(path, options);
    for block_bytes in BLOCKS {
        let got = read_path::<V>(path, &ReadOptions { block_bytes, ..options.clone() });
        match (&reference, &got) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.triplets, b.triplets, "{} with block_bytes {block_bytes}", path.display());
                assert_eq!(a.summary, b.summary, "{} with block_bytes {block_bytes}", path.display());
                assert_eq!(a.header, b.header);
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "block_bytes {block_bytes}"),
            _ => panic!(
                "{}: block_bytes {block_bytes} disagrees: {:?} vs {:?}",
                path.display(),
                reference.as_ref().err(),
                got.as_ref().err()
            ),
        }
    }
    reference
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Writes `text` to a temporary file called `name` and reads it with every block size.
fn read_text<V: Element>(name: &str, text: &str, options: &ReadOptions) -> Result<Read<V>> {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), name, text.as_bytes());
    read_all_blocks::<V>(&path, options)
}

fn mtx<V: Element>(text: &str) -> Read<V> {
    read_text::<V>("m.mtx", text, &ReadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn tuples<V: Copy>(read: &Read<V>) -> Vec<(u64, u64, V)> {
    read.triplets.iter().map(|t| (t.row, t.col, t.value)).collect()
}

/// The line and message of a parse error.
fn parse_error<T>(result: Result<T>) -> (u64, String) {
    match result {
        Err(Error::Parse { line, msg, .. }) => (line, msg),
        Err(e) => panic!("expected a parse error, got {e}"),
        Ok(_) => panic!("expected a parse error, got Ok"),
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/fixtures").join(name)
}

// ------------------------------------------------------------------------------------------ Matrix Market

#[test]
fn mtx_general_real_with_comments_blanks_and_whitespace() {
    let r = read_all_blocks::<f64>(&fixture("general_real.mtx"), &ReadOptions::default()).unwrap();
    assert_eq!(r.header.format, InputFormat::MatrixMarket);
    assert_eq!(r.header.shape, Some((4, 5)));
    assert_eq!(r.header.declared_entries, Some(6));
    assert_eq!((r.header.field, r.header.symmetry, r.header.array), (Field::Real, Symmetry::General, false));
    assert_eq!(r.header.header_line, 4);
    let got = tuples(&r);
    assert_eq!(got[..4], [(0, 0, 1.5), (1, 2, -2000.0), (3, 4, 0.25), (2, 0, 0.0)]);
    assert_eq!(got[4], (0, 4, f64::INFINITY));
    assert!(got[5].2 == 0.0 && got[5].2.is_sign_negative());
    assert_eq!(
        r.summary,
        ReadSummary {
            lines: 12,
            entries_in_file: 6,
            triplets: 6,
            bytes: std::fs::metadata(fixture("general_real.mtx")).unwrap().len(),
            max_row: Some(3),
            max_col: Some(4),
        }
    );
    assert_eq!(r.header.file_size, Some(r.summary.bytes));
}

#[test]
fn mtx_banner_is_case_insensitive_and_accepts_double_and_coord() {
    let r = mtx::<f64>("%%matrixmarket MATRIX Coord DOUBLE General\n2 2 1\n2 1 3\n");
    assert_eq!(tuples(&r), [(1, 0, 3.0)]);
    let r = read_all_blocks::<i64>(&fixture("skew_integer.mtx"), &ReadOptions::default()).unwrap();
    assert_eq!((r.header.field, r.header.symmetry), (Field::Integer, Symmetry::SkewSymmetric));
    assert_eq!(tuples(&r), [(1, 0, 7), (0, 1, -7), (2, 1, -4), (1, 2, 4)]);
}

#[test]
fn mtx_crlf_and_no_final_newline() {
    let r = read_all_blocks::<f64>(&fixture("crlf.mtx"), &ReadOptions::default()).unwrap();
    assert_eq!(tuples(&r), [(0, 0, 1.0), (2, 1, 2.5)]);
    assert_eq!(r.summary.lines, 6);
    let r = mtx::<f64>("%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1\n2 2 2");
    assert_eq!(tuples(&r), [(0, 0, 1.0), (1, 1, 2.0)]);
    assert_eq!(r.summary.lines, 4);
    let r = mtx::<f64>("%%MatrixMarket matrix coordinate real general\r\n2 2 1\r\n1 1 1\r");
    assert_eq!(tuples(&r), [(0, 0, 1.0)]);
    // Blank lines and indentation before the banner, a byte order mark.
    let r = mtx::<f64>("\u{feff}\n  \n   %%MatrixMarket matrix coordinate real general\n  % c\n 1 1 1 \n\t1 1 5\t\n");
    assert_eq!(tuples(&r), [(0, 0, 5.0)]);
    assert_eq!(r.header.header_line, 5);
}

#[test]
fn mtx_symmetric_expansion_keeps_file_order_and_the_diagonal_once() {
    let r = read_all_blocks::<()>(&fixture("symmetric_pattern.mtx"), &ReadOptions::default()).unwrap();
    assert_eq!(r.header.field, Field::Pattern);
    let got: Vec<_> = r.triplets.iter().map(|t| (t.row, t.col)).collect();
    assert_eq!(got, [(0, 0), (1, 0), (0, 1), (2, 0), (0, 2), (2, 1), (1, 2)]);
    assert_eq!((r.summary.entries_in_file, r.summary.triplets), (4, 7));
    // Entries in the upper triangle are mirrored too.
    let r = mtx::<f64>("%%MatrixMarket matrix coordinate real symmetric\n3 3 2\n1 3 2\n2 2 1\n");
    assert_eq!(tuples(&r), [(0, 2, 2.0), (2, 0, 2.0), (1, 1, 1.0)]);
    let r = read_all_blocks::<f64>(&fixture("hermitian_real.mtx"), &ReadOptions::default()).unwrap();
    assert_eq!(r.header.symmetry, Symmetry::Hermitian);
    assert_eq!(tuples(&r), [(0, 0, 3.0), (1, 0, -1.5), (0, 1, -1.5)]);
}

#[test]
fn mtx_skew_symmetric_negates_the_mirror() {
    let r = mtx::<f64>("%%MatrixMarket matrix coordinate real skew-symmetric\n3 3 2\n2 1 1.5\n3 1 -2\n");
    assert_eq!(tuples(&r), [(1, 0, 1.5), (0, 1, -1.5), (2, 0, -2.0), (0, 2, 2.0)]);
    let r = mtx::<f32>("%%MatrixMarket matrix coordinate real skew-symmetric\n2 2 1\n2 1 0.5\n");
    assert_eq!(tuples(&r), [(1, 0, 0.5f32), (0, 1, -0.5)]);
    // The mirror of i64::MIN does not exist.
    let (line, msg) = parse_error(read_text::<i64>(
        "m.mtx",
        "%%MatrixMarket matrix coordinate integer skew-symmetric\n2 2 2\n2 1 1\n2 1 -9223372036854775808\n",
        &ReadOptions::default(),
    ));
    assert_eq!(line, 4);
    assert!(msg.contains("cannot be negated"), "{msg}");
    // ... but as f64 it is fine.
    let r = mtx::<f64>("%%MatrixMarket matrix coordinate integer skew-symmetric\n2 2 1\n2 1 -9223372036854775808\n");
    assert_eq!(r.triplets[1].value, 9223372036854775808.0);
}

#[test]
fn mtx_pattern_reads_as_ones_and_values_read_as_pattern() {
    let r = mtx::<f64>("%%MatrixMarket matrix coordinate pattern general\n2 2 2\n1 2\n2 1\n");
    assert_eq!(tuples(&r), [(0, 1, 1.0), (1, 0, 1.0)]);
    let r = mtx::<i64>("%%MatrixMarket matrix coordinate pattern general\n2 2 1\n1 2\n");
    assert_eq!(tuples(&r), [(0, 1, 1)]);
    let r = mtx::<()>("%%MatrixMarket matrix coordinate real general\n2 2 2\n1 2 nonsense\n2 1 1e999\n");
    assert_eq!(r.triplets.len(), 2);
    // A pattern file whose lines carry values (some SuiteSparse test matrices): the values are ignored.
    let r = mtx::<f64>("%%MatrixMarket matrix coordinate pattern general\n2 2 2\n1 2 7\n2 1 8 9\n");
    assert_eq!(tuples(&r), [(0, 1, 1.0), (1, 0, 1.0)]);
}

#[test]
fn mtx_integer_values() {
    let r = mtx::<i64>(
        "%%MatrixMarket matrix coordinate integer general\n3 3 3\n1 1 -9223372036854775808\n2 2 +42\n3 3 9223372036854775807\n",
    );
    assert_eq!(tuples(&r), [(0, 0, i64::MIN), (1, 1, 42), (2, 2, i64::MAX)]);
    let (line, msg) = parse_error(read_text::<i64>(
        "m.mtx",
        "%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 3\n2 2 3.5\n",
        &ReadOptions::default(),
    ));
    assert_eq!(line, 4);
    assert!(
        msg.contains("expected an integer value") && msg.contains("'3.5'") && msg.contains("--value-type f64"),
        "{msg}"
    );
    let (line, msg) = parse_error(read_text::<i64>(
        "m.mtx",
        "%%MatrixMarket matrix coordinate integer general\n3 3 1\n3 3 19223372036854775808\n",
        &ReadOptions::default(),
    ));
    assert_eq!(line, 3);
    assert!(msg.contains("fits in 64 bits") && msg.contains("'19223372036854775808'"), "{msg}");
    // Read as floats, values beyond f64 are infinite (as strtod and fast_matrix_market read them).
    let r = mtx::<f64>("%%MatrixMarket matrix coordinate real general\n1 1 1\n1 1 1E310\n");
    assert_eq!(r.triplets[0].value, f64::INFINITY);
    let r = mtx::<f32>("%%MatrixMarket matrix coordinate real general\n1 1 1\n1 1 -1e39\n");
    assert_eq!(r.triplets[0].value, f32::NEG_INFINITY);
}

#[test]
fn mtx_array_formats() {
    let r = read_all_blocks::<f64>(&fixture("array_general.mtx"), &ReadOptions::default()).unwrap();
    assert!(r.header.array);
    assert_eq!(r.header.declared_entries, Some(6));
    assert_eq!(tuples(&r), [(0, 0, 1.0), (1, 0, 2.0), (0, 1, 0.0), (1, 1, 4.0), (0, 2, 5.0), (1, 2, 6.0)]);
    let r = read_all_blocks::<f64>(&fixture("array_symmetric.mtx"), &ReadOptions::default()).unwrap();
    assert_eq!(r.header.declared_entries, Some(6));
    assert_eq!(
        tuples(&r),
        [
            (0, 0, 1.0),
            (1, 0, 2.0),
            (0, 1, 2.0),
            (2, 0, 3.0),
            (0, 2, 3.0),
            (1, 1, 4.0),
            (2, 1, 5.0),
            (1, 2, 5.0),
            (2, 2, 6.0)
        ]
    );
    assert_eq!(
        (r.summary.entries_in_file, r.summary.triplets, r.summary.max_row, r.summary.max_col),
        (6, 9, Some(2), Some(2))
    );
    let r = read_all_blocks::<i64>(&fixture("array_skew.mtx"), &ReadOptions::default()).unwrap();
    assert_eq!(r.header.declared_entries, Some(3));
    assert_eq!(tuples(&r), [(1, 0, 1), (0, 1, -1), (2, 0, 2), (0, 2, -2), (2, 1, 3), (1, 2, -3)]);
    // Empty arrays.
    let r = mtx::<f64>("%%MatrixMarket matrix array real general\n0 5\n");
    assert!(r.triplets.is_empty());
    let r = mtx::<f64>("%%MatrixMarket matrix array real skew-symmetric\n1 1\n");
    assert!(r.triplets.is_empty());
    // Too many and too few values.
    let (line, msg) = parse_error(read_text::<f64>(
        "m.mtx",
        "%%MatrixMarket matrix array real general\n2 1\n1\n\n2\n3\n",
        &ReadOptions::default(),
    ));
    assert_eq!(line, 6);
    assert!(msg.contains("after the 2 values declared on line 2") && msg.contains("'3'"), "{msg}");
    let (line, msg) = parse_error(read_text::<f64>(
        "m.mtx",
        "%%MatrixMarket matrix array real symmetric\n3 3\n1\n2\n",
        &ReadOptions::default(),
    ));
    assert_eq!(line, 4);
    assert!(msg.contains("after 2 values") && msg.contains("3 x 3 symmetric array of 6 values"), "{msg}");
}

#[test]
fn mtx_64_bit_sizes_and_indices() {
    let r = read_all_blocks::<i64>(&fixture("big_indices.mtx"), &ReadOptions::default()).unwrap();
    assert_eq!(r.header.shape, Some((1_000_000_000_000_000_000, u64::MAX)));
    assert_eq!(tuples(&r), [(999_999_999_999_999_999, u64::MAX - 1, 1), (0, 0, i64::MIN)]);
    // A declared count of 10^18 is just a number: nothing is allocated by it.
    let (line, msg) = parse_error(read_text::<f64>(
        "m.mtx",
        "%%MatrixMarket matrix coordinate real general\n1000000000000000000 1000000000000000000 1000000000000000000\n1 1 1\n",
        &ReadOptions::default(),
    ));
    assert_eq!(line, 3);
    assert!(msg.contains("after 1 entries") && msg.contains("declares 1000000000000000000"), "{msg}");
    // An array whose value count overflows u64.
    let (line, msg) = parse_error(read_text::<f64>(
        "m.mtx",
        "%%MatrixMarket matrix array real general\n18446744073709551615 2\n",
        &ReadOptions::default(),
    ));
    assert_eq!(line, 2);
    assert!(msg.contains("more than 2^64"), "{msg}");
}

#[test]
fn mtx_empty_matrices() {
    for text in [
        "%%MatrixMarket matrix coordinate real general\n0 0 0\n",
        "%%MatrixMarket matrix coordinate pattern general\n3 4 0",
        "%%MatrixMarket matrix coordinate real symmetric\n% c\n\n5 5 0\n\n% trailing\n",
    ] {
        let r = mtx::<f64>(text);
        assert!(r.triplets.is_empty());
        assert_eq!((r.summary.max_row, r.summary.max_col, r.chunks), (None, None, 0));
    }
}

#[test]
fn gzip_by_name_and_by_magic() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read(fixture("general_real.mtx")).unwrap();
    let plain = read_path::<f64>(&fixture("general_real.mtx"), &ReadOptions::default()).unwrap();
    // Two gzip members: MultiGzDecoder reads both (as `cat a.gz b.gz` produces).
    let mut gz = Vec::new();
    for half in [&text[..40], &text[40..]] {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(half).unwrap();
        gz.extend(e.finish().unwrap());
    }
    for name in ["m.mtx.gz", "m.MTX.GZ", "no_extension"] {
        let path = write_file(dir.path(), name, &gz);
        let r = read_all_blocks::<f64>(&path, &ReadOptions::default()).unwrap();
        assert_eq!(tuples(&r).len(), 6);
        assert_eq!(r.triplets, plain.triplets);
        assert_eq!(r.summary.bytes, text.len() as u64);
        assert_eq!(r.header.file_size, Some(gz.len() as u64));
    }
    // Progress counts compressed bytes and ends at the file size.
    let path = write_file(dir.path(), "p.mtx.gz", &gz);
    let reader = TripletReader::open(&path, ReadOptions { block_bytes: 16, ..ReadOptions::default() }).unwrap();
    let mut seen = Vec::new();
    reader.read_all::<f64>(&mut |_| Ok(()), &mut |b| seen.push(b)).unwrap();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(seen.last().copied(), Some(gz.len() as u64));
    // A .gz name on a file that is not gzip: an I/O error naming the file.
    let path = write_file(dir.path(), "bad.mtx.gz", b"%%MatrixMarket matrix coordinate real general\n");
    match TripletReader::open(&path, ReadOptions::default()) {
        Err(Error::Io { path: p, action, .. }) => {
            assert_eq!(p, path);
            assert!(action.contains("gzip"), "{action}");
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    // Errors in a gzip file carry lines of the decompressed text.
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(b"%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1\n2 2 x\n").unwrap();
    let path = write_file(dir.path(), "e.mtx.gz", &e.finish().unwrap());
    assert_eq!(parse_error(read_all_blocks::<f64>(&path, &ReadOptions::default())).0, 4);
}

#[test]
fn format_detection() {
    let dir = tempfile::tempdir().unwrap();
    let banner = b"%%MatrixMarket matrix coordinate real general\n1 1 1\n1 1 2\n";
    for name in ["a.txt", "a.csv", "a"] {
        let path = write_file(dir.path(), name, banner);
        let r = TripletReader::open(&path, ReadOptions::default()).unwrap();
        assert_eq!(r.header().format, InputFormat::MatrixMarket, "{name}");
    }
    let edges = b"0 1\n1 2\n";
    for (name, format) in [
        ("a.txt", InputFormat::EdgeList),
        ("a.el", InputFormat::EdgeList),
        ("a", InputFormat::EdgeList),
        ("a.CSV", InputFormat::Csv),
    ] {
        let path = write_file(dir.path(), name, edges);
        assert_eq!(TripletReader::open(&path, ReadOptions::default()).unwrap().header().format, format, "{name}");
    }
    // A .mtx name without a banner is Matrix Market, and says what it expected.
    let path = write_file(dir.path(), "a.mm", edges);
    let (line, msg) = parse_error(TripletReader::open(&path, ReadOptions::default()));
    assert_eq!(line, 1);
    assert!(msg.contains("expected the Matrix Market banner") && msg.contains("'0 1'"), "{msg}");
    // Forcing the format overrides the name.
    let path = write_file(dir.path(), "a.mtx", edges);
    let options = ReadOptions { format: InputFormat::EdgeList, ..ReadOptions::default() };
    assert_eq!(read_all_blocks::<()>(&path, &options).unwrap().triplets.len(), 2);
    // An empty file (or one of blank lines) is an error in every format, at line 1.
    for (name, text) in [("empty.mtx", &b""[..]), ("empty.txt", b""), ("empty.csv", b"\n \n")] {
        let path = write_file(dir.path(), name, text);
        let (line, msg) = parse_error(TripletReader::open(&path, ReadOptions::default()));
        assert_eq!(line, 1, "{name}");
        assert!(msg.starts_with("the file is empty"), "{name}: {msg}");
    }
    // A file of comments only is an edge list without edges.
    let path = write_file(dir.path(), "comments.txt", b"# nothing yet\n");
    let r = read_all_blocks::<f64>(&path, &ReadOptions::default()).unwrap();
    assert!(r.triplets.is_empty());
    assert_eq!((r.summary.lines, r.header.field), (1, Field::Pattern));
    assert_eq!("matrix-market".parse::<InputFormat>().unwrap(), InputFormat::MatrixMarket);
    assert_eq!("CSV".parse::<InputFormat>().unwrap(), InputFormat::Csv);
    assert!("xls".parse::<InputFormat>().is_err());
}

// ----------------------------------------------------------------------------------------------- edge lists

#[test]
fn edge_lists() {
    let r = read_all_blocks::<f64>(&fixture("edges.txt"), &ReadOptions::default()).unwrap();
    assert_eq!(r.header.format, InputFormat::EdgeList);
    assert_eq!((r.header.field, r.header.shape, r.header.declared_entries), (Field::Pattern, None, None));
    assert_eq!(tuples(&r), [(0, 1, 1.0), (1, 2, 1.0), (2, 0, 1.0), (2, 2, 1.0)]);
    assert_eq!(r.summary.lines, 8);
    // Symmetrized: the self loop once.
    let options = ReadOptions { symmetrize: true, ..ReadOptions::default() };
    let r = read_all_blocks::<()>(&fixture("edges.txt"), &options).unwrap();
    let got: Vec<_> = r.triplets.iter().map(|t| (t.row, t.col)).collect();
    assert_eq!(got, [(0, 1), (1, 0), (1, 2), (2, 1), (2, 0), (0, 2), (2, 2)]);
    // Weighted, 1-based, a fourth column ignored.
    let options = ReadOptions { index_base: Some(1), ..ReadOptions::default() };
    let r = read_all_blocks::<f64>(&fixture("edges_weighted.txt"), &options).unwrap();
    assert_eq!(r.header.field, Field::Real);
    assert_eq!(tuples(&r), [(0, 1, 0.5), (1, 2, 1.5), (2, 0, -2.0)]);
    // Index base 1 rejects id 0, naming the line.
    let (line, msg) = parse_error(read_all_blocks::<f64>(&fixture("edges.txt"), &options));
    assert_eq!(line, 3);
    assert!(msg.contains("source id 0 is below the index base 1"), "{msg}");
    // Tabs, runs of blanks, CRLF, a weighted file read as pattern.
    let r = read_text::<()>("g.tsv", "  3\t\t4   2.5 \r\n\r\n5 6 x\n", &ReadOptions::default()).unwrap();
    assert_eq!(r.triplets.len(), 2);
    // Huge ids are fine as u64.
    let r = read_text::<()>("g.txt", "18446744073709551615 0\n", &ReadOptions::default()).unwrap();
    assert_eq!(r.triplets[0].row, u64::MAX);
}

#[test]
fn edge_list_mixed_weights_name_the_line() {
    let (line, msg) = parse_error(read_all_blocks::<f64>(&fixture("bad_mixed_weights.txt"), &ReadOptions::default()));
    assert_eq!(line, 4);
    assert!(msg.contains("expected a weight") && msg.contains("first data line (line 1)"), "{msg}");
    let (line, msg) = parse_error(read_text::<f64>("g.txt", "# c\n\n1 2\n2 3 0.5\n", &ReadOptions::default()));
    assert_eq!(line, 4);
    assert!(msg.contains("(line 3) which has no weight") && msg.contains("'0.5'"), "{msg}");
}

// --------------------------------------------------------------------------------------------------- CSV

#[test]
fn csv_header_quotes_and_crlf() {
    let r = read_all_blocks::<f64>(&fixture("with_header.csv"), &ReadOptions::default()).unwrap();
    assert_eq!(r.header.format, InputFormat::Csv);
    assert_eq!(r.header.header_line, 1);
    assert_eq!(r.header.column_names.as_deref(), Some(&["src", "dst", "weight", "label"].map(String::from)[..]));
    assert_eq!(r.header.field, Field::Real);
    assert_eq!(tuples(&r), [(0, 1, 0.5), (1, 2, 1.5), (2, 0, -1.0)]);
    // Columns by name, in another order, symmetrized.
    let options = ReadOptions {
        columns: Some(vec![ColumnSpec::Name("dst".into()), ColumnSpec::Name("src".into()), ColumnSpec::Index(2)]),
        symmetrize: true,
        ..ReadOptions::default()
    };
    let r = read_all_blocks::<f64>(&fixture("with_header.csv"), &options).unwrap();
    assert_eq!(tuples(&r), [(1, 0, 0.5), (0, 1, 0.5), (2, 1, 1.5), (1, 2, 1.5), (0, 2, -1.0), (2, 0, -1.0)]);
    // Only two columns selected: pattern.
    let options =
        ReadOptions { columns: Some(vec![ColumnSpec::Index(1), ColumnSpec::Index(0)]), ..ReadOptions::default() };
    let r = read_all_blocks::<f64>(&fixture("with_header.csv"), &options).unwrap();
    assert_eq!(r.header.field, Field::Pattern);
    assert_eq!(tuples(&r), [(1, 0, 1.0), (2, 1, 1.0), (0, 2, 1.0)]);
    // An unknown name is an error at the header line.
    let options =
        ReadOptions { columns: Some(vec!["src".parse().unwrap(), "to".parse().unwrap()]), ..ReadOptions::default() };
    let (line, msg) = parse_error(TripletReader::open(&fixture("with_header.csv"), options));
    assert_eq!(line, 1);
    assert!(msg.contains("no column named 'to'") && msg.contains("'weight'"), "{msg}");
}

#[test]
fn csv_delimiters_and_header_detection() {
    let options = ReadOptions { delimiter: Some(b';'), ..ReadOptions::default() };
    let r = read_all_blocks::<f64>(&fixture("semicolon.csv"), &options).unwrap();
    assert_eq!((r.header.field, r.header.header_line), (Field::Pattern, 0));
    assert_eq!(tuples(&r), [(0, 1, 1.0), (1, 2, 1.0), (2, 2, 1.0)]);
    // A numeric first line is data unless the caller says it is a header.
    let text = "1,2,3\n4,5,6\n";
    assert_eq!(read_text::<f64>("a.csv", text, &ReadOptions::default()).unwrap().triplets.len(), 2);
    let options = ReadOptions { has_header: Some(true), ..ReadOptions::default() };
    let r = read_text::<f64>("a.csv", text, &options).unwrap();
    assert_eq!(tuples(&r), [(4, 5, 6.0)]);
    // A non-numeric first line is a header unless the caller says it is not.
    let options = ReadOptions { has_header: Some(false), ..ReadOptions::default() };
    let (line, msg) = parse_error(read_text::<f64>("a.csv", "a,b\n1,2\n", &options));
    assert_eq!(line, 1);
    assert!(msg.contains("expected a row index") && msg.contains("'a'"), "{msg}");
    // Tab-separated, 1-based, quoted numbers, blanks around fields.
    let options = ReadOptions { delimiter: Some(b'\t'), index_base: Some(1), ..ReadOptions::default() };
    let r = read_text::<i64>("a.csv", "from\tto\tw\n\"1\"\t 2 \t-3\n", &options).unwrap();
    assert_eq!(tuples(&r), [(0, 1, -3)]);
    // A whitespace-separated file read as CSV gets a hint.
    let (line, msg) = parse_error(read_text::<f64>("karate.csv", "0 1 1.0\n1 2 1.0\n", &ReadOptions::default()));
    assert_eq!(line, 1);
    assert!(msg.contains("--format edges"), "{msg}");
}

#[test]
fn csv_errors() {
    let (line, msg) =
        parse_error(read_all_blocks::<f64>(&fixture("bad_unterminated_quote.csv"), &ReadOptions::default()));
    assert_eq!(line, 3);
    assert!(msg.contains("unterminated quoted field"), "{msg}");
    let cases: &[(&str, u64, &str)] = &[
        ("a,b,c\n1,2,3\n4,5\n", 3, "expected at least 3 fields"),
        ("1,2\n3,4,5\n", 2, "found a third field '5'"),
        ("1,2,3\n4,5,\n", 2, "expected a real value in field 2, found an empty field"),
        ("1,2,3\n4,,6\n", 2, "expected a column index (a non-negative integer) in field 1, found an empty field"),
        ("1,2,3\n4,5,\"6\"x\n", 2, "after the closing quote, found 'x'"),
        ("1,2,3\n99999999999999999999,1,1\n", 2, "does not fit in 64 bits"),
        ("s,d,w\n1,2,abc\n", 2, "expected a real value, found 'abc' in field 2 ('w')"),
    ];
    for &(text, want_line, fragment) in cases {
        let (line, msg) = parse_error(read_text::<f64>("a.csv", text, &ReadOptions::default()));
        assert_eq!(line, want_line, "{text:?}: {msg}");
        assert!(msg.contains(fragment), "{text:?}: {msg}");
    }
}

// ------------------------------------------------------------------------------------------------ errors

/// Small bad inputs, their expected error line and a fragment of the message. Each is read with every
/// block size in [`BLOCKS`] and must give the same error.
#[test]
fn error_table() {
    const B: &str = "%%MatrixMarket matrix coordinate real general\n";
    let long_token = format!("found 'x{}...'", "y".repeat(39));
    let cases: Vec<(&str, String, u64, &str)> = vec![
        ("m.mtx", format!("{B}3 3 3\n1 1 1\n2 2 abc\n3 3 3\n"), 4, "expected a real value, found 'abc'"),
        ("m.mtx", format!("{B}3 3 1\n1 1 1.5e\n"), 3, "found '1.5e'"),
        ("m.mtx", format!("{B}3 3 1\n1 1 1.5 2.5\n"), 3, "expected the end of the line after the value, found '2.5'"),
        ("m.mtx", format!("{B}3 3 1\n0 1 1\n"), 3, "row index 0 is out of range: Matrix Market indices start at 1"),
        ("m.mtx", format!("{B}3 3 1\n1 4 1\n"), 3, "column index 4 is out of range: the matrix has 3 columns"),
        ("m.mtx", format!("{B}3 3 1\n4 1 1\n"), 3, "row index 4 is out of range: the matrix has 3 rows"),
        ("m.mtx", format!("{B}3 3 1\n-1 1 1\n"), 3, "expected a row index (an integer from 1 to 3), found '-1'"),
        ("m.mtx", format!("{B}3 3 1\n1.0 1 1\n"), 3, "expected a row index (an integer from 1 to 3), found '1.0'"),
        ("m.mtx", format!("{B}3 3 1\n1\n"), 3, "expected a column index after the row index, found the end of the line"),
        ("m.mtx", format!("{B}3 3 1\n1 1\n"), 3, "expected a value after the column index (the banner declares 'real')"),
        ("m.mtx", format!("{B}3 3 1\n99999999999999999999 1 1\n"), 3, "row index '99999999999999999999' does not fit in 64 bits"),
        ("m.mtx", format!("{B}3 3 1\n1 1 1\n2 2 2\n"), 4, "expected the end of the data after the 1 entries declared on line 2, found another: '2 2 2'"),
        ("m.mtx", format!("{B}3 3 3\n1 1 1\n% c\n\n"), 5, "the file ended at line 5 after 1 entries, but the size line (line 2) declares 3"),
        ("m.mtx", format!("{B}3 3 3\n1 1 1"), 3, "the file ended at line 3 after 1 entries"),
        ("m.mtx", format!("{B}3 3 2\n1 1 1\n\u{0}\n"), 4, "found '\\u{0}'"),
        ("m.mtx", format!("{B}3 3 1\n1 1 x{}\n", "y".repeat(100)), 3, &long_token),
        ("m.mtx", format!("{B}% only comments\n"), 2, "the file ended at line 2, before the size line 'rows columns entries'"),
        ("m.mtx", format!("{B}3 3\n"), 2, "expected the number of entries after the number of columns"),
        ("m.mtx", format!("{B}3 3 1 1\n"), 2, "expected the end of the size line 'rows columns entries' after the number of entries, found '1'"),
        ("m.mtx", format!("{B}3 x 1\n"), 2, "the number of columns (a non-negative integer), found 'x'"),
        ("m.mtx", format!("{B}3 3 -1\n"), 2, "found '-1'"),
        ("m.mtx", format!("{B}99999999999999999999 3 1\n"), 2, "the number of rows '99999999999999999999' does not fit in 64 bits"),
        ("m.mtx", "%%MatrixMarket matrix coordinate complex general\n1 1 1\n1 1 1 0\n".into(), 1, "complex values are not supported yet"),
        ("m.mtx", "%%MatrixMarket vector array real general\n2\n1\n2\n".into(), 1, "Matrix Market vectors are not supported"),
        ("m.mtx", "%%MatrixMarket tensor coordinate real general\n".into(), 1, "expected the object 'matrix' in the banner, found 'tensor'"),
        ("m.mtx", "%%MatrixMarket matrix sparse real general\n".into(), 1, "expected the format 'coordinate' or 'array' in the banner, found 'sparse'"),
        ("m.mtx", "%%MatrixMarket matrix coordinate float general\n".into(), 1, "expected the field 'real', 'double', 'integer' or 'pattern' in the banner, found 'float'"),
        ("m.mtx", "%%MatrixMarket matrix coordinate real upper\n".into(), 1, "expected the symmetry 'general', 'symmetric', 'skew-symmetric' or 'hermitian' in the banner, found 'upper'"),
        ("m.mtx", "%%MatrixMarket matrix coordinate real\n".into(), 1, "the banner ends after 'real': expected the symmetry"),
        ("m.mtx", "%%MatrixMarket matrix coordinate real general extra\n".into(), 1, "expected the end of the banner after the symmetry, found 'extra'"),
        ("m.mtx", "%%MatrixMarket matrix array pattern general\n".into(), 1, "'array pattern' is not a valid Matrix Market combination"),
        ("m.mtx", "%%MatrixMarket matrix coordinate pattern skew-symmetric\n".into(), 1, "'pattern skew-symmetric' is not a valid"),
        ("m.mtx", "%MatrixMarket matrix coordinate real general\n".into(), 1, "expected the Matrix Market banner"),
        ("m.mtx", "%%MatrixMarket matrix coordinate real symmetric\n2 3 0\n".into(), 2, "a symmetric matrix must be square, but the size line declares 2 x 3"),
        ("m.mtx", "%%MatrixMarket matrix array real general\n2 2\n1\n2 3\n".into(), 4, "expected one value per line (array format), found '3'"),
        ("m.mtx", "%%MatrixMarket matrix array real general\n2 2\n1\nx\n".into(), 4, "expected a real value, found 'x'"),
        ("g.txt", "0 1\n\n1\n".into(), 3, "expected a target id after the source id, found the end of the line"),
        ("g.txt", "0 1\nfoo bar\n".into(), 2, "expected a source id (a non-negative integer), found 'foo'"),
        ("g.txt", "0 1\n0 -1\n".into(), 2, "expected a target id (a non-negative integer), found '-1'"),
        ("g.txt", "0 1\n0 1e3\n".into(), 2, "found '1e3'"),
        ("g.txt", "0 1 1.5\n0 1 1.5x 7\n".into(), 2, "expected a real value, found '1.5x'"),
        ("g.txt", "0 1\n99999999999999999999 1\n".into(), 2, "source id '99999999999999999999' does not fit in 64 bits"),
    ];
    for (name, text, want_line, fragment) in cases {
        let (line, msg) = parse_error(read_text::<f64>(name, &text, &ReadOptions::default()));
        assert_eq!(line, want_line, "{text:?}: {msg}");
        assert!(msg.contains(fragment), "{text:?}: message {msg:?} lacks {fragment:?}");
        assert!(msg.len() < 400, "{msg}");
    }
}

#[test]
fn invalid_utf8_and_huge_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path =
        write_file(dir.path(), "m.mtx", b"%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1\n2 2 \xff\xfe\n");
    let (line, msg) = parse_error(read_all_blocks::<f64>(&path, &ReadOptions::default()));
    assert_eq!(line, 4);
    assert!(msg.contains("expected a real value, found '\u{fffd}\u{fffd}'"), "{msg}");
    let path = write_file(dir.path(), "g.txt", b"\xff 1\n");
    let (line, msg) = parse_error(read_all_blocks::<f64>(&path, &ReadOptions::default()));
    assert_eq!(line, 1);
    assert!(msg.contains("found '\u{fffd}'"), "{msg}");
    // A 100-digit value is a fine f64.
    let r = mtx::<f64>(&format!("%%MatrixMarket matrix coordinate real general\n1 1 1\n1 1 {}\n", "7".repeat(100)));
    assert!((r.triplets[0].value / 7.777e99 - 1.0).abs() < 1e-3);
}

#[test]
fn errors_display_path_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "m.mtx", b"%%MatrixMarket matrix coordinate real general\n1 1 1\n1 1 x\n");
    let err = read_path::<f64>(&path, &ReadOptions::default()).err().unwrap();
    assert_eq!(err.to_string(), format!("{}:3: expected a real value, found 'x'", path.display()));
}

#[test]
fn invalid_options() {
    let path = fixture("edges.txt");
    let bad = [
        ReadOptions { block_bytes: 0, ..ReadOptions::default() },
        ReadOptions { index_base: Some(2), ..ReadOptions::default() },
        ReadOptions { delimiter: Some(b'"'), ..ReadOptions::default() },
        ReadOptions { delimiter: Some(b'\n'), ..ReadOptions::default() },
        ReadOptions { columns: Some(vec![ColumnSpec::Index(0)]), ..ReadOptions::default() },
        ReadOptions {
            columns: Some(vec![ColumnSpec::Name("a".into()), ColumnSpec::Index(1)]),
            has_header: Some(false),
            ..ReadOptions::default()
        },
    ];
    for options in bad {
        assert!(matches!(TripletReader::open(&path, options.clone()), Err(Error::InvalidInput(_))), "{options:?}");
    }
    assert!(matches!(
        TripletReader::open(Path::new("/nonexistent/m.mtx"), ReadOptions::default()),
        Err(Error::Io { .. })
    ));
    assert_eq!("3".parse::<ColumnSpec>().unwrap(), ColumnSpec::Index(3));
    assert_eq!(" w ".parse::<ColumnSpec>().unwrap(), ColumnSpec::Name("w".into()));
}

#[test]
fn sink_errors_stop_the_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("%%MatrixMarket matrix coordinate real general\n1000 1000 1000\n");
    for i in 1..=1000 {
        text.push_str(&format!("{i} {i} {i}\n"));
    }
    let path = write_file(dir.path(), "m.mtx", text.as_bytes());
    let reader = TripletReader::open(&path, ReadOptions { block_bytes: 100, ..ReadOptions::default() }).unwrap();
    let mut calls = 0;
    let err = reader
        .read_all::<f64>(
            &mut |_| {
                calls += 1;
                if calls == 3 {
                    Err(Error::invalid("disk full"))
                } else {
                    Ok(())
                }
            },
            &mut |_| {},
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "disk full");
    assert_eq!(calls, 3);
}

#[test]
fn long_lines_are_an_error_not_unbounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = b"0 1\n1 2\n".to_vec();
    text.resize(text.len() + (80 << 20), b'7');
    text.extend_from_slice(b"\n0 1\n");
    let path = write_file(dir.path(), "g.txt", &text);
    let (line, msg) = parse_error(read_path::<f64>(&path, &ReadOptions::default()));
    assert_eq!(line, 3);
    assert!(msg.contains("longer than 64 MiB"), "{msg}");
}

// ------------------------------------------------------------------------------------------------ fixtures

#[test]
fn bad_fixtures_name_their_line() {
    let cases: &[(&str, u64, &str)] = &[
        ("bad_value.mtx", 5, "expected a real value, found 'abc'"),
        ("bad_too_many.mtx", 6, "after the 2 entries declared on line 2"),
        ("bad_too_few.mtx", 5, "the file ended at line 5 after 2 entries, but the size line (line 2) declares 5"),
        ("bad_index.mtx", 4, "row index 4 is out of range: the matrix has 3 rows"),
        ("bad_complex.mtx", 1, "complex values are not supported yet"),
        ("bad_vector.mtx", 1, "vectors are not supported"),
        ("bad_size_line.mtx", 3, "expected the number of entries after the number of columns"),
        ("bad_nonsquare.mtx", 2, "must be square"),
        ("bad_array_two_values.mtx", 4, "expected one value per line"),
        ("bad_mixed_weights.txt", 4, "expected a weight in the third column, as on the first data line (line 1)"),
        ("bad_negative_id.txt", 2, "expected a target id (a non-negative integer), found '-2'"),
        ("bad_unterminated_quote.csv", 3, "unterminated quoted field"),
    ];
    for &(name, want_line, fragment) in cases {
        let (line, msg) = parse_error(read_all_blocks::<f64>(&fixture(name), &ReadOptions::default()));
        assert_eq!(line, want_line, "{name}: {msg}");
        assert!(msg.contains(fragment), "{name}: {msg}");
    }
    // Every fixture is covered by a test.
    let mut names: Vec<String> = std::fs::read_dir(fixture(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("bad_"))
        .collect();
    names.sort();
    let mut listed: Vec<String> = cases.iter().map(|c| c.0.to_string()).collect();
    listed.sort();
    assert_eq!(names, listed);
}

// ----------------------------------------------------------------------------------- block boundaries

/// How a random file is written.
#[derive(Debug, Clone)]
struct Style {
    crlf: bool,
    final_newline: bool,
    /// Per line: 0 plain, 1 blank line before, 2 comment before, 3 indented, 4 trailing blanks.
    decorations: Vec<u8>,
    /// Value spelling: 0 `5`, 1 `5.0`, 2 `5e0`, 3 `+5`.
    spelling: Vec<u8>,
}

fn style(n: usize) -> impl Strategy<Value = Style> {
    (any::<bool>(), any::<bool>(), prop::collection::vec(0u8..5, n), prop::collection::vec(0u8..4, n))
        .prop_map(|(crlf, final_newline, decorations, spelling)| Style { crlf, final_newline, decorations, spelling })
}

fn spell(v: i64, how: u8) -> String {
    match how {
        0 => format!("{v}"),
        1 => format!("{v}.0"),
        2 => format!("{v}e0"),
        _ if v >= 0 => format!("+{v}"),
        _ => format!("{v}"),
    }
}

/// Lays out `lines` (data lines) after `head` with the style's decorations; returns the text and the
/// 1-based line number of every data line.
fn render(head: &[String], lines: &[String], style: &Style, comment: &str) -> (String, Vec<u64>) {
    let eol = if style.crlf { "\r\n" } else { "\n" };
    let mut out = String::new();
    let mut number = 0u64;
    let mut at = Vec::new();
    for h in head {
        out.push_str(h);
        out.push_str(eol);
        number += 1;
    }
    for (i, line) in lines.iter().enumerate() {
        let deco = style.decorations.get(i).copied().unwrap_or(0);
        match deco {
            1 => {
                out.push_str(" \t");
                out.push_str(eol);
                number += 1;
            }
            2 => {
                out.push_str(comment);
                out.push_str(" a comment 1 2 3");
                out.push_str(eol);
                number += 1;
            }
            _ => {}
        }
        if deco == 3 {
            out.push_str("  \t ");
        }
        out.push_str(line);
        if deco == 4 {
            out.push_str(" \t ");
        }
        number += 1;
        at.push(number);
        if i + 1 < lines.len() || style.final_newline {
            out.push_str(eol);
        }
    }
    (out, at)
}

type Entries = Vec<(u64, u64, i64)>;

fn entries(max_dim: u64, max_len: usize) -> impl Strategy<Value = ((u64, u64), Entries)> {
    (1..=max_dim, 1..=max_dim).prop_flat_map(move |(rows, cols)| {
        let entry = (0..rows, 0..cols, -50i64..50);
        (Just((rows, cols)), prop::collection::vec(entry, 0..max_len))
    })
}

fn triples_f64(read: &Read<f64>) -> Vec<(u64, u64, f64)> {
    tuples(read)
}

fn as_f64(e: &[(u64, u64, i64)]) -> Vec<(u64, u64, f64)> {
    e.iter().map(|&(r, c, v)| (r, c, v as f64)).collect()
}

fn read_bytes_with<V: Element>(
    name: &str,
    text: &str,
    options: &ReadOptions,
    blocks: &[usize],
) -> Vec<Result<Read<V>>> {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), name, text.as_bytes());
    blocks.iter().map(|&block_bytes| read_path::<V>(&path, &ReadOptions { block_bytes, ..options.clone() })).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random Matrix Market files (general or symmetric, with blank lines, comments, indentation, CRLF)
    /// read to the oracle's triplets with any block size.
    #[test]
    fn mtx_files_read_the_same_with_any_block_size(
        ((rows, cols), e) in entries(40, 60),
        st in style(60),
        symmetric in any::<bool>(),
        small in 1usize..80,
    ) {
        let (rows, cols) = if symmetric { (rows.max(cols), rows.max(cols)) } else { (rows, cols) };
        let e: Entries = if symmetric { e.into_iter().map(|(r, c, v)| (r.max(c), r.min(c), v)).collect() } else { e };
        let head = vec![
            format!("%%MatrixMarket matrix coordinate integer {}", if symmetric { "symmetric" } else { "general" }),
            "% generated".to_string(),
            format!("{rows} {cols} {}", e.len()),
        ];
        let lines: Vec<String> = e.iter().enumerate().map(|(i, &(r, c, v))| format!("{} {} {}", r + 1, c + 1, spell(v, st.spelling[i]))).collect();
        let (text, _) = render(&head, &lines, &st, "%");
        let mut want = Vec::new();
        for &(r, c, v) in &e {
            want.push((r, c, v as f64));
            if symmetric && r != c {
                want.push((c, r, v as f64));
            }
        }
        for (k, got) in read_bytes_with::<f64>("m.mtx", &text, &ReadOptions::default(), &[1, small, 8 << 20]).into_iter().enumerate() {
            let got = got.unwrap();
            prop_assert_eq!(triples_f64(&got), want.clone());
            prop_assert_eq!(got.summary.entries_in_file, e.len() as u64);
            if k == 0 {
                // One-byte blocks hold one line each: every entry is its own chunk.
                prop_assert_eq!(got.chunks, e.len());
            }
        }
    }

    /// Random edge lists and CSV files: the same with any block size.
    #[test]
    fn edge_and_csv_files_read_the_same_with_any_block_size(
        (_, e) in entries(1000, 60),
        st in style(60),
        weighted in any::<bool>(),
        csv in any::<bool>(),
        base in 0u64..2,
        small in 1usize..80,
    ) {
        let sep = if csv { "," } else { "\t" };
        let lines: Vec<String> = e.iter().enumerate().map(|(i, &(r, c, v))| {
            let mut l = format!("{}{sep}{}", r + base, c + base);
            if weighted {
                l.push_str(sep);
                l.push_str(&spell(v, st.spelling[i]));
            }
            l
        }).collect();
        // CSV has no comment lines: turn comment decorations into blank lines.
        let st = if csv { Style { decorations: st.decorations.iter().map(|&d| if d == 2 { 1 } else { d }).collect(), ..st } } else { st };
        let head = if csv { vec![format!("from,to{}", if weighted { ",w" } else { "" })] } else { vec!["# edges".to_string()] };
        let (text, _) = render(&head, &lines, &st, "#");
        let want: Vec<_> = if weighted { as_f64(&e) } else { e.iter().map(|&(r, c, _)| (r, c, 1.0)).collect() };
        let options = ReadOptions { index_base: Some(base), ..ReadOptions::default() };
        let name = if csv { "g.csv" } else { "g.txt" };
        for got in read_bytes_with::<f64>(name, &text, &options, &[1, small, 8 << 20]) {
            let got = got.unwrap();
            prop_assert_eq!(triples_f64(&got), want.clone());
        }
    }

    /// One bad line anywhere in a random file: the error names its line, whatever the block size. The
    /// bad line may also be an entry beyond the declared count.
    #[test]
    fn error_lines_do_not_depend_on_the_block_size(
        ((rows, cols), e) in entries(30, 40),
        st in style(41),
        bad_at in any::<prop::sample::Index>(),
        kind in 0u8..6,
        small in 1usize..80,
    ) {
        let mut lines: Vec<String> = e.iter().map(|&(r, c, v)| format!("{} {} {v}", r + 1, c + 1)).collect();
        let at = bad_at.index(lines.len() + 1);
        let declared = if kind == 5 { at } else { lines.len() };
        let bad = match kind {
            0 => "1 1 x".to_string(),
            1 => format!("{} 1 1", rows + 1),
            2 => format!("1 {} 1", cols + 1),
            3 => "1 1".to_string(),
            4 => "1 1 1 1".to_string(),
            _ => "1 1 1".to_string(),
        };
        lines.insert(at, bad);
        let head = vec!["%%MatrixMarket matrix coordinate real general".to_string(), format!("{rows} {cols} {}", if kind == 5 { declared } else { lines.len() })];
        let (text, numbers) = render(&head, &lines, &st, "%");
        let want = numbers[at];
        let mut messages = Vec::new();
        for got in read_bytes_with::<f64>("m.mtx", &text, &ReadOptions::default(), &[1, 2, small, 8 << 20]) {
            let (line, msg) = parse_error(got);
            prop_assert_eq!(line, want, "{}", msg);
            messages.push(msg);
        }
        messages.dedup();
        prop_assert_eq!(messages.len(), 1);
    }

    /// Any bytes after a valid header, and any bytes as a whole file: an error or a reading, never a
    /// panic.
    #[test]
    fn arbitrary_bytes_never_panic(
        body in prop::collection::vec(prop::sample::select(b"0123456789 \t\r\n%#,.-+eEx\"\0\xff".to_vec()), 0..200),
        head in 0usize..5,
        block in 1usize..40,
    ) {
        let heads: [&[u8]; 5] = [
            b"%%MatrixMarket matrix coordinate real symmetric\n5 5 3\n",
            b"%%MatrixMarket matrix array integer skew-symmetric\n4 4\n",
            b"%%MatrixMarket matrix coordinate pattern general\n",
            b"",
            b"a,b,c\n",
        ];
        let names = ["m.mtx", "m.mtx", "m.mtx", "g.txt", "g.csv"];
        let mut text = heads[head].to_vec();
        text.extend(&body);
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(dir.path(), names[head], &text);
        for block_bytes in [block, 8 << 20] {
            let options = ReadOptions { block_bytes, ..ReadOptions::default() };
            let _ = read_path::<f64>(&path, &options);
            let _ = read_path::<i64>(&path, &options);
            let _ = read_path::<()>(&path, &options);
        }
    }
}

// ------------------------------------------------------------------------------------------ real files

/// Splits a catalog line into its columns by header name.
fn catalog(root: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(root.join("CATALOG.tsv")).unwrap();
    let mut lines = text.lines();
    let names: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines.map(|l| names.iter().zip(l.split('\t')).map(|(n, v)| (n.to_string(), v.to_string())).collect()).collect()
}

fn column<'a>(row: &'a std::collections::HashMap<String, String>, name: &str) -> &'a str {
    row.get(name).map_or("", String::as_str)
}

/// Why a catalog file that is not marked "PARSE NOTE" must still be rejected, or `None` when it must
/// parse.
fn expected_rejection(path: &str, row: &std::collections::HashMap<String, String>) -> Option<&'static str> {
    let notes = column(row, "notes");
    let name = path.rsplit('/').next().unwrap();
    if name.starts_with("vector_") {
        return Some("vectors are not supported");
    }
    if column(row, "field") == "complex" {
        return Some("complex values are not supported yet");
    }
    if notes.contains("out-of-range indices") {
        return Some("index");
    }
    if notes.contains("declared nnz") {
        return Some("");
    }
    if path.contains("/invalid/") {
        return Some("");
    }
    match name {
        "mangled1.mtx" => Some("expected the object 'matrix'"),
        "mangled4.mtx" => Some("expected the symmetry"),
        "mangled7.mtx" => Some("expected a value after the column index"),
        "mangled9.mtx" => Some("must be square"),
        "mangled16.mtx" => Some("expected one value per line"),
        "mangled_format.mtx" => Some("'array pattern' is not a valid"),
        "fullcrud2.mtx" => Some("expected a real value, found 'garbled'"),
        "overflow_dim_gt_int64.mtx" => Some("does not fit in 64 bits"),
        _ => None,
    }
}

#[test]
fn real_matrix_market_files() {
    let Ok(root) = std::env::var("SPARSEDISK_REAL_DATASETS") else {
        eprintln!("SPARSEDISK_REAL_DATASETS is not set: skipped");
        return;
    };
    let root = PathBuf::from(root);
    let (mut parsed, mut rejected) = (0, 0);
    for row in catalog(&root) {
        let path = column(&row, "path");
        if column(&row, "format") != "mtx"
            || (column(&row, "notes").contains("PARSE NOTE") && !path.contains("/invalid/"))
        {
            continue;
        }
        let file = root.join(path);
        let result = read_path::<f64>(&file, &ReadOptions { block_bytes: 4096, ..ReadOptions::default() });
        match (expected_rejection(path, &row), result) {
            (None, Ok(r)) => {
                let want: u64 = column(&row, "entries_in_file").parse().unwrap();
                assert_eq!(r.summary.entries_in_file, want, "{path}");
                parsed += 1;
            }
            (None, Err(e)) => panic!("{path} must parse: {e}"),
            (Some(fragment), Err(Error::Parse { line, msg, .. })) => {
                assert!(line >= 1 && msg.contains(fragment), "{path}:{line}: {msg}");
                rejected += 1;
            }
            (Some(_), Err(e)) => panic!("{path}: expected a parse error, got {e}"),
            (Some(why), Ok(_)) => panic!("{path} must be rejected ({why})"),
        }
    }
    eprintln!(
        "real Matrix Market files: {parsed} parsed with the catalog's entry counts, {rejected} rejected as expected"
    );
    assert!(parsed > 150, "{parsed}");
}

/// The catalog's edge lists (SNAP, networkit, cuGraph's space-separated `.csv`) and gzipped LightGraphs
/// files (a CSV header line, then 1-based `u,v`): entry counts and largest ids as catalogued.
#[test]
fn real_edge_lists() {
    let Ok(root) = std::env::var("SPARSEDISK_REAL_DATASETS") else {
        eprintln!("SPARSEDISK_REAL_DATASETS is not set: skipped");
        return;
    };
    let root = PathBuf::from(root);
    let mut count = 0;
    for row in catalog(&root) {
        let format = column(&row, "format");
        let base = if column(&row, "banner").contains("1-based") { 1 } else { 0 };
        let options = match format {
            "edgelist" | "snap-edgelist" | "edgelist-csv(space)" => {
                ReadOptions { format: InputFormat::EdgeList, index_base: Some(base), ..ReadOptions::default() }
            }
            "lg-edgelist-gz" => ReadOptions {
                format: InputFormat::Csv,
                has_header: Some(true),
                columns: Some(vec![ColumnSpec::Index(0), ColumnSpec::Index(1)]),
                index_base: Some(base),
                ..ReadOptions::default()
            },
            _ => continue,
        };
        let path = column(&row, "path");
        let r = read_path::<f64>(&root.join(path), &ReadOptions { block_bytes: 1 << 16, ..options })
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(r.summary.entries_in_file, column(&row, "entries_in_file").parse::<u64>().unwrap(), "{path}");
        let dims: u64 = column(&row, "rows").parse::<u64>().unwrap().max(column(&row, "cols").parse().unwrap());
        assert_eq!(r.summary.max_row.max(r.summary.max_col).map(|m| m + 1), Some(dims), "{path}");
        count += 1;
    }
    eprintln!("real edge lists: {count} read with the catalog's entry counts");
    assert!(count > 20, "{count}");
}

/// fast_matrix_market's own invalid, permissive and overflow test files: each one a correct reading or
/// a precise error at the right line.
#[test]
fn fast_matrix_market_edge_cases() {
    let Ok(root) = std::env::var("SPARSEDISK_REAL_DATASETS") else {
        eprintln!("SPARSEDISK_REAL_DATASETS is not set: skipped");
        return;
    };
    let dir = PathBuf::from(root).join("fast_matrix_market/tests/matrices");
    // file -> Ok(entries) or Err((line, fragment))
    type Expect = std::result::Result<u64, (u64, &'static str)>;
    let expected: &[(&str, Expect)] = &[
        ("invalid/invalid_bad_banner.mtx", Err((1, "expected the Matrix Market banner"))),
        ("invalid/invalid_bad_banner_2.mtx", Err((1, "found '%%Matrix Market matrix"))),
        ("invalid/invalid_bad_field.mtx", Err((1, "found '____'"))),
        ("invalid/invalid_bad_object.mtx", Err((1, "expected the object 'matrix' in the banner, found '___'"))),
        ("invalid/invalid_bad_symmetry.mtx", Err((1, "expected the symmetry"))),
        ("invalid/invalid_bad_value.mtx", Err((3, "expected a real value, found 'not_a_double'"))),
        ("invalid/invalid_bad_value_2.mtx", Err((1, "vectors are not supported"))),
        ("invalid/invalid_bad_value_3.mtx", Err((1, "vectors are not supported"))),
        ("invalid/invalid_dimensions_out_of_range_3.mtx", Err((3, "found '-3'"))),
        ("invalid/invalid_indices_out_of_range_2.mtx", Err((6, "column index 2000 is out of range"))),
        ("invalid/invalid_indices_out_of_range_6.mtx", Err((6, "found '-2'"))),
        ("invalid/invalid_symmetry_vector.mtx", Err((1, "vectors are not supported"))),
        ("invalid/invalid_truncated_header_1.mtx", Err((2, "before the size line"))),
        ("invalid/invalid_truncated_header_2.mtx", Err((1, "the banner ends after 'real'"))),
        ("invalid/invalid_truncated_lines.mtx", Err((4, "the file ended at line 4 after 2 entries"))),
        ("invalid/invalid_vector_array_too_long.mtx", Err((1, "vectors are not supported"))),
        ("invalid/invalid_vector_coord_too_long.mtx", Err((1, "vectors are not supported"))),
        ("permissive/permissive_banner_one_percent_eye3.mtx", Err((1, "expected the Matrix Market banner"))),
        ("permissive/permissive_lines_indented.mtx", Ok(1)),
        ("permissive/windows_lineendings_nist_ex1_more_freeformat.mtx", Ok(8)),
        ("overflow/overflow_dim_gt_int64.mtx", Err((2, "the number of rows '19223372036854775808' does not fit"))),
        ("overflow/overflow_index_gt_int64.mtx", Err((6, "row index '19223372036854775808' does not fit"))),
        ("overflow/overflow_value_gt_complex128.mtx", Err((1, "complex values are not supported yet"))),
        ("overflow/overflow_value_gt_float64.mtx", Ok(1)),
        ("overflow/overflow_value_gt_int32.mtx", Ok(1)),
        ("overflow/overflow_value_gt_int64.mtx", Ok(3)),
    ];
    let mut listed: Vec<&str> = expected.iter().map(|e| e.0).collect();
    listed.sort();
    let mut present = Vec::new();
    for sub in ["invalid", "permissive", "overflow"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            present.push(format!("{sub}/{}", entry.unwrap().file_name().to_string_lossy()));
        }
    }
    present.sort();
    assert_eq!(present, listed, "every edge-case file has an expectation");
    for (name, want) in expected {
        let got = read_all_blocks::<f64>(&dir.join(name), &ReadOptions::default());
        match (want, got) {
            (Ok(n), Ok(r)) => assert_eq!(r.summary.entries_in_file, *n, "{name}"),
            (Err((line, fragment)), got) => {
                let (l, msg) = parse_error(got);
                assert_eq!((l, msg.contains(fragment)), (*line, true), "{name}: {msg}");
            }
            (Ok(_), Err(e)) => panic!("{name}: {e}"),
        }
    }
    // Values beyond f64 read as infinity; as i64, an integer beyond 64 bits is an error at its line.
    let r = read_path::<f64>(&dir.join("overflow/overflow_value_gt_float64.mtx"), &ReadOptions::default()).unwrap();
    assert_eq!(r.triplets[0].value, f64::INFINITY);
    let (line, msg) =
        parse_error(read_path::<i64>(&dir.join("overflow/overflow_value_gt_int64.mtx"), &ReadOptions::default()));
    assert_eq!(line, 6);
    assert!(msg.contains("fits in 64 bits"), "{msg}");
    let r = read_path::<i64>(&dir.join("overflow/overflow_value_gt_int32.mtx"), &ReadOptions::default()).unwrap();
    assert_eq!(r.triplets[0].value, 8589934592);
}

/// Reads a big file and reports MB/s (not a timing test: run by hand with
/// `SPARSEDISK_BIG_MTX=/tmp/imp/rmat22.mtx cargo test --release --test parsers -- --ignored --nocapture`).
#[test]
#[ignore]
fn throughput_of_a_big_file() {
    let Ok(path) = std::env::var("SPARSEDISK_BIG_MTX") else {
        eprintln!("SPARSEDISK_BIG_MTX is not set: skipped");
        return;
    };
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let start = std::time::Instant::now();
            let reader = TripletReader::open(Path::new(&path), ReadOptions::default()).unwrap();
            let mut n = 0u64;
            let s = reader
                .read_all::<f64>(
                    &mut |c| {
                        n += c.len() as u64;
                        Ok(())
                    },
                    &mut |_| {},
                )
                .unwrap();
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{{\"threads\": {threads}, \"seconds\": {secs:.3}, \"mb_per_s\": {:.1}, \"triplets\": {n}}}",
                s.bytes as f64 / secs / 1e6
            );
        });
    }
}
