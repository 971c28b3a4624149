//! Edge lists: `src dst [weight]` separated by spaces or tabs, `#` and `%` comments.

use super::lex::{self, After, IntError};
use super::parsed::{coordinates, Lines, Parsed};
use super::source::Prefix;
use super::value;
use super::{Dialect, Element, Field, InputFormat, InputHeader, ReadOptions, Symmetry};
use crate::element::Triplet;
use crate::error::Result;

/// What the header (the first data line) fixed about the data lines.
#[derive(Debug, Clone)]
pub(crate) struct EdgeLayout {
    pub base: u64,
    pub has_value: bool,
    pub symmetrize: bool,
    /// Line number of the first data line (0 when there is none), named in "mixed lines" errors.
    pub first_data_line: u64,
}

#[inline(always)]
fn is_comment(c: u8) -> bool {
    c == b'#' || c == b'%'
}

/// Skips leading comment and blank lines and looks at the first data line: three or more columns mean
/// a weighted file.
pub(crate) fn read_header(prefix: &mut Prefix, options: &ReadOptions) -> Result<(InputHeader, Dialect)> {
    let mut first_data_line = 0;
    let mut has_value = false;
    while let Some(line) = prefix.peek_line()? {
        let text = lex::trim(prefix.slice(line));
        if text.is_empty() || is_comment(text[0]) {
            prefix.consume(line);
            continue;
        }
        first_data_line = line.number;
        has_value = text.split(|&c| lex::is_blank(c)).filter(|w| !w.is_empty()).count() >= 3;
        break;
    }
    let field = if has_value { Field::Real } else { Field::Pattern };
    let header = InputHeader {
        format: InputFormat::EdgeList,
        shape: None,
        declared_entries: None,
        field,
        symmetry: Symmetry::General,
        array: false,
        header_line: 0,
        column_names: None,
        file_size: None,
    };
    let layout = EdgeLayout {
        base: options.index_base.unwrap_or(0),
        has_value,
        symmetrize: options.symmetrize,
        first_data_line,
    };
    Ok((header, Dialect::Edge(layout)))
}

/// Parses a node id at `p` and checks it against the index base; returns it 0-based and what follows.
#[inline(always)]
fn node(b: &[u8], p: usize, what: &str, base: u64) -> std::result::Result<(u64, After), String> {
    match lex::uint_token(b, p) {
        Ok((v, after)) if v >= base => Ok((v - base, after)),
        parsed => Err(node_error(b, p, what, base, parsed.map(|(v, _)| v))),
    }
}

#[cold]
#[inline(never)]
fn node_error(b: &[u8], p: usize, what: &str, base: u64, parsed: std::result::Result<u64, IntError>) -> String {
    let token = lex::quote(lex::token_at(b, p));
    match parsed {
        Ok(v) => format!("{what} id {v} is below the index base {base} (ids start at {base}; see --index-base)"),
        Err(IntError::Overflow) => format!("{what} id {token} does not fit in 64 bits"),
        Err(IntError::NotANumber) => {
            format!("expected a {what} id (a non-negative integer), found {token}")
        }
    }
}

/// Parses a block of edge-list lines.
pub(crate) fn parse_block<V: Element>(
    b: &[u8],
    lay: &EdgeLayout,
    capacity: usize,
    buffer: Vec<Triplet<V>>,
) -> Parsed<V> {
    let mut out = Parsed::with_buffer(buffer, capacity, 0);
    let mut lines = Lines::new(b);
    while let Some(s) = lines.next_data(is_comment) {
        let line = lines.line;
        let ends = ["source", "target"];
        let missing = "expected a target id after the source id, found the end of the line";
        let (row, col, after) = match coordinates(s, |p, which| node(b, p, ends[which], lay.base), missing) {
            Ok(x) => x,
            Err(msg) => bail!(out, line, msg),
        };
        let value = if lay.has_value {
            let After::Token(t) = after else {
                bail!(
                    out,
                    line,
                    format!(
                        "expected a weight in the third column, as on the first data line (line {}), found the end of the line",
                        lay.first_data_line
                    )
                )
            };
            let (v, after) = match value::value_at::<V>(b, t) {
                Ok(x) => x,
                Err(msg) => bail!(out, line, msg),
            };
            match after {
                After::End(next, newline) => lines.end_line((next, newline)),
                // Columns past the third (SNAP timestamps) are ignored.
                After::Token(rest) => lines.end_line(lex::skip_line(b, rest)),
                // Excluded by `value_at`.
                After::Junk => bail!(out, line, format!("unexpected {}", lex::found(b, t))),
            }
            v
        } else {
            match after {
                After::End(next, newline) => lines.end_line((next, newline)),
                After::Token(t) => bail!(
                    out,
                    line,
                    format!(
                        "expected the end of the line after the target id, as on the first data line (line {}) \
                         which has no weight, found {}",
                        lay.first_data_line,
                        lex::quote(lex::token_at(b, t))
                    )
                ),
                // Excluded by `node`.
                After::Junk => bail!(out, line, format!("unexpected {}", lex::found(b, s))),
            }
            value::one::<V>()
        };
        out.push_line(row, col, value, lay.symmetrize);
    }
    out.newlines = lines.line;
    out
}
