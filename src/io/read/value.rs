//! Reading one value token as an [`Element`]: whole tokens, the value of a pattern entry, and the
//! messages for a token that is not a value.

use super::lex;
use crate::element::Element;

/// Parses all of `text` as a value of type `V` (no surrounding spaces; see
/// [`Element::parse_prefix`]). `()` accepts anything and ignores it.
pub(crate) fn parse_value<V: Element>(text: &[u8]) -> Option<V> {
    if V::BYTES == 0 {
        return Some(V::from_f64(1.0));
    }
    match V::parse_prefix(text) {
        Some((v, n)) if n == text.len() => Some(v),
        _ => None,
    }
}

/// The value of an entry of a pattern file: 1 (`()` for pattern).
pub(crate) fn one<V: Element>() -> V {
    V::from_f64(1.0)
}

/// The value token at `t` and what follows it, or the message for a token that is not a value of
/// type `V` (or does not end at a blank or a line end).
#[inline(always)]
pub(crate) fn value_at<V: Element>(b: &[u8], t: usize) -> Result<(V, lex::After), String> {
    match V::parse_prefix(&b[t..]) {
        Some((v, k)) => match lex::after_token(b, t + k) {
            lex::After::Junk => Err(value_error::<V>(lex::token_at(b, t))),
            after => Ok((v, after)),
        },
        None => Err(value_error::<V>(lex::token_at(b, t))),
    }
}

/// The message for a token that is not a value of type `V`: what was expected and what was found.
#[cold]
pub(crate) fn value_error<V: Element>(token: &[u8]) -> String {
    let digits = token.strip_prefix(b"-").or_else(|| token.strip_prefix(b"+")).unwrap_or(token);
    if V::VALUE_TYPE == crate::format::ValueType::Int64 && !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        format!("expected an integer value that fits in 64 bits, found {}", lex::quote(token))
    } else {
        format!("expected {}, found {}", V::EXPECTED, lex::quote(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(parse_value::<f64>(b"1.5e-2"), Some(0.015));
        assert_eq!(parse_value::<f64>(b"-2.8E2"), Some(-280.0));
        assert_eq!(parse_value::<f64>(b"1E310"), Some(f64::INFINITY));
        assert_eq!(parse_value::<f64>(b"x"), None);
        assert_eq!(parse_value::<f64>(b"1.5x"), None);
        assert_eq!(parse_value::<f32>(b"1e39"), Some(f32::INFINITY));
        assert_eq!(parse_value::<i64>(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_value::<i64>(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_value::<i64>(b"9223372036854775808"), None);
        assert_eq!(parse_value::<i64>(b"+7"), Some(7));
        assert_eq!(parse_value::<i64>(b"3.0"), None);
        assert_eq!(parse_value::<i64>(b"-"), None);
        assert!(value_error::<i64>(b"99999999999999999999").contains("fits in 64 bits"));
        assert!(value_error::<i64>(b"3.5").contains("--value-type f64"));
        assert_eq!(parse_value::<()>(b""), Some(()));
        assert_eq!(<()>::parse_prefix(b"abc def"), Some(((), 3)));
        assert_eq!(<()>::parse_prefix(b""), None);
        assert_eq!(<i64 as Element>::checked_neg(i64::MIN), None);
    }
}
