//! NEON float MaxSim.

use super::vector::NeonF32;
use crate::dispatch::{FloatKernel, PeakProbe};
use crate::float::{blocked, PreparedQueries};
use crate::vector::F32Vec;

/// Query vectors per tile (4 query tokens each).
pub(crate) const R: usize = 4;
/// Document tokens per tile: 16 accumulators + 4 query vectors + broadcasts
/// of the 32 V registers.
pub(crate) const T: usize = 4;

/// # Safety
/// The CPU must support NEON; otherwise the contract of [`blocked::doc_maxes`].
#[target_feature(enable = "neon")]
unsafe fn doc_maxes(q: &PreparedQueries, doc: &[f32], maxes: &mut [f32]) {
    blocked::doc_maxes::<NeonF32, R, T>(q, doc, maxes)
}

/// float32 documents.
pub(crate) const FLOAT: FloatKernel = FloatKernel {
    doc_maxes,
    name: "neon: fmla 4x4 register tiles",
};

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn fma_chains(iterations: usize) -> f32 {
    crate::peak::fma_loop::<NeonF32>(iterations)
}

/// The FMA throughput probe.
pub(crate) const PEAK: PeakProbe = PeakProbe {
    run: fma_chains,
    lanes: <NeonF32 as F32Vec>::LANES,
};
