//! Triplet input: Matrix Market, edge lists and CSV, read in one streaming pass, in parallel, with
//! precise errors. This is the front half of `sparsedisk import`; the triplet builder is the back half.
//!
//! ```no_run
//! use sparsedisk::io::read::{ReadOptions, TripletReader};
//! let reader = TripletReader::open("web.mtx.gz".as_ref(), ReadOptions::default())?;
//! println!("{:?}", reader.header().shape);
//! let mut nnz = 0u64;
//! let summary = reader.read_all::<f64>(&mut |chunk| { nnz += chunk.len() as u64; Ok(()) }, &mut |_| {})?;
//! assert_eq!(summary.triplets, nnz);
//! # Ok::<(), sparsedisk::Error>(())
//! ```
//!
//! # Formats
//!
//! * **Matrix Market** (NIST): banner `%%MatrixMarket matrix coordinate|array real|double|integer|pattern
//!   general|symmetric|skew-symmetric|hermitian` (case-insensitive; `coord` is accepted for
//!   `coordinate`), `%` comment lines and blank lines anywhere after it, then the size line (`rows cols
//!   entries` for coordinate, `rows cols` for array), then the data. Indices are 1-based and must lie in
//!   `1..=rows` / `1..=cols` (the `index_base` option does not apply). Sizes are `u64`. Symmetric,
//!   skew-symmetric and hermitian files are expanded: an off-diagonal `(i, j, v)` also yields `(j, i, v)`
//!   (skew: `-v`; hermitian with real values is symmetric), the diagonal is not doubled. Entries may lie
//!   in either triangle. Array files are read in column-major order; a symmetric (hermitian) array holds
//!   the lower triangle column by column including the diagonal, a skew-symmetric one the strict lower
//!   triangle. Every array value becomes a triplet, zeros included. Not supported, each with an error
//!   that says so at the banner: `complex` values, `vector` objects, `array pattern` and `pattern
//!   skew-symmetric` (both meaningless per the specification).
//! * **Edge lists** (SNAP, networkit, cuGraph `.csv`): `src dst [weight]` separated by any run of spaces
//!   or tabs, `#` and `%` comment lines, blank lines. Ids are 0-based unless `index_base` is 1. The
//!   first data line decides whether the file is weighted; every later line must agree (a line with a
//!   missing or an unexpected weight is an error naming it). Columns past the third are ignored (SNAP
//!   temporal graphs carry a timestamp there).
//! * **CSV**: one record per line, `delimiter` (default `,`) between fields, fields optionally quoted with `"` (`""`
//!   inside quotes is a quote), surrounding spaces trimmed. The selected `columns` (default 0, 1 and, when the first
//!   data line has a third field, 2) are the row, the column and the value; other fields are ignored. The header line
//!   is detected (the first non-blank line has the row and column fields and one of them is not an integer) unless
//!   `has_header` says. Quoted fields cannot span lines (the file is cut at newlines to be parsed in parallel): an
//!   unterminated quote is an error.
//!
//! Common to all: `\n` or `\r\n` line endings, a UTF-8 byte order mark at the start is skipped, leading
//! and trailing spaces and tabs on a line are ignored, a file whose name ends in `.gz` (or whose first
//! bytes are the gzip magic) is decompressed, `-` is standard input. Values: `f64` and `f32` accept
//! every decimal float form including `inf` and `nan`; a decimal beyond the type's range reads as
//! infinity, as `strtod` and fast_matrix_market do. `i64` accepts integers only. `()` (pattern) checks
//! that a value token is present where the format says and ignores it; reading a pattern file into a
//! valued type gives every entry the value 1.
//!
//! # Strictness (where this reader differs from fast_matrix_market and scipy)
//!
//! A `real` or `integer` Matrix Market line must hold exactly the tokens its field says: a trailing token (the
//! imaginary part of a complex file mislabelled `real`) is an error, not silently dropped. In a `pattern` file, tokens
//! after the column index are ignored (some SuiteSparse test matrices carry values there; they cannot change the
//! structure). Entries beyond the declared count and a file that ends early are errors. An index of 0, an index beyond
//! the declared size and an integer that does not fit 64 bits are errors. Every error is an [`Error::Parse`] with the
//! 1-based line number in the (decompressed) file and a message stating what was expected and quoting, truncated to 40
//! characters, what was found. No input makes the reader panic or allocate by a number read from the file.
//!
//! # Design
//!
//! After fast_matrix_market: a reader thread reads the text in blocks of [`ReadOptions::block_bytes`], cut after the
//! last newline (the remainder starts the next block), and sends them over a channel bounded at one batch. The caller's
//! thread takes batches of up to [`ReadOptions::threads`] blocks (default: the rayon pool's thread count) and parses
//! each block on the rayon pool into its own `Vec` of triplets, with line numbers local to the block. Unlike fast_matrix_market, no
//! separate newline-counting pass is made before parsing: line numbers are only needed for errors, so each block's
//! parser reports how many newlines it crossed, and a running sum in file order turns a block-local line into a file
//! line. The Matrix Market entry count is checked the same way, cumulatively in file order; the line of the first extra
//! entry is found by re-scanning the one block where the count is exceeded. Array files (rare and small) get their
//! coordinates in that ordered step. Memory is bounded by about `3 * threads + 1` blocks of text (queued, being parsed,
//! being handed on, being read) plus the parsed triplets of two batches, whatever the file size. Integers are parsed by hand with overflow checks, floats by `fast-float2`; the
//! per-line path allocates nothing and validates no UTF-8. On an error (or an error from the sink) the remaining blocks
//! are dropped and the reader thread stops at its next send; reading standard input, the call returns once that
//! thread's pending read returns.
//!
//! [`Error::Parse`]: crate::Error::Parse

