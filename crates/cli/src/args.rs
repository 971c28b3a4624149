//! Argument types and parsers shared by several subcommands: value enums, sizes, the dense
//! threshold. A leaf: it uses no other module of the command line, so every subcommand can use it
//! and `cli` can use every subcommand without a cycle.

use clap::ValueEnum;
use sparsedisk::Layout;

/// Parses a size option such as `64M` (the syntax of [`sparsedisk::units::parse_size`]), for clap.
/// The benchmark harness's parser, shared so that `sparsedisk bench` and the other subcommands read
/// sizes the same way.
pub use sparsedisk_bench::ui::parse_size_arg;

/// Storage layout, as a command-line value.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LayoutArg {
    /// Row bands.
    Csr,
    /// Column bands.
    Csc,
}

impl From<LayoutArg> for Layout {
    fn from(l: LayoutArg) -> Layout {
        match l {
            LayoutArg::Csr => Layout::Csr,
            LayoutArg::Csc => Layout::Csc,
        }
    }
}

/// Value type, as a command-line value.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ValueTypeArg {
    /// 64-bit floats.
    F64,
    /// 32-bit floats.
    F32,
    /// 64-bit signed integers.
    I64,
    /// No values (structure only).
    Pattern,
}

/// `--dense-threshold`: the fraction of a 64 x 64 block's positions that must hold entries for the
/// block to be stored dense; `off` stores every segment as plain CSR/CSC.
#[derive(Debug, Clone, Copy)]
pub struct DenseThreshold(pub Option<f64>);

impl DenseThreshold {
    /// The writer's dense options.
    pub fn options(self) -> Option<sparsedisk::DenseOptions> {
        self.0.map(|threshold| sparsedisk::DenseOptions { threshold, ..Default::default() })
    }
}

/// Parses `--dense-threshold`: a fraction in (0, 1], or `off`.
pub fn parse_dense_threshold(s: &str) -> std::result::Result<DenseThreshold, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(DenseThreshold(None));
    }
    match s.parse::<f64>() {
        Ok(t) if t > 0.0 && t <= 1.0 => Ok(DenseThreshold(Some(t))),
        _ => Err(format!("{s:?} is not a fraction in (0, 1] or `off`")),
    }
}
