//! The portable ("scalar") float kernel: the blocked algorithm over plain Rust arrays.

use crate::float::{blocked, PreparedQueries};
use crate::vector::Portable8;

/// Query vectors per tile.
pub(crate) const R: usize = 2;
/// Document tokens per tile.
const T: usize = 4;

/// # Safety
/// Same contract as [`blocked::doc_maxes`]; needs no CPU feature.
pub(crate) unsafe fn doc_maxes(q: &PreparedQueries, doc: &[f32], maxes: &mut [f32]) {
    blocked::doc_maxes::<Portable8, R, T>(q, doc, maxes)
}