/// Records a parse error on `$out` (a `Parsed`) at block-local line `$line` and returns it: the
/// parsers stop at the first error of a block.
macro_rules! bail {
    ($out:ident, $line:expr, $msg:expr) => {{
        $out.fail($line, $msg);
        return $out;
    }};
}

mod csv;
mod edge;
mod lex;
mod mtx;
mod parsed;
mod pipeline;
mod source;
mod value;

use crate::element::Element;

use crate::element::Triplet;
use crate::error::{Error, Result};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The default [`ReadOptions::block_bytes`]: 8 MiB.
pub const DEFAULT_BLOCK_BYTES: usize = 8 << 20;

/// A line longer than this (64 MiB; checked when a block of text holds no line break at all, so a line
/// up to one block longer may pass) is an error: the input is not a line-oriented text file, and reading
/// on would make memory grow without bound.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// The text format of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputFormat {
    /// Decide from the content and the name: a first line starting with `%%MatrixMarket`
    /// (case-insensitive) is Matrix Market; otherwise, after stripping `.gz`, the extensions `.mtx` and
    /// `.mm` mean Matrix Market, `.csv` means CSV, anything else (and standard input) an edge list.
    #[default]
    Auto,
    /// NIST Matrix Market, coordinate or array.
    MatrixMarket,
    /// Whitespace-separated `src dst [weight]` lines.
    EdgeList,
    /// Delimiter-separated records with selectable columns.
    Csv,
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputFormat::Auto => "auto",
            InputFormat::MatrixMarket => "mtx",
            InputFormat::EdgeList => "edgelist",
            InputFormat::Csv => "csv",
        })
    }
}

impl FromStr for InputFormat {
    type Err = Error;

    /// Accepts `auto`, `mtx` (or `mm`, `matrixmarket`, `matrix-market`), `edgelist` (or `edges`,
    /// `edge-list`, `tsv`, `txt`) and `csv`, case-insensitively.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(InputFormat::Auto),
            "mtx" | "mm" | "matrixmarket" | "matrix-market" => Ok(InputFormat::MatrixMarket),
            "edgelist" | "edge-list" | "edges" | "tsv" | "txt" => Ok(InputFormat::EdgeList),
            "csv" => Ok(InputFormat::Csv),
            _ => Err(Error::invalid(format!("unknown input format '{s}': expected auto, mtx, edgelist or csv"))),
        }
    }
}

/// What kind of values the file carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Floating-point values (Matrix Market `real` or `double`; an edge list or CSV with a value column).
    Real,
    /// Integer values (Matrix Market `integer`).
    Integer,
    /// No values: every entry is 1.
    Pattern,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Real => "real",
            Field::Integer => "integer",
            Field::Pattern => "pattern",
        })
    }
}

