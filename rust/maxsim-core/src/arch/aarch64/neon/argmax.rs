//! Nearest-centroid argmax and centroid scores (neon).

use super::vector::NeonF32;
use crate::dispatch::CentroidKernel;
use crate::float::argmax::{scan, ArgmaxSink, PreparedCentroids, StoreSink};

/// Centroid vectors per tile.
const R: usize = 4;
/// Tokens per tile (the float MaxSim kernel's register budget).
const T: usize = 4;

/// # Safety
/// The CPU must support `neon`; `rows` must be whole rows of `c.dim()`.
#[target_feature(enable = "neon")]
unsafe fn argmax(c: &PreparedCentroids, rows: &[f32], sink: &mut ArgmaxSink<'_>) {
    scan::<NeonF32, R, T, _>(c, rows, sink)
}

/// # Safety
/// As [`argmax`].
#[target_feature(enable = "neon")]
unsafe fn dots(c: &PreparedCentroids, rows: &[f32], sink: &mut StoreSink<'_>) {
    scan::<NeonF32, R, T, _>(c, rows, sink)
}

/// The centroid kernels, as the table holds them.
pub(crate) const CENTROIDS: CentroidKernel = CentroidKernel {
    argmax,
    dots,
    name: "neon: fmla register tiles",
};
