//! The type layer: what a matrix stores and how code is instantiated for it.
//!
//! Two traits say everything about types: [`Element`] (a value type: `f64`, `f32`, `i64`, or `()` for
//! pattern matrices) and [`StoredIndex`] (an index type: `u32` or `u64`). Everything generic in the
//! crate (parsers, the builder, the writer, kernels, operations) is bounded by these two and nothing
//! else. Code that meets a type only at run time (a manifest's [`ValueType`], a mapped segment's
//! [`Values`]) turns it into a type parameter through the dispatch macros of this module, which are
//! the only places that list the variants; [`result_type`] is the one rule for the value type of an
//! arithmetic result. A new value type (complex values) goes in here: a sealed impl, a variant of
//! [`Values`] and [`ValueVec`], an arm in each dispatch macro.

mod dispatch;
mod index;
pub(crate) mod text;
mod views;

pub(crate) use dispatch::{match_indices, match_values, with_index_type, with_value_type};
pub use index::StoredIndex;
pub use views::{Indices, Triplet, ValueVec, Values};

use crate::format::ValueType;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f64 {}
    impl Sealed for f32 {}
    impl Sealed for i64 {}
    impl Sealed for () {}
    impl Sealed for u32 {}
    impl Sealed for u64 {}
}

/// A Rust type that a matrix can store: `f64`, `f32`, `i64`, or `()` for pattern matrices (no values;
/// every stored entry is 1). `()` matches sprs's own structure-only matrices (`CsStructureViewI`).
///
/// Sealed: these four are all there is. Values convert between types through `f64` (see
/// [`Values::get`]), which is exact except for `i64` values beyond 2^53, and those never convert:
/// an `i64` matrix is read as `i64` in place.
pub trait Element:
    bytemuck::Pod + Default + Send + Sync + PartialEq + std::fmt::Debug + sealed::Sealed + 'static
{
    /// The value type recorded in the manifest.
    const VALUE_TYPE: ValueType;

    /// Bytes of one value on disk (0 for pattern).
    const BYTES: usize = std::mem::size_of::<Self>();

    /// What a value of this type looks like in text, for error messages ("expected a real value").
    const EXPECTED: &'static str;

    /// Converts from `f64` (`as` semantics: integers truncate towards zero and saturate; pattern
    /// ignores the value).
    fn from_f64(value: f64) -> Self;

    /// Converts to `f64` (pattern: 1).
    fn to_f64(self) -> f64;

    /// `self + other` (integers wrap, as NumPy's do; pattern: 1 + 1 is still a stored 1).
    fn sum(self, other: Self) -> Self;

    /// The smaller of the two; `self` when they are equal or unordered (NaN).
    fn minimum(self, other: Self) -> Self;

    /// The larger of the two; `self` when they are equal or unordered (NaN).
    fn maximum(self, other: Self) -> Self;

    /// `c * self` (integers: `c` truncated to an integer, the product wrapping, as NumPy's does).
    fn scale(self, c: f64) -> Self;

    /// True for a zero value (pattern entries are never zero).
    fn is_zero(self) -> bool;

    /// `-self` for the mirrored entry of a skew-symmetric matrix; `None` when it does not exist
    /// (`i64::MIN`).
    fn checked_neg(self) -> Option<Self>;

    /// Parses the longest value at the start of `text`; returns it and the number of bytes it took (at
    /// least 1), or `None` when `text` does not start with a value of this type. The caller checks
    /// that the token ends there. Floats: any decimal form, `inf`, `nan`, out-of-range decimals as
    /// infinity. `i64`: an optionally signed integer that fits. `()` takes the whole token (up to a
    /// blank or a line break) and ignores it.
    fn parse_prefix(text: &[u8]) -> Option<(Self, usize)>;

    /// Appends the shortest text that [`parse_prefix`](Self::parse_prefix) reads back to the same
    /// value (floats: `nan`, `inf`, `-inf` for non-finite values, integral values without `.0`);
    /// pattern: nothing.
    fn write_text(self, out: &mut Vec<u8>);

    /// The values as they are stored, when they are stored as `Self` (so that code reads them in
    /// place); `None` when they need converting, and always for `()`, whose values are never stored.
    fn stored(values: Values<'_>) -> Option<&[Self]>;

    /// [`stored`](Self::stored), except that a pattern segment's values are `units` for `()`: a
    /// view of `units.len()` entries for code that handles every type alike.
    fn stored_slice<'a>(values: Values<'a>, units: &'a [()]) -> Option<&'a [Self]> {
        let _ = units;
        Self::stored(values)
    }

    /// `values` as the owned array of a run-time type.
    fn into_value_vec(values: Vec<Self>) -> ValueVec;

    /// The little-endian bytes of `values` (the crate only builds on little-endian targets).
    fn le_bytes(values: &[Self]) -> &[u8] {
        bytemuck::cast_slice(values)
    }

    /// Appends the little-endian bytes of `values` to `out`.
    fn extend_le_bytes(values: &[Self], out: &mut Vec<u8>) {
        out.extend_from_slice(Self::le_bytes(values));
    }

    /// Reads one value from its first [`BYTES`](Self::BYTES) little-endian bytes.
    ///
    /// # Panics
    ///
    /// When `bytes` is shorter than [`BYTES`](Self::BYTES).
    fn from_le_slice(bytes: &[u8]) -> Self {
        bytemuck::pod_read_unaligned(&bytes[..Self::BYTES])
    }
}

/// `impl Element` for a float type and its [`Values`] variant.
macro_rules! float_element {
    ($t:ty, $value_type:ident, $variant:ident) => {
        impl Element for $t {
            const VALUE_TYPE: ValueType = ValueType::$value_type;
            const EXPECTED: &'static str = "a real value";
            #[inline(always)]
            fn from_f64(value: f64) -> Self {
                value as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn sum(self, other: Self) -> Self {
                self + other
            }
            #[inline]
            fn minimum(self, other: Self) -> Self {
                if other < self {
                    other
                } else {
                    self
                }
            }
            #[inline]
            fn maximum(self, other: Self) -> Self {
                if other > self {
                    other
                } else {
                    self
                }
            }
            #[inline(always)]
            fn scale(self, c: f64) -> Self {
                (c * self as f64) as $t
            }
            #[inline(always)]
            fn is_zero(self) -> bool {
                self == 0.0
            }
            fn checked_neg(self) -> Option<Self> {
                Some(-self)
            }
            #[inline(always)]
            fn parse_prefix(text: &[u8]) -> Option<(Self, usize)> {
                fast_float2::parse_partial::<$t, _>(text).ok()
            }
            #[inline]
            fn write_text(self, out: &mut Vec<u8>) {
                text::write_float(out, self)
            }
            #[inline(always)]
            fn stored(values: Values<'_>) -> Option<&[Self]> {
                match values {
                    Values::$variant(s) => Some(s),
                    _ => None,
                }
            }
            fn into_value_vec(values: Vec<Self>) -> ValueVec {
                ValueVec::$variant(values)
            }
        }
    };
}

float_element!(f64, Float64, F64);
float_element!(f32, Float32, F32);

impl Element for i64 {
    const VALUE_TYPE: ValueType = ValueType::Int64;
    const EXPECTED: &'static str = "an integer value (read real values with --value-type f64)";
    #[inline(always)]
    fn from_f64(value: f64) -> Self {
        value as i64
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn sum(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
    fn minimum(self, other: Self) -> Self {
        self.min(other)
    }
    fn maximum(self, other: Self) -> Self {
        self.max(other)
    }
    #[inline(always)]
    fn scale(self, c: f64) -> Self {
        self.wrapping_mul(c as i64)
    }
    #[inline(always)]
    fn is_zero(self) -> bool {
        self == 0
    }
    fn checked_neg(self) -> Option<Self> {
        i64::checked_neg(self)
    }
    #[inline(always)]
    fn parse_prefix(text: &[u8]) -> Option<(Self, usize)> {
        let (negative, start) = match text.first() {
            Some(b'-') => (true, 1),
            Some(b'+') => (false, 1),
            _ => (false, 0),
        };
        let (magnitude, end) = text::parse_u64(text, start).ok()?;
        let value = if negative { 0i64.checked_sub_unsigned(magnitude)? } else { i64::try_from(magnitude).ok()? };
        Some((value, end))
    }
    #[inline]
    fn write_text(self, out: &mut Vec<u8>) {
        out.extend_from_slice(itoa::Buffer::new().format(self).as_bytes());
    }
    #[inline(always)]
    fn stored(values: Values<'_>) -> Option<&[Self]> {
        match values {
            Values::I64(s) => Some(s),
            _ => None,
        }
    }
    fn into_value_vec(values: Vec<Self>) -> ValueVec {
        ValueVec::I64(values)
    }
}

impl Element for () {
    const VALUE_TYPE: ValueType = ValueType::Pattern;
    const EXPECTED: &'static str = "a value";
    #[inline(always)]
    fn from_f64(_value: f64) -> Self {}
    #[inline(always)]
    fn to_f64(self) -> f64 {
        1.0
    }
    #[inline(always)]
    fn sum(self, _other: Self) -> Self {}
    fn minimum(self, _other: Self) -> Self {}
    fn maximum(self, _other: Self) -> Self {}
    #[inline(always)]
    fn scale(self, _c: f64) -> Self {}
    #[inline(always)]
    fn is_zero(self) -> bool {
        false
    }
    fn checked_neg(self) -> Option<Self> {
        Some(())
    }
    #[inline(always)]
    fn parse_prefix(text: &[u8]) -> Option<(Self, usize)> {
        let n = text.iter().position(|&c| matches!(c, b' ' | b'\t' | b'\n' | b'\r')).unwrap_or(text.len());
        (n > 0).then_some(((), n))
    }
    fn write_text(self, _out: &mut Vec<u8>) {}
    fn stored(_values: Values<'_>) -> Option<&[Self]> {
        None
    }
    fn stored_slice<'a>(values: Values<'a>, units: &'a [()]) -> Option<&'a [Self]> {
        matches!(values, Values::Pattern).then_some(units)
    }
    fn into_value_vec(_values: Vec<Self>) -> ValueVec {
        ValueVec::Pattern
    }
}

/// The value type of an arithmetic result of values of types `a` and `b` (a sum, a product, a
/// combination): int64 when both hold integers (int64, or pattern entries that are 1), else float64
/// (float32 operands are widened: results are computed and stored in 64 bits). The one promotion
/// rule of the crate: the operations ([`add`](fn@crate::ops::add), [`spgemm`](fn@crate::ops::spgemm))
/// choose their output type with it.
pub fn result_type(a: ValueType, b: ValueType) -> ValueType {
    let integral = |v: ValueType| matches!(v, ValueType::Int64 | ValueType::Pattern);
    if integral(a) && integral(b) {
        ValueType::Int64
    } else {
        ValueType::Float64
    }
}

/// The value type a coefficient `c` takes part in [`result_type`] as: int64 when it is a whole
/// number exactly representable as one (`|c| < 9e15`), else float64.
pub fn scalar_type(c: f64) -> ValueType {
    if c.fract() == 0.0 && c.abs() < 9.0e15 {
        ValueType::Int64
    } else {
        ValueType::Float64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_values() {
        assert_eq!(f64::parse_prefix(b"1.5e-2 x"), Some((0.015, 6)));
        assert_eq!(f32::parse_prefix(b"1e39"), Some((f32::INFINITY, 4)));
        assert_eq!(i64::parse_prefix(b"-9223372036854775808"), Some((i64::MIN, 20)));
        assert_eq!(i64::parse_prefix(b"9223372036854775808"), None);
        assert_eq!(i64::parse_prefix(b"+7 "), Some((7, 2)));
        assert_eq!(<()>::parse_prefix(b"abc def"), Some(((), 3)));
        assert_eq!(<()>::parse_prefix(b""), None);
    }

    #[test]
    fn bytes_round_trip() {
        let mut out = Vec::new();
        f32::extend_le_bytes(&[1.5, -2.0], &mut out);
        assert_eq!(out.len(), 8);
        assert_eq!(f32::from_le_slice(&out[4..]), -2.0);
        i64::extend_le_bytes(&[-3], &mut out);
        assert_eq!(i64::from_le_slice(&out[8..]), -3);
        assert_eq!(<() as Element>::BYTES, 0);
        <()>::extend_le_bytes(&[(), ()], &mut out);
        assert_eq!(out.len(), 16);
    }

    #[test]
    fn empty_bytes_view_as_empty_values() {
        // An empty map's pointer is not aligned for f64: it must still view as no values.
        let empty: &[u8] = &[];
        assert!(matches!(Values::from_bytes(ValueType::Float64, empty), Some(Values::F64(v)) if v.is_empty()));
        assert!(matches!(Values::from_bytes(ValueType::Int64, &[0u8; 8]), Some(Values::I64([0]))));
        assert!(Values::from_bytes(ValueType::Float32, &[0u8; 3]).is_none());
    }

    #[test]
    fn promotion() {
        use ValueType::*;
        assert_eq!(result_type(Int64, Pattern), Int64);
        assert_eq!(result_type(Pattern, Pattern), Int64);
        assert_eq!(result_type(Int64, Float32), Float64);
        assert_eq!(result_type(Float32, Float32), Float64);
        assert_eq!(result_type(scalar_type(2.0), Int64), Int64);
        assert_eq!(result_type(scalar_type(0.5), Int64), Float64);
        assert_eq!(scalar_type(1e16), Float64);
    }

    #[test]
    fn scaling() {
        assert_eq!(3i64.scale(-2.0), -6);
        assert_eq!(1.5f64.scale(2.0), 3.0);
        assert_eq!(1.5f32.scale(2.0), 3.0);
        assert_eq!(i64::MAX.scale(2.0), -2);
    }
}