/// The symmetry a Matrix Market file declares (edge lists and CSV are `General`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symmetry {
    /// Every entry is stored.
    General,
    /// `a(i, j) = a(j, i)`; one triangle is stored.
    Symmetric,
    /// `a(i, j) = -a(j, i)`; the strict lower triangle is stored.
    SkewSymmetric,
    /// `a(i, j) = conj(a(j, i))`; with real values the same as symmetric.
    Hermitian,
}

impl fmt::Display for Symmetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Symmetry::General => "general",
            Symmetry::Symmetric => "symmetric",
            Symmetry::SkewSymmetric => "skew-symmetric",
            Symmetry::Hermitian => "hermitian",
        })
    }
}

/// A CSV column, by 0-based position or by its name in the header line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnSpec {
    /// 0-based position of the field in a record.
    Index(usize),
    /// Name of the column in the header line (exact match after unquoting and trimming).
    Name(String),
}

impl FromStr for ColumnSpec {
    type Err = Error;

    /// A decimal number is a position, anything else a name (surrounding spaces trimmed).
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::invalid("empty column name"));
        }
        Ok(match s.parse::<usize>() {
            Ok(i) => ColumnSpec::Index(i),
            Err(_) => ColumnSpec::Name(s.to_string()),
        })
    }
}

impl fmt::Display for ColumnSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnSpec::Index(i) => write!(f, "{i}"),
            ColumnSpec::Name(n) => write!(f, "'{n}'"),
        }
    }
}

/// How to read an input file. `ReadOptions::default()` reads any supported file with automatic format
/// detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// The text format ([`InputFormat::Auto`]: from the banner and the name).
    pub format: InputFormat,
    /// Edge lists and CSV: the smallest id, 0 (the default) or 1; ids below it are errors. Ignored for
    /// Matrix Market, which is always 1-based.
    pub index_base: Option<u64>,
    /// Edge lists and CSV: also emit `(col, row, value)` for every off-diagonal entry (an undirected
    /// graph stored once per edge). Ignored for Matrix Market, whose banner says.
    pub symmetrize: bool,
    /// CSV: the field delimiter (default `,`). Edge lists always split on runs of spaces and tabs.
    pub delimiter: Option<u8>,
    /// CSV: the row, column and optionally value columns (two or three entries). `None`: 0, 1 and, if
    /// the first data line has a third field, 2.
    pub columns: Option<Vec<ColumnSpec>>,
    /// CSV: whether the first non-blank line is a header. `None`: detect (yes when it has the row and
    /// column fields and one of them is not an integer; always yes when columns are given by name).
    pub has_header: Option<bool>,
    /// Size of the blocks the input is cut into for parallel parsing (default
    /// [`DEFAULT_BLOCK_BYTES`]). Memory in flight is about `(7 * threads + 1) * block_bytes`: per
    /// thread, three blocks of text (queued, being parsed, being handed on) and the triplets of two
    /// (see [`parser_reserve`](crate::import::parser_reserve)). Tiny values are valid (tests use 7).
    pub block_bytes: usize,
    /// Blocks parsed at once (the batch width; the reader queues as many ahead). `None`: the rayon
    /// pool's thread count. Memory in flight grows with it (see `block_bytes`); an import sets it from
    /// its budget.
    pub threads: Option<usize>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            format: InputFormat::Auto,
            index_base: None,
            symmetrize: false,
            delimiter: None,
            columns: None,
            has_header: None,
            block_bytes: DEFAULT_BLOCK_BYTES,
            threads: None,
        }
    }
}

