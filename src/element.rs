//! Value types that can be stored, and typed views of stored index and value arrays.

use crate::format::{IndexType, ValueType};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f64 {}
    impl Sealed for f32 {}
    impl Sealed for i64 {}
    impl Sealed for () {}
}

/// A Rust type that a matrix can store: `f64`, `f32`, `i64`, or `()` for pattern matrices (no values;
/// every stored entry is 1). `()` matches sprs's own structure-only matrices (`CsStructureViewI`).
pub trait Element: Copy + Send + Sync + PartialEq + std::fmt::Debug + sealed::Sealed + 'static {
    /// The value type recorded in the manifest.
    const VALUE_TYPE: ValueType;

    /// Appends the little-endian bytes of `values` to `out`.
    fn extend_le_bytes(values: &[Self], out: &mut Vec<u8>);

    /// Converts from `f64` (generators produce `f64`; integers are exact below 2^53). Pattern ignores
    /// the value.
    fn from_f64(value: f64) -> Self;

    /// Converts to `f64` (pattern: 1).
    fn to_f64(self) -> f64;

    /// The stored values as `&[Self]` when `values` holds this type; for pattern (`()`), `units`.
    fn stored_slice<'a>(values: Values<'a>, units: &'a [()]) -> Option<&'a [Self]>;

    /// Bytes of one value on disk (0 for pattern).
    const BYTES: usize;

    /// Reads one value from its first [`BYTES`](Self::BYTES) little-endian bytes.
    ///
    /// # Panics
    ///
    /// When `bytes` is shorter than [`BYTES`](Self::BYTES).
    fn from_le_slice(bytes: &[u8]) -> Self;

    /// `self + other` (integers wrap, as NumPy's do; pattern: 1 + 1 is still a stored 1).
    fn sum(self, other: Self) -> Self;

    /// The smaller of the two; `self` when they are equal or unordered (NaN).
    fn minimum(self, other: Self) -> Self;

    /// The larger of the two; `self` when they are equal or unordered (NaN).
    fn maximum(self, other: Self) -> Self;

    /// True for a zero value (pattern entries are never zero).
    fn is_zero(self) -> bool;
}

