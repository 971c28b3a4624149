//! Matrix Market: the banner and size line, and the block parsers for coordinate and array data.

use super::lex::{self, After, IntError};
use super::parsed::{coordinates, Lines, Parsed};
use super::source::Prefix;
use super::value;
use super::{Dialect, Element, Field, InputFormat, InputHeader, Symmetry};
use crate::element::Triplet;
use crate::error::Result;

/// What the header fixed about the data lines.
#[derive(Debug, Clone)]
pub(crate) struct MtxLayout {
    pub rows: u64,
    pub cols: u64,
    /// Entries (array: values) the file must hold.
    pub declared: u64,
    /// Line number of the size line.
    pub header_line: u64,
    pub field: Field,
    pub symmetry: Symmetry,
    pub array: bool,
}

const BANNER_FORM: &str =
    "'%%MatrixMarket matrix coordinate|array real|integer|pattern general|symmetric|skew-symmetric|hermitian'";

/// Reads the banner, comments and the size line.
pub(crate) fn read_header(prefix: &mut Prefix) -> Result<(InputHeader, Dialect)> {
    let Some(line) = prefix.peek_line()? else {
        return Err(prefix.error(1, format!("the file is empty: expected the Matrix Market banner {BANNER_FORM}")));
    };
    let number = line.number;
    let (array, field, symmetry) =
        parse_banner(lex::trim(prefix.slice(line))).map_err(|msg| prefix.error(number, msg))?;
    prefix.consume(line);
    let size_line = loop {
        let Some(line) = prefix.peek_line()? else {
            let last = prefix.lines_consumed();
            let what = if array { "'rows columns'" } else { "'rows columns entries'" };
            return Err(prefix.error(last, format!("the file ended at line {last}, before the size line {what}")));
        };
        let text = lex::trim(prefix.slice(line));
        if text.is_empty() || text[0] == b'%' {
            prefix.consume(line);
            continue;
        }
        break line;
    };
    let number = size_line.number;
    let text = lex::trim(prefix.slice(size_line)).to_vec();
    prefix.consume(size_line);
    let names: &[&str] = if array { &["rows", "columns"] } else { &["rows", "columns", "entries"] };
    let sizes = parse_size_line(&text, names).map_err(|msg| prefix.error(number, msg))?;
    let (rows, cols) = (sizes[0], sizes[1]);
    if symmetry != Symmetry::General && rows != cols {
        return Err(prefix
            .error(number, format!("a {symmetry} matrix must be square, but the size line declares {rows} x {cols}")));
    }
    let declared = if array {
        let count = match symmetry {
            Symmetry::General => rows.checked_mul(cols),
            Symmetry::Symmetric | Symmetry::Hermitian => triangle(rows, true),
            Symmetry::SkewSymmetric => triangle(rows, false),
        };
        count.ok_or_else(|| {
            prefix.error(number, format!("a {rows} x {cols} {symmetry} array holds more than 2^64 values"))
        })?
    } else {
        sizes[2]
    };
    let header = InputHeader {
        format: InputFormat::MatrixMarket,
        shape: Some((rows, cols)),
        declared_entries: Some(declared),
        field,
        symmetry,
        array,
        header_line: number,
        column_names: None,
        file_size: None,
    };
    let layout = MtxLayout { rows, cols, declared, header_line: number, field, symmetry, array };
    Ok((header, Dialect::Mtx(layout)))
}

/// Values in the lower triangle of an `n x n` matrix, with or without the diagonal.
fn triangle(n: u64, diagonal: bool) -> Option<u64> {
    let (a, b) = if diagonal { (n, n.checked_add(1)?) } else { (n, n.saturating_sub(1)) };
    // One of a, b is even: halve it before multiplying so the product fits whenever the result does.
    if a % 2 == 0 {
        (a / 2).checked_mul(b)
    } else {
        a.checked_mul(b / 2)
    }
}