/// What [`TripletReader::open`] learned before the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputHeader {
    /// The resolved format (never [`InputFormat::Auto`]).
    pub format: InputFormat,
    /// Matrix Market: `(rows, cols)` from the size line. `None` for edge lists and CSV (the builder
    /// takes the shape from the largest index).
    pub shape: Option<(u64, u64)>,
    /// Matrix Market: the entries the file must hold (coordinate: the count on the size line; array:
    /// `rows * cols`, or the stored triangle for symmetric and skew-symmetric). Before expansion.
    pub declared_entries: Option<u64>,
    /// The values the file carries. Edge lists and CSV: [`Field::Real`] when the first data line has a
    /// value column, else [`Field::Pattern`].
    pub field: Field,
    /// The declared symmetry ([`Symmetry::General`] for edge lists and CSV).
    pub symmetry: Symmetry,
    /// Matrix Market: whether the data is a dense `array` rather than `coordinate` entries.
    pub array: bool,
    /// Line number of the Matrix Market size line (CSV: of the header line), or 0.
    pub header_line: u64,
    /// CSV: the names in the header line, if there is one.
    pub column_names: Option<Vec<String>>,
    /// Size of the input file as stored (compressed size for `.gz`), when known (not for standard
    /// input): the scale of the numbers [`TripletReader::read_all`] passes to `progress`.
    pub file_size: Option<u64>,
}

/// Totals of one [`TripletReader::read_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadSummary {
    /// Lines in the (decompressed) file, header included.
    pub lines: u64,
    /// Entries (data lines; array: values) in the file.
    pub entries_in_file: u64,
    /// Triplets handed to the sink: entries after symmetric expansion.
    pub triplets: u64,
    /// Bytes of (decompressed) text, header included.
    pub bytes: u64,
    /// Largest 0-based row index of any triplet, `None` when there are none.
    pub max_row: Option<u64>,
    /// Largest 0-based column index of any triplet, `None` when there are none.
    pub max_col: Option<u64>,
}

/// The parsed layout of the data lines, fixed by the header.
#[derive(Debug, Clone)]
pub(crate) enum Dialect {
    Mtx(mtx::MtxLayout),
    Edge(edge::EdgeLayout),
    Csv(csv::CsvLayout),
}

/// A streaming reader of one triplet file. [`open`](TripletReader::open) reads the header;
/// [`read_all`](TripletReader::read_all) reads the data once, in parallel.
pub struct TripletReader {
    path: PathBuf,
    header: InputHeader,
    dialect: Dialect,
    prefix: source::Prefix,
    block_bytes: usize,
    threads: Option<usize>,
}

impl fmt::Debug for TripletReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TripletReader").field("path", &self.path).field("header", &self.header).finish_non_exhaustive()
    }
}

impl TripletReader {
    /// Opens `path` (`-` is standard input; a name ending in `.gz`, or content starting with the gzip
    /// magic, is decompressed), resolves the format and reads the header: the Matrix Market banner,
    /// comments and size line; for edge lists and CSV the header line (CSV) and a look at the first
    /// data line, which is not consumed, to set [`InputHeader::field`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be opened or read; [`Error::Parse`] for a malformed or
    /// unsupported header (with its line) and for an input without a non-blank line (standard input is
    /// named `<stdin>` in errors); [`Error::InvalidInput`] for inconsistent options (`block_bytes` or
    /// `threads` of 0, an `index_base` other than 0 or 1, a delimiter that is a quote or a line
    /// break, a `columns` list that is not two or three long, column names without a header).
    pub fn open(path: &Path, options: ReadOptions) -> Result<TripletReader> {
        check_options(&options)?;
        let input = source::open_input(path)?;
        let mut prefix = source::Prefix::new(input, path)?;
        // Blank lines are skipped anywhere, even before a banner.
        while let Some(line) = prefix.peek_line()? {
            if !lex::trim(prefix.slice(line)).is_empty() {
                break;
            }
            prefix.consume(line);
        }
        if options.format != InputFormat::MatrixMarket && prefix.peek_line()?.is_none() {
            // Whatever the source (a file, standard input) and the format: no text is no matrix, not
            // a 0 x 0 one. (Matrix Market says so in its own words, naming the banner it expected.)
            return Err(
                prefix.error(1, "the file is empty: expected a Matrix Market banner, edge list lines or CSV records")
            );
        }
        let format = match options.format {
            InputFormat::Auto => {
                let banner = match prefix.peek_line()? {
                    Some(line) => lex::starts_with_ignore_case(lex::trim(prefix.slice(line)), b"%%MatrixMarket"),
                    None => false,
                };
                if banner {
                    InputFormat::MatrixMarket
                } else {
                    format_from_name(path)
                }
            }
            f => f,
        };
        let (header, dialect) = match format {
            InputFormat::MatrixMarket => mtx::read_header(&mut prefix)?,
            InputFormat::EdgeList => edge::read_header(&mut prefix, &options)?,
            InputFormat::Csv => csv::read_header(&mut prefix, &options)?,
            InputFormat::Auto => unreachable!("resolved above"),
        };
        let header = InputHeader { file_size: prefix.file_size(), ..header };
        Ok(TripletReader {
            path: path.to_path_buf(),
            header,
            dialect,
            prefix,
            block_bytes: options.block_bytes,
            threads: options.threads,
        })
    }

