//! Parsing one value token into each element type.

use super::lex;
use crate::element::Element;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f64 {}
    impl Sealed for f32 {}
    impl Sealed for i64 {}
    impl Sealed for () {}
}

/// An [`Element`] that can be read from the text of a triplet file: `f64`, `f32`, `i64`, or `()`
/// (pattern). Sealed: the four element types are all there is.
pub trait ParseValue: Element + sealed::Sealed {
    /// What a value of this type looks like, for error messages ("expected a real value, found ...").
    const EXPECTED: &'static str;

    /// Parses the longest value at the start of `text`; returns it and the number of bytes it took (at
    /// least 1), or `None` when `text` does not start with a value of this type. The caller checks that
    /// the token ends there. `()` takes the whole token (up to a blank or a line break) and ignores it.
    fn parse_prefix(text: &[u8]) -> Option<(Self, usize)>;

    /// Parses all of `text` as a value (no surrounding spaces). `f64`/`f32`: any decimal float form,
    /// `inf`, `nan`, out-of-range decimals as infinity. `i64`: an optionally signed integer that fits.
    /// `()`: anything, ignored.
    fn parse_value(text: &[u8]) -> Option<Self> {
        match Self::parse_prefix(text) {
            Some((v, n)) if n == text.len() => Some(v),
            _ => None,
        }
    }

    /// The value of an entry of a pattern file: 1 (`()` for pattern).
    fn one() -> Self {
        Self::from_f64(1.0)
    }

    /// `-self` for the mirrored entry of a skew-symmetric matrix; `None` when it does not exist
    /// (`i64::MIN`).
    fn checked_neg(self) -> Option<Self>;

    /// The message for a token that is not a value of this type: what was expected and what was found.
    fn value_error(token: &[u8]) -> String {
        format!("expected {}, found {}", Self::EXPECTED, lex::quote(token))
    }
}

impl ParseValue for f64 {
    const EXPECTED: &'static str = "a real value";
    #[inline(always)]
    fn parse_prefix(text: &[u8]) -> Option<(Self, usize)> {
        fast_float2::parse_partial::<f64, _>(text).ok()
    }
    fn checked_neg(self) -> Option<Self> {
        Some(-self)
    }
}

impl ParseValue for f32 {
    const EXPECTED: &'static str = "a real value";
    #[inline(always)]
    fn parse_prefix(text: &[u8]) -> Option<(Self, usize)> {
        fast_float2::parse_partial::<f32, _>(text).ok()
    }
    fn checked_neg(self) -> Option<Self> {
        Some(-self)
    }
}

impl ParseValue for i64 {
    const EXPECTED: &'static str = "an integer value (read real values with --value-type f64)";
    #[inline(always)]
    fn parse_prefix(text: &[u8]) -> Option<(Self, usize)> {
        let (negative, start) = match text.first() {
            Some(b'-') => (true, 1),
            Some(b'+') => (false, 1),
            _ => (false, 0),
        };
        let (magnitude, end) = lex::parse_u64(text, start).ok()?;
        let value = if negative { 0i64.checked_sub_unsigned(magnitude)? } else { i64::try_from(magnitude).ok()? };
        Some((value, end))
    }
    fn checked_neg(self) -> Option<Self> {
        self.checked_neg()
    }
    fn value_error(token: &[u8]) -> String {
        let digits = token.strip_prefix(b"-").or_else(|| token.strip_prefix(b"+")).unwrap_or(token);
        if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
            format!("expected an integer value that fits in 64 bits, found {}", lex::quote(token))
        } else {
            format!("expected {}, found {}", Self::EXPECTED, lex::quote(token))
        }
    }
}

impl ParseValue for () {
    const EXPECTED: &'static str = "a value";
    #[inline(always)]
    fn parse_prefix(text: &[u8]) -> Option<(Self, usize)> {
        let n = text.iter().position(|&c| lex::is_blank(c) || c == b'\n' || c == b'\r').unwrap_or(text.len());
        (n > 0).then_some(((), n))
    }
    fn parse_value(_text: &[u8]) -> Option<Self> {
        Some(())
    }
    fn checked_neg(self) -> Option<Self> {
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(f64::parse_value(b"1.5e-2"), Some(0.015));
        assert_eq!(f64::parse_value(b"-2.8E2"), Some(-280.0));
        assert_eq!(f64::parse_value(b"1E310"), Some(f64::INFINITY));
        assert_eq!(f64::parse_value(b"x"), None);
        assert_eq!(f64::parse_value(b"1.5x"), None);
        assert_eq!(f32::parse_value(b"1e39"), Some(f32::INFINITY));
        assert_eq!(i64::parse_value(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(i64::parse_value(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(i64::parse_value(b"9223372036854775808"), None);
        assert_eq!(i64::parse_value(b"+7"), Some(7));
        assert_eq!(i64::parse_value(b"3.0"), None);
        assert_eq!(i64::parse_value(b"-"), None);
        assert!(i64::value_error(b"99999999999999999999").contains("fits in 64 bits"));
        assert!(i64::value_error(b"3.5").contains("--value-type f64"));
        assert_eq!(<()>::parse_prefix(b"abc def"), Some(((), 3)));
        assert_eq!(<()>::parse_prefix(b""), None);
        assert_eq!(<i64 as ParseValue>::checked_neg(i64::MIN), None);
    }
}
