//! AVX2 + FMA float MaxSim.

use super::vector::Avx2F32;
use crate::float::{blocked, PreparedQueries};

/// Query vectors per tile (8 query tokens each).
const R: usize = 2;
/// Document tokens per tile. `R × T` accumulators + `R` query vectors + one
/// broadcast fit the 16 YMM registers and cover the FMA latency × throughput.
const T: usize = 6;

/// # Safety
/// The CPU must support AVX2 and FMA; otherwise the contract of [`blocked::doc_maxes`].
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn doc_maxes(q: &PreparedQueries, doc: &[f32], maxes: &mut [f32]) {
    blocked::doc_maxes::<Avx2F32, R, T>(q, doc, maxes)
}