    /// What the header said.
    pub fn header(&self) -> &InputHeader {
        &self.header
    }

    /// The path the reader was opened with (`-` for standard input).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads every entry, in file order, handing them to `sink` in chunks (one `Vec` per block of
    /// text, in file order). Symmetric, skew-symmetric and hermitian Matrix Market entries are
    /// expanded (an off-diagonal `(i, j, v)` is followed by `(j, i, v)`, skew: `(j, i, -v)`), and so are
    /// edge lists and CSV under [`ReadOptions::symmetrize`]. Indices are 0-based. `progress` is called
    /// after each batch of blocks with the bytes of the input file consumed so far (compressed bytes
    /// for `.gz`; compare with [`InputHeader::file_size`]).
    ///
    /// Nothing is handed to `sink` from a block before every earlier line has been parsed, so on an
    /// error the sink has seen a prefix of the file's entries.
    ///
    /// # Errors
    ///
    /// [`Error::Parse`] for the first malformed line in file order (including an index out of range,
    /// an entry beyond the declared count, a file that ends before the declared count, a value that is
    /// not of type `V`); [`Error::Io`] when reading fails; any error `sink` returns, unchanged.
    pub fn read_all<V: Element>(
        self,
        sink: &mut (dyn FnMut(&[Triplet<V>]) -> Result<()> + Send),
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<ReadSummary> {
        pipeline::run(self, &|_| (), &mut |triplets, ()| sink(triplets), progress)
    }

    /// Like [`read_all`](Self::read_all), with work done on each block's triplets by the parse worker
    /// that parsed them, in parallel: `sink` gets, in file order, the triplets and what `prepare`
    /// made of them. (Array files are prepared in file order.)
    ///
    /// # Errors
    ///
    /// As [`read_all`](Self::read_all).
    pub(crate) fn read_all_prepared<V: Element, T: Send>(
        self,
        prepare: &pipeline::Prepare<'_, V, T>,
        sink: &mut pipeline::Sink<'_, V, T>,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<ReadSummary> {
        pipeline::run(self, prepare, sink, progress)
    }
}

fn check_options(options: &ReadOptions) -> Result<()> {
    if options.block_bytes == 0 {
        return Err(Error::invalid("block_bytes must be at least 1"));
    }
    if options.threads == Some(0) {
        return Err(Error::invalid("threads must be at least 1"));
    }
    if let Some(base) = options.index_base {
        if base > 1 {
            return Err(Error::invalid(format!("index base must be 0 or 1, not {base}")));
        }
    }
    if let Some(d) = options.delimiter {
        if matches!(d, b'"' | b'\n' | b'\r') {
            return Err(Error::invalid(format!(
                "the CSV delimiter cannot be {}",
                lex::quote(std::slice::from_ref(&d))
            )));
        }
    }
    if let Some(columns) = &options.columns {
        if !(2..=3).contains(&columns.len()) {
            return Err(Error::invalid(format!(
                "columns must name 2 (row, column) or 3 (row, column, value) columns, not {}",
                columns.len()
            )));
        }
        if options.has_header == Some(false) && columns.iter().any(|c| matches!(c, ColumnSpec::Name(_))) {
            return Err(Error::invalid("columns given by name need a header line, but has_header is false"));
        }
    }
    Ok(())
}

/// The format an `Auto` file without a banner gets from its name.
fn format_from_name(path: &Path) -> InputFormat {
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    match name.rsplit_once('.') {
        Some((_, "mtx" | "mm")) => InputFormat::MatrixMarket,
        Some((_, "csv")) => InputFormat::Csv,
        _ => InputFormat::EdgeList,
    }
}
