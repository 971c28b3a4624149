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

/// Why an unsigned integer could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntError {
    /// No digit at the position.
    NotANumber,
    /// More than 64 bits.
    Overflow,
}

/// The value of 8 decimal digits held one per byte, little-endian (the first, most significant digit in
/// the lowest byte; bytes 0 to 9, not ASCII), in three multiplications instead of eight dependent
/// multiply-adds: pairs of digits, then pairs of pairs (the SWAR trick of Lemire's fast_float).
#[inline(always)]
fn eight_digit_value(d: u64) -> u64 {
    // Byte i becomes 10 d_i + d_(i+1): the even bytes hold the two-digit numbers d0d1, d2d3, d4d5, d6d7
    // (none exceeds 99, so nothing carries between bytes).
    let d = d * 10 + (d >> 8);
    // Bits 32..64 of the sum: d0d1 * 10^6 + d4d5 * 100 (first product) + d2d3 * 10^4 + d6d7 (second);
    // the low halves (below 100 * 99 + 99) never carry into them.
    const PAIRS: u64 = 0x0000_00FF_0000_00FF;
    let a = (d & PAIRS).wrapping_mul(100 + (1_000_000 << 32));
    let b = ((d >> 16) & PAIRS).wrapping_mul(1 + (10_000 << 32));
    a.wrapping_add(b) >> 32
}

/// Reads the decimal digits at `p` as a `u64`; returns the value and the position after the digits.
/// Up to 19 digits cannot overflow, so the common case runs without checks.
#[inline(always)]
pub(crate) fn parse_u64(b: &[u8], p: usize) -> Result<(u64, usize), IntError> {
    // Indices of up to 7 digits (almost all of them) in a few word operations: load 8 bytes, find the
    // first that is not a digit, and convert the digits before it at once.
    if let Some(chunk) = b.get(p..p + 8) {
        let d = u64::from_le_bytes(chunk.try_into().expect("8 bytes")).wrapping_sub(0x3030_3030_3030_3030);
        // A byte's high bit is set when it is not a digit: its value minus '0' is 10 or more (adding
        // 0x76 reaches 0x80), or wrapped below zero (already 0x80 or more). Borrows and carries only
        // travel towards later bytes, so every byte up to the first non-digit is classified exactly.
        let not_digit = (d | d.wrapping_add(0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080;
        if not_digit != 0 {
            let k = (not_digit.trailing_zeros() / 8) as usize;
            if k == 0 {
                return Err(IntError::NotANumber);
            }
            // Shift the k digits to the top bytes; the zero bytes below are leading zeros.
            return Ok((eight_digit_value(d << (64 - 8 * k)), p + k));
        }
    }
    let mut v: u64 = 0;
    let mut q = p;
    let fast_end = b.len().min(p + 19);
    while q < fast_end {
        let d = b[q].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v * 10 + d as u64;
        q += 1;
    }
    if q == p {
        return Err(IntError::NotANumber);
    }
    if q == fast_end {
        while q < b.len() {
            let d = b[q].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            v = v.checked_mul(10).and_then(|v| v.checked_add(d as u64)).ok_or(IntError::Overflow)?;
            q += 1;
        }
    }
    Ok((v, q))
}

/// Parses all of `s` as a `u64` (no sign, no spaces).
pub(crate) fn parse_u64_exact(s: &[u8]) -> Result<u64, IntError> {
    match parse_u64(s, 0) {
        Ok((v, q)) if q == s.len() => Ok(v),
        Ok(_) => Err(IntError::NotANumber),
        Err(e) => Err(e),
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

    /// The word-at-a-time path reads exactly what the byte loop reads, wherever the digits end.
    #[test]
    fn parse_u64_matches_the_byte_loop() {
        fn reference(b: &[u8], p: usize) -> Result<(u64, usize), IntError> {
            let mut v = 0u64;
            let mut q = p;
            while q < b.len() && b[q].is_ascii_digit() {
                v = v.checked_mul(10).and_then(|v| v.checked_add((b[q] - b'0') as u64)).ok_or(IntError::Overflow)?;
                q += 1;
            }
            if q == p {
                Err(IntError::NotANumber)
            } else {
                Ok((v, q))
            }
        }
        let alphabet = b"0123456789 \t\n\r/:.-e%\x00\xff";
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..300_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 24) as usize;
            let digits = (x >> 8) % 22;
            let text: Vec<u8> = (0..len)
                .map(|i| {
                    let r = (x >> (i % 50)) as usize ^ i.wrapping_mul(0x9E37);
                    if (i as u64) < digits {
                        b'0' + (r % 10) as u8
                    } else {
                        alphabet[r % alphabet.len()]
                    }
                })
                .collect();
            for p in 0..=len.min(3) {
                assert_eq!(parse_u64(&text, p), reference(&text, p), "{:?} at {p}", String::from_utf8_lossy(&text));
            }
        }
        assert_eq!(parse_u64(b"1234567 ", 0), Ok((1234567, 7)));
        assert_eq!(parse_u64(b"0000001\n", 0), Ok((1, 7)));
        assert_eq!(parse_u64(b"9\t......", 0), Ok((9, 1)));
        assert_eq!(parse_u64(b"x2345678", 0), Err(IntError::NotANumber));
        assert_eq!(parse_u64(b"18446744073709551616", 0), Err(IntError::Overflow));
    }
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_u64(b"123 ", 0), Ok((123, 3)));
        assert_eq!(parse_u64(b"x", 0), Err(IntError::NotANumber));
        assert_eq!(parse_u64(b"", 0), Err(IntError::NotANumber));
        assert_eq!(parse_u64(b"18446744073709551615", 0), Ok((u64::MAX, 20)));
        assert_eq!(parse_u64(b"18446744073709551616", 0), Err(IntError::Overflow));
        assert_eq!(parse_u64(b"0000000000000000000000000000001", 0), Ok((1, 31)));
        assert_eq!(parse_u64(b"9999999999999999999", 0), Ok((9999999999999999999, 19)));
        assert_eq!(parse_u64(b"99999999999999999999", 0), Err(IntError::Overflow));
        assert_eq!(parse_u64_exact(b"12a"), Err(IntError::NotANumber));
    }

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
