//! NEON float MaxSim.

use super::vector::NeonF32;
use crate::float::{blocked, PreparedQueries};

/// Query vectors per tile (4 query tokens each).
const R: usize = 4;
/// Document tokens per tile: 16 accumulators + 4 query vectors + broadcasts
/// of the 32 V registers.
const T: usize = 4;

/// # Safety
/// The CPU must support NEON; otherwise the contract of [`blocked::doc_maxes`].
#[target_feature(enable = "neon")]
pub(crate) unsafe fn doc_maxes(q: &PreparedQueries, doc: &[f32], maxes: &mut [f32]) {
    blocked::doc_maxes::<NeonF32, R, T>(q, doc, maxes)
}