/// Parses the banner words; the error is the message.
fn parse_banner(text: &[u8]) -> std::result::Result<(bool, Field, Symmetry), String> {
    let words: Vec<&[u8]> = text.split(|&c| lex::is_blank(c)).filter(|w| !w.is_empty()).collect();
    match words.first() {
        Some(w) if w.eq_ignore_ascii_case(b"%%MatrixMarket") => {}
        _ => return Err(format!("expected the Matrix Market banner {BANNER_FORM}, found {}", lex::quote(text))),
    }
    let word = |i: usize, what: &str| -> std::result::Result<Vec<u8>, String> {
        match words.get(i) {
            Some(w) => Ok(w.to_ascii_lowercase()),
            None => Err(format!("the banner ends after {}: expected {what}", lex::quote(words[i - 1]))),
        }
    };
    let object = word(1, "the object 'matrix'")?;
    match object.as_slice() {
        b"matrix" => {}
        b"vector" => {
            return Err("Matrix Market vectors are not supported (the banner declares object 'vector'): \
                        only 'matrix' objects can be read"
                .to_string())
        }
        _ => return Err(format!("expected the object 'matrix' in the banner, found {}", lex::quote(words[1]))),
    }
    let format = word(2, "the format 'coordinate' or 'array'")?;
    let array = match format.as_slice() {
        b"coordinate" | b"coord" => false,
        b"array" => true,
        _ => {
            return Err(format!(
                "expected the format 'coordinate' or 'array' in the banner, found {}",
                lex::quote(words[2])
            ))
        }
    };
    let field = word(3, "the field 'real', 'integer' or 'pattern'")?;
    let field = match field.as_slice() {
        b"real" | b"double" => Field::Real,
        b"integer" => Field::Integer,
        b"pattern" => Field::Pattern,
        b"complex" => {
            return Err("complex values are not supported yet (the banner declares field 'complex'); \
                        only real, double, integer and pattern files can be read"
                .to_string())
        }
        _ => {
            return Err(format!(
                "expected the field 'real', 'double', 'integer' or 'pattern' in the banner, found {}",
                lex::quote(words[3])
            ))
        }
    };
    let symmetry = word(4, "the symmetry 'general', 'symmetric', 'skew-symmetric' or 'hermitian'")?;
    let symmetry = match symmetry.as_slice() {
        b"general" => Symmetry::General,
        b"symmetric" => Symmetry::Symmetric,
        b"skew-symmetric" => Symmetry::SkewSymmetric,
        b"hermitian" => Symmetry::Hermitian,
        _ => {
            return Err(format!(
                "expected the symmetry 'general', 'symmetric', 'skew-symmetric' or 'hermitian' in the banner, found {}",
                lex::quote(words[4])
            ))
        }
    };
    if let Some(extra) = words.get(5) {
        return Err(format!("expected the end of the banner after the symmetry, found {}", lex::quote(extra)));
    }
    if array && field == Field::Pattern {
        return Err("'array pattern' is not a valid Matrix Market combination (an array stores every value); \
                    use 'coordinate pattern'"
            .to_string());
    }
    if field == Field::Pattern && symmetry == Symmetry::SkewSymmetric {
        return Err("'pattern skew-symmetric' is not a valid Matrix Market combination (a skew-symmetric matrix \
                    needs values)"
            .to_string());
    }
    Ok((array, field, symmetry))
}

/// Parses the size line: one non-negative integer per name, nothing else.
fn parse_size_line(text: &[u8], names: &[&str]) -> std::result::Result<Vec<u64>, String> {
    let form = format!("'{}'", names.join(" "));
    let mut values = Vec::with_capacity(names.len());
    let mut p = 0;
    for (i, name) in names.iter().enumerate() {
        if p >= text.len() {
            return Err(format!(
                "expected the number of {name} after the number of {} on the size line {form}, found the end of the line",
                names[i - 1]
            ));
        }
        let (value, q) = match lex::parse_u64(text, p) {
            Ok((v, q)) if matches!(lex::after_token(text, q), After::Token(_) | After::End(..)) => (v, q),
            Err(IntError::Overflow) => {
                return Err(format!(
                    "the number of {name} {} does not fit in 64 bits",
                    lex::quote(lex::token_at(text, p))
                ))
            }
            _ => {
                return Err(format!(
                    "expected the size line {form}: the number of {name} (a non-negative integer), {}",
                    lex::found(text, p)
                ))
            }
        };
        values.push(value);
        p = lex::skip_blanks(text, q);
    }
    if p < text.len() {
        return Err(format!(
            "expected the end of the size line {form} after the number of {}, {}",
            names[names.len() - 1],
            lex::found(text, p)
        ));
    }
    Ok(values)
}

