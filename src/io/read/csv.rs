//! CSV: delimiter-separated records, optionally quoted fields, a header line, selectable columns.

use super::lex::{self, IntError};
use super::parsed::{Lines, Parsed};
use super::source::Prefix;
use super::value;
use super::{ColumnSpec, Dialect, Element, Field, InputFormat, InputHeader, ReadOptions, Symmetry};
use crate::element::Triplet;
use crate::error::Result;

/// What the header fixed about the records.
#[derive(Debug, Clone)]
pub(crate) struct CsvLayout {
    pub delimiter: u8,
    pub row: usize,
    pub col: usize,
    pub value: Option<usize>,
    /// Default columns on an unweighted file: a record with a field at this position mixes weighted
    /// and unweighted lines, an error.
    pub forbid: Option<usize>,
    pub base: u64,
    pub symmetrize: bool,
    pub first_data_line: u64,
    /// Header names, for messages.
    pub names: Option<Vec<String>>,
}

impl CsvLayout {
    fn column_name(&self, index: usize) -> String {
        match self.names.as_ref().and_then(|n| n.get(index)) {
            Some(name) => format!("field {index} ('{name}')"),
            None => format!("field {index}"),
        }
    }
}

/// How a field ended.
#[derive(Debug, Clone, Copy)]
enum FieldEnd {
    /// A delimiter: the next field starts here.
    Delimiter(usize),
    /// The line ended: the next line starts at `.0`; `.1` is whether a `\n` was consumed.
    Line(usize, bool),
}

/// One field at `p`: the content range (quotes and surrounding blanks removed; `""` left doubled) and
/// how it ended. The error is the message.
#[inline]
fn next_field(b: &[u8], p: usize, delimiter: u8) -> std::result::Result<(usize, usize, FieldEnd), String> {
    let blank = |c: u8| lex::is_blank(c) && c != delimiter;
    let n = b.len();
    let mut s = p;
    while s < n && blank(b[s]) {
        s += 1;
    }
    if s < n && b[s] == b'"' {
        let start = s + 1;
        let mut q = start;
        let end = loop {
            match memchr::memchr2(b'"', b'\n', &b[q..]) {
                Some(k) if b[q + k] == b'"' => {
                    if b.get(q + k + 1) == Some(&b'"') {
                        q += k + 2;
                    } else {
                        break q + k;
                    }
                }
                _ => {
                    return Err("unterminated quoted field: the closing quote is missing (quoted fields cannot span \
                                lines)"
                        .to_string())
                }
            }
        };
        let mut q = end + 1;
        while q < n && blank(b[q]) {
            q += 1;
        }
        let after = match b.get(q) {
            Some(&c) if c == delimiter => FieldEnd::Delimiter(q + 1),
            _ => match lex::line_end(b, q) {
                Some((next, newline)) => FieldEnd::Line(next, newline),
                None => {
                    return Err(format!(
                        "expected a delimiter or the end of the line after the closing quote, {}",
                        lex::found(b, q)
                    ))
                }
            },
        };
        return Ok((start, end, after));
    }
    let (mut end, after) = match memchr::memchr2(delimiter, b'\n', &b[s..]) {
        Some(k) if b[s + k] == delimiter => (s + k, FieldEnd::Delimiter(s + k + 1)),
        Some(k) => (s + k, FieldEnd::Line(s + k + 1, true)),
        None => (n, FieldEnd::Line(n, false)),
    };
    while end > s && (blank(b[end - 1]) || b[end - 1] == b'\r') {
        end -= 1;
    }
    Ok((s, end, after))
}

/// All fields of one line (for the header), unquoted.
fn split_line(line: &[u8], delimiter: u8) -> std::result::Result<Vec<Vec<u8>>, String> {
    let mut fields = Vec::new();
    let mut p = 0;
    loop {
        let (s, e, after) = next_field(line, p, delimiter)?;
        let mut field = Vec::with_capacity(e - s);
        let mut i = s;
        while i < e {
            field.push(line[i]);
            i += if line[i] == b'"' && i + 1 < e && line[i + 1] == b'"' { 2 } else { 1 };
        }
        fields.push(field);
        match after {
            FieldEnd::Delimiter(next) => p = next,
            FieldEnd::Line(..) => return Ok(fields),
        }
    }
}

