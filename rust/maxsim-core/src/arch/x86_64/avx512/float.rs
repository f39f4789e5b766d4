//! AVX-512F float MaxSim.

use super::vector::Avx512F32;
use crate::dispatch::{FloatKernel, PeakProbe};
use crate::float::{blocked, PreparedQueries};
use crate::vector::F32Vec;

/// Query vectors per tile (16 query tokens each): a 32-token query is one block.
pub(crate) const R: usize = 2;
/// Document tokens per tile: 16 accumulators + 2 query vectors + broadcasts
/// (folded into the FMA as `{1to16}` memory operands) of the 32 ZMM registers.
pub(crate) const T: usize = 8;

/// # Safety
/// The CPU must support AVX-512F; otherwise the contract of [`blocked::doc_maxes`].
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn doc_maxes(q: &PreparedQueries, doc: &[f32], maxes: &mut [f32]) {
    blocked::doc_maxes::<Avx512F32, R, T>(q, doc, maxes)
}

/// float32 documents.
pub(crate) const FLOAT: FloatKernel = FloatKernel {
    doc_maxes,
    name: "avx512: fma 2x8 register tiles",
};

/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn fma_chains(iterations: usize) -> f32 {
    crate::peak::fma_loop::<Avx512F32>(iterations)
}

/// The FMA throughput probe.
pub(crate) const PEAK: PeakProbe = PeakProbe {
    run: fma_chains,
    lanes: <Avx512F32 as F32Vec>::LANES,
};
