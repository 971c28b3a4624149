//! Semirings and value arithmetic: the public [`Semiring`] choice, the [`Ring`] each is computed
//! in (its product, its addition, and the identity the dense accumulators start from), and the
//! output's column index types ([`Col`]).

use crate::error::{Error, Result};

/// The algebra a product is computed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Semiring {
    /// Ordinary arithmetic: `C[i, j] = sum_k A[i, k] * B[k, j]`.
    #[default]
    PlusTimes,
    /// Tropical: `C[i, j] = min_k (A[i, k] + B[k, j])` (shortest paths of two hops; pattern entries
    /// weigh 1).
    MinPlus,
    /// Structure only (boolean `or`/`and`): `C[i, j]` is stored when some `A[i, k]` and `B[k, j]`
    /// are. The output is a pattern matrix.
    Pattern,
}

impl Semiring {
    /// The name the command line uses.
    pub fn name(self) -> &'static str {
        match self {
            Semiring::PlusTimes => "plus-times",
            Semiring::MinPlus => "min-plus",
            Semiring::Pattern => "pattern",
        }
    }
}

impl std::str::FromStr for Semiring {
    type Err = Error;
    fn from_str(s: &str) -> Result<Semiring> {
        Ok(match s {
            "plus-times" | "numeric" => Semiring::PlusTimes,
            "min-plus" | "tropical" => Semiring::MinPlus,
            "pattern" | "boolean" | "structure" => Semiring::Pattern,
            other => {
                return Err(Error::invalid(format!(
                    "unknown semiring {other:?}: expected plus-times, min-plus or pattern (boolean)"
                )))
            }
        })
    }
}

/// A semiring over the value type `T`.
pub(super) trait Ring<T>: Send + Sync + 'static {
    /// `x` with `add(IDENTITY, x)` equal to `x`, bit for bit, for every `x` (NaN included): lets a
    /// dense accumulator start every slot from it instead of testing for a first product.
    const IDENTITY: Option<T>;
    fn mul(a: T, b: T) -> T;
    fn add(a: T, b: T) -> T;
}

pub(super) struct PlusTimes;
pub(super) struct MinPlus;
pub(super) struct Structure;

/// `impl Ring<T> for R` from its identity, product and addition (one line a ring and value type).
macro_rules! ring {
    ($ring:ty, $t:ty, $identity:expr, |$a:ident, $b:ident| $mul:expr, $add:expr) => {
        impl Ring<$t> for $ring {
            const IDENTITY: Option<$t> = $identity;
            #[inline(always)]
            fn mul($a: $t, $b: $t) -> $t {
                $mul
            }
            #[inline(always)]
            fn add($a: $t, $b: $t) -> $t {
                $add
            }
        }
    };
}

// -0.0, not 0.0: 0.0 + -0.0 is 0.0.
ring!(PlusTimes, f64, Some(-0.0), |a, b| a * b, a + b);
ring!(PlusTimes, i64, Some(0), |a, b| a.wrapping_mul(b), a.wrapping_add(b));
// None: min(inf, NaN) as computed here is inf, where a first product NaN stays NaN.
ring!(MinPlus, f64, None, |a, b| a + b, if b < a { b } else { a });
ring!(MinPlus, i64, Some(i64::MAX), |a, b| a.saturating_add(b), a.min(b));

impl Ring<()> for Structure {
    const IDENTITY: Option<()> = Some(());
    #[inline(always)]
    fn mul(_: (), _: ()) {}
    #[inline(always)]
    fn add(_: (), _: ()) {}
}