impl Element for f64 {
    const BYTES: usize = 8;
    fn from_le_slice(bytes: &[u8]) -> Self {
        f64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
    }
    fn sum(self, other: Self) -> Self {
        self + other
    }
    fn minimum(self, other: Self) -> Self {
        if other < self {
            other
        } else {
            self
        }
    }
    fn maximum(self, other: Self) -> Self {
        if other > self {
            other
        } else {
            self
        }
    }
    fn is_zero(self) -> bool {
        self == 0.0
    }
    const VALUE_TYPE: ValueType = ValueType::Float64;
    fn extend_le_bytes(values: &[Self], out: &mut Vec<u8>) {
        out.extend_from_slice(bytemuck::cast_slice(values));
    }
    fn from_f64(value: f64) -> Self {
        value
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn stored_slice<'a>(values: Values<'a>, _units: &'a [()]) -> Option<&'a [Self]> {
        match values {
            Values::F64(s) => Some(s),
            _ => None,
        }
    }
}

impl Element for f32 {
    const BYTES: usize = 4;
    fn from_le_slice(bytes: &[u8]) -> Self {
        f32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"))
    }
    fn sum(self, other: Self) -> Self {
        self + other
    }
    fn minimum(self, other: Self) -> Self {
        if other < self {
            other
        } else {
            self
        }
    }
    fn maximum(self, other: Self) -> Self {
        if other > self {
            other
        } else {
            self
        }
    }
    fn is_zero(self) -> bool {
        self == 0.0
    }
    const VALUE_TYPE: ValueType = ValueType::Float32;
    fn extend_le_bytes(values: &[Self], out: &mut Vec<u8>) {
        out.extend_from_slice(bytemuck::cast_slice(values));
    }
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn stored_slice<'a>(values: Values<'a>, _units: &'a [()]) -> Option<&'a [Self]> {
        match values {
            Values::F32(s) => Some(s),
            _ => None,
        }
    }
}

impl Element for i64 {
    const BYTES: usize = 8;
    fn from_le_slice(bytes: &[u8]) -> Self {
        i64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
    }
    fn sum(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
    fn minimum(self, other: Self) -> Self {
        self.min(other)
    }
    fn maximum(self, other: Self) -> Self {
        self.max(other)
    }
    fn is_zero(self) -> bool {
        self == 0
    }
    const VALUE_TYPE: ValueType = ValueType::Int64;
    fn extend_le_bytes(values: &[Self], out: &mut Vec<u8>) {
        out.extend_from_slice(bytemuck::cast_slice(values));
    }
    fn from_f64(value: f64) -> Self {
        value as i64
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn stored_slice<'a>(values: Values<'a>, _units: &'a [()]) -> Option<&'a [Self]> {
        match values {
            Values::I64(s) => Some(s),
            _ => None,
        }
    }
}

impl Element for () {
    const BYTES: usize = 0;
    fn from_le_slice(_bytes: &[u8]) -> Self {}
    fn sum(self, _other: Self) -> Self {}
    fn minimum(self, _other: Self) -> Self {}
    fn maximum(self, _other: Self) -> Self {}
    fn is_zero(self) -> bool {
        false
    }
    const VALUE_TYPE: ValueType = ValueType::Pattern;
    fn extend_le_bytes(_values: &[Self], _out: &mut Vec<u8>) {}
    fn from_f64(_value: f64) -> Self {}
    fn to_f64(self) -> f64 {
        1.0
    }
    fn stored_slice<'a>(values: Values<'a>, units: &'a [()]) -> Option<&'a [Self]> {
        match values {
            Values::Pattern => Some(units),
            _ => None,
        }
    }
}

/// The inner indices of a mapped segment, in their stored width.
#[derive(Debug, Clone, Copy)]
pub enum Indices<'a> {
    /// `uint32` indices.
    U32(&'a [u32]),
    /// `uint64` indices.
    U64(&'a [u64]),
}

impl<'a> Indices<'a> {
    /// Number of indices.
    pub fn len(&self) -> usize {
        match self {
            Indices::U32(s) => s.len(),
            Indices::U64(s) => s.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index `k` widened to u64.
    ///
    /// # Panics
    ///
    /// When `k` is out of range.
    #[inline]
    pub fn get(&self, k: usize) -> u64 {
        match self {
            Indices::U32(s) => s[k] as u64,
            Indices::U64(s) => s[k],
        }
    }

    /// The stored width.
    pub fn index_type(&self) -> IndexType {
        match self {
            Indices::U32(_) => IndexType::Uint32,
            Indices::U64(_) => IndexType::Uint64,
        }
    }
}

/// The values of a mapped segment, in their stored type.
#[derive(Debug, Clone, Copy)]
pub enum Values<'a> {
    /// `float64` values.
    F64(&'a [f64]),
    /// `float32` values.
    F32(&'a [f32]),
    /// `int64` values.
    I64(&'a [i64]),
    /// No stored values: every entry is 1.
    Pattern,
}

impl<'a> Values<'a> {
    /// Value `k` as `f64` (pattern: 1; int64 values beyond 2^53 round).
    ///
    /// # Panics
    ///
    /// When `k` is out of range of a stored array.
    #[inline]
    pub fn get_f64(&self, k: usize) -> f64 {
        match self {
            Values::F64(s) => s[k],
            Values::F32(s) => s[k] as f64,
            Values::I64(s) => s[k] as f64,
            Values::Pattern => 1.0,
        }
    }

    /// The stored type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Values::F64(_) => ValueType::Float64,
            Values::F32(_) => ValueType::Float32,
            Values::I64(_) => ValueType::Int64,
            Values::Pattern => ValueType::Pattern,
        }
    }
}

/// One entry of a matrix in coordinate form, as parsers produce and the triplet builder consumes.
/// Indices are 0-based.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Triplet<V> {
    /// Row index.
    pub row: u64,
    /// Column index.
    pub col: u64,
    /// The value (`()` for pattern).
    pub value: V,
}
