//! AVX-512F float MaxSim.

use super::vector::Avx512F32;
use crate::float::{blocked, PreparedQueries};

/// Query vectors per tile (16 query tokens each): a 32-token query is one block.
const R: usize = 2;
/// Document tokens per tile: 16 accumulators + 2 query vectors + broadcasts
/// (folded into the FMA as `{1to16}` memory operands) of the 32 ZMM registers.
const T: usize = 8;

/// # Safety
/// The CPU must support AVX-512F; otherwise the contract of [`blocked::doc_maxes`].
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn doc_maxes(q: &PreparedQueries, doc: &[f32], maxes: &mut [f32]) {
    blocked::doc_maxes::<Avx512F32, R, T>(q, doc, maxes)
}