/// The message for a row or column token that is not a valid index.
#[cold]
#[inline(never)]
fn index_error(b: &[u8], p: usize, what: &str, dim: u64, parsed: std::result::Result<u64, IntError>) -> String {
    let token = lex::quote(lex::token_at(b, p));
    let plural = if what == "row" { "rows" } else { "columns" };
    match parsed {
        Ok(0) => format!("{what} index 0 is out of range: Matrix Market indices start at 1"),
        Ok(v) if v > dim => format!("{what} index {v} is out of range: the matrix has {dim} {plural}"),
        Err(IntError::Overflow) => {
            format!("{what} index {token} does not fit in 64 bits (the matrix has {dim} {plural})")
        }
        _ if dim == 0 => format!("expected a {what} index, found {token} (the matrix has 0 {plural})"),
        _ => format!("expected a {what} index (an integer from 1 to {dim}), found {token}"),
    }
}

/// Parses one row or column index at `p`, 1-based, checked to end at a blank or a line end and to lie
/// in `1..=dim`; returns it 0-based and what follows it.
#[inline(always)]
fn index(b: &[u8], p: usize, what: &str, dim: u64) -> std::result::Result<(u64, After), String> {
    match lex::uint_token(b, p) {
        Ok((v, after)) if v.wrapping_sub(1) < dim => Ok((v - 1, after)),
        parsed => Err(index_error(b, p, what, dim, parsed.map(|(v, _)| v))),
    }
}

/// Parses a block of coordinate lines.
pub(crate) fn parse_coordinate<V: Element>(
    b: &[u8],
    lay: &MtxLayout,
    capacity: usize,
    buffer: Vec<Triplet<V>>,
) -> Parsed<V> {
    let mut out = Parsed::with_buffer(buffer, capacity, 0);
    let has_value = lay.field != Field::Pattern;
    let mirror = lay.symmetry != Symmetry::General;
    let skew = lay.symmetry == Symmetry::SkewSymmetric;
    let mut lines = Lines::new(b);
    while let Some(s) = lines.next_data(|c| c == b'%') {
        let line = lines.line;
        let dims = [("row", lay.rows), ("column", lay.cols)];
        let missing = "expected a column index after the row index, found the end of the line";
        let (row, col, after) = match coordinates(s, |p, which| index(b, p, dims[which].0, dims[which].1), missing) {
            Ok(x) => x,
            Err(msg) => bail!(out, line, msg),
        };
        let (value, after) = if has_value {
            let After::Token(t) = after else {
                bail!(
                    out,
                    line,
                    format!(
                        "expected a value after the column index (the banner declares '{}'), found the end of the line",
                        lay.field
                    )
                )
            };
            match value::value_at::<V>(b, t) {
                Ok(x) => x,
                Err(msg) => bail!(out, line, msg),
            }
        } else {
            (value::one::<V>(), after)
        };
        match after {
            After::End(next, newline) => lines.end_line((next, newline)),
            After::Token(t) if has_value => {
                bail!(out, line, format!("expected the end of the line after the value, {}", lex::found(b, t)))
            }
            After::Token(t) => {
                // A pattern file with values (some SuiteSparse test matrices): the structure is all there is.
                lines.end_line(lex::skip_line(b, t));
            }
            // Excluded above: index and value tokens are checked to end at a blank or a line end.
            After::Junk => bail!(out, line, format!("unexpected {}", lex::found(b, s))),
        }
        out.push(row, col, value);
        if mirror && row != col {
            let mirrored = if skew {
                match value.checked_neg() {
                    Some(v) => v,
                    None => bail!(out, line, negate_error(&value)),
                }
            } else {
                value
            };
            out.push(col, row, mirrored);
        }
        out.entries += 1;
    }
    out.newlines = lines.line;
    out
}

#[cold]
pub(crate) fn negate_error(value: &dyn std::fmt::Debug) -> String {
    format!(
        "the value {value:?} cannot be negated in a 64-bit integer (for the mirrored entry of a skew-symmetric \
         matrix)"
    )
}

