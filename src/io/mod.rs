//! Text and array formats users bring and take away.
//!
//! * [`mtx`]: Matrix Market export (streaming, parallel formatting, bounded memory).

pub mod mtx;
