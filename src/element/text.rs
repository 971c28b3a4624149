//! Numbers in text: the fast decimal reader that value and index parsing share, and the shortest
//! float text that reads back exactly.

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

/// Appends the text of a float that reads back to the same value: integral values of moderate size
/// through the integer formatter (several times faster than the float one, and the same text),
/// others through [`format_float`].
#[inline]
pub(crate) fn write_float<F: ryu::Float + num_traits::Float>(out: &mut Vec<u8>, v: F) {
    let x = v.to_f64().unwrap_or(f64::NAN);
    if x == x.trunc() && x.abs() < 1e15 && !(x == 0.0 && x.is_sign_negative()) {
        out.extend_from_slice(itoa::Buffer::new().format(x as i64).as_bytes());
    } else {
        out.extend_from_slice(format_float(&mut ryu::Buffer::new(), v));
    }
}

/// Shortest round-trip text of a float; integral values without the `.0` ryu adds, as other tools
/// write them. Non-finite values as `nan`, `inf`, `-inf`, which strtod-based readers accept.
fn format_float<F: ryu::Float + num_traits::Float>(buf: &mut ryu::Buffer, v: F) -> &[u8] {
    if v.is_nan() {
        return b"nan";
    }
    if v.is_infinite() {
        return if v.is_sign_negative() { b"-inf" } else { b"inf" };
    }
    let s = buf.format_finite(v).as_bytes();
    s.strip_suffix(b".0").unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn floats_round_trip_in_short_form() {
        let mut b = ryu::Buffer::new();
        assert_eq!(format_float(&mut b, 4.0f64), b"4");
        assert_eq!(format_float(&mut b, -1.0f64), b"-1");
        assert_eq!(format_float(&mut b, 0.1f64), b"0.1");
        assert_eq!(format_float(&mut b, f64::NEG_INFINITY), b"-inf");
        let x = 1.0f64 / 3.0;
        let s = std::str::from_utf8(format_float(&mut b, x)).unwrap().to_string();
        assert_eq!(s.parse::<f64>().unwrap(), x);
        let mut out = Vec::new();
        write_float(&mut out, -0.0f64);
        write_float(&mut out, 3.0f32);
        assert_eq!(out, b"-03");
    }
}
