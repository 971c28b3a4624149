//! Specialisation of the loops, at compile time and at run time: instantiation for every stored
//! index and value type (`dispatch!`), AVX2 builds chosen at run time
//! (`avx2_dispatch!`), panels of columns of fixed width (`for_each_panel!`) and prefetch hints.

/// Instantiates `body` for the segment's index and value types, with `ix` the indices and `vals` an
/// `Option<&[T]>` of values (`None` for pattern: every value is 1).
macro_rules! dispatch {
    ($seg:expr, |$ix:ident, $vals:ident| $body:expr) => {{
        let values = $seg.sparse_values();
        $crate::element::match_indices!($seg.sparse_indices(), |$ix| {
            $crate::element::match_values!(
                values,
                |v| {
                    let $vals = Some(v);
                    $body
                },
                {
                    let $vals: Option<&[f64]> = None;
                    $body
                }
            )
        })
    }};
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
