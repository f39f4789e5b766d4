//! The portable ("scalar") float kernel: the blocked algorithm over plain Rust arrays.

use super::{blocked, PreparedQueries};
use crate::vector::Portable8;

/// # Safety
/// Same contract as [`blocked::doc_maxes`]; needs no CPU feature.
pub(crate) unsafe fn doc_maxes(q: &PreparedQueries, doc: &[f32], maxes: &mut [f32]) {
    blocked::doc_maxes::<Portable8, 2, 4>(q, doc, maxes)
}
