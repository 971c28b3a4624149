//! Specialisation of the loops, at compile time and at run time: instantiation for every stored
//! index and value type ([`Index`], [`Scalar`], `dispatch!`), AVX2 builds chosen at run time
//! (`avx2_dispatch!`), panels of columns of fixed width (`for_each_panel!`) and prefetch hints.

/// Instantiates `body` for the segment's index and value types, with `ix` the indices and `vals` an
/// `Option<&[T]>` of values (`None` for pattern: every value is 1).
macro_rules! dispatch {
    ($seg:expr, |$ix:ident, $vals:ident| $body:expr) => {{
        use $crate::element::{Indices, Values};
        match ($seg.sparse_indices(), $seg.sparse_values()) {
            (Indices::U32(i), Values::F64(v)) => {
                let ($ix, $vals) = (i, Some(v));
                $body
            }
            (Indices::U32(i), Values::F32(v)) => {
                let ($ix, $vals) = (i, Some(v));
                $body
            }
            (Indices::U32(i), Values::I64(v)) => {
                let ($ix, $vals) = (i, Some(v));
                $body
            }
            (Indices::U32(i), Values::Pattern) => {
                let ($ix, $vals): (&[u32], Option<&[f64]>) = (i, None);
                $body
            }
            (Indices::U64(i), Values::F64(v)) => {
                let ($ix, $vals) = (i, Some(v));
                $body
            }
            (Indices::U64(i), Values::F32(v)) => {
                let ($ix, $vals) = (i, Some(v));
                $body
            }
            (Indices::U64(i), Values::I64(v)) => {
                let ($ix, $vals) = (i, Some(v));
                $body
            }
            (Indices::U64(i), Values::Pattern) => {
                let ($ix, $vals): (&[u64], Option<&[f64]>) = (i, None);
                $body
            }
        }
    }};
}

/// Hints the processor to bring `x[i]` into cache.
#[inline(always)]
pub(super) fn prefetch_read(x: &[f64], i: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults and never makes data visible to the program,
    // whatever the address (which here lies inside `x` anyway).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(x.as_ptr().wrapping_add(i).cast())
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (x, i);
}

/// Defines `$name`, which runs `$any` compiled for AVX2 (as `$avx`) when the processor has it, and as
/// compiled otherwise: the same code, vectorised on wider registers where it can be.
macro_rules! avx2_dispatch {
    ($(#[$doc:meta])* $vis:vis fn $name:ident / $avx:ident => $any:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) -> bool {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the processor supports AVX2 (checked just above).
                return unsafe { $avx($($arg),*) };
            }
            $any($($arg),*)
        }

        /// The AVX2 build of the function above.
        ///
        /// # Safety
        ///
        /// The processor supports AVX2.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $avx($($arg: $ty),*) -> bool {
            $any($($arg),*)
        }
    };
}

/// Hints the processor to bring the cache line at `p` into cache. Never faults, whatever `p`.
#[inline(always)]
pub(super) fn prefetch_ptr(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults and never makes data visible to the program,
    // whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Covers `k` columns with panels of 16, 8, 4, 2 and 1 columns, widest first: for each, binds the
/// panel's width to the constant `$w` (a loop whose width is known at compile time keeps its
/// accumulators in registers) and its first column to `$off`, and evaluates `$panel`, which returns
/// the width.
macro_rules! for_each_panel {
    ($k:expr, |$w:ident, $off:ident| $panel:expr) => {{
        let k: usize = $k;
        let mut $off = 0;
        while $off < k {
            $off += match k - $off {
                16.. => {
                    const $w: usize = 16;
                    $panel
                }
                8.. => {
                    const $w: usize = 8;
                    $panel
                }
                4.. => {
                    const $w: usize = 4;
                    $panel
                }
                2.. => {
                    const $w: usize = 2;
                    $panel
                }
                _ => {
                    const $w: usize = 1;
                    $panel
                }
            };
        }
    }};
}

/// Stored index types, widened for indexing.
pub(super) trait Index:
    Copy
    + Ord
    + Send
    + Sync
    + std::ops::BitOr<Output = Self>
    + std::ops::BitAnd<Output = Self>
    + std::ops::BitXor<Output = Self>
{
    /// No bit set.
    const NONE: Self;
    /// Every bit set.
    const ALL: Self;
    fn at(self) -> usize;
}
impl Index for u32 {
    const NONE: u32 = 0;
    const ALL: u32 = u32::MAX;
    #[inline(always)]
    fn at(self) -> usize {
        self as usize
    }
}
impl Index for u64 {
    const NONE: u64 = 0;
    const ALL: u64 = u64::MAX;
    #[inline(always)]
    fn at(self) -> usize {
        self as usize
    }
}

/// Stored value types, widened to `f64` for arithmetic.
pub(super) trait Scalar: Copy + Send + Sync {
    fn f64(self) -> f64;
}
impl Scalar for f64 {
    #[inline(always)]
    fn f64(self) -> f64 {
        self
    }
}
impl Scalar for f32 {
    #[inline(always)]
    fn f64(self) -> f64 {
        self as f64
    }
}
impl Scalar for i64 {
    #[inline(always)]
    fn f64(self) -> f64 {
        self as f64
    }
}
