//! Text and array formats users bring and take away.
//!
//! * [`mtx`]: Matrix Market export (streaming, parallel formatting, bounded memory).
//! * [`read`]: triplet input for import: Matrix Market, edge lists, CSV (streaming, parallel, gzip).

pub mod mtx;
pub mod read;