/// Parses a block of array lines (one value per line) into `values`; the pipeline gives them
/// coordinates in file order.
pub(crate) fn parse_array<V: Element>(b: &[u8], capacity: usize) -> Parsed<V> {
    let mut out = Parsed::with_capacity(0, capacity);
    let mut lines = Lines::new(b);
    while let Some(s) = lines.next_data(|c| c == b'%') {
        let line = lines.line;
        let (value, after) = match value::value_at::<V>(b, s) {
            Ok(x) => x,
            Err(msg) => bail!(out, line, msg),
        };
        match after {
            After::End(next, newline) => lines.end_line((next, newline)),
            After::Token(t) => bail!(
                out,
                line,
                format!(
                    "expected one value per line (array format), found {} after the value",
                    lex::quote(lex::token_at(b, t))
                )
            ),
            // Excluded above: the value is checked to end at a blank or a line end.
            After::Junk => bail!(out, line, format!("unexpected {}", lex::found(b, s))),
        }
        out.values.push(value);
        out.entries += 1;
    }
    out.newlines = lines.line;
    out
}

/// The block-local line index of the data line number `k` (0-based) of `b`: lines that are neither
/// blank nor `%` comments, as the parsers count them.
pub(crate) fn nth_data_line(b: &[u8], k: u64) -> (u64, &[u8]) {
    let mut seen = 0;
    for (i, line) in b.split(|&c| c == b'\n').enumerate() {
        let t = lex::trim(line);
        if !t.is_empty() && t[0] != b'%' {
            if seen == k {
                return (i as u64, t);
            }
            seen += 1;
        }
    }
    (b.split(|&c| c == b'\n').count().saturating_sub(1) as u64, &[])
}

/// Coordinates of array values in file order: column-major over the stored part.
#[derive(Debug, Clone)]
pub(crate) struct ArrayCursor {
    rows: u64,
    row: u64,
    col: u64,
    symmetry: Symmetry,
}

impl ArrayCursor {
    pub fn new(lay: &MtxLayout) -> ArrayCursor {
        let row = if lay.symmetry == Symmetry::SkewSymmetric { 1 } else { 0 };
        ArrayCursor { rows: lay.rows, row, col: 0, symmetry: lay.symmetry }
    }

    /// The 0-based `(row, col)` of the next value, then advances.
    #[inline]
    pub fn next_position(&mut self) -> (u64, u64) {
        let at = (self.row, self.col);
        self.row += 1;
        if self.row >= self.rows {
            self.col += 1;
            self.row = match self.symmetry {
                Symmetry::General => 0,
                Symmetry::Symmetric | Symmetry::Hermitian => self.col,
                Symmetry::SkewSymmetric => self.col + 1,
            };
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triangles() {
        assert_eq!(triangle(3, true), Some(6));
        assert_eq!(triangle(3, false), Some(3));
        assert_eq!(triangle(0, false), Some(0));
        assert_eq!(triangle(1, false), Some(0));
        assert_eq!(triangle(u64::MAX, true), None);
        assert_eq!(triangle(1 << 32, true), Some((1u64 << 31) * ((1 << 32) + 1)));
    }

    #[test]
    fn banners() {
        assert!(parse_banner(b"%%MatrixMarket matrix coordinate real general").is_ok());
        assert!(parse_banner(b"%%matrixmarket MATRIX Coord Pattern Symmetric").is_ok());
        assert!(parse_banner(b"%%MatrixMarket matrix coordinate complex general").unwrap_err().contains("complex"));
        assert!(parse_banner(b"%%MatrixMarket vector coordinate real general").unwrap_err().contains("vector"));
        assert!(parse_banner(b"%%MatrixMarket matrix array real").unwrap_err().contains("ends after 'real'"));
        assert!(parse_banner(b"%%MatrixMarket").unwrap_err().contains("ends after '%%MatrixMarket'"));
    }

    #[test]
    fn cursor() {
        let lay = |symmetry| MtxLayout {
            rows: 3,
            cols: 3,
            declared: 0,
            header_line: 2,
            field: Field::Real,
            symmetry,
            array: true,
        };
        let mut c = ArrayCursor::new(&lay(Symmetry::Symmetric));
        let got: Vec<_> = (0..6).map(|_| c.next_position()).collect();
        assert_eq!(got, [(0, 0), (1, 0), (2, 0), (1, 1), (2, 1), (2, 2)]);
        let mut c = ArrayCursor::new(&lay(Symmetry::SkewSymmetric));
        let got: Vec<_> = (0..3).map(|_| c.next_position()).collect();
        assert_eq!(got, [(1, 0), (2, 0), (2, 1)]);
        let mut c = ArrayCursor::new(&lay(Symmetry::General));
        let got: Vec<_> = (0..4).map(|_| c.next_position()).collect();
        assert_eq!(got, [(0, 0), (1, 0), (2, 0), (0, 1)]);
    }
}