/// Reads the header line (given or detected), resolves the columns, and looks at the first data line.
pub(crate) fn read_header(prefix: &mut Prefix, options: &ReadOptions) -> Result<(InputHeader, Dialect)> {
    let delimiter = options.delimiter.unwrap_or(b',');
    let specs = options.columns.clone();
    let by_name = specs.iter().flatten().any(|c| matches!(c, ColumnSpec::Name(_)));
    let mut names: Option<Vec<String>> = None;
    let mut header_line = 0;
    // The first non-blank line: a header, or the first data line.
    let mut first = None;
    while let Some(line) = prefix.peek_line()? {
        if lex::trim(prefix.slice(line)).is_empty() {
            prefix.consume(line);
            continue;
        }
        first = Some(line);
        break;
    }
    if let Some(line) = first {
        let fields = split_line(prefix.slice(line), delimiter).map_err(|msg| prefix.error(line.number, msg))?;
        let is_header = match options.has_header {
            Some(h) => h,
            None if by_name => true,
            None => {
                let (r, c) = match specs.as_deref() {
                    Some([ColumnSpec::Index(r), ColumnSpec::Index(c), ..]) => (*r, *c),
                    _ => (0, 1),
                };
                let numeric = |i: usize| fields.get(i).is_some_and(|f| lex::parse_u64_exact(f).is_ok());
                // A line too short to hold the row and column is data (its error names it), not a header.
                fields.len() > r.max(c) && !(numeric(r) && numeric(c))
            }
        };
        if is_header {
            names = Some(fields.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect());
            header_line = line.number;
            prefix.consume(line);
        }
    }
    let resolve = |spec: &ColumnSpec| -> Result<usize> {
        match spec {
            ColumnSpec::Index(i) => Ok(*i),
            ColumnSpec::Name(name) => {
                let names = names.as_ref().ok_or_else(|| {
                    prefix.error(1, format!("column {} is given by name, but the file has no header line", spec))
                })?;
                names.iter().position(|n| n == name).ok_or_else(|| {
                    let list: Vec<String> = names.iter().map(|n| lex::quote(n.as_bytes())).collect();
                    prefix.error(
                        header_line,
                        format!("no column named '{name}' in the header line; its columns are {}", list.join(", ")),
                    )
                })
            }
        }
    };
    let (row, col, mut value) = match &specs {
        Some(specs) => (resolve(&specs[0])?, resolve(&specs[1])?, specs.get(2).map(resolve).transpose()?),
        None => (0, 1, None),
    };
    let mut forbid = None;
    let mut first_data_line = 0;
    while let Some(line) = prefix.peek_line()? {
        if lex::trim(prefix.slice(line)).is_empty() {
            prefix.consume(line);
            continue;
        }
        first_data_line = line.number;
        if specs.is_none() {
            let fields = split_line(prefix.slice(line), delimiter).map_err(|msg| prefix.error(line.number, msg))?;
            if fields.len() >= 3 {
                value = Some(2);
            } else {
                forbid = Some(2);
            }
        }
        break;
    }
    let field = if value.is_some() { Field::Real } else { Field::Pattern };
    let header = InputHeader {
        format: InputFormat::Csv,
        shape: None,
        declared_entries: None,
        field,
        symmetry: Symmetry::General,
        array: false,
        header_line,
        column_names: names.clone(),
        file_size: None,
    };
    let layout = CsvLayout {
        delimiter,
        row,
        col,
        value,
        forbid,
        base: options.index_base.unwrap_or(0),
        symmetrize: options.symmetrize,
        first_data_line,
        names,
    };
    Ok((header, Dialect::Csv(layout)))
}

#[cold]
#[inline(never)]
fn index_error(
    lay: &CsvLayout,
    field: usize,
    what: &str,
    text: &[u8],
    parsed: std::result::Result<u64, IntError>,
) -> String {
    let column = lay.column_name(field);
    match parsed {
        Ok(v) => format!("{what} index {v} in {column} is below the index base {} (see --index-base)", lay.base),
        Err(IntError::Overflow) => format!("{what} index {} in {column} does not fit in 64 bits", lex::quote(text)),
        Err(IntError::NotANumber) if text.is_empty() => {
            format!("expected a {what} index (a non-negative integer) in {column}, found an empty field")
        }
        Err(IntError::NotANumber) => {
            format!("expected a {what} index (a non-negative integer) in {column}, found {}", lex::quote(text))
        }
    }
}

