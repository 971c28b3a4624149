//! What parsing one block produces ([`Parsed`]), and the walk over a block's lines ([`Lines`]) that
//! every text parser shares. The parsers fill these; the pipeline consumes them.

use super::lex;
use crate::element::Triplet;

/// What parsing one block produced.
pub(crate) struct Parsed<V> {
    /// Coordinate formats: the block's triplets, expanded, in file order.
    pub triplets: Vec<Triplet<V>>,
    /// Array format: the block's values in file order (coordinates come later, in order).
    pub values: Vec<V>,
    /// Data lines parsed (before the error, if any).
    pub entries: u64,
    /// `\n` bytes in the block (up to the error line, if any).
    pub newlines: u64,
    pub max_row: u64,
    pub max_col: u64,
    /// The first error: block-local 0-based line index and message.
    pub error: Option<(u64, String)>,
}

impl<V: Copy> Parsed<V> {
    pub fn with_capacity(triplets: usize, values: usize) -> Self {
        Parsed::with_buffer(Vec::new(), triplets, values)
    }

    /// Like [`with_capacity`](Self::with_capacity), reusing `buffer`'s allocation for the triplets.
    pub fn with_buffer(mut buffer: Vec<Triplet<V>>, triplets: usize, values: usize) -> Self {
        buffer.clear();
        buffer.reserve(triplets);
        Parsed {
            triplets: buffer,
            values: Vec::with_capacity(values),
            entries: 0,
            newlines: 0,
            max_row: 0,
            max_col: 0,
            error: None,
        }
    }

    #[inline(always)]
    pub fn push(&mut self, row: u64, col: u64, value: V) {
        self.max_row = self.max_row.max(row);
        self.max_col = self.max_col.max(col);
        self.triplets.push(Triplet { row, col, value });
    }

    /// Pushes the entry of a data line, and its mirror `(col, row)` off the diagonal when the input is
    /// read as symmetric; counts the line.
    #[inline(always)]
    pub fn push_line(&mut self, row: u64, col: u64, value: V, symmetrize: bool) {
        self.push(row, col, value);
        if symmetrize && row != col {
            self.push(col, row, value);
        }
        self.entries += 1;
    }

    #[cold]
    #[inline(never)]
    pub fn fail(&mut self, line: u64, msg: String) {
        self.error = Some((line, msg));
        self.newlines = line;
    }
}

/// The two index tokens that start a coordinate line at `s`: `index(position, which)` reads the row
/// (`which` 0) or the column (1) token and what follows it; `missing` is the message for a line that
/// ends after the first. Returns the row, the column and what follows the column.
#[inline(always)]
pub(crate) fn coordinates(
    s: usize,
    index: impl Fn(usize, usize) -> Result<(u64, lex::After), String>,
    missing: &str,
) -> Result<(u64, u64, lex::After), String> {
    let (row, after) = index(s, 0)?;
    let lex::After::Token(t) = after else { return Err(missing.to_string()) };
    let (col, after) = index(t, 1)?;
    Ok((row, col, after))
}

/// A walk over the lines of a block: the position of the next line and the block-local number of
/// the current one.
pub(crate) struct Lines<'b> {
    b: &'b [u8],
    p: usize,
    /// Newlines crossed so far: the block-local 0-based number of the current line.
    pub line: u64,
}

impl<'b> Lines<'b> {
    pub fn new(b: &'b [u8]) -> Self {
        Lines { b, p: 0, line: 0 }
    }

    /// The position of the first token of the next data line, skipping blank lines and lines whose
    /// first token starts with a byte `comment` accepts; `None` at the end of the block.
    #[inline(always)]
    pub fn next_data(&mut self, comment: impl Fn(u8) -> bool) -> Option<usize> {
        while self.p < self.b.len() {
            match lex::data_start(self.b, self.p, &comment) {
                Ok(s) => return Some(s),
                Err(end) => self.end_line(end),
            }
        }
        None
    }

    /// Where the current line starts.
    pub fn start(&self) -> usize {
        self.p
    }

    /// Moves to the next line: `next` is its position, `newline` whether a `\n` was crossed.
    #[inline(always)]
    pub fn end_line(&mut self, (next, newline): (usize, bool)) {
        self.p = next;
        self.line += newline as u64;
    }
}
