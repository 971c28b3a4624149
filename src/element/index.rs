//! The index types segments store.

use super::views::Indices;
use crate::format::IndexType;
use sprs::SpIndex;

/// An index type segments can store: `u32` or `u64`. Kernels, operations and sprs views are generic
/// over it; the bit operations and constants serve the kernels' branch-free index checks and the
/// product's empty-slot marker.
pub trait StoredIndex:
    bytemuck::Pod
    + SpIndex
    + Ord
    + Send
    + Sync
    + std::ops::BitOr<Output = Self>
    + std::ops::BitAnd<Output = Self>
    + std::ops::BitXor<Output = Self>
    + super::sealed::Sealed
    + 'static
{
    /// The manifest's name for this type.
    const INDEX_TYPE: IndexType;
    /// Zero: no bit set.
    const ZERO: Self;
    /// The largest value: every bit set. No index of a dimension that fits the type takes it, so it
    /// marks an empty slot.
    const MAX: Self;
    /// Extracts a slice of this type, when `indices` has it.
    fn slice<'a>(indices: Indices<'a>) -> Option<&'a [Self]>;
    /// `v` as this type (truncating: callers know it fits).
    fn from_u64(v: u64) -> Self;
    /// The index as a position.
    fn as_usize(self) -> usize;
}

/// `impl StoredIndex` for a type and its [`Indices`] variant.
macro_rules! stored_index {
    ($t:ty, $index_type:ident, $variant:ident) => {
        impl StoredIndex for $t {
            const INDEX_TYPE: IndexType = IndexType::$index_type;
            const ZERO: $t = 0;
            const MAX: $t = <$t>::MAX;
            fn slice<'a>(indices: Indices<'a>) -> Option<&'a [$t]> {
                match indices {
                    Indices::$variant(s) => Some(s),
                    _ => None,
                }
            }
            #[inline(always)]
            fn from_u64(v: u64) -> $t {
                v as $t
            }
            #[inline(always)]
            fn as_usize(self) -> usize {
                self as usize
            }
        }
    };
}

stored_index!(u32, Uint32, U32);
stored_index!(u64, Uint64, U64);