#[cold]
#[inline(never)]
fn missing_fields(lay: &CsvLayout, line: &[u8], found: usize, need: usize) -> String {
    let delimiter = lex::quote(std::slice::from_ref(&lay.delimiter));
    let mut msg = format!(
        "expected at least {need} fields separated by {delimiter} (row in field {}, column in field {}{}), found {found}",
        lay.row,
        lay.col,
        lay.value.map(|v| format!(", value in field {v}")).unwrap_or_default()
    );
    if lay.value.is_some() && lay.first_data_line > 0 && found == 2 && lay.names.is_none() {
        msg.push_str(&format!(" (the first data line, line {}, has a value)", lay.first_data_line));
    }
    if found == 1 && line.iter().any(|&c| lex::is_blank(c) && c != lay.delimiter) {
        msg.push_str(": is this a whitespace-separated edge list? (read it with --format edges)");
    }
    msg
}

/// Parses a block of CSV records.
pub(crate) fn parse_block<V: Element>(
    b: &[u8],
    lay: &CsvLayout,
    capacity: usize,
    buffer: Vec<Triplet<V>>,
) -> Parsed<V> {
    let mut out = Parsed::with_buffer(buffer, capacity, 0);
    // Fields a record must have, and the last position to look at (a forbidden field lies past them).
    let required = lay.row.max(lay.col).max(lay.value.unwrap_or(0)) + 1;
    let last = (required - 1).max(lay.forbid.unwrap_or(0));
    let mut lines = Lines::new(b);
    // Blank lines are skipped; CSV has no comment lines.
    while lines.next_data(|_| false).is_some() {
        let (p, line) = (lines.start(), lines.line);
        let mut ranges = [(0usize, 0usize); 3];
        let mut seen = 0usize;
        let mut at = p;
        let next_line = loop {
            let (fs, fe, after) = match next_field(b, at, lay.delimiter) {
                Ok(x) => x,
                Err(msg) => bail!(out, line, msg),
            };
            if seen == lay.row {
                ranges[0] = (fs, fe);
            }
            if seen == lay.col {
                ranges[1] = (fs, fe);
            }
            if Some(seen) == lay.value {
                ranges[2] = (fs, fe);
            }
            if Some(seen) == lay.forbid {
                bail!(
                    out,
                    line,
                    format!(
                        "expected 2 fields (row, column), as on the first data line (line {}) which has no value, \
                         found a third field {}",
                        lay.first_data_line,
                        lex::quote(&b[fs..fe])
                    )
                )
            }
            seen += 1;
            match after {
                FieldEnd::Delimiter(next) if seen <= last => at = next,
                FieldEnd::Delimiter(next) => break lex::skip_line(b, next),
                FieldEnd::Line(next, newline) => {
                    if seen < required {
                        let (end, _) = lex::skip_line(b, p);
                        bail!(out, line, missing_fields(lay, &b[p..end], seen, required))
                    }
                    break (next, newline);
                }
            }
        };
        let field = |i: usize| &b[ranges[i].0..ranges[i].1];
        let row = match lex::parse_u64_exact(field(0)) {
            Ok(v) if v >= lay.base => v - lay.base,
            parsed => bail!(out, line, index_error(lay, lay.row, "row", field(0), parsed)),
        };
        let col = match lex::parse_u64_exact(field(1)) {
            Ok(v) if v >= lay.base => v - lay.base,
            parsed => bail!(out, line, index_error(lay, lay.col, "column", field(1), parsed)),
        };
        let value = match lay.value {
            Some(_) => match value::parse_value::<V>(field(2)) {
                Some(v) => v,
                None if field(2).is_empty() => bail!(
                    out,
                    line,
                    format!(
                        "expected {} in {}, found an empty field",
                        V::EXPECTED,
                        lay.column_name(lay.value.unwrap_or(0))
                    )
                ),
                None => bail!(
                    out,
                    line,
                    format!("{} in {}", value::value_error::<V>(field(2)), lay.column_name(lay.value.unwrap_or(0)))
                ),
            },
            None => value::one::<V>(),
        };
        lines.end_line(next_line);
        out.push_line(row, col, value, lay.symmetrize);
    }
    out.newlines = lines.line;
    out
}
