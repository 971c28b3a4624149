//! Byte-level scanning shared by the parsers: blanks, line ends, integers, and quoting what was found
//! in error messages. Everything works on `&[u8]` at a position; nothing allocates except on the error
//! path.

/// Tokens quoted in error messages are cut to this many bytes.
pub(crate) const QUOTE_BYTES: usize = 40;

/// A space or a tab: what separates tokens on a line.
#[inline(always)]
pub(crate) fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// The first position at or after `p` that is not a blank.
#[inline(always)]
pub(crate) fn skip_blanks(b: &[u8], mut p: usize) -> usize {
    while p < b.len() && is_blank(b[p]) {
        p += 1;
    }
    p
}

/// `line` without leading and trailing blanks and a trailing `\r`.
pub(crate) fn trim(line: &[u8]) -> &[u8] {
    let mut s = 0;
    let mut e = line.len();
    while s < e && is_blank(line[s]) {
        s += 1;
    }
    while e > s && (is_blank(line[e - 1]) || line[e - 1] == b'\r') {
        e -= 1;
    }
    &line[s..e]
}

/// Whether `s` starts with `prefix`, ASCII case-insensitively.
pub(crate) fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Where a token ended.
pub(crate) enum After {
    /// Blanks followed, then another token starting at this position.
    Token(usize),
    /// The line ended: the next line starts at `.0`; `.1` is whether a `\n` was consumed (false only
    /// at the end of the buffer).
    End(usize, bool),
    /// The token is followed directly by a byte that cannot end it: the token is malformed.
    Junk,
}

/// Classifies what follows a token that ended at `q`.
#[inline(always)]
pub(crate) fn after_token(b: &[u8], q: usize) -> After {
    match b.get(q) {
        None => After::End(q, false),
        Some(b' ' | b'\t') => {
            let s = skip_blanks(b, q + 1);
            match line_end(b, s) {
                Some(end) => After::End(end.0, end.1),
                None => After::Token(s),
            }
        }
        Some(b'\n') => After::End(q + 1, true),
        Some(b'\r') => match line_end(b, q) {
            Some(end) => After::End(end.0, end.1),
            None => After::Junk,
        },
        Some(_) => After::Junk,
    }
}

/// If a line ends at `p` (`\n`, `\r\n`, a `\r` or nothing at the end of the buffer), the position after
/// it and whether a `\n` was consumed.
#[inline(always)]
pub(crate) fn line_end(b: &[u8], p: usize) -> Option<(usize, bool)> {
    match b.get(p) {
        None => Some((p, false)),
        Some(b'\n') => Some((p + 1, true)),
        Some(b'\r') => match b.get(p + 1) {
            None => Some((p + 1, false)),
            Some(b'\n') => Some((p + 2, true)),
            Some(_) => None,
        },
        Some(_) => None,
    }
}

/// The position after the end of the line containing `p`, and whether a `\n` was consumed.
#[inline]
pub(crate) fn skip_line(b: &[u8], p: usize) -> (usize, bool) {
    match memchr::memchr(b'\n', &b[p..]) {
        Some(k) => (p + k + 1, true),
        None => (b.len(), false),
    }
}

/// Skips a line that holds no data: blank (only blanks before its end) or, when `comment` says so of
/// its first non-blank byte, a comment. Returns the data's first byte position, or `Err` with the
/// position after the skipped line and whether a `\n` was consumed.
#[inline(always)]
pub(crate) fn data_start(b: &[u8], p: usize, comment: impl Fn(u8) -> bool) -> Result<usize, (usize, bool)> {
    let s = skip_blanks(b, p);
    if let Some(end) = line_end(b, s) {
        return Err(end);
    }
    if comment(b[s]) {
        return Err(skip_line(b, s));
    }
    Ok(s)
}

pub(crate) use crate::element::text::{parse_u64, parse_u64_exact, IntError};

/// The unsigned integer token at `p` and what follows it; [`IntError::NotANumber`] also when the
/// digits do not end at a blank or a line end.
#[inline(always)]
pub(crate) fn uint_token(b: &[u8], p: usize) -> Result<(u64, After), IntError> {
    let (v, q) = parse_u64(b, p)?;
    match after_token(b, q) {
        After::Junk => Err(IntError::NotANumber),
        after => Ok((v, after)),
    }
}

/// The token starting at `p`: up to the next blank or line end (a `\r` that does not end the line is
/// part of the token, so the message shows it).
pub(crate) fn token_at(b: &[u8], p: usize) -> &[u8] {
    let p = p.min(b.len());
    let mut end = p;
    while end < b.len() && !is_blank(b[end]) && line_end(b, end).is_none() {
        end += 1;
    }
    &b[p..end]
}

/// `'token'`, cut to [`QUOTE_BYTES`] bytes (then `...`), invalid UTF-8 replaced, control characters
/// escaped, so any input bytes make a readable, one-line message.
pub(crate) fn quote(token: &[u8]) -> String {
    let cut = token.len() > QUOTE_BYTES;
    let shown = String::from_utf8_lossy(&token[..token.len().min(QUOTE_BYTES)]);
    let mut out = String::with_capacity(shown.len() + 5);
    out.push('\'');
    for c in shown.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if cut {
        out.push_str("...");
    }
    out.push('\'');
    out
}

/// `found 'token'` for the token at `p`, or `found the end of the line`.
pub(crate) fn found(b: &[u8], p: usize) -> String {
    if line_end(b, p).is_some() {
        "found the end of the line".to_string()
    } else {
        format!("found {}", quote(token_at(b, p)))
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn line_ends() {
        assert_eq!(line_end(b"\r\nx", 0), Some((2, true)));
        assert_eq!(line_end(b"\r", 0), Some((1, false)));
        assert_eq!(line_end(b"\rx", 0), None);
        assert!(matches!(after_token(b"1  \r\n", 1), After::End(5, true)));
        assert!(matches!(after_token(b"1  2", 1), After::Token(3)));
        assert!(matches!(after_token(b"1x", 1), After::Junk));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(b"ab\0c"), "'ab\\u{0}c'");
        assert_eq!(quote(&[0xff, b'a']), "'\u{fffd}a'");
        let long = [b'7'; 100];
        assert_eq!(quote(&long), format!("'{}...'", "7".repeat(40)));
        assert_eq!(found(b"  \n", 2), "found the end of the line");
        assert_eq!(found(b"abc def", 0), "found 'abc'");
        assert_eq!(found(b"1\r2\r\n", 0), "found '1\\r2'");
    }
}
