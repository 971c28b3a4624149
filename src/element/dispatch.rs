//! Run-time types to type parameters: the only code that lists the value and index variants.

/// Evaluates `$body` with the type `$V` bound to the [`Element`](super::Element) type of the
/// [`ValueType`](crate::format::ValueType) `$value_type`.
macro_rules! with_value_type {
    ($value_type:expr, |$V:ident| $body:expr) => {
        match $value_type {
            $crate::format::ValueType::Float64 => {
                type $V = f64;
                $body
            }
            $crate::format::ValueType::Float32 => {
                type $V = f32;
                $body
            }
            $crate::format::ValueType::Int64 => {
                type $V = i64;
                $body
            }
            $crate::format::ValueType::Pattern => {
                type $V = ();
                $body
            }
        }
    };
}

/// Evaluates `$body` with the type `$I` bound to the [`StoredIndex`](super::StoredIndex) type of the
/// [`IndexType`](crate::format::IndexType) `$index_type`.
macro_rules! with_index_type {
    ($index_type:expr, |$I:ident| $body:expr) => {
        match $index_type {
            $crate::format::IndexType::Uint32 => {
                type $I = u32;
                $body
            }
            $crate::format::IndexType::Uint64 => {
                type $I = u64;
                $body
            }
        }
    };
}

/// Evaluates `$stored` with `$v` bound to the slice of stored [`Values`](super::Values) (of whichever
/// type), or `$pattern` when there are none.
macro_rules! match_values {
    ($values:expr, |$v:ident| $stored:expr, $pattern:expr) => {
        match $values {
            $crate::element::Values::F64($v) => $stored,
            $crate::element::Values::F32($v) => $stored,
            $crate::element::Values::I64($v) => $stored,
            $crate::element::Values::Pattern => $pattern,
        }
    };
}

/// Evaluates `$body` with `$ix` bound to the slice of stored [`Indices`](super::Indices) (of whichever
/// width).
macro_rules! match_indices {
    ($indices:expr, |$ix:ident| $body:expr) => {
        match $indices {
            $crate::element::Indices::U32($ix) => $body,
            $crate::element::Indices::U64($ix) => $body,
        }
    };
}

pub(crate) use {match_indices, match_values, with_index_type, with_value_type};
