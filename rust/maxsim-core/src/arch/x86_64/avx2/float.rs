//! AVX2 + FMA float MaxSim.

use super::vector::Avx2F32;
use crate::dispatch::{FloatKernel, PeakProbe};
use crate::float::{blocked, PreparedQueries};
use crate::vector::F32Vec;

/// Query vectors per tile (8 query tokens each).
pub(crate) const R: usize = 2;
/// Document tokens per tile. `R × T` accumulators + `R` query vectors + one
/// broadcast fit the 16 YMM registers and cover the FMA latency × throughput.
pub(crate) const T: usize = 6;

/// # Safety
/// The CPU must support AVX2 and FMA; otherwise the contract of [`blocked::doc_maxes`].
#[target_feature(enable = "avx2,fma")]
unsafe fn doc_maxes(q: &PreparedQueries, doc: &[f32], maxes: &mut [f32]) {
    blocked::doc_maxes::<Avx2F32, R, T>(q, doc, maxes)
}

/// float32 documents.
pub(crate) const FLOAT: FloatKernel = FloatKernel {
    doc_maxes,
    name: "avx2: fma 2x6 register tiles",
};

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_chains(iterations: usize) -> f32 {
    crate::peak::fma_loop::<Avx2F32>(iterations)
}

/// The FMA throughput probe.
pub(crate) const PEAK: PeakProbe = PeakProbe {
    run: fma_chains,
    lanes: <Avx2F32 as F32Vec>::LANES,
};
