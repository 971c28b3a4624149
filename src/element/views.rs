//! Typed views of stored index and value arrays, an owned value array of a type known at run time,
//! and the coordinate entry that parsers produce.

use super::{match_values, Element};
use crate::format::{IndexType, ValueType};

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
        super::match_indices!(*self, |ix| ix.len())
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
    /// Views bytes as values of `value_type`; `None` when their length or alignment does not fit the
    /// type (no bytes are always an empty view; a pattern segment has no bytes to view).
    pub fn from_bytes(value_type: ValueType, bytes: &'a [u8]) -> Option<Values<'a>> {
        fn cast<T: bytemuck::Pod>(bytes: &[u8]) -> Option<&[T]> {
            // An empty map's pointer need not be aligned for `T`; its view is the empty slice.
            if bytes.is_empty() {
                return Some(&[]);
            }
            bytemuck::try_cast_slice(bytes).ok()
        }
        Some(match value_type {
            ValueType::Float64 => Values::F64(cast(bytes)?),
            ValueType::Float32 => Values::F32(cast(bytes)?),
            ValueType::Int64 => Values::I64(cast(bytes)?),
            ValueType::Pattern => Values::Pattern,
        })
    }

    /// Value `k` as `f64` (pattern: 1; int64 values beyond 2^53 round).
    ///
    /// # Panics
    ///
    /// When `k` is out of range of a stored array.
    #[inline]
    pub fn get_f64(&self, k: usize) -> f64 {
        self.get::<f64>(k)
    }

    /// Value `k` converted to `T`: as it is when stored as `T`, else through `f64` ([`Element`]'s
    /// conversions; pattern entries are 1).
    ///
    /// # Panics
    ///
    /// When `k` is out of range of a stored array.
    #[inline(always)]
    pub fn get<T: Element>(&self, k: usize) -> T {
        if let Some(v) = T::stored(*self) {
            return v[k];
        }
        match_values!(*self, |v| T::from_f64(v[k].to_f64()), T::from_f64(1.0))
    }

    /// Appends values `range` to `out`, converted to `T` as [`get`](Self::get) does.
    ///
    /// # Panics
    ///
    /// When `range` is out of range of a stored array.
    pub fn extend_into<T: Element>(&self, range: std::ops::Range<usize>, out: &mut Vec<T>) {
        if let Some(v) = T::stored(*self) {
            return out.extend_from_slice(&v[range]);
        }
        match_values!(
            *self,
            |v| out.extend(v[range].iter().map(|x| T::from_f64(x.to_f64()))),
            out.resize(out.len() + range.len(), T::from_f64(1.0))
        )
    }

    /// Values `range` (pattern: itself), or `None` when out of range.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Option<Values<'a>> {
        Some(match *self {
            Values::F64(v) => Values::F64(v.get(range)?),
            Values::F32(v) => Values::F32(v.get(range)?),
            Values::I64(v) => Values::I64(v.get(range)?),
            Values::Pattern => Values::Pattern,
        })
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

/// An owned array of values whose type is known at run time: what [`Values`] views.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueVec {
    /// `float64` values.
    F64(Vec<f64>),
    /// `float32` values.
    F32(Vec<f32>),
    /// `int64` values.
    I64(Vec<i64>),
    /// No stored values.
    Pattern,
}

impl ValueVec {
    /// An empty array of `value_type`.
    pub fn new(value_type: ValueType) -> ValueVec {
        match value_type {
            ValueType::Float64 => ValueVec::F64(Vec::new()),
            ValueType::Float32 => ValueVec::F32(Vec::new()),
            ValueType::Int64 => ValueVec::I64(Vec::new()),
            ValueType::Pattern => ValueVec::Pattern,
        }
    }

    /// The view of the array.
    pub fn as_values(&self) -> Values<'_> {
        match self {
            ValueVec::F64(v) => Values::F64(v),
            ValueVec::F32(v) => Values::F32(v),
            ValueVec::I64(v) => Values::I64(v),
            ValueVec::Pattern => Values::Pattern,
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
